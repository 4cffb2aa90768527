"""Quality along the application's default schedule, on the 3D benchmark tasks: each model trained once with
train.py's schedule (--n_epochs 100 --n_epochs_decay 100 at --lr 0.0002, unless changed here), a checkpoint every
K epochs, every checkpoint tested on the held-out volume by test.py. It answers what the quality benchmark
(scripts/benchmark_quality.py, budgets of 6-12 epochs) cannot: whether a model that has not learned a task in a
short budget learns it at the length users train, and where along the way.

    python scripts/benchmark_schedule.py --quick --tasks t2w3d --train_flags="--ngf 8 --ndf 8"  # CPU: ~1 h a run
    python scripts/benchmark_schedule.py --device cuda --quick --tasks t2w3d tissue3d --seeds 2  # GPU
    python scripts/benchmark_schedule.py --tiny --docs /tmp/s.md  # smoke configuration (tests): numbers mean nothing

Data, flags and references are the quality benchmark's (its --quick, full or --tiny sizes and 3D flags; its
HOUSEKEEPING, but a checkpoint every K epochs), with the schedule above instead of its short one and every model's
own generator (the application's defaults: --n_blocks 6 for the RevGAN, resnet_9blocks for the baseline); per
checkpoint: PSNR, SSIM and MAE over the whole test volume (test.py's metrics), PSNR inside the brain, and the
correlation of the output inside the brain with the input and with the target (a model that keeps its input's
order of intensities correlates with the input; on t2w3d, whose target reverses the T1's order, negatively with
the target). Writes a table and a plot to docs/benchmarks.md (section benchmark_schedule_cpu or _gpu) and
docs/benchmark_schedule_*.png.
"""
import argparse
import json
import os
import sys
import textwrap
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from datasets import make_quality_benchmark as mqb  # noqa: E402
from scripts import bench_utils as bu  # noqa: E402
from scripts import benchmark_quality as bq  # noqa: E402

TASKS_3D = [task for task in bq.TASKS if bq.dims(task) == 3]
HEADER = ["task", "model", "seed", "epoch", "training time (s)", "PSNR (dB)", "SSIM", "MAE", "PSNR in the brain (dB)",
          "r with the input", "r with the target"]


def correlations(out, a, b):
    """Correlation inside the brain (input above 0) of ``out`` with the input ``a`` and with the target ``b``."""
    mask = np.asarray(a) > 0
    o = np.asarray(out, np.float64)[mask]
    return tuple(float(np.corrcoef(o, np.asarray(x, np.float64)[mask])[0, 1]) for x in (a, b))


def test_checkpoint(ctx, task, name, model, epoch):
    """test.py on checkpoint ``epoch`` of run ``name``; its scores (the quality benchmark's, with the correlations)."""
    argv = bq.run_flags(ctx, task, name, model) + ["--results_dir", os.path.join(ctx.work, "results"), "--num_test",
                                                   "1000000", "--epoch", str(epoch)]
    mean, error, out_dir, _ = bq.run_test(ctx, name, argv, os.path.join(ctx.logs, f"{name}_test_{epoch}.log"),
                                          f"{name} epoch {epoch}", epoch)
    if mean is None:
        raise SystemExit(f"test.py of {name}, epoch {epoch}, failed: {error}")
    window = ctx.metas[task]["window"]
    brain, r_in, r_out = [], [], []
    for a, b, fake in bq.output_volumes(ctx, task, out_dir):
        brain.append(bq.brain_psnr(fake, b, a, window[1] - window[0]))
        r = correlations(fake, a, b)
        r_in.append(r[0])
        r_out.append(r[1])
    return {"epoch": epoch, "PSNR": mean["PSNR_fake_B"], "SSIM": mean["SSIM_fake_B"], "MAE": mean["MAE_fake_B"],
            "PSNR_brain": float(np.mean(brain)), "r_input": float(np.mean(r_in)), "r_target": float(np.mean(r_out))}


def run_model(ctx, task, model, seed):
    """Trains ``model`` on ``task`` with the schedule, a checkpoint every ctx.every epochs, and tests each."""
    name = f"{task}_{model}_{ctx.n_epochs}+{ctx.n_epochs_decay}ep_seed{seed}"
    total = ctx.n_epochs + ctx.n_epochs_decay
    own = ["--netG", ctx.baseline_netG] if ctx.baseline_netG and model == bq.TASKS[task][0] else []
    argv = bq.run_flags(ctx, task, name, model) + ["--n_epochs", str(ctx.n_epochs), "--n_epochs_decay",
                                                   str(ctx.n_epochs_decay), "--seed", str(seed)] + \
        bq.HOUSEKEEPING + bq.task_flags(ctx, task) + own + ["--lr", str(ctx.lr), "--save_epoch_freq", str(ctx.every)]
    log = os.path.join(ctx.logs, name + "_train.log")
    print(f"  [{task}] {model}, seed {seed}: training {total} epochs ... (log: {log})", flush=True)
    rc, secs, ends = bq.run_entry("train.py", argv, log, f"[{task}] {model} seed {seed}", ctx.t0)
    if rc != 0:
        raise SystemExit(f"train.py of {name} failed (exit {rc}): {bq.log_tail(log)}")
    checkpoints = list(range(ctx.every, total, ctx.every)) + [total]
    rows = []
    for epoch in checkpoints:
        scores = test_checkpoint(ctx, task, name, model, "latest" if epoch == total else epoch)
        scores.update(epoch=epoch, train_s=ends[epoch - 1] if len(ends) >= epoch else secs)
        print(f"  [{task}] {model}, seed {seed}, epoch {epoch}: PSNR {scores['PSNR']:.2f} dB, in the brain "
              f"{scores['PSNR_brain']:.2f}, r with input {scores['r_input']:+.2f}, with target "
              f"{scores['r_target']:+.2f}", flush=True)
        rows.append(scores)
    return {"task": task, "model": model, "seed": seed, "train_s": secs, "train_argv": argv, "checkpoints": rows}


def plot(ctx, runs, references, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    tasks = list(dict.fromkeys(r["task"] for r in runs))
    fig, axes = plt.subplots(2, len(tasks), figsize=(5.2 * len(tasks), 6.4), squeeze=False)
    colours = {}
    for col, task in enumerate(tasks):
        for run in (r for r in runs if r["task"] == task):
            colour = colours.setdefault(run["model"], f"C{len(colours)}")
            xs = [c["epoch"] for c in run["checkpoints"]]
            for row, key in enumerate(("PSNR_brain", "r_target")):
                axes[row][col].plot(xs, [c[key] for c in run["checkpoints"]], marker="o", color=colour, ms=3,
                                    label=f"{run['model']}, seed {run['seed']}",
                                    ls="-" if run["seed"] == ctx.seeds[0] else "--")
        for method, scores in references[task]:
            axes[0][col].axhline(scores["PSNR_brain"], color="0.6", lw=0.8, ls=":")
            axes[0][col].text(0.01, scores["PSNR_brain"], method.split(" (")[0], fontsize=6, color="0.4",
                              va="bottom", transform=axes[0][col].get_yaxis_transform())
        axes[0][col].set_title(ctx.metas[task]["title"], fontsize=9)
        axes[0][col].set_ylabel("PSNR in the brain (dB)", fontsize=8)
        axes[1][col].set_ylabel("r of the output with the target, in the brain", fontsize=8)
        axes[1][col].axhline(0, color="0.6", lw=0.8, ls=":")
        axes[1][col].set_ylim(-1.05, 1.05)
        axes[1][col].set_xlabel("epoch", fontsize=8)
        axes[0][col].legend(fontsize=6)
    fig.suptitle(textwrap.fill(title, 60 * len(tasks)), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report(ctx, runs, references, args):
    tag = "cpu" if ctx.device == "cpu" else "gpu"
    rows = [[r["task"], r["model"], r["seed"], c["epoch"], f"{c['train_s']:.0f}", f"{c['PSNR']:.2f}",
             f"{c['SSIM']:.4f}", f"{c['MAE']:.4f}", f"{c['PSNR_brain']:.2f}", f"{c['r_input']:+.2f}",
             f"{c['r_target']:+.2f}"] for r in runs for c in r["checkpoints"]]
    ref_rows = [[task, method, "", "", "", f"{s['PSNR']:.2f}", f"{s['SSIM']:.4f}", f"{s['MAE']:.4f}",
                 f"{s['PSNR_brain']:.2f}", "", ""] for task in references for method, s in references[task]]
    table = bu.markdown_table(HEADER, ref_rows + rows)
    print(table)
    with open(os.path.join(ctx.work, "results.json"), "w") as f:
        json.dump({"mode": ctx.mode, "device": ctx.device, "machine": bu.machine_description(ctx.device),
                   "date": bu.today(), "command": ctx.command, "runs": runs,
                   "references": {t: [{"method": m, "scores": s} for m, s in refs] for t, refs in references.items()}},
                  f, indent=1)
    if args.no_docs:
        return
    docs = os.path.abspath(args.docs)
    os.makedirs(os.path.dirname(docs), exist_ok=True)
    png = f"benchmark_schedule_{tag}.png"
    title = f"{bu.machine_description(ctx.device)}; --{ctx.mode}" + \
        (" (smoke configuration, not results)" if ctx.mode == "tiny" else "")
    plot(ctx, runs, references, os.path.join(os.path.dirname(docs), png), title)
    smoke = ("**Smoke configuration (`--tiny`): tiny data and networks trained for seconds, only to check that the "
             "script runs; these numbers are not results.**\n\n" if ctx.mode == "tiny" else "")
    flags = "\n".join(f"- {r['task']} {r['model']}, seed {r['seed']}: `python train.py {' '.join(r['train_argv'])}`"
                      for r in runs)
    body = f"""## benchmark_schedule ({tag}, {ctx.mode})

Command: `{ctx.command}` · machine: {bu.machine_description(ctx.device)} · date: {bu.today()}

{smoke}Each model trained once per seed with {ctx.n_epochs} epochs at `--lr {ctx.lr:g}` and {ctx.n_epochs_decay}
decaying to 0 (train.py's default schedule is 100 + 100 at 0.0002), a checkpoint every {ctx.every} epochs, each tested
by test.py on the held-out volume of the quality benchmark's data (`scripts/benchmark_schedule.py` says what is
measured; the reference rows are the quality benchmark's). r: the correlation of the output with the input and with
the target, inside the brain. Training time: the wall time of train.py at the checkpoint's epoch. Torch threads per
process: {bq.torch_threads()}. The runs:

{flags}

{table}

![PSNR in the brain and the correlation with the target along the schedule](./{png})
"""
    bu.update_section(f"benchmark_schedule_{tag}", body, path=docs)
    print(f"wrote the section benchmark_schedule_{tag} of {docs} and {png}")


def main(argv=None):
    p = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument("--quick", action="store_true", help="the quality benchmark's CPU sizes; default: full sizes")
    p.add_argument("--tiny", action="store_true", help="smoke configuration for tests: seconds; numbers mean nothing")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--tasks", nargs="+", default=["t2w3d"], choices=TASKS_3D)
    p.add_argument("--models", nargs="+", default=None,
                   help="which of each task's two models (default both: its baseline model and its RevGAN model)")
    p.add_argument("--n_epochs", type=int, default=100, help="epochs at the initial learning rate (train.py's: 100)")
    p.add_argument("--n_epochs_decay", type=int, default=100, help="epochs decaying to 0 (train.py's: 100)")
    p.add_argument("--lr", type=float, default=0.0002, help="initial learning rate (train.py's default, 0.0002)")
    p.add_argument("--every", type=int, default=25, help="a checkpoint tested every K epochs (and the last)")
    p.add_argument("--seeds", type=int, default=1, help="train every model with N seeds, --seed S .. S+N-1")
    p.add_argument("--first_seed", type=int, default=0, help="S, the first seed")
    p.add_argument("--baseline_netG", default=None,
                   help="the baseline models' generator (default: the application's, resnet_9blocks for cycle_gan3d "
                        "and pix2pix3d; benchmark_quality.py uses resnet_6blocks, as deep as the RevGAN's 6 couplings)")
    p.add_argument("--train_flags", default="",
                   help="more train.py flags for every model, e.g. --train_flags='--ngf 8 --ndf 8'")
    p.add_argument("--workdir", default=os.path.join(bu.ROOT, ".bench", "schedule"),
                   help="data, checkpoints, results, logs and results.json")
    p.add_argument("--docs", default=bu.BENCHMARKS_MD, help="the markdown file whose section is written")
    p.add_argument("--no_docs", action="store_true", help="print the table and write results.json only")
    args = p.parse_args(argv)
    if args.quick and args.tiny:
        p.error("--quick and --tiny exclude each other")
    if args.n_epochs < 0 or args.n_epochs_decay < 0 or args.n_epochs + args.n_epochs_decay < 1:
        p.error("--n_epochs and --n_epochs_decay must be 0 or more, together at least 1")
    for flag in ("every", "seeds"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag} must be at least 1")
    if args.first_seed < 0:
        p.error("--first_seed must be 0 or more")
    if args.lr <= 0:
        p.error("--lr must be above 0")
    models = sorted({m for task in args.tasks for m in bq.TASKS[task]})
    if args.models and not set(args.models) <= set(models):
        p.error(f"--models: choose among {', '.join(models)} (the models of --tasks)")
    if args.device == "cuda":
        import torch
        if not torch.cuda.is_available():
            p.error("--device cuda: no GPU found")
    ctx = bq.Context()
    ctx.mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    ctx.device, ctx.baseline_netG, ctx.lr, ctx.every = args.device, args.baseline_netG, args.lr, args.every
    ctx.n_epochs, ctx.n_epochs_decay = args.n_epochs, args.n_epochs_decay
    ctx.train_flags = args.train_flags.split()
    ctx.seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    ctx.work = os.path.abspath(args.workdir)
    ctx.data = os.path.join(ctx.work, "data")
    ctx.logs = os.path.join(ctx.work, "logs")
    os.makedirs(ctx.logs, exist_ok=True)
    ctx.command = "python scripts/benchmark_schedule.py " + " ".join(sys.argv[1:] if argv is None else argv)
    ctx.t0 = time.perf_counter()
    print(f"benchmark_schedule ({ctx.mode}, {ctx.device}): building the data in {ctx.data} ...", flush=True)
    ctx.metas = mqb.build(ctx.data, tasks=args.tasks, **bq.MODES[ctx.mode]["data"])
    references, runs = {}, []
    for task in args.tasks:
        references[task] = bq.task_references(task, os.path.join(ctx.data, task), ctx.metas[task])[1]
        for seed in ctx.seeds:
            for model in bq.TASKS[task]:
                if not args.models or model in args.models:
                    runs.append(run_model(ctx, task, model, seed))
    print(f"done in {time.perf_counter() - ctx.t0:.0f} s")
    report(ctx, runs, references, args)
    return runs


if __name__ == "__main__":
    main()
