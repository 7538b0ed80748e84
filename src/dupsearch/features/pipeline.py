"""The feature pipeline: fit the families on training listings, build a listing store (every
listing's work once), then compare pairs of store rows into a feature table. Fitted state
lives in this object and is saved into the model directory."""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from dupsearch.config import FAMILY_NAMES, FeatureConfig
from dupsearch.features.antiwords import AntiwordFamily
from dupsearch.features.attributes import AttributeFamily
from dupsearch.features.base import CATEGORY_COLUMNS, prepare_listings, prepared_columns
from dupsearch.features.category import CATEGORICAL, CategoryFamily
from dupsearch.features.corpus import CorpusFamily
from dupsearch.features.embeddings import (ImageFamily, TextEmbeddingFamily, image_column, present_column,
                                           text_column, words_column)
from dupsearch.features.family import Family, StoreBuilder
from dupsearch.features.lengths import LengthFamily
from dupsearch.features.price import PriceFamily
from dupsearch.features.scripts import ScriptFamily
from dupsearch.features.sets import SetFamily
from dupsearch.features.store import ListingStore, Ragged
from dupsearch.features.strings import StringFamily

# Families built from their settings alone (``FeatureConfig.family_settings``), in output order.
FAMILIES: dict[str, type[Family]] = {
    "category": CategoryFamily,
    "strings": StringFamily,
    "sets": SetFamily,
    "antiwords": AntiwordFamily,
    "lengths": LengthFamily,
    "price": PriceFamily,
    "scripts": ScriptFamily,
    "corpus": CorpusFamily,
    "attributes": AttributeFamily,
}
# Families driven by the configured encoders; they add nothing when no encoder is named.
ENCODED = ("embeddings", "images")
ALL_FAMILIES = FAMILY_NAMES
assert ALL_FAMILIES == tuple(FAMILIES) + ENCODED
ENCODER_DIR = "encoders"
PIPELINE_STATE = "feature_pipeline"  # feature_pipeline.json + feature_pipeline.npz
TEXT_CHARS = 2000  # characters of "title | category | description" given to a text encoder

log = logging.getLogger(__name__)


def make_family(name: str, settings: dict | None = None) -> Family:
    """A family by name with its settings; an unknown setting is an error naming it."""
    import inspect
    cls = FAMILIES[name]
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = set(settings or {}) - allowed
    if unknown:
        raise ValueError(f"feature family {name!r} has no setting {sorted(unknown)[0]!r}; "
                         f"its settings: {sorted(allowed)}")
    return cls(**(settings or {}))


def _has_photos(listings: pd.DataFrame) -> bool:
    if "images" not in listings:
        return False
    return bool(any(isinstance(v, (list, tuple, np.ndarray)) and len(v) > 0 for v in listings["images"]))


def embedding_text(prepared: pd.DataFrame) -> list[str]:
    """The seed's text for sentence encoders: "title | category path | description"."""
    cats = prepared[CATEGORY_COLUMNS].astype(str).agg(" / ".join, axis=1).str.strip(" /")
    text = prepared["title"] + " | " + cats + " | " + prepared["description"]
    return [t.strip(" |")[:TEXT_CHARS] for t in text]


def _feature_frame(cols: dict, order: list[str]) -> pd.DataFrame:
    """The feature columns as a DataFrame in ``order``, the numeric ones as one float64 block (a
    float32 column is widened, exactly): a frame built column by column costs ~10 us a column,
    and selecting the columns in order afterwards copies the block (~1 ms), more than the
    features of one listing's candidates."""
    f64 = [c for c in order if isinstance(cols[c], np.ndarray) and cols[c].dtype in (np.float64, np.float32)
           and cols[c].ndim == 1]
    if len(f64) < 2:
        return pd.DataFrame({c: cols[c] for c in order})
    out = pd.DataFrame(np.column_stack([cols[c] for c in f64]), columns=f64)
    taken = set(f64)
    for at, c in enumerate(order):  # the others (categorical) put in their places, left to right
        if c not in taken:
            out.insert(at, c, cols[c])
    return out


class FeaturePipeline:
    """fit(listings) -> build_store(listings) -> compare(store, ia, ib) -> feature DataFrame."""

    def __init__(self, config: FeatureConfig | None = None):
        self.config = config or FeatureConfig()
        self.cleaner_ = None
        self.families_: list[Family] = []
        self.text_encoders_: list = []
        self.image_encoders_: list = []
        self.feature_names_: list[str] | None = None
        self.components_: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.encoder_stats_: dict[str, dict] = {}
        self.photo_report_: dict = {"photos": 0, "unreadable": 0, "examples": []}
        self._cache = None

    @property
    def categorical_features(self) -> list[str]:
        return [c for c in CATEGORICAL if self.feature_names_ and c in self.feature_names_]

    @property
    def family_columns_(self) -> dict[str, list[str]]:
        """Which columns each family makes (ablations drop them)."""
        out: dict[str, list[str]] = {}
        for fam in self.families_:
            out.setdefault(fam.name, []).extend(fam.columns_ or [])
        return out

    def _uses(self, family: str) -> bool:
        return family in self.config.families

    def check_fitted(self) -> None:
        if self.feature_names_ is None:
            from dupsearch.errors import NotFittedError
            raise NotFittedError("this FeaturePipeline is not fitted: call fit() or FeaturePipeline.load()")

    def fit(self, listings: pd.DataFrame, progress: bool = False) -> "FeaturePipeline":
        if self.config.clean_homoglyphs:
            from dupsearch.text.homoglyphs import HomoglyphCleaner
            texts = pd.concat([listings["title"], listings.get("description", pd.Series(dtype=object))])
            self.cleaner_ = HomoglyphCleaner().fit(texts.dropna().astype(str).tolist())
        prepared = prepare_listings(listings, self.cleaner_)
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
        self.families_ = []
        for name in self.config.families:
            if name in FAMILIES:
                fam = make_family(name, self.config.family_settings.get(name))
                fam._fit(prepared)
            elif name == "embeddings" and self.text_encoders_:
                fam = TextEmbeddingFamily([e.name for e in self.text_encoders_],
                                          [e.name for e in self.text_encoders_ if hasattr(e, "encode_words")],
                                          self.config.embedding_components)
            elif name == "images" and self.image_encoders_:
                fam = ImageFamily([e.name for e in self.image_encoders_], [e.metric for e in self.image_encoders_],
                                  self.config.max_photos)
            else:
                continue
            self.families_.append(fam)
        # Output columns are fixed now: whatever each family gives on two training listings.
        probe = self.build_store(listings.iloc[:2] if len(listings) >= 2 else pd.concat([listings] * 2),
                                 unique_ids=False)
        for fam in self.families_:
            fam.columns_ = list(fam._compare(probe, np.array([0]), np.array([1])))
        self.feature_names_ = [c for fam in self.families_ for c in fam.columns_]
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

    def _embedding_state(self, prepared: pd.DataFrame, progress: bool) -> dict:
        """Store columns of the encoders: each listing's texts and photos encoded once."""
        out: dict = {}
        if self.text_encoders_:
            texts = embedding_text(prepared)
            titles = prepared["title"].tolist()
            for enc in self.text_encoders_:
                for field_, items in (("text", texts), ("title", titles)):
                    emb = self._encode(enc, items, progress).astype(np.float32)
                    present = np.array([bool(t) for t in items], dtype=bool)
                    col = text_column(enc.name, field_)
                    out[col], out[present_column(col)] = emb, present
                    if field_ == "text" and enc.name in self.components_:
                        mean, comps = self.components_[enc.name]
                        out[text_column(enc.name, "proj")] = ((emb - mean) @ comps.T).astype(np.float32)
                if hasattr(enc, "encode_words"):
                    words = enc.encode_words(prepared["text"].tolist(), max_words=self.config.max_words)
                    out[words_column(enc.name)] = Ragged.from_list(words, enc.dim, np.float16)
        if self.image_encoders_:
            photo_lists = [list(v)[:self.config.max_photos] for v in prepared["images"]]
            for enc in self.image_encoders_:
                out[image_column(enc.name)] = Ragged.from_list(self._photo_embeddings(enc, photo_lists, progress),
                                                               enc.dim)
        return out

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

    # ---- the listing store ----------------------------------------------------------
    def prepare(self, listings: pd.DataFrame) -> pd.DataFrame:
        """Prepared (cleaned, normalised) listings."""
        return prepare_listings(listings, self.cleaner_)

    def build_store(self, listings: pd.DataFrame, progress: bool = False, unique_ids: bool = True) -> ListingStore:
        """Every listing's per-listing work, once: a ListingStore with one row per listing (in order)."""
        if not self.families_:
            self.check_fitted()
        builder = StoreBuilder(prepared_columns(listings, self.cleaner_))
        store = builder.store()
        store.meta["pipeline"] = self.digest()
        # a repeated item_id is an error here, not a silent mix-up (a few ids: a set tells at
        # once; the store's id index, which names the repeat, costs ~0.1 ms to build)
        if unique_ids and (store.n > 1000 or len(set(store.ids.tolist())) != store.n):
            store.rows(store.ids[:1])
        for fam in self.families_:
            for name, col in fam.listing_state(builder).items():
                store.put(name, col)
        if self.text_encoders_ or self.image_encoders_:  # (the prepared frame is made only then)
            for name, col in self._embedding_state(builder.prepared, progress).items():
                store.put(name, col)
        return store

    def digest(self) -> str:
        """Identity of the fitted state: stores built by equal pipelines can be appended."""
        import hashlib
        h = hashlib.sha256(json.dumps({"config": asdict(self.config), "features": self.feature_names_,
                                       "families": [[f.name, f.settings()] for f in self.families_]},
                                      sort_keys=True, default=str).encode())
        return h.hexdigest()[:16]

    def compare(self, store: ListingStore, ia: np.ndarray, ib: np.ndarray, progress: bool = False) -> pd.DataFrame:
        """Features of the pairs of store rows (ia[k], ib[k]), in ``feature_names_`` order."""
        self.check_fitted()
        ia, ib = np.asarray(ia, np.int64), np.asarray(ib, np.int64)
        bs = self.config.batch_size
        starts = range(0, len(ia), bs)
        it = starts
        if progress and len(ia) > bs:
            from rich.progress import track
            it = track(starts, description=f"features for {len(ia):,} pairs")
        chunks = []
        for s in it:
            cols: dict[str, np.ndarray] = {}
            for fam in self.families_:
                cols.update(fam.compare(store, ia[s:s + bs], ib[s:s + bs]))
            chunks.append(_feature_frame(cols, self.feature_names_))
        if not chunks:
            return pd.DataFrame({c: pd.Series(dtype=object if c in CATEGORICAL else float)
                                 for c in self.feature_names_})
        return chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True)

    def transform(self, listings: pd.DataFrame, pairs: pd.DataFrame, progress: bool = False) -> pd.DataFrame:
        """Features of id pairs: a store of the listings the pairs name, then ``compare``."""
        self.check_fitted()
        if len(pairs) == 0:
            return self.compare(ListingStore([]), np.zeros(0, np.int64), np.zeros(0, np.int64))
        store = self.build_store(listings_for(listings, pairs), progress=progress)
        ia = store.rows(pairs["item_id_a"], column="item_id_a")
        ib = store.rows(pairs["item_id_b"], column="item_id_b")
        return self.compare(store, ia, ib, progress=progress)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        if self.cleaner_ is not None:
            self.cleaner_.save(directory / "homoglyph_cleaner")
        for enc in self.text_encoders_ + self.image_encoders_:
            enc.save(directory / ENCODER_DIR / enc.name)
        from dupsearch.models.state import save_state
        state = {"config": asdict(self.config), "families": self.families_,
                 "feature_names": self.feature_names_, "components": self.components_,
                 # the encoders in use (image encoders are dropped at fit when there were no photos)
                 "encoders": {"text": [e.name for e in self.text_encoders_],
                              "image": [e.name for e in self.image_encoders_]}}
        # plain files (JSON + .npz of arrays): loading them runs no code (models/state.py)
        save_state(state, directory / PIPELINE_STATE)

    @classmethod
    def load(cls, directory: Path) -> "FeaturePipeline":
        from dupsearch.models.state import load_state
        directory = Path(directory)
        state = load_state(directory / PIPELINE_STATE)
        self = cls(FeatureConfig(**state["config"]))
        self.families_ = state["families"]
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


def listings_for(listings: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """The listings that ``pairs`` name (each once)."""
    needed = pd.unique(pd.concat([pairs["item_id_a"], pairs["item_id_b"]]).astype(str))
    ids = listings["item_id"].astype(str)
    return listings[ids.isin(needed) & ~ids.duplicated()]
