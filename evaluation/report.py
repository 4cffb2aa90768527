"""test.py's results page, results/NAME/PHASE_EPOCH/index.html, and summary.json beside it (what the runs index
results/index.html lists, so it can be rebuilt without running anything again: util.compare).

The page: the run at a glance (model, checkpoint epoch, direction, architecture), a summary table (a row per output,
per metric the output, the copy-the-input baseline and the difference), the per-item table (lazily loaded
thumbnails; sortable by any metric, worst first on the first click; a click on an image opens it large beside its
input and target at one zoom, arrow keys step through the items), for volumes a slice browser
(evaluation.slices), and the options that matter for this kind of run. File names and labels go through dominate's
escaping, links are URL-quoted and JSON in scripts is escaped (util.html), so a crafted file name shows as text."""
import json
import os
import time

from dominate import tags
from dominate.util import raw

from evaluation import slices
from util.html import (HIGHER_IS_BETTER, METRICS, delta_td, document, image_size, metric_td, outputs_of,
                       page_header, row_summary, script_json, sort_th, summary_table, thumb_slider, thumb_td, url,
                       viewer, write_page)

SUMMARY = "summary.json"


def describe_run(opt, model):
    """What the page says about the run beyond ``opt``: the checkpoint's architecture, 2D or 3D, the translations
    ({output label: {"source", "target"}}) and, for volumes, the intensity windows and the patch."""
    run = {"architecture": model.spec.to_architecture(), "dims": model.dims, "checkpoint": model.loaded_from,
           "outputs": {label: {"source": t.source, "target": t.target} for label, t in model.translators().items()}}
    if getattr(model, "volume", None):
        run["intensity"] = {d: list(w) for d, w in (model.volume.intensity or {}).items()}
        run["patch_size"] = getattr(opt, "patch_size", None) or model.volume.patch_size
    return run


def _outputs(run, items, mean):
    """{output label: (source domain, target domain)} of the translations this run has."""
    outs = {k: (v["source"], v["target"]) for k, v in (run.get("outputs") or {}).items()}
    for o in outputs_of(mean):  # metrics of an output the run description does not name
        if o not in outs and o.startswith("fake_"):
            d = o[len("fake_"):]
            outs[o] = ({"A": "B", "B": "A"}.get(d, "?"), d)
    return outs


def groups(outputs):
    """The viewer's and slice browser's panel groups: each translation's input, output and target."""
    out = []
    for label, (src, dst) in outputs.items():
        out.append({"title": f"{src} → {dst}", "panels": [
            {"label": "real_" + src, "caption": "input", "note": "real_" + src},
            {"label": label, "caption": "output", "note": label},
            {"label": "real_" + dst, "caption": "target", "note": "real_" + dst}]})
    return out


def _arch_text(arch):
    if not arch:
        return ""
    parts = [arch.get("netG") or "?"]
    if arch.get("ngf"):
        parts.append(f"ngf {arch['ngf']}")
    if arch.get("n_blocks") is not None:
        parts.append(f"{arch['n_blocks']} blocks")
    if arch.get("coupling"):
        parts.append(arch["coupling"])
    return " · ".join(parts)


def options_that_matter(opt, run, n_items):
    """(name, value) of the options that decide what this kind of run computed (all of them: test_opt.txt)."""
    get = lambda k, d=None: getattr(opt, k, d)  # noqa: E731
    arch = run.get("architecture") or {}
    model = get("model", "")
    if arch.get("model") and arch["model"] != model:
        model = f"{model} (a {arch['model']} checkpoint)"
    checkpoint = run.get("checkpoint") or f"{os.path.join(get('checkpoints_dir', ''), get('name', ''))} · " \
                                          f"epoch {get('epoch', '?')}"
    out = [("model", model), ("checkpoint", checkpoint),
           ("direction", get("direction")), ("phase", get("phase")), ("dataroot", get("dataroot")),
           ("items", f"{n_items} (--num_test {get('num_test')})" if get("num_test") is not None else n_items),
           ("eval mode", "yes (--eval)" if get("eval") else "no (training-mode normalization)")]
    if arch:
        out.append(("generator", ", ".join(f"{k} {v}" for k, v in arch.items() if v is not None and k in (
            "netG", "ngf", "n_blocks", "n_downsampling", "coupling", "iunet_architecture", "norm"))))
        if arch.get("input_nc") and arch.get("output_nc"):
            out.append(("channels", f"{arch['input_nc']} → {arch['output_nc']}"))
        flags = [k for k in ("no_dropout", "no_output_tanh", "use_naive") if arch.get(k)]
        if flags:
            out.append(("flags", " ".join("--" + k for k in flags)))
    if run.get("dims", 2) == 3:
        if run.get("patch_size"):
            out.append(("patch", "×".join(str(p) for p in run["patch_size"])))
        out.append(("overlap", get("overlap")))
        for d, (lo, hi) in sorted((run.get("intensity") or {}).items()):
            out.append((f"intensity {d}", f"{lo:g} … {hi:g} (original units mapped to −1 … 1)"))
    else:
        out += [("preprocess", get("preprocess")), ("load_size", get("load_size")), ("crop_size", get("crop_size"))]
        if get("aspect_ratio", 1.0) != 1.0:
            out.append(("aspect_ratio", get("aspect_ratio")))
    gpus = get("gpu_ids")
    out.append(("device", "GPU " + ",".join(map(str, gpus)) if gpus else "CPU"))
    return [(k, v) for k, v in out if v not in (None, "")]


def write_summary(out_dir, opt, run, items, mean):
    """summary.json: one run as the runs index lists it."""
    summary = {"format": 1, "name": getattr(opt, "name", ""), "phase": getattr(opt, "phase", ""),
               "epoch": str(getattr(opt, "epoch", "")), "model": getattr(opt, "model", ""),
               "direction": getattr(opt, "direction", ""), "dims": run.get("dims", 2),
               "date": time.strftime("%Y-%m-%d %H:%M:%S"), "items": len(items),
               "outputs": {k: {"source": s, "target": t} for k, (s, t) in _outputs(run, items, mean).items()},
               "mean": mean, "architecture": run.get("architecture"), "page": "index.html"}
    with open(os.path.join(out_dir, SUMMARY), "w") as f:
        json.dump(summary, f, indent=1)
    return summary


def _volume_file(out_dir, label, name):
    for ext in (".nii.gz", ".npy"):
        rel = os.path.join("volumes", label, name + ext)
        if os.path.exists(os.path.join(out_dir, rel)):
            return rel
    return None


def write_results_page(out_dir, opt, items, rows, mean, run=None):
    """results/NAME/PHASE_EPOCH/index.html and summary.json. ``items``: [{"name", "images": {label: relative
    path}, and for volumes "volumes": {label: evaluation.slices.write(...)}}]; ``rows``: per-item metrics;
    ``mean``: their means; ``run``: describe_run(opt, model). Returns the page's path."""
    run = run or {}
    os.makedirs(out_dir, exist_ok=True)
    outputs = _outputs(run, items, mean)
    titles = {o: f"{s} → {t}" for o, (s, t) in outputs.items()}
    summary = write_summary(out_dir, opt, run, items, mean)
    dims = run.get("dims", 3 if any(i.get("volumes") for i in items) else 2)
    by_name = {r["name"]: r for r in rows}
    metric_outs = [o for o in (list(outputs) + outputs_of(rows[0] if rows else {})) if any(
        f"{m}_{o}" in r for r in rows for m in METRICS)]
    metric_outs = list(dict.fromkeys(metric_outs))
    labels = list(dict.fromkeys(lbl for item in items for lbl in item["images"]))
    cases = [item for item in items if item.get("volumes")]
    if cases:  # the slice browser shows inputs and targets: the table keeps the outputs' mid-slices
        labels = [lbl for lbl in labels if not lbl.startswith("real")] or labels
    arch = run.get("architecture") or {}

    doc = document(f"Results: {getattr(opt, 'name', '')}")
    with doc:
        page_header(getattr(opt, "name", ""), f"{getattr(opt, 'phase', '')} · epoch {getattr(opt, 'epoch', '')}",
                    chips=[c for c in [("model", getattr(opt, "model", "")),
                                       ("direction", getattr(opt, "direction", "")),
                                       ("generator", _arch_text(arch)), ("", f"{dims}D"),
                                       ("volumes" if dims == 3 else "images", len(items)),
                                       ("tested", summary["date"])] if c[1]],
                    links=[("← all runs", "../../index.html"), ("metrics.csv", "metrics.csv"),
                           ("metrics.json", "metrics.json"), ("all options (test_opt.txt)", "test_opt.txt")])
        with tags.main():
            with tags.section():
                tags.h2("Summary", tags.small("mean over the items; Δ: output minus copy of the input"))
                if summary_table(mean, metric_outs, titles, table_id="metrics-mean") is None:
                    tags.p("No targets in this test set, so no metrics: the images below are the whole result.",
                           cls="empty")
            if cases:
                _slice_browser(cases, outputs)
            with tags.section():
                what = "volumes" if dims == 3 else "images"
                hint = ("click a row to open it in the slice browser" if cases
                        else "click an image to enlarge it beside its input and target; ← → step")
                tags.h2(f"{what.capitalize()} ({len(items)})", tags.small(hint + "; click a column to sort, worst "
                                                                           "first"))
                with tags.div(cls="tools"):
                    tags.input_(type="search", placeholder=f"filter {what} by name", cls="filter",
                                data_table="items", data_count="items-count", aria_label="filter by name")
                    tags.span(id="items-count")
                    thumb_slider()
                _items_table(out_dir, items, by_name, labels, metric_outs, groups(outputs), cases)
            with tags.section(id="options"):
                tags.h2("Options that matter for this run", tags.small("all of them: test_opt.txt"))
                with tags.dl(cls="opts"):
                    for k, v in options_that_matter(opt, run, len(items)):
                        tags.dt(k)
                        tags.dd(str(v))
        if not cases:
            viewer()
    scripts = ()
    if cases:
        with doc.head:
            tags.style(raw(slices.STYLE))
        scripts = (slices.SCRIPT,)
    return write_page(doc, out_dir, scripts=scripts)


def _slice_browser(cases, outputs):
    data = []
    for item in cases:
        vols = item["volumes"]
        gs = []
        for g in groups(outputs):
            panels = [p for p in g["panels"] if p["label"] in vols]
            if any(p["caption"] == "output" for p in panels):
                shape = vols[panels[0]["label"]]["shape"]
                gs.append({"title": g["title"], "panels": [p for p in panels if vols[p["label"]]["shape"] == shape]})
        if not gs:
            gs = [{"title": "volumes", "panels": [{"label": lbl, "caption": lbl} for lbl in vols]}]
        data.append({"name": item["name"], "groups": gs, "volumes": vols})
    with tags.section(id="slices"):
        tags.h2("Slice browser", tags.small("every slice of every volume; values in the volumes' own units, to half "
                                            "a step of 1/255 of the intensity window"))
        with tags.div(cls="sbar"):
            with tags.label():
                tags.span("volume ")
                tags.select(id="s-case", aria_label="volume")
            tags.button("◀", id="s-prev", title="previous volume (←)")
            tags.button("▶", id="s-next", title="next volume (→)")
            with tags.label():
                tags.span("translation ")
                tags.select(id="s-group", aria_label="translation")
            with tags.label():
                tags.span("views ")
                with tags.select(id="s-view", aria_label="views"):
                    tags.option("all three", value="")
                    for i, name in enumerate(("axial", "coronal", "sagittal")):
                        tags.option(f"{name}, large", value=str(i))
            tags.span(id="s-status")
        tags.div(id="s-grid")
        tags.div(id="s-readout", aria_live="polite")
        tags.p("Wheel, slider or ↑ ↓ (pointer over the browser): slices of that view · click: move the crosshair and "
               "the other two views there · ← →: volumes", cls="muted")
        tags.script(raw(f"window.REVGAN_SLICES = {script_json({'cases': data})};"))


def _items_table(out_dir, items, by_name, labels, outs, viewer_groups, cases):
    case_index = {item["name"]: i for i, item in enumerate(cases)}
    sizes = {}
    for item in items[:1]:  # one image per label gives the thumbnails' shape; the rest share it
        for lbl, src in item["images"].items():
            sizes[lbl] = image_size(os.path.join(out_dir, src))
    metric_cols = [(o, m) for o in outs for m in list(METRICS) + ["ΔPSNR"]]
    with tags.div(cls="scroll"):
        table = tags.table(cls="data sortable" + ("" if cases else " viewable"), id="items",
                           data_groups=json.dumps(viewer_groups))
        with table:
            with tags.thead():
                if outs:
                    with tags.tr():
                        tags.th("", colspan=2 + len(labels))
                        for o in outs:
                            tags.th(o, colspan=len(METRICS) + 1, cls="group")
                with tags.tr():
                    sort_th("#", 0, tip="click: the test order")
                    sort_th("name", 1, text=True)
                    for lbl in labels:
                        tags.th(lbl, cls="thumbhead")
                    col = 2 + len(labels)
                    for o, m in metric_cols:
                        if m == "ΔPSNR":
                            sort_th("Δ PSNR", col, metric="PSNR", tip="PSNR gain over the copy of the input; "
                                                                    "click: smallest gain first")
                        else:
                            sort_th(m, col, metric=m, cls="first" if m == METRICS[0] else "",
                                    tip=f"{o}: click to sort worst first "
                                        f"({'higher' if HIGHER_IS_BETTER[m] else 'lower'} is better), again to reverse")
                        col += 1
            with tags.tbody():
                for k, item in enumerate(items):
                    name, row = item["name"], by_name.get(item["name"], {})
                    tr = tags.tr(data_name=name, data_summary=row_summary(row, outs))
                    if name in case_index:
                        tr["data-case"] = str(case_index[name])
                    with tr:
                        tags.td(str(k + 1), cls="idx num", data_v=str(k))
                        with tags.td(cls="name"):
                            tags.span(name)
                            if cases:  # the volumes in original units, to open in another viewer
                                with tags.div(cls="files"):
                                    for lbl in item.get("volumes", {}):
                                        rel = _volume_file(out_dir, lbl, name)
                                        if rel and not lbl.startswith("real_"):
                                            tags.a(lbl, href=url(rel), cls="ext",
                                                   title="the volume in original units (NIfTI or .npy)")
                        for lbl in labels:
                            src = item["images"].get(lbl)
                            if src is None:
                                tags.td()
                            else:
                                thumb_td(src, lbl, sizes.get(lbl))
                        for o, m in metric_cols:
                            if m == "ΔPSNR":
                                v, b = row.get(f"PSNR_{o}"), row.get(f"baseline_PSNR_{o}")
                                delta_td("PSNR", None if v is None or b is None else v - b)
                            else:
                                metric_td(m, row.get(f"{m}_{o}"), cls="first" if m == METRICS[0] else "")
    return table
