"""Learned matchers stacked under the gradient boosting, without leakage (seed items 13-14).

A model trained on the labelled pairs themselves (the fine-tuned cross-encoder) would score its
own training pairs from memory, and a booster trained on such scores learns to trust them far
more than it should. So each training pair gets an out-of-fold score: the folds are the grouped
folds the booster uses (`models.cv.group_folds`: a listing never in two folds), a fresh model is
fine-tuned on the other folds and scores this one. Pairs outside training (validation, test,
production) get the score of one more model fine-tuned on all training pairs.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dupsearch.atomic import atomic_write_text

CROSS_ENCODER_FEATURE = "learned.cross_encoder.score"
CROSS_ENCODER_DIR = "cross_encoder"
IMAGE_MODEL_DIR = "image_model"
IMAGE_MODEL_NAME = "image_contrastive"


@dataclass
class StackingConfig:
    # Settings of `models.cross_encoder.CrossEncoderConfig` (e.g. {"model": "minilm",
    # "epochs": 1}); None: no cross-encoder.
    cross_encoder: dict | None = None
    # Settings of `models.image_contrastive.ContrastiveConfig` (e.g. {"backbone": "resnet18",
    # "image_size": 96}); None: no contrastive photo model.
    image_model: dict | None = None
    # Folds of the out-of-fold scores; None: the matcher's cv_folds (the booster's folds).
    folds: int | None = None

    @property
    def enabled(self) -> bool:
        return self.cross_encoder is not None or self.image_model is not None


def _photo_set_features(encode, listings: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Photo-set similarity summaries (as `features.embeddings.image_set_features`) under a
    learned image model; each photo encoded once."""
    from dupsearch.features.embeddings import image_column, image_set_features
    photos = listings.drop_duplicates("item_id").set_index(listings["item_id"].drop_duplicates().astype(str))["images"]
    ids = pd.unique(pd.concat([pairs["item_id_a"], pairs["item_id_b"]]).astype(str))
    lists = {i: [str(p) for p in (photos.get(i) if isinstance(photos.get(i), (list, tuple, np.ndarray)) else [])]
             for i in ids}
    paths = sorted({p for ps in lists.values() for p in ps})
    emb = encode(paths) if paths else np.zeros((0, 1), np.float32)
    row = {p: emb[k] for k, p in enumerate(paths)}
    per_listing = {i: (np.stack([row[p] for p in ps]) if ps else None) for i, ps in lists.items()}
    col = image_column(IMAGE_MODEL_NAME)
    batch = pd.DataFrame({f"{col}_a": pd.Series([per_listing[str(i)] for i in pairs["item_id_a"]], dtype=object),
                          f"{col}_b": pd.Series([per_listing[str(i)] for i in pairs["item_id_b"]], dtype=object)})
    out = image_set_features(batch, IMAGE_MODEL_NAME)
    return out.rename(columns=lambda c: "learned." + c.removeprefix("images."))


def _texts(prepared: pd.DataFrame, pairs: pd.DataFrame) -> tuple[list[str], list[str]]:
    from dupsearch.models.cross_encoder import pair_text
    text_of = dict(zip(prepared["item_id"].astype(str), pair_text(prepared)))
    return ([text_of[str(i)] for i in pairs["item_id_a"]], [text_of[str(i)] for i in pairs["item_id_b"]])


class LearnedFeatures:
    """fit_transform (out-of-fold scores of training pairs) -> transform (any pairs) -> save/load."""

    def __init__(self, config: StackingConfig):
        self.config = config
        self.cross_encoder_ = None
        self.image_encode_ = None  # photos -> unit rows, from the final contrastive model
        self.report_: dict = {}

    def _ce_config(self):
        from dupsearch.models.cross_encoder import CrossEncoderConfig
        return CrossEncoderConfig(**self.config.cross_encoder)

    def fit_transform(self, listings: pd.DataFrame, prepared: pd.DataFrame, pairs: pd.DataFrame, y: np.ndarray,
                      folds: list[tuple[np.ndarray, np.ndarray]], progress: bool = False) -> pd.DataFrame:
        out = {}
        if self.config.cross_encoder is not None:
            from dupsearch.models.cross_encoder import CrossEncoderModel, out_of_fold_scores
            cfg = self._ce_config()
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
        frame = pd.DataFrame(out)
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

    def transform(self, listings: pd.DataFrame, prepared: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
        out = {}
        if self.cross_encoder_ is not None:
            a, b = _texts(prepared, pairs)
            out[CROSS_ENCODER_FEATURE] = self.cross_encoder_.predict_proba(a, b)
        frame = pd.DataFrame(out)
        if self.image_encode_ is not None:
            frame = pd.concat([frame, _photo_set_features(self.image_encode_, listings, pairs)], axis=1)
        return frame

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        if self.cross_encoder_ is not None:
            self.cross_encoder_.save(directory / CROSS_ENCODER_DIR)
        if self.image_encode_ is not None:
            self.image_trainer_.save(directory / IMAGE_MODEL_DIR)
        atomic_write_text(directory / "stacking.json", json.dumps(
            {"config": asdict(self.config), "report": self.report_}, indent=2, default=float))

    @classmethod
    def load(cls, directory: Path) -> "LearnedFeatures":
        directory = Path(directory)
        state = json.loads((directory / "stacking.json").read_text())
        self = cls(StackingConfig(**state["config"]))
        self.report_ = state.get("report", {})
        if self.config.cross_encoder is not None:
            from dupsearch.models.cross_encoder import CrossEncoderModel
            self.cross_encoder_ = CrossEncoderModel.load(directory / CROSS_ENCODER_DIR)
        if self.config.image_model is not None:
            # the saved folder is a timm:DIR image encoder (same embeddings as the trainer's)
            from dupsearch.encoders import make_encoder
            self.image_encode_ = make_encoder(f"timm:{(directory / IMAGE_MODEL_DIR).resolve()}", "image").encode
        return self
