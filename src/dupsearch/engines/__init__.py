"""Where the work runs: :mod:`dupsearch.engines.local` (one machine, resumable) and
:mod:`dupsearch.engines.spark` (Apache Spark, extra ``spark``), behind ``run_dedup(..., engine=)``."""

from dupsearch.engines.base import ENGINES, Engine, StageClock, make_engine
from dupsearch.engines.local import DedupConfig, DedupRun, RunMismatchError, run_dedup

__all__ = ["DedupConfig", "DedupRun", "ENGINES", "Engine", "RunMismatchError", "StageClock", "make_engine", "run_dedup"]
