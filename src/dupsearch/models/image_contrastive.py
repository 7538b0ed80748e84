"""Contrastive fine-tuning of a timm image backbone on labelled listing pairs.

Duplicate listings re-post the same photos cropped, mirrored, recoloured and re-encoded, and
hard negatives show another unit of the same model. A backbone trained on ImageNet (or not at
all) knows neither; this module fine-tunes one so that the cosine of two photos says "same
item":

1. :meth:`ContrastiveImageTrainer.pairs_from_listings` turns labelled listing pairs into photo
   pairs: up to ``pairs_per_listing_pair`` photo pairs of each listing pair, drawn with the
   seed from all pairs of their photos, labelled as the listing pair (a duplicate's photos are
   positives, a non-duplicate's negatives). Listing pairs where a side has no photos are
   skipped and counted.
2. :meth:`~ContrastiveImageTrainer.fit` trains with the classic contrastive loss on the cosine
   distance ``d = 1 - cos`` (as sentence-transformers' ``ContrastiveLoss``):
   ``0.5 * (y * d**2 + (1 - y) * relu(margin - d)**2)``, duplicates pulled together,
   non-duplicates pushed beyond the margin; AdamW; both photos of a pair augmented
   independently (random resized crop, mirror, colour jitter without hue changes, since another
   colour is often what tells a sibling item apart).
3. :meth:`~ContrastiveImageTrainer.save` writes a folder laid out as the Hugging Face hub holds
   timm models (``config.json`` + ``model.safetensors``), which the ``timm:DIR`` image encoder
   loads as it is: ``make_encoder(f"timm:{DIR}", "image")`` gives the same embeddings as
   :meth:`~ContrastiveImageTrainer.encode`. ``contrastive.json`` beside them records the
   training config, pair counts and loss history.

Starting from random weights (``checkpoint=None``) works but needs many more steps than
fine-tuning a pretrained backbone (``checkpoint=`` a state dict of the ``backbone``
architecture, or a ``timm:DIR``-style folder). Preprocessing is the whole photo resized to
``image_size`` squared (timm's ``crop_mode="squash"``, ``crop_pct=1``): nothing is cut off, so
a crop of the photo stays a crop of what the model sees. Use the data's own size when it is
small (the synthetic marketplace draws 96 px photos: ``image_size=96``).

An optional linear projection (``embed_dim``) is trained on top of the pooled features and saved
as the model's classifier (``num_classes = embed_dim`` in config.json); the ``timm:DIR``
encoder builds models with ``num_classes=0`` and so drops it and returns the pooled backbone
features (``encode(paths, projection=False)``), while ``timm.create_model("local-dir:DIR")``
keeps it. Without ``embed_dim`` (the default) there is nothing to drop.

Training is deterministic on the CPU for a given seed (initialisation, pair order and
augmentations come from it). torch, torchvision and timm are imported lazily.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dupsearch.errors import DataError, ModelNotFoundError

FORMAT = "dupsearch-contrastive-image"
FORMAT_VERSION = 1
_INFO_FILE = "contrastive.json"
_WEIGHTS_FILE = "model.safetensors"


@dataclass
class ContrastiveConfig:
    """Settings of :class:`ContrastiveImageTrainer`.

    - ``backbone``: a timm architecture (``timm.list_models()``).
    - ``checkpoint``: local weights to start from: a state dict (.safetensors/.pth/.bin) of the
      backbone's architecture, or a folder as ``timm:DIR`` takes (its config.json then names the
      architecture, and its mean/std are kept). None: random initialisation, which needs many
      more steps (thousands of pairs per epoch, several epochs) than fine-tuning.
    - ``image_size``: side of the square model input; the photos' own size when they are small.
    - ``embed_dim``: a linear projection to this many dimensions on top of the pooled features
      (None: the pooled features themselves, what ``timm:DIR`` gives; see the module doc).
    - ``margin``: cosine distance beyond which non-duplicate pairs stop being pushed apart.
    - ``epochs``, ``batch_size`` (photo pairs per step), ``learning_rate`` and ``weight_decay``
      (AdamW), ``max_steps`` (stop after this many steps in all; None: all epochs).
    - ``max_pairs``: train on at most this many photo pairs (drawn with the seed).
    - ``pairs_per_listing_pair``: photo pairs drawn per labelled listing pair.
    - ``augment``: random resized crop, mirror and colour jitter on each training photo.
    - ``num_threads``: at most this many torch intra-op threads while training and encoding
      (None: torch's default, one per core). On a small machine that another process keeps
      busy, 1 thread is far faster: on 2 cores shared with another torch job, a step took 20x
      longer with 2 threads than with 1 (the threads wait for each other at every op).
    """

    backbone: str = "resnet50"
    checkpoint: str | None = None
    image_size: int = 224
    embed_dim: int | None = None
    margin: float = 0.5
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    seed: int = 0
    device: str | None = None
    max_pairs: int | None = None
    max_steps: int | None = None
    pairs_per_listing_pair: int = 4
    augment: bool = True
    num_threads: int | None = None

    def __post_init__(self) -> None:
        def positive_int(name: str, optional: bool = False) -> None:
            v = getattr(self, name)
            if optional and v is None:
                return
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer{' or None' if optional else ''}, got {v!r}")
            setattr(self, name, int(v))

        if not isinstance(self.backbone, str) or not self.backbone.strip():
            raise ValueError(f"backbone must name a timm architecture, got {self.backbone!r}")
        for name in ("image_size", "epochs", "batch_size", "pairs_per_listing_pair"):
            positive_int(name)
        for name in ("embed_dim", "max_pairs", "max_steps", "num_threads"):
            positive_int(name, optional=True)
        if self.image_size < 16:
            raise ValueError(f"image_size must be at least 16, got {self.image_size}")
        if not 0 < float(self.margin) <= 2:
            raise ValueError(f"margin is a cosine distance in (0, 2], got {self.margin!r}")
        if not float(self.learning_rate) > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}")
        if not float(self.weight_decay) >= 0:
            raise ValueError(f"weight_decay must be non-negative, got {self.weight_decay!r}")
        if self.checkpoint is not None:
            self.checkpoint = os.path.abspath(os.path.expanduser(os.fspath(self.checkpoint)))


def _photo_list(value: Any) -> list[str]:
    from dupsearch.io.schema import _parse_images
    return _parse_images(value)


class ContrastiveImageTrainer:
    """Fine-tunes a timm backbone so that photos of duplicate listings have a high cosine.

    Attributes after :meth:`fit`: ``loss_history_`` (the loss of every step), ``step_seconds_``
    (the time of every step: loading, augmentation, forward, backward, update),
    ``pair_counts_`` (from :meth:`pairs_from_listings` and :meth:`fit`), ``steps_``,
    ``train_seconds_`` and ``pairs_per_second_`` (photo pairs trained per second, loading and
    augmentation included).
    """

    def __init__(self, config: ContrastiveConfig | None = None):
        self.config = config if config is not None else ContrastiveConfig()
        self.model_ = None
        self.data_config_: dict | None = None
        self.loss_history_: list[float] = []
        self.step_seconds_: list[float] = []
        self.pair_counts_: dict[str, int] = {}
        self.steps_ = 0
        self.train_seconds_ = 0.0
        self.pairs_per_second_ = float("nan")
        self._device: str | None = None
        self._eval_transform = None
        self._train_transform = None

    # ------------------------------------------------------------------ pairs

    def pairs_from_listings(self, listings, pairs) -> tuple[list[str], list[str], np.ndarray]:
        """Photo pairs ``(paths_a, paths_b, labels)`` from labelled listing pairs.

        `listings` needs ``item_id`` and ``images`` (a list of paths per row); `pairs` needs
        ``item_id_a``, ``item_id_b`` and ``label`` (1 duplicate, 0 not). Each listing pair gives
        up to ``pairs_per_listing_pair`` photo pairs, drawn with the seed without repetition from
        all pairs of its photos. Pairs where either listing has no photos are skipped; the counts
        land in ``pair_counts_``. Raises ``DataError`` when no pair has photos on both sides.
        """
        import pandas as pd

        for name, frame, cols in (("listings", listings, ("item_id", "images")),
                                  ("pairs", pairs, ("item_id_a", "item_id_b", "label"))):
            if not isinstance(frame, pd.DataFrame):
                raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
            for col in cols:
                if col not in frame.columns:
                    raise DataError(f"the {name} table has no column {col!r} (it has "
                                    f"{list(frame.columns)[:12]})", column=col)
        ids = listings["item_id"].astype(str)
        if ids.duplicated().any():
            dup = ids[ids.duplicated()].iloc[0]
            raise DataError(f"item_id {dup!r} appears more than once in the listings", column="item_id")
        photos: dict[str, list[str]] = {}
        for i, (item, value) in enumerate(zip(ids.tolist(), listings["images"].tolist())):
            try:
                photos[item] = _photo_list(value)
            except ValueError as exc:
                raise DataError(str(exc), row=i + 1, column="images") from None
        ia, ib = pairs["item_id_a"].astype(str).tolist(), pairs["item_id_b"].astype(str).tolist()
        labels = pd.to_numeric(pairs["label"], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isin(labels, (0.0, 1.0)))
        if len(bad):
            raise DataError(f"labels must be 0 or 1, got {pairs['label'].iloc[bad[0]]!r}",
                            row=int(bad[0]) + 1, column="label")
        missing = [x for x in ia + ib if x not in photos]
        if missing:
            raise DataError(f"{len(set(missing))} item_id(s) of the pairs are not in the listings, "
                            f"e.g. {missing[0]!r}", column="item_id_a")

        k = self.config.pairs_per_listing_pair
        rng = np.random.default_rng([self.config.seed, 17])
        out_a: list[str] = []
        out_b: list[str] = []
        out_y: list[int] = []
        skipped = 0
        used = 0
        for a, b, y in zip(ia, ib, labels.astype(np.int64).tolist()):
            pa, pb = photos[a], photos[b]
            if not pa or not pb:
                skipped += 1
                continue
            used += 1
            n = len(pa) * len(pb)
            chosen = np.arange(n) if n <= k else np.sort(rng.choice(n, size=k, replace=False))
            for c in chosen.tolist():
                out_a.append(pa[c // len(pb)])
                out_b.append(pb[c % len(pb)])
                out_y.append(y)
        y_arr = np.asarray(out_y, np.int64)
        self.pair_counts_ = {
            "listing_pairs": len(ia), "listing_pairs_used": used, "listing_pairs_skipped_no_photos": skipped,
            "photo_pairs": len(out_y), "positive_photo_pairs": int(y_arr.sum()),
            "negative_photo_pairs": int(len(y_arr) - y_arr.sum()),
        }
        if not used:
            raise DataError(f"none of the {len(ia)} labelled listing pairs has photos on both sides "
                            f"(images column empty), so there is nothing to train the image model on",
                            column="images")
        return out_a, out_b, y_arr

    # ------------------------------------------------------------------ model

    def _build(self) -> None:
        """A fresh model (initialised with the seed) and its transforms."""
        import torch
        from dupsearch.encoders._torch import import_timm, import_torchvision, torch_device

        cfg = self.config
        timm = import_timm()
        from timm.data import create_transform, resolve_data_config
        from timm.models import load_state_dict

        num_classes = cfg.embed_dim or 0
        weights = None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            if cfg.checkpoint is not None and os.path.isdir(cfg.checkpoint):
                from dupsearch.encoders.image import TimmImageEncoder
                TimmImageEncoder._check_dir(cfg.checkpoint)
                weights = TimmImageEncoder._find_weights(cfg.checkpoint)
                model = timm.create_model(f"local-dir:{cfg.checkpoint}", pretrained=False,
                                          num_classes=num_classes)
            else:
                if not timm.is_model(cfg.backbone.split(".")[0]):
                    raise ValueError(f"{cfg.backbone!r} is not a timm architecture (see timm.list_models())")
                if cfg.checkpoint is not None:
                    if not os.path.isfile(cfg.checkpoint):
                        raise ModelNotFoundError(
                            f"checkpoint {cfg.checkpoint} does not exist: put there a state dict of the "
                            f"{cfg.backbone!r} architecture, or a folder as 'timm:DIR' takes")
                    weights = cfg.checkpoint
                model = timm.create_model(cfg.backbone, pretrained=False, num_classes=num_classes)
        if weights is not None:
            state = load_state_dict(weights, use_ema=True, device="cpu")
            own = model.state_dict()
            heads = model.pretrained_cfg.get("classifier") or ()
            heads = (heads,) if isinstance(heads, str) else tuple(heads)
            for key in list(state):
                is_head = any(key == h or key.startswith(h + ".") for h in heads)
                if is_head and (key not in own or tuple(state[key].shape) != tuple(own[key].shape)):
                    del state[key]  # another classifier (or none wanted): the head starts afresh
            head_keys = {k for k in own if any(k == h or k.startswith(h + ".") for h in heads)}
            missing = [k for k in own if k not in state and k not in head_keys]
            unexpected = [k for k in state if k not in own]
            resized = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
            if missing or unexpected or resized:
                raise ValueError(
                    f"weights {weights} do not fit the timm architecture {cfg.backbone!r}: "
                    f"{len(missing)} keys missing (e.g. {missing[:3]}), {len(unexpected)} unexpected "
                    f"(e.g. {unexpected[:3]}), {len(resized)} of another shape (e.g. {resized[:3]})")
            model.load_state_dict(state, strict=False)
        s = cfg.image_size
        model.pretrained_cfg = {**model.pretrained_cfg, "input_size": (3, s, s), "crop_pct": 1.0,
                                "crop_mode": "squash", "test_input_size": None, "test_crop_pct": None}
        data_config = resolve_data_config({}, model=model)
        self.data_config_ = {k: (list(v) if isinstance(v, tuple) else v) for k, v in data_config.items()}
        self._eval_transform = create_transform(**data_config, is_training=False)
        tv = import_torchvision()
        T = tv.transforms
        from timm.data.transforms import str_to_interp_mode
        interp = str_to_interp_mode(data_config["interpolation"])
        if cfg.augment:
            self._train_transform = T.Compose([
                T.RandomResizedCrop(s, scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3), interpolation=interp),
                T.RandomHorizontalFlip(),
                T.ColorJitter(brightness=0.25, contrast=0.2, saturation=0.4, hue=0.0),
                T.ToTensor(),
                T.Normalize(data_config["mean"], data_config["std"]),
            ])
        else:
            self._train_transform = self._eval_transform
        self._device = torch_device(cfg.device)
        self.model_ = model.to(self._device).eval()
        self.architecture_ = str(model.pretrained_cfg.get("architecture") or cfg.backbone.split(".")[0])

    def _ensure(self) -> None:
        if self.model_ is None:
            self._build()

    def _threads(self):
        from contextlib import nullcontext
        from dupsearch.encoders._torch import torch_threads
        n = self.config.num_threads
        return nullcontext() if n is None else torch_threads(n)

    def _features(self, x, projection: bool = True):
        """Embeddings of a batch: the model's output (pooled features, or the projection)."""
        if projection or not self.config.embed_dim:
            return self.model_(x)
        return self.model_.forward_head(self.model_.forward_features(x), pre_logits=True)

    # ------------------------------------------------------------------ training

    def _batch(self, paths: Sequence[str], transform):
        import torch
        from dupsearch.encoders._torch import torch_threads
        from dupsearch.encoders.image import load_image
        with torch_threads(1):
            return torch.stack([transform(load_image(p, min_side=2 * self.config.image_size)) for p in paths])

    def fit(self, paths_a: Sequence[str], paths_b: Sequence[str], labels, progress: bool = False
            ) -> "ContrastiveImageTrainer":
        """Train a fresh model (initialised with the seed, or from ``checkpoint``) on photo pairs.

        `labels`: 1 for photos of the same item, 0 otherwise; both kinds are needed (positives
        alone collapse every embedding onto one point).
        """
        import torch
        import torch.nn.functional as F

        cfg = self.config
        paths_a = [os.fspath(p) for p in paths_a]
        paths_b = [os.fspath(p) for p in paths_b]
        y = np.asarray(labels)
        if not (len(paths_a) == len(paths_b) == len(y)):
            raise ValueError(f"paths_a, paths_b and labels differ in length: "
                             f"{len(paths_a)}, {len(paths_b)}, {len(y)}")
        if not len(y):
            raise DataError("no photo pairs to train on")
        if not np.isin(y, (0, 1)).all():
            raise DataError(f"labels must be 0 or 1, got {sorted(set(np.unique(y).tolist()) - {0, 1})[:3]}")
        y = y.astype(np.float32)
        if y.min() == y.max():
            raise DataError(f"all {len(y)} photo pairs are labelled {int(y[0])}: the contrastive loss "
                            "needs duplicates and non-duplicates")
        rng = np.random.default_rng([cfg.seed, 29])
        idx = np.arange(len(y))
        if cfg.max_pairs is not None and len(idx) > cfg.max_pairs:
            idx = np.sort(rng.choice(len(idx), size=cfg.max_pairs, replace=False))
        n = len(idx)
        steps_per_epoch = math.ceil(n / cfg.batch_size)
        total = steps_per_epoch * cfg.epochs
        if cfg.max_steps is not None:
            total = min(total, cfg.max_steps)

        self.model_ = None
        self._build()
        model = self.model_
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        margin = float(cfg.margin)
        self.loss_history_ = []
        self.step_seconds_ = []
        trained = 0
        bar = None
        if progress:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)
            bar = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                           MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                           TextColumn("{task.fields[rate]} pairs/s"), TimeElapsedColumn(),
                           TimeRemainingColumn())
            bar.start()
            task = bar.add_task(f"contrastive {cfg.backbone} on {n:,} photo pairs", total=total,
                                loss="-", rate="-")
        start = time.perf_counter()
        try:
            with self._threads(), torch.random.fork_rng(devices=[]):
                torch.manual_seed(cfg.seed + 1)
                step = 0
                for _epoch in range(cfg.epochs):
                    order = idx[rng.permutation(n)]
                    for s in range(0, n, cfg.batch_size):
                        if step >= total:
                            break
                        sel = order[s:s + cfg.batch_size].tolist()
                        t_step = time.perf_counter()
                        xa = self._batch([paths_a[i] for i in sel], self._train_transform)
                        xb = self._batch([paths_b[i] for i in sel], self._train_transform)
                        x = torch.cat([xa, xb]).to(self._device)
                        target = torch.as_tensor(y[sel], device=self._device)
                        emb = F.normalize(self._features(x).float(), dim=1)
                        ea, eb = emb[:len(sel)], emb[len(sel):]
                        dist = 1.0 - (ea * eb).sum(1)
                        loss = 0.5 * (target * dist.pow(2)
                                      + (1.0 - target) * F.relu(margin - dist).pow(2)).mean()
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        opt.step()
                        value = float(loss.detach())
                        if not math.isfinite(value):
                            raise FloatingPointError(
                                f"the contrastive loss became {value} at step {step + 1}: lower the "
                                f"learning_rate (now {cfg.learning_rate})")
                        self.loss_history_.append(value)
                        self.step_seconds_.append(time.perf_counter() - t_step)
                        trained += len(sel)
                        step += 1
                        if bar is not None:
                            rate = trained / max(time.perf_counter() - start, 1e-9)
                            recent = np.mean(self.loss_history_[-20:])
                            bar.update(task, advance=1, loss=f"{recent:.4f}", rate=f"{rate:.1f}")
                    if step >= total:
                        break
        finally:
            if bar is not None:
                bar.stop()
            model.eval()
        self.train_seconds_ = time.perf_counter() - start
        self.steps_ = len(self.loss_history_)
        self.pairs_per_second_ = trained / self.train_seconds_ if self.train_seconds_ > 0 else float("nan")
        self.pair_counts_ = {**self.pair_counts_, "trained_photo_pairs": int(n),
                             "trained_positive": int(y[idx].sum()), "trained_negative": int(n - y[idx].sum()),
                             "pair_steps": int(trained)}
        return self

    # ------------------------------------------------------------------ inference

    def encode(self, paths: Sequence[Any], batch_size: int = 32, projection: bool = True) -> np.ndarray:
        """L2-normalised float32 embeddings of images (paths or PIL images), preprocessed as the
        ``timm:DIR`` encoder does. Before :meth:`fit`: the untrained model (same seed, same
        initial weights). ``projection=False``: the pooled backbone features even when a
        projection head is trained (what ``timm:DIR`` returns for such a model)."""
        import torch
        from dupsearch.encoders._torch import torch_threads
        from dupsearch.encoders.base import l2_normalize
        from dupsearch.encoders.image import _images

        self._ensure()
        self.model_.eval()
        min_side = 2 * self.config.image_size
        chunks = []
        for s in range(0, len(paths), batch_size):
            images = _images(list(paths[s:s + batch_size]), min_side=min_side)
            with torch_threads(1):
                x = torch.stack([self._eval_transform(im) for im in images])
            with torch.inference_mode(), self._threads():
                out = self._features(x.to(self._device), projection=projection)
            chunks.append(out.float().cpu().numpy().reshape(len(images), -1))
        if not chunks:
            return np.zeros((0, self._dim(projection)), np.float32)
        return l2_normalize(np.concatenate(chunks).astype(np.float32))

    def _dim(self, projection: bool = True) -> int:
        if projection and self.config.embed_dim:
            return int(self.config.embed_dim)
        return int(self.model_.num_features)

    # ------------------------------------------------------------------ saving

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the model as a timm hub-style folder (config.json + model.safetensors) plus
        contrastive.json, into a temporary folder that is then renamed into place.

        An existing folder is replaced only when it holds a model saved here before
        (contrastive.json) or is empty; otherwise ``FileExistsError``.
        """
        from safetensors.torch import save_file

        self._ensure()
        directory = Path(os.path.abspath(os.path.expanduser(os.fspath(directory))))
        if directory.exists():
            if not directory.is_dir():
                raise FileExistsError(f"{directory} exists and is not a folder")
            if any(directory.iterdir()) and not (directory / _INFO_FILE).is_file():
                raise FileExistsError(f"{directory} is a non-empty folder that holds no model saved by "
                                      f"the contrastive trainer ({_INFO_FILE}); not replacing it")
        from dupsearch.atomic import atomic_directory
        with atomic_directory(directory, own=(_INFO_FILE,)) as tmp:
            state = {k: v.detach().cpu().contiguous() for k, v in self.model_.state_dict().items()}
            save_file(state, str(tmp / _WEIGHTS_FILE))
            (tmp / "config.json").write_text(json.dumps(self._hub_config(), indent=2), encoding="utf-8")
            (tmp / _INFO_FILE).write_text(json.dumps(self._info(), indent=2), encoding="utf-8")
        return directory

    def _hub_config(self) -> dict:
        model = self.model_
        keep = ("input_size", "interpolation", "crop_pct", "crop_mode", "mean", "std",
                "first_conv", "classifier", "fixed_input_size", "pool_size", "license")
        pretrained_cfg = {k: (list(v) if isinstance(v, tuple) else v)
                          for k, v in model.pretrained_cfg.items() if k in keep and v is not None}
        s = self.config.image_size
        pretrained_cfg.update({"tag": "dupsearch_contrastive", "input_size": [3, s, s], "crop_pct": 1.0,
                               "crop_mode": "squash", "mean": list(self.data_config_["mean"]),
                               "std": list(self.data_config_["std"]),
                               "interpolation": self.data_config_["interpolation"],
                               "num_classes": int(model.num_classes)})
        if pretrained_cfg.get("pool_size") is not None and not pretrained_cfg.get("fixed_input_size"):
            pretrained_cfg.pop("pool_size")  # the source's pool size is for another input size
        out = {"architecture": self.architecture_, "num_classes": int(model.num_classes),
               "num_features": int(model.num_features)}
        pool = getattr(model, "global_pool", None)
        pool_type = getattr(pool, "pool_type", pool if isinstance(pool, str) else None)
        if isinstance(pool_type, str) and pool_type:
            out["global_pool"] = pool_type
        out["pretrained_cfg"] = pretrained_cfg
        # Which output the trained embedding is: "pooled" (what num_classes=0 gives) or
        # "projection" (the classifier slot holds the trained projection head). timm ignores it.
        out["dupsearch_embedding"] = "projection" if self.config.embed_dim else "pooled"
        return out

    def _info(self) -> dict:
        import dupsearch
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "dupsearch_version": getattr(dupsearch, "__version__", None),
            "config": asdict(self.config), "architecture": self.architecture_,
            "embedding": "projection" if self.config.embed_dim else "pooled",
            "timm_dir_gives": "pooled backbone features (projection head dropped)" if self.config.embed_dim
            else "the trained embeddings",
            "pair_counts": self.pair_counts_, "steps": self.steps_,
            "train_seconds": round(self.train_seconds_, 3),
            "pairs_per_second": None if not math.isfinite(self.pairs_per_second_) else round(self.pairs_per_second_, 3),
            "loss_history": [round(v, 6) for v in self.loss_history_],
        }


__all__ = ["ContrastiveConfig", "ContrastiveImageTrainer"]
