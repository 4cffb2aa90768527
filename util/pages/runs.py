"""The runs index, results/index.html, and comparison pages of result folders. Both only read result folders
(summary.json, metrics.json, images/LABEL/NAME.png), so they need no model, data or GPU; ``python -m util.compare``
writes them from the command line.

The comparison page shows each input with every run's output side by side (and the target), the per-image metrics
of every run and their differences from the first run, sortable; inputs are matched by name, and the ones that
are not in every run are listed. The runs index builds the same comparison in the browser for the runs one ticks
(static/runs.js, from what the index holds: each run's images and per-image metrics), and links each run's results
and training pages. test.py rewrites the runs index after each run.
"""
import json
import os
import re
import shlex
import time

from dominate import tags

from util.errors import UserError
from util.pages.html import (delta_class, document, fmt, fmt_delta, image_size, json_data, name_filter, number,
                             page_header, thumb_slider, url, viewer, write_page)
from util.pages.table import Column, data_table, delta_td, metric_td, row_summary, thumb_td
from util.results import PSNR, SHOWN, TRANSLATIONS, Results, strict_json

SUMMARY = "summary.json"
COMPARE_DIR = "_compare"
COMPARE_THUMB = 80  # a row holds the input, every run's output and the target


# -- result folders ----------------------------------------------------------------------------------------------------
def write_summary(out_dir, opt, run, n_items, outputs, mean):
    """summary.json: one run as the runs index lists it (``outputs``: {label: (source, target)}; ``mean``: its
    util.results.Results, flat under "mean" as every version wrote it, and as records under "results")."""
    summary = {"format": 1, "name": getattr(opt, "name", ""), "phase": getattr(opt, "phase", ""),
               "epoch": str(getattr(opt, "epoch", "")), "model": getattr(opt, "model", ""),
               "direction": getattr(opt, "direction", ""), "dims": run.get("dims", 2),
               "date": time.strftime("%Y-%m-%d %H:%M:%S"), "items": n_items,
               "outputs": {k: {"source": s, "target": t} for k, (s, t) in outputs.items()},
               "mean": mean.flat(), "results": mean.to_json(), "architecture": run.get("architecture"),
               "baselines": run.get("baselines") or {}, "training_page": run.get("training_page"),
               "page": "index.html"}
    with open(os.path.join(out_dir, SUMMARY), "w") as f:
        json.dump(strict_json(summary), f, indent=1, allow_nan=False)
    return summary


def _load_json(path):
    """The JSON object in ``path``; None when it is missing, unreadable or not an object (a damaged file in a
    results folder must not stop test.py, which rewrites the runs index after every run)."""
    try:
        with open(path) as f:
            value = json.load(f)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def read_result(folder, rows=True):
    """What a result folder holds: its summary.json (written by test.py), or what metrics.json and the folder
    names give for folders of earlier versions; None for a folder that is not a result. "results" holds its mean
    results (util.results.Results); with ``rows``, "rows" holds the per-item results of metrics.json ({name:
    Results})."""
    folder = os.path.abspath(folder)
    summary = _load_json(os.path.join(folder, SUMMARY))
    metrics = {}
    if rows or summary is None:
        metrics = _load_json(os.path.join(folder, "metrics.json")) or {}
    if summary is None:
        if not (metrics or os.path.exists(os.path.join(folder, "index.html"))):
            return None
        phase, _, epoch = os.path.basename(folder).rpartition("_")
        stamp = max(os.path.getmtime(os.path.join(folder, f)) for f in os.listdir(folder))
        summary = {"name": os.path.basename(os.path.dirname(folder)), "phase": phase, "epoch": epoch,
                   "model": "", "direction": "", "dims": None, "mean": metrics.get("mean", {}),
                   "results": metrics.get("results"), "date": time.strftime("%Y-%m-%d %H:%M:%S",
                                                                            time.localtime(stamp)),
                   "outputs": {}, "page": "index.html"}
    summary = dict(summary)
    summary["folder"] = folder
    summary.setdefault("mean", metrics.get("mean", {}))
    if not isinstance(summary["mean"], dict):
        summary["mean"] = {}
    summary["results"] = Results.from_json(summary.get("results"), summary["mean"])
    for key in ("name", "phase", "epoch", "model", "direction", "date"):  # shown as text
        summary[key] = str(summary.get(key) or "")
    items = metrics.get("items", [])
    summary["rows"] = {r["name"]: Results.from_flat(r) for r in (items if isinstance(items, list) else [])
                       if isinstance(r, dict) and "name" in r}
    return summary


PREVIOUS = ".previous"  # an earlier test run's results while a new one writes (evaluation.replacing_results)


def find_results(results_dir):
    """Every result folder results_dir/NAME/PHASE_EPOCH, newest first."""
    found = []
    if not os.path.isdir(results_dir):
        return found
    for name in sorted(os.listdir(results_dir)):
        run_dir = os.path.join(results_dir, name)
        if name == COMPARE_DIR or not os.path.isdir(run_dir):
            continue
        for sub in sorted(os.listdir(run_dir)):
            if os.path.isdir(os.path.join(run_dir, sub)) and not sub.endswith(PREVIOUS):  # a test run's, aside
                result = read_result(os.path.join(run_dir, sub), rows=False)
                if result is not None:
                    found.append(result)
    return sorted(found, key=lambda r: r.get("date", ""), reverse=True)


def images_of(folder):
    """{label: {name: path relative to ``folder``}} of images/LABEL/NAME.png."""
    out = {}
    root = os.path.join(folder, "images")
    if not os.path.isdir(root):
        return out
    for label in sorted(os.listdir(root)):
        if os.path.isdir(os.path.join(root, label)):
            out[label] = {os.path.splitext(f)[0]: os.path.join("images", label, f)
                          for f in sorted(os.listdir(os.path.join(root, label))) if not f.startswith(".")}
    return out


def _output_labels(result, images):
    """{output label: (input label, target label)} of a result."""
    outs = {}
    for label, t in (result.get("outputs") or {}).items():
        outs[label] = ("real_" + t["source"], "real_" + t["target"])
    for label in list(images) + result["results"].outputs:  # folders of earlier versions name no outputs
        if label in outs:
            continue
        if label == "fake":  # --model test
            outs[label] = ("real", None)
        elif label in TRANSLATIONS:
            outs[label] = tuple("real_" + d for d in TRANSLATIONS[label])
    return outs


def _metric_columns(results, outputs):
    """(output, metric) of the mean results the runs have, output by output."""
    return [(o, m) for o in outputs for m in SHOWN if any(r["results"].find(m, o) for r in results)]


def _firsts(cols):
    """Whether each (output, metric) column starts its output's group."""
    return [k == 0 or cols[k - 1][0] != o for k, (o, _) in enumerate(cols)]


# -- the runs index ----------------------------------------------------------------------------------------------------
def write_runs_index(results_dir):
    """results_dir/index.html: every run (name, model, epoch, date, main metrics, link), newest first, and the
    comparisons made with util.compare. Rebuilt from the folders' summary.json files."""
    results = find_results(results_dir)
    cols = _metric_columns(results, list(dict.fromkeys(o for r in results for o in r["results"].outputs)))
    compares = []
    cdir = os.path.join(results_dir, COMPARE_DIR)
    if os.path.isdir(cdir):
        for sub in sorted(os.listdir(cdir)):
            info = _load_json(os.path.join(cdir, sub, "compare.json"))
            if info:
                compares.append((sub, info))
    doc = document("RevGAN results")
    with doc:
        page_header("Results", os.path.abspath(results_dir),
                    chips=[("runs", len(results)), ("updated", time.strftime("%Y-%m-%d %H:%M:%S"))])
        with tags.main():
            with tags.section():
                tags.h2(f"Runs ({len(results)})", tags.small("newest first; click a column to sort (metrics worst "
                                                             "first)"))
                if not results:
                    tags.p("No results yet: python test.py --name NAME ... writes them here.", cls="empty")
                else:
                    _runs_table(results_dir, results, cols)
                    with tags.div(cls="tools compare-tools"):
                        tags.button("compare the ticked runs", id="compare-go", type="button", disabled=True,
                                    title="each input with every ticked run's output side by side, below; the "
                                          "first run ticked is the one the others are measured against")
                        tags.span(id="compare-count", cls="muted")
                    tags.code(id="compare-cmd", cls="cmd")
            if results:
                tags.section(id="compare", hidden=True)
                json_data("runs-data", compare_data(results_dir, results))
            if compares:
                with tags.section():
                    tags.h2(f"Comparison pages ({len(compares)})", tags.small("written by python -m util.compare"))
                    with tags.ul():
                        for sub, info in compares:
                            with tags.li():
                                tags.a(" vs ".join(info.get("labels", [])) or sub,
                                       href=url(os.path.join(COMPARE_DIR, sub, "index.html")))
                                tags.span("  " + info.get("date", ""), cls="muted")
        if results:
            viewer()
    return write_page(doc, results_dir, scripts=("runs.js",) if results else ())


def compare_data(results_dir, results):
    """What the index's in-browser comparison reads, per run: its label, pages, outputs ({label: [input, target]}),
    images ({label: {"dir": relative folder, "files": [file names]}}) and per-image metrics ({"keys": [PSNR_fake_B,
    ...], "rows": {name: [values]}})."""
    root = os.path.abspath(results_dir)
    labels = _labels(results)
    out = []
    for r, label in zip(results, labels):
        folder = r["folder"]
        full = read_result(folder) or r
        images = images_of(folder)
        keys = list(dict.fromkeys(x.key for row in full.get("rows", {}).values() for x in row.translations
                                  if x.metric in SHOWN))
        rows = {}
        for name, res in full.get("rows", {}).items():
            flat = res.flat()
            rows[name] = [flat.get(k) for k in keys]
        rel = os.path.relpath(folder, root)
        out.append({"label": label, "page": url(os.path.join(rel, r.get("page") or "index.html")),
                    "outputs": {o: list(io) for o, io in _output_labels(full, images).items() if o in images},
                    "images": {lbl: {"dir": url(os.path.join(rel, "images", lbl)) + "/",
                                     "files": [os.path.basename(p) for p in files.values()]}
                               for lbl, files in images.items()},
                    "keys": keys, "rows": rows})
    return {"runs": out, "thumb": COMPARE_THUMB}


def training_page_of(result, results_dir):
    """A run's training page relative to ``results_dir``, where its summary names one that exists."""
    page = result.get("training_page")
    if isinstance(page, str) and os.path.isfile(page):
        return url(os.path.relpath(page, os.path.abspath(results_dir)))
    return None


def _runs_table(results_dir, results, cols):
    index = {id(r): k for k, r in enumerate(results)}

    def pick_td(r):
        rel = os.path.relpath(r["folder"], os.path.abspath(results_dir))
        with tags.td() as td:
            tags.input_(type="checkbox", cls="pick", aria_label="compare",
                        data_path=shlex.quote(os.path.join(results_dir, rel)), data_run=str(index[id(r)]))
        return td

    def run_td(r):
        rel = os.path.relpath(r["folder"], os.path.abspath(results_dir))
        with tags.td(cls="name", data_v=r.get("name", "")) as td:
            tags.a(r.get("name", ""), href=url(os.path.join(rel, r.get("page") or "index.html")), cls="result")
            tags.div(f"{r.get('phase', '')} · epoch {r.get('epoch', '')}", cls="muted")
        return td

    def training_td(r):
        href = training_page_of(r, results_dir)
        with tags.td() as td:
            if href:
                tags.a("training page", href=href, cls="training")
            else:
                tags.span("–", cls="muted", title="no training page of this run was found (checkpoints/NAME/web)")
        return td

    def metric_cell(o, m, first):
        def cell(r):
            res = r["results"].find(m, o)
            v, d = (None, None) if res is None else (res.value, res.delta)
            with metric_td(m, v, cls="first" if first else "") as td:
                if d is not None:
                    td["title"] = f"{res.baseline_name}: {fmt(m, res.baseline)} (Δ {fmt_delta(m, d)})"
                    if m is PSNR:  # the gain over copying the input, at a glance
                        tags.span(f" ({fmt_delta(m, d)})", cls=f"muted {delta_class(m, d)}".strip())
            return td
        return cell

    columns = [Column("", pick_td, tip="pick runs to compare"),
               Column("run", run_td, sort="text"),
               Column("model", lambda r: tags.td(" · ".join(x for x in (r.get("model"), f"{r['dims']}D" if r.get(
                   "dims") else "") if x) or "–"), sort="text"),
               Column("direction", lambda r: tags.td(r.get("direction") or "–"), sort="text"),
               Column("items", lambda r: tags.td(str(r.get("items", len(r.get("rows", {})) or "")), cls="num",
                                                 data_v=number(r.get("items"))), sort="number"),
               Column("tested on", lambda r: tags.td(r.get("date", "")), sort="text"),
               Column("training", training_td, tip="the run's training page: curves, validation, pictures")]
    columns += [Column(m.name, metric_cell(o, m, first), o, sort=m, cls="first" if first else "")
                for (o, m), first in zip(cols, _firsts(cols))]
    with tags.div(cls="scroll"):
        data_table(columns, results, lambda r: {"data-name": r.get("name", "")}, cls="data sortable", id="runs")


# -- comparison pages --------------------------------------------------------------------------------------------------
def _labels(results):
    """A short unique label per run: its name, with PHASE_EPOCH where names repeat."""
    names = [r.get("name") or os.path.basename(os.path.dirname(r["folder"])) for r in results]
    labels = [n if names.count(n) == 1 else f"{n}/{os.path.basename(r['folder'])}" for n, r in zip(names, results)]
    seen = {}
    for i, lbl in enumerate(labels):
        seen[lbl] = seen.get(lbl, 0) + 1
        if labels.count(lbl) > 1:
            labels[i] = f"{lbl} #{seen[lbl]}"
    return labels


def _slug(text):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:60] or "run"


def write_comparison(folders, out=None):
    """The comparison page of two or more result folders; returns its path. ``out``: the folder to write to
    (default: RESULTS/_compare/LABEL1_vs_LABEL2 beside the first folder's run)."""
    if len(folders) < 2:
        raise UserError("give two or more result folders to compare (results/NAME/PHASE_EPOCH)")
    if len({os.path.realpath(f) for f in folders}) < len(folders):
        raise UserError("a result folder is given twice: give two or more different ones")
    results = []
    for folder in folders:
        if not os.path.isdir(folder):
            raise UserError(f"{folder} is not a folder: give result folders (results/NAME/PHASE_EPOCH)")
        r = read_result(folder)
        if r is None or not os.path.isdir(os.path.join(folder, "images")):
            raise UserError(f"{folder} is not a result folder of test.py (no images/ and metrics.json or "
                            f"summary.json): give results/NAME/PHASE_EPOCH")
        results.append(r)
    labels = _labels(results)
    root = os.path.dirname(os.path.dirname(results[0]["folder"]))
    out = os.path.abspath(out or os.path.join(root, COMPARE_DIR, "_vs_".join(_slug(lbl) for lbl in labels)))
    images = [images_of(r["folder"]) for r in results]
    outputs = {}
    for r, im in zip(results, images):
        for o, io in _output_labels(r, im).items():
            if o in im:
                outputs.setdefault(o, io)
    shared = [o for o in outputs if all(o in im for im in images)]
    if not shared:
        raise UserError("the result folders share no output (images/fake_B, ...): "
                        + "; ".join(f"{lbl}: {', '.join(im) or 'none'}" for lbl, im in zip(labels, images)))
    date = time.strftime("%Y-%m-%d %H:%M:%S")
    doc = document("Comparison: " + " vs ".join(labels), thumb=COMPARE_THUMB)
    with doc:
        page_header("Comparison", " vs ".join(labels), chips=[("runs", len(results)), ("made", date)],
                    links=[("← all runs", url(os.path.relpath(os.path.join(root, "index.html"), out)))])
        with tags.main():
            with tags.section():
                tags.h2("Runs", tags.small("mean metrics; in brackets: the difference from the first run"))
                _compare_runs_table(results, labels, out, shared)
            for o in shared:
                _compare_output(o, outputs[o], results, labels, images, out)
        viewer()
    path = write_page(doc, out)
    with open(os.path.join(out, "compare.json"), "w") as f:
        json.dump({"labels": labels, "folders": [r["folder"] for r in results], "date": date}, f, indent=1)
    if os.path.isdir(root) and find_results(root):
        write_runs_index(root)
    return path


def _compare_runs_table(results, labels, out, shared):
    cols = _metric_columns(results, shared)
    first_mean = results[0]["results"]

    def run_td(row):
        r, lbl = row[1], row[2]
        with tags.td(cls="name") as td:
            tags.a(lbl, href=url(os.path.relpath(os.path.join(r["folder"], r.get("page") or "index.html"), out)))
        return td

    def metric_cell(o, m, first):
        def cell(row):
            k, r = row[0], row[1]
            v, v0 = r["results"].value(m, o), first_mean.value(m, o)
            with metric_td(m, v, cls="first" if first else "") as td:
                if k and v is not None and v0 is not None:
                    tags.span(f" ({fmt_delta(m, v - v0)})", cls=f"muted {delta_class(m, v - v0)}".strip())
            return td
        return cell

    columns = [Column("run", run_td),
               Column("tested", lambda row: tags.td(tags.span(f"{row[1].get('model') or '?'} · "
                                                              f"{row[1].get('phase', '')} · epoch "
                                                              f"{row[1].get('epoch', '')}"),
                                                    title=row[1].get("date", "")))]
    columns += [Column(m.name, metric_cell(o, m, first), o, cls="num" + (" first" if first else ""))
                for (o, m), first in zip(cols, _firsts(cols))]
    with tags.div(cls="scroll"):
        data_table(columns, [(k, r, lbl) for k, (r, lbl) in enumerate(zip(results, labels))],
                   lambda row: {"data-name": row[2]}, id="runs")


def _compare_output(o, io, results, labels, images, out):
    """One output's section: inputs matched by name across the runs, side by side, with metric differences."""
    src_label, tgt_label = io
    names = [set(im[o]) for im in images]
    common = set.intersection(*names)
    order = [n for n in images[0][o] if n in common]
    table_id = "compare-" + _slug(o)
    rel = lambda k, path: os.path.relpath(os.path.join(results[k]["folder"], path), out)  # noqa: E731

    def first_with(label, name):
        for k, im in enumerate(images):
            if label and name in im.get(label, {}):
                return rel(k, im[label][name])
        return None

    has_in = any(first_with(src_label, n) for n in order[:50])
    has_tgt = any(first_with(tgt_label, n) for n in order[:50])
    metrics = [m for m in SHOWN if any(row.find(m, o) for r in results for row in r["rows"].values())]
    panels = ([{"label": "input", "caption": "input", "note": src_label}] if has_in else []) + \
        [{"label": f"run{k}", "caption": lbl, "note": o} for k, lbl in enumerate(labels)] + \
        ([{"label": "target", "caption": "target", "note": tgt_label}] if has_tgt else [])
    size = image_size(os.path.join(results[0]["folder"], images[0][o][order[0]])) if order else None

    def rows_of(name):
        return [r["rows"].get(name) or Results() for r in results]

    def panel_td(p):
        def cell(row):
            name = row[1]
            if p["label"] == "input":
                src = first_with(src_label, name)
            elif p["label"] == "target":
                src = first_with(tgt_label, name)
            else:
                k = int(p["label"][3:])
                src = rel(k, images[k][o][name])
            return tags.td() if src is None else thumb_td(src, p["label"], size)
        return cell

    def value_td(m, k):
        return lambda row: metric_td(m, rows_of(row[1])[k].value(m, o), cls="first" if k == 0 else "")

    def delta_of(m, k):
        def cell(row):
            vals = [res.value(m, o) for res in rows_of(row[1])]
            return delta_td(m, None if vals[k] is None or vals[0] is None else vals[k] - vals[0])
        return cell

    columns = [Column("#", lambda row: tags.td(str(row[0] + 1), cls="idx num", data_v=str(row[0])), sort="number"),
               Column("name", lambda row: tags.td(row[1], cls="name"), sort="text")]
    columns += [Column(p["caption"], panel_td(p)) for p in panels]
    for m in metrics:
        columns += [Column(lbl, value_td(m, k), m.name, sort=m, cls="first" if k == 0 else "",
                           tip=f"{m.name} of {lbl}: click to sort worst first") for k, lbl in enumerate(labels)]
        columns += [Column(f"Δ {lbl}", delta_of(m, k), m.name, sort=m,
                           tip=f"{m.name} of {lbl} minus {labels[0]}: click to sort, biggest loss first")
                    for k, lbl in enumerate(labels[1:], 1)]

    def attrs(row):
        name = row[1]
        summary = " | ".join(f"{lbl}: {row_summary(res, [o])}" for lbl, res in zip(labels, rows_of(name))
                             if row_summary(res, [o]))
        return {"data-name": name, "data-summary": summary}
    with tags.section():
        tags.h2(f"{o} ({len(order)} matched)", tags.small(
            "click an image to see all runs large at one zoom (← → step); Δ: run minus the first run; click a "
            "column to sort, worst first"))
        with tags.div(cls="tools"):
            name_filter(table_id, "filter by name")
            thumb_slider(COMPARE_THUMB)
        with tags.div(cls="scroll"):
            data_table(columns, list(enumerate(order)), attrs, cls="data sortable viewable compare", id=table_id,
                       data_groups=json.dumps([{"title": o, "panels": panels}]))
        only = [(lbl, sorted(n - common)) for lbl, n in zip(labels, names) if n - common]
        if only:
            with tags.details(cls="unmatched", open=True):
                tags.summary(f"Not in every run ({sum(len(x) for _, x in only)})")
                for lbl, missing in only:
                    tags.p(tags.b(lbl), f": {len(missing)} only here")
                    with tags.ul(cls="names"):
                        for n in missing[:500]:
                            tags.li(n)
                        if len(missing) > 500:
                            tags.li(f"… and {len(missing) - 500} more")
