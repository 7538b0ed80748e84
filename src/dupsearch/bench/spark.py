"""The Spark engine against the local engine on one catalogue: wall time and peak memory per
stage, and how far their outputs agree.

    python -m dupsearch.bench.spark --listings M/listings.parquet --model MODEL --out OUT \\
        [--master local[2]] [--workers 2] [--json OUT/spark.json]

Each engine runs ``dupsearch dedup`` in a process of its own (the same default blockers), so
the peak memory of one (its process tree, sampled per stage by ``engines.base.StageClock``:
Spark's JVM and Python workers included) does not carry into the other. Agreement: candidate
pairs in common, the largest score difference on common pairs, and the share of listings whose
clusters are identical under each method. Partitions above 5,000 listings are searched with HNSW
(approximate) by both engines, so at a million listings a few neighbours may differ; at 5,000
listings the tests require identical outputs (exact search everywhere).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _dedup(engine: str, listings: Path, model: Path, out: Path, master: str, workers: int) -> dict:
    cmd = [sys.executable, "-m", "dupsearch.cli.main", "dedup", str(listings), "--model", str(model),
           "--out", str(out), "--restart"]
    cmd += ["--engine", "spark", "--spark-master", master] if engine == "spark" else ["--workers", str(workers)]
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    t0 = time.perf_counter()
    with open(out.parent / f"{out.name}.log", "w") as log:
        subprocess.run(cmd, check=True, env=env, stdout=log, stderr=subprocess.STDOUT)
    report = json.loads((out / "report.json").read_text())
    report["command_seconds"] = round(time.perf_counter() - t0, 1)
    return report


def _scores(out: Path) -> pd.DataFrame:
    path = out / "scores"
    frame = pd.read_parquet(path, columns=["row_a", "row_b", "score"])
    return frame


def agreement(local: Path, spark: Path) -> dict:
    """How far the two engines' outputs agree (pairs, scores, clusters)."""
    a, b = _scores(local), _scores(spark)
    n = max(int(a["row_a"].max()), int(b["row_a"].max()), int(a["row_b"].max()), int(b["row_b"].max())) + 1
    ka = a["row_a"].to_numpy(np.int64) * n + a["row_b"].to_numpy(np.int64)
    kb = b["row_a"].to_numpy(np.int64) * n + b["row_b"].to_numpy(np.int64)
    common, ia, ib = np.intersect1d(ka, kb, return_indices=True)
    diff = np.abs(a["score"].to_numpy(np.float64)[ia] - b["score"].to_numpy(np.float64)[ib])
    out = {"local_pairs": int(len(ka)), "spark_pairs": int(len(kb)), "common_pairs": int(len(common)),
           "max_score_difference": float(diff.max()) if len(diff) else 0.0}
    ca = pd.read_parquet(local / "clusters.parquet").set_index("item_id").sort_index()
    cb = pd.read_parquet(spark / "clusters.parquet").set_index("item_id").reindex(ca.index)
    h = pd.Series(pd.util.hash_array(ca.index.to_numpy(dtype=object)), index=ca.index)
    for col in ca.columns:
        # a listing's cluster is the same when its members are: compared by the sum of their hashes
        sa = h.groupby(ca[col].to_numpy()).transform("sum").to_numpy()
        sb = h.groupby(cb[col].to_numpy()).transform("sum").to_numpy()
        out[f"same_{col}"] = float((sa == sb).mean())
    return out


def run(listings: Path, model: Path, out: Path, master: str = "local[2]", workers: int = 2) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    result = {"listings_file": str(listings), "master": master, "workers": workers, "cpus": os.cpu_count()}
    for engine in ("local", "spark"):
        rep = _dedup(engine, listings, model, out / engine, master, workers)
        result[engine] = {k: rep.get(k) for k in ("listings", "wall_seconds", "command_seconds", "peak_memory_mb", "load_seconds",
                                                   "stages", "blocking", "scoring")}
        result[engine]["bcubed_f1"] = {m: v.get("bcubed", {}).get("f1")
                                       for m, v in rep["clustering"]["methods"].items()}
        print(f"[bench.spark] {engine}: {rep['wall_seconds']:.0f} s", file=sys.stderr, flush=True)
    result["agreement"] = agreement(out / "local", out / "spark")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listings", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    from dupsearch.atomic import atomic_write_json
    from dupsearch.bench.runner import source_commit
    source = source_commit()  # the code that runs: taken before, not after
    res = {**source, **run(a.listings, a.model, a.out, a.master, a.workers)}
    print(json.dumps(res, indent=1))
    if a.json:
        atomic_write_json(a.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
