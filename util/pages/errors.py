"""Error maps: where an output differs from its target, |output - target|, on one fixed scale per page.

The scale is stated beside every map (a colour bar, static/page.js) and is the same for every item and output of a
results page, so maps compare at a glance: the first of ``LADDER`` (fractions of the data range: the 0..1 of images,
the target's intensity window of volumes) that is at least ``SPREAD`` times the largest mean MAE of the page
(the foreground's for volumes); errors above it show in the brightest colour. Colours: matplotlib's "inferno"
(dark: no error, bright: large), perceptually ordered and readable by colour-blind people.

2D maps are written as images beside the page when it is written (``write_maps``: from the saved output and target
images, the mean over the channels of |output - target|); the slice browser draws the maps of volumes itself from
the volumes it shows.
"""
import functools
import os

import numpy as np
from PIL import Image

from util.results import MAE

LADDER = (0.01, 0.02, 0.03, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0)
SPREAD = 3  # the scale's top is at least this many times the mean absolute error
FOLDER = "errors"  # errors/OUTPUT/NAME.png beside the page


@functools.lru_cache(maxsize=1)
def colours():
    """The colour map: 256 (r, g, b) of 0..255, dark (no error) to bright."""
    from matplotlib import colormaps
    table = colormaps["inferno"](np.linspace(0, 1, 256))[:, :3]
    return [[int(round(v * 255)) for v in rgb] for rgb in table]


def scale(mean):
    """The fixed scale of a page's error maps as a fraction of the data range (``mean``: the page's
    util.results.Results), or None where nothing was measured against a target."""
    fractions = []
    for r in mean:
        if r.metric is MAE and not r.cycle and r.value == r.value:
            if r.region is None and any(x.region and x.output == r.output and x.metric is MAE for x in mean):
                continue  # volumes: the foreground's error, not one diluted by the air around the subject
            fractions.append(r.value / (r.data_range or 1.0))
    if not fractions:
        return None
    top = SPREAD * max(fractions)
    return next((s for s in LADDER if s >= top), LADDER[-1])


def describe(fraction, window=None):
    """The scale as people read it: "0 … 0.2 of the data range" (images on 0..1: also in 8-bit grey levels), or in a
    volume's units for its window (lo, hi)."""
    if window is None:
        return f"0 … {fraction:g} (images on 0 … 1; {fraction * 255:.0f} grey levels of 255)"
    lo, hi = window
    return f"0 … {fraction * (hi - lo):.4g} in the volume's units ({fraction:g} of the window {lo:g} … {hi:g})"


def page_data(fraction, window=None):
    """What the page's scripts need to draw maps and colour bars on the scale ``fraction``."""
    return {"scale": fraction, "colours": colours(), "text": describe(fraction, window)}


def _read(path):
    with Image.open(path) as im:
        arr = np.asarray(im)
    top = 65535.0 if arr.dtype == np.uint16 else 255.0
    arr = arr.astype(np.float32) / top
    return arr[:, :, None] if arr.ndim == 2 else arr[:, :, :3] if arr.shape[2] == 4 else arr


def error_map(output, target, fraction):
    """The colour picture (H, W, 3) uint8 of |output - target| (arrays (H, W, C) on 0..1; the mean over channels)
    on the scale 0 .. ``fraction``."""
    err = np.abs(output.mean(axis=2) - target.mean(axis=2)) if output.shape[2] != target.shape[2] else \
        np.abs(output - target).mean(axis=2)
    index = np.clip(np.round(err / fraction * 255), 0, 255).astype(np.uint8)
    return np.asarray(colours(), np.uint8)[index]


def write_maps(out_dir, items, pairs, fraction):
    """Writes errors/OUTPUT/NAME.png for each item that has an output and its target image (``pairs``: {output
    label: target label}); returns {item name: {"error_" + output label: path relative to out_dir}}."""
    found = {}
    if not fraction:
        return found
    for item in items:
        images = item["images"]
        for label, target in pairs.items():
            if label not in images or target not in images:
                continue
            out, tgt = (_read(os.path.join(out_dir, images[x])) for x in (label, target))
            if out.shape[:2] != tgt.shape[:2]:
                continue
            rel = os.path.join(FOLDER, label, os.path.splitext(os.path.basename(images[label]))[0] + ".png")
            os.makedirs(os.path.join(out_dir, FOLDER, label), exist_ok=True)
            Image.fromarray(error_map(out, tgt, fraction)).save(os.path.join(out_dir, rel), compress_level=1)
            found.setdefault(item["name"], {})["error_" + label] = rel
    return found
