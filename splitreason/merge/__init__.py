"""Combine the run directories of one input's shards, annotated on several machines, into one.

    parts  = [read_part(path) for path in paths]          # run.json, shard files, done.json
    plan   = plan_merge(parts, base=read_base(out))        # every check, nothing written yet
    result = write_merge(plan, out)                        # same files as one local run

`splitreason merge` and `annotate --engine ray` both go through here, so a Ray run and N
machines merged by hand end in the same OUT, checked the same way.
"""

from splitreason.merge.checks import MergePlan, plan_merge
from splitreason.merge.parts import MergeError, Part, read_base, read_part
from splitreason.merge.write import MergeResult, merge_runs, write_merge

__all__ = ["MergeError", "MergePlan", "MergeResult", "Part", "merge_runs", "plan_merge", "read_base", "read_part",
           "write_merge"]
