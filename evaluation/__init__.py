"""Evaluation: what test.py runs on a loaded model. ``evaluate`` translates the test set (2D images in
evaluation.images, 3D volumes by sliding windows in evaluation.volumes), writes the images or volumes, the metrics
(evaluation.metrics: metrics.csv/json) and the results page (util.pages.results), and returns the mean results
(util.results.Results)."""
import contextlib
import os
import shutil

import torch

from data import create_dataset
from data.base_dataset import DomainMap
from util.checkpoint import writable_folder
from util.errors import UserError
from util.results import PSNR, SHOWN, Results
from util.util import set_seed
from util.volume import parse_patch_size


def domain_map(opt, model):
    """The data folders and channel counts of ``model``'s domains (its checkpoint's channels, not the flags')."""
    return DomainMap(opt.direction, model.spec.input_nc, model.spec.output_nc, model.direction_swaps_data)


def set_test_mode(opt, model, say=print):
    """test.py's mode: eval with --eval, else train mode as CycleGAN's test.py runs (dropout on, said where the
    generator has it); its masks follow --seed, so one command gives the same outputs every time."""
    set_seed(opt.seed)
    if opt.eval:
        model.eval()
    elif any(isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0
             for name in model.model_names for m in model.net(name).modules()):
        say(f"note: the generator has dropout, on in test.py's train mode (as in CycleGAN's test.py): outputs depend "
            f"on --seed ({opt.seed}) and differ from the translate API's and exports' (eval mode); --eval runs "
            f"without it")


def results_folder(opt, model):
    """results/NAME/PHASE_EPOCH for a model's full test (in the direction it was trained); the folder name says what
    differs otherwise: _AtoB / _BtoA for a full test with the domains the other way round, _AtoB_only / _BtoA_only
    for one direction (--model test)."""
    suffix = "" if opt.direction == model.trained_direction else f"_{opt.direction}"
    if not model.direction_swaps_data:
        suffix = f"_{opt.direction}_only"
    return os.path.join(opt.results_dir, opt.name, f"{opt.phase}_{opt.epoch}{suffix}")


@contextlib.contextmanager
def replacing_results(out_dir, dataroot=None):
    """While the block writes this run's outputs into ``out_dir``, an earlier test run's there (recognized by its
    test_opt.txt) waits beside it in ``out_dir``.previous: removed when the block ends, put back when it fails, so a
    failed run (a bad image halfway, Ctrl-C) loses no results and leaves no page linking to missing files. After a
    run killed outright, the complete results aside win over the incomplete ones (no summary.json). Results of a
    test on other data than ``dataroot`` (this run's) that get replaced are said."""
    from util.pages.runs import PREVIOUS, SUMMARY
    previous = os.path.normpath(out_dir) + PREVIOUS
    if os.path.isdir(previous) and not os.path.isfile(os.path.join(out_dir, SUMMARY)):
        shutil.rmtree(out_dir, ignore_errors=True)  # a run killed before its end: the complete results are aside
    elif os.path.isfile(os.path.join(out_dir, "test_opt.txt")):
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(out_dir, previous)
    if not os.path.isdir(previous):
        previous = None
    try:
        yield
    except BaseException:
        if previous is not None:
            shutil.rmtree(out_dir, ignore_errors=True)
            try:
                os.replace(previous, out_dir)
            except OSError:
                print(f"note: the earlier results are in {previous} (they could not be moved back)")
        raise
    if previous is not None:
        earlier = _tested_on(previous)
        shutil.rmtree(previous, ignore_errors=True)
        same = lambda path: os.path.normcase(os.path.realpath(path))  # noqa: E731
        if dataroot is not None and earlier is not None and same(earlier) != same(dataroot):
            print(f"note: {out_dir} held the results of a test on {earlier}: replaced by this one's (give "
                  f"--results_dir to keep the results of tests on other data apart)")


def _tested_on(folder):
    """The --dataroot its test_opt.txt says a results folder was tested on (None when unknown)."""
    try:
        with open(os.path.join(folder, "test_opt.txt")) as f:
            for line in f:
                key, _, value = line.partition(": ")
                if key.strip() == "dataroot":
                    return value.split("\t")[0].strip() or None
    except OSError:
        pass
    return None


def evaluate(opt, model, options=None):
    """Runs ``model`` (set up, in the mode test.py wants) on --dataroot's test data into
    results/NAME/PHASE_EPOCH/. Returns (out_dir, page path, mean results)."""
    from evaluation import baselines, images, metrics, volumes
    from util.pages.results import write_results_page
    from util.pages.runs import write_runs_index
    out_dir = results_folder(opt, model)
    if model.dims == 3 and opt.patch_size is None and model.volume.patch_size:  # test_opt.txt: the window it uses
        opt = opt.replace(patch_size=list(model.volume.patch_size))
    domains = domain_map(opt, model)
    dataset, sets = None, None
    if model.dims == 3 and getattr(opt, "fid", False):
        raise UserError("--fid: FID and KID are measured on 2D images (InceptionV3); volumes have MAE, PSNR and SSIM")
    if model.dims == 3 and getattr(opt, "patch_size", None):  # said before the baselines are fitted
        parse_patch_size(opt.patch_size)
    if model.dims == 2:
        dataset = create_dataset(opt, domains)
        if getattr(opt, "fid", False):  # the weights first: a missing file is said before anything is written
            sets = set_metrics(opt, model, dataset, "--fid")
    chosen = baselines.for_test(opt, model, domains)  # --baseline: what the metrics are compared with
    if sets is not None:
        sets.baselines = chosen  # FID and KID compare with the same baseline
    with replacing_results(out_dir, opt.dataroot):
        writable_folder(out_dir, "--results_dir")
        if options is not None:
            options.save_options(opt, out_dir, "test_opt.txt")
        if model.dims == 3:
            items, rows = volumes.run(opt, model, domains, out_dir, baselines=chosen)
        else:
            items, rows = images.run(opt, model, dataset, out_dir, sets=sets, baselines=chosen)
        extra = sets.results() if sets else []
        if sets:
            few = extra and min(sets.counts(r.output)[0] for r in extra) < 50
            print(sets.describe() + ("; fewer than 50 images: FID is biased upwards, compare runs on the same set "
                                     "only" if few else ""))
        mean = metrics.write(rows, out_dir, extra=extra) if rows or extra else Results()
        page = write_results_page(out_dir, opt, items, rows, mean, describe_run(opt, model, chosen))
    write_runs_index(opt.results_dir)  # results/index.html lists every run, this one included
    return out_dir, page, mean


def set_metrics(opt, model, dataset, flag):
    """FID and KID of ``model``'s translations on ``dataset`` (evaluation.fid.SetMetrics), its feature network
    loaded; one line when the data has no second domain or the network cannot be had."""
    from evaluation import fid
    if not dataset.dataset.two_domains:
        raise UserError(f"{flag}: FID and KID compare the outputs with the real images of the target domain: give a "
                        f"--dataroot with {opt.phase}A and {opt.phase}B (or A|B pairs)")
    translations = {label: (t.source, t.target) for label, t in model.translators().items()}
    return fid.SetMetrics(fid.feature_network(opt.fid_weights), translations,
                          {"A": model.spec.input_nc, "B": model.spec.output_nc})


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


def _baseline_text(r, unit=""):
    """" (copy-the-input baseline 13.61 dB)" for a result with a baseline, else ""."""
    if r.baseline is None:
        return ""
    name = r.baseline_name.replace("copy of the input", "copy-the-input")
    return f" ({name} baseline {r.baseline:.{r.metric.decimals}f}{unit})"


def advice_lines(spec, mean, residual_open=None):
    """What the results suggest trying (``spec``: the tested model's models.config.ModelSpec, ``mean``:
    util.results.Results, ``residual_open``: whether its residual's input path is open, where training decided it
    (--residual_auto); None: as ``spec`` says): an unpaired model without the global residual (or with it closed in
    training) whose output scores below the copy of its input may be on a task where input and target look alike,
    where the unpaired models measured 3.7-4.8 dB above the copy with --residual and 0.7-0.8 dB below it without
    (faded photos; docs/benchmarks.md, "The unpaired models on faded photos, without normalization"); or on one
    between domains that look different, where no setting beat the copy (T1 -> grey-matter map, 3D) and the residual
    kept its input: so the note says "if"."""
    below = [r for r in (mean.find(PSNR, out) for out in mean.outputs)
             if r is not None and r.baseline is not None and (r.baseline_kind or "copy") == "copy" and
             r.value < r.baseline]
    has_residual = spec.has_residual if residual_open is None else residual_open
    if not below or not spec.residual_applies or has_residual or not spec.trains_unpaired:
        return []
    return [f"note: {r.output} scores below the copy of its input (PSNR {r.value:.2f} against {r.baseline:.2f} dB): "
            f"if input and target should look alike (restoration, denoising), try training with --residual, which "
            f"starts from the input and measured 3.7-4.8 dB above the copy on such a task; between domains that look "
            f"different it kept its input (README, Quality)" for r in below]


def summary_lines(mean):
    """One line per translation (and per masked region: the foreground of volumes) with mean PSNR (and its
    baseline), SSIM and MAE, and one per cycle error (``mean``: util.results.Results)."""
    lines = []
    for out in mean.outputs:
        for region in [None] + mean.regions:
            parts = []
            psnr = mean.find(PSNR, out, region=region)
            if psnr is not None:
                parts.append(f"PSNR {psnr.value:.2f} dB{_baseline_text(psnr, ' dB')}")
                parts += [f"{m.name} {mean.value(m, out, region=region):.{m.decimals}f}" for m in SHOWN
                          if m is not PSNR and mean.find(m, out, region=region)]
            for r in mean.in_region(region):  # set-level metrics (FID, KID)
                if r.output == out and not r.metric.per_item:
                    d = r.metric.decimals
                    std = f" ± {r.std:.{d}f}" if r.std is not None else ""
                    parts.append(f"{r.metric.name} {r.value:.{d}f}{std}{_baseline_text(r)}")
            if parts:
                where = f" ({region})" if region else ""
                lines.append(f"{out}{where}: " + ", ".join(parts))
    for r in mean.cycles:
        lines.append(f"cycle error {r.path('->')}: {r.metric.name} {r.value:.4f} (no true targets: "
                     f"unpaired data)")
    return lines
