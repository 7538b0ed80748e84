"""The default model shipped in the package: plain files, loads on its own (no training data
anywhere), and `dupsearch dedup` without --model uses it and finds the groups of a generated
market of a seed it never saw."""

from __future__ import annotations

import json

import pandas as pd

from dupsearch.models import DuplicateMatcher
from dupsearch.models.default import DEFAULT_MODEL_DIR, default_model_path
from dupsearch.models.metrics import binary_metrics
from tests.helpers import run_cli

PLAIN = {".json", ".npz", ".npy", ".cbm", ".txt", ".csv"}


def test_the_default_model_is_plain_files_of_a_few_mb_and_loads_alone():
    path = default_model_path()
    files = [p for p in path.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} <= PLAIN, {p.suffix for p in files}  # no pickle, no code
    assert sum(p.stat().st_size for p in files) < 15e6
    m = DuplicateMatcher.load(path)  # every file checked against its digest
    assert set(m.cluster_thresholds_) == {"components", "center", "average"}
    assert m.cluster_method_ in m.cluster_thresholds_
    # what it was trained on is named, and is not needed to load it
    assert m.metrics_["clustering"]["truth"] == "cluster column"
    assert not any("market" in str(p) for p in files)


def test_dedup_without_a_model_uses_the_default_and_finds_groups(tmp_path):
    data = tmp_path / "data"
    run_cli("generate", data, "-n", 1500, "--seed", 5, "--no-photos", check_ok=True)
    out = tmp_path / "dd"
    proc = run_cli("dedup", data / "listings.parquet", "--out", out, check_ok=True)
    assert "default model" in proc.stdout + proc.stderr
    rep = json.loads((out / "report.json").read_text())["clustering"]
    m = DuplicateMatcher.load(DEFAULT_MODEL_DIR)
    assert rep["thresholds"] == m.cluster_thresholds_ and rep["method"] == m.cluster_method_
    assert rep["methods"][rep["method"]]["bcubed"]["f1"] > 0.85
    assert (out / "groups.html").is_file()
    listings = pd.read_parquet(data / "listings.parquet")
    test = pd.read_parquet(data / "test_pairs.parquet")
    p = m.predict_proba(listings, test)
    assert binary_metrics(test["label"].to_numpy(int), p)["pr_auc"] > 0.75
