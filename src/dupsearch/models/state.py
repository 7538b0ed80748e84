"""Fitted objects as plain files: a JSON tree and one ``.npz`` of arrays (``allow_pickle=False``).

``save_state(obj, path_stem)`` writes ``<stem>.json`` and ``<stem>.npz``; ``load_state`` reads them
back. Loading runs no code from the files: the JSON can only name classes from ``ALLOWED`` (fitted
dupsearch objects and the scikit-learn vectorizers they hold), which are rebuilt by setting their
attributes, never by calling anything the file chooses. What the tree may hold: None, bools,
numbers (NaN and infinities included), strings, lists, tuples, sets, dicts (any of these as keys),
numpy arrays and scalars, dtypes, CSR matrices, compiled regular expressions, objects of an
allowed class and the few module-level functions in ``ALLOWED_FUNCTIONS``. Anything else fails at save time, naming where it sits.
"""
from __future__ import annotations

import importlib
import io
import json
import math
import re
from pathlib import Path

import numpy as np

from dupsearch.errors import DupsearchError

# Classes whose instances a saved state may rebuild ("module:qualname").
ALLOWED = frozenset({
    "dupsearch.features.category:CategoryFamily",
    "dupsearch.features.strings:StringFamily",
    "dupsearch.features.sets:SetFamily",
    "dupsearch.features.antiwords:AntiwordFamily",
    "dupsearch.features.lengths:LengthFamily",
    "dupsearch.features.price:PriceFamily",
    "dupsearch.features.scripts:ScriptFamily",
    "dupsearch.features.corpus:CorpusFamily",
    "dupsearch.features.corpus:HashedVocabulary",
    "dupsearch.features.corpus:BM25",
    "dupsearch.features.corpus:WordNgrams",
    "dupsearch.features.corpus:Words",
    "dupsearch.features.attributes:AttributeFamily",
    "dupsearch.features.embeddings:TextEmbeddingFamily",
    "dupsearch.features.embeddings:ImageFamily",
    "sklearn.feature_extraction.text:TfidfVectorizer",
    "sklearn.feature_extraction.text:CountVectorizer",
    "sklearn.feature_extraction.text:TfidfTransformer",
    "sklearn.decomposition._truncated_svd:TruncatedSVD",
})


# Module-level functions a saved state may refer to (analyzers of fitted vectorizers).
ALLOWED_FUNCTIONS = frozenset({
    "dupsearch.encoders.text:word_ngrams",
    "dupsearch.encoders.text:char_ngrams",
})


class StateError(DupsearchError):
    """A fitted state that cannot be saved as plain files, or a saved one that is not valid."""


def _name(cls) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


class _Encoder:
    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def array(self, a: np.ndarray, where: str) -> dict:
        key = f"a{len(self.arrays)}"
        if a.dtype == object:
            if not all(isinstance(x, str) for x in a.ravel()):
                raise StateError(f"{where}: an object array of other things than strings cannot be saved")
            self.arrays[key] = a.astype(str) if a.size else np.zeros(a.shape, "<U1")
            return {"__array__": key, "object": True}
        if a.dtype.kind not in "biufcUSM":
            raise StateError(f"{where}: arrays of dtype {a.dtype} cannot be saved")
        self.arrays[key] = np.ascontiguousarray(a)
        return {"__array__": key}

    def encode(self, x, where: str = "state"):
        if x is None or isinstance(x, (bool, str)):
            return x
        if isinstance(x, (int, np.integer)) and not isinstance(x, np.bool_):
            return int(x)
        if isinstance(x, (float, np.floating)):
            x = float(x)
            return x if math.isfinite(x) else {"__float__": repr(x)}
        if isinstance(x, np.bool_):
            return bool(x)
        if isinstance(x, np.ndarray):
            return self.array(x, where)
        if isinstance(x, list):
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(x)]
        if isinstance(x, tuple):
            return {"__tuple__": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(x)]}
        if isinstance(x, (set, frozenset)):
            return {"__set__": [self.encode(v, where) for v in sorted(x, key=repr)]}
        if isinstance(x, dict):
            return {"__dict__": [[self.encode(k, f"{where} key"), self.encode(v, f"{where}[{k!r}]")]
                                 for k, v in x.items()]}
        if isinstance(x, np.dtype) or (isinstance(x, type) and issubclass(x, np.generic)):
            return {"__dtype__": np.dtype(x).str}
        if isinstance(x, re.Pattern):
            return {"__regex__": x.pattern, "flags": int(x.flags)}
        import scipy.sparse as sp
        if sp.issparse(x):
            m = sp.csr_matrix(x)
            return {"__csr__": {"data": self.array(np.asarray(m.data), where), "indices": self.array(np.asarray(m.indices), where),
                                "indptr": self.array(np.asarray(m.indptr), where), "shape": list(m.shape)}}
        if callable(x) and not isinstance(x, type) and hasattr(x, "__qualname__") and _name(x) in ALLOWED_FUNCTIONS:
            return {"__function__": _name(x)}
        name = _name(type(x))
        if name in ALLOWED:
            state = x.__getstate__() if hasattr(type(x), "__getstate__") and type(x).__getstate__ is not object.__getstate__ \
                else dict(vars(x))
            if not isinstance(state, dict):
                raise StateError(f"{where}: {name} has a state that is not a dict")
            return {"__object__": name, "state": {k: self.encode(v, f"{where}.{k}") for k, v in state.items()}}
        raise StateError(f"{where}: a {type(x).__module__}.{type(x).__qualname__} cannot be saved as "
                         f"plain files (not one of dupsearch's allowed classes)")


class _Decoder:
    def __init__(self, arrays, what: str):
        self.arrays, self.what = arrays, what

    def fail(self, msg: str):
        raise StateError(f"{self.what}: {msg}")

    def array(self, ref) -> np.ndarray:
        key = ref.get("__array__") if isinstance(ref, dict) else None
        if key not in self.arrays:
            self.fail(f"names an array {key!r} the .npz does not hold")
        a = self.arrays[key]
        return a.astype(object) if ref.get("object") else a

    def decode(self, x):
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        if isinstance(x, list):
            return [self.decode(v) for v in x]
        if not isinstance(x, dict) or len([k for k in x if k.startswith("__")]) != 1:
            self.fail("is not a dupsearch state file (an unknown JSON node)")
        if "__array__" in x:
            return self.array(x)
        if "__float__" in x:
            if x["__float__"] not in ("nan", "inf", "-inf"):
                self.fail(f"an unknown float {x['__float__']!r}")
            return float(x["__float__"])
        if "__tuple__" in x:
            return tuple(self.decode(v) for v in x["__tuple__"])
        if "__set__" in x:
            return {self.decode(v) for v in x["__set__"]}
        if "__dict__" in x:
            return {_hashable(self.decode(k)): self.decode(v) for k, v in x["__dict__"]}
        if "__dtype__" in x:
            return np.dtype(str(x["__dtype__"])).type
        if "__regex__" in x:
            return re.compile(str(x["__regex__"]), int(x.get("flags", 0)))
        if "__csr__" in x:
            import scipy.sparse as sp
            c = x["__csr__"]
            return sp.csr_matrix((self.array(c["data"]), self.array(c["indices"]), self.array(c["indptr"])),
                                 shape=tuple(c["shape"]))
        if "__function__" in x:
            name = x["__function__"]
            if name not in ALLOWED_FUNCTIONS:
                self.fail(f"names the function {name!r}, which dupsearch does not load")
            module, qual = name.split(":")
            return getattr(importlib.import_module(module), qual)
        if "__object__" in x:
            name = x["__object__"]
            if name not in ALLOWED:  # the only classes a state file may name
                self.fail(f"names the class {name!r}, which dupsearch does not load")
            module, qual = name.split(":")
            cls = getattr(importlib.import_module(module), qual)
            obj = cls.__new__(cls)
            obj.__dict__.update({k: self.decode(v) for k, v in x["state"].items()})
            return obj
        self.fail("is not a dupsearch state file (an unknown JSON node)")


def _hashable(k):
    return tuple(_hashable(v) for v in k) if isinstance(k, (list, tuple)) else k


def save_state(obj, path_stem: str | Path) -> list[Path]:
    """Write ``obj`` as ``<stem>.json`` and ``<stem>.npz`` (atomically each); returns both paths."""
    from dupsearch.atomic import atomic_write, atomic_write_text
    path_stem = Path(path_stem)
    enc = _Encoder()
    tree = enc.encode(obj)
    js = path_stem.with_name(path_stem.name + ".json")
    npz = path_stem.with_name(path_stem.name + ".npz")
    buf = io.BytesIO()
    np.savez_compressed(buf, **enc.arrays)  # vocabularies and IDF: a smaller model folder
    atomic_write(npz, lambda fh: fh.write(buf.getvalue()))
    atomic_write_text(js, json.dumps({"format": 1, "state": tree}, ensure_ascii=False))
    return [js, npz]


def load_state(path_stem: str | Path):
    """Read what ``save_state`` wrote; a file that is not such a state is one StateError."""
    path_stem = Path(path_stem)
    js = path_stem.with_name(path_stem.name + ".json")
    npz = path_stem.with_name(path_stem.name + ".npz")
    try:
        doc = json.loads(js.read_text(encoding="utf-8"))
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError as e:
        raise StateError(f"{e.filename}: missing") from None
    except (ValueError, OSError, EOFError) as e:  # truncated, not JSON, not an .npz, pickled arrays
        raise StateError(f"{js.name} / {npz.name} in {js.parent}: not a readable state ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != 1:
        raise StateError(f"{js}: not a dupsearch state file (format 1)")
    return _Decoder(arrays, str(js)).decode(doc["state"])
