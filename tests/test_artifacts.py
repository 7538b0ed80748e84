"""Never destroy what is not ours (issue #16, class 1): every command checks its outputs before
any work, folders dupsearch writes carry a marker, --restart removes only what dupsearch wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import FAST_CONFIG_JSON
from dupsearch.artifacts import (MARKER, OutputError, claim_dir, claim_file, kind_of, mark, open_dir,
                                 remove_own)
from helpers import one_line, run_cli


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root and its bytes: 'nothing outside --out changed' is this being equal."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def refused(proc, *words: str) -> str:
    """The command failed as a user should see it: exit 2, one line, no traceback."""
    err = one_line(proc.stderr)
    assert proc.returncode == 2, f"exit {proc.returncode}: {proc.stderr}"
    assert "Traceback" not in proc.stderr
    assert len([ln for ln in proc.stderr.splitlines() if ln.strip()]) == 1, proc.stderr
    for w in words:
        assert w in err, err
    return err


@pytest.fixture(scope="module")
def cfg(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "fast.json"
    path.write_text(json.dumps(FAST_CONFIG_JSON))
    return path


# ---- the library ------------------------------------------------------------------------------
def test_claims_of_folders(tmp_path):
    assert claim_dir(tmp_path / "new", "model") == tmp_path / "new"  # a path that does not exist
    (tmp_path / "empty").mkdir()
    claim_dir(tmp_path / "empty", "dedup")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(OutputError, match="a folder dupsearch did not write"):
        claim_dir(tmp_path / "notes", "dedup")
    (tmp_path / "file.parquet").write_bytes(b"PAR1")
    with pytest.raises(OutputError, match="is a file"):
        claim_dir(tmp_path / "file.parquet", "model")
    with pytest.raises(OutputError, match="is a file"):  # a folder below a file cannot be made
        claim_dir(tmp_path / "file.parquet" / "model", "model")
    d = open_dir(tmp_path / "run", "dedup")
    assert kind_of(d) == "dedup" and (d / MARKER).is_file()
    with pytest.raises(OutputError, match="a dupsearch dedup folder, not a model"):
        claim_dir(d, "model")


def test_claims_of_files_and_inputs(tmp_path):
    inp = tmp_path / "listings.parquet"
    inp.write_bytes(b"data")
    with pytest.raises(OutputError, match="is this command's input"):
        claim_file(inp, inputs=[inp])
    with pytest.raises(OutputError, match="holds this command's input"):
        claim_dir(tmp_path, "dedup", inputs=[inp])
    with pytest.raises(OutputError, match="is a folder"):
        claim_file(tmp_path, inputs=[])
    claim_file(tmp_path / "scores.parquet", inputs=[inp])


def test_remove_own_keeps_what_is_not_ours(tmp_path):
    d = open_dir(tmp_path / "run", "dedup")
    (d / "scores").mkdir()
    (d / "scores" / "part-00000.parquet").write_bytes(b"x")
    (d / "candidates.parquet").write_bytes(b"x")
    (d / "my-notes.txt").write_text("keep me")
    kept = remove_own(d, "dedup")
    assert [p.name for p in kept] == ["my-notes.txt"]
    assert sorted(p.name for p in d.iterdir()) == [MARKER, "my-notes.txt"]
    (d / "my-notes.txt").unlink()
    assert remove_own(d, "dedup") == [] and not d.exists()  # nothing else left: the folder goes
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.txt").write_text("x")
    with pytest.raises(OutputError, match="not a dupsearch dedup folder"):
        remove_own(other, "dedup")
    assert (other / "a.txt").exists()


def test_model_save_replaces_only_its_own_model(tmp_path, market):
    from conftest import fast_config
    from dupsearch.models import DuplicateMatcher
    m = DuplicateMatcher(fast_config()).fit(market.listings, market.train)
    m.save(tmp_path / "model")
    assert kind_of(tmp_path / "model") == "model"
    m.save(tmp_path / "model")  # its own model: replaced
    (tmp_path / "model" / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="notes.txt"):
        m.save(tmp_path / "model")
    assert (tmp_path / "model" / "notes.txt").read_text() == "mine"
    precious = tmp_path / "precious.parquet"
    precious.write_bytes(b"precious")
    with pytest.raises(OutputError, match="is a file"):
        m.save(precious)
    assert precious.read_bytes() == b"precious"


def test_folders_written_before_markers_are_recognised(tmp_path):
    old = tmp_path / "old_model"
    old.mkdir()
    for name in ("manifest.json", "features.json", "config.json"):
        (old / name).write_text("{}")
    assert kind_of(old) == "model"
    (tmp_path / "x").mkdir()
    mark(tmp_path / "x", "report")
    assert kind_of(tmp_path / "x") == "report"
    with pytest.raises(ValueError, match="unknown artifact kind"):
        mark(tmp_path / "x", "notes")


# ---- the commands -------------------------------------------------------------------------------
def test_train_never_replaces_a_file_or_a_folder_of_other_things(shared_market_files, cfg, tmp_path):
    f = shared_market_files
    before = snapshot(f["listings"].parent)
    precious = tmp_path / "precious.parquet"
    precious.write_bytes(b"mine")
    refused(run_cli("train", f["listings"], f["train"], "--out", precious, "--config", cfg), "is a file")
    assert precious.read_bytes() == b"mine"
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.md").write_text("mine")
    refused(run_cli("train", f["listings"], f["train"], "--out", notes, "--config", cfg),
            "a folder dupsearch did not write")
    assert snapshot(notes) == {"todo.md": b"mine"}
    # the folder holding the training inputs
    refused(run_cli("train", f["listings"], f["train"], "--out", f["listings"].parent, "--config", cfg),
            "holds this command's input")
    # a path below a file cannot be written: said before training, not after
    refused(run_cli("train", f["listings"], f["train"], "--out", precious / "model", "--config", cfg),
            "is a file")
    assert snapshot(f["listings"].parent) == before


def test_predict_never_writes_over_its_input(shared_market_files, tmp_path):
    f = shared_market_files
    before = snapshot(f["listings"].parent)
    model = tmp_path / "model"
    model.mkdir()  # the check comes before the model is read
    refused(run_cli("predict", model, f["listings"], f["test"], "--out", f["test"]), "is this command's input")
    assert snapshot(f["listings"].parent) == before


def test_generate_and_demo_refuse_a_folder_of_other_files(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "listings.parquet").write_bytes(b"my own listings")
    refused(run_cli("generate", mine, "-n", "50"), "a folder dupsearch did not write")
    refused(run_cli("demo", "--out", mine, "--n-listings", "200"), "a folder dupsearch did not write")
    assert snapshot(mine) == {"listings.parquet": b"my own listings"}
    # into a new folder, twice: the second run replaces its own dataset
    run_cli("generate", tmp_path / "data", "-n", "60", check_ok=True)
    assert kind_of(tmp_path / "data") == "dataset"
    run_cli("generate", tmp_path / "data", "-n", "60", "--seed", "1", check_ok=True)


def test_dedup_restart_removes_only_what_dedup_wrote(shared_market_files, cfg, tmp_path):
    f = shared_market_files
    model = tmp_path / "model"
    run_cli("train", f["listings"], f["train"], "--out", model, "--config", cfg, check_ok=True)
    assert kind_of(model) == "model"
    out = tmp_path / "dd"
    run_cli("dedup", f["listings"], "--model", model, "--out", out, check_ok=True)
    assert kind_of(out) == "dedup"
    (out / "my-notes.txt").write_text("keep me")
    proc = run_cli("dedup", f["listings"], "--model", model, "--out", out, "--restart", check_ok=True)
    assert "kept 1 entries" in one_line(proc.stderr)
    assert (out / "my-notes.txt").read_text() == "keep me"
    assert (out / "clusters.parquet").is_file()
    # a folder of other things, or one holding the input, is refused before any work
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("x")
    refused(run_cli("dedup", f["listings"], "--model", model, "--out", notes, "--restart"),
            "a folder dupsearch did not write")
    assert snapshot(notes) == {"a.txt": b"x"}
    refused(run_cli("dedup", f["listings"], "--model", model, "--out", f["listings"].parent),
            "holds this command's input")
    refused(run_cli("dedup", f["listings"], "--model", model, "--out", model), "holds this command's input")
    assert kind_of(model) == "model" and (model / "manifest.json").is_file()


def test_atomic_directory_replaces_only_what_dupsearch_wrote(tmp_path):
    """Library writers (ListingStore.save, CrossEncoderModel.save) go through atomic_directory:
    it replaces an empty folder or one of its own kind, never a user's folder or file."""
    from dupsearch.atomic import atomic_directory
    from dupsearch.features.store import ListingStore
    store = ListingStore(["a", "b"])
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    with pytest.raises(OutputError, match="did not write"):
        store.save(notes)
    assert (notes / "todo.txt").read_text() == "mine" and len(list(notes.iterdir())) == 1
    precious = tmp_path / "precious.parquet"
    precious.write_bytes(b"data")
    with pytest.raises(OutputError, match="is a file"):
        with atomic_directory(precious):
            pass
    assert precious.read_bytes() == b"data"
    empty = tmp_path / "empty"
    empty.mkdir()
    store.save(empty)
    store.save(empty)  # its own store: replaced
    assert ListingStore.open(empty).n == 2
    assert not list(tmp_path.glob(".*.tmp")) and not list(tmp_path.glob(".*.old"))
