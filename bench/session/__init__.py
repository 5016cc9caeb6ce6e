"""The suite's pytest plugins, registered from conftest.py, and the one typed config they share.

config       SessionConfig: everything read from the command line, kept in pytest's stash
options      the command-line options (the suite's and each backend's), parsed once at configure
parametrize  the size grid x every backend's cases -> parametrized (case, size) and their fixtures
reporting    machine limits at start, later passes, machine_info, the end-of-run summary
"""
