"""dupsearch.config: typed settings, strict from_dict; the public face of `import dupsearch`."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest

from dupsearch.config import FAMILY_SETTINGS, ConfigError, DedupConfig, FeatureConfig, MatcherConfig, from_dict


def test_nested_settings_parse():
    cfg = MatcherConfig.from_dict({"n_models": 1, "gbdt": {"backend": "lightgbm"},
                                   "features": {"families": ["strings", "price"],
                                                "family_settings": {"strings": {"fields": ["title"]}}},
                                   "ensemble": {"per_category": True}})
    assert cfg.n_models == 1 and cfg.gbdt.backend == "lightgbm" and cfg.ensemble.per_category
    assert cfg.features.families == ("strings", "price")
    assert MatcherConfig.from_dict({}) == MatcherConfig()


@pytest.mark.parametrize("data, message", [
    ({"featurse": {}}, "unknown setting 'featurse'"),
    ({"features": {"familes": []}}, "unknown setting 'features.familes'"),
    ({"gbdt": {"depht": 3}}, "unknown setting 'gbdt.depht'"),
    ({"n_models": "3"}, "setting 'n_models' must be int"),
    ({"n_models": True}, "setting 'n_models' must be int"),
    ({"gbdt": 3}, "setting 'gbdt' takes a table"),
    ({"features": {"families": ["prices"]}}, "unknown feature families"),
    ({"features": {"family_settings": {"strings": {"feilds": []}}}}, "no setting 'feilds'"),
    ({"gbdt": {"backend": "xgboost"}}, "unknown backend"),
    ({"threshold_rule": "median"}, "unknown threshold_rule 'median'"),
])
def test_bad_settings_name_their_path(data, message):
    with pytest.raises(ConfigError, match=message):
        MatcherConfig.from_dict(data)


def test_dedup_config_is_strict_too():
    assert DedupConfig.from_dict({"workers": 2}).workers == 2
    with pytest.raises(ConfigError, match="unknown setting 'worker'"):
        DedupConfig.from_dict({"worker": 2})
    with pytest.raises(ConfigError, match="workers must be >= 1"):
        from_dict(DedupConfig, {"workers": 0})


def test_family_settings_registry_matches_the_families():
    from dupsearch.features.pipeline import FAMILIES
    assert set(FAMILY_SETTINGS) == set(FAMILIES)
    for name, cls in FAMILIES.items():
        params = set(inspect.signature(cls.__init__).parameters) - {"self"}
        assert params == set(FAMILY_SETTINGS[name]), name
    FeatureConfig(family_settings={k: {} for k in FAMILY_SETTINGS})


def test_cli_config_with_an_unknown_key_is_one_line(tmp_path, shared_market_files):
    from helpers import run_cli
    bad = tmp_path / "cfg.json"
    bad.write_text(json.dumps({"features": {"familes": ["strings"]}}))
    f = shared_market_files
    proc = run_cli("train", f["listings"], f["train"], "--out", tmp_path / "m", "--config", bad)
    assert proc.returncode == 2
    assert "unknown setting 'features.familes'" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    garbage = tmp_path / "cfg2.json"
    garbage.write_text("{not json")
    proc = run_cli("train", f["listings"], f["train"], "--out", tmp_path / "m", "--config", garbage)
    assert proc.returncode == 2 and "cfg2.json: not a readable config" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_public_face_is_light_and_complete():
    code = ("import sys, dupsearch; assert 'catboost' not in sys.modules and 'pandas' not in sys.modules; "
            "[getattr(dupsearch, n) for n in dupsearch.__all__]; print(len(dupsearch.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    import dupsearch
    for name in ("DuplicateMatcher", "MatcherConfig", "FeatureConfig", "ListingStore", "read_listings",
                 "read_pairs", "run_dedup", "DedupConfig", "make_blocker", "generate_marketplace"):
        assert name in dupsearch.__all__ and getattr(dupsearch, name) is not None
    with pytest.raises(AttributeError):
        dupsearch.no_such_name


def test_the_threshold_rules_named_in_settings_are_the_ones_the_matcher_has():
    from dupsearch.config import THRESHOLD_RULES
    from dupsearch.models.metrics import THRESHOLD_RULES as rules
    assert set(THRESHOLD_RULES) == set(rules)
