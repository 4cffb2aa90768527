"""Translation quality on held-out real data: each RevGAN model against its baseline model, at equal epochs and at
an equal time budget, beside the copy-the-input baseline and simple non-learned baselines per task, on tasks close
to the identity and on tasks whose input and target look nothing alike.

    python scripts/benchmark_quality.py --quick --seeds 2        # CPU (make bench): a few hours on 2 cores
    python scripts/benchmark_quality.py --device cuda --seeds 2  # GPU: full sizes
    python scripts/benchmark_quality.py --quick --tasks map2d_unpaired --epochs 12
    python scripts/benchmark_quality.py --quick --references_only  # the non-learned rows only: seconds
    python scripts/benchmark_quality.py --tiny --docs /tmp/b.md  # smoke configuration (tests): numbers mean nothing

Tasks (built by datasets/make_quality_benchmark.py from real images that ship inside installed packages; nothing is
downloaded; see that module for every detail):

Near-identity (the output is the input, corrected):
- ``paired2d``, camera restoration, 2D paired: B a photo, A the same photo through a low-light camera (optical blur,
  white-balance error, underexposure, signal-dependent sensor noise, JPEG quality 40). Training tiles: random crops
  of 6 photos (scikit-image's astronaut, coffee, rocket, motorcycle (left view), immunohistochemistry; scikit-learn's
  china); test tiles: a grid of non-overlapping tiles of 3 other photos (scikit-image's chelsea, scikit-learn's
  flower, matplotlib's grace_hopper), never seen in training. Models: pix2pix against paired_revgan.
- ``unpaired2d``, faded-photo restoration, 2D unpaired: A the photo faded like an old print (desaturated, warm cast,
  compressed contrast, gamma, film grain), B the photo. The two training domains come from disjoint parts of the
  training photos (a checkerboard of cells of twice the tile size: A tiles inside one colour of cells of the faded
  photo, B tiles inside the other colour of the clean photo); evaluated on real (A, B) pairs of the held-out photos.
  Models: cycle_gan against unpaired_revgan (A -> B reported).
- ``thick3d``, thick-slice to thin-slice brain MRI, 3D paired: B nilearn's MNI152 T1 template (2 mm voxels in
  --quick, 1 mm in the full sizes), A the same volume acquired with axial slices ``factor`` times thicker (--quick:
  3, so 6 mm slices; full: 5, so 5 mm) and linearly interpolated back to the thin grid. The template is exactly
  left/right symmetric, so the split is along y: train on the posterior part, test on the anterior part, with a gap
  of 12 mm between them. Models: pix2pix3d against paired_revgan3d, tested on the whole held-out volume by test.py's
  sliding window.
Cross-domain (input and target look different; copying the input is no answer):
- ``map2d``, photo to map, 2D paired: A the photo, B the photo drawn as a map (superpixel regions in flat map
  colours chosen by the region's colour and texture, darker borders; make_quality_benchmark.render_map), the photos
  and split of paired2d. Models: pix2pix against paired_revgan.
- ``map2d_unpaired``, the same, trained unpaired from disjoint cells as unpaired2d. Models: cycle_gan against
  unpaired_revgan.
- ``tissue3d``, T1 to grey-matter map, 3D unpaired: A the MNI152 T1, B its grey-matter probability map (bright in
  the cortex, dark in white matter, where the T1 is brightest), the split of thick3d; the models draw their A and B
  patches independently. Models: cycle_gan3d against unpaired_revgan3d.
- ``t2w3d``, T1 to T2-weighted MRI, 3D unpaired: A the MNI152 T1, B a T2-weighted rendering of it from its grey- and
  white-matter probability maps (make_quality_benchmark.render_t2: CSF bright, grey matter mid, white matter dark,
  the T1's contrast reversed inside the brain, dark outside), the split and training of tissue3d. Unlike the
  grey-matter map, nothing is lost: the translation is one-to-one, the unpaired task users know from MRI
  (T1 <-> T2). Models: cycle_gan3d against unpaired_revgan3d.

Reference rows, on the same test data with the same metric code (evaluation.metrics.compare): copy the input (A itself),
and simple non-learned methods fitted on the training data only: on every task the mean of the B training data output
everywhere (a constant colour or intensity: a model not above it has learned no more than the target's average, whatever
its distance from the copy); paired2d and map2d a per-channel affine colour fit (least squares, 3x4) and a per-colour
look-up table (32 bins per channel, the mean target colour of each bin over the training pairs; bins without training
pixels use the affine fit); unpaired2d and map2d_unpaired per-channel histogram matching of the A training tiles to the
B training tiles (no pairs used, as for the models), and for map2d_unpaired also the look-up table fitted on pairs of
the training photos, which the models never get; thick3d cubic-spline interpolation of the acquired thick slices
(instead of the input's linear one), clipped to the window; tissue3d and t2w3d intensity histogram matching (unpaired)
and a per-intensity look-up table fitted on the training pair (which the models never get).

Models are trained and tested through the application's entry points, ``python train.py`` and ``python test.py``
in subprocesses, with the flags a user would pick (printed in the docs section). Budgets: every baseline model
trains N epochs (time T); its RevGAN model trains N epochs (equal epochs) and, separately, for T (equal time): N
epochs (the same schedule) of fewer samples each where it is slower, more where it is faster, as many as fit in T by
the per-epoch time measured in its own N-epoch run (an epoch's time is its samples' steps): in 2D
``--samples_per_epoch`` (a random draw of that many training images each epoch), in 3D ``--samples_per_volume``;
whole epochs are too coarse in a short run (a model at 1.1x its baseline's step time would lose a sixth of a 6-epoch
budget). The run itself where its N epochs take T to the sample.
T and the per-epoch time are means over every seed's N-epoch runs, so every seed gets the same budget and one
slow or fast run (identical commands vary up to 1.3x in wall time on a shared CPU) weighs less. In 2D the baseline
model also trains N epochs with pytorch-CycleGAN-and-pix2pix's defaults (pix2pix: unet_256, batch norm, dropout;
cycle_gan: resnet_9blocks; no residual), at the benchmark's width. The RevGAN model also trains N epochs with
``--netG iunet`` (the invertible U-Net, the least memory; ``--no_iunet`` skips it). On the paired tasks the RevGAN
model also trains with ``--two_way`` (both directions, a second discriminator, as the original RevGAN; the default
trains A -> B only), at N epochs and at equal time by its own per-epoch time (``--no_two_way`` skips it).
``--seeds N`` repeats every model run with ``--seed`` S .. S+N-1 (S: ``--first_seed``, 0 by default).
Metrics: PSNR, SSIM and MAE, from test.py's metrics.json for the models; 2D on RGB in [0, 1] (data range 1), 3D on
the template's units in the window 0-255 (data range 255), whole volume, and PSNR inside the brain (T1 input > 0).
Writes the section ``benchmark_quality_<cpu|gpu>`` of docs/benchmarks.md (or --docs), a plot beside it, and
WORKDIR/results.json.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from datasets import make_quality_benchmark as mqb  # noqa: E402
from models.config import ModelSpec  # noqa: E402
from models.upstream import upstream_norm  # noqa: E402
from scripts import bench_utils as bu  # noqa: E402
from util.results import number  # noqa: E402

TASKS = {  # task -> (baseline model, RevGAN model)
    "paired2d": ("pix2pix", "paired_revgan"),
    "unpaired2d": ("cycle_gan", "unpaired_revgan"),
    "thick3d": ("pix2pix3d", "paired_revgan3d"),
    "map2d": ("pix2pix", "paired_revgan"),
    "map2d_unpaired": ("cycle_gan", "unpaired_revgan"),
    "tissue3d": ("cycle_gan3d", "unpaired_revgan3d"),
    "t2w3d": ("cycle_gan3d", "unpaired_revgan3d"),
}
# Near-identity tasks (the output is the input, corrected) and cross-domain tasks (input and target look different).
CROSS_DOMAIN = ("map2d", "map2d_unpaired", "tissue3d", "t2w3d")
# The unpaired 3D cross-domain tasks (the T1 to a volume on its grid; the same references) and what their B is.
CROSS_3D_TARGETS = {"tissue3d": "its grey-matter probability map",
                    "t2w3d": "its T2-weighted rendering (from its tissue probability maps: CSF bright, white matter "
                             "dark)"}
# The baseline models as pytorch-CycleGAN-and-pix2pix configures them (2D only: upstream has no 3D models), at the
# benchmark's width: pix2pix's U-Net with batch norm and dropout, CycleGAN's 9-block ResNet with instance norm;
# neither has a residual.
UPSTREAM_FLAGS = {model: ["--netG", netG, "--norm", upstream_norm(model), "--no_residual"]
                  for model, netG in (("pix2pix", "unet_256"), ("cycle_gan", "resnet_9blocks"))}


def dims(task):
    return 3 if task.endswith("3d") else 2


# Per mode: the data sizes (datasets/make_quality_benchmark.build) and, per task, the epochs and the flags.
MODES = {
    "quick": {
        "data": mqb.SIZES["quick"],
        "epochs": {"paired2d": 6, "unpaired2d": 8, "thick3d": 6, "map2d": 8, "map2d_unpaired": 8, "tissue3d": 12,
                   "t2w3d": 12},
        "2d": ["--ngf", "32", "--ndf", "32", "--n_downsampling", "1"],
        # 3D at --ngf 16 (the full mode's width, and what 3D users run or more), not 8: at 8 each coupling of the
        # RevGAN works on 8 channels, a ResNet block on 16, and pix2pix3d led by 0.27 dB (docs/benchmarks.md, "The
        # unshuffle stem")
        "3d": ["--ngf", "16", "--ndf", "16", "--n_downsampling", "1", "--netD", "n_layers", "--n_layers_D", "2",
               "--patch_size", "32", "--samples_per_volume", "32", "--lr", "0.0005"],
    },
    "full": {
        "data": mqb.SIZES["full"],
        "epochs": {"paired2d": 30, "unpaired2d": 30, "thick3d": 40, "map2d": 30, "map2d_unpaired": 30,
                   "tissue3d": 60, "t2w3d": 60},
        "2d": ["--ngf", "64", "--ndf", "64", "--n_downsampling", "2"],
        "3d": ["--ngf", "16", "--ndf", "16", "--n_downsampling", "1", "--netD", "n_layers", "--n_layers_D", "3",
               "--patch_size", "64", "--samples_per_volume", "64"],
    },
    "tiny": {  # smoke configuration for tests: seconds per run; its numbers are not results
        "data": mqb.SIZES["tiny"],
        "epochs": {task: 1 for task in TASKS},
        "2d": ["--ngf", "4", "--ndf", "4", "--n_downsampling", "1"],
        "3d": ["--ngf", "4", "--ndf", "4", "--n_downsampling", "1", "--netD", "n_layers", "--n_layers_D", "1",
               "--patch_size", "16", "--samples_per_volume", "2"],
    },
}
# The same for every mode: equal structure for the pair (dropout off, depth 6: the RevGAN's core of 6 coupling
# blocks against the ResNet generator of 6 residual blocks; no normalization, every model's default); each model
# keeps its own losses and GAN mode.
COMMON = ["--no_dropout"]
# No data-loading worker processes, no visdom, no training page, no intermediate checkpoints or loss lines: the
# same for both models, and nothing that competes with training for the CPU.
HOUSEKEEPING = ["--num_threads", "0", "--display_id", "0", "--no_html", "--print_freq", "1000000000",
                "--save_latest_freq", "1000000000", "--save_epoch_freq", "1000000000"]
FLAGS_2D = ["--preprocess", "none"]
FLAGS_3D = ["--intensity_A", "window:0,255", "--intensity_B", "window:0,255"]
REVGAN_FLAGS = ["--n_blocks", "6"]
LUT_BINS = 32


def plural(n, word, many=None):
    return f"{n} {word if n == 1 else many or word + 's'}"


def decay_epochs(n):
    """--n_epochs_decay of an n-epoch run: the last third (the rest at the initial learning rate)."""
    return n // 3


# -- non-learned baselines -----------------------------------------------------------------------------------------
def read_rgb(path):
    from PIL import Image
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.float64) / 255.0


def pairs(folder, phase):
    """(name, A array, B array) of PHASEA/PHASEB images with the same name (sorted)."""
    names = sorted(os.listdir(os.path.join(folder, phase + "A")))
    return [(n, read_rgb(os.path.join(folder, phase + "A", n)), read_rgb(os.path.join(folder, phase + "B", n)))
            for n in names if os.path.isfile(os.path.join(folder, phase + "B", n))]


def pixels(folder, sub):
    return np.concatenate([read_rgb(os.path.join(folder, sub, n)).reshape(-1, 3)
                           for n in sorted(os.listdir(os.path.join(folder, sub)))])


def fit_affine(a, b):
    """Least-squares 3x4 colour map a -> b (pixels as rows)."""
    x = np.concatenate([a, np.ones((len(a), 1))], axis=1)
    w, *_ = np.linalg.lstsq(x, b, rcond=None)
    return lambda img: np.concatenate([img, np.ones(img.shape[:-1] + (1,))], axis=-1) @ w


def fit_lut(a, b, bins=LUT_BINS):
    """Per-colour look-up table: the mean target colour of each of bins³ input-colour bins; empty bins fall back to
    the affine fit."""
    affine = fit_affine(a, b)

    def index(img):
        q = np.minimum((img * bins).astype(np.int64), bins - 1)
        return (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
    idx = index(a)
    count = np.bincount(idx, minlength=bins ** 3)
    table = np.stack([np.bincount(idx, weights=b[:, c], minlength=bins ** 3) for c in range(3)], axis=1)
    filled = count > 0
    table[filled] /= count[filled, None]

    def apply(img):
        i = index(img)
        return np.where(filled[i][..., None], table[i], affine(img))
    return apply


def fit_constant(b):
    """The mean of the target values ``b`` (pixels as rows, or voxels), output everywhere whatever the input: what
    a model scores that learned the target domain's average colour and nothing of the translation."""
    mean = np.mean(b, axis=0)
    return lambda x: np.broadcast_to(mean, np.shape(x)).astype(np.float64)


def fit_histogram_matching(a, b):
    """Per-channel histogram matching of the A pixels' distribution onto the B pixels' (no pairs needed)."""
    maps = []
    levels = np.arange(256) / 255.0
    for c in range(3):
        ha = np.bincount(np.rint(a[:, c] * 255).astype(int), minlength=256).astype(np.float64)
        hb = np.bincount(np.rint(b[:, c] * 255).astype(int), minlength=256).astype(np.float64)
        ca, cb = np.cumsum(ha) / ha.sum(), np.cumsum(hb) / hb.sum()
        maps.append(np.interp(ca - ha / (2 * ha.sum()), cb - hb / (2 * hb.sum()), levels))

    def apply(img):
        q = np.rint(np.clip(img, 0, 1) * 255).astype(int)
        return np.stack([maps[c][q[..., c]] for c in range(3)], axis=-1)
    return apply


def image_scores(test_pairs, fn):
    """Mean of evaluation.metrics.compare over the test pairs of fn(A) against B (RGB in [0, 1], data range 1)."""
    from evaluation.metrics import compare
    rows = [compare(np.clip(fn(a), 0, 1).transpose(2, 0, 1), b.transpose(2, 0, 1), 1.0) for _, a, b in test_pairs]
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def brain_psnr(output, target, inp, data_range):
    """PSNR inside the brain: the voxels where the input (a T1 volume, 0 outside the brain) is above 0."""
    mask = np.asarray(inp) > 0
    mse = float(np.mean((np.asarray(output, np.float64)[mask] - np.asarray(target, np.float64)[mask]) ** 2))
    return float(10 * np.log10(data_range ** 2 / max(mse, 1e-20)))


def test_volumes(folder):
    """(name, A, B) of the test volumes (original units)."""
    from util.volume import list_volumes, load_volume, volume_stem
    return [(volume_stem(p), load_volume(p)[0], load_volume(os.path.join(folder, "testB", os.path.basename(p)))[0])
            for p in list_volumes(os.path.join(folder, "testA"))]


def volume_scores(folder, fn, window):
    """Mean over the test volumes of compare(fn(name, A), B) in original units, data range = the window, and the
    PSNR inside the brain."""
    from evaluation.metrics import compare
    rows = []
    for name, a, b in test_volumes(folder):
        out = np.asarray(fn(name, a), np.float32)
        row = compare(out[None], b[None], data_range=window[1] - window[0])
        row["PSNR_brain"] = brain_psnr(out, b, a, window[1] - window[0])
        rows.append(row)
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def fit_intensity_lut(a, b, window, bins=256):
    """Per-intensity look-up table for volumes: the mean target value of each of ``bins`` input-intensity bins over
    the window (pairs of voxels); empty bins interpolate between their neighbours."""
    lo, hi = window
    idx = np.clip(((a - lo) / (hi - lo) * bins).astype(np.int64), 0, bins - 1).ravel()
    count = np.bincount(idx, minlength=bins)
    total = np.bincount(idx, weights=b.ravel().astype(np.float64), minlength=bins)
    filled = count > 0
    centres = np.arange(bins)
    table = np.interp(centres, centres[filled], total[filled] / count[filled])
    return lambda vol: table[np.clip(((vol - lo) / (hi - lo) * bins).astype(np.int64), 0, bins - 1)]


def fit_intensity_matching(a, b):
    """Histogram matching of volume intensities (no pairs needed): the quantile of each A value in A's training
    voxels mapped to the same quantile of B's."""
    qs = np.linspace(0, 1, 1025)
    qa, qb = np.quantile(a, qs), np.quantile(b, qs)
    return lambda vol: np.interp(vol, qa, qb)


CONSTANT = "the mean target of the training data (a constant)"


def reference_methods(task, folder, meta):
    """[(method, fn)] of the copy baseline and the task's non-learned baseline(s), fitted on the training data:
    fn(A) -> output for 2D (RGB arrays in [0, 1]), fn(name, A) -> output for 3D (original units). Baselines that use
    training pairs on unpaired tasks (which the models never get) say so."""
    from util.volume import list_volumes, load_volume
    if dims(task) == 3:
        a, b = (np.concatenate([load_volume(p)[0].ravel() for p in list_volumes(os.path.join(folder, "train" + s))])
                for s in "AB")
        const = fit_constant(b)
        constant = (CONSTANT, lambda name, v: const(v))
    if task == "thick3d":
        window = meta["window"]

        def cubic(name, a):
            thick = load_volume(os.path.join(folder, "acquired", name + ".nii.gz"))[0]
            return np.clip(mqb.interpolate_thick(thick, a.shape[2], meta["factor"], order=3), *window)
        return [("copy the input (linear interpolation)", lambda name, a: a), constant,
                ("cubic-spline interpolation of the thick slices", cubic)]
    if task in CROSS_3D_TARGETS:
        lut, match = fit_intensity_lut(a, b, meta["window"]), fit_intensity_matching(a, b)
        return [("copy the input", lambda name, v: v), constant,
                ("intensity histogram matching (unpaired)", lambda name, v: match(v)),
                ("per-intensity look-up table (fitted on training pairs the models never see)", lambda name, v: lut(v))]
    methods = [("copy the input", lambda a: a), (CONSTANT, fit_constant(pixels(folder, "trainB")))]
    if task in ("paired2d", "map2d"):
        a, b = pixels(folder, "trainA"), pixels(folder, "trainB")
        methods.append(("per-channel affine colour fit", fit_affine(a, b)))
        methods.append((f"per-colour look-up table ({LUT_BINS}³ bins)", fit_lut(a, b)))
    else:
        methods.append(("per-channel histogram matching (unpaired)",
                        fit_histogram_matching(pixels(folder, "trainA"), pixels(folder, "trainB"))))
    if task == "map2d_unpaired":
        a, b = (np.concatenate([x.reshape(-1, 3) for x in side]) / 255.0
                for side in zip(*mqb.photo_pairs(mqb.mapped, meta["photo_side"])))
        methods.append((f"per-colour look-up table ({LUT_BINS}³ bins, fitted on training pairs the models never see)",
                        fit_lut(a, b)))
    return methods


def task_references(task, folder, meta):
    """(methods, rows): the task's reference methods fitted on its training data, and their rows on its test data."""
    methods = reference_methods(task, folder, meta)
    return methods, reference_rows(task, folder, meta, methods)


def reference_rows(task, folder, meta, methods):
    """[(method, scores)] of ``methods`` on the task's test data."""
    if dims(task) == 3:
        return [(m, volume_scores(folder, fn, meta["window"])) for m, fn in methods]
    test = pairs(folder, "test")
    return [(m, image_scores(test, fn)) for m, fn in methods]


# -- training and testing through the entry points -----------------------------------------------------------------
def run_entry(script, argv, log_path, label, t_start):
    """Runs ``python script argv`` (train.py or test.py) in the repository root, its output to ``log_path``; prints
    a line at each epoch's end. Returns (exit status, wall seconds, seconds at each epoch's end)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    epoch_ends = []
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-u", script] + argv, cwd=bu.ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        for line in proc.stdout:
            log.write(line)
            m = re.match(r"end of epoch (\d+) / (\d+)", line.strip())
            if m:
                now = time.perf_counter() - t0
                epoch_ends.append(now)
                print(f"    {label}: epoch {m[1]}/{m[2]} done at {now:.0f} s "
                      f"(benchmark at {time.perf_counter() - t_start:.0f} s)", flush=True)
        rc = proc.wait()
    return rc, time.perf_counter() - t0, epoch_ends


def log_tail(path, n=3):
    lines = [line.strip() for line in open(path) if line.strip()]
    return " / ".join(lines[-n:])[-300:]


def run_flags(ctx, task, name, model):
    """The flags train.py and test.py share for run ``name``: its data, name, model, checkpoints folder and device."""
    return ["--dataroot", os.path.join(ctx.data, task), "--name", name, "--model", model, "--checkpoints_dir",
            os.path.join(ctx.work, "checkpoints"), "--gpu_ids", "0" if ctx.device == "cuda" else "-1"]


def run_test(ctx, name, argv, log_path, label, epoch="latest"):
    """test.py with ``argv`` on checkpoint ``epoch`` of run ``name``. Returns (its mean metrics, or None where it
    failed; the error then; its results folder; its wall seconds)."""
    rc, secs, _ = run_entry("test.py", argv, log_path, label, ctx.t0)
    out_dir = os.path.join(ctx.work, "results", name, f"test_{epoch}")
    metrics_path = os.path.join(out_dir, "metrics.json")
    if rc != 0 or not os.path.isfile(metrics_path):
        return None, f"test.py exit {rc}: {log_tail(log_path)}", out_dir, secs
    with open(metrics_path) as f:
        mean = {k: number(v) for k, v in json.load(f).get("mean", {}).items()}
    if "PSNR_fake_B" not in mean:
        return None, f"{metrics_path} holds no mean PSNR_fake_B", out_dir, secs
    return mean, None, out_dir, secs


def output_volumes(ctx, task, results_dir):
    """(A, B, the model's A -> B from test.py's ``results_dir``) of each test volume of ``task``, original units."""
    from util.volume import load_volume
    return [(a, b, load_volume(os.path.join(results_dir, "volumes", "fake_B", vol + ".nii.gz"))[0])
            for vol, a, b in test_volumes(os.path.join(ctx.data, task))]


def train_and_test(ctx, task, model, epochs, flags, seed=0, tag=""):
    """Trains ``model`` for ``epochs`` (``--seed seed``) and tests it; returns a result dict (metrics, times) or one
    with "error"."""
    name = f"{task}_{model}{tag}_{epochs}ep_seed{seed}"
    label = f"[{task}] {model}{tag.replace('_', ' ')}, {plural(epochs, 'epoch')}, seed {seed}"
    ckpt, results, logs = (os.path.join(ctx.work, d) for d in ("checkpoints", "results", "logs"))
    os.makedirs(logs, exist_ok=True)
    for d in (os.path.join(ckpt, name), os.path.join(results, name)):
        shutil.rmtree(d, ignore_errors=True)
    decay = decay_epochs(epochs)
    base = run_flags(ctx, task, name, model)
    argv = base + ["--n_epochs", str(epochs - decay), "--n_epochs_decay", str(decay), "--seed", str(seed)] + \
        HOUSEKEEPING + flags
    print(f"  {label}: training ... (log: {os.path.join(logs, name + '_train.log')})", flush=True)
    rc, secs, ends = run_entry("train.py", argv, os.path.join(logs, name + "_train.log"), label, ctx.t0)
    out = {"name": name, "model": model, "seed": seed, "epochs": epochs, "n_epochs": epochs - decay,
           "n_epochs_decay": decay, "train_s": secs, "epoch_ends": ends, "train_argv": argv,
           "train_samples": training_samples(os.path.join(logs, name + "_train.log"))}
    if rc != 0:
        out["error"] = f"train.py exit {rc}: {log_tail(os.path.join(logs, name + '_train.log'))}"
        print(f"  {label}: FAILED after {secs:.0f} s: {out['error']}", flush=True)
        return out
    print(f"  {label}: trained in {secs:.0f} s; testing ...", flush=True)
    test_argv = base + ["--results_dir", results, "--num_test", "1000000", "--baseline", "copy"] + \
        (FLAGS_2D[:2] if dims(task) == 2 else [])  # copy: test.py's checked against this script's (its own refs)
    mean, error, results_dir, tsecs = run_test(ctx, name, test_argv, os.path.join(logs, name + "_test.log"), label)
    out["test_s"] = tsecs
    if mean is None:
        out["error"] = error
        print(f"  {label}: test FAILED: {out['error']}", flush=True)
        return out
    out["scores"] = {k: mean[f"{k}_fake_B"] for k in ("PSNR", "SSIM", "MAE")}
    out["copy_scores"] = {k: mean.get(f"baseline_{k}_fake_B") for k in ("PSNR", "SSIM", "MAE")}
    out["results_dir"] = results_dir
    if dims(task) == 3:
        window = ctx.metas[task]["window"]
        out["scores"]["PSNR_brain"] = float(np.mean([brain_psnr(fake, b, a, window[1] - window[0])
                                                     for a, b, fake in output_volumes(ctx, task, results_dir)]))
    print(f"  {label}: PSNR {out['scores']['PSNR']:.2f} dB, SSIM {out['scores']['SSIM']:.4f}, MAE "
          f"{out['scores']['MAE']:.4f}" + (f", PSNR in the brain {out['scores']['PSNR_brain']:.2f} dB"
                                          if "PSNR_brain" in out["scores"] else "") +
          f" (tested in {tsecs:.0f} s; benchmark at {time.perf_counter() - ctx.t0:.0f} s)", flush=True)
    return out


def epoch_time(run):
    """(per-epoch time, fixed cost) of ``run``: the per-epoch time from the epoch ends of the run, the fixed cost
    (start-up, saving) the rest of its wall time."""
    ends, n = run["epoch_ends"], run["epochs"]
    if len(ends) >= 2:
        per_epoch = (ends[-1] - ends[0]) / (len(ends) - 1)
    else:  # one epoch, or train.py's "end of epoch" lines not seen: the whole run, start-up included
        per_epoch = ends[-1] if len(ends) == n else run["train_s"] / n
    return per_epoch, max(0.0, run["train_s"] - n * per_epoch)


def equal_time_samples(budget_s, runs):
    """(samples per epoch, per-epoch time, fixed cost) of a model's N-epoch ``runs`` (one per seed): the samples per
    epoch (2D: training images; 3D: patches per volume) that fit its epochs in ``budget_s``, taking an epoch's time as
    proportional to its samples (per-epoch overheads make the run finish early) and the per-epoch time and fixed cost
    as their means over ``runs``; at least 1. Fewer than the runs' own where the model is slower than the budget,
    more where it is faster: the time a faster model saves is its to train with, as a user with that hour would.
    Finer than whole epochs, which in a short run leave the slower model up to an epoch short of the budget."""
    per_epoch, fixed = (float(np.mean(v)) for v in zip(*(epoch_time(run) for run in runs)))
    full = samples(runs[0])
    return max(1, int(full * (budget_s - fixed) / (runs[0]["epochs"] * per_epoch))), per_epoch, fixed


SAMPLE_FLAGS = {2: "--samples_per_epoch", 3: "--samples_per_volume"}  # what an equal-time run trains more or fewer of


def training_samples(log):
    """The training images (samples) train.py reported in ``log`` ("the number of training images = N"), or None."""
    try:
        with open(log, errors="replace") as f:
            found = re.search(r"the number of training images = (\d+)", f.read())
    except OSError:
        return None
    return int(found.group(1)) if found else None


def given(run, flag):
    """The last value of ``flag`` (``flag V`` or ``flag=V``) in a run's train.py argv, as int, or None."""
    argv = run.get("train_argv", [])
    values = [v for i, a in enumerate(argv) for v in
              ([argv[i + 1]] if a == flag and i + 1 < len(argv) else [a[len(flag) + 1:]] if a.startswith(flag + "=")
               else [])]
    return int(values[-1]) if values else None


def samples(run):
    """The samples each epoch of a run took: its --samples_per_volume (3D) or --samples_per_epoch (2D), else (2D) the
    training images train.py reported."""
    return given(run, "--samples_per_volume") or given(run, "--samples_per_epoch") or run.get("train_samples")


def budget_samples(budget):
    """(samples per epoch, unit) of an equal-time budget; (None, None) for whole epochs."""
    if budget.get("samples_per_volume"):
        return budget["samples_per_volume"], ("patch", "patches")
    if budget.get("samples_per_epoch"):
        return budget["samples_per_epoch"], ("sample", "samples")
    return None, None


def length(budget):
    """"6 epochs", "6 epochs of 150 samples" (2D) or "6 epochs of 27 patches per volume" (3D)."""
    k, unit = budget_samples(budget)
    return plural(budget["epochs"], "epoch") + (
        f" of {plural(k, *unit)}" + (" per volume" if unit[0] == "patch" else "") if k else "")


def epochs_cell(run):
    """The table's epochs: "6"; "6 × 150 samples" (2D, --samples_per_epoch) or "6 × 27 patches" (3D: patches per
    volume in each epoch)."""
    k, unit = budget_samples({"samples_per_volume": given(run, "--samples_per_volume"),
                              "samples_per_epoch": given(run, "--samples_per_epoch")})
    return str(run["epochs"]) + (f" × {plural(k, *unit)}" if k else "")


def bar_label(model, run, kind):
    """A run's name in the plots: "paired_revgan, 6 ep (=epochs)"; equal-time runs trained with fewer or more samples
    per epoch (at_equal_time's tag in the run's name) with their count, "paired_revgan, 6 ep × 88 (=time)"."""
    other = re.search(r"_(\d+)(samples|patches)_\d+ep_", run.get("name", ""))
    return f"{model}, {run['epochs']} ep{f' × {other.group(1)}' if other else ''}{SHORT_LABELS[kind]}"


def task_flags(ctx, task, upstream=False):
    """The flags of a task's runs; ``upstream``: the baseline model as pytorch-CycleGAN-and-pix2pix configures it
    (its generator, norm, dropout and no residual), at the benchmark's width."""
    mode = MODES[ctx.mode]
    if dims(task) == 3:
        return COMMON + FLAGS_3D + mode["3d"] + ctx.train_flags
    if upstream:
        return FLAGS_2D + mode["2d"] + ctx.train_flags + UPSTREAM_FLAGS[TASKS[task][0]]
    return COMMON + FLAGS_2D + mode["2d"] + ctx.train_flags


RUN_KINDS = ("baseline", "upstream", "revgan_epochs", "revgan_time", "twoway_epochs", "twoway_time", "iunet")
RUN_LABELS = {"baseline": "", "upstream": ", upstream defaults", "revgan_epochs": ", equal epochs",
              "revgan_time": ", equal time", "twoway_epochs": " --two_way, equal epochs",
              "twoway_time": " --two_way, equal time", "iunet": " --netG iunet, equal epochs"}
SHORT_LABELS = {"baseline": "", "upstream": " (upstream)", "revgan_epochs": " (=epochs)", "revgan_time": " (=time)",
                "twoway_epochs": " two-way (=epochs)", "twoway_time": " two-way (=time)",
                "iunet": " iunet (=epochs)"}  # in the plots
IUNET_FLAGS = ["--netG", "iunet"]  # the most memory-efficient generator: what it costs in quality
TWO_WAY_FLAGS = ["--two_way"]  # paired RevGAN models trained both ways: what the second direction costs per hour


def run_task(ctx, task, meta):
    """The task's reference rows and, for each seed, its runs: the baseline model (N epochs), the baseline with
    upstream's defaults (2D), the RevGAN model at N epochs, then at the baseline's time: every seed gets the same
    budget, computed from the means of every seed's N-epoch runs (a slow or fast run of one model evens out)."""
    baseline, revgan = TASKS[task]
    folder = os.path.join(ctx.data, task)
    t = time.perf_counter()
    ctx.methods[task], refs = task_references(task, folder, meta)
    print(f"  [{task}] reference baselines computed in {time.perf_counter() - t:.1f} s: " + "; ".join(
        f"{m}: {s['PSNR']:.2f} dB" for m, s in refs), flush=True)
    n = ctx.epochs or MODES[ctx.mode]["epochs"][task]
    flags = task_flags(ctx, task)
    runs = {kind: [] for kind in RUN_KINDS}
    two_way = ModelSpec(revgan).has_one_way and not getattr(ctx, "no_two_way", False)
    two_flags = flags + REVGAN_FLAGS + TWO_WAY_FLAGS
    for seed in ctx.seeds:
        runs["baseline"].append(train_and_test(ctx, task, baseline, n, flags + ["--netG", ctx.baseline_netG], seed))
        runs["revgan_epochs"].append(train_and_test(ctx, task, revgan, n, flags + REVGAN_FLAGS, seed))
        if dims(task) == 2 and baseline in UPSTREAM_FLAGS and not ctx.no_upstream:
            runs["upstream"].append(train_and_test(ctx, task, baseline, n, task_flags(ctx, task, upstream=True),
                                                   seed, tag="_upstream"))
        if not ctx.no_iunet:
            runs["iunet"].append(train_and_test(ctx, task, revgan, n, flags + IUNET_FLAGS, seed, tag="_iunet"))
        if two_way:
            runs["twoway_epochs"].append(train_and_test(ctx, task, revgan, n, two_flags, seed, tag="_twoway"))
    budget = equal_time_budget(task, revgan, n, runs["baseline"], runs["revgan_epochs"])
    twoway_budget = equal_time_budget(task, revgan, n, runs["baseline"], runs["twoway_epochs"], "_twoway")
    for i, seed in enumerate(ctx.seeds):
        for kind, epochs_kind, model_flags, own, tag in (
                ("revgan_time", "revgan_epochs", flags + REVGAN_FLAGS, budget, ""),
                ("twoway_time", "twoway_epochs", two_flags, twoway_budget, "_twoway")):
            if own:
                runs[kind].append(at_equal_time(ctx, task, revgan, n, model_flags, seed, runs[epochs_kind][i], own,
                                                tag))
    check_copy(task, refs[0][1], [r for kind in runs.values() for r in kind])
    return {"task": task, "meta": meta, "references": [{"method": m, "scores": s} for m, s in refs],
            "runs": {k: v for k, v in runs.items() if v}, "epochs": n, "baseline": baseline, "revgan": revgan,
            "budget": budget, "twoway_budget": twoway_budget, "seeds": list(ctx.seeds)}


def equal_time_budget(task, model, n, base_runs, runs, tag=""):
    """The equal-time budget of ``model`` (``tag``: its variant) from every seed's successful N-epoch runs: the
    baseline's mean training time, the epochs (and schedule) kept, the samples in each that fit (2D: all of them,
    and no such key, where the epochs fill it to the sample). None where a model has no successful run."""
    flag = SAMPLE_FLAGS[dims(task)]
    base_runs = [r for r in base_runs if "error" not in r]
    runs = [r for r in runs if "error" not in r]
    if not base_runs or not runs:
        return None
    if not samples(runs[0]):
        print(f"  [{task}] no equal-time run: {runs[0].get('name')}'s log does not say how many training images it "
              f"read", flush=True)
        return None
    budget_s = float(np.mean([r["train_s"] for r in base_runs]))
    k, per_epoch, fixed = equal_time_samples(budget_s, runs)
    budget = {"epochs": n, "per_epoch_s": per_epoch, "fixed_s": fixed, "budget_s": budget_s,
              "from_runs": [len(base_runs), len(runs)]}
    if dims(task) == 3 or k != samples(runs[0]):
        budget[flag.lstrip("-")] = k
    print(f"  [{task}] budget: {budget_s:.0f} s ({TASKS[task][0]}, {plural(n, 'epoch')}; mean of "
          f"{plural(len(base_runs), 'run')}); {model}{tag.replace('_', ' ')} takes {per_epoch:.1f} s per epoch + "
          f"{fixed:.0f} s fixed (mean of {plural(len(runs), 'run')}) -> {length(budget)}", flush=True)
    return budget


def seeds_text(result):
    """Which runs a budget's time is the mean of: "mean of 2 seeds" ("first seed" for results of earlier versions,
    whose budgets came from it)."""
    counts = (result.get("budget") or {}).get("from_runs")
    return "first seed" if counts is None else "one run" if counts[0] == 1 else f"mean of {counts[0]} seeds"


def at_equal_time(ctx, task, model, n, flags, seed, run, budget, tag=""):
    """The run of ``model`` with ``flags`` for this seed that fits in ``budget``: ``run`` (its N-epoch run) itself
    where its N epochs take the budget, else a run of the same epochs with fewer or more samples in each."""
    k, unit = budget_samples(budget)
    if k is None or k == samples(run):
        return run
    return train_and_test(ctx, task, model, n, flags + [SAMPLE_FLAGS[dims(task)], str(k)], seed,
                          tag=f"{tag}_{k}{unit[1]}")


def check_copy(task, copy, runs):
    """The copy baseline computed here must equal test.py's (same data, same metric code): a guard that the
    non-learned rows and the models are scored alike."""
    for run in runs:
        theirs = run.get("copy_scores", {}).get("PSNR")
        if theirs is not None and abs(theirs - copy["PSNR"]) > 1e-3:
            print(f"  [{task}] warning: test.py's copy baseline for {run['name']} is {theirs:.4f} dB, this script's "
                  f"{copy['PSNR']:.4f} dB: the reference rows and the models are not scored on the same data",
                  flush=True)


def mean_scores(runs):
    """The mean scores of the runs that did not fail, and each run's PSNR (None where it failed)."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return None, [None] * len(runs)
    return ({k: float(np.mean([r["scores"][k] for r in ok])) for k in ok[0]["scores"]},
            [r["scores"]["PSNR"] if "error" not in r else None for r in runs])


# -- report ---------------------------------------------------------------------------------------------------------
def fmt(scores, psnrs=None):
    """PSNR (with each seed's in brackets when there are several), SSIM, MAE and the PSNR in the brain (3D)."""
    psnr = f"{scores['PSNR']:.2f}"
    if psnrs and len(psnrs) > 1:
        psnr += " (" + " / ".join("failed" if p is None else f"{p:.2f}" for p in psnrs) + ")"
    brain = f"{scores['PSNR_brain']:.2f}" if "PSNR_brain" in scores else ""
    return [psnr, f"{scores['SSIM']:.4f}", f"{scores['MAE']:.4f}", brain]


def run_label(result, kind):
    model = result["baseline"] if kind in ("baseline", "upstream") else result["revgan"]
    return model + RUN_LABELS[kind]


def table_rows(result):
    """[task, method, epochs, training time, time / budget, PSNR, SSIM, MAE, PSNR in the brain] rows of one task;
    model rows hold the mean over the seeds (times too)."""
    task, rows = result["task"], []
    for ref in result["references"]:
        rows.append([task, ref["method"], "", "", ""] + fmt(ref["scores"]))
    base = [r["train_s"] for r in result["runs"].get("baseline", []) if "error" not in r]
    budget = float(np.mean(base)) if base else None
    for kind in RUN_KINDS:
        runs = result["runs"].get(kind)
        if not runs:
            continue
        scores, psnrs = mean_scores(runs)
        if scores is None:
            rows.append([task, run_label(result, kind), epochs_cell(runs[0]), "", "",
                         "failed: " + runs[0]["error"].replace("|", "/"), "", "", ""])
            continue
        secs = float(np.mean([r["train_s"] for r in runs if "error" not in r]))
        rows.append([task, run_label(result, kind), epochs_cell(runs[0]), f"{secs:.0f}",
                     f"{secs / budget:.2f}" if budget else ""] + fmt(scores, psnrs))
    return rows


HEADER = ["task", "method", "epochs", "training time (s)", "time ÷ baseline model's", "PSNR (dB)", "SSIM", "MAE",
          "PSNR in the brain (dB)"]


def findings(result):
    """One sentence per task, computed from the numbers (means over the seeds): what beats what, and the targets
    of the project (cross-domain unpaired: 5 dB above the copy; cross-domain paired: above the best non-learned
    baseline; near-identity: nothing learned below the copy; RevGAN at least its baseline at equal time), and on
    every task the models not above the constant (the mean target), which have learned no translation."""
    refs, task = result["references"], result["task"]
    key = "PSNR_brain" if dims(task) == 3 else "PSNR"
    unit = "PSNR in the brain" if key == "PSNR_brain" else "PSNR"
    entries = [(ref["method"], ref["scores"][key]) for ref in refs]
    means = {kind: mean_scores(runs)[0] for kind, runs in result["runs"].items()}
    entries += [(run_label(result, kind), m[key]) for kind, m in means.items() if m]
    best = max(entries, key=lambda e: e[1])
    copy = refs[0]["scores"][key]
    parts = [f"best {unit}: {best[0]} ({best[1]:.2f} dB)"]
    first = (result["runs"].get("baseline") or [{}])[0]
    baseline_length = length({"epochs": result["epochs"], "samples_per_volume": given(first, "--samples_per_volume")})
    for kind, flag, what, budget in (("revgan_epochs", "", "at equal epochs", None),
                                     ("revgan_time", "", "at equal time", "budget"),
                                     ("twoway_time", " --two_way", "at equal time", "twoway_budget")):
        if means.get("baseline") and means.get(kind):
            d = means[kind][key] - means["baseline"][key]
            parts.append(f"{result['revgan']}{flag} − {result['baseline']} {what}: {d:+.2f} dB" +
                         (f" ({length(result[budget])} against {baseline_length})" if budget else ""))
    if means.get("upstream") and means.get("revgan_epochs"):
        d = means["revgan_epochs"][key] - means["upstream"][key]
        parts.append(f"{result['revgan']} − {result['baseline']} with upstream defaults at equal epochs: {d:+.2f} dB")
    learned = [(label, v) for label, v in entries[len(refs):]]
    if task in CROSS_DOMAIN and TASKS[task][0].startswith("cycle"):
        short = [label for label, v in learned if v < copy + 5]
        parts.append("every model at least 5 dB above the copy" if not short else
                     "less than 5 dB above the copy: " + ", ".join(short))
    elif task in CROSS_DOMAIN:
        best_ref = max(entries[1:len(refs)], key=lambda e: e[1])
        short = [label for label, v in learned if v <= best_ref[1]]
        parts.append(f"every model above the best non-learned baseline ({best_ref[0]})" if not short else
                     f"not above {best_ref[0]}: " + ", ".join(short))
    else:
        below = [label for label, v in learned if v < copy]
        parts.append("no model below the copy" if not below else "below the copy baseline: " + ", ".join(below))
    constant = dict(entries[:len(refs)]).get(CONSTANT)
    below = [label for label, v in learned if constant is not None and v <= constant]
    if below:  # a model that scores no better than one colour everywhere has not learned the translation (yet)
        parts.append(f"not above the constant ({constant:.2f} dB): " + ", ".join(below))
    return f"- {task}: " + "; ".join(parts) + "."


def plot(results, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, len(results), figsize=(4.6 * len(results), 6.6), squeeze=False)
    colours = {"ref": "#b0b0b0", "baseline": "#4c72b0", "upstream": "#8fa8d6", "revgan_epochs": "#dd8452",
               "revgan_time": "#f2b88c", "twoway_epochs": "#c44e52", "twoway_time": "#e8a3a5", "iunet": "#55a868"}
    for col, result in enumerate(results):
        key = "PSNR_brain" if dims(result["task"]) == 3 else "PSNR"
        names, values, cs = [], {key: [], "SSIM": []}, []
        for ref in result["references"]:
            names.append(ref["method"].split(" (")[0])
            cs.append(colours["ref"])
            for k in values:
                values[k].append(ref["scores"][k])
        for kind in RUN_KINDS:
            scores = mean_scores(result["runs"].get(kind, []))[0]
            if scores is None:
                continue
            runs = result["runs"][kind]
            model = result["baseline"] if kind in ("baseline", "upstream") else result["revgan"]
            names.append(bar_label(model, runs[0], kind))
            cs.append(colours[kind])
            for k in values:
                values[k].append(scores[k])
        labels = {key: "PSNR in the brain (dB)" if key == "PSNR_brain" else "PSNR (dB)", "SSIM": "SSIM"}
        for row, k in enumerate(values):
            ax = axes[row][col]
            y = np.arange(len(names))[::-1]
            ax.barh(y, values[k], color=cs)
            lo = min(values[k])
            span = max(values[k]) - lo or 1.0
            ax.set_xlim(lo - 0.25 * span, max(values[k]) + 0.1 * span)
            ax.axvline(values[k][0], color="k", lw=0.8, ls="--")
            ax.set_yticks(y)
            ax.set_yticklabels(names, fontsize=7)
            ax.set_xlabel(labels[k], fontsize=8)
            ax.tick_params(axis="x", labelsize=7)
            if row == 0:
                title_lines = textwrap.fill(result["meta"]["title"], 36, break_on_hyphens=False)  # within the panel
                ax.set_title(title_lines, fontsize=9)
    fig.suptitle(title + " (model bars: mean over the seeds)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def example_panels(ctx, result):
    """[(title, image)] for one held-out item of a task: the input, the non-learned baselines, each model's output
    (its first seed's run), the target. 2D: the middle test tile; 3D: the coronal slice through the middle of the
    test volume (z up)."""
    task, folder = result["task"], os.path.join(ctx.data, result["task"])
    methods = ctx.methods.get(task, [])
    firsts = {kind: runs[0] for kind, runs in result["runs"].items() if runs and "error" not in runs[0]}
    panels = []
    if dims(task) == 3:
        from util.volume import load_volume
        name = sorted(os.listdir(os.path.join(folder, "testA")))[0]
        stem = name[:-len(".nii.gz")]
        a = load_volume(os.path.join(folder, "testA", name))[0]
        y = a.shape[1] // 2

        def cut(vol):
            return np.clip(np.asarray(vol)[:, y, :].T[::-1] / 255.0, 0, 1)
        panels.append(("input A", cut(a)))
        panels += [(m.split(" (")[0], cut(fn(stem, a))) for m, fn in methods[1:]]
        for kind, run in firsts.items():
            path = os.path.join(run["results_dir"], "volumes", "fake_B", name)
            if os.path.isfile(path):
                panels.append((bar_label(run["model"], run, kind), cut(load_volume(path)[0])))
        panels.append(("target B", cut(load_volume(os.path.join(folder, "testB", name))[0])))
        return panels
    names = sorted(os.listdir(os.path.join(folder, "testA")))
    name = names[len(names) // 2]
    a = read_rgb(os.path.join(folder, "testA", name))
    panels.append(("input A", a))
    panels += [(m.split(" (")[0], np.clip(fn(a), 0, 1)) for m, fn in methods[1:]]
    for kind, run in firsts.items():
        path = os.path.join(run["results_dir"], "images", "fake_B", os.path.splitext(name)[0] + ".png")
        if os.path.isfile(path):
            panels.append((bar_label(run["model"], run, kind), read_rgb(path)))
    panels.append(("target B", read_rgb(os.path.join(folder, "testB", name))))
    return panels


def plot_examples(ctx, results, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [example_panels(ctx, r) for r in results]
    cols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.9 * cols, 2.2 * len(rows)), squeeze=False)
    for i, panels in enumerate(rows):
        for j in range(cols):
            ax = axes[i][j]
            ax.axis("off")
            if j < len(panels):
                label, img = panels[j]
                ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
                ax.set_title(label, fontsize=6)
        axes[i][0].text(-0.08, 0.5, results[i]["task"], transform=axes[i][0].transAxes, rotation=90,
                        va="center", ha="right", fontsize=8)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


DEGRADATIONS = {"paired2d": "a low-light camera: blur, white-balance error, underexposure, sensor noise, JPEG 40",
                "unpaired2d": "a faded print: desaturation, warm cast, compressed contrast, gamma, grain",
                "map2d": "the photo itself; B: the photo drawn as a map (flat colours by region and texture, borders)",
                "map2d_unpaired": "the photo itself; B: the photo drawn as a map (flat colours by region and texture, "
                                  "borders)"}


def task_lines(results):
    rows = []
    for r in results:
        m, task = r["meta"], r["task"]
        kind = "cross-domain" if task in CROSS_DOMAIN else "near-identity"
        if dims(task) == 3:
            data = (f"MNI152 T1 at {m['voxel_mm']} mm; A: {m['slice_mm']} mm axial slices (mean of {m['factor']}), "
                    f"linearly interpolated back" if task == "thick3d" else
                    f"A: MNI152 T1 at {m['voxel_mm']} mm; B: {CROSS_3D_TARGETS[task]} (trained unpaired: "
                    f"patches of A and of B drawn independently)")
            split = (f"train: posterior part {'×'.join(map(str, m['train_shape']))}; test: anterior part "
                     f"{'×'.join(map(str, m['test_shape']))} (split along y, {m['gap']}-voxel gap)")
        else:
            src = (f"{m['train_pairs']} training pairs" if "train_pairs" in m else
                   f"{m['train_A']} A and {m['train_B']} B training tiles from disjoint cells")
            data = DEGRADATIONS[task] + f"; {m['tile']}² tiles of photos resized to at most {m['photo_side']} px " \
                                        f"(short side)"
            split = (f"train: {src} of {', '.join(m['train_photos'])}; test: {m['test_pairs']} tiles of "
                     f"{', '.join(m['test_photos'])}")
        rows.append([f"{task}: {m['title']}", kind, data, split, m["data_range"]])
    return bu.markdown_table(["task", "kind", "A (B is the real image unless said)", "split (held out)",
                              "data range"], rows)


def torch_threads():
    import torch
    return torch.get_num_threads()


def flags_text(ctx, task):
    return " ".join(task_flags(ctx, task))


def report(ctx, results, args):
    tag = "cpu" if ctx.device == "cpu" else "gpu"
    rows = [row for r in results for row in table_rows(r)]
    table = bu.markdown_table(HEADER, rows)
    print(table)
    with open(os.path.join(ctx.work, "results.json"), "w") as f:
        json.dump({"mode": ctx.mode, "device": ctx.device, "machine": bu.machine_description(ctx.device),
                   "date": bu.today(), "command": ctx.command, "results": results, "header": HEADER, "rows": rows},
                  f, indent=1)
    if args.no_docs:
        return
    docs = os.path.abspath(args.docs)
    os.makedirs(os.path.dirname(docs), exist_ok=True)
    png, examples_png = f"benchmark_quality_{tag}.png", f"benchmark_quality_{tag}_examples.png"
    title = f"{bu.machine_description(ctx.device)}; --{ctx.mode}"
    if ctx.mode == "tiny":
        title += " (smoke configuration, not results)"
    plot(results, os.path.join(os.path.dirname(docs), png), title)
    plot_examples(ctx, results, os.path.join(os.path.dirname(docs), examples_png), title)
    budgets = [f"{r['task']}: the time {r['baseline']} needs for {plural(r['epochs'], 'epoch')} ({seeds_text(r)}), "
               f"{r['budget']['budget_s']:.0f} s -> {length(r['budget'])} of {r['revgan']}"
               + (f" ({length(r['twoway_budget'])} with --two_way)" if r.get("twoway_budget")
                  else "") for r in results if r.get("budget")]
    flags = "\n".join(f"- {task}: {TASKS[task][0]} `--netG {ctx.baseline_netG}` and {TASKS[task][1]} "
                      f"`{' '.join(REVGAN_FLAGS)}`, both with `{flags_text(ctx, task)}`" +
                      (f"; upstream defaults: `{' '.join(task_flags(ctx, task, upstream=True))}`"
                       if dims(task) == 2 and TASKS[task][0] in UPSTREAM_FLAGS and not ctx.no_upstream else "")
                      for task in [r["task"] for r in results])
    smoke = ("**Smoke configuration (`--tiny`): tiny data and networks trained for seconds, only to check that the "
             "script runs; these numbers are not results.** The numbers come from `make bench` (`--quick`, CPU) or "
             "`--device cuda` (full sizes).\n\n" if ctx.mode == "tiny" else "")
    shows = ("What this run shows (computed from the table):\n\n" + "\n".join(findings(r) for r in results)
             if ctx.mode != "tiny" else "(No findings: the smoke configuration measures nothing.)")
    body = f"""## benchmark_quality ({tag}, {ctx.mode})

Command: `{ctx.command}` · machine: {bu.machine_description(ctx.device)} · date: {bu.today()}

{smoke}Translation quality on held-out real data (built by `datasets/make_quality_benchmark.py` from images that ship
inside scikit-image, scikit-learn, matplotlib and nilearn; see `scripts/benchmark_quality.py` for every detail):
near-identity tasks (restoration, thick to thin slices), where the output is the input corrected, and cross-domain tasks
(photo to map, T1 to grey-matter map, T1 to T2-weighted), where input and target look nothing alike. Each RevGAN model
against its baseline model, with default flags but the width, trained and tested through `train.py` and `test.py`, back
to back on this machine: the baseline model for N epochs, the RevGAN model for N epochs (equal epochs) and for the
baseline's epochs with fewer samples in each where it is slower, more where it is faster, as many as fit in the
baseline's training time by its measured per-epoch time (equal time, both times the means over the seeds' N-epoch
runs; 2D: `--samples_per_epoch`, a random draw of the training images each epoch; 3D: `--samples_per_volume`), and in
2D the baseline model also as pytorch-CycleGAN-and-pix2pix configures it (upstream defaults: its generator,
normalisation and dropout, no residual), so that no RevGAN row wins by a handicapped baseline.
Seeds: {", ".join(map(str, ctx.seeds))} (`--seed`): model rows hold the mean, each seed's PSNR in brackets.
Rows above the models: the copy-the-input baseline and simple non-learned baselines, fitted on the training data only,
on the same test data with the same metric code (`evaluation.metrics.compare`). PSNR, SSIM (scikit-image, 7-wide window)
and MAE of A → B against the real B; 2D on RGB in [0, 1] (data range 1), 3D in the template's units over the whole test
volume (data range 255, the window 0–255) and, as PSNR, inside the brain (voxels where the T1 input is above 0; the
background outside the brain is 0 in both domains and would dominate the whole-volume numbers). Training time is the
wall time of the `train.py` process.

{task_lines(results)}

Flags: the two models of a pair get the same width, downsampling, normalisation (none, every model's default) and
depth: the baseline models
use their ResNet generator with 6 residual blocks against the RevGAN core's 6 coupling blocks (pix2pix's default
U-Nets need sides that are multiples of 128 or 256 and pad small tiles; the upstream rows use them anyway;
`--baseline_netG` changes the generator of the others). Each
model keeps its own losses and GAN mode (pix2pix: vanilla GAN, the others lsgan; λ_L1 100 for the paired models,
the cycle and identity weights for the unpaired ones). 3D: the same window on both sides (one modality, same
units). N epochs are `--n_epochs` N − ⌊N/3⌋ plus `--n_epochs_decay` ⌊N/3⌋. Every run also gets
`{' '.join(HOUSEKEEPING)}` (no loader workers, no visdom, no training page, no intermediate checkpoints), and
test.py the same `--preprocess`. Torch threads per process: {torch_threads()}.

{flags}

Budgets (equal time): {"; ".join(budgets) or "none (runs failed)"}.

{table}

{shows}

![PSNR and SSIM per task](./{png})

One held-out item per task (2D: a test tile; 3D: the coronal slice through the middle of the test volume, z up):

![examples](./{examples_png})
"""
    bu.update_section(f"benchmark_quality_{tag}", body, path=docs)
    print(f"wrote the section benchmark_quality_{tag} of {docs} and {png}")


class Context:
    """The run's settings: mode, device, epochs, flags, folders, start time, fitted reference methods."""

    def __init__(self):
        self.methods = {}


def main(argv=None):
    p = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument("--quick", action="store_true", help="CPU sizes (about 20-30 min on 2 cores); default: full sizes")
    p.add_argument("--tiny", action="store_true", help="smoke configuration for tests: seconds; numbers mean nothing")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--epochs", type=int, default=None, help="N, the baseline models' epochs (default: per mode/task)")
    p.add_argument("--baseline_netG", default="resnet_6blocks",
                   help="generator of pix2pix, cycle_gan and pix2pix3d (default: the ResNet generator with 6 blocks, "
                        "at the RevGAN's ngf and n_downsampling)")
    p.add_argument("--train_flags", default="",
                   help="more train.py flags for every model, e.g. --train_flags='--lambda_L1 50 --no_flip'")
    p.add_argument("--seeds", type=int, default=1,
                   help="train every model with N seeds, --seed S .. S+N-1 (S: --first_seed; rows: the mean)")
    p.add_argument("--first_seed", type=int, default=0,
                   help="S, the first seed (more seeds for a run made before: its table and this one's together)")
    p.add_argument("--no_upstream", action="store_true",
                   help="skip the rows of the baseline models with pytorch-CycleGAN-and-pix2pix's defaults")
    p.add_argument("--no_iunet", action="store_true", help="skip the rows of the RevGAN models with --netG iunet")
    p.add_argument("--no_two_way", action="store_true",
                   help="skip the rows of the paired RevGAN models with --two_way (both directions)")
    p.add_argument("--workdir", default=os.path.join(bu.ROOT, ".bench", "quality"),
                   help="data, checkpoints, results, logs and results.json")
    p.add_argument("--references_only", action="store_true",
                   help="build the data and print the non-learned reference rows only (seconds; trains nothing, "
                        "writes no docs)")
    p.add_argument("--docs", default=bu.BENCHMARKS_MD, help="the markdown file whose section is written")
    p.add_argument("--no_docs", action="store_true", help="print the table and write results.json only")
    args = p.parse_args(argv)
    if args.quick and args.tiny:
        p.error("--quick and --tiny exclude each other")
    if args.epochs is not None and args.epochs < 1:
        p.error("--epochs must be at least 1")
    if args.seeds < 1:
        p.error("--seeds must be at least 1")
    if args.first_seed < 0:
        p.error("--first_seed must be 0 or more")
    if args.device == "cuda":
        import torch
        if not torch.cuda.is_available():
            p.error("--device cuda: no GPU found")
    ctx = Context()
    ctx.mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    ctx.device, ctx.epochs, ctx.baseline_netG = args.device, args.epochs, args.baseline_netG
    ctx.train_flags = args.train_flags.split()
    ctx.seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    ctx.no_upstream, ctx.no_iunet = args.no_upstream, args.no_iunet
    ctx.no_two_way = args.no_two_way
    ctx.work = os.path.abspath(args.workdir)
    ctx.data = os.path.join(ctx.work, "data")
    ctx.command = "python scripts/benchmark_quality.py " + " ".join(sys.argv[1:] if argv is None else argv)
    ctx.t0 = time.perf_counter()
    print(f"benchmark_quality ({ctx.mode}, {ctx.device}): building the data in {ctx.data} ...", flush=True)
    metas = ctx.metas = mqb.build(ctx.data, tasks=args.tasks, **MODES[ctx.mode]["data"])
    print(f"  data ready at {time.perf_counter() - ctx.t0:.0f} s", flush=True)
    if args.references_only:
        rows = [[task, m] + fmt(scores) for task in args.tasks
                for m, scores in task_references(task, os.path.join(ctx.data, task), metas[task])[1]]
        print(bu.markdown_table(["task", "method"] + HEADER[-4:], rows))
        return rows
    results = []
    for task in args.tasks:
        print(f"[{task}] {metas[task]['title']} (benchmark at {time.perf_counter() - ctx.t0:.0f} s)", flush=True)
        results.append(run_task(ctx, task, metas[task]))
    print(f"done in {time.perf_counter() - ctx.t0:.0f} s")
    report(ctx, results, args)
    return results


if __name__ == "__main__":
    main()
