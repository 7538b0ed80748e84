"""dupsearch.report.write_report: HTML page, metrics.json and PNG charts."""

from __future__ import annotations

import json
import struct

import numpy as np
import pandas as pd
import pytest

from dupsearch.models.metrics import binary_metrics, per_category_metrics
from dupsearch.report import write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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
    names = {f.name for f in out.iterdir()}
    assert names == {"report.html", "metrics.json", "pr_curve.png", "per_category.png",
                     "feature_importance.png"}  # and no temp files left behind
    for png in ("pr_curve.png", "per_category.png", "feature_importance.png"):
        assert_png(out / png)
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>")
    for png in ("pr_curve.png", "per_category.png", "feature_importance.png"):
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
    names = {f.name for f in tmp_path.iterdir()}
    assert names == {"report.html", "metrics.json", "pr_curve.png"}
    assert_png(tmp_path / "pr_curve.png")
    html = page.read_text(encoding="utf-8")
    assert "per_category.png" not in html and "feature_importance.png" not in html
    assert json.loads((tmp_path / "metrics.json").read_text())["per_category"] is None


def test_empty_per_category_and_importance_are_omitted(scores, tmp_path):
    y, p, metrics, pc, imp = scores
    write_report(tmp_path, y, p, metrics, pc.iloc[:0], imp.iloc[:0])
    assert {f.name for f in tmp_path.iterdir()} == {"report.html", "metrics.json", "pr_curve.png"}


def test_only_importance(scores, tmp_path):
    y, p, metrics, _, imp = scores
    write_report(tmp_path, y, p, metrics, importance=imp)
    names = {f.name for f in tmp_path.iterdir()}
    assert "feature_importance.png" in names and "per_category.png" not in names
    assert_png(tmp_path / "feature_importance.png")


def test_report_overwrites_previous(scores, tmp_path):
    y, p, metrics, pc, imp = scores
    write_report(tmp_path, y, p, metrics, pc, imp, data_name="first")
    write_report(tmp_path, y, p, metrics, pc, imp, data_name="second")
    assert json.loads((tmp_path / "metrics.json").read_text())["data"] == "second"
    assert len(list(tmp_path.iterdir())) == 5
