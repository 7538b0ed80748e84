"""Torch helpers shared by the neural encoders: importing torchvision/timm/open_clip, the device.

Why `import_torchvision` exists: the project pins the CPU build of torch (2.13.0), but PyPI's
torchvision 0.28.0 is a CUDA build. Its C extension (`torchvision._C`, home of the detection ops
such as nms) cannot load beside a CPU torch, and `import torchvision` then dies in
`torchvision/_meta_registrations.py` with "RuntimeError: operator torchvision::nms does not
exist" while registering fake kernels for ops that were never defined. timm, open_clip and
transformers' image processors import torchvision at import time but use only its pure-Python
parts (transforms, FrozenBatchNorm2d, InterpolationMode), so we import torchvision without the
two modules that register those kernels. Detection ops stay unavailable; nothing here needs them.
A torchvision that imports normally is left alone.

Everything imports lazily: the core package never imports torch.
"""

from __future__ import annotations

import sys
import types
import warnings
from contextlib import contextmanager

from dupsearch.encoders.base import MissingDependencyError, require

_OP_REGISTRATION_MODULES = ("torchvision._meta_registrations", "torchvision._autograd_registrations")


def _drop_torchvision_modules() -> None:
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]


def import_torchvision():
    """Import torchvision, working around a C extension that cannot load (see the module doc).

    Returns the module; raises `MissingDependencyError` when torchvision is not installed.
    """
    if "torchvision" in sys.modules:
        module = sys.modules["torchvision"]
        if module is None:  # hidden on purpose earlier in this process (the text encoders do so)
            raise MissingDependencyError(
                "torchvision was found unusable earlier in this process (its import failed), and "
                "image encoders need it: reinstall a torchvision built for this torch")
        if hasattr(module, "transforms"):
            return module
    with warnings.catch_warnings():
        # Some torchvision builds warn "Failed to load image Python extension" when the C
        # extension is missing; the image I/O it refers to is not used here.
        warnings.filterwarnings("ignore", message=r"Failed to load image Python extension",
                                category=UserWarning)
        try:
            return require("torchvision", "image encoders", "embed")
        except RuntimeError as exc:
            if "torchvision::" not in str(exc) or "does not exist" not in str(exc):
                raise
        # The failed import left half-initialised torchvision modules behind: drop them, stub
        # out the two modules that register kernels for the missing C++ ops, import again.
        _drop_torchvision_modules()
        for name in _OP_REGISTRATION_MODULES:
            sys.modules[name] = types.ModuleType(name)
        try:
            return require("torchvision", "image encoders", "embed")
        except BaseException:
            _drop_torchvision_modules()
            raise


def import_timm():
    import_torchvision()
    return require("timm", "the timm image encoder", "embed")


def import_open_clip():
    import_torchvision()
    return require("open_clip", "the open_clip image encoder", "embed")


def import_sentence_transformers():
    # transformers' image processors import torchvision.transforms too.
    import_torchvision()
    return require("sentence_transformers", "the sentence-transformers image encoder", "embed")


def torch_device(device: str | None = None) -> str:
    """`device` when given, else "cuda" when a GPU is usable, else "cpu"."""
    if device:
        return str(device)
    torch = require("torch", "neural encoders", "embed")
    return "cuda" if torch.cuda.is_available() else "cpu"


@contextmanager
def torch_threads(n: int = 1):
    """Run the block with torch limited to `n` intra-op threads.

    Per-image preprocessing (ToTensor, Normalize on one 224x224 picture) is too small to gain
    from threads; when the cores are busy, a parallel region waits for every thread and one such
    op took 18 ms with 2 threads against 0.25 ms with 1 (measured on this project's 2-core box).
    """
    import torch
    old = torch.get_num_threads()
    if old <= n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
