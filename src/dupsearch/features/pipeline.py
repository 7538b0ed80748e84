"""The feature pipeline: fit corpus statistics on training listings, then turn
batches of pairs into a feature table. Fitted state lives in this object and is
saved into the model directory."""

from __future__ import annotations

import pickle
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from dupsearch.features.antiwords import antiword_features
from dupsearch.features.attributes import AttributeStats
from dupsearch.features.base import join_pairs, prepare_listings
from dupsearch.features.category import CATEGORICAL, category_features
from dupsearch.features.corpus import CorpusStats
from dupsearch.features.lengths import length_features
from dupsearch.features.price import price_features
from dupsearch.features.scripts import script_features
from dupsearch.features.sets import set_features
from dupsearch.features.strings import string_features

# Stateless families: pure functions of a pair batch.
STATELESS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "category": category_features,
    "strings": string_features,
    "sets": set_features,
    "antiwords": antiword_features,
    "lengths": length_features,
    "price": price_features,
    "scripts": script_features,
}
FITTED = ("corpus", "attributes")
ALL_FAMILIES = tuple(STATELESS) + FITTED


@dataclass
class FeatureConfig:
    families: tuple[str, ...] = ALL_FAMILIES
    batch_size: int = 20_000
    # Undo Cyrillic/Latin look-alike swaps before text features (seed item 7).
    clean_homoglyphs: bool = True

    def __post_init__(self):
        self.families = tuple(self.families)
        unknown = set(self.families) - set(ALL_FAMILIES)
        if unknown:
            raise ValueError(f"unknown feature families {sorted(unknown)}; known: {list(ALL_FAMILIES)}")


class FeaturePipeline:
    """fit(listings) -> transform(listings, pairs) -> feature DataFrame."""

    def __init__(self, config: FeatureConfig | None = None):
        self.config = config or FeatureConfig()
        self.cleaner_ = None
        self.corpus_: CorpusStats | None = None
        self.attributes_: AttributeStats | None = None
        self.feature_names_: list[str] | None = None

    @property
    def categorical_features(self) -> list[str]:
        return [c for c in CATEGORICAL if self.feature_names_ and c in self.feature_names_]

    def fit(self, listings: pd.DataFrame) -> "FeaturePipeline":
        if self.config.clean_homoglyphs:
            from dupsearch.text.homoglyphs import HomoglyphCleaner
            texts = pd.concat([listings["title"], listings.get("description", pd.Series(dtype=object))])
            self.cleaner_ = HomoglyphCleaner().fit(texts.dropna().astype(str).tolist())
        prepared = prepare_listings(listings, self.cleaner_)
        if "corpus" in self.config.families:
            self.corpus_ = CorpusStats().fit(prepared)
        if "attributes" in self.config.families:
            self.attributes_ = AttributeStats().fit(prepared)
        return self

    def transform_batch(self, batch: pd.DataFrame) -> pd.DataFrame:
        """Features of one joined pair batch (see ``features.base.join_pairs``)."""
        parts = []
        for fam in self.config.families:
            if fam in STATELESS:
                parts.append(STATELESS[fam](batch))
            elif fam == "corpus":
                parts.append(self.corpus_.transform(batch))
            elif fam == "attributes":
                parts.append(self.attributes_.transform(batch))
        out = pd.concat([p.reset_index(drop=True) for p in parts], axis=1)
        if self.feature_names_ is not None:
            out = out.reindex(columns=self.feature_names_)
        return out

    def transform(self, listings: pd.DataFrame, pairs: pd.DataFrame, progress: bool = False,
                  prepared: pd.DataFrame | None = None) -> pd.DataFrame:
        if prepared is None and len(pairs):  # prepare_listings fails on an empty frame
            needed = pd.unique(pd.concat([pairs["item_id_a"], pairs["item_id_b"]]).astype(str))
            sub = listings[listings["item_id"].astype(str).isin(needed)]
            prepared = prepare_listings(sub, self.cleaner_)
        bs = self.config.batch_size
        starts = range(0, len(pairs), bs)
        chunks = []
        it = starts
        if progress and len(pairs) > bs:
            from rich.progress import track
            it = track(starts, description=f"features for {len(pairs):,} pairs")
        for s in it:
            batch = join_pairs(prepared, pairs.iloc[s:s + bs])
            chunks.append(self.transform_batch(batch))
        if not chunks:
            return pd.DataFrame(columns=self.feature_names_ or [])
        out = pd.concat(chunks, ignore_index=True)
        if self.feature_names_ is None:
            self.feature_names_ = list(out.columns)
        return out

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        if self.cleaner_ is not None:
            self.cleaner_.save(directory / "homoglyph_cleaner")
        with open(directory / "feature_pipeline.pkl", "wb") as fh:
            pickle.dump({"config": asdict(self.config), "corpus": self.corpus_,
                         "attributes": self.attributes_, "feature_names": self.feature_names_}, fh)

    @classmethod
    def load(cls, directory: Path) -> "FeaturePipeline":
        with open(Path(directory) / "feature_pipeline.pkl", "rb") as fh:
            state = pickle.load(fh)
        self = cls(FeatureConfig(**state["config"]))
        self.corpus_, self.attributes_ = state["corpus"], state["attributes"]
        self.feature_names_ = state["feature_names"]
        if self.config.clean_homoglyphs:
            from dupsearch.text.homoglyphs import HomoglyphCleaner
            self.cleaner_ = HomoglyphCleaner.load(Path(directory) / "homoglyph_cleaner")
        return self
