"""Read and write listing / pair tables: parquet, CSV, TSV and JSON lines.

Readers turn every problem into a DataError naming the file and, where it makes sense, the row;
writers are atomic (temp file in the same directory, then os.replace) so a crash never leaves a
half-written table behind.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import re
import uuid
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dupsearch.errors import DataError
from dupsearch.io.mapping import ColumnMapping
from dupsearch.io.schema import LoadReport, normalize_listings, normalize_pairs

_log = logging.getLogger(__name__)

_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv",
            ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
SUPPORTED_EXTENSIONS = tuple(_FORMATS)
_WRITE_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv",
                  ".jsonl": "jsonl", ".ndjson": "jsonl"}


class DataFileNotFoundError(DataError, FileNotFoundError):
    """A data file the user named does not exist (catchable as FileNotFoundError too)."""


def _format_of(path: Path, formats: dict[str, str]) -> str:
    fmt = formats.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"unsupported file extension {path.suffix or '(none)'!r}; supported: "
                        f"{', '.join(formats)}", path=str(path))
    return fmt


def check_writable_format(path: str | Path) -> str:
    """The table format ``write_table`` would use for ``path``; a DataError before any work when
    its extension is not one it writes."""
    return _format_of(Path(path), _WRITE_FORMATS)


# --------------------------------------------------------------------------- reading


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table as-is (no validation). CSV/TSV cells are all strings, so ids like "007" survive."""
    path = Path(path)
    fmt = _format_of(path, _FORMATS)
    if not path.exists():
        raise DataFileNotFoundError("file not found", path=str(path))
    if path.is_dir():
        raise DataError("is a directory, not a data file", path=str(path))
    if path.stat().st_size == 0:
        raise DataError("file is empty", path=str(path))
    if fmt == "parquet":
        df = _read_parquet(path)
    elif fmt in ("csv", "tsv"):
        df = _read_csv(path, sep="\t" if fmt == "tsv" else ",")
    else:
        df = _read_json(path, fmt)
    if len(df) == 0:
        raise DataError("file is empty (no data rows)", path=str(path))
    return df


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pq.read_table(path).to_pandas()
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"cannot read as parquet: {e}", path=str(path)) from None


def _decode(path: Path, header_lines: int, sep: str | None = None) -> str:
    """File text as UTF-8; on a bad byte, name the data row it is on (header not counted; for
    CSV/TSV, ``sep`` given, a row is a record, which a quoted newline makes span lines)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")  # -sig: tolerate the BOM that Excel writes
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        row = line - header_lines
        if sep is not None:
            row = _record_number(data[:e.start].decode("utf-8-sig"), sep) - header_lines
        where = f" (line {line} of the file)" if header_lines else ""
        if row < 1:
            raise DataError(f"not valid UTF-8: byte 0x{data[e.start]:02x} in the header{where}; "
                            "re-encode the file as UTF-8", path=str(path)) from None
        column = e.start - data.rfind(b"\n", 0, e.start)  # 1-based byte offset in the line
        raise DataError(f"not valid UTF-8: byte 0x{data[e.start]:02x} at byte {column} of the "
                        f"line{where}; re-encode "
                        "the file as UTF-8 (e.g. iconv -f cp1252 -t utf-8)",
                        path=str(path), row=row) from None


def _record_number(prefix: str, sep: str) -> int:
    """1-based number of the CSV record (header included, blank lines not) that the text after
    ``prefix`` continues."""
    import csv
    try:
        return len([r for r in csv.reader(io.StringIO(prefix + "x", newline=""), delimiter=sep) if r])
    except csv.Error:  # not parseable as CSV up to there: count lines instead
        return prefix.count("\n") + 1


def _read_csv(path: Path, sep: str) -> pd.DataFrame:
    text = _decode(path, header_lines=1, sep=sep)
    if not text.strip():
        raise DataError("file is empty", path=str(path))
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError("file is empty", path=str(path)) from None
    except pd.errors.ParserError as e:
        m = re.search(r"line (\d+)", str(e))
        row = int(m.group(1)) - 1 if m else None
        raise DataError(f"malformed {'TSV' if sep == chr(9) else 'CSV'}: {str(e).strip()}"
                        " (check quoting and the number of separators)",
                        path=str(path), row=row) from None
    _check_field_counts(text, sep, path, len(df.columns))
    # Stray spaces around header names ("id, title") are a common export artifact.
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _check_field_counts(text: str, sep: str, path: Path, n_columns: int) -> None:
    """A row with fewer fields than the header is an error naming it: pandas pads such rows with
    empty strings, which would silently shift or blank what the row says. (Rows with too many
    fields already fail in pandas.) The csv module walks the text in C; quoted newlines count
    as one record, blank lines are skipped as pandas skips them."""
    import csv

    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    row = 0
    try:
        next(reader, None)  # the header
        for record in reader:
            if not record:
                continue
            row += 1
            if len(record) < n_columns:
                raise DataError(f"{len(record)} fields where the header has {n_columns}; the row "
                                "is cut short (check quoting and separators)", path=str(path), row=row)
    except csv.Error as e:
        raise DataError(f"malformed {'TSV' if sep == chr(9) else 'CSV'}: {e}", path=str(path),
                        row=row + 1) from None


def _read_json(path: Path, fmt: str) -> pd.DataFrame:
    text = _decode(path, header_lines=0)
    if not text.strip():
        raise DataError("file is empty", path=str(path))
    if fmt == "json" and text.lstrip().startswith("["):
        # A .json file may also be one array of objects.
        try:
            records = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"malformed JSON: {e.msg}", path=str(path), row=e.lineno) from None
        for i, rec in enumerate(records, 1):
            if not isinstance(rec, dict):
                raise DataError(f"expected a JSON object, got {type(rec).__name__}",
                                path=str(path), row=i)
        return pd.DataFrame.from_records(records) if records else pd.DataFrame()
    records = []
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            hint = (" (a .json file must hold one JSON object per line, or one array of objects)"
                    if fmt == "json" else "")
            raise DataError(f"malformed JSON line: {e.msg} at character {e.colno}{hint}",
                            path=str(path), row=lineno) from None
        if not isinstance(rec, dict):
            raise DataError(f"expected a JSON object on each line, got {type(rec).__name__}",
                            path=str(path), row=lineno)
        records.append(rec)
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def _as_mapping(mapping: ColumnMapping | str | Path | None) -> ColumnMapping | None:
    if mapping is None or isinstance(mapping, ColumnMapping):
        return mapping
    return ColumnMapping.from_toml(mapping)


def read_listings(path: str | Path, mapping: ColumnMapping | str | Path | None = None
                  ) -> tuple[pd.DataFrame, LoadReport]:
    """Read, rename (``mapping``: a ColumnMapping or a TOML path) and validate a listings table."""
    source = str(path)
    df = read_table(path)
    mapping = _as_mapping(mapping)
    if mapping is not None:
        df = mapping.apply_listings(df, source)
    df, report = normalize_listings(df, source=source)
    # Relative photo paths mean "next to the listings file", wherever the command runs.
    base = Path(path).resolve().parent
    df["images"] = [[p if os.path.isabs(p) or "://" in p else str(base / p) for p in ps]
                    for ps in df["images"]]
    report.warn_if_any(_log)
    return df, report


def read_pairs(path: str | Path, mapping: ColumnMapping | str | Path | None = None,
               listing_ids: Iterable[str] | pd.Series | None = None, on_unknown: str = "raise",
               on_self_pair: str = "skip") -> tuple[pd.DataFrame, LoadReport]:
    """Read, rename and validate a pairs table; see normalize_pairs for what is checked."""
    source = str(path)
    df = read_table(path)
    mapping = _as_mapping(mapping)
    if mapping is not None:
        df = mapping.apply_pairs(df, source)
    df, report = normalize_pairs(df, source=source, listing_ids=listing_ids,
                                 on_unknown=on_unknown, on_self_pair=on_self_pair)
    report.warn_if_any(_log)  # dropped pairs are never silent
    return df, report


# --------------------------------------------------------------------------- writing


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _json_default(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (pd.Timestamp, np.datetime64)):
        return pd.Timestamp(v).isoformat()
    if isinstance(v, (set, frozenset, tuple)):
        return list(v)
    return str(v)


def _clean(v: Any) -> Any:
    """A cell ready for json.dumps: NaN -> null (json would write the invalid token NaN)."""
    if isinstance(v, (dict, list, tuple, np.ndarray)):
        return v
    if isinstance(v, np.generic):
        v = v.item()
    return None if _missing(v) else v


def _is_nested(s: pd.Series) -> bool:
    if s.dtype != object:
        return False
    return any(isinstance(v, (dict, list, tuple, np.ndarray)) for v in s.tolist())


def _to_json_text(v: Any) -> Any:
    if isinstance(v, (dict, list, tuple, np.ndarray)):
        return json.dumps(v, ensure_ascii=False, default=_json_default)
    return v


def _arrow_column(s: pd.Series) -> pa.Array:
    """Native arrow type where possible (attributes -> map<string,string>), else JSON text."""
    if _is_nested(s):
        values = s.tolist()
        if all(_missing(v) or (isinstance(v, dict) and all(isinstance(x, str) for x in v.values()))
               for v in values):
            return pa.array([None if _missing(v) else [(str(k), x) for k, x in v.items()]
                             for v in values], type=pa.map_(pa.string(), pa.string()))
        try:
            return pa.array([None if _missing(v) else (list(v) if isinstance(v, (tuple, np.ndarray))
                                                       else v) for v in values])
        except (pa.ArrowException, TypeError, ValueError):
            return pa.array([None if _missing(v) else _to_json_text(v) for v in values],
                            type=pa.string())
    try:
        return pa.array(s, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        # Mixed-type object column (e.g. ints and strings): store as text.
        return pa.array([None if _missing(v) else str(v) for v in s.tolist()], type=pa.string())


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` (index dropped) atomically to .parquet, .csv, .tsv or .jsonl/.ndjson.

    CSV/TSV/JSONL are UTF-8. In CSV/TSV, dicts and lists (attributes, images) become JSON
    strings, which read_listings parses back.
    """
    path = Path(path)
    fmt = _format_of(path, _WRITE_FORMATS)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same directory as the target, so os.replace is a rename on one filesystem (atomic).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if fmt == "parquet":
            columns = [str(c) for c in df.columns]
            arrays = [_arrow_column(df.iloc[:, i]) for i in range(df.shape[1])]
            pq.write_table(pa.Table.from_arrays(arrays, names=columns), tmp)
        elif fmt in ("csv", "tsv"):
            out = df.copy()
            for i in range(out.shape[1]):
                if _is_nested(out.iloc[:, i]):
                    out.isetitem(i, out.iloc[:, i].map(_to_json_text))
            out.to_csv(tmp, index=False, sep="\t" if fmt == "tsv" else ",", encoding="utf-8")
        else:
            columns = [str(c) for c in df.columns]
            with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                for row in df.itertuples(index=False, name=None):
                    record = {c: _clean(v) for c, v in zip(columns, row)}
                    f.write(json.dumps(record, ensure_ascii=False, default=_json_default))
                    f.write("\n")
        with open(tmp, "rb+") as f:  # flush to disk before the rename makes it visible
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
