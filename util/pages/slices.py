"""The results page's slice browser for volumes (static/slices.js and slices.css): every slice of every volume, light
enough for a page.

Each volume (input, output, target) is written beside the page as ``slices/<label>/<name>.js``: a script that hands
the page the volume as uint8 (0..255 over its domain's intensity window, the checkpoint's (lo, hi)), compressed
with zlib and base64-encoded. The page decompresses it in the browser (DecompressionStream, no network and no
fetch of local files, which Chromium blocks) and draws any axial, coronal or sagittal slice from it; the value
under the cursor is ``lo + q * (hi - lo) / 255`` in the volume's own units (HU for CT), to half a step
(``(hi - lo) / 510``). A page loads only the volumes of the case on screen. Volumes with a side longer than
``MAX_SIDE`` are averaged down by a whole factor per axis first (the page says so).

Weight, measured on a synthetic 256^3 CT (body, lungs, bone in air; window -1150..350 HU): 16.8 MB of uint8 become
a preview file of 7.8 MB for a smooth output (3 HU noise), 10.5 MB for a CT with 15 HU noise and 12.3 MB with
40 HU noise (zlib level 1, then base64); the page itself stays near 40 KB, and it loads the three volumes of the case
on screen only (about 1 s in headless Chromium, then a slice redraws in about 10 ms). Noise is what costs: flat
background is nearly free, and quantized noise defeats every cheap filter tried (delta coding, PNG slices).
"""
import base64
import json
import math
import os
import zlib

import numpy as np
from dominate import tags

from util.pages.html import json_data, url

MAX_SIDE = 256
LOADER = "revganVolume"  # the function of slices.js that a preview file calls with its data

# The three views, radiological convention: patient's right on the screen's left, anterior and superior at the top.
# Each is (name, normal axis, row axis with the end shown at the top, column axis with the end shown at the left).
VIEWS = (("axial", "SI", ("AP", "A"), ("LR", "R")),
         ("coronal", "AP", ("SI", "S"), ("LR", "R")),
         ("sagittal", "LR", ("SI", "S"), ("AP", "A")))
OPPOSITE = {"L": "R", "R": "L", "A": "P", "P": "A", "S": "I", "I": "S"}


def views(affine):
    """How each view reads the array: {"name", "n" (normal axis), "r"/"c" (row/column axes), "rf"/"cf" (flip), and
    "edges" (the letters at the top, bottom, left and right)}, from the affine's axis directions. Without an
    affine (.npy) the array's own order: axis 0 is the axial normal, as in the training page's mid-slices."""
    codes = None
    if affine is not None:
        try:
            import nibabel as nib
            codes = nib.aff2axcodes(np.asarray(affine, dtype=np.float64))
        except Exception:
            codes = None
        if codes is None or None in codes or len(set(codes)) != 3:
            codes = None
    if codes is None:
        return [{"name": "axial", "n": 0, "r": 1, "rf": True, "c": 2, "cf": False, "edges": None},
                {"name": "coronal", "n": 1, "r": 0, "rf": True, "c": 2, "cf": False, "edges": None},
                {"name": "sagittal", "n": 2, "r": 0, "rf": True, "c": 1, "cf": False, "edges": None}]
    axis_of = {pair: next(a for a, c in enumerate(codes) if c in pair) for pair in ("LR", "AP", "SI")}
    out = []
    for name, normal, (rows, top), (cols, left) in VIEWS:
        r, c = axis_of[rows], axis_of[cols]
        # an axis whose code is the end shown first (top, left) counts towards it: show it reversed
        out.append({"name": name, "n": axis_of[normal], "r": r, "rf": codes[r] == top, "c": c, "cf": codes[c] == left,
                    "edges": [top, OPPOSITE[top], left, OPPOSITE[left]]})
    return out


def spacing(affine, n=3):
    if affine is None:
        return [1.0] * n
    a = np.asarray(affine, dtype=np.float64)[:3, :3]
    return [float(s) if s > 0 else 1.0 for s in np.sqrt((a ** 2).sum(axis=0))]


def downsample(vol, max_side=MAX_SIDE):
    """``vol`` averaged over blocks so that no side exceeds ``max_side``; returns (volume, factor per axis)."""
    factors = [max(1, math.ceil(n / max_side)) for n in vol.shape]
    if all(f == 1 for f in factors):
        return vol, factors
    padded = [math.ceil(n / f) * f for n, f in zip(vol.shape, factors)]
    v = np.pad(vol, [(0, p - n) for p, n in zip(padded, vol.shape)], mode="edge")
    shape = []
    for p, f in zip(padded, factors):
        shape += [p // f, f]
    return v.reshape(shape).mean(axis=(1, 3, 5)), factors


def quantize(unit):
    """[-1, 1] -> uint8 0..255 (values outside are clipped)."""
    return np.round((np.clip(np.asarray(unit, np.float32), -1, 1) + 1) * 127.5).astype(np.uint8)


def encode(q, level=1):
    """The uint8 volume (C order) as base64 of its zlib stream: what the page's DecompressionStream("deflate") reads.
    Level 1: on a 256^3 CT about 5% larger than level 6, and five times faster to write."""
    return base64.b64encode(zlib.compress(np.ascontiguousarray(q).tobytes(), level)).decode("ascii")


def write(out_dir, name, label, unit, window, like=None):
    """Writes the preview of one volume (``unit``: (D, H, W) in [-1, 1]; ``window``: (lo, hi), the original units
    of -1 and 1; ``like``: the nibabel image whose affine places it, or None) as slices/<label>/<name>.js under
    ``out_dir``; returns what the page needs to read it."""
    rel = os.path.join("slices", label, name + ".js")
    affine = getattr(like, "affine", None)
    vol, factors = downsample(np.asarray(unit, np.float32))
    q = quantize(vol)
    src = url(rel)
    path = os.path.join(out_dir, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="ascii") as f:
        f.write(f'{LOADER}({json.dumps(src)}, "{encode(q)}");\n')
    lo, hi = (float(w) for w in window)
    return {"src": src, "shape": list(q.shape), "spacing": [s * f for s, f in zip(spacing(affine), factors)],
            "factor": factors, "lo": lo, "hi": hi, "views": views(affine), "bytes": os.path.getsize(path),
            "affine": None if affine is None else [[float(v) for v in row] for row in np.asarray(affine)[:4]]}


def section(cases, groups, error=None, windows=None):
    """The slice browser (a <section id="slices">) over ``cases``: [{"name", "volumes": {label: ``write(...)``}}];
    ``groups``: the panel groups of the translations ({"title", "panels": [{"label", "caption", "note"}]}), each
    shown where a case has its output; ``error``: the page's error scale (util.pages.errors.page_data), which adds
    the map |output - target| to every group with a target; ``windows``: the intensity window of each domain."""
    data = []
    for item in cases:
        vols = item["volumes"]
        gs = []
        for g in groups:
            panels = [p for p in g["panels"] if p["label"] in vols]
            if any(p["caption"] == "output" for p in panels):
                shape = vols[panels[0]["label"]]["shape"]
                gs.append({"title": g["title"], "panels": [p for p in panels if vols[p["label"]]["shape"] == shape]})
        if not gs:
            gs = [{"title": "volumes", "panels": [{"label": lbl, "caption": lbl} for lbl in vols]}]
        data.append({"name": item["name"], "groups": gs, "volumes": vols})
    hu = any(lo <= -900 and hi >= 300 for lo, hi in (windows or {}).values())  # CT in Hounsfield units
    with tags.section(id="slices") as section:
        tags.h2("Slice browser", tags.small("every slice of every volume, values in the volumes' own units (to half a "
                                            "step of 1/255 of the intensity window)"))
        with tags.div(cls="sbar"):
            with tags.label():
                tags.span("volume ")
                tags.select(id="s-case", aria_label="volume")
            tags.button("◀", id="s-prev", title="previous volume (←)")
            tags.button("▶", id="s-next", title="next volume (→)")
            with tags.label():
                tags.span("translation ")
                tags.select(id="s-group", aria_label="translation")
            with tags.label():
                tags.span("views ")
                with tags.select(id="s-view", aria_label="views"):
                    tags.option("all three", value="")
                    for i, name in enumerate(("axial", "coronal", "sagittal")):
                        tags.option(f"{name}, large", value=str(i))
            with tags.span(cls="sgroup"):
                tags.button("−", id="s-zout", title="zoom out (−; Ctrl + wheel over a view)")
                tags.span("1×", id="s-zoom", cls="snum")
                tags.button("+", id="s-zin", title="zoom in (+; Ctrl + wheel over a view)")
                tags.button("fit", id="s-fit", title="fit, no pan (0; double-click a view)")
            with tags.label(title="window/level: right-drag over a view (← → contrast, ↑ ↓ brightness)"):
                tags.span("window ")
                with tags.select(id="s-wl", aria_label="window preset"):
                    tags.option("full intensity window", value="full")
                    tags.option("auto: 1–99% of the target", value="auto")
                    if hu:
                        for name, width, level in (("brain", 80, 40), ("soft tissue", 400, 40), ("lung", 1500, -600),
                                                   ("bone", 1800, 400)):
                            tags.option(f"{name} (W {width} L {level} HU)", value=f"{width},{level}")
                    tags.option("custom (right-drag)", value="custom", disabled=True)
            tags.button("flicker", id="s-flicker", title="show the target in the output's place (F)",
                        aria_pressed="false")
            tags.span(id="s-status")
        tags.div(id="s-readout", aria_live="polite")
        tags.div(id="s-grid")
        tags.p("Wheel, ↑ ↓, slider: slices · click, drag: crosshair · right-drag: window/level · Shift-drag: "
               "pan · Ctrl + wheel, + −: zoom · 0, double-click: fit · F: flicker output/target · ← →: volumes · "
               "error plot: click a slice", cls="muted shelp")
        json_data("s-data", {"cases": data, "error": error})
    return section
