"""Test helper loaded with `pytest -p slowdown_plugin`: NumPy cases sleep a fixed time per step.

PLANTED="eager=0.004,sync=0.008" makes every NumPy linear-model step of that
barrier take at least that many seconds more, so a test knows a case's per-step
time whatever K the run uses and however busy the machine is.
"""

import os
import time

from bench.backends.numpy import linear as numpy_linear

_DELAYS = {
    barrier: float(seconds)
    for barrier, _, seconds in (item.partition("=") for item in os.environ.get("PLANTED", "").split(",") if item)
}
_run = numpy_linear.NumpyTrainer.run


def _slowed_run(self, steps, stop_accuracy=None):
    barrier = "sync" if self.sync_metric is not None else "eager"
    time.sleep(_DELAYS.get(barrier, 0.0) * steps)
    return _run(self, steps, stop_accuracy)


numpy_linear.NumpyTrainer.run = _slowed_run
