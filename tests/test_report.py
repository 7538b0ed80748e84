"""dupsearch.report.write_report: HTML page, metrics.json and PNG charts."""

from __future__ import annotations

import json
import struct

import numpy as np

from dupsearch.artifacts import MARKER
import pandas as pd
import pytest

from dupsearch.models.metrics import binary_metrics, per_category_metrics
from dupsearch.report import write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BASIC_PNGS = ("pr_curve.png", "roc_curve.png", "threshold.png")  # drawn whenever y has both classes


def assert_png(path, min_bytes: int = 3000) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) > min_bytes, (path, len(data))
    assert data[12:16] == b"IHDR"  # first chunk, as the format requires
    width, height = struct.unpack(">II", data[16:24])
    assert width > 100 and height > 100
    assert data.rstrip(b"\x00")[-8:-4] == b"IEND"  # complete file, not truncated
    return width, height


@pytest.fixture
def scores():
    rng = np.random.RandomState(0)
    n = 300
    y = (rng.rand(n) < 0.3).astype(int)
    p = np.clip(0.4 * y + rng.rand(n) * 0.6, 0, 1)
    cat = np.array(["electronics", "home", "clothing"])[rng.randint(3, size=n)]
    metrics = binary_metrics(y, p, threshold=0.5)
    pc = per_category_metrics(y, p, cat, threshold=0.5)
    imp = pd.Series(rng.rand(40), index=[f"feature_{i}" for i in range(40)])
    return y, p, metrics, pc, imp / imp.sum()


def test_full_report(scores, tmp_path):
    y, p, metrics, pc, imp = scores
    out = tmp_path / "rep" / "nested"
    page = write_report(out, y, p, metrics, pc, imp, title="My <eval>", data_name="test.parquet")
    assert page == out / "report.html"
    names = {f.name for f in out.iterdir()} - {MARKER}
    assert names == {"report.html", "metrics.json", *BASIC_PNGS, "per_category.png",
                     "feature_importance.png"}  # and no temp files left behind
    for png in (*BASIC_PNGS, "per_category.png", "feature_importance.png"):
        assert_png(out / png)
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>")
    for png in (*BASIC_PNGS, "per_category.png", "feature_importance.png"):
        assert f"src='{png}'" in html
    assert f"{metrics['pr_auc']:.4f}" in html
    assert "My &lt;eval&gt;" in html and "My <eval>" not in html
    assert "test.parquet" in html and "electronics" in html
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["data"] == "test.parquet"
    assert saved["pr_auc"] == pytest.approx(metrics["pr_auc"])
    assert saved["best_f1_threshold"] == pytest.approx(metrics["best_f1_threshold"])
    assert [r["category"] for r in saved["per_category"]] == list(pc["category"])


def test_charts_omitted_when_not_given(scores, tmp_path):
    y, p, metrics, _, _ = scores
    page = write_report(tmp_path, y, p, binary_metrics(y, p))  # no threshold, no extras
    names = ({f.name for f in tmp_path.iterdir()} - {MARKER})
    assert names == {"report.html", "metrics.json", *BASIC_PNGS}
    for png in BASIC_PNGS:
        assert_png(tmp_path / png)
    html = page.read_text(encoding="utf-8")
    assert "per_category.png" not in html and "feature_importance.png" not in html
    for png in ("cv_folds.png", "shap_summary.png", "ablation.png"):
        assert png not in html
    assert json.loads((tmp_path / "metrics.json").read_text())["per_category"] is None


def test_empty_per_category_and_importance_are_omitted(scores, tmp_path):
    y, p, metrics, pc, imp = scores
    page = write_report(tmp_path, y, p, metrics, pc.iloc[:0], imp.iloc[:0])
    assert ({f.name for f in tmp_path.iterdir()} - {MARKER}) == {"report.html", "metrics.json", *BASIC_PNGS}
    assert "No categories" in page.read_text(encoding="utf-8")


def test_only_importance(scores, tmp_path):
    y, p, metrics, _, imp = scores
    write_report(tmp_path, y, p, metrics, importance=imp)
    names = ({f.name for f in tmp_path.iterdir()} - {MARKER})
    assert "feature_importance.png" in names and "per_category.png" not in names
    assert_png(tmp_path / "feature_importance.png")


def test_report_overwrites_previous(scores, tmp_path):
    y, p, metrics, pc, imp = scores
    write_report(tmp_path, y, p, metrics, pc, imp, data_name="first")
    write_report(tmp_path, y, p, metrics, pc, imp, data_name="second")
    assert json.loads((tmp_path / "metrics.json").read_text())["data"] == "second"
    assert len([f for f in tmp_path.iterdir() if f.name != MARKER]) == 7


# ---------------------------------------------------------------- new sections

ALL_PNGS = {*BASIC_PNGS, "per_category.png", "feature_importance.png", "cv_folds.png",
            "shap_summary.png", "ablation.png"}


@pytest.fixture
def extras():
    rng = np.random.RandomState(1)
    cv = {"folds": [{"fold": k, "n_pairs": 100 + k, "pr_auc": 0.80 + 0.02 * k,
                     "roc_auc": 0.90 + 0.01 * k, "iterations": 50 * (k + 1)} for k in range(5)],
          "oof": {"n_pairs": 510, "pr_auc": 0.8312, "roc_auc": 0.93},
          "pr_auc_mean": 0.84, "pr_auc_std": 0.0283, "grouping": "connected <components>",
          "best_iterations": [50, 100, 150, 200, 250]}
    n = 2500  # more than the 2,000 rows drawn
    X = pd.DataFrame({f"num_{i}": rng.randn(n) for i in range(25)})
    X["<b>x</b>"] = rng.rand(n)
    X["price_$"] = rng.rand(n)  # a dollar sign must not turn on matplotlib's mathtext
    X["category"] = pd.Categorical(np.array(["a", "b"])[rng.randint(2, size=n)])
    X["text_col"] = "t"
    X.loc[X.index[:50], "num_0"] = np.nan
    sv = rng.randn(n, X.shape[1]) * np.linspace(2, 0.05, X.shape[1])
    ablation = pd.DataFrame({
        "variant": ["no_text", "no_price", "no_images", "no_stacking"],
        "what": ["text features", "price features", "image encoders", "<script>cross-encoder</script>"],
        "pr_auc": [0.80, 0.835, 0.845, 0.841],
        "delta": [-0.04, -0.005, 0.005, np.nan],
        "test_pr_auc": [0.79, 0.83, 0.84, 0.84],
        "seconds": [12.5, 10.0, 8.0, 30.0],
    })
    components = {"blend": "mean of 3 boosters", "weights": {"catboost": 0.7, "lightgbm": 0.3},
                  "per_category_models": ["electronics", "home"], "prior": 0.3, "note": "<i>x</i>"}
    return cv, (sv, X), ablation, components


def test_all_sections(scores, extras, tmp_path):
    y, p, metrics, pc, imp = scores
    cv, shap, ablation, components = extras
    imp = pd.concat([imp, pd.Series({"<b>x</b>": 0.5})])
    page = write_report(tmp_path, y, p, {**metrics, "cv": cv}, pc, imp, title="all", data_name="d",
                        cv=cv, shap=shap, ablation=ablation, components=components)
    names = ({f.name for f in tmp_path.iterdir()} - {MARKER})
    assert names == {"report.html", "metrics.json", *ALL_PNGS}  # no temp files left
    for png in ALL_PNGS:
        assert_png(tmp_path / png)
    html = page.read_text(encoding="utf-8")
    for png in ALL_PNGS:
        assert f"src='{png}'" in html
    # offline: nothing loaded from elsewhere
    assert "http://" not in html and "https://" not in html and "<script" not in html
    # cv folds table and summary
    assert "connected &lt;components&gt;" in html
    assert "0.8400 ± 0.0283" in html and "0.8312" in html
    for f in cv["folds"]:
        assert f"<td>{f['n_pairs']}</td>" in html and f"{f['pr_auc']:.4f}" in html
    # ablation rows, sorted by delta (most harmful removal first), escaped
    for v in ablation["variant"]:
        assert v in html
    assert html.index("no_text") < html.index("no_price") < html.index("no_images") < html.index("no_stacking")
    assert "&lt;script&gt;cross-encoder&lt;/script&gt;" in html
    # user strings escaped: feature name, component values
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert "&lt;i&gt;x&lt;/i&gt;" in html and "<i>x</i>" not in html
    assert "mean of 3 boosters" in html and "catboost" in html
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert [f["fold"] for f in saved["cv"]["folds"]] == list(range(5))
    assert saved["cv"]["pr_auc_mean"] == pytest.approx(0.84)
    assert [r["variant"] for r in saved["ablation"]] == ["no_text", "no_price", "no_images", "no_stacking"]
    assert saved["ablation"][-1]["delta"] is None or np.isnan(saved["ablation"][-1]["delta"])
    assert saved["components"]["weights"] == {"catboost": 0.7, "lightgbm": 0.3}
    top = list(saved["shap_mean_abs"])
    assert top[0] == "num_0"  # the largest SHAP scale


def test_threshold_table_matches_direct_count(scores):
    from dupsearch.report import threshold_table
    y, p, *_ = scores
    grid = np.array([0.0, 0.1, 0.37, 0.5, 0.9, 1.0])
    tt = threshold_table(y, p, grid)
    for t, r in zip(grid, tt.itertuples()):
        pred = p >= t
        tp = np.sum(pred & (y == 1))
        assert r.n_predicted == pred.sum()
        assert r.recall == pytest.approx(tp / y.sum())
        if pred.sum():
            assert r.precision == pytest.approx(tp / pred.sum())
        else:
            assert np.isnan(r.precision)
        assert r.f1 == pytest.approx(2 * tp / (pred.sum() + y.sum()))


@pytest.mark.parametrize("label", [0, 1])
def test_single_class_does_not_crash(scores, extras, tmp_path, label):
    _, p, _, _, imp = scores
    cv, shap, ablation, components = extras
    y = np.full(len(p), label)
    metrics = binary_metrics(y, p, threshold=0.5)
    pc = per_category_metrics(y, p, np.array(["a", "b"] * (len(p) // 2)), threshold=0.5)
    page = write_report(tmp_path, y, p, metrics, pc, imp, cv=cv, ablation=ablation,
                        examples=pd.DataFrame({"title_a": ["x"], "title_b": ["y"], "label": [label],
                                               "probability": [0.7]}))
    names = ({f.name for f in tmp_path.iterdir()} - {MARKER})
    assert not names & set(BASIC_PNGS)
    assert {"per_category.png", "feature_importance.png", "cv_folds.png", "ablation.png"} <= names
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")]
    html = page.read_text(encoding="utf-8")
    assert "only one class" in html
    for png in BASIC_PNGS:
        assert png not in html
    for png in names - {"report.html", "metrics.json"}:
        assert_png(tmp_path / png)
        assert f"src='{png}'" in html
    assert json.loads((tmp_path / "metrics.json").read_text())["report_notes"]


def test_cv_without_usable_folds_and_empty_ablation(scores, tmp_path):
    y, p, metrics, _, _ = scores
    cv = {"folds": [{"fold": 0, "n_pairs": 10, "pr_auc": float("nan"), "roc_auc": float("nan"),
                     "iterations": 3}], "oof": {}, "grouping": "item"}
    page = write_report(tmp_path, y, p, metrics, cv=cv, ablation=pd.DataFrame(columns=["variant", "delta"]),
                        components={})
    names = ({f.name for f in tmp_path.iterdir()} - {MARKER})
    assert names == {"report.html", "metrics.json", *BASIC_PNGS}
    html = page.read_text(encoding="utf-8")
    assert "Cross-validation folds" in html and "n/a" in html
    json.loads((tmp_path / "metrics.json").read_text())


def test_shap_shape_mismatch_is_an_error(scores, tmp_path):
    y, p, metrics, _, _ = scores
    X = pd.DataFrame({"a": np.arange(5.0), "b": np.arange(5.0)})
    with pytest.raises(ValueError, match="SHAP"):
        write_report(tmp_path, y, p, metrics, shap=(np.zeros((5, 3)), X))
    assert not list(tmp_path.iterdir())  # checked before anything is written


def test_shap_from_a_real_model(tmp_path):
    from dupsearch.models.gbdt import GBDTConfig, GBDTModel
    rng = np.random.RandomState(2)
    n = 400
    X = pd.DataFrame({"a": rng.rand(n), "b": rng.rand(n), "noise": rng.rand(n),
                      "cat": np.array(["u", "v"])[rng.randint(2, size=n)]})
    y = (X["a"] + 0.3 * rng.rand(n) > 0.8).astype(int).to_numpy()
    m = GBDTModel(GBDTConfig(backend="lightgbm", max_iterations=40, depth=3, threads=1),
                  categorical=["cat"]).fit(X, y)
    p = m.predict_proba(X)
    write_report(tmp_path, y, p, binary_metrics(y, p, threshold=0.5), shap=(m.shap_values(X), X))
    assert_png(tmp_path / "shap_summary.png")
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert list(saved["shap_mean_abs"])[0] == "a"


def test_clustering_curves_are_drawn_with_the_chosen_thresholds(scores, tmp_path):
    from dupsearch.cluster.tuning import choose_cluster_thresholds
    from tests.test_cluster_tuning import _planted
    y, p = scores[0], scores[1]
    a, b, s, truth = _planted()
    clustering = {**choose_cluster_thresholds(a, b, s, truth), "graph": "planted pairs", "scores": "given",
                  "truth": "cluster column"}
    write_report(tmp_path, y, p, {"threshold": 0.5}, clustering=clustering)
    assert_png(tmp_path / "clustering.png")
    html = (tmp_path / "report.html").read_text()
    assert "src='clustering.png'" in html and "default method" in html
    skipped = tmp_path / "skipped"
    write_report(skipped, y, p, {"threshold": 0.5}, clustering={"skipped": "3 true groups; need 10"})
    assert "Clustering thresholds were not chosen: 3 true groups; need 10" in (skipped / "report.html").read_text()
