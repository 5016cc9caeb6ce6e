"""The suite's pytest plugins, registered from conftest.py, and the one typed config they share.

SessionConfig (config) holds everything read from the command line, kept in pytest's stash; options
registers and parses the command line, parametrize turns the size grid and every backend's cases into
benchmarks, harness runs a case's first pass, lifecycle does what the session does around the
benchmarks and says at the end. Its modules, one line each: docs/extending.md, "Layout".
"""
