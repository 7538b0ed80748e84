"""Atomic file writes: a reader sees the old file or the whole new one, never half.

Write to a temporary file in the same directory, then `os.replace` it over the target.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, IO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call `write(fh)` on a temporary binary file next to `path`, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp makes the file private (0600); the result should read like any file written here
    os.fchmod(fd, 0o666 & ~_umask())
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_savez(path: str | os.PathLike, **arrays) -> Path:
    import numpy as np
    return atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays))


def _check_replaceable(path: Path, own: tuple[str, ...]) -> None:
    from dupsearch.artifacts import MARKER, OutputError
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_dir():
        raise OutputError(f"{path} is a file; dupsearch writes a folder there and never replaces a "
                          "file it did not write: choose another path")
    names = {p.name for p in path.iterdir()}
    if names and MARKER not in names and not names & set(own):
        raise OutputError(f"{path} is a folder dupsearch did not write (no {MARKER}"
                          + (f" or {', '.join(own)}" if own else "") + "): nothing replaced; choose "
                          "another path or an empty folder")


@contextmanager
def atomic_directory(path: str | os.PathLike, own: tuple[str, ...] = ()):
    """Build a directory in a temporary sibling, then swap it in for `path`.

    Yields the temporary directory. On success an existing `path` is moved aside, the new one
    renamed into place (the old one is put back if that fails) and the old one removed; on any
    error the temporary directory is deleted and `path` is left as it was. A reader never sees a
    half-written directory.

    An existing `path` is replaced only when it is dupsearch's: empty, or holding the artifact
    marker or one of the files ``own`` names (what this kind of directory always holds, e.g. a
    store's ``store.json``). Anything else is refused before any work: library callers
    (``ListingStore.save``, ``CrossEncoderModel.save``) get the same protection as the CLI.
    """
    import shutil
    path = Path(path)
    _check_replaceable(path, own)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp's 0700 would make the model private to its writer
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "previous")
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old / "previous", path)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def plain_json(obj):
    """``obj`` with what strict JSON cannot hold made plain: NaN and infinities -> None (null),
    numpy scalars and arrays -> Python numbers and lists, tuples -> lists, Paths -> strings."""
    import math
    import numpy as np
    if isinstance(obj, dict):
        return {str(k): plain_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [plain_json(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def strict_json(obj, **kwargs) -> str:
    """JSON that every parser reads: never NaN or Infinity (they become null)."""
    import json
    return json.dumps(plain_json(obj), allow_nan=False, **kwargs)


def atomic_write_json(path: str | os.PathLike, obj, indent: int | None = 2) -> Path:
    return atomic_write_text(path, strict_json(obj, indent=indent, ensure_ascii=False))
