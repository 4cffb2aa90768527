// The results page's slice browser (util/pages/slices.py): every axial, coronal and sagittal slice of the volumes
// of one case, decoded from the preview files beside the page, with the value under the cursor in original units.
(() => {
"use strict";
const data = document.getElementById("s-data"), root = document.getElementById("slices");
const D = window.REVGAN_SLICES = data ? JSON.parse(data.textContent) : null;
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
