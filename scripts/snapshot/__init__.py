"""The snapshot builder behind ``scripts/build_snapshot.py``, one module per step.

- ``sources``: the raw input files, the build context (records every file read) and the shared
  readers and date helpers;
- ``universe``: constituent lists and symbol rename chains;
- ``factors``: factor proxy levels, the snapshot date and the index series;
- ``prices``: the adjusted price panel and the traded (unadjusted) closes;
- ``holdings``: corporate actions and implied shares outstanding;
- ``history``: the point-in-time universe (every member of every dated list, intervals, the
  prices of the members outside the universe list, the members without prices);
- ``actions``: how each corporate action was applied (factors, observed steps, unexplained
  adjustment steps);
- ``output``: deterministic CSV, parquet and JSON writers;
- ``manifest``: provenance, counts and known issues for ``manifest.json``;
- ``build``: the whole build, step by step.
"""
