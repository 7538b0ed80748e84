"""The feature family protocol.

A family is an object with its own settings (``__init__``), fitted state (attributes ending in
``_``) and three steps:

- ``fit(prepared)``: corpus statistics from the training listings (most families have none);
- ``listing_state(builder)``: the columns it adds to the listing store, computed once per
  listing from the prepared fields (``builder`` shares tokenisation between families);
- ``compare(store, ia, ib)``: its feature columns for the pairs (ia[k], ib[k]) of store rows,
  vectorised over the index arrays.

The output columns are fixed at fit (``columns_``); a family used before fit raises
``NotFittedError``. Families hold no global state, so the same object runs in a worker process,
in a Spark executor or inside the service.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import pandas as pd

from dupsearch.errors import NotFittedError
from dupsearch.features.base import CATEGORY_COLUMNS, flat_tokens, hash_strings
from dupsearch.text.normalize import tokenize


# Prepared fields every store holds as they are (families read them without state of their own).
BASE_STRINGS = ("title", "description", "title_raw", "description_raw", "text", "attrs", "all",
                *CATEGORY_COLUMNS)
BASE_NUMBERS = ("price", "n_images", "fill_rate")


def tagged_set_state(builder_n: int, name: str, doc: np.ndarray, cols: np.ndarray) -> dict:
    """A family's tagged set rows (``features.base.set_matrix``) and the size of each tag per row."""
    from dupsearch.features.base import set_matrix, tag_counts
    X = set_matrix(doc, cols, builder_n)
    return {name: X, f"{name}.sizes": tag_counts(X)}


def tagged_overlap(store, name: str, ia: np.ndarray, ib: np.ndarray):
    """Per tag: entries the two rows of each pair share, and each side's size (see tagged_set_state)."""
    from dupsearch.features.base import shared_count
    X, sizes = store[name], np.asarray(store[f"{name}.sizes"])
    return shared_count(X, X, ia, ib, by_tag=True), sizes[ia], sizes[ib]


def filled(store, field: str) -> np.ndarray:
    """Per store row: whether the prepared text ``field`` is non-empty (``ListingStore.nonempty``)."""
    return store.nonempty(field)


def _strings(column: pd.Series) -> np.ndarray:
    """A prepared text column as an object array of Python strings (``prepare_listings`` gives
    object columns of strings: no round trip through pandas' Arrow strings)."""
    if column.dtype == object:
        return column.to_numpy(dtype=object)
    return column.astype(str).to_numpy(dtype=object)


class StoreBuilder:
    """The prepared listings a store is built from, with per-field tokens shared by families."""

    def __init__(self, prepared: pd.DataFrame | dict):
        # prepared listings: a DataFrame, or its columns (``prepared_columns``: the frame is
        # then made only if a family asks for it)
        if isinstance(prepared, pd.DataFrame):
            self._frame, self._columns = prepared.reset_index(drop=True), None
            self.n = len(self._frame)
        else:
            self._frame, self._columns = None, dict(prepared)
            self.n = len(next(iter(self._columns.values()))) if self._columns else 0
        self._texts: dict[str, list[str]] = {}
        self._tokens: dict[str, list[list[str]]] = {}
        self._hashes: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def prepared(self) -> pd.DataFrame:
        """The prepared listings as a DataFrame."""
        if self._frame is None:  # (prepared_columns gives the columns in PREPARED_COLUMNS order)
            self._frame = pd.DataFrame(self._columns, copy=False)
        return self._frame

    def column(self, name: str) -> pd.Series:
        """One prepared column."""
        if self._columns is not None:
            col = self._columns[name]
            return col if isinstance(col, pd.Series) else pd.Series(col, copy=False)
        return self._frame[name]

    def store(self):
        """A listing store holding the prepared fields that families read directly."""
        from dupsearch.features.store import ListingStore
        store = ListingStore(_strings(self.column("item_id")))
        for c in BASE_STRINGS:
            store.put(c, _strings(self.column(c)))
        for c in BASE_NUMBERS:
            store.put(c, self.column(c).to_numpy(dtype=float))
        return store

    def texts(self, field: str) -> list[str]:
        """The field's prepared strings (one list per field, shared by the families: read, never
        changed; a store of one listing asked pandas for them 26 times)."""
        if field not in self._texts:
            self._texts[field] = _strings(self.column(field)).tolist()
        return self._texts[field]

    def tokens(self, field: str) -> list[list[str]]:
        if field not in self._tokens:
            self._tokens[field] = [tokenize(t) for t in self.texts(field)]
        return self._tokens[field]

    def token_hashes(self, field: str) -> tuple[np.ndarray, np.ndarray]:
        """Stable hashes of the field's tokens, all listings one after another, and counts."""
        if field not in self._hashes:
            flat, lengths = flat_tokens(self.tokens(field))
            self._hashes[field] = (hash_strings(flat), lengths)
        return self._hashes[field]


class Family(ABC):
    """Base class of the feature families (see the module doc)."""

    name: ClassVar[str] = ""

    def __init__(self):
        self.columns_: list[str] | None = None

    # -- to override
    def _fit(self, prepared: pd.DataFrame) -> None:
        """Fit corpus statistics (nothing for most families)."""

    def listing_state(self, builder: StoreBuilder) -> dict:
        """Store columns (name -> array / CSR / Ragged) this family reads in ``compare``."""
        return {}

    @abstractmethod
    def _compare(self, store, ia: np.ndarray, ib: np.ndarray) -> dict[str, np.ndarray]:
        """The family's columns for the pairs of store rows (ia[k], ib[k])."""

    # -- public
    @property
    def fitted(self) -> bool:
        return self.columns_ is not None

    def fit(self, prepared: pd.DataFrame) -> "Family":
        """Fit on prepared training listings; fixes the output columns."""
        self._fit(prepared)
        # The columns are whatever compare gives on two training listings.
        probe = StoreBuilder(prepared.iloc[:2] if len(prepared) >= 2 else pd.concat([prepared] * 2))
        store = probe.store()
        for k, v in self.listing_state(probe).items():
            store.put(k, v)
        self.columns_ = list(self._compare(store, np.array([0]), np.array([1])))
        return self

    def check_fitted(self) -> None:
        if self.columns_ is None:
            raise NotFittedError(f"the {self.name!r} feature family is not fitted: call fit() first "
                                 "(or load a fitted pipeline)")

    def compare(self, store, ia: np.ndarray, ib: np.ndarray) -> dict[str, np.ndarray]:
        """Feature columns (in ``columns_`` order) of the pairs of store rows (ia[k], ib[k])."""
        self.check_fitted()
        ia, ib = np.asarray(ia, np.int64), np.asarray(ib, np.int64)
        out = self._compare(store, ia, ib)
        if getattr(self, "EMPTY_IS_MISSING", False):
            for field in self.fields:
                has = filled(store, field)
                empty = ~(has[ia] & has[ib])
                if empty.any():
                    prefix = f"{self.name}.{field}."
                    for c in self.columns_:
                        if c.startswith(prefix):
                            out[c] = np.where(empty, np.nan, np.asarray(out[c], dtype=float))
        return {c: out[c] for c in self.columns_}

    def settings(self) -> dict:
        """The family's settings (its ``__init__`` arguments), for reports and the model config."""
        return {}


class FieldFamily(Family):
    """A family computed on each of some text fields (its ``fields`` setting; ``FIELDS`` by default).

    With ``EMPTY_IS_MISSING``, a pair where either side's field is empty gets NaN in every column
    of that field (``<name>.<field>.*``): nothing to compare is missing evidence, not agreement.
    Two empty titles would otherwise share no conflicting number, code or colour and look like
    the strongest duplicates (RELIABILITY.md, "Garbage and decisions").
    """

    FIELDS: ClassVar[tuple[str, ...]] = ()
    EMPTY_IS_MISSING: ClassVar[bool] = False

    def __init__(self, fields=None):
        super().__init__()
        self.fields = tuple(self.FIELDS if fields is None else fields)

    def settings(self) -> dict:
        return {"fields": list(self.fields)}
