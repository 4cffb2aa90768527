"""Peak training memory and step time of one stack of coupling blocks, computed five ways.

    python scripts/benchmark_reversible.py                    # CPU: depths 4 8 16 32
    python scripts/benchmark_reversible.py --device cuda --depths 4 8 16 32 64 128 --size 128
    python scripts/benchmark_reversible.py --iunet            # the invertible U-Net: conventional vs memory-saving

Methods: plain autograd, torch.utils.checkpoint per block, this library (models.reversible), and the peers MemCNN
and RevLib. Every (method, depth) runs in a fresh process: one warm-up step, then the peak memory of one training
step above the level before it (parameters, gradients and optimizer state are allocated by then, so what is measured
is activations and transients). Step times come from one process per depth that times every method round-robin. Writes its section of docs/benchmarks.md
and docs/benchmark_reversible.png.
"""
import argparse
import json
import os
import sys

import torch
from torch import nn
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from scripts import bench_utils as bu  # noqa: E402

METHODS = ["plain", "checkpoint", "revgan", "memcnn", "revlib"]
IUNET_METHODS = ["conventional", "memory_saving"]
LABELS = {"plain": "plain autograd", "checkpoint": "torch.utils.checkpoint", "revgan": "models.reversible (ours)",
          "memcnn": "MemCNN 1.5.2", "revlib": "RevLib", "conventional": "iUNet, conventional backprop",
          "memory_saving": "iUNet, memory-saving (ours)"}


def body(half):
    """F or G: conv-norm-ReLU-conv-norm at C/2 channels."""
    return nn.Sequential(nn.Conv2d(half, half, 3, padding=1, bias=False), nn.BatchNorm2d(half), nn.ReLU(),
                         nn.Conv2d(half, half, 3, padding=1, bias=False), nn.BatchNorm2d(half))


def build(method, depth, channels, levels=4):
    from models.reversible import AdditiveCoupling, InvertibleUNet, ReversibleSequence
    if method in IUNET_METHODS:  # depth = coupling blocks per level and branch
        return InvertibleUNet(channels, [depth] * levels, dims=2, memory_saving=method == "memory_saving")
    half = channels // 2
    if method in ("plain", "revgan", "checkpoint"):
        seq = ReversibleSequence([AdditiveCoupling(body(half), body(half)) for _ in range(depth)],
                                 memory_saving=method == "revgan")
        if method != "checkpoint":
            return seq
        from torch.utils.checkpoint import checkpoint

        class Checkpointed(nn.Module):
            def __init__(self):
                super().__init__()
                self.blocks = seq.blocks

            def forward(self, x):
                for block in self.blocks:
                    x = checkpoint(block, x, use_reentrant=False)
                return x
        return Checkpointed()
    if method == "memcnn":
        import memcnn
        return nn.Sequential(*[memcnn.InvertibleModuleWrapper(memcnn.AdditiveCoupling(body(half), body(half)),
                                                              keep_input=False, keep_input_inverse=False)
                               for _ in range(depth)])
    if method == "revlib":
        import revlib
        return revlib.ReversibleSequential(*[body(half) for _ in range(2 * depth)])
    raise ValueError(method)


def make_step(method, args, device):
    torch.manual_seed(0)
    net = build(method, args.depth, args.channels, args.levels).to(device)
    stem = nn.Conv2d(args.channels, args.channels, 1).to(device)  # so the core's input is a non-leaf activation
    opt = torch.optim.SGD(list(net.parameters()) + list(stem.parameters()), lr=1e-4)
    x = torch.randn(args.batch, args.channels, args.size, args.size, device=device)

    def step():
        opt.zero_grad(set_to_none=False)
        net(stem(x)).square().mean().backward()
        opt.step()
    return step, net


def worker(args):
    device = torch.device(args.device)
    if args.method == "timing":  # every method of this depth in one process, timed round-robin
        steps = {m: make_step(m, args, device)[0] for m in args.timed}
        print(json.dumps(bu.interleaved_times(steps, args.steps, device)))
        return
    step, net = make_step(args.method, args, device)
    step()  # warm-up; allocates gradients
    meter = bu.PeakMemory(device)
    meter.start()
    step()
    peak = meter.peak()
    params = sum(p.numel() * p.element_size() for p in net.parameters())
    print(json.dumps({"peak": peak, "param_bytes": params}))


def plot(results, depths, block_bytes, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for method, by_depth in results.items():
        ds = [d for d in depths if "peak" in by_depth.get(d, {})]
        if ds:
            ax.plot(ds, [by_depth[d]["peak"] / block_bytes for d in ds], marker="o", label=LABELS.get(method, method))
    ax.set_xlabel("core depth (coupling blocks)")
    ax.set_ylabel("peak step memory / one block output")
    ax.set_xscale("log", base=2)
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def time_summary(results, depths):
    """The step-time ratios the issue's floors are about, read off this run."""
    def ratios(method, ref):
        out = []
        for d in depths:
            a, b = results.get(method, {}).get(d, {}), results.get(ref, {}).get(d, {})
            if a.get("seconds") and b.get("seconds"):
                out.append(a["seconds"] / b["seconds"])
        return f"{min(out):.2f}–{max(out):.2f}" if out else "n/a"
    return (f"Step time in this run: ours {ratios('revgan', 'plain')}× plain autograd and "
            f"{ratios('revgan', 'checkpoint')}× torch.utils.checkpoint; torch.utils.checkpoint itself, which "
            f"recomputes one forward per block and nothing else (the least any recomputing method can do), "
            f"{ratios('checkpoint', 'plain')}× plain autograd.")


def measure(args, results):
    """Fills ``results[method][depth]`` with the peak (a fresh process each) and the round-robin step time."""
    common = ["--device", args.device, "--batch", args.batch, "--channels", args.channels, "--size", args.size,
              "--steps", args.steps, "--levels", args.levels]
    jobs = [(m, d) for d in args.depths for m in args.methods] + [("timing", d) for d in args.depths]
    for method, depth in tqdm(jobs, desc="benchmark_reversible", unit="run"):
        if method != "timing":
            results[method][depth] = bu.run_worker(__file__, ["--method", method, "--depth", depth] + common)
            continue
        ok = [m for m in args.methods if "peak" in results[m][depth]]
        times = bu.run_worker(__file__, ["--method", "timing", "--depth", depth, "--timed"] + ok + common)
        for m in ok:
            results[m][depth]["seconds"] = times.get(m)


def main_iunet(args):
    """--iunet: the invertible U-Net with conventional backprop against memory-saving backprop."""
    results = {m: {} for m in args.methods}
    measure(args, results)
    conv, ours = results.get("conventional", {}), results.get("memory_saving", {})
    rows = []
    for d in args.depths:
        a, b = conv.get(d, {}), ours.get(d, {})
        cell = (lambda r: f"{r['peak'] / 2**20:.1f}" if "peak" in r else "failed: " + r.get("error", "?"))
        ratio = f"{100 * b['peak'] / a['peak']:.1f}%" if "peak" in a and "peak" in b else "n/a"
        speed = f"{b['seconds'] / a['seconds']:.2f}" if a.get("seconds") and b.get("seconds") else "n/a"
        rows.append([d, 2 * d * args.levels, cell(a), cell(b), ratio, speed])
    table = bu.markdown_table(["blocks per level and branch", "coupling blocks in total",
                               "conventional (MiB)", "memory-saving (MiB)", "ratio", "step time ratio"], rows)
    print(table)
    if args.no_docs:
        return
    tag = "cpu" if args.device == "cpu" else "gpu"
    shape = f"{args.batch}×{args.channels}×{args.size}×{args.size} float32"
    cmd = "python scripts/benchmark_reversible.py " + " ".join(sys.argv[1:])
    body = f"""## benchmark_reversible --iunet ({tag})

Command: `{cmd.strip()}` · machine: {bu.machine_description(args.device)} · date: {bu.today()}

`InvertibleUNet({args.channels}, architecture=[d] * {args.levels}, dims=2)` (additive couplings with
conv-LeakyReLU-conv F and G, learnable invertible Haar-initialized resampling, channels doubling per level) on
an input of {shape}, trained one step (SGD, loss = mean square of the output) with conventional backprop
(`memory_saving=False`, plain autograd) and with the memory-saving backprop. Peak memory is measured in a fresh
process per row, after a warm-up step, above the level before the step (parameters and gradients not counted).
{"CPU memory is the resident set (VmHWM after resetting it)." if tag == "cpu" else "GPU memory is torch.cuda.max_memory_allocated."}
Ratio: memory-saving over conventional (iUNets' own table reports 26.8%, 18.4%, 13.8%, 12.2% at depths 5, 10, 20,
30). Step time ratio: memory-saving over conventional, timed round-robin in one process per depth, {args.steps} rounds.

{table}

What still grows in the memory-saving column is not activations: in backward, each level's inner block (everything
below that level) hands back the gradients of all its parameters at once, so a transient of the size of those
gradients grows with the parameter count. The step costs about 2x conventional backprop because each deeper level is
recomputed once more per level above it (the price of nesting; a flat chain of couplings costs about 1.3x).
"""
    bu.update_section(f"benchmark_reversible_iunet_{tag}", body)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--depths", type=int, nargs="+", default=None,
                   help="core depths (default 4 8 16 32; with --iunet blocks per level: 5 10 20 30)")
    p.add_argument("--methods", nargs="+", default=None, choices=METHODS + IUNET_METHODS)
    p.add_argument("--iunet", action="store_true", help="benchmark the invertible U-Net instead of a plain stack")
    p.add_argument("--levels", type=int, default=4, help="--iunet: resolution levels")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--steps", type=int, default=15,
                   help="timed rounds per depth: each round times one step of every method, in turn (median)")
    p.add_argument("--no_docs", action="store_true", help="print the table only")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--method", help=argparse.SUPPRESS)
    p.add_argument("--depth", type=int, help=argparse.SUPPRESS)
    p.add_argument("--timed", nargs="*", default=[], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.depths is None:
        args.depths = [5, 10, 20, 30] if args.iunet else [4, 8, 16, 32]
    if args.methods is None:
        args.methods = IUNET_METHODS if args.iunet else METHODS
    if args.worker:
        return worker(args)
    if args.iunet:
        return main_iunet(args)

    block_bytes = args.batch * args.channels * args.size * args.size * 4
    results = {m: {} for m in args.methods}
    measure(args, results)

    rows, summary = [], []
    for method in args.methods:
        for depth in args.depths:
            r = results[method][depth]
            if "error" in r:
                rows.append([LABELS[method], depth, "failed: " + r["error"].replace("|", "/"), "", "", ""])
                continue

            def ratio(ref):
                base = results.get(ref, {}).get(depth, {})
                return f"{r['seconds'] / base['seconds']:.2f}" if r.get("seconds") and base.get("seconds") else "n/a"
            rows.append([LABELS[method], depth, f"{r['peak'] / 2**20:.1f}", f"{r['peak'] / block_bytes:.2f}",
                         ratio("plain"), ratio("checkpoint")])
        ok = [d for d in args.depths if "peak" in results[method][d]]
        if len(ok) >= 2:
            s = bu.slope(ok, [results[method][d]["peak"] for d in ok]) / block_bytes
            summary.append([LABELS[method], f"{s:.3f}"])
    table = bu.markdown_table(["method", "depth", "peak step memory (MiB)", "in block outputs",
                               "step time / plain autograd", "step time / checkpoint"], rows)
    growth = bu.markdown_table(["method", f"memory growth per extra block (block outputs, slope over depths "
                                          f"{args.depths[0]}–{args.depths[-1]})"], summary)
    floors = time_summary(results, args.depths)
    print(table + "\n\n" + growth + "\n\n" + floors)
    if args.no_docs:
        return
    tag = "cpu" if args.device == "cpu" else "gpu"
    png = f"benchmark_reversible_{tag}.png"
    shape = f"{args.batch}×{args.channels}×{args.size}×{args.size} float32"
    plot(results, args.depths, block_bytes, os.path.join(bu.ROOT, "docs", png),
         f"{bu.machine_description(args.device)}; block output {shape}")
    cmd = "python scripts/benchmark_reversible.py " + " ".join(sys.argv[1:])
    body = f"""## benchmark_reversible ({tag})

Command: `{cmd.strip()}` · machine: {bu.machine_description(args.device)} · date: {bu.today()}

Coupling blocks with F, G = conv-BatchNorm-ReLU-conv-BatchNorm at C/2 channels; block output (one tensor of the
core) {shape} = {block_bytes / 2**20:.1f} MiB. Peak step memory is measured in a fresh process per row, during one
training step after a warm-up step, above the level before the step: parameters, their gradients and optimizer
state are allocated before it and not counted; the core's output, the loss and all backward transients are.
{"CPU memory is the resident set (VmHWM after resetting it)." if tag == "cpu" else "GPU memory is torch.cuda.max_memory_allocated."}
Step time: for each depth, one process builds every method and times one training step of each in turn, {args.steps}
rounds; the median per method, as a ratio to plain autograd at the same depth (so load on the machine hits all alike).

{table}

{growth}

{floors}

![peak memory against depth](./{png})
"""
    bu.update_section(f"benchmark_reversible_{tag}", body)


if __name__ == "__main__":
    main()
