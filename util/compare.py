"""The runs index, results/index.html, and comparison pages of result folders. Both only read result folders
(summary.json, metrics.json, images/LABEL/NAME.png), so they need no model, data or GPU:

    python -m util.compare results/maps_a/test_latest results/maps_b/test_latest [--out DIR]
    python -m util.compare --index results/

The comparison page shows each input with every run's output side by side (and the target), the per-image metrics
of every run and their differences from the first run, sortable; inputs are matched by name, and the ones that
are not in every run are listed. test.py rewrites the runs index after each run; ``--index`` rebuilds it.
"""
import argparse
import json
import os
import re
import shlex
import sys
import time

from dominate import tags

from util.errors import UserError
from util.html import (METRICS, delta_class, delta_td, document, fmt, fmt_delta, image_size, metric_td, number,
                       outputs_of, page_header, row_summary, sort_th, thumb_slider, thumb_td, url, viewer, write_page)

SUMMARY = "summary.json"
COMPARE_DIR = "_compare"
COMPARE_THUMB = 80  # a row holds the input, every run's output and the target


# -- reading result folders --------------------------------------------------------------------------------------------
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
    names give for folders of earlier versions; None for a folder that is not a result. With ``rows``, "rows"
    holds the per-item metrics ({name: row}) of metrics.json."""
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
                   "date": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)), "outputs": {},
                   "page": "index.html"}
    summary = dict(summary)
    summary["folder"] = folder
    summary.setdefault("mean", metrics.get("mean", {}))
    if not isinstance(summary["mean"], dict):
        summary["mean"] = {}
    for key in ("name", "phase", "epoch", "model", "direction", "date"):  # shown as text
        summary[key] = str(summary.get(key) or "")
    items = metrics.get("items", [])
    summary["rows"] = {r["name"]: r for r in (items if isinstance(items, list) else [])
                       if isinstance(r, dict) and "name" in r}
    return summary


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
            if os.path.isdir(os.path.join(run_dir, sub)):
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
    for label in list(images) + outputs_of(result.get("mean", {})):
        if label in outs or not label.startswith("fake"):
            continue
        if label == "fake":
            outs[label] = ("real", None)
        else:
            d = label.rpartition("_")[2]
            outs[label] = ("real_" + {"A": "B", "B": "A"}.get(d, d), "real_" + d)
    return outs


def _main_metrics_columns(results):
    outs = list(dict.fromkeys(o for r in results for o in outputs_of(r.get("mean", {}))))
    return [(o, m) for o in outs for m in METRICS if any(f"{m}_{o}" in r.get("mean", {}) for r in results)]


# -- the runs index ----------------------------------------------------------------------------------------------------
INDEX_SCRIPT = r"""
(() => {
const boxes = Array.from(document.querySelectorAll("input.pick")), cmd = document.getElementById("compare-cmd");
const update = () => {
  const picked = boxes.filter(b => b.checked).map(b => b.dataset.path);
  cmd.textContent = picked.length >= 2 ? "python -m util.compare " + picked.join(" ")
                                       : "tick two or more runs to get the command that compares them";
  cmd.classList.toggle("ready", picked.length >= 2);
};
boxes.forEach(b => b.addEventListener("change", update));
update();
})();
"""


def write_runs_index(results_dir):
    """results_dir/index.html: every run (name, model, epoch, date, main metrics, link), newest first, and the
    comparisons made with util.compare. Rebuilt from the folders' summary.json files."""
    results = find_results(results_dir)
    cols = _main_metrics_columns(results)
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
                    tags.code(id="compare-cmd", cls="cmd")
            if compares:
                with tags.section():
                    tags.h2(f"Comparisons ({len(compares)})")
                    with tags.ul():
                        for sub, info in compares:
                            with tags.li():
                                tags.a(" vs ".join(info.get("labels", [])) or sub,
                                       href=url(os.path.join(COMPARE_DIR, sub, "index.html")))
                                tags.span("  " + info.get("date", ""), cls="muted")
    return write_page(doc, results_dir, scripts=(INDEX_SCRIPT,) if results else ())


def _runs_table(results_dir, results, cols):
    with tags.div(cls="scroll"):
        with tags.table(cls="data sortable", id="runs"):
            outs = list(dict.fromkeys(o for o, _ in cols))
            with tags.thead():
                if outs:
                    with tags.tr():
                        tags.th("", colspan=6)
                        for o in outs:
                            tags.th(o, colspan=sum(1 for c in cols if c[0] == o), cls="group")
                with tags.tr():
                    tags.th("", title="pick runs to compare")
                    sort_th("run", 1, text=True)
                    sort_th("model", 2, text=True)
                    sort_th("direction", 3, text=True)
                    sort_th("items", 4)
                    sort_th("tested on", 5, text=True)
                    for k, (o, m) in enumerate(cols):
                        sort_th(m, 6 + k, metric=m, cls="first" if k == 0 or cols[k - 1][0] != o else "")
            with tags.tbody():
                for r in results:
                    rel = os.path.relpath(r["folder"], os.path.abspath(results_dir))
                    with tags.tr(data_name=r.get("name", "")):
                        with tags.td():
                            tags.input_(type="checkbox", cls="pick", aria_label="compare",
                                        data_path=shlex.quote(os.path.join(results_dir, rel)))
                        with tags.td(cls="name", data_v=r.get("name", "")):
                            tags.a(r.get("name", ""), href=url(os.path.join(rel, r.get("page") or "index.html")))
                            tags.div(f"{r.get('phase', '')} · epoch {r.get('epoch', '')}", cls="muted")
                        tags.td(" · ".join(x for x in (r.get("model"), f"{r['dims']}D" if r.get("dims") else "")
                                           if x) or "–")
                        tags.td(r.get("direction") or "–")
                        tags.td(str(r.get("items", len(r.get("rows", {})) or "")), cls="num",
                                data_v=number(r.get("items")))
                        tags.td(r.get("date", ""))
                        mean = r.get("mean", {})
                        for k, (o, m) in enumerate(cols):
                            v, b = mean.get(f"{m}_{o}"), mean.get(f"baseline_{m}_{o}")
                            with metric_td(m, v, cls="first" if k == 0 or cols[k - 1][0] != o else "") as td:
                                if v is not None and b is not None:
                                    d = v - b
                                    td["title"] = f"copy of input: {fmt(m, b)} (Δ {fmt_delta(m, d)})"
                                    if m == "PSNR":  # the gain over copying the input, at a glance
                                        tags.span(f" ({fmt_delta(m, d)})", cls=f"muted {delta_class(m, d)}".strip())


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
    cols = [(o, m) for o in shared for m in METRICS if any(f"{m}_{o}" in r.get("mean", {}) for r in results)]
    with tags.div(cls="scroll"):
        with tags.table(cls="data", id="runs"):
            with tags.thead():
                with tags.tr():
                    tags.th("", colspan=2)
                    for o in shared:
                        n = sum(1 for c in cols if c[0] == o)
                        if n:
                            tags.th(o, colspan=n, cls="group")
                with tags.tr():
                    for title in ("run", "tested"):
                        tags.th(title)
                    for k, (o, m) in enumerate(cols):
                        tags.th(m, cls="num" + (" first" if k == 0 or cols[k - 1][0] != o else ""))
            with tags.tbody():
                for k, (r, lbl) in enumerate(zip(results, labels)):
                    with tags.tr(data_name=lbl):
                        with tags.td(cls="name"):
                            tags.a(lbl, href=url(os.path.relpath(os.path.join(r["folder"], r.get("page") or
                                                                              "index.html"), out)))
                        with tags.td(title=r.get("date", "")):
                            tags.span(f"{r.get('model') or '?'} · {r.get('phase', '')} · epoch {r.get('epoch', '')}")
                        for j, (o, m) in enumerate(cols):
                            v = r.get("mean", {}).get(f"{m}_{o}")
                            with metric_td(m, v, cls="first" if j == 0 or cols[j - 1][0] != o else ""):
                                first = results[0].get("mean", {}).get(f"{m}_{o}")
                                if k and v is not None and first is not None:
                                    d = v - first
                                    tags.span(f" ({fmt_delta(m, d)})", cls=f"muted {delta_class(m, d)}".strip())


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
    metrics = [m for m in METRICS if any(f"{m}_{o}" in row for r in results for row in r["rows"].values())]
    panels = ([{"label": "input", "caption": "input", "note": src_label}] if has_in else []) + \
        [{"label": f"run{k}", "caption": lbl, "note": o} for k, lbl in enumerate(labels)] + \
        ([{"label": "target", "caption": "target", "note": tgt_label}] if has_tgt else [])
    size = image_size(os.path.join(results[0]["folder"], images[0][o][order[0]])) if order else None
    with tags.section():
        tags.h2(f"{o} ({len(order)} matched)", tags.small(
            "click an image to see all runs large at one zoom (← → step); Δ: run minus the first run; click a "
            "column to sort, worst first"))
        with tags.div(cls="tools"):
            tags.input_(type="search", placeholder="filter by name", cls="filter", data_table=table_id,
                        data_count=table_id + "-count", aria_label="filter by name")
            tags.span(id=table_id + "-count")
            thumb_slider(COMPARE_THUMB)
        with tags.div(cls="scroll"):
            with tags.table(cls="data sortable viewable compare", id=table_id,
                            data_groups=json.dumps([{"title": o, "panels": panels}])):
                n_img = len(panels)
                with tags.thead():
                    with tags.tr():
                        tags.th("", colspan=2 + n_img)
                        for m in metrics:
                            tags.th(m, colspan=2 * len(results) - 1, cls="group")
                    with tags.tr():
                        sort_th("#", 0)
                        sort_th("name", 1, text=True)
                        for p in panels:
                            tags.th(p["caption"])
                        col = 2 + n_img
                        for m in metrics:
                            for k, lbl in enumerate(labels):
                                sort_th(lbl, col, metric=m, cls="first" if k == 0 else "",
                                        tip=f"{m} of {lbl}: click to sort worst first")
                                col += 1
                            for k, lbl in enumerate(labels[1:], 1):
                                sort_th(f"Δ {lbl}", col, metric=m, tip=f"{m} of {lbl} minus {labels[0]}: click "
                                                                       f"to sort, biggest loss first")
                                col += 1
                with tags.tbody():
                    for i, name in enumerate(order):
                        rows = [r["rows"].get(name, {}) for r in results]
                        summary = " | ".join(f"{lbl}: {row_summary(row, [o])}" for lbl, row in zip(labels, rows)
                                             if row_summary(row, [o]))
                        with tags.tr(data_name=name, data_summary=summary):
                            tags.td(str(i + 1), cls="idx num", data_v=str(i))
                            tags.td(name, cls="name")
                            for p in panels:
                                if p["label"] == "input":
                                    src = first_with(src_label, name)
                                elif p["label"] == "target":
                                    src = first_with(tgt_label, name)
                                else:
                                    k = int(p["label"][3:])
                                    src = rel(k, images[k][o][name])
                                if src is None:
                                    tags.td()
                                else:
                                    thumb_td(src, p["label"], size)
                            for m in metrics:
                                vals = [row.get(f"{m}_{o}") for row in rows]
                                for k, v in enumerate(vals):
                                    metric_td(m, v, cls="first" if k == 0 else "")
                                for v in vals[1:]:
                                    delta_td(m, None if v is None or vals[0] is None else v - vals[0])
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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m util.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", help="result folders, results/NAME/PHASE_EPOCH (two or more)")
    parser.add_argument("--out", help="where to write the comparison page (default: RESULTS/_compare/A_vs_B)")
    parser.add_argument("--index", metavar="RESULTS_DIR", help="rebuild RESULTS_DIR/index.html, the runs index")
    args = parser.parse_args(argv)
    try:
        if args.index:
            print(f"runs index: {write_runs_index(args.index)}")
        if args.folders or not args.index:
            print(f"comparison: {write_comparison(args.folders, args.out)}")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot read or write {e.filename or 'a file'}: {e.strerror or e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
