"""Whole-step memory (issue 25): under --memory low (the RevGAN models' default) every network outside the
reversible core recomputes its activations in backward. A step gives the gradients, norm running statistics and
random state of the plain mode (float64, the four RevGAN models, both directions, dropout and batch norm on), and a
step's activation memory stays under a stated bound."""
import contextlib
import io
import json
import os
import subprocess
import sys
import types

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(model, flags, size):
    from models import create_model
    from options.train_options import TrainOptions
    import tempfile
    dims = 3 if model.endswith("3d") else 2
    argv = ["--name", "mem", "--model", model, "--checkpoints_dir", tempfile.mkdtemp(), "--gpu_ids", "-1",
            "--crop_size", str(size), "--load_size", str(size), "--ngf", "4", "--ndf", "4", "--n_blocks", "2",
            "--n_downsampling", "1", "--netD", "n_layers", "--n_layers_D", "1"] + (["--patch_size", str(size)]
                                        if dims == 3 else []) + flags
    with contextlib.redirect_stdout(io.StringIO()):
        opt = TrainOptions().parse(argv).replace(no_dropout=False)  # dropout on (the cycle models default it off)
        m = create_model(opt)
        m.setup(opt)
    for name in m.model_names:
        m.net(name).double()
    return m, dims


def one_step(model, flags, size=16, seed=3):
    torch.manual_seed(0)
    m, dims = build(model, flags, size)
    nc = 3 if dims == 2 else 1
    g = torch.Generator().manual_seed(1)
    shape = (2, nc) + (size,) * dims
    data = {"A": torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1,
            "B": torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1, "A_paths": ["a", "b"],
            "B_paths": ["c", "d"]}
    torch.manual_seed(seed)
    m.set_input(data)
    m.optimize_parameters()
    grads = {f"{n}.{k}": p.grad.clone() for n in m.model_names for k, p in m.net(n).named_parameters()
             if p.grad is not None}
    buffers = {f"{n}.{k}": b.clone() for n in m.model_names for k, b in m.net(n).named_buffers()}
    return m, grads, buffers, torch.get_rng_state()


@pytest.fixture
def float64():
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # the models' size checks feed their networks default-dtype tensors
    yield
    torch.set_default_dtype(before)


@pytest.mark.parametrize("model,extra", [("paired_revgan", ["--two_way"]), ("unpaired_revgan", []),
                                         ("paired_revgan3d", []), ("unpaired_revgan3d", []), ("paired_revgan", []),
                                         ("unpaired_revgan3d", ["--stem", "conv7"])])  # a full-resolution 3D stem
def test_low_memory_step_equals_the_plain_step(model, extra, float64, monkeypatch):
    from models import streamed
    monkeypatch.setattr(streamed, "MIN_BYTES", 0)  # these small maps are streamed too (models/streamed.py)
    norm = ["--norm", "batch"] + extra  # running statistics to compare
    low, g_low, b_low, rng_low = one_step(model, norm + ["--memory", "low"])
    plain, g_plain, b_plain, rng_plain = one_step(model, norm + ["--memory", "core", "--use_naive"])
    assert low.spec.generator.dropout and plain.spec.generator.dropout
    assert any(getattr(low.net(n), "recompute", False) for n in low.model_names)
    assert not any(getattr(plain.net(n), "recompute", False) for n in plain.model_names)
    assert g_low.keys() == g_plain.keys() and len(g_low) > 10
    if model.startswith("paired") and "--two_way" not in extra:  # A -> B only (the default): B's encoder, A's
        # decoder and a second discriminator take no part
        assert not any(k.startswith(("G.enc_B", "G.dec_A", "D_B")) for k in g_low)
        assert any(k.startswith("G.enc_A") for k in g_low) and any(k.startswith("G.dec_B") for k in g_low)
    for k in g_plain:  # generators (both directions) and discriminators
        ref = g_plain[k]
        err = float((g_low[k] - ref).norm() / max(float(ref.norm()), 1e-30))
        assert err <= 1e-10, (k, err)
    assert any("running_mean" in k for k in b_plain)
    for k in b_plain:
        assert torch.allclose(b_low[k], b_plain[k], rtol=1e-12, atol=1e-14), k
    assert torch.equal(rng_low, rng_plain)


def measure(model, size, flags, small_part_bytes=None):
    """Activation memory (bytes) of one training step after a warm-up, in a fresh process with large allocations
    through mmap (scripts/bench_utils.PeakMemory); ``small_part_bytes`` replaces models.networks.SMALL_PART_BYTES."""
    code = f"""
import json, sys, torch
sys.path.insert(0, {ROOT!r})
from scripts import bench_utils as bu, benchmark_models as bm
from models import networks
if {small_part_bytes!r} is not None: networks.SMALL_PART_BYTES = {small_part_bytes!r}
class A: pass
a = A(); a.device, a.size, a.dims, a.ngf, a.batch = "cpu", {size}, {3 if model.endswith('3d') else 2}, 16, 1
step, m = bm.make_step({model!r}, {flags!r}, a)
step(); meter = bu.PeakMemory("cpu"); meter.start(); step()
print(json.dumps(meter.peak()))
"""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0",
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_low_memory_step_stays_under_its_bound():
    """unpaired_revgan at 128² (ngf 16), every part recomputed (its parts are small enough to keep their
    activations by default): the step keeps under 14 MiB of activations with --memory low (measured here: about
    5-9 MiB), under half of what --memory core keeps (about 33 MiB)."""
    low = measure("unpaired_revgan", 128, [], small_part_bytes=0)
    core = measure("unpaired_revgan", 128, ["--memory", "core"])
    assert low < 14 * 2 ** 20, low / 2 ** 20
    assert low < 0.5 * core, (low / 2 ** 20, core / 2 ** 20)


def _count_recomputed(monkeypatch):
    from models import networks
    calls = []
    run = networks.run_streamed
    monkeypatch.setattr(networks, "run_streamed", lambda part, x: calls.append(part) or run(part, x))
    return calls


@pytest.mark.parametrize("model", ["paired_revgan", "unpaired_revgan3d"])
def test_small_parts_keep_their_activations_after_the_first_step(model, monkeypatch):
    """--memory low: the first step recomputes every part outside the core and measures it; a part whose layer
    outputs total under SMALL_PART_BYTES then runs on plain autograd (recomputing it would save little and cost a
    forward pass), a larger one stays recomputed."""
    from models import networks
    from scripts.benchmark_models import make_step
    calls = _count_recomputed(monkeypatch)
    dims = 3 if model.endswith("3d") else 2
    args = types.SimpleNamespace(dims=dims, size=16, ngf=None, device="cpu", batch=1)
    flags = ["--ngf", "4", "--ndf", "4", "--n_blocks", "1", "--netD", "n_layers", "--n_layers_D", "2"]
    step, m = make_step(model, flags, args)
    step()
    parts = set(map(id, calls))
    assert len(parts) >= 3  # encoder, decoder, discriminator
    calls.clear()
    step()
    assert calls == []  # all small at 16 pixels (16³ voxels)
    monkeypatch.setattr(networks, "SMALL_PART_BYTES", 1)
    step, m = make_step(model, flags, args)
    step()
    first = len(calls)
    calls.clear()
    step()
    assert first >= 3 and len(calls) == first  # every part recomputed again


@pytest.mark.parametrize("model", ["unpaired_revgan", "paired_revgan3d"])
def test_a_small_core_keeps_its_activations_from_its_first_pass(model, monkeypatch):
    """--memory low: before the reversible core's first pass for an input shape a dry pass measures it; a core
    whose layer outputs total under SMALL_CORE_BYTES_PER_PART parts' worth then runs on plain autograd (as
    --use_naive: the same gradients, a forward pass less), a larger one keeps saving memory; --memory core always saves
    memory."""
    from models import networks
    from models.reversible import sequence
    from scripts.benchmark_models import make_step
    saving = []
    run = sequence.run
    monkeypatch.setattr(sequence, "run", lambda *a, **k: saving.append(1) or run(*a, **k))
    dims = 3 if model.endswith("3d") else 2
    args = types.SimpleNamespace(dims=dims, size=16, ngf=None, device="cpu", batch=1)
    flags = ["--ngf", "4", "--ndf", "4", "--n_blocks", "2", "--netD", "n_layers", "--n_layers_D", "1"]
    passes = 4 if model.startswith("unpaired") else 1  # (fake, cycle) x 2 directions (no identity loss while the
    # residual is open, as the unpaired default starts); A->B alone (the paired default)

    def two_steps(extra):
        saving.clear()
        step, m = make_step(model, flags + extra, args)
        step()
        first = len(saving)
        saving.clear()
        step()
        assert m.net("G").core.memory_saving  # restored after each pass
        return first, len(saving)

    first, second = two_steps([])
    assert (first, second) == (0, 0)  # tiny: measured by a dry pass, kept from the first pass on
    first, second = two_steps(["--memory", "core"])
    assert (first, second) == (passes, passes)
    monkeypatch.setattr(networks, "SMALL_PART_BYTES", 1)
    first, second = two_steps([])
    assert (first, second) == (passes, passes)  # large: recomputed on every step


@pytest.mark.parametrize("dims", [2, 3])
def test_a_core_pass_is_measured_whole_though_it_frees_as_it_goes(dims):
    """The bytes counted for a memory-saving pass of the core (which frees each layer's output as it goes, so later
    outputs reuse the addresses) are those of the same pass on plain autograd, which keeps them all: what keeping
    them would cost."""
    from models.config import GeneratorConfig
    from models.networks import _OutputBytes, define_G
    net = define_G(1, 1, GeneratorConfig(netG="revgan", ngf=8, norm="none", n_blocks=4, dropout=False, dims=dims))
    h = net.enc_A(torch.randn((1, 1) + (16,) * dims))
    counted = {}
    for saving in (True, False):
        net.core.memory_saving = saving
        with _OutputBytes(net.core) as c:
            net.core(h)
        counted[saving] = c.bytes
    layer = h.numel() // 2 * 4  # one half of the stream, float32
    assert counted[True] == counted[False] >= 4 * 2 * 2 * layer  # 4 blocks, F and G, two convolutions each


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_pixel_unshuffle_is_torchs_and_inverts(dims):
    from models.networks import PixelUnshuffle
    x = torch.randn((2, 3) + (4, 6, 8)[:dims])
    y = PixelUnshuffle(dims)(x)
    assert y.shape == (2, 3 * 2 ** dims) + tuple(s // 2 for s in x.shape[2:])
    assert torch.equal(PixelUnshuffle(dims, inverse=True)(y), x)
    if dims == 2:
        assert torch.equal(y, torch.nn.functional.pixel_unshuffle(x, 2))


def test_stem_is_architecture_and_old_checkpoints_are_conv7():
    from models.config import GeneratorConfig, ModelSpec
    from models.networks import define_G
    spec = ModelSpec("paired_revgan", generator=GeneratorConfig(netG="revgan", stem="unshuffle", ngf=4, n_blocks=1))
    arch = spec.to_architecture()
    assert arch["stem"] == "unshuffle" and ModelSpec.from_architecture(arch).generator.stem == "unshuffle"
    del arch["stem"]  # as checkpoints written before the stem existed
    assert ModelSpec.from_architecture(arch).generator.stem == "conv7"
    unet = ModelSpec("pix2pix", generator=GeneratorConfig(netG="unet_256"))
    assert unet.to_architecture()["stem"] is None  # a U-Net has no such stem
    net = define_G(3, 3, spec.generator)
    assert not any(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (7, 7) for m in net.modules())
    x = torch.rand(1, 3, 12, 20) * 2 - 1
    for direction in ("AtoB", "BtoA"):
        assert net(x, direction).shape == x.shape


@pytest.mark.parametrize("model,n_downsampling,stem", [
    ("paired_revgan", None, "unshuffle"), ("paired_revgan3d", None, "unshuffle"), ("pix2pix3d", None, "unshuffle"),
    ("unpaired_revgan3d", None, "unshuffle"), ("cycle_gan3d", None, "unshuffle"),
    ("paired_revgan", "0", "conv7"),  # nothing for the unshuffle stem to stand in for: conv7, not a refusal
    ("unpaired_revgan", None, "conv7"), ("cycle_gan", None, "conv7"), ("pix2pix", None, "conv7"),
    ("paired_revgan --netG iunet", None, "conv7")])  # no stem to choose: the default's entry, never recorded
def test_default_stem_per_model(model, n_downsampling, stem, tmp_path):
    """The default stem of paired_revgan and the 3D models is unshuffle; typed --stem wins; the other models keep
    conv7; the run's configuration (what train_opt.txt prints) holds the stem used, not None."""
    from models import options_spec, with_architecture_defaults
    from options.train_options import TrainOptions
    model, *more = model.split()
    base = ["--name", "s", "--model", model, "--checkpoints_dir", str(tmp_path), "--gpu_ids", "-1"] + more
    base += ["--n_downsampling", n_downsampling] if n_downsampling else []
    for typed, expected in (([], stem), (["--stem", "conv7"], "conv7"), (["--stem", "unshuffle"], "unshuffle")):
        if (typed[-1:] == ["unshuffle"] and n_downsampling == "0") or (typed and more):  # a refusal (tested
            continue  # elsewhere); a stem that does not apply
        with contextlib.redirect_stdout(io.StringIO()):
            opt = TrainOptions().parse(base + typed)
        spec = options_spec(opt)
        assert spec.generator.stem == expected, (typed, spec.generator)
        assert with_architecture_defaults(opt, spec).stem == spec.generator.stem


def test_unshuffle_padding_is_architecture_and_old_unshuffle_checkpoints_reflect():
    from models.config import GeneratorConfig, ModelSpec
    spec = ModelSpec("paired_revgan", generator=GeneratorConfig(netG="revgan", stem="unshuffle", ngf=4, n_blocks=1))
    arch = spec.to_architecture()
    assert arch["stem_padding"] == "zeros" and ModelSpec.from_architecture(arch).generator.stem_padding == "zeros"
    del arch["stem_padding"]  # an unshuffle checkpoint written before the entry existed
    old = ModelSpec.from_architecture(arch).generator
    assert old.stem_padding == "reflect"
    from dataclasses import replace
    from models.networks import define_G
    torch.manual_seed(0)
    written = define_G(3, 3, replace(spec.generator, stem_padding="reflect")).eval()  # the network as it was
    loaded = define_G(3, 3, old).eval()
    loaded.load_state_dict(written.state_dict())  # strict: the same entries
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x), written(x))
    with pytest.raises(RuntimeError):  # and never loads silently into the zero-padded stem
        define_G(3, 3, spec.generator).load_state_dict(written.state_dict())
    conv7 = ModelSpec("paired_revgan", generator=GeneratorConfig(netG="revgan", ngf=4, n_blocks=1))
    assert conv7.to_architecture()["stem_padding"] is None  # the conv7 stem has no such choice


@pytest.mark.parametrize("model", ["paired_revgan", "unpaired_revgan"])
def test_unshuffle_stem_trains_on_a_uniform_image(model):
    """A blank tile (a white map tile, an empty slice) through --stem unshuffle --n_downsampling 1: with the old
    reflect padding the core sees an exactly constant map, each instance norm multiplies its gradient by 1/sqrt(eps),
    and the step's gradients overflow (float32 overflows at --ngf 32); the zero-padded first convolution keeps them
    at the size of any other step's."""
    from models import create_model
    from options.train_options import TrainOptions
    import tempfile
    grads = {}
    for padding in ("reflect", "zeros"):
        argv = ["--name", "u", "--model", model, "--checkpoints_dir", tempfile.mkdtemp(), "--gpu_ids", "-1",
                "--ngf", "8", "--ndf", "8", "--n_blocks", "6", "--n_downsampling", "1", "--stem", "unshuffle",
                "--stem_padding", padding, "--crop_size", "32", "--load_size", "32", "--no_dropout",
                "--norm", "instance"]  # what amplifies the gradient here (the default, none, does not)
        with contextlib.redirect_stdout(io.StringIO()):
            opt = TrainOptions().parse(argv)
            torch.manual_seed(0)
            m = create_model(opt)
            m.setup(opt)
        a = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
        blank = torch.ones(1, 3, 32, 32)  # into an encoder: B's of the unpaired model, A's of the paired (one-way)
        pair = (a, blank) if model == "unpaired_revgan" else (blank, a)
        m.set_input({"A": pair[0], "B": pair[1], "A_paths": ["a"], "B_paths": ["b"]})
        m.optimize_parameters()
        grads[padding] = max(p.grad.abs().max().item() for name in m.model_names for p in m.net(name).parameters()
                             if p.grad is not None)
    # the failure this guards against: overflow (inf at --ngf 32; 3-4e31 at this width)
    assert not grads["reflect"] < 1e20, grads
    assert grads["zeros"] < 1e5, grads  # 166 here (233 for the unpaired RevGAN)


def test_largest_side_search_bisects_after_failed_probes(monkeypatch):
    """A probe that fails (out of memory before the budget, as a device smaller than --budget_gb would) gives no
    measurement: the search bisects the undecided interval instead of walking down one unit at a time."""
    import argparse
    from scripts import benchmark_models as bm
    probes = []

    def fake_worker(script, argv, timeout=None, mmap=True):
        side = int(argv[argv.index("--size") + 1])
        probes.append(side)
        if side > 1000:
            return {"error": "RuntimeError: out of memory"}
        return {"peak": side ** 2 * 2 ** 10, "state": 2 ** 20, "total": 0}
    monkeypatch.setattr(bm.bu, "run_worker", fake_worker)
    args = argparse.Namespace(budget_gb=64.0, dims=2, device="cpu", batch=1, ngf=None, size=256, max_size=None)
    best, why = bm.largest_side("x", args, fake_worker(None, ["--size", 256]))
    assert best[0] == 960 and why == "1024 failed: RuntimeError: out of memory"
    assert len(probes) <= 1 + 10, probes


@pytest.mark.parametrize("dims,state,per,budget_gb,fits", [
    (2, 160, 0.001, 1.0, True), (2, 900, 0.001, 1.0, True), (2, 100, 0.01, 0.01, False), (3, 36, 0.0002, 1.0, True),
    (3, 10, 0.05, 1.0, False)])
def test_largest_side_search(monkeypatch, dims, state, per, budget_gb, fits):
    """benchmark_models --max_side: with memory growing with the pixel count (as a fake worker reports it; MiB =
    state + per * side**dims, with some curvature), the search finds the largest side within the budget in a
    few probes and says what the next side needs."""
    import argparse
    from scripts import benchmark_models as bm
    probes = []

    def need(side):
        return (state + per * side ** dims * (1 + side / 4096)) * 2 ** 20

    def fake_worker(script, argv, timeout=None, mmap=True):
        side = int(argv[argv.index("--size") + 1])
        probes.append(side)
        return {"peak": need(side) - state * 2 ** 20, "state": state * 2 ** 20, "total": 0}
    monkeypatch.setattr(bm.bu, "run_worker", fake_worker)
    args = argparse.Namespace(budget_gb=budget_gb, dims=dims, device="cpu", batch=1, ngf=None,
                              size=64 if dims == 3 else 256, max_size=None)
    measured = fake_worker(None, ["--size", args.size])
    probes.clear()
    best, why = bm.largest_side("x", args, measured)
    unit = 64 if dims == 2 else 16
    budget = budget_gb * 2 ** 30
    if not fits:
        assert best is None and why == f"{bm.MIN_SIDE[dims]} needs {need(bm.MIN_SIDE[dims]) / 2**30:.2f} GiB"
        assert probes == [bm.MIN_SIDE[dims]]
        return
    brute = max(s for s in range(bm.MIN_SIDE[dims], 8192, unit) if need(s) <= budget)
    assert best == (brute, need(brute))
    assert why == f"{brute + unit} needs {need(brute + unit) / 2**30:.2f} GiB"
    assert len(probes) <= 5, probes


@pytest.mark.parametrize("one_way", [False, True])
def test_paired_revgan_step_is_its_objective(float64, one_way):
    """The paired RevGAN's step (float64, no dropout, plain autograd) has the gradients of its objective written out
    here: per trained direction, the conditional discriminator's 0.5·(real + fake) loss, and for the generator the
    GAN term plus 100·L1; --two_way adds the B -> A terms."""
    import copy
    flags = ["--memory", "core", "--use_naive"] + ([] if one_way else ["--two_way"])
    torch.manual_seed(0)
    m, _ = build("paired_revgan", flags, 16)
    for module in m.netG.modules():  # build() turns dropout on; off here, so both sides see the same network
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    ref = copy.deepcopy(m)
    g = torch.Generator().manual_seed(1)
    a, b = (torch.rand((2, 3, 16, 16), generator=g, dtype=torch.float64) * 2 - 1 for _ in range(2))
    m.set_input({"A": a, "B": b, "A_paths": ["x", "y"], "B_paths": ["z", "w"]})
    m.optimize_parameters()
    sides = [("A", a, b, "AtoB")] + ([] if one_way else [("B", b, a, "BtoA")])
    gan, l1 = ref.criterionGAN, torch.nn.L1Loss()
    fakes = {side: ref.netG(src, direction) for side, src, _, direction in sides}
    d_nets = [ref.net("D_" + side) for side, *_ in sides]
    d_loss = sum(0.5 * (gan(netD(torch.cat((src, tgt), 1)), True) +
                        gan(netD(torch.cat((src, fakes[side].detach()), 1)), False))
                 for netD, (side, src, tgt, _) in zip(d_nets, sides))
    want = list(torch.autograd.grad(d_loss, [p for n in d_nets for p in n.parameters()]))
    for netD, (side, *_) in zip(d_nets, sides):  # the generator's step meets the discriminators after their update
        netD.load_state_dict(m.net("D_" + side).state_dict())
        netD.requires_grad_(False)
    g_loss = sum(gan(netD(torch.cat((src, fakes[side]), 1)), True) + 100 * l1(fakes[side], tgt)
                 for netD, (side, src, tgt, _) in zip(d_nets, sides))
    g_params = [p for p in ref.netG.parameters() if p.requires_grad]
    want += torch.autograd.grad(g_loss, g_params, allow_unused=True)
    got = [p.grad for s, *_ in sides for p in m.net("D_" + s).parameters()] + \
        [p.grad for p in m.netG.parameters() if p.requires_grad]
    assert len(got) == len(want) > 10
    for x, y in zip(got, want):
        if y is None:
            assert x is None or not x.any()
        else:
            assert torch.allclose(x, y, rtol=1e-10, atol=1e-13)
    assert set(m.model_names) == {"G", "D_A"} | (set() if one_way else {"D_B"})
