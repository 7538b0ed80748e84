"""Load the Ditto-serialized product-matching benchmarks (../shared/benchmarks/README.md).

Each line is ``LEFT<TAB>RIGHT<TAB>LABEL`` and a record is
``COL <attr> VAL <value> COL <attr> VAL <value> ...``. The same serialized record recurs across
pairs; it becomes one listing whose item_id is a hash of the record, so ids are stable across
splits and runs.

Benchmark pairs are kept exactly as published (repeats and self-pairs included, only counted in
the report's notes): the published scores are computed over every line.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dupsearch.errors import DataError
from dupsearch.io.schema import CATEGORY_COLUMNS, LoadReport, normalize_listings

_log = logging.getLogger(__name__)

TRAIN_SIZES = ("small", "medium")

# "COL <attr> VAL" at the start of the record or after whitespace. Lookarounds (not consumed
# spaces) so an empty value -- "VAL  COL" or "VAL COL" -- still splits correctly.
_FIELD = re.compile(r"(?:(?<=\s)|^)COL (\S+) VAL(?=\s|$)")

_TITLE_KEYS = ("title", "name")


def record_id(record: str) -> str:
    """Stable short id of a serialized record: the first 16 hex digits of its sha1."""
    return hashlib.sha1(record.encode("utf-8")).hexdigest()[:16]


def parse_record(record: str) -> list[tuple[str, str]]:
    """``"COL a VAL x COL b VAL "`` -> ``[("a", "x"), ("b", "")]``; values are stripped."""
    matches = list(_FIELD.finditer(record))
    if not matches or matches[0].start() != 0:
        raise ValueError("a record must start with 'COL <attribute> VAL'")
    fields = []
    for m, nxt in zip(matches, matches[1:] + [None]):
        end = nxt.start() if nxt is not None else len(record)
        fields.append((m.group(1), record[m.end():end].strip()))
    return fields


def _record_to_listing(item_id: str, record: str) -> tuple[dict, bool]:
    """One listing row; the flag says a price was present but not a number."""
    row = {"item_id": item_id, "title": None, "description": "", "price": np.nan}
    attributes: dict[str, str] = {}
    bad_price = False
    for attr, value in parse_record(record):
        key = attr.lower()
        if key in _TITLE_KEYS and row["title"] is None:
            row["title"] = value
        elif key == "description" and not row["description"]:
            row["description"] = value
        elif key == "category" and "category_l1" not in row:
            row["category_l1"] = value
        elif key == "price" and value and np.isnan(row["price"]):
            try:
                row["price"] = float(value.replace(",", ""))
            except ValueError:
                # Keep the text where a person can still see it rather than dropping it.
                attributes.setdefault("price", value)
                bad_price = True
        elif value and key != "price":
            attributes.setdefault(attr, value)
    row["title"] = row["title"] or ""
    row["attributes"] = attributes
    return row, bad_price


def dirty_record(record: str, p: float = 0.5, seed: int = 0) -> str:
    """A record as in Magellan's "dirty" benchmarks (Mudgal et al., SIGMOD 2018): each attribute
    value other than the title is moved to the end of the title with probability ``p`` (its
    attribute left empty). The draw depends on the record and ``seed`` only, so a record that
    recurs across pairs and splits is made dirty the same way everywhere."""
    fields = parse_record(record)
    title = next((i for i, (k, _) in enumerate(fields) if k.lower() in _TITLE_KEYS), None)
    if title is None or p <= 0:
        return record
    rng = np.random.default_rng([int(seed), int(record_id(record), 16) & 0xFFFFFFFF])
    moved = []
    for i, (k, v) in enumerate(fields):
        if i != title and v and rng.random() < p:
            moved.append(v)
            fields[i] = (k, "")
    fields[title] = (fields[title][0], " ".join([fields[title][1], *moved]).strip())
    return " ".join(f"COL {k} VAL {v}" for k, v in fields)


def _price_text(price: float) -> str:
    return f"{price:.2f}".rstrip("0").rstrip(".")


def values_moved_into_title(listings: pd.DataFrame, p: float = 0.5, seed: int = 0) -> pd.DataFrame:
    """The listings made dirty as ``dirty_record`` makes a record, on listing columns: each value
    other than the title (the description, every attribute, the categories, the price) is moved
    to the end of the title with probability ``p``, its field left empty (an attribute dropped,
    the price missing). The draws depend on the listing's id and ``seed`` only. A copy; ids kept."""
    out = listings.copy()
    if p <= 0 or not len(out):
        return out
    cats = [c for c in CATEGORY_COLUMNS if c in out.columns]
    has = {c: c in out.columns for c in ("description", "attributes", "price")}
    n = len(out)
    given = {c: out[c].tolist() if has[c] else [None] * n for c in ("description", "attributes")}
    given_prices = out["price"].to_numpy(dtype=float) if has["price"] else np.full(n, np.nan)
    titles, descs, attrs, prices = [], [], [], []
    cat_values = {c: out[c].to_numpy(dtype=object).copy() for c in cats}
    # A loop over listings (training copies: thousands): each listing draws from a generator
    # of its own id, as dirty_record does per record, so a listing is moved alike wherever it recurs.
    for i, (item_id, title) in enumerate(zip(out["item_id"].astype(str), out["title"].fillna("").astype(str))):
        rng = np.random.default_rng([int(seed), int(hashlib.sha1(item_id.encode("utf-8")).hexdigest()[:8], 16)])
        moved = []
        desc = given["description"][i]
        if isinstance(desc, str) and desc and rng.random() < p:
            moved.append(desc)
            desc = ""
        a = given["attributes"][i]
        if isinstance(a, dict) and a:
            kept = {}
            for k, v in a.items():
                if v not in (None, "") and rng.random() < p:
                    moved.append(str(v))
                else:
                    kept[k] = v
            a = kept
        for c in cats:
            v = cat_values[c][i]
            if isinstance(v, str) and v and rng.random() < p:
                moved.append(v)
                cat_values[c][i] = None
        price = given_prices[i]
        if np.isfinite(price) and rng.random() < p:
            moved.append(_price_text(float(price)))
            price = np.nan
        titles.append(" ".join([title, *moved]).strip())
        descs.append(desc)
        attrs.append(a)
        prices.append(price)
    out["title"] = pd.Series(titles, index=out.index, dtype=out["title"].dtype)
    if has["description"]:
        out["description"] = pd.Series(descs, index=out.index, dtype=out["description"].dtype)
    if has["attributes"]:
        out["attributes"] = pd.Series(attrs, index=out.index, dtype=object)
    if has["price"]:
        out["price"] = np.asarray(prices, dtype=float)
    for c in cats:
        out[c] = pd.Series(cat_values[c], index=out.index, dtype=out[c].dtype)
    return out


def load_benchmark_split(path: str | Path, dirty: float = 0.0, dirty_seed: int = 0
                         ) -> tuple[pd.DataFrame, pd.DataFrame, LoadReport]:
    """One benchmark file -> (listings, pairs, report). Pairs are item_id_a, item_id_b, label.
    ``dirty`` > 0: the records made dirty first (``dirty_record``; ids stay those of the clean
    records)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("benchmark file not found", path=str(path))
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError("not valid UTF-8; re-encode the file as UTF-8", path=str(path),
                        row=data.count(b"\n", 0, e.start) + 1) from None

    ids: dict[str, str] = {}  # serialized record -> item_id
    left, right, labels = [], [], []
    names = ("left", "right", "label")
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            missing = names[len(parts)] if len(parts) < 3 else "label"
            raise DataError(f"expected 3 tab-separated fields (left, right, label), found "
                            f"{len(parts)}", path=str(path), row=lineno, column=missing)
        label = parts[2].strip()
        if label not in ("0", "1"):
            raise DataError(f"label must be 0 or 1, got {label!r}", path=str(path), row=lineno,
                            column="label")
        for side, raw, out in (("left", parts[0], left), ("right", parts[1], right)):
            record = raw.strip()
            item_id = ids.get(record)
            if item_id is None:
                if _FIELD.match(record) is None:
                    raise DataError(f"record must start with 'COL <attribute> VAL', got "
                                    f"{record[:60]!r}", path=str(path), row=lineno, column=side)
                item_id = ids[record] = record_id(record)
            out.append(item_id)
        labels.append(int(label))
    if not labels:
        raise DataError("file is empty", path=str(path))

    report = LoadReport(str(path), rows_read=len(labels), rows_kept=len(labels))
    rows, bad_prices = [], 0
    for record, item_id in ids.items():
        row, bad = _record_to_listing(item_id, dirty_record(record, dirty, dirty_seed) if dirty else record)
        rows.append(row)
        bad_prices += bad
    report.note("unparseable price (kept in attributes['price'])", bad_prices)
    columns = ["item_id", "title", "description", *CATEGORY_COLUMNS, "attributes", "price"]
    listings, _ = normalize_listings(pd.DataFrame.from_records(rows).reindex(columns=columns),
                                     source=str(path))

    pairs = pd.DataFrame({"item_id_a": pd.Series(left, dtype=str),
                          "item_id_b": pd.Series(right, dtype=str),
                          "label": np.asarray(labels, dtype=np.int8)})
    _note_pair_oddities(pairs, report)
    return listings, pairs, report


def _note_pair_oddities(pairs: pd.DataFrame, report: LoadReport) -> None:
    a, b = pairs["item_id_a"], pairs["item_id_b"]
    report.note("self-pairs (kept)", int((a == b).sum()))
    key = a.where(a <= b, b) + ":" + b.where(a <= b, a)
    dup = key.duplicated(keep="first")
    report.note("repeated pairs (kept)", int(dup.sum()))
    conflicting = pairs["label"].groupby(key).transform("nunique") > 1
    report.note("repeated pairs with conflicting labels (kept)", int((dup & conflicting).sum()))


@dataclass
class BenchmarkData:
    """One benchmark dataset: all listings of every split, and the three pair frames."""

    name: str
    listings: pd.DataFrame
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    reports: dict[str, LoadReport] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    def __str__(self) -> str:
        return (f"{self.name}: {len(self.listings)} listings, train {len(self.train)} / valid "
                f"{len(self.valid)} / test {len(self.test)} pairs")


def _split_file(directory: Path, split: str, train_size: str) -> Path:
    sized = directory / f"{split}-{train_size}.txt"
    if sized.is_file():
        return sized
    plain = directory / f"{split}.txt"
    if plain.is_file():
        return plain
    present = ", ".join(sorted(p.name for p in directory.glob("*.txt"))) or "none"
    raise DataError(f"missing {split}.txt (or {sized.name}); .txt files present: {present}",
                    path=str(directory))


def load_benchmark(dataset_dir: str | Path, train_size: str = "medium", dirty: float = 0.0,
                   dirty_seed: int = 0) -> BenchmarkData:
    """Load ``train``/``valid``/``test`` of one benchmark folder (e.g. .../benchmarks/abt-buy).

    Datasets with ``train-small.txt``/``train-medium.txt`` (the WDC ones) use ``train_size`` to pick
    the train and valid files; the others ignore it. ``dirty`` > 0 loads the dirty variant
    (``dirty_record``: values moved into the title with that probability).
    """
    if train_size not in TRAIN_SIZES:
        raise ValueError(f"train_size must be one of {TRAIN_SIZES}, not {train_size!r}")
    if not 0 <= dirty <= 1:
        raise ValueError(f"dirty must be a probability in [0, 1], not {dirty!r}")
    directory = Path(dataset_dir)
    if not directory.is_dir():
        siblings = (sorted(p.name for p in directory.parent.iterdir() if p.is_dir())
                    if directory.parent.is_dir() else [])
        hint = f"; datasets next to it: {', '.join(siblings)}" if siblings else ""
        raise DataError(f"benchmark folder not found{hint}", path=str(directory))

    files = {split: _split_file(directory, split, train_size)
             for split in ("train", "valid", "test")}
    if files["train"].name == "train.txt":
        _log.info("%s has one training set (no train-small/train-medium); train_size=%r ignored",
                  directory.name, train_size)
    listings, pairs, reports = [], {}, {}
    for split, path in files.items():
        split_listings, pairs[split], reports[split] = load_benchmark_split(path, dirty, dirty_seed)
        listings.append(split_listings)
    # Same record -> same hashed id in every split, so dropping repeated ids is a true dedup.
    all_listings = (pd.concat(listings, ignore_index=True)
                    .drop_duplicates(subset="item_id", keep="first")
                    .reset_index(drop=True))
    return BenchmarkData(name=directory.name, listings=all_listings, train=pairs["train"],
                         valid=pairs["valid"], test=pairs["test"], reports=reports, files=files)
