"""The `dupsearch` command line: train, predict, evaluate, bench."""

from __future__ import annotations

import errno
import json
import logging
import sys
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from dupsearch.errors import DataError, DupsearchError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Find duplicate listings: train, apply and measure a pairwise duplicate classifier.")
console = Console(stderr=True)


class Backend(str, Enum):
    catboost = "catboost"
    lightgbm = "lightgbm"


class TrainSize(str, Enum):
    small = "small"
    medium = "medium"


def _setup_logging(verbose: bool) -> None:
    level = logging.INFO if verbose else logging.WARNING
    # the handler filters too: libraries that lower their own loggers' level (LightAutoML logs
    # every boosting round) would otherwise flood the console through propagation
    logging.basicConfig(level=level, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False, level=level)], force=True)


def _check_outputs(inputs=(), files=(), **dirs) -> None:
    """Before any work: every output may be written (see dupsearch.artifacts): folders are new,
    empty or dupsearch's of that kind; files are not folders and not this command's inputs."""
    from dupsearch.artifacts import claim_dir, claim_file
    for option, path in files:
        if path is not None:
            claim_file(path, inputs=inputs, what=option)
    for kind, (option, path) in dirs.items():
        if path is not None:
            claim_dir(path, kind, inputs=inputs, what=option)


def _write_json_atomic(path: Path, obj) -> None:
    from dupsearch.atomic import atomic_write_json
    atomic_write_json(path, obj)


def _load_tables(listings: Path, pairs: Path, mapping: Optional[Path], need_labels: bool = False):
    from dupsearch.io import read_listings, read_pairs
    lst, lrep = read_listings(listings, mapping=mapping)
    prs, prep = read_pairs(pairs, mapping=mapping, listing_ids=lst["item_id"])
    for rep in (lrep, prep):
        console.print(f"[dim]{rep}[/dim]")
    if need_labels and "label" not in prs:
        raise DupsearchError(f"{pairs}: needs a `label` column (0/1) for this command")
    return lst, prs


TRUST_HELP = ("Load a model with a LightAutoML component, which LightAutoML saves only as a pickle: "
              "loading it runs code from the model's files. Only for models from a source you trust.")
TEXT_ENCODER_HELP = ("Text encoder spec, repeatable: minilm, fasttext, navec, tfidf_svd, "
                     "st:/local/sentence-transformers/dir[?prefix=query:] (cosine of 'title | category | "
                     "description' embeddings as features).")
IMAGE_ENCODER_HELP = ("Image encoder spec, repeatable (default: phash, dhash, colorhist when the "
                      "training listings have photos; 'none' turns photos off): phash, dhash, whash, colorhist, "
                      "timm:NAME?checkpoint=FILE, timm:DIR, open_clip:ARCH?checkpoint=FILE, clip_st:DIR "
                      "(similarity of the two listings' photo sets as features).")


CROSS_ENCODER_HELP = ("Fine-tune a cross-encoder on the labelled pairs and stack its out-of-fold score "
                      "under the booster: 'minilm' (bundled) or a local Hugging Face model folder.")


ROUGE_HELP = ("Also compare word sequences (ROUGE-L: longest common subsequence of words) of the title, "
              "description, attributes and all text together.")


def _with_rouge(features, on: bool):
    if not on:
        return features
    from dupsearch.features.strings import ROUGE_FIELDS
    settings = {**features.family_settings}
    settings["strings"] = {**settings.get("strings", {}), "rouge_fields": list(ROUGE_FIELDS)}
    return replace(features, family_settings=settings)


# the cross-encoder recipe's epochs (models.cross_encoder.RECIPE holds the rest)
CE_EPOCHS = 3.0


class Combine(str, Enum):
    features = "features"
    blend = "blend"


COMBINE_HELP = ("How the cross-encoder joins the booster: 'blend' (one fine-tune, early-stopped on the "
                "validation pairs, logits blended on them; needs --valid) or 'features' (its out-of-fold "
                "score as a booster feature: a fine-tune per fold and a final one). Default: blend when "
                "there are validation pairs.")


BI_ENCODER_HELP = ("Fine-tune this text encoder ('minilm' = the bundled all-MiniLM-L6-v2, or a local Hugging "
                   "Face directory) as a contrastive bi-encoder on the training pairs' listings and blend its "
                   "cosine with the booster (and the cross-encoder) on the validation pairs; needs them. One "
                   "embedding per listing: scoring a pair is a dot product.")
BI_ENCODER_EPOCHS_HELP = ("Passes of the bi-encoder's fine-tune over the duplicate training pairs (default: 10; 5 "
                          "with --cross-encoder, which shares the CPU budget).")
BI_ENCODER_MAX_STEPS_HELP = ("At most this many steps of the bi-encoder's fine-tune, its CPU budget (default: 300; "
                             "150 with --cross-encoder).")
CROSS_ENCODER_BUDGET_HELP = ("The cross-encoder's CPU budget for blend, in tokens counted at fp32's cost (default: "
                             "1,800,000, about 14 minutes on 2 cores; 1,000,000 with --bi-encoder, which shares "
                             "it). Its epochs: this over one epoch's tokens, at least 1, at most the epochs.")


def _check_encoder_options(cross_encoder: Optional[str], bi_encoder: Optional[str], **given) -> None:
    """A setting of a fine-tune that is not asked for fails, instead of being silently ignored."""
    for option, value in given.items():
        model = "--cross-encoder" if option.startswith("cross") else "--bi-encoder"
        if value is not None and not (cross_encoder if model == "--cross-encoder" else bi_encoder):
            raise typer.BadParameter(f"--{option.replace('_', '-')} sets {model}'s fine-tune: give {model} too")


def _stacking(cross_encoder: Optional[str], epochs: Optional[float], max_length: int,
              image_backbone: Optional[str] = None, image_size: int = 224, image_epochs: int = 3,
              combine: str = "features", precision: str = "auto", bi_encoder: Optional[str] = None,
              bi_encoder_epochs: Optional[float] = None, cross_encoder_budget: Optional[int] = None,
              bi_encoder_max_steps: Optional[int] = None):
    from dupsearch.models.cross_encoder import RECIPE
    from dupsearch.models.stacking import SHARED_BUDGET, StackingConfig
    _check_encoder_options(cross_encoder, bi_encoder, cross_encoder_budget=cross_encoder_budget,
                           bi_encoder_epochs=bi_encoder_epochs, bi_encoder_max_steps=bi_encoder_max_steps)
    # blend: issue #20's recipe; features: issue #5's out-of-fold stacking as it was measured
    recipe = dict(RECIPE) if combine == "blend" else {}
    # both fine-tunes in one blend split one CPU budget; the options given win over it
    shared = SHARED_BUDGET if cross_encoder and bi_encoder else {"cross_encoder": {}, "bi_encoder": {}}
    if cross_encoder_budget is not None and combine != "blend":
        raise typer.BadParameter("--cross-encoder-budget sets the blend's fine-tune: leave --cross-encoder-combine "
                                 "at blend")
    if combine == "blend":
        recipe.update(shared["cross_encoder"])
        if cross_encoder_budget is not None:
            recipe["budget_tokens"] = int(cross_encoder_budget)
    bi_settings = {**shared["bi_encoder"],
                   **({"epochs": bi_encoder_epochs} if bi_encoder_epochs else {}),
                   **({"max_steps": int(bi_encoder_max_steps)} if bi_encoder_max_steps else {})}
    epochs = epochs if epochs is not None else (CE_EPOCHS if combine == "blend" else 1)
    if bi_encoder and combine != "blend":
        raise typer.BadParameter("--bi-encoder joins the booster by the blend only: leave --cross-encoder-combine "
                                 "at blend")
    from dupsearch.models.cross_encoder import resolve_model_dir
    # a model that is not there fails now, not after the booster's training
    for model, what in ((cross_encoder, "cross-encoder"), (bi_encoder, "bi-encoder")):
        if model:
            resolve_model_dir(model, what)
    return StackingConfig(
        cross_encoder={**recipe, "model": cross_encoder, "epochs": epochs, "max_length": max_length,
                       **({"precision": precision} if precision != "auto" else {})}
        if cross_encoder else None,
        image_model={"backbone": image_backbone, "image_size": image_size, "epochs": image_epochs}
        if image_backbone else None,
        bi_encoder={"model": bi_encoder, **bi_settings} if bi_encoder else None, combine=combine)


class ThresholdRule(str, Enum):
    best_f1 = "best-f1"
    half_best_f1 = "half-best-f1"


THRESHOLD_RULE_HELP = ("How the threshold is read off the validation scores: their F1-best threshold, or half "
                       "that best F1 (the F1-best threshold of calibrated probabilities; it moves less with "
                       "the pairs near the cut, but measured lower on test: BENCHMARKS.md). Every run also reports the "
                       "test F1 at each rule's threshold.")
MOVED_TEXT_HELP = ("Also train the booster on this share of the training pairs with one side's listing or both "
                   "made dirty (each value other than the title moved into the title with probability 0.5); "
                   "0: off.")


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


PRECISION_HELP = ("Number format of the cross-encoder's matmuls: auto = bf16 where it is fast (a GPU with it, "
                  "a CPU with AMX or AVX512-BF16), else fp32.")


class Blend(str, Enum):
    learned = "learned"
    equal = "equal"


class Calibration(str, Enum):
    none = "none"
    platt = "platt"
    isotonic = "isotonic"


PER_CATEGORY_HELP = ("Also train one booster per top-level category (categories with enough pairs) and "
                     "blend it with the general model.")
AUTOML_HELP = "Also train LightAutoML (needs `pip install 'dupsearch[automl]'`) and blend it in."
ENLARGE_HELP = "Enlarge the training pairs through transitive chains (A~B, B~C => A~C; negatives across clusters)."


def _ensemble(cfg, per_category: bool, blend: "Blend", align: bool, calibrate: "Calibration", automl: bool,
              enlarge: bool):
    """Apply the model-combination options to a MatcherConfig (options left at their defaults
    keep what a --config file says)."""
    from dupsearch.models.ensemble import EnsembleConfig
    e = cfg.ensemble
    cfg.ensemble = EnsembleConfig(**{**e.__dict__,
                                     "per_category": per_category or e.per_category,
                                     "blend": blend.value if blend != Blend.learned else e.blend,
                                     "align": align and e.align,
                                     "calibrate": calibrate.value if calibrate != Calibration.none else e.calibrate,
                                     "automl": automl or e.automl})
    if enlarge and cfg.enlarge is None:
        cfg.enlarge = {}
    cfg.__post_init__()  # enlarge + stacking is refused here, before any work
    return cfg


COMPONENTS_HELP = ("Also compare text embeddings along their first N principal directions "
                   "(product and difference per direction); 0 = cosine only.")


def _feature_sets() -> type:
    from dupsearch.config import FEATURE_PRESETS
    return Enum("FeatureSet", {name: name for name in FEATURE_PRESETS}, type=str)


FeatureSet = _feature_sets()  # the named sets of config.FEATURE_PRESETS


FEATURE_SET_HELP = ("Named feature set: 'default', or 'online' (smaller per-listing state and cheaper pairs, "
                    "for `dupsearch index` and `serve`; BENCHMARKS has what it costs in accuracy).")


def _features(text_encoders: Optional[list[str]], image_encoders: Optional[list[str]],
              preset: "FeatureSet" = FeatureSet.default):
    from dupsearch.config import FEATURE_PRESETS
    from dupsearch.features import FeatureConfig
    from dupsearch.encoders import make_encoder
    # "--image-encoder none" turns the default photo encoders off.
    no_photos = bool(image_encoders) and [s.lower() for s in image_encoders] == ["none"]
    if no_photos:
        image_encoders = None
    # Unknown kinds and bad options fail here, before any work.
    for modality, specs in (("text", text_encoders), ("image", image_encoders)):
        for spec in specs or []:
            try:
                make_encoder(spec, modality)
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint=f"--{modality}-encoder") from None
    given = dict(FEATURE_PRESETS[preset.value])  # options not given keep the preset's settings
    if text_encoders:
        given["text_encoders"] = tuple(text_encoders)
    if image_encoders:
        given["image_encoders"] = tuple(image_encoders)
    if no_photos:
        given["image_encoders"] = ()
    return FeatureConfig(**given)


def _config(backend: Backend, n_models: int, folds: int, seed: int, config_file: Optional[Path],
            text_encoders: Optional[list[str]] = None, image_encoders: Optional[list[str]] = None,
            preset: "FeatureSet" = FeatureSet.default):
    from dupsearch.models import GBDTConfig, MatcherConfig
    if config_file:
        import tomllib
        try:
            raw = (tomllib.loads(config_file.read_text()) if config_file.suffix == ".toml"
                   else json.loads(config_file.read_text()))
        except (OSError, ValueError) as e:  # tomllib.TOMLDecodeError and JSONDecodeError are ValueErrors
            raise DataError(f"not a readable config ({e})", path=str(config_file)) from None
        from dupsearch.config import ConfigError
        try:
            cfg = MatcherConfig.from_dict(raw)
        except ConfigError as e:
            raise ConfigError(f"{config_file}: {e}") from None
        # Encoders named on the command line win over the file's.
        if text_encoders or image_encoders:
            named = _features(text_encoders, image_encoders)
            cfg.features = replace(cfg.features,
                                   text_encoders=named.text_encoders if text_encoders else cfg.features.text_encoders,
                                   image_encoders=named.image_encoders if image_encoders else cfg.features.image_encoders)
        if preset != FeatureSet.default:
            from dupsearch.config import FEATURE_PRESETS
            if cfg.features.family_settings:
                raise typer.BadParameter(f"{config_file} sets family_settings and --features {preset.value} "
                                         f"names others: use one of them")
            cfg.features = replace(cfg.features, **FEATURE_PRESETS[preset.value])
    else:
        cfg = MatcherConfig(gbdt=GBDTConfig(backend=backend.value), n_models=n_models, cv_folds=folds,
                            seed=seed, features=_features(text_encoders, image_encoders, preset))
    return cfg


@app.command()
def train(
    listings: Path = typer.Argument(..., help="Listings table (.parquet, .csv, .jsonl)."),
    pairs: Path = typer.Argument(..., help="Labelled pairs: item_id_a, item_id_b, label."),
    out: Path = typer.Option(..., "--out", "-o", help="Model directory to write."),
    valid: Optional[Path] = typer.Option(None, help="Validation pairs: early stopping and threshold. "
                                         "Without it, grouped cross-validation on the training pairs."),
    mapping: Optional[Path] = typer.Option(None, help="TOML column mapping to the data contract."),
    backend: Backend = typer.Option(Backend.catboost, help="Gradient-boosting library."),
    n_models: int = typer.Option(3, min=1, help="Boosters with different seeds, averaged."),
    folds: int = typer.Option(5, min=2, help="Cross-validation folds when --valid is not given."),
    seed: int = typer.Option(0, min=0, help="Base random seed (boosters use seed, seed+1, ...; CV folds)."),
    text_encoder: Optional[list[str]] = typer.Option(None, "--text-encoder", "-t", help=TEXT_ENCODER_HELP),
    image_encoder: Optional[list[str]] = typer.Option(None, "--image-encoder", "-i", help=IMAGE_ENCODER_HELP),
    features: FeatureSet = typer.Option(FeatureSet.default, "--features", help=FEATURE_SET_HELP),
    embedding_components: Optional[int] = typer.Option(None, min=0, help=COMPONENTS_HELP),
    cross_encoder: Optional[str] = typer.Option(None, help=CROSS_ENCODER_HELP),
    cross_encoder_epochs: Optional[float] = typer.Option(
        None, min=0.1, help=f"Fine-tuning epochs of the cross-encoder (default: at most {CE_EPOCHS:g} within "
                            f"the recipe's CPU budget for blend, 1 for features)."),
    cross_encoder_combine: Optional[Combine] = typer.Option(None, help=COMBINE_HELP),
    cross_encoder_max_length: int = typer.Option(128, min=16, help="Tokens per pair for the cross-encoder."),
    cross_encoder_precision: Precision = typer.Option(Precision.auto, help=PRECISION_HELP),
    bi_encoder: Optional[str] = typer.Option(None, help=BI_ENCODER_HELP),
    bi_encoder_epochs: Optional[float] = typer.Option(None, min=0.1, help=BI_ENCODER_EPOCHS_HELP),
    bi_encoder_max_steps: Optional[int] = typer.Option(None, min=1, help=BI_ENCODER_MAX_STEPS_HELP),
    cross_encoder_budget: Optional[int] = typer.Option(None, min=1, help=CROSS_ENCODER_BUDGET_HELP),
    contrastive_image: Optional[str] = typer.Option(
        None, help="Fine-tune this timm backbone (e.g. resnet50) with contrastive loss on the photos of "
                   "the labelled pairs and stack its out-of-fold photo similarities (random init: no "
                   "pretrained weights are downloaded)."),
    contrastive_image_size: int = typer.Option(224, min=16, help="Photo side in pixels for that model."),
    contrastive_epochs: int = typer.Option(3, min=1, help="Epochs of the contrastive photo model."),
    per_category: bool = typer.Option(False, help=PER_CATEGORY_HELP),
    blend: Blend = typer.Option(Blend.learned, help="Blend weights of the components: learned on out-of-fold "
                                "scores, or equal."),
    align: bool = typer.Option(True, "--align/--no-align", help="Prior-shift the per-category scores to the "
                               "general model's prior before blending."),
    calibrate: Calibration = typer.Option(Calibration.none, help="Per-category calibration learned on "
                                          "out-of-fold scores."),
    automl: bool = typer.Option(False, help=AUTOML_HELP),
    enlarge: bool = typer.Option(False, help=ENLARGE_HELP),
    report: bool = typer.Option(True, "--report/--no-report", help="Write OUT/report/report.html (curves, "
                                "per-category PR-AUC, importance, SHAP, CV folds) on the out-of-fold or "
                                "validation scores."),
    config: Optional[Path] = typer.Option(None, help="Matcher config (.toml or .json); overrides the options "
                                    "above except --text-encoder/--image-encoder and the combination options."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
):
    """Train a pairwise duplicate classifier and save it as a model directory."""
    _setup_logging(verbose)
    _check_outputs(inputs=(listings, pairs, valid, mapping, config), model=("--out", out))
    from dupsearch.io import read_pairs
    from dupsearch.models import DuplicateMatcher
    # settings first: a bad config fails before the tables are read
    cfg = _config(backend, n_models, folds, seed, config, text_encoder, image_encoder, features)
    if embedding_components is not None:
        cfg.features = replace(cfg.features, embedding_components=embedding_components)
    _check_encoder_options(cross_encoder, bi_encoder, cross_encoder_budget=cross_encoder_budget,
                           bi_encoder_epochs=bi_encoder_epochs, bi_encoder_max_steps=bi_encoder_max_steps)
    if cross_encoder or contrastive_image or bi_encoder:
        combine = (cross_encoder_combine or (Combine.blend if valid is not None or bi_encoder
                                             else Combine.features)).value
        if combine == "blend" and valid is None:
            raise typer.BadParameter(("--bi-encoder" if bi_encoder else "--cross-encoder-combine blend")
                                     + " fits the blend on validation pairs: give --valid")
        cfg.stacking = _stacking(cross_encoder, cross_encoder_epochs, cross_encoder_max_length,
                                 contrastive_image, contrastive_image_size, contrastive_epochs, combine,
                                 cross_encoder_precision.value, bi_encoder, bi_encoder_epochs,
                                 cross_encoder_budget, bi_encoder_max_steps)
    try:
        cfg = _ensemble(cfg, per_category, blend, align, calibrate, automl, enlarge)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    lst, prs = _load_tables(listings, pairs, mapping, need_labels=True)
    vp = None
    if valid:
        vp, vrep = read_pairs(valid, mapping=mapping, listing_ids=lst["item_id"])
        console.print(f"[dim]{vrep}[/dim]")
    with console.status("training (features, boosting)…"):
        m = DuplicateMatcher(cfg).fit(lst, prs, vp, progress=True)
    m.save(out)
    if report:
        from dupsearch.report import matcher_report
        ev = m.eval_
        scored = prs if ev["what"] == "out-of-fold" else vp
        page = matcher_report(m, out / "report", lst, scored, ev["y"], ev["p"], ev["category"],
                              title=f"dupsearch train: {ev['what']} scores", data_name=f"{ev['what']} scores of "
                              f"{pairs if ev['what'] == 'out-of-fold' else valid}", seed=cfg.seed)
        console.print(f"report -> [bold]{page}[/bold]")
    met = m.metrics_
    if "cv" in met:
        cv = met["cv"]
        t = Table(title=f"{cfg.cv_folds}-fold cross-validation (groups: {cv['grouping']})")
        t.add_column("fold"); t.add_column("pairs", justify="right"); t.add_column("PR-AUC", justify="right")
        for f in cv["folds"]:
            t.add_row(str(f["fold"]), str(f["n_pairs"]), f"{f['pr_auc']:.4f}")
        t.add_row("out-of-fold", str(cv["oof"]["n_pairs"]), f"{cv['oof']['pr_auc']:.4f}")
        console.print(t)
    else:
        console.print(f"validation PR-AUC {met['valid']['pr_auc']:.4f}, best F1 {met['valid']['best_f1']:.4f}")
    if "ensemble" in met:
        e = met["ensemble"]
        console.print("components (alone, PR-AUC): " + ", ".join(
            f"{k} {v:.4f} (weight {e['weights'][k]:.2f})" for k, v in e["component_pr_auc"].items()))
    if m.cluster_thresholds_:
        cl = met["clustering"]
        console.print(f"clustering thresholds (B-cubed F1 on {cl['scores']} scores, groups: {cl['truth']}): " + ", ".join(
            f"{k} {v:.2f} (F1 {cl['best'][k]['bcubed_f1']:.4f})" for k, v in m.cluster_thresholds_.items())
            + f"; default method {m.cluster_method_}")
    console.print(f"threshold {m.threshold_:.4f}; {met['n_features']} features; model saved to [bold]{out}[/bold]")


@app.command()
def predict(
    model: Path = typer.Argument(..., help="Model directory from `dupsearch train`."),
    listings: Path = typer.Argument(...),
    pairs: Path = typer.Argument(...),
    out: Path = typer.Option(..., "--out", "-o", help="Output table (.parquet, .csv, .jsonl)."),
    mapping: Optional[Path] = typer.Option(None),
    trust_model: bool = typer.Option(False, "--trust-model", help=TRUST_HELP),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
):
    """Score pairs: writes the pairs with `probability` and `is_duplicate` columns."""
    _setup_logging(verbose)
    _check_outputs(inputs=(model, listings, pairs, mapping), files=[("--out", out)])
    from dupsearch.io.readers import check_writable_format
    check_writable_format(out)
    from dupsearch.io import write_table
    from dupsearch.models import DuplicateMatcher
    m = DuplicateMatcher.load(model, trust=trust_model)
    lst, prs = _load_tables(listings, pairs, mapping)
    p = m.predict_proba(lst, prs, progress=True)
    res = prs.copy()
    res["probability"] = p
    res["is_duplicate"] = (p >= m.threshold_).astype("int8")
    write_table(res, out)
    console.print(f"{len(res):,} pairs scored ({int(res['is_duplicate'].sum()):,} above threshold "
                  f"{m.threshold_:.4f}) -> [bold]{out}[/bold]")


@app.command()
def evaluate(
    model: Path = typer.Argument(..., help="Model directory from `dupsearch train`."),
    listings: Path = typer.Argument(...),
    pairs: Path = typer.Argument(..., help="Labelled pairs to evaluate on."),
    mapping: Optional[Path] = typer.Option(None),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the metrics as JSON here."),
    report: Optional[Path] = typer.Option(None, help="Write an HTML report with charts into this folder."),
    trust_model: bool = typer.Option(False, "--trust-model", help=TRUST_HELP),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
):
    """PR-AUC, ROC-AUC, best F1 and its threshold, overall and per top-level category."""
    _setup_logging(verbose)
    _check_outputs(inputs=(model, listings, pairs, mapping), files=[("--json", json_out)],
                   report=("--report", report))
    from dupsearch.models import DuplicateMatcher, binary_metrics, per_category_metrics
    m = DuplicateMatcher.load(model, trust=trust_model)
    lst, prs = _load_tables(listings, pairs, mapping, need_labels=True)
    p = m.predict_proba(lst, prs, progress=True)
    y = prs["label"].to_numpy().astype(int)
    met = binary_metrics(y, p, threshold=m.threshold_)
    cat = lst.set_index("item_id")["category_l1"].reindex(prs["item_id_a"].astype(str)).fillna("").to_numpy()
    pc = per_category_metrics(y, p, cat, threshold=m.threshold_)
    t = Table(title=f"evaluation on {pairs}")
    for c in ("scope", "pairs", "positives", "PR-AUC", "ROC-AUC", "best F1", "at threshold", "F1 at model threshold"):
        t.add_column(c, justify="right")
    t.add_row("all", str(met["n_pairs"]), str(met["n_positive"]), f"{met['pr_auc']:.4f}", f"{met['roc_auc']:.4f}",
              f"{met['best_f1']:.4f}", f"{met['best_f1_threshold']:.4f}", f"{met['f1']:.4f}")
    for r in pc.to_dict(orient="records"):
        t.add_row(str(r["category"]), str(r["n_pairs"]), str(r["n_positive"]), f"{r['pr_auc']:.4f}",
                  f"{r['roc_auc']:.4f}", f"{r['best_f1']:.4f}", f"{r['best_f1_threshold']:.4f}", f"{r['f1']:.4f}")
    Console().print(t)
    if json_out:
        _write_json_atomic(json_out, {**met, "per_category": pc.to_dict(orient="records")})
    if report:
        from dupsearch.report import matcher_report
        page = matcher_report(m, report, lst, prs, y, p, cat, title="dupsearch evaluation", data_name=str(pairs))
        console.print(f"report -> [bold]{page}[/bold]")


@app.command()
def bench(
    dataset_dir: Path = typer.Argument(..., help="A benchmark folder, e.g. ../shared/benchmarks/abt-buy."),
    train_size: TrainSize = typer.Option(TrainSize.medium, help="WDC training-set size."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the results as JSON here."),
    backend: Backend = typer.Option(Backend.catboost),
    n_models: int = typer.Option(3, min=1),
    seed: int = typer.Option(0, min=0, help="Base random seed (boosters use seed, seed+1, ...)."),
    model_out: Optional[Path] = typer.Option(None, help="Also save the trained model here."),
    report: Optional[Path] = typer.Option(None, help="Write an HTML report on the test split here."),
    text_encoder: Optional[list[str]] = typer.Option(None, "--text-encoder", "-t", help=TEXT_ENCODER_HELP),
    features: FeatureSet = typer.Option(FeatureSet.default, "--features", help=FEATURE_SET_HELP),
    embedding_components: int = typer.Option(0, min=0, help=COMPONENTS_HELP),
    cross_encoder: Optional[str] = typer.Option(None, help=CROSS_ENCODER_HELP),
    cross_encoder_epochs: Optional[float] = typer.Option(
        None, min=0.1, help=f"Fine-tuning epochs of the cross-encoder (default: at most {CE_EPOCHS:g} within "
                            f"the recipe's CPU budget for blend, 1 for features)."),
    cross_encoder_combine: Optional[Combine] = typer.Option(None, help=COMBINE_HELP),
    cross_encoder_max_length: int = typer.Option(128, min=16, help="Tokens per pair for the cross-encoder."),
    cross_encoder_precision: Precision = typer.Option(Precision.auto, help=PRECISION_HELP),
    stack_folds: int = typer.Option(3, min=2, help="Folds of the cross-encoder's out-of-fold scores."),
    bi_encoder: Optional[str] = typer.Option(None, help=BI_ENCODER_HELP),
    bi_encoder_epochs: Optional[float] = typer.Option(None, min=0.1, help=BI_ENCODER_EPOCHS_HELP),
    bi_encoder_max_steps: Optional[int] = typer.Option(None, min=1, help=BI_ENCODER_MAX_STEPS_HELP),
    cross_encoder_budget: Optional[int] = typer.Option(None, min=1, help=CROSS_ENCODER_BUDGET_HELP),
    rouge: bool = typer.Option(False, "--rouge/--no-rouge", help=ROUGE_HELP),
    dirty: float = typer.Option(0.0, min=0.0, max=1.0, help="Measure the dataset's dirty variant: each value "
                                "other than the title moved into the title with this probability "
                                "(Magellan's dirty sets used 0.5), seeded by --seed."),
    per_category: bool = typer.Option(False, help=PER_CATEGORY_HELP),
    blend: Blend = typer.Option(Blend.learned, help="Blend weights: learned on validation scores, or equal."),
    align: bool = typer.Option(True, "--align/--no-align", help="Prior-shift per-category scores."),
    calibrate: Calibration = typer.Option(Calibration.none, help="Per-category calibration."),
    automl: bool = typer.Option(False, help=AUTOML_HELP),
    enlarge: bool = typer.Option(False, help=ENLARGE_HELP),
    threshold_rule: ThresholdRule = typer.Option(ThresholdRule.best_f1, help=THRESHOLD_RULE_HELP),
    moved_text_share: float = typer.Option(0.0, min=0.0, max=1.0, help=MOVED_TEXT_HELP),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
):
    """Run one shared benchmark under its protocol: train on train, threshold and early
    stopping on valid, F1 and PR-AUC on test."""
    _setup_logging(verbose)
    _check_outputs(inputs=(dataset_dir,), files=[("--json", json_out)], model=("--model-out", model_out),
                   report=("--report", report))
    from dupsearch.bench import run_benchmark
    from dupsearch.models import GBDTConfig, MatcherConfig
    cfg = MatcherConfig(gbdt=GBDTConfig(backend=backend.value), n_models=n_models, seed=seed,
                        threshold_rule=threshold_rule.value, moved_text_share=moved_text_share,
                        features=_with_rouge(replace(_features(text_encoder, None, features),
                                                     embedding_components=embedding_components), rouge),
                        stacking=replace(_stacking(cross_encoder, cross_encoder_epochs, cross_encoder_max_length,
                                                   combine=(cross_encoder_combine or Combine.blend).value,
                                                   precision=cross_encoder_precision.value, bi_encoder=bi_encoder,
                                                   bi_encoder_epochs=bi_encoder_epochs,
                                                   cross_encoder_budget=cross_encoder_budget,
                                                   bi_encoder_max_steps=bi_encoder_max_steps),
                                         folds=stack_folds))
    try:
        cfg = _ensemble(cfg, per_category, blend, align, calibrate, automl, enlarge)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    with console.status(f"benchmark {dataset_dir.name}…"):
        res = run_benchmark(dataset_dir, train_size=train_size.value, config=cfg, progress=False,
                            model_out=model_out, report_dir=report, dirty=dirty)
    t = Table(title=f"{res['dataset']} (test split of {dataset_dir})")
    t.add_column("metric"); t.add_column("value", justify="right")
    for k in ("f1", "precision", "recall", "pr_auc", "roc_auc", "threshold", "n_features", "train_seconds",
              "predict_seconds", "pairs_per_second_features"):
        t.add_row(k, str(res[k]))
    for rule, f1 in (res.get("f1_by_threshold_rule") or {}).items():
        t.add_row(f"f1 at the {rule} threshold" + (" (used)" if rule == res["threshold_rule"] else ""), str(f1))
    if res.get("stacking"):
        ce = res["stacking"].get("cross_encoder", {})
        if ce.get("combine") == "blend":
            t.add_row("cross-encoder alone (validation PR-AUC)", f"{ce.get('valid_pr_auc', float('nan')):.4f}")
            t.add_row("cross-encoder fine-tune seconds", f"{ce.get('final_seconds', 0):.0f}")
            t.add_row("blend weights (booster, cross-encoder logits)", str(ce.get("blend", {}).get("weights")))
        else:
            t.add_row("cross-encoder alone (out-of-fold PR-AUC)", f"{ce.get('oof_pr_auc', float('nan')):.4f}")
            t.add_row("cross-encoder seconds (out-of-fold + final)",
                      f"{ce.get('oof_seconds', 0):.0f} + {ce.get('final_seconds', 0):.0f}")
    for name, st in (res.get("encoders") or {}).items():
        rate = f"{st['items_per_second']:,.0f} items/s" if st.get("items_per_second") else "-"
        t.add_row(f"encoder {name}", f"{st['encoded']:,} encoded, {st['cached']:,} cached; {rate}")
    Console().print(t)
    if json_out:
        _write_json_atomic(json_out, res)
        console.print(f"results -> [bold]{json_out}[/bold]")


@app.command()
def demo(
    out: Path = typer.Option(Path("out/demo"), "--out", "-o", help="Folder for data, model, report."),
    n_listings: int = typer.Option(6000, min=200, help="Listings to generate."),
    seed: int = typer.Option(0, min=0, help="Seed of the generator, the split and the boosters."),
    photos: bool = typer.Option(True, "--photos/--no-photos",
                                help="Draw 1-5 photos (PNG) per listing; the photo encoders compare them."),
    compare_cleaning: bool = typer.Option(False, help="Also train with homoglyph cleaning off and compare."),
    backend: Backend = typer.Option(Backend.catboost),
    n_models: int = typer.Option(1, min=1, help="Boosters with different seeds, averaged."),
    text_encoder: Optional[list[str]] = typer.Option(None, "--text-encoder", "-t", help=TEXT_ENCODER_HELP),
    image_encoder: Optional[list[str]] = typer.Option(None, "--image-encoder", "-i", help=IMAGE_ENCODER_HELP),
    compare_images: bool = typer.Option(False, help="Also train without the photo encoders and compare."),
    dedup: bool = typer.Option(True, "--dedup/--no-dedup",
                               help="Also run `dupsearch dedup` with the trained model on the whole catalogue."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
):
    """The whole job on a generated Russian marketplace: generate, train with grouped
    cross-validation, evaluate on held-out pairs, dedup the whole catalogue, write an HTML report."""
    _setup_logging(verbose)
    _check_outputs(demo=("--out", out))
    from dupsearch.demo import run_demo
    from dupsearch.models import GBDTConfig, MatcherConfig
    cfg = MatcherConfig(gbdt=GBDTConfig(backend=backend.value), n_models=n_models, seed=seed,
                        features=_features(text_encoder, image_encoder))
    if compare_images and not (photos and cfg.features.image_encoders):
        raise typer.BadParameter("--compare-images needs photos (not --no-photos) and image encoders "
                                 "(not --image-encoder none)")
    res = run_demo(out, n_listings=n_listings, seed=seed, photos=photos, config=cfg,
                   compare_cleaning=compare_cleaning, compare_images=compare_images, dedup=dedup,
                   log=console.print)
    t = res["test"]
    Console().print(f"held-out PR-AUC {t['pr_auc']:.4f}  ROC-AUC {t['roc_auc']:.4f}  "
                    f"F1 {t['f1']:.4f} (threshold {t['threshold']:.3f})")
    console.print(f"report -> [bold]{res['report']}[/bold]; summary -> {out / 'summary.json'}")


@app.command()
def ablate(
    listings: Optional[Path] = typer.Argument(None, help="Listings table (or use --benchmark)."),
    pairs: Optional[Path] = typer.Argument(None, help="Labelled pairs to cross-validate on."),
    benchmark: Optional[Path] = typer.Option(None, help="A shared benchmark folder instead: its train and "
                                             "valid pairs (never test) are cross-validated."),
    train_size: TrainSize = typer.Option(TrainSize.medium, help="WDC training-set size (with --benchmark)."),
    mapping: Optional[Path] = typer.Option(None, help="TOML column mapping to the data contract."),
    families: bool = typer.Option(True, "--families/--no-families", help="Ablate the feature families."),
    components: bool = typer.Option(True, "--components/--no-components", help="Ablate the model components."),
    backend: Backend = typer.Option(Backend.catboost, help="Gradient-boosting library."),
    folds: int = typer.Option(5, min=2, help="Cross-validation folds (the same for every row)."),
    seed: int = typer.Option(0, min=0),
    text_encoder: Optional[list[str]] = typer.Option(None, "--text-encoder", "-t", help=TEXT_ENCODER_HELP),
    image_encoder: Optional[list[str]] = typer.Option(None, "--image-encoder", "-i", help=IMAGE_ENCODER_HELP),
    cross_encoder: Optional[str] = typer.Option(None, help=CROSS_ENCODER_HELP),
    calibrate: Calibration = typer.Option(Calibration.none, help="Calibration in the full system."),
    automl: bool = typer.Option(False, help=AUTOML_HELP),
    config: Optional[Path] = typer.Option(None, help="Matcher config (.toml or .json) of the full system."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the table and details as JSON here."),
    report: Optional[Path] = typer.Option(None, help="Write an HTML report (full system's out-of-fold "
                                          "scores, ablation chart and table) into this folder."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
):
    """What each feature family and model component buys: out-of-fold PR-AUC with each one
    off (or, for options off by default, on) in turn, and its change."""
    _setup_logging(verbose)
    _check_outputs(inputs=(listings, pairs, benchmark, mapping, config), files=[("--json", json_out)],
                   report=("--report", report))
    import pandas as pd
    from dupsearch.bench.ablation import run_ablation
    if benchmark is not None:
        if listings is not None or pairs is not None:
            raise typer.BadParameter("give LISTINGS PAIRS or --benchmark, not both")
        from dupsearch.io import load_benchmark
        data = load_benchmark(benchmark, train_size=train_size.value)
        lst, prs = data.listings, pd.concat([data.train, data.valid], ignore_index=True)
        name = f"{benchmark} (train + valid pairs)"
    elif listings is None or pairs is None:
        raise typer.BadParameter("give LISTINGS and PAIRS, or --benchmark DIR")
    else:
        lst, prs = _load_tables(listings, pairs, mapping, need_labels=True)
        name = str(pairs)
    cfg = _config(backend, 1, folds, seed, config, text_encoder, image_encoder)
    if cross_encoder:
        cfg.stacking = _stacking(cross_encoder, None, 128)
    try:
        cfg = _ensemble(cfg, False, Blend.learned, True, calibrate, automl, False)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    table, info = run_ablation(lst, prs, cfg, families=families, components=components, progress=True,
                               log=console.print)
    t = Table(title=f"ablation: {cfg.cv_folds}-fold out-of-fold PR-AUC on {name}")
    for c in ("section", "variant", "PR-AUC", "change", "seconds"):
        t.add_column(c, justify="left" if c in ("section", "variant") else "right")
    for r in table.itertuples():
        t.add_row(r.section, r.variant, f"{r.pr_auc:.4f}", "" if pd.isna(r.delta) else f"{r.delta:+.4f}",
                  f"{r.seconds:.0f}")
    Console().print(t)
    for why in info["skipped"]:
        console.print(f"[dim]not run: {why}[/dim]")
    if json_out:
        # The reference rows have no change: null in the JSON (pandas holds it as NaN, which
        # json.dumps would write as the non-standard token NaN).
        rows = [{k: None if isinstance(v, float) and v != v else v for k, v in r.items()}
                for r in table.to_dict(orient="records")]
        _write_json_atomic(json_out, {"data": name, "folds": cfg.cv_folds, "seed": seed,
                                      "rows": rows, "skipped": info["skipped"],
                                      "n_pairs": info["n_pairs"], "seconds": info["seconds"]})
        console.print(f"results -> [bold]{json_out}[/bold]")
    if report and "full_oof" not in info:
        console.print("[yellow]no report written: it shows the full system's scores, which --no-components "
                      "does not compute[/yellow]")
    if report and "full_oof" in info:
        from dupsearch.models import binary_metrics
        from dupsearch.report import write_report
        met = binary_metrics(info["y"], info["full_oof"])
        page = write_report(report, info["y"], info["full_oof"], met, title="dupsearch ablation",
                            data_name=f"full system, out-of-fold scores of {name}", ablation=table)
        console.print(f"report -> [bold]{page}[/bold]")


BLOCK_HELP = ("Blocker spec, repeatable (default: chosen from the columns present: key:seller_id+category_l2, "
              "title, phone, ann:text?k=5&partition=category_l2+city). Kinds: category:LEVEL, title, phone, "
              "key:COL+COL, minhash[?num_perm=64&bands=16&columns=title], phash, "
              "ann:text|title|photos[?k=10&partition=COL+COL&exclude=COL&encoder=SPEC&backend=auto|exact|usearch|faiss]; "
              "every kind takes max_block= and name=.")


@app.command()
def dedup(
    listings: Path = typer.Argument(..., help="The catalogue: listings table (.parquet, .csv, .jsonl)."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="Model directory from `dupsearch train` "
                                         "(default: the general model shipped with dupsearch, trained on a "
                                         "generated marketplace)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (resumable: rerun the same command "
                             "to continue an interrupted run)."),
    block: Optional[list[str]] = typer.Option(None, "--block", "-b", help=BLOCK_HELP),
    batch_size: int = typer.Option(20_000, min=1, help="Candidate pairs per scored Parquet part."),
    threshold: Optional[float] = typer.Option(None, min=0.0, max=1.0,
                                              help="Score above which two listings are linked, for the pairs "
                                                   "and every clustering method (default: the model's pair "
                                                   "threshold for duplicates.parquet and each method's own "
                                                   "threshold, chosen for groups at training)."),
    truth: Optional[str] = typer.Option(None, help="Listings column with known duplicate groups: blocking "
                                        "recall and cluster metrics are reported (default: cluster_id when "
                                        "present; a column named here must exist; '' turns it off)."),
    workers: int = typer.Option(1, min=1, help="Scoring processes (each scores whole parts)."),
    restart: bool = typer.Option(False, "--restart", help="Delete what dupsearch wrote in OUT and start over "
                                 "(other files there are kept)."),
    trust_model: bool = typer.Option(False, "--trust-model", help=TRUST_HELP),
    mapping: Optional[Path] = typer.Option(None),
    engine: str = typer.Option("local", "--engine", help="local: processes on this machine; spark: Apache "
                               "Spark (extra `spark`; Parquet input), the same outputs."),
    spark_master: Optional[str] = typer.Option(None, "--spark-master", help="Spark master URL for --engine spark "
                                               "(default: what spark-submit set, else local[*])."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
):
    """Find duplicate groups in a whole catalogue: candidate pairs (blocking), scores from the
    model in resumable Parquet parts, then clusters (connected components, CENTER, average-link)."""
    if engine not in ("local", "spark"):
        raise typer.BadParameter(f"{engine!r} is not one of local, spark", param_hint="--engine")
    if spark_master is not None and engine != "spark":
        raise typer.BadParameter("--spark-master goes with --engine spark", param_hint="--spark-master")
    _setup_logging(verbose)
    from dupsearch.engines import DedupConfig, run_dedup
    if block:
        from dupsearch.candidates.specs import make_blocker
        for spec in block:
            try:
                make_blocker(spec)
            except ValueError as e:
                raise typer.BadParameter(str(e), param_hint="--block") from None
    cfg = DedupConfig(blockers=list(block) if block else None, batch_size=batch_size, threshold=threshold,
                      truth_column="cluster_id" if truth is None else (truth or None), workers=workers,
                      trust_model=trust_model)
    if model is None:
        from dupsearch.models.default import default_model_path
        model = default_model_path()
        console.print("model: the default model shipped with dupsearch (trained on a generated marketplace; "
                      "a model trained on your own labelled pairs fits your catalogue better)")
    rep = run_dedup(listings, model, out, cfg, mapping=mapping, restart=restart, log=console.print,
                    require_truth=bool(truth), engine=engine, spark_master=spark_master)
    b, c = rep["blocking"], rep["clustering"]
    t = Table(title=f"dedup of {rep['listings']:,} listings -> {out}")
    t.add_column("")
    t.add_column("value", justify="right")
    t.add_row("candidate pairs", f"{b['n_candidates']:,} ({b['candidates_per_listing']:.2f} per listing)")
    t.add_row("reduction ratio", f"{b['reduction_ratio']:.6f}")
    if "pair_recall" in b:
        t.add_row(f"blocking pair recall ({b['truth_column']})", f"{b['pair_recall']:.4f}")
    t.add_row("pair threshold", f"{c['threshold']:.4f}")
    for method, m in c["methods"].items():
        line = (f"at {m['threshold']:.2f}: {m['groups_of_2_or_more']:,} groups, "
                f"{m['listings_in_groups']:,} listings")
        if "bcubed" in m:
            line += f"; B-cubed F1 {m['bcubed']['f1']:.4f}, pairwise F1 {m['pairwise']['f1']:.4f}"
        t.add_row(method + (" (default: column cluster)" if method == c["method"] else ""), line)
    t.add_row("wall time", f"{rep['wall_seconds']:.1f} s" + (" (resumed)" if rep["resumed"] else ""))
    t.add_row("peak memory", f"{rep['peak_memory_mb']:,.0f} MB" + (
        f" (largest worker {rep['peak_worker_memory_mb']:,.0f} MB, shared pages counted in both)"
        if "peak_worker_memory_mb" in rep else ""))
    Console().print(t)


@app.command()
def thresholds(
    model: Path = typer.Argument(..., help="Model directory (the one the dedup run used)."),
    run: Path = typer.Option(..., "--run", help="A finished `dupsearch dedup` output folder, scored by MODEL."),
    listings: Path = typer.Option(..., "--listings", help="The listings that run deduplicated, with known groups."),
    out: Path = typer.Option(..., "--out", "-o", help="Model directory to write (MODEL itself to update it)."),
    truth: str = typer.Option("cluster_id", help="Listings column naming each listing's true group."),
    mapping: Optional[Path] = typer.Option(None, help="TOML column mapping to the data contract."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
):
    """Choose each clustering method's threshold (and the default method) by B-cubed F1 on a
    deduplicated catalogue with known groups, and save the model with them: a catalogue larger than
    the training data wants higher cuts than `train` chose."""
    _setup_logging(verbose)
    _check_outputs(inputs=(listings, mapping, run), model=("--out", out))
    from dupsearch.engines.thresholds import tune_thresholds
    rep = tune_thresholds(model, run, listings, out, truth=truth, mapping=mapping, log=console.print)
    t = Table(title=f"B-cubed F1 on {run} against {truth}")
    for c in ("method", "threshold before", "threshold now", "B-cubed F1", "pairwise F1"):
        t.add_column(c, justify="right" if c != "method" else "left")
    before = rep["before"]["thresholds"] or {}
    for m, b in rep["best"].items():
        t.add_row(m + (" (default)" if m == rep["method"] else ""),
                  f"{before[m]:.2f}" if m in before else "-", f"{b['threshold']:.2f}",
                  f"{b['bcubed_f1']:.4f}", f"{b['pairwise_f1']:.4f}")
    Console().print(t)


@app.command()
def label(
    listings: Path = typer.Argument(..., help="The listings to find duplicates in (.parquet, .csv, .jsonl)."),
    out: Path = typer.Option(..., "--out", "-o", help="Labels file (Parquet): written after every answer; "
                             "rerun the same command to go on where you stopped."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="Model that chooses the first questions "
                                         "(default: the default model shipped with dupsearch)."),
    retrain_every: int = typer.Option(20, min=0, help="Answers between retrainings on your answers (0: never)."),
    save_model: Optional[Path] = typer.Option(None, help="Save each retrained model here (for dedup --model)."),
    web: bool = typer.Option(False, "--web", help="Show the pairs on a local page (127.0.0.1) with the photos "
                             "instead of the terminal."),
    port: int = typer.Option(0, min=0, max=65535, help="Port of the --web page (0: a free one)."),
    mapping: Optional[Path] = typer.Option(None, help="TOML column mapping to the data contract."),
    trust_model: bool = typer.Option(False, "--trust-model", help=TRUST_HELP),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
):
    """Label the pairs that teach a model most: candidates dedup would score, least certain first,
    categories in turn. Keys: y (duplicates), n (not), u (unsure), b (back), q (quit)."""
    _setup_logging(verbose)
    from dupsearch.io import read_listings
    from dupsearch.label.active import ActiveLabeler, LabelConfig, LabelFile
    from dupsearch.label.session import Session
    from dupsearch.models import DuplicateMatcher
    _check_outputs(inputs=(listings, mapping, model), files=(("--out", out),),
                   model=("--save-model", save_model))
    labels = LabelFile(out).read()  # a file that is not ours is refused before any work
    if model is None:
        from dupsearch.models.default import default_model_path
        model, name = default_model_path(), "default model"
    else:
        name = f"model {model}"
    matcher = DuplicateMatcher.load(model, trust=trust_model)
    lst, rep = read_listings(listings, mapping=mapping)
    console.print(f"[dim]{rep}[/dim]")
    with console.status("candidate pairs and their scores…"):
        labeler = ActiveLabeler(lst, matcher, LabelConfig(retrain_every=retrain_every), labels=labels,
                            model_name=name)
    console.print(f"{len(labeler.a):,} candidate pairs; {len(labels):,} answers in {out}")
    session = Session(labeler, LabelFile(out), retrain_every=retrain_every, save_model=save_model,
                      say=console.print)
    if web:
        from dupsearch.label.web import serve_session
        counts = serve_session(session, port=port, say=console.print)
    else:
        from dupsearch.label.terminal import run_terminal
        counts = run_terminal(session, console)
    console.print(f"{counts['answers']:,} answers saved in {out} (y {counts['y']}, n {counts['n']}, u {counts['u']})")


index_app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                        help="A catalogue index for online matching: build, add, remove, compact, verify.")
app.add_typer(index_app, name="index")


def _read_listings(path: Path, mapping: Optional[Path] = None):
    from dupsearch.io import read_listings
    lst, rep = read_listings(path, mapping=mapping)
    console.print(f"[dim]{rep}[/dim]")
    return lst


@index_app.command("build")
def index_build(
    listings: Path = typer.Argument(..., help="The catalogue: listings table (.parquet, .csv, .jsonl)."),
    model: Path = typer.Option(..., "--model", "-m", help="Model directory from `dupsearch train` (copied in)."),
    out: Path = typer.Option(..., "--out", "-o", help="Index folder (new, empty, or an index to replace)."),
    block: Optional[list[str]] = typer.Option(None, "--block", "-b", help=BLOCK_HELP),
    workers: int = typer.Option(1, min=1, help="Processes that build the listing store."),
    trust_model: bool = typer.Option(False, "--trust-model", help=TRUST_HELP),
    mapping: Optional[Path] = typer.Option(None),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
):
    """Build an index of a catalogue: listing store, blockers' key tables, vectors and HNSW graphs,
    and the model, with every file's digest in its manifest."""
    _setup_logging(verbose)
    _check_outputs(inputs=(listings, model, mapping), index=("--out", out))
    import time as _time
    from dupsearch.index import Index
    from dupsearch.models import DuplicateMatcher
    DuplicateMatcher.load(model, trust=trust_model)  # a broken model fails before reading the catalogue
    t0 = _time.perf_counter()
    lst = _read_listings(listings, mapping)
    idx = Index.build(lst, model, out, blockers=block, workers=workers, progress=True, trust=trust_model)
    size = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())
    console.print(f"index of {len(idx):,} listings built in {_time.perf_counter() - t0:.1f} s "
                  f"({size / 2**20:,.1f} MiB) -> [bold]{out}[/bold]")


@index_app.command("add")
def index_add(
    index: Path = typer.Argument(..., help="Index folder from `dupsearch index build`."),
    listings: Path = typer.Argument(..., help="Listings to add; an item_id already there is replaced."),
    trust_model: bool = typer.Option(False, "--trust-model", help=TRUST_HELP),
    mapping: Optional[Path] = typer.Option(None),
):
    """Add (upsert) listings to an index; durable when the command returns."""
    from dupsearch.index import Index
    idx = Index.open(index, trust=trust_model)
    lst = _read_listings(listings, mapping)
    replaced = int(sum(i in idx for i in lst["item_id"].astype(str)))
    idx.upsert(lst, top=None)
    console.print(f"{len(lst):,} listings added ({replaced:,} replaced); the index holds {len(idx):,}")


@index_app.command("remove")
def index_remove(
    index: Path = typer.Argument(..., help="Index folder from `dupsearch index build`."),
    ids: Path = typer.Option(..., "--ids", help="A table with an item_id column, or a text file of one id per line."),
    trust_model: bool = typer.Option(False, "--trust-model", help=TRUST_HELP),
):
    """Remove listings from an index by item_id; durable when the command returns."""
    from dupsearch.index import Index
    wanted = _read_ids(ids)
    idx = Index.open(index, trust=trust_model)
    n = idx.remove(wanted)
    console.print(f"{n:,} of {len(wanted):,} listings removed ({len(wanted) - n:,} were not in the index); "
                  f"the index holds {len(idx):,}")


def _read_ids(path: Path) -> list[str]:
    if path.suffix.lower() in (".txt", ""):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise DataError(f"not UTF-8 text ({e.reason})", path=str(path)) from None
        return [x.strip() for x in lines if x.strip()]
    from dupsearch.io.readers import read_table
    table = read_table(path)
    if "item_id" not in table.columns:
        raise DataError("missing required column", path=str(path), column="item_id")
    return table["item_id"].dropna().astype(str).tolist()


@index_app.command("compact")
def index_compact(
    index: Path = typer.Argument(..., help="Index folder from `dupsearch index build`."),
    trust_model: bool = typer.Option(False, "--trust-model", help=TRUST_HELP),
):
    """Merge an index's segments into one (removed listings dropped, HNSW graphs rebuilt)."""
    from dupsearch.index import Index
    rep = Index.open(index, trust=trust_model).compact()
    console.print(f"{rep['segments_before']} segments -> {rep['segments']}; {rep['listings']:,} listings")


@index_app.command("verify")
def index_verify(
    index: Path = typer.Argument(..., help="Index folder from `dupsearch index build`."),
    trust_model: bool = typer.Option(False, "--trust-model", help=TRUST_HELP),
):
    """Check every file of an index against the sha256 in its manifest."""
    from dupsearch.index import Index
    idx = Index.open(index, verify=True, trust=trust_model)
    console.print(f"{index}: every file matches its digest; {len(idx):,} listings in "
                  f"{idx.stats()['segments']} segment(s)")


@app.command()
def match(
    index: Path = typer.Argument(..., help="Index folder from `dupsearch index build`."),
    listings: Path = typer.Argument(..., help="New listings (.parquet, .csv, .jsonl)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output table (.parquet, .csv, .jsonl): item_id, rank, "
                             "match_id, probability, blockers."),
    top: int = typer.Option(10, "--top", "-k", min=1, help="Matches kept per new listing."),
    add: bool = typer.Option(False, "--add", help="Also add the listings to the index (they then match "
                             "each other too)."),
    trust_model: bool = typer.Option(False, "--trust-model", help=TRUST_HELP),
    mapping: Optional[Path] = typer.Option(None),
):
    """Is each new listing a re-post? Its top candidates in the index, from the blockers dedup
    uses, scored by the model: the same scores as `dupsearch predict` for those pairs."""
    _check_outputs(inputs=(index, listings, mapping), files=[("--out", out)])
    from dupsearch.io.readers import check_writable_format
    check_writable_format(out)
    from dupsearch.index import Index
    from dupsearch.io import write_table
    idx = Index.open(index, trust=trust_model)
    lst = _read_listings(listings, mapping)
    res = idx.upsert(lst, top=top) if add else idx.match(lst, top=top)
    res["is_duplicate"] = (res["probability"] >= idx.matcher.threshold_).astype("int8")
    write_table(res, out)
    n_dup = res.loc[res["rank"] == 1, "is_duplicate"].sum()
    console.print(f"{len(lst):,} listings matched: {int(n_dup):,} have a match above threshold "
                  f"{idx.matcher.threshold_:.4f}" + (f"; added, the index holds {len(idx):,}" if add else "")
                  + f" -> [bold]{out}[/bold]")


@app.command()
def serve(
    index: Path = typer.Argument(..., help="Index folder from `dupsearch index build`."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, min=0, max=65535),
    tokens: Optional[Path] = typer.Option(None, help="Token file: lines 'read:TOKEN' or 'write:TOKEN' "
                                          "(or set DUPSEARCH_TOKENS='write:T1,read:T2')."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Serve without tokens (local use only)."),
    max_body_mb: float = typer.Option(8.0, min=0.001, help="Largest request body, MiB (413 above)."),
    max_batch: int = typer.Option(1000, min=1, help="Most listings in one request (413 above)."),
    timeout: float = typer.Option(30.0, min=0.1, help="Seconds a request may take (then 504; a queued write not yet started: 503, not applied)."),
    trust_model: bool = typer.Option(False, "--trust-model", help=TRUST_HELP),
    workers: int = typer.Option(1, min=1, help="Server processes on the one port (a match runs on one "
                                "core per process: give it the cores it may use)."),
):
    """Serve an index over HTTP (needs `pip install 'dupsearch[serve]'`): POST /v1/match,
    PUT/DELETE /v1/listings/{id}, POST /v1/listings (bulk upsert), GET /v1/listings/{id}/duplicates,
    /healthz, /metrics, /docs."""
    from dupsearch.serve import run_server
    try:
        run_server(index, host=host, port=port, tokens_file=tokens, no_auth=no_auth,
                   max_body_bytes=int(max_body_mb * 2**20), max_batch=max_batch, timeout_s=timeout,
                   trust=trust_model, workers=workers)
    except KeyboardInterrupt:  # Ctrl-C is how a server is stopped: it has shut down cleanly by now
        console.print("dupsearch serve: stopped")


@app.command()
def version():
    """Print the versions of dupsearch and its key dependencies."""
    from dupsearch.models.matcher import dependency_versions
    for k, v in dependency_versions().items():
        typer.echo(f"{k} {v}")


@app.command()
def generate(
    out_dir: Path = typer.Argument(..., help="Folder for listings.parquet, pairs.parquet, "
                                   "train/valid/test_pairs.parquet, metadata.json (and photos/)."),
    n_listings: int = typer.Option(5000, "--n-listings", "-n", min=1, help="Listings to generate."),
    seed: int = typer.Option(0, min=0, help="Random seed: the same seed gives the same tables."),
    photos: bool = typer.Option(False, "--photos/--no-photos",
                                help="Draw 1-5 small PNG photos per listing into OUT_DIR/photos."),
    positive_rate: float = typer.Option(0.3, min=0.0, max=1.0, help="Share of duplicate pairs."),
    n_pairs: Optional[int] = typer.Option(None, min=0, help="Pairs to write (default: every "
                                          "duplicate pair plus negatives for --positive-rate)."),
    dup_rate: float = typer.Option(0.3, min=0.0, max=0.9, help="Share of listings that re-post an item."),
    homoglyph_rate: float = typer.Option(0.7, min=0.0, max=1.0,
                                         help="Share of listings with Cyrillic/Latin look-alike letters swapped."),
    split: bool = typer.Option(True, "--split/--no-split",
                               help="Also write train/valid/test pairs (0.6/0.2/0.2, no item in two splits)."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
):
    """Generate a synthetic Russian marketplace with known duplicates: listings in seven
    categories, re-posts, hard negatives, homoglyph spam, labelled pairs."""
    _setup_logging(verbose)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from dupsearch.artifacts import open_dir
    from dupsearch.synth import generate_marketplace
    open_dir(out_dir, "dataset", what="OUT_DIR")  # before any work: a folder of other files is refused
    with Progress(TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as bar:
        tasks: dict = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        try:
            m = generate_marketplace(n_listings, seed=seed, dup_rate=dup_rate,
                                     homoglyph_rate=homoglyph_rate,
                                     photos_dir=out_dir / "photos" if photos else None,
                                     n_pairs=n_pairs, positive_rate=positive_rate, progress=progress)
        except ValueError as e:
            raise DupsearchError(str(e)) from None
        task = bar.add_task("writing", total=1)
        paths = m.write(out_dir, split=(0.6, 0.2, 0.2) if split else None)
        bar.update(task, completed=1)
    st = m.stats()
    t = Table(title=f"synthetic marketplace (seed {seed}) -> {out_dir}")
    t.add_column("what"); t.add_column("count", justify="right")
    t.add_row("listings", f"{st['listings']:,}")
    t.add_row("items (cluster_id)", f"{st['items']:,}")
    t.add_row("photos", f"{st['photos']:,}")
    t.add_row("pairs", f"{st['pairs']:,}")
    t.add_row("duplicate pairs", f"{st['positive_pairs']:,} ({st['positive_rate']:.1%})")
    for kind, n in st["pairs_by_kind"].items():
        t.add_row(f"  {kind}", f"{n:,}")
    console.print(t)
    console.print("files: " + ", ".join(p.name for p in paths.values()))


def _fail(message: str, code: int = 2) -> None:
    """One line on stderr, never wrapped (rich would wrap at the terminal's width), then exit."""
    text = " ".join(str(message).split()) if "\n" in str(message) else str(message)
    sys.stderr.write(f"error: {text}\n")
    sys.stderr.flush()
    sys.exit(code)


def _os_error_line(e: OSError) -> str:
    where = f"{e.filename}: " if getattr(e, "filename", None) else ""
    return f"{where}{e.strerror or e}"


def main(argv: Optional[list[str]] = None) -> None:
    """The `dupsearch` entry point: every failure it expects is one line on stderr and exit 2.

    Usage errors (click) are one line too, not typer's boxed panel; an OSError (disk full,
    permission denied, a folder where a file was expected) names its path.
    """
    try:  # typer >= 0.20 carries its own copy of click
        from typer._click import exceptions as click_errors
    except ImportError:  # pragma: no cover
        from click import exceptions as click_errors

    try:
        rc = app(args=argv, standalone_mode=False)
    except DupsearchError as e:
        _fail(str(e))
    except click_errors.NoArgsIsHelpError:
        sys.exit(0)  # typer's rich help already printed the help, as when --help is given
    except click_errors.UsageError as e:
        ctx = e.ctx
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        _fail(f"{e.format_message()}{hint}")
    except click_errors.ClickException as e:
        _fail(e.format_message(), e.exit_code if e.exit_code else 2)
    except typer.Abort:
        _fail("aborted", 130)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except MemoryError:
        _fail("out of memory; use a smaller input, fewer --workers or a smaller --batch-size")
    except OSError as e:
        if e.errno == errno.EPIPE:  # output piped into head: not an error
            sys.exit(0)
        _fail(_os_error_line(e))
    if isinstance(rc, int) and rc:  # typer.Exit(code) inside a command
        sys.exit(rc)


if __name__ == "__main__":
    main()
