import json

import numpy as np

from dupsearch.bench import threshold_rules


def _scores(n=1200, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.12).astype(int)
    p = np.clip(np.where(y == 1, rng.beta(5, 2, n), rng.beta(1, 5, n)), 0, 1)
    return y, p


def test_rules_on_held_apart_halves():
    y, p = _scores()
    res = threshold_rules.compare(y, p, splits=10)
    ceiling = res["best on the other half"]["mean"]
    for name in threshold_rules.RULES:
        assert 0 < res[name]["mean"] <= ceiling  # a threshold chosen on the other half cannot beat it
    separable = threshold_rules.compare(y, np.where(y == 1, 0.9, 0.1), splits=3)
    assert all(r["mean"] == 100.0 for r in separable.values())


def test_cli_writes_json_and_refuses_runs_without_scores(tmp_path, capsys):
    y, p = _scores()
    run = tmp_path / "blend" / "seed0" / "abt-buy.json"
    run.parent.mkdir(parents=True)
    run.write_text(json.dumps({"dataset": "abt-buy", "seed": 0, "valid_scores": {"y": y.tolist(), "p": p.tolist()}}))
    out = tmp_path / "rules.json"
    assert threshold_rules.main([str(run), "--splits", "5", "--json", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert saved["runs"][0]["variant"] == "blend" and saved["runs"][0]["n_valid_positive"] == int(y.sum())
    assert "| abt-buy (blend, seed 0) |" in capsys.readouterr().out
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"dataset": "abt-buy"}))
    assert threshold_rules.main([str(old)]) == 2
    assert "no valid_scores" in capsys.readouterr().err


def test_blend_runs_are_refitted_on_the_choosing_half_alone():
    """With the blend's inputs saved, each split fits the blend on one half: the saved blended
    scores (fitted on all of validation) are not read, so NaN there changes nothing."""
    rng = np.random.default_rng(1)
    y, booster = _scores(1500, seed=1)
    cross_encoder = np.clip(np.where(y == 1, rng.beta(4, 2, len(y)), rng.beta(1, 4, len(y))), 0, 1)
    parts = {"booster": booster, "cross_encoder": cross_encoder}
    res = threshold_rules.compare(y, np.full(len(y), np.nan), splits=6, components=parts)
    for name in threshold_rules.RULES:
        assert 50 < res[name]["mean"] <= res["best on the other half"]["mean"]
    booster_alone = threshold_rules.compare(y, booster, splits=6)
    assert res["best on the other half"]["mean"] > booster_alone["best on the other half"]["mean"]
