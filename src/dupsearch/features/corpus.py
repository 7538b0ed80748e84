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

from dupsearch.features.base import encode_sides, rowwise_dot, safe_div, sides, symmetric
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

    def doc_weights(self, texts) -> sp.csr_matrix:
        """Per-term BM25 weight of each text seen as a document."""
        return self.weights_from_counts(self.vectorizer.transform(texts))

    def weights_from_counts(self, tf: sp.spmatrix) -> sp.csr_matrix:
        tf = sp.csr_matrix(tf, dtype=np.float32)
        dl = np.asarray(tf.sum(axis=1)).ravel()
        norm = self.k1 * (1 - self.b + self.b * dl / self.avgdl_)
        rows = np.repeat(np.arange(tf.shape[0]), np.diff(tf.indptr))
        data = tf.data * (self.k1 + 1) / (tf.data + norm[rows]) * self.idf_[tf.indices]
        return sp.csr_matrix((data, tf.indices, tf.indptr), shape=tf.shape)

    def query_terms(self, texts) -> sp.csr_matrix:
        q = sp.csr_matrix(self.vectorizer.transform(texts), dtype=np.float32)
        q.data[:] = 1.0
        return q


class CorpusStats:
    """Fitted TF-IDF (word, char) and BM25 per text field."""

    def __init__(self, fields=FIELDS):
        self.fields = tuple(fields)

    def fit(self, prepared: pd.DataFrame) -> "CorpusStats":
        self.word_, self.char_, self.bm25_ = {}, {}, {}
        for f in self.fields:
            texts = prepared[f].astype(str).drop_duplicates().tolist()
            texts = [t for t in texts if t] or [""]
            if not any(texts):
                continue  # field empty everywhere (e.g. no descriptions): no features for it
            self.word_[f] = TfidfVectorizer(analyzer=WordNgrams(), sublinear_tf=True,
                                            dtype=np.float32).fit(texts)
            if f in CHAR_FIELDS:
                self.char_[f] = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), lowercase=False,
                                                sublinear_tf=True, dtype=np.float32).fit(_cut(texts))
            self.bm25_[f] = BM25().fit(texts)
        return self

    def transform(self, batch: pd.DataFrame) -> pd.DataFrame:
        out: dict[str, np.ndarray] = {}
        for f in self.fields:
            if f not in self.word_:
                continue
            a, b = sides(batch, f)
            empty = np.array([not x or not y for x, y in zip(a, b)])
            A, B = encode_sides(a, b, self.word_[f].transform)
            out[f"corpus.{f}.tfidf_word_cosine"] = np.where(empty, np.nan, rowwise_dot(A, B))
            if f in self.char_:
                A, B = encode_sides(a, b, lambda u, v=self.char_[f]: v.transform(_cut(u)))
                out[f"corpus.{f}.tfidf_char_cosine"] = np.where(empty, np.nan, rowwise_dot(A, B))
            bm = self.bm25_[f]
            # One count matrix per distinct text gives both the BM25 document weights and
            # the query term sets.
            uniq, inv = np.unique(np.concatenate([a, b]).astype(str), return_inverse=True)
            tf = sp.csr_matrix(bm.vectorizer.transform(uniq), dtype=np.float32)
            D = bm.weights_from_counts(tf)
            Q = tf.copy()
            Q.data[:] = 1.0
            n = len(a)
            Da, Db, Qa, Qb = D[inv[:n]], D[inv[n:]], Q[inv[:n]], Q[inv[n:]]
            ab, ba = rowwise_dot(Qb, Da), rowwise_dot(Qa, Db)  # B's words against A, and back
            # Normalized by each query's score against itself, so long texts do not dominate.
            self_a, self_b = rowwise_dot(Qa, Da), rowwise_dot(Qb, Db)
            for k, v in symmetric(f"corpus.{f}.bm25", ab, ba).items():
                out[k] = np.where(empty, np.nan, v)
            for k, v in symmetric(f"corpus.{f}.bm25_norm", safe_div(ab, self_b), safe_div(ba, self_a)).items():
                out[k] = np.where(empty, np.nan, v)
            # IDF mass of the words one listing has and the other lacks: a learned,
            # general form of anti-words ("professional" vs "standard", "mac" vs "win").
            idf = bm.idf_
            wa, wb = Qa @ idf, Qb @ idf
            shared = Qa.multiply(Qb) @ idf
            out[f"corpus.{f}.idf_jaccard"] = np.where(empty, np.nan, safe_div(shared, wa + wb - shared))
            for k, v in symmetric(f"corpus.{f}.idf_unmatched", wa - shared, wb - shared).items():
                out[k] = np.where(empty, np.nan, v)
        return pd.DataFrame(out, index=None)
