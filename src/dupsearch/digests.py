"""Digests of files and folders: the one place dupsearch hashes what it reads or writes.

- ``file_sha256``: the whole file (model files, dedup inputs, score parts);
- ``weights_digest``: a cheap identity of a large weights file (its size and first and last MiB;
  weights are rewritten whole when they change), for encoder caches;
- ``folder_files``: sha256 of every file under a folder, as a model manifest lists them;
- ``verify_files``: check a folder against such a list (a missing, changed or truncated file is
  one ``IntegrityError`` naming it).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from dupsearch.errors import DupsearchError

MIB = 1 << 20


class IntegrityError(DupsearchError):
    """A file is missing, or differs from the digest recorded when it was written."""


def file_sha256(path: str | os.PathLike, chunk: int = 4 * MIB) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def weights_digest(path: str | os.PathLike, h=None) -> str:
    """Size plus the first and last MiB of a file (the whole file when it is small), fed into ``h``
    (a hashlib object) when given; returns the hex digest."""
    path = Path(path)
    h = h if h is not None else hashlib.sha1()
    size = path.stat().st_size
    h.update(f"{size}\0".encode())
    with open(path, "rb") as fh:
        if size <= 2 * MIB:
            h.update(fh.read())
        else:
            h.update(fh.read(MIB))
            fh.seek(size - MIB)
            h.update(fh.read(MIB))
    return h.hexdigest()


def folder_files(folder: str | os.PathLike, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """{relative path (with /): sha256} of every file under ``folder``, except the relative paths
    in ``skip`` and hidden files (the artifact marker, temporary files of an interrupted write)."""
    folder = Path(folder)
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and rel not in skip and not p.name.startswith("."):
            out[rel] = file_sha256(p)
    return out


def folder_sha256(folder: str | os.PathLike, skip: tuple[str, ...] = ()) -> str:
    """One digest of a folder's files (names and bytes)."""
    h = hashlib.sha256()
    for name, digest in folder_files(folder, skip).items():
        h.update(name.encode())
        h.update(digest.encode())
    return h.hexdigest()


def verify_files(folder: str | os.PathLike, files: dict[str, str], what: str) -> None:
    """Every file ``files`` lists is in ``folder`` with that sha256; else one IntegrityError."""
    folder = Path(folder)
    for name, want in files.items():
        path = folder / name
        if not path.is_file():
            raise IntegrityError(f"{what} {folder}: file {name} is missing (the manifest lists it)")
        if file_sha256(path) != want:
            raise IntegrityError(f"{what} {folder}: file {name} does not match the sha256 its manifest "
                                 f"records: it was changed or truncated after it was written")
