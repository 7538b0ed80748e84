"""dupsearch: find duplicate listings on online marketplaces."""

__version__ = "0.1.0"

# Bumped when the on-disk layout of a trained model directory changes in a way
# an older/newer dupsearch cannot read.
MODEL_FORMAT_VERSION = 1

from dupsearch.errors import DataError, DupsearchError, ModelVersionError  # noqa: E402

__all__ = ["__version__", "MODEL_FORMAT_VERSION", "DataError", "DupsearchError", "ModelVersionError"]
