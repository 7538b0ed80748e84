"""Blocking benchmark on the synthetic marketplace: pair recall, reduction ratio, candidates per
listing, time and peak memory, for each blocker alone and for their union.

    python -m dupsearch.bench.blocking --n 1000000 [--block SPEC ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def run_blocking_bench(n: int, specs: list[str] | None = None, seed: int = 0,
                       k_sweep: tuple[int, ...] = (), log=print) -> dict:
    from dupsearch.candidates.blocking import candidate_pairs, true_pair_codes
    from dupsearch.candidates.specs import default_blocker_specs, make_blocker
    from dupsearch.engines.local import peak_memory_mb
    from dupsearch.synth import generate_marketplace

    t0 = time.perf_counter()
    listings = generate_marketplace(n, seed=seed).listings
    gen_s = time.perf_counter() - t0
    log(f"generated {len(listings):,} listings (seed {seed}) in {gen_s:.0f} s")
    specs = specs or default_blocker_specs(listings)
    truth = true_pair_codes(listings, "cluster_id")
    all_pairs = n * (n - 1) / 2

    def figures(pair_codes: np.ndarray) -> dict:
        found = int(np.isin(truth, pair_codes).sum())
        return {"pair_recall": found / len(truth), "n_true_found": found,
                "n_candidates": int(len(pair_codes)),
                "candidates_per_listing": len(pair_codes) / n,
                "reduction_ratio": 1 - len(pair_codes) / all_pairs}

    blockers = [make_blocker(s) for s in specs]
    for bl in blockers:
        if hasattr(bl, "keep_ranks"):
            bl.keep_ranks = bool(k_sweep)
    t1 = time.perf_counter()
    cands = candidate_pairs(listings, blockers, progress=True)
    block_s = time.perf_counter() - t1
    union = cands.a * np.int64(n) + cands.b
    per_blocker = {}
    for bit, (spec, name) in enumerate(zip(specs, cands.names)):
        own = union[(cands.mask >> bit) & 1 == 1]
        per_blocker[name] = {"spec": spec, **figures(own), "seconds": cands.report[name]["seconds"],
                             "report": cands.report[name]}
        f = per_blocker[name]
        log(f"  {name:28s} recall {f['pair_recall']:.4f}  {f['candidates_per_listing']:6.2f}/listing  "
            f"{f['seconds']:7.1f} s")
    sweep = {}
    ann = [(bit, bl) for bit, bl in enumerate(blockers) if getattr(bl, "keep_ranks", False)]
    for k in k_sweep:
        # the union with every ANN blocker cut to its k nearest neighbours (exact ranks)
        others = [union[(cands.mask >> bit) & 1 == 1] for bit, bl in enumerate(blockers)
                  if not getattr(bl, "keep_ranks", False)]
        cut = []
        for bit, bl in ann:
            own = union[(cands.mask >> bit) & 1 == 1]  # sorted, like the blocker's own codes
            cut.append(own[bl.pair_ranks_ < k])
        sweep[k] = figures(np.unique(np.concatenate(others + cut)))
        f = sweep[k]
        log(f"  union with ANN k={k:<3d}          recall {f['pair_recall']:.4f}  "
            f"{f['candidates_per_listing']:6.2f}/listing  reduction ratio {f['reduction_ratio']:.7f}")
    res = {"data": f"generate_marketplace(n={n}, seed={seed}) (dupsearch synthetic marketplace)",
           "n_listings": n, "n_true_pairs": int(len(truth)), "blockers": specs,
           "union": {**figures(union), "seconds": round(block_s, 1)},
           "per_blocker": per_blocker, "k_sweep": sweep, "generate_seconds": round(gen_s, 1),
           "peak_memory_mb": round(peak_memory_mb(), 1)}
    u = res["union"]
    log(f"union: pair recall {u['pair_recall']:.4f}, reduction ratio {u['reduction_ratio']:.7f}, "
        f"{u['candidates_per_listing']:.2f} candidates/listing, {u['seconds']:.0f} s; "
        f"peak memory {res['peak_memory_mb']:,.0f} MB")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="listings to generate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--block", action="append", help="blocker spec (repeatable; default: dedup's defaults)")
    ap.add_argument("--k-sweep", default="", help="also report the union with the ANN blockers cut to "
                    "each of these k (comma-separated, each <= the blockers' own k)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    if args.n < 2:
        ap.error(f"--n must be at least 2, got {args.n}")
    try:
        sweep = tuple(int(x) for x in args.k_sweep.split(",") if x.strip())
    except ValueError:
        ap.error(f"--k-sweep takes comma-separated integers, got {args.k_sweep!r}")
    res = run_blocking_bench(args.n, args.block, args.seed, k_sweep=sweep)
    if args.json:
        from dupsearch.atomic import atomic_write_json
        atomic_write_json(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
