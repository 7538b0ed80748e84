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


@dataclass
class StackingConfig:
    # Settings of `models.cross_encoder.CrossEncoderConfig` (e.g. {"model": "minilm",
    # "epochs": 1}); None: no cross-encoder.
    cross_encoder: dict | None = None
    # Folds of the out-of-fold scores; None: the matcher's cv_folds (the booster's folds).
    folds: int | None = None

    @property
    def enabled(self) -> bool:
        return self.cross_encoder is not None


def _texts(prepared: pd.DataFrame, pairs: pd.DataFrame) -> tuple[list[str], list[str]]:
    from dupsearch.models.cross_encoder import pair_text
    text_of = dict(zip(prepared["item_id"].astype(str), pair_text(prepared)))
    return ([text_of[str(i)] for i in pairs["item_id_a"]], [text_of[str(i)] for i in pairs["item_id_b"]])


class LearnedFeatures:
    """fit_transform (out-of-fold scores of training pairs) -> transform (any pairs) -> save/load."""

    def __init__(self, config: StackingConfig):
        self.config = config
        self.cross_encoder_ = None
        self.report_: dict = {}

    def _ce_config(self):
        from dupsearch.models.cross_encoder import CrossEncoderConfig
        return CrossEncoderConfig(**self.config.cross_encoder)

    def fit_transform(self, prepared: pd.DataFrame, pairs: pd.DataFrame, y: np.ndarray,
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
        return pd.DataFrame(out)

    def transform(self, prepared: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
        out = {}
        if self.cross_encoder_ is not None:
            a, b = _texts(prepared, pairs)
            out[CROSS_ENCODER_FEATURE] = self.cross_encoder_.predict_proba(a, b)
        return pd.DataFrame(out)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        if self.cross_encoder_ is not None:
            self.cross_encoder_.save(directory / CROSS_ENCODER_DIR)
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
        return self
