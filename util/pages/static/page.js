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
$$("table.sortable").forEach(table => $$("th[data-col]", table).forEach(th => {
  th.tabIndex = 0;
  th.addEventListener("click", () => sortTable(table, th));
  th.addEventListener("keydown", e => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortTable(table, th); }
  });
}));

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

// -- the image viewer: a row's images large, side by side at one zoom, pixel-exact
const viewer = document.getElementById("viewer");
if (viewer) {
  const q = s => viewer.querySelector(s);
  const inner = q(".vinner"), panels = q(".vpanels");
  const V = {table: null, row: null, group: 0, zoom: "fit", z: 1};
  const rowsOf = table => Array.from(table.tBodies[0].rows)
    .filter(r => !r.hidden && r.querySelector("img[data-label]"));
  const imagesOf = row => Object.fromEntries($$("img[data-label]", row).map(i => [i.dataset.label, i]));
  function groupsOf(table, row) {
    const have = imagesOf(row);
    const groups = JSON.parse(table.dataset.groups || "[]").map(g => ({
      title: g.title, panels: g.panels.filter(p => have[p.label])})).filter(g => g.panels.length);
    const covered = new Set(groups.flatMap(g => g.panels.map(p => p.label)));
    const rest = Object.keys(have).filter(l => !covered.has(l));
    if (rest.length || !groups.length)
      groups.push({title: groups.length ? "all images" : "",
                   panels: Object.keys(have).map(l => ({label: l, caption: l}))});
    return groups;
  }
  function open(table, row, label) {
    V.table = table; V.row = row;
    V.group = Math.max(0, groupsOf(table, row).findIndex(g => g.panels.some(p => p.label === label)));
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
    const figures = group.panels.map(p => {
      const figure = document.createElement("figure"), img = new Image(), cap = document.createElement("figcaption");
      const thumb = images[p.label];
      img.src = thumb.dataset.full || thumb.getAttribute("src");
      img.alt = p.label;
      img.dataset.label = p.label;
      const b = document.createElement("b");
      b.textContent = p.caption || p.label;
      cap.append(b);
      if (p.note) cap.append(" " + p.note);
      figure.append(img, cap);
      return figure;
    });
    inner.replaceChildren(...figures);
    const imgs = $$("img", inner);
    Promise.all(imgs.map(i => i.decode().catch(() => null))).then(layout);
    const next = rows[rows.indexOf(V.row) + 1];  // warm the cache for the next step
    if (next) Object.values(imagesOf(next)).forEach(t => {
      new Image().src = t.dataset.full || t.getAttribute("src");
    });
  }
  function layout() {
    const imgs = $$("img", inner);
    if (!imgs.length) return;
    const nw = Math.max(1, ...imgs.map(i => i.naturalWidth)), nh = Math.max(1, ...imgs.map(i => i.naturalHeight));
    let z = V.zoom;
    if (z === "fit") {
      const n = imgs.length, w = (panels.clientWidth - 32 - 16 * (n - 1)) / n, h = panels.clientHeight - 64;
      z = Math.max(0.05, Math.min(w / nw, h / nh));
      if (z >= 1) z = Math.floor(z);  // whole screen pixels per image pixel: no resampling
    }
    V.z = z;
    imgs.forEach(i => {
      const w = i.naturalWidth || nw, h = i.naturalHeight || nh;
      i.style.width = Math.round(w * z) + "px";
      i.style.height = Math.round(h * z) + "px";
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
    else if (k === "ArrowDown" || k === "ArrowUp") { V.group += k === "ArrowDown" ? 1 : -1; show(); }
    else if (k === "+" || k === "=") zoomBy(true);
    else if (k === "-") zoomBy(false);
    else if (k === "0") { V.zoom = "fit"; layout(); }
    else if (k === "1") { V.zoom = 1; layout(); }
    else return;
    e.preventDefault();
  });
  window.addEventListener("resize", () => { if (!viewer.hidden && V.zoom === "fit") layout(); });
}

// -- pages that reload themselves (the training page) wait while the viewer is open
const every = document.body.dataset.reload;
if (every) setInterval(() => { if (!viewer || viewer.hidden) location.reload(); }, +every * 1000);
})();
