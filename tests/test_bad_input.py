"""The bad-input corpus: every `dupsearch` command driven through the real CLI over bad inputs
and faults, one table of cases (``CASES``).

A module fixture generates one small market (300 listings) and trains one small model on it,
once. Each case then gets a fresh folder (its pytest ``tmp_path``, also the working directory of
the command), copies there the inputs it needs (the market, the model) and breaks them the way
the case says, and runs `dupsearch ...` in a subprocess (``helpers.run_cli``: the real entry
point ``dupsearch.cli.main:main``). For every case:

1. the exit code is the expected one: 2 for a refusal or bad input, 0 for input that must be
   *handled* (a listing with no title, invisible characters, an impossible price);
2. on failure the error is exactly one line, ``error: <message>``, the last on stderr (what
   the command said before it, e.g. the rows it read, may precede it), never a traceback, and
   the line names what the user must fix: the file, and ``row N`` / ``column 'X'`` where
   they apply (row numbers are 1-based data rows, the header not counted); on success stderr
   holds no traceback;
3. nothing outside the command's --out changed: every file and folder under the case folder
   (path -> (size, sha256)) is the same before and after, --out excluded. Cases that must
   refuse to overwrite something (a "precious" file or folder) also check it is intact, and
   exclude nothing.

The classes of cases:

1. never destroy what is not ours: --out (or --model-out, --report, --json) is a file that is
   not dupsearch's, a folder of the user's notes, the folder holding the inputs, `.`;
2. model files: a model folder with a file truncated, bytes flipped, deleted, replaced by a
   pickle, an extra pickle, its manifest edited, or a folder that is not a model at all;
3. resume: a dedup --out holding the dedup of another listings file is not silently reused;
4. garbage input: short CSV rows, non-UTF-8 bytes (CSV and Parquet binary columns), empty
   texts, zero-width and bidi characters, nested attributes, impossible and unparseable prices,
   duplicate ids, bad labels, unknown ids, missing columns, empty files, directories, unknown
   extensions, malformed JSON lines, validation pairs overlapping the training pairs;
5. no tracebacks: garbage booster and pipeline files (also with the manifest digest rewritten to
   match, so the loader itself must fail cleanly), bad configs and options, unknown commands,
   missing arguments, unwritable outputs, a folder that is not a benchmark, bad blocker specs,
   and a one-class evaluation whose JSON must still be strict.

A case is a ``Case(id, build, code)``: ``build(ctx)`` writes the case's inputs into
``ctx.root`` and returns a ``Run`` (the argv, the words the error line must name, the --out
to exclude from the snapshot, precious paths, an optional extra check).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import pickle
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers import run_cli, small_market_and_model

N_LISTINGS = 300
CASE_TIMEOUT = 180


# --------------------------------------------------------------------------- snapshot


def snapshot(root: Path, exclude: Iterable[Path] = ()) -> dict[str, Any]:
    """Every file (relative path -> (size, sha256)) and folder (-> "dir") under ``root``,
    except the paths ``exclude`` and everything below them."""
    root = Path(root)
    skip = [Path(p).absolute() for p in exclude if p is not None]

    def skipped(p: Path) -> bool:
        a = p.absolute()
        return any(a == s or s in a.parents for s in skip)

    if not root.exists():
        return {}
    if root.is_file():
        data = root.read_bytes()
        return {root.name: (len(data), hashlib.sha256(data).hexdigest())}
    out: dict[str, Any] = {}
    for p in sorted(root.rglob("*")):
        if skipped(p):
            continue
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = ("link", os.readlink(p))
        elif p.is_dir():
            out[rel] = "dir"
        elif p.is_file():
            data = p.read_bytes()
            out[rel] = (len(data), hashlib.sha256(data).hexdigest())
    return out


def snapshot_diff(before: dict, after: dict) -> str:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    return f"added {added[:10]}, removed {removed[:10]}, changed {changed[:10]}"


# --------------------------------------------------------------------------- shared inputs


@dataclass
class Shared:
    """The module's market and model (read-only: a case copies what it changes)."""
    root: Path
    data: Path
    model: Path
    config: Path
    records: list[dict]  # the listings as plain Python values (attributes as dicts)
    before: dict = field(default_factory=dict)  # snapshot of root once built


def _plain_records(listings: Path) -> list[dict]:
    df = pd.read_parquet(listings)
    keep = ["item_id", "title", "description", "category_l1", "category_l2", "category_l3",
            "category_l4", "attributes", "price", "seller_id", "city", "cluster_id"]
    out = []
    for r in df[keep].to_dict(orient="records"):
        r["attributes"] = dict(r["attributes"]) if r["attributes"] is not None else {}
        r["price"] = None if pd.isna(r["price"]) else float(r["price"])
        r["cluster_id"] = int(r["cluster_id"])
        out.append(r)
    return out


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Shared:
    root = tmp_path_factory.mktemp("bad_input_shared")
    data, model, config = small_market_and_model(root, N_LISTINGS, seed=1)
    s = Shared(root, data, model, config, _plain_records(data / "listings.parquet"))
    s.before = snapshot(root)  # checked by test_shared_inputs_unchanged, after every case
    return s


# --------------------------------------------------------------------------- a case's folder


class Ctx:
    """A case's folder and the inputs it builds there (copies of the shared ones, then broken)."""

    def __init__(self, root: Path, shared: Shared):
        self.root, self.shared = root, shared

    def p(self, rel: str) -> Path:
        return self.root / rel

    # -- copies of the shared market and model
    def market(self) -> Path:
        dst = self.root / "data"
        if not dst.exists():
            shutil.copytree(self.shared.data, dst)
        return dst

    @property
    def listings(self) -> Path:
        return self.market() / "listings.parquet"

    @property
    def train_pairs(self) -> Path:
        return self.market() / "train_pairs.parquet"

    @property
    def valid_pairs(self) -> Path:
        return self.market() / "valid_pairs.parquet"

    @property
    def test_pairs(self) -> Path:
        return self.market() / "test_pairs.parquet"

    def model(self, name: str = "model") -> Path:
        dst = self.root / name
        if not dst.exists():
            shutil.copytree(self.shared.model, dst)
        return dst

    def config(self) -> Path:
        dst = self.root / "fast.json"
        if not dst.exists():
            shutil.copy(self.shared.config, dst)
        return dst

    def records(self) -> list[dict]:
        return json.loads(json.dumps(self.shared.records))  # a deep copy

    # -- things of the user's
    def precious_file(self, name: str = "precious.parquet") -> Path:
        path = self.root / name
        path.write_bytes(b"PAR1 the user's own table, not dupsearch's PAR1")
        return path

    def notes_folder(self, name: str = "notes") -> Path:
        path = self.root / name
        path.mkdir()
        (path / "notes.txt").write_text("my notes: not dupsearch's\n")
        return path

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    # -- tables in other formats
    def csv(self, name: str, records: list, *, flat: bool = False) -> Path:
        """Listings as CSV (attributes as JSON text). A record that is a list is written as that
        raw row; ``flat`` replaces newlines inside texts by spaces (one record, one line)."""
        columns = list(next(r for r in records if isinstance(r, dict)))
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        for r in records:
            if isinstance(r, list):
                w.writerow(r)
                continue
            row = []
            for c in columns:
                v = r.get(c)
                if isinstance(v, dict):
                    v = json.dumps(v, ensure_ascii=False)
                elif v is None:
                    v = ""
                elif flat and isinstance(v, str):
                    v = v.replace("\r", " ").replace("\n", " ")
                row.append(v)
            w.writerow(row)
        return self.write(name, buf.getvalue())

    def jsonl(self, name: str, records: list) -> Path:
        return self.write(name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))

    def pairs_csv(self, name: str, frame: pd.DataFrame) -> Path:
        path = self.root / name
        frame.to_csv(path, index=False)
        return path

    def pairs(self, which: str = "train") -> pd.DataFrame:
        return pd.read_parquet(self.shared.data / f"{which}_pairs.parquet")

    def benchmark(self, name: str = "tiny-bench", lines: dict[str, list[str]] | None = None) -> Path:
        """A tiny benchmark folder in the Ditto format: LEFT<TAB>RIGHT<TAB>LABEL per line."""
        d = self.root / name
        d.mkdir()
        recs = {r["item_id"]: r for r in self.shared.records}

        def ser(r):
            return f"COL title VAL {r['title']} COL price VAL {r['price'] or ''}".replace("\t", " ")

        for split in ("train", "valid", "test"):
            if lines and split in lines:
                body = lines[split]
            else:
                body = [f"{ser(recs[a])}\t{ser(recs[b])}\t{int(y)}" for a, b, y in
                        self.pairs(split)[["item_id_a", "item_id_b", "label"]].head(30).itertuples(index=False)]
            (d / f"{split}.txt").write_text("\n".join(body) + "\n", encoding="utf-8")
        return d


# --------------------------------------------------------------------------- model faults


def _manifest(model: Path) -> dict:
    return json.loads((model / "manifest.json").read_text())


def _set_manifest(model: Path, manifest: dict) -> None:
    (model / "manifest.json").write_text(json.dumps(manifest, indent=2))


def _fix_digest(model: Path, rel: str) -> None:
    """Rewrite the manifest's sha256 of ``rel`` to match the file as it now is."""
    m = _manifest(model)
    assert rel in m["files"], rel
    m["files"][rel] = hashlib.sha256((model / rel).read_bytes()).hexdigest()
    _set_manifest(model, m)


def _garbage(n: int = 4096, seed: int = 7) -> bytes:
    import random
    return random.Random(seed).randbytes(n)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 16):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


class _Evil:
    """Unpickling it creates a file (the case's folder snapshot then differs): proof it ran."""

    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


# --------------------------------------------------------------------------- the case table


@dataclass
class Run:
    argv: list
    expect: tuple = ()          # words the one stderr line must contain (failing runs)
    out: Path | None = None     # what the command may write: left out of the snapshot
    precious: tuple = ()        # paths that must be intact afterwards
    check: Callable[[Any], None] | None = None  # more checks on the CompletedProcess


@dataclass
class Case:
    id: str
    build: Callable[[Ctx], Run]
    code: int | tuple = 2
    non_root: bool = False      # needs a user that file permissions apply to
    marks: tuple = field(default_factory=tuple)
    klass: int = 0              # the class (1-5) of the section it is in


CASES: list[Case] = []
_CLASS = 0  # set at each section below


def case(id: str, code: int | tuple = 2, **kw):
    def register(build):
        CASES.append(Case(id, build, code, klass=_CLASS, **kw))
        return build
    return register


def _s(p) -> str:
    return str(p)


# ---- class 1: never destroy what is not ours -------------------------------------------------

_CLASS = 1

@case("train-out-precious-file")
def _(c):
    p = c.precious_file()
    return Run(["train", c.listings, c.train_pairs, "--out", p, "--config", c.config(), "--no-report"],
               expect=(_s(p), "is a file"), precious=(p,))


@case("train-out-notes-folder")
def _(c):
    p = c.notes_folder()
    return Run(["train", c.listings, c.train_pairs, "--out", p, "--config", c.config(), "--no-report"],
               expect=(_s(p), "did not write"), precious=(p,))


@case("train-out-input-folder")
def _(c):
    return Run(["train", c.listings, c.train_pairs, "--out", c.market(), "--config", c.config(), "--no-report"],
               expect=(_s(c.market()), "input"), precious=(c.market(),))


@case("train-out-dot")
def _(c):  # the working directory is the case folder, which holds the inputs
    return Run(["train", c.listings, c.train_pairs, "--out", ".", "--config", c.config(), "--no-report"],
               expect=("input",), precious=(c.market(),))


@case("predict-out-is-pairs-input")
def _(c):
    return Run(["predict", c.model(), c.listings, c.test_pairs, "--out", c.test_pairs],
               expect=(_s(c.test_pairs), "input"), precious=(c.test_pairs,))


@case("predict-out-is-folder")
def _(c):
    p = c.notes_folder()
    return Run(["predict", c.model(), c.listings, c.test_pairs, "--out", p],
               expect=(_s(p), "folder"), precious=(p,))


@case("evaluate-report-notes-folder")
def _(c):
    p = c.notes_folder()
    return Run(["evaluate", c.model(), c.listings, c.test_pairs, "--report", p],
               expect=(_s(p), "did not write"), precious=(p,))


@case("evaluate-report-into-model")
def _(c):
    m = c.model()
    return Run(["evaluate", m, c.listings, c.test_pairs, "--report", m],
               expect=(_s(m),), precious=(m,))


@case("evaluate-json-inside-model-dir")
def _(c):  # model/metrics.json is part of an input: writing over it breaks the model
    m = c.model()
    return Run(["evaluate", m, c.listings, c.test_pairs, "--json", m / "metrics.json"],
               expect=(_s(m / "metrics.json"),), precious=(m,))


@case("dedup-out-precious-file")
def _(c):
    p = c.precious_file()
    return Run(["dedup", c.listings, "--model", c.model(), "--out", p],
               expect=(_s(p), "is a file"), precious=(p,))


@case("dedup-out-notes-folder")
def _(c):
    p = c.notes_folder()
    return Run(["dedup", c.listings, "--model", c.model(), "--out", p],
               expect=(_s(p), "did not write"), precious=(p,))


@case("dedup-out-input-folder")
def _(c):
    return Run(["dedup", c.listings, "--model", c.model(), "--out", c.market()],
               expect=(_s(c.market()), "input"), precious=(c.market(),))


@case("dedup-out-dot")
def _(c):
    c.model()
    return Run(["dedup", c.listings, "--model", c.model(), "--out", "."],
               expect=("input",), precious=(c.market(),))


@case("dedup-restart-notes-folder")
def _(c):
    p = c.notes_folder()
    return Run(["dedup", c.listings, "--model", c.model(), "--out", p, "--restart"],
               expect=(_s(p), "did not write"), precious=(p,))


@case("demo-out-precious-file")
def _(c):
    p = c.precious_file()
    return Run(["demo", "--out", p, "--n-listings", 200, "--no-photos", "--no-dedup"],
               expect=(_s(p), "is a file"), precious=(p,))


@case("demo-out-notes-folder")
def _(c):
    p = c.notes_folder()
    return Run(["demo", "--out", p, "--n-listings", 200, "--no-photos", "--no-dedup"],
               expect=(_s(p), "did not write"), precious=(p,))


@case("generate-out-precious-file")
def _(c):
    p = c.precious_file()
    return Run(["generate", p, "-n", 50], expect=(_s(p), "is a file"), precious=(p,))


@case("generate-out-notes-folder")
def _(c):
    p = c.notes_folder()
    return Run(["generate", p, "-n", 50], expect=(_s(p), "did not write"), precious=(p,))


@case("bench-model-out-notes-folder")
def _(c):
    p = c.notes_folder()
    return Run(["bench", c.benchmark(), "--n-models", 1, "--model-out", p],
               expect=(_s(p), "did not write"), precious=(p,))


@case("bench-report-into-benchmark")
def _(c):
    b = c.benchmark()
    return Run(["bench", b, "--n-models", 1, "--report", b], expect=(_s(b), "input"), precious=(b,))


@case("bench-json-over-benchmark-file")
def _(c):  # --json naming a file inside the benchmark folder: the input itself
    b = c.benchmark()
    return Run(["bench", b, "--n-models", 1, "--json", b / "test.txt"],
               expect=(_s(b / "test.txt"),), precious=(b,))


@case("ablate-report-notes-folder")
def _(c):
    p = c.notes_folder()
    return Run(["ablate", c.listings, c.train_pairs, "--folds", 2, "--report", p],
               expect=(_s(p), "did not write"), precious=(p,))


@case("ablate-json-is-pairs-input")
def _(c):
    return Run(["ablate", c.listings, c.train_pairs, "--folds", 2, "--json", c.train_pairs],
               expect=(_s(c.train_pairs), "input"), precious=(c.train_pairs,))


# ---- class 2: model files --------------------------------------------------------------------

_CLASS = 2

@case("predict-model-booster-truncated")
def _(c):
    m = c.model()
    _truncate(m / "booster_0.cbm")
    return Run(["predict", m, c.listings, c.test_pairs, "--out", c.p("o.parquet")],
               expect=(_s(m), "booster_0.cbm"), out=c.p("o.parquet"))


@case("evaluate-model-pipeline-bytes-flipped")
def _(c):
    m = c.model()
    _flip(m / "feature_pipeline.npz")
    return Run(["evaluate", m, c.listings, c.test_pairs], expect=(_s(m), "feature_pipeline.npz"))


@case("dedup-model-file-deleted")
def _(c):
    m = c.model()
    (m / "features.json").unlink()
    return Run(["dedup", c.listings, "--model", m, "--out", c.p("dd")],
               expect=(_s(m), "features.json"), out=c.p("dd"))




@case("predict-model-extra-pickle", code=(0, 2))
def _(c):
    # An unlisted pickle next to the model's files is never loaded (running it would create
    # PWNED in the case folder, which the snapshot catches); refusing the folder is fine too.
    m = c.model()
    (m / "booster_0.pkl").write_bytes(pickle.dumps(_Evil(str(c.p("PWNED")))))

    def check(proc):
        assert not c.p("PWNED").exists(), "the pickle ran"
        if proc.returncode == 2:
            assert "booster_0.pkl" in proc.stderr, proc.stderr

    return Run(["predict", m, c.listings, c.test_pairs, "--out", c.p("o.parquet")],
               out=c.p("o.parquet"), check=check)


@case("evaluate-model-manifest-not-json")
def _(c):
    m = c.model()
    (m / "manifest.json").write_text('{"format_version": 3, "threshold": ')
    return Run(["evaluate", m, c.listings, c.test_pairs], expect=(_s(m), "manifest.json"))


@case("predict-model-manifest-format-version")
def _(c):
    m = c.model()
    mf = _manifest(m)
    mf["format_version"] = 999
    _set_manifest(m, mf)
    return Run(["predict", m, c.listings, c.test_pairs, "--out", c.p("o.parquet")],
               expect=(_s(m), "format"), out=c.p("o.parquet"))


@case("predict-model-manifest-n-models-2")
def _(c):  # the manifest claims a second booster that is not there
    m = c.model()
    mf = _manifest(m)
    mf["n_models"] = 2
    _set_manifest(m, mf)
    return Run(["predict", m, c.listings, c.test_pairs, "--out", c.p("o.parquet")],
               expect=(_s(m), "booster_1"), out=c.p("o.parquet"))


@case("dedup-model-manifest-digest-edited")
def _(c):
    m = c.model()
    mf = _manifest(m)
    mf["files"]["config.json"] = "0" * 64
    _set_manifest(m, mf)
    return Run(["dedup", c.listings, "--model", m, "--out", c.p("dd")],
               expect=(_s(m), "config.json"), out=c.p("dd"))



@case("predict-model-is-dataset-folder")
def _(c):
    return Run(["predict", c.market(), c.listings, c.test_pairs, "--out", c.p("o.parquet")],
               expect=(_s(c.market()), "not a dupsearch model"), out=c.p("o.parquet"))



@case("dedup-model-is-notes-folder")
def _(c):
    p = c.notes_folder()
    return Run(["dedup", c.listings, "--model", p, "--out", c.p("dd")],
               expect=(_s(p), "not a dupsearch model"), out=c.p("dd"))



# ---- class 3: resume --------------------------------------------------------------------------

_CLASS = 3

@case("dedup-out-holds-other-listings", code=(0, 2))
def _(c):
    """--out holds a finished dedup of listings A; dedup of listings B into it must not reuse A's
    work: either refused, or B's clusters."""
    full = pq.read_table(c.listings)
    a, b = c.p("a.parquet"), c.p("b.parquet")
    pq.write_table(full.slice(0, 150), a)
    pq.write_table(full.slice(150, 150), b)
    out = c.p("dd")
    run_cli("dedup", a, "--model", c.model(), "--out", out, check_ok=True, timeout=CASE_TIMEOUT)

    def check(proc):
        if proc.returncode == 2:
            assert _s(out) in proc.stderr, proc.stderr
            return
        ids_b = set(pd.read_parquet(b)["item_id"].astype(str))
        clusters = pd.read_parquet(out / "clusters.parquet")
        assert set(clusters["item_id"].astype(str)) == ids_b, "clusters are not those of the new input"
        rep = json.loads((out / "report.json").read_text())
        assert rep["listings"] == 150

    return Run(["dedup", b, "--model", c.model(), "--out", out], out=out, check=check)


# ---- class 4: garbage input -------------------------------------------------------------------

_CLASS = 4

@case("train-short-csv-row")
def _(c):
    recs = c.records()
    r = recs[4]
    recs[4] = [r["item_id"], r["title"], r["description"]]  # data row 5: 3 of 12 fields
    p = c.csv("listings.csv", recs)
    return Run(["train", p, c.train_pairs, "--out", c.p("m"), "--config", c.config(), "--no-report"],
               expect=(_s(p), "row 5"), out=c.p("m"))


@case("dedup-short-csv-row")
def _(c):
    recs = c.records()
    r = recs[1]
    recs[1] = [r["item_id"], r["title"]]  # data row 2
    p = c.csv("listings.csv", recs, flat=True)
    return Run(["dedup", p, "--model", c.model(), "--out", c.p("dd")],
               expect=(_s(p), "row 2"), out=c.p("dd"))


def _empty_texts(c) -> Path:
    recs = c.records()
    for i, r in enumerate(recs):
        if i % 3:  # two listings in three: no title and no description
            r["title"] = ""
            r["description"] = ""
    return c.jsonl("listings_empty.jsonl", recs)


@case("train-empty-titles-and-descriptions", code=0)
def _(c):
    return Run(["train", _empty_texts(c), c.train_pairs, "--out", c.p("m"), "--config", c.config(),
                "--no-report"], out=c.p("m"))


@case("predict-empty-titles-and-descriptions", code=0)
def _(c):
    out = c.p("o.parquet")

    def check(proc):
        res = pd.read_parquet(out)
        assert len(res) == len(c.pairs("test")) and res["probability"].between(0, 1).all()

    return Run(["predict", c.model(), _empty_texts(c), c.test_pairs, "--out", out], out=out, check=check)


@case("predict-zero-width-and-bidi-titles", code=0)
def _(c):
    recs = c.records()
    for i, r in enumerate(recs):
        t = r["title"]
        if i % 2 == 0:
            r["title"] = t[:3] + "\u200b" + t[3:] + "\u200b"
        if i % 3 == 0:
            r["title"] = "\u202e" + r["title"] + "\u202c"
    p = c.jsonl("listings_invisible.jsonl", recs)
    out = c.p("o.parquet")

    def check(proc):
        res = pd.read_parquet(out)
        assert len(res) == len(c.pairs("test")) and res["probability"].between(0, 1).all()

    return Run(["predict", c.model(), p, c.test_pairs, "--out", out], out=out, check=check)


@case("predict-nested-attributes-jsonl", code=(0, 2))
def _(c):
    recs = c.records()
    recs[1]["attributes"] = {"a": {"b": "c"}, "Цвет": "чёрный"}  # data row 2
    p = c.jsonl("listings_nested.jsonl", recs)
    out = c.p("o.parquet")

    def check(proc):
        if proc.returncode == 2:  # refused: naming the row and the column
            line = proc.stderr.strip()
            assert _s(p) in line and "row 2" in line and "column 'attributes'" in line, line

    return Run(["predict", c.model(), p, c.test_pairs, "--out", out], out=out, check=check)


@case("predict-price-inf-and-negative", code=0)
def _(c):
    recs = c.records()
    recs[1]["price"] = "inf"   # data row 2
    recs[3]["price"] = "-5"    # data row 4
    p = c.csv("listings_prices.csv", recs, flat=True)
    out = c.p("o.parquet")

    def check(proc):
        err = " ".join(proc.stderr.split())
        # the two prices became missing, and were counted (never silently)
        assert re.search(r"\b2\b[^.;]{0,80}pric|pric[^.;]{0,80}\b2\b", err, re.I), err

    return Run(["predict", c.model(), p, c.test_pairs, "--out", out], out=out, check=check)


@case("predict-parquet-binary-title-not-utf8")
def _(c):
    t = pq.read_table(c.listings)
    titles = [s.encode("utf-8") for s in t.column("title").to_pylist()]
    titles[2] = b"Caf\xe9 \xff\xfe"  # data row 3: latin-1, not UTF-8
    i = t.schema.get_field_index("title")
    t = t.set_column(i, pa.field("title", pa.binary()), pa.array(titles, pa.binary()))
    p = c.p("listings_binary.parquet")
    pq.write_table(t, p)
    return Run(["predict", c.model(), p, c.test_pairs, "--out", c.p("o.parquet")],
               expect=(_s(p), "row 3", "column 'title'"), out=c.p("o.parquet"))


@case("train-valid-overlaps-train", code=0)
def _(c):
    pairs = c.pairs("train")
    valid = pd.concat([pairs.head(40), c.pairs("valid")], ignore_index=True)  # 40 pairs also trained on
    v = c.pairs_csv("valid.csv", valid)
    out = c.p("m")

    def check(proc):  # a warning that names the overlap: how many validation pairs were trained on
        err = " ".join(proc.stderr.split())
        assert re.search(r"\b40\b[^.;]{0,80}(overlap|train)|overlap[^.;]{0,80}\b40\b", err, re.I), proc.stderr

    return Run(["train", c.listings, c.train_pairs, "--valid", v, "--out", out, "--config", c.config(),
                "--no-report"], out=out, check=check)


@case("train-non-utf8-csv")
def _(c):
    recs = c.records()
    recs[2]["title"] = "BADBYTE"  # data row 3
    p = c.csv("listings.csv", recs, flat=True)
    p.write_bytes(p.read_bytes().replace(b"BADBYTE", b"Caf\xe9"))
    return Run(["train", p, c.train_pairs, "--out", c.p("m"), "--config", c.config(), "--no-report"],
               expect=(_s(p), "row 3"), out=c.p("m"))


@case("dedup-non-utf8-csv-after-multiline-rows")
def _(c):
    """Rows before the bad one hold quoted newlines: the row is still the data row, not the line."""
    recs = c.records()
    k = next(i for i, r in enumerate(recs) if "\n" in r["description"])
    bad = k + 2  # 0-based; at least one multi-line record before it
    recs[bad]["title"] = "BADBYTE"
    p = c.csv("listings.csv", recs)
    p.write_bytes(p.read_bytes().replace(b"BADBYTE", b"Caf\xe9"))
    return Run(["dedup", p, "--model", c.model(), "--out", c.p("dd")],
               expect=(_s(p), f"row {bad + 1}"), out=c.p("dd"))


@case("train-duplicate-item-id")
def _(c):
    recs = c.records()
    recs[6]["item_id"] = recs[1]["item_id"]  # rows 2 and 7
    p = c.csv("listings.csv", recs, flat=True)
    return Run(["train", p, c.train_pairs, "--out", c.p("m"), "--config", c.config(), "--no-report"],
               expect=(_s(p), "row 7", "column 'item_id'"), out=c.p("m"))


@case("train-pairs-label-2")
def _(c):
    pairs = c.pairs("train")
    pairs.loc[3, "label"] = 2  # data row 4
    p = c.pairs_csv("pairs.csv", pairs)
    return Run(["train", c.listings, p, "--out", c.p("m"), "--config", c.config(), "--no-report"],
               expect=(_s(p), "row 4", "column 'label'"), out=c.p("m"))


@case("evaluate-pairs-unknown-item-id")
def _(c):
    pairs = c.pairs("test")
    pairs.loc[4, "item_id_b"] = "no-such-item"  # data row 5
    p = c.pairs_csv("pairs.csv", pairs)
    return Run(["evaluate", c.model(), c.listings, p],
               expect=(_s(p), "row 5", "column 'item_id_b'", "no-such-item"))


@case("ablate-pairs-label-2")
def _(c):
    pairs = c.pairs("train")
    pairs.loc[0, "label"] = 2
    p = c.pairs_csv("pairs.csv", pairs)
    return Run(["ablate", c.listings, p, "--folds", 2], expect=(_s(p), "row 1", "column 'label'"))


@case("dedup-listings-missing-title-column")
def _(c):
    recs = c.records()
    for r in recs:
        del r["title"]
    p = c.jsonl("listings.jsonl", recs)
    return Run(["dedup", p, "--model", c.model(), "--out", c.p("dd")], expect=(_s(p), "'title'"), out=c.p("dd"))



@case("train-listings-empty-file")
def _(c):
    p = c.write("listings.csv", b"")
    return Run(["train", p, c.train_pairs, "--out", c.p("m"), "--config", c.config(), "--no-report"],
               expect=(_s(p), "empty"), out=c.p("m"))


@case("dedup-listings-header-only")
def _(c):
    p = c.write("listings.csv", "item_id,title,description\n")
    return Run(["dedup", p, "--model", c.model(), "--out", c.p("dd")], expect=(_s(p), "empty"), out=c.p("dd"))


@case("evaluate-listings-is-directory")
def _(c):
    d = c.p("listings.parquet")
    d.mkdir()
    return Run(["evaluate", c.model(), d, c.test_pairs], expect=(_s(d), "directory"))


@case("dedup-listings-unsupported-extension")
def _(c):
    p = c.write("listings.xlsx", b"PK\x03\x04 not really a spreadsheet")
    return Run(["dedup", p, "--model", c.model(), "--out", c.p("dd")], expect=(_s(p), ".xlsx"), out=c.p("dd"))


@case("dedup-malformed-json-line")
def _(c):
    recs = c.records()
    p = c.jsonl("listings.jsonl", recs)
    lines = p.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2][: len(lines[2]) // 2] + "\n"  # data row 3 cut in half
    p.write_text("".join(lines), encoding="utf-8")
    return Run(["dedup", p, "--model", c.model(), "--out", c.p("dd")],
               expect=(_s(p), "row 3"), out=c.p("dd"))


@case("dedup-price-with-currency")
def _(c):
    recs = c.records()
    recs[5]["price"] = "12 USD"  # data row 6
    p = c.csv("listings.csv", recs, flat=True)
    return Run(["dedup", p, "--model", c.model(), "--out", c.p("dd")],
               expect=(_s(p), "row 6", "column 'price'", "12 USD"), out=c.p("dd"))


@case("dedup-attributes-not-an-object")
def _(c):
    recs = c.records()
    recs[3]["attributes"] = "[1, 2, 3]"  # data row 4: JSON, but not an object
    p = c.csv("listings.csv", recs, flat=True)
    return Run(["dedup", p, "--model", c.model(), "--out", c.p("dd")],
               expect=(_s(p), "row 4", "column 'attributes'"), out=c.p("dd"))


@case("bench-train-line-label-2")
def _(c):
    b = c.benchmark(lines={"train": ["COL title VAL a\tCOL title VAL b\t0",
                                     "COL title VAL c\tCOL title VAL d\t2"]})
    return Run(["bench", b, "--n-models", 1], expect=(_s(b / "train.txt"), "row 2"))



# ---- class 5: no tracebacks -------------------------------------------------------------------

_CLASS = 5

@case("predict-booster-garbage")
def _(c):
    m = c.model()
    (m / "booster_0.cbm").write_bytes(_garbage())
    return Run(["predict", m, c.listings, c.test_pairs, "--out", c.p("o.parquet")],
               expect=(_s(m), "booster_0.cbm"), out=c.p("o.parquet"))


@case("predict-booster-garbage-digest-matches")
def _(c):  # the manifest agrees with the garbage: the booster loader itself must fail cleanly
    m = c.model()
    (m / "booster_0.cbm").write_bytes(_garbage())
    _fix_digest(m, "booster_0.cbm")
    return Run(["predict", m, c.listings, c.test_pairs, "--out", c.p("o.parquet")],
               expect=("booster_0.cbm",), out=c.p("o.parquet"))


@case("evaluate-pipeline-npz-garbage-digest-matches")
def _(c):
    m = c.model()
    (m / "feature_pipeline.npz").write_bytes(_garbage())
    _fix_digest(m, "feature_pipeline.npz")
    return Run(["evaluate", m, c.listings, c.test_pairs], expect=("feature_pipeline.npz",))


@case("dedup-config-json-garbage-digest-matches")
def _(c):
    m = c.model()
    (m / "config.json").write_text('{"gbdt": {"backend": ')
    _fix_digest(m, "config.json")
    return Run(["dedup", c.listings, "--model", m, "--out", c.p("dd")],
               expect=("config.json",), out=c.p("dd"))


@case("predict-homoglyph-lexicon-garbage-digest-matches")
def _(c):
    m = c.model()
    (m / "homoglyph_cleaner" / "lexicon.npz").write_bytes(_garbage(512))
    _fix_digest(m, "homoglyph_cleaner/lexicon.npz")
    return Run(["predict", m, c.listings, c.test_pairs, "--out", c.p("o.parquet")],
               expect=("lexicon.npz",), out=c.p("o.parquet"))


@case("train-config-unknown-key")
def _(c):
    p = c.write("bad.toml", "n_models = 1\nno_such_setting = 3\n[gbdt]\nmax_iterations = 20\n")
    return Run(["train", c.listings, c.train_pairs, "--out", c.p("m"), "--config", p, "--no-report"],
               expect=(_s(p), "no_such_setting"), out=c.p("m"))



@case("train-folds-50-more-than-pairs")
def _(c):
    p = c.pairs_csv("pairs30.csv", c.pairs("train").head(30))
    return Run(["train", c.listings, p, "--out", c.p("m"), "--folds", 50, "--n-models", 1, "--no-report"],
               expect=("folds",), out=c.p("m"))


@case("train-seed-negative")
def _(c):
    return Run(["train", c.listings, c.train_pairs, "--out", c.p("m"), "--seed", -1], expect=("--seed",),
               out=c.p("m"))


@case("train-folds-not-a-number")
def _(c):
    return Run(["train", c.listings, c.train_pairs, "--out", c.p("m"), "--folds", "x"], expect=("--folds",),
               out=c.p("m"))


@case("unknown-command")
def _(c):
    return Run(["frobnicate", "x"], expect=("frobnicate",))


@case("train-missing-argument")
def _(c):
    return Run(["train", c.listings, "--out", c.p("m")], expect=("'pairs'",), out=c.p("m"))


@case("predict-missing-out-option")
def _(c):
    return Run(["predict", c.model(), c.listings, c.test_pairs], expect=("--out",))


@case("train-out-parent-unwritable", non_root=True)
def _(c):
    parent = c.p("locked")
    parent.mkdir()
    parent.chmod(0o500)
    return Run(["train", c.listings, c.train_pairs, "--out", parent / "m", "--config", c.config(),
                "--no-report"], expect=(_s(parent),), precious=(parent,))


@case("train-listings-nonexistent")
def _(c):
    p = c.p("nope.parquet")
    return Run(["train", p, c.p("nope_pairs.parquet"), "--out", c.p("m")], expect=(_s(p), "not found"),
               out=c.p("m"))


@case("bench-not-a-benchmark")
def _(c):
    p = c.notes_folder()
    return Run(["bench", p, "--n-models", 1], expect=(_s(p),), precious=(p,))



@case("dedup-block-nonsense")
def _(c):
    return Run(["dedup", c.listings, "--model", c.model(), "--out", c.p("dd"), "--block", "nonsense"],
               expect=("--block", "nonsense"), out=c.p("dd"))


@case("dedup-truth-column-missing")
def _(c):
    return Run(["dedup", c.listings, "--model", c.model(), "--out", c.p("dd"), "--truth", "no_such_col"],
               expect=("no_such_col",), out=c.p("dd"))


@case("dedup-threshold-above-1")
def _(c):
    return Run(["dedup", c.listings, "--model", c.model(), "--out", c.p("dd"), "--threshold", 2],
               expect=("--threshold",), out=c.p("dd"))


@case("generate-n-0")
def _(c):
    return Run(["generate", c.p("g"), "-n", 0], expect=("--n-listings",), out=c.p("g"))


@case("generate-n-negative")
def _(c):
    return Run(["generate", c.p("g"), "-n", -5], expect=("--n-listings",), out=c.p("g"))


@case("demo-n-listings-too-small")
def _(c):
    return Run(["demo", "--out", c.p("d"), "--n-listings", 10], expect=("--n-listings",), out=c.p("d"))





@case("predict-out-unsupported-extension")
def _(c):
    out = c.p("scores.xlsx")
    return Run(["predict", c.model(), c.listings, c.test_pairs, "--out", out], expect=(_s(out), ".xlsx"),
               out=out)


def _strict_json(text: str):
    return json.loads(text, parse_constant=lambda token: pytest.fail(f"non-standard JSON token {token}"))


@case("evaluate-json-one-class-pairs", code=0)
def _(c):
    pairs = c.pairs("test")
    p = c.pairs_csv("positives.csv", pairs[pairs["label"] == 1])
    js = c.p("metrics.json")

    def check(proc):
        met = _strict_json(js.read_text())
        assert met["n_positive"] == met["n_pairs"] == int((pairs["label"] == 1).sum())

    return Run(["evaluate", c.model(), c.listings, p, "--json", js], out=js, check=check)


# --------------------------------------------------------------------------- the runner


def _nonblank_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def _show(proc) -> str:
    return f"exit {proc.returncode}\n--- stderr ---\n{proc.stderr[-4000:]}\n--- stdout ---\n{proc.stdout[-1500:]}"


def _cmd(argv) -> str:
    return "dupsearch " + " ".join(str(a) for a in argv)


@pytest.mark.parametrize("spec", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_input(spec: Case, shared: Shared, tmp_path: Path, monkeypatch):
    if spec.non_root and hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("running as root: file permissions do not stop root")
    root = tmp_path / "case"
    root.mkdir()
    ctx = Ctx(root, shared)
    run = spec.build(ctx)
    argv = [str(a) for a in run.argv]
    before = snapshot(root, exclude=[run.out])
    precious_before = {str(p): snapshot(p) for p in run.precious}
    monkeypatch.chdir(root)  # the command's working directory: `--out .` means the case folder
    t0 = time.perf_counter()
    try:
        proc = run_cli(*argv, timeout=CASE_TIMEOUT)
    finally:
        for p in run.precious:  # let pytest clean up a locked folder
            if Path(p).is_dir():
                Path(p).chmod(0o755)
    seconds = time.perf_counter() - t0
    after = snapshot(root, exclude=[run.out])
    codes = spec.code if isinstance(spec.code, tuple) else (spec.code,)
    lines = _nonblank_lines(proc.stderr)
    where = f"{_cmd(argv)}\n(cwd {root})\n{_show(proc)}"

    problems = []  # every way the case fails, said at once
    if "Traceback" in proc.stderr:
        problems.append("a traceback on stderr")
    if proc.returncode not in codes:
        problems.append(f"exit {proc.returncode}, expected {' or '.join(map(str, codes))}")
    if proc.returncode != 0:
        errors = [ln for ln in lines if ln.startswith("error: ")]
        if len(errors) != 1 or lines[-1] != errors[0]:
            problems.append(f"stderr does not end in exactly one 'error: ' line ({len(errors)} error "
                            f"lines of {len(lines)})")
        error = errors[-1] if errors else None
        if error is None:
            problems.append("no 'error: ' line")
        else:
            problems += [f"the error line does not name {w!r}" for w in run.expect if str(w) not in error]
    if after != before:
        problems.append(f"files outside --out changed: {snapshot_diff(before, after)}")
    for p, snap in precious_before.items():
        if not Path(p).exists() or snapshot(p) != snap:
            problems.append(f"{p} was not left intact")
    check_error = None
    if not problems and run.check is not None:
        try:
            run.check(proc)
        except AssertionError as e:
            check_error = str(e)
    _record(spec, proc, lines, seconds, argv, root, problems, check_error)
    assert not problems, "; ".join(problems) + f"\n{where}"
    assert check_error is None, check_error


def _record(spec: Case, proc, lines: list[str], seconds: float, argv: list[str], root: Path,
            problems: list[str], check_error: str | None) -> None:
    """With DUPSEARCH_BAD_INPUT_LOG=FILE, one JSON line per case: RELIABILITY.md's table
    (``python tests/reliability_table.py FILE``) counts its outcomes."""
    log = os.environ.get("DUPSEARCH_BAD_INPUT_LOG")
    if not log:
        return
    first = next((ln for ln in lines if ln.startswith("error: ")), lines[0] if lines else "")
    changed = any(p.startswith(("files outside --out changed", )) or "was not left intact" in p
                  for p in problems)
    if "Traceback" in proc.stderr:
        outcome = "traceback"
    elif changed:
        outcome = "silent loss"
    elif problems or check_error:
        outcome = "wrong result" if proc.returncode == 0 else "unclear error"
    else:
        outcome = "handled" if proc.returncode == 0 else "clear error"
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"id": spec.id, "class": spec.klass, "outcome": outcome,
                             "problems": problems + ([check_error] if check_error else []),
                             "rc": proc.returncode, "lines": len(lines), "first": first,
                             "traceback": "Traceback" in proc.stderr, "seconds": round(seconds, 2),
                             "cmd": _cmd(argv), "cwd": str(root), "stderr": proc.stderr[-3000:]},
                            ensure_ascii=False) + "\n")


def test_shared_inputs_unchanged(shared: Shared):
    """No case wrote into the shared market or model (cases copy what they use)."""
    assert snapshot(shared.root) == shared.before


def test_corpus_is_one_table_with_unique_ids():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    commands = {c.id.split("-")[0] for c in CASES}
    assert {"train", "predict", "evaluate", "bench", "ablate", "dedup", "demo", "generate"} <= commands
