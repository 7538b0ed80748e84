"""Active labelling: which pairs a person should label next, their answers kept on disk, and
the model retrained from them.

The pool is what dedup would score: the default blockers' candidate pairs of the listings. The
next pair is the one the current model is least sure of (score nearest its threshold, in
log-odds), taken in turn from each top-level category so that one category does not take every
question, and never a listing that was in one of the last few questions. The first model is the
one given (or the default model); every ``retrain_every`` answers a model is trained on the
answers alone (grouped cross-validation: its out-of-fold figures are the held-out figures that
say whether the labels are paying off), the pool re-scored, and the questions follow the new
model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dupsearch.atomic import atomic_write_bytes
from dupsearch.errors import DataError
from dupsearch.io.schema import pair_key_array

LABELS_KEY = b"dupsearch_labels"
LABEL_COLUMNS = ["item_id_a", "item_id_b", "label", "answer", "score", "model", "answered_at"]
ANSWERS = {"y": 1, "n": 0, "u": None}
RECENT = 6  # a listing shown in one of the last RECENT questions is not shown again yet


@dataclass
class LabelConfig:
    retrain_every: int = 20      # answers between retrainings (0: never)
    min_per_class: int = 5       # duplicates and non-duplicates needed before a model is trained
    strata_column: str = "category_l1"
    seed: int = 0
    folds: int = 3
    boosting_rounds: int = 300
    # Pairs of the pool the first model is sure of (score >= 1 - pseudo_margin: duplicates,
    # <= pseudo_margin: not), at most this many, trained on beside the answers: a retrained model
    # starts from what the first model knows of this catalogue, and the answers correct it
    # where it was unsure. 0: train on the answers alone.
    pseudo_labels: int = 2000
    pseudo_margin: float = 0.05
    # The share of bootstrap resamples of the answers in which the retrained model's out-of-fold
    # PR-AUC must beat the first model's for it to take over.
    replace_confidence: float = 0.95


def fast_matcher_config(cfg: LabelConfig):
    """Settings for a model trained while a person waits: one booster, few folds."""
    from dupsearch.config import MatcherConfig
    from dupsearch.models.gbdt import GBDTConfig
    return MatcherConfig(gbdt=GBDTConfig(max_iterations=cfg.boosting_rounds, early_stopping_rounds=50),
                         n_models=1, cv_folds=cfg.folds, seed=cfg.seed)


def empty_labels() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in LABEL_COLUMNS})


class LabelFile:
    """labels.parquet: one row per answered pair, written whole and atomically after every
    answer, marked as dupsearch's so that a file of someone else's is never overwritten."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def read(self) -> pd.DataFrame:
        if not self.path.exists():
            return empty_labels()
        try:
            table = pq.read_table(self.path)
        except (OSError, pa.ArrowInvalid) as e:
            raise DataError(f"is not a readable Parquet file ({' '.join(str(e).split())[:200]}): "
                            "give another --out", path=str(self.path)) from None
        if LABELS_KEY not in (table.schema.metadata or {}):
            raise DataError("exists and is not a labels file dupsearch wrote: it is left as it is; "
                            "give another --out", path=str(self.path))
        frame = table.to_pandas()
        missing = [c for c in LABEL_COLUMNS if c not in frame.columns]
        if missing:
            raise DataError(f"lacks the columns {missing} of a labels file", path=str(self.path))
        return frame[LABEL_COLUMNS]

    def write(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame[LABEL_COLUMNS].astype(
            {"item_id_a": str, "item_id_b": str, "answer": str, "model": str, "answered_at": str}), preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), LABELS_KEY: b"1"})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        atomic_write_bytes(self.path, sink.getvalue().to_pybytes())


def training_pairs(labels: pd.DataFrame) -> pd.DataFrame:
    """The answered pairs a model learns from: yes and no (unsure left out), latest answer wins."""
    done = labels.drop_duplicates(["item_id_a", "item_id_b"], keep="last")
    done = done[done["answer"].isin(["y", "n"])]
    return pd.DataFrame({"item_id_a": done["item_id_a"].astype(str).to_numpy(),
                         "item_id_b": done["item_id_b"].astype(str).to_numpy(),
                         "label": (done["answer"] == "y").astype(int).to_numpy()})


class ActiveLabeler:
    """The pool of candidate pairs of ``listings``, scored by ``model``, and the answers so far.

    ``propose()`` gives the index of the next pair to ask; ``answer(i, key)`` records y / n / u;
    ``undo()`` takes the last answer back; ``retrain()`` trains on the answers and re-scores."""

    def __init__(self, listings: pd.DataFrame, model, config: LabelConfig | None = None,
                 labels: pd.DataFrame | None = None, pool: tuple[np.ndarray, np.ndarray] | None = None,
                 model_name: str = "given model", progress: bool = False):
        from dupsearch.candidates.blocking import candidate_pairs
        from dupsearch.candidates.specs import default_blocker_specs, make_blocker
        self.config = config or LabelConfig()
        self.listings = listings.reset_index(drop=True)
        self.ids = self.listings["item_id"].astype(str).to_numpy(dtype=object)
        if pool is None:
            cands = candidate_pairs(self.listings, [make_blocker(s) for s in default_blocker_specs(self.listings)],
                                    progress=progress)
            pool = (cands.a, cands.b)
        self.a, self.b = np.asarray(pool[0], np.int64), np.asarray(pool[1], np.int64)
        once = ~pd.Index(pair_key_array(self.ids[self.a], self.ids[self.b])).duplicated()  # a pair is asked once
        self.a, self.b = self.a[once], self.b[once]
        col = self.config.strata_column
        strata = (self.listings[col].fillna("").astype(str).to_numpy(dtype=object) if col in self.listings
                  else np.full(len(self.listings), "", dtype=object))
        self.stratum = pd.factorize(strata[self.a])[0]
        self.key = pd.Index(pair_key_array(self.ids[self.a], self.ids[self.b]))
        self.labels = (labels if labels is not None else empty_labels()).reset_index(drop=True)
        self.history: list[dict] = []     # one entry per retraining: answers, held-out figures
        self.recent: list[int] = []
        self.rng = np.random.default_rng(self.config.seed)
        self._use(model, model_name)
        self.first_model, self.first_name = model, model_name
        self.first_p = self.p.copy()  # the first model's scores: where the pseudo-labels come from

    # -- the model
    def _use(self, model, name: str) -> None:
        self.model, self.model_name = model, name
        if getattr(self, "first_model", None) is model:
            self.p = self.first_p.copy()
        else:
            store = model.build_store(self.listings)
            self.p = np.asarray(model.score(store, self.a, self.b), np.float64)
        self.threshold = float(model.threshold_)

    def retrain(self) -> dict:
        """Train on the answers so far; the pool is re-scored and the questions follow the new
        model. Returns what happened (its out-of-fold figures, or why no model was trained)."""
        from dupsearch.models import DuplicateMatcher
        pairs = training_pairs(self.labels)
        n_pos, n_neg = int(pairs["label"].sum()), int((1 - pairs["label"]).sum())
        entry = {"answers": int(len(self.labels)), "duplicates": n_pos, "non_duplicates": n_neg}
        need = self.config.min_per_class
        if n_pos < need or n_neg < need:
            entry["skipped"] = f"{n_pos} duplicates and {n_neg} non-duplicates; a model needs {need} of each"
            self.history.append(entry)
            return entry
        t0 = time.perf_counter()
        pseudo = self.pseudo_pairs()
        entry["pseudo_labels"] = int(len(pseudo))
        try:
            m = DuplicateMatcher(fast_matcher_config(self.config)).fit(
                self.listings, pd.concat([pairs, pseudo], ignore_index=True), corpus=self.listings)
        except DataError as e:  # e.g. too few independent groups of pairs for the folds
            entry["skipped"] = str(e)
            self.history.append(entry)
            return entry
        # held-out figures on the answers alone (the pseudo-labels are easy by construction),
        # beside the first model's on the same answers (it never trained on them)
        from dupsearch.models.metrics import binary_metrics
        y = pairs["label"].to_numpy()
        oof = binary_metrics(y, np.asarray(m.oof_)[:len(pairs)])
        pos = self.key.get_indexer(pd.Index(pair_key_array(pairs["item_id_a"].to_numpy(dtype=object),
                                                       pairs["item_id_b"].to_numpy(dtype=object))))
        first = binary_metrics(y[pos >= 0], self.first_p[pos[pos >= 0]])
        ok = pos >= 0  # answers of pairs in this pool (a file may hold another session's)
        wins = _bootstrap_wins(y[ok], np.asarray(m.oof_)[:len(pairs)][ok], self.first_p[pos[ok]], self.config.seed)
        entry.update({"pr_auc": round(float(oof["pr_auc"]), 4), "best_f1": round(float(oof["best_f1"]), 4),
                      "first_model_pr_auc": round(float(first["pr_auc"]), 4), "bootstrap_wins": round(wins, 3),
                      "seconds": round(time.perf_counter() - t0, 1)})
        self.last_trained = m
        # A retrained model replaces the first only where it ranks the answers better in most
        # resamples of them: a few dozen answers rank noisily, and a worse model asks worse questions.
        if wins >= self.config.replace_confidence:
            self._use(m, f"trained on {len(pairs)} answers")
            entry["kept"] = "retrained"
        else:
            if self.model is not self.first_model:
                self._use(self.first_model, self.first_name)
            entry["kept"] = "first"
        self.history.append(entry)
        return entry

    def pseudo_pairs(self) -> pd.DataFrame:
        """Unanswered pool pairs the first model is sure of, with its verdict as the label."""
        cfg = self.config
        empty = pd.DataFrame({"item_id_a": [], "item_id_b": [], "label": []})
        if cfg.pseudo_labels <= 0:
            return empty
        open_ = np.ones(len(self.a), bool)
        open_[self.answered()] = False
        sure = open_ & ((self.first_p >= 1 - cfg.pseudo_margin) | (self.first_p <= cfg.pseudo_margin))
        idx = np.flatnonzero(sure)
        if len(idx) > cfg.pseudo_labels:
            idx = np.sort(np.random.default_rng(cfg.seed).choice(idx, cfg.pseudo_labels, replace=False))
        return pd.DataFrame({"item_id_a": self.ids[self.a[idx]].astype(str), "item_id_b": self.ids[self.b[idx]].astype(str),
                             "label": (self.first_p[idx] >= 0.5).astype(int)})

    # -- questions
    def answered(self) -> np.ndarray:
        """Pool positions already answered (any answer)."""
        keys = pair_key_array(self.labels["item_id_a"].astype(str).to_numpy(dtype=object),
                          self.labels["item_id_b"].astype(str).to_numpy(dtype=object))
        pos = self.key.get_indexer(pd.Index(keys))
        return pos[pos >= 0]

    def uncertainty(self) -> np.ndarray:
        eps = 1e-6
        logit = lambda x: np.log(np.clip(x, eps, 1 - eps) / np.clip(1 - x, eps, 1 - eps))  # noqa: E731
        return np.abs(logit(self.p) - logit(self.threshold))

    def propose(self) -> int | None:
        """The next pool position to ask, or None when every pair is answered."""
        return self.propose_many(1)[0] if len(self.answered()) < len(self.a) else None

    def propose_many(self, k: int, random: bool = False) -> list[int]:
        """The next ``k`` questions (least certain first, categories in turn; ``random``: a
        uniform draw, the baseline the measurements compare with)."""
        open_ = np.ones(len(self.a), bool)
        open_[self.answered()] = False
        free = np.flatnonzero(open_)
        if random:
            return self.rng.choice(free, size=min(k, len(free)), replace=False).tolist()
        order = free[np.lexsort((self.rng.random(len(free)), self.uncertainty()[free]))]
        n_yes = int((self.labels["answer"] == "y").sum())
        if n_yes < self.config.min_per_class:
            # too few duplicates among the answers to train on: every other question is a pair
            # the model thinks most likely a duplicate (most candidates are not)
            likely = free[np.argsort(-self.p[free], kind="stable")]
            mixed = np.empty(2 * len(free), np.int64)
            mixed[0::2], mixed[1::2] = order, likely
            order = pd.unique(mixed)
        by_stratum: dict[int, list[int]] = {}
        for i in order.tolist():
            by_stratum.setdefault(int(self.stratum[i]), []).append(i)
        queues = sorted(by_stratum.values(), key=lambda q: self.uncertainty()[q[0]])
        out: list[int] = []
        recent = list(self.recent)
        cursor = [0] * len(queues)
        while len(out) < k and any(c < len(q) for c, q in zip(cursor, queues)):
            for s, q in enumerate(queues):
                if len(out) >= k:
                    break
                # the stratum's least certain pair whose listings were not just shown
                j = cursor[s]
                while j < len(q) and (self.a[q[j]] in recent or self.b[q[j]] in recent):
                    j += 1
                if j == len(q):
                    j = cursor[s]
                if j < len(q):
                    i = q.pop(j)
                    out.append(i)
                    recent = (recent + [int(self.a[i]), int(self.b[i])])[-2 * RECENT:]
        return out

    def answer(self, i: int, key: str) -> None:
        if key not in ANSWERS:
            raise ValueError(f"answer must be one of {sorted(ANSWERS)}, not {key!r}")
        row = {"item_id_a": self.ids[self.a[i]], "item_id_b": self.ids[self.b[i]],
               "label": ANSWERS[key], "answer": key, "score": float(self.p[i]), "model": self.model_name,
               "answered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self.labels = pd.concat([self.labels, pd.DataFrame([row])], ignore_index=True)
        self.recent = (self.recent + [int(self.a[i]), int(self.b[i])])[-2 * RECENT:]

    def undo(self) -> int | None:
        """Take the last answer back; the pool position to ask again (None: nothing to undo, or
        the pair is not in this pool)."""
        if not len(self.labels):
            return None
        last = self.labels.iloc[-1]
        self.labels = self.labels.iloc[:-1].reset_index(drop=True)
        pos = self.key.get_indexer(pd.Index(pair_key_array(np.array([str(last["item_id_a"])], dtype=object),
                                                       np.array([str(last["item_id_b"])], dtype=object))))
        return int(pos[0]) if pos[0] >= 0 else None


def _bootstrap_wins(y: np.ndarray, new: np.ndarray, first: np.ndarray, seed: int, rounds: int = 200) -> float:
    """Share of bootstrap resamples of the answers in which ``new`` has the higher PR-AUC
    (a paired comparison: both scored the same resampled answers)."""
    from sklearn.metrics import average_precision_score
    rng = np.random.default_rng(seed)
    wins, n = 0, len(y)
    for _ in range(rounds):  # per resample, not per pair: PR-AUC is a whole-sample figure
        i = rng.integers(0, n, n)
        if y[i].min() == y[i].max():
            continue
        wins += average_precision_score(y[i], new[i]) > average_precision_score(y[i], first[i])
    return wins / rounds


