"""ANN blocking (dupsearch.candidates.ann), the column-key blocker, the union of blockers, blocker
spec strings and the default blockers' recall on the synthetic marketplace."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dupsearch.candidates.ann import ANNBlocker
from dupsearch.candidates.blocking import (
    CategoryBlocker,
    ColumnKeyBlocker,
    ExactKeyBlocker,
    ImageHashBlocker,
    MinHashLSHBlocker,
    blocking_metrics,
    candidate_pairs,
    true_pairs_from_clusters,
    union_candidates,
)
from dupsearch.candidates.specs import default_blocker_specs, make_blocker
from dupsearch.synth import generate_marketplace

SYLLABLES = ["ка", "ро", "ми", "ту", "ле", "на", "во", "ся", "пе", "ду", "ры", "зо", "бе", "ча", "ши",
             "гу", "фе", "жа", "ки", "мо", "ла", "те", "ню", "хо"]
# Cyrillic letter -> Latin look-alike
LOOKALIKE = {"о": "o", "а": "a", "е": "e", "р": "p", "с": "c", "х": "x", "к": "k", "м": "m"}


def _codes_to_pairs(codes: np.ndarray, n: int) -> set[tuple[int, int]]:
    return {(int(c // n), int(c % n)) for c in codes}


def _ids(n: int) -> pd.DataFrame:
    return pd.DataFrame({"item_id": [f"id{i:05d}" for i in range(n)]})


def _clustered_vectors(n: int, dim: int = 24, centers: int = 30, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, dim))
    v = c[rng.integers(0, centers, n)] + 0.35 * rng.normal(size=(n, dim))
    return v.astype(np.float32)


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# ---------------------------------------------------------------------------- 1. planted duplicates

@pytest.fixture(scope="module")
def planted() -> tuple[pd.DataFrame, list[tuple[int, int]]]:
    rng = np.random.default_rng(7)
    vocab = sorted({"".join(rng.choice(SYLLABLES, size=rng.integers(2, 5))) for _ in range(3000)})
    rng.shuffle(vocab)
    words = iter(vocab)
    rows = []
    for i in range(60):  # every listing its own words: no two originals share a word
        title = [next(words) for _ in range(4)]
        desc = [next(words) for _ in range(14)]
        rows.append({"item_id": f"o{i:03d}", "title": " ".join(title), "description": " ".join(desc)})
    planted_pairs = []
    for j in range(10):
        src = rows[j * 5]
        title, desc = src["title"].split(), src["description"].split()
        if j % 2 == 0:  # one description word changed
            desc[rng.integers(len(desc))] = next(words)
        else:  # Latin look-alike letters swapped in
            title = ["".join(LOOKALIKE.get(ch, ch) for ch in w) for w in title]
            desc = ["".join(LOOKALIKE.get(ch, ch) for ch in w) if k % 2 else w for k, w in enumerate(desc)]
            assert title != src["title"].split()
        rows.append({"item_id": f"p{j:03d}", "title": " ".join(title), "description": " ".join(desc)})
        planted_pairs.append((j * 5, 60 + j))
    return pd.DataFrame(rows), planted_pairs


@pytest.mark.parametrize("backend", ["exact", "usearch"])
def test_ann_finds_planted_near_copies(planted, backend):
    listings, planted_pairs = planted
    n, k = len(listings), 3
    blocker = ANNBlocker(k=k, partition=(), backend=backend)
    codes = blocker.pair_codes(listings)
    pairs = _codes_to_pairs(codes, n)
    missing = [p for p in planted_pairs if p not in pairs]
    assert not missing, f"planted pairs not proposed: {missing}"
    assert all(a < b for a, b in pairs)
    # each listing proposes at most k neighbours: never more than n*k pairs, far below all pairs
    assert k * n // 2 <= len(pairs) <= n * k < n * (n - 1) // 2
    assert blocker.report_["partitions_by_backend"] == {backend: 1}
    if backend == "exact":  # deterministic: the item-id frame says the same
        frame = blocker.pairs(listings)
        assert len(frame) == len(pairs)
        assert (frame["item_id_a"] < frame["item_id_b"]).all()
        assert {("o000", "p000"), ("o005", "p001")} <= set(zip(frame["item_id_a"], frame["item_id_b"]))


# ---------------------------------------------------------------------------- 2. backends agree

@pytest.fixture(scope="module")
def clustered():
    n = 1200
    return _ids(n), _clustered_vectors(n)


def test_exact_usearch_faiss_agree(clustered):
    listings, v = clustered
    n, k = len(listings), 5
    found = {}
    for backend in ("exact", "usearch", "faiss"):
        blocker = ANNBlocker(k=k, partition=(), backend=backend, vectors=v, threads=1)
        found[backend] = set(blocker.pair_codes(listings).tolist())
        assert blocker.report_["partitions_by_backend"] == {backend: 1}
        assert blocker.report_["dim"] == v.shape[1]
    exact = found["exact"]
    # brute-force reference for the exact backend
    u = _unit(v)
    S = u @ u.T
    np.fill_diagonal(S, -np.inf)
    nb = np.argsort(-S, axis=1)[:, :k]
    ref = {min(i, j) * n + max(i, j) for i in range(n) for j in nb[i]}
    assert exact == ref
    for backend in ("usearch", "faiss"):
        recall = len(found[backend] & exact) / len(exact)
        print(f"{backend} recall vs exact: {recall:.4f}")
        assert recall >= 0.95, (backend, recall)
        assert len(found[backend]) <= n * k


def test_auto_backend_switches_to_usearch_above_exact_limit(clustered):
    listings, v = clustered
    listings = listings.assign(part=np.where(np.arange(len(listings)) < 1100, "big", "small"))
    blocker = ANNBlocker(k=5, partition=("part",), backend="auto", exact_limit=500, vectors=v)
    blocker.pair_codes(listings)
    assert blocker.report_["partitions_by_backend"] == {"usearch": 1, "exact": 1}
    assert blocker.report_["partitions"] == 2 and blocker.report_["largest_partition"] == 1100
    blocker = ANNBlocker(k=5, partition=(), backend="auto", exact_limit=5000, vectors=v)
    blocker.pair_codes(listings)
    assert blocker.report_["partitions_by_backend"] == {"exact": 1}


# ---------------------------------------------------------------------------- 3. partition

def test_partition_pairs_never_cross_and_empty_values_form_their_own_partition():
    n = 400
    rng = np.random.default_rng(1)
    cat = rng.choice(np.array(["A", "B", "C", "", None], dtype=object), n)
    city = rng.choice(np.array(["msk", "spb"], dtype=object), n)
    listings = _ids(n).assign(category_l1=cat, city=city)
    v = _clustered_vectors(n, seed=2)
    v[1] = v[0]  # identical vectors in different partitions
    listings.loc[0, "category_l1"], listings.loc[1, "category_l1"] = "A", "B"
    listings.loc[[0, 1], "city"] = "msk"
    unpartitioned = _codes_to_pairs(ANNBlocker(k=4, partition=(), backend="exact", vectors=v).pair_codes(listings), n)
    assert (0, 1) in unpartitioned

    blocker = ANNBlocker(k=4, partition=("category_l1", "city"), backend="exact", vectors=v)
    pairs = _codes_to_pairs(blocker.pair_codes(listings), n)
    assert (0, 1) not in pairs
    # None and "" both count as an empty value: those listings are searched together, in a
    # partition of their own (per city), never with a listing that has a category
    key = [("" if pd.isna(c) else c, t) for c, t in zip(listings["category_l1"], listings["city"])]
    assert all(key[a] == key[b] for a, b in pairs)
    empty = {i for i in range(n) if key[i][0] == ""}
    empty_pairs = [(a, b) for a, b in pairs if a in empty]
    assert empty_pairs, "listings with an empty partition value are still blocked"
    c1 = listings["category_l1"]
    assert any(pd.isna(c1[a]) != pd.isna(c1[b]) for a, b in empty_pairs)  # missing meets ""
    # every listing proposes neighbours: all listings appear in some pair
    assert {x for p in pairs for x in p} == set(range(n))
    assert blocker.report_["partitions"] == len(set(key))


def test_listings_without_vector_are_not_blocked():
    n = 50
    v = _clustered_vectors(n, seed=3)
    v[[3, 7]] = 0.0
    blocker = ANNBlocker(k=3, partition=(), backend="exact", vectors=v)
    pairs = _codes_to_pairs(blocker.pair_codes(_ids(n)), n)
    assert not {x for p in pairs for x in p} & {3, 7}
    assert blocker.report_["listings_without_vector"] == 2


# ---------------------------------------------------------------------------- 4. exclude, min_similarity

@pytest.fixture(scope="module")
def sellers():
    """Listings whose nearest neighbours are mostly their own seller's other listings."""
    n = 600
    rng = np.random.default_rng(4)
    seller = np.arange(n) // 3  # 3 listings per seller, nearly the same vector
    base = rng.normal(size=(n // 3, 16))
    v = (base[seller] + 0.05 * rng.normal(size=(n, 16))).astype(np.float32)
    seller_id = np.array([f"s{s}" for s in seller], dtype=object)
    seller_id[-30:] = ""  # blank sellers: not excluded from each other
    seller_id[-15:] = None
    return _ids(n).assign(seller_id=seller_id), v


def _reference_excluded_knn(v, seller_id, k):
    n = len(v)
    u = _unit(v)
    S = u @ u.T
    np.fill_diagonal(S, -np.inf)
    s = np.array(["" if pd.isna(x) else x for x in seller_id], dtype=object)
    same = (s[:, None] == s[None, :]) & (s[:, None] != "")
    S[same] = -np.inf
    nb = np.argsort(-S, axis=1)[:, :k]
    return {(min(i, int(j)), max(i, int(j))) for i in range(n) for j in nb[i] if np.isfinite(S[i, j])}


def test_exclude_no_pair_shares_a_seller(sellers):
    listings, v = sellers
    n, k = len(listings), 2
    s = np.array(["" if pd.isna(x) else x for x in listings["seller_id"]], dtype=object)
    plain = _codes_to_pairs(ANNBlocker(k=k, partition=(), backend="exact", vectors=v).pair_codes(listings), n)
    assert sum(bool(s[a]) and s[a] == s[b] for a, b in plain) > n // 2  # without exclude: mostly same-seller

    def shares(a, b):
        return bool(s[a]) and s[a] == s[b]

    exact = _codes_to_pairs(ANNBlocker(k=k, partition=(), backend="exact", vectors=v,
                                       exclude=("seller_id",)).pair_codes(listings), n)
    assert not [p for p in exact if shares(*p)]
    # excluded neighbours do not take up the k places: exactly the top-k among other sellers
    assert exact == _reference_excluded_knn(v, s, k)
    # blank sellers are not a seller: two blank-seller listings may pair
    blank = {i for i in range(n) if not s[i]}
    assert any(a in blank and b in blank for a, b in exact)

    for backend in ("usearch", "faiss"):
        hnsw = _codes_to_pairs(ANNBlocker(k=k, partition=(), backend=backend, vectors=v, threads=1,
                                          exclude="seller_id").pair_codes(listings), n)
        assert not [p for p in hnsw if shares(*p)], backend
        recall = len(hnsw & exact) / len(exact)
        assert recall >= 0.9, (backend, recall)


def test_min_similarity_filters(clustered):
    listings, v = clustered
    n = len(listings)
    u = _unit(v)
    full = ANNBlocker(k=8, partition=(), backend="exact", vectors=v).pair_codes(listings)
    cos_full = np.einsum("ij,ij->i", u[full // n], u[full % n])
    thr = float(np.quantile(cos_full, 0.5))
    filt = ANNBlocker(k=8, partition=(), backend="exact", vectors=v, min_similarity=thr).pair_codes(listings)
    assert 0 < len(filt) < len(full)
    cos = np.einsum("ij,ij->i", u[filt // n], u[filt % n])
    assert cos.min() >= thr - 1e-5
    assert set(filt.tolist()) <= set(full.tolist())
    dropped = np.setdiff1d(full, filt)
    assert np.einsum("ij,ij->i", u[dropped // n], u[dropped % n]).max() < thr + 1e-5
    hnsw = ANNBlocker(k=8, partition=(), backend="usearch", vectors=v, min_similarity=thr).pair_codes(listings)
    assert np.einsum("ij,ij->i", u[hnsw // n], u[hnsw % n]).min() >= thr - 1e-4


# ---------------------------------------------------------------------------- 5. keep_ranks

@pytest.mark.parametrize("exclude", [(), ("seller_id",)])
def test_keep_ranks_match_smaller_k(sellers, exclude):
    listings, v = sellers
    k = 6
    blocker = ANNBlocker(k=k, partition=(), backend="exact", vectors=v, exclude=exclude)
    blocker.keep_ranks = True
    codes = blocker.pair_codes(listings)
    ranks = blocker.pair_ranks_
    assert len(ranks) == len(codes)
    assert ranks.min() == 0 and ranks.max() == k - 1
    for k2 in range(1, k):
        small = ANNBlocker(k=k2, partition=(), backend="exact", vectors=v, exclude=exclude).pair_codes(listings)
        assert set(codes[ranks < k2].tolist()) == set(small.tolist()), k2


# ---------------------------------------------------------------------------- 6. ColumnKeyBlocker

def test_column_key_blocker_matches_brute_force():
    n = 300
    rng = np.random.default_rng(5)
    seller = rng.choice(np.array([f"s{i}" for i in range(60)] + ["", " ", None], dtype=object), n)
    cat = rng.choice(np.array(["x", "y", "", None], dtype=object), n)
    # one big seller in one category: a block above max_block
    seller[:12], cat[:12] = "big", "x"
    listings = _ids(n).assign(seller_id=seller, category_l2=cat)
    max_block = 8
    blocker = ColumnKeyBlocker(["seller_id", "category_l2"], max_block=max_block)
    assert blocker.name == "seller_id+category_l2"
    pairs = _codes_to_pairs(blocker.pair_codes(listings), n)

    def norm(x):
        return "" if pd.isna(x) else str(x).strip()

    keys = [(norm(s), norm(c)) for s, c in zip(seller, cat)]
    groups: dict = {}
    for i, key in enumerate(keys):
        if key[0] and key[1]:
            groups.setdefault(key, []).append(i)
    ref = {(a, b) for g in groups.values() if len(g) <= max_block for a in g for b in g if a < b}
    assert pairs == ref
    assert len(ref) > 20
    assert not {x for p in pairs for x in p} & set(range(12))
    big = [g for g in groups.values() if len(g) > max_block]
    assert blocker.report_["skipped_blocks"] == len(big) >= 1
    assert blocker.report_["skipped_block_rows"] == sum(map(len, big))
    assert blocker.report_["largest_block"] == max(map(len, groups.values()))
    # blank values (None, "", whitespace) never form a block
    assert not [p for p in pairs if not keys[p[0]][0] or not keys[p[0]][1]]


def test_column_key_blocker_rejects_missing_column():
    with pytest.raises(ValueError, match="no column 'seller_id'"):
        ColumnKeyBlocker("seller_id").pair_codes(_ids(5))
    with pytest.raises(ValueError, match="at least one column"):
        ColumnKeyBlocker([])


# ---------------------------------------------------------------------------- 7. union

@pytest.fixture(scope="module")
def market():
    return generate_marketplace(400, seed=11).listings


def test_candidate_pairs_mask_says_which_blockers_proposed(market):
    listings = market
    n = len(listings)
    blockers = [CategoryBlocker(3, max_block=60), ExactKeyBlocker("title"), ColumnKeyBlocker(["seller_id"]),
                ANNBlocker(k=3, partition=("category_l1",), backend="exact", vectors=_clustered_vectors(n)),
                MinHashLSHBlocker(num_perm=32, bands=8)]
    cands = candidate_pairs(listings, blockers)
    assert cands.names == [b.name for b in blockers]
    assert len(cands) == len(cands.mask) and (cands.a < cands.b).all()
    codes = cands.a * n + cands.b
    assert (np.diff(codes) > 0).all()  # unique
    union = set()
    for bit, blocker in enumerate(blockers):
        own = set(blocker.pair_codes(listings).tolist())
        assert own, blocker.name
        flagged = set(codes[(cands.mask >> bit) & 1 == 1].tolist())
        assert flagged == own, blocker.name
        assert cands.report[blocker.name]["n_pairs"] == len(own)
        union |= own
    assert set(codes.tolist()) == union
    assert (cands.mask > 0).all() and cands.mask.max() < 1 << len(blockers)
    # labels and the item-id frame
    frame = cands.frame(listings["item_id"].astype(str).to_numpy())
    assert len(frame) == len(cands)
    labels = dict(zip(zip(frame["item_id_a"], frame["item_id_b"]), frame["blockers"]))
    ids = listings["item_id"].astype(str).to_numpy()
    for i in range(0, len(cands), max(1, len(cands) // 50)):
        a, b = sorted((ids[cands.a[i]], ids[cands.b[i]]))
        want = "|".join(nm for bit, nm in enumerate(cands.names) if cands.mask[i] >> bit & 1)
        assert labels[(a, b)] == want


def test_candidate_pairs_rejects_duplicate_names(market):
    with pytest.raises(ValueError, match="distinct"):
        candidate_pairs(market, [CategoryBlocker(2), CategoryBlocker(2)])
    with pytest.raises(ValueError, match="distinct"):
        candidate_pairs(market, [make_blocker("ann:text?k=2"), make_blocker("ann:text?k=3")])
    # name= lets one union hold two of a kind
    cands = candidate_pairs(market, [make_blocker("category:2"), make_blocker("category:2?name=cat_b")])
    assert cands.names == ["category_l2", "cat_b"] and (cands.mask == 3).all()


# ---------------------------------------------------------------------------- 8. specs

def test_make_blocker_parses_each_kind():
    b = make_blocker("category:2")
    assert isinstance(b, CategoryBlocker) and b.level == 2 and b.name == "category_l2"
    b = make_blocker("title")
    assert isinstance(b, ExactKeyBlocker) and b.key == "title" and b.name == "title"
    b = make_blocker("phone?max_block=7")
    assert isinstance(b, ExactKeyBlocker) and b.key == "phone" and b.max_block == 7
    b = make_blocker("key:seller_id+category_l2")
    assert isinstance(b, ColumnKeyBlocker) and b.columns == ["seller_id", "category_l2"]
    b = make_blocker("minhash?num_perm=32&bands=8&columns=title")
    assert isinstance(b, MinHashLSHBlocker) and (b.num_perm, b.bands, b.columns) == (32, 8, ["title"])
    b = make_blocker("phash")
    assert isinstance(b, ImageHashBlocker) and b.name == "phash"
    b = make_blocker("ann:text?k=5&partition=category_l2+city&exclude=seller_id")
    assert isinstance(b, ANNBlocker)
    assert (b.k, b.source, b.partition, b.exclude) == (5, "text", ("category_l2", "city"), ("seller_id",))
    assert b.name == "ann_text" and b.backend == "auto"
    b = make_blocker("ann:title?backend=exact&min_similarity=0.3&partition=")
    assert (b.source, b.backend, b.min_similarity, b.partition) == ("title", "exact", 0.3, ())
    assert make_blocker("ann").partition == ("category_l1",)
    b = make_blocker("ann:text?dim=64&reduce=svd&price_weight=0&name=ann_svd")
    assert (b.dim, b.reduce, b.price_weight, b.name) == (64, "svd", 0.0, "ann_svd")
    assert make_blocker("title?name=title_again").name == "title_again"


@pytest.mark.parametrize("spec, message", [
    ("nosuch", r"unknown blocker 'nosuch'.*known: category, title"),
    ("title?foo=1", r"unknown option\(s\) \['foo'\]; allowed"),
    ("ann:text?k=5&colour=red", r"unknown option\(s\) \['colour'\]"),
    ("ann:text?k=abc", r"option k='abc' is not a valid int"),
    ("category:7", r"category level must be 1\.\.4"),
    ("category:x", r"category level must be 1\.\.4"),
    ("key:", r"name the columns, e\.g\. key:seller_id"),
    ("ann:text?max_block=5", r"ann takes no max_block"),
    ("ann:text?reduce=pca", r"reduce must be 'projection' or 'svd'"),
    ("ann:text?price_weight=-1", r"price_weight must be >= 0"),
    ("minhash?num_perm=30&bands=8", r"multiple of bands"),
    ("ann:pixels", r"source must be"),
    ("ann:text?backend=gpu", r"backend must be one of"),
    ("", r"non-empty"),
])
def test_make_blocker_bad_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        make_blocker(spec)


def test_make_blocker_bad_shingle_names_the_spec():
    with pytest.raises(ValueError, match=r"blocker spec 'minhash\?shingle=x'.*shingle"):
        make_blocker("minhash?shingle=x")


def test_make_blocker_rejects_empty_minhash_columns(market):
    try:
        blocker = make_blocker("minhash?columns=")
    except ValueError as e:
        assert "columns" in str(e)
        return
    blocker.pair_codes(market.head(20))  # must not get here with a blocker that cannot run


# ---------------------------------------------------------------------------- 9. default specs

def test_default_blocker_specs_adapt_to_columns(market):
    full = default_blocker_specs(market)
    assert full[0] == "key:seller_id+category_l2"
    assert "ann:text?k=10&partition=category_l2+city" in full

    no_seller = default_blocker_specs(market.drop(columns=["seller_id"]))
    assert not [s for s in no_seller if s.startswith("key:")]
    no_city = default_blocker_specs(market.drop(columns=["city"]))
    assert "ann:text?k=10&partition=category_l2" in no_city and not any("city" in s for s in no_city)
    only_l1 = market.drop(columns=["category_l2", "city"])
    specs = default_blocker_specs(only_l1)
    assert "key:seller_id+category_l1" in specs and "ann:title?k=10&partition=category_l1" in specs
    # the specs chosen without seller and city build blockers for just the columns there are
    small = market.drop(columns=["seller_id", "city"])
    blockers = [make_blocker(s) for s in default_blocker_specs(small)]
    assert blockers and all(isinstance(b, ANNBlocker) and b.partition == ("category_l2",) for b in blockers)


def test_default_blocker_specs_without_any_category_or_city(market):
    bare = market.head(80)[["item_id", "title", "description"]]
    specs = default_blocker_specs(bare)
    assert not [s for s in specs if s.startswith("key:")]
    blockers = [make_blocker(s) for s in specs]
    assert all(getattr(b, "partition", ()) == () for b in blockers)
    assert len(candidate_pairs(bare, blockers)) > 0


# ---------------------------------------------------------------------------- 10. recall

def test_default_blockers_recall_on_marketplace():
    m = generate_marketplace(2000, seed=5)
    listings = m.listings
    cands, _ = union_candidates(listings, [make_blocker(s) for s in default_blocker_specs(listings)])
    met = blocking_metrics(cands, true_pairs_from_clusters(listings), len(listings))
    print(f"default blockers: pair recall {met['pair_recall']:.4f}, "
          f"{met['candidates_per_listing']:.2f} candidates per listing")
    assert met["n_true_pairs"] > 100
    assert met["pair_recall"] >= 0.9
    assert met["candidates_per_listing"] < 25


def test_price_coordinates_turn_one_radian_per_fifty_percent():
    from dupsearch.candidates.ann import price_coordinates
    c = price_coordinates(pd.Series([1000.0, 1500.0, 1000.0, None, 0.0, -5.0]))
    assert np.allclose(np.linalg.norm(c[:3], axis=1), 1.0)
    assert np.allclose(c[0], c[2])
    assert np.isclose(float(c[0] @ c[1]), np.cos(1.0), atol=1e-6)  # 1.5x the price: one radian apart
    assert np.all(c[3:] == 0)  # missing, zero and negative prices add nothing


@pytest.mark.parametrize("reduce", ["projection", "svd"])
def test_hashed_tfidf_vectors_put_lookalike_copies_together(reduce):
    from dupsearch.candidates.ann import HashedTfidfVectors
    texts = ["Продаю ноутбук Lenovo ThinkPad T480 16 ГБ", "Пpoдaю нoутбук Lenovo ThinkPad T480 16 ГБ",
             "Кроссовки Nike Air Force 1 размер 41", "Квартира-студия 28 м² ул. Ленина 5",
             "Детская коляска Cybex Priam 2022", "Велосипед Stels Navigator 700 синий"] * 3
    v = HashedTfidfVectors(dim=32, reduce=reduce).fit_transform(texts)
    again = HashedTfidfVectors(dim=32, reduce=reduce).fit_transform(texts)
    assert np.array_equal(v, again)  # seeded: the same vectors every run
    # chunks embedded by forked processes: the same vectors as one process
    split = HashedTfidfVectors(dim=32, reduce=reduce, chunk=4, workers=2).fit_transform(texts)
    assert np.array_equal(v, split)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sims = v @ v.T
    assert sims[0, 1] > 0.99  # Latin look-alike letters fold to the same skeleton
    assert sims[0, 1] > sims[0, 2:6].max() + 0.3
    with pytest.raises(ValueError, match="reduce must be"):
        HashedTfidfVectors(reduce="pca")


def test_small_inputs_take_the_short_paths_to_the_same_numbers():
    """An online match embeds and keys a listing or a few: the TF-IDF weighting without
    scikit-learn's validation and the hash without factorising give what the long paths give
    (on every reduction, and with missing keys, which hash otherwise unfactorised)."""
    import dupsearch.candidates.ann as ann
    from dupsearch.candidates.ann import HashedTfidfVectors
    from dupsearch.candidates.blocking import stable_hashes

    listings = generate_marketplace(n_listings=600, seed=3).listings
    texts = (listings["title"] + " " + listings["description"]).tolist() + ["", "  ", "Ёлка ёлка ЁЛКА", "x"]
    for settings in ({}, {"char_ngram": 3}, {"reduce": "svd", "dim": 16}):
        vec = HashedTfidfVectors(sample=400, **settings).fit(texts[:500])
        X = vec._hashed([ann.skeleton(t) for t in texts])
        if vec.used_ is not None:
            X = X[:, vec.used_]
        want, got = vec.tfidf_.transform(X), vec._weighted(X)
        assert got.dtype == want.dtype == np.float32
        for part in ("indptr", "indices", "data"):
            assert np.array_equal(getattr(got, part), getattr(want, part)), (settings, part)
        one = vec.transform(texts[-3:-2])
        assert np.array_equal(one, vec.transform(texts)[-3:-2])
    keys = listings["seller_id"].astype(str).to_numpy(dtype=object)
    for values in (keys[:1], keys[:40], keys[:256], keys[:257], keys,
                   np.array(["a", None, "b"], dtype=object), np.array([None], dtype=object)):
        assert np.array_equal(stable_hashes(values), pd.util.hash_array(values))


def test_column_keys_of_a_few_listings_equal_the_pandas_path():
    """A few listings' keys are joined in Python; the keys and rows equal pandas' for every mix
    of strings, padding, blanks and missing values, and other types still take pandas' path."""
    from dupsearch.candidates.blocking import SMALL_KEYS, ColumnKeyBlocker

    rng = np.random.default_rng(7)
    pool = ["s1", " s1 ", "\u3000s2\x1f", "", "  ", None, np.nan, pd.NA, "Ёж\u00a0", "a\x1fb", "\x85"]
    blocker = ColumnKeyBlocker(["seller_id", "category_l2"])
    for trial in range(60):
        n = int(rng.integers(1, SMALL_KEYS + 1))
        frame = pd.DataFrame({c: pd.Series([pool[i] for i in rng.integers(0, len(pool), n)], dtype=object)
                              for c in ("seller_id", "category_l2")})
        if trial % 3 == 1:
            frame = frame.astype({"seller_id": "string"})
        if trial % 3 == 2:
            frame.loc[0, "category_l2"] = 7.0  # not a str: pandas' own conversion
        rows, keys = blocker.block_keys(frame)
        big = pd.concat([frame] * (SMALL_KEYS // n + 1), ignore_index=True)  # past SMALL_KEYS: pandas
        want_rows, want_keys = blocker.block_keys(big)
        first = want_rows < n
        assert np.array_equal(rows, want_rows[first]) and list(keys) == list(want_keys[first]), trial
        assert keys.dtype == object and rows.dtype == np.int64
