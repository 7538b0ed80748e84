"""What every engine shares: the name it is chosen by, and a clock of its stages.

An engine runs dedup's three stages (blocking, scoring, clustering) over a catalogue and
writes the same output layout (see :mod:`dupsearch.engines.local`); ``run_dedup(...,
engine=NAME)`` picks one. ``local``: processes on one machine; ``spark``: Apache Spark
(:mod:`dupsearch.engines.spark`, extra ``spark``).
"""

from __future__ import annotations

import os
import threading
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from dupsearch.errors import DupsearchError

ENGINES = ("local", "spark")
LOCK = ".lock"  # in OUT while a run writes there


def check_engine(name: str) -> str:
    if name not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}; got {name!r}")
    return name


class Engine(ABC):
    """Where a dedup runs. ``run_dedup`` checks what every engine needs first (the model loads,
    OUT is dupsearch's to write and holds no input), then hands over to ``dedup``."""

    name: str

    @abstractmethod
    def dedup(self, listings_path: Path, model_dir: Path, out: Path, config, *, mapping=None,
              restart: Callable[[], None] | None = None, progress: bool = True,
              log: Callable[[str], None] = print, require_truth: bool = False) -> dict:
        """Run (or resume) the dedup of the listings into ``out`` and return its report.
        ``restart``: removes an earlier run's outputs; the engine calls it once the input has
        been checked (a bad input never costs the user their earlier results)."""


class RunMismatchError(DupsearchError):
    """OUT holds another run (other input or settings), or another dedup is writing it."""


class RunLock:
    """An exclusive lock on OUT/.lock while a run writes: a second run into the same folder stops
    with a message instead of interleaving its parts with the first's."""

    def __init__(self, out: Path):
        self.path = Path(out) / LOCK

    def __enter__(self):
        import fcntl
        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.fh.seek(0)
            who = self.fh.read().strip() or "another process"
            self.fh.close()
            raise RunMismatchError(f"{self.path.parent} is being written by another dupsearch dedup ({who}); "
                                   f"wait for it, or use another --out") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(f"pid {os.getpid()}")
        self.fh.flush()
        return self

    def __exit__(self, *exc):
        import fcntl
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()
        return False


def locked_run(out: Path, body: Callable[[float], dict]) -> dict:
    """``body(t0)`` with OUT opened as dupsearch's dedup folder and its lock held (either engine)."""
    from dupsearch.artifacts import open_dir
    t0 = time.perf_counter()
    open_dir(out, "dedup")
    with RunLock(out):
        return body(t0)


def make_engine(name: str, **options) -> Engine:
    """The engine called ``name`` (``ENGINES``) with its options (spark: ``master``)."""
    check_engine(name)
    if name == "spark":
        from dupsearch.engines.spark import SparkEngine
        return SparkEngine(**options)
    from dupsearch.engines.local import LocalEngine
    if options:
        raise ValueError(f"the local engine takes no options ({', '.join(options)})")
    return LocalEngine()


def _tree_rss_mb(root: int) -> float:
    """Resident memory of a process and all its descendants (a Spark driver's JVM and Python
    workers are children of the Python process), from /proc; 0 where /proc is not there."""
    try:
        children: dict[int, list[int]] = {}
        rss: dict[int, int] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as fh:
                    fields = fh.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            pid = int(entry.name)
            children.setdefault(int(fields[1]), []).append(pid)  # ppid
            rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0.0
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, ()))
    return total / 2**20


class StageClock:
    """Wall time and peak resident memory (this process and its children, sampled every
    ``every`` seconds) of each named stage: ``with clock.stage("scoring"): ...``;
    ``clock.report`` maps stage -> {"seconds", "peak_memory_mb"}."""

    def __init__(self, every: float = 0.5):
        self.every, self.report = every, {}

    @contextmanager
    def stage(self, name: str):
        peak = [_tree_rss_mb(os.getpid())]
        stop = threading.Event()

        def sample():
            while not stop.wait(self.every):
                peak[0] = max(peak[0], _tree_rss_mb(os.getpid()))

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            stop.set()
            t.join()
            peak[0] = max(peak[0], _tree_rss_mb(os.getpid()))
            self.report[name] = {"seconds": round(time.perf_counter() - t0, 2), "peak_memory_mb": round(peak[0], 1)}


def clustering_settings(matcher, threshold: float | None) -> dict:
    """How a run groups its scored pairs, the same for every engine: the pair threshold (which
    pairs `duplicates.parquet` keeps), each clustering method's threshold, the default method
    (the `cluster` column), and where they came from. ``threshold`` (--threshold) sets all of
    them; otherwise the model's thresholds chosen for groups (B-cubed F1 on held-out scores),
    or, for a model without them, its pair threshold for every method."""
    from dupsearch.cluster.graph import METHODS
    if threshold is not None:
        t = float(threshold)
        return {"threshold": t, "thresholds": {m: t for m in METHODS},
                "method": matcher.cluster_method_ or "average", "source": "--threshold"}
    pair = float(matcher.threshold_)
    if matcher.cluster_thresholds_ is not None:
        return {"threshold": pair, "thresholds": dict(matcher.cluster_thresholds_),
                "method": matcher.cluster_method_,
                "source": "the model's (each method's best B-cubed F1 on held-out training scores)"}
    return {"threshold": pair, "thresholds": {m: pair for m in METHODS}, "method": "average",
            "source": "the model's pair threshold (the model has no clustering thresholds: retrain to get them)"}
