"""HTML pages written with dominate: the pieces every page shares (style, the sortable tables, the image viewer,
the summary of metrics) and the training page, checkpoints/NAME/web/index.html. test.py's results page is
evaluation.report; the runs index and the comparison page are util.compare.

Every page is a static file that opens from disk (file://) with no network: its style and script are inline and
written here, and what a script reads ships inside the page (Chromium blocks fetch() of local files). File names
and labels go through dominate's text and attribute escaping, links are URL-quoted, and JSON inside a <script>
has "<", ">" and "&" escaped, so a crafted file name shows as text and can neither inject markup nor close a script.
"""
import json
import math
import os
import time
from urllib.parse import quote

import dominate
from dominate import tags
from dominate.util import raw

METRICS = ("PSNR", "SSIM", "MAE")
HIGHER_IS_BETTER = {"PSNR": True, "SSIM": True, "MAE": False}
UNITS = {"PSNR": " dB"}
THUMB = 96  # default thumbnail width (CSS pixels); the pages have a slider for it

STYLE = """
:root { --fg:#1c2330; --muted:#617083; --line:#dfe4ea; --bg:#f4f6f9; --card:#fff; --head:#eef2f7;
        --accent:#2458d6; --good:#12813a; --bad:#c0262d; --thumb:%dpx; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Ubuntu, sans-serif;
       color: var(--fg); background: var(--bg); }
a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
header.top { background: var(--card); border-bottom: 1px solid var(--line); padding: 14px 24px 10px; }
header.top h1 { font-size: 20px; margin: 0 0 6px; font-weight: 650; overflow-wrap: anywhere; }
header.top h1 .sub { color: var(--muted); font-weight: 400; font-size: 15px; margin-left: 10px; }
.chips { display: flex; flex-wrap: wrap; gap: 6px; margin: 4px 0 6px; }
.chip { background: var(--head); border: 1px solid var(--line); border-radius: 999px; padding: 1px 10px;
        font-size: 12.5px; color: #334155; overflow-wrap: anywhere; }
.chip .k { color: var(--muted); margin-right: 4px; }
nav.links { font-size: 13px; } nav.links a { margin-right: 16px; }
main { padding: 4px 24px 48px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px;
          margin: 14px 0; }
h2 { font-size: 15px; font-weight: 650; margin: 0 0 10px; }
h2 small, .muted { font-weight: 400; color: var(--muted); font-size: 12.5px; }
h2 small { margin-left: 10px; }
.tools { display: flex; flex-wrap: wrap; align-items: center; gap: 14px; margin: 0 0 10px; font-size: 13px;
         color: var(--muted); }
.tools input[type=search] { font: inherit; padding: 3px 8px; border: 1px solid var(--line); border-radius: 5px;
                            min-width: 220px; color: var(--fg); }
.scroll { overflow-x: auto; }
table.data { border-collapse: separate; border-spacing: 0; font-variant-numeric: tabular-nums; }
table.data th, table.data td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: left;
                               vertical-align: middle; }
table.data thead th { background: var(--head); font-weight: 600; font-size: 12.5px; white-space: nowrap; }
table.data thead { position: sticky; top: 0; z-index: 2; }
table.data th.group { text-align: center; border-left: 1px solid var(--line); color: #334155; }
table.data .first { border-left: 1px solid var(--line); }
table.data td.num, table.data th.num { text-align: right; }
table.data tbody tr:hover { background: #f5f8ff; }
table.data td { white-space: nowrap; }
table.data td.name { min-width: 110px; max-width: 260px; overflow-wrap: anywhere; white-space: normal; }
table.data td.idx { color: var(--muted); font-size: 12px; }
td.name .files { font-size: 12px; margin-top: 2px; } td.name .files a { margin-right: 8px; }
th[data-col] { cursor: pointer; user-select: none; }
th[data-col]::after { content: " \\2195"; color: #b3bcc8; font-weight: 400; }
th.sorted-asc::after { content: " \\25B2"; color: var(--accent); }
th.sorted-desc::after { content: " \\25BC"; color: var(--accent); }
th[data-col]:focus-visible { outline: 2px solid var(--accent); outline-offset: -2px; }
.good { color: var(--good); } .bad { color: var(--bad); }
td.thumb { padding: 3px 4px; text-align: center; }
td.thumb a { display: inline-block; }
td.thumb img { display: block; width: var(--thumb); height: auto; image-rendering: pixelated; background: #0d1117;
               border-radius: 3px; cursor: zoom-in; }
td.thumb img.wide { width: auto; height: calc(var(--thumb) * 0.6); }
td.thumb .lbl { font-size: 11px; color: var(--muted); }
dl.opts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; font-size: 13px; }
dl.opts dt { color: var(--muted); } dl.opts dd { margin: 0; overflow-wrap: anywhere;
                                                 font-family: ui-monospace, Menlo, Consolas, monospace; }
.empty { color: var(--muted); font-style: italic; }
ul.names { columns: 3 220px; font-size: 13px; margin: 4px 0; overflow-wrap: anywhere; }
code, .cmd { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12.5px; }
.cmd { display: block; background: #0f172a; color: #e2e8f0; padding: 8px 10px; border-radius: 6px;
       overflow-wrap: anywhere; margin-top: 6px; }
.viewer { position: fixed; inset: 0; z-index: 100; display: flex; flex-direction: column;
          background: #0b0d11; color: #e6eaf0; }
.viewer[hidden] { display: none; }
.vbar { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 14px; padding: 8px 16px;
        border-bottom: 1px solid #262c36; font-size: 13px; }
.vbar .vtitle { font-weight: 650; font-size: 15px; overflow-wrap: anywhere; }
.vbar .vcount, .vbar .vgroup { color: #a9b3c1; white-space: nowrap; }
.vbar .vinfo { color: #a9b3c1; flex: 1 1 200px; min-width: 0; overflow: hidden; text-overflow: ellipsis;
               white-space: nowrap; }
.vbar .vbuttons { display: flex; align-items: center; gap: 6px; margin-left: auto; white-space: nowrap; }
.vbar button { font: inherit; background: #222833; color: #e6eaf0; border: 1px solid #3a4252; border-radius: 5px;
               padding: 2px 10px; cursor: pointer; }
.vbar button:hover { background: #2d3544; }
.vpanels { flex: 1; display: flex; overflow: auto; padding: 16px; }
.vinner { margin: auto; display: flex; gap: 16px; align-items: flex-start; }
.vinner figure { margin: 0; text-align: center; }
.vinner img { display: block; image-rendering: pixelated; background: #000; }
.vinner figcaption { font-size: 12.5px; color: #b8c1ce; margin-top: 6px; overflow-wrap: anywhere; }
.vinner figcaption b { color: #e6eaf0; font-weight: 600; }
.vhelp { font-size: 12px; color: #8792a2; padding: 6px 16px; border-top: 1px solid #262c36; }
kbd { font: 11px ui-monospace, Menlo, monospace; border: 1px solid #4a5262; border-radius: 3px; padding: 0 4px; }
""" % THUMB

SCRIPT = r"""
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
"""


# -- small helpers -----------------------------------------------------------------------------------------------------
def url(path):
    """A relative file path as a link: separators as "/", everything else URL-quoted."""
    return quote(str(path).replace(os.sep, "/"))


def script_json(value):
    """``value`` as JSON that is safe inside a <script> element (no "</script>", "<!--" or "&" survives)."""
    text = json.dumps(value, allow_nan=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def number(v):
    """A number for a data-v attribute that JavaScript's Number() reads (inf -> Infinity); "" when there is none."""
    if v is None or isinstance(v, str) or isinstance(v, bool):
        return ""
    v = float(v)
    if math.isnan(v):
        return ""
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return repr(v)


def fmt(metric, v, unit=False):
    """A metric as people read it: PSNR 2 decimals, SSIM 4, MAE 4 significant digits."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    v = float(v)
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v < 0:
        return "−" + fmt(metric, -v, unit)
    if metric == "PSNR":
        text = f"{v:.2f}"
    elif metric == "SSIM" or abs(v) < 10:
        text = f"{v:.4f}"
    else:  # errors in a volume's own units (HU, ...)
        text = f"{v:.1f}" if abs(v) < 1e5 else f"{v:.4g}"
    return text + (UNITS.get(metric, "") if unit else "")


def fmt_delta(metric, d):
    if d is None or math.isnan(d) or math.isinf(d):
        return "–"
    return ("+" if d > 0 else "−" if d < 0 else "±") + fmt(metric, abs(d))


def delta_class(metric, d):
    """"good" when ``d`` (new minus old) is an improvement for ``metric``, "bad" when it is worse."""
    if d is None or math.isnan(d) or d == 0 or math.isinf(d):
        return ""
    return "good" if (d > 0) == HIGHER_IS_BETTER.get(metric, True) else "bad"


def worst_first(metric):
    """The sort direction that puts the worst value first."""
    return "asc" if HIGHER_IS_BETTER.get(metric, True) else "desc"


def outputs_of(keys):
    """The output labels that metric keys ("PSNR_fake_B", "baseline_PSNR_fake_B") name, in order of appearance."""
    out = []
    for k in keys:
        for m in METRICS:
            if k.startswith(m + "_") and k[len(m) + 1:] not in out:
                out.append(k[len(m) + 1:])
    return out


def image_size(path):
    """(width, height) of an image file from its header, or None."""
    try:
        from PIL import Image
        with Image.open(path) as im:
            return im.size
    except Exception:
        return None


def row_summary(row, outputs):
    """One line of an item's metrics for the viewer's title bar."""
    parts = []
    for out in outputs:
        got = [f"{m} {fmt(m, row[f'{m}_{out}'], unit=True)}" for m in METRICS if f"{m}_{out}" in row]
        if got:
            parts.append(f"{out}: " + ", ".join(got))
    return " · ".join(parts)


# -- page pieces -------------------------------------------------------------------------------------------------------
def document(title, reload_every=None, thumb=THUMB):
    """A dominate document with the shared style (thumbnails ``thumb`` pixels wide); ``write_page`` adds the shared
    script at the end of the body."""
    doc = dominate.document(title=title)
    with doc.head:
        tags.meta(charset="utf-8")
        tags.meta(name="viewport", content="width=device-width, initial-scale=1")
        tags.style(raw(STYLE + ("" if thumb == THUMB else ":root { --thumb: %dpx; }\n" % thumb)))
    if reload_every:
        doc.body["data-reload"] = str(int(reload_every))
    return doc


def write_page(doc, out_dir, filename="index.html", scripts=()):
    """Writes ``doc`` with the shared script (and ``scripts``, page-specific JavaScript) as out_dir/filename."""
    with doc.body:
        tags.script(raw(SCRIPT))
        for s in scripts:
            tags.script(raw(s))
    path = os.path.join(out_dir, filename)
    os.makedirs(out_dir, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(doc.render(pretty=False))  # no indentation: a page of 2,000 rows stays small
    os.replace(tmp, path)  # a browser reloading the page never reads half a file
    return path


def page_header(title, sub="", chips=(), links=()):
    """The page's header: title, a muted subtitle, chips of (key, value) and links of (text, href)."""
    with tags.header(cls="top") as h:
        with tags.h1():
            tags.span(title)
            if sub:
                tags.span(sub, cls="sub")
        if chips:
            with tags.div(cls="chips"):
                for k, v in chips:
                    with tags.span(cls="chip"):
                        if k:
                            tags.span(k, cls="k")
                        tags.span(str(v))
        if links:
            with tags.nav(cls="links"):
                for text, href in links:
                    tags.a(text, href=href)
    return h


def sort_th(title, col, metric=None, text=False, cls="", tip=None):
    """A sortable header cell for body column ``col``: metrics sort worst first on the first click."""
    th = tags.th(title, data_col=str(col), cls=(cls + (" num" if not text else "")).strip(),
                 title=tip or ("click: sort (worst first), again: reverse" if metric else "click: sort"))
    if text:
        th["data-type"] = "text"
    th["data-first"] = worst_first(metric) if metric else "asc"
    return th


def metric_td(metric, v, cls=""):
    return tags.td(fmt(metric, v), cls=("num " + cls).strip(), data_v=number(v))


def delta_td(metric, d, cls=""):
    return tags.td(fmt_delta(metric, d), cls=f"num {delta_class(metric, d)} {cls}".strip(), data_v=number(d))


def summary_table(mean, outputs=None, titles=None, table_id="summary"):
    """The metrics at a glance: a row per output (fake_B, fake_A), per metric the output's value, the
    copy-the-input baseline and the difference (green where the output is better). None when ``mean`` has none."""
    outputs = [o for o in (outputs or outputs_of(mean)) if any(f"{m}_{o}" in mean for m in METRICS)]
    if not outputs:
        return None
    metrics = [m for m in METRICS if any(f"{m}_{o}" in mean for o in outputs)]
    with tags.table(cls="data summary", id=table_id) as table:
        with tags.thead():
            with tags.tr():
                tags.th("output", rowspan=2)
                for m in metrics:
                    tags.th(m + UNITS.get(m, "").replace(" dB", " (dB)"), colspan=3, cls="group",
                            title=("higher" if HIGHER_IS_BETTER[m] else "lower") + " is better")
            with tags.tr():
                for m in metrics:
                    tags.th("output", cls="num first")
                    tags.th("copy of input", cls="num", title="the baseline that returns the input unchanged")
                    tags.th("Δ", cls="num", title="output minus copy of input (green: the output is better)")
        with tags.tbody():
            for o in outputs:
                with tags.tr():
                    with tags.td():
                        tags.b(o)
                        if titles and titles.get(o):
                            tags.span(" " + titles[o], cls="muted")
                    for m in metrics:
                        v, b = mean.get(f"{m}_{o}"), mean.get(f"baseline_{m}_{o}")
                        metric_td(m, v, cls="first")
                        metric_td(m, b)
                        delta_td(m, None if v is None or b is None else v - b)
    return table


def thumb_td(src, label, size=None, caption=None, full=None):
    """A cell with a lazily loaded thumbnail (width and height given, so rows keep their place before it loads)
    that the viewer opens large; ``src`` is a relative path."""
    with tags.td(cls="thumb") as td:
        with tags.a(href=url(full or src)):
            img = tags.img(src=url(src), alt=label, loading="lazy", decoding="async", data_label=label)
            if full:
                img["data-full"] = url(full)
            if size:
                img["width"], img["height"] = str(size[0]), str(size[1])
                if size[0] > 1.5 * size[1]:
                    img["class"] = "wide"
        if caption is not None:
            tags.div(caption, cls="lbl")
    return td


def viewer():
    """The (hidden) image viewer the shared script opens on a click on any thumbnail of a table.viewable."""
    with tags.div(id="viewer", cls="viewer", hidden=True, role="dialog", aria_label="image viewer") as v:
        with tags.div(cls="vbar"):
            tags.span(cls="vtitle")
            tags.span(cls="vcount")
            tags.span(cls="vgroup")
            tags.span(cls="vinfo")
            with tags.span(cls="vbuttons"):
                tags.button("◀", data_act="prev", title="previous (←)")
                tags.button("▶", data_act="next", title="next (→)")
                tags.button("−", data_act="out", title="zoom out (-)")
                tags.span(cls="vzoom")
                tags.button("+", data_act="in", title="zoom in (+)")
                tags.button("fit", data_act="fit", title="fit (0)")
                tags.button("1:1", data_act="one", title="one image pixel per screen pixel (1)")
                tags.button("✕", data_act="close", title="close (Esc)")
        with tags.div(cls="vpanels"):
            tags.div(cls="vinner")
        with tags.div(cls="vhelp"):
            for key, what in (("← →", "previous / next"), ("↑ ↓", "other translation"), ("+ −", "zoom"),
                              ("0", "fit"), ("1", "1:1"), ("Esc", "close")):
                tags.kbd(key)
                tags.span(f" {what}   ")
    return v


def thumb_slider(size=THUMB):
    """A slider for the thumbnails' size (the page's --thumb), starting at ``size``."""
    with tags.label() as label:
        tags.span("thumbnails ")
        tags.input_(type="range", min="48", max="320", step="8", value=str(size), cls="thumbsize",
                    aria_label="thumbnail size")
    return label


# -- the training page -------------------------------------------------------------------------------------------------
def write_training_page(web_dir, opt, epochs, curve, order=(), validation=None):
    """checkpoints/NAME/web/index.html: the latest validation metrics (when validation ran), the curves (when there
    are points), then the images saved for each epoch ({epoch: {label: relative path}}), newest epoch first,
    labels in ``order`` (the model's) and then by name. The page reloads itself every minute while training runs
    (not while the viewer is open). ``validation``: the last validation point ({"x": epoch, "val": {...}})."""
    doc = document(f"Training: {opt.name}", reload_every=60)
    with doc:
        page_header(opt.name, f"training · {getattr(opt, 'model', '')}",
                    chips=[("updated", time.strftime("%Y-%m-%d %H:%M:%S")),
                           ("epochs shown", len(epochs))],
                    links=[("loss_log.txt", "../loss_log.txt"), ("loss_history.jsonl", "../loss_history.jsonl"),
                           ("train_opt.txt", "../train_opt.txt")])
        with tags.main():
            if validation and validation.get("val"):
                with tags.section(id="validation"):
                    tags.h2("Validation", tags.small(f"at epoch {validation.get('x', 0):g}"))
                    if summary_table(validation["val"], table_id="validation-summary") is None:
                        tags.p("no metrics in the last validation", cls="empty")
            if curve:
                with tags.section():
                    tags.h2("Curves", tags.small("from loss_history.jsonl; click for full size"))
                    with tags.a(href=url(curve)):
                        tags.img(src=url(curve), alt="loss curve", id="loss-curve",
                                 style="max-width: 100%; height: auto; display: block")
            with tags.section():
                labels = sorted({lbl for e in epochs.values() for lbl in e}, key=lambda lbl: (
                    order.index(lbl) if lbl in order else len(order), lbl))
                tags.h2("Images", tags.small("newest epoch first; click an image to enlarge, ← → step epochs"))
                with tags.div(cls="tools"):
                    thumb_slider()
                groups = [{"title": "", "panels": [{"label": lbl, "caption": lbl} for lbl in labels]}]
                with tags.div(cls="scroll"):
                    with tags.table(cls="data viewable", id="images", data_groups=json.dumps(groups)):
                        with tags.thead():
                            with tags.tr():
                                tags.th("epoch")
                                for label in labels:
                                    tags.th(label)
                        with tags.tbody():
                            for epoch in sorted(epochs, reverse=True):
                                with tags.tr(data_name=f"epoch {epoch}"):
                                    tags.td(f"epoch {epoch}", cls="name")
                                    for label in labels:
                                        src = epochs[epoch].get(label)
                                        if src is None:
                                            tags.td()
                                        else:
                                            thumb_td(src, label, image_size(os.path.join(web_dir, src)))
                if not epochs:
                    tags.p("no images yet: they are saved every --display_freq images with --update_html_freq",
                           cls="empty")
        viewer()
    return write_page(doc, web_dir)
