"""A listing store built in chunks by forked worker processes (a catalogue's store, in bounded memory).

``build_store_chunks(matcher, listings, chunks_dir, want, workers, progress)`` calls
``matcher.build_store`` (any object with that method) over chunks of rows; each chunk is saved
and reused when a chunk of the same rows and identity is already there, so an interrupted build
resumes. ``ListingStore.concat_saved`` joins them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dupsearch.errors import DupsearchError
from dupsearch.progress import steps
from dupsearch.threads import one_thread_each

_BUILDING: tuple | None = None  # (matcher, listings, chunks dir, identity) while workers build chunks
STORE_CHUNK = 20_000  # listings per store chunk: bounds a worker's memory, not the catalogue's


def _build_chunk(bounds: tuple[int, int]) -> Path:
    """Build the store of listings [start, end) and save it as a chunk (reused when a chunk of
    the same rows, model and input is already there: an interrupted build resumes)."""
    from dupsearch.features.store import ListingStore
    matcher, listings, chunks_dir, want = _BUILDING
    path = chunks_dir / f"chunk-{bounds[0]:012d}"
    ident = {**want, "rows": list(bounds)}
    if (path / "store.json").is_file():
        try:
            if ListingStore.open(path).meta.get("chunk") == ident:
                return path
        except DupsearchError:
            pass
    store = matcher.build_store(listings.iloc[bounds[0]:bounds[1]])
    store.meta["chunk"] = ident
    store.save(path)
    return path


def build_store_chunks(matcher, listings: pd.DataFrame, chunks_dir: Path, want: dict, workers: int,
                        progress: bool) -> list[Path]:
    """``matcher.build_store`` over the listings in chunks of STORE_CHUNK rows, in ``workers``
    processes (fork), each chunk saved under ``chunks_dir``; returns the chunks in row order."""
    n = len(listings)
    # a few chunks per worker even out the last round; at most STORE_CHUNK listings each
    step = max(min(STORE_CHUNK, -(-n // (4 * workers))), 2_000)
    bounds = [(s, min(s + step, n)) for s in range(0, n, step)] or [(0, 0)]
    global _BUILDING
    _BUILDING = (matcher, listings, chunks_dir, want)
    paths = []
    try:
        with steps(progress, len(bounds), "building the listing store") as advance:
            if workers <= 1 or len(bounds) == 1:
                for b in bounds:
                    paths.append(_build_chunk(b))
                    advance()
            else:
                import multiprocessing as mp
                with mp.get_context("fork").Pool(workers, initializer=one_thread_each) as pool:
                    for path in pool.imap(_build_chunk, bounds):
                        paths.append(path)
                        advance()
    finally:
        _BUILDING = None
    return paths
