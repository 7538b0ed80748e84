"""Time and memory of generating (and writing) a synthetic marketplace.

    python -m dupsearch.synth.bench --n 1000000 --json out/synth-bench-1m.json

Reports wall time of generation and of writing the Parquet tables, CPU time and the peak
resident memory of the process (``resource.getrusage(...).ru_maxrss``), as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _cpu_seconds() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def run(n: int, seed: int = 0, out: Path | None = None, write: bool = True, photos: bool = False) -> dict:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    import dupsearch
    from dupsearch.synth import GENERATOR_VERSION, generate_marketplace

    start_rss = _peak_rss_mb()
    tmp = None
    if out is None and (write or photos):
        tmp = Path(tempfile.mkdtemp(prefix="synth-bench-"))
        out = tmp
    try:
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        m = generate_marketplace(n, seed=seed, photos_dir=(out / "photos") if photos else None)
        t_gen = time.perf_counter() - t0
        peak_gen = _peak_rss_mb()
        t_write, size = 0.0, 0
        if write:
            t1 = time.perf_counter()
            paths = m.write(out)
            t_write = time.perf_counter() - t1
            size = sum(p.stat().st_size for p in paths.values())
        cpu = _cpu_seconds() - cpu0
        st = m.stats()
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return {
        "n_listings": n, "seed": seed, "photos": photos,
        "generate_seconds": round(t_gen, 2), "write_seconds": round(t_write, 2),
        "total_seconds": round(t_gen + t_write, 2), "cpu_seconds": round(cpu, 2),
        "listings_per_second": round(n / t_gen),
        "peak_rss_mb": round(_peak_rss_mb(), 1), "peak_rss_mb_after_generate": round(peak_gen, 1),
        "rss_mb_before": round(start_rss, 1),
        "written_mb": round(size / 2**20, 1),
        "items": st["items"], "pairs": st["pairs"], "positive_pairs": st["positive_pairs"],
        "pairs_by_kind": st["pairs_by_kind"],
        "generator_version": GENERATOR_VERSION, "dupsearch": dupsearch.__version__,
        "python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
        "pyarrow": pa.__version__, "cpus": os.cpu_count(), "machine": platform.machine(),
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m dupsearch.synth.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100_000, help="listings to generate (default 100000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None,
                   help="where to write the result (default out/synth-bench-N.json)")
    p.add_argument("--out", type=Path, default=None,
                   help="keep the written tables here (default: a temporary folder, removed)")
    p.add_argument("--no-write", action="store_true", help="time generation only")
    p.add_argument("--photos", action="store_true", help="also draw photos (slow at large N)")
    args = p.parse_args(argv)
    res = run(args.n, args.seed, args.out, write=not args.no_write, photos=args.photos)
    path = args.json or Path("out") / f"synth-bench-{args.n}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(res, fh, indent=2)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    print(f"{res['n_listings']:,} listings: generate {res['generate_seconds']} s, write "
          f"{res['write_seconds']} s, peak RSS {res['peak_rss_mb']:.0f} MB "
          f"({res['pairs']:,} pairs) -> {path}")
    return res


if __name__ == "__main__":
    main()
