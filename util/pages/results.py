"""test.py's results page, results/NAME/PHASE_EPOCH/index.html, and summary.json beside it (util.pages.runs: what the
runs index results/index.html lists, so it can be rebuilt without running anything again).

The page: the run at a glance (model, checkpoint epoch, direction, architecture; links to the runs index and to the
run's training page), a summary table (a row per output, and for volumes per output's foreground; per metric the
output, its baseline and the difference) with what was measured (data range, units, region, baseline), the
per-item table (lazily loaded thumbnails; sortable by any metric, worst first on the first click; a click on an
image opens it large beside its input, target and error map at one zoom, arrow keys step through the items), for
volumes a slice browser (util.pages.slices), and the options that matter for this kind of run."""
import json
import os

from dominate import tags

from util.pages import errors, slices, training
from util.pages.html import (document, image_size, json_data, name_filter, page_header, thumb_slider, url, viewer,
                             write_page)
from util.pages.runs import write_summary
from util.pages.table import Column, data_table, delta_td, metric_td, row_summary, summary_table, thumb_td
from util.results import PSNR, SHOWN, SSIM, TRANSLATIONS, Results


def outputs_of_run(run, mean):
    """{output label: (source domain, target domain)} of the translations this run has: its description's, and any
    other output its results name."""
    outs = {k: (v["source"], v["target"]) for k, v in (run.get("outputs") or {}).items()}
    for o in mean.outputs:  # results of an output the run description does not name
        if o not in outs and o in TRANSLATIONS:
            outs[o] = TRANSLATIONS[o]
    return outs


def groups(outputs, error=False):
    """The viewer's and slice browser's panel groups: each translation's input, output and target (and with
    ``error``, the error map |output - target| where the page has them)."""
    out = []
    for label, (src, dst) in outputs.items():
        panels = [{"label": "real_" + src, "caption": "input", "note": "real_" + src},
                  {"label": label, "caption": "output", "note": label},
                  {"label": "real_" + dst, "caption": "target", "note": "real_" + dst}]
        if error:
            panels.append({"label": "error_" + label, "caption": "|output − target|", "note": "error map",
                           "kind": "error"})
        out.append({"title": f"{src} → {dst}", "panels": panels})
    return out


def measured(mean, run, dims, fraction):
    """What the summary's numbers are, in sentences: data range and units, the region, the baselines, the error
    maps' scale."""
    lines = []
    ranges = {r.output: r.data_range for r in mean.translations if r.data_range}
    windows = run.get("intensity") or {}
    outputs = outputs_of_run(run, mean)
    if dims == 3:
        for o, rng in ranges.items():
            window = windows.get(outputs.get(o, ("", ""))[1])
            where = f" ({window[0]:g} … {window[1]:g})" if window else ""
            lines.append(f"{o}: in the volumes' own units (MAE too); data range {rng:g}, the target's intensity "
                         f"window{where}: PSNR's peak and SSIM's range.")
        lines.append("Every voxel: the whole volume, the air around the subject included (which flatters a blurry "
                     "output). Foreground: the voxels whose target lies above the lowest tenth of its window (the "
                     "rule --foreground_sampling uses for training patches); SSIM there is the mean of the SSIM map "
                     "over them.")
    elif ranges:
        lines.append("Images on 0 … 1 (data range 1: PSNR's peak and SSIM's range; an MAE of 0.01 is 2.55 grey "
                     "levels of 255), over every pixel and channel of the images saved in images/.")
    about = run.get("baselines") or {}
    kinds = {}
    for r in mean.translations:
        if r.metric is PSNR:
            kinds[r.output] = (about.get(r.output) or {}).get("about") or r.baseline_name or "none"
    if kinds:
        same = len(set(kinds.values())) == 1
        text = next(iter(kinds.values())) if same else "; ".join(f"{o}: {k}" for o, k in kinds.items())
        caveat = (" The copy of the input is a baseline only where input and target are the same kind of image; "
                  "across kinds (photos → maps) a look-up table of the input's colour fitted on the training pairs, "
                  "or their mean target colour everywhere, scores better (test.py --baseline auto takes the best "
                  "where paired training data shows it, --baseline lut or mean always), --baseline none compares "
                  "with nothing."
                  if any(k.startswith("copy") and "look-up table" not in k for k in kinds.values()) else "")
        lines.append(f"Baseline: {text}.{caveat}")
    if fraction:
        lines.append("Error maps |output − target| (in the viewer" + (" and the slice browser" if dims == 3 else "")
                     + f"): one scale for the whole page, 0 … {fraction:g} of the data range; brighter is worse, "
                       f"larger errors take the top colour.")
    return lines


def training_link(run, out_dir):
    """The run's training page relative to ``out_dir``, where it exists."""
    page = run.get("training_page")
    if page and os.path.isfile(page):
        return url(os.path.relpath(page, out_dir))
    return None


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
            "netG", "ngf", "n_blocks", "n_downsampling", "stem", "coupling", "iunet_architecture", "norm"))))
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


def _volume_file(out_dir, label, name):
    for ext in (".nii.gz", ".npy"):
        rel = os.path.join("volumes", label, name + ext)
        if os.path.exists(os.path.join(out_dir, rel)):
            return rel
    return None


def write_results_page(out_dir, opt, items, rows, mean, run=None):
    """results/NAME/PHASE_EPOCH/index.html and summary.json. ``items``: [{"name", "images": {label: relative
    path}, and for volumes "volumes": {label: util.pages.slices.write(...)}}]; ``rows``: per-item results ({name:
    util.results.Results}); ``mean``: the results of the whole set (their means, and set-level metrics);
    ``run``: evaluation.describe_run(opt, model). Returns the page's path."""
    run = run or {}
    os.makedirs(out_dir, exist_ok=True)
    outputs = outputs_of_run(run, mean)
    titles = {o: f"{s} → {t}" for o, (s, t) in outputs.items()}
    summary = write_summary(out_dir, opt, run, len(items), outputs, mean)
    dims = run.get("dims", 3 if any(i.get("volumes") for i in items) else 2)
    measured_outs = list(dict.fromkeys(o for r in rows.values() for o in r.translations.outputs))
    metric_outs = [o for o in outputs if o in measured_outs] + [o for o in measured_outs if o not in outputs]
    labels = list(dict.fromkeys(lbl for item in items for lbl in item["images"]))
    cases = [item for item in items if item.get("volumes")]
    if cases:  # the slice browser shows inputs and targets: the table keeps the outputs' mid-slices
        labels = [lbl for lbl in labels if not lbl.startswith("real")] or labels
    arch = run.get("architecture") or {}
    fraction = errors.scale(mean)
    maps = {} if cases else errors.write_maps(out_dir, items, {o: "real_" + t for o, (_, t) in outputs.items()},
                                              fraction)
    train_page = training_link(run, out_dir)

    doc = document(f"Results: {getattr(opt, 'name', '')}", styles=("slices.css",) if cases else ())
    with doc:
        page_header(getattr(opt, "name", ""), f"{getattr(opt, 'phase', '')} · epoch {getattr(opt, 'epoch', '')}",
                    chips=[c for c in [("model", getattr(opt, "model", "")),
                                       ("direction", getattr(opt, "direction", "")),
                                       ("generator", _arch_text(arch)), ("", f"{dims}D"),
                                       ("volumes" if dims == 3 else "images", len(items)),
                                       ("tested", summary["date"])] if c[1]],
                    links=[("← all runs", "../../index.html")]
                    + ([("training page", train_page)] if train_page else [])
                    + [(f, f) for f in ("metrics.csv", "metrics.json")  # none without targets
                       if os.path.isfile(os.path.join(out_dir, f))]
                    + [("all options (test_opt.txt)", "test_opt.txt")])
        with tags.main():
            with tags.section(id="summary"):
                tags.h2("Summary", tags.small(f"mean over the {len(rows)} {'volumes' if dims == 3 else 'images'} "
                                              f"with a target; Δ: output minus baseline"))
                if summary_table(mean, metric_outs, titles, table_id="metrics-mean") is None:
                    tags.p("No targets in this test set, so no metrics: the images below are the whole result.",
                           cls="empty")
                else:
                    with tags.ul(cls="notes"):
                        for line in measured(mean, run, dims, fraction):
                            tags.li(line)
            if cases:
                windows = run.get("intensity") or {}
                slices.section(cases, groups(outputs), errors.page_data(fraction) if fraction else None, windows)
            with tags.section():
                what = "volumes" if dims == 3 else "images"
                hint = ("click a row to open it in the slice browser" if cases
                        else "click an image to enlarge it beside its input, target and error map; ← → step")
                tags.h2(f"{what.capitalize()} ({len(items)})", tags.small(hint + "; click a column to sort, worst "
                                                                           "first"))
                with tags.div(cls="tools"):
                    name_filter("items", f"filter {what} by name")
                    thumb_slider()
                _items_table(out_dir, items, rows, labels, metric_outs, groups(outputs, bool(maps)), cases, maps)
            with tags.section(id="options"):
                tags.h2("Options that matter for this run", tags.small("all of them: test_opt.txt"))
                with tags.dl(cls="opts"):
                    for k, v in options_that_matter(opt, run, len(items)):
                        tags.dt(k)
                        tags.dd(str(v))
        if not cases:
            viewer()
            if maps:
                json_data("error-scale", errors.page_data(fraction))
    path = write_page(doc, out_dir, scripts=("slices.js",) if cases else ())
    if train_page:  # the training page links back here
        training.add_results(os.path.dirname(run["training_page"]), path)
    return path


def _items_table(out_dir, items, rows, labels, outs, viewer_groups, cases, maps):
    """A row per item: its number, name, thumbnails and, per output, PSNR, SSIM, MAE and the PSNR gain over the
    baseline (volumes: PSNR and SSIM of the foreground too); ``maps``: the error maps of each item ({name: {label:
    path}}), which the viewer shows."""
    case_index = {item["name"]: i for i, item in enumerate(cases)}
    sizes = {}
    for item in items[:1]:  # one image per label gives the thumbnails' shape; the rest share it
        for lbl, src in item["images"].items():
            sizes[lbl] = image_size(os.path.join(out_dir, src))

    def results(row):  # row: (index, item)
        return rows.get(row[1]["name"]) or Results()

    def name_td(row):
        item = row[1]
        with tags.td(cls="name") as td:
            tags.span(item["name"])
            if cases:  # the volumes in original units, to open in another viewer
                with tags.div(cls="files"):
                    for lbl in item.get("volumes", {}):
                        rel = _volume_file(out_dir, lbl, item["name"])
                        if rel and not lbl.startswith("real_"):
                            tags.a(lbl, href=url(rel), cls="ext", title="the volume in original units (NIfTI or .npy)")
        return td

    def thumb(lbl):
        def cell(row):
            src = row[1]["images"].get(lbl)
            return tags.td() if src is None else thumb_td(src, lbl, sizes.get(lbl))
        return cell

    def value(m, o):
        return lambda row: metric_td(m, results(row).value(m, o), cls="first" if m is SHOWN[0] else "")

    def gain(o):
        def cell(row):
            r = results(row).find(PSNR, o)
            return delta_td(PSNR, None if r is None else r.delta)
        return cell

    def masked(m, o):
        return lambda row: metric_td(m, results(row).value(m, o, region="foreground"))

    foreground = any(r.region == "foreground" for res in rows.values() for r in res)
    kinds = {r.output: r.baseline_name for res in rows.values() for r in res if r.baseline is not None}

    columns = [Column("#", lambda row: tags.td(str(row[0] + 1), cls="idx num", data_v=str(row[0])), sort="number",
                      tip="click: the test order"),
               Column("name", name_td, sort="text")]
    columns += [Column(lbl, thumb(lbl), cls="thumbhead") for lbl in labels]
    for o in outs:
        columns += [Column(m.name, value(m, o), o, sort=m, cls="first" if m is SHOWN[0] else "",
                           tip=f"{o}: click to sort worst first ({'higher' if m.higher_is_better else 'lower'} is "
                               f"better), again to reverse") for m in SHOWN]
        if o in kinds:
            columns.append(Column("Δ PSNR", gain(o), o, sort=PSNR, tip=f"PSNR gain over the baseline ({kinds[o]}); "
                                                                        f"click: smallest gain first"))
        if foreground:
            columns += [Column(f"{m.name} fg", masked(m, o), o, sort=m, tip=f"{o}: {m.name} of the foreground "
                                                                              f"(voxels whose target lies above the "
                                                                              f"lowest tenth of its window)")
                        for m in (PSNR, SSIM)]

    def attrs(row):
        name = row[1]["name"]
        extra = maps.get(name)
        return {"data-name": name, "data-summary": row_summary(results(row), outs),
                "data-case": str(case_index[name]) if name in case_index else None,
                "data-extra": json.dumps({k: url(v) for k, v in extra.items()}) if extra else None}
    with tags.div(cls="scroll"):
        return data_table(columns, list(enumerate(items)), attrs, cls="data sortable" + ("" if cases else " viewable"),
                          id="items", data_groups=json.dumps(viewer_groups))
