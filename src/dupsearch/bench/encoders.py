"""Encoding throughput of each encoder: items per second on this machine, no cache.

    python -m dupsearch.bench.encoders --benchmark ../shared/benchmarks/abt-buy \\
        --text tfidf_svd --text fasttext --text navec --text minilm \\
        --image phash --image dhash --image whash --image colorhist --json out/bench/encoders.json

Texts are the "title | category | description" strings of a shared benchmark's listings (or of
the synthetic marketplace when no benchmark is named); photos are drawn by the synthetic
marketplace generator. Fitted encoders are fitted first (fit time reported apart).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from dupsearch.encoders import make_encoder


def _texts(benchmark: str | None, n: int) -> tuple[list[str], str]:
    from dupsearch.features.base import prepare_listings
    from dupsearch.features.pipeline import embedding_text
    if benchmark:
        from dupsearch.io import load_benchmark
        data = load_benchmark(benchmark)
        listings, name = data.listings, f"{benchmark} listings"
    else:
        from dupsearch.synth import generate_marketplace
        listings, name = generate_marketplace(max(n, 500), seed=0).listings, "synthetic marketplace, seed 0"
    texts = embedding_text(prepare_listings(listings.head(n)))
    return texts, f"{name} (first {len(texts)})"


def _photos(n: int, size: int, folder: Path) -> list[str]:
    from dupsearch.synth import generate_marketplace
    m = generate_marketplace(max(n // 2, 50), seed=0, photos_dir=folder, image_size=size)
    paths = [p for ps in m.listings["images"] for p in ps]
    return paths[:n]


def run(text_specs: list[str], image_specs: list[str], benchmark: str | None = None,
        n_texts: int = 2000, n_images: int = 300, image_size: int = 224) -> dict:
    import threading
    out: dict = {"cpu_count": os.cpu_count(), "threads": threading.active_count(), "encoders": []}
    if text_specs:
        texts, source = _texts(benchmark, n_texts)
        out["text_data"] = source
        for spec in text_specs:
            enc = make_encoder(spec, "text")
            row = {"spec": spec, "modality": "text", "items": len(texts)}
            if enc.needs_fit:
                t0 = time.perf_counter()
                enc.fit(texts)
                row["fit_seconds"] = round(time.perf_counter() - t0, 2)
            enc.encode(texts[:8])  # load the model before timing
            t0 = time.perf_counter()
            enc.encode(texts)
            s = time.perf_counter() - t0
            row.update(dim=enc.dim, seconds=round(s, 3), items_per_second=round(len(texts) / s, 1))
            out["encoders"].append(row)
    if image_specs:
        with tempfile.TemporaryDirectory() as tmp:
            photos = _photos(n_images, image_size, Path(tmp))
            out["image_data"] = f"{len(photos)} synthetic photos of {image_size}x{image_size} px (PNG)"
            for spec in image_specs:
                enc = make_encoder(spec, "image")
                enc.encode(photos[:4])
                t0 = time.perf_counter()
                enc.encode(photos)
                s = time.perf_counter() - t0
                out["encoders"].append({"spec": spec, "modality": "image", "items": len(photos), "dim": enc.dim,
                                        "seconds": round(s, 3), "items_per_second": round(len(photos) / s, 1)})
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text", action="append", default=[], help="text encoder spec (repeatable)")
    ap.add_argument("--image", action="append", default=[], help="image encoder spec (repeatable)")
    ap.add_argument("--benchmark", help="benchmark folder whose listings give the texts")
    ap.add_argument("--n-texts", type=int, default=2000)
    ap.add_argument("--n-images", type=int, default=300)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--json", type=Path, help="write the results here")
    a = ap.parse_args(argv)
    from dupsearch.errors import DupsearchError
    try:
        res = run(a.text, a.image, a.benchmark, a.n_texts, a.n_images, a.image_size)
    except (DupsearchError, ValueError) as exc:  # unknown spec, missing model or data
        ap.exit(2, f"error: {exc}\n")
    for r in res["encoders"]:
        fit = f", fit {r['fit_seconds']} s" if "fit_seconds" in r else ""
        print(f"{r['modality']:5s} {r['spec']:40s} dim {r['dim']:5d}  {r['items_per_second']:9.1f} items/s"
              f"  ({r['items']} items in {r['seconds']} s{fit})")
    if a.json:
        from dupsearch.atomic import atomic_write_text
        atomic_write_text(a.json, json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
