"""Every setting of dupsearch in one place: typed, nested dataclasses with a strict ``from_dict``.

    >>> MatcherConfig.from_dict({"n_models": 1, "features": {"families": ["strings", "price"]}})
    >>> MatcherConfig.from_dict({"featurse": {}})   # ConfigError: unknown setting 'featurse'

``from_dict`` names the dotted path of an unknown key or a value of the wrong type, so a config
file fails before any work with one line saying what to fix. The modules that use a setting
import its class from here (``dupsearch.models.gbdt.GBDTConfig`` is this ``GBDTConfig``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field

from dupsearch.errors import DupsearchError

BACKENDS = ("catboost", "lightgbm")
BLEND_MODES = ("learned", "equal")
CALIBRATION_METHODS = ("none", "platt", "isotonic")
# Feature families in output order; the last two are driven by the configured encoders.
FAMILY_NAMES = ("category", "strings", "sets", "antiwords", "lengths", "price", "scripts", "corpus",
                "attributes", "embeddings", "images")
# Each family's constructor settings (checked against the classes by the tests).
FAMILY_SETTINGS = {
    "category": (), "strings": ("fields", "max_chars", "partial_chars", "rouge_fields"), "sets": ("fields", "word_ngrams"),
    "antiwords": ("fields",), "lengths": ("fields",), "price": (), "scripts": ("fields",),
    "corpus": ("fields", "char_fields"), "attributes": ("top_k",),
}


# Named feature sets (`dupsearch train --features NAME`): settings of FeatureConfig.
# "online" is for an index that answers online (issue #17): it leaves out the features whose
# per-listing state is largest or whose pairs cost most (the description's string scores, the
# character n-grams of the long fields, word n-grams past 3), so that a million listings' store
# fits in memory and a candidate costs a fraction of the default's; BENCHMARKS ("Online feature
# set") has what it costs in accuracy and what it saves.
FEATURE_PRESETS = {
    "default": {},
    "online": {"family_settings": {
        "strings": {"fields": ["title"]},
        "sets": {"fields": ["title", "description", "attrs"], "word_ngrams": {"description": [1, 2, 3]}},
        "corpus": {"fields": ["title", "description", "attrs"], "char_fields": ["title"]}}},
}


class ConfigError(DupsearchError, ValueError):
    """A setting that does not exist or has a value of the wrong kind."""


@dataclass
class GBDTConfig:
    backend: str = "catboost"
    learning_rate: float = 0.1
    max_iterations: int = 3000
    early_stopping_rounds: int = 200
    depth: int = 6
    threads: int = -1
    params: dict = field(default_factory=dict)  # extra backend-specific parameters

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; choose one of {BACKENDS}")


@dataclass
class FeatureConfig:
    families: tuple[str, ...] = FAMILY_NAMES
    batch_size: int = 20_000
    # Undo Cyrillic/Latin look-alike swaps before text features (seed item 7).
    clean_homoglyphs: bool = True
    # Encoder specs (see dupsearch.encoders.parse_spec), e.g. ("minilm", "fasttext") and
    # ("phash", "colorhist", "timm:resnet50?checkpoint=/models/resnet50.safetensors").
    # Photo encoders default to the model-free ones (core dependencies, ~1,000+ photos/s); they
    # are switched off at fit time when no training listing has a photo.
    text_encoders: tuple[str, ...] = ()
    image_encoders: tuple[str, ...] = ("phash", "dhash", "colorhist")
    max_words: int = 48  # words per listing in the FastText word alignment
    # Principal directions of each text encoder's listing embeddings (fitted on the training
    # listings): per direction, the product and absolute difference of the two projections, so
    # the booster can learn which kinds of meaning must agree. 0: cosine only.
    embedding_components: int = 0
    max_photos: int = 10  # photos per listing compared
    # Settings of each family's constructor, e.g. {"strings": {"fields": ["title", "text"]}}.
    family_settings: dict = field(default_factory=dict)

    def __post_init__(self):
        self.families = tuple(self.families)
        self.text_encoders = tuple(self.text_encoders)
        self.image_encoders = tuple(self.image_encoders)
        unknown = set(self.families) - set(FAMILY_NAMES)
        if unknown:
            raise ValueError(f"unknown feature families {sorted(unknown)}; known: {list(FAMILY_NAMES)}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        self.family_settings = {k: dict(v) for k, v in (self.family_settings or {}).items()}
        bad = sorted(set(self.family_settings) - set(FAMILY_SETTINGS))
        if bad:
            raise ValueError(f"family_settings names {bad}, which take no settings; "
                             f"families with settings: {list(FAMILY_SETTINGS)}")
        for name, kw in self.family_settings.items():
            wrong = sorted(set(kw) - set(FAMILY_SETTINGS[name]))
            if wrong:
                raise ValueError(f"feature family {name!r} has no setting {wrong[0]!r}; "
                                 f"its settings: {sorted(FAMILY_SETTINGS[name])}")


STACKING_COMBINE = ("features", "blend")
# How the decision threshold is read off the held-out scores (out-of-fold or validation):
# "best-f1" their F1-best threshold; "half-best-f1" half that best F1, the F1-best threshold of
# calibrated probabilities, which moves less with the few pairs near the cut (bench.threshold_rules).
THRESHOLD_RULES = ("best-f1", "half-best-f1")


class ModelSettings:
    """``to_dict`` / ``from_dict`` of a settings dataclass saved inside a model directory; keys
    this version does not know (a newer file's) are skipped, a missing one takes its default."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class StackingConfig:
    # Settings of `models.cross_encoder.CrossEncoderConfig` (e.g. {"model": "minilm",
    # "epochs": 1}); None: no cross-encoder.
    cross_encoder: dict | None = None
    # Settings of `models.image_contrastive.ContrastiveConfig` (e.g. {"backbone": "resnet18",
    # "image_size": 96}); None: no contrastive photo model.
    image_model: dict | None = None
    # Settings of `models.bi_encoder.BiEncoderConfig` (e.g. {"model": "minilm"}); None: no
    # contrastive bi-encoder. It joins by the blend only (combine="blend").
    bi_encoder: dict | None = None
    # Folds of the out-of-fold scores; None: the matcher's cv_folds (the booster's folds).
    folds: int | None = None
    # How the cross-encoder's score joins the booster's: "features" = its out-of-fold score is a
    # booster feature (a fine-tune per fold and a final one); "blend" = one fine-tune on all
    # training pairs, early-stopped on the validation pairs, and the two logits combined by a
    # logistic regression fitted on the validation pairs (needs them; a quarter of the CPU time).
    combine: str = "features"

    def __post_init__(self):
        if self.combine not in STACKING_COMBINE:
            raise ValueError(f"unknown stacking combine {self.combine!r}; choose one of {STACKING_COMBINE}")
        if self.bi_encoder is not None and self.combine != "blend":
            raise ValueError("stacking bi_encoder joins the booster by the blend only: set combine='blend'")

    @property
    def enabled(self) -> bool:
        return self.cross_encoder is not None or self.image_model is not None or self.bi_encoder is not None


@dataclass
class EnsembleConfig:
    per_category: bool = False        # a booster per top-level category, blended with the general one
    category_column: str = "category_l1"  # the pair's category is that of its first listing
    min_category_pairs: int = 300     # smaller categories use the general model only
    min_category_positives: int = 30
    automl: bool = False              # LightAutoML over all pairs as another component
    automl_per_category: bool = False  # and per category (the seed found this did not help)
    automl_params: dict = field(default_factory=dict)  # models.automl.AutoMLConfig settings
    blend: str = "learned"            # "learned" on out-of-fold scores, or "equal" weights
    align: bool = True                # prior-shift the per-category scores to the general prior
    calibrate: str = "none"           # "none", "platt" or "isotonic", per category, on OOF scores

    def __post_init__(self):
        if self.blend not in BLEND_MODES:
            raise ValueError(f"unknown blend {self.blend!r}; choose one of {BLEND_MODES}")
        if self.calibrate not in CALIBRATION_METHODS:
            raise ValueError(f"unknown calibrate {self.calibrate!r}; choose one of {CALIBRATION_METHODS}")

    @property
    def components(self) -> list[str]:
        out = ["general"]
        if self.per_category:
            out.append("category")
        if self.automl:
            out.append("automl")
            if self.automl_per_category:
                out.append("automl_category")
        return out


@dataclass
class MatcherConfig:
    gbdt: GBDTConfig = field(default_factory=GBDTConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    n_models: int = 3      # boosters with different seeds, averaged: steadier than one
    cv_folds: int = 5      # used when no validation pairs are given
    seed: int = 0
    # Models trained on the labelled pairs (cross-encoder), stacked as out-of-fold features.
    stacking: StackingConfig = field(default_factory=StackingConfig)
    # Per-category and AutoML components, their blend, alignment and calibration.
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    # Transitive-chain enlargement of the training pairs (models.enlarge.EnlargeConfig
    # settings, e.g. {}); None: off. Applied inside each CV fold's training part only.
    enlarge: dict | None = None
    # Share of the training pairs also trained on with title and description emptied on one
    # side or both: empty text is missing evidence, and boosters must learn what that means
    # (ignored with stacking: a stacked model's score of an emptied pair is undefined). 0: off.
    missing_text_share: float = 0.1
    # Share of the training pairs also trained on with one side's listing or both made dirty:
    # each value other than the title moved into the title with probability 0.5, as in Magellan's
    # dirty benchmarks (records whose price or brand sits in the title). 0: off (measured not to
    # pay on the shared benchmarks, BENCHMARKS.md "Training on moved values").
    moved_text_share: float = 0.0
    # The listings' column naming each listing's true group (the generator's): when the training
    # listings have it, clustering thresholds are chosen against it; else against the groups the
    # labelled duplicates form.
    cluster_column: str | None = "cluster_id"
    threshold_rule: str = "best-f1"  # see THRESHOLD_RULES

    def __post_init__(self):
        if self.threshold_rule not in THRESHOLD_RULES:
            raise ValueError(f"unknown threshold_rule {self.threshold_rule!r}; choose one of {THRESHOLD_RULES}")
        if not 0.0 <= self.missing_text_share <= 1.0:
            raise ValueError(f"missing_text_share must be in [0, 1], got {self.missing_text_share}")
        if not 0.0 <= self.moved_text_share <= 1.0:
            raise ValueError(f"moved_text_share must be in [0, 1], got {self.moved_text_share}")
        if self.enlarge is not None and self.stacking.enabled:
            raise ValueError("enlarge and stacking cannot be combined yet: the stacked models' scores of "
                             "the added pairs would come from models that saw the pairs they derive from")

    @classmethod
    def from_dict(cls, d: dict) -> "MatcherConfig":
        return from_dict(cls, d)


@dataclass
class DedupConfig:
    blockers: list[str] | None = None  # spec strings; None -> default_blocker_specs(listings)
    batch_size: int = 20_000  # candidate pairs per scored part
    threshold: float | None = None  # None -> the model's own (best-F1) threshold
    max_component: int = 5000  # average-link: larger components fall back to CENTER
    truth_column: str | None = "cluster_id"  # when present: blocking recall and cluster metrics
    workers: int = 1  # store-building and scoring processes (fork)
    trust_model: bool = False  # load a model with a pickled (LightAutoML) component: runs its code

    def __post_init__(self):
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")

    @classmethod
    def from_dict(cls, d: dict) -> "DedupConfig":
        return from_dict(cls, d)


# ---- strict parsing ----------------------------------------------------------------------
def _accepts(hint, value) -> bool:
    """Whether ``value`` (as read from JSON/TOML) fits a simple type hint."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(h, value) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is dict or origin is dict:
        return isinstance(value, dict)
    if origin in (tuple, list) or hint in (tuple, list):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return isinstance(value, (list, tuple)) and all(_accepts(args[0], v) for v in value) if args \
            else isinstance(value, (list, tuple))
    return True


def from_dict(cls, data, path: str = ""):
    """``cls(**data)`` for a settings dataclass, nested ones included; an unknown key or a
    value of the wrong kind is a ConfigError naming its dotted path."""
    where = path.rstrip(".") or cls.__name__
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"setting {where!r} takes a table of settings, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(f"unknown setting {path + str(key)!r}; {where} has: {', '.join(names)}")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = from_dict(hint, value, f"{path}{key}.")
        elif not _accepts(hint, value):
            raise ConfigError(f"setting {path + key!r} must be {_describe(hint)}, got {value!r}")
        else:
            kwargs[key] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from None


def _describe(hint) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")
