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
cross-encoder's score, so no out-of-fold scores are needed). A contrastive bi-encoder
(``StackingConfig.bi_encoder``, `models.bi_encoder`) joins the same blend: its cosine is one more
input of the regression, beside the cross-encoder's logit or alone.
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
BI_ENCODER_FEATURE = "learned.bi_encoder.cosine"
BI_ENCODER_DIR = "bi_encoder"
LEARNED_EMBEDDING = "learned.bi_encoder"  # store column: each listing's fine-tuned embedding
# the blend's inputs after the booster, in this order: component name -> feature column
BLEND_COMPONENTS = {"cross_encoder": CROSS_ENCODER_FEATURE, "bi_encoder": BI_ENCODER_FEATURE}
# Both fine-tunes in one blend share the CPU budget (issue #20: train + predict within 15 minutes a
# dataset on 2 cores). Alone, each keeps its own: the cross-encoder's RECIPE (1,800,000 tokens, at
# most 3 epochs) and the bi-encoder's 10 passes (at most 300 steps); together those took 873-1,363 s
# on four of the five benchmarks. Shared, the cross-encoder gets 1,000,000 tokens (about 500 s of
# bf16 fine-tuning on 2 Zen 4 cores; 1.4-3 epochs on the benchmarks) and the bi-encoder 5 passes
# (90-216 steps on the benchmarks; 300, its cap alone, bounds a larger training set). Chosen on
# validation pairs alone (BENCHMARKS.md, "One shared budget"): at 2 and 1.6 cross-encoder epochs and
# 5 bi-encoder passes the cross-fitted blend lost 0.001-0.002 validation PR-AUC on wdc-computers and
# abt-buy, the two slowest. A 150-step cap (f718d02) cut wdc-computers' bi-encoder to 0.880
# validation PR-AUC against 0.900 at its 5 passes (216 steps); lifting it moved the blend's
# validation PR-AUC by only +0.0003 there, for about 40 s (BENCHMARKS.md).
SHARED_BUDGET = {"cross_encoder": {"budget_tokens": 1_000_000}, "bi_encoder": {"epochs": 5.0, "max_steps": 300}}
BI_ENCODER_MAX_CHARS = 400  # a listing's text for the bi-encoder (its max_length cuts again)
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


def _blend_inputs(p_booster, others: dict) -> np.ndarray:
    """(n, 1 + k) inputs of the blend: the booster's logit, then per component of ``others``
    (name -> values, in BLEND_COMPONENTS' order): the cross-encoder's logit, the bi-encoder's
    cosine as it is (already on a scale in [-1, 1])."""
    def logit(p):
        p = np.clip(np.asarray(p, float), _EPS, 1 - _EPS)
        return np.log(p / (1 - p))
    cols = [logit(p_booster)]
    for name in BLEND_COMPONENTS:
        if name in others:
            v = np.asarray(others[name], float)
            cols.append(np.nan_to_num(v) if name == "bi_encoder" else logit(v))
    return np.column_stack(cols)


def _logistic(Z: np.ndarray, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression
    return LogisticRegression(C=1.0).fit(Z, y)


def cross_fitted_blend(Z: np.ndarray, y, seed: int = 0):
    """The blend's logistic regression over its inputs ``Z`` (`_blend_inputs`), fitted on
    (validation) pairs ``y``: (each pair's probability from a regression fitted without it (5
    folds), the regression fitted on all of them)."""
    from sklearn.model_selection import StratifiedKFold
    y = np.asarray(y).astype(int)
    crossed = np.empty(len(y))
    folds = StratifiedKFold(5, shuffle=True, random_state=seed).split(Z, y) if min(np.bincount(y, minlength=2)) >= 5 \
        else [(np.arange(len(y)), np.arange(len(y)))]
    for tr, te in folds:
        crossed[te] = _logistic(Z[tr], y[tr]).predict_proba(Z[te])[:, 1]
    return crossed, _logistic(Z, y)


def _checked_blend(blend, where: Path, inputs: list[str]) -> dict:
    """The saved blend, checked against the components the model holds (``inputs``: "booster"
    first); a blend saved before it named its inputs is the booster's and the cross-encoder's."""
    from dupsearch.errors import ModelFileError
    try:
        weights = [float(w) for w in blend["weights"]]
        intercept = float(blend["intercept"])
        saved = [str(x) for x in blend.get("inputs", ["booster", "cross_encoder"])]
    except (TypeError, KeyError, ValueError, AttributeError):
        raise ModelFileError(f"{where}: the blend of the booster and the stacked models is missing or "
                             f"malformed (need weights, one number per input, and intercept); retrain the model") from None
    if saved != inputs or len(weights) != len(inputs) or not np.isfinite(weights + [intercept]).all():
        raise ModelFileError(f"{where}: the blend needs {len(inputs)} finite weights ({', '.join(inputs)}) and a "
                             f"finite intercept, found {len(weights)} for {', '.join(saved)}; retrain the model")
    return {"weights": weights, "intercept": intercept, "inputs": inputs}


class LearnedFeatures:
    """fit_transform (out-of-fold scores of training pairs) -> transform (any pairs) -> save/load."""

    def __init__(self, config: StackingConfig):
        self.config = config
        self.cross_encoder_ = None
        self.bi_encoder_ = None
        self.image_encode_ = None  # photos -> unit rows, from the final contrastive model
        self.image_encoder_ = None  # the same as an Encoder, once loaded (goes through the cache)
        self.report_: dict = {}
        # "blend": {"weights": [booster, then each of `blend_inputs`], "intercept", "inputs"}
        self.blend_: dict | None = None

    @property
    def blends(self) -> bool:
        return getattr(self.config, "combine", "features") == "blend" and \
            (self.config.cross_encoder is not None or self.config.bi_encoder is not None)

    @property
    def blend_inputs(self) -> list[str]:
        """The blend's components after the booster (BLEND_COMPONENTS' names), as configured."""
        on = {"cross_encoder": self.config.cross_encoder is not None,
              "bi_encoder": self.config.bi_encoder is not None}
        return [name for name in BLEND_COMPONENTS if on[name]]

    def fit_blend(self, prepared: pd.DataFrame, pairs: pd.DataFrame, y: np.ndarray, valid_pairs: pd.DataFrame,
                  yv: np.ndarray, p_booster: np.ndarray, seed: int = 0, progress: bool = False) -> np.ndarray:
        """The "blend" combination: fine-tune the cross-encoder on the training pairs (best
        validation PR-AUC kept) and / or the contrastive bi-encoder (fixed epochs), fit the blend
        of the booster's logit and theirs on the validation pairs, and return the validation
        pairs' blended probabilities, each from a blend fitted without it (5 folds), for the
        threshold and the validation figures."""
        from dupsearch.models.metrics import binary_metrics
        components: dict[str, np.ndarray] = {}
        if self.config.cross_encoder is not None:
            components["cross_encoder"] = self._fit_cross_encoder(prepared, pairs, y, valid_pairs, yv, seed, progress)
        if self.config.bi_encoder is not None:
            components["bi_encoder"] = self._fit_bi_encoder(prepared, pairs, y, valid_pairs, yv, seed, progress)
        crossed, lr = cross_fitted_blend(_blend_inputs(p_booster, components), yv, seed)
        # the blend's inputs on validation, for studies of the combination that never read test
        self.valid_components_ = {"booster": np.asarray(p_booster, float),
                                  **{k: np.asarray(v, float) for k, v in components.items()}}
        self.blend_ = {"weights": [float(w) for w in lr.coef_[0]], "intercept": float(lr.intercept_[0]),
                       "inputs": ["booster", *components]}
        for name in components:
            self.report_[name]["booster_valid_pr_auc"] = binary_metrics(yv, p_booster)["pr_auc"]
            self.report_[name]["blend"] = self.blend_
        return crossed

    def _fit_cross_encoder(self, prepared, pairs, y, valid_pairs, yv, seed, progress) -> np.ndarray:
        from dupsearch.models.cross_encoder import CrossEncoderModel
        from dupsearch.models.metrics import binary_metrics
        a, b, va, vb = _texts(prepared, pairs, valid_pairs)
        t0 = time.perf_counter()
        self.cross_encoder_ = CrossEncoderModel(self._ce_config(seed)).fit(a, b, y, progress=progress,
                                                                           valid=(va, vb, yv))
        t_fit = time.perf_counter() - t0
        ce = self.cross_encoder_
        pc = ce.valid_scores_ if ce.valid_scores_ is not None else ce.predict_proba(va, vb)
        self.report_["cross_encoder"] = {
            "combine": "blend", "n_pairs": int(len(y)), "final_seconds": round(t_fit, 1), "epochs": ce.epochs_,
            "valid_history": [list(h) for h in ce.valid_history_], "best_epoch": ce.best_epoch_,
            "precision": ce._precision, "seed": int(ce.config.seed), "pos_weight": getattr(ce, "pos_weight_", 1.0),
            "valid_pr_auc": binary_metrics(yv, pc)["pr_auc"]}
        return pc

    def _fit_bi_encoder(self, prepared, pairs, y, valid_pairs, yv, seed, progress) -> np.ndarray:
        """Fine-tune the bi-encoder on the training pairs' listings; the validation pairs' cosines."""
        from dupsearch.models.bi_encoder import BiEncoderConfig, ContrastiveBiEncoder
        from dupsearch.models.cross_encoder import pair_text
        from dupsearch.models.metrics import binary_metrics
        ids = pd.Index(prepared["item_id"].astype(str))
        texts = pair_text(prepared, max_chars=BI_ENCODER_MAX_CHARS)

        def rows(frame):
            return ids.get_indexer(frame["item_id_a"].astype(str)), ids.get_indexer(frame["item_id_b"].astype(str))
        ia, ib = rows(pairs)
        t0 = time.perf_counter()
        self.bi_encoder_ = ContrastiveBiEncoder(BiEncoderConfig(**{"seed": int(seed), **self.config.bi_encoder}))
        self.bi_encoder_.fit(texts, ia, ib, y, progress=progress)
        t_fit = time.perf_counter() - t0
        va, vb = rows(valid_pairs)
        used = np.unique(np.r_[va, vb])
        emb = np.zeros((len(texts), int(self.bi_encoder_._model.config.hidden_size)), np.float32)
        emb[used] = self.bi_encoder_.encode([texts[i] for i in used], progress=progress)
        cosine = np.einsum("ij,ij->i", emb[va], emb[vb])
        self.report_["bi_encoder"] = {
            "combine": "blend", "n_pairs": int(len(y)), "n_duplicate_pairs": int(np.sum(y)),
            "final_seconds": round(t_fit, 1), "steps": self.bi_encoder_.steps_,
            "epochs": self.bi_encoder_.epochs_,
            "precision": self.bi_encoder_._precision, "seed": int(self.bi_encoder_.config.seed),
            "loss_first_last": [self.bi_encoder_.loss_history_[0], self.bi_encoder_.loss_history_[-1]],
            "valid_pr_auc": binary_metrics(yv, cosine)["pr_auc"]}
        return cosine

    def blend(self, p_booster: np.ndarray, X: pd.DataFrame) -> np.ndarray:
        """P(duplicate) from the booster's probabilities and the stacked models' columns of the
        pairs' feature frame ``X`` (the fitted blend)."""
        Z = _blend_inputs(p_booster, {name: X[BLEND_COMPONENTS[name]].to_numpy() for name in self.blend_inputs})
        z = Z @ np.asarray(self.blend_["weights"]) + self.blend_["intercept"]
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
        if self.config.bi_encoder is not None and not self.blends:
            raise ValueError("the contrastive bi-encoder joins the booster by the blend only: set combine='blend' "
                             "(its cosines of training pairs come from a model trained on them)")
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
        if self.bi_encoder_ is not None:  # per-listing work once: pairs then cost a dot product
            from dupsearch.models.cross_encoder import pair_text
            out[LEARNED_EMBEDDING] = self.bi_encoder_.encode(pair_text(prepared, max_chars=BI_ENCODER_MAX_CHARS))
        if self.image_encode_ is not None:
            lists = [[str(p) for p in v] for v in prepared["images"]]
            out[LEARNED_PHOTOS] = photo_sets(encode_photos or self.image_encode_, lists)
        return out

    def compare(self, store, ia: np.ndarray, ib: np.ndarray) -> pd.DataFrame:
        out = {}
        if self.cross_encoder_ is not None:
            texts = store[LEARNED_TEXT]
            out[CROSS_ENCODER_FEATURE] = self.cross_encoder_.predict_proba(list(texts[ia]), list(texts[ib]))
        if self.bi_encoder_ is not None:
            emb = store[LEARNED_EMBEDDING]
            out[BI_ENCODER_FEATURE] = np.einsum("ij,ij->i", emb[ia], emb[ib])
        if self.image_encode_ is not None:
            from dupsearch.features.embeddings import image_set_features
            out.update(image_set_features(store[LEARNED_PHOTOS], ia, ib, f"learned.{IMAGE_MODEL_NAME}"))
        return pd.DataFrame(out, index=range(len(ia)))

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        if self.cross_encoder_ is not None:
            self.cross_encoder_.save(directory / CROSS_ENCODER_DIR)
        if self.bi_encoder_ is not None:
            self.bi_encoder_.save(directory / BI_ENCODER_DIR)
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
        self.blend_ = _checked_blend(state.get("blend"), directory / "stacking.json",
                                     ["booster", *self.blend_inputs]) if self.blends else None
        if self.config.cross_encoder is not None:
            from dupsearch.models.cross_encoder import CrossEncoderModel
            self.cross_encoder_ = CrossEncoderModel.load(directory / CROSS_ENCODER_DIR)
        if self.config.bi_encoder is not None:
            from dupsearch.models.bi_encoder import ContrastiveBiEncoder
            self.bi_encoder_ = ContrastiveBiEncoder.load(directory / BI_ENCODER_DIR)
        if self.config.image_model is not None:
            # the saved folder is a timm:DIR image encoder (same embeddings as the trainer's)
            from dupsearch.encoders import make_encoder
            self.image_encoder_ = make_encoder(f"timm:{(directory / IMAGE_MODEL_DIR).resolve()}", "image")
            self.image_encode_ = self.image_encoder_.encode
        return self
