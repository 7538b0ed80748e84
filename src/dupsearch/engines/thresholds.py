"""Clustering thresholds tuned on a catalogue: `dupsearch thresholds`.

The thresholds `train` chooses come from its training listings' candidates, a graph as dense as
the training data is large. A catalogue ten times larger has more near-misses around every
listing (more listings per category and city), and its best cuts are higher (BENCHMARKS.md,
"Groups"). Where a catalogue with known groups is at hand (a labelled sample of one's own, or a
generated market of the size served), this chooses each method's threshold by B-cubed F1 on
a finished dedup run of it, scored by the same model, and writes them into a model folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from dupsearch.errors import DataError


def tune_thresholds(model_dir: str | Path, run_dir: str | Path, listings_path: str | Path, out: str | Path,
                    truth: str = "cluster_id", mapping=None, log: Callable[[str], None] = print) -> dict:
    """Choose the thresholds on the run's scored pairs against the listings' ``truth`` column and
    save the model with them to ``out`` (which may be ``model_dir`` itself); returns the report."""
    from dupsearch.cluster.tuning import choose_cluster_thresholds
    from dupsearch.digests import folder_sha256
    from dupsearch.io import read_listings
    from dupsearch.models import DuplicateMatcher
    model_dir, run_dir = Path(model_dir), Path(run_dir)
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.is_file() or not (run_dir / "scores").is_dir():
        raise DataError("is not a finished dedup run (no manifest.json and scores/)", path=str(run_dir))
    run = json.loads(manifest_path.read_text())
    matcher = DuplicateMatcher.load(model_dir)
    if run.get("model_digest") != folder_sha256(model_dir):
        raise DataError(f"was scored by another model ({run.get('model_dir')}), not {model_dir}: run dedup "
                        "with this model first", path=str(run_dir))
    listings, _ = read_listings(listings_path, mapping=mapping)
    if truth not in listings.columns:
        raise DataError(f"no column {truth!r} naming each listing's true group (--truth)", path=str(listings_path))
    ids = listings["item_id"].astype(str).to_numpy(dtype=object)
    scores = pd.read_parquet(run_dir / "scores", columns=["item_id_a", "item_id_b", "score"])
    known = pd.Index(ids)
    for col in ("item_id_a", "item_id_b"):
        missing = ~scores[col].astype(str).isin(known)
        if missing.any():
            raise DataError(f"the run scored item id {scores[col][missing].iloc[0]!r}, which these listings lack: "
                            "give the listings the run deduplicated", path=str(listings_path))
    groups = listings[truth].astype("string").fillna(pd.Series(["\x1f_single_" + i for i in ids],
                                                               index=listings.index))
    rep = choose_cluster_thresholds(scores["item_id_a"].to_numpy(), scores["item_id_b"].to_numpy(),
                                    scores["score"].to_numpy(np.float64),
                                    pd.Series(groups.to_numpy(), index=ids), all_ids=ids)
    if "thresholds" not in rep:
        raise DataError(f"cannot choose thresholds: {rep['skipped']}", path=str(listings_path))
    before = {"thresholds": matcher.cluster_thresholds_, "method": matcher.cluster_method_}
    matcher.cluster_thresholds_, matcher.cluster_method_ = rep["thresholds"], rep["method"]
    matcher.metrics_["clustering_catalogue"] = {**rep, "run": str(run_dir), "listings": int(len(ids)),
                                                "pairs": int(len(scores)), "truth": truth, "before": before}
    matcher.save(out)
    log(f"thresholds chosen on {len(ids):,} listings ({len(scores):,} scored pairs) -> {out}")
    return {**rep, "before": before}
