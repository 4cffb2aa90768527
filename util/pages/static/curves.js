// The training page's curves (util/pages/training.py): a chart per loss with the mean of each epoch (dots) and a
// smoothed line of the logged values (TensorBoard's debiased moving average), the single logged values on demand,
// log scales where values span 50x or more; the learning rate, peak memory, the reversible core's reconstruction
// error and validation beside its baseline. Hover: the values at that epoch.
(() => {
"use strict";
const data = document.getElementById("curve-data"), box = document.getElementById("curves");
if (!data || !box) return;
const D = JSON.parse(data.textContent);
const R = window.RevGAN = window.RevGAN || {};
const smooth = document.getElementById("c-smooth"), raw = document.getElementById("c-raw");
const logBox = document.getElementById("c-log"), smoothText = document.getElementById("c-smooth-value");
const COLOURS = ["#2458d6", "#d0562a", "#12813a", "#8e44ad", "#b8860b", "#0e7490", "#c0262d", "#6b7280"];
const H = 190, M = {l: 58, r: 12, t: 10, b: 24};

function epochMeans(points) {  // [[epoch, mean of its values, count]]: epoch e holds the points of x in (e - 1, e]
  const m = new Map();
  for (const [x, y] of points) {
    if (!Number.isFinite(y)) continue;
    const e = Math.max(1, Math.ceil(x - 1e-9)), a = m.get(e) || [0, 0];
    a[0] += y; a[1]++; m.set(e, a);
  }
  return Array.from(m.entries()).sort((a, b) => a[0] - b[0]).map(([e, [s, n]]) => [e, s / n, n]);
}
function ema(points, w) {  // debiased exponential moving average (as TensorBoard's smoothing)
  let last = 0, k = 0;
  const out = [];
  for (const [x, y] of points) {
    if (!Number.isFinite(y)) continue;
    last = last * w + (1 - w) * y; k++;
    out.push([x, last / (1 - Math.pow(w, k))]);
  }
  return out;
}
function fmt(v) {
  if (!Number.isFinite(v)) return "\u2013";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) {
    const [m, e] = v.toExponential(3).split("e");
    return (+m) + "e" + e;
  }
  return +v.toPrecision(4) + "";
}
function ticks(lo, hi, log) {
  if (log) {
    const out = [], span = Math.log10(hi / lo), subs = span < 1.5 ? [1, 2, 5] : span < 4 ? [1, 3] : [1];
    for (let p = Math.floor(Math.log10(lo)); p <= Math.ceil(Math.log10(hi)); p++)
      for (const s of subs) { const v = s * Math.pow(10, p); if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v); }
    if (out.length >= 3) return out;  // else a narrow range: plain steps read better
  }
  const raw = (hi - lo) / 5, mag = Math.pow(10, Math.floor(Math.log10(raw || 1)));
  const step = [1, 2, 5, 10].map(k => k * mag).find(s => s >= raw) || mag * 10;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    out.push(Math.abs(v) < step * 1e-9 ? 0 : +v.toPrecision(12));
  return out;
}

const charts = D.charts.map((c, ci) => {
  const card = document.createElement("figure"), canvas = document.createElement("canvas");
  const cap = document.createElement("figcaption"), tip = document.createElement("div");
  card.className = "chart";
  card.dataset.key = c.key;
  cap.textContent = c.title;
  tip.className = "ctip";
  tip.hidden = true;
  card.append(cap, canvas, tip);
  box.append(card);
  const chart = {c, card, canvas, tip, colour: k => COLOURS[(c.series.length > 1 ? k : ci) % COLOURS.length]};
  if (c.series.length > 1) {  // a legend: each series in its colour, a baseline dashed in its translation's
    const legend = document.createElement("div");
    legend.className = "legend";
    let k = -1;
    c.series.forEach(s => {
      if (s.kind !== "baseline") k++;
      const item = document.createElement("span"), swatch = document.createElement("i");
      swatch.style.borderTop = "2px " + (s.kind === "baseline" ? "dashed " : "solid ") + chart.colour(k);
      item.append(swatch, s.label);
      legend.append(item);
    });
    cap.after(legend);
  }
  canvas.addEventListener("mousemove", e => hover(chart, e));
  canvas.addEventListener("mouseleave", () => { tip.hidden = true; draw(chart); });
  return chart;
});

function prepare(chart) {  // what is drawn: per series its lines, and the scales
  const w = +smooth.value;
  chart.lines = chart.c.series.map(s => s.kind === "loss"  // epoch means of every step where training logged them
    ? {s, means: s.means && s.means.length ? s.means : epochMeans(s.points), smooth: ema(s.points, w), raw: s.points,
       of: s.means && s.means.length ? " steps" : " logged"}
    : {s, plain: s.points.filter(p => Number.isFinite(p[1]))});
  const xs = [], ys = [];
  chart.lines.forEach(l => {
    for (const [x, y] of l.plain || []) { xs.push(x); ys.push(y); }
    for (const [x, y] of l.means || []) { xs.push(x); ys.push(y); }
    for (const [x, y] of l.smooth || []) { xs.push(x); ys.push(y); }
    if (raw.checked) for (const [x, y] of l.raw || []) if (Number.isFinite(y)) { xs.push(x); ys.push(y); }
  });
  if (!xs.length) return false;
  let lo = Math.min(...ys), hi = Math.max(...ys);
  const log = chart.c.log === true || (chart.c.log === "auto" && logBox.checked && lo > 0 && hi / lo >= 50);
  if (log) { lo /= 1.15; hi *= 1.15; }
  else if (hi === lo) { lo -= Math.abs(lo) * 0.1 || 1; hi += Math.abs(hi) * 0.1 || 1; }
  else { const pad = (hi - lo) * 0.06; lo -= pad; hi += pad; }
  chart.x0 = Math.min(0, ...xs); chart.x1 = Math.max(1, ...xs);
  Object.assign(chart, {lo, hi, log});
  return true;
}
function draw(chart, at) {
  const {canvas, card} = chart, width = Math.max(240, card.clientWidth), dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * dpr); canvas.height = Math.round(H * dpr);
  canvas.style.width = width + "px"; canvas.style.height = H + "px";
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, H);
  if (!prepare(chart)) return;
  const {lo, hi, log, x0, x1} = chart, pw = width - M.l - M.r, ph = H - M.t - M.b;
  const X = x => M.l + (x - x0) / (x1 - x0) * pw;
  const Y = y => M.t + ph - (log ? Math.log(y / lo) / Math.log(hi / lo) : (y - lo) / (hi - lo)) * ph;
  Object.assign(chart, {X, width});
  ctx.font = "11px system-ui, sans-serif"; ctx.fillStyle = "#617083"; ctx.strokeStyle = "#e6eaf0"; ctx.lineWidth = 1;
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  for (const v of ticks(lo, hi, log)) {
    const y = Math.round(Y(v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(M.l, y); ctx.lineTo(M.l + pw, y); ctx.stroke();
    ctx.fillText(fmt(v), M.l - 6, y);
  }
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  for (const v of ticks(x0, x1, false).filter(v => Number.isInteger(v) || x1 - x0 < 3)) {
    const x = Math.round(X(v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(x, M.t); ctx.lineTo(x, M.t + ph); ctx.stroke();
    ctx.fillText(fmt(v), x, M.t + ph + 5);
  }
  ctx.strokeStyle = "#c3cad4"; ctx.strokeRect(M.l + 0.5, M.t + 0.5, pw, ph);
  ctx.save();
  ctx.beginPath(); ctx.rect(M.l, M.t, pw, ph); ctx.clip();
  const path = (pts, dash) => {
    ctx.setLineDash(dash || []);
    ctx.beginPath();
    pts.forEach(([x, y], i) => (i ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y))));
    ctx.stroke();
    ctx.setLineDash([]);
  };
  const dots = (pts, r) => pts.forEach(([x, y]) => { ctx.beginPath(); ctx.arc(X(x), Y(y), r, 0, 7); ctx.fill(); });
  let colour = -1;
  chart.lines.forEach(l => {
    if (l.s.kind !== "baseline") colour++;  // a baseline shares its translation's colour, dashed
    const c = chart.colour(colour);
    ctx.strokeStyle = c; ctx.fillStyle = c;
    if (l.means) {
      if (raw.checked) { ctx.globalAlpha = 0.35; dots(l.raw.filter(p => Number.isFinite(p[1])), 1.3); }
      ctx.globalAlpha = 0.45; ctx.lineWidth = 1.2; path(l.smooth);
      ctx.globalAlpha = 1; ctx.lineWidth = 2; path(l.means); dots(l.means, 3);
    } else {
      ctx.lineWidth = l.s.kind === "baseline" ? 1.2 : 1.8;
      path(l.plain, l.s.kind === "baseline" ? [5, 4] : null);
      if (l.plain.length <= 60) dots(l.plain, l.s.kind === "baseline" ? 2 : 2.8);
    }
  });
  ctx.globalAlpha = 1;
  if (at !== undefined) {
    ctx.strokeStyle = "rgba(28, 35, 48, .5)"; ctx.lineWidth = 1;
    const x = Math.round(X(at)) + 0.5;
    ctx.beginPath(); ctx.moveTo(x, M.t); ctx.lineTo(x, M.t + ph); ctx.stroke();
  }
  ctx.restore();
}
function nearest(pts, x) {
  let best = null;
  for (const p of pts) if (best === null || Math.abs(p[0] - x) < Math.abs(best[0] - x)) best = p;
  return best;
}
function values(chart, x) {  // [title, [label, text]...] at ``x``: a loss's epoch mean there, else the nearest point
  const rows = [];
  let title = null;
  chart.lines.forEach(l => {
    if (l.means) {
      const e = nearest(l.means, x);
      if (!e) return;
      title = "epoch " + e[0];
      const s = nearest(l.smooth.filter(p => p[0] <= e[0] + 1e-9 && p[0] > e[0] - 1 - 1e-9), e[0]);
      rows.push([l.s.label, "mean " + fmt(e[1]) + " of " + e[2] + l.of
                            + (s ? " \u00b7 smoothed " + fmt(s[1]) : "")]);
    } else {
      const p = nearest(l.plain, x);
      if (!p) return;
      title = title || "epoch " + fmt(p[0]);
      rows.push([l.s.label, fmt(p[1])]);
    }
  });
  return [title, rows];
}
function hover(chart, e) {
  if (!chart.X) return;
  const r = chart.canvas.getBoundingClientRect(), px = e.clientX - r.left;
  const x = chart.x0 + (px - M.l) / (chart.width - M.l - M.r) * (chart.x1 - chart.x0);
  const [title, rows] = values(chart, x);
  if (!title) return;
  const at = +title.split(" ")[1];
  draw(chart, Number.isFinite(at) ? at : x);
  const tip = chart.tip;
  tip.replaceChildren();
  const b = document.createElement("b");
  b.textContent = title;
  tip.append(b);
  rows.forEach(([label, text]) => {
    const div = document.createElement("div");
    div.textContent = label + ": " + text;
    tip.append(div);
  });
  tip.hidden = false;
  const left = Math.min(chart.width - tip.offsetWidth - 4, Math.max(0, px + 12));
  tip.style.left = left + "px";
}
function drawAll() {
  smoothText.textContent = (+smooth.value).toFixed(2);
  charts.forEach(c => draw(c));
}
R.curves = {charts, epochMeans, ema, values, drawAll};
[smooth, raw, logBox].forEach(i => i.addEventListener("input", drawAll));
let resizing = null;
window.addEventListener("resize", () => { clearTimeout(resizing); resizing = setTimeout(drawAll, 100); });
drawAll();
})();
