"""`dupsearch demo`: the whole job on a generated Russian marketplace.

generate listings and pairs -> split by item so no item is in two splits ->
train with grouped cross-validation -> evaluate on the held-out pairs -> HTML
report (PR curve, per-category PR-AUC, top features, caught and missed pairs).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from dupsearch.atomic import atomic_write_json
from dupsearch.models import DuplicateMatcher, MatcherConfig, binary_metrics, per_category_metrics


def _examples(listings: pd.DataFrame, pairs: pd.DataFrame, p: np.ndarray) -> pd.DataFrame:
    lst = listings.set_index("item_id")
    a, b = lst.loc[pairs["item_id_a"]], lst.loc[pairs["item_id_b"]]
    return pd.DataFrame({
        "category": a["category_l1"].to_numpy(),
        "title_a": a["title"].to_numpy(), "title_b": b["title"].to_numpy(),
        "price_a": a["price"].to_numpy(), "price_b": b["price"].to_numpy(),
        "label": pairs["label"].to_numpy(), "probability": p,
    })


def run_demo(out_dir: str | Path, n_listings: int = 6000, seed: int = 0, photos: bool = True,
             config: MatcherConfig | None = None, compare_cleaning: bool = False,
             compare_images: bool = False, dedup: bool = True, log=print) -> dict:
    from dupsearch.synth import generate_marketplace, split_pairs

    from dupsearch.artifacts import claim_dir, open_dir
    out = open_dir(out_dir, "demo")  # a new folder, an empty one or an earlier demo's
    for sub, kind in (("data", "dataset"), ("model", "model"), ("dedup", "dedup"), ("report", "report")):
        claim_dir(out / sub, kind, what="demo folder")
    open_dir(out / "data", "dataset", what="demo folder")  # photos are drawn into it first
    t0 = time.perf_counter()
    market = generate_marketplace(n_listings, seed=seed,
                                  photos_dir=(out / "data" / "photos") if photos else None)
    market.write(out / "data")
    train, valid, test = split_pairs(market, fractions=(0.6, 0.2, 0.2), seed=seed)
    train = pd.concat([train, valid], ignore_index=True)  # CV on train: no separate valid needed
    gen_s = time.perf_counter() - t0
    log(f"generated {len(market.listings):,} listings, {len(market.pairs):,} pairs in {gen_s:.1f} s "
        f"-> {out / 'data'}; train {len(train):,} / test {len(test):,} pairs")

    config = config or MatcherConfig()
    runs = {"cleaning on": config}
    if compare_cleaning:
        runs["cleaning off"] = replace(config, features=replace(config.features, clean_homoglyphs=False))
    if compare_images:
        if not (photos and config.features.image_encoders):
            raise ValueError("compare_images needs photos=True and image encoders")
        runs["images off"] = replace(config, features=replace(config.features, image_encoders=()))
    results = {}
    for name, cfg in runs.items():
        t0 = time.perf_counter()
        m = DuplicateMatcher(cfg).fit(market.listings, train, progress=True)
        p = m.predict_proba(market.listings, test)
        y = test["label"].to_numpy()
        met = binary_metrics(y, p, threshold=m.threshold_)
        met["train_seconds"] = time.perf_counter() - t0
        results[name] = (m, p, met)
        log(f"({name}) cross-validation PR-AUC {m.metrics_['cv']['oof']['pr_auc']:.4f} "
            f"({m.metrics_['cv']['grouping']}); held-out PR-AUC {met['pr_auc']:.4f}, "
            f"F1 {met['f1']:.4f} at threshold {m.threshold_:.3f}")

    m, p, met = results["cleaning on"]
    m.save(out / "model")
    y = test["label"].to_numpy()
    cats = market.listings.set_index("item_id")["category_l1"].reindex(test["item_id_a"]).to_numpy()
    pc = per_category_metrics(y, p, cats, threshold=m.threshold_)
    summary = {
        "n_listings": int(len(market.listings)), "n_pairs": int(len(market.pairs)),
        "n_train_pairs": int(len(train)), "n_test_pairs": int(len(test)), "seed": seed,
        "cv": m.metrics_["cv"], "test": met,
        "text_encoders": list(config.features.text_encoders),
        "image_encoders": list(config.features.image_encoders),
    }
    extra = ""
    if compare_cleaning:
        off = results["cleaning off"][2]
        summary["test_cleaning_off"] = off
        extra += (f"<h2>Homoglyph cleaning</h2><p>held-out PR-AUC with cleaning {met['pr_auc']:.4f}, "
                  f"without {off['pr_auc']:.4f}</p>")
    if compare_images:
        off = results["images off"][2]
        summary["test_images_off"] = off
        extra += (f"<h2>Photo features</h2><p>held-out PR-AUC with image encoders "
                  f"{', '.join(config.features.image_encoders)}: {met['pr_auc']:.4f}, "
                  f"without: {off['pr_auc']:.4f}</p>")
    if "encoders" in m.metrics_:
        summary["encoders"] = m.metrics_["encoders"]
    if dedup:
        summary["dedup"], html = _dedup_catalogue(market.listings, out, log)
        extra += html
    from dupsearch.report import matcher_report
    page = matcher_report(m, out / "report", market.listings, test, y, p, cats,
                          title="dupsearch demo: synthetic Russian marketplace",
                          data_name=f"{out / 'data'} (held-out pairs)",
                          examples=_examples(market.listings, test, p), extra_html=extra, seed=seed)
    summary["report"] = str(page)
    atomic_write_json(out / "summary.json", summary)
    return summary


def _dedup_catalogue(listings: pd.DataFrame, out: Path, log) -> tuple[dict, str]:
    """The trained model on the whole generated catalogue, as `dupsearch dedup` runs it:
    default blockers, scored parts, three clustering methods against the generator's groups."""
    from dupsearch.artifacts import remove_own
    from dupsearch.digests import file_sha256
    from dupsearch.engines.local import DedupConfig, DedupRun
    target = out / "dedup"
    if target.exists():  # a previous demo's run belongs to a previous model: what it wrote goes
        remove_own(target, "dedup")
    run = DedupRun(listings.reset_index(drop=True), out / "model", target, DedupConfig(),
                   input_digest=file_sha256(out / "data" / "listings.parquet"), progress=True,
                   log=lambda msg: None)
    rep = run.run()
    b, c = rep["blocking"], rep["clustering"]
    methods = {name: {"bcubed_f1": v["bcubed"]["f1"], "pairwise_f1": v["pairwise"]["f1"],
                      "groups": v["groups_of_2_or_more"]} for name, v in c["methods"].items()}
    log(f"dedup of the whole catalogue ({len(listings):,} listings): {b['n_candidates']:,} candidate pairs "
        f"({b['candidates_per_listing']:.1f} per listing), blocking recall {b['pair_recall']:.4f}; "
        f"B-cubed F1 connected components {methods['components']['bcubed_f1']:.4f}, CENTER "
        f"{methods['center']['bcubed_f1']:.4f}, average-link {methods['average']['bcubed_f1']:.4f} "
        f"in {rep['wall_seconds']:.0f} s -> {target}")
    rows = "".join(f"<tr><td>{name}</td><td>{v['groups']:,}</td><td>{v['bcubed_f1']:.4f}</td>"
                   f"<td>{v['pairwise_f1']:.4f}</td></tr>" for name, v in methods.items())
    html = (f"<h2>Catalogue dedup (<code>dupsearch dedup</code>)</h2><p>All {len(listings):,} listings: "
            f"{b['n_candidates']:,} candidate pairs from the default blockers "
            f"({', '.join(rep['blockers'])}), {b['candidates_per_listing']:.1f} per listing, pair recall "
            f"{b['pair_recall']:.4f} of the generator's duplicate pairs; scored and grouped at threshold "
            f"{c['threshold']:.3f} in {rep['wall_seconds']:.0f} s.</p><table><tr><th>method</th>"
            f"<th>groups</th><th>B-cubed F1</th><th>pairwise F1</th></tr>{rows}</table>")
    summary = {"n_candidates": b["n_candidates"], "candidates_per_listing": b["candidates_per_listing"],
               "pair_recall": b["pair_recall"], "threshold": c["threshold"], "methods": methods,
               "wall_seconds": rep["wall_seconds"], "out": str(target)}
    return summary, html
