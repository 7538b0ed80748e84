"""The feature pipeline: fit corpus statistics on training listings, then turn
batches of pairs into a feature table. Fitted state lives in this object and is
saved into the model directory."""

from __future__ import annotations

import logging
import os
import pickle
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from dupsearch.features.antiwords import antiword_features
from dupsearch.features.attributes import AttributeStats
from dupsearch.features.base import CATEGORY_COLUMNS, join_pairs, prepare_listings
from dupsearch.features.category import CATEGORICAL, category_features
from dupsearch.features.corpus import CorpusStats
from dupsearch.features.embeddings import (
    image_column,
    image_set_features,
    text_column,
    text_embedding_features,
    word_alignment_features,
    words_column,
)
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
# Families driven by the configured encoders; they add nothing when no encoder is named.
ENCODED = ("embeddings", "images")
ALL_FAMILIES = tuple(STATELESS) + FITTED + ENCODED
ENCODER_DIR = "encoders"
TEXT_CHARS = 2000  # characters of "title | category | description" given to a text encoder

log = logging.getLogger(__name__)


@dataclass
class FeatureConfig:
    families: tuple[str, ...] = ALL_FAMILIES
    batch_size: int = 20_000
    # Undo Cyrillic/Latin look-alike swaps before text features (seed item 7).
    clean_homoglyphs: bool = True
    # Encoder specs (see dupsearch.encoders.parse_spec), e.g. ("minilm", "fasttext") and
    # ("phash", "colorhist", "timm:resnet50?checkpoint=/models/resnet50.safetensors").
    # Photo encoders default to the model-free ones (core dependencies, ~1,000+ photos/s); they
    # are switched off at fit time when no training listing has a photo.
    text_encoders: tuple[str, ...] = ()
    image_encoders: tuple[str, ...] = ("phash", "dhash", "colorhist")
    max_words: int = 48  # words per listing in the FastText word alignment
    # Principal directions of each text encoder's listing embeddings (fitted on the training
    # listings): per direction, the product and absolute difference of the two projections, so
    # the booster can learn which kinds of meaning must agree. 0: cosine only.
    embedding_components: int = 0
    max_photos: int = 10  # photos per listing compared

    def __post_init__(self):
        self.families = tuple(self.families)
        self.text_encoders = tuple(self.text_encoders)
        self.image_encoders = tuple(self.image_encoders)
        unknown = set(self.families) - set(ALL_FAMILIES)
        if unknown:
            raise ValueError(f"unknown feature families {sorted(unknown)}; known: {list(ALL_FAMILIES)}")


def _has_photos(listings: pd.DataFrame) -> bool:
    if "images" not in listings:
        return False
    return bool(any(isinstance(v, (list, tuple, np.ndarray)) and len(v) > 0 for v in listings["images"]))


def embedding_text(prepared: pd.DataFrame) -> list[str]:
    """The seed's text for sentence encoders: "title | category path | description"."""
    cats = prepared[CATEGORY_COLUMNS].astype(str).agg(" / ".join, axis=1).str.strip(" /")
    text = prepared["title"] + " | " + cats + " | " + prepared["description"]
    return [t.strip(" |")[:TEXT_CHARS] for t in text]


class FeaturePipeline:
    """fit(listings) -> transform(listings, pairs) -> feature DataFrame."""

    def __init__(self, config: FeatureConfig | None = None):
        self.config = config or FeatureConfig()
        self.cleaner_ = None
        self.corpus_: CorpusStats | None = None
        self.attributes_: AttributeStats | None = None
        self.text_encoders_: list = []
        self.image_encoders_: list = []
        self.feature_names_: list[str] | None = None
        self.components_: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.encoder_stats_: dict[str, dict] = {}
        self.photo_report_: dict = {"photos": 0, "unreadable": 0, "examples": []}
        self.family_columns_: dict[str, list[str]] = {}
        self._cache = None

    @property
    def categorical_features(self) -> list[str]:
        return [c for c in CATEGORICAL if self.feature_names_ and c in self.feature_names_]

    def _uses(self, family: str) -> bool:
        return family in self.config.families

    def fit(self, listings: pd.DataFrame, progress: bool = False) -> "FeaturePipeline":
        if self.config.clean_homoglyphs:
            from dupsearch.text.homoglyphs import HomoglyphCleaner
            texts = pd.concat([listings["title"], listings.get("description", pd.Series(dtype=object))])
            self.cleaner_ = HomoglyphCleaner().fit(texts.dropna().astype(str).tolist())
        prepared = prepare_listings(listings, self.cleaner_)
        if "corpus" in self.config.families:
            self.corpus_ = CorpusStats().fit(prepared)
        if "attributes" in self.config.families:
            self.attributes_ = AttributeStats().fit(prepared)
        self._make_encoders()
        if self.image_encoders_ and not _has_photos(listings):
            log.info("no training listing has photos: image encoders %s switched off",
                     [e.spec for e in self.image_encoders_])
            self.image_encoders_ = []
        fit_texts = None
        for enc in self.text_encoders_:
            if enc.needs_fit:
                if fit_texts is None:
                    fit_texts = list(dict.fromkeys(embedding_text(prepared)))
                t0 = time.perf_counter()
                enc.fit(fit_texts)
                self._stats(enc.name)["fit_seconds"] = round(time.perf_counter() - t0, 3)
        self.components_ = {}
        k = self.config.embedding_components
        if k and self.text_encoders_:
            texts = list(dict.fromkeys(t for t in embedding_text(prepared) if t))
            for enc in self.text_encoders_:
                E = self._encode(enc, texts, progress)
                mean = E.mean(axis=0)
                # top-k right singular vectors of the centred embeddings
                _, _, vt = np.linalg.svd(E - mean, full_matrices=False)
                self.components_[enc.name] = (mean.astype(np.float32), vt[:k].astype(np.float32))
        return self

    def _make_encoders(self) -> None:
        from dupsearch.encoders import make_encoder
        self.text_encoders_ = [make_encoder(s, "text") for s in self.config.text_encoders] \
            if self._uses("embeddings") else []
        self.image_encoders_ = [make_encoder(s, "image") for s in self.config.image_encoders] \
            if self._uses("images") else []
        names = [e.name for e in self.text_encoders_ + self.image_encoders_]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"encoder specs give the same feature name {dup}; name each model once")

    def _stats(self, name: str) -> dict:
        return self.encoder_stats_.setdefault(name, {"encoded": 0, "cached": 0, "encode_seconds": 0.0})

    @property
    def cache(self):
        if self._cache is None:
            from dupsearch.encoders import EmbeddingCache, default_cache_dir
            self._cache = EmbeddingCache(default_cache_dir())
        return self._cache

    def _encode(self, enc, items: list, progress: bool) -> np.ndarray:
        from dupsearch.encoders import encode_cached
        st = self._stats(enc.name)
        hits, misses = self.cache.hits, self.cache.misses
        t0 = time.perf_counter()
        out = encode_cached(enc, items, self.cache, progress=progress)
        st["encode_seconds"] += time.perf_counter() - t0
        st["encoded"] += self.cache.misses - misses
        st["cached"] += self.cache.hits - hits
        if st["encoded"] and st["encode_seconds"] > 0:
            st["items_per_second"] = round(st["encoded"] / st["encode_seconds"], 1)
        return out

    def attach_embeddings(self, prepared: pd.DataFrame, listings: pd.DataFrame,
                          progress: bool = False) -> pd.DataFrame:
        """Add the per-listing embedding columns the pair features read (each listing once)."""
        if not (self.text_encoders_ or self.image_encoders_):
            return prepared
        prepared = prepared.copy()
        if self.text_encoders_:
            texts = embedding_text(prepared)
            titles = prepared["title"].tolist()
            for enc in self.text_encoders_:
                for field, items in (("text", texts), ("title", titles)):
                    emb = self._encode(enc, items, progress)
                    empty = np.array([not t for t in items])
                    col = list(emb)
                    for i in np.flatnonzero(empty):
                        col[i] = None
                    prepared[text_column(enc.name, field)] = col
                    if field == "text" and enc.name in self.components_:
                        mean, comps = self.components_[enc.name]
                        proj = (emb - mean) @ comps.T
                        prepared[text_column(enc.name, "proj")] = [None if c is None else r
                                                                  for c, r in zip(col, proj)]
                if hasattr(enc, "encode_words"):
                    words = enc.encode_words(prepared["text"].tolist(), max_words=self.config.max_words)
                    prepared[words_column(enc.name)] = [w.astype(np.float16) for w in words]
        if self.image_encoders_:
            by_id = listings.drop_duplicates("item_id").set_index(listings["item_id"].drop_duplicates().astype(str))
            paths = by_id["images"].reindex(prepared["item_id"]) if "images" in by_id else \
                pd.Series([[]] * len(prepared))
            photo_lists = [[str(x) for x in v][:self.config.max_photos]
                           if isinstance(v, (list, tuple, np.ndarray)) else [] for v in paths]
            for enc in self.image_encoders_:
                rows = self._photo_embeddings(enc, photo_lists, progress)
                prepared[image_column(enc.name)] = rows
        return prepared

    def _photo_embeddings(self, enc, photo_lists: list[list[str]], progress: bool) -> list[np.ndarray]:
        """(photos, dim) matrix per listing; unreadable photos are counted, reported and left out."""
        from dupsearch.errors import DataError
        uniq = list(dict.fromkeys(p for ps in photo_lists for p in ps))
        bad: dict[str, str] = {}
        readable = []
        for p in uniq:
            if os.path.isfile(p):
                readable.append(p)
            else:
                bad[p] = "no such file"
        try:
            emb = self._encode(enc, readable, progress)
            row_of = {p: emb[i] for i, p in enumerate(readable)}
        except DataError:
            # A corrupt file somewhere in the batch: encode one by one to find it.
            row_of = {}
            for p in readable:
                try:
                    row_of[p] = self._encode(enc, [p], False)[0]
                except DataError as exc:
                    bad[p] = str(exc)
        if bad:
            rep = self.photo_report_
            rep["unreadable"] = max(rep["unreadable"], len(bad))
            rep["examples"] = [f"{p}: {why}" for p, why in list(bad.items())[:5]]
            warnings.warn(f"{len(bad)} of {len(uniq)} photos could not be read and were left out "
                          f"(first: {rep['examples'][0]})", stacklevel=3)
        self.photo_report_["photos"] = max(self.photo_report_["photos"], len(uniq))
        out = []
        for ps in photo_lists:
            rows = [row_of[p] for p in ps if p in row_of]
            out.append(np.stack(rows) if rows else None)
        return out

    def transform_batch(self, batch: pd.DataFrame) -> pd.DataFrame:
        """Features of one joined pair batch (see ``features.base.join_pairs``)."""
        parts, family_of = [], []
        for fam in self.config.families:
            if fam in STATELESS:
                parts.append(STATELESS[fam](batch))
            elif fam == "corpus":
                parts.append(self.corpus_.transform(batch))
            elif fam == "attributes":
                parts.append(self.attributes_.transform(batch))
            elif fam == "embeddings":
                for enc in self.text_encoders_:
                    parts.append(text_embedding_features(batch, enc.name))
                    family_of.append(fam)
                    if f"{words_column(enc.name)}_a" in batch:
                        parts.append(word_alignment_features(batch, enc.name))
                        family_of.append(fam)
                continue
            elif fam == "images":
                for enc in self.image_encoders_:
                    parts.append(image_set_features(batch, enc.name, enc.metric))
                    family_of.append(fam)
                continue
            family_of.append(fam)
        families: dict[str, list[str]] = {}
        for fam, part in zip(family_of, parts):
            families.setdefault(fam, []).extend(part.columns)
        self.family_columns_ = families  # which columns each family made (ablations drop them)
        out = pd.concat([p.reset_index(drop=True) for p in parts], axis=1)
        if self.feature_names_ is not None:
            out = out.reindex(columns=self.feature_names_)
        return out

    def prepare(self, listings: pd.DataFrame, pairs: pd.DataFrame | None = None,
                progress: bool = False, embeddings: bool = True) -> pd.DataFrame:
        """Prepared (cleaned, normalized) listings that `pairs` name (all when None), with the
        embedding columns unless ``embeddings=False``."""
        sub = listings
        if pairs is not None:
            needed = pd.unique(pd.concat([pairs["item_id_a"], pairs["item_id_b"]]).astype(str))
            sub = listings[listings["item_id"].astype(str).isin(needed)]
        prepared = prepare_listings(sub, self.cleaner_)
        return self.attach_embeddings(prepared, sub, progress=progress) if embeddings else prepared

    def transform(self, listings: pd.DataFrame, pairs: pd.DataFrame, progress: bool = False,
                  prepared: pd.DataFrame | None = None) -> pd.DataFrame:
        if prepared is None and len(pairs):  # prepare_listings fails on an empty frame
            prepared = self.prepare(listings, pairs, progress=progress)
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
        for enc in self.text_encoders_ + self.image_encoders_:
            enc.save(directory / ENCODER_DIR / enc.name)
        from dupsearch.atomic import atomic_write
        state = {"config": asdict(self.config), "corpus": self.corpus_, "attributes": self.attributes_,
                 "feature_names": self.feature_names_, "components": self.components_,
                 # the encoders in use (image encoders are dropped at fit when there were no photos)
                 "encoders": {"text": [e.name for e in self.text_encoders_],
                              "image": [e.name for e in self.image_encoders_]}}
        atomic_write(directory / "feature_pipeline.pkl", lambda fh: pickle.dump(state, fh))

    @classmethod
    def load(cls, directory: Path) -> "FeaturePipeline":
        directory = Path(directory)
        with open(directory / "feature_pipeline.pkl", "rb") as fh:
            state = pickle.load(fh)
        self = cls(FeatureConfig(**state["config"]))
        self.corpus_, self.attributes_ = state["corpus"], state["attributes"]
        self.feature_names_ = state["feature_names"]
        self.components_ = state.get("components", {})
        if self.config.clean_homoglyphs:
            from dupsearch.text.homoglyphs import HomoglyphCleaner
            self.cleaner_ = HomoglyphCleaner.load(directory / "homoglyph_cleaner")
        active = state.get("encoders", {"text": [], "image": []})
        if active["text"] or active["image"]:
            from dupsearch.encoders import load_encoder
            self.text_encoders_ = [load_encoder(directory / ENCODER_DIR / n) for n in active["text"]]
            self.image_encoders_ = [load_encoder(directory / ENCODER_DIR / n) for n in active["image"]]
        return self
