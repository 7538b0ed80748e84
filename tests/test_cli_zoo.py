"""The model-zoo command-line surface (issue #6): `train` with the combination options and its
report, `evaluate --report`, `ablate`, and the ablation runner behind it.

The commands run as a user runs them (a subprocess through main(), so exit codes and error
messages are the real ones), with one LightGBM booster per run and 3 folds.

The per-category runs use a market from `dupsearch generate` (seven categories, a `group` column
whose groups cut across categories). The conftest market would not do for them: its pair graph
falls apart into one component per category, so 3-fold grouped CV holds out whole categories and
no per-category model ever scores a held-out pair."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import one_line as _one_line, run_cli
from conftest import fast_config
from dupsearch.bench.ablation import COMPONENT, FAMILY, format_table, run_ablation
from dupsearch.io import read_listings, read_pairs, read_table, write_table
from dupsearch.models import DuplicateMatcher, MatcherConfig

PNG = b"\x89PNG\r\n\x1a\n"
GBDT = {"backend": "lightgbm", "max_iterations": 100, "early_stopping_rounds": 20, "threads": 1}
# Floors low enough that the larger categories of the generated market get their own models.
ZOO_CONFIG = {"gbdt": GBDT, "n_models": 1, "cv_folds": 3,
              "ensemble": {"min_category_pairs": 50, "min_category_positives": 5}}


def _write_json(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


def _assert_pngs(folder: Path, names: list[str]) -> str:
    """Each chart exists as a PNG and report.html shows it; returns the page."""
    page = (folder / "report.html").read_text(encoding="utf-8")
    for name in names:
        assert (folder / name).is_file(), f"{name} missing from {sorted(p.name for p in folder.iterdir())}"
        assert (folder / name).read_bytes()[:8] == PNG, name
        assert f"src='{name}'" in page, name
    return page


def _load(files: dict, pairs_key: str = "train"):
    lst, _ = read_listings(files["listings"])
    prs, _ = read_pairs(files[pairs_key], listing_ids=lst["item_id"])
    return lst, prs


@pytest.fixture(scope="module")
def zoo_config(tmp_path_factory) -> Path:
    return _write_json(tmp_path_factory.mktemp("cfg") / "zoo.json", ZOO_CONFIG)


@pytest.fixture(scope="module")
def zoo_market(tmp_path_factory) -> dict[str, Path]:
    """`dupsearch generate`: 1000 listings, ~790 training and ~260 test pairs."""
    d = tmp_path_factory.mktemp("gen") / "market"
    run_cli("generate", d, "-n", 1000, "--seed", 1, check_ok=True)
    return {"listings": d / "listings.parquet", "train": d / "train_pairs.parquet",
            "test": d / "test_pairs.parquet"}


def _categories(files: dict, pairs_key: str) -> set[str]:
    lst, prs = _load(files, pairs_key)
    return set(lst.set_index("item_id")["category_l1"].reindex(prs["item_id_a"].astype(str)))


@pytest.fixture(scope="module")
def zoo_model(zoo_market, zoo_config, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """`dupsearch train --per-category --calibrate platt` (cross-validated, report on by
    default), run once for the module. The per-category switch comes from the command line
    only: the config file just lowers the category floors."""
    f = zoo_market
    out = tmp_path_factory.mktemp("zoo") / "model"
    proc = run_cli("train", f["listings"], f["train"], "--out", out, "--config", zoo_config,
                   "--per-category", "--calibrate", "platt", check_ok=True)
    return out, proc


# --------------------------------------------------------------------------- train


def test_train_per_category_calibrated_with_report_then_predict(zoo_model, zoo_market, tmp_path):
    out, proc = zoo_model
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["ensemble"]["per_category"] is True and cfg["ensemble"]["calibrate"] == "platt"
    assert cfg["ensemble"]["min_category_pairs"] == 50  # the --config file still counts
    assert cfg["gbdt"]["backend"] == "lightgbm" and cfg["n_models"] == 1

    ens = json.loads((out / "ensemble.json").read_text())
    assert "category" in ens["parts"]
    assert ens["combiner"]["calibrator"] is not None
    cats = json.loads((out / "category" / "categories.json").read_text())
    assert len(cats) >= 1
    assert {c["category"] for c in cats} <= _categories(zoo_market, "train")
    for c in cats:
        assert c["n_pairs"] >= 50 and list((out / "category").glob(f"{c['folder']}_m0.*"))

    met = json.loads((out / "metrics.json").read_text())
    e = met["ensemble"]
    assert set(e["weights"]) == {"general", "category"}
    assert sum(e["weights"].values()) == pytest.approx(1.0, abs=1e-9)
    assert all(w >= 0 for w in e["weights"].values())
    assert e["calibrate"] == "platt"
    assert set(e["category_models"]) == {c["category"] for c in cats}
    # The per-category component scored held-out pairs itself (not only the general model's
    # fallback scores), so its weight was learned on scores of its own.
    assert e["component_pr_auc"]["category"] != e["component_pr_auc"]["general"]
    assert "components (alone, PR-AUC)" in _one_line(proc.stderr)

    # The report is written by default, on the out-of-fold scores.
    rep = out / "report"
    page = _assert_pngs(rep, ["pr_curve.png", "roc_curve.png", "threshold.png", "shap_summary.png",
                              "cv_folds.png", "per_category.png", "feature_importance.png"])
    assert "Model components" in page and "out-of-fold" in page
    assert str(rep / "report.html") in _one_line(proc.stderr)
    rmet = json.loads((rep / "metrics.json").read_text())
    assert rmet["pr_auc"] == pytest.approx(met["cv"]["oof"]["pr_auc"])

    # predict with the ensemble model: one probability in [0, 1] per input pair, the same as
    # the library's.
    f = zoo_market
    scored = tmp_path / "scored.parquet"
    run_cli("predict", out, f["listings"], f["test"], "-o", scored, check_ok=True)
    res = read_table(scored)
    lst, test = _load(f, "test")
    assert len(res) == len(test)
    p = res["probability"].to_numpy(float)
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    assert p.std() > 0
    m = DuplicateMatcher.load(out)
    np.testing.assert_allclose(p, m.predict_proba(lst, test), rtol=0, atol=1e-12)
    assert np.array_equal(res["is_duplicate"].to_numpy().astype(int), (p >= m.threshold_).astype(int))


def test_train_no_report(shared_market_files, tmp_path):
    f = shared_market_files
    cfg = _write_json(tmp_path / "cfg.json", {"gbdt": GBDT, "n_models": 1, "cv_folds": 3})
    out = tmp_path / "model"
    proc = run_cli("train", f["listings"], f["train"], "--out", out, "--config", cfg, "--no-report",
                   check_ok=True)
    assert (out / "manifest.json").is_file()
    assert not (out / "report").exists()
    assert "report ->" not in proc.stderr


def test_train_enlarge_with_cross_encoder_refused_before_training(shared_market_files, tmp_path):
    f = shared_market_files
    out = tmp_path / "model"
    proc = run_cli("train", f["listings"], f["train"], "--out", out, "--enlarge", "--cross-encoder", "minilm",
                   "--n-models", 1, "--folds", 3, "--backend", "lightgbm", timeout=60)
    assert proc.returncode == 2, proc.stderr
    err = _one_line(proc.stderr)
    assert "enlarge" in err and "stacking" in err
    assert "Traceback" not in proc.stderr
    assert not out.exists()


# --------------------------------------------------------------------------- evaluate


def test_evaluate_writes_full_report(zoo_model, zoo_market, tmp_path):
    out, _ = zoo_model
    f = zoo_market
    rep, js = tmp_path / "eval_report", tmp_path / "eval.json"
    proc = run_cli("evaluate", out, f["listings"], f["test"], "--report", rep, "--json", js, check_ok=True)
    page = _assert_pngs(rep, ["pr_curve.png", "roc_curve.png", "threshold.png", "shap_summary.png",
                              "per_category.png", "feature_importance.png", "cv_folds.png"])
    assert "Model components" in page  # the model's ensemble is described
    met = json.loads(js.read_text())
    rmet = json.loads((rep / "metrics.json").read_text())
    assert rmet["pr_auc"] == pytest.approx(met["pr_auc"])  # the report scores the evaluated pairs
    assert rmet["n_pairs"] == len(read_table(f["test"]))
    assert {r["category"] for r in rmet["per_category"]} == _categories(f, "test")
    assert "shap_mean_abs" in rmet and len(rmet["shap_mean_abs"]) > 0
    assert str(rep / "report.html") in _one_line(proc.stderr)


# --------------------------------------------------------------------------- ablate


def test_ablate_cli_json_and_report(zoo_market, zoo_config, tmp_path):
    f = zoo_market
    js, rep = tmp_path / "abl.json", tmp_path / "abl_report"
    proc = run_cli("ablate", f["listings"], f["train"], "--folds", 3, "--backend", "lightgbm",
                   "--config", zoo_config, "--json", js, "--report", rep, check_ok=True)
    res = json.loads(js.read_text())
    assert res["folds"] == 3 and res["n_pairs"] == len(read_table(f["train"]))
    rows = res["rows"]
    by_section: dict[str, list[dict]] = {}
    for r in rows:
        by_section.setdefault(r["section"], []).append(r)
    assert set(by_section) == {FAMILY, COMPONENT}
    for section, rs in by_section.items():
        assert rs[0]["delta"] is None, section  # the reference row
        for r in rs[1:]:
            assert r["delta"] is not None, r
            assert r["delta"] == pytest.approx(r["pr_auc"] - rs[0]["pr_auc"], abs=1e-12)
            assert r["reference"] == pytest.approx(rs[0]["pr_auc"])
        for r in rs:
            assert 0 <= r["pr_auc"] <= 1

    # Every feature family that made columns is dropped in turn, and nothing else is.
    lst, prs = _load(f)
    base = DuplicateMatcher(MatcherConfig.from_dict(ZOO_CONFIG))
    X, *_ = base.training_features(lst, prs)
    families = [fam for fam, cols in base.pipeline_.family_columns_.items() if set(cols) & set(X.columns)]
    assert len(families) >= 3
    variants = [r["variant"] for r in by_section[FAMILY]]
    assert variants == ["all families (general model)"] + [f"- {fam}" for fam in families]
    for r, fam in zip(by_section[FAMILY][1:], families):
        assert r["n_features"] == X.shape[1] - len(set(base.pipeline_.family_columns_[fam]) & set(X.columns))

    comp = [r["variant"] for r in by_section[COMPONENT]]
    assert comp[0].startswith("full system: general + per-category")
    assert "no category qualifies" not in comp[0]  # the config's floors let categories in
    for v in ("- per-category models", "- prior-shift alignment", "- learned blend (equal weights)",
              "+ per-category calibration (platt)", "+ per-category calibration (isotonic)",
              "+ transitive enlargement"):
        assert v in comp, (v, comp)

    page = (rep / "report.html").read_text(encoding="utf-8")
    assert "Ablation table" in page
    assert "+ transitive enlargement" in page and "- prior-shift alignment" in page
    assert f"- {families[0]}" in page
    _assert_pngs(rep, ["ablation.png", "pr_curve.png", "roc_curve.png"])
    rmet = json.loads((rep / "metrics.json").read_text())
    assert len(rmet["ablation"]) == len(rows)
    full = by_section[COMPONENT][0]
    assert rmet["pr_auc"] == pytest.approx(full["pr_auc"])  # the report shows the full system's OOF scores
    assert "transitive enlargement" in proc.stdout


def test_ablate_needs_data(shared_market_files, tmp_path):
    proc = run_cli("ablate", timeout=60)
    assert proc.returncode != 0
    err = _one_line(proc.stderr)
    assert "LISTINGS" in err and "PAIRS" in err and "--benchmark" in err
    assert "Traceback" not in proc.stderr

    proc = run_cli("ablate", shared_market_files["listings"], timeout=60)  # PAIRS missing
    assert proc.returncode != 0 and "PAIRS" in _one_line(proc.stderr)

    bench_dir = tmp_path / "bench"
    bench_dir.mkdir()
    proc = run_cli("ablate", shared_market_files["listings"], shared_market_files["train"],
                   "--benchmark", bench_dir, timeout=60)
    assert proc.returncode != 0
    err = _one_line(proc.stderr)
    assert "not both" in err and "--benchmark" in err
    assert "Traceback" not in proc.stderr


def test_ablate_pairs_without_labels(shared_market_files, _market_once, tmp_path):
    pairs = tmp_path / "unlabelled.csv"
    write_table(_market_once.train.drop(columns="label"), pairs)
    js = tmp_path / "abl.json"
    proc = run_cli("ablate", shared_market_files["listings"], pairs, "--folds", 3, "--backend", "lightgbm",
                   "--json", js, timeout=60)
    assert proc.returncode == 2
    # The command's own check, before any features: one error line naming the file and the column.
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert str(pairs) in errors[0] and "`label`" in errors[0]
    assert "Traceback" not in proc.stderr
    assert not js.exists()


def test_ablate_enlarge_config_with_cross_encoder_refused(shared_market_files, tmp_path):
    """A config that enlarges plus --cross-encoder is refused as a usage error, as in `train`."""
    cfg = _write_json(tmp_path / "cfg.json", {"gbdt": GBDT, "n_models": 1, "cv_folds": 3, "enlarge": {}})
    js = tmp_path / "abl.json"
    proc = run_cli("ablate", shared_market_files["listings"], shared_market_files["train"], "--config", cfg,
                   "--cross-encoder", "minilm", "--json", js, timeout=60)
    assert proc.returncode == 2, proc.stderr
    err = _one_line(proc.stderr)
    assert "enlarge" in err and "stacking" in err
    assert "Traceback" not in proc.stderr
    assert not js.exists()


# --------------------------------------------------------------------------- library


def test_run_ablation_general_only_blend_is_neutral(market):
    """With the default category floors no category of the tiny market qualifies: the full
    system is the general model alone, so blending it (learned or equal weights) changes nothing."""
    cfg = fast_config("lightgbm", cv_folds=3)
    lines: list[str] = []
    table, info = run_ablation(market.listings, market.train, cfg, families=False, components=True,
                               log=lines.append)
    assert set(table["section"]) == {COMPONENT}
    full, rest = table.iloc[0], table.iloc[1:]
    assert "no category qualifies" in full["variant"] and pd.isna(full["delta"])
    assert any("per-category models" in s for s in info["skipped"])
    assert "- per-category models" not in set(table["variant"])
    blend = table[table["variant"] == "- learned blend (equal weights)"]
    assert len(blend) == 1
    assert blend["delta"].iloc[0] == 0.0
    assert rest["delta"].notna().all()
    # The full system's out-of-fold scores are the general model's own.
    assert len(info["full_oof"]) == len(market.train) and np.isfinite(info["full_oof"]).all()
    assert any("+ transitive enlargement" in s for s in lines)

    text = format_table(table)
    out = text.splitlines()
    assert len(out) == len(table) + 2
    assert out[0].startswith("| section | variant |") and set(out[1]) <= set("|-:")
    assert out[2].split("|")[4].strip() == ""  # the reference row has no change
    for line, r in zip(out[2:], table.itertuples()):
        assert r.variant in line and f"{r.pr_auc:.4f}" in line
