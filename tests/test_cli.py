"""The `dupsearch` command line, run as a user runs it (a subprocess through main(), so error
handling and exit codes are the real ones)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

import dupsearch
from helpers import one_line as _one_line, run_cli
from conftest import FAST_CONFIG_JSON, Market
from dupsearch.io import read_table, write_table
from dupsearch.models import DuplicateMatcher


@pytest.fixture(scope="module")
def cli_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "fast.json"
    path.write_text(json.dumps(FAST_CONFIG_JSON))
    return path


@pytest.fixture(scope="module")
def trained(shared_market_files, cli_config, tmp_path_factory) -> Path:
    """`dupsearch train` with --valid (catboost), run once for the module."""
    f = shared_market_files
    out = tmp_path_factory.mktemp("cli") / "model"
    proc = run_cli("train", f["listings"], f["train"], "--valid", f["valid"], "--out", out,
                   "--config", cli_config, check_ok=True)
    assert "validation PR-AUC" in proc.stderr
    assert "model saved to" in proc.stderr
    return out


def test_train_with_valid_writes_model(trained, _market_once):
    manifest = json.loads((trained / "manifest.json").read_text())
    assert manifest["backend"] == "catboost" and manifest["n_models"] == 1
    m = DuplicateMatcher.load(trained)
    assert "valid" in m.metrics_ and "cv" not in m.metrics_
    assert m.metrics_["n_train_pairs"] == len(_market_once.train)
    assert m.threshold_ == m.metrics_["valid"]["best_f1_threshold"]


def test_train_without_valid_prints_cv_table(shared_market_files, tmp_path):
    f = shared_market_files
    cfg = tmp_path / "lgb.json"
    cfg.write_text(json.dumps({"gbdt": {"backend": "lightgbm", "max_iterations": 60, "threads": 1,
                                        "early_stopping_rounds": 20},
                               "n_models": 1, "cv_folds": 3}))
    out = tmp_path / "model_cv"
    proc = run_cli("train", f["listings"], f["train"], "--out", out, "--config", cfg, check_ok=True)
    err = _one_line(proc.stderr)
    assert "3-fold cross-validation" in err
    assert "out-of-fold" in err
    m = DuplicateMatcher.load(out)
    cv = m.metrics_["cv"]
    assert f"(groups: {cv['grouping']})" in err  # the grouping rule is reported
    assert len(cv["folds"]) == 3
    # Every fold's PR-AUC is in the table as printed.
    for fold in cv["folds"]:
        assert f"{fold['pr_auc']:.4f}" in err
    assert f"{cv['oof']['pr_auc']:.4f}" in err
    assert m.config.gbdt.backend == "lightgbm"
    assert m.threshold_ == cv["oof"]["best_f1_threshold"]


def test_predict_writes_probabilities(trained, shared_market_files, _market_once, tmp_path):
    f = shared_market_files
    out = tmp_path / "scored.parquet"
    proc = run_cli("predict", trained, f["listings"], f["test"], "--out", out, check_ok=True)
    assert str(out) in _one_line(proc.stderr)
    res = read_table(out)
    test = _market_once.test
    assert len(res) == len(test)
    assert {"item_id_a", "item_id_b", "probability", "is_duplicate"} <= set(res.columns)
    assert list(res["item_id_a"].astype(str)) == list(test["item_id_a"])
    m = DuplicateMatcher.load(trained)
    expected = m.predict_proba(_market_once.listings, test)
    np.testing.assert_allclose(res["probability"].to_numpy(float), expected, rtol=0, atol=1e-12)
    assert np.array_equal(res["is_duplicate"].to_numpy().astype(int),
                          (res["probability"].to_numpy() >= m.threshold_).astype(int))
    assert 0 < res["is_duplicate"].sum() < len(res)


def test_predict_unlabelled_csv(trained, shared_market_files, _market_once, tmp_path):
    pairs = tmp_path / "unlabelled.csv"
    write_table(_market_once.test.drop(columns="label").head(20), pairs)
    out = tmp_path / "scored.csv"
    run_cli("predict", trained, shared_market_files["listings"], pairs, "-o", out, check_ok=True)
    res = pd.read_csv(out)
    assert len(res) == 20 and "probability" in res and "label" not in res


def test_evaluate_json_and_report(trained, shared_market_files, _market_once, tmp_path):
    f = shared_market_files
    js, rep = tmp_path / "out" / "metrics.json", tmp_path / "report"
    proc = run_cli("evaluate", trained, f["listings"], f["test"], "--json", js, "--report", rep,
                   check_ok=True)
    met = json.loads(js.read_text())
    for key in ("pr_auc", "roc_auc", "best_f1", "best_f1_threshold", "per_category", "f1", "threshold"):
        assert key in met, key
    y = _market_once.test["label"].to_numpy()
    p = DuplicateMatcher.load(trained).predict_proba(_market_once.listings, _market_once.test)
    assert met["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert met["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert met["n_pairs"] == len(y) and met["n_positive"] == y.sum()
    cats = {r["category"]: r for r in met["per_category"]}
    assert set(cats) == {"electronics", "home", "clothing"}
    assert sum(r["n_pairs"] for r in cats.values()) == len(y)
    assert (rep / "report.html").is_file() and (rep / "pr_curve.png").is_file()
    assert (rep / "per_category.png").is_file() and (rep / "feature_importance.png").is_file()
    assert (rep / "pr_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The table on stdout shows the same numbers.
    assert f"{met['pr_auc']:.4f}" in proc.stdout
    assert "electronics" in proc.stdout


def test_evaluate_needs_labels(trained, shared_market_files, _market_once, tmp_path):
    pairs = tmp_path / "nolabel.csv"
    write_table(_market_once.test.drop(columns="label"), pairs)
    proc = run_cli("evaluate", trained, shared_market_files["listings"], pairs)
    assert proc.returncode != 0
    err = _one_line(proc.stderr)
    assert str(pairs) in err and "label" in err
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- bad input


def test_pairs_missing_column(shared_market_files, _market_once, tmp_path):
    pairs = tmp_path / "pairs.csv"
    write_table(_market_once.train.drop(columns="item_id_b"), pairs)
    proc = run_cli("train", shared_market_files["listings"], pairs, "--out", tmp_path / "m")
    assert proc.returncode != 0
    err = _one_line(proc.stderr)
    assert "error" in err.lower()
    assert str(pairs) in err and "item_id_b" in err
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "m").exists()


def test_pairs_unknown_item_id(trained, shared_market_files, _market_once, tmp_path):
    pairs = tmp_path / "pairs.csv"
    frame = _market_once.test.head(10).copy()
    frame.loc[2, "item_id_b"] = "no-such-item"  # data row 3
    write_table(frame, pairs)
    proc = run_cli("predict", trained, shared_market_files["listings"], pairs, "-o", tmp_path / "o.csv")
    assert proc.returncode != 0
    err = _one_line(proc.stderr)
    assert str(pairs) in err
    assert "row 3" in err and "item_id_b" in err and "no-such-item" in err
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o.csv").exists()


def test_model_dir_missing(shared_market_files, tmp_path):
    missing = tmp_path / "no_model_here"
    proc = run_cli("predict", missing, shared_market_files["listings"], shared_market_files["test"],
                   "-o", tmp_path / "o.csv")
    assert proc.returncode != 0
    err = _one_line(proc.stderr)
    assert str(missing) in err and "not a dupsearch model directory" in err
    assert "Traceback" not in proc.stderr


def test_listings_file_missing(trained, shared_market_files, tmp_path):
    missing = tmp_path / "nope.parquet"
    proc = run_cli("evaluate", trained, missing, shared_market_files["test"])
    assert proc.returncode != 0
    err = _one_line(proc.stderr)
    assert str(missing) in err and "not found" in err
    assert "Traceback" not in proc.stderr


def test_version():
    proc = run_cli("version", check_ok=True)
    lines = proc.stdout.splitlines()
    assert lines[0] == f"dupsearch {dupsearch.__version__}"
    assert any(line.startswith("catboost ") for line in lines)


def test_console_script_version():
    script = Path(sys.executable).parent / "dupsearch"
    if not script.exists():
        pytest.skip("console script not installed next to this interpreter")
    proc = subprocess.run([str(script), "version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert f"dupsearch {dupsearch.__version__}" in proc.stdout


# --------------------------------------------------------------------------- bench


def _serialize(row) -> str:
    attrs = row["attributes"]
    return (f"COL title VAL {row['title']} COL brand VAL {attrs.get('brand', '')} "
            f"COL description VAL {row['description']} COL price VAL {row['price']:.2f}")


def write_benchmark(m: Market, directory: Path, n: tuple[int, int, int] = (80, 40, 40)) -> Path:
    """A tiny benchmark folder in the Ditto format of shared/benchmarks: LEFT<TAB>RIGHT<TAB>LABEL."""
    directory.mkdir(parents=True)
    rec = {r["item_id"]: _serialize(r) for r in m.listings.to_dict(orient="records")}
    for name, pairs, k in (("train", m.train, n[0]), ("valid", m.valid, n[1]), ("test", m.test, n[2])):
        lines = [f"{rec[a]}\t{rec[b]}\t{int(lab)}"
                 for a, b, lab in pairs.head(k)[["item_id_a", "item_id_b", "label"]].itertuples(index=False)]
        (directory / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


def test_bench_writes_json(_market_once, tmp_path):
    ds = write_benchmark(_market_once, tmp_path / "tiny-bench")
    js = tmp_path / "res.json"
    proc = run_cli("bench", ds, "--json", js, "--n-models", "1", "--model-out", tmp_path / "bm",
                   "--report", tmp_path / "rep", check_ok=True)
    res = json.loads(js.read_text())
    for key in ("dataset", "f1", "pr_auc", "roc_auc", "threshold", "n_features", "train_seconds",
                "predict_seconds", "pairs_per_second_features"):
        assert key in res, key
    assert res["dataset"] == "tiny-bench"
    assert res["n_train"] == 80 and res["n_valid"] == 40 and res["n_test"] == 40
    assert 0 <= res["f1"] <= 100 and 0 <= res["pr_auc"] <= 1 and 0 <= res["roc_auc"] <= 1
    assert res["n_features"] > 10 and res["train_seconds"] >= 0 and res["predict_seconds"] >= 0
    assert res["pairs_per_second_features"] > 0
    assert res["train_size"] is None  # no train-small/medium files
    # The reported test PR-AUC is that of the saved model on the test split.
    from dupsearch.io import load_benchmark
    data = load_benchmark(ds)
    p = DuplicateMatcher.load(tmp_path / "bm").predict_proba(data.listings, data.test)
    assert res["pr_auc"] == pytest.approx(average_precision_score(data.test["label"], p), abs=1e-4)
    assert "tiny-bench" in proc.stdout
    assert (tmp_path / "rep" / "report.html").is_file() and (tmp_path / "rep" / "pr_curve.png").is_file()
    assert res["report"] == str(tmp_path / "rep" / "report.html")


def test_bench_missing_split(_market_once, tmp_path):
    ds = write_benchmark(_market_once, tmp_path / "broken")
    (ds / "valid.txt").unlink()
    proc = run_cli("bench", ds, "--n-models", "1")
    assert proc.returncode != 0
    err = _one_line(proc.stderr)
    assert "valid.txt" in err and str(ds) in err
    assert "Traceback" not in proc.stderr


def test_train_with_encoders_and_photos_then_predict(cli_config, tmp_path):
    """Encoders named on the command line are fitted, saved in the model directory and used
    again by `predict` in another process, giving the same probabilities."""
    data = tmp_path / "market"
    run_cli("generate", data, "-n", 400, "--seed", 3, "--photos", check_ok=True)
    out = tmp_path / "model"
    proc = run_cli("train", data / "listings.parquet", data / "train_pairs.parquet", "--valid",
                   data / "valid_pairs.parquet", "--out", out, "-t", "tfidf_svd?dim=16", "-t", "fasttext",
                   "-i", "phash", "-i", "colorhist", "--config", cli_config, check_ok=True, timeout=400)
    m = DuplicateMatcher.load(out)
    names = m.feature_names
    assert m.config.features.text_encoders == ("tfidf_svd?dim=16", "fasttext")
    assert any(n.startswith("embeddings.fasttext.align") for n in names)
    assert any(n.startswith("images.colorhist.") for n in names)
    assert sorted(p.name for p in (out / "encoders").iterdir()) == ["colorhist", "fasttext", "phash",
                                                                   "tfidf_svd_dim_16"]
    scored = tmp_path / "scored.parquet"
    run_cli("predict", out, data / "listings.parquet", data / "test_pairs.parquet", "-o", scored,
            check_ok=True, timeout=300)
    listings = read_table(data / "listings.parquet")
    test = read_table(data / "test_pairs.parquet")
    from dupsearch.io import read_listings, read_pairs
    listings, _ = read_listings(data / "listings.parquet")
    test, _ = read_pairs(data / "test_pairs.parquet", listing_ids=listings["item_id"])
    np.testing.assert_allclose(read_table(scored)["probability"].to_numpy(float),
                               m.predict_proba(listings, test), rtol=0, atol=1e-9)
    assert "encoders" in m.metrics_ and m.metrics_["encoders"]["fasttext"]["encoded"] > 0


def test_bad_encoder_specs_are_clear_errors(shared_market_files, tmp_path):
    f = shared_market_files
    proc = run_cli("train", f["listings"], f["train"], "--out", tmp_path / "m", "-t", "no_such_encoder")
    assert proc.returncode == 2 and "unknown text encoder 'no_such_encoder'" in _one_line(proc.stderr)
    proc = run_cli("train", f["listings"], f["train"], "--out", tmp_path / "m", "-t", f"st:{tmp_path}/absent")
    err = _one_line(proc.stderr)
    assert proc.returncode == 2 and f"{tmp_path}/absent" in err and "download" in err
    assert not (tmp_path / "m").exists()


def test_blend_without_validation_pairs_is_a_usage_error(shared_market_files, tmp_path):
    f = shared_market_files
    proc = run_cli("train", f["listings"], f["train"], "--out", tmp_path / "m", "--cross-encoder", "minilm",
                   "--cross-encoder-combine", "blend")
    err = _one_line(proc.stderr)
    assert proc.returncode == 2 and "--valid" in err and "Traceback" not in proc.stderr
    assert not (tmp_path / "m").exists()


def test_cross_encoder_precision_is_checked_and_reaches_the_recipe(shared_market_files, tmp_path):
    from dupsearch.cli.main import _stacking
    f = shared_market_files
    proc = run_cli("train", f["listings"], f["train"], "--out", tmp_path / "m", "--cross-encoder", "minilm",
                   "--cross-encoder-precision", "fp16")
    err = _one_line(proc.stderr)
    assert proc.returncode == 2 and "--cross-encoder-precision" in err and "Traceback" not in proc.stderr
    assert not (tmp_path / "m").exists()
    assert _stacking("minilm", None, 128, combine="blend", precision="fp32").cross_encoder["precision"] == "fp32"
    assert "precision" not in _stacking("minilm", None, 128, combine="blend").cross_encoder  # auto: the default


def test_both_fine_tunes_share_one_budget_and_options_win_over_it():
    from dupsearch.cli.main import _stacking
    from dupsearch.models.cross_encoder import RECIPE
    from dupsearch.models.stacking import SHARED_BUDGET
    alone_ce = _stacking("minilm", None, 128, combine="blend")
    alone_bi = _stacking(None, None, 128, combine="blend", bi_encoder="minilm")
    both = _stacking("minilm", None, 128, combine="blend", bi_encoder="minilm")
    # alone, each keeps its own budget; together, each gets its share, smaller than alone
    assert alone_ce.cross_encoder["budget_tokens"] == RECIPE["budget_tokens"]
    assert "max_steps" not in alone_bi.bi_encoder and "epochs" not in alone_bi.bi_encoder
    assert both.cross_encoder["budget_tokens"] == SHARED_BUDGET["cross_encoder"]["budget_tokens"] < RECIPE["budget_tokens"]
    assert {k: both.bi_encoder[k] for k in ("epochs", "max_steps")} == SHARED_BUDGET["bi_encoder"]
    assert both.cross_encoder["epochs"] == alone_ce.cross_encoder["epochs"]  # the epoch cap is not the budget
    given = _stacking("minilm", 2.0, 128, combine="blend", bi_encoder="minilm", bi_encoder_epochs=10.0,
                      cross_encoder_budget=1_800_000, bi_encoder_max_steps=300)
    assert (given.cross_encoder["budget_tokens"], given.cross_encoder["epochs"]) == (1_800_000, 2.0)
    assert (given.bi_encoder["epochs"], given.bi_encoder["max_steps"]) == (10.0, 300)


@pytest.mark.parametrize("option, value", [("--cross-encoder-budget", "1000"), ("--bi-encoder-max-steps", "10"),
                                           ("--bi-encoder-epochs", "2")])
def test_a_fine_tune_setting_without_its_model_is_a_usage_error(option, value, shared_market_files, tmp_path):
    f = shared_market_files
    proc = run_cli("train", f["listings"], f["train"], "--out", tmp_path / "m", option, value)
    err = _one_line(proc.stderr)
    assert proc.returncode == 2 and option in err and "Traceback" not in proc.stderr
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("command", [["generate", "OUT", "-n", "5"], ["demo", "--out", "OUT"]])
def test_negative_seed_is_a_usage_error_not_a_traceback(command, tmp_path):
    args = [str(tmp_path / "o") if a == "OUT" else a for a in command]
    proc = run_cli(*args, "--seed", "-1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--seed" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_train_online_feature_set(shared_market_files, cli_config, tmp_path):
    """--features online: the preset's families settings are the model's, its store holds far less
    per listing than the default model's, and it still separates duplicates; a config file that
    sets family settings of its own is refused (exit 2), not silently overridden."""
    from dupsearch import read_listings
    from dupsearch.config import FEATURE_PRESETS
    from dupsearch.models.metrics import binary_metrics
    f = shared_market_files
    out = tmp_path / "online"
    run_cli("train", f["listings"], f["train"], "--valid", f["valid"], "--out", out, "--config", cli_config,
            "--features", "online", "--no-report", check_ok=True)
    online = DuplicateMatcher.load(out)
    assert online.config.features.family_settings == FEATURE_PRESETS["online"]["family_settings"]
    names = online.feature_names
    assert not any(n.startswith(("strings.description.", "strings.attrs.", "corpus.text.", "corpus.all.")) for n in names)
    assert any(n.startswith("strings.title.") for n in names)
    default = tmp_path / "default"
    run_cli("train", f["listings"], f["train"], "--valid", f["valid"], "--out", default, "--config", cli_config,
            "--no-report", check_ok=True)
    listings, _ = read_listings(f["listings"])
    sizes = {}
    for name, path in (("online", out), ("default", default)):
        saved = DuplicateMatcher.load(path).build_store(listings).save(tmp_path / f"store-{name}")
        sizes[name] = sum(p.stat().st_size for p in Path(saved).rglob("*") if p.is_file())
    assert sizes["online"] < 0.6 * sizes["default"], sizes
    test = pd.read_parquet(f["test"])
    assert binary_metrics(test["label"].to_numpy(), online.predict_proba(listings, test))["pr_auc"] > 0.8
    both = tmp_path / "both.json"
    both.write_text(json.dumps({**FAST_CONFIG_JSON, "features": {"family_settings": {"sets": {"fields": ["title"]}}}}))
    proc = run_cli("train", f["listings"], f["train"], "--out", tmp_path / "no", "--config", both,
                   "--features", "online")
    assert proc.returncode == 2 and "family_settings" in proc.stderr and not (tmp_path / "no").exists()
