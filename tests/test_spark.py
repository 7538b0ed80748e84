"""The Spark engine (dupsearch.engines.spark) against the local engine, with real Spark in local
mode (`local[2]`, Java 17): on a 5,000-listing generated market the candidates are the local
engine's (exact ANN search in every partition), the scores agree within 1e-6 and the clusters
are identical; a job killed mid-way and rerun gives the same output; bad input is one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import one_line, run_cli, small_market_and_model

from dupsearch.engines.local import DedupConfig, run_dedup

N_LISTINGS = 5000
MASTER = "local[2]"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The market, its model, and one finished dedup of each engine (read-only)."""
    root = tmp_path_factory.mktemp("spark")
    data, model, _ = small_market_and_model(root, N_LISTINGS, seed=5)
    listings = data / "listings.parquet"
    local, spark = root / "local", root / "spark"
    run_dedup(listings, model, local, DedupConfig(workers=2), log=lambda *_: None, progress=False)
    run_dedup(listings, model, spark, DedupConfig(), log=lambda *_: None, progress=False,
              engine="spark", spark_master=MASTER)
    return {"root": root, "listings": listings, "model": model, "local": local, "spark": spark}


def _read(out: Path, name: str, by: list[str]) -> pd.DataFrame:
    """An output of either engine (a file or a folder of parts) sorted by ``by``."""
    return pd.read_parquet(out / name).sort_values(by, ignore_index=True)


def _scores(out: Path) -> pd.DataFrame:
    path = out / "scores"
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return frame.sort_values(["row_a", "row_b"], ignore_index=True)


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def test_candidates_equal_the_local_engines(runs):
    local = _read(runs["local"], "candidates.parquet", ["row_a", "row_b"])
    spark = _read(runs["spark"], "candidates.parquet", ["row_a", "row_b"])
    cols = ["item_id_a", "item_id_b", "row_a", "row_b", "blockers"]
    assert len(local) > 5 * N_LISTINGS  # every blocker proposed pairs
    pd.testing.assert_frame_equal(spark[cols], local[cols], check_dtype=False)
    lrep, srep = _report(runs["local"])["blocking"], _report(runs["spark"])["blocking"]
    for key in ("n_candidates", "n_true_pairs", "n_true_found", "pair_recall"):
        assert srep[key] == lrep[key], key
    for name, figures in lrep["blockers"].items():
        for key in ("n_pairs", "n_blocks", "skipped_blocks", "largest_block", "partitions",
                    "largest_partition", "listings_without_vector"):
            if key in figures:
                assert srep["blockers"][name][key] == figures[key], (name, key)


def test_scores_agree_within_1e6(runs):
    local, spark = _scores(runs["local"]), _scores(runs["spark"])
    assert len(local) == len(spark)
    assert (local[["row_a", "row_b"]].to_numpy() == spark[["row_a", "row_b"]].to_numpy()).all()
    diff = np.abs(local["score"].to_numpy(np.float64) - spark["score"].to_numpy(np.float64))
    assert diff.max() <= 1e-6, diff.max()
    assert (local["blockers"].to_numpy() == spark["blockers"].to_numpy()).all()


def test_clusters_and_duplicates_are_identical(runs):
    local = _read(runs["local"], "clusters.parquet", ["item_id"])
    spark = _read(runs["spark"], "clusters.parquet", ["item_id"])
    assert list(spark.columns) == list(local.columns)
    pd.testing.assert_frame_equal(spark, local, check_dtype=False)
    assert local["cluster_average"].value_counts().max() >= 2  # groups were found
    ld = _read(runs["local"], "duplicates.parquet", ["item_id_a", "item_id_b"])
    sd = _read(runs["spark"], "duplicates.parquet", ["item_id_a", "item_id_b"])
    assert len(ld) > 0
    assert (ld[["item_id_a", "item_id_b"]].to_numpy() == sd[["item_id_a", "item_id_b"]].to_numpy()).all()
    lc, sc = _report(runs["local"])["clustering"], _report(runs["spark"])["clustering"]
    assert sc["threshold"] == lc["threshold"] and sc["pairs_above_threshold"] == lc["pairs_above_threshold"]
    for method, m in lc["methods"].items():
        s = sc["methods"][method]
        for key in ("clusters", "groups_of_2_or_more", "listings_in_groups", "largest"):
            assert s[key] == m[key], (method, key)
        for kind in ("bcubed", "pairwise"):
            for key in ("precision", "recall", "f1"):
                assert s[kind][key] == pytest.approx(m[kind][key], abs=1e-12), (method, kind, key)
    assert sc["methods"]["average"]["report"] == lc["methods"]["average"]["report"]
    assert sc["thresholds"] == lc["thresholds"] and sc["method"] == lc["method"]


def _page_data(out: Path) -> dict:
    import json
    text = (out / "groups.html").read_text(encoding="utf-8")
    start = text.index('<script id="data" type="application/json">') + len('<script id="data" type="application/json">')
    return json.loads(text[start:text.index("</script>", start)].replace("<\\/", "</"))


def test_groups_page_shows_the_same_groups(runs):
    local, spark = _page_data(runs["local"]), _page_data(runs["spark"])
    assert local["groups_total"] > 10
    for key in ("groups_total", "groups_shown", "listings_in_groups", "listings", "method", "threshold"):
        assert spark[key] == local[key], key
    # (scores agree within 1e-6, so near-ties may order pairs or groups otherwise: compare sorted)
    strip = lambda gs: sorted((g["group"], g["size"], g["all_ids"], sorted(p[:2] + p[3:] for p in g["pairs"]))  # noqa: E731
                              for g in gs)
    assert strip(spark["groups"]) == strip(local["groups"])
    assert sorted(c["id"] for c in spark["cards"]) == sorted(c["id"] for c in local["cards"])


def test_report_has_wall_time_and_peak_memory_per_stage(runs):
    rep = _report(runs["spark"])
    assert rep["engine"] == "spark" and rep["master"] == MASTER and rep["listings"] == N_LISTINGS
    for stage in ("listings", "candidates", "scoring", "clustering"):
        assert rep["stages"][stage]["seconds"] > 0
        # the JVM and the Python workers are counted: more than this Python process alone
        assert rep["stages"][stage]["peak_memory_mb"] > 200


def test_oversized_components_fall_back_and_are_counted_as_locally(runs, tmp_path):
    cfg = dict(max_component=3, threshold=0.05)
    local, spark = tmp_path / "local", tmp_path / "spark"
    # both reuse nothing of the finished runs: the threshold and the limit are clustering settings
    import shutil
    shutil.copytree(runs["local"], local)
    shutil.copytree(runs["spark"], spark)
    run_dedup(runs["listings"], runs["model"], local, DedupConfig(workers=2, **cfg), log=lambda *_: None,
              progress=False)
    run_dedup(runs["listings"], runs["model"], spark, DedupConfig(**cfg), log=lambda *_: None,
              progress=False, engine="spark", spark_master=MASTER)
    lr = _report(local)["clustering"]["methods"]["average"]["report"]
    assert lr["fallback_components"] > 0  # the case this test is about happened
    assert _report(spark)["clustering"]["methods"]["average"]["report"] == lr
    pd.testing.assert_frame_equal(_read(spark, "clusters.parquet", ["item_id"]),
                                  _read(local, "clusters.parquet", ["item_id"]), check_dtype=False)


def test_a_killed_job_rerun_gives_the_same_output(runs, tmp_path):
    out = tmp_path / "killed"
    env = {**os.environ, "NO_COLOR": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "dupsearch.cli.main", "dedup", str(runs["listings"]), "--model", str(runs["model"]),
           "--out", str(out), "--engine", "spark", "--spark-master", MASTER]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    mark = out / "candidates.parquet" / "_dupsearch.json"

    def blocked() -> bool:  # the candidates stage is whole: its parquet and its figures
        try:
            return "blocking" in json.loads(mark.read_text())
        except (OSError, ValueError):
            return False
    deadline = time.monotonic() + 600
    while not blocked() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert blocked(), "the job did not get to its candidates"
    time.sleep(1)  # into the scoring stage
    os.killpg(proc.pid, signal.SIGKILL)  # the driver, its JVM and the Python workers
    proc.wait()
    assert not (out / "clusters.parquet").exists()
    done = run_cli("dedup", runs["listings"], "--model", runs["model"], "--out", out, "--engine", "spark",
                   "--spark-master", MASTER, check_ok=True, timeout=900)
    assert "candidates: reusing" in done.stdout + done.stderr  # the finished stages were kept
    assert _report(out)["resumed"] is True
    assert not list(out.glob(".*.spark-tmp"))
    pd.testing.assert_frame_equal(_read(out, "clusters.parquet", ["item_id"]),
                                  _read(runs["spark"], "clusters.parquet", ["item_id"]))
    a, b = _scores(out), _scores(runs["spark"])
    assert (a[["row_a", "row_b"]].to_numpy() == b[["row_a", "row_b"]].to_numpy()).all()
    assert np.array_equal(a["score"].to_numpy(), b["score"].to_numpy())


def test_csv_input_is_one_line_naming_the_file(runs, tmp_path):
    csv = tmp_path / "listings.csv"
    pd.read_parquet(runs["listings"]).head(50).to_csv(csv, index=False)
    proc = run_cli("dedup", csv, "--model", runs["model"], "--out", tmp_path / "out", "--engine", "spark",
                   "--spark-master", MASTER)
    line = one_line(proc.stderr)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("error:") == 1
    assert "listings.csv" in line and "Parquet" in line


def test_duplicate_item_id_is_one_line_naming_rows(runs, tmp_path):
    frame = pd.read_parquet(runs["listings"]).head(300)
    frame.loc[250, "item_id"] = frame.loc[10, "item_id"]
    bad = tmp_path / "dup.parquet"
    frame.to_parquet(bad)
    proc = run_cli("dedup", bad, "--model", runs["model"], "--out", tmp_path / "out", "--engine", "spark",
                   "--spark-master", MASTER)
    line = one_line(proc.stderr)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("error:") == 1
    assert "duplicate item_id" in line and "rows 11 and 251" in line and "dup.parquet" in line


def test_spark_master_without_spark_engine_is_a_usage_error(runs, tmp_path):
    proc = run_cli("dedup", runs["listings"], "--model", runs["model"], "--out", tmp_path / "out",
                   "--spark-master", MASTER)
    assert proc.returncode == 2 and "--spark-master" in proc.stderr + proc.stdout


def test_a_bad_row_found_by_an_executor_is_one_line_naming_file_row_and_column(runs, tmp_path):
    frame = pd.read_parquet(runs["listings"]).head(300)
    frame["attributes"] = frame["attributes"].map(lambda v: json.dumps(dict(v)) if v is not None else None)
    frame.loc[141, "attributes"] = "{not json"
    bad = tmp_path / "bad.parquet"
    frame.to_parquet(bad, row_group_size=100)  # the bad row is read by the second row group's task
    proc = run_cli("dedup", bad, "--model", runs["model"], "--out", tmp_path / "out", "--engine", "spark",
                   "--spark-master", MASTER)
    line = one_line(proc.stderr)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("error:") == 1
    assert "bad.parquet" in line and "row 142" in line and "'attributes'" in line
