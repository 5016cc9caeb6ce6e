"""The case model: what a benchmark case is, and what it trains on.

- ``case``: a Case as data (model, backend, variant, barrier, device, size);
- ``identity``: its one name, used everywhere (pytest ids, saved ``case_id``);
- ``grid``: the cases of a model at a size, in the order a pass times them;
- ``sizes``: the problem-size grids, the ``--sizes`` parser, the memory budget;
- ``datasets``: the seeded problems every backend trains on;
- ``models``: what a step costs (flops, bytes);
- ``checks``: the checks after every timed kernel (right answer, real barrier).
"""
