"""Loading a model runs no code (issue #16, class 2): fitted state as JSON + .npz, an allowlist of
classes, every file checked against the sha256 its manifest records."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import scipy.sparse as sp

from conftest import fast_config
from dupsearch.digests import IntegrityError, file_sha256
from dupsearch.errors import UntrustedModelError
from dupsearch.models import DuplicateMatcher
from dupsearch.models.state import StateError, load_state, save_state
from helpers import one_line, run_cli


def test_round_trip_of_plain_values(tmp_path):
    value = {"none": None, "flag": True, "n": 3, "x": 0.5, "nan": float("nan"), "inf": -float("inf"),
             "s": "тест", "list": [1, "a"], "tuple": (1, (2, 3)), "set": {"b", "a"},
             "int keys": {1: "one", (2, "x"): "pair"}, "arr": np.arange(6, dtype=np.int32).reshape(2, 3),
             "strings": np.array(["a", "бв"], dtype=object), "dtype": np.float32, "scalar": np.float64(2.5),
             "csr": sp.csr_matrix(np.eye(3, dtype=np.float32)), "re": re.compile(r"\w+", re.I)}
    save_state(value, tmp_path / "s")
    got = load_state(tmp_path / "s")
    assert got["none"] is None and got["flag"] is True and got["n"] == 3 and got["s"] == "тест"
    assert np.isnan(got["nan"]) and got["inf"] == -float("inf")
    assert got["tuple"] == (1, (2, 3)) and got["set"] == {"a", "b"} and got["list"] == [1, "a"]
    assert got["int keys"] == {1: "one", (2, "x"): "pair"}
    assert got["arr"].dtype == np.int32 and (got["arr"] == value["arr"]).all()
    assert got["strings"].dtype == object and list(got["strings"]) == ["a", "бв"]
    assert got["dtype"] is np.float32 and got["scalar"] == 2.5
    assert (got["csr"] != value["csr"]).nnz == 0 and got["re"].pattern == r"\w+"
    assert {p.suffix for p in tmp_path.iterdir()} == {".json", ".npz"}


def test_what_cannot_be_saved_fails_at_save_naming_where(tmp_path):
    class Custom:
        pass
    with pytest.raises(StateError, match=r"state\[.k.\]: a .*Custom cannot be saved"):
        save_state({"k": Custom()}, tmp_path / "s")
    with pytest.raises(StateError, match="object array"):
        save_state({"k": np.array([1, "a"], dtype=object)}, tmp_path / "s")
    with pytest.raises(StateError, match="cannot be saved"):
        save_state({"f": print}, tmp_path / "s")


def test_a_state_file_cannot_name_other_classes_or_functions(tmp_path):
    save_state({"k": 1}, tmp_path / "s")
    for node in ({"__object__": "os:system", "state": {}}, {"__function__": "os:system"},
                 {"__object__": "subprocess:Popen", "state": {"args": "true"}}):
        (tmp_path / "s.json").write_text(json.dumps({"format": 1, "state": node}))
        with pytest.raises(StateError, match="which dupsearch does not load"):
            load_state(tmp_path / "s")
    (tmp_path / "s.json").write_text("not json")
    with pytest.raises(StateError, match="not a readable state"):
        load_state(tmp_path / "s")


def test_pipeline_state_round_trip_scores_the_same(tmp_path, market):
    m = DuplicateMatcher(fast_config()).fit(market.listings, market.train)
    m.save(tmp_path / "model")
    m2 = DuplicateMatcher.load(tmp_path / "model")
    p, p2 = m.predict_proba(market.listings, market.test), m2.predict_proba(market.listings, market.test)
    np.testing.assert_array_equal(p, p2)
    assert not list((tmp_path / "model").rglob("*.pkl"))


@pytest.fixture(scope="module")
def saved(tmp_path_factory, _market_once):
    path = tmp_path_factory.mktemp("state") / "model"
    DuplicateMatcher(fast_config()).fit(_market_once.listings, _market_once.train).save(path)
    return path


@pytest.mark.parametrize("name", ["feature_pipeline.json", "feature_pipeline.npz", "booster_0.cbm", "config.json"])
def test_changed_truncated_or_missing_files_are_named(saved, tmp_path, name):
    for how in ("change", "truncate", "remove"):
        path = tmp_path / how
        shutil.copytree(saved, path)
        f = path / name
        if how == "change":
            data = bytearray(f.read_bytes())
            data[len(data) // 2] ^= 0xFF
            f.write_bytes(bytes(data))
        elif how == "truncate":
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
        else:
            f.unlink()
        with pytest.raises(IntegrityError, match=re.escape(name)):
            DuplicateMatcher.load(path)


def test_cli_refuses_a_tampered_model_in_one_line(saved, shared_market_files, tmp_path):
    path = tmp_path / "model"
    shutil.copytree(saved, path)
    (path / "feature_pipeline.json").write_text((path / "feature_pipeline.json").read_text().replace(
        "dupsearch.features.corpus:BM25", "os:system", 1))
    f = shared_market_files
    proc = run_cli("predict", path, f["listings"], f["test"], "--out", tmp_path / "p.parquet")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "feature_pipeline.json does not match the sha256" in one_line(proc.stderr)
    assert not (tmp_path / "p.parquet").exists()


def test_a_pickled_component_loads_only_when_trusted(tmp_path, market):
    from dupsearch.config import EnsembleConfig
    from dataclasses import replace
    cfg = replace(fast_config(), ensemble=EnsembleConfig(per_category=True))
    path = tmp_path / "model"
    DuplicateMatcher(cfg).fit(market.listings, market.train).save(path)
    ens = json.loads((path / "ensemble.json").read_text())
    ens["parts"] = sorted(set(ens["parts"]) | {"automl"})  # as a model with a LightAutoML part lists it
    (path / "ensemble.json").write_text(json.dumps(ens))
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"]["ensemble.json"] = file_sha256(path / "ensemble.json")
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UntrustedModelError, match="--trust-model"):
        DuplicateMatcher.load(path)
    try:  # trusted, it passes the gate and goes on to read automl/ (which this model lacks)
        DuplicateMatcher.load(path, trust=True)
    except UntrustedModelError:
        pytest.fail("trust=True was refused")
    except Exception:
        pass
