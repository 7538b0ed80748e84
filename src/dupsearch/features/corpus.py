"""Corpus-weighted similarities (seed items 2 and 8): TF-IDF cosine (word and
character) and BM25 of one side's text against the other.

The statistics (vocabulary, IDF, average document length) are fitted on the
training listings only and saved with the model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from dupsearch.features.base import hash_strings, intersect, ngram_hashes, pair_dot, pair_sum, safe_div, symmetric
from dupsearch.features.family import FieldFamily
from dupsearch.text.normalize import tokenize

FIELDS = ("title", "description", "text", "attrs", "all")
# Character n-grams of the description alone add little beside title+description ("text").
CHAR_FIELDS = ("title", "text", "attrs", "all")
CHAR_CUT = 1000  # characters of a text used for char n-grams; bounds memory on long ads


class WordNgrams:
    """Tokens and token bigrams (picklable analyzer)."""

    def __call__(self, text: str) -> list[str]:
        t = tokenize(text)
        return t + [f"{x} {y}" for x, y in zip(t, t[1:])]


class Words:
    def __call__(self, text: str) -> list[str]:
        return tokenize(text)


def _cut(texts):
    return [t[:CHAR_CUT] for t in texts]


class HashedVocabulary:
    """A fitted vectorizer's vocabulary keyed by the same rolling hashes the store computes
    (``features.base.ngram_hashes``), so counting a listing's terms is one hash-table lookup over
    all listings at once instead of a Python analyzer per text."""

    def __init__(self, hashes: np.ndarray, cols: np.ndarray, size: int):
        self.hashes, self.cols, self.size = hashes, cols.astype(np.int64), size
        self._index = None

    def __getstate__(self):
        return {**self.__dict__, "_index": None}

    @classmethod
    def of_words(cls, vocabulary: dict[str, int]) -> "HashedVocabulary":
        """Word unigrams ("tok") and bigrams ("tok tok") over stable token hashes."""
        terms = list(vocabulary)
        parts = [t.split(" ") for t in terms]
        return cls._build(terms, vocabulary, parts, lambda ps: hash_strings(np.array(ps, dtype=object)))

    @classmethod
    def of_chars(cls, vocabulary: dict[str, int]) -> "HashedVocabulary":
        """Character n-grams over code points."""
        terms = list(vocabulary)
        return cls._build(terms, vocabulary, [list(t) for t in terms],
                          lambda cs: np.frombuffer("".join(cs).encode("utf-32-le"), np.uint32).astype(np.uint64))

    @classmethod
    def _build(cls, terms, vocabulary, parts, symbols) -> "HashedVocabulary":
        hashes, cols = [], []
        for k in sorted({len(p) for p in parts}):
            idx = [i for i, p in enumerate(parts) if len(p) == k]
            sym = symbols([x for i in idx for x in parts[i]])
            _, h = ngram_hashes(sym, np.full(len(idx), k, np.int64), k)
            hashes.append(h)
            cols.append(np.array([vocabulary[terms[i]] for i in idx], np.int64))
        if not hashes:
            return cls(np.zeros(0, np.uint64), np.zeros(0, np.int64), len(vocabulary))
        return cls(np.concatenate(hashes), np.concatenate(cols), len(vocabulary))

    def counts(self, doc: np.ndarray, h: np.ndarray, n_docs: int) -> sp.csr_matrix:
        """Term counts (CSR, sorted indices) of documents from their n-gram hashes; terms
        outside the vocabulary are dropped, as a fitted vectorizer does."""
        if getattr(self, "_index", None) is None:
            self._index = pd.Index(self.hashes)  # a hash table: faster than searchsorted here
        from dupsearch.features.kernels import grouped_rows
        pos = self._index.get_indexer(h) if len(h) else np.zeros(0, np.int64)
        hit = pos >= 0
        # the repeated (document, term) entries summed: the counts, each row's terms in order
        indptr, cols, counts = grouped_rows(doc[hit], self.cols[pos[hit]], n_docs, counted=True)
        return sp.csr_matrix((counts, cols.astype(np.int32), indptr), shape=(n_docs, self.size))


def tfidf_rows(counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    """What a fitted ``TfidfVectorizer(sublinear_tf=True)`` gives for these term counts:
    (1 + log tf) * idf, each row L2-normalised."""
    X = counts.copy()
    X.data = (np.log(X.data) + 1) * idf[X.indices]
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    norm = np.sqrt(np.bincount(rows, X.data * X.data, minlength=X.shape[0]))
    X.data /= np.where(norm > 0, norm, 1)[rows]
    return X.astype(np.float32)


def char_wb_hashes(texts, ngram_range=(2, 4)) -> tuple[np.ndarray, np.ndarray]:
    """(document, hash) of the ``char_wb`` n-grams of each text (every n-gram of each word
    padded with one space each side, for n in the range up to the padded word's length), as
    scikit-learn's analyzer makes them."""
    words = [t.split() for t in texts]
    n_words = np.fromiter(map(len, words), np.int64, count=len(words))
    flat = [w for ws in words for w in ws]
    word_doc = np.repeat(np.arange(len(texts), dtype=np.int64), n_words)
    lengths = np.fromiter(map(len, flat), np.int64, count=len(flat)) + 2
    codes = np.frombuffer("".join(f" {w} " for w in flat).encode("utf-32-le"), np.uint32).astype(np.uint64)
    docs, hashes = [], []
    for n in range(ngram_range[0], ngram_range[1] + 1):
        w, h = ngram_hashes(codes, lengths, n)
        docs.append(word_doc[w])
        hashes.append(h)
    return np.concatenate(docs), np.concatenate(hashes)


class BM25:
    """Okapi BM25 with a fitted vocabulary; scores are row-wise sparse products."""

    def __init__(self, k1: float = 1.2, b: float = 0.75):
        self.k1, self.b = k1, b

    def fit(self, texts) -> "BM25":
        self.vectorizer = CountVectorizer(analyzer=Words(), dtype=np.float32)
        tf = self.vectorizer.fit_transform(texts)
        n_docs = tf.shape[0]
        df = np.bincount(tf.indices, minlength=tf.shape[1])
        self.idf_ = np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        self.avgdl_ = float(tf.sum() / max(n_docs, 1)) or 1.0
        return self

    def weights_from_counts(self, tf: sp.spmatrix) -> sp.csr_matrix:
        tf = sp.csr_matrix(tf, dtype=np.float32)
        dl = np.asarray(tf.sum(axis=1)).ravel()
        norm = self.k1 * (1 - self.b + self.b * dl / self.avgdl_)
        rows = np.repeat(np.arange(tf.shape[0]), np.diff(tf.indptr))
        data = tf.data * (self.k1 + 1) / (tf.data + norm[rows]) * self.idf_[tf.indices]
        return sp.csr_matrix((data, tf.indices, tf.indptr), shape=tf.shape)



class CorpusFamily(FieldFamily):
    """Fitted TF-IDF (word, char) and BM25 per text field.

    Per listing (once): the TF-IDF rows (L2-normalised), the BM25 document weights, their sum
    (the listing's score against itself) and the IDF mass of its words. Per pair: row-wise dot
    products, and one sparse intersection of the BM25 rows for everything else."""

    name = "corpus"
    FIELDS = FIELDS

    def __init__(self, fields=None, char_fields=CHAR_FIELDS):
        super().__init__(fields)
        self.char_fields = tuple(char_fields)

    def settings(self) -> dict:
        return {**super().settings(), "char_fields": list(self.char_fields)}

    def _fit(self, prepared: pd.DataFrame) -> None:
        self.word_, self.char_, self.bm25_ = {}, {}, {}
        for f in self.fields:
            texts = prepared[f].astype(str).drop_duplicates().tolist()
            texts = [t for t in texts if t] or [""]
            if not any(texts):
                continue  # field empty everywhere (e.g. no descriptions): no features for it
            self.word_[f] = TfidfVectorizer(analyzer=WordNgrams(), sublinear_tf=True,
                                            dtype=np.float32).fit(texts)
            if f in self.char_fields:
                self.char_[f] = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), lowercase=False,
                                                sublinear_tf=True, dtype=np.float32).fit(_cut(texts))
            self.bm25_[f] = BM25().fit(texts)
        self._vocabularies()

    def _vocabularies(self) -> None:
        self.word_vocab_ = {f: HashedVocabulary.of_words(v.vocabulary_) for f, v in self.word_.items()}
        self.char_vocab_ = {f: HashedVocabulary.of_chars(v.vocabulary_) for f, v in self.char_.items()}
        self.bm25_vocab_ = {f: HashedVocabulary.of_words(b.vectorizer.vocabulary_) for f, b in self.bm25_.items()}

    def listing_state(self, builder):
        out = {}
        n = builder.n
        for f in self.word_:
            sym, lengths = builder.token_hashes(f)
            d1, h1 = ngram_hashes(sym, lengths, 1)
            d2, h2 = ngram_hashes(sym, lengths, 2)
            counts = self.word_vocab_[f].counts(np.concatenate([d1, d2]), np.concatenate([h1, h2]), n)
            out[f"corpus.{f}.word"] = tfidf_rows(counts, self.word_[f].idf_)
            if f in self.char_:
                vec = self.char_[f]
                d, h = char_wb_hashes(_cut(builder.texts(f)), vec.ngram_range)
                out[f"corpus.{f}.char"] = tfidf_rows(self.char_vocab_[f].counts(d, h, n), vec.idf_)
            bm = self.bm25_[f]
            D = bm.weights_from_counts(self.bm25_vocab_[f].counts(d1, h1, n))
            D.sort_indices()
            out[f"corpus.{f}.bm25"] = D
            self_score = np.asarray(D.sum(axis=1), dtype=np.float64).ravel()
            # float64 sums: a listing whose words are all shared has exactly 0 unmatched IDF mass
            Q = sp.csr_matrix((np.ones(D.nnz), D.indices, D.indptr), shape=D.shape)
            chars = np.fromiter(map(len, builder.texts(f)), np.float64, count=n)
            out[f"corpus.{f}.stats"] = np.stack([self_score, Q @ bm.idf_.astype(np.float64), chars], axis=1)
        return out

    def _compare(self, store, ia, ib):
        out: dict[str, np.ndarray] = {}
        n = len(ia)
        for f in self.fields:
            if f not in self.word_:
                continue
            si = np.asarray(store[f"corpus.{f}.stats"])  # self score, IDF mass, characters
            empty = (si[ia, 2] == 0) | (si[ib, 2] == 0)
            W = store[f"corpus.{f}.word"]
            out[f"corpus.{f}.tfidf_word_cosine"] = np.where(empty, np.nan, pair_dot(W, W, ia, ib))
            if f in self.char_:
                C = store[f"corpus.{f}.char"]
                out[f"corpus.{f}.tfidf_char_cosine"] = np.where(empty, np.nan, pair_dot(C, C, ia, ib))
            D = store[f"corpus.{f}.bm25"]
            rows, pa, pb = intersect(D, D, ia, ib)
            data, indices = np.asarray(D.data), np.asarray(D.indices)
            ab = pair_sum(rows, data[pa], n)  # B's words scored against A as a document
            ba = pair_sum(rows, data[pb], n)
            shared = pair_sum(rows, self.bm25_[f].idf_[indices[pa]].astype(np.float64), n)
            self_a, self_b, wa, wb = si[ia, 0], si[ib, 0], si[ia, 1], si[ib, 1]
            for k, v in symmetric(f"corpus.{f}.bm25", ab, ba).items():
                out[k] = np.where(empty, np.nan, v)
            # Normalized by each query's score against itself, so long texts do not dominate.
            for k, v in symmetric(f"corpus.{f}.bm25_norm", safe_div(ab, self_b), safe_div(ba, self_a)).items():
                out[k] = np.where(empty, np.nan, v)
            # IDF mass of the words one listing has and the other lacks: a learned,
            # general form of anti-words ("professional" vs "standard", "mac" vs "win").
            out[f"corpus.{f}.idf_jaccard"] = np.where(empty, np.nan, safe_div(shared, wa + wb - shared))
            for k, v in symmetric(f"corpus.{f}.idf_unmatched", wa - shared, wb - shared).items():
                out[k] = np.where(empty, np.nan, v)
        return out
