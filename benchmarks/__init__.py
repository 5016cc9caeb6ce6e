"""The benchmarks: one pytest file per workload, run by `pytest --benchmark-only`.

The tool code they use lives in the package `bench`: each file only parametrises
its cases (bench.session.parametrize) and hands them to the harness
(bench.session.harness). A package, so that its module names stay apart from
the unit tests' (tests/test_mlp.py beside benchmarks/test_mlp.py).
"""
