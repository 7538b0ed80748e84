"""dupsearch.encoders.image: hashes, colour histograms and the timm / open_clip / CLIP encoders.

Real pictures (scikit-image's sample photos, shipped inside the package) and edited copies of
them; real, tiny, randomly initialised networks saved to tmp in the formats users download.
Nothing is mocked and nothing is downloaded.
"""

from __future__ import annotations

import io
import itertools
import json
import shutil
import time
import warnings

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from dupsearch.encoders import EmbeddingCache, encode_cached, load_encoder, make_encoder
from dupsearch.encoders.image import (
    ColorHistogramEncoder,
    PerceptualHashEncoder,
    TimmImageEncoder,
    load_image,
)
from dupsearch.errors import DataError, ModelNotFoundError

# Distinct scikit-image sample photos (chelsea and cat are the same picture: only one is used).
COLOUR = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field"]
GREY = ["camera", "coins", "grass", "brick"]
EDITS = ["jpeg60", "crop10", "half", "bright", "flip"]


def _edits(img: Image.Image) -> dict[str, Image.Image]:
    w, h = img.size
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=60)
    buf.seek(0)
    return {
        "jpeg60": Image.open(buf).convert("RGB"),
        "crop10": img.crop((int(0.05 * w), int(0.05 * h), int(0.95 * w), int(0.95 * h))),
        "half": img.resize((w // 2, h // 2), Image.Resampling.LANCZOS),
        "bright": ImageEnhance.Brightness(img).enhance(1.1),
        "flip": ImageOps.mirror(img),
    }


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    """{"orig": {name: png path}, "edit": {name: {edit: png path}}}."""
    skdata = pytest.importorskip("skimage.data")
    root = tmp_path_factory.mktemp("photos")
    orig, edit = {}, {}
    for name in COLOUR + GREY:
        img = Image.fromarray(getattr(skdata, name)()).convert("RGB")
        orig[name] = root / f"{name}.png"
        img.save(orig[name])
        edit[name] = {}
        for kind, copy in _edits(img).items():
            edit[name][kind] = root / f"{name}-{kind}.png"
            copy.save(edit[name][kind])
    return {"orig": orig, "edit": edit}


def _hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a.shape[-1] - a @ b.T) / 2


# --------------------------------------------------------------------------- load_image

def test_load_image_paths_and_pil(photos, tmp_path):
    img = load_image(photos["orig"]["camera"])  # a greyscale photo, saved as RGB
    assert img.mode == "RGB" and img.size == (512, 512)
    assert load_image(str(photos["orig"]["coffee"])).size == (600, 400)
    grey = Image.new("L", (5, 4), 100)
    assert load_image(grey).mode == "RGB" and load_image(grey).getpixel((0, 0)) == (100, 100, 100)
    # Transparent areas come out white, as a marketplace page shows them.
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    out = load_image(rgba)
    assert out.getpixel((1, 1)) == (255, 255, 255) and out.getpixel((0, 0)) == (255, 0, 0)
    # A JPEG may be decoded at a reduced scale, never below the size asked for.
    Image.open(photos["orig"]["hubble_deep_field"]).save(tmp_path / "big.jpg", quality=90)
    small = load_image(tmp_path / "big.jpg", min_side=256)
    assert 256 <= min(small.size) < 872


def test_load_image_errors(tmp_path):
    with pytest.raises(DataError, match="cannot read image") as err:
        load_image("nope.png")
    assert err.value.path == "nope.png" and "nope.png" in str(err.value)
    fake = tmp_path / "notes.png"
    fake.write_text("this is not a picture")
    with pytest.raises(DataError, match="cannot read image") as err:
        load_image(fake)
    assert err.value.path == str(fake)
    truncated = tmp_path / "truncated.jpg"
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(buf, "JPEG")
    truncated.write_bytes(buf.getvalue()[:200])
    with pytest.raises(DataError, match="cannot read image"):
        load_image(truncated)
    with pytest.raises(DataError, match="directory"):
        load_image(tmp_path)
    with pytest.raises(TypeError):
        load_image(42)


# --------------------------------------------------------------------------- perceptual hashes

@pytest.mark.parametrize("kind", ["phash", "dhash", "whash"])
def test_hashes_find_edited_copies(photos, kind):
    enc = make_encoder(kind, "image")
    assert isinstance(enc, PerceptualHashEncoder) and enc.kind == kind and enc.metric == "hamming"
    names = COLOUR + GREY
    base = enc.encode([photos["orig"][n] for n in names])
    assert base.shape == (len(names), 64) and base.dtype == np.float32
    assert set(np.unique(base)) <= {-1.0, 1.0}
    different = _hamming(base, base)[~np.eye(len(names), dtype=bool)]
    assert different.min() >= 16, different.min()  # unrelated photos: about half the bits differ
    for name in names:
        copies = enc.encode([photos["edit"][name][e] for e in ("jpeg60", "half", "bright")])
        dist = _hamming(copies, base[names.index(name)][None])[:, 0]
        assert dist.max() <= 8, (name, dist)
    # A PIL image hashes like its file.
    pil = Image.open(photos["orig"]["rocket"])
    np.testing.assert_array_equal(enc.encode([pil])[0], base[names.index("rocket")])


def test_hash_specs():
    enc = make_encoder("phash?hash_size=16", "image")
    assert enc.dim == 256 and enc.spec == "phash?hash_size=16"
    assert make_encoder(enc.spec, "image").fingerprint() == enc.fingerprint()
    assert make_encoder("dhash?hash_size=8", "image").spec == "dhash"
    assert make_encoder("phash", "image").fingerprint() != make_encoder("dhash", "image").fingerprint()
    img = Image.new("RGB", (40, 30), (200, 10, 10))
    assert enc.encode([img]).shape == (1, 256)
    for bad in ["phash?hash_size=1", "phash?hash_size=x", "whash?hash_size=12", "phash?size=8", "phash:foo"]:
        with pytest.raises(ValueError):
            make_encoder(bad, "image")


# --------------------------------------------------------------------------- colour histogram

def test_colorhist(photos):
    enc = make_encoder("colorhist", "image")
    assert isinstance(enc, ColorHistogramEncoder) and enc.dim == 8 * 4 * 4
    base = enc.encode([photos["orig"][n] for n in COLOUR])
    assert base.dtype == np.float32 and (base >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(base, axis=1), 1, atol=1e-5)
    sim = base @ base.T
    np.testing.assert_allclose(np.diag(sim), 1, atol=1e-5)
    again = enc.encode([photos["orig"]["coffee"]])[0]
    assert again @ base[COLOUR.index("coffee")] == pytest.approx(1, abs=1e-6)
    for i, name in enumerate(COLOUR):
        copies = enc.encode([photos["edit"][name][e] for e in EDITS])
        closest_other = np.delete(sim[i], i).max()
        assert (copies @ base[i] > closest_other).all(), (name, copies @ base[i], closest_other)
    # The dot product is the Bhattacharyya coefficient: sum(sqrt(p * q)) of the two histograms.
    p, q = base[0].astype(np.float64) ** 2, base[1].astype(np.float64) ** 2
    assert p.sum() == pytest.approx(1, abs=1e-5)
    assert sim[0, 1] == pytest.approx(np.sqrt(p * q).sum(), abs=1e-5)


def test_colorhist_specs():
    enc = make_encoder("colorhist?bins=4,2,2", "image")
    assert enc.dim == 16 and enc.spec == "colorhist?bins=4,2,2"
    assert make_encoder("colorhist?bins=8,4,4", "image").spec == "colorhist"
    assert make_encoder("colorhist?bins=6", "image").dim == 216
    assert enc.encode([Image.new("RGB", (8, 8), (0, 0, 255))]).shape == (1, 16)
    for bad in ["colorhist?bins=8,4", "colorhist?bins=0,4,4", "colorhist?bins=a,b,c", "colorhist?x=1"]:
        with pytest.raises(ValueError):
            make_encoder(bad, "image")


# --------------------------------------------------------------------------- torch helpers

def test_import_torchvision_then_timm():
    from dupsearch.encoders._torch import import_open_clip, import_timm, import_torchvision, torch_device
    tv = import_torchvision()
    assert hasattr(tv, "transforms") and import_torchvision() is tv
    timm = import_timm()
    assert timm.create_model("test_resnet", pretrained=False, num_classes=0) is not None
    assert hasattr(import_open_clip(), "create_model_and_transforms")
    assert torch_device() in ("cpu", "cuda") and torch_device("cpu") == "cpu"


# --------------------------------------------------------------------------- timm

@pytest.fixture(scope="session")
def timm_resnet18(tmp_path_factory):
    """A randomly initialised resnet18 with a 10-class head, saved as safetensors; returns
    (reference model without its head, checkpoint path)."""
    from dupsearch.encoders._torch import import_timm
    timm = import_timm()
    import torch
    from safetensors.torch import save_file
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False, num_classes=10)
    path = tmp_path_factory.mktemp("timm") / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    model.reset_classifier(0)
    return model.eval(), path


def _timm_reference(model, items):
    import torch
    from timm.data import create_transform, resolve_data_config
    transform = create_transform(**resolve_data_config({}, model=model), is_training=False)
    x = torch.stack([transform(Image.open(p).convert("RGB")) for p in items])
    with torch.inference_mode():
        out = model(x).numpy()
    return x, out / np.linalg.norm(out, axis=1, keepdims=True)


def _tolerance(enc) -> float:
    """The reference runs on the CPU; on a GPU, convolutions use TF32 (about 1e-4 off)."""
    return 1e-5 if enc._device == "cpu" else 2e-3


def test_timm_checkpoint(photos, timm_resnet18):
    ref_model, ckpt = timm_resnet18
    enc = make_encoder(f"timm:resnet18?checkpoint={ckpt}&batch_size=2", "image")
    assert isinstance(enc, TimmImageEncoder) and enc.metric == "cosine"
    assert enc._model is None  # loaded lazily
    items = [photos["orig"][n] for n in ("astronaut", "coffee", "camera")]
    out = enc.encode(items)
    assert out.shape == (3, 512) and out.dtype == np.float32 and enc.dim == 512
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(enc.encode(items), out)  # deterministic
    x, ref = _timm_reference(ref_model, items)
    np.testing.assert_array_equal(enc.preprocess(items).numpy(), x.numpy())
    np.testing.assert_allclose(out, ref, atol=_tolerance(enc))
    # The head was in the checkpoint and is dropped; batch_size is not part of the identity.
    assert "batch_size" not in enc.spec and enc.spec == f"timm:resnet18?checkpoint={ckpt}"
    assert make_encoder(enc.spec, "image").fingerprint() == enc.fingerprint()


def test_timm_hub_folder(photos, tmp_path):
    """`timm:DIR` with config.json + model.safetensors, as `hf download timm/...` leaves them."""
    from dupsearch.encoders._torch import import_timm
    timm = import_timm()
    import torch
    from safetensors.torch import save_file
    torch.manual_seed(1)
    model = timm.create_model("test_resnet", pretrained=False, num_classes=0).eval()
    folder = tmp_path / "test_resnet.r160_in1k"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    pretrained_cfg = {"tag": "r160_in1k", "input_size": [3, 64, 64], "interpolation": "bilinear",
                      "crop_pct": 0.9, "crop_mode": "center", "mean": [0.5, 0.5, 0.5],
                      "std": [0.25, 0.25, 0.25], "num_classes": 1000, "first_conv": "conv1.0",
                      "classifier": "fc"}
    (folder / "config.json").write_text(json.dumps({"architecture": "test_resnet", "num_classes": 1000,
                                                    "pretrained_cfg": pretrained_cfg}))
    enc = make_encoder(f"timm:{folder}", "image")
    items = [photos["orig"][n] for n in ("rocket", "coins")]
    out = enc.encode(items)
    assert out.shape == (2, enc.dim) and out.dtype == np.float32
    assert enc.data_config["input_size"] == [3, 64, 64] and enc.data_config["mean"] == [0.5, 0.5, 0.5]
    model.pretrained_cfg = {**model.pretrained_cfg, **pretrained_cfg}
    x, ref = _timm_reference(model, items)
    assert x.shape[-2:] == (64, 64)
    np.testing.assert_allclose(out, ref, atol=_tolerance(enc))
    # A large JPEG is decoded at a reduced scale (twice the input side, or more): about the
    # same features as from the fully decoded picture.
    big = tmp_path / "big.jpg"
    Image.open(photos["orig"]["rocket"]).resize((1920, 1280), Image.Resampling.BICUBIC).save(big, quality=92)
    assert min(load_image(big, min_side=128).size) == 160
    fast, full = enc.encode([big, Image.open(big)])
    assert fast @ full > 0.98, fast @ full
    # Saved with a model and loaded back: same encoder, no warning.
    enc.save(tmp_path / "saved")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = load_encoder(tmp_path / "saved")
    np.testing.assert_array_equal(again.encode(items), out)
    # Other weights in the folder: another fingerprint.
    torch.manual_seed(2)
    other = timm.create_model("test_resnet", pretrained=False, num_classes=0)
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(folder / "model.safetensors"))
    assert make_encoder(f"timm:{folder}", "image").fingerprint() != enc.fingerprint()


def test_timm_spec_keeps_odd_paths(tmp_path, timm_resnet18):
    """A checkpoint path with '+', '&', '=', '%' and a space survives the spec round trip."""
    odd = tmp_path / "a+b & c=d %20"
    odd.mkdir()
    shutil.copy(timm_resnet18[1], odd / "model.safetensors")
    enc = TimmImageEncoder("resnet18", checkpoint=odd / "model.safetensors")
    again = make_encoder(enc.spec, "image")
    assert again.checkpoint == str(odd / "model.safetensors") and again.spec == enc.spec


def test_timm_weights_of_another_architecture(tmp_path, timm_resnet18):
    _, ckpt = timm_resnet18
    enc = make_encoder(f"timm:test_resnet?checkpoint={ckpt}", "image")
    with pytest.raises(ValueError, match="do not fit"):
        enc.encode([Image.new("RGB", (32, 32))])


def test_timm_missing_weights(tmp_path):
    with pytest.raises(ModelNotFoundError, match="download") as err:
        make_encoder("timm:resnet50", "image")
    assert "timm:DIR" in str(err.value)
    missing = tmp_path / "nowhere" / "model.safetensors"
    with pytest.raises(ModelNotFoundError, match="download") as err:
        make_encoder(f"timm:resnet50?checkpoint={missing}", "image")
    assert str(missing) in str(err.value)
    with pytest.raises(ModelNotFoundError, match="config.json") as err:
        make_encoder(f"timm:{tmp_path / 'no_such_dir'}", "image")
    assert "no_such_dir" in str(err.value)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text('{"architecture": "resnet18"}')
    with pytest.raises(ModelNotFoundError, match="download"):
        make_encoder(f"timm:{tmp_path / 'empty'}", "image")
    with pytest.raises(ValueError):
        make_encoder("timm:", "image")


# --------------------------------------------------------------------------- open_clip

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 500, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="session")
def tiny_open_clip(tmp_path_factory):
    """A tiny custom open_clip architecture: (model, config path, checkpoint path)."""
    from dupsearch.encoders._torch import import_open_clip
    open_clip = import_open_clip()
    import torch
    root = tmp_path_factory.mktemp("open_clip")
    config = root / "dupsearch-tiny-clip.json"
    config.write_text(json.dumps(TINY_CLIP))
    torch.manual_seed(0)
    model = open_clip.CLIP(**TINY_CLIP).eval()
    ckpt = root / "tiny_clip.bin"
    torch.save(model.state_dict(), ckpt)
    return model, config, ckpt


def _clip_reference(model, items, transform):
    import torch
    x = torch.stack([transform(Image.open(p).convert("RGB")) for p in items])
    with torch.inference_mode():
        out = model.encode_image(x).numpy()
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_open_clip_custom_config(photos, tiny_open_clip):
    model, config, ckpt = tiny_open_clip
    enc = make_encoder(f"open_clip:dupsearch-tiny-clip?checkpoint={ckpt}&config={config}", "image")
    items = [photos["orig"][n] for n in ("astronaut", "chelsea", "brick")]
    out = enc.encode(items)
    assert out.shape == (3, 32) and out.dtype == np.float32 and enc.dim == 32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(out, _clip_reference(model, items, enc._transform), atol=1e-5)
    assert enc.preprocess(items).shape == (3, 3, 64, 64)
    # The name may be left out (it is the config's file name); the spec rebuilds the encoder.
    same = make_encoder(f"open_clip:?checkpoint={ckpt}&config={config}", "image")
    assert same.spec == enc.spec and same.fingerprint() == enc.fingerprint()
    with pytest.raises(ValueError, match="file name"):
        make_encoder(f"open_clip:ViT-B-32?checkpoint={ckpt}&config={config}", "image")


def test_open_clip_hub_folder(photos, tiny_open_clip, tmp_path):
    """`open_clip:DIR` with open_clip_config.json + weights, as the hub stores open_clip models."""
    model, _, ckpt = tiny_open_clip
    folder = tmp_path / "tiny-clip"
    folder.mkdir()
    shutil.copy(ckpt, folder / "open_clip_pytorch_model.bin")
    (folder / "open_clip_config.json").write_text(json.dumps(
        {"model_cfg": TINY_CLIP, "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}))
    enc = make_encoder(f"open_clip:{folder}", "image")
    items = [photos["orig"][n] for n in ("rocket", "grass")]
    out = enc.encode(items)
    assert out.shape == (2, 32)
    np.testing.assert_allclose(out, _clip_reference(model, items, enc._transform), atol=1e-5)
    x = enc.preprocess([Image.new("RGB", (64, 64), (255, 255, 255))])
    assert float(x.max()) == pytest.approx(1.0)  # (1 - 0.5) / 0.5: the folder's mean and std


def test_open_clip_missing(tmp_path):
    with pytest.raises(ModelNotFoundError, match="download") as err:
        make_encoder("open_clip:ViT-B-32", "image")
    assert "checkpoint=" in str(err.value)
    missing = tmp_path / "open_clip_vit_b32.bin"
    with pytest.raises(ModelNotFoundError, match="download") as err:
        make_encoder(f"open_clip:ViT-B-32?checkpoint={missing}", "image")
    assert str(missing) in str(err.value)
    with pytest.raises(ModelNotFoundError):
        make_encoder(f"open_clip:?checkpoint={missing}&config={tmp_path / 'none.json'}", "image")


# --------------------------------------------------------------------------- sentence-transformers CLIP

@pytest.fixture(scope="session")
def tiny_st_clip(tmp_path_factory):
    """A tiny CLIP saved as sentence-transformers saves clip-ViT-B-32: modules.json naming a
    CLIPModel module in 0_CLIPModel/ (transformers weights, config, processor, tokenizer)."""
    from dupsearch.encoders._torch import import_torchvision
    import_torchvision()  # transformers' image processors import torchvision.transforms
    import torch
    from tokenizers import pre_tokenizers
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    root = tmp_path_factory.mktemp("st") / "clip-tiny"
    sub = root / "0_CLIPModel"
    sub.mkdir(parents=True)
    # A byte-level BPE vocabulary without merges: every byte is a token.
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=32, bos_token_id=0,
                         eos_token_id=1, pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, image_size=48, patch_size=16),
        projection_dim=24)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        CLIPModel(config).save_pretrained(sub)
        processor = CLIPProcessor(image_processor=CLIPImageProcessor(
            size={"shortest_edge": 48}, crop_size={"height": 48, "width": 48}), tokenizer=tokenizer)
        processor.save_pretrained(sub)
    (root / "modules.json").write_text(json.dumps(
        [{"idx": 0, "name": "0", "path": "0_CLIPModel", "type": "sentence_transformers.models.CLIPModel"}]))
    return root


def test_clip_st(photos, tiny_st_clip):
    enc = make_encoder(f"clip_st:{tiny_st_clip}?batch_size=2", "image")
    items = [photos["orig"][n] for n in ("coffee", "rocket", "coins")]
    out = enc.encode(items)
    assert out.shape == (3, 24) and out.dtype == np.float32 and enc.dim == 24
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    ref = enc._model.encode([Image.open(p).convert("RGB") for p in items], convert_to_numpy=True)
    np.testing.assert_allclose(out, ref / np.linalg.norm(ref, axis=1, keepdims=True), atol=1e-5)
    assert enc.spec == f"clip_st:{tiny_st_clip}"
    assert make_encoder(enc.spec, "image").fingerprint() == enc.fingerprint()


def test_clip_st_missing(tmp_path):
    with pytest.raises(ModelNotFoundError, match="download") as err:
        make_encoder(f"clip_st:{tmp_path / 'clip-ViT-B-32'}", "image")
    assert "clip-ViT-B-32" in str(err.value)


# --------------------------------------------------------------------------- cache

@pytest.mark.parametrize("which", ["phash", "timm"])
def test_cache_by_content(photos, tmp_path, monkeypatch, timm_resnet18, which):
    spec = "phash" if which == "phash" else f"timm:resnet18?checkpoint={timm_resnet18[1]}"
    items = [photos["orig"][n] for n in ("astronaut", "coffee", "coins")]
    first = encode_cached(make_encoder(spec, "image"), items, EmbeddingCache(tmp_path / "cache"))

    enc = make_encoder(spec, "image")
    calls = []
    real = enc.encode
    monkeypatch.setattr(enc, "encode", lambda batch: calls.append(len(batch)) or real(batch))
    renamed = tmp_path / "renamed copy.png"
    shutil.copy(items[1], renamed)
    cache = EmbeddingCache(tmp_path / "cache")
    again = encode_cached(enc, items + [renamed], cache)
    assert calls == [] and cache.hits == 3 and cache.misses == 0
    np.testing.assert_array_equal(again[:3], first)
    np.testing.assert_array_equal(again[3], first[1])
    # A new picture is encoded, alone.
    more = encode_cached(enc, [photos["edit"]["coffee"]["flip"], items[0]], cache)
    assert calls == [1] and more.shape == (2, enc.dim)


# --------------------------------------------------------------------------- throughput

@pytest.mark.slow
def test_throughput(photos, tmp_path, capsys, timm_resnet18, tiny_open_clip, tiny_st_clip):
    """Prints images/s of each encoder on 200 JPEG files (crops of the sample photos); asserts
    nothing. About 40 s on 2 CPU cores: run it with `pytest -m slow -k throughput`."""
    from dupsearch.encoders._torch import torch_device
    ckpt = timm_resnet18[1]
    _, clip_config, clip_ckpt = tiny_open_clip
    sources = [Image.open(p).convert("RGB") for p in photos["orig"].values()]
    import importlib.util
    specs = ["phash", "dhash"] + (["whash"] if importlib.util.find_spec("pywt") else []) + ["colorhist", f"timm:resnet18?checkpoint={ckpt}",
             f"open_clip:?checkpoint={clip_ckpt}&config={clip_config}", f"clip_st:{tiny_st_clip}"]
    lines = []
    for side in (96, 224):
        files = []
        for i, (src, frac) in enumerate(itertools.islice(
                itertools.cycle(itertools.product(sources, (1.0, 0.8, 0.6, 0.5, 0.4))), 200)):
            w, h = src.size
            cw, ch = int(w * frac), int(h * frac)
            x0, y0 = (i * 37) % (w - cw + 1), (i * 53) % (h - ch + 1)
            path = tmp_path / f"{side}-{i:03d}.jpg"
            src.crop((x0, y0, x0 + cw, y0 + ch)).resize((side, side), Image.Resampling.BILINEAR).save(path, quality=90)
            files.append(path)
        for spec in specs:
            enc = make_encoder(spec, "image")
            enc.encode(files[:2])  # load the model, warm up
            start = time.perf_counter()
            out = enc.encode(files)
            rate = len(files) / (time.perf_counter() - start)
            assert out.shape == (200, enc.dim)
            lines.append(f"{side}x{side}  {spec.split('?')[0].split(':')[0] + (' resnet18' if 'resnet18' in spec else ''):<18}"
                         f"{rate:8.0f} images/s")
    with capsys.disabled():
        print(f"\nimage encoder throughput (200 JPEG files, neural ones on {torch_device()}):\n  "
              + "\n  ".join(lines))
