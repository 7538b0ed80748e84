"""The contrastive bi-encoder (models.bi_encoder) and its place in the matcher's blend: fitting,
masking of an anchor's own entity, embeddings once per listing, save/load with safetensors only,
and the blend's inputs checked on load. A tiny random BERT keeps it fast; the benchmark figures
are BENCHMARKS.md's (`scripts/bench_accuracy.sh bi`)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.test_cross_encoder import HAVE_TORCH, _tiny_config, tiny_bert  # noqa: F401  (fixture)

needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="the bi-encoder needs torch and transformers")

TEXTS = ["kettle w1 w2", "kettle w1 w2 w3", "lamp w4 w5", "lamp w4 w5 w6", "phone w7 w8", "phone w7 w9",
         "chair w10 w11", "chair w10 w12", "kettle w13", "lamp w14"]
# duplicates: (0,1), (2,3), (4,5), (6,7); labelled non-duplicates: (0,8), (2,9), (4,6)
IA = np.array([0, 2, 4, 6, 0, 2, 4])
IB = np.array([1, 3, 5, 7, 8, 9, 6])
Y = np.array([1, 1, 1, 1, 0, 0, 0])


def _config(path, **kw):
    from dupsearch.models.bi_encoder import BiEncoderConfig
    base = dict(model=str(path), max_length=16, epochs=30, batch_size=4, learning_rate=2e-3, seed=0, threads=1,
                precision="fp32", device="cpu", temperature=0.1)
    base.update(kw)
    return BiEncoderConfig(**base)


def test_entity_ids_are_the_components_of_the_duplicate_pairs():
    from dupsearch.models.bi_encoder import entity_ids
    e = entity_ids(6, np.array([0, 1, 3, 4]), np.array([1, 2, 4, 5]), np.array([1, 1, 0, 1]))
    assert e[0] == e[1] == e[2] and e[4] == e[5] and len({e[0], e[3], e[4]}) == 3


@pytest.mark.parametrize("bad, match", [({"max_length": 4}, "max_length"), ({"batch_size": 1}, "batch_size"),
                                        ({"temperature": 0}, "temperature"), ({"precision": "fp8"}, "precision"),
                                        ({"epochs": 0}, "epochs"), ({"max_steps": 0}, "max_steps")])
def test_bad_settings_are_named(bad, match):
    from dupsearch.models.bi_encoder import BiEncoderConfig
    with pytest.raises(ValueError, match=match):
        BiEncoderConfig(**bad)


@needs_torch
def test_fit_pulls_duplicates_together_and_saves_without_pickle(tiny_bert, tmp_path):  # noqa: F811
    from dupsearch.errors import ModelNotFoundError, NotFittedError
    from dupsearch.models.bi_encoder import ContrastiveBiEncoder
    model = ContrastiveBiEncoder(_config(tiny_bert))
    with pytest.raises(NotFittedError):
        model.encode(TEXTS)
    before = ContrastiveBiEncoder(_config(tiny_bert, epochs=0.1)).fit(TEXTS, IA, IB, Y).encode(TEXTS)
    model.fit(TEXTS, IA, IB, Y)
    emb = model.encode(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert model.loss_history_[-1] < model.loss_history_[0]

    def margin(e):  # mean cosine of the duplicate pairs minus that of the labelled non-duplicates
        cos = np.einsum("ij,ij->i", e[IA], e[IB])
        return cos[Y == 1].mean() - cos[Y == 0].mean()
    assert margin(emb) > margin(before) + 0.1
    # a fit is deterministic for its seed; another seed is another model (batches of 2 of the 4
    # duplicate pairs: the seed's shuffles make other batches)
    np.testing.assert_allclose(ContrastiveBiEncoder(_config(tiny_bert)).fit(TEXTS, IA, IB, Y).encode(TEXTS), emb,
                               atol=1e-5)
    two = [ContrastiveBiEncoder(_config(tiny_bert, seed=s, batch_size=2)).fit(TEXTS, IA, IB, Y).encode(TEXTS)
           for s in (0, 1)]
    assert not np.allclose(two[0], two[1], atol=1e-4)
    # the step budget caps the epochs: 30 passes over 4 pairs in batches of 4 would be 30 steps
    assert model.steps_ == 30
    assert ContrastiveBiEncoder(_config(tiny_bert, max_steps=7)).fit(TEXTS, IA, IB, Y).steps_ == 7
    model.save(tmp_path / "bi")
    assert sorted(p.suffix for p in (tmp_path / "bi").iterdir() if p.suffix in (".bin", ".safetensors")) \
        == [".safetensors"]
    again = ContrastiveBiEncoder.load(tmp_path / "bi")
    np.testing.assert_allclose(again.encode(TEXTS), emb, atol=1e-5)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="bi_encoder.json"):
        ContrastiveBiEncoder.load(tmp_path / "empty")
    with pytest.raises(ValueError, match="duplicate pairs"):
        ContrastiveBiEncoder(_config(tiny_bert)).fit(TEXTS, IA[Y == 0], IB[Y == 0], Y[Y == 0])


@needs_torch
def test_info_nce_masks_the_anchors_own_entity(tiny_bert):  # noqa: F811
    """A candidate of the anchor's entity other than its pair is no negative: masking it leaves
    the loss as if it were absent."""
    from dupsearch.models.bi_encoder import ContrastiveBiEncoder
    from dupsearch.models.cross_encoder import _import_torch_transformers
    torch, _ = _import_torch_transformers()
    model = ContrastiveBiEncoder(_config(tiny_bert))
    g = torch.Generator().manual_seed(0)
    anchors = torch.nn.functional.normalize(torch.randn(3, 8, generator=g), dim=-1)
    cands = torch.nn.functional.normalize(torch.randn(5, 8, generator=g), dim=-1)
    eye = torch.eye(3, dtype=torch.bool)
    # candidate 3 is in anchor 0's entity: it must not count against anchor 0
    masked = model._info_nce(torch, anchors, cands, np.array([0, 1, 2]), np.array([0, 1, 2, 0, 4]), eye)
    logits = anchors @ cands.T / model.config.temperature
    logits[0, 3] = -1e30
    expected = torch.nn.functional.cross_entropy(logits, torch.arange(3))
    assert abs(float(masked) - float(expected)) < 1e-5
    unmasked = model._info_nce(torch, anchors, cands, np.array([0, 1, 2]), np.array([5, 6, 7, 8, 9]), eye)
    assert abs(float(unmasked) - float(expected)) > 1e-4


@needs_torch
def test_matcher_blends_the_bi_encoders_cosine(tiny_bert, tmp_path):  # noqa: F811
    """The cosine is one more input of the blend (alone and beside the cross-encoder); each
    listing is embedded once, in the store; a saved model scores the same and a blend whose
    inputs do not match the model's components is refused on load."""
    from dupsearch.errors import ModelFileError
    from dupsearch.models import DuplicateMatcher, GBDTConfig, MatcherConfig
    from dupsearch.models.stacking import (BI_ENCODER_FEATURE, CROSS_ENCODER_FEATURE, LEARNED_EMBEDDING,
                                           LearnedFeatures, StackingConfig)
    from dupsearch.synth import generate_marketplace, split_pairs
    m = generate_marketplace(200, seed=3)
    train, valid, test = split_pairs(m, fractions=(0.6, 0.2, 0.2), seed=3)
    bi = {k: v for k, v in _config(tiny_bert, epochs=2, batch_size=8).to_dict().items() if k != "seed"}
    gbdt = GBDTConfig(max_iterations=40, early_stopping_rounds=10, threads=1)
    with pytest.raises(ValueError, match="blend"):
        StackingConfig(bi_encoder=bi, combine="features")
    cfg = MatcherConfig(gbdt=gbdt, n_models=1, stacking=StackingConfig(bi_encoder=bi, combine="blend"))
    with pytest.raises(ValueError, match="valid"):
        DuplicateMatcher(cfg).fit(m.listings, train)
    matcher = DuplicateMatcher(cfg).fit(m.listings, train, valid)
    assert BI_ENCODER_FEATURE not in matcher.feature_names
    rep = matcher.metrics_["stacking"]["bi_encoder"]
    assert rep["blend"]["inputs"] == ["booster", "bi_encoder"] and rep["n_duplicate_pairs"] == int(train["label"].sum())
    assert set(matcher.eval_["components"]) == {"booster", "bi_encoder"}
    store, ia, ib = matcher.pair_store(m.listings, test)
    emb = store[LEARNED_EMBEDDING]
    assert emb.shape[0] == len(store) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    X = matcher.store_features(store, ia, ib)
    np.testing.assert_allclose(X[BI_ENCODER_FEATURE], np.einsum("ij,ij->i", emb[ia], emb[ib]), atol=1e-6)
    booster = matcher.predict_proba_features(X)
    p = matcher.score(store, ia, ib)
    w, b = rep["blend"]["weights"], rep["blend"]["intercept"]
    q = np.clip(booster, 1e-6, 1 - 1e-6)
    expected = 1 / (1 + np.exp(-(w[0] * np.log(q / (1 - q)) + w[1] * X[BI_ENCODER_FEATURE].to_numpy() + b)))
    np.testing.assert_allclose(p, expected, rtol=1e-6)
    matcher.save(tmp_path / "model")
    again = DuplicateMatcher.load(tmp_path / "model")
    np.testing.assert_allclose(again.predict_proba(m.listings, test), p, atol=1e-5)
    path = tmp_path / "model" / "stacking" / "stacking.json"
    state = json.loads(path.read_text())
    state["blend"]["inputs"] = ["booster", "cross_encoder"]
    path.write_text(json.dumps(state))
    with pytest.raises(ModelFileError, match="bi_encoder"):
        LearnedFeatures.load(path.parent)

    # beside the cross-encoder: three inputs, in the components' order
    ce = _tiny_config(tiny_bert, epochs=1, pos_weight="balanced").to_dict()
    cfg3 = MatcherConfig(gbdt=gbdt, n_models=1, stacking=StackingConfig(cross_encoder=ce, bi_encoder=bi,
                                                                        combine="blend"))
    both = DuplicateMatcher(cfg3).fit(m.listings, train, valid)
    blend = both.metrics_["stacking"]["bi_encoder"]["blend"]
    assert blend["inputs"] == ["booster", "cross_encoder", "bi_encoder"] and len(blend["weights"]) == 3
    store, ia, ib = both.pair_store(m.listings, test)
    X = both.store_features(store, ia, ib)
    assert {CROSS_ENCODER_FEATURE, BI_ENCODER_FEATURE} <= set(X.columns)
    both.save(tmp_path / "both")
    np.testing.assert_allclose(DuplicateMatcher.load(tmp_path / "both").predict_proba(m.listings, test),
                               both.score(store, ia, ib), atol=1e-5)


def test_a_saved_two_input_blend_without_names_still_loads():
    """Models saved before the blend named its inputs held the booster and the cross-encoder."""
    from pathlib import Path

    from dupsearch.errors import ModelFileError
    from dupsearch.models.stacking import _checked_blend
    old = {"weights": [0.8, 0.3], "intercept": -1.0}
    assert _checked_blend(old, Path("x"), ["booster", "cross_encoder"])["inputs"] == ["booster", "cross_encoder"]
    with pytest.raises(ModelFileError, match="3 finite weights"):
        _checked_blend(old, Path("x"), ["booster", "cross_encoder", "bi_encoder"])


@pytest.mark.parametrize("args, message", [
    (["--bi-encoder", "minilm", "--cross-encoder-combine", "features"], "by the blend only"),
    (["--bi-encoder", "{tmp}/no-such-model"], "bi-encoder model directory {tmp}/no-such-model does not exist"),
])
def test_bench_refuses_a_bi_encoder_it_cannot_use_before_training(tmp_path, args, message):
    """Exit 2 and one line naming the option, before any data is read or booster trained."""
    from tests.helpers import one_line, run_cli
    proc = run_cli("bench", tmp_path / "no-such-benchmark", *[a.format(tmp=tmp_path) for a in args])
    out = one_line(proc.stdout + proc.stderr)
    assert proc.returncode == 2 and message.format(tmp=tmp_path) in out and "Traceback" not in out
