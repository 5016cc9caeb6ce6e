"""The blog's exact configurations at 1,000 x 100: its MLX and NumPy code, timed as it timed them.

Linear: 10,000 steps, MLX lazily with one eval at the end, NumPy in float64.
Logistic: the accuracy check read back every step, stopping above 95%.
Each result carries the blog's published figure (`blog_steps_per_s`) beside ours.
"""

from bench.session.harness import run_case

SCENARIO = "blog"
MODELS = ("linear", "logistic")


def test_blog(benchmark, case, size, settings):
    run_case(benchmark, case, size, settings, scenario="blog")
