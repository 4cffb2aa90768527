"""3D previews for the results page's slice browser: every slice of every volume, light enough for a page.

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

from util.html import url

MAX_SIDE = 256

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
        f.write(f'revganVolume({json.dumps(src)}, "{encode(q)}");\n')
    lo, hi = (float(w) for w in window)
    return {"src": src, "shape": list(q.shape), "spacing": [s * f for s, f in zip(spacing(affine), factors)],
            "factor": factors, "lo": lo, "hi": hi, "views": views(affine), "bytes": os.path.getsize(path)}


SCRIPT = r"""
(() => {
"use strict";
const D = window.REVGAN_SLICES, root = document.getElementById("slices");
if (!D || !root || !D.cases.length) return;
const q = s => root.querySelector(s);
const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls;
                                 if (text !== undefined) e.textContent = text; return e; };
const cache = new Map(), waiting = new Map();
window.revganVolume = (key, data) => { const w = waiting.get(key); if (w) w(data); };
function volume(src) {  // the uint8 voxels of a preview file, decoded once and kept for the last few volumes
  if (cache.has(src)) return cache.get(src);
  const p = new Promise((resolve, reject) => {
    waiting.set(src, resolve);
    const s = document.createElement("script");
    s.src = src;
    s.onerror = () => {
      waiting.delete(src); cache.delete(src); reject(new Error("missing " + decodeURIComponent(src)));
    };
    s.onload = () => s.remove();
    document.head.append(s);
  }).then(async b64 => {
    waiting.delete(src);
    const bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  });
  cache.set(src, p);
  if (cache.size > 9) cache.delete(cache.keys().next().value);
  return p;
}
const S = {c: -1, g: 0, token: 0, cursor: null, hover: null, active: 0, rows: [], over: false, only: null};
window.RevGAN = window.RevGAN || {};
window.RevGAN.slices = S;
const caseSel = q("#s-case"), groupSel = q("#s-group"), viewSel = q("#s-view"), grid = q("#s-grid");
const status = q("#s-status");
const readout = q("#s-readout");
D.cases.forEach((c, i) => caseSel.append(new Option(c.name, i)));
function value(m, qv) {
  const v = m.lo + qv * (m.hi - m.lo) / 255, step = (m.hi - m.lo) / 255;
  const digits = Math.max(0, Math.min(6, Math.ceil(-Math.log10(step)) + 1));
  const text = v.toFixed(digits);
  return qv === 0 ? "\u2264 " + text : qv === 255 ? "\u2265 " + text : text;
}
async function load(c, g) {
  const cs = D.cases[c], sameCase = c === S.c;
  g = Math.max(0, Math.min(g || 0, cs.groups.length - 1));
  caseSel.value = c;
  if (!sameCase) {
    groupSel.replaceChildren(...cs.groups.map((gr, i) => new Option(gr.title, i)));
    groupSel.disabled = cs.groups.length < 2;
  }
  groupSel.value = g;
  const token = ++S.token, group = cs.groups[g], metas = group.panels.map(p => cs.volumes[p.label]);
  status.textContent = "loading\u2026";
  let arrays;
  try {
    arrays = await Promise.all(metas.map(m => volume(m.src)));
  } catch (err) {
    if (token === S.token) status.textContent = String(err.message || err);
    return;
  }
  if (token !== S.token) return;  // a later choice won
  const shape = metas[0].shape;
  if (!sameCase || !S.cursor || S.shape.join() !== shape.join()) S.cursor = shape.map(n => n >> 1);
  Object.assign(S, {c, g, group, metas, arrays, shape, views: metas[0].views, spacing: metas[0].spacing, hover: null});
  const f = metas[0].factor;
  status.textContent = shape.join("\u00d7")
    + (f.some(x => x > 1) ? "  (preview averaged " + f.join("\u00d7") + ")" : "")
    + "  \u00b7  " + metas.map(m => m.bytes < 1048576 ? Math.ceil(m.bytes / 1024) + " KB"
                                                   : (m.bytes / 1048576).toFixed(1) + " MB").join(" + ");
  build();
  S.views.forEach((v, i) => draw(i));
  report();
  document.querySelectorAll("tr[data-case]").forEach(r => r.classList.toggle("current", +r.dataset.case === c));
  root.dispatchEvent(new CustomEvent("loaded"));
}
function build() {
  const n = S.metas.length, sp = S.spacing;
  const shown = S.views.map((v, i) => i).filter(i => S.only === null || i === S.only);
  if (!shown.includes(S.active)) S.active = shown[0];
  // screen pixels per millimetre, one for the views shown: panels fill the width, rows stay within the window
  const width = (Math.max(300, grid.clientWidth - 232) - 14 * (n - 1)) / n;
  const height = S.only === null ? Math.max(160, innerHeight * 0.45) : Math.max(240, innerHeight - 200);
  const k = Math.min(...shown.map(vi => { const v = S.views[vi];
    return Math.min(width / (S.shape[v.c] * sp[v.c]), height / (S.shape[v.r] * sp[v.r])); }));
  grid.replaceChildren();
  S.rows = S.views.map((v, vi) => {
    if (!shown.includes(vi)) return null;
    const row = el("div", "srow"), head = el("div", "shead");
    const range = el("input");
    Object.assign(range, {type: "range", min: 0, max: S.shape[v.n] - 1, value: S.cursor[v.n]});
    range.setAttribute("aria-label", v.name + " slice");
    const num = el("span", "snum");
    head.append(el("b", null, v.name), range, num);
    range.addEventListener("input", () => {
      S.active = vi; S.cursor[v.n] = +range.value; draw(vi); cross(); report();
    });
    const cells = el("div", "scells"), canvases = [];
    S.metas.forEach((m, pi) => {
      const fig = el("figure"), wrap = el("div", "cell"), canvas = el("canvas");
      canvas.width = S.shape[v.c];
      canvas.height = S.shape[v.r];
      canvas.style.width = Math.round(S.shape[v.c] * sp[v.c] * k) + "px";
      canvas.style.height = Math.round(S.shape[v.r] * sp[v.r] * k) + "px";
      canvas.dataset.view = v.name;
      canvas.dataset.label = S.group.panels[pi].label;
      const h = el("div", "xh"), w = el("div", "xv");
      wrap.append(canvas, h, w);
      if (v.edges) ["t", "b", "l", "r"].forEach((p, i) => wrap.append(el("span", "edge " + p, v.edges[i])));
      const cap = el("figcaption"), p = S.group.panels[pi];
      cap.append(el("b", null, p.caption || p.label));
      if (p.note) cap.append(" " + p.note);
      fig.append(wrap, cap);
      cells.append(fig);
      canvases.push(canvas);
      canvas.addEventListener("mousemove", e => { S.active = vi; S.hover = voxel(vi, canvas, e); report(); });
      canvas.addEventListener("mouseleave", () => { S.hover = null; report(); });
      canvas.addEventListener("mousedown", e => {
        S.active = vi; S.cursor = voxel(vi, canvas, e);
        S.views.forEach((u, ui) => { if (ui !== vi) draw(ui); });
        cross(); report();
      });
      canvas.addEventListener("wheel", e => {
        e.preventDefault(); S.active = vi; move(vi, e.deltaY > 0 ? 1 : e.deltaY < 0 ? -1 : 0);
        S.hover = voxel(vi, canvas, e); report();
      }, {passive: false});
    });
    row.append(head, cells);
    grid.append(row);
    return {range, num, canvases};
  });
  cross();
}
function voxel(vi, canvas, e) {
  const v = S.views[vi], r = canvas.getBoundingClientRect();
  const x = Math.min(canvas.width - 1, Math.max(0, Math.floor((e.clientX - r.left) / r.width * canvas.width)));
  const y = Math.min(canvas.height - 1, Math.max(0, Math.floor((e.clientY - r.top) / r.height * canvas.height)));
  const p = S.cursor.slice();
  p[v.r] = v.rf ? canvas.height - 1 - y : y;
  p[v.c] = v.cf ? canvas.width - 1 - x : x;
  return p;
}
function move(vi, d) {
  const v = S.views[vi];
  S.cursor[v.n] = Math.max(0, Math.min(S.shape[v.n] - 1, S.cursor[v.n] + d));
  draw(vi); cross(); report();
}
function draw(vi) {
  const v = S.views[vi], row = S.rows[vi], s = S.cursor[v.n];
  if (!row) return;
  const nr = S.shape[v.r], nc = S.shape[v.c], st = [S.shape[1] * S.shape[2], S.shape[2], 1];
  row.canvases.forEach((canvas, pi) => {
    const arr = S.arrays[pi], ctx = canvas.getContext("2d"), img = ctx.createImageData(nc, nr), d = img.data;
    let o = 0;
    for (let y = 0; y < nr; y++) {
      const base = s * st[v.n] + (v.rf ? nr - 1 - y : y) * st[v.r];
      for (let x = 0; x < nc; x++) {
        const g = arr[base + (v.cf ? nc - 1 - x : x) * st[v.c]];
        d[o] = d[o + 1] = d[o + 2] = g; d[o + 3] = 255; o += 4;
      }
    }
    ctx.putImageData(img, 0, 0);
    canvas.dataset.slice = s;
  });
  row.range.value = s;
  row.num.textContent = s + " / " + (S.shape[v.n] - 1);
}
function cross() {  // where the other two views cut this one
  S.views.forEach((v, vi) => S.rows[vi] && S.rows[vi].canvases.forEach(canvas => {
    const wrap = canvas.parentNode, nr = S.shape[v.r], nc = S.shape[v.c];
    const y = v.rf ? nr - 1 - S.cursor[v.r] : S.cursor[v.r], x = v.cf ? nc - 1 - S.cursor[v.c] : S.cursor[v.c];
    wrap.querySelector(".xh").style.top = ((y + 0.5) / nr * 100) + "%";
    wrap.querySelector(".xv").style.left = ((x + 0.5) / nc * 100) + "%";
  }));
}
function report() {
  const p = S.hover || S.cursor, st = [S.shape[1] * S.shape[2], S.shape[2], 1];
  const i = p[0] * st[0] + p[1] * st[1] + p[2];
  const where = (S.hover ? "under the cursor" : "at the crosshair") + "  voxel (" + p.join(", ") + ")";
  readout.replaceChildren(el("span", "rpos", where));
  S.metas.forEach((m, pi) => {
    const span = el("span", "rv"), panel = S.group.panels[pi];
    span.dataset.label = panel.label;
    span.append(el("b", null, panel.caption || panel.label), " " + value(m, S.arrays[pi][i]));
    readout.append(span);
  });
}
caseSel.addEventListener("change", () => load(+caseSel.value, 0));
groupSel.addEventListener("change", () => load(S.c, +groupSel.value));
viewSel.addEventListener("change", () => {
  S.only = viewSel.value === "" ? null : +viewSel.value;
  if (S.only !== null) S.active = S.only;
  build(); S.views.forEach((v, i) => draw(i));
});
q("#s-prev").addEventListener("click", () => load((S.c - 1 + D.cases.length) % D.cases.length, S.g));
q("#s-next").addEventListener("click", () => load((S.c + 1) % D.cases.length, S.g));
root.addEventListener("mouseenter", () => { S.over = true; });
root.addEventListener("mouseleave", () => { S.over = false; });
document.addEventListener("keydown", e => {
  if (!S.rows.length || e.altKey || e.ctrlKey || e.metaKey) return;
  if (/^(INPUT|SELECT|TEXTAREA)$/.test(e.target.tagName) || !(S.over || root.contains(document.activeElement))) return;
  const k = e.key;
  if (k === "ArrowUp" || k === "ArrowDown") move(S.active, k === "ArrowDown" ? 1 : -1);
  else if (k === "PageUp" || k === "PageDown") move(S.active, k === "PageDown" ? 10 : -10);
  else if (k === "ArrowLeft" || k === "ArrowRight")
    load((S.c + (k === "ArrowRight" ? 1 : -1) + D.cases.length) % D.cases.length, S.g);
  else return;
  e.preventDefault();
});
document.addEventListener("click", e => {  // a row of the volumes table opens that volume here
  const row = e.target.closest && e.target.closest("tr[data-case]");
  if (!row || e.target.closest("a.ext")) return;
  e.preventDefault();
  load(+row.dataset.case, 0).then(() => root.scrollIntoView({block: "start", behavior: "smooth"}));
});
window.addEventListener("resize", () => { if (S.rows.length) { build(); S.views.forEach((v, i) => draw(i)); } });
load(0, 0);
})();
"""

STYLE = """
#slices .sbar { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 14px; margin-bottom: 10px;
                font-size: 13px; }
#slices select, #slices button { font: inherit; padding: 2px 6px; border: 1px solid var(--line); border-radius: 5px;
                                 background: #fff; max-width: 340px; }
#slices button { cursor: pointer; }
#s-status { color: var(--muted); font-size: 12.5px; }
#s-grid { background: #0b0d11; border-radius: 8px; padding: 10px 12px; color: #e6eaf0; }
.srow { display: flex; align-items: center; gap: 12px; padding: 6px 0; border-bottom: 1px solid #1f242c; }
.srow:last-child { border-bottom: 0; }
.shead { width: 176px; flex: none; display: flex; flex-direction: column; gap: 4px; font-size: 13px; }
.shead b { text-transform: capitalize; font-weight: 600; }
.shead input { width: 100%; accent-color: #5b8cff; }
.snum { color: #9aa4b2; font-size: 12px; font-variant-numeric: tabular-nums; }
.scells { display: flex; gap: 14px; align-items: flex-start; flex-wrap: wrap; }
.scells figure { margin: 0; text-align: center; }
.scells figcaption { font-size: 12px; color: #aab3c0; margin-top: 4px; }
.scells figcaption b { color: #e6eaf0; font-weight: 600; }
.cell { position: relative; line-height: 0; }
.cell canvas { image-rendering: pixelated; display: block; cursor: crosshair; background: #000; }
.cell .xh, .cell .xv { position: absolute; pointer-events: none; background: rgba(255, 196, 0, .45); }
.cell .xh { left: 0; right: 0; height: 1px; } .cell .xv { top: 0; bottom: 0; width: 1px; }
.cell .edge { position: absolute; font: 600 10px/1 system-ui, sans-serif; color: #ffcf4d; pointer-events: none;
              text-shadow: 0 0 2px #000; }
.edge.t { top: 2px; left: 50%; transform: translateX(-50%); }
.edge.b { bottom: 2px; left: 50%; transform: translateX(-50%); }
.edge.l { left: 3px; top: 50%; transform: translateY(-50%); }
.edge.r { right: 3px; top: 50%; transform: translateY(-50%); }
#s-readout { display: flex; flex-wrap: wrap; gap: 4px 18px; margin-top: 8px; font-size: 13px; min-height: 30px;
             font-variant-numeric: tabular-nums; position: sticky; bottom: 0; background: var(--card);
             padding: 6px 0; border-top: 1px solid var(--line); z-index: 3; }
#s-readout .rpos { color: var(--muted); }
#s-readout .rv b { margin-right: 4px; }
tr[data-case] { cursor: pointer; }
tr[data-case].current { background: #eaf1ff; box-shadow: inset 3px 0 0 var(--accent); }
"""
