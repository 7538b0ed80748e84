"""The data contract: canonical columns of the listings and pairs tables, and their validation.

Everything that reads user data funnels through :func:`normalize_listings` /
:func:`normalize_pairs`, so the rest of dupsearch can rely on clean dtypes:

listings: item_id (str, unique), title, description, category_l1..l4 (str, "" when missing),
attributes (dict[str, str]), price (float, NaN when missing), images (list[str]), then any
extra columns unchanged.

pairs: item_id_a, item_id_b (str), optional label (int8, 0/1), optional group (str), then
extra columns unchanged.

Row numbers in errors are 1-based data rows (the header is not counted), i.e. what a person
sees when counting the records of a CSV/JSONL file.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import pandas as pd

from dupsearch.errors import DataError
from dupsearch.text.normalize import FORMAT_CHARS_RE, strip_format_chars

CATEGORY_COLUMNS = ["category_l1", "category_l2", "category_l3", "category_l4"]
LISTING_COLUMNS = ["item_id", "title", "description", *CATEGORY_COLUMNS, "attributes", "price",
                   "images"]
REQUIRED_LISTING_COLUMNS = ["item_id", "title"]
PAIR_COLUMNS = ["item_id_a", "item_id_b", "label", "group"]
REQUIRED_PAIR_COLUMNS = ["item_id_a", "item_id_b"]

MEMORY_SOURCE = "<memory>"

# Strings that mean "no price" rather than a typo.
_MISSING_PRICE_WORDS = {"nan", "none", "null", "na", "n/a", "-"}

_log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- report


@dataclass
class LoadReport:
    """What happened while loading one table: rows read, rows kept, and why others were dropped.

    ``skipped`` maps a reason ("self-pair", "duplicate pair", "unknown item_id") to the number of
    rows dropped for it. ``notes`` counts things that were kept but are worth knowing
    (e.g. benchmark pairs that repeat, prices that could not be parsed).
    """

    source: str
    rows_read: int = 0
    rows_kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, count: int) -> None:
        if count:
            self.skipped[reason] = self.skipped.get(reason, 0) + int(count)

    def note(self, what: str, count: int) -> None:
        if count:
            self.notes[what] = self.notes.get(what, 0) + int(count)

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def merge(self, other: "LoadReport") -> "LoadReport":
        """A new report adding up this one and ``other`` (e.g. several files of one dataset)."""
        source = self.source if self.source == other.source else f"{self.source} + {other.source}"
        merged = LoadReport(source, self.rows_read + other.rows_read,
                            self.rows_kept + other.rows_kept, dict(self.skipped), dict(self.notes))
        for reason, n in other.skipped.items():
            merged.skip(reason, n)
        for what, n in other.notes.items():
            merged.note(what, n)
        return merged

    def __str__(self) -> str:
        text = f"{self.source}: read {self.rows_read} rows, kept {self.rows_kept}"
        if self.skipped:
            text += " (skipped " + ", ".join(f"{n} {r}" for r, n in self.skipped.items()) + ")"
        if self.notes:
            text += "; note: " + ", ".join(f"{n} {w}" for w, n in self.notes.items())
        return text

    def warn_if_any(self, logger: logging.Logger | None = None) -> bool:
        """Log a warning when rows were dropped or values changed (format characters removed,
        impossible prices read as missing), so neither happens silently. Returns whether it did."""
        if not self.skipped and not self.notes:
            return False
        (logger or _log).warning("%s", self)
        return True


# --------------------------------------------------------------------------- helpers


def _path(source: str) -> str | None:
    # In-memory frames have no file to name; "file <memory>" would only confuse.
    return None if source == MEMORY_SOURCE else source


def _check_required(df: pd.DataFrame, required: Iterable[str], source: str, table: str) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        present = ", ".join(repr(str(c)) for c in df.columns) or "(none)"
        example = "\n".join(f'{c} = "your_column_name"' for c in missing)
        raise DataError(
            f"missing required column(s) {', '.join(map(repr, missing))} in the {table} table; "
            f"columns present: {present}. If your file names them differently, pass a column "
            f"mapping TOML with a [{table}] section, e.g.\n[{table}]\n{example}",
            path=_path(source))


def _first(mask: np.ndarray | pd.Series) -> int:
    """Position of the first True in a boolean mask."""
    return int(np.flatnonzero(np.asarray(mask))[0])


def _id_column(s: pd.Series, column: str, source: str, rows: np.ndarray) -> pd.Series:
    """Ids as stripped strings; ints (and floats that are whole numbers) are accepted."""
    if pd.api.types.is_float_dtype(s.dtype):
        # A numeric id column with gaps arrives as float; "7.0" must still become "7".
        finite = s.dropna()
        if len(finite) and (finite == finite.round()).all():
            s = s.astype("Int64")
    text = [cell_text(v).strip() for v in s.tolist()]
    if "" in text:
        i = text.index("")
        raise DataError(f"{column} is empty; every row needs an id", path=_path(source),
                        row=int(rows[i]), column=column)
    return pd.Series(text, dtype=str)


def _text_values(df: pd.DataFrame, column: str, source: str = MEMORY_SOURCE) -> list[str]:
    """A text column as a list of Python strings, "" where missing. Plain lists: pandas' string
    operations cost ~0.1 ms a call, most of matching one listing online."""
    if column not in df.columns:
        return [""] * len(df)
    s = df[column]
    values = s.tolist()
    if s.dtype == object:
        values = _decoded(values, column, source)
    return [v if type(v) is str else cell_text(v) for v in values]


def cell_text(value: Any) -> str:
    """A cell as text (as pandas' ``fillna("").astype(str)`` gives it, without a Series): missing (None, NaN of any float type, NA, NaT) is "", never "nan"."""
    if type(value) is str:
        return value
    if _is_missing(value):
        return ""
    try:
        if value != value:  # NaN of a float type _is_missing does not know (numpy float32)
            return ""
    except (TypeError, ValueError):
        pass  # an array or an object that does not compare: not a missing cell
    return str(value)


def _text_column(df: pd.DataFrame, column: str, source: str = MEMORY_SOURCE) -> pd.Series:
    return pd.Series(_text_values(df, column, source), dtype=str)


def _decoded(values: list, column: str, source: str) -> list:
    """Bytes cells (a Parquet binary column) as UTF-8 text; bytes that are not UTF-8 are an error
    naming the row: str() would store their Python repr ("b'...'") as the text."""
    if not any(isinstance(v, (bytes, bytearray)) for v in values):
        return values
    out = []
    for i, v in enumerate(values):
        if isinstance(v, (bytes, bytearray)):
            try:
                v = bytes(v).decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"not UTF-8 text: byte 0x{v[e.start]:02x} at byte {e.start + 1}; "
                                "store text columns as UTF-8 strings", path=_path(source),
                                row=i + 1, column=column) from None
        out.append(v)
    return out


def _visible_text_column(df: pd.DataFrame, column: str, report: "LoadReport") -> pd.Series:
    """A text column without Unicode format characters (zero-width, bidi controls): invisible to
    a reader, they would make two identical titles look different. Cells changed are counted."""
    values = _text_values(df, column, report.source)
    search = FORMAT_CHARS_RE.search
    hit = [i for i, v in enumerate(values) if search(v)]
    for i in hit:
        values[i] = FORMAT_CHARS_RE.sub("", values[i])
    if hit:
        report.note(f"{column} cells with invisible format characters removed", len(hit))
    return pd.Series(values, dtype=str)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return value is pd.NA or value is pd.NaT


def _parse_attributes(value: Any) -> dict[str, str]:
    """One attributes cell -> dict[str, str]. Raises ValueError with a user-facing reason."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return {}
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"attributes is not valid JSON ({e.msg} at character {e.pos}): "
                             f"{_clip(text)}") from None
        if not isinstance(parsed, dict):
            raise ValueError(f"attributes must be a JSON object like {{\"brand\": \"Sony\"}}, "
                             f"got a JSON {type(parsed).__name__}: {_clip(text)}")
        items = parsed.items()
    elif isinstance(value, (list, tuple, np.ndarray)):
        # A parquet map<string,string> column comes back as a list of (key, value) tuples.
        try:
            items = [(k, v) for k, v in value]
        except (TypeError, ValueError):
            raise ValueError("attributes must be a dict (or a JSON object string), "
                             f"got a list: {_clip(str(value))}") from None
    elif _is_missing(value):
        return {}
    else:
        raise ValueError("attributes must be a dict (or a JSON object string), "
                         f"got {type(value).__name__}: {_clip(str(value))}")
    out: dict[str, str] = {}
    _flatten_attributes(items, "", out)
    return out


def _attribute_text(value: Any) -> str:
    if isinstance(value, bool):  # JSON true/false, not Python's "True"
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 128.0 from a numeric column is the 128 the seller wrote
    return strip_format_chars(value if isinstance(value, str) else str(value))


def _flatten_attributes(items, prefix: str, out: dict[str, str]) -> None:
    """Attribute values that are objects become ``key.sub`` entries; lists of plain values become
    one ``", "``-joined value; a list holding objects or lists is refused (no stable key)."""
    for k, v in items:
        key = prefix + strip_format_chars(str(k))
        if _is_missing(v):
            continue  # None comes from parquet structs where a row lacks a key: absent
        if isinstance(v, dict):
            _flatten_attributes(v.items(), key + ".", out)
        elif isinstance(v, (list, tuple, np.ndarray)):
            values = list(v)
            if any(isinstance(x, (dict, list, tuple, np.ndarray)) for x in values):
                raise ValueError(f"attribute {key!r} is a list holding objects or lists; give it "
                                 "plain values or one object per key")
            out[key] = ", ".join(_attribute_text(x) for x in values if not _is_missing(x))
        else:
            out[key] = _attribute_text(v)


def _parse_images(value: Any) -> list[str]:
    """One images cell -> list of paths: list/array, JSON array string, or 'a.jpg;b.jpg'."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v) for v in value if not _is_missing(v) and str(v).strip()]
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as e:
                raise ValueError(f"images looks like a JSON array but is not valid JSON "
                                 f"({e.msg}): {_clip(text)}") from None
            if not isinstance(parsed, list):
                raise ValueError(f"images must be a JSON array of paths: {_clip(text)}")
            return [str(v) for v in parsed if v is not None and str(v).strip()]
        return [p.strip() for p in text.split(";") if p.strip()]
    if _is_missing(value):
        return []
    raise ValueError(f"images must be a list of paths, a JSON array or a ';'-separated string, "
                     f"got {type(value).__name__}: {_clip(str(value))}")


def _clip(text: str, n: int = 80) -> str:
    return repr(text if len(text) <= n else text[:n] + "...")


def _parse_cells(s: pd.Series, parse, column: str, source: str, rows: np.ndarray) -> list:
    out = []
    for i, value in enumerate(s.tolist()):
        try:
            out.append(parse(value))
        except ValueError as e:
            raise DataError(str(e), path=_path(source), row=int(rows[i]), column=column) from None
    return out


def _price_column(df: pd.DataFrame, source: str, rows: np.ndarray, report: "LoadReport"
                  ) -> pd.Series:
    """Prices as float64, NaN when missing. An impossible price (negative, infinite) is no
    evidence about the item: it becomes missing and is counted, never compared as a number."""
    if "price" not in df.columns:
        return pd.Series(np.full(len(df), np.nan), dtype="float64")
    s = df["price"].reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return _possible_prices(s.astype("float64"), report)
    text = s.astype(object).where(s.notna(), "").astype(str).str.strip()
    blank = (text == "") | text.str.lower().isin(_MISSING_PRICE_WORDS)
    values = pd.to_numeric(text.where(~blank, None), errors="coerce").astype("float64")
    bad = (values.isna() & ~blank).to_numpy()
    if bad.any():
        i = _first(bad)
        raise DataError(f"price {text.iloc[i]!r} is not a number; use a plain number like "
                        "1299.99 (no currency symbol or thousands separator) or leave it empty",
                        path=_path(source), row=int(rows[i]), column="price")
    return _possible_prices(values, report)


def _possible_prices(values: pd.Series, report: "LoadReport") -> pd.Series:
    v = values.to_numpy(dtype="float64", copy=True)
    impossible = ~np.isnan(v) & (~np.isfinite(v) | (v < 0))
    if impossible.any():
        v[impossible] = np.nan
        report.note("impossible prices (negative or infinite) read as missing",
                    int(impossible.sum()))
    return pd.Series(v, dtype="float64")


def _row_numbers(df: pd.DataFrame, first_row: int = 1) -> np.ndarray:
    return np.arange(first_row, first_row + len(df))


# --------------------------------------------------------------------------- listings


def _frame_of_columns(columns: dict[str, pd.Series], n: int) -> pd.DataFrame:
    """A frame of Series that all have the index 0..n-1, from their arrays: the same frame as
    ``pd.DataFrame(columns)`` without aligning their indexes (~0.35 ms of ~0.5 for one listing)."""
    plain = pd.RangeIndex(n)
    if all(isinstance(c, pd.Series) and c.index.equals(plain) for c in columns.values()):
        return pd.DataFrame({k: c.array for k, c in columns.items()}, copy=False)
    return pd.DataFrame(columns)


def normalize_listings(df: pd.DataFrame, *, source: str = MEMORY_SOURCE, first_row: int = 1
                       ) -> tuple[pd.DataFrame, LoadReport]:
    """Validate a listings frame and coerce it to the canonical columns and dtypes.
    ``first_row``: the row number errors give the frame's first row (a slice of a larger file).

    Raises DataError (naming ``source``, the row and the column) for a missing required column,
    an empty or duplicate item_id, attributes that are not a JSON object, or an unparseable price.
    """
    _check_required(df, REQUIRED_LISTING_COLUMNS, source, "listings")
    report = LoadReport(source, rows_read=len(df))
    rows = _row_numbers(df, first_row)
    out: dict[str, Any] = {}
    ids = _id_column(df["item_id"], "item_id", source, rows)
    if len(set(ids.tolist())) < len(ids):
        dup = ids.duplicated(keep=False).to_numpy()
        i = _first(dup)
        j = _first(dup & (ids == ids.iloc[i]).to_numpy() & (np.arange(len(ids)) > i))
        raise DataError(f"duplicate item_id {ids.iloc[i]!r} in rows {rows[i]} and {rows[j]}; "
                        "item_id must be unique", path=_path(source), row=int(rows[j]),
                        column="item_id")
    out["item_id"] = ids
    for column in ["title", "description", *CATEGORY_COLUMNS]:
        out[column] = _visible_text_column(df, column, report)
    if "attributes" in df.columns:
        out["attributes"] = pd.Series(
            _parse_cells(df["attributes"], _parse_attributes, "attributes", source, rows),
            dtype=object)
    else:
        out["attributes"] = pd.Series([{} for _ in range(len(df))], dtype=object)
    out["price"] = _price_column(df, source, rows, report)
    if "images" in df.columns:
        out["images"] = pd.Series(_parse_cells(df["images"], _parse_images, "images", source, rows),
                                  dtype=object)
    else:
        out["images"] = pd.Series([[] for _ in range(len(df))], dtype=object)

    for column in df.columns:  # extra columns ride along, after the listing columns
        if column not in LISTING_COLUMNS:
            out[column] = df[column].reset_index(drop=True)
    result = _frame_of_columns(out, len(df))
    report.rows_kept = len(result)
    return result, report


# --------------------------------------------------------------------------- pairs


def _label_value(value: Any) -> int | None:
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value) if value in (0, 1) else None
    if isinstance(value, (float, np.floating)):
        return int(value) if value in (0.0, 1.0) else None
    if isinstance(value, str):
        return {"0": 0, "1": 1, "0.0": 0, "1.0": 1}.get(value.strip())
    return None


def _label_column(s: pd.Series, source: str, rows: np.ndarray) -> np.ndarray:
    # Labels take few distinct values: parse each distinct value once, not each row.
    codes, uniques = pd.factorize(s.reset_index(drop=True), use_na_sentinel=True)
    parsed = [_label_value(u) for u in uniques]
    table = np.array([-1 if p is None else p for p in parsed] + [-1], dtype=np.int8)
    labels = table[codes]  # code -1 (missing) indexes the trailing -1
    bad = labels < 0
    if bad.any():
        i = _first(bad)
        value = s.iloc[i]
        shown = "an empty value" if _is_missing(value) or str(value).strip() == "" else repr(value)
        raise DataError(f"label must be 0 or 1, got {shown}", path=_path(source),
                        row=int(rows[i]), column="label")
    return labels



def pair_key_array(a, b) -> np.ndarray:
    """Order-free key of each pair of item ids ("a\x1fb" with a <= b): (x, y) and (y, x) are one
    pair. ``a``, ``b``: sequences of id strings of one length."""
    a = np.asarray(a, dtype=object).astype(str).astype(object)
    b = np.asarray(b, dtype=object).astype(str).astype(object)
    first = a <= b
    return np.where(first, a, b) + "\x1f" + np.where(first, b, a)


def normalize_pairs(df: pd.DataFrame, *, source: str = MEMORY_SOURCE,
                    listing_ids: Iterable[str] | pd.Series | None = None,
                    on_unknown: str = "raise", on_self_pair: str = "skip"
                    ) -> tuple[pd.DataFrame, LoadReport]:
    """Validate a pairs frame and coerce it to the canonical columns and dtypes.

    - ids are strings; a pair naming an id not in ``listing_ids`` raises (``on_unknown="raise"``)
      or is dropped and counted (``"skip"``);
    - self-pairs (a == b) are dropped and counted (``on_self_pair="skip"``) or raise (``"raise"``);
    - the same unordered pair twice: the first is kept, later ones counted as "duplicate pair";
      if their labels differ that is a DataError naming both rows;
    - label, when present, must be 0/1 (int, float, "0"/"1" or bool) and becomes int8.
    """
    if on_unknown not in ("raise", "skip"):
        raise ValueError(f"on_unknown must be 'raise' or 'skip', not {on_unknown!r}")
    if on_self_pair not in ("raise", "skip"):
        raise ValueError(f"on_self_pair must be 'raise' or 'skip', not {on_self_pair!r}")
    _check_required(df, REQUIRED_PAIR_COLUMNS, source, "pairs")
    report = LoadReport(source, rows_read=len(df))
    rows = _row_numbers(df)
    out: dict[str, Any] = {
        "item_id_a": _id_column(df["item_id_a"], "item_id_a", source, rows),
        "item_id_b": _id_column(df["item_id_b"], "item_id_b", source, rows),
    }
    has_label = "label" in df.columns
    if has_label:
        out["label"] = pd.Series(_label_column(df["label"], source, rows), dtype="int8")
    if "group" in df.columns:
        out["group"] = _text_column(df, "group")
    result = pd.DataFrame(out)
    for column in df.columns:
        if column not in PAIR_COLUMNS:
            result[column] = df[column].reset_index(drop=True)
    keep = np.ones(len(result), dtype=bool)
    a, b = result["item_id_a"], result["item_id_b"]

    if listing_ids is not None:
        known = pd.Index(pd.Series(list(listing_ids), dtype=object).astype(str)).unique()
        # get_indexer hashes once; Series.isin on arrow strings loops in Python.
        unknown_a = known.get_indexer(a) < 0
        unknown_b = known.get_indexer(b) < 0
        unknown = unknown_a | unknown_b
        if unknown.any():
            if on_unknown == "raise":
                i = _first(unknown)
                column = "item_id_a" if unknown_a[i] else "item_id_b"
                raise DataError(f"{column} {result[column].iloc[i]!r} is not an item_id of the "
                                "listings table (pass on_unknown='skip' to drop such pairs)",
                                path=_path(source), row=int(rows[i]), column=column)
            report.skip("unknown item_id", int(unknown.sum()))
            keep &= ~unknown

    self_pair = (a == b).to_numpy() & keep
    if self_pair.any():
        if on_self_pair == "raise":
            i = _first(self_pair)
            raise DataError(f"pair of an item with itself ({a.iloc[i]!r})", path=_path(source),
                            row=int(rows[i]), column="item_id_b")
        report.skip("self-pair", int(self_pair.sum()))
        keep &= ~self_pair

    # Unordered key, so (x, y) and (y, x) are the same pair.
    key = pd.Series(pair_key_array(a, b), index=a.index)[keep]
    dup = key.duplicated(keep="first")
    if dup.any():
        positions = np.flatnonzero(keep)  # key's index is the row position already
        if has_label:
            labels = result["label"][keep]
            first_label = labels.groupby(key, sort=False).transform("first")
            conflict = (dup & (labels != first_label)).to_numpy()
            if conflict.any():
                j = int(positions[_first(conflict)])
                i = int(key.index[_first((key == key.loc[j]).to_numpy())])
                raise DataError(
                    f"pair ({a.iloc[j]!r}, {b.iloc[j]!r}) appears in rows {rows[i]} and {rows[j]} "
                    f"with different labels ({result['label'].iloc[i]} and "
                    f"{result['label'].iloc[j]}); fix or remove one of them",
                    path=_path(source), row=int(rows[j]), column="label")
        report.skip("duplicate pair", int(dup.sum()))
        keep[positions[dup.to_numpy()]] = False

    result = result[keep].reset_index(drop=True)
    report.rows_kept = len(result)
    return result, report
