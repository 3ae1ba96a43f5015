"""Executors: what runs the annotator over a whole input and records the run.

`local` runs it in this process (`annotate`, and each Ray task); `ray_engine` is the Ray driver
(one task per unfinished shard, then the merge) and `ray_parts` the per-shard side of it. They sit
beside the annotator, one layer above it: the annotator turns judge answers into annotations and
knows nothing of output locks, run manifests or clusters.
"""
