"""Catalogue-scale dedup (dupsearch.engines.local, `dupsearch dedup`): outputs, resumability after a
kill, reuse of finished work, and refusal of mismatched restarts and bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import FAST_CONFIG_JSON
from helpers import one_line, run_cli

from dupsearch.engines.local import DedupConfig, RunMismatchError, run_dedup

N_LISTINGS = 1500
# Cheaper than the defaults (one text embedding instead of two) on the 1,500-listing runs; the
# 200-listing runs use the defaults.
BLOCK_SPECS = ["key:seller_id+category_l2", "ann:title?k=10&partition=category_l2+city"]
BLOCKS = [x for spec in BLOCK_SPECS for x in ("--block", spec)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """A generated 1,500-listing market, a fast model trained on it, 200- and 120-listing subsets."""
    root = tmp_path_factory.mktemp("dedup")
    data, model = root / "data", root / "model"
    run_cli("generate", data, "-n", N_LISTINGS, "--seed", 1, check_ok=True)
    cfg = root / "fast.json"
    cfg.write_text(json.dumps(FAST_CONFIG_JSON))
    run_cli("train", data / "listings.parquet", data / "pairs.parquet", "--out", model, "--config", cfg,
            "--no-report", check_ok=True)
    small = root / "small.parquet"
    pd.read_parquet(data / "listings.parquet").head(200).to_parquet(small)
    tiny = root / "tiny.parquet"
    pd.read_parquet(data / "listings.parquet").head(120).to_parquet(tiny)
    return {"root": root, "listings": data / "listings.parquet", "model": model, "small": small,
            "tiny": tiny}


@pytest.fixture(scope="module")
def finished(trained) -> Path:
    """A finished CLI dedup of the whole market with --batch-size 300 (read-only: copy it to change it)."""
    out = trained["root"] / "finished"
    run_cli("dedup", trained["listings"], "--model", trained["model"], "--out", out, "--batch-size", 300,
            *BLOCKS, check_ok=True)
    return out


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def _scores(out: Path) -> pd.DataFrame:
    parts = sorted((out / "scores").glob("part-*.parquet"))
    frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    return frame.sort_values(["item_id_a", "item_id_b"], ignore_index=True)


def _clusters(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "clusters.parquet").sort_values("item_id", ignore_index=True)


# ---------------------------------------------------------------------------- 1. end to end

def test_dedup_end_to_end(trained, finished):
    out = finished
    for name in ("manifest.json", "candidates.parquet", "clusters.parquet", "report.json", "groups.html"):
        assert (out / name).is_file(), name
    listings = pd.read_parquet(trained["listings"])
    clusters = pd.read_parquet(out / "clusters.parquet")
    assert list(clusters.columns) == ["item_id", "cluster_components", "cluster_center", "cluster_average", "cluster"]
    method = _report(out)["clustering"]["method"]
    assert (clusters["cluster"] == clusters[f"cluster_{method}"]).all()  # the default method's groups
    assert len(clusters) == len(listings) == N_LISTINGS
    assert set(clusters["item_id"]) == set(listings["item_id"].astype(str))
    # duplicates were found: some clusters hold more than one listing
    assert clusters["cluster_components"].value_counts().max() >= 2

    n_cands = pq.read_metadata(out / "candidates.parquet").num_rows
    parts = sorted((out / "scores").glob("part-*.parquet"))
    assert len(parts) == -(-n_cands // 300) >= 3
    rows = [pq.read_metadata(p).num_rows for p in parts]
    assert all(r == 300 for r in rows[:-1]) and 1 <= rows[-1] <= 300
    assert sum(rows) == n_cands
    scores = _scores(out)
    assert {"item_id_a", "item_id_b", "blockers", "score"} <= set(scores.columns)
    assert scores["score"].between(0, 1).all()
    assert not scores.duplicated(["item_id_a", "item_id_b"]).any()
    # duplicates.parquet: exactly the scored pairs at or above the run's threshold
    threshold = _report(out)["clustering"]["threshold"]
    dups = pd.read_parquet(out / "duplicates.parquet").sort_values(["item_id_a", "item_id_b"], ignore_index=True)
    expected = scores[scores["score"] >= threshold][["item_id_a", "item_id_b", "score"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(dups, expected, check_dtype=False)
    assert len(dups) > 0

    rep = _report(out)
    assert rep["resumed"] is False and rep["listings"] == N_LISTINGS
    assert rep["blockers"] == BLOCK_SPECS == json.loads((out / "manifest.json").read_text())["blockers"]
    assert set(rep["blocking"]["blockers"]) == {"seller_id+category_l2", "ann_title"}
    assert 0.8 <= rep["blocking"]["pair_recall"] <= 1.0
    assert rep["blocking"]["n_candidates"] == n_cands
    for method in ("components", "center", "average"):
        f1 = rep["clustering"]["methods"][method]["bcubed"]["f1"]
        assert 0.5 < f1 <= 1.0, (method, f1)
    assert rep["peak_memory_mb"] > 0 and rep["wall_seconds"] > 0
    assert rep["scoring"] == {**rep["scoring"], "parts": len(parts), "parts_reused": 0, "batch_size": 300}


# ---------------------------------------------------------------------------- 2. kill and restart

def _popen_dedup(listings, model, out, batch_size):
    env = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen([sys.executable, "-m", "dupsearch.cli.main", "dedup", str(listings),
                             "--model", str(model), "--out", str(out), "--batch-size", str(batch_size)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def test_killed_and_restarted_run_equals_uninterrupted(trained, tmp_path):
    listings, model = trained["small"], trained["model"]
    for batch_size in (20, 8, 3):
        out = tmp_path / f"killed{batch_size}"
        proc = _popen_dedup(listings, model, out, batch_size)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                if len(list((out / "scores").glob("part-*.parquet"))) >= 2:
                    break
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
        if not (out / "clusters.parquet").exists():
            break  # really interrupted
    else:
        pytest.fail("the dedup run finished before it could be killed, even with --batch-size 3")
    n_parts_killed = len(list((out / "scores").glob("part-*.parquet")))
    print(f"killed with --batch-size {batch_size} after {n_parts_killed} parts")
    assert n_parts_killed >= 2
    assert not (out / "report.json").exists()

    run_cli("dedup", listings, "--model", model, "--out", out, "--batch-size", batch_size, check_ok=True)
    # the uninterrupted run through the library call (the CLI's function, in this process)
    fresh = tmp_path / "fresh"
    logged = []
    fresh_rep = run_dedup(listings, model, fresh, DedupConfig(batch_size=batch_size), progress=False,
                          log=logged.append)
    assert logged and fresh_rep["resumed"] is False and fresh_rep["scoring"]["parts_reused"] == 0

    rep = _report(out)
    assert rep["resumed"] is True
    assert rep["scoring"]["parts_reused"] >= n_parts_killed > 0
    assert rep["scoring"]["parts_reused"] < rep["scoring"]["parts"]
    assert rep["scoring"]["parts"] >= 4  # several parts: the kill landed mid-scoring
    print(f"restart reused {rep['scoring']['parts_reused']} of {rep['scoring']['parts']} parts")
    assert not list((out / "scores").glob(".part-*.tmp"))
    assert sorted(p.name for p in (out / "scores").iterdir()) == sorted(p.name for p in (fresh / "scores").iterdir())
    pd.testing.assert_frame_equal(_scores(out), _scores(fresh))
    pd.testing.assert_frame_equal(_clusters(out), _clusters(fresh))
    assert (pd.read_parquet(out / "candidates.parquet")
            .equals(pd.read_parquet(fresh / "candidates.parquet")))


# ---------------------------------------------------------------------------- 3. rerun of a finished run

def test_rerun_of_finished_run_reuses_everything(trained, finished, tmp_path):
    out = _copy(finished, tmp_path / "out")
    before = {p.name: p.stat().st_mtime_ns for p in (out / "scores").iterdir()}
    run_cli("dedup", trained["listings"], "--model", trained["model"], "--out", out, "--batch-size", 300,
            *BLOCKS, check_ok=True)
    rep = _report(out)
    assert rep["resumed"] is True
    assert rep["scoring"]["parts_reused"] == rep["scoring"]["parts"] == len(before)
    assert "pairs_scored" not in rep["scoring"]
    assert {p.name: p.stat().st_mtime_ns for p in (out / "scores").iterdir()} == before  # not rewritten
    pd.testing.assert_frame_equal(_clusters(out), _clusters(finished))
    assert rep["blocking"]["pair_recall"] == _report(finished)["blocking"]["pair_recall"]


def test_rerun_with_another_threshold_reclusters_from_the_saved_scores(trained, finished, tmp_path):
    out = _copy(finished, tmp_path / "out")
    before = {p.name: p.stat().st_mtime_ns for p in (out / "scores").iterdir()}
    old = _report(finished)["clustering"]
    run_cli("dedup", trained["listings"], "--model", trained["model"], "--out", out, "--batch-size", 300,
            "--threshold", 0.95, *BLOCKS, check_ok=True)
    rep = _report(out)
    assert rep["scoring"]["parts_reused"] == rep["scoring"]["parts"]  # nothing re-scored
    assert {p.name: p.stat().st_mtime_ns for p in (out / "scores").iterdir()} == before
    new = rep["clustering"]
    assert new["threshold"] == 0.95 != old["threshold"]
    assert new["pairs_above_threshold"] < old["pairs_above_threshold"]
    scores = _scores(out)
    assert new["pairs_above_threshold"] == int((scores["score"] >= 0.95).sum())
    dups = pd.read_parquet(out / "duplicates.parquet")
    assert len(dups) == new["pairs_above_threshold"] and (dups["score"] >= 0.95).all()
    # a stricter threshold can only split groups
    assert (new["methods"]["components"]["groups_of_2_or_more"]
            != old["methods"]["components"]["groups_of_2_or_more"]
            or new["methods"]["components"]["listings_in_groups"] < old["methods"]["components"]["listings_in_groups"])
    assert new["methods"]["components"]["listings_in_groups"] <= old["methods"]["components"]["listings_in_groups"]


def test_deleted_part_is_rescored_alone(trained, finished, tmp_path):
    out = _copy(finished, tmp_path / "out")
    victim = out / "scores" / "part-00002.parquet"
    victim.unlink()
    (out / "clusters.parquet").unlink()
    run_cli("dedup", trained["listings"], "--model", trained["model"], "--out", out, "--batch-size", 300,
            *BLOCKS, check_ok=True)
    rep = _report(out)
    assert rep["scoring"]["parts_reused"] == rep["scoring"]["parts"] - 1
    assert rep["scoring"]["pairs_scored"] == 300
    assert victim.exists()
    pd.testing.assert_frame_equal(pd.read_parquet(victim),
                                  pd.read_parquet(finished / "scores" / "part-00002.parquet"))
    pd.testing.assert_frame_equal(_clusters(out), _clusters(finished))


def test_a_part_of_other_pairs_is_rescored_not_trusted_by_its_row_count(trained, finished, tmp_path):
    # issue #16: a part with the right number of rows but other pairs (another run's, or a copy)
    out = _copy(finished, tmp_path / "out")
    shutil.copy(out / "scores" / "part-00001.parquet", out / "scores" / "part-00003.parquet")
    (out / "clusters.parquet").unlink()
    proc = run_cli("dedup", trained["listings"], "--model", trained["model"], "--out", out, "--batch-size", 300,
                   *BLOCKS, check_ok=True)
    assert "1 saved parts do not match" in one_line(proc.stderr)
    rep = _report(out)
    assert rep["scoring"]["parts_rescored"] == 1 and rep["scoring"]["pairs_scored"] == 300
    pd.testing.assert_frame_equal(pd.read_parquet(out / "scores" / "part-00003.parquet"),
                                  pd.read_parquet(finished / "scores" / "part-00003.parquet"))
    pd.testing.assert_frame_equal(_clusters(out), _clusters(finished))


def test_candidates_of_another_run_are_made_again(trained, finished, tmp_path):
    out = _copy(finished, tmp_path / "out")
    t = pq.read_table(out / "candidates.parquet")
    meta = dict(t.schema.metadata)
    meta[b"dupsearch_run"] = b"0" * 64
    pq.write_table(t.replace_schema_metadata(meta), out / "candidates.parquet")
    (out / "clusters.parquet").unlink()
    proc = run_cli("dedup", trained["listings"], "--model", trained["model"], "--out", out, "--batch-size", 300,
                   *BLOCKS, check_ok=True)
    assert "is not this run's" in one_line(proc.stderr)
    pd.testing.assert_frame_equal(_clusters(out), _clusters(finished))


def test_a_second_run_into_a_folder_being_written_is_refused(trained, finished, tmp_path):
    from dupsearch.engines.local import _run_lock
    out = _copy(finished, tmp_path / "out")
    before = {p.name: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != ".lock"}
    with _run_lock(out):  # as a run in progress holds it
        proc = run_cli("dedup", trained["listings"], "--model", trained["model"], "--out", out,
                       "--batch-size", 300, *BLOCKS)
    _assert_one_line_error(proc, "being written by another dupsearch dedup", f"pid {os.getpid()}")
    after = {p.name: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before


# ---------------------------------------------------------------------------- 4. bad input

def _assert_one_line_error(proc, *needles):
    """Exit 2 and one stderr line 'error: ...' holding every needle (no traceback)."""
    assert proc.returncode == 2, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def test_mismatched_restart_is_refused_and_restart_starts_over(trained, finished, tmp_path):
    out = _copy(finished, tmp_path / "out")
    manifest = (out / "manifest.json").read_text()
    proc = run_cli("dedup", trained["listings"], "--model", trained["model"], "--out", out,
                   "--batch-size", 200, *BLOCKS)
    msg = _assert_one_line_error(proc, str(out), "batch_size", "--restart")
    assert "error:" in msg
    proc = run_cli("dedup", trained["small"], "--model", trained["model"], "--out", out, "--batch-size", 300,
                   *BLOCKS)
    _assert_one_line_error(proc, str(out), "input_digest")
    proc = run_cli("dedup", trained["listings"], "--model", trained["model"], "--out", out, "--batch-size", 300)
    _assert_one_line_error(proc, str(out), "blockers")  # the default blockers are other settings
    # refused runs leave the folder as it was
    assert (out / "manifest.json").read_text() == manifest
    assert _report(out) == _report(finished)

    with pytest.raises(RunMismatchError, match="batch_size"):
        run_dedup(trained["listings"], trained["model"], out, DedupConfig(blockers=BLOCK_SPECS, batch_size=7),
                  progress=False, log=lambda _: None)

    run_cli("dedup", trained["tiny"], "--model", trained["model"], "--out", out, "--batch-size", 200,
            "--block", "key:seller_id+category_l2", "--restart", check_ok=True)
    rep = _report(out)
    assert rep["resumed"] is False and rep["listings"] == 120
    assert rep["scoring"]["parts_reused"] == 0 and rep["scoring"]["batch_size"] == 200
    assert len(pd.read_parquet(out / "clusters.parquet")) == 120
    assert json.loads((out / "manifest.json").read_text())["n_listings"] == 120
    assert len(list((out / "scores").glob("part-*.parquet"))) == rep["scoring"]["parts"]  # old parts gone


def test_missing_model_says_how_to_train(trained, tmp_path):
    missing = tmp_path / "no_model"
    proc = run_cli("dedup", trained["tiny"], "--model", missing, "--out", tmp_path / "out")
    _assert_one_line_error(proc, str(missing), "dupsearch train")
    assert not (tmp_path / "out").exists()


def test_folder_that_is_not_a_model_is_refused_before_any_work(trained, tmp_path):
    empty = tmp_path / "empty_model"
    empty.mkdir()
    proc = run_cli("dedup", trained["tiny"], "--model", empty, "--out", tmp_path / "out",
                   "--block", "key:seller_id")
    _assert_one_line_error(proc, str(empty), "dupsearch train")  # this part holds today
    assert not (tmp_path / "out").exists()


def test_bad_block_spec_is_a_usage_error(trained, tmp_path):
    proc = run_cli("dedup", trained["small"], "--model", trained["model"], "--out", tmp_path / "out",
                   "--block", "ann:text?k=abc")
    assert proc.returncode == 2
    msg = one_line(proc.stderr)
    assert "--block" in msg and "k='abc'" in msg, msg
    proc = run_cli("dedup", trained["small"], "--model", trained["model"], "--out", tmp_path / "out",
                   "--block", "nosuch")
    assert proc.returncode == 2 and "--block" in proc.stderr and "unknown blocker" in one_line(proc.stderr)
    assert not (tmp_path / "out").exists()


def test_missing_blocking_column_fails_cleanly_and_the_corrected_command_runs(trained, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("dedup", trained["tiny"], "--model", trained["model"], "--out", out,
                   "--block", "key:sellr_id")
    assert proc.returncode == 2
    assert "sellr_id" in one_line(proc.stderr) and "needed for blocking" in one_line(proc.stderr)
    assert not (out / "manifest.json").exists()  # the failed run holds nothing to its settings
    proc = run_cli("dedup", trained["tiny"], "--model", trained["model"], "--out", out,
                   "--block", "key:seller_id")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "manifest.json").read_text())["blockers"] == ["key:seller_id"]
    assert (out / "clusters.parquet").is_file()


def test_duplicated_item_id_names_file_and_column(trained, tmp_path):
    frame = pd.read_parquet(trained["tiny"])
    frame.loc[7, "item_id"] = frame.loc[3, "item_id"]
    path = tmp_path / "dup.parquet"
    frame.to_parquet(path)
    proc = run_cli("dedup", path, "--model", trained["model"], "--out", tmp_path / "out")
    _assert_one_line_error(proc, str(path), "item_id", "unique")
    assert not (tmp_path / "out").exists()


def test_misspelt_truth_column_is_an_error_not_silently_no_metrics(trained, tmp_path):
    proc = run_cli("dedup", trained["tiny"], "--model", trained["model"], "--out", tmp_path / "dd",
                   "--truth", "clusterid", *BLOCKS)
    _assert_one_line_error(proc, "clusterid", "--truth", str(trained["tiny"]))
    assert not (tmp_path / "dd").exists()


def test_reports_are_strict_json_even_with_undefined_metrics(trained, tmp_path):
    one = tmp_path / "one.parquet"
    pd.read_parquet(trained["tiny"]).head(1).to_parquet(one)
    run_cli("dedup", one, "--model", trained["model"], "--out", tmp_path / "dd", *BLOCKS, check_ok=True)

    def no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name}")
    rep = json.loads((tmp_path / "dd" / "report.json").read_text(), parse_constant=no_constants)
    assert rep["listings"] == 1 and rep["blocking"]["reduction_ratio"] is None


def test_dedup_table_from_a_finished_run_and_a_bad_report(finished, tmp_path, capsys):
    from dupsearch.bench.dedup_table import main
    assert main([str(finished)]) == 0
    out = capsys.readouterr().out
    rep = _report(finished)
    assert f"{rep['blocking']['n_candidates']:,} candidates" in out and "| **wall** |" in out
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "report.json").write_text("{not json")
    assert main([str(bad)]) == 2
    assert "not a finished dedup report" in capsys.readouterr().err
