"""Clustering thresholds chosen for groups: the curves, the choice, and what train and dedup do
with them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dupsearch.cluster import average_link_clusters, bcubed_metrics, center_clusters, pairwise_metrics
from dupsearch.cluster.graph import _build_graph, cluster_graph
from dupsearch.cluster.tuning import GRID, _f1s, choose_cluster_thresholds, truth_groups
from tests.helpers import run_cli, small_market_and_model


def _planted(seed: int = 0, n_groups: int = 60):
    """Groups of 3 whose inside pairs score 0.7-0.9, each joined to a neighbour group by pairs
    scoring 0.45-0.6: any cut in (0.6, 0.7] gives back exactly the true groups."""
    rng = np.random.default_rng(seed)
    a, b, s = [], [], []
    for g in range(n_groups):
        m = [f"g{g}_{k}" for k in range(3)]
        for i in range(3):
            for j in range(i + 1, 3):
                a.append(m[i]); b.append(m[j]); s.append(rng.uniform(0.7, 0.9))
        nxt = f"g{(g + 1) % n_groups}_0"
        for k in range(2):
            a.append(m[k]); b.append(nxt); s.append(rng.uniform(0.45, 0.6))
    ids = sorted({*a, *b})
    truth = pd.Series([i.split("_")[0] for i in ids], index=ids)
    return np.array(a), np.array(b), np.array(s), truth


def test_the_chosen_thresholds_recover_planted_groups_and_the_curves_say_why():
    a, b, s, truth = _planted()
    rep = choose_cluster_thresholds(a, b, s, truth)
    for m in ("components", "center", "average"):
        curve = rep["curves"][m]
        assert len(curve["threshold"]) == len(GRID) == len(curve["bcubed_f1"]) == len(curve["pairwise_f1"])
        assert rep["best"][m]["bcubed_f1"] == max(curve["bcubed_f1"])
        assert curve["threshold"][curve["bcubed_f1"].index(max(curve["bcubed_f1"]))] <= rep["thresholds"][m]
    # components: only a cut between the cross pairs and the inside pairs gives the groups back
    assert 0.6 <= rep["thresholds"]["components"] <= 0.7
    assert rep["best"]["components"]["bcubed_f1"] == pytest.approx(1.0)
    assert rep["curves"]["components"]["bcubed_f1"][GRID.tolist().index(0.4)] < 0.5  # all chained
    # average-link: unscored pairs count as 0, so lower cuts already keep groups apart
    assert rep["best"]["average"]["bcubed_f1"] == pytest.approx(1.0)
    assert rep["method"] in ("components", "average")  # CENTER splits some triangles


def test_fast_f1s_equal_the_cluster_metrics():
    rng = np.random.default_rng(3)
    for _ in range(20):
        n = int(rng.integers(2, 200))
        pred = rng.integers(0, max(1, n // 3), n)
        truth = rng.integers(0, max(1, n // 2), n)
        ids = [str(i) for i in range(n)]
        b, pw = _f1s(pd.factorize(pred)[0], pd.factorize(truth)[0])
        assert b == pytest.approx(bcubed_metrics(pd.Series(pred, index=ids), pd.Series(truth, index=ids))["f1"])
        assert pw == pytest.approx(pairwise_metrics(pd.Series(pred, index=ids), pd.Series(truth, index=ids))["f1"])


def test_each_method_clusters_at_its_own_threshold():
    a, b, s, _ = _planted(seed=1)
    graph = _build_graph(a, b, s, 0.0)
    labels = cluster_graph(graph, {"components": 0.3, "center": 0.65, "average": 0.5})
    pd.testing.assert_series_equal(labels["center"], center_clusters(a, b, s, 0.65), check_names=False)
    pd.testing.assert_series_equal(labels["average"], average_link_clusters(a, b, s, 0.5), check_names=False)
    assert labels["components"].nunique() == 1  # at 0.3 the cross pairs chain every group
    with pytest.raises(ValueError, match="no threshold for"):
        cluster_graph(graph, {"center": 0.5})


def test_truth_from_labelled_duplicates_is_their_connected_groups():
    truth, source = truth_groups(["a", "b", "c", "x"], ["b", "c", "d", "y"], [1, 1, 0, 0])
    assert "labelled duplicates" in source
    assert truth["a"] == truth["b"] == truth["c"] != truth["d"]
    assert truth["x"] != truth["y"]
    clusters = pd.Series({"a": 1, "b": 1, "c": 2})
    truth, source = truth_groups(["a", "b", "c", "x"], ["b", "c", "d", "y"], [1, 1, 0, 0], clusters)
    assert source == "cluster column"
    assert truth["a"] == truth["b"] != truth["c"] and truth["d"] != truth["x"]  # unlabelled: own group


def test_too_few_groups_choose_nothing_and_say_why():
    rep = choose_cluster_thresholds(["a", "c"], ["b", "d"], [0.9, 0.8], pd.Series({"a": 1, "b": 1, "c": 2, "d": 2}))
    assert "thresholds" not in rep and "need 10" in rep["skipped"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("tuning")
    data, model, config = small_market_and_model(root, 1500, seed=2)
    return {"root": root, "data": data, "model": model, "config": config}


def test_train_records_thresholds_chosen_on_training_data_only(trained, tmp_path):
    data, model = trained["data"], trained["model"]
    manifest = json.loads((model / "manifest.json").read_text())
    metrics = json.loads((model / "metrics.json").read_text())["clustering"]
    assert manifest["cluster_thresholds"] == metrics["thresholds"]
    assert manifest["cluster_method"] == metrics["method"]
    assert metrics["truth"] == "cluster column" and "candidates" in metrics["graph"]
    # Scrambling the true groups of listings no training pair names (valid/test listings)
    # changes nothing: the choice never looked at them.
    listings = pd.read_parquet(data / "listings.parquet")
    train = pd.read_parquet(data / "train_pairs.parquet")
    named = set(train["item_id_a"].astype(str)) | set(train["item_id_b"].astype(str))
    other = ~listings["item_id"].astype(str).isin(named)
    assert other.sum() > 100
    listings.loc[other, "cluster_id"] = np.random.default_rng(0).permutation(listings.loc[other, "cluster_id"].to_numpy())
    listings.to_parquet(tmp_path / "scrambled.parquet")
    run_cli("train", tmp_path / "scrambled.parquet", data / "train_pairs.parquet", "--out", tmp_path / "m2",
            "--config", trained["config"], "--folds", 2, "--no-report", check_ok=True)
    again = json.loads((tmp_path / "m2" / "manifest.json").read_text())
    assert again["cluster_thresholds"] == manifest["cluster_thresholds"]


def test_dedup_clusters_each_method_at_the_models_threshold(trained, tmp_path):
    from dupsearch.models import DuplicateMatcher
    data, model = trained["data"], trained["model"]
    m = DuplicateMatcher.load(model)
    out = tmp_path / "dd"
    run_cli("dedup", data / "listings.parquet", "--model", model, "--out", out, check_ok=True)
    rep = json.loads((out / "report.json").read_text())["clustering"]
    assert rep["thresholds"] == m.cluster_thresholds_ and rep["method"] == m.cluster_method_
    assert rep["threshold"] == pytest.approx(m.threshold_)
    scores = pd.concat([pd.read_parquet(p) for p in sorted((out / "scores").glob("part-*.parquet"))])
    clusters = pd.read_parquet(out / "clusters.parquet").set_index("item_id")
    for method, fn in (("average", average_link_clusters), ("center", center_clusters)):
        t = m.cluster_thresholds_[method]
        assert rep["methods"][method]["threshold"] == t
        want = fn(scores["item_id_a"], scores["item_id_b"], scores["score"], t, all_ids=clusters.index)
        got = clusters[f"cluster_{method}"]
        assert (pd.crosstab(want.reindex(got.index), got) > 0).sum(axis=1).eq(1).all()  # same partition
        assert want.nunique() == got.nunique()
    assert (clusters["cluster"] == clusters[f"cluster_{m.cluster_method_}"]).all()
    dup = pd.read_parquet(out / "duplicates.parquet")
    assert dup["score"].min() >= m.threshold_ - 1e-6  # pairs: the pair threshold
    # --threshold sets every method's threshold (the saved scores are reused)
    run_cli("dedup", data / "listings.parquet", "--model", model, "--out", out, "--threshold", 0.8, check_ok=True)
    rep = json.loads((out / "report.json").read_text())["clustering"]
    assert rep["thresholds"] == {"components": 0.8, "center": 0.8, "average": 0.8} and rep["source"] == "--threshold"


def test_thresholds_tuned_on_a_deduplicated_catalogue(trained, tmp_path):
    from dupsearch.cluster.tuning import choose_cluster_thresholds
    data, model = trained["data"], trained["model"]
    run = tmp_path / "dd"
    run_cli("dedup", data / "listings.parquet", "--model", model, "--out", run, check_ok=True)
    out = tmp_path / "tuned"
    run_cli("thresholds", model, "--run", run, "--listings", data / "listings.parquet", "--out", out, check_ok=True)
    from dupsearch.models import DuplicateMatcher
    tuned, first = DuplicateMatcher.load(out), DuplicateMatcher.load(model)
    scores = pd.read_parquet(run / "scores", columns=["item_id_a", "item_id_b", "score"])
    listings = pd.read_parquet(data / "listings.parquet")
    ids = listings["item_id"].astype(str)
    want = choose_cluster_thresholds(scores["item_id_a"], scores["item_id_b"], scores["score"],
                                     pd.Series(listings["cluster_id"].astype(str).to_numpy(), index=ids), all_ids=ids)
    assert tuned.cluster_thresholds_ == want["thresholds"] and tuned.cluster_method_ == want["method"]
    assert tuned.metrics_["clustering_catalogue"]["before"]["thresholds"] == first.cluster_thresholds_
    assert tuned.threshold_ == first.threshold_  # the pair threshold stays
    # the tuned model is another model: the run was not scored by it
    p = run_cli("thresholds", out, "--run", run, "--listings", data / "listings.parquet", "--out", tmp_path / "t2")
    assert p.returncode == 2 and "scored by another model" in p.stderr + p.stdout
    # no truth column: one line, exit 2
    listings.drop(columns=["cluster_id"]).to_parquet(tmp_path / "nolabels.parquet")
    p = run_cli("thresholds", model, "--run", run, "--listings", tmp_path / "nolabels.parquet", "--out", tmp_path / "t3")
    assert p.returncode == 2 and "no column 'cluster_id'" in p.stderr + p.stdout and "Traceback" not in p.stderr
