"""Active labelling: scripted key presses through the real command (resume keeps every answer,
back re-asks), the choice of questions, retraining from the answers, and the --web page in a
real browser on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest

from dupsearch.label.active import ActiveLabeler, LabelConfig, LabelFile
from dupsearch.label.session import Session
from dupsearch.models import DuplicateMatcher
from tests.helpers import one_line, run_cli


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    from dupsearch.models.default import default_model_path
    root = tmp_path_factory.mktemp("label")
    data = root / "data"
    run_cli("generate", data, "-n", 1200, "--seed", 6, "--no-photos", check_ok=True)
    return {"root": root, "listings": data / "listings.parquet", "model": default_model_path()}


def _label(market, out, keys: str, *extra):
    return subprocess.run([sys.executable, "-m", "dupsearch.cli.main", "label", str(market["listings"]),
                           "--out", str(out), "--model", str(market["model"]), *map(str, extra)],
                          input=keys, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "160", "NO_COLOR": "1"})


def test_scripted_keys_save_every_answer_and_a_rerun_goes_on(market, tmp_path):
    out = tmp_path / "labels.parquet"
    p = _label(market, out, "y\nn\nu\nz\nq\n", "--retrain-every", 0)
    assert p.returncode == 0, p.stderr
    first = LabelFile(out).read()
    assert first["answer"].tolist() == ["y", "n", "u"] and "keys: y (yes" in p.stdout + p.stderr  # z: help
    assert first["label"].tolist()[:2] == [1, 0] and pd.isna(first["label"].iloc[2])
    # resume: back takes the last answer (u) back and asks that pair again; y answers it
    p = _label(market, out, "b\ny\nn\n", "--retrain-every", 0)  # the input ends: quit, answers kept
    assert p.returncode == 0, p.stderr
    again = LabelFile(out).read()
    assert len(again) == 4 and again["answer"].tolist() == ["y", "n", "y", "n"]
    assert again.iloc[:3][["item_id_a", "item_id_b"]].equals(first[["item_id_a", "item_id_b"]])
    keys = {frozenset(x) for x in zip(again["item_id_a"], again["item_id_b"])}
    assert len(keys) == 4  # no pair asked twice


def test_a_file_that_is_not_ours_is_refused_and_left_alone(market, tmp_path):
    out = tmp_path / "labels.parquet"
    pd.DataFrame({"x": [1]}).to_parquet(out)
    before = out.read_bytes()
    p = _label(market, out, "y\nq\n")
    assert p.returncode == 2 and "not a labels file dupsearch wrote" in one_line(p.stderr + p.stdout)
    assert "Traceback" not in p.stderr
    assert out.read_bytes() == before


def _oracle(listings: pd.DataFrame):
    truth = dict(zip(listings["item_id"].astype(str), listings["cluster_id"]))
    return lambda a, b: "y" if truth[a] == truth[b] else "n"


def test_questions_are_the_least_certain_spread_over_categories_and_retraining_learns(market):
    from dupsearch.io import read_listings
    lst, _ = read_listings(market["listings"])
    lab = ActiveLabeler(lst, DuplicateMatcher.load(market["model"]), LabelConfig(retrain_every=30))
    first = lab.propose_many(12)
    u = lab.uncertainty()
    assert np.median(u[first]) < np.quantile(u, 0.1)  # from the least certain tenth of the pool
    strata = lab.stratum[first]
    assert len(set(strata.tolist())) >= min(6, len(np.unique(lab.stratum)))  # categories in turn
    answer = _oracle(lst)
    said = []
    session = Session(lab, LabelFile(market["root"] / "oracle.parquet"), retrain_every=30, say=said.append)
    lines = []
    for _ in range(60):
        i = session.next()
        lines.append(session.press(answer(lab.ids[lab.a[i]], lab.ids[lab.b[i]])))
    trained = [h for h in lab.history if "pr_auc" in h]
    assert len(lab.history) == 2 and trained, lab.history
    assert any(line and "out-of-fold PR-AUC" in line and "first model's PR-AUC" in line for line in lines)
    assert trained[-1]["pseudo_labels"] > 0
    # the better model on the answers asks the questions: the retrained one only if it beats the first
    beats = trained[-1]["bootstrap_wins"] >= LabelConfig().replace_confidence
    assert lab.model_name.startswith("trained on") == beats and trained[-1]["kept"] == ("retrained" if beats else "first")
    # the retrained model has learned: held-out test pairs of the market are ranked well above chance
    from dupsearch.models.metrics import binary_metrics
    test = pd.read_parquet(market["listings"].with_name("test_pairs.parquet"))
    y = test["label"].to_numpy(int)
    assert binary_metrics(y, lab.last_trained.predict_proba(lst, test))["pr_auc"] > y.mean() + 0.15
    saved = LabelFile(market["root"] / "oracle.parquet").read()
    assert len(saved) == 60 and set(saved["answer"]) <= {"y", "n"}


CHROMIUM = shutil.which("chromium")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (.ci/run installs Debian's)")
def test_web_page_on_loopback_answers_with_keys_and_buttons(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    from dupsearch.io import read_listings
    from dupsearch.label.web import make_server
    data = tmp_path / "data"
    run_cli("generate", data, "-n", 300, "--seed", 8, "--photos", check_ok=True)
    lst, _ = read_listings(data / "listings.parquet")
    from dupsearch.models.default import default_model_path
    lab = ActiveLabeler(lst, DuplicateMatcher.load(default_model_path()), LabelConfig(retrain_every=0))
    out = tmp_path / "labels.parquet"
    session = Session(lab, LabelFile(out), retrain_every=0, say=lambda s: None)
    server = make_server(session, 0)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    problems = []
    try:
        with sync_api.sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                                                  "--disable-background-networking"])
            pg = b.new_page()
            pg.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            pg.on("pageerror", lambda e: problems.append(str(e)))
            pg.goto(f"http://127.0.0.1:{port}/")
            pg.wait_for_selector("#a h2")
            shown = pg.inner_text("#a .meta")
            pg.keyboard.press("y")
            pg.wait_for_function("document.querySelector('#counts').textContent.includes('answered 1')")
            pg.click("button[data-key=n]")
            pg.wait_for_function("document.querySelector('#counts').textContent.includes('answered 2')")
            # photos of the listings on show are served, and only they
            pg.wait_for_function("[...document.querySelectorAll('#a img, #b img')].every((i) => i.complete)")
            assert pg.locator("#a img, #b img").count() > 0  # the generated listings have photos
            assert pg.evaluate("[...document.querySelectorAll('#a img, #b img')].every((i) => i.naturalWidth > 0)")
            import urllib.error
            import urllib.request
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/photo?side=a&n=99")
            assert e.value.code == 404
            pg.click("button[data-key=q]")
            pg.wait_for_function("document.querySelector('#line').textContent.includes('saved')")
            b.close()
    finally:
        server.shutdown()
        server.server_close()
    saved = LabelFile(out).read()
    assert saved["answer"].tolist() == ["y", "n"]
    assert saved["item_id_a"].iloc[0] in shown or saved["item_id_b"].iloc[0] in shown
    assert problems == []
