// The runs index (util/pages/runs.py): tick two or more runs to compare them here, side by side (each input with
// every ticked run's output and the target, per-image metrics and their differences from the first run ticked,
// sortable, the viewer on a click), or to get the command line that writes a comparison page.
(() => {
"use strict";
const R = window.RevGAN = window.RevGAN || {};
const boxes = Array.from(document.querySelectorAll("input.pick")), cmd = document.getElementById("compare-cmd");
const go = document.getElementById("compare-go"), count = document.getElementById("compare-count");
const section = document.getElementById("compare"), dataEl = document.getElementById("runs-data");
const D = dataEl ? JSON.parse(dataEl.textContent) : {runs: []};
const METRICS = {PSNR: {first: "asc", decimals: 2, unit: " dB"}, SSIM: {first: "asc", decimals: 4, unit: ""},
                 MAE: {first: "desc", decimals: 4, unit: ""}};
let picked = [];  // run indices in the order they were ticked: the first is the reference
const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls;
                                 if (text !== undefined) e.textContent = text; return e; };
const update = () => {
  picked = picked.filter(k => boxes.some(b => b.checked && +b.dataset.run === k));
  boxes.forEach(b => { if (b.checked && !picked.includes(+b.dataset.run)) picked.push(+b.dataset.run); });
  const paths = picked.map(k => boxes.find(b => +b.dataset.run === k).dataset.path);
  cmd.textContent = paths.length >= 2 ? "python -m util.compare " + paths.join(" ")
                                      : "tick two or more runs to compare them here (or get the command that writes "
                                        + "a comparison page)";
  cmd.classList.toggle("ready", paths.length >= 2);
  if (go) go.disabled = paths.length < 2;
  if (count) count.textContent = paths.length ? paths.length + " ticked" + (paths.length >= 2 ? "; the first ticked, "
    + D.runs[picked[0]].label + ", is the reference" : "") : "";
};
boxes.forEach(b => b.addEventListener("change", update));
update();

function fmt(name, v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return v === Infinity ? "\u221e" : "\u2013";
  const m = METRICS[name] || {decimals: 4};
  const a = Math.abs(v), text = name === "MAE" && a >= 10 ? a.toFixed(1) : a.toFixed(m.decimals);
  return (v < 0 ? "\u2212" : "") + text;
}
function delta(name, d) {
  if (d === null || !Number.isFinite(d)) return ["\u2013", ""];
  if (fmt(name, Math.abs(d)) === fmt(name, 0)) return ["\u00b1" + fmt(name, 0), ""];  // reads as zero: no sign
  const better = METRICS[name] && METRICS[name].first === "desc" ? d < 0 : d > 0;
  return [(d > 0 ? "+" : d < 0 ? "\u2212" : "\u00b1") + fmt(name, Math.abs(d)), d === 0 ? "" : better ? "good" : "bad"];
}
function files(run, label) {  // {name: source} of one label's images of a run
  const im = run.images[label];
  if (!im) return {};
  return Object.fromEntries(im.files.map(f => [f.replace(/\.[^.]+$/, ""), im.dir + encodeURIComponent(f)]));
}
function thumb(src, label) {
  const td = el("td", "thumb");
  if (!src) return td;
  const a = el("a"), img = el("img");
  a.href = src;
  Object.assign(img, {src, alt: label, loading: "lazy", decoding: "async"});
  img.dataset.label = label;
  a.append(img);
  td.append(a);
  return td;
}
function th(text, col, first, tip, cls) {
  const h = el("th", cls || "", text);
  if (col !== null) { h.dataset.col = col; h.dataset.first = first; if (first !== "text") h.classList.add("num"); }
  if (first === "text") h.dataset.type = "text";
  if (tip) h.title = tip;
  return h;
}
function outputSection(output, runs) {
  const [srcLabel, tgtLabel] = runs[0].outputs[output];
  const outs = runs.map(r => files(r, output));
  const names = Object.keys(outs[0]).filter(n => outs.every(o => n in o));
  const find = label => { const maps = runs.map(r => files(r, label)); return n => (maps.find(m => n in m) || {})[n]; };
  const input = srcLabel ? find(srcLabel) : () => null, target = tgtLabel ? find(tgtLabel) : () => null;
  const hasIn = names.some(n => input(n)), hasTgt = names.some(n => target(n));
  const metrics = ["PSNR", "SSIM", "MAE"].filter(m => runs.some(r => r.keys.includes(m + "_" + output)));
  const value = (r, n, m) => { const k = r.keys.indexOf(m + "_" + output), row = r.rows[n];
                               return k < 0 || !row ? null : row[k]; };
  const panels = (hasIn ? [{label: "input", caption: "input", note: srcLabel}] : [])
    .concat(runs.map((r, k) => ({label: "run" + k, caption: r.label, note: output})))
    .concat(hasTgt ? [{label: "target", caption: "target", note: tgtLabel}] : []);
  const box = el("div", "compare-output");
  const h = el("h3", null, output + " (" + names.length + " matched)");
  const table = el("table", "data sortable viewable compare");
  table.id = "cmp-" + output;
  table.dataset.groups = JSON.stringify([{title: output, panels}]);
  const groupRow = el("tr"), head = el("tr");  // a header row of metric groups, then one of runs
  let col = 0;
  const span = (cell) => { cell.rowSpan = 2; groupRow.append(cell); col++; };
  span(th("#", col, "asc", "click: the test order"));
  span(th("name", col, "text"));
  panels.forEach(p => span(th(p.caption, null, null, p.note)));
  metrics.forEach(m => {
    const g = el("th", "group", m + (METRICS[m].unit ? " (" + METRICS[m].unit.trim() + ")" : ""));
    g.colSpan = 2 * runs.length - 1;
    g.title = (METRICS[m].first === "asc" ? "higher" : "lower") + " is better";
    groupRow.append(g);
    runs.forEach((r, k) => head.append(th(r.label, col++, METRICS[m].first,
                                          m + " of " + r.label + ": click to sort worst first", k ? "" : "first")));
    runs.slice(1).forEach(r => head.append(th("\u0394 " + r.label, col++, METRICS[m].first,
                                              m + " of " + r.label + " minus " + runs[0].label + ": worst first")));
  });
  const thead = el("thead"), tbody = el("tbody");
  thead.append(groupRow, head);
  names.forEach((n, i) => {
    const tr = el("tr");
    tr.dataset.name = n;
    const idx = el("td", "idx num", String(i + 1));
    idx.dataset.v = i;
    tr.append(idx, el("td", "name", n));
    if (hasIn) tr.append(thumb(input(n), "input"));
    outs.forEach((o, k) => tr.append(thumb(o[n], "run" + k)));
    if (hasTgt) tr.append(thumb(target(n), "target"));
    const summary = [];
    metrics.forEach(m => {
      const vals = runs.map(r => value(r, n, m));
      vals.forEach((v, k) => {
        const td = el("td", "num" + (k ? "" : " first"), fmt(m, v));
        td.dataset.v = v === null ? "" : v;
        tr.append(td);
      });
      vals.slice(1).forEach(v => {
        const d = v === null || vals[0] === null ? null : v - vals[0], [text, cls] = delta(m, d);
        const td = el("td", ("num " + cls).trim(), text);
        td.dataset.v = d === null ? "" : d;
        tr.append(td);
      });
      summary.push(m + " " + runs.map((r, k) => r.label + " " + fmt(m, vals[k])).join(", "));
    });
    tr.dataset.summary = summary.join(" \u00b7 ");
    tbody.append(tr);
  });
  table.append(thead, tbody);
  const scroll = el("div", "scroll");
  scroll.append(table);
  box.append(h, scroll);
  const missing = runs.map((r, k) => [r.label, Object.keys(outs[k]).filter(n => !names.includes(n))])
    .filter(([, m]) => m.length);
  if (missing.length) {
    const details = el("details", "unmatched");
    details.open = true;
    details.append(el("summary", null, "Not in every run (" + missing.reduce((s, [, m]) => s + m.length, 0) + ")"));
    missing.forEach(([label, m]) => {
      const p = el("p");
      p.append(el("b", null, label), ": " + m.length + " only here");
      const ul = el("ul", "names");
      m.slice(0, 500).forEach(n => ul.append(el("li", null, n)));
      details.append(p, ul);
    });
    box.append(details);
  }
  R.sortable(table);
  return box;
}
function compare() {
  const runs = picked.map(k => D.runs[k]);
  const shared = Object.keys(runs[0].outputs).filter(o => runs.every(r => o in r.outputs));
  section.replaceChildren();
  const h = el("h2", null, "Comparison: " + runs.map(r => r.label).join(" vs "));
  h.append(el("small", null, "each input with every run's output side by side; \u0394: run minus "
                             + runs[0].label + " (the first ticked); click an image to see them large at one zoom "
                             + "(\u2190 \u2192 step); click a column to sort, worst first"));
  const close = el("button", null, "close");
  close.type = "button";
  close.id = "compare-close";
  close.addEventListener("click", () => { section.hidden = true; });
  const links = el("p", "muted");
  runs.forEach((r, k) => {
    const a = el("a", null, r.label);
    a.href = r.page;
    links.append(k ? " \u00b7 " : "results pages: ", a);
  });
  section.append(h, links, close);
  if (!shared.length) section.append(el("p", "empty", "These runs share no output (images/fake_B, ...)."));
  shared.forEach(o => section.append(outputSection(o, runs)));
  section.hidden = false;
  section.scrollIntoView({block: "start"});
  section.dispatchEvent(new CustomEvent("compared"));
}
if (go) go.addEventListener("click", compare);
R.runs = {compare, data: D, picked: () => picked.slice()};
})();
