"""The data table every page uses (results, comparison, runs, training images): columns declared once with their
header, group, sorting and how a row fills its cell; page.js sorts any column with a ``data-col`` header (numbers
from the cells' data-v, worst first for metrics), filters rows by their data-name and opens the thumbnails of a
``viewable`` table in the image viewer.

Also the cells tables share (a metric, a difference, a thumbnail) and the summary of metrics at a glance."""
from dataclasses import dataclass
from typing import Any, Callable, Optional

from dominate import tags
from dominate.util import text

from util.pages.html import delta_class, fmt, fmt_delta, number, url
from util.results import Results


@dataclass
class Column:
    """One column.

    Attributes:
        head: the header text.
        cell: ``cell(row)`` writes the row's <td> (called inside the row's <tr>).
        group: the header above it, shared by consecutive columns of the same group ("" for none).
        sort: None (not sortable), "text", "number", or a util.results.Metric: numbers, worst first on the first
            click.
        tip: the header's tooltip (sortable headers have a default).
        cls: the header cell's classes ("first": the first column of a group, with a line on its left).
        span: with groups, the header fills both header rows.
        group_tip: the group header's tooltip.
    """
    head: str
    cell: Callable[[Any], Any]
    group: str = ""
    sort: Any = None
    tip: Optional[str] = None
    cls: str = ""
    span: bool = False
    group_tip: Optional[str] = None


def _head(column, col):
    if column.sort is None:
        attrs = {"cls": column.cls} if column.cls else {}
        if column.tip:
            attrs["title"] = column.tip
        return tags.th(column.head, **attrs)
    text = column.sort == "text"
    metric = None if isinstance(column.sort, str) else column.sort
    th = tags.th(column.head, data_col=str(col), cls=(column.cls + ("" if text else " num")).strip(),
                 title=column.tip or ("click: sort (worst first), again: reverse" if metric else "click: sort"))
    if text:
        th["data-type"] = "text"
    th["data-first"] = metric.worst_first if metric else "asc"
    return th


def data_table(columns, rows, row_attrs=None, cls="data", **attrs):
    """A <table class="data ..."> of ``rows`` (any objects; each column's ``cell`` writes its cell). With groups, a
    first header row names them; ``row_attrs(row)`` gives each <tr>'s attributes ({"data-name": ...})."""
    with tags.table(cls=cls, **attrs) as table:
        with tags.thead():
            if any(c.group for c in columns):
                with tags.tr():
                    i = 0
                    while i < len(columns):
                        c = columns[i]
                        if c.span:
                            _head(c, i)["rowspan"] = "2"
                            i += 1
                            continue
                        n = 1
                        while i + n < len(columns) and not columns[i + n].span and columns[i + n].group == c.group:
                            n += 1
                        if c.group:
                            th = tags.th(c.group, colspan=n, cls="group")
                            if c.group_tip:
                                th["title"] = c.group_tip
                        else:
                            tags.th("", colspan=n)
                        i += n
            with tags.tr():
                for i, c in enumerate(columns):
                    if not c.span:
                        _head(c, i)
        with tags.tbody():
            for row in rows:
                with tags.tr() as tr:
                    for k, v in (row_attrs(row) if row_attrs else {}).items():
                        if v is not None:
                            tr[k] = v
                    for c in columns:
                        c.cell(row)
    return table


# -- cells -------------------------------------------------------------------------------------------------------------
def metric_td(metric, v, cls="", std=None):
    """A metric's value (``std``: with the spread of a set-level estimate, KID's "± std")."""
    text = fmt(metric, v) + ("" if std is None else " ± " + fmt(metric, std))
    return tags.td(text, cls=("num " + cls).strip(), data_v=number(v))


def delta_td(metric, d, cls=""):
    return tags.td(fmt_delta(metric, d), cls=f"num {delta_class(metric, d)} {cls}".strip(), data_v=number(d))


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


# -- metrics at a glance -----------------------------------------------------------------------------------------------
def row_summary(results, outputs):
    """One line of an item's results (util.results.Results) for the viewer's title bar."""
    parts = []
    for out in outputs:
        got = [f"{m.name} {fmt(m, r.value, unit=True)}" for m in results.metrics
               for r in [results.find(m, out)] if r is not None]
        if got:
            parts.append(f"{out}: " + ", ".join(got))
    return " · ".join(parts)


def summary_table(mean, outputs=None, titles=None, table_id="summary"):
    """The results at a glance (``mean``: util.results.Results): a row per output (fake_B, fake_A) and per masked
    region it was also measured on (the foreground of volumes); per metric the output's value, the baseline's and
    the difference (green where the output is better), and which baseline that is (the copy of the input, a
    look-up table, the mean target; test.py --baseline). Without any baseline the table has the values only. None
    when ``mean`` has no result of a translation."""
    found = mean.translations
    outputs = [o for o in (outputs or found.outputs) if o in found.outputs]
    if not outputs:
        return None
    rows = [(o, region) for o in outputs for region in [None] + mean.regions
            if any(r.output == o for r in mean.in_region(region))]
    shown = Results(r for o, region in rows for r in mean.in_region(region) if r.output == o)
    based = any(r.baseline is not None for r in shown)
    regions = bool(mean.regions)
    columns = [Column("output", lambda row: _output_td(row, titles, regions), span=True)]
    for m in shown.metrics:
        group = f"{m.name} ({m.unit})" if m.unit else m.name
        tip = ("higher" if m.higher_is_better else "lower") + " is better"
        columns.append(Column("output", lambda row, m=m: metric_td(m, _value(mean, m, row), cls="first",
                                                                   std=_std(mean, m, row)), group,
                              cls="num first", group_tip=tip))
        if based:
            columns += [
                Column("baseline", lambda row, m=m: metric_td(m, _baseline(mean, m, row)), group, cls="num",
                       tip="the same metric of the baseline (last column)", group_tip=tip),
                Column("Δ", lambda row, m=m: delta_td(m, _delta(mean, m, row)), group, cls="num",
                       tip="output minus baseline (green: the output is better)", group_tip=tip)]
    columns.append(Column("baseline", lambda row: _baseline_td(mean, row), span=True, cls="first",
                          tip="what the output is compared with: the copy of the input, or a look-up table of "
                              "the input's colour fitted on the training pairs (test.py --baseline)"))
    return data_table(columns, rows, cls="data summary", id=table_id)


def _output_td(row, titles, regions):
    output, region = row
    with tags.td() as td:
        tags.b(output)
        if titles and titles.get(output):
            tags.span(" " + titles[output], cls="muted")
        if regions:  # volumes: each output over every voxel, and over its foreground
            text(" ")
            tags.span(region or "every voxel", cls="region" + (" masked" if region else ""),
                      title=REGION_TIPS.get(region, ""))
    return td


REGION_TIPS = {None: "over every voxel, the air around the subject included",
               "foreground": "over the voxels whose target lies above the lowest tenth of its intensity window"}


def _result(results, metric, row):
    return results.find(metric, row[0], region=row[1])


def _value(results, metric, row):
    r = _result(results, metric, row)
    return None if r is None else r.value


def _std(results, metric, row):
    r = _result(results, metric, row)
    return None if r is None else r.std


def _baseline(results, metric, row):
    r = _result(results, metric, row)
    return None if r is None else r.baseline


def _delta(results, metric, row):
    r = _result(results, metric, row)
    return None if r is None else r.delta


def _baseline_td(results, row):
    names = list(dict.fromkeys(r.baseline_name for r in results.in_region(row[1])
                               if r.output == row[0] and r.baseline is not None))
    return tags.td(" / ".join(names) if names else "none", cls="first muted" if not names else "first")
