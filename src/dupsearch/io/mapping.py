"""Column mapping: tell dupsearch which of the user's columns hold the canonical fields.

A TOML file maps canonical name -> the user's column name::

    [listings]
    item_id = "ad_id"
    title = "name"

    [pairs]
    item_id_a = "left_id"
    item_id_b = "right_id"
    label = "is_duplicate"
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dupsearch.errors import DataError
from dupsearch.io.schema import LISTING_COLUMNS, MEMORY_SOURCE, PAIR_COLUMNS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - pyproject pulls in tomli for 3.10
    import tomli as tomllib

_SECTIONS = {"listings": LISTING_COLUMNS, "pairs": PAIR_COLUMNS}


@dataclass
class ColumnMapping:
    """Canonical column name -> user column name, per table. Empty sections mean "no renaming"."""

    listings: dict[str, str] = field(default_factory=dict)
    pairs: dict[str, str] = field(default_factory=dict)
    source: str | None = None  # the TOML file, named in errors

    def __post_init__(self) -> None:
        for section, mapping in (("listings", self.listings), ("pairs", self.pairs)):
            _validate_section(section, mapping, self.source)

    @classmethod
    def from_toml(cls, path: str | Path) -> "ColumnMapping":
        path = Path(path)
        try:
            with path.open("rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise DataError("column mapping file not found", path=str(path)) from None
        except tomllib.TOMLDecodeError as e:
            raise DataError(f"not valid TOML: {e}", path=str(path)) from None
        except UnicodeDecodeError:
            raise DataError("not valid UTF-8; re-encode the file as UTF-8", path=str(path)) from None
        unknown = [k for k in data if k not in _SECTIONS]
        if unknown:
            raise DataError(f"unknown section(s) {', '.join(map(repr, unknown))}; valid sections "
                            "are [listings] and [pairs]", path=str(path), column=unknown[0])
        for section in _SECTIONS:
            if section in data and not isinstance(data[section], dict):
                raise DataError(f"{section!r} must be a table ([{section}]) of "
                                'canonical_name = "your_column" lines', path=str(path),
                                column=section)
        return cls(listings=dict(data.get("listings", {})), pairs=dict(data.get("pairs", {})),
                   source=str(path))

    def apply_listings(self, df: pd.DataFrame, source: str = MEMORY_SOURCE) -> pd.DataFrame:
        """Rename the user's listing columns to canonical names."""
        return self._apply(df, self.listings, "listings", source)

    def apply_pairs(self, df: pd.DataFrame, source: str = MEMORY_SOURCE) -> pd.DataFrame:
        """Rename the user's pair columns to canonical names."""
        return self._apply(df, self.pairs, "pairs", source)

    def _apply(self, df: pd.DataFrame, mapping: dict[str, str], section: str,
               source: str) -> pd.DataFrame:
        if not mapping:
            return df
        path = None if source == MEMORY_SOURCE else source
        where = f" by [{section}] in {self.source}" if self.source else f" by the [{section}] mapping"
        present = ", ".join(repr(str(c)) for c in df.columns)
        for canonical, user in mapping.items():
            if user not in df.columns:
                raise DataError(f"column {user!r} (mapped to {canonical!r}{where}) is not in the "
                                f"data; columns present: {present}", path=path, column=user)
        users = set(mapping.values())
        for canonical, user in mapping.items():
            # Overwriting an existing column of the canonical name would silently lose its data.
            if canonical in df.columns and canonical != user and canonical not in users:
                raise DataError(f"the data has both a {canonical!r} column and {user!r} mapped to "
                                f"{canonical!r}{where}; drop or rename one of them",
                                path=path, column=canonical)
        # Build from the original frame so swaps (title <-> description) and one user column
        # feeding two canonical ones both work.
        dropped = [c for c in df.columns if c in users and c not in mapping]
        out = df.drop(columns=dropped)
        for canonical, user in mapping.items():
            out[canonical] = df[user]
        return out


def _validate_section(section: str, mapping: dict, source: str | None) -> None:
    valid = _SECTIONS[section]
    for key, value in mapping.items():
        if key not in valid:
            raise DataError(f"unknown column name {key!r} in [{section}]; valid names are "
                            f"{', '.join(valid)}", path=source, column=key)
        if not isinstance(value, str) or not value:
            raise DataError(f"[{section}] {key} must be a non-empty string (the name of your "
                            f"column), got {value!r}", path=source, column=key)
