"""Image similarity metrics: MAE, PSNR and SSIM (scikit-image's structural_similarity), with explicit data range,
measured as typed results (util.results) and written as metrics.csv and metrics.json.

Volumes are also measured on their foreground (``region="foreground"``), so the air around a subject does not
flatter a blurry output: the voxels whose target lies above the lowest tenth of the target's intensity window
(``FOREGROUND``; the rule --foreground_sampling uses to centre training patches). There MAE and PSNR are taken over
those voxels only, and SSIM is the mean of the SSIM map over them (the map is computed on the whole volume, so each
value still sees its neighbourhood)."""
import csv
import json
import math

import numpy as np
from skimage.metrics import structural_similarity

from util.results import MAE, METRICS, PSNR, SSIM, Result, Results, strict_json, summarize

FOREGROUND = 0.1  # foreground: target above the lowest tenth of its intensity window (as --foreground_sampling)


def _ssim_window(shape):
    win = min(7, *[s for s in shape[1:]])
    win = win if win % 2 == 1 else win - 1
    return max(win, 3)


def _values(err, ssim):
    mae = float(np.abs(err).mean()) if err.size else float("nan")
    mse = float((err ** 2).mean()) if err.size else float("nan")
    return mae, mse, ssim


def compare(output, target, data_range=1.0, mask=None):
    """Metrics of ``output`` against ``target``: float arrays (C, H, W) or (C, D, H, W) on the same scale.
    Returns {metric name: value} (MAE, PSNR, SSIM); with ``mask`` (a boolean array of the spatial shape, or of the
    full shape), {None: those of every pixel, "foreground": those inside the mask}."""
    output, target = np.asarray(output, np.float64), np.asarray(target, np.float64)
    err = output - target
    win = _ssim_window(target.shape)
    if mask is None:
        ssim = float(structural_similarity(target, output, data_range=data_range, channel_axis=0, win_size=win))
        return _named(*_values(err, ssim), data_range)
    ssim, smap = structural_similarity(target, output, data_range=data_range, channel_axis=0, win_size=win,
                                      full=True)
    mask = np.broadcast_to(np.asarray(mask, bool), target.shape)
    inside = float(smap[mask].mean()) if mask.any() else float("nan")
    return {None: _named(*_values(err, float(ssim)), data_range),
            "foreground": _named(*_values(err[mask], inside), data_range)}


def _named(mae, mse, ssim, data_range):
    psnr = float("inf") if mse == 0 else float("nan") if math.isnan(mse) else 10 * math.log10(data_range ** 2 / mse)
    return {MAE.name: mae, PSNR.name: psnr, SSIM.name: ssim}


def foreground_mask(target, lo, hi):
    """The foreground of a target in original units whose intensity window is (lo, hi): above its lowest tenth."""
    return np.asarray(target) > lo + FOREGROUND * (hi - lo)


def translation(label, output, target, source=None, data_range=1.0, baseline=None, window=None):
    """The results of output ``label`` against its target, with a baseline: ``baseline(source)`` (an
    evaluation.baselines.Baseline: the copy of the input, a look-up table, or none) against the target; without
    ``baseline``, the copy of ``source`` where it has the target's shape. ``window``: the target's intensity window
    (lo, hi) for volumes, which adds the results of the foreground (``foreground_mask``; none when it is empty)."""
    if baseline is not None:
        predicted, kind = (baseline(source) if source is not None else None), baseline.kind
    else:
        predicted = source if source is not None and np.shape(source) == np.shape(target) else None
        kind = "copy"
    if window is None:
        values = {None: compare(output, target, data_range)}
        base = {None: compare(predicted, target, data_range)} if predicted is not None else {}
    else:
        mask = foreground_mask(target, *window)
        values = compare(output, target, data_range, mask) if mask.any() else {None: compare(output, target,
                                                                                             data_range)}
        base = {}
        if predicted is not None:
            base = compare(predicted, target, data_range, mask) if mask.any() else {None: compare(
                predicted, target, data_range)}
    return [Result(METRICS[m], label, v, base.get(region, {}).get(m), region=region, data_range=float(data_range),
                   baseline_kind=kind if predicted is not None else None)
            for region, found in values.items() for m, v in found.items()]


def cycle_error(domain, reconstruction, real):
    """The cycle error of ``domain`` (A: A -> B -> A against A): MAE of the reconstruction against the real
    image, both on 0..1 (tensors or arrays)."""
    return Result(MAE, domain, float(abs(reconstruction - real).mean()), cycle=True, data_range=1.0)


def write(rows, folder, stem="metrics", extra=()):
    """Writes per-item results (``rows``: {item name: Results}) plus a mean row as CSV and JSON; returns the mean
    (with ``extra``, results of the whole set such as FID, added)."""
    mean = Results(list(summarize(rows)) + list(extra))
    flat_rows = [{"name": name, **results.flat()} for name, results in rows.items()]
    keys = list(dict.fromkeys(k for r in flat_rows for k in r))
    flat_mean = mean.flat()
    with open(f"{folder}/{stem}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(flat_rows)
        if rows:
            w.writerow({k: flat_mean.get(k, "mean" if k == "name" else "") for k in keys})
    with open(f"{folder}/{stem}.json", "w") as f:
        json.dump(strict_json({"mean": flat_mean, "items": flat_rows, "results": mean.to_json()}), f, indent=1,
                  allow_nan=False)
    return mean
