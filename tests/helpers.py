"""Helpers shared by the feature tests: listings with default fields and pair batches.

Tests import them as ``from helpers import ...``: tests/ has no __init__.py, so pytest puts
this folder on sys.path (the same way ``from conftest import ...`` works).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd

from typing import NamedTuple

from dupsearch.features.antiwords import AntiwordFamily
from dupsearch.features.base import prepare_listings
from dupsearch.features.category import CategoryFamily
from dupsearch.features.family import StoreBuilder
from dupsearch.features.lengths import LengthFamily
from dupsearch.features.price import PriceFamily
from dupsearch.features.scripts import ScriptFamily
from dupsearch.features.sets import SetFamily
from dupsearch.features.strings import StringFamily

# Every listing field, empty: a test listing names only the fields it is about.
DEFAULTS = dict(title="", description="", category_l1="", category_l2="", category_l3="",
                category_l4="", attributes={}, price=np.nan, images=[])


class PairBatch(NamedTuple):
    """Prepared listings and the pairs (ia[k], ib[k]) of their rows."""
    prepared: pd.DataFrame
    ia: np.ndarray
    ib: np.ndarray


def pair_batch(*pairs) -> PairBatch:
    """Prepared listings from (listing a, listing b) dicts; pair i is a{i} vs b{i}."""
    rows = []
    for i, (a, b) in enumerate(pairs):
        rows += [{**DEFAULTS, **a, "item_id": f"a{i}"}, {**DEFAULTS, **b, "item_id": f"b{i}"}]
    prepared = prepare_listings(pd.DataFrame(rows, columns=["item_id", *DEFAULTS]))
    return PairBatch(prepared, np.arange(0, 2 * len(pairs), 2), np.arange(1, 2 * len(pairs), 2))


def swapped(batch: PairBatch) -> PairBatch:
    return PairBatch(batch.prepared, batch.ib, batch.ia)


def features_of(family, batch: PairBatch, fit_on: pd.DataFrame | None = None) -> pd.DataFrame:
    """A family's features of a batch: fitted on ``fit_on`` (default: the batch's listings)
    unless already fitted, its listing state put into a store, then ``compare``."""
    if not family.fitted:
        family.fit(batch.prepared if fit_on is None else fit_on)
    builder = StoreBuilder(batch.prepared)
    store = builder.store()
    for name, value in family.listing_state(builder).items():
        store.put(name, value)
    return pd.DataFrame(family.compare(store, batch.ia, batch.ib), index=range(len(batch.ia)))


def string_features(batch, **kw):
    return features_of(StringFamily(**kw), batch)


def set_features(batch, **kw):
    return features_of(SetFamily(**kw), batch)


def antiword_features(batch, **kw):
    return features_of(AntiwordFamily(**kw), batch)


def length_features(batch, **kw):
    return features_of(LengthFamily(**kw), batch)


def price_features(batch, **kw):
    return features_of(PriceFamily(**kw), batch)


def script_features(batch, **kw):
    return features_of(ScriptFamily(**kw), batch)


def category_features(batch, **kw):
    return features_of(CategoryFamily(**kw), batch)


def field_pairs(field, *pairs):
    """pair_batch of listings that differ from DEFAULTS only in `field`: (value a, value b) pairs."""
    return pair_batch(*[({field: a}, {field: b}) for a, b in pairs])


def run_cli(*args, check_ok: bool = False, timeout: int = 300) -> subprocess.CompletedProcess:
    """`dupsearch ARGS` in a subprocess (the real entry point), optionally asserting exit 0."""
    # Wide "terminal" so rich does not wrap long tmp paths inside messages.
    env = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "dupsearch.cli.main", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=timeout)
    if check_ok:
        assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def one_line(text: str) -> str:
    return " ".join(text.split())


# A model trained in seconds: one booster, few rounds, two folds (tests of the commands around it).
FAST_CONFIG = {"gbdt": {"max_iterations": 60, "early_stopping_rounds": 20, "threads": 2},
               "n_models": 1, "cv_folds": 2}


def small_market_and_model(root, n_listings: int, seed: int):
    """`dupsearch generate` a market of ``n_listings`` (no photos) into ROOT/data and train a fast
    model on its train pairs into ROOT/model, through the real entry point; returns (data, model,
    config file)."""
    import json
    from pathlib import Path
    root = Path(root)
    data, model, config = root / "data", root / "model", root / "fast.json"
    config.write_text(json.dumps(FAST_CONFIG))
    run_cli("generate", data, "-n", n_listings, "--seed", seed, "--no-photos", check_ok=True)
    run_cli("train", data / "listings.parquet", data / "train_pairs.parquet", "--out", model,
            "--config", config, "--folds", 2, "--no-report", check_ok=True)
    return data, model, config
