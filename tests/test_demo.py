"""Smoke run of `dupsearch demo` on a small generated marketplace."""

from __future__ import annotations

import json

from dupsearch.demo import run_demo
from dupsearch.models import GBDTConfig, MatcherConfig


def test_demo_small_end_to_end(tmp_path):
    cfg = MatcherConfig(gbdt=GBDTConfig(max_iterations=150, early_stopping_rounds=30, threads=2),
                        n_models=1, cv_folds=3)
    lines = []
    res = run_demo(tmp_path / "demo", n_listings=800, seed=3, config=cfg, log=lines.append)
    assert (tmp_path / "demo" / "data" / "listings.parquet").is_file()
    assert (tmp_path / "demo" / "model" / "manifest.json").is_file()
    assert (tmp_path / "demo" / "model" / "homoglyph_cleaner").is_dir()
    page = (tmp_path / "demo" / "report" / "report.html").read_text()
    for section in ("Caught duplicates", "Missed duplicates", "False alarms", "pr_curve.png",
                    "Per top-level category"):
        assert section in page
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    t = summary["test"]
    # The matcher must clearly beat the positive rate on held-out pairs.
    assert t["pr_auc"] > t["n_positive"] / t["n_pairs"] + 0.2
    assert len(summary["cv"]["folds"]) == 3
    assert any("held-out PR-AUC" in line for line in lines)
    # photos are drawn by default and compared by the default photo encoders
    assert summary["image_encoders"] == ["phash", "dhash", "colorhist"]
    assert (tmp_path / "demo" / "model" / "encoders" / "colorhist" / "encoder.json").is_file()
    assert set(summary["encoders"]) == {"phash", "dhash", "colorhist"}
    # the trained model then dedups the whole catalogue: the default blockers find most planted
    # duplicate pairs, and the methods that do not chain group at least as well as components
    d = summary["dedup"]
    assert d["pair_recall"] > 0.9 and d["candidates_per_listing"] < 30
    assert set(d["methods"]) == {"components", "center", "average"}
    assert d["methods"]["average"]["bcubed_f1"] > 0.6
    assert d["methods"]["average"]["bcubed_f1"] >= d["methods"]["components"]["bcubed_f1"] - 0.02
    assert (tmp_path / "demo" / "dedup" / "clusters.parquet").is_file()
    assert "Catalogue dedup" in page
    assert any("dedup of the whole catalogue" in line for line in lines)


def test_demo_compares_photo_features(tmp_path):
    cfg = MatcherConfig(gbdt=GBDTConfig(max_iterations=150, early_stopping_rounds=30, threads=2),
                        n_models=1, cv_folds=3)
    res = run_demo(tmp_path / "demo", n_listings=600, seed=5, config=cfg, compare_images=True,
                   dedup=False, log=lambda *_: None)
    # on this marketplace duplicates re-use their item's photos: the photo features must help
    assert res["test"]["pr_auc"] > res["test_images_off"]["pr_auc"]
    assert "Photo features" in (tmp_path / "demo" / "report" / "report.html").read_text()
