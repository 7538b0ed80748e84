"""Blockers named by short spec strings, as the command line takes them (``--block SPEC``).

=================================================  ==============================================
spec                                               blocker
=================================================  ==============================================
``category:2``                                     same category path down to level 2
``title``                                          equal normalised title (look-alikes folded)
``phone``                                          a shared phone number in title/description
``key:seller_id+category_l2``                      equal values in all the named columns
``minhash?num_perm=64&bands=16&columns=title``     MinHash LSH on word shingles
``phash``                                          equal perceptual hash of any photo
``ann:text?k=10&partition=category_l2+city``       top-k cosine neighbours (``ann:title``,
                                                   ``ann:photos?encoder=colorhist``; options
                                                   ``encoder``, ``backend``, ``dim``,
                                                   ``min_similarity``, ``exact_limit``)
=================================================  ==============================================

Options common to all: ``max_block`` (bucket size above which a block is skipped and counted),
``name`` (to hold two blockers of one kind in a union).
"""

from __future__ import annotations

import re
from typing import Sequence

import pandas as pd

from dupsearch.candidates.ann import ANNBlocker
from dupsearch.candidates.blocking import (Blocker, CategoryBlocker, ColumnKeyBlocker, ExactKeyBlocker,
                                           ImageHashBlocker, MinHashLSHBlocker)
from dupsearch.encoders.base import parse_spec

KINDS = ("category", "title", "phone", "key", "minhash", "phash", "ann")


def _columns(value: str) -> list[str]:
    # '+' joins columns; in a query string parse_qsl has already turned it into a space
    return [c for c in re.split(r"[+,\s]+", value) if c]


class _Options:
    def __init__(self, spec: str, options: dict[str, str], allowed: Sequence[str]):
        unknown = sorted(set(options) - set(allowed) - {"name", "max_block"})
        if unknown:
            raise ValueError(f"blocker spec {spec!r}: unknown option(s) {unknown}; "
                             f"allowed: {sorted(set(allowed) | {'name', 'max_block'})}")
        self.spec, self.options = spec, options

    def get(self, key: str, cast, default):
        if key not in self.options:
            return default
        raw = self.options[key]
        try:
            return cast(raw)
        except (TypeError, ValueError):
            raise ValueError(f"blocker spec {self.spec!r}: option {key}={raw!r} is not a valid "
                             f"{getattr(cast, '__name__', 'value')}") from None

    def common(self) -> dict:
        """max_block, when given (the name is set by make_blocker for every kind)."""
        return {"max_block": self.get("max_block", int, None)} if "max_block" in self.options else {}


def _int_list(value: str) -> list[int]:
    """'1+2' -> [1, 2] (a list of integers)."""
    out = [int(x) for x in _columns(value)]
    if not out or min(out) < 1:
        raise ValueError(value)
    return out


def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)


def make_blocker(spec: str) -> Blocker:
    """A blocker from its spec string (see the module docstring)."""
    kind, arg, options = parse_spec(spec)
    if kind not in KINDS:
        raise ValueError(f"unknown blocker {kind!r} in {spec!r}; known: {', '.join(KINDS)}")
    blocker = _build(spec, kind, arg, options)
    if options.get("name"):
        blocker.name = options["name"]  # two blockers of one kind in a union need two names
    return blocker


def _build(spec: str, kind: str, arg: str, options: dict[str, str]) -> Blocker:
    if kind == "category":
        o = _Options(spec, options, [])
        level = int(arg) if arg.isdigit() else (2 if not arg else -1)
        if level not in (1, 2, 3, 4):
            raise ValueError(f"blocker spec {spec!r}: the category level must be 1..4")
        return CategoryBlocker(level, **o.common())
    if kind in ("title", "phone"):
        return ExactKeyBlocker(kind, **_Options(spec, options, []).common())
    if kind == "key":
        cols = _columns(arg)
        if not cols:
            raise ValueError(f"blocker spec {spec!r}: name the columns, e.g. key:seller_id+category_l2")
        return ColumnKeyBlocker(cols, **_Options(spec, options, []).common())
    if kind == "minhash":
        o = _Options(spec, options, ["num_perm", "bands", "columns", "seed", "shingle"])
        kw = o.common()
        if "max_block" in kw:
            kw["max_bucket"] = kw.pop("max_block")
        shingle = o.get("shingle", _int_list, (1, 2))
        columns = _columns(options.get("columns", "title+description"))
        if not columns:
            raise ValueError(f"blocker spec {spec!r}: columns= must name at least one column")
        return MinHashLSHBlocker(num_perm=o.get("num_perm", int, 64), bands=o.get("bands", int, 16),
                                 columns=columns, seed=o.get("seed", int, 0), shingle=shingle, **kw)
    if kind == "phash":
        o = _Options(spec, options, ["hash_size"])
        return ImageHashBlocker(max_bucket=o.common().get("max_block", 500),
                                hash_size=o.get("hash_size", int, 8))
    # ann
    o = _Options(spec, options, ["k", "partition", "encoder", "backend", "dim", "min_similarity",
                                 "exact_limit", "threads", "seed", "exclude", "attributes", "char_ngram",
                                 "reduce", "price_weight"])
    if "max_block" in options:
        raise ValueError(f"blocker spec {spec!r}: ann takes no max_block (k bounds each listing's pairs)")
    partition = _columns(options["partition"]) if "partition" in options else ["category_l1"]
    return ANNBlocker(k=o.get("k", int, 10), source=arg or "text", encoder=options.get("encoder") or None,
                      partition=partition, backend=options.get("backend", "auto"),
                      dim=o.get("dim", int, 256), reduce=options.get("reduce", "projection"),
                      price_weight=o.get("price_weight", float, 1.0),
                      min_similarity=o.get("min_similarity", float, None),
                      exact_limit=o.get("exact_limit", int, 5_000), threads=o.get("threads", int, 0),
                      seed=o.get("seed", int, 0), exclude=_columns(options.get("exclude", "")),
                      attributes=o.get("attributes", _bool, True), char_ngram=o.get("char_ngram", int, 0))


def default_blocker_specs(listings: pd.DataFrame) -> list[str]:
    """The blockers `dupsearch dedup` uses when none are named, for the columns at hand.

    Measured on the synthetic marketplace (BENCHMARKS.md, "Catalogue-scale dedup"): same seller
    in the same category finds most re-posts at ~2 candidates per listing; text neighbours (title,
    description and attribute values; and title with attribute values) within category and city
    find re-posts from another account. Equal titles and phone numbers are left out: on shop-heavy
    catalogues they propose many pairs for few re-posts (``--block title --block phone`` adds
    them). Columns a catalogue lacks are left out of keys and partitions.
    """
    has = set(listings.columns)
    cat = [c for c in ("category_l2", "category_l1") if c in has][:1]
    specs = []
    if "seller_id" in has:
        specs.append("key:" + "+".join(["seller_id", *cat]))
    partition = "+".join(cat + (["city"] if "city" in has else []))
    specs.append(f"ann:text?k=10&partition={partition}")
    specs.append(f"ann:title?k=10&partition={partition}")
    return specs
