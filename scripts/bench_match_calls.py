"""What a match call costs by its size, in one process on one thread (as one server worker runs).

    python scripts/bench_match_calls.py --index OUT/index --listings M/listings.parquet \\
        [--hold 2000] [--sizes 1,5,20,1000] [--repeats 3] [--label NAME] [--json OUT.json]

Opens the index that `python -m dupsearch.bench.index` built (`scripts/bench_index.sh`), warms
it, then calls ``Index.match`` on the held-back listings (the same set as the index benchmark)
in calls of each size: 300 listings for the small sizes, 2,000 for 1,000, ``--repeats`` times;
the best repeat's milliseconds a call and a listing are reported. Matching only: the index is
not changed, so two codes can be compared on one index state. To compare with an older commit,
run this script with ``PYTHONPATH=WORKTREE/src`` (a worktree of that commit; the script calls
nothing newer than the index itself): the JSON records the commit of the code that ran.

A service answers single listings in groups (the gather of concurrent requests): the cost of a
call of 1 is the fixed cost a group pays, the cost a listing at 1,000 the cost of a listing in a
large batch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--listings", type=Path, required=True, help="the market the index benchmark read")
    ap.add_argument("--hold", type=int, default=2000)
    ap.add_argument("--sizes", default="1,5,20,1000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--label", default="", help="what the code measured is, for the table (e.g. 'before')")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    try:
        sizes = [int(s) for s in a.sizes.split(",")]
    except ValueError:
        ap.error(f"--sizes takes whole numbers separated by commas, got {a.sizes!r}")
    if not sizes or min(sizes) < 1 or a.repeats < 1:
        ap.error("--sizes must be positive and --repeats at least 1")

    from dupsearch.threads import one_thread_each
    one_thread_each()  # as a server worker: one thread a library call
    from dupsearch import read_listings
    from dupsearch.bench.index import held_back
    from dupsearch.bench.runner import source_commit
    from dupsearch.index import Index

    from dupsearch.errors import DupsearchError

    source = source_commit()
    try:
        listings, _ = read_listings(a.listings)
        new = listings.iloc[held_back(listings, a.hold)].reset_index(drop=True)
        del listings
        index = Index.open(a.index)
    except (DupsearchError, OSError) as e:  # a missing or damaged file: one line, not a traceback
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    index.warm()
    index.match(new.iloc[:100])  # first-call costs (compilation, page faults) out of the timing
    rows = []
    for size in sizes:
        total = min(len(new), 2000 if size >= 1000 else 300)
        starts = list(range(0, total - size + 1, size)) or [0]
        best = None
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            for s in starts:
                index.match(new.iloc[s:s + size])
            per_call = (time.perf_counter() - t0) / len(starts)
            best = per_call if best is None else min(best, per_call)
        n = len(new.iloc[starts[0]:starts[0] + size])
        rows.append({"size": size, "calls": len(starts), "ms_per_call": round(best * 1e3, 2),
                     "ms_per_listing": round(best * 1e3 / n, 3)})
        print(f"calls of {size}: {best * 1e3:.1f} ms a call, {best * 1e3 / n:.2f} ms a listing", flush=True)
    res = {**source, "label": a.label, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
           "index_listings": len(index), "index_segments": len(index._segments), "held_back": len(new),
           "repeats": a.repeats, "calls": rows}
    if a.json:
        from dupsearch.atomic import atomic_write_json
        atomic_write_json(a.json, res)


if __name__ == "__main__":
    main()
