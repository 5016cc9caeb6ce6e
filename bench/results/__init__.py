"""What is saved and read back, in one place for the writers and the readers.

- ``extra_info``: the fields every saved case carries (the result schema);
- ``releases``: what the release runner (bench.versions) and the report
  (bench.report) agree on: release order, thresholds, record names;
- ``files``: the one atomic writer of every saved file;
- ``run_state``: whether a saved run is complete or was interrupted.
"""
