"""Image similarity metrics: MAE, PSNR and SSIM (scikit-image's structural_similarity), with explicit data range,
measured as typed results (util.results) and written as metrics.csv and metrics.json."""
import csv
import json
import math

import numpy as np
from skimage.metrics import structural_similarity

from util.results import MAE, METRICS, PSNR, SSIM, Result, Results, summarize


def compare(output, target, data_range=1.0):
    """Metrics of ``output`` against ``target``: float arrays (C, H, W) or (C, D, H, W) on the same scale.
    Returns {metric name: value} (MAE, PSNR, SSIM)."""
    output, target = np.asarray(output, np.float64), np.asarray(target, np.float64)
    err = output - target
    mae = float(np.abs(err).mean())
    mse = float((err ** 2).mean())
    psnr = float("inf") if mse == 0 else 10 * math.log10(data_range ** 2 / mse)
    win = min(7, *[s for s in target.shape[1:]])
    win = win if win % 2 == 1 else win - 1
    ssim = float(structural_similarity(target, output, data_range=data_range, channel_axis=0,
                                       win_size=max(win, 3)))
    return {MAE.name: mae, PSNR.name: psnr, SSIM.name: ssim}


def translation(label, output, target, source=None, data_range=1.0):
    """The results of output ``label`` against its target, with the copy-the-input baseline (``source`` against the
    target) where the source has the target's shape."""
    values = compare(output, target, data_range)
    base = compare(source, target, data_range) if source is not None and source.shape == target.shape else {}
    return [Result(METRICS[m], label, v, base.get(m), data_range=float(data_range)) for m, v in values.items()]


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
        json.dump({"mean": flat_mean, "items": flat_rows, "results": mean.to_json()}, f, indent=1)
    return mean
