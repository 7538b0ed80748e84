"""What dupsearch may write, replace or delete: only its own artifacts.

Every folder dupsearch writes as a whole (a model, a dedup run, a generated dataset, a demo, an
HTML report) carries a marker file, ``.dupsearch.json``, naming its kind. Before any work a
command checks its outputs (``claim_dir`` / ``claim_file``):

- a folder output may be a path that does not exist, an empty folder, or a folder of that kind
  (its marker, or for folders written before markers existed, the files only dupsearch writes
  there); a file, another kind's folder or a folder of anything else is refused;
- a file output is written atomically over a file, never over a folder, and never over one of
  the command's own inputs;
- the nearest existing folder above an output must be writable (a failure after an hour of
  training is the failure this avoids);
- ``remove_own`` deletes only the entries a kind of artifact consists of, and the folder itself
  only when nothing else is left in it.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

from dupsearch.errors import DupsearchError

MARKER = ".dupsearch.json"

# The entries (file or folder names, glob patterns) each kind of artifact consists of, the files
# that identify one written before markers existed, and whether it is replaced as a whole (then a
# folder holding anything else is refused: replacing it would delete that).
KINDS: dict[str, dict] = {
    "model": {"entries": ["manifest.json", "config.json", "features.json", "metrics.json", "ensemble.json",
                          "feature_pipeline.*", "feature_importance.csv", "booster_*",
                          "homoglyph_cleaner", "encoders", "stacking", "category", "automl", "automl_category",
                          "report"],
              "legacy": ["manifest.json", "features.json", "config.json"], "whole": True},
    "dedup": {"entries": ["manifest.json", "candidates.parquet", "scores", "store", "store.chunks",
                          "clusters.parquet", "duplicates.parquet", "report.json", "groups.html", ".lock",
                          "listings.parquet", ".*.spark-tmp", "spark.log"],  # the last three: the Spark engine's
              "legacy": ["manifest.json", "candidates.parquet"]},
    "dataset": {"entries": ["listings.parquet", "pairs.parquet", "train_pairs.parquet", "valid_pairs.parquet",
                            "test_pairs.parquet", "metadata.json", "README.md", "photos"],
                "legacy": ["listings.parquet", "pairs.parquet", "metadata.json"]},
    "demo": {"entries": ["data", "model", "dedup", "report", "summary.json", "demo.log"],
             "legacy": ["summary.json", "model"]},
    "report": {"entries": ["report.html", "*.png", "*.svg", "*.json", "*.csv", "assets"],
               "legacy": ["report.html"]},
    "index": {"entries": ["manifest.json", "model", "vectorizers", "segments", "deleted-*.npy", ".lock"],
              "legacy": ["manifest.json", "segments", "model"]},
}


class OutputError(DupsearchError):
    """An output path dupsearch refuses to write (it would replace or delete what is not its own)."""


def _marker(path: Path) -> dict | None:
    try:
        data = json.loads((path / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def kind_of(path: str | os.PathLike) -> str | None:
    """The kind of dupsearch artifact the folder ``path`` is (its marker, else its legacy files)."""
    path = Path(path)
    if not path.is_dir():
        return None
    marker = _marker(path)
    if marker is not None:
        kind = marker.get("kind")
        return kind if kind in KINDS else None
    for kind, spec in KINDS.items():
        if all((path / name).exists() for name in spec["legacy"]):
            return kind
    return None


def mark(path: str | os.PathLike, kind: str) -> None:
    """Write the marker that makes the folder ``path`` a dupsearch artifact of ``kind``."""
    from dupsearch import __version__
    from dupsearch.atomic import atomic_write_text
    if kind not in KINDS:
        raise ValueError(f"unknown artifact kind {kind!r}")
    atomic_write_text(Path(path) / MARKER, json.dumps({"kind": kind, "dupsearch": __version__}))


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_writable(path: str | os.PathLike, what: str = "--out") -> None:
    """Fail now, not after the work, when ``path`` cannot be created or written."""
    path = Path(path)
    base = _nearest_existing(path)
    if base.exists() and not base.is_dir() and base != path.absolute():
        raise OutputError(f"{what} {path}: {base} is a file, not a folder")
    folder = base if base.is_dir() else base.parent
    try:
        fd, probe = tempfile.mkstemp(prefix=".dupsearch-write-check.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputError(f"{what} {path}: cannot write in {folder} ({e.strerror or e})") from None


def _inputs(inputs: Iterable) -> list[Path]:
    return [Path(p).absolute() for p in inputs if p is not None]


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def claim_dir(path: str | os.PathLike, kind: str, inputs: Iterable = (), what: str = "--out") -> Path:
    """Check that the folder output ``path`` is dupsearch's to write as a ``kind`` artifact."""
    path = Path(path)
    if kind not in KINDS:
        raise ValueError(f"unknown artifact kind {kind!r}")
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} {path} is a file; dupsearch writes a {kind} folder there and "
                          f"never replaces a file it did not write: choose another path")
    for inp in _inputs(inputs):
        if _same(path, inp) or path.absolute().resolve() in inp.resolve().parents:
            raise OutputError(f"{what} {path} holds this command's input {inp}: choose another path")
    if path.is_dir() and any(path.iterdir()):
        have = kind_of(path)
        if have != kind:
            what_it_is = f"a dupsearch {have} folder" if have else "a folder dupsearch did not write"
            raise OutputError(f"{what} {path} is {what_it_is}, not a {kind}: choose another path "
                              f"or an empty folder (dupsearch replaces only its own {kind} folders)")
        if KINDS[kind].get("whole"):
            own = set(own_entries(path, kind))
            foreign = sorted(p.name for p in path.iterdir() if p not in own)
            if foreign:
                raise OutputError(f"{what} {path} is a dupsearch {kind} folder that also holds "
                                  f"{', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}, which "
                                  f"replacing it would delete: move {'them' if len(foreign) > 1 else 'it'} "
                                  f"or choose another path")
    check_writable(path, what)
    return path


def claim_file(path: str | os.PathLike, inputs: Iterable = (), what: str = "--out") -> Path:
    """Check that the file output ``path`` may be written: not a folder, not an input, writable."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder; give a file path")
    for inp in _inputs(inputs):
        if _same(path, inp):
            raise OutputError(f"{what} {path} is this command's input: choose another path")
        if inp.is_dir() and path.resolve().is_relative_to(inp.resolve()):
            # an input folder (a model, a benchmark) is read as a whole: writing into it would
            # change an input (a model's file no longer matching its manifest, a benchmark split)
            raise OutputError(f"{what} {path} is inside this command's input folder {inp}: "
                              "choose another path")
    check_writable(path, what)
    return path


def own_entries(path: str | os.PathLike, kind: str) -> list[Path]:
    """The entries of the folder ``path`` that a ``kind`` artifact consists of."""
    path = Path(path)
    found = {path / MARKER} if (path / MARKER).exists() else set()
    for pattern in KINDS[kind]["entries"]:
        found.update(path.glob(pattern))
    found.update(path.glob(".*.tmp"))  # atomic writes a killed run left
    return sorted(found)


def remove_own(path: str | os.PathLike, kind: str) -> list[Path]:
    """Delete what dupsearch wrote in the ``kind`` folder ``path`` (nothing else); the folder
    itself goes only when it is then empty. Returns the entries kept (not dupsearch's)."""
    path = Path(path)
    if not path.is_dir() or not [p for p in path.iterdir() if p.name != ".lock"]:
        return []  # nothing there (but perhaps the lock of whoever is removing)
    have = kind_of(path)
    if have != kind:
        raise OutputError(f"{path} is not a dupsearch {kind} folder; nothing removed")
    last = (MARKER, ".lock")  # the marker and a run's lock go only with the folder
    for entry in own_entries(path, kind):
        if entry.name in last:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)
    kept = [p for p in path.iterdir() if p.name not in last]
    if kept:
        return sorted(kept)
    for name in last:
        (path / name).unlink(missing_ok=True)
    path.rmdir()
    return []


def open_dir(path: str | os.PathLike, kind: str, inputs: Iterable = (), what: str = "--out") -> Path:
    """``claim_dir``, then create the folder and mark it: from here on it is dupsearch's."""
    path = claim_dir(path, kind, inputs, what)
    path.mkdir(parents=True, exist_ok=True)
    if _marker(path) is None:
        mark(path, kind)
    return path
