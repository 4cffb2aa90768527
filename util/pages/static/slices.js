// The results page's slice browser (util/pages/slices.py): every axial, coronal and sagittal slice of the volumes
// of one case (input, output, target and the error map |output - target|), decoded from the preview files beside
// the page; zoom and pan, window/level, flicker, the value under the pointer in original units with its voxel and
// millimetre position, and per view the error of every slice (click: go there).
(() => {
"use strict";
const data = document.getElementById("s-data"), root = document.getElementById("slices");
const D = window.REVGAN_SLICES = data ? JSON.parse(data.textContent) : null;
if (!D || !root || !D.cases.length) return;
const R = window.RevGAN = window.RevGAN || {};
const q = s => root.querySelector(s);
const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls;
                                 if (text !== undefined) e.textContent = text; return e; };
const cache = new Map(), waiting = new Map();
window.revganVolume = (key, payload) => { const w = waiting.get(key); if (w) w(payload); };
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

// S: what is shown. wl: the display window as fractions [a, b] of each volume's intensity window; zoom and pan per
// view (shared by the panels of a view, so they stay in register); hover: the voxel under the pointer or null.
const S = {c: -1, g: 0, token: 0, cursor: null, hover: null, active: 0, rows: [], over: false, only: null,
           zoom: [1, 1, 1], pan: [[0, 0], [0, 0], [0, 0]], wl: [0, 1], flicker: false, drag: null, profiles: null};
R.slices = S;
const caseSel = q("#s-case"), groupSel = q("#s-group"), viewSel = q("#s-view"), grid = q("#s-grid");
const status = q("#s-status"), readout = q("#s-readout"), wlSel = q("#s-wl"), flickBtn = q("#s-flicker");
const zoomText = q("#s-zoom");
D.cases.forEach((c, i) => caseSel.append(new Option(c.name, i)));
const ERR = D.error;  // {scale: fraction of the target window, colours: [[r, g, b] x 256], text} or null

function units(m, qv) { return m.lo + qv * (m.hi - m.lo) / 255; }
function digits(m) { return Math.max(0, Math.min(6, Math.ceil(-Math.log10((m.hi - m.lo) / 255)) + 1)); }
function value(m, qv) {
  const text = units(m, qv).toFixed(digits(m));
  return qv === 0 ? "\u2264 " + text : qv === 255 ? "\u2265 " + text : text;
}

// -- a case: its volumes, its panels, its error profiles
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
  const panels = group.panels.map((p, i) => ({...p, i}));
  const out = panels.findIndex(p => p.caption === "output"), tgt = panels.findIndex(p => p.caption === "target");
  if (ERR && out >= 0 && tgt >= 0)
    panels.push({label: "error_" + panels[out].label, caption: "|output \u2212 target|", note: "error map",
                 kind: "error", out, tgt});
  Object.assign(S, {c, g, group, metas, arrays, shape, panels, out, tgt, views: metas[0].views,
                    spacing: metas[0].spacing, hover: null});
  S.profiles = out >= 0 && tgt >= 0 ? profiles(arrays[out], arrays[tgt], metas[tgt]) : null;
  const f = metas[0].factor;
  status.textContent = shape.join("\u00d7")
    + (f.some(x => x > 1) ? "  (preview averaged " + f.join("\u00d7") + ")" : "")
    + "  \u00b7  " + metas.map(m => m.bytes < 1048576 ? Math.ceil(m.bytes / 1024) + " KB"
                                                   : (m.bytes / 1048576).toFixed(1) + " MB").join(" + ");
  if (wlSel.value === "auto") preset("auto");
  build();
  document.querySelectorAll("tr[data-case]").forEach(r => r.classList.toggle("current", +r.dataset.case === c));
  root.dispatchEvent(new CustomEvent("loaded"));
}
function profiles(a, b, m) {  // the mean |output - target| of every slice along each axis, in original units
  const [n0, n1, n2] = S.shape, p = [new Float64Array(n0), new Float64Array(n1), new Float64Array(n2)];
  let i = 0;
  for (let z = 0; z < n0; z++) {
    let row = 0;
    for (let y = 0; y < n1; y++) {
      let sum = 0;
      for (let x = 0; x < n2; x++, i++) { const e = Math.abs(a[i] - b[i]); sum += e; p[2][x] += e; }
      p[1][y] += sum; row += sum;
    }
    p[0][z] += row;
  }
  const step = (m.hi - m.lo) / 255, n = [n1 * n2, n0 * n2, n0 * n1];
  return p.map((arr, k) => Array.from(arr, v => v / n[k] * step));
}

// -- layout: three rows (or one, large) of panels that fit the window; each panel is a viewport with zoom and pan
function build() {
  const n = S.panels.length;
  const shown = S.views.map((v, i) => i).filter(i => S.only === null || i === S.only);
  if (!shown.includes(S.active)) S.active = shown[0];
  S.hover = null;
  const head = 156, gap = 10, bar = ERR && S.profiles ? 66 : 0, caption = 30;
  const width = Math.max(120 * n, grid.clientWidth - 24 - head - 12);
  const chrome = q(".sbar").offsetHeight + readout.offsetHeight + q(".shelp").offsetHeight + 64;
  const rows = Math.max(240, innerHeight - chrome);
  // one view large: the panels in the columns (all, or half of them in two rows) that show its slice largest
  let cols = n, cw = 0, ch = 0;
  const sizes = c => {
    const w = Math.max(100, Math.floor((width - gap * (c - 1) - bar) / c));
    const lines = Math.ceil(n / c), h = Math.max(110, Math.floor(S.only === null ? rows / 3 - caption
                                                                  : rows / lines - caption));
    return [w, h];
  };
  [cw, ch] = sizes(n);
  if (S.only !== null) {
    const v = S.views[S.only], W = S.shape[v.c] * S.spacing[v.c], H = S.shape[v.r] * S.spacing[v.r];
    const scale = ([w, h]) => Math.min(w / W, h / H);
    const half = Math.ceil(n / 2);
    if (n > 2 && scale(sizes(half)) > scale([cw, ch])) { cols = half; [cw, ch] = sizes(half); }
  }
  grid.replaceChildren();
  S.rows = S.views.map((v, vi) => {
    if (!shown.includes(vi)) return null;
    const row = el("div", "srow"), hd = el("div", "shead");
    const range = el("input");
    Object.assign(range, {type: "range", min: 0, max: S.shape[v.n] - 1, value: S.cursor[v.n]});
    range.setAttribute("aria-label", v.name + " slice");
    const num = el("span", "snum");
    hd.append(el("b", null, v.name), range, num);
    range.addEventListener("input", () => { S.active = vi; S.cursor[v.n] = +range.value; drawAll(); report(); });
    let plot = null, worst = null;
    if (S.profiles) {
      plot = el("canvas", "sprof");
      plot.width = head - 6; plot.height = 40;
      plot.title = "mean |output \u2212 target| of each " + v.name + " slice: click one to go there";
      plot.dataset.view = v.name;
      plot.addEventListener("mousedown", e => {
        const r = plot.getBoundingClientRect(), N = S.shape[v.n];
        go(vi, Math.max(0, Math.min(N - 1, Math.floor((e.clientX - r.left) / r.width * N))));
      });
      const prof = S.profiles[v.n];
      const k = prof.indexOf(Math.max(...prof));
      worst = el("button", "sworst", "worst slice: " + k);
      worst.dataset.view = v.name;
      worst.title = "go to the " + v.name + " slice with the largest mean |output \u2212 target| ("
        + prof[k].toPrecision(3) + ")";
      worst.addEventListener("click", () => go(vi, k));
      hd.append(plot, worst);
    }
    const cells = el("div", "scells"), canvases = [];
    cells.style.gridTemplateColumns = "repeat(" + cols + ", auto)";
    S.panels.forEach((p, pi) => {
      const fig = el("figure"), wrap = el("div", "cell"), canvas = el("canvas");
      const dpr = window.devicePixelRatio || 1;
      canvas.width = Math.round(cw * dpr); canvas.height = Math.round(ch * dpr);
      canvas.style.width = cw + "px"; canvas.style.height = ch + "px";
      canvas.dataset.view = v.name;
      canvas.dataset.label = p.label;
      if (p.kind) canvas.dataset.kind = p.kind;
      wrap.append(canvas);
      if (v.edges) ["t", "b", "l", "r"].forEach((s, i) => wrap.append(el("span", "edge " + s, v.edges[i])));
      const cap = el("figcaption");
      fig.append(wrap, cap);
      if (p.kind === "error") {
        const holder = el("div", "errwrap");
        holder.append(wrap, R.colourBar(ERR.colours, errTop(), "0", ch, ERR.text));
        fig.replaceChildren(holder, cap);
      }
      cells.append(fig);
      canvases.push(canvas);
      canvas.addEventListener("mousemove", e => pointer(vi, canvas, e));
      canvas.addEventListener("mouseleave", () => { if (!S.drag) { S.hover = null; report(); } });
      canvas.addEventListener("mousedown", e => press(vi, canvas, e));
      canvas.addEventListener("contextmenu", e => e.preventDefault());
      canvas.addEventListener("dblclick", () => fit(vi));
      canvas.addEventListener("wheel", e => {
        e.preventDefault(); S.active = vi;
        if (e.ctrlKey || e.metaKey) zoomAt(vi, canvas, e, e.deltaY < 0 ? 1.25 : 0.8);
        else move(vi, e.deltaY > 0 ? 1 : e.deltaY < 0 ? -1 : 0);
        S.hover = voxel(vi, canvas, e); report();
      }, {passive: false});
    });
    row.append(hd, cells);
    grid.append(row);
    return {range, num, canvases, plot, cw, ch};
  });
  captions();
  drawAll();
  report();
}
function errTop() {
  const m = S.metas[S.tgt];
  return "\u2265 " + (ERR.scale * (m.hi - m.lo)).toPrecision(3);
}
function captions() {
  S.rows.forEach(row => row && row.canvases.forEach((canvas, pi) => {
    const p = S.panels[pi], cap = canvas.closest("figure").querySelector("figcaption");
    const flick = S.flicker && pi === S.out;
    cap.replaceChildren(el("b", null, flick ? "target" : (p.caption || p.label)),
                        " " + (flick ? "in the output's place (F)" : (p.note || "")));
    canvas.closest("figure").classList.toggle("flicker", flick);
  }));
  flickBtn.setAttribute("aria-pressed", String(S.flicker));
  flickBtn.classList.toggle("on", S.flicker);
}

// -- geometry: where a view's image lies in its viewport
function place(vi) {
  const v = S.views[vi], row = S.rows[vi], sp = S.spacing;
  const W = S.shape[v.c] * sp[v.c], H = S.shape[v.r] * sp[v.r];
  const fitScale = Math.min(row.cw / W, row.ch / H), s = fitScale * S.zoom[vi];
  const w = W * s, h = H * s;
  return {x0: (row.cw - w) / 2 + S.pan[vi][0], y0: (row.ch - h) / 2 + S.pan[vi][1], w, h, fitScale,
          nc: S.shape[v.c], nr: S.shape[v.r]};
}
S.place = place;
function voxel(vi, canvas, e) {  // the voxel under the pointer, or null outside the image
  const v = S.views[vi], r = canvas.getBoundingClientRect(), g = place(vi);
  const x = Math.floor((e.clientX - r.left - g.x0) / g.w * g.nc);
  const y = Math.floor((e.clientY - r.top - g.y0) / g.h * g.nr);
  if (x < 0 || y < 0 || x >= g.nc || y >= g.nr) return null;
  const p = S.cursor.slice();
  p[v.r] = v.rf ? g.nr - 1 - y : y;
  p[v.c] = v.cf ? g.nc - 1 - x : x;
  return p;
}

// -- drawing
function greys() {  // q -> displayed grey under the window/level
  const lut = new Uint8ClampedArray(256), [a, b] = S.wl;
  for (let k = 0; k < 256; k++) lut[k] = Math.round((k / 255 - a) / Math.max(1e-6, b - a) * 255);
  return lut;
}
function errColours() {  // |q_out - q_tgt| -> colour index on the page's fixed scale
  const lut = new Uint8Array(256);
  for (let k = 0; k < 256; k++) lut[k] = Math.min(255, Math.round(k / 255 / ERR.scale * 255));
  return lut;
}
function drawAll() { S.views.forEach((v, vi) => draw(vi)); zoomText.textContent = zoomLabel(); }
function zoomLabel() {
  const z = S.zoom[S.active] || 1;
  return +z.toFixed(z >= 10 ? 0 : 2) + "\u00d7";
}
function draw(vi) {
  const v = S.views[vi], row = S.rows[vi], s = S.cursor[v.n];
  if (!row) return;
  const nr = S.shape[v.r], nc = S.shape[v.c], st = [S.shape[1] * S.shape[2], S.shape[2], 1];
  const g = place(vi), grey = greys(), cols = ERR ? ERR.colours : null, errIndex = ERR ? errColours() : null;
  row.canvases.forEach((canvas, pi) => {
    const p = S.panels[pi];
    if (!row.off) row.off = [];
    const off = row.off[pi] || (row.off[pi] = document.createElement("canvas"));
    off.width = nc; off.height = nr;
    const octx = off.getContext("2d"), img = octx.createImageData(nc, nr), d = img.data;
    const a = p.kind === "error" ? S.arrays[p.out] : S.arrays[S.flicker && pi === S.out ? S.tgt : pi];
    const b = p.kind === "error" ? S.arrays[p.tgt] : null;
    let o = 0;
    for (let y = 0; y < nr; y++) {
      const base = s * st[v.n] + (v.rf ? nr - 1 - y : y) * st[v.r];
      for (let x = 0; x < nc; x++) {
        const i = base + (v.cf ? nc - 1 - x : x) * st[v.c];
        if (b) {
          const c = cols[errIndex[Math.abs(a[i] - b[i])]];
          d[o] = c[0]; d[o + 1] = c[1]; d[o + 2] = c[2];
        } else {
          d[o] = d[o + 1] = d[o + 2] = grey[a[i]];
        }
        d[o + 3] = 255; o += 4;
      }
    }
    octx.putImageData(img, 0, 0);
    const ctx = canvas.getContext("2d"), dpr = canvas.width / row.cw;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, row.cw, row.ch);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(off, g.x0, g.y0, g.w, g.h);
    // the crosshair: where the other two views cut this one
    const cy = v.rf ? nr - 1 - S.cursor[v.r] : S.cursor[v.r], cx = v.cf ? nc - 1 - S.cursor[v.c] : S.cursor[v.c];
    ctx.strokeStyle = "rgba(255, 196, 0, .55)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    const X = Math.round(g.x0 + (cx + 0.5) / nc * g.w) + 0.5, Y = Math.round(g.y0 + (cy + 0.5) / nr * g.h) + 0.5;
    ctx.moveTo(Math.max(0, g.x0), Y); ctx.lineTo(Math.min(row.cw, g.x0 + g.w), Y);
    ctx.moveTo(X, Math.max(0, g.y0)); ctx.lineTo(X, Math.min(row.ch, g.y0 + g.h));
    ctx.stroke();
    canvas.dataset.slice = s;
  });
  row.range.value = s;
  row.num.textContent = "slice " + s + " / " + (S.shape[v.n] - 1);
  if (row.plot) plotProfile(row.plot, S.profiles[v.n], s);
}
function plotProfile(canvas, prof, s) {
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height, N = prof.length;
  const top = Math.max(1e-12, ...prof);
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = "#1b2230"; ctx.fillRect(0, 0, w, h);
  ctx.fillStyle = "#e0663a";
  for (let k = 0; k < N; k++) {
    const x0 = Math.floor(k / N * w), x1 = Math.max(x0 + 1, Math.floor((k + 1) / N * w));
    const bh = Math.max(1, Math.round(prof[k] / top * (h - 4)));
    ctx.fillRect(x0, h - bh, x1 - x0, bh);
  }
  ctx.fillStyle = "#ffcf4d";
  ctx.fillRect(Math.floor((s + 0.5) / N * w) - 1, 0, 2, h);
}

// -- the readout: always what the pointer (or, off the images, the crosshair) is on
function report() {
  if (!S.rows.length) return;
  const p = S.hover || S.cursor, st = [S.shape[1] * S.shape[2], S.shape[2], 1];
  const i = p[0] * st[0] + p[1] * st[1] + p[2];
  const where = el("span", "rpos");
  where.append(el("b", null, S.hover ? "pointer" : "crosshair"), " voxel (" + p.join(", ") + ")");
  const mm = millimetres(p);
  where.append(mm ? " \u00b7 " + mm.map(x => x.toFixed(1)).join(", ") + " mm" : " \u00b7 no affine (.npy): no mm");
  readout.replaceChildren(where);
  S.panels.forEach((panel, pi) => {
    const span = el("span", "rv");
    span.dataset.label = panel.label;
    let text;
    if (panel.kind === "error") {
      const m = S.metas[panel.tgt];
      text = (Math.abs(S.arrays[panel.out][i] - S.arrays[panel.tgt][i]) * (m.hi - m.lo) / 255).toFixed(digits(m));
    } else text = value(S.metas[pi], S.arrays[pi][i]);
    span.append(el("b", null, panel.kind === "error" ? "error" : (panel.caption || panel.label)), " " + text);
    readout.append(span);
  });
  const m = S.metas[S.tgt >= 0 ? S.tgt : 0];
  const wl = el("span", "rwl", "window " + units(m, S.wl[0] * 255).toFixed(digits(m)) + " \u2026 "
                               + units(m, S.wl[1] * 255).toFixed(digits(m)));
  readout.append(wl);
}
function millimetres(p) {  // the world position of voxel p of the preview (its averaged block's centre)
  const m = S.metas[0];
  if (!m.affine) return null;
  const idx = p.map((x, k) => x * m.factor[k] + (m.factor[k] - 1) / 2);
  return [0, 1, 2].map(r => m.affine[r][0] * idx[0] + m.affine[r][1] * idx[1] + m.affine[r][2] * idx[2]
                            + m.affine[r][3]);
}

// -- interaction
function go(vi, k) {
  const v = S.views[vi];
  S.active = vi;
  S.cursor[v.n] = Math.max(0, Math.min(S.shape[v.n] - 1, k));
  drawAll(); report();
}
function move(vi, d) { go(vi, S.cursor[S.views[vi].n] + d); }
function pointer(vi, canvas, e) {
  S.active = vi;
  const drag = S.drag;
  if (drag && drag.kind === "pan") {
    S.pan[vi] = [drag.pan[0] + e.clientX - drag.x, drag.pan[1] + e.clientY - drag.y];
    draw(vi);
  } else if (drag && drag.kind === "wl") {
    const [a, b] = drag.wl, width = Math.max(0.01, (b - a) * Math.exp((e.clientX - drag.x) / 150));
    const level = (a + b) / 2 - (e.clientY - drag.y) / 300;
    setWl([level - width / 2, level + width / 2], "custom");
  } else if (drag && drag.kind === "cross") {
    const p = voxel(vi, canvas, e);
    if (p) { S.cursor = p; drawAll(); }
  }
  S.hover = voxel(vi, canvas, e);
  report();
}
function press(vi, canvas, e) {
  S.active = vi;
  e.preventDefault();
  if (e.button === 2) S.drag = {kind: "wl", x: e.clientX, y: e.clientY, wl: S.wl.slice()};
  else if (e.button === 1 || e.shiftKey) S.drag = {kind: "pan", x: e.clientX, y: e.clientY, pan: S.pan[vi].slice()};
  else if (e.button === 0) {
    S.drag = {kind: "cross"};
    const p = voxel(vi, canvas, e);
    if (p) { S.cursor = p; drawAll(); }
  }
  S.hover = voxel(vi, canvas, e);
  report();
}
window.addEventListener("mouseup", () => { S.drag = null; });
function setWl(wl, source) {
  S.wl = wl;
  if (source && wlSel.value !== source) wlSel.value = source;
  drawAll(); report();
}
function preset(name) {
  const m = S.metas[S.tgt >= 0 ? S.tgt : 0];
  if (name === "full") return setWl([0, 1]);
  if (name === "auto") {  // 1% and 99% of the target's voxels above the bottom of its window
    const arr = S.arrays[S.tgt >= 0 ? S.tgt : 0], hist = new Float64Array(256);
    for (let i = 0; i < arr.length; i++) hist[arr[i]]++;
    const total = arr.length - hist[0];
    let acc = 0, lo = 1, hi = 255;
    for (let k = 1; k < 256; k++) {
      acc += hist[k];
      if (acc < 0.01 * total) lo = k + 1;
      if (acc <= 0.99 * total) hi = k;
    }
    return setWl([Math.min(lo, hi - 1) / 255, Math.max(hi, lo + 1) / 255]);
  }
  const [width, level] = name.split(",").map(Number);  // HU presets
  setWl([(level - width / 2 - m.lo) / (m.hi - m.lo), (level + width / 2 - m.lo) / (m.hi - m.lo)]);
}
function zoomAt(vi, canvas, e, f) {
  const g = place(vi), r = canvas.getBoundingClientRect(), row = S.rows[vi];
  const px = e ? e.clientX - r.left : row.cw / 2, py = e ? e.clientY - r.top : row.ch / 2;
  const z0 = S.zoom[vi], z1 = Math.max(0.25, Math.min(64, z0 * f)), k = z1 / z0;
  const w1 = g.w * k, h1 = g.h * k;  // the point under the pointer stays put
  S.pan[vi] = [px - (px - g.x0) * k - (row.cw - w1) / 2, py - (py - g.y0) * k - (row.ch - h1) / 2];
  S.zoom[vi] = z1;
  draw(vi); zoomText.textContent = zoomLabel();
}
function zoomAll(f) {
  S.rows.forEach((row, vi) => { if (row) zoomAt(vi, row.canvases[0], null, f); });
}
function fit(vi) {
  const all = vi === undefined ? [0, 1, 2] : [vi];
  all.forEach(k => { S.zoom[k] = 1; S.pan[k] = [0, 0]; });
  drawAll();
}
function flicker() { S.flicker = S.out >= 0 && S.tgt >= 0 && !S.flicker; captions(); drawAll(); }

caseSel.addEventListener("change", () => load(+caseSel.value, 0));
groupSel.addEventListener("change", () => load(S.c, +groupSel.value));
viewSel.addEventListener("change", () => {
  S.only = viewSel.value === "" ? null : +viewSel.value;
  if (S.only !== null) S.active = S.only;
  build();
});
wlSel.addEventListener("change", () => preset(wlSel.value));
flickBtn.addEventListener("click", flicker);
q("#s-zin").addEventListener("click", () => zoomAll(1.25));
q("#s-zout").addEventListener("click", () => zoomAll(0.8));
q("#s-fit").addEventListener("click", () => fit());
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
  else if (k === "f" || k === "F") flicker();
  else if (k === "+" || k === "=") zoomAt(S.active, S.rows[S.active].canvases[0], null, 1.25);
  else if (k === "-") zoomAt(S.active, S.rows[S.active].canvases[0], null, 0.8);
  else if (k === "0") fit();
  else return;
  e.preventDefault();
});
document.addEventListener("click", e => {  // a row of the volumes table opens that volume here
  const row = e.target.closest && e.target.closest("tr[data-case]");
  if (!row || e.target.closest("a.ext")) return;
  e.preventDefault();
  const img = e.target.closest("img[data-label]"), cs = D.cases[+row.dataset.case];
  // a thumbnail opens the translation it shows (fake_A: B -> A)
  const g = img ? Math.max(0, cs.groups.findIndex(gr => gr.panels.some(p => p.label === img.dataset.label
                                                                          && p.caption === "output"))) : 0;
  load(+row.dataset.case, g).then(() => root.scrollIntoView({block: "start", behavior: "instant"}));
});
let resizing = null;
window.addEventListener("resize", () => {
  clearTimeout(resizing);
  resizing = setTimeout(() => { if (S.rows.length) build(); }, 100);
});
load(0, 0);
})();
