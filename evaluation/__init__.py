"""Evaluation: what test.py runs on a loaded model. ``evaluate`` translates the test set (2D images in
evaluation.images, 3D volumes by sliding windows in evaluation.volumes), writes the images or volumes, the metrics
(evaluation.metrics: metrics.csv/json) and the results page (util.pages.results), and returns the mean results
(util.results.Results)."""
import os
import shutil

from data import create_dataset
from data.base_dataset import DomainMap
from util.checkpoint import writable_folder
from util.results import PSNR, SHOWN, Results


def domain_map(opt, model):
    """The data folders and channel counts of ``model``'s domains (its checkpoint's channels, not the flags')."""
    return DomainMap(opt.direction, model.spec.input_nc, model.spec.output_nc, model.direction_swaps_data)


def results_folder(opt, model):
    """results/NAME/PHASE_EPOCH for a model's full test (in the direction it was trained); the folder name says what
    differs otherwise: _AtoB / _BtoA for a full test with the domains the other way round, _AtoB_only / _BtoA_only
    for one direction (--model test)."""
    suffix = "" if opt.direction == model.trained_direction else f"_{opt.direction}"
    if not model.direction_swaps_data:
        suffix = f"_{opt.direction}_only"
    return os.path.join(opt.results_dir, opt.name, f"{opt.phase}_{opt.epoch}{suffix}")


def clear_results(out_dir):
    """Removes what an earlier test run wrote into ``out_dir`` (recognized by its test_opt.txt), so the folder holds
    only this run's outputs."""
    if os.path.isfile(os.path.join(out_dir, "test_opt.txt")):
        shutil.rmtree(out_dir)


def evaluate(opt, model, options=None):
    """Runs ``model`` (set up, in the mode test.py wants) on --dataroot's test data into
    results/NAME/PHASE_EPOCH/. Returns (out_dir, page path, mean results)."""
    from evaluation import baselines, images, metrics, volumes
    from util.pages.results import write_results_page
    from util.pages.runs import write_runs_index
    out_dir = results_folder(opt, model)
    clear_results(out_dir)
    writable_folder(out_dir, "--results_dir")
    if options is not None:
        options.save_options(opt, out_dir, "test_opt.txt")
    chosen = baselines.for_test(opt, model, domain_map(opt, model))  # --baseline: what the metrics are compared with
    if model.dims == 3:
        items, rows = volumes.run(opt, model, domain_map(opt, model), out_dir, baselines=chosen)
    else:
        items, rows = images.run(opt, model, create_dataset(opt, domain_map(opt, model)), out_dir, baselines=chosen)
    mean = metrics.write(rows, out_dir) if rows else Results()
    page = write_results_page(out_dir, opt, items, rows, mean, describe_run(opt, model, chosen))
    write_runs_index(opt.results_dir)  # results/index.html lists every run, this one included
    return out_dir, page, mean


def describe_run(opt, model, baselines=None):
    """What the results page says about the run beyond ``opt``: the checkpoint's architecture, 2D or 3D, the
    translations ({output label: {"source", "target"}}), their baselines ({output label: {"kind", "about"}}), the
    training page (when checkpoints/NAME/web has one) and, for volumes, the intensity windows and the patch."""
    run = {"architecture": model.spec.to_architecture(), "dims": model.dims, "checkpoint": model.loaded_from,
           "outputs": {label: {"source": t.source, "target": t.target} for label, t in model.translators().items()},
           "baselines": {label: b.describe() for label, b in (baselines or {}).items()}}
    web = os.path.join(opt.checkpoints_dir, opt.name, "web", "index.html")
    if os.path.isfile(web):
        run["training_page"] = os.path.abspath(web)
    if getattr(model, "volume", None):
        run["intensity"] = {d: list(w) for d, w in (model.volume.intensity or {}).items()}
        run["patch_size"] = getattr(opt, "patch_size", None) or model.volume.patch_size
    return run


def summary_lines(mean):
    """One line per translation (and per masked region: the foreground of volumes) with mean PSNR (and its
    baseline), SSIM and MAE, and one per cycle error (``mean``: util.results.Results)."""
    lines = []
    for out in mean.outputs:
        for region in [None] + mean.regions:
            psnr = mean.find(PSNR, out, region=region)
            if psnr is None:
                continue
            extra = f" ({psnr.baseline_name.replace('copy of the input', 'copy-the-input')} baseline " \
                    f"{psnr.baseline:.2f} dB)" if psnr.baseline is not None else ""
            rest = "".join(f", {m.name} {mean.value(m, out, region=region):.{m.decimals}f}" for m in SHOWN
                           if m is not PSNR and mean.find(m, out, region=region))
            where = f" ({region})" if region else ""
            lines.append(f"{out}{where}: PSNR {psnr.value:.2f} dB{extra}{rest}")
    for r in mean.cycles:
        lines.append(f"cycle error {r.path('->')}: {r.metric.name} {r.value:.4f} (no true targets: "
                     f"unpaired data)")
    return lines
