"""Image similarity metrics: MAE, PSNR and SSIM (scikit-image's structural_similarity), with explicit data range."""
import csv
import json
import math

import numpy as np
from skimage.metrics import structural_similarity


def compare(output, target, data_range=1.0):
    """Metrics of ``output`` against ``target``: float arrays (C, H, W) or (C, D, H, W) on the same scale."""
    output, target = np.asarray(output, np.float64), np.asarray(target, np.float64)
    err = output - target
    mae = float(np.abs(err).mean())
    mse = float((err ** 2).mean())
    psnr = float("inf") if mse == 0 else 10 * math.log10(data_range ** 2 / mse)
    win = min(7, *[s for s in target.shape[1:]])
    win = win if win % 2 == 1 else win - 1
    ssim = float(structural_similarity(target, output, data_range=data_range, channel_axis=0,
                                       win_size=max(win, 3)))
    return {"MAE": mae, "PSNR": psnr, "SSIM": ssim}


def summarize(rows):
    """Mean of every numeric column over per-item rows."""
    keys = [k for k in (rows[0] if rows else {}) if isinstance(rows[0][k], (int, float))]
    return {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys}


def write(rows, folder, stem="metrics"):
    """Writes per-item rows plus a mean row as CSV and JSON; returns the mean."""
    mean = summarize(rows)
    keys = list(rows[0].keys()) if rows else []
    with open(f"{folder}/{stem}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
        if rows:
            w.writerow({k: mean.get(k, "mean" if k == "name" else "") for k in keys})
    with open(f"{folder}/{stem}.json", "w") as f:
        json.dump({"mean": mean, "items": rows}, f, indent=1)
    return mean
