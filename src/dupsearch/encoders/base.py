"""The encoder protocol, the spec strings that name encoders, and the on-disk embedding cache.

An encoder turns texts or images into a float32 matrix, one row per item. It has a name, a
version and a dimension; ``fingerprint()`` hashes all of that plus any fitted state or model
weights, so a cache entry can never be served to a different model. Fitted encoders (TF-IDF+SVD,
FastText, navec IDF) keep their state in the object and save it into the model directory;
pretrained ones save only the spec that finds them again.
"""

from __future__ import annotations

import abc
import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any, ClassVar, Sequence
from urllib.parse import parse_qsl

import numpy as np

from dupsearch.atomic import atomic_savez, atomic_write_text
from dupsearch.errors import DataError, DupsearchError

ENCODER_FILE = "encoder.json"


class MissingDependencyError(DupsearchError, ImportError):
    """An optional package an encoder needs is not installed."""


def require(module: str, what: str, extra: str):
    """Import `module` or fail saying which extra installs it."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{what} needs the Python package {module!r}, which is not installed: "
            f"pip install 'dupsearch[{extra}]'") from exc


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


class Encoder(abc.ABC):
    """Texts or images -> float32 matrix (n, dim).

    ``metric`` says how two rows compare: "cosine" (rows are L2-normalised, a dot product is
    the cosine) or "hamming" (rows are +-1 bit codes; Hamming distance = (dim - dot) / 2).
    """

    modality: ClassVar[str]  # "text" or "image"
    kind: ClassVar[str]  # the spec's kind, e.g. "tfidf_svd", "st", "phash"
    version: ClassVar[str] = "1"
    needs_fit: ClassVar[bool] = False
    metric: ClassVar[str] = "cosine"

    spec: str  # the spec string that rebuilds this encoder (set by each subclass)

    @classmethod
    @abc.abstractmethod
    def from_spec(cls, spec: str) -> "Encoder":
        """Build from "kind[:argument][?options]" (see `parse_spec`); each class parses its options."""

    @property
    def name(self) -> str:
        """Short name used in feature names (no dots, no spaces)."""
        return spec_name(self.spec)

    @property
    @abc.abstractmethod
    def dim(self) -> int: ...

    @abc.abstractmethod
    def encode(self, items: Sequence[Any]) -> np.ndarray:
        """float32 matrix, one row per item (texts: str; images: path or PIL image)."""

    def fit(self, texts: Sequence[str]) -> "Encoder":
        return self

    def params(self) -> dict:
        """Settings that change the output (go into the fingerprint)."""
        return {}

    def state_digest(self) -> str:
        """Digest of fitted state or model weights ('' when there is none)."""
        return ""

    def fingerprint(self) -> str:
        payload = json.dumps({"class": type(self).__name__, "kind": self.kind, "version": self.version,
                              "spec": self.spec, "params": self.params(), "dim": self.dim,
                              "state": self.state_digest()}, sort_keys=True, default=str)
        return hashlib.sha1(payload.encode()).hexdigest()[:20]

    # -- persistence: a directory holding encoder.json and whatever state the class writes --
    def save(self, directory: str | os.PathLike) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._save_state(directory)
        atomic_write_text(directory / ENCODER_FILE, json.dumps(
            {"spec": self.spec, "modality": self.modality, "class": type(self).__name__,
             "version": self.version, "dim": self.dim, "fingerprint": self.fingerprint()}, indent=2))

    def _save_state(self, directory: Path) -> None:
        """Write fitted state (fitted encoders override)."""

    def _load_state(self, directory: Path) -> None:
        """Read what `_save_state` wrote."""


# Options that change speed, not output: left out of names (and, by the encoders, of fingerprints).
RUNTIME_OPTIONS = ("batch_size", "device")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")


def spec_name(spec: str) -> str:
    """Feature-name-safe name of a spec, distinct for distinct models and options:
    "st:/models/e5-large?prefix=query:" -> "st_e5_large_prefix_query",
    "timm:resnet50?checkpoint=/m/r50_ft.pth" -> "timm_resnet50_checkpoint_r50_ft"."""
    kind, arg, options = parse_spec(spec)
    parts = [kind]
    if arg:
        parts.append(_slug(Path(arg.rstrip("/\\")).name or arg))
    for k, v in sorted(options.items()):
        if k in RUNTIME_OPTIONS:
            continue
        if "/" in v or "\\" in v:
            v = Path(v.rstrip("/\\")).stem
        parts.append(f"{_slug(k)}_{_slug(v)}")
    return "_".join(p for p in parts if p)


def parse_spec(spec: str) -> tuple[str, str, dict[str, str]]:
    """ "kind[:argument][?key=value&...]" -> (kind, argument, options).

    Examples: "minilm", "tfidf_svd?dim=128", "st:/models/multilingual-e5-large?prefix=query: ",
    "timm:resnet50?checkpoint=/models/resnet50.safetensors".
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"an encoder spec must be a non-empty string, got {spec!r}")
    body, _, query = spec.strip().partition("?")
    kind, _, arg = body.partition(":")
    options = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
    return kind.strip().lower(), arg.strip(), options


# kind -> "module:Class"; imported lazily so the core never imports torch.
TEXT_ENCODERS = {
    "tfidf_svd": "dupsearch.encoders.text:TfidfSvdEncoder",
    "fasttext": "dupsearch.encoders.text:FastTextEncoder",
    "navec": "dupsearch.encoders.text:NavecEncoder",
    "minilm": "dupsearch.encoders.text:SentenceTransformerEncoder",
    "st": "dupsearch.encoders.text:SentenceTransformerEncoder",
}
IMAGE_ENCODERS = {
    "phash": "dupsearch.encoders.image:PerceptualHashEncoder",
    "dhash": "dupsearch.encoders.image:PerceptualHashEncoder",
    "whash": "dupsearch.encoders.image:PerceptualHashEncoder",
    "colorhist": "dupsearch.encoders.image:ColorHistogramEncoder",
    "timm": "dupsearch.encoders.image:TimmImageEncoder",
    "open_clip": "dupsearch.encoders.image:OpenClipImageEncoder",
    "clip_st": "dupsearch.encoders.image:SentenceTransformerImageEncoder",
}


def _class_for(spec: str, modality: str):
    import importlib
    kind, _, _ = parse_spec(spec)
    table = TEXT_ENCODERS if modality == "text" else IMAGE_ENCODERS
    if kind not in table:
        raise ValueError(f"unknown {modality} encoder {kind!r} in spec {spec!r}; known: {sorted(table)}")
    module, cls = table[kind].split(":")
    return getattr(importlib.import_module(module), cls)


def make_encoder(spec: str, modality: str) -> Encoder:
    """Build an encoder from its spec (each class parses its own argument and options)."""
    return _class_for(spec, modality).from_spec(spec)


def load_encoder(directory: str | os.PathLike) -> Encoder:
    directory = Path(directory)
    meta = json.loads((directory / ENCODER_FILE).read_text())
    enc = make_encoder(meta["spec"], meta["modality"])
    enc._load_state(directory)
    if enc.fingerprint() != meta["fingerprint"]:
        import warnings
        warnings.warn(f"encoder {meta['spec']!r} loaded from {directory} differs from the one the model "
                      f"was trained with (fingerprint {enc.fingerprint()} vs {meta['fingerprint']}): "
                      f"predictions may differ", stacklevel=2)
    return enc


# --------------------------------------------------------------------------- cache

def content_key(item: Any, modality: str = "text") -> bytes:
    """20-byte content hash: the UTF-8 text, the bytes of an image file (an image given by its
    path), or a PIL image's pixels. Keys by content, so a renamed photo is still a cache hit."""
    h = hashlib.sha1()
    if isinstance(item, str) and modality == "text":
        h.update(b"t")
        h.update(item.encode("utf-8"))
    elif isinstance(item, (str, os.PathLike)):
        h.update(b"f")
        try:
            h.update(Path(item).read_bytes())
        except OSError as exc:
            raise DataError(f"cannot read image: {exc.strerror or exc}", path=str(item)) from None
    elif hasattr(item, "tobytes") and hasattr(item, "mode"):  # PIL image
        h.update(f"i{item.mode}{item.size}".encode())
        h.update(item.tobytes())
    else:
        raise TypeError(f"cannot key a {type(item).__name__} for the embedding cache")
    return h.digest()


def default_cache_dir() -> Path | None:
    """$DUPSEARCH_CACHE_DIR (empty or 'off' disables), else ~/.cache/dupsearch."""
    env = os.environ.get("DUPSEARCH_CACHE_DIR")
    if env is not None:
        return None if env.strip().lower() in ("", "off", "none", "0") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dupsearch"


class EmbeddingCache:
    """Embeddings on disk, keyed by (encoder fingerprint, content hash).

    Each write adds one shard file (atomic, uniquely named), so several processes can share a
    cache; `compact` folds the shards of an encoder into one. ``root=None`` keeps the entries in
    memory only (one process, e.g. when the user turned the disk cache off).
    """

    def __init__(self, root: str | os.PathLike | None):
        self.root = None if root is None else Path(root) / "embeddings"
        self._index: dict[str, tuple[dict[bytes, int], np.ndarray, set[str]]] = {}
        self.hits = 0
        self.misses = 0

    def _dir(self, fingerprint: str) -> Path:
        return self.root / fingerprint

    def _load(self, fingerprint: str, dim: int):
        index, matrix, seen = self._index.get(fingerprint, ({}, np.zeros((0, dim), np.float32), set()))
        d = None if self.root is None else self._dir(fingerprint)
        new = sorted(p for p in d.glob("shard-*.npz") if p.name not in seen) if d and d.is_dir() else []
        parts = [matrix]
        for p in new:
            try:
                with np.load(p) as z:
                    keys, emb = z["keys"], z["emb"]
            except (OSError, ValueError, KeyError):
                continue  # a shard another process is replacing right now; it is read next time
            seen.add(p.name)
            if emb.shape[1:] != (dim,):
                continue
            base = sum(len(x) for x in parts)
            raw = keys.tobytes()  # once per shard, not once per key
            for i in range(len(keys)):
                index.setdefault(raw[20 * i:20 * i + 20], base + i)
            parts.append(emb.astype(np.float32, copy=False))
        if len(parts) > 1:
            matrix = np.concatenate(parts)
        self._index[fingerprint] = (index, matrix, seen)
        return index, matrix

    def get(self, fingerprint: str, dim: int, keys: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """(rows, found mask): rows of the keys found; zeros where not."""
        index, matrix = self._load(fingerprint, dim)
        pos = np.fromiter((index.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
        found = pos >= 0
        out = np.zeros((len(keys), dim), np.float32)
        out[found] = matrix[pos[found]]
        return out, found

    def put(self, fingerprint: str, keys: list[bytes], emb: np.ndarray) -> None:
        if not len(keys):
            return
        if self.root is None:
            index, matrix = self._load(fingerprint, emb.shape[1])
            base = len(matrix)
            for i, k in enumerate(keys):
                index.setdefault(k, base + i)
            self._index[fingerprint] = (index, np.concatenate([matrix, emb.astype(np.float32)]), set())
            return
        d = self._dir(fingerprint)
        d.mkdir(parents=True, exist_ok=True)
        key_arr = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 20)
        atomic_savez(d / f"shard-{uuid.uuid4().hex}.npz", keys=key_arr, emb=emb.astype(np.float32))

    def compact(self, fingerprint: str, dim: int) -> None:
        if self.root is None:
            return
        index, matrix = self._load(fingerprint, dim)
        d = self._dir(fingerprint)
        old = list(d.glob("shard-*.npz"))
        if len(old) <= 1:
            return
        keys = sorted(index, key=index.get)
        self.put(fingerprint, keys, matrix[[index[k] for k in keys]])
        for p in old:
            p.unlink(missing_ok=True)
        self._index.pop(fingerprint, None)


def encode_cached(encoder: Encoder, items: Sequence[Any], cache: EmbeddingCache | None = None,
                  batch_size: int = 256, progress: bool = False) -> np.ndarray:
    """Encode `items`, each distinct content once, reusing and filling the on-disk cache."""
    n = len(items)
    if n == 0:
        return np.zeros((0, encoder.dim), np.float32)
    keys = [content_key(x, encoder.modality) for x in items]
    first: dict[bytes, int] = {}
    for i, k in enumerate(keys):
        first.setdefault(k, i)
    uniq_keys = list(first)
    uniq_items = [items[first[k]] for k in uniq_keys]
    fp = encoder.fingerprint()
    if cache is not None:
        emb, found = cache.get(fp, encoder.dim, uniq_keys)
    else:
        emb, found = np.zeros((len(uniq_keys), encoder.dim), np.float32), np.zeros(len(uniq_keys), bool)
    todo = np.flatnonzero(~found)
    if cache is not None:
        cache.hits += int(found.sum())
        cache.misses += len(todo)
    if len(todo):
        starts = range(0, len(todo), batch_size)
        if progress and len(todo) > batch_size:
            from rich.progress import track
            starts = track(starts, description=f"encoding {len(todo):,} items with {encoder.name}")
        for s in starts:
            idx = todo[s:s + batch_size]
            out = np.asarray(encoder.encode([uniq_items[i] for i in idx]), dtype=np.float32)
            if out.shape != (len(idx), encoder.dim):
                raise RuntimeError(f"encoder {encoder.spec!r} returned shape {out.shape}, "
                                   f"expected ({len(idx)}, {encoder.dim})")
            emb[idx] = out
        if cache is not None:
            cache.put(fp, [uniq_keys[i] for i in todo], emb[todo])
    pos = {k: i for i, k in enumerate(uniq_keys)}
    return emb[[pos[k] for k in keys]]
