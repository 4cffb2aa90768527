// Every page's script (util/pages): sortable tables, the name filter, the thumbnail size, the image viewer,
// and the training page's reload.
(() => {
"use strict";
const $$ = (s, r = document) => Array.from(r.querySelectorAll(s));
const R = window.RevGAN = window.RevGAN || {};

// -- sortable tables: th[data-col] sorts the body rows by that cell's data-v (numbers) or text; the first click
//    sorts in the header's data-first direction (worst first for metrics), the next one reverses
const collator = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});
function sortTable(table, th) {
  const col = +th.dataset.col, text = th.dataset.type === "text";
  const dir = th.classList.contains("sorted-asc") ? "desc" : th.classList.contains("sorted-desc") ? "asc"
            : (th.dataset.first || "asc");
  $$("th.sorted-asc, th.sorted-desc", table).forEach(h => h.classList.remove("sorted-asc", "sorted-desc"));
  th.classList.add("sorted-" + dir);
  const sign = dir === "asc" ? 1 : -1, body = table.tBodies[0];
  const key = row => {
    const cell = row.cells[col];
    if (!cell) return null;
    const v = cell.dataset.v !== undefined ? cell.dataset.v : cell.textContent.trim();
    if (text) return v;
    const x = v === "" ? NaN : Number(v);
    return Number.isNaN(x) ? null : x;
  };
  const rows = Array.from(body.rows).map((r, i) => [key(r), i, r]);
  rows.sort((a, b) => {
    if (a[0] === null || b[0] === null) return (a[0] === null) - (b[0] === null) || a[1] - b[1];
    const c = text ? collator.compare(a[0], b[0]) : (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
    return c * sign || a[1] - b[1];
  });
  body.append(...rows.map(r => r[2]));
}
R.sortTable = sortTable;
R.sortable = table => $$("th[data-col]", table).forEach(th => {  // tables a script adds later call this too
  th.tabIndex = 0;
  th.addEventListener("click", () => sortTable(table, th));
  th.addEventListener("keydown", e => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortTable(table, th); }
  });
});
$$("table.sortable").forEach(R.sortable);

// -- name filter and thumbnail size
$$("input.filter").forEach(input => input.addEventListener("input", () => {
  const table = document.getElementById(input.dataset.table), q = input.value.trim().toLowerCase();
  let shown = 0;
  for (const row of table.tBodies[0].rows) {
    row.hidden = !!q && !(row.dataset.name || "").toLowerCase().includes(q);
    shown += !row.hidden;
  }
  const count = document.getElementById(input.dataset.count);
  if (count) count.textContent = q ? shown + " shown" : "";
}));
$$("input.thumbsize").forEach(input => input.addEventListener("input", () =>
  document.documentElement.style.setProperty("--thumb", input.value + "px")));

// -- a colour bar for error maps: ``colours`` (256 [r, g, b], bottom to top) beside labels at both ends
R.colourBar = (colours, top, bottom, height, title) => {
  const box = document.createElement("div"), bar = document.createElement("canvas");
  const labels = document.createElement("div"), t = document.createElement("span");
  const b = document.createElement("span");
  box.className = "cbar";
  box.title = title || "";
  bar.width = 10;
  bar.height = Math.max(2, Math.round(height));
  bar.style.height = Math.round(height) + "px";
  const ctx = bar.getContext("2d");
  for (let y = 0; y < bar.height; y++) {
    const c = colours[Math.round((1 - y / (bar.height - 1)) * 255)];
    ctx.fillStyle = "rgb(" + c[0] + "," + c[1] + "," + c[2] + ")";
    ctx.fillRect(0, y, bar.width, 1);
  }
  t.textContent = top;
  b.textContent = bottom;
  labels.append(t, b);
  box.append(bar, labels);
  return box;
};
const errorScale = document.getElementById("error-scale");
R.errorScale = errorScale ? JSON.parse(errorScale.textContent) : null;

// -- the image viewer: a row's images large, side by side at one zoom, pixel-exact
const viewer = document.getElementById("viewer");
if (viewer) {
  const q = s => viewer.querySelector(s);
  const inner = q(".vinner"), panels = q(".vpanels");
  const V = {table: null, row: null, group: 0, zoom: "fit", z: 1};
  const BAR = 58;  // the width an error map's colour bar takes beside it
  const rowsOf = table => Array.from(table.tBodies[0].rows)
    .filter(r => !r.hidden && r.querySelector("img[data-label]"));
  // {label: image source} of a row: its thumbnails (full size where they have one) and the images only the viewer
  // shows (data-extra: the error maps)
  const imagesOf = row => Object.assign(
    Object.fromEntries($$("img[data-label]", row).map(i => [i.dataset.label, i.dataset.full || i.getAttribute("src")])),
    JSON.parse(row.dataset.extra || "{}"));
  function groupsOf(table, row) {
    const have = imagesOf(row);
    const groups = JSON.parse(table.dataset.groups || "[]").map(g => ({
      title: g.title, panels: g.panels.filter(p => have[p.label])})).filter(g => g.panels.length);
    const covered = new Set(groups.flatMap(g => g.panels.map(p => p.label)));
    const extra = JSON.parse(row.dataset.extra || "{}");
    const rest = Object.keys(have).filter(l => !covered.has(l) && !(l in extra));
    if (rest.length || !groups.length)
      groups.push({title: groups.length ? "all images" : "",
                   panels: Object.keys(have).map(l => ({label: l, caption: l}))});
    return groups;
  }
  function open(table, row, label) {
    V.table = table; V.row = row;
    const groups = groupsOf(table, row);  // the translation that has the image as its output, else any that has it
    const output = groups.findIndex(g => g.panels.some(p => p.label === label && p.caption === "output"));
    V.group = output >= 0 ? output : Math.max(0, groups.findIndex(g => g.panels.some(p => p.label === label)));
    viewer.hidden = false;
    document.body.style.overflow = "hidden";
    show();
  }
  function close() {
    viewer.hidden = true;
    document.body.style.overflow = "";
    if (V.row) V.row.scrollIntoView({block: "nearest"});
  }
  function show() {
    const groups = groupsOf(V.table, V.row), images = imagesOf(V.row);
    V.group = (V.group % groups.length + groups.length) % groups.length;
    const group = groups[V.group], rows = rowsOf(V.table);
    q(".vtitle").textContent = V.row.dataset.name || "";
    q(".vcount").textContent = (rows.indexOf(V.row) + 1) + " / " + rows.length;
    q(".vinfo").textContent = q(".vinfo").title = V.row.dataset.summary || "";
    q(".vgroup").textContent = groups.length > 1 ? group.title + "  (" + (V.group + 1) + "/" + groups.length + ")"
                                                 : group.title;
    $$(".vkey-groups", viewer).forEach(k => { k.hidden = groups.length < 2; });  // ↑ ↓ only where they do something
    const figures = group.panels.map(p => {
      const figure = document.createElement("figure"), img = new Image(), cap = document.createElement("figcaption");
      img.src = images[p.label];
      img.alt = p.label;
      img.dataset.label = p.label;
      const b = document.createElement("b");
      b.textContent = p.caption || p.label;
      cap.append(b);
      if (p.kind === "error" && R.errorScale) {
        figure.className = "err";
        figure.dataset.kind = "error";
        figure.title = "|output \u2212 target| on the page's one scale: " + R.errorScale.text;
        cap.append(" 0 \u2026 " + R.errorScale.scale);
      } else if (p.note) cap.append(" " + p.note);
      const holder = document.createElement("div");
      holder.className = "vimg";
      holder.append(img);
      figure.append(holder, cap);
      return figure;
    });
    inner.replaceChildren(...figures);
    const imgs = $$("img", inner);
    Promise.all(imgs.map(i => i.decode().catch(() => null))).then(layout);
    const next = rows[rows.indexOf(V.row) + 1];  // warm the cache for the next step
    if (next) Object.values(imagesOf(next)).forEach(src => { new Image().src = src; });
  }
  function layout() {
    const imgs = $$("img", inner);
    if (!imgs.length) return;
    const nw = Math.max(1, ...imgs.map(i => i.naturalWidth)), nh = Math.max(1, ...imgs.map(i => i.naturalHeight));
    let z = V.zoom;
    const bars = $$("figure.err", inner).length;
    if (z === "fit") {
      const n = imgs.length, w = (panels.clientWidth - 32 - 16 * (n - 1) - BAR * bars) / n;
      const h = panels.clientHeight - 64;
      z = Math.max(0.05, Math.min(w / nw, h / nh));
      if (z >= 1) z = Math.floor(z);  // whole screen pixels per image pixel: no resampling
    }
    V.z = z;
    imgs.forEach(i => {
      const w = i.naturalWidth || nw, h = i.naturalHeight || nh;
      i.style.width = Math.round(w * z) + "px";
      i.style.height = Math.round(h * z) + "px";
      const figure = i.closest("figure");
      if (figure.classList.contains("err") && R.errorScale) {  // the colour bar as tall as the map
        const old = figure.querySelector(".cbar");
        if (old) old.remove();
        figure.querySelector(".vimg").append(R.colourBar(R.errorScale.colours, "\u2265 " + R.errorScale.scale, "0",
                                                         Math.round(h * z), R.errorScale.text));
      }
    });
    const zoom = z >= 1 ? z + "\u00d7" : Math.round(z * 100) + "%";
    q(".vzoom").textContent = (V.zoom === "fit" ? "fit " : "") + zoom;
    viewer.dataset.zoom = z;
  }
  function zoomBy(up) {
    const z = V.z;
    V.zoom = up ? (z >= 1 ? Math.floor(z) + 1 : Math.min(1, z * 2)) : (z > 1 ? Math.ceil(z) - 1 : z / 2);
    layout();
  }
  function step(d) {
    const rows = rowsOf(V.table), i = rows.indexOf(V.row) + d;
    if (i >= 0 && i < rows.length) { V.row = rows[i]; show(); }
  }
  R.viewer = {open, close, step, state: V};
  document.addEventListener("click", e => {
    const img = e.target.closest && e.target.closest("table.viewable img[data-label]");
    if (!img || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    open(img.closest("table"), img.closest("tr"), img.dataset.label);
  });
  viewer.addEventListener("click", e => {
    const act = e.target.dataset && e.target.dataset.act;
    if (act === "close") close();
    else if (act === "prev") step(-1);
    else if (act === "next") step(1);
    else if (act === "in") zoomBy(true);
    else if (act === "out") zoomBy(false);
    else if (act === "fit") { V.zoom = "fit"; layout(); }
    else if (act === "one") { V.zoom = 1; layout(); }
  });
  document.addEventListener("keydown", e => {
    if (viewer.hidden || e.altKey || e.ctrlKey || e.metaKey) return;
    const k = e.key;
    if (k === "Escape") close();
    else if (k === "ArrowRight" || k === "ArrowLeft") step(k === "ArrowRight" ? 1 : -1);
    else if ((k === "ArrowDown" || k === "ArrowUp") && groupsOf(V.table, V.row).length > 1) {
      V.group += k === "ArrowDown" ? 1 : -1; show();
    }
    else if (k === "+" || k === "=") zoomBy(true);
    else if (k === "-") zoomBy(false);
    else if (k === "0") { V.zoom = "fit"; layout(); }
    else if (k === "1") { V.zoom = 1; layout(); }
    else return;
    e.preventDefault();
  });
  window.addEventListener("resize", () => { if (!viewer.hidden && V.zoom === "fit") layout(); });
}

// -- pages that reload themselves (the training page, while training runs) wait while the viewer is open, and stop
//    when the page was not rewritten for a while (training stopped without saying so)
const every = document.body.dataset.reload;
R.reloading = false;
if (every) {
  const written = +document.body.dataset.updated || 0, stale = +document.body.dataset.stale || Infinity;
  const age = () => Date.now() / 1000 - written;
  const stop = () => {
    R.reloading = false;
    $$(".chip span").forEach(c => {  // the status chip said it reloads
      c.textContent = c.textContent.replace("this page reloads every minute", "no longer reloading");
    });
    const note = document.getElementById("stale");
    if (note) {
      note.textContent = "Not rewritten for " + Math.round(age() / 60) + " minutes: training seems to have stopped, "
        + "so this page no longer reloads itself.";
      note.hidden = false;
    }
  };
  if (written && age() > stale) stop();
  else {
    R.reloading = true;
    const timer = setInterval(() => {
      if (written && age() > stale) { clearInterval(timer); stop(); }
      else if (!viewer || viewer.hidden) location.reload();
    }, +every * 1000);
  }
}
})();
