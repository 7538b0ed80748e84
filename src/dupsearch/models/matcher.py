"""DuplicateMatcher: features + gradient boosting, with validation, thresholds,
and a model directory that loads and predicts the same on another machine."""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

import dupsearch
from dupsearch.atomic import atomic_directory, strict_json
from dupsearch.errors import (DataError, DupsearchError, ModelFileError, ModelNotFoundError, ModelVersionError,
                              NotFittedError, UntrustedModelError)
from dupsearch.features import FeaturePipeline, ListingStore
from dupsearch.features.pipeline import listings_for
from dupsearch.models.cv import choose_groups, group_folds
from dupsearch.models.ensemble import (NO_CATEGORY, CategoryModels, Combiner, align_rows,
                                       component_report, cross_fitted_combination, fill_fallbacks,
                                       row_priors)
from dupsearch.config import MatcherConfig
from dupsearch.models.gbdt import GBDTModel
from dupsearch.models.stacking import LearnedFeatures
from dupsearch.models.metrics import THRESHOLD_RULES, binary_metrics

log = logging.getLogger(__name__)

KEY_DEPENDENCIES = ("numpy", "pandas", "scipy", "scikit-learn", "rapidfuzz", "catboost",
                    "lightgbm", "pyarrow")
MANIFEST = "manifest.json"
# id suffix of a training listing's emptied-text copy (MatcherConfig.missing_text_share)
MISSING_TEXT_SUFFIX = "\x1fmissing-text"
# id suffix of a training listing's copy with values moved into its title (MatcherConfig.moved_text_share)
MOVED_TEXT_SUFFIX = "\x1fmoved-text"
# each value's probability of being moved in those copies: Magellan's dirty benchmarks used 0.5
MOVED_TEXT_P = 0.5
# Clustering thresholds are chosen over the candidates of at most this many training listings.
CLUSTER_TUNING_LISTINGS = 20_000
PAIR_CATEGORY = "pair_category"  # store column: the category the ensemble's per-category models use
ENSEMBLE = "ensemble.json"


def dependency_versions() -> dict[str, str]:
    out = {"dupsearch": dupsearch.__version__, "python": platform.python_version()}
    for name in KEY_DEPENDENCIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def pair_keys(pairs: pd.DataFrame) -> pd.Series:
    """Order-free key of each pair ("a\x1fb" with a <= b), vectorised."""
    from dupsearch.io.schema import pair_key_array
    return pd.Series(pair_key_array(pairs["item_id_a"], pairs["item_id_b"]))


def valid_overlap(train: pd.DataFrame, valid: pd.DataFrame) -> dict:
    """How the validation pairs overlap the training pairs: the same pair in both (its label is
    seen in training, so validation figures flatter the model) and pairs with a listing that a
    training pair names (milder: the booster saw that listing's text)."""
    same = int(pair_keys(valid).isin(set(pair_keys(train))).sum())
    seen = pd.Index(pd.concat([train["item_id_a"], train["item_id_b"]]).astype(str).unique())
    shares = (seen.get_indexer(valid["item_id_a"].astype(str)) >= 0) | \
             (seen.get_indexer(valid["item_id_b"].astype(str)) >= 0)
    return {"valid_pairs": int(len(valid)), "same_pairs": same, "pairs_sharing_a_listing": int(shares.sum())}


def _cluster_settings(manifest: dict) -> tuple[dict[str, float] | None, str | None]:
    """The clustering thresholds a manifest records (a model from before them has none)."""
    from dupsearch.cluster.graph import METHODS
    t, method = manifest.get("cluster_thresholds"), manifest.get("cluster_method")
    if t is None:
        return None, None
    ok = (isinstance(t, dict) and set(t) == set(METHODS) and method in METHODS
          and all(isinstance(v, (int, float)) and 0.0 <= v <= 1.0 for v in t.values()))
    if not ok:
        raise ValueError(f"cluster_thresholds {t!r} / cluster_method {method!r}: expected a threshold in "
                         f"[0, 1] for each of {list(METHODS)} and one of them as the method")
    return {m: float(t[m]) for m in METHODS}, str(method)


def _labels(pairs: pd.DataFrame, what: str) -> np.ndarray:
    if "label" not in pairs:
        raise DataError(f"{what} pairs need a `label` column (0/1) to train or evaluate", column="label")
    y = pairs["label"].to_numpy().astype(int)
    if len(np.unique(y)) < 2:
        raise DataError(f"{what} pairs hold only label {y[0] if len(y) else '?'}; need both 0 and 1")
    return y


class DuplicateMatcher:
    """Predicts the probability that two listings are duplicates.

    >>> m = DuplicateMatcher().fit(listings, train_pairs, valid_pairs)
    >>> p = m.predict_proba(listings, test_pairs)
    >>> m.save("model/"); m2 = DuplicateMatcher.load("model/")
    """

    def __init__(self, config: MatcherConfig | None = None):
        self.config = config or MatcherConfig()
        self.pipeline_: FeaturePipeline | None = None
        self.models_: list[GBDTModel] = []
        self.threshold_: float = 0.5
        self.metrics_: dict = {}
        self.importance_: pd.Series | None = None
        self.learned_: LearnedFeatures | None = None
        self.feature_names_: list[str] | None = None
        self.parts_: dict = {}            # component name -> fitted models (see models.ensemble)
        self.combiner_: Combiner | None = None
        self.prior_: float | None = None  # positive rate of the (enlarged) training pairs
        # Clustering chosen for groups (cluster.tuning): method -> threshold, and the best method;
        # None when the training pairs held too few true groups to choose them.
        self.cluster_thresholds_: dict[str, float] | None = None
        self.cluster_method_: str | None = None
        self._augmented_: dict = {}       # training only: altered copies of some pairs, by kind

    @property
    def feature_names(self) -> list[str]:
        return list(self.feature_names_ or self.pipeline_.feature_names_)

    def check_fitted(self) -> None:
        if self.pipeline_ is None:
            raise NotFittedError("this DuplicateMatcher is not fitted: call fit() or DuplicateMatcher.load()")

    # ---- the one scoring path ----------------------------------------------------------
    def build_store(self, listings: pd.DataFrame, progress: bool = False) -> ListingStore:
        """Every listing's per-listing work, once: the feature families' columns, the pair
        category the ensemble reads, and the stacked models' texts and photo embeddings."""
        self.check_fitted()
        store = self.pipeline_.build_store(listings, progress=progress)
        self._add_matcher_state(store, listings)
        return store

    def _add_matcher_state(self, store: ListingStore, listings: pd.DataFrame) -> None:
        col = self.config.ensemble.category_column
        raw = listings[col] if col in listings else pd.Series([""] * len(listings))
        cat = raw.fillna("").astype(str).str.strip().to_numpy(dtype=object)
        cat[cat == ""] = NO_CATEGORY
        store.put(PAIR_CATEGORY, cat)
        if self.learned_ is not None:
            encoder = getattr(self.learned_, "image_encoder_", None)
            encode = (lambda items: self.pipeline_._encode(encoder, items, False)) if encoder is not None else None
            for name, value in self.learned_.listing_state(self.pipeline_.prepare(listings), encode).items():
                store.put(name, value)

    def store_features(self, store: ListingStore, ia: np.ndarray, ib: np.ndarray,
                       progress: bool = False) -> pd.DataFrame:
        """The feature table of the pairs of store rows (ia[k], ib[k]): families, then stacked models."""
        self.check_fitted()
        X = self.pipeline_.compare(store, ia, ib, progress=progress)
        if self.learned_ is not None and len(ia):
            X = pd.concat([X, self.learned_.compare(store, np.asarray(ia), np.asarray(ib)).set_axis(X.index)], axis=1)
        return X

    def score(self, store: ListingStore, ia: np.ndarray, ib: np.ndarray, progress: bool = False) -> np.ndarray:
        """Duplicate probability of the pairs of store rows (ia[k], ib[k]): the one scoring path
        behind predict, evaluate, bench, dedup and the stacked models."""
        self.check_fitted()
        ia, ib = np.asarray(ia, np.int64), np.asarray(ib, np.int64)
        if len(ia) == 0:
            return np.zeros(0)
        cat = np.asarray(store[PAIR_CATEGORY])[ia] if self.combiner_ is not None else None
        X = self.store_features(store, ia, ib, progress=progress)
        p = self.predict_proba_features(X, cat)
        if self.learned_ is not None and self.learned_.blend_ is not None:
            p = self.learned_.blend(p, X)
        return p

    def pair_store(self, listings: pd.DataFrame, pairs: pd.DataFrame,
                   progress: bool = False) -> tuple[ListingStore, np.ndarray, np.ndarray]:
        """A store of the listings ``pairs`` names and the pairs as store rows."""
        store = self.build_store(listings_for(listings, pairs), progress=progress)
        return (store, store.rows(pairs["item_id_a"], column="item_id_a"),
                store.rows(pairs["item_id_b"], column="item_id_b"))

    def features(self, listings: pd.DataFrame, pairs: pd.DataFrame, progress: bool = False) -> pd.DataFrame:
        """The feature table of id pairs (a store of their listings, then ``store_features``)."""
        self.check_fitted()
        store, ia, ib = self.pair_store(listings, pairs, progress)
        return self.store_features(store, ia, ib, progress=progress)

    def training_features(self, listings: pd.DataFrame, pairs: pd.DataFrame, progress: bool = False,
                          corpus: pd.DataFrame | None = None):
        """Fit the feature pipeline (and the stacked learned matchers) on the training pairs;
        returns their feature frame X, labels y, categories and timings."""
        cfg = self.config
        y = _labels(pairs, "training")
        t0 = time.perf_counter()
        # Corpus statistics come from the training listings only.
        train = listings_for(listings, pairs) if corpus is None else corpus
        self.pipeline_ = FeaturePipeline(cfg.features).fit(train, progress=progress)
        self.learned_ = None
        timings = {"feature_fit_seconds": time.perf_counter() - t0}
        t0 = time.perf_counter()
        store, ia, ib = self.pair_store(listings, pairs, progress)
        timings["store_seconds"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        X = self.pipeline_.compare(store, ia, ib, progress=progress)
        timings["compare_seconds"] = time.perf_counter() - t1
        timings["feature_seconds"] = time.perf_counter() - t0
        if cfg.stacking.enabled:
            # Out-of-fold scores through the booster's own grouped folds (see models.stacking).
            t0 = time.perf_counter()
            folds, _ = group_folds(pairs, y, cfg.stacking.folds or cfg.cv_folds, cfg.seed)
            self.learned_ = LearnedFeatures(cfg.stacking)
            L = self.learned_.fit_transform(listings, self.pipeline_.prepare(train), pairs, y, folds,
                                            seed=cfg.seed, progress=progress)
            X = pd.concat([X, L.set_axis(X.index)], axis=1)
            timings["learned_seconds"] = time.perf_counter() - t0
        self.feature_names_ = list(X.columns)
        t0 = time.perf_counter()
        self._augmented_ = {}
        self._missing_text_rows(listings, pairs, y, X.columns)
        self._moved_text_rows(listings, pairs, y, X.columns)
        timings["augment_seconds"] = time.perf_counter() - t0
        return X, y, np.asarray(store[PAIR_CATEGORY])[ia], timings

    def fit(self, listings: pd.DataFrame, pairs: pd.DataFrame, valid_pairs: pd.DataFrame | None = None,
            progress: bool = False, corpus: pd.DataFrame | None = None) -> "DuplicateMatcher":
        """``corpus``: the listings the feature pipeline's corpus statistics (IDF, vocabularies)
        come from; default: the training pairs' listings. Active labelling passes the whole
        catalogue being labelled (no test split to leak into)."""
        if valid_pairs is None and LearnedFeatures(self.config.stacking).blends:
            raise ValueError("stacking combine='blend' fits the blend on validation pairs: give valid_pairs "
                             "(or use combine='features')")
        X, y, cat, timings = self.training_features(listings, pairs, progress=progress, corpus=corpus)
        t_fit, feature_seconds = timings["feature_fit_seconds"], timings["feature_seconds"]
        learned_seconds = timings.get("learned_seconds")
        cfg = self.config
        t1 = time.perf_counter()
        metrics: dict = {"n_train_pairs": int(len(pairs)), "n_features": int(X.shape[1]),
                         "backend": cfg.gbdt.backend}
        if valid_pairs is not None:
            overlap = metrics["valid_overlap"] = valid_overlap(pairs, valid_pairs)
            if overlap["same_pairs"]:
                log.warning("%d of %d validation pairs are also training pairs: the validation "
                             "figures and threshold are optimistic; validate on pairs kept apart",
                             overlap["same_pairs"], overlap["valid_pairs"])
            self._fit_with_validation(listings, pairs, X, y, cat, valid_pairs, metrics, progress)
        else:
            self._fit_with_cv(listings, pairs, X, y, cat, metrics)
        metrics["threshold"] = self.threshold_
        if valid_pairs is not None:
            self._choose_cluster_thresholds(listings, valid_pairs, metrics, train_pairs=pairs)
        else:
            self._choose_cluster_thresholds(listings, pairs, metrics)
        metrics["feature_fit_seconds"] = t_fit
        metrics["feature_seconds"] = feature_seconds  # store of the training listings + compare of the pairs
        metrics["store_seconds"] = timings["store_seconds"]
        metrics["compare_seconds"] = timings["compare_seconds"]
        metrics["pairs_per_second_features"] = len(pairs) / feature_seconds if feature_seconds else None
        metrics["train_seconds"] = time.perf_counter() - t1
        for kind, (idx, *_rest) in self._augmented_.items():
            metrics[f"{kind}_pairs"] = int(len(idx))
        self._augmented_ = {}  # training rows only: not part of the fitted model
        if self.pipeline_.encoder_stats_:
            metrics["encoders"] = self.pipeline_.encoder_stats_
        if self.pipeline_.photo_report_["photos"]:
            metrics["photos"] = self.pipeline_.photo_report_
        if self.learned_ is not None:
            metrics["stacking"] = {**self.learned_.report_, "seconds": learned_seconds}
        self.metrics_ = metrics
        self.importance_ = pd.concat([m.feature_importance(list(X.columns)) for m in self.models_],
                                     axis=1).mean(axis=1).sort_values(ascending=False)
        return self

    # ---- training parts ----------------------------------------------------------------
    def _choose_cluster_thresholds(self, listings: pd.DataFrame, pairs: pd.DataFrame, metrics: dict,
                                   train_pairs: pd.DataFrame | None = None) -> None:
        """Each clustering method's threshold by B-cubed F1 (``cluster.tuning``) over scores the
        model did not train on.

        With the listings' cluster column (every listing's true group), the graph is the one
        dedup would cluster: the default blockers' candidates among the training listings, the
        labelled pairs with their held-out scores (out-of-fold, or validation; with validation
        pairs, only listings no training pair names) and the other candidates with the model's
        score (pairs it never trained on). Without it, the graph is the labelled pairs and the
        groups are those the pairs labelled duplicates form: fewer, easier edges than a
        catalogue's candidates, so the thresholds come out lower than a catalogue's best.
        """
        from dupsearch.cluster.tuning import choose_cluster_thresholds, truth_groups
        t0 = time.perf_counter()
        col = self.config.cluster_column
        y, p = self.eval_["y"], self.eval_["p"]
        ia, ib = pairs["item_id_a"].astype(str).to_numpy(), pairs["item_id_b"].astype(str).to_numpy()
        graph_of, nodes = "the labelled pairs", None
        clusters = None
        if col and col in listings.columns and listings[col].notna().all():
            clusters = pd.Series(listings[col].to_numpy(), index=listings["item_id"].astype(str))
            if self.learned_ is not None:
                graph_of += " (stacked models: scoring every candidate would take too long)"
            else:
                found = self._candidate_graph(listings, ia, ib, p, train_pairs)
                if found is not None:
                    ia, ib, p, graph_of, nodes = found
        truth, source = truth_groups(ia if nodes is None else nodes, ib if nodes is None else nodes,
                                     y if nodes is None else np.zeros(len(nodes)), clusters)
        rep = choose_cluster_thresholds(ia, ib, p, truth, all_ids=nodes)
        rep.update({"truth": source, "graph": graph_of, "scores": self.eval_["what"],
                    "seconds": round(time.perf_counter() - t0, 2)})
        metrics["clustering"] = rep
        if "thresholds" in rep:
            self.cluster_thresholds_, self.cluster_method_ = rep["thresholds"], rep["method"]
        else:
            log.info("clustering thresholds not chosen: %s", rep["skipped"])

    def _candidate_graph(self, listings, ia, ib, held_out, train_pairs):
        """(ids a, ids b, scores, what, every listing's id) of the default blockers' candidates among the training
        listings (at most ``CLUSTER_TUNING_LISTINGS``, whole groups), the labelled pairs' scores
        replaced by their held-out ones; None when too few listings remain."""
        from dupsearch.candidates.blocking import candidate_pairs
        from dupsearch.candidates.specs import default_blocker_specs, make_blocker
        named = set(ia) | set(ib)
        if train_pairs is not None:  # validation: listings that no training pair names
            named -= set(train_pairs["item_id_a"].astype(str)) | set(train_pairs["item_id_b"].astype(str))
        ids = listings["item_id"].astype(str)
        sub = listings[ids.isin(named).to_numpy()]
        col = self.config.cluster_column
        groups = sub[col].astype(str).unique()
        if len(sub) > CLUSTER_TUNING_LISTINGS:  # whole groups, drawn at random
            rng = np.random.default_rng(self.config.seed)
            sizes = sub[col].astype(str).value_counts()
            order = rng.permutation(groups)
            keep = order[np.cumsum(sizes.reindex(order).to_numpy()) <= CLUSTER_TUNING_LISTINGS]
            sub = sub[sub[col].astype(str).isin(keep).to_numpy()]
        if len(sub) < 50:
            return None
        sub = sub.reset_index(drop=True)
        specs = default_blocker_specs(sub)
        cands = candidate_pairs(sub, [make_blocker(s) for s in specs])
        sid = sub["item_id"].astype(str).to_numpy()
        store = self.build_store(sub)
        rows = store.rows(pd.Series(sid), column="item_id")
        p = self.score(store, rows[cands.a], rows[cands.b])
        ca, cb = sid[cands.a], sid[cands.b]
        # a labelled pair keeps its held-out score
        from dupsearch.io.schema import pair_key_array
        key = pd.Index(pair_key_array(ca, cb))
        lab = pd.Series(np.asarray(held_out, float), index=pair_key_array(ia, ib))
        lab = lab[~lab.index.duplicated()]
        pos = lab.index.get_indexer(key)
        p = np.where(pos >= 0, lab.to_numpy()[np.maximum(pos, 0)], p)
        what = (f"the default blockers' candidates among {len(sub):,} training listings ({', '.join(specs)}); "
                f"{int((pos >= 0).sum()):,} labelled pairs with held-out scores, {int((pos < 0).sum()):,} "
                "others scored by the model")
        return ca, cb, p, what, sid

    def _missing_text_rows(self, listings, pairs, y, columns) -> None:
        """Features of a sample of the training pairs with the title and description emptied on
        one side or both (``MatcherConfig.missing_text_share``), added to a booster's training
        rows whenever their pair is (``_enlarged``). Empty text is missing evidence (NaN
        features); a booster that never saw it sends NaN down an arbitrary branch, and on the
        generated market two emptied listings became duplicates 3x as often as with their texts."""
        if self.config.stacking.enabled:  # stacked scores of an emptied pair: undefined
            return

        def emptied(frame: pd.DataFrame) -> pd.DataFrame:
            frame = frame.copy()
            frame["title"], frame["description"] = "", ""
            return frame
        self._altered_rows("missing_text", self.config.missing_text_share, 7919, MISSING_TEXT_SUFFIX,
                           emptied, listings, pairs, y, columns)

    def _moved_text_rows(self, listings, pairs, y, columns) -> None:
        """Features of a sample of the training pairs (``MatcherConfig.moved_text_share``) with
        the listings of one side or both made dirty: each value other than the title moved into
        the title with probability 0.5 (``io.benchmark.values_moved_into_title``, as Magellan's
        dirty benchmarks were made), so that the booster sees records whose price or brand sits
        in the title. Measured on the shared benchmarks, it does not pay (PR-AUC within +-0.008,
        clean or dirty: BENCHMARKS.md), hence off by default. Not with a stacked model's score
        among the features (it would score pairs it never saw); the cross-encoder's blend leaves
        the booster's features its own."""
        from dupsearch.io.benchmark import values_moved_into_title
        if self.config.stacking.enabled and not (self.learned_ is not None and self.learned_.blends):
            return
        seed = self.config.seed
        self._altered_rows("moved_text", self.config.moved_text_share, 104729, MOVED_TEXT_SUFFIX,
                           lambda frame: values_moved_into_title(frame, MOVED_TEXT_P, seed),
                           listings, pairs, y, columns, only_changed=True)

    def _altered_rows(self, kind: str, share: float, salt: int, suffix: str, alter, listings, pairs, y,
                      columns, only_changed: bool = False) -> None:
        """A share of the training pairs with one side's listing altered, or both (``alter``: a
        listings frame -> the altered frame, ids kept), and their features: kept as
        ``_augmented_[kind]`` for ``_enlarged`` to add beside their pairs' rows. With
        ``only_changed``, a pair whose altered listings came out as they were is left out (it
        would only count its pair twice)."""
        k = int(round(share * len(pairs)))
        if k == 0:
            return
        rng = np.random.default_rng(self.config.seed + salt)
        idx = np.sort(rng.choice(len(pairs), size=min(k, len(pairs)), replace=False))
        chosen = pairs.iloc[idx][["item_id_a", "item_id_b"]].astype(str).reset_index(drop=True)
        side = rng.integers(0, 3, len(idx))  # 0: a altered, 1: b altered, 2: both
        original = listings_for(listings, chosen)
        changed = alter(original)
        if only_changed:
            ids = original["item_id"].astype(str).to_numpy()
            differs = set(ids[original["title"].to_numpy() != changed["title"].to_numpy()])
            a_moved = chosen["item_id_a"].isin(differs).to_numpy() & (side != 1)
            b_moved = chosen["item_id_b"].isin(differs).to_numpy() & (side >= 1)
            keep = a_moved | b_moved
            idx, chosen, side = idx[keep], chosen[keep].reset_index(drop=True), side[keep]
            if not len(idx):
                return
        changed["item_id"] = changed["item_id"].astype(str) + suffix
        frame = pd.concat([original, changed], ignore_index=True)
        new = chosen.copy()
        new.loc[side != 1, "item_id_a"] += suffix
        new.loc[side >= 1, "item_id_b"] += suffix
        store, ia, ib = self.pair_store(frame, new)
        X_new = self.pipeline_.compare(store, ia, ib).reindex(columns=columns)
        self._augmented_[kind] = (idx, X_new, y[idx], np.asarray(store[PAIR_CATEGORY])[ia])

    def _enlarged(self, listings, pairs, X, y, cat, rows: np.ndarray, never: pd.Index | None = None):
        """Training rows `rows` plus, when enlargement is on, the pairs their transitive chains
        imply (never a pair in `never`: the held-out pairs), plus the emptied-text copies of the
        rows' pairs (``_missing_text_rows``) and their moved-text copies (``_moved_text_rows``).
        Returns X, y, cat, added-pairs report."""
        X_tr, y_tr, c_tr, rep = self._enlarged_pairs(listings, pairs, X, y, cat, rows, never)
        for idx, X_new, y_new, c_new in getattr(self, "_augmented_", {}).values():
            take = np.isin(idx, rows)
            if take.any():
                X_tr = pd.concat([X_tr, X_new[take]], ignore_index=True)
                y_tr, c_tr = np.concatenate([y_tr, y_new[take]]), np.concatenate([c_tr, c_new[take]])
        return X_tr, y_tr, c_tr, rep

    def _enlarged_pairs(self, listings, pairs, X, y, cat, rows: np.ndarray, never: pd.Index | None = None):
        X_tr, y_tr, c_tr = X.iloc[rows].reset_index(drop=True), y[rows], cat[rows]
        if self.config.enlarge is None:
            return X_tr, y_tr, c_tr, None
        from dupsearch.models.enlarge import EnlargeConfig, enlarge_pairs
        given = pairs.iloc[rows][["item_id_a", "item_id_b", "label"]].reset_index(drop=True)
        if "group" in pairs:
            given["group"] = pairs["group"].iloc[rows].to_numpy()
        big, rep = enlarge_pairs(given, EnlargeConfig(**{"seed": self.config.seed, **self.config.enlarge}))
        new = big[big["origin"] != "given"] if "origin" in big else big.iloc[len(given):]
        if never is not None:
            keep = ~pair_keys(new).isin(never).to_numpy()
            rep["dropped_held_out"] = int((~keep).sum())
            new = new[keep]
        new = new.reset_index(drop=True)
        if not len(new):
            return X_tr, y_tr, c_tr, rep
        store, ia, ib = self.pair_store(listings, new)
        X_new = self.pipeline_.compare(store, ia, ib).reindex(columns=X.columns)
        c_new = np.asarray(store[PAIR_CATEGORY])[ia]
        return (pd.concat([X_tr, X_new], ignore_index=True), np.concatenate([y_tr, new["label"].to_numpy(int)]),
                np.concatenate([c_tr, c_new]), rep)

    def _categorical(self) -> list[str]:
        return [c for c in self.pipeline_.categorical_features if c in self.feature_names]

    def _make_gbdt(self, seed: int) -> GBDTModel:
        return GBDTModel(self.config.gbdt, self._categorical(), seed)

    def _make_automl(self, seed: int):
        from dupsearch.models.automl import AutoMLConfig, AutoMLModel
        return AutoMLModel(AutoMLConfig(**self.config.ensemble.automl_params), self._categorical(), seed)

    def _category_models(self, automl: bool, n_models: int) -> CategoryModels:
        e = self.config.ensemble
        return CategoryModels(self._make_automl if automl else self._make_gbdt,
                              e.min_category_pairs, e.min_category_positives, n_models)

    def _fit_parts(self, X, y, cat, stop: np.ndarray | None, seeds: list[int], iterations: int | None = None,
                   category_iterations: dict | None = None) -> dict:
        """Fit every component on (X, y); `stop` marks rows used only for early stopping."""
        e = self.config.ensemble
        fit = ~stop if stop is not None else np.ones(len(y), bool)
        es = (X[stop], y[stop]) if stop is not None and stop.any() else None
        parts: dict = {"general": [self._make_gbdt(s).fit(X[fit], y[fit], eval_set=es,
                                                          iterations=None if es else iterations)
                                   for s in seeds]}
        general_iter = int(np.mean([m.best_iteration_ for m in parts["general"]]))
        if e.per_category:
            parts["category"] = self._category_models(False, len(seeds)).fit(
                X, y, cat, stop_mask=stop, iterations=category_iterations,
                fallback_iterations=general_iter, seed=seeds[0])
        if e.automl:  # LightAutoML cross-validates itself: the stopping rows stay out of it
            parts["automl"] = self._make_automl(seeds[0]).fit(X[fit], y[fit])
            if e.automl_per_category:
                parts["automl_category"] = self._category_models(True, 1).fit(
                    X[fit], y[fit], cat[fit], seed=seeds[0])
        return parts

    def _scores(self, parts: dict, X: pd.DataFrame, cat: np.ndarray, overall_prior: float,
                raw: dict | None = None) -> dict:
        """Each component's scores, per-category ones filled and (when configured) aligned.
        `raw`, when given, receives the unaligned scores and each row's category prior."""
        shared: dict = {}
        scores = {"general": np.mean([m.predict_proba(X, shared) for m in parts["general"]], axis=0)}
        if "category" in parts:
            scores["category"] = parts["category"].predict(X, cat)
        if "automl" in parts:
            scores["automl"] = parts["automl"].predict_proba(X)
        if "automl_category" in parts:
            scores["automl_category"] = parts["automl_category"].predict(X, cat)
        scores = fill_fallbacks(scores)
        priors = {}
        for name in ("automl_category", "category"):  # the boosters' priors win where both exist
            if name in parts:
                priors.update(parts[name].priors_)
        rho = row_priors(cat, priors)
        if raw is not None:
            raw.update(scores=scores, rho=rho, prior=overall_prior)
        return align_rows(scores, rho, overall_prior) if self.config.ensemble.align else scores

    def _combines(self) -> bool:
        e = self.config.ensemble
        return len(e.components) > 1 or e.calibrate != "none"

    def _fit_with_cv(self, listings, pairs, X, y, cat, metrics: dict, final: bool = True) -> None:
        """Out-of-fold predictions of every component, then the final models on all pairs.
        Early stopping uses an inner group split of each fold's training part, so the held-out
        fold is never seen before it is scored."""
        from sklearn.model_selection import GroupShuffleSplit

        cfg = self.config
        folds, rule = group_folds(pairs, y, cfg.cv_folds, cfg.seed)
        groups, _ = choose_groups(pairs, cfg.cv_folds)
        comps = cfg.ensemble.components
        oof = {c: np.full(len(y), np.nan) for c in comps}
        # unaligned scores, each row's category prior and its fold's overall prior (for ablations)
        raw_oof = {"scores": {c: np.full(len(y), np.nan) for c in comps},
                   "rho": np.full(len(y), np.nan), "prior": np.full(len(y), np.nan)}
        iters, cat_iters, per_fold, enlarge_reports = [], {}, [], []
        all_keys = pd.Index(pair_keys(pairs)) if cfg.enlarge is not None else None
        for k, (tr, te) in enumerate(folds):
            inner = GroupShuffleSplit(n_splits=1, test_size=0.15, random_state=cfg.seed + k)
            fit_i, stop_i = next(inner.split(tr, y[tr], groups[tr]))
            if len(np.unique(y[tr[stop_i]])) < 2:  # tiny data: no usable stopping set
                fit_i, stop_i = np.arange(len(tr)), np.zeros(0, int)
            X_k, y_k, c_k, rep = self._enlarged(listings, pairs, X, y, cat, tr[fit_i], never=all_keys)
            if rep is not None:
                enlarge_reports.append(rep)
            stop = np.zeros(len(y_k) + len(stop_i), bool)
            stop[len(y_k):] = True
            X_k = pd.concat([X_k, X.iloc[tr[stop_i]].reset_index(drop=True)], ignore_index=True)
            y_k, c_k = np.concatenate([y_k, y[tr[stop_i]]]), np.concatenate([c_k, cat[tr[stop_i]]])
            parts = self._fit_parts(X_k, y_k, c_k, stop if stop.any() else None, [cfg.seed + k])
            iters.append(parts["general"][0].best_iteration_)
            for c, n in getattr(parts.get("category"), "iterations_", {}).items():
                cat_iters.setdefault(c, []).append(n)
            raw: dict = {}
            scores = self._scores(parts, X.iloc[te], cat[te], float(y_k[~stop].mean()), raw=raw)
            for c in comps:
                oof[c][te] = scores[c]
                raw_oof["scores"][c][te] = raw["scores"][c]
            raw_oof["rho"][te], raw_oof["prior"][te] = raw["rho"], raw["prior"]
            log.info("fold %d: PR-AUC %.4f", k, binary_metrics(y[te], scores["general"])["pr_auc"])
        if self._combines():
            combined = cross_fitted_combination(cfg.ensemble, oof, y, cat, folds)
        else:
            combined = oof["general"]
        for k, (_, te) in enumerate(folds):
            fm = binary_metrics(y[te], combined[te])
            per_fold.append({"fold": k, "n_pairs": int(len(te)), "pr_auc": fm["pr_auc"],
                             "roc_auc": fm["roc_auc"], "iterations": iters[k]})
        self.oof_ = combined
        self.component_oof_ = oof
        self.eval_ = {"what": "out-of-fold", "y": y, "p": combined, "category": cat}
        self.cv_raw_, self.cv_folds_ = raw_oof, folds
        pr = [f["pr_auc"] for f in per_fold]
        metrics["cv"] = cv = {"folds": per_fold, "grouping": rule, "oof": binary_metrics(y, combined),
                              "pr_auc_mean": float(np.nanmean(pr)), "pr_auc_std": float(np.nanstd(pr)),
                              "best_iterations": iters}
        self.threshold_ = self._threshold(y, combined, metrics)
        if not final:
            return
        n_iter = max(int(np.mean(iters)), 10)
        X_all, y_all, c_all, rep = self._enlarged(listings, pairs, X, y, cat, np.arange(len(y)))
        self.parts_ = self._fit_parts(X_all, y_all, c_all, None, [cfg.seed + i for i in range(cfg.n_models)],
                                      iterations=n_iter,
                                      category_iterations={c: max(int(np.mean(v)), 10) for c, v in cat_iters.items()})
        self.models_ = self.parts_["general"]
        self.prior_ = float(y_all.mean())
        metrics["iterations"] = [n_iter] * cfg.n_models
        if rep is not None:
            metrics["enlarge"] = {"final": rep, "folds": enlarge_reports, "n_train_pairs_enlarged": int(len(y_all))}
        self.combiner_ = Combiner(cfg.ensemble).fit(oof, y, cat) if self._combines() else None
        self._ensemble_metrics(metrics, oof, y)

    def _fit_with_validation(self, listings, pairs, X, y, cat, valid_pairs, metrics, progress) -> None:
        cfg = self.config
        yv = _labels(valid_pairs, "validation")
        store, ia, ib = self.pair_store(listings, valid_pairs, progress)
        Xv = self.store_features(store, ia, ib, progress=progress)
        cv_ = np.asarray(store[PAIR_CATEGORY])[ia]
        never = pd.Index(pair_keys(valid_pairs)) if cfg.enlarge is not None else None
        X_tr, y_tr, c_tr, rep = self._enlarged(listings, pairs, X, y, cat, np.arange(len(y)), never=never)
        # Validation rows only steer early stopping (per category too) and the combination.
        X_all = pd.concat([X_tr, Xv.reset_index(drop=True)], ignore_index=True)
        stop = np.r_[np.zeros(len(y_tr), bool), np.ones(len(yv), bool)]
        self.parts_ = self._fit_parts(X_all, np.r_[y_tr, yv], np.r_[c_tr, cv_], stop,
                                      [cfg.seed + i for i in range(cfg.n_models)])
        self.models_ = self.parts_["general"]
        self.prior_ = float(y_tr.mean())
        scores = self._scores(self.parts_, Xv, cv_, self.prior_)
        if self._combines():
            from sklearn.model_selection import StratifiedKFold
            vfolds = list(StratifiedKFold(5, shuffle=True, random_state=cfg.seed).split(np.zeros(len(yv)), yv))
            pv = cross_fitted_combination(cfg.ensemble, scores, yv, cv_, vfolds)
            self.combiner_ = Combiner(cfg.ensemble).fit(scores, yv, cv_)
        else:
            pv, self.combiner_ = scores["general"], None
        if self.learned_ is not None and self.learned_.blends:
            prepared = self.pipeline_.prepare(listings_for(listings, pd.concat([pairs, valid_pairs])))
            pv = self.learned_.fit_blend(prepared, pairs, y, valid_pairs, yv, pv, seed=cfg.seed, progress=progress)
        vm = binary_metrics(yv, pv)
        self.threshold_ = self._threshold(yv, pv, metrics)
        self.eval_ = {"what": "validation", "y": yv, "p": pv, "category": cv_,
                      "components": getattr(self.learned_, "valid_components_", None)}
        metrics["valid"] = vm
        metrics["iterations"] = [m.best_iteration_ for m in self.models_]
        if rep is not None:
            metrics["enlarge"] = {"final": rep, "n_train_pairs_enlarged": int(len(y_tr))}
        self._ensemble_metrics(metrics, scores, yv)

    def _threshold(self, y: np.ndarray, p: np.ndarray, metrics: dict) -> float:
        """The decision threshold read off held-out scores by the configured rule."""
        rule = metrics["threshold_rule"] = self.config.threshold_rule
        return THRESHOLD_RULES[rule](y, p)[1] if 0 < np.sum(y) < len(y) else 0.5

    def _ensemble_metrics(self, metrics: dict, scores: dict, y: np.ndarray) -> None:
        if not self._combines():
            return
        e = self.config.ensemble
        out = {"components": list(scores), "component_pr_auc": component_report(scores, y),
               "weights": dict(zip(self.combiner_.components_, map(float, self.combiner_.weights_))),
               "blend": e.blend, "align": e.align, "calibrate": e.calibrate, "overall_prior": self.prior_}
        if "category" in self.parts_:
            cm = self.parts_["category"]
            out["category_models"] = {c: {"n_pairs": cm.sizes_[c], "prior": cm.priors_[c],
                                          "iterations": cm.iterations_.get(c)} for c in cm.models_}
        metrics["ensemble"] = out

    def predict_proba_features(self, X: pd.DataFrame, cat: np.ndarray | None = None) -> np.ndarray:
        if list(X.columns) != list(self.feature_names):  # a copy of the frame: only when needed
            X = X.reindex(columns=self.feature_names)
        if self.combiner_ is None:
            shared: dict = {}  # X converted to the boosters' input once for all of them
            return np.mean([m.predict_proba(X, shared) for m in self.models_], axis=0)
        if cat is None:
            raise ValueError("this model combines per-category scores: pass the pairs' categories "
                             "(or score pairs with DuplicateMatcher.score)")
        return self.combiner_.transform(self._scores(self.parts_, X, np.asarray(cat, dtype=object), self.prior_),
                                        np.asarray(cat, dtype=object))

    def predict_proba(self, listings: pd.DataFrame, pairs: pd.DataFrame, progress: bool = False) -> np.ndarray:
        """Duplicate probability of id pairs: a store of their listings, then ``score``."""
        self.check_fitted()
        if len(pairs) == 0:
            return np.zeros(0)
        store, ia, ib = self.pair_store(listings, pairs, progress)
        return self.score(store, ia, ib, progress=progress)

    def predict(self, listings: pd.DataFrame, pairs: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(listings, pairs) >= self.threshold_).astype(int)

    # ---- model directory -------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the model directory atomically: a half-written model never appears at `path`."""
        from dupsearch.artifacts import claim_dir, mark
        path = claim_dir(path, "model", what="model folder")  # replaces only a model of ours
        with atomic_directory(path, own=(MANIFEST,)) as tmp:  # MANIFEST: a model from before markers
            mark(tmp, "model")
            cfg = asdict(self.config)
            (tmp / "config.json").write_text(json.dumps(cfg, indent=2))
            (tmp / "features.json").write_text(json.dumps(
                {"features": self.feature_names, "categorical": self.pipeline_.categorical_features}, indent=1))
            self.pipeline_.save(tmp)
            if self.learned_ is not None:
                self.learned_.save(tmp / "stacking")
            for i, m in enumerate(self.models_):
                m.save(tmp / f"booster_{i}")
            self._save_ensemble(tmp)
            (tmp / "metrics.json").write_text(strict_json(self.metrics_, indent=2))
            if self.importance_ is not None:
                self.importance_.rename("importance").to_csv(tmp / "feature_importance.csv", index_label="feature")
            from dupsearch.digests import folder_files
            manifest = {"format_version": dupsearch.MODEL_FORMAT_VERSION, "threshold": self.threshold_,
                        "cluster_thresholds": self.cluster_thresholds_, "cluster_method": self.cluster_method_,
                        "n_models": len(self.models_), "backend": self.config.gbdt.backend,
                        "versions": dependency_versions(),
                        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        # every file and its sha256, checked on load: a changed or truncated file
                        # is named, never read
                        "files": folder_files(tmp, skip=(MANIFEST,))}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        return path

    def _save_ensemble(self, tmp: Path) -> None:
        if self.combiner_ is None:
            return
        for name in ("category", "automl_category"):
            if name in self.parts_:
                self.parts_[name].save(tmp / name)
        if "automl" in self.parts_:
            self.parts_["automl"].save(tmp / "automl")
        (tmp / ENSEMBLE).write_text(json.dumps({"prior": self.prior_, "combiner": self.combiner_.to_dict(),
                                                "parts": sorted(self.parts_)}, indent=1, ensure_ascii=False))

    def _load_ensemble(self, path: Path, trust: bool = False) -> None:
        self.parts_ = {"general": self.models_}
        if not (path / ENSEMBLE).is_file():
            return
        state = json.loads((path / ENSEMBLE).read_text())
        self.prior_ = state["prior"]
        self.combiner_ = Combiner.from_dict(self.config.ensemble, state["combiner"])
        if "category" in state["parts"]:
            self.parts_["category"] = CategoryModels.load(
                path / "category", lambda stem: GBDTModel.load(self.config.gbdt, stem))
        if "automl" in state["parts"] or "automl_category" in state["parts"]:
            if not trust:
                raise UntrustedModelError(
                    f"model directory {path} holds a LightAutoML component, which LightAutoML saves only "
                    f"as a pickle: loading it can run any code its author put there. Load it only from a "
                    f"source you trust, with --trust-model (DuplicateMatcher.load(path, trust=True))")
            from dupsearch.models.automl import AutoMLConfig, AutoMLModel
            acfg = AutoMLConfig(**self.config.ensemble.automl_params)
            if "automl" in state["parts"]:
                self.parts_["automl"] = AutoMLModel.load(acfg, path / "automl", trust=True)
            if "automl_category" in state["parts"]:
                self.parts_["automl_category"] = CategoryModels.load(
                    path / "automl_category", lambda stem: AutoMLModel.load(acfg, stem, trust=True))

    @classmethod
    def load(cls, path: str | os.PathLike, trust: bool = False) -> "DuplicateMatcher":
        """Read a model directory. Its files are checked against the sha256 the manifest lists
        and read as plain data (JSON, .npy/.npz, native booster files): loading runs no code from
        them. The one exception is a LightAutoML component, which LightAutoML saves only as a
        pickle: such a model loads only with ``trust=True`` (``--trust-model``)."""
        from dupsearch.digests import verify_files
        path = Path(path)
        mf = path / MANIFEST
        if not mf.is_file():
            raise ModelNotFoundError(f"{path} is not a dupsearch model directory (no {MANIFEST}); "
                                     "train one with `dupsearch train`")
        try:
            manifest = json.loads(mf.read_text())
            if not isinstance(manifest, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as e:
            raise ModelVersionError(f"model directory {path}: {MANIFEST} is not readable ({e})") from None
        fmt = manifest.get("format_version")
        made_by = manifest.get("versions", {}).get("dupsearch", "?")
        if fmt != dupsearch.MODEL_FORMAT_VERSION:
            raise ModelVersionError(
                f"model directory {path} was written by dupsearch {made_by} (model format {fmt}); "
                f"this is dupsearch {dupsearch.__version__} (model format {dupsearch.MODEL_FORMAT_VERSION}). "
                f"Retrain it with this version (`dupsearch train`) or install dupsearch=={made_by}.")
        if not isinstance(manifest.get("files"), dict):
            raise ModelVersionError(f"model directory {path}: {MANIFEST} lists no files and digests; "
                                    f"retrain it with this version (`dupsearch train`)")
        verify_files(path, manifest["files"], "model directory")
        reading = ["manifest.json"]  # the part being read, for the error below
        try:
            return cls._load_verified(path, manifest, trust, reading)
        except DupsearchError:
            raise
        except Exception as e:  # noqa: BLE001 - the boundary of files from elsewhere
            # Every file matched its digest, yet one does not parse (written broken, or edited
            # along with its digest): name the model, the file and the reader's complaint.
            name = Path(e.filename).name if getattr(e, "filename", None) else reading[0]
            raise ModelFileError(f"model directory {path}: {name} cannot be read: "
                                 f"{type(e).__name__}: {' '.join(str(e).split())[:300]}") from None

    @classmethod
    def _load_verified(cls, path: Path, manifest: dict, trust: bool, reading: list) -> "DuplicateMatcher":
        """``load`` after the digests matched; ``reading[0]`` names the part being read."""
        here = dependency_versions()
        for dep in ("scikit-learn", "catboost", "lightgbm"):
            saved = manifest["versions"].get(dep)
            if saved and saved.split(".")[:2] != here.get(dep, "").split(".")[:2]:
                log.warning("model %s was saved with %s %s, this environment has %s; predictions may differ",
                            path, dep, saved, here.get(dep))
        reading[0] = "config.json"
        self = cls(MatcherConfig.from_dict(json.loads((path / "config.json").read_text())))
        reading[0] = "the feature pipeline (feature_pipeline.json/.npz, homoglyph_cleaner/)"
        self.pipeline_ = FeaturePipeline.load(path)
        reading[0] = "features.json"
        self.feature_names_ = json.loads((path / "features.json").read_text())["features"]
        if (path / "stacking").is_dir():
            reading[0] = "stacking/"
            self.learned_ = LearnedFeatures.load(path / "stacking")
        self.models_ = []
        for i in range(int(manifest["n_models"])):
            native = ".cbm" if self.config.gbdt.backend == "catboost" else ".txt"
            reading[0] = f"booster_{i}{native} / booster_{i}.json"
            self.models_.append(GBDTModel.load(self.config.gbdt, path / f"booster_{i}"))
        reading[0] = "the ensemble (ensemble.json and its boosters)"
        self._load_ensemble(path, trust)
        reading[0] = "manifest.json"
        self.threshold_ = float(manifest["threshold"])
        self.cluster_thresholds_, self.cluster_method_ = _cluster_settings(manifest)
        reading[0] = "metrics.json"
        self.metrics_ = json.loads((path / "metrics.json").read_text())
        imp = path / "feature_importance.csv"
        if imp.exists():
            reading[0] = "feature_importance.csv"
            self.importance_ = pd.read_csv(imp, index_col=0)["importance"]
        self.manifest_ = manifest
        return self
