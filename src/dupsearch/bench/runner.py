"""`dupsearch bench`: train on train, pick threshold and early stopping on valid,
report F1 (and PR-AUC) on test — the protocol of the published figures."""

from __future__ import annotations

import time
from pathlib import Path


from dupsearch.io import load_benchmark
from dupsearch.models import DuplicateMatcher, MatcherConfig, binary_metrics
from dupsearch.models.matcher import dependency_versions
from dupsearch.models.metrics import THRESHOLD_RULES, f1_at


def source_commit(root: str | Path | None = None) -> dict:
    """The git commit the code ran at, and whether the working tree had changes (a result from a
    dirty tree is not reproducible from any commit). Nothing when not run from a git checkout."""
    import subprocess
    root = Path(root) if root is not None else Path(__file__).resolve().parents[3]
    if not (root / ".git").exists():
        return {"commit": None, "tree_dirty": None}
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        # bench-results/ is where benchmarks write, and the tables generated from it: a run of five
        # datasets leaves the first one's JSON (and the regenerated tables of a previous variant)
        # changed while the next runs, which is not a change of the code
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no",
                                "--", ".", ":(exclude)bench-results", ":(exclude)BENCHMARKS.md",
                                ":(exclude)RELIABILITY.md"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "tree_dirty": None}
    return {"commit": head, "tree_dirty": bool(dirty)}


def write_result(path: str | Path, result: dict) -> Path:
    """A benchmark's JSON, written atomically (its folder made), and a line saying where."""
    import json
    from dupsearch.atomic import atomic_write_text
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result, indent=1))
    print(f"-> {path}")
    return path


def run_benchmark(dataset_dir: str | Path, train_size: str = "medium",
                  config: MatcherConfig | None = None, progress: bool = False,
                  model_out: str | Path | None = None, report_dir: str | Path | None = None,
                  dirty: float = 0.0) -> dict:
    """``dirty`` > 0: the dataset's dirty variant (``io.benchmark.dirty_record``, values moved into
    the title with that probability; the records' draws seeded by the config's seed)."""
    dataset_dir = Path(dataset_dir)
    config = config or MatcherConfig()
    source = source_commit()  # the code that runs: taken before (an edit during a run is not it)
    data = load_benchmark(dataset_dir, train_size=train_size, dirty=dirty, dirty_seed=config.seed)
    t0 = time.perf_counter()
    matcher = DuplicateMatcher(config).fit(data.listings, data.train, data.valid, progress=progress)
    train_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    p = matcher.predict_proba(data.listings, data.test)
    predict_seconds = time.perf_counter() - t0
    y = data.test["label"].to_numpy().astype(int)
    m = binary_metrics(y, p, threshold=matcher.threshold_)
    sized = any(dataset_dir.glob("train-*.txt"))
    result = {
        "dataset": data.name,
        "data_path": str(dataset_dir),
        "train_size": train_size if sized else None,
        "dirty": dirty or None,
        "moved_text_share": config.moved_text_share or None,
        "moved_text_pairs": matcher.metrics_.get("moved_text_pairs"),
        "n_train": int(len(data.train)), "n_valid": int(len(data.valid)), "n_test": int(len(data.test)),
        "n_test_positive": int(y.sum()),
        "f1": round(100 * m["f1"], 2),
        "precision": round(100 * m["precision"], 2),
        "recall": round(100 * m["recall"], 2),
        "pr_auc": round(m["pr_auc"], 4),
        "roc_auc": round(m["roc_auc"], 4),
        "threshold": m["threshold"],
        "threshold_rule": matcher.metrics_.get("threshold_rule"),
        # test F1 at the threshold each rule reads off the same validation scores (an ablation of the rule)
        "f1_by_threshold_rule": {rule: round(100 * f1_at(y, p, choose(evaluated["y"], evaluated["p"])[1]), 2)
                                 for rule, choose in THRESHOLD_RULES.items()}
        if (evaluated := getattr(matcher, "eval_", None) or {}).get("what") == "validation" else None,
        "test_best_f1_oracle": round(100 * m["best_f1"], 2),  # threshold chosen on test: NOT the reported F1
        "valid_f1": round(100 * matcher.metrics_["valid"]["best_f1"], 2),
        "valid_pr_auc": round(matcher.metrics_["valid"]["pr_auc"], 4),
        "n_features": len(matcher.feature_names),
        "backend": config.gbdt.backend,
        "n_models": config.n_models,
        "seed": config.seed,
        "iterations": matcher.metrics_["iterations"],
        "train_seconds": round(train_seconds, 2),
        "predict_seconds": round(predict_seconds, 3),
        "pairs_per_second_features": round(matcher.metrics_["pairs_per_second_features"], 1),
        "pairs_per_second_predict": round(len(data.test) / predict_seconds, 1),
        "skipped_rows": {k: int(v) for r in data.reports.values() for k, v in r.skipped.items()}
        if isinstance(data.reports, dict) else None,
        "text_encoders": list(config.features.text_encoders),
        "image_encoders": list(config.features.image_encoders),
        # Per encoder: items encoded (cache misses) and from the cache, seconds, items per second.
        "encoders": matcher.pipeline_.encoder_stats_ or None,
        # Learned matchers stacked under the booster: settings, out-of-fold quality, wall time.
        "stacking": {"config": config.stacking.cross_encoder, "bi_encoder_config": config.stacking.bi_encoder,
                     **matcher.metrics_["stacking"]}
        if "stacking" in matcher.metrics_ else None,
        # the validation pairs' labels and the scores the threshold was chosen on, so that other
        # ways to choose it can be compared on validation alone (never on test)
        "valid_scores": {"y": [int(v) for v in evaluated["y"]], "p": [round(float(v), 5) for v in evaluated["p"]],
                         **({"components": {k: [round(float(x), 5) for x in v] for k, v in parts.items()}}
                            if (parts := evaluated.get("components")) else {})}
        if evaluated.get("what") == "validation" else None,
        "versions": dependency_versions(),
        **source,
    }
    if report_dir:
        from dupsearch.report import write_report
        write_report(report_dir, y, p, m, importance=matcher.importance_,
                     title=f"dupsearch bench: {data.name}", data_name=f"{dataset_dir}/test")
        result["report"] = str(Path(report_dir) / "report.html")
    if model_out:
        matcher.save(model_out)
        result["model_dir"] = str(model_out)
    return result
