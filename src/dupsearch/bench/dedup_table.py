"""BENCHMARKS' stage tables of `dupsearch dedup` runs, from what the runs wrote.

    python -m dupsearch.bench.dedup_table out/bench-store/dd100k out/bench-store/dd1m

Each argument is a dedup output folder: its ``report.json`` gives the stages, and beside it
``<folder>.time`` (GNU ``/usr/bin/time -v``) the wall clock, and ``<folder>.memory`` (``free -m``
sampled by ``scripts/bench_store.sh``) the machine's used memory, when present.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def _time_file(folder: Path) -> dict:
    path = folder.with_name(folder.name + ".time")
    if not path.is_file():
        return {}
    text = path.read_text(errors="replace")
    out = {}
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
    if m:
        out["elapsed"] = m.group(1)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if m:
        out["max_rss_mb"] = int(m.group(1)) / 1024
    return out


def _memory_file(folder: Path) -> float | None:
    """Peak of the machine's used memory (MB) sampled during the run: lines 'epoch used_mb'."""
    path = folder.with_name(folder.name + ".memory")
    if not path.is_file():
        return None
    used = [int(line.split()[1]) for line in path.read_text().splitlines() if len(line.split()) >= 2]
    return max(used) if used else None


def rows(folder: Path) -> list[tuple[str, str]]:
    r = json.loads((folder / "report.json").read_text())
    b, st, sc, cl = r["blocking"], r["store"], r["scoring"], r["clustering"]
    t, used = _time_file(folder), _memory_file(folder)
    recall = f", pair recall {b['pair_recall']:.4f}" if b.get("pair_recall") is not None else ""
    out = [
        ("load", f"{r['load_seconds']:.1f} s"),
        (f"blocking ({b['n_candidates']:,} candidates, {b['candidates_per_listing']:.2f} per listing{recall})",
         f"{b['seconds']:.1f} s"),
        (f"listing store: build ({st['workers']} processes, {st['chunks']} chunks) + concatenation",
         f"{st['build_seconds']:.1f} s + {st['concat_seconds']:.1f} s; {st['bytes'] / 1e9:.1f} GB on disk"),
        (f"scoring {sc['pairs_scored']:,} pairs ({sc['workers']} processes)",
         f"{sc['score_seconds']:.1f} s, **{sc['pairs_per_second']:,.0f} pairs/s**"),
        ("clustering (3 methods)", f"{cl['seconds']:.1f} s"),
        ("**wall**", f"**{r['wall_seconds']:.1f} s ({r['wall_seconds'] / 60:.1f} min)**"
         + (f" (`/usr/bin/time`: {t['elapsed']})" if "elapsed" in t else "")),
    ]
    mem = f"peak resident: main {r['peak_memory_mb']:,.0f} MB"
    if "peak_worker_memory_mb" in r:
        mem += f", largest worker {r['peak_worker_memory_mb']:,.0f} MB (file-backed store pages counted in both)"
    if used is not None:
        mem += f"; machine's used memory, sampled every 10 s: peak **{used / 1024:.1f} GiB**"
    out.append(("memory", mem))
    methods = cl["methods"]
    if all("bcubed" in m for m in methods.values()):
        out.append((f"B-cubed F1: {' / '.join(methods)} (threshold {cl['threshold']:.3f})",
                    " / ".join(f"{m['bcubed']['f1']:.3f}" for m in methods.values())))
    return out


def markdown(folder: Path) -> str:
    r = json.loads((folder / "report.json").read_text())
    lines = [f"| stage | {r['listings']:,} listings |", "|---|---|"]
    lines += [f"| {label} | {value} |" for label, value in rows(folder)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(__doc__.strip().splitlines()[2].strip())
        return 2
    missing = [a for a in args if not (Path(a) / "report.json").is_file()]
    if missing:
        print(f"error: no report.json in {', '.join(missing)}", file=sys.stderr)
        return 2
    for a in args:
        try:
            table = markdown(Path(a))
        except (ValueError, KeyError, TypeError) as e:  # not JSON, or not a dedup report
            print(f"error: {Path(a) / 'report.json'}: not a finished dedup report ({type(e).__name__}: {e})",
                  file=sys.stderr)
            return 2
        print(f"### {a}\n")
        print(table)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
