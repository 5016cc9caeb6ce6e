"""The suite's pytest set-up: its plugins (bench.session) and the data-parallel benchmark's options.

Options, parametrisation and the session's reporting live in bench/session/
(one typed SessionConfig, bench.session.config); see `pytest --help`, section
"mlx-sgd-bench", for the options.
"""

pytest_plugins = (
    "bench.session.options",
    "bench.session.parametrize",
    "bench.session.lifecycle",
    "bench.distributed.pytest_plugin",
)
