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

from dupsearch.features.base import join_pairs, prepare_listings

# Every listing field, empty: a test listing names only the fields it is about.
DEFAULTS = dict(title="", description="", category_l1="", category_l2="", category_l3="",
                category_l4="", attributes={}, price=np.nan, images=[])


def pair_batch(*pairs):
    """A prepared pair batch from (listing a, listing b) dicts; pair i is a{i} vs b{i}."""
    rows = []
    for i, (a, b) in enumerate(pairs):
        rows += [{**DEFAULTS, **a, "item_id": f"a{i}"}, {**DEFAULTS, **b, "item_id": f"b{i}"}]
    p = pd.DataFrame({"item_id_a": [f"a{i}" for i in range(len(pairs))],
                      "item_id_b": [f"b{i}" for i in range(len(pairs))]})
    return join_pairs(prepare_listings(pd.DataFrame(rows)), p)


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
