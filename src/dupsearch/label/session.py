"""One labelling session, whatever shows the pairs (a terminal or a local page): the question
queue, answers saved after every key, back, quit, and retraining every N answers with a line
that says how the held-out figures moved."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from dupsearch.cluster.page import listing_fields
from dupsearch.label.active import ActiveLabeler, LabelFile

KEYS = {"y": "yes, duplicates", "n": "no", "u": "unsure", "b": "back", "q": "quit"}


def listing_view(labeler: ActiveLabeler, row: int) -> dict:
    """What a person needs to judge one listing (plain values, JSON-ready), with its photo paths."""
    r = labeler.listings.iloc[int(row)]
    images = r.get("images")
    images = [] if images is None or (isinstance(images, float) and np.isnan(images)) else [str(p) for p in images]
    return {**listing_fields(r, 600), "images": images}


class Session:
    """The question queue over an ActiveLabeler, saving to ``labels`` after every answer."""

    def __init__(self, labeler: ActiveLabeler, labels: LabelFile, retrain_every: int = 20,
                 save_model: Path | None = None, say: Callable[[str], None] = print):
        self.labeler, self.file, self.retrain_every = labeler, labels, retrain_every
        self.save_model, self.say = save_model, say
        self.pending: list[int] = []
        self.current: int | None = None
        self.finished = False

    def next(self) -> int | None:
        """The pool position being asked now (None: every pair is answered)."""
        if self.current is None:
            self.current = self.pending.pop() if self.pending else self.labeler.propose()
        return self.current

    def counts(self) -> dict:
        a = self.labeler.labels["answer"].value_counts()
        return {"answers": int(len(self.labeler.labels)), "y": int(a.get("y", 0)), "n": int(a.get("n", 0)),
                "u": int(a.get("u", 0)), "model": self.labeler.model_name,
                "next_retrain": (self.retrain_every - len(self.labeler.labels) % self.retrain_every)
                if self.retrain_every else None}

    def question(self) -> dict | None:
        i = self.next()
        if i is None:
            return None
        lab = self.labeler
        return {"a": listing_view(lab, lab.a[i]), "b": listing_view(lab, lab.b[i]), "score": float(lab.p[i]),
                "threshold": lab.threshold, **self.counts()}

    def press(self, key: str) -> str | None:
        """Apply one key; returns a line to show (a retraining's figures, or why a key did
        nothing), or None."""
        key = key.strip().lower()[:1]
        if key == "q":
            self.finished = True
            return None
        if key == "b":
            back = self.labeler.undo()
            self.file.write(self.labeler.labels)
            if back is None:
                return "nothing to take back" if not len(self.labeler.labels) else None
            if self.current is not None:
                self.pending.append(self.current)
            self.current = back
            return None
        if key not in ("y", "n", "u"):
            return "keys: " + ", ".join(f"{k} ({v})" for k, v in KEYS.items())
        i = self.next()
        if i is None:
            return None
        self.labeler.answer(i, key)
        self.file.write(self.labeler.labels)  # saved before anything else happens
        self.current = None
        n = len(self.labeler.labels)
        if self.retrain_every and n % self.retrain_every == 0:
            return self.retrain()
        return None

    def retrain(self) -> str:
        before = next((h for h in reversed(self.labeler.history) if "pr_auc" in h), None)
        rep = self.labeler.retrain()
        if "skipped" in rep:
            return f"after {rep['answers']} answers: no model trained yet ({rep['skipped']})"
        line = (f"after {rep['answers']} answers ({rep['duplicates']} duplicates, {rep['non_duplicates']} not): "
                f"retrained model's out-of-fold PR-AUC on them {rep['pr_auc']:.3f}, best F1 {rep['best_f1']:.3f}")
        if before is not None:
            line += (f" (was {before['pr_auc']:.3f} / {before['best_f1']:.3f} at {before['answers']} answers)")
        line += f"; the first model's PR-AUC on them {rep['first_model_pr_auc']:.3f}"
        if rep["kept"] == "first":
            return line + ": the first model keeps asking (the answers do not beat it yet)"
        if self.save_model is not None:
            self.labeler.model.save(self.save_model)
            line += f"; model saved to {self.save_model}"
        return line
