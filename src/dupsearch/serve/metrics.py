"""Counters, gauges and histograms for ``GET /metrics``, in the Prometheus text format (0.0.4).

Written by hand: a few dozen lines instead of a dependency. Updates come from the event loop and
from the writer's thread, so every change takes one lock.
"""

from __future__ import annotations

import math
import threading
from typing import Callable, Iterable, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(x: float) -> str:
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if float(x).is_integer():
        return str(int(x))
    return repr(float(x))


class _Metric:
    kind = ""

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()):
        self.name, self.help, self.label_names = name, help, tuple(labels)
        self._lock = threading.Lock()

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()):
        super().__init__(name, help, labels)
        self._values: dict[tuple, float] = {}

    def inc(self, *labels: str, by: float = 1.0) -> None:
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + by

    def value(self, *labels: str) -> float:
        return self._values.get(labels, 0.0)

    def lines(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        if not items and not self.label_names:
            items = [((), 0.0)]
        return self.header() + [f"{self.name}{_labels(self.label_names, k)} {_number(v)}" for k, v in items]


class Gauge(_Metric):
    """A value read when scraped (``read()`` returns it; None leaves the sample out)."""
    kind = "gauge"

    def __init__(self, name: str, help: str, read: Callable[[], float | None]):
        super().__init__(name, help)
        self._read = read

    def lines(self) -> list[str]:
        value = self._read()
        return self.header() + ([] if value is None else [f"{self.name} {_number(value)}"])


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help: str, labels: Sequence[str] = (), buckets: Iterable[float] = LATENCY_BUCKETS):
        super().__init__(name, help, labels)
        self.buckets = tuple(sorted(buckets))
        self._series: dict[tuple, list] = {}  # labels -> [counts per bucket..., sum, count]

    def observe(self, value: float, *labels: str) -> None:
        with self._lock:
            series = self._series.get(labels)
            if series is None:
                series = self._series[labels] = [0] * len(self.buckets) + [0.0, 0]
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    series[i] += 1
            series[-2] += value
            series[-1] += 1

    def count(self, *labels: str) -> int:
        series = self._series.get(labels)
        return 0 if series is None else series[-1]

    def lines(self) -> list[str]:
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._series.items())
        out = self.header()
        for labels, series in items:
            for bound, n in zip(self.buckets, series):
                le = 'le="%s"' % _number(bound)
                out.append(f"{self.name}_bucket{_labels(self.label_names, labels, le)} {n}")
            le = 'le="+Inf"'
            out.append(f"{self.name}_bucket{_labels(self.label_names, labels, le)} {series[-1]}")
            out.append(f"{self.name}_sum{_labels(self.label_names, labels)} {_number(series[-2])}")
            out.append(f"{self.name}_count{_labels(self.label_names, labels)} {series[-1]}")
        return out


class ServiceMetrics:
    """What `dupsearch serve` reports. ``listings`` and ``queued`` are read at scrape time.
    ``worker``: with several server processes, each process's numbers carry a ``worker`` label,
    so that its counters are a series of their own (one series summing processes that restart
    apart would read as counter resets); the process that takes a scrape answers with every
    worker's series (``merge_expositions`` over their snapshots, see ``create_app``)."""

    def __init__(self, listings: Callable[[], float | None], queued: Callable[[], float | None],
                 worker: int | None = None):
        self.worker = worker
        self.requests = Counter("dupsearch_http_requests_total",
                                "HTTP requests answered, by route template, method and status.",
                                ["route", "method", "status"])
        self.latency = Histogram("dupsearch_http_request_duration_seconds",
                                 "Time from request to response, by route template and method.",
                                 ["route", "method"])
        self.upserts = Counter("dupsearch_upserts_committed_total",
                               "Listings added or replaced by committed writes.")
        self.removes = Counter("dupsearch_removes_committed_total",
                               "Listings removed by committed writes.")
        self.commits = Counter("dupsearch_group_commits_total",
                               "Index write calls (each commits one group of queued writes), by kind.",
                               ["kind"])
        self.batch_size = Histogram("dupsearch_group_commit_size",
                                    "Listings written together in one index call (group commit).",
                                    ["kind"], buckets=BATCH_BUCKETS)
        self.match_batch_size = Histogram("dupsearch_match_batch_size",
                                          "Single-listing matches answered together in one index call.",
                                          buckets=BATCH_BUCKETS)
        self.commit_seconds = Histogram("dupsearch_group_commit_duration_seconds",
                                        "Time of one index write call (upsert or remove), by kind.",
                                        ["kind"])
        self.timeouts = Counter("dupsearch_request_timeouts_total",
                                "Requests answered 503/504 because the index work exceeded the timeout.",
                                ["route"])
        self._gauges = [
            Gauge("dupsearch_index_listings", "Live listings in the index.", listings),
            Gauge("dupsearch_write_queue_listings", "Listings queued for the next group commits.", queued),
        ]

    def render(self) -> str:
        lines: list[str] = []
        for metric in (self.requests, self.latency, self.upserts, self.removes, self.commits,
                       self.batch_size, self.match_batch_size, self.commit_seconds, self.timeouts,
                       *self._gauges):
            lines += metric.lines()
        if self.worker is not None:
            lines = [_with_label(line, "worker", str(self.worker)) for line in lines]
        return "\n".join(lines) + "\n"


def _with_label(line: str, name: str, value: str) -> str:
    """A sample line with one more label first (comment lines as they are)."""
    if line.startswith("#"):
        return line
    metric, rest = line.split(" ", 1)
    label = f'{name}="{_escape(value)}"'
    if "{" in metric:
        return metric.replace("{", "{" + label + ",", 1) + " " + rest
    return f"{metric}{{{label}}} {rest}"


def merge_expositions(texts: Iterable[str]) -> str:
    """Several processes' expositions as one: each family's HELP and TYPE once, then the samples
    of every process (told apart by their ``worker`` label), as the text format wants a family's
    samples together."""
    headers: dict[str, list[str]] = {}
    samples: dict[str, list[str]] = {}
    for text in texts:
        name = None
        for line in text.splitlines():
            if line.startswith(("# HELP ", "# TYPE ")):
                name = line.split(" ", 3)[2]
                head = headers.setdefault(name, [])
                samples.setdefault(name, [])
                if not any(h.startswith(line[:7]) for h in head):
                    head.append(line)
            elif line and not line.startswith("#") and name is not None:
                samples[name].append(line)
    return "".join("\n".join(headers[n] + samples[n]) + "\n" for n in headers)


__all__ = ["CONTENT_TYPE", "Counter", "Gauge", "Histogram", "ServiceMetrics", "merge_expositions"]
