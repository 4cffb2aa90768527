"""Peak training memory and step time of whole models: every RevGAN model against its baseline model, RevGAN's core
depth, memory modes and precision.

    python scripts/benchmark_models.py --compare             # every model against its baseline, default flags (2D)
    python scripts/benchmark_models.py --compare --dims 3 --size 48 --ngf 16
    python scripts/benchmark_models.py --compare --device cuda --size 256 --max_side --budget_gb 16   # + largest side
    python scripts/benchmark_models.py                       # CPU: 2D at 128x128, core depth
    python scripts/benchmark_models.py --device cuda --size 256
    python scripts/benchmark_models.py --dims 3 --size 64 --ngf 16     # 3D patches (128 and ngf 64 on a GPU)
    python scripts/benchmark_models.py --dims 3 --device cuda --max_patch --budget_gb 16   # largest cubic patch
    python scripts/benchmark_models.py --precision --device cuda --size 256            # --amp and --compile
    python scripts/benchmark_models.py --precision --dims 3 --device cuda --size 128

``--compare`` rows: each model with the flags users get (the defaults; ``--ngf`` sets --ngf and --ndf where given):
``cycle_gan``, ``unpaired_revgan`` (``--memory low``, the default; ``--memory core``; the other ``--stem``, unshuffle
(conv7 where the model's default is unshuffle); ``--netG iunet``), ``pix2pix`` (unet_256), ``paired_revgan`` (the
same four and ``--two_way``), and with ``--dims 3`` their 3D versions (``--only paired`` or ``unpaired``: those
rows alone, printed); activation memory and the process's total peak at ``--size``, each as a ratio to the
model's baseline, the step time as a ratio to it, and (``--max_side``) the largest side at which one training
step's parameters, gradients, Adam state and activations fit in ``--budget_gb`` (every model at its default
flags; ``--max_side all``: every row).
Depth rows (no ``--compare``): ``cycle_gan`` (resnet_9blocks) and ``unpaired_revgan`` at core depths 6, 9, 18, 36, each with the
memory-saving core and with ``--use_naive`` (plain autograd). 3D rows: ``cycle_gan3d`` (resnet_9blocks) and
``unpaired_revgan3d`` at core depths 0, 1, 2, 4, 8, with and without ``--use_naive``, on single-channel patches.
``--precision`` rows: ``unpaired_revgan`` (core depth 6; 3D: 4) in float32, ``--amp bf16`` and ``--amp fp16``, each
without and with ``--compile``, as ratios to float32 without --compile.
Each row's memory is measured in a fresh process, during one full
training step (generator and both discriminators) after a warm-up step, above the level before it: parameters,
gradients and Adam state are allocated by then, so what is measured is the activation memory (and backward
transients). Step times come from one process that builds every model and times one step of each in turn,
``--steps`` rounds, so load on the machine hits all alike; they are quoted as ratios to CycleGAN. Writes its section
of docs/benchmarks.md and a plot.
"""
import argparse
import contextlib
import io
import json
import os
import sys
import tempfile

import torch
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from scripts import bench_utils as bu  # noqa: E402
from models.config import ModelSpec  # noqa: E402

DEPTHS = {2: [6, 9, 18, 36], 3: [0, 1, 2, 4, 8]}
SUFFIX = {2: "", 3: "3d"}


def configs(dims):
    """(label, model, flags, key) per row; key is None for the CycleGAN reference, else (kind, depth)."""
    sfx = SUFFIX[dims]
    rows = [(f"cycle_gan{sfx} resnet_9blocks", "cycle_gan" + sfx, ["--netG", "resnet_9blocks"], None)]
    for naive in (False, True):
        for d in DEPTHS[dims]:
            flags = ["--n_blocks", str(d)] + (["--use_naive"] if naive else [])
            rows.append((f"unpaired_revgan{sfx} depth {d}" + (" --use_naive" if naive else ""),
                         "unpaired_revgan" + sfx, flags, ("naive" if naive else "revgan", d)))
    return rows


COMPARE_PAIRS = {"unpaired": ("cycle_gan", "unpaired_revgan"), "paired": ("pix2pix", "paired_revgan")}


def default_stem(model):
    """The stem ``model`` builds with default flags (conv7; unshuffle for paired_revgan and the 3D models)."""
    from models import options_spec
    from options.train_options import TrainOptions
    with contextlib.redirect_stdout(io.StringIO()), tempfile.TemporaryDirectory() as tmp:
        opt = TrainOptions().parse(["--name", "bench", "--model", model, "--checkpoints_dir", tmp, "--gpu_ids", "-1"])
    return options_spec(opt).generator.stem


def compare_configs(dims, pairs=tuple(COMPARE_PAIRS)):
    """(label, model, flags, baseline label) per row of --compare: each model with its default flags (``pairs``:
    which of COMPARE_PAIRS); the paired RevGAN also with --two_way (both directions, as the original)."""
    sfx = SUFFIX[dims]
    rows = []
    for base, revgan in (COMPARE_PAIRS[p] for p in pairs):
        base_label = base + sfx
        rows.append((base_label, base + sfx, [], base_label))
        other_stem = "conv7" if default_stem(revgan + sfx) == "unshuffle" else "unshuffle"
        variants = [("", []), (" --memory core", ["--memory", "core"]),
                    (f" --stem {other_stem}", ["--stem", other_stem]), (" --netG iunet", ["--netG", "iunet"])]
        if ModelSpec(revgan).has_one_way:  # the models that train one direction unless --two_way
            variants.append((" --two_way", ["--two_way"]))
        for label, flags in variants:
            rows.append((revgan + sfx + label, revgan + sfx, flags, base_label))
    return rows


PRECISION_DEPTH = {2: 6, 3: 4}


def precision_configs(dims):
    """(label, model, flags, key) per row of --precision; key None for float32 eager (the reference)."""
    rows = []
    for amp in ("none", "bf16", "fp16"):
        for compiled in (False, True):
            label = f"unpaired_revgan{SUFFIX[dims]} {'fp32' if amp == 'none' else amp}" + (" --compile" if compiled
                                                                                           else "")
            flags = ["--n_blocks", str(PRECISION_DEPTH[dims]), "--amp", amp] + (["--compile"] if compiled else [])
            rows.append((label, "unpaired_revgan" + SUFFIX[dims], flags, (amp, compiled) if amp != "none" or compiled
                         else None))
    return rows


def channels(dims):
    return 3 if dims == 2 else 1


def build_model(model, flags, args):
    """The application's model built from its command-line flags, as train.py builds it (--compare: the defaults
    users get, with --ngf/--ndf only where --ngf is given; otherwise --no_dropout and --ngf)."""
    from models import create_model
    from options.train_options import TrainOptions
    compare = getattr(args, "compare", False)
    width = ["--ngf", str(args.ngf), "--ndf", str(args.ngf)] if args.ngf else []
    argv = ["--name", "bench", "--model", model, "--checkpoints_dir", tempfile.mkdtemp(), "--gpu_ids",
            "0" if args.device == "cuda" else "-1", "--crop_size", str(args.size), "--load_size", str(args.size)] + \
        width + ([] if compare else ["--no_dropout"]) + flags + \
        (["--patch_size", str(args.size)] if args.dims == 3 else [])
    with contextlib.redirect_stdout(io.StringIO()):
        opt = TrainOptions().parse(argv)
        m = create_model(opt)
        m.setup(opt)
    return m


def make_step(model, flags, args, m=None):
    """A closure running one training step of ``m`` (built from ``model`` and ``flags`` if not given) on random
    data of --size, and the model."""
    torch.manual_seed(0)
    m = m or build_model(model, flags, args)
    device = torch.device(args.device)
    shape = (args.batch, channels(args.dims)) + (args.size,) * args.dims
    data = {"A": torch.rand(shape, device=device) * 2 - 1, "B": torch.rand(shape, device=device) * 2 - 1,
            "A_paths": ["a"] * args.batch, "B_paths": ["b"] * args.batch}

    def step():
        m.set_input(data)
        m.optimize_parameters()
    return step, m


def state_bytes(m):
    """Parameters, their gradients and optimizer state of every network of ``m``."""
    total = 0
    for name in m.model_names:
        for p in m.net(name).parameters():
            total += p.numel() * p.element_size() * (2 if p.grad is not None else 1)
    for o in m.optimizers:
        for s in o.state.values():
            total += sum(v.numel() * v.element_size() for v in s.values() if torch.is_tensor(v))
    return total


def fill_pools(m, args):
    """Every image pool of ``m`` filled to its size, as after that many iterations (steady state): a full pool holds
    ``--pool_size`` images per discriminator (in host memory, as util.image_pool keeps them)."""
    shape = (1, channels(args.dims)) + (args.size,) * args.dims
    for pool in m.pools.values():
        pool.images = [torch.rand(shape) * 2 - 1 for _ in range(pool.pool_size)]


def allocate_state(m):
    """What a warm-up step leaves behind, without its compute: Adam's state, allocated by one step on zero
    gradients (which moves no parameter), gradients set to None as after zero_grad."""
    for o in m.optimizers:
        params = [p for g in o.param_groups for p in g["params"] if p.requires_grad]
        for p in params:
            p.grad = torch.zeros_like(p)
        o.step()
        o.zero_grad(set_to_none=True)


def worker(args):
    device = torch.device(args.device)
    table = compare_configs if args.compare else precision_configs if args.precision else configs
    rows = {label: (model, flags) for label, model, flags, _ in table(args.dims)}
    if args.label == "timing":
        steps = {label: make_step(*rows[label], args)[0] for label in args.timed}
        print(json.dumps(bu.interleaved_times(steps, args.steps, device)))
        return
    step, m = make_step(*rows[args.label], args)
    if args.probe:
        allocate_state(m)  # --max_side's probes: the state a warm-up step leaves, at a fraction of its time
        small = argparse.Namespace(**{**vars(args), "size": MIN_SIDE[args.dims]})
        make_step(*rows[args.label], small, m)[0]()  # and a step at the smallest side: lazily built caches
    else:
        step()  # warm-up: gradients and optimizer state exist from here on
    if args.precision:
        step()  # --compile: the discriminators' second variant (parameters without gradients) compiles here
    if not args.probe:  # the total peak at steady state (--max_side's budget leaves the pools out: host memory)
        fill_pools(m, args)
    meter = bu.PeakMemory(device)
    meter.start()
    step()
    print(json.dumps({"peak": meter.peak(), "state": state_bytes(m), "total": meter.total_peak()}))


def plot(results, path, title, dims):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    name = "unpaired_revgan" + SUFFIX[dims]
    for kind, label in (("revgan", f"{name} (memory-saving core)"), ("naive", f"{name} --use_naive")):
        pts = [(key[1], r["peak"]) for key, r in results.items() if key and key[0] == kind and "peak" in r]
        if pts:
            ax.plot([d for d, _ in pts], [p / 2**20 for _, p in pts], marker="o", label=label)
    base = results.get(None)
    if base and "peak" in base:
        ax.axhline(base["peak"] / 2**20, color="gray", ls="--", label=f"cycle_gan{SUFFIX[dims]} resnet_9blocks")
    ax.set_xlabel("core depth (coupling blocks)")
    ax.set_ylabel("activation memory of one training step (MiB)")
    ax.set_xticks(DEPTHS[dims])
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def max_patch(args):
    """--max_patch: the largest cubic patch (a multiple of 16) whose whole training step (parameters, gradients,
    Adam state and activations: the process's peak) fits in --budget_gb, at core depth 8, for the memory-saving
    core and for --use_naive. Sizes grow by 16 from 32 until one fails (out of memory) or exceeds the budget."""
    budget = args.budget_gb * 2 ** 30
    rows = []
    for naive in (False, True):
        label = "unpaired_revgan3d depth 8" + (" --use_naive" if naive else "")
        best, size, why = None, 32, ""
        bar = tqdm(desc=label, unit="size")
        while size <= (args.max_size or 512):
            r = bu.run_worker(__file__, ["--label", label, "--device", args.device, "--dims", 3, "--size", size,
                                         "--ngf", args.ngf, "--batch", args.batch])
            bar.update()
            if "error" in r:
                why = f"{size}³ failed: {r['error'].replace('|', '/')}"
                break
            if r["total"] > budget:
                why = f"{size}³ needs {r['total'] / 2**30:.2f} GiB"
                break
            best = (size, r["total"])
            size += 16
        bar.close()
        if best is None:
            rows.append([label, "none", "", why])
        else:
            rows.append([label, f"{best[0]}³", f"{best[1] / 2**30:.2f}",
                         why or f"stopped at --max_size {args.max_size or 512}"])
    table = bu.markdown_table(["model", "largest cubic patch", "its peak (GiB)", "next size"], rows)
    print(table)
    if args.no_docs:
        return
    tag = "cpu" if args.device == "cpu" else "gpu"
    cmd = "python scripts/benchmark_models.py " + " ".join(sys.argv[1:])
    bu.update_section(f"benchmark_models_max_patch_{tag}", f"""## benchmark_models --max_patch ({tag})

Command: `{cmd.strip()}` · machine: {bu.machine_description(args.device)} · date: {bu.today()}

The largest cubic patch (multiple of 16) for which one training step of `unpaired_revgan3d` at core depth 8 (ngf
{args.ngf}, batch {args.batch}) fits in {args.budget_gb:g} GiB, counting parameters, gradients, Adam state and
activations ({"torch.cuda.max_memory_allocated" if args.device != "cpu" else "the process's peak resident set, libraries included"}); each size in a fresh process.

{table}
""")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--dims", type=int, default=2, choices=[2, 3], help="2D images or 3D patches")
    p.add_argument("--size", type=int, default=128, help="image or patch side (2D: 256 on a GPU; 3D: 64, 128)")
    p.add_argument("--ngf", type=int, default=None,
                   help="generator and discriminator width (--ngf and --ndf; default: 64, --compare: each model's own)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--steps", type=int, default=5, help="timed rounds (one step of every model per round; median)")
    p.add_argument("--no_docs", action="store_true", help="print the table only")
    p.add_argument("--max_patch", action="store_true", help="3D: search the largest cubic patch within --budget_gb")
    p.add_argument("--budget_gb", type=float, default=16.0, help="--max_patch, --max_side: memory budget (GiB)")
    p.add_argument("--max_size", type=int, default=None,
                   help="largest side tried (--max_patch: 512; --max_side: 8192 in 2D, 1024 in 3D)")
    p.add_argument("--only", nargs="+", choices=list(COMPARE_PAIRS),
                   help="--compare: only these models and their baselines (prints the table; writes no docs)")
    p.add_argument("--compare", action="store_true",
                   help="every RevGAN model and memory mode against its baseline model, with default flags")
    p.add_argument("--max_side", nargs="?", const="models", choices=["models", "all"],
                   help="--compare: also the largest side (2D: multiple of 64; 3D: of 16) one step fits in "
                        "--budget_gb, for every model at its default flags (all: every row)")
    p.add_argument("--precision", action="store_true",
                   help="unpaired_revgan in fp32, --amp bf16 and --amp fp16, each without and with --compile")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--label", help=argparse.SUPPRESS)
    p.add_argument("--timed", nargs="*", default=[], help=argparse.SUPPRESS)
    p.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.ngf is None and not args.compare:
        args.ngf = 64
    if args.worker:
        return worker(args)

    common = ["--device", args.device, "--dims", args.dims, "--size", args.size, "--batch", args.batch, "--steps",
              args.steps] + (["--ngf", args.ngf] if args.ngf else []) + (["--precision"] if args.precision else []) + \
        (["--compare"] if args.compare else [])
    if args.compare:
        return compare(args, common)
    if args.precision:
        return precision(args, common)
    if args.max_patch:
        if args.dims != 3:
            p.error("--max_patch is for 3D patches: add --dims 3")
        return max_patch(args)
    rows_cfg = configs(args.dims)
    results, times = measure_and_time(rows_cfg, common, "benchmark_models (memory)")
    base_label, first = rows_cfg[0][0], DEPTHS[args.dims][0]
    rows = []
    for label, _, _, key in rows_cfg:
        r = results[label]
        if "error" in r:
            rows.append([label, "failed: " + r["error"].replace("|", "/"), "", "", ""])
            continue
        t, t0 = times.get(label), times.get(base_label)
        ref = results.get(f"unpaired_revgan{SUFFIX[args.dims]} depth {first}"
                          f"{' --use_naive' if key and key[0] == 'naive' else ''}", {})
        rel = f"{r['peak'] / ref['peak']:.2f}" if key and "peak" in ref else ""
        rows.append([label, f"{r['peak'] / 2**20:.1f}", rel, f"{r['state'] / 2**20:.1f}",
                     f"{t / t0:.2f}" if t and t0 else "n/a"])
    table = bu.markdown_table(["model", "activation memory (MiB)", f"÷ same kind at depth {first}",
                               "params + grads + Adam (MiB)", f"step time / cycle_gan{SUFFIX[args.dims]}"], rows)
    print(table)
    if args.no_docs:
        return
    tag = ("cpu" if args.device == "cpu" else "gpu") + ("_3d" if args.dims == 3 else "")
    png = f"benchmark_models_{tag}.png"
    by_key = {key: results[label] for label, _, _, key in rows_cfg}
    shape = "×".join(map(str, (args.batch, channels(args.dims)) + (args.size,) * args.dims))
    plot(by_key, os.path.join(bu.ROOT, "docs", png),
         f"{bu.machine_description(args.device)}; {shape}, ngf {args.ngf}", args.dims)
    cmd = "python scripts/benchmark_models.py " + " ".join(sys.argv[1:])
    body = f"""## benchmark_models ({tag.replace("_", ", ")})

Command: `{cmd.strip()}` · machine: {bu.machine_description(args.device)} · date: {bu.today()}

One full training step (generators, both discriminators, Adam) of each model built by the application from its
command-line flags (ngf {args.ngf}, ndf {args.ngf}; defaults otherwise: the RevGAN models with `--memory low`, no normalization, basic PatchGAN, lsgan;
`--no_dropout`), on a batch of {shape}. Activation memory is the peak of that step above the level before it, in a fresh process per
row, after a warm-up step: parameters, their gradients and Adam state are allocated before it and listed separately.
{"CPU memory is the resident set (VmHWM after resetting it)." if args.device == "cpu" else "GPU memory is torch.cuda.max_memory_allocated."}
Step time: one process builds every model and times one step of each in turn, {args.steps} rounds; median per model,
as a ratio to cycle_gan{SUFFIX[args.dims]}.

{table}

![activation memory against core depth](./{png})
"""
    bu.update_section(f"benchmark_models_{tag}", body)


MIN_SIDE = {2: 64, 3: 32}  # smaller inputs are too small for the default discriminator (3D: 16³ fails)


def largest_side(label, args, measured):
    """The largest side (2D: a multiple of 64; 3D: of 16) at which one training step of row ``label`` keeps what a
    GPU's allocator would hold (parameters, gradients, Adam state and the step's activation peak; the image pools
    live in host memory) within --budget_gb, each size probed in a fresh process.
    ``measured``: the row's result at --size. Memory grows about with the pixel (voxel) count, so each probe goes
    where a line through the last two measurements (memory against side**dims) meets the budget, inside the
    interval not yet decided, until the sides that fit and fail are one unit apart.
    Returns (side, its model memory in bytes, why the next size is not it)."""
    budget, unit, d = args.budget_gb * 2 ** 30, 64 if args.dims == 2 else 16, args.dims
    common = ["--label", label, "--device", args.device, "--dims", d, "--batch", args.batch, "--compare", "--probe"] + \
        (["--ngf", args.ngf] if args.ngf else [])
    need = lambda r: r["state"] + r["peak"]  # noqa: E731
    points = [(0, measured.get("state", 0))] + ([(args.size, need(measured))] if "peak" in measured else [])
    cap = (args.max_size or {2: 8192, 3: 1024}[d]) // unit * unit
    lo, hi, best, why = None, cap + unit, None, f"stopped at --max_size {cap}"
    failed = False  # the last probe failed (out of memory, a timeout): no measurement, so bisect
    with tqdm(desc=label, unit="probe", leave=False) as bar:
        while True:
            lower, upper = (lo + unit if lo else MIN_SIDE[d]), hi - unit
            if lower > upper:
                break
            s1, m1 = points[-1]
            s0, m0 = next(((s, m) for s, m in reversed(points) if s != s1), (0, 0))
            k = (m1 - m0) / (s1 ** d - s0 ** d) if s1 != s0 else 0
            x = max(s1 ** d + (budget - m1) / k, 0) if k > 0 else 0
            side = round(x ** (1 / d))
            side = (side - 1 if side ** d > x else side) // unit * unit  # the largest side whose power is <= x
            if failed:
                side = (lower + upper) // 2 // unit * unit
            side = min(max(side, lower), upper)
            r = bu.run_worker(__file__, common + ["--size", side], timeout=7200)
            bar.update()
            failed = "error" in r
            if failed:
                hi, why = side, f"{side} failed: {r['error'].replace('|', '/')}"
                continue
            points.append((side, need(r)))
            if need(r) > budget:
                hi, why = side, f"{side} needs {need(r) / 2**30:.2f} GiB"
            else:
                lo, best = side, (side, need(r))
    return best, why


def side_note(args):
    """What the largest-side column of --compare --max_side means, for the docs."""
    return (f"Largest side: the largest square (cube) side, a multiple of {64 if args.dims == 2 else 16}, at which one "
            f"step needs at most {args.budget_gb:g} GiB for parameters, gradients, Adam state and the step's "
            "activations (what a GPU's allocator holds; the image pools of the unpaired models live in host memory, "
            "the libraries are not counted), with the next multiple measured above it. Each size in a fresh process, "
            "after a warm-up step at the smallest side (64² / 32³) and Adam's state allocated by a step on zero "
            "gradients; sizes chosen by a line through the last two measurements against the pixel (voxel) count. "
            + ("Searched for every row." if args.max_side == "all" else
               "Searched for each model at its default flags; the other rows follow from their activation memory."))


def measure_and_time(rows_cfg, common, desc, unit="model"):
    """Each row's memory in a fresh process, then one process timing every row that did not fail, round-robin:
    (results by label, step times by label)."""
    results = {}
    for label, *_ in tqdm(rows_cfg, desc=desc, unit=unit):
        results[label] = bu.run_worker(__file__, ["--label", label] + common)
    ok = [label for label, *_ in rows_cfg if "peak" in results[label]]
    print(f"timing every {unit} round-robin ...", file=sys.stderr)
    times = bu.run_worker(__file__, ["--label", "timing", "--timed"] + ok + common, timeout=7200, mmap=False)
    return results, times


def compare(args, common):
    """--compare: every RevGAN model and memory mode against its baseline, with the flags users get."""
    rows_cfg = compare_configs(args.dims, args.only or tuple(COMPARE_PAIRS))
    results, times = measure_and_time(rows_cfg, common, "benchmark_models --compare (memory)")
    sides = {}
    if args.max_side:
        for label, _, _, base in tqdm(rows_cfg, desc=f"largest side in {args.budget_gb:g} GiB", unit="model"):
            if args.max_side == "all" or label == base or " " not in label:
                sides[label] = largest_side(label, args, results[label])
    rows = []
    for label, model, flags, base in rows_cfg:
        r, b = results[label], results[base]
        if "error" in r:
            rows.append([label, "failed: " + r["error"].replace("|", "/")] + [""] * (6 + bool(sides)))
            continue
        t, t0 = times.get(label), times.get(base)
        row = [label, f"{r['peak'] / 2**20:.1f}", f"{r['peak'] / b['peak']:.3f}" if "peak" in b else "",
               f"{r['total'] / 2**20:.0f}", f"{r['total'] / b['total']:.2f}" if "total" in b else "",
               f"{r['state'] / 2**20:.1f}", f"{t / t0:.2f}" if t and t0 else "n/a"]
        if sides:
            best, why = sides.get(label, (None, ""))
            row.append((f"{best[0]} ({best[1] / 2**30:.2f} GiB; {why})" if best else f"none ({why})") if why else
                       "not searched")
        rows.append(row)
    header = ["model", "activation memory (MiB)", "÷ baseline", "total peak (MiB)", "÷ baseline",
              "params + grads + Adam (MiB)", "step time ÷ baseline"] + \
        ([f"largest side in {args.budget_gb:g} GiB"] if sides else [])
    table = bu.markdown_table(header, rows)
    print(table)
    if args.no_docs or args.only:
        return results, times, sides
    tag = ("cpu" if args.device == "cpu" else "gpu") + ("_3d" if args.dims == 3 else "")
    shape = "×".join(map(str, (args.batch, channels(args.dims)) + (args.size,) * args.dims))
    cmd = "python scripts/benchmark_models.py " + " ".join(sys.argv[1:])
    width = f"--ngf {args.ngf} --ndf {args.ngf}" if args.ngf else "each model's default width"
    where = ("the process's resident set (VmHWM after resetting it; large allocations through mmap, "
             "MALLOC_MMAP_THRESHOLD_=65536 MALLOC_TRIM_THRESHOLD_=0, so freed tensors leave it as on a GPU)"
             if args.device == "cpu" else "torch.cuda.max_memory_allocated")
    bu.update_section(f"benchmark_models_compare_{tag}", f"""## benchmark_models --compare ({tag.replace("_", ", ")})

Command: `{cmd.strip()}` · machine: {bu.machine_description(args.device)} · date: {bu.today()}

Every RevGAN model against its baseline model with the flags users get ({width}; everything else the model's
defaults: the RevGAN models train with `--memory low`, their core of 6 coupling blocks, dropout as each model
defaults it), one full training step (generators, discriminators, Adam) on a batch of {shape}. Activation memory:
the peak of that step above the level before it, after a warm-up step (parameters, gradients and Adam state exist by
then and are listed separately); total peak: the whole process's peak ({where}), libraries included, and on the CPU the unpaired models'
full image pools (50 earlier fakes per discriminator, as after 50 iterations; on a GPU they stay in host memory).
Each row in a fresh process. Step time: one process (default allocator, no mmap setting) builds every model and times one step of each in turn, {args.steps} rounds,
median, as a ratio to the row's baseline model (the first row of its group).
{side_note(args) if sides else ""}

{table}
""")
    return results, times, sides


def precision(args, common):
    """--precision: activation memory and step time of --amp bf16/fp16 and --compile against float32 eager."""
    rows_cfg = precision_configs(args.dims)
    results, times = measure_and_time(rows_cfg, common, "benchmark_models --precision (memory)", unit="row")
    base = rows_cfg[0][0]
    rows = []
    for label, *_ in rows_cfg:
        r = results[label]
        if "error" in r:
            rows.append([label, "failed: " + r["error"].replace("|", "/"), "", ""])
            continue
        t, t0 = times.get(label), times.get(base)
        rows.append([label, f"{r['peak'] / 2**20:.1f}", f"{r['peak'] / results[base]['peak']:.2f}"
                     if "peak" in results[base] else "", f"{t / t0:.2f}" if t and t0 else "n/a"])
    table = bu.markdown_table(["configuration", "activation memory (MiB)", "÷ fp32", "step time ÷ fp32"], rows)
    print(table)
    if args.no_docs:
        return
    tag = ("cpu" if args.device == "cpu" else "gpu") + ("_3d" if args.dims == 3 else "")
    shape = "×".join(map(str, (args.batch, channels(args.dims)) + (args.size,) * args.dims))
    cmd = "python scripts/benchmark_models.py " + " ".join(sys.argv[1:])
    bu.update_section(f"benchmark_models_precision_{tag}", f"""## benchmark_models --precision ({tag.replace("_", ", ")})

Command: `{cmd.strip()}` · machine: {bu.machine_description(args.device)} · date: {bu.today()}

One full training step of `unpaired_revgan{SUFFIX[args.dims]}` (memory-saving core of depth {PRECISION_DEPTH[args.dims]}, ngf
{args.ngf}, batch {shape}) in float32, under `--amp bf16` and `--amp fp16` (autocast; the core's stream stays float32),
each without and with `--compile` (encoders, decoders and discriminators; the core stays eager). Memory: the peak of
one step above the level before it, in a fresh process per row, after two warm-up steps (compilation included);
{"CPU: the resident set." if args.device == "cpu" else "torch.cuda.max_memory_allocated."} Time: one process runs
a step of each row in turn, {args.steps} rounds, median, as a ratio to float32 without --compile.

{table}
""")


if __name__ == "__main__":
    main()
