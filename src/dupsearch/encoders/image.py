"""Image encoders: perceptual hashes, colour histograms, timm / open_clip / CLIP networks.

Items are image paths (str or Path) or PIL images. Specs:

* ``phash``, ``dhash``, ``whash`` (options ``hash_size=8``): the hash bits as +-1, metric "hamming";
* ``colorhist`` (option ``bins=8,4,4``: hue, saturation, value bins): square-rooted HSV histogram,
  a dot product of two rows is their Bhattacharyya coefficient;
* ``timm:resnet50?checkpoint=/models/resnet50/model.safetensors`` or ``timm:/models/resnet50``
  (a folder as the Hugging Face hub holds timm models: ``config.json`` plus ``model.safetensors``
  or ``pytorch_model.bin``): pooled backbone features;
* ``open_clip:ViT-B-32?checkpoint=/models/open_clip_vit_b32.bin`` (option ``config=`` names a
  model config JSON for an architecture open_clip does not ship), or ``open_clip:/models/dir``
  (a folder holding ``open_clip_config.json`` and the weights, as on the hub);
* ``clip_st:/models/clip-ViT-B-32``: a CLIP model saved in sentence-transformers format.

Neural encoders also take ``batch_size=`` and ``device=`` options; they change how the work is
done, not the result, so they are left out of the spec the encoder reports (and of the cache key).
Models come from local files only; nothing is downloaded.
"""

from __future__ import annotations

import abc

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageOps

from dupsearch.digests import weights_digest
from dupsearch.encoders.base import Encoder, l2_normalize, parse_spec
from dupsearch.errors import DataError, ModelNotFoundError

# JPEG files are decoded at a reduced scale when the encoder needs no more than this many pixels
# a side (PIL's draft mode: the decoder itself downsamples by 1/2, 1/4 or 1/8; much faster).
_SMALL_ENCODER_SIDE = 256


# --------------------------------------------------------------------------- loading

def load_image(item: Any, min_side: int | None = None) -> Image.Image:
    """An RGB PIL image from a path or a PIL image.

    EXIF orientation is applied; transparent areas are put on white (as a marketplace shows
    them). A path that is missing or not a readable image raises
    ``DataError("cannot read image: <reason>", path=...)``. With `min_side`, a JPEG may be
    decoded at a reduced scale that keeps both sides at least `min_side` pixels.
    """
    if isinstance(item, Image.Image):
        return _to_rgb(item)
    if not isinstance(item, (str, os.PathLike)):
        raise TypeError(f"an image item must be a path or a PIL image, got {type(item).__name__}")
    path = Path(item)
    try:
        with Image.open(path) as img:
            if min_side and img.format == "JPEG":
                img.draft("RGB", (min_side, min_side))
            img.load()
            if img.getexif().get(0x0112, 1) != 1:  # EXIF orientation: turn as a viewer shows it
                img = ImageOps.exif_transpose(img)
            return _to_rgb(img)
    except FileNotFoundError:
        raise DataError("cannot read image: no such file", path=str(path)) from None
    except IsADirectoryError:
        raise DataError("cannot read image: it is a directory", path=str(path)) from None
    except Image.UnidentifiedImageError:
        raise DataError("cannot read image: not an image file or a format Pillow cannot decode",
                        path=str(path)) from None
    except MemoryError:
        raise
    except Exception as exc:  # truncated or corrupt files, permission denied, decompression bombs
        raise DataError(f"cannot read image: {type(exc).__name__}: {exc}", path=str(path)) from exc


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit greyscale: scale to 8 bits
        arr = np.asarray(img, dtype=np.float64)
        top = arr.max() if arr.size else 0
        scale = 255.0 / (65535.0 if top > 255 else 255.0)
        img = Image.fromarray(np.clip(arr * scale, 0, 255).astype(np.uint8), "L")
    return img.convert("RGB")


def _workers(n_items: int) -> int:
    """Threads for per-image work. Decoding and resizing release the GIL: on a 16-core host,
    800x600 JPEGs went from 70 to 341 images/s into resnet50 tensors with 8 threads (phash 230
    -> 500, colorhist 97 -> 454). Machines with fewer than 4 cores use one thread, which also
    stays fast when the cores are busy with other work."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return min(8, cores, n_items) if cores >= 4 and n_items >= 8 else 1


def _map(fn, items: Sequence[Any]) -> list:
    """[fn(x) for x in items], in a few threads when that pays; the first error is raised."""
    workers = _workers(len(items))
    if workers <= 1:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def _images(items: Sequence[Any], min_side: int | None = None) -> list[Image.Image]:
    return _map(lambda x: load_image(x, min_side=min_side), items)


# --------------------------------------------------------------------------- spec helpers

def _options(spec: str, allowed: Sequence[str]) -> tuple[str, str, dict[str, str]]:
    kind, arg, options = parse_spec(spec)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} in image encoder spec {spec!r}; "
                         f"{kind!r} takes {sorted(allowed) or 'no options'}")
    return kind, arg, options


def _int_option(options: dict, key: str, default: int, spec: str, minimum: int = 1) -> int:
    if key not in options:
        return default
    raw = options[key]
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"option {key}={raw!r} in spec {spec!r} must be an integer") from None
    if value < minimum:
        raise ValueError(f"option {key}={value} in spec {spec!r} must be at least {minimum}")
    return value


def _check_batch_size(batch_size: int) -> int:
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def _abspath(path: str | os.PathLike) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


# --------------------------------------------------------------------------- perceptual hashes

class PerceptualHashEncoder(Encoder):
    """pHash / dHash / wHash bits as +-1 floats (dim = hash_size**2), compared by Hamming distance.

    Robust to re-encoding, resizing and small colour changes; not to crops, flips or rotations.
    """

    modality = "image"
    kind = "phash"
    metric = "hamming"
    KINDS = ("phash", "dhash", "whash")

    def __init__(self, kind: str = "phash", hash_size: int = 8):
        kind = str(kind).lower()
        if kind not in self.KINDS:
            raise ValueError(f"unknown hash kind {kind!r}; known: {list(self.KINDS)}")
        if not isinstance(hash_size, (int, np.integer)) or isinstance(hash_size, bool) or hash_size < 2:
            raise ValueError(f"hash_size must be an integer >= 2, got {hash_size!r}")
        if kind == "whash" and hash_size & (hash_size - 1):
            raise ValueError(f"whash needs a power of 2 as hash_size, got {hash_size}")
        self.kind = kind  # instance attribute: one class serves three kinds
        self.hash_size = int(hash_size)
        self.spec = kind if self.hash_size == 8 else f"{kind}?hash_size={self.hash_size}"

    @classmethod
    def from_spec(cls, spec: str) -> "PerceptualHashEncoder":
        kind, arg, options = _options(spec, ["hash_size"])
        if arg:
            raise ValueError(f"{kind!r} takes no argument after ':' (spec {spec!r}); "
                             f"use e.g. '{kind}?hash_size=16'")
        return cls(kind, hash_size=_int_option(options, "hash_size", 8, spec, minimum=2))

    @property
    def dim(self) -> int:
        return self.hash_size ** 2

    def params(self) -> dict:
        return {"kind": self.kind, "hash_size": self.hash_size}

    def _hash(self, img: Image.Image) -> np.ndarray:
        import imagehash  # a core dependency, imported lazily (it pulls in scipy and pywt)
        if self.kind == "phash":
            h = imagehash.phash(img, hash_size=self.hash_size)
        elif self.kind == "dhash":
            h = imagehash.dhash(img, hash_size=self.hash_size)
        else:
            # A fixed working scale: imagehash's default depends on the picture's size, so a
            # resized copy would be hashed at another scale.
            h = imagehash.whash(img, hash_size=self.hash_size, image_scale=self.hash_size * 8)
        return np.asarray(h.hash, dtype=bool).reshape(-1)

    def encode(self, items: Sequence[Any]) -> np.ndarray:
        out = np.empty((len(items), self.dim), np.float32)
        bits = _map(lambda x: self._hash(load_image(x, min_side=_SMALL_ENCODER_SIDE)), items)
        for i, b in enumerate(bits):
            out[i] = np.where(b, 1.0, -1.0)
        return out


# --------------------------------------------------------------------------- colour histogram

class ColorHistogramEncoder(Encoder):
    """Joint HSV histogram; rows are sqrt(p) with sum(p) = 1, so a dot product is the
    Bhattacharyya coefficient of two colour distributions (1 = identical)."""

    modality = "image"
    kind = "colorhist"
    # Pictures are shrunk to at most this side first: histograms barely change, time drops.
    MAX_SIDE = 256
    ACHROMATIC = 24  # chroma (0..255) below which a pixel's hue is ignored

    def __init__(self, bins: Sequence[int] | int = (8, 4, 4)):
        if isinstance(bins, (int, np.integer)):
            bins = (int(bins),) * 3
        bins = tuple(bins)
        if len(bins) != 3 or not all(isinstance(b, (int, np.integer)) and not isinstance(b, bool)
                                     and 1 <= b <= 256 for b in bins):
            raise ValueError(f"bins must be three integers in 1..256 (hue, saturation, value), got {bins!r}")
        self.bins = tuple(int(b) for b in bins)
        self.spec = "colorhist" if self.bins == (8, 4, 4) else "colorhist?bins=" + ",".join(map(str, self.bins))

    @classmethod
    def from_spec(cls, spec: str) -> "ColorHistogramEncoder":
        kind, arg, options = _options(spec, ["bins"])
        if arg:
            raise ValueError(f"'colorhist' takes no argument after ':' (spec {spec!r}); "
                             "use e.g. 'colorhist?bins=8,4,4'")
        if "bins" not in options:
            return cls()
        parts = [p.strip() for p in options["bins"].split(",") if p.strip()]
        try:
            bins = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"option bins={options['bins']!r} in spec {spec!r} must be one integer "
                             "or three comma-separated integers, e.g. bins=8,4,4") from None
        if len(bins) == 1:
            bins = bins * 3
        return cls(bins)

    @property
    def dim(self) -> int:
        return int(np.prod(self.bins))

    def params(self) -> dict:
        return {"bins": list(self.bins), "max_side": self.MAX_SIDE, "achromatic": self.ACHROMATIC}

    def histogram(self, img: Image.Image) -> np.ndarray:
        if max(img.size) > self.MAX_SIDE:
            scale = self.MAX_SIDE / max(img.size)
            img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                             Image.Resampling.BOX)
        rgb = np.asarray(img, dtype=np.int16).reshape(-1, 3)
        hsv = np.asarray(img.convert("HSV"), dtype=np.uint32).reshape(-1, 3)
        bh, bs, bv = self.bins
        hue = (hsv[:, 0] * bh) >> 8
        sat = (hsv[:, 1] * bs) >> 8
        # Hue is noise on near-grey pixels (JPEG chroma noise spreads a grey photo over every hue
        # bin): pixels with little chroma (max - min of R, G, B) count as grey, hue and
        # saturation bin 0.
        grey = (rgb.max(axis=1) - rgb.min(axis=1)) < self.ACHROMATIC
        hue[grey] = 0
        sat[grey] = 0
        idx = hue * (bs * bv) + sat * bv + ((hsv[:, 2] * bv) >> 8)
        counts = np.bincount(idx, minlength=self.dim).astype(np.float64)
        total = counts.sum()
        return np.sqrt(counts / total) if total else counts

    def encode(self, items: Sequence[Any]) -> np.ndarray:
        out = np.empty((len(items), self.dim), np.float32)
        for i, h in enumerate(_map(lambda x: self.histogram(load_image(x, min_side=_SMALL_ENCODER_SIDE)), items)):
            out[i] = h
        return l2_normalize(out)


# --------------------------------------------------------------------------- neural encoders

class _TorchImageEncoder(Encoder):
    """Shared parts: lazy model, batching, device, preprocessing by a per-image transform."""

    modality = "image"

    def __init__(self, batch_size: int = 32, device: str | None = None):
        self.batch_size = _check_batch_size(batch_size)
        self.device = device
        self._model = None
        self._transform = None
        self._dim: int | None = None
        self._device: str | None = None
        self._digest: str | None = None
        # JPEGs are decoded at a reduced scale down to twice the model's input side (set by
        # `_load`): a 4000x3000 photo decodes 4x smaller and faster, and still gets shrunk by
        # the model's own resize; smaller files decode as they are.
        self._min_side: int | None = None

    @abc.abstractmethod
    def _load(self) -> None:
        """Build the model and its transform; set _model, _transform, _dim, _device, _min_side."""

    @abc.abstractmethod
    def _weights_digest(self) -> str:
        """Cheap digest of the weight files in use."""

    def state_digest(self) -> str:
        """Digest of the weights (and configs), taken once: the first time it is asked for or
        when the model is loaded, whichever comes first, so it describes the weights in use."""
        if self._digest is None:
            self._digest = self._weights_digest()
        return self._digest

    def _ensure(self) -> None:
        if self._model is None:
            self.state_digest()
            self._load()

    @property
    def dim(self) -> int:
        self._ensure()
        return int(self._dim)

    def _forward(self, batch):
        return self._model(batch)

    def preprocess(self, items: Sequence[Any]):
        """The model's input tensor for `items` (on the CPU)."""
        import torch
        from dupsearch.encoders._torch import torch_threads
        self._ensure()
        # One intra-op thread: the tensors of one picture are too small to gain from more.
        with torch_threads(1):
            return torch.stack(_map(lambda x: self._transform(load_image(x, self._min_side)), items))

    def encode(self, items: Sequence[Any]) -> np.ndarray:
        import torch
        self._ensure()
        out = np.empty((len(items), self._dim), np.float32)
        for s in range(0, len(items), self.batch_size):
            batch = self.preprocess(items[s:s + self.batch_size]).to(self._device)
            with torch.inference_mode():
                feats = self._forward(batch)
            out[s:s + len(batch)] = feats.float().cpu().numpy().reshape(len(batch), -1)
        return l2_normalize(out)

    @staticmethod
    def _spec_with(base: str, options: dict[str, str]) -> str:
        # Values are %-escaped where `parse_spec` (urllib's parse_qsl) would change them:
        # '+' would come back as a space, '&' and '=' would split the option, '%' would unescape.
        from urllib.parse import quote
        safe = "/\\:~.,-_@ "
        opts = "&".join(f"{k}={quote(str(v), safe=safe)}" for k, v in options.items() if v is not None)
        return f"{base}?{opts}" if opts else base


_TIMM_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "pytorch_model.pth", "model.pth")


def _looks_like_path(arg: str) -> bool:
    return (any(sep in arg for sep in ("/", "\\")) or arg.startswith(("~", "."))
            or (os.path.isdir(arg) and os.path.isfile(os.path.join(arg, "config.json"))))


class TimmImageEncoder(_TorchImageEncoder):
    """A timm backbone's pooled features (classifier removed), L2-normalised; cosine metric.

    `model_name` is a timm architecture (with `checkpoint`: a .safetensors/.pth/.bin state dict)
    or a local folder laid out as on the Hugging Face hub (``config.json`` naming the
    ``architecture`` plus ``model.safetensors`` or ``pytorch_model.bin``).
    """

    kind = "timm"

    def __init__(self, model_name: str, checkpoint: str | os.PathLike | None = None,
                 batch_size: int = 32, device: str | None = None):
        super().__init__(batch_size, device)
        if not model_name or not str(model_name).strip():
            raise ValueError("the timm encoder needs a model name or a model folder, "
                             "e.g. 'timm:resnet50?checkpoint=/models/resnet50/model.safetensors' "
                             "or 'timm:/models/resnet50'")
        model_name = str(model_name).strip()
        self.model_dir: str | None = None
        if _looks_like_path(model_name):
            self.model_dir = _abspath(model_name)
            self._check_dir(self.model_dir)
        self.model_name = model_name if self.model_dir is None else self.model_dir
        self.checkpoint = _abspath(checkpoint) if checkpoint else None
        if self.checkpoint is None:
            if self.model_dir is None:
                raise ModelNotFoundError(
                    f"the timm encoder {model_name!r} needs pretrained weights, and nothing is downloaded. "
                    f"On a machine with internet, download them, e.g. "
                    f"`hf download timm/resnet50.a1_in1k --local-dir DIR` "
                    f"(`huggingface-cli download ...` with older huggingface_hub), "
                    f"then use the spec 'timm:DIR', or "
                    f"'timm:{model_name}?checkpoint=DIR/model.safetensors' for a state dict of that architecture")
            self.weights_file = self._find_weights(self.model_dir)
        else:
            if not os.path.isfile(self.checkpoint):
                raise ModelNotFoundError(
                    f"timm checkpoint {self.checkpoint} does not exist: put there a state dict "
                    f"(.safetensors, .pth or .bin) of the {model_name!r} architecture, e.g. the "
                    f"model.safetensors of `hf download timm/<model> --local-dir DIR`")
            self.weights_file = self.checkpoint
        self.spec = self._spec_with(f"timm:{self.model_name}", {"checkpoint": self.checkpoint})

    @staticmethod
    def _check_dir(directory: str) -> None:
        what = ("a timm model folder as on the Hugging Face hub: config.json (naming the "
                "'architecture') plus model.safetensors or pytorch_model.bin, e.g. from "
                "`hf download timm/resnet50.a1_in1k --local-dir DIR` on a machine with internet")
        if not os.path.isdir(directory):
            raise ModelNotFoundError(f"timm model folder {directory} does not exist: put there {what}")
        if not os.path.isfile(os.path.join(directory, "config.json")):
            raise ModelNotFoundError(f"timm model folder {directory} has no config.json: it should hold {what}")

    @staticmethod
    def _find_weights(directory: str) -> str:
        for name in _TIMM_WEIGHT_FILES:
            if os.path.isfile(os.path.join(directory, name)):
                return os.path.join(directory, name)
        raise ModelNotFoundError(
            f"timm model folder {directory} holds no weights ({' or '.join(_TIMM_WEIGHT_FILES[:2])}); "
            f"download them with `hf download timm/<model> --local-dir {directory}`")

    @classmethod
    def from_spec(cls, spec: str) -> "TimmImageEncoder":
        _, arg, options = _options(spec, ["checkpoint", "batch_size", "device"])
        return cls(arg, checkpoint=options.get("checkpoint") or None,
                   batch_size=_int_option(options, "batch_size", 32, spec),
                   device=options.get("device") or None)

    def params(self) -> dict:
        self._ensure()
        return {"architecture": self.architecture, "data_config": self.data_config}

    def _weights_digest(self) -> str:
        parts = [self.model_name, weights_digest(self.weights_file)]
        if self.model_dir is not None:
            parts.append(weights_digest(Path(self.model_dir) / "config.json"))
        return hashlib.sha1("|".join(parts).encode()).hexdigest()

    def _load(self) -> None:
        from dupsearch.encoders._torch import import_timm, torch_device
        import torch
        timm = import_timm()
        from timm.data import create_transform, resolve_data_config
        from timm.models import load_state_dict

        if self.model_dir is not None:
            # timm reads the architecture, its arguments and the preprocessing from config.json.
            model = timm.create_model(f"local-dir:{self.model_dir}", pretrained=False, num_classes=0)
        else:
            if not timm.is_model(self.model_name.split(".")[0]):
                raise ValueError(f"{self.model_name!r} is not a timm architecture (see timm.list_models())")
            model = timm.create_model(self.model_name, pretrained=False, num_classes=0)
        state = load_state_dict(self.weights_file, use_ema=True, device="cpu")
        # The model was built without its classifier (num_classes=0: forward returns pooled
        # features), so the checkpoint's classifier head keys are dropped; every backbone key
        # must match exactly.
        heads = model.pretrained_cfg.get("classifier") or ()
        heads = (heads,) if isinstance(heads, str) else tuple(heads)
        own = model.state_dict()
        extra = [k for k in state if k not in own]
        head_keys = [k for k in extra if any(k == h or k.startswith(h + ".") for h in heads)]
        for k in head_keys:
            del state[k]
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        resized = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
        if missing or unexpected or resized:
            raise ValueError(
                f"weights {self.weights_file} do not fit the timm architecture {self.model_name!r}: "
                f"{len(missing)} keys missing (e.g. {missing[:3]}), {len(unexpected)} unexpected "
                f"(e.g. {unexpected[:3]}), {len(resized)} of another shape (e.g. {resized[:3]})")
        model.load_state_dict(state, strict=True)
        self._device = torch_device(self.device)
        model = model.eval().to(self._device)
        self.architecture = type(model).__name__ + ":" + str(model.pretrained_cfg.get("architecture", ""))
        data_config = resolve_data_config({}, model=model)
        self.data_config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in data_config.items()}
        self._transform = create_transform(**data_config, is_training=False)
        self._min_side = 2 * max(data_config["input_size"][1:])
        with torch.inference_mode():
            probe = model(torch.zeros((1, *data_config["input_size"]), device=self._device))
        self._dim = int(probe.reshape(1, -1).shape[1])
        self._model = model


# open_clip model config files already registered in this process (add_model_config appends
# to a global list; registering once per file is enough).
_OPEN_CLIP_CONFIGS: set[str] = set()

_OPEN_CLIP_DOWNLOAD = ("`hf download laion/CLIP-ViT-B-32-laion2B-s34B-b79K open_clip_pytorch_model.bin "
                       "--local-dir DIR` on a machine with internet, then "
                       "'open_clip:ViT-B-32?checkpoint=DIR/open_clip_pytorch_model.bin'")


class OpenClipImageEncoder(_TorchImageEncoder):
    """open_clip's image tower (`encode_image`), L2-normalised; cosine metric.

    `model_name` is an open_clip architecture (``open_clip.list_models()``, or the name of the
    JSON file given as `config`), with `checkpoint` its full CLIP weights; or a local folder
    holding ``open_clip_config.json`` and the weights, as the Hugging Face hub stores them.
    """

    kind = "open_clip"

    def __init__(self, model_name: str, checkpoint: str | os.PathLike | None = None,
                 batch_size: int = 32, device: str | None = None,
                 config: str | os.PathLike | None = None):
        super().__init__(batch_size, device)
        model_name = str(model_name or "").strip()
        self.config = _abspath(config) if config else None
        self.model_dir: str | None = None
        if self.config is not None:
            self._check_config(self.config)
            stem = Path(self.config).stem
            if model_name and model_name != stem:
                raise ValueError(f"open_clip registers a model config under its file name: config "
                                 f"{self.config} defines {stem!r}, not {model_name!r}; name the "
                                 f"model {stem!r} (or leave the name out: 'open_clip:?config=...')")
            model_name = stem
        elif model_name and (model_name.startswith(("/", "\\", "~", ".")) or os.path.isdir(model_name)
                             or (len(model_name) > 2 and model_name[1:3] in (":\\", ":/"))):
            self.model_dir = _abspath(model_name)
            model_name = self.model_dir
        else:
            model_name = model_name.replace("/", "-")  # OpenAI's "ViT-B/32" is open_clip's "ViT-B-32"
        if not model_name:
            raise ValueError("the open_clip encoder needs a model name, e.g. "
                             "'open_clip:ViT-B-32?checkpoint=/models/open_clip_vit_b32.bin'")
        self.model_name = model_name
        self.checkpoint = _abspath(checkpoint) if checkpoint else None
        if self.model_dir is not None:
            if self.checkpoint is not None:
                raise ValueError("give either an open_clip model folder or a checkpoint, not both")
            self.weights_file = self._dir_weights(self.model_dir)
        elif self.checkpoint is None:
            raise ModelNotFoundError(
                f"the open_clip encoder {model_name!r} needs pretrained weights, and nothing is "
                f"downloaded: add '?checkpoint=FILE'. For example download them with {_OPEN_CLIP_DOWNLOAD}")
        elif not os.path.isfile(self.checkpoint):
            raise ModelNotFoundError(
                f"open_clip checkpoint {self.checkpoint} does not exist: put there the CLIP weights of "
                f"the {model_name!r} architecture (text and image towers), e.g. download them with "
                f"{_OPEN_CLIP_DOWNLOAD}")
        else:
            self.weights_file = self.checkpoint
        self.spec = self._spec_with(
            f"open_clip:{model_name if self.config is None else ''}",
            {"checkpoint": self.checkpoint, "config": self.config})

    @staticmethod
    def _check_config(path: str) -> None:
        if not os.path.isfile(path):
            raise ModelNotFoundError(f"open_clip model config {path} does not exist: put there a JSON "
                                     "with 'embed_dim', 'vision_cfg' and 'text_cfg' (as in open_clip's "
                                     "model_configs folder)")
        try:
            cfg = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"open_clip model config {path} is not readable JSON: {exc}") from exc
        if not isinstance(cfg, dict) or not all(k in cfg for k in ("embed_dim", "vision_cfg", "text_cfg")):
            hint = (" It looks like a hub 'open_clip_config.json': put it with the weights in a folder "
                    "and use 'open_clip:FOLDER'." if isinstance(cfg, dict) and "model_cfg" in cfg else "")
            raise ValueError(f"open_clip model config {path} needs the keys 'embed_dim', 'vision_cfg' "
                             f"and 'text_cfg'.{hint}")

    @staticmethod
    def _dir_weights(directory: str) -> str:
        if not os.path.isdir(directory):
            raise ModelNotFoundError(
                f"open_clip model folder {directory} does not exist: put there open_clip_config.json and "
                f"open_clip_model.safetensors (or open_clip_pytorch_model.bin), e.g. "
                f"`hf download laion/CLIP-ViT-B-32-laion2B-s34B-b79K --local-dir {directory}`")
        if not os.path.isfile(os.path.join(directory, "open_clip_config.json")):
            raise ModelNotFoundError(f"open_clip model folder {directory} has no open_clip_config.json")
        for name in ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors",
                     "open_clip_pytorch_model.bin", "open_clip_pytorch_model.pth",
                     "model.safetensors", "pytorch_model.bin"):
            if os.path.isfile(os.path.join(directory, name)):
                return os.path.join(directory, name)
        raise ModelNotFoundError(
            f"open_clip model folder {directory} holds no weights (open_clip_model.safetensors or "
            f"open_clip_pytorch_model.bin): download them with "
            f"`hf download laion/<model> --local-dir {directory}`")

    @classmethod
    def from_spec(cls, spec: str) -> "OpenClipImageEncoder":
        _, arg, options = _options(spec, ["checkpoint", "config", "batch_size", "device"])
        return cls(arg, checkpoint=options.get("checkpoint") or None,
                   batch_size=_int_option(options, "batch_size", 32, spec),
                   device=options.get("device") or None, config=options.get("config") or None)

    def params(self) -> dict:
        return {"model_name": Path(self.model_name).name}

    def _weights_digest(self) -> str:
        parts = [Path(self.model_name).name, weights_digest(self.weights_file)]
        if self.config is not None:
            parts.append(weights_digest(Path(self.config)))
        if self.model_dir is not None:
            parts.append(weights_digest(Path(self.model_dir) / "open_clip_config.json"))
        return hashlib.sha1("|".join(parts).encode()).hexdigest()

    def _load(self) -> None:
        from dupsearch.encoders._torch import import_open_clip, torch_device
        import torch
        open_clip = import_open_clip()
        if self.config is not None and self.config not in _OPEN_CLIP_CONFIGS:
            open_clip.add_model_config(self.config)
            _OPEN_CLIP_CONFIGS.add(self.config)
        self._device = torch_device(self.device)
        if self.model_dir is not None:
            model, _, transform = open_clip.create_model_and_transforms(
                f"local-dir:{self.model_dir}", device=self._device)
        else:
            if self.model_name not in open_clip.list_models():
                raise ValueError(f"{self.model_name!r} is not an open_clip architecture; known: "
                                 f"{open_clip.list_models()[:8]}...; for a custom one add "
                                 f"'config=/path/{self.model_name}.json'")
            # `pretrained` is an existing file here, so open_clip loads it and downloads nothing.
            model, _, transform = open_clip.create_model_and_transforms(
                self.model_name, pretrained=self.weights_file, device=self._device)
        model = model.eval()
        self._transform = transform
        self._model = model
        size = getattr(model.visual, "image_size", 224)
        size = (size, size) if isinstance(size, int) else tuple(size)
        self._min_side = 2 * max(size)
        with torch.inference_mode():
            probe = model.encode_image(torch.zeros((1, 3, *size), device=self._device))
        self._dim = int(probe.reshape(1, -1).shape[1])

    def _forward(self, batch):
        return self._model.encode_image(batch)


class SentenceTransformerImageEncoder(_TorchImageEncoder):
    """A CLIP model in sentence-transformers format (a local folder), L2-normalised image embeddings."""

    kind = "clip_st"

    def __init__(self, path: str | os.PathLike, batch_size: int = 32, device: str | None = None):
        super().__init__(batch_size, device)
        if not path or not str(path).strip():
            raise ValueError("the clip_st encoder needs a model folder, e.g. 'clip_st:/models/clip-ViT-B-32'")
        self.path = _abspath(str(path).strip())
        if not os.path.isdir(self.path):
            raise ModelNotFoundError(
                f"sentence-transformers CLIP model folder {self.path} does not exist: download one on a "
                f"machine with internet, e.g. `hf download sentence-transformers/clip-ViT-B-32 "
                f"--local-dir {self.path}`, and copy it there")
        self.spec = f"clip_st:{self.path}"

    @classmethod
    def from_spec(cls, spec: str) -> "SentenceTransformerImageEncoder":
        _, arg, options = _options(spec, ["batch_size", "device"])
        return cls(arg, batch_size=_int_option(options, "batch_size", 32, spec),
                   device=options.get("device") or None)

    def params(self) -> dict:
        return {"model": Path(self.path).name}

    def _weights_digest(self) -> str:
        root = Path(self.path)
        parts = []
        for p in sorted(root.rglob("*")):
            if not p.is_file() or any(part.startswith(".") for part in p.relative_to(root).parts):
                continue
            rel = p.relative_to(root).as_posix()
            if p.suffix in (".safetensors", ".bin", ".pt", ".pth"):
                parts.append(f"{rel}={weights_digest(p)}")
            elif p.suffix == ".json":
                parts.append(f"{rel}={weights_digest(p)}")
        return hashlib.sha1("|".join(parts).encode()).hexdigest()

    def _load(self) -> None:
        from dupsearch.encoders._torch import import_sentence_transformers, torch_device
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        st = import_sentence_transformers()
        self._device = torch_device(self.device)
        try:
            model = st.SentenceTransformer(self.path, device=self._device, local_files_only=True)
        except OSError as exc:
            raise ModelNotFoundError(
                f"cannot load a sentence-transformers model from {self.path}: {exc}. The folder should "
                f"hold a CLIP model as saved by sentence-transformers (modules.json, 0_CLIPModel/...), e.g. "
                f"`hf download sentence-transformers/clip-ViT-B-32 --local-dir {self.path}`") from exc
        self._model = model
        self._dim = model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") \
            else model.get_sentence_embedding_dimension()
        if not self._dim:
            self._dim = int(self._st_encode([Image.new("RGB", (32, 32))]).shape[1])

    def preprocess(self, items: Sequence[Any]) -> list[Image.Image]:
        """The model's input: RGB pictures (SentenceTransformer.encode resizes and normalises them)."""
        return _images(items)

    def _st_encode(self, images: list[Image.Image]) -> np.ndarray:
        return self._model.encode(images, batch_size=self.batch_size, convert_to_numpy=True,
                                  show_progress_bar=False)

    def encode(self, items: Sequence[Any]) -> np.ndarray:
        self._ensure()
        out = np.empty((len(items), self._dim), np.float32)
        for s in range(0, len(items), self.batch_size):
            chunk = items[s:s + self.batch_size]
            out[s:s + len(chunk)] = np.asarray(self._st_encode(self.preprocess(chunk)), np.float32).reshape(len(chunk), -1)
        return l2_normalize(out)
