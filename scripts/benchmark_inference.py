"""Peak memory of translating one large image or volume with default flags, as test.py and the translate API do it.

    python scripts/benchmark_inference.py                      # 2048x2048 RGB images, 256^3 volumes (CPU)
    python scripts/benchmark_inference.py --side 1024 --volume_side 128 --no_docs
    python scripts/benchmark_inference.py --device cuda

Rows: each model with the flags users get (the defaults; fresh weights: memory does not depend on their values),
wrapped in evaluation.translator.Translator in eval mode: 2D models translate one ``--side``² RGB image whole;
3D models translate one ``--volume_side``³ single-channel volume window by window (the training patch, 64³ by
default, ``--overlap`` between windows: the peak is one window's plus the output being blended, whatever the
overlap). ``lean off`` rows run the same generator with plain module calls (no models/lean.py) for comparison.
Each row runs in a fresh process; peak memory is measured above the level after the model is built (weights
loaded) and has translated a small input once (the libraries' one-time set-up), large allocations through mmap on
the CPU (scripts/bench_utils.PeakMemory). Writes its section of
docs/benchmarks.md.
"""
import argparse
import contextlib
import io
import json
import os
import sys

from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from scripts import bench_utils as bu  # noqa: E402

ROWS = [("unpaired_revgan", [], True), ("unpaired_revgan", [], False), ("paired_revgan", [], True),
        ("cycle_gan", [], True), ("pix2pix", [], True),
        ("unpaired_revgan3d", [], True), ("unpaired_revgan3d", [], False), ("cycle_gan3d", [], True)]


def worker(args):
    """One row in this process: prints a JSON line."""
    import time

    import numpy as np
    import torch

    import models.networks as networks
    from evaluation.translator import Translator
    from models import create_model
    from options.test_options import TestOptions
    if not args.lean:
        networks.run_lean = lambda part, x: part(x)
    torch.manual_seed(0)
    opt = TestOptions().parse(["--dataroot", ".", "--name", "bench", "--model", args.model, "--checkpoints_dir",
                               os.devnull, "--gpu_ids", "0" if args.device == "cuda" else "-1"] + args.flags)
    with contextlib.redirect_stdout(io.StringIO()):
        model = create_model(opt)
    model.eval()
    dims = model.dims
    if dims == 3:
        model.volume.intensity = {"A": (0.0, 1.0), "B": (0.0, 1.0)}
        model.volume.patch_size = None
    translator = Translator(model, "AtoB", overlap=args.overlap, say=lambda *a: None)
    rng = np.random.default_rng(0)
    x = rng.random((args.volume_side,) * 3, dtype=np.float32) if dims == 3 else \
        (rng.random((args.side, args.side, 3)) * 255).astype(np.uint8)
    translator(x[:32, :32, :32] if dims == 3 else x[:64, :64])  # warm-up: the libraries' one-time set-up
    meter = bu.PeakMemory(args.device)
    meter.start()
    start = time.time()
    out = translator(x)
    seconds = time.time() - start
    peak = meter.peak()
    print(json.dumps({"model": args.model, "lean": args.lean, "dims": dims, "shape": list(np.shape(out)),
                      "window": list(translator.patch) if translator.patch else None, "peak": peak,
                      "seconds": seconds}))


def run_row(model, flags, lean, args):
    row = bu.run_worker(__file__, ["--model", model, "--device", args.device, "--side", args.side, "--volume_side",
                                   args.volume_side, "--overlap", args.overlap, "--flags=" + " ".join(flags)]
                        + (["--lean"] if lean else []), timeout=7200)
    if "error" in row:
        raise SystemExit(f"{model}: {row['error']}")
    return row


def table(results, args):
    lines = ["| model (default flags) | input | window | lean inference | peak above the weights (MiB) |",
             "|---|---|---|---|---|"]
    for r in results:
        size = f"{args.volume_side}³ volume" if r["dims"] == 3 else f"{args.side}² RGB image"
        window = "×".join(map(str, r["window"])) + f", overlap {args.overlap}" if r["window"] else "whole image"
        lines.append(f"| {r['model']} | {size} | {window} | {'on' if r['lean'] else 'off'} | "
                     f"{r['peak'] / 2 ** 20:.0f} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--side", type=int, default=2048, help="2D: image side")
    p.add_argument("--volume_side", type=int, default=256, help="3D: volume side")
    p.add_argument("--overlap", type=float, default=0.0, help="3D: the windows' overlap (peak memory does not "
                                                              "depend on it; 0 keeps CPU runs short)")
    p.add_argument("--no_docs", action="store_true", help="print the table only")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--lean", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--flags", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        args.flags = args.flags.split()
        return worker(args)
    results = []
    for model, flags, lean in tqdm(ROWS, desc="benchmark_inference", unit="model"):
        results.append(run_row(model, flags, lean, args))
    text = table(results, args)
    print(text)
    if not args.no_docs:
        command = "python scripts/benchmark_inference.py" + (" --device cuda" if args.device == "cuda" else "")
        body = (f"## benchmark_inference ({args.device})\n\nCommand: `{command}` · machine: "
                f"{bu.machine_description(args.device)} · date: {bu.today()}\n\n"
                "Peak memory of translating one image or volume with default flags through the Translator (test.py's "
                "and the translate API's path), in a fresh process per row, above the level after the model is "
                "built and has translated a small input once (the libraries' one-time set-up)" +
                (" (CPU: resident set, large allocations through mmap: MALLOC_MMAP_THRESHOLD_=65536)"
                           if args.device == "cpu" else "") + ".\n\n" + text + "\n")
        bu.update_section("benchmark_inference_" + args.device, body)


if __name__ == "__main__":
    main()
