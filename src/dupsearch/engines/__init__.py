"""Where the work runs: :mod:`dupsearch.engines.local` (one machine, resumable)."""

from dupsearch.engines.local import DedupConfig, DedupRun, RunMismatchError, run_dedup

__all__ = ["DedupConfig", "DedupRun", "RunMismatchError", "run_dedup"]
