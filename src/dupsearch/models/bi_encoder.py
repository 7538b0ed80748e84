"""A contrastively fine-tuned bi-encoder: one embedding per listing, the pair's score their cosine.

Where the cross-encoder reads both listings of every pair through the transformer, a bi-encoder
embeds each listing once (per-listing work, kept in the listing store) and scores a pair by a dot
product over integer indices, so scoring a pair costs nothing next to embedding a listing.
Untuned sentence embeddings rank sibling products (the 128 GB and the 256 GB model) as close as
duplicates; fine-tuning on the training pairs, as R-SupCon does (supervised contrastive
pre-training on the training listings), teaches the embedding what tells them apart.

Training (`fit`): the labelled pairs' listings are grouped into entities (connected components
of the duplicate pairs). Each step takes `batch_size` duplicate pairs (a, b) and, for each a, one
hard negative: a listing labelled a non-duplicate of a (the benchmarks' negatives are blocking
candidates, the hardest there are), else a random listing. Loss: InfoNCE in both directions, a
against every b and every negative of the batch, b against every a and every negative, with
temperature `temperature`; candidates of the anchor's own entity other than its pair are masked
out (they are not negatives). Mean pooling, unit rows, bf16 autocast where the CPU has it, the
word-embedding table frozen (half MiniLM's weights; a few thousand listings do not move it
usefully). Fixed epochs over the duplicate pairs: nothing is read from the validation pairs, so
the validation pairs stay clean for the blend that weighs the cosine (`models.stacking`).

Measured (`dupsearch bench --bi-encoder minilm`, BENCHMARKS.md): see the accuracy tables.

torch and transformers are imported only inside functions (core installs import this module).
A saved model is a Hugging Face directory with safetensors weights and `bi_encoder.json`; loading
runs no code.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dupsearch.config import ModelSettings
from dupsearch.errors import ModelNotFoundError

CONFIG_FILE = "bi_encoder.json"
FORMAT_VERSION = 1


@dataclass
class BiEncoderConfig(ModelSettings):
    """Settings of a contrastive bi-encoder fine-tune.

    model: "minilm" (the bundled all-MiniLM-L6-v2) or a local Hugging Face encoder directory.
    max_length: tokens per listing (one listing, not a pair: 64 holds a title, brand, price and the
        start of the attributes).
    epochs: passes over the duplicate training pairs (the negatives ride along).
    batch_size: duplicate pairs per step; each brings one hard negative, so a step embeds 3x it.
    temperature: of the InfoNCE softmax over cosines.
    max_steps: at most this many steps (None: no cap), the CPU budget: a step embeds 3 x
        batch_size listings, 2.2 s at 64 tokens on 2 Zen 4 cores in bf16, so 300 steps are about
        11 minutes. Ten passes stay under it up to 960 duplicate pairs (four of the five shared
        benchmarks); wdc-computers' 1,378 get 7 (10 took 970 s, over the 15-minute budget).
    """

    model: str = "minilm"
    max_length: int = 64
    epochs: float = 10.0
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    temperature: float = 0.05
    max_grad_norm: float = 1.0
    max_steps: int | None = 300
    seed: int = 0
    device: str | None = None
    threads: int | None = None
    precision: str = "auto"

    def __post_init__(self) -> None:
        self.model = str(self.model)
        checks = [(int(self.max_length) >= 8, "max_length must be >= 8"),
                  (float(self.epochs) > 0, "epochs must be > 0"),
                  (int(self.batch_size) >= 2, "batch_size must be >= 2 (in-batch negatives)"),
                  (float(self.learning_rate) > 0, "learning_rate must be > 0"),
                  (0 <= float(self.warmup_ratio) < 1, "warmup_ratio must be in [0, 1)"),
                  (float(self.temperature) > 0, "temperature must be > 0"),
                  (self.max_steps is None or int(self.max_steps) >= 1, "max_steps must be >= 1 or None"),
                  (self.precision in ("auto", "fp32", "bf16"), "precision must be auto, fp32 or bf16"),
                  (self.threads is None or int(self.threads) >= 1, "threads must be >= 1 or None")]
        for ok, what in checks:
            if not ok:
                raise ValueError(f"BiEncoderConfig: {what}")



def entity_ids(n: int, ia: np.ndarray, ib: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Entity of each of ``n`` listings: connected components of the duplicate pairs."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    dup = np.asarray(y).astype(bool)
    graph = coo_matrix((np.ones(int(dup.sum())), (ia[dup], ib[dup])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


class ContrastiveBiEncoder:
    """fit(texts, ia, ib, y) -> encode(texts) (unit rows) -> save / load. See the module doc."""

    def __init__(self, config: BiEncoderConfig | None = None):
        from dupsearch.models.cross_encoder import resolve_model_dir
        self.config = config or BiEncoderConfig()
        self.model_dir_ = resolve_model_dir(self.config.model, "bi-encoder")  # fails fast, before torch loads
        self.loss_history_: list[float] = []
        self.fit_seconds_: float | None = None
        self.n_train_pairs_ = 0
        self._model = self._tokenizer = self._device = self._precision = None
        self._fitted = False

    @property
    def fitted(self) -> bool:
        return self._fitted

    def _load(self, directory: Path, saved: bool):
        from dupsearch.models.cross_encoder import (DOWNLOAD_HELP, _import_torch_transformers, _quiet_loading,
                                                    _resolve_precision, _set_dropout)
        torch, transformers = _import_torch_transformers()
        major = int(str(transformers.__version__).split(".")[0])
        kwargs: dict[str, Any] = {"local_files_only": True,
                                  ("dtype" if major >= 5 else "torch_dtype"): torch.float32}
        if saved:  # a model dupsearch saved: its safetensors weights only, never a pickle
            kwargs["use_safetensors"] = True
        with _quiet_loading(transformers):
            try:
                self._tokenizer = transformers.AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
                model = transformers.AutoModel.from_pretrained(str(directory), **kwargs)
            except OSError as exc:
                raise ModelNotFoundError(f"cannot load a Hugging Face model from {directory} ({exc}): "
                                         + DOWNLOAD_HELP.format(path=directory)) from exc
        _set_dropout(torch, model, 0.0)  # as the cross-encoder's recipe: no dropout on CPU
        self._device = self.config.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._precision = _resolve_precision(torch, self.config.precision, self._device)
        self._model = model.to(self._device)
        return torch

    def _embed(self, torch, texts: list[str]):
        """Mean-pooled unit rows of ``texts`` (a tensor; with gradients when training)."""
        import contextlib
        enc = self._tokenizer(texts, truncation=True, max_length=int(self.config.max_length), padding=True,
                              return_tensors="pt").to(self._device)
        cast = torch.autocast(device_type=str(self._device).split(":")[0], dtype=torch.bfloat16) \
            if self._precision == "bf16" else contextlib.nullcontext()
        with cast:
            hidden = self._model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1).float() / mask.sum(1).float().clamp(min=1.0)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def fit(self, texts: Sequence[str], ia: np.ndarray, ib: np.ndarray, y: np.ndarray,
            progress: bool = False) -> "ContrastiveBiEncoder":
        """Fine-tune on labelled pairs of rows of ``texts`` (row ia[k] against row ib[k], label y[k])."""
        from dupsearch.models.cross_encoder import _threads
        from dupsearch.progress import steps as progress_steps
        cfg = self.config
        texts = ["" if t is None else str(t) for t in texts]
        ia, ib = np.asarray(ia, np.int64), np.asarray(ib, np.int64)
        y = np.asarray(y).astype(int).reshape(-1)
        if not (len(ia) == len(ib) == len(y)):
            raise ValueError(f"bi-encoder fit: {len(ia)} / {len(ib)} / {len(y)} rows of ia / ib / labels")
        dup = y == 1
        if not dup.any():
            raise ValueError("cannot fit a contrastive bi-encoder without duplicate pairs")
        n = len(texts)
        entity = entity_ids(n, ia, ib, y)
        # Each listing's labelled non-duplicates, built once per fit: a loop over the negative
        # pairs (a few thousand) costs milliseconds next to one fine-tuning step.
        negatives: dict[int, list[int]] = {}
        for a, b in zip(ia[~dup].tolist(), ib[~dup].tolist()):
            negatives.setdefault(a, []).append(b)
            negatives.setdefault(b, []).append(a)
        pa, pb = ia[dup], ib[dup]
        bs = min(int(cfg.batch_size), len(pa))
        steps = max(1, math.ceil(len(pa) * float(cfg.epochs) / bs))
        if cfg.max_steps is not None:
            steps = min(steps, int(cfg.max_steps))
        warmup = int(round(float(cfg.warmup_ratio) * steps))
        t0 = time.perf_counter()
        torch = self._load(self.model_dir_, saved=False)
        rng = np.random.default_rng(int(cfg.seed))
        torch.manual_seed(int(cfg.seed))
        model = self._model
        emb = model.get_input_embeddings()
        if emb is not None:
            emb.weight.requires_grad_(False)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                      lr=float(cfg.learning_rate), weight_decay=float(cfg.weight_decay))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: (s + 1) / (warmup + 1) if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup)))
        eye = None
        model.train()
        order = np.zeros(0, np.int64)
        with _threads(torch, cfg.threads), progress_steps(progress, steps, "bi-encoder fine-tune") as advance:
            for _ in range(steps):
                if len(order) < bs:  # epochs back to back: a batch may span two shuffles
                    order = np.r_[order, rng.permutation(len(pa))]
                batch, order = order[:bs], order[bs:]
                a, b = pa[batch], pb[batch]
                # one hard negative per anchor: batch_size draws a step, nothing beside the step's
                # 3 x batch_size transformer passes
                hard = np.array([negatives[x][rng.integers(len(negatives[x]))] if x in negatives
                                 else rng.integers(n) for x in a.tolist()], np.int64)
                ea = self._embed(torch, [texts[i] for i in a])
                eb, en = self._embed(torch, [texts[i] for i in np.r_[b, hard]]).split(len(a))
                if eye is None or len(eye) != len(a):
                    eye = torch.eye(len(a), dtype=torch.bool)
                loss = (self._info_nce(torch, ea, torch.cat([eb, en]), entity[a], entity[np.r_[b, hard]], eye)
                        + self._info_nce(torch, eb, torch.cat([ea, en]), entity[b], entity[np.r_[a, hard]], eye)) / 2
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), float(cfg.max_grad_norm))
                optimizer.step()
                scheduler.step()
                self.loss_history_.append(float(loss.detach()))
                advance()
        model.eval()
        self.n_train_pairs_ = int(len(y))
        self.steps_ = steps
        self.epochs_ = round(steps * bs / len(pa), 2)  # passes over the duplicate pairs, after the cap
        self.fit_seconds_ = round(time.perf_counter() - t0, 1)
        self._fitted = True
        return self

    def _info_nce(self, torch, anchors, candidates, anchor_entity, candidate_entity, eye):
        """Cross-entropy of each anchor's own pair (candidate k for anchor k) against the other
        candidates; candidates of the anchor's entity other than its pair are masked out."""
        logits = anchors @ candidates.T / float(self.config.temperature)
        same = torch.from_numpy(anchor_entity[:, None] == candidate_entity[None, :])
        same[:, :len(anchors)] &= ~eye
        logits = logits.masked_fill(same, torch.finfo(logits.dtype).min / 2)
        return torch.nn.functional.cross_entropy(logits, torch.arange(len(anchors)))

    def encode(self, texts: Sequence[str], batch_size: int = 128, progress: bool = False) -> np.ndarray:
        """Unit rows (len(texts), dim) float32; batches sorted by length (little padding)."""
        if not self._fitted:
            from dupsearch.errors import NotFittedError
            raise NotFittedError("the bi-encoder is not fitted: call fit() or load()")
        from dupsearch.models.cross_encoder import _import_torch_transformers, _threads
        from dupsearch.progress import steps as progress_steps
        torch, _ = _import_torch_transformers()
        texts = ["" if t is None else str(t) for t in texts]
        dim = int(self._model.config.hidden_size)
        out = np.zeros((len(texts), dim), np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        starts = range(0, len(texts), int(batch_size))
        with torch.inference_mode(), _threads(torch, self.config.threads), \
                progress_steps(progress, len(starts), "bi-encoder embeddings") as advance:
            for s in starts:
                idx = order[s:s + int(batch_size)]
                out[idx] = self._embed(torch, [texts[i] for i in idx]).cpu().numpy()
                advance()
        return out

    def save(self, directory) -> Path:
        """Weights (safetensors), tokenizer and `bi_encoder.json`, written atomically."""
        from dupsearch.atomic import atomic_directory
        from dupsearch.models.cross_encoder import _versions
        if not self.fitted:
            from dupsearch.errors import NotFittedError
            raise NotFittedError("the bi-encoder is not fitted: nothing to save")
        path = Path(directory)
        with atomic_directory(path, own=(CONFIG_FILE,)) as tmp:
            self._model.save_pretrained(str(tmp))
            self._tokenizer.save_pretrained(str(tmp))
            meta = {"format_version": FORMAT_VERSION, "config": self.config.to_dict(), "versions": _versions(),
                    "n_train_pairs": self.n_train_pairs_, "fit_seconds": self.fit_seconds_,
                    "precision_used": self._precision,
                    "loss_history": self.loss_history_[::max(1, len(self.loss_history_) // 200)]}
            (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=1))
        return path

    @classmethod
    def load(cls, directory, device: str | None = None) -> "ContrastiveBiEncoder":
        """A model saved by `save`; scores in the precision it was fitted in."""
        path = Path(directory)
        meta_path = path / CONFIG_FILE
        if not meta_path.is_file():
            raise ModelNotFoundError(f"{path} is not a saved bi-encoder (no {CONFIG_FILE}); retrain the model")
        meta = json.loads(meta_path.read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            from dupsearch.errors import ModelVersionError
            raise ModelVersionError(f"bi-encoder {path} has format {meta.get('format_version')}; this "
                                    f"dupsearch reads format {FORMAT_VERSION}: retrain it")
        config = BiEncoderConfig.from_dict(meta.get("config", {}))
        if device is not None:
            config.device = device
        if meta.get("precision_used") in ("fp32", "bf16"):
            config.precision = meta["precision_used"]
        self = cls.__new__(cls)
        self.config, self.model_dir_ = config, path
        self.loss_history_ = list(meta.get("loss_history", []))
        self.fit_seconds_ = meta.get("fit_seconds")
        self.n_train_pairs_ = int(meta.get("n_train_pairs", 0))
        self._load(path, saved=True)
        self._model.eval()
        self._fitted = True
        return self


__all__ = ["BiEncoderConfig", "ContrastiveBiEncoder", "entity_ids"]
