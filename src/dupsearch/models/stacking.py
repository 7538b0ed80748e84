"""Learned matchers stacked under the gradient boosting, without leakage (seed items 13-14).

A model trained on the labelled pairs themselves (the fine-tuned cross-encoder) would score its
own training pairs from memory, and a booster trained on such scores learns to trust them far
more than it should. So each training pair gets an out-of-fold score: the folds are the grouped
folds the booster uses (`models.cv.group_folds`: a listing never in two folds), a fresh model is
fine-tuned on the other folds and scores this one. Pairs outside training (validation, test,
production) get the score of one more model fine-tuned on all training pairs.

``StackingConfig.combine = "blend"`` spends a quarter of that CPU: one cross-encoder fine-tuned on
all training pairs, early-stopped on the validation pairs, and its logit blended with the
booster's by a logistic regression fitted on the validation pairs (the booster never sees the
cross-encoder's score, so no out-of-fold scores are needed).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from dupsearch.atomic import atomic_write_text
from dupsearch.config import StackingConfig  # noqa: F401  (settings live in dupsearch.config)

CROSS_ENCODER_FEATURE = "learned.cross_encoder.score"
CROSS_ENCODER_DIR = "cross_encoder"
IMAGE_MODEL_DIR = "image_model"
IMAGE_MODEL_NAME = "image_contrastive"
LEARNED_TEXT = "learned.text"  # store columns (see LearnedFeatures.listing_state)
LEARNED_PHOTOS = "img|learned"


def photo_sets(encode, photo_lists: list[list[str]]):
    """Each listing's photos encoded (each distinct photo once) as a Ragged (photos, dim)."""
    from dupsearch.features.store import Ragged
    paths = sorted({p for ps in photo_lists for p in ps})
    emb = encode(paths) if paths else np.zeros((0, 1), np.float32)
    row = {p: emb[k] for k, p in enumerate(paths)}
    return Ragged.from_list([np.stack([row[p] for p in ps]) if ps else None for ps in photo_lists],
                            emb.shape[1] if len(paths) else None)


def _photo_lists(listings: pd.DataFrame, ids) -> list[list[str]]:
    photos = listings.drop_duplicates("item_id").set_index(listings["item_id"].drop_duplicates().astype(str))["images"]
    return [[str(p) for p in v] if isinstance(v, (list, tuple, np.ndarray)) else [] for v in photos.reindex(ids)]


def _photo_set_features(encode, listings: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Photo-set similarity summaries (as `features.embeddings.image_set_features`) under a
    learned image model, for pairs of item ids (training: out-of-fold models)."""
    from dupsearch.features.embeddings import image_set_features
    ids = pd.unique(pd.concat([pairs["item_id_a"], pairs["item_id_b"]]).astype(str))
    sets = photo_sets(encode, _photo_lists(listings, ids))
    index = pd.Index(ids)
    ia = index.get_indexer(pairs["item_id_a"].astype(str))
    ib = index.get_indexer(pairs["item_id_b"].astype(str))
    return pd.DataFrame(image_set_features(sets, ia, ib, f"learned.{IMAGE_MODEL_NAME}"))


def _texts(prepared: pd.DataFrame, *pair_frames: pd.DataFrame) -> list[list[str]]:
    """The pair texts (side A, side B) of each pair frame, each listing's text made once."""
    from dupsearch.models.cross_encoder import pair_text
    text_of = dict(zip(prepared["item_id"].astype(str), pair_text(prepared)))
    return [[text_of[str(i)] for i in pairs[col]] for pairs in pair_frames for col in ("item_id_a", "item_id_b")]


_EPS = 1e-6


def _blend_inputs(p_booster, p_cross_encoder) -> np.ndarray:
    """(n, 2) logits of the two probabilities (clipped away from 0 and 1)."""
    P = np.clip(np.c_[np.asarray(p_booster, float), np.asarray(p_cross_encoder, float)], _EPS, 1 - _EPS)
    return np.log(P / (1 - P))


def _logistic(Z: np.ndarray, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression
    return LogisticRegression(C=1.0).fit(Z, y)


def cross_fitted_blend(p_booster, p_cross_encoder, y, seed: int = 0):
    """The blend's logistic regression over the two logits, fitted on (validation) pairs ``y``:
    (each pair's probability from a regression fitted without it (5 folds), the regression
    fitted on all of them)."""
    from sklearn.model_selection import StratifiedKFold
    Z = _blend_inputs(p_booster, p_cross_encoder)
    y = np.asarray(y).astype(int)
    crossed = np.empty(len(y))
    folds = StratifiedKFold(5, shuffle=True, random_state=seed).split(Z, y) if min(np.bincount(y, minlength=2)) >= 5 \
        else [(np.arange(len(y)), np.arange(len(y)))]
    for tr, te in folds:
        crossed[te] = _logistic(Z[tr], y[tr]).predict_proba(Z[te])[:, 1]
    return crossed, _logistic(Z, y)


def _checked_blend(blend, where: Path) -> dict:
    from dupsearch.errors import ModelFileError
    try:
        weights = [float(w) for w in blend["weights"]]
        intercept = float(blend["intercept"])
    except (TypeError, KeyError, ValueError):
        raise ModelFileError(f"{where}: the blend of the booster and the cross-encoder is missing or "
                               f"malformed (need weights [2 numbers] and intercept); retrain the model") from None
    if len(weights) != 2 or not np.isfinite(weights + [intercept]).all():
        raise ModelFileError(f"{where}: the blend needs 2 finite weights and a finite intercept; retrain the model")
    return {"weights": weights, "intercept": intercept}


class LearnedFeatures:
    """fit_transform (out-of-fold scores of training pairs) -> transform (any pairs) -> save/load."""

    def __init__(self, config: StackingConfig):
        self.config = config
        self.cross_encoder_ = None
        self.image_encode_ = None  # photos -> unit rows, from the final contrastive model
        self.image_encoder_ = None  # the same as an Encoder, once loaded (goes through the cache)
        self.report_: dict = {}
        self.blend_: dict | None = None  # "blend": {"weights": [booster, cross-encoder], "intercept"}

    @property
    def blends(self) -> bool:
        return self.config.cross_encoder is not None and getattr(self.config, "combine", "features") == "blend"

    def fit_blend(self, prepared: pd.DataFrame, pairs: pd.DataFrame, y: np.ndarray, valid_pairs: pd.DataFrame,
                  yv: np.ndarray, p_booster: np.ndarray, seed: int = 0, progress: bool = False) -> np.ndarray:
        """The "blend" combination: fine-tune the cross-encoder on the training pairs (best
        validation PR-AUC kept), fit the blend of the two logits on the validation pairs, and
        return the validation pairs' blended probabilities, each from a blend fitted without it
        (5 folds), for the threshold and the validation figures."""
        from dupsearch.models.cross_encoder import CrossEncoderModel
        from dupsearch.models.metrics import binary_metrics
        a, b, va, vb = _texts(prepared, pairs, valid_pairs)
        t0 = time.perf_counter()
        self.cross_encoder_ = CrossEncoderModel(self._ce_config(seed)).fit(a, b, y, progress=progress,
                                                                           valid=(va, vb, yv))
        t_fit = time.perf_counter() - t0
        ce = self.cross_encoder_
        pc = ce.valid_scores_ if ce.valid_scores_ is not None else ce.predict_proba(va, vb)
        crossed, lr = cross_fitted_blend(p_booster, pc, yv, seed)
        # the blend's inputs on validation, for studies of the combination that never read test
        self.valid_components_ = {"booster": np.asarray(p_booster, float), "cross_encoder": np.asarray(pc, float)}
        self.blend_ = {"weights": [float(w) for w in lr.coef_[0]], "intercept": float(lr.intercept_[0])}
        self.report_["cross_encoder"] = {
            "combine": "blend", "n_pairs": int(len(y)), "final_seconds": round(t_fit, 1), "epochs": ce.epochs_,
            "valid_history": [list(h) for h in ce.valid_history_], "best_epoch": ce.best_epoch_,
            "precision": ce._precision, "seed": int(ce.config.seed), "pos_weight": getattr(ce, "pos_weight_", 1.0),
            "valid_pr_auc": binary_metrics(yv, pc)["pr_auc"],
            "booster_valid_pr_auc": binary_metrics(yv, p_booster)["pr_auc"],
            "blend": self.blend_}
        return crossed

    def blend(self, p_booster: np.ndarray, p_cross_encoder: np.ndarray) -> np.ndarray:
        """P(duplicate) from the booster's and the cross-encoder's probabilities (fitted blend)."""
        z = _blend_inputs(p_booster, p_cross_encoder) @ np.asarray(self.blend_["weights"]) + self.blend_["intercept"]
        return 1.0 / (1.0 + np.exp(-z))

    def _ce_config(self, seed: int):
        """The cross-encoder's settings; its seed is the matcher's unless the stacking settings name
        one, so that runs at several seeds also vary the fine-tune (head, dropout, shuffling)."""
        from dupsearch.models.cross_encoder import CrossEncoderConfig
        return CrossEncoderConfig(**{"seed": int(seed), **self.config.cross_encoder})

    def fit_transform(self, listings: pd.DataFrame, prepared: pd.DataFrame, pairs: pd.DataFrame, y: np.ndarray,
                      folds: list[tuple[np.ndarray, np.ndarray]], seed: int = 0,
                      progress: bool = False) -> pd.DataFrame:
        out = {}
        if self.config.cross_encoder is not None and not self.blends:
            from dupsearch.models.cross_encoder import CrossEncoderModel, out_of_fold_scores
            cfg = self._ce_config(seed)
            a, b = _texts(prepared, pairs)
            t0 = time.perf_counter()
            oof = out_of_fold_scores(cfg, a, b, y, folds, progress=progress)
            t_oof = time.perf_counter() - t0
            t0 = time.perf_counter()
            self.cross_encoder_ = CrossEncoderModel(cfg).fit(a, b, y, progress=progress)
            from dupsearch.models.metrics import binary_metrics
            alone = binary_metrics(y, oof)
            self.report_["cross_encoder"] = {
                "folds": len(folds), "n_pairs": int(len(y)), "oof_seconds": round(t_oof, 1),
                "final_seconds": round(time.perf_counter() - t0, 1),
                "oof_pr_auc": alone["pr_auc"], "oof_best_f1": alone["best_f1"]}
            out[CROSS_ENCODER_FEATURE] = oof
        frame = pd.DataFrame(out, index=pd.RangeIndex(len(pairs)))
        if self.config.image_model is not None:
            frame = pd.concat([frame, self._fit_image_model(listings, pairs, y, folds, progress)], axis=1)
        return frame

    def _fit_image_model(self, listings, pairs, y, folds, progress) -> pd.DataFrame:
        from dupsearch.models.image_contrastive import ContrastiveConfig, ContrastiveImageTrainer
        cfg = ContrastiveConfig(**self.config.image_model)
        t0 = time.perf_counter()
        parts = []
        for tr, te in folds:
            trainer = ContrastiveImageTrainer(cfg)
            trainer.fit(*trainer.pairs_from_listings(listings, pairs.iloc[tr]), progress=progress)
            parts.append(_photo_set_features(trainer.encode, listings, pairs.iloc[te]).set_axis(te))
        oof = pd.concat(parts).sort_index()
        t_oof = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.image_trainer_ = ContrastiveImageTrainer(cfg)
        self.image_trainer_.fit(*self.image_trainer_.pairs_from_listings(listings, pairs), progress=progress)
        self.image_encode_ = self.image_trainer_.encode
        from dupsearch.models.metrics import binary_metrics
        alone = binary_metrics(y, oof[f"learned.{IMAGE_MODEL_NAME}.max"].fillna(0).to_numpy())
        self.report_["image_model"] = {"folds": len(folds), "oof_seconds": round(t_oof, 1),
                                       "final_seconds": round(time.perf_counter() - t0, 1),
                                       "oof_pr_auc_max_similarity": alone["pr_auc"]}
        return oof.reset_index(drop=True)

    def listing_state(self, prepared: pd.DataFrame, encode_photos=None) -> dict:
        """Store columns of the stacked models: each listing's pair text and learned photo
        embeddings, once (``encode_photos``: the embedding cache's encoder when given)."""
        out = {}
        if self.cross_encoder_ is not None:
            from dupsearch.models.cross_encoder import pair_text
            out[LEARNED_TEXT] = np.array(pair_text(prepared), dtype=object)
        if self.image_encode_ is not None:
            lists = [[str(p) for p in v] for v in prepared["images"]]
            out[LEARNED_PHOTOS] = photo_sets(encode_photos or self.image_encode_, lists)
        return out

    def compare(self, store, ia: np.ndarray, ib: np.ndarray) -> pd.DataFrame:
        out = {}
        if self.cross_encoder_ is not None:
            texts = store[LEARNED_TEXT]
            out[CROSS_ENCODER_FEATURE] = self.cross_encoder_.predict_proba(list(texts[ia]), list(texts[ib]))
        if self.image_encode_ is not None:
            from dupsearch.features.embeddings import image_set_features
            out.update(image_set_features(store[LEARNED_PHOTOS], ia, ib, f"learned.{IMAGE_MODEL_NAME}"))
        return pd.DataFrame(out, index=range(len(ia)))

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        if self.cross_encoder_ is not None:
            self.cross_encoder_.save(directory / CROSS_ENCODER_DIR)
        if self.image_encode_ is not None:
            self.image_trainer_.save(directory / IMAGE_MODEL_DIR)
        atomic_write_text(directory / "stacking.json", json.dumps(
            {"config": asdict(self.config), "report": self.report_, "blend": self.blend_}, indent=2, default=float))

    @classmethod
    def load(cls, directory: Path) -> "LearnedFeatures":
        directory = Path(directory)
        state = json.loads((directory / "stacking.json").read_text())
        self = cls(StackingConfig(**state["config"]))
        self.report_ = state.get("report", {})
        self.blend_ = _checked_blend(state.get("blend"), directory / "stacking.json") if self.blends else None
        if self.config.cross_encoder is not None:
            from dupsearch.models.cross_encoder import CrossEncoderModel
            self.cross_encoder_ = CrossEncoderModel.load(directory / CROSS_ENCODER_DIR)
        if self.config.image_model is not None:
            # the saved folder is a timm:DIR image encoder (same embeddings as the trainer's)
            from dupsearch.encoders import make_encoder
            self.image_encoder_ = make_encoder(f"timm:{(directory / IMAGE_MODEL_DIR).resolve()}", "image")
            self.image_encode_ = self.image_encoder_.encode
        return self
