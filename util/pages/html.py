"""What every page shares: the document with its style and script (static/page.css and page.js, inlined), the header,
the image viewer, the thumbnail slider, and how values, links and data are written into a page.

File names and labels go through dominate's text and attribute escaping, links are URL-quoted, and JSON inside a
<script> has "<", ">" and "&" escaped, so a crafted file name shows as text and can neither inject markup nor close
a script.
"""
import functools
import json
import math
import os
from urllib.parse import quote

import dominate
from dominate import tags
from dominate.util import raw

from util.results import strict_json

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
THUMB = 96  # default thumbnail width (CSS pixels); the pages have a slider for it


@functools.lru_cache(maxsize=None)
def asset(name):
    """The text of static/NAME (a .css or .js file of this package)."""
    with open(os.path.join(STATIC, name), encoding="utf-8") as f:
        return f.read()


# -- values ------------------------------------------------------------------------------------------------------------
def url(path):
    """A relative file path as a link: separators as "/", everything else URL-quoted."""
    return quote(str(path).replace(os.sep, "/"))


def script_json(value):
    """``value`` as JSON that is safe inside a <script> element (no "</script>", "<!--" or "&" survives); numbers
    that are not finite become null."""
    text = json.dumps(strict_json(value, as_null=True), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def json_data(element_id, value):
    """A <script type="application/json"> holding ``value``: data a page script reads with JSON.parse."""
    return tags.script(raw(script_json(value)), type="application/json", id=element_id)


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
    """A value of ``metric`` (util.results.Metric) as people read it: its decimals (PSNR 2, SSIM and MAE 4); errors
    in the data's own units (HU, ...) from 10 on with one decimal. ``unit``: with the metric's unit (" dB")."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    v = float(v)
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v < 0:
        return "−" + fmt(metric, -v, unit)
    if metric.data_units and v >= 10:
        text = f"{v:.1f}" if v < 1e5 else f"{v:.4g}"
    else:
        text = f"{v:.{metric.decimals}f}"
    return text + (" " + metric.unit if unit and metric.unit else "")


def _shows_zero(metric, d):
    """Whether ``d`` reads as zero at the metric's precision (−0.0000 would claim a sign it does not show)."""
    return fmt(metric, abs(d)) == fmt(metric, 0.0)


def fmt_delta(metric, d):
    if d is None or math.isnan(d) or math.isinf(d):
        return "–"
    if _shows_zero(metric, d):
        return "±" + fmt(metric, 0.0)
    return ("+" if d > 0 else "−" if d < 0 else "±") + fmt(metric, abs(d))


def delta_class(metric, d):
    """"good" when ``d`` (new minus old) is an improvement for ``metric``, "bad" when it is worse; nothing for a
    difference that reads as zero."""
    if d is None or math.isnan(d) or d == 0 or math.isinf(d) or _shows_zero(metric, d):
        return ""
    return "good" if metric.better(d, 0) else "bad"


def image_size(path):
    """(width, height) of an image file from its header, or None."""
    try:
        from PIL import Image
        with Image.open(path) as im:
            return im.size
    except Exception:
        return None


# -- the document ------------------------------------------------------------------------------------------------------
def document(title, reload_every=None, thumb=THUMB, styles=()):
    """A dominate document with the shared style and ``styles`` (names of static .css files), thumbnails ``thumb``
    pixels wide; ``write_page`` adds the scripts at the end of the body."""
    doc = dominate.document(title=title)
    doc["style"] = f"--thumb: {int(thumb)}px"
    with doc.head:
        tags.meta(charset="utf-8")
        tags.meta(name="viewport", content="width=device-width, initial-scale=1")
        for name in ("page.css",) + tuple(styles):
            tags.style(raw(asset(name)))
    if reload_every:
        doc.body["data-reload"] = str(int(reload_every))
    return doc


def write_page(doc, out_dir, filename="index.html", scripts=()):
    """Writes ``doc`` with the shared script (and ``scripts``, names of static .js files for this page) inlined, as
    out_dir/filename: one file that opens from disk (file://) with no network."""
    with doc.body:
        for name in ("page.js",) + tuple(scripts):
            tags.script(raw(asset(name)))
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


def viewer():
    """The (hidden) image viewer page.js opens on a click on any thumbnail of a table.viewable."""
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
                with tags.span(cls="vkey-groups" if key == "↑ ↓" else "vkey"):  # ↑ ↓: shown with two or more
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


def name_filter(table_id, placeholder):
    """A search box that shows only the rows of ``table_id`` whose name holds what is typed, with a count."""
    tags.input_(type="search", placeholder=placeholder, cls="filter", data_table=table_id,
                data_count=table_id + "-count", aria_label="filter by name")
    return tags.span(id=table_id + "-count")
