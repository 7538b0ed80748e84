"""Learned matchers stacked under the booster (models.stacking) inside DuplicateMatcher: the
training pairs get out-of-fold scores, other pairs the final model's, and the model directory
holds every fitted part."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dupsearch.models import DuplicateMatcher, GBDTConfig, MatcherConfig
from dupsearch.models.stacking import StackingConfig

pytest.importorskip("safetensors")
TINY_IMAGE = dict(backbone="test_resnet", image_size=64, batch_size=16, learning_rate=3e-3, epochs=1,
                  max_steps=8, num_threads=1)


@pytest.fixture(scope="module")
def photo_market(tmp_path_factory):
    from dupsearch.synth import generate_marketplace, split_pairs
    m = generate_marketplace(300, seed=2, photos_dir=tmp_path_factory.mktemp("photos"))
    train, valid, test = split_pairs(m, fractions=(0.6, 0.2, 0.2), seed=2)
    return m.listings, train, valid, test


def config(**stacking) -> MatcherConfig:
    return MatcherConfig(gbdt=GBDTConfig(max_iterations=60, early_stopping_rounds=20, threads=1),
                         n_models=1, cv_folds=3, stacking=StackingConfig(**stacking))


def test_contrastive_image_model_is_stacked_out_of_fold(photo_market, tmp_path, monkeypatch):
    from dupsearch.models import stacking
    listings, train, valid, test = photo_market
    # Record which pairs each fold's image model was trained on and which pairs it scored.
    seen = []
    real = stacking._photo_set_features

    def spy(encode, lst, pairs):
        seen.append(set(zip(pairs["item_id_a"], pairs["item_id_b"])))
        return real(encode, lst, pairs)
    monkeypatch.setattr(stacking, "_photo_set_features", spy)
    real_compare = stacking.LearnedFeatures.compare

    def spy_compare(self, store, ia, ib):  # pairs scored by the final model, over the store
        seen.append(set(zip(store.ids[ia], store.ids[ib])))
        return real_compare(self, store, ia, ib)
    monkeypatch.setattr(stacking.LearnedFeatures, "compare", spy_compare)
    m = DuplicateMatcher(config(image_model=TINY_IMAGE)).fit(listings, train, valid)
    assert "learned.image_contrastive.max" in m.feature_names
    rep = m.metrics_["stacking"]["image_model"]
    assert rep["folds"] == 3 and 0 <= rep["oof_pr_auc_max_similarity"] <= 1
    # three out-of-fold blocks that partition the training pairs, then the validation pairs
    train_keys = set(zip(train["item_id_a"], train["item_id_b"]))
    folds = seen[:3]
    assert set().union(*folds) == train_keys and sum(map(len, folds)) == len(train_keys)
    assert seen[3] == set(zip(valid["item_id_a"], valid["item_id_b"]))
    p = m.predict_proba(listings, test)
    m.save(tmp_path / "model")
    assert (tmp_path / "model" / "stacking" / "image_model" / "model.safetensors").is_file()
    again = DuplicateMatcher.load(tmp_path / "model")
    np.testing.assert_allclose(again.predict_proba(listings, test), p, atol=1e-4)


def test_stacking_off_by_default(photo_market):
    assert not MatcherConfig().stacking.enabled
    assert MatcherConfig.from_dict({"stacking": {"cross_encoder": {"model": "minilm"}}}).stacking.enabled
