"""Where the work runs: :mod:`dupsearch.engines.local` (one machine, resumable) and
:mod:`dupsearch.engines.spark` (Apache Spark, extra ``spark``), behind ``run_dedup(..., engine=)``."""

from dupsearch.engines.base import ENGINES, StageClock
from dupsearch.engines.local import DedupConfig, DedupRun, RunMismatchError, run_dedup

__all__ = ["DedupConfig", "DedupRun", "ENGINES", "RunMismatchError", "StageClock", "run_dedup"]
