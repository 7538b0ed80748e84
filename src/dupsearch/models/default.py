"""The default model shipped inside the package: `dupsearch dedup LISTINGS --out DIR` with no
--model. Trained by `bash scripts/train_default_model.sh` on a generated marketplace, its
clustering thresholds tuned on a larger one (the shared benchmarks carry no licence that allows
shipping a model trained on them), saved as a plain
model directory (native booster files, JSON, .npz; digests in its manifest): loading it runs no
code. A catalogue unlike the generated one (another language, other fields) does better with a
model trained on its own labels."""

from __future__ import annotations

from pathlib import Path

from dupsearch.errors import ModelNotFoundError

DEFAULT_MODEL_DIR = Path(__file__).resolve().with_name("default_model")


def default_model_path() -> Path:
    """The shipped model's directory; a clear error where an installation lacks it."""
    if not (DEFAULT_MODEL_DIR / "manifest.json").is_file():
        raise ModelNotFoundError(
            f"the default model is missing from this installation (expected at {DEFAULT_MODEL_DIR}): "
            "reinstall dupsearch, build it with `bash scripts/train_default_model.sh`, or give --model")
    return DEFAULT_MODEL_DIR
