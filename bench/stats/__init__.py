"""The statistics behind every figure the suite prints or saves.

- ``stability``: a case's figure from its passes, and the unstable rule;
- ``intervals``: the 95% interval on every steps/s and every ratio;
- ``pairing``: which case another is compared with, and their ratio pass by pass;
- ``roofline``: a step's share of what the machine can do;
- ``verdict_engine``: the one verdict engine of the release comparisons.
"""
