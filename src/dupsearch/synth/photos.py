"""Procedural product photos: an item-specific composition of shapes, colours and texture.

The *shape* layout comes from the item's family (same model -> similar silhouette), colours and
texture from the item itself, pose and background from the shot. A duplicate re-uses the base
shots of its item, transformed the ways re-posted photos are: re-encoded, cropped, resized,
mirrored, recoloured, slightly rotated; now and then it adds a new shot of the same item.
Everything is seeded by (seed, family, item, shot), so photos do not depend on generation order.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

SHOT_COUNTS = np.array([1, 2, 3, 4, 5])
SHOT_WEIGHTS = np.array([0.25, 0.25, 0.2, 0.15, 0.15])


def _palette(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(20, 236, size=(n, 3))


def base_shot(seed: int, family: int, item: int, shot: int, size: int = 96) -> Image.Image:
    """The untouched photo number ``shot`` of ``item`` (a member of ``family``)."""
    frng = np.random.default_rng([seed, 1, family])
    irng = np.random.default_rng([seed, 2, item])
    srng = np.random.default_rng([seed, 3, item, shot])
    s = size
    # background: a gradient between two colours, per shot
    bg = _palette(srng, 2).astype(np.float32)
    t = np.linspace(0.0, 1.0, s, dtype=np.float32)[:, None, None]
    img = (bg[0] * (1 - t) + bg[1] * t).repeat(s, axis=1).astype(np.uint8)
    canvas = Image.fromarray(img, "RGB")

    # object: 2-4 primitives laid out by the family, coloured by the item
    layer = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    colors = _palette(irng, 4)
    n_parts = int(frng.integers(2, 5))
    for k in range(n_parts):
        kind = int(frng.integers(3))
        cx, cy = frng.uniform(0.3, 0.7, size=2) * s
        w, h = frng.uniform(0.15, 0.45, size=2) * s
        box = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
        fill = tuple(int(c) for c in colors[k % len(colors)]) + (255,)
        if kind == 0:
            draw.ellipse(box, fill=fill)
        elif kind == 1:
            draw.rounded_rectangle(box, radius=int(min(w, h) * 0.2), fill=fill)
        else:
            ang = frng.uniform(0, 2 * np.pi) + np.arange(int(frng.integers(3, 7))) * 2 * np.pi / 5
            pts = [(cx + np.cos(a) * w / 2, cy + np.sin(a) * h / 2) for a in ang]
            draw.polygon(pts, fill=fill)
    # texture: item-specific stripes on the object
    arr = np.asarray(layer).copy()
    yy, xx = np.mgrid[0:s, 0:s]
    angle, freq = irng.uniform(0, np.pi), irng.uniform(0.15, 0.6)
    stripes = (np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * freq) > 0.3)
    mask = arr[..., 3] > 0
    tint = colors[3].astype(np.int16)
    sel = mask & stripes
    arr[sel, :3] = ((arr[sel, :3].astype(np.int16) + tint) // 2).astype(np.uint8)
    layer = Image.fromarray(arr, "RGBA")
    # pose of this shot
    rot = float(srng.uniform(-25, 25))
    scale = float(srng.uniform(0.8, 1.1))
    layer = layer.rotate(rot, resample=Image.BILINEAR)
    if abs(scale - 1) > 0.02:
        ns = max(8, int(s * scale))
        layer = layer.resize((ns, ns), Image.BILINEAR)
    dx, dy = (srng.uniform(-0.12, 0.12, size=2) * s + (s - layer.size[0]) / 2).astype(int)
    canvas.paste(layer, (int(dx), int(dy)), layer)
    return canvas


def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def transform(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A re-posted copy of a photo: 1-3 of crop, resize, mirror, recolour, rotate, re-encode."""
    s = img.size[0]
    ops = rng.choice(6, size=int(rng.integers(1, 4)), replace=False)
    for op in sorted(ops.tolist()):
        if op == 0:      # crop
            f = rng.uniform(0.75, 0.95)
            w = int(s * f)
            x, y = rng.integers(0, s - w + 1, size=2)
            img = img.crop((int(x), int(y), int(x) + w, int(y) + w)).resize((s, s), Image.BILINEAR)
        elif op == 1:    # mirror
            img = ImageOps.mirror(img)
        elif op == 2:    # recolour
            img = ImageEnhance.Color(img).enhance(rng.uniform(0.6, 1.4))
            img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.75, 1.25))
            img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.8, 1.2))
        elif op == 3:    # small rotation
            img = img.rotate(float(rng.uniform(-6, 6)), resample=Image.BILINEAR, fillcolor=(255, 255, 255))
        elif op == 4:    # re-encoded with JPEG artefacts
            img = _jpeg(img, int(rng.integers(20, 70)))
        else:            # resized
            ns = int(rng.integers(int(s * 0.6), int(s * 1.4)))
            img = img.resize((ns, ns), Image.BILINEAR)
    return img


def listing_photos(seed: int, family: int, item: int, n_shots: int, repost: int, size: int,
                   cache: dict[int, Image.Image]) -> list[Image.Image]:
    """Photos of one listing. ``repost`` 0 is the original listing (all its shots, lightly
    compressed now and then); k > 0 is the k-th re-post (a subset, transformed)."""
    rng = np.random.default_rng([seed, 4, item, repost])

    def shot(k: int) -> Image.Image:
        if k not in cache:
            cache[k] = base_shot(seed, family, item, k, size)
        return cache[k]

    if repost == 0:
        return [_jpeg(shot(k), 85) if rng.random() < 0.2 else shot(k) for k in range(n_shots)]
    m = int(rng.integers(1, n_shots + 1))
    chosen = rng.permutation(n_shots)[:m].tolist()
    if rng.random() < 0.12:      # a new shot of the same item
        chosen.append(n_shots + repost)
    return [transform(shot(k), rng) for k in chosen]


def save_png(img: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG", compress_level=1)
