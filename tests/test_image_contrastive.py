"""dupsearch.models.image_contrastive: contrastive fine-tuning of a timm backbone on photo pairs.

Real components throughout: the synthetic marketplace's photos, timm models, the `timm:DIR`
encoder. Training uses timm's tiny `test_resnet` at 64 px (a few seconds on 2 cores).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from dupsearch.errors import DataError
from dupsearch.models.image_contrastive import ContrastiveConfig, ContrastiveImageTrainer
from dupsearch.synth.generator import generate_marketplace, split_pairs

pytest.importorskip("torch")
if importlib.util.find_spec("timm") is None:  # imported through import_timm (see encoders._torch)
    pytest.skip("timm is not installed", allow_module_level=True)

# One torch thread: on a 2-core machine shared with another torch job, two threads were 20x
# slower (each op waits for the descheduled thread); alone, two are at most twice as fast.
TINY = dict(backbone="test_resnet", image_size=64, batch_size=16, learning_rate=3e-3, epochs=50, num_threads=1)


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    photos = tmp_path_factory.mktemp("photos")
    m = generate_marketplace(300, seed=1, photos_dir=photos)
    return m, split_pairs(m)


def _contrastive_loss(cos: np.ndarray, y: np.ndarray, margin: float = 0.5) -> float:
    d = 1.0 - cos
    return float(np.mean(0.5 * (y * d ** 2 + (1 - y) * np.maximum(margin - d, 0) ** 2)))


@pytest.fixture(scope="module")
def trained(market, tmp_path_factory):
    """A tiny model trained for 60 steps, its held-out cosines before and after, the saved folder."""
    m, splits = market
    trainer = ContrastiveImageTrainer(ContrastiveConfig(**TINY, max_steps=60))
    ta, tb, ty = trainer.pairs_from_listings(m.listings, splits.test)
    test_paths = list(dict.fromkeys(ta + tb))
    pos = {p: i for i, p in enumerate(test_paths)}
    ia, ib = [pos[p] for p in ta], [pos[p] for p in tb]

    def cosines():
        e = trainer.encode(test_paths)
        return (e[ia] * e[ib]).sum(1)

    before = cosines()
    a, b, y = trainer.pairs_from_listings(m.listings, splits.train)
    counts = dict(trainer.pair_counts_)
    trainer.fit(a, b, y)
    after = cosines()
    folder = trainer.save(tmp_path_factory.mktemp("models") / "contrastive_test_resnet")
    return dict(trainer=trainer, before=before, after=after, y=ty, counts=counts, folder=folder,
                test_paths=test_paths)


# --------------------------------------------------------------------------- no torch needed

def test_imports_without_torch(market):
    """The module imports, and pairs are built, with torch hidden."""
    m, splits = market
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'torchvision', 'timm'):\n"
        "            raise ImportError(f'{name} blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import pandas as pd\n"
        "from dupsearch.models.image_contrastive import ContrastiveConfig, ContrastiveImageTrainer\n"
        "t = ContrastiveImageTrainer(ContrastiveConfig(image_size=96))\n"
        "listings = pd.DataFrame({'item_id': ['a', 'b'], 'images': [['x.png'], ['y.png', 'z.png']]})\n"
        "pairs = pd.DataFrame({'item_id_a': ['a'], 'item_id_b': ['b'], 'label': [1]})\n"
        "a, b, y = t.pairs_from_listings(listings, pairs)\n"
        "assert a == ['x.png', 'x.png'] and b == ['y.png', 'z.png'] and y.tolist() == [1, 1]\n"
        "assert not [k for k in sys.modules if k.split('.')[0] in ('torch', 'torchvision', 'timm')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_config_validation():
    assert ContrastiveConfig().backbone == "resnet50" and ContrastiveConfig().embed_dim is None
    for bad in (dict(image_size=0), dict(batch_size=1.5), dict(margin=0), dict(learning_rate=-1),
                dict(epochs=True), dict(embed_dim=0), dict(backbone=" ")):
        with pytest.raises(ValueError):
            ContrastiveConfig(**bad)


def test_pairs_from_listings(market):
    m, splits = market
    trainer = ContrastiveImageTrainer(ContrastiveConfig(seed=3))
    a, b, y = trainer.pairs_from_listings(m.listings, splits.train)
    counts = trainer.pair_counts_
    assert len(a) == len(b) == len(y) == counts["photo_pairs"]
    assert counts["listing_pairs"] == counts["listing_pairs_used"] == len(splits.train)
    assert counts["positive_photo_pairs"] == int(y.sum()) > 0 and counts["negative_photo_pairs"] > 0
    # Each photo pair comes from a labelled listing pair, with its label; at most 4 per pair.
    owner = {p: item for item, paths in zip(m.listings["item_id"], m.listings["images"]) for p in paths}
    label = {(r.item_id_a, r.item_id_b): r.label for r in splits.train.itertuples()}
    per_pair = pd.Series([(owner[pa], owner[pb]) for pa, pb in zip(a, b)]).value_counts()
    assert per_pair.max() <= 4
    assert all(label[(owner[pa], owner[pb])] == lab for pa, pb, lab in zip(a, b, y))
    n_photos = m.listings.set_index("item_id")["images"].map(len)
    expected = sum(min(4, n_photos[r.item_id_a] * n_photos[r.item_id_b]) for r in splits.train.itertuples())
    assert len(y) == expected
    # Deterministic with the seed; another seed draws other photo pairs.
    again = ContrastiveImageTrainer(ContrastiveConfig(seed=3)).pairs_from_listings(m.listings, splits.train)
    assert again[0] == a and again[1] == b
    other = ContrastiveImageTrainer(ContrastiveConfig(seed=4)).pairs_from_listings(m.listings, splits.train)
    assert (other[0], other[1]) != (a, b)
    # Listings without photos: their pairs are skipped and counted.
    listings = m.listings.copy()
    no_photos = set(splits.train["item_id_a"].iloc[:10])
    listings["images"] = [[] if i in no_photos else p for i, p in zip(listings["item_id"], listings["images"])]
    a2, _, _ = trainer.pairs_from_listings(listings, splits.train)
    skipped = int(splits.train["item_id_a"].isin(no_photos).sum() + splits.train["item_id_b"].isin(no_photos).sum()
                  - (splits.train["item_id_a"].isin(no_photos) & splits.train["item_id_b"].isin(no_photos)).sum())
    assert trainer.pair_counts_["listing_pairs_skipped_no_photos"] == skipped >= 10
    assert trainer.pair_counts_["listing_pairs_used"] == len(splits.train) - skipped and len(a2) < len(a)


def test_bad_input(market):
    m, splits = market
    trainer = ContrastiveImageTrainer(ContrastiveConfig())
    listings = m.listings.assign(images=[[] for _ in range(len(m.listings))])
    with pytest.raises(DataError, match="none of the .* labelled listing pairs has photos"):
        trainer.pairs_from_listings(listings, splits.train)
    assert trainer.pair_counts_["listing_pairs_skipped_no_photos"] == len(splits.train)
    with pytest.raises(DataError, match="no column 'images'"):
        trainer.pairs_from_listings(m.listings.drop(columns=["images"]), splits.train)
    with pytest.raises(DataError, match="not in the listings"):
        trainer.pairs_from_listings(m.listings.iloc[:5], splits.train)
    with pytest.raises(DataError, match="labels must be 0 or 1"):
        trainer.pairs_from_listings(m.listings, splits.train.assign(label=2))
    with pytest.raises(DataError, match="needs duplicates and non-duplicates"):
        trainer.fit(["a.png"], ["b.png"], [1])
    with pytest.raises(ValueError, match="differ in length"):
        trainer.fit(["a.png"], ["b.png", "c.png"], [1])
    # A photo that cannot be read: the image loader's clear error, naming the file.
    with pytest.raises(DataError, match="cannot read image"):
        ContrastiveImageTrainer(ContrastiveConfig(**TINY, max_steps=1)).fit(
            ["/no/such.png", "/no/such2.png"], ["/no/such3.png", "/no/such4.png"], [1, 0])


# --------------------------------------------------------------------------- training

def test_training_lowers_the_loss_and_separates_duplicates(trained):
    trainer, before, after, y = trained["trainer"], trained["before"], trained["after"], trained["y"]
    hist = np.asarray(trainer.loss_history_)
    assert len(hist) == trainer.steps_ == 60 and np.isfinite(hist).all()
    assert hist[-10:].mean() < hist[:5].mean(), hist
    # Held-out pairs (other items than the training pairs): the loss is lower and duplicates'
    # photos are further apart from non-duplicates' than before training.
    assert _contrastive_loss(after, y) < _contrastive_loss(before, y)
    gap_before = before[y == 1].mean() - before[y == 0].mean()
    gap_after = after[y == 1].mean() - after[y == 0].mean()
    print(f"\nheld-out cosine gap (duplicates - non-duplicates): {gap_before:.3f} untrained, "
          f"{gap_after:.3f} after {trainer.steps_} steps; {trainer.pairs_per_second_:.0f} pairs/s")
    assert gap_after > gap_before + 0.03
    assert trainer.pairs_per_second_ > 0
    assert trainer.pair_counts_["trained_photo_pairs"] == trained["counts"]["photo_pairs"]


def test_saved_folder_loads_as_timm_dir(trained):
    from dupsearch.encoders.base import make_encoder
    trainer, folder = trained["trainer"], trained["folder"]
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "contrastive.json", "model.safetensors"]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary left
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["architecture"] == "test_resnet" and cfg["num_classes"] == 0
    assert cfg["dupsearch_embedding"] == "pooled"
    pc = cfg["pretrained_cfg"]
    assert pc["input_size"] == [3, 64, 64] and pc["crop_pct"] == 1.0 and len(pc["mean"]) == 3
    info = json.loads((folder / "contrastive.json").read_text())
    assert info["config"]["backbone"] == "test_resnet" and info["steps"] == 60
    assert len(info["loss_history"]) == 60 and info["pair_counts"]["photo_pairs"] == trained["counts"]["photo_pairs"]
    enc = make_encoder(f"timm:{folder}", "image")
    paths = trained["test_paths"][:40]
    got = enc.encode(paths)
    want = trainer.encode(paths)
    assert got.shape == want.shape == (40, enc.dim) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(want, axis=1), 1.0, atol=1e-5)
    # Saving again replaces the folder; a foreign non-empty folder is not replaced.
    trainer.save(folder)
    np.testing.assert_allclose(make_encoder(f"timm:{folder}", "image").encode(paths[:4]), want[:4], atol=1e-5)
    foreign = folder.parent / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        trainer.save(foreign)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_deterministic_and_continues_from_checkpoint(market, trained, tmp_path):
    m, splits = market
    a, b, y = ContrastiveImageTrainer().pairs_from_listings(m.listings, splits.train)
    runs = [ContrastiveImageTrainer(ContrastiveConfig(**TINY, max_steps=3)).fit(a[:96], b[:96], y[:96])
            for _ in range(2)]
    assert runs[0].loss_history_ == runs[1].loss_history_
    paths = trained["test_paths"][:6]
    np.testing.assert_array_equal(runs[0].encode(paths), runs[1].encode(paths))
    # Starting from the saved folder: the trained weights, before any step.
    start = ContrastiveImageTrainer(ContrastiveConfig(**{**TINY, "checkpoint": str(trained["folder"])}))
    np.testing.assert_allclose(start.encode(paths), trained["trainer"].encode(paths), atol=1e-6)


def test_projection_head(market, trained, tmp_path):
    """With embed_dim the head is saved as the classifier: timm:DIR drops it (pooled features),
    timm.create_model('local-dir:...') keeps it."""
    import torch
    from dupsearch.encoders._torch import import_timm
    from dupsearch.encoders.base import make_encoder
    from dupsearch.encoders.image import _images
    timm = import_timm()
    from timm.models import load_state_dict
    m, splits = market
    a, b, y = ContrastiveImageTrainer().pairs_from_listings(m.listings, splits.train)
    trainer = ContrastiveImageTrainer(ContrastiveConfig(**TINY, embed_dim=8, max_steps=2)).fit(a[:64], b[:64], y[:64])
    folder = trainer.save(tmp_path / "head")
    paths = trained["test_paths"][:5]
    projected = trainer.encode(paths)
    assert projected.shape == (5, 8)
    hub = json.loads((folder / "config.json").read_text())
    assert hub["num_classes"] == 8 and hub["dupsearch_embedding"] == "projection"
    enc = make_encoder(f"timm:{folder}", "image")
    np.testing.assert_allclose(enc.encode(paths), trainer.encode(paths, projection=False), atol=1e-5)
    model = timm.create_model(f"local-dir:{folder}", pretrained=False)
    model.load_state_dict(load_state_dict(str(folder / "model.safetensors")))
    x = torch.stack([trainer._eval_transform(im) for im in _images(paths)])
    with torch.inference_mode():
        out = torch.nn.functional.normalize(model.eval()(x), dim=1).numpy()
    np.testing.assert_allclose(out, projected, atol=1e-5)


def test_resnet18_throughput(market):
    """Training speed of resnet18 (random init) at 96 px, the synthetic photos' size; printed."""
    m, splits = market
    a, b, y = ContrastiveImageTrainer().pairs_from_listings(m.listings, splits.train)
    trainer = ContrastiveImageTrainer(ContrastiveConfig(backbone="resnet18", image_size=96, batch_size=16,
                                                        learning_rate=1e-3, max_steps=3, num_threads=1))
    trainer.fit(a, b, y)
    rate = 16 * (trainer.steps_ - 1) / sum(trainer.step_seconds_[1:])  # the first step warms up
    print(f"\nresnet18 @96px, random init, batch 16 pairs, 1 torch thread: {rate:.1f} photo pairs/s "
          f"({2 * rate:.1f} images/s forward+backward; first step {trainer.step_seconds_[0]:.2f}s)")
    assert trainer.steps_ == 3 and np.isfinite(trainer.loss_history_).all()
