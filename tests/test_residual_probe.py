"""--residual_auto, the unpaired models' default (issue 30): before training, probe steps with the global residual
open measure how well the discriminators tell the translations from real images of the target domain; the probe is
undone, and training keeps the residual where they could not (domains that look alike, where it learns best) or goes
without it where they could (domains that look different, where it held the generators at their input)."""
import pytest
import torch

import test as test_script
import train as train_script
from models import create_model, cycle
from models.config import GeneratorConfig, ModelSpec
from models.networks import define_G, separation
from options.train_options import TrainOptions
from tests.conftest import tiny_flags
from tests.test_unpaired_defaults import domains
from util.checkpoint import load_checkpoint


def test_separation_is_the_area_under_the_roc_curve():
    """Against every pair of scores counted (ties half), in float64; 0.5 for scores that cannot tell, 1 and 0 for
    scores that always can."""
    gen = torch.Generator().manual_seed(0)
    for n_real, n_fake in [(5, 7), (36, 36), (300, 3)]:
        real = torch.randn(n_real, generator=gen, dtype=torch.float64).round(decimals=1)
        fake = torch.randn(n_fake, generator=gen, dtype=torch.float64).round(decimals=1) + 0.5  # with ties
        pairs = (real[:, None] > fake[None]).double() + 0.5 * (real[:, None] == fake[None]).double()
        assert separation(real.view(1, 1, -1), fake) == pytest.approx(pairs.mean().item(), abs=1e-12)
    assert separation(torch.ones(2, 1, 3, 3), torch.ones(1, 1, 3, 3)) == 0.5
    assert separation(torch.ones(4) + 1, torch.zeros(9)) == 1.0
    assert separation(torch.zeros(4), torch.ones(9)) == 0.0


def test_a_closed_switch_gives_the_output_without_the_residual():
    """Open, the output is tanh(g * atanh(x) + h); closed, tanh(h): the generator's output without the residual. The
    switch and the decision are buffers, so checkpoints keep them; generators without --residual_auto have none."""
    config = GeneratorConfig(netG="resnet_6blocks", ngf=4, n_downsampling=1, norm="none", residual=True,
                             residual_gate=True, residual_auto=True, dims=2)
    g = define_G(3, 3, config)
    x, h = torch.rand(1, 3, 8, 8) * 1.6 - 0.8, torch.randn(1, 3, 8, 8)
    assert torch.allclose(g.output(x, h), torch.tanh(torch.atanh(x) + h), atol=1e-6)
    g.residual_open.fill_(0.0)
    assert torch.equal(g.output(x, h), torch.tanh(h))
    assert {"residual_open", "residual_decided"} <= set(g.state_dict())
    plain = define_G(3, 3, GeneratorConfig(netG="resnet_6blocks", ngf=4, n_downsampling=1, norm="none",
                                           residual=True, residual_gate=True))
    assert not {"residual_open", "residual_decided"} & set(plain.state_dict())


def trained(tmp_path, model_name, A, B, steps, extra=(), probe_batches=None):
    """A ``model_name`` with default flags (small networks, a higher learning rate) plus ``extra``, after the probe on
    ``probe_batches`` (if given) and ``steps`` steps on batches of A and B."""
    torch.manual_seed(0)
    opt = TrainOptions().parse(["--dataroot", str(tmp_path), "--name", "probe", "--model", model_name,
                                "--checkpoints_dir", str(tmp_path), "--gpu_ids", "-1", "--ngf", "8", "--ndf", "8",
                                "--n_downsampling", "1", "--lr", "0.002"]
                               + (["--n_blocks", "2"] if model_name == "unpaired_revgan" else
                                  ["--netG", "resnet_6blocks"]) + list(extra))
    model = create_model(opt)
    model.setup(opt)
    if probe_batches is not None:
        model.decide_residual(probe_batches)
    for batch in batches(A, B, steps, seed=1):
        model.set_input(batch)
        model.optimize_parameters()
    return model


def batches(A, B, n, seed):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        a, b = torch.randint(0, len(A), (4,), generator=gen), torch.randint(0, len(B), (4,), generator=gen)
        yield {"A": A[a], "B": B[b], "A_paths": ["a"] * 4, "B_paths": ["b"] * 4}


def switches(model):
    return [(float(g.residual_open), float(g.residual_decided)) for g in model.switched]


def same_networks(a, b):
    """Whether the two models' networks hold equal tensors (what both have: the switch is --residual_auto's)."""
    for name in a.model_names:
        sa, sb = a.net(name).state_dict(), b.net(name).state_dict()
        if any(not torch.equal(sa[k], sb[k]) for k in sa.keys() & sb.keys()):
            return False
    return True


@pytest.mark.parametrize("model_name", ["unpaired_revgan", "cycle_gan"])
def test_domains_that_look_different_train_without_the_residual(tmp_path, monkeypatch, capsys, model_name):
    """Warm blobs to cold stripes: the discriminators tell the generators' probe outputs (their inputs, nearly) from
    the stripes, the residual closes, and training runs exactly as with --no_residual (identity loss 0.5) from the
    same start (the probe's steps undone); the generator leaves its input for the target's colours (with --residual
    it moved 0.11 of the way here; tests/test_unpaired_defaults.py)."""
    monkeypatch.setattr(cycle, "PROBE_STEPS", 20)
    A, B = domains(64, 32, torch.Generator().manual_seed(0))
    model = trained(tmp_path, model_name, A, B, 100, probe_batches=batches(A, B, 20, seed=2))
    assert switches(model) == [(0.0, 1.0)] * (1 if model_name == "unpaired_revgan" else 2)
    assert "training goes without the residual (as --no_residual, identity loss 0.5)" in capsys.readouterr().out
    assert model.loss_idt_A.item() > 0
    assert same_networks(model, trained(tmp_path, model_name, A, B, 100, ["--no_residual"]))
    assert not same_networks(model, trained(tmp_path, model_name, A, B, 100, ["--no_residual", "--lambda_identity",
                                                                               "0"]))
    with torch.no_grad():
        fake = model.translate(A, "AtoB")
    mean_a, mean_b = A.mean((0, 2, 3)), B.mean((0, 2, 3))
    assert ((fake.mean((0, 2, 3)) - mean_a).norm() / (mean_b - mean_a).norm()).item() > 0.4


@pytest.mark.parametrize("model_name", ["unpaired_revgan", "cycle_gan"])
def test_domains_that_look_alike_keep_it(tmp_path, monkeypatch, capsys, model_name):
    """A and B drawn alike (the same blobs, other samples): the translations with the input path open pass as the
    target domain, the residual stays open, and training runs exactly as with --residual."""
    monkeypatch.setattr(cycle, "PROBE_STEPS", 20)
    A, _ = domains(128, 32, torch.Generator().manual_seed(0))
    model = trained(tmp_path, model_name, A[:64], A[64:], 10, probe_batches=batches(A[:64], A[64:], 20, seed=2))
    assert switches(model) == [(1.0, 1.0)] * len(model.switched)
    assert "the domains look alike; training keeps the residual (as --residual, so without the identity loss: " \
           "--lambda_identity 0.5 applies only without the residual)" in capsys.readouterr().out  # (0.5: not in use)
    assert model.loss_idt_A.item() == 0
    assert same_networks(model, trained(tmp_path, model_name, A[:64], A[64:], 10, ["--residual"]))
    assert not same_networks(model, trained(tmp_path, model_name, A[:64], A[64:], 10, ["--no_residual"]))


def test_the_decision_is_saved_tested_and_resumed(demo_root, tmp_path, monkeypatch, capsys):
    """train.py records the decision in the checkpoint; test.py translates with it (loading strictly), and a resumed
    run keeps it without probing again."""
    monkeypatch.setattr(cycle, "PROBE_STEPS", 4)
    flags = tiny_flags(demo_root, tmp_path, "auto", "unpaired_revgan", ["--n_blocks", "1"])
    train_script.main(flags)
    out = capsys.readouterr().out
    assert "residual: in 4 probe steps the discriminators" in out
    path = tmp_path / "ckpt" / "auto" / "latest.pth"
    state = load_checkpoint(str(path))
    assert state["architecture"]["residual"] is True and state["architecture"]["residual_auto"] is True
    decided = state["networks"]["G"]["residual_open"].item()
    assert state["networks"]["G"]["residual_decided"].item() == 1.0
    assert decided == (0.0 if "training goes without the residual" in out else 1.0)
    test_script.main(["--dataroot", demo_root, "--name", "auto", "--model", "unpaired_revgan", "--checkpoints_dir",
                      str(tmp_path / "ckpt"), "--results_dir", str(tmp_path / "res_out"), "--gpu_ids", "-1",
                      "--load_size", "32", "--crop_size", "32"])
    train_script.main(flags + ["--n_epochs", "3", "--continue_train"])  # (the last --n_epochs counts)
    assert "probe steps" not in capsys.readouterr().out  # an undecided checkpoint would probe again
    state = load_checkpoint(str(path))
    assert state["counters"]["total_iters"] == 12 and state["networks"]["G"]["residual_open"].item() == decided


def test_checkpoints_before_the_switch_keep_their_residual():
    """An architecture without the entry (written before it) is a generator whose residual stays as trained: no
    switch to load."""
    arch = ModelSpec("unpaired_revgan", 3, 3, GeneratorConfig(netG="revgan", residual=True, residual_gate=True),
                     ).to_architecture()
    assert arch["residual_auto"] is False
    del arch["residual_auto"]
    spec = ModelSpec.from_architecture(arch)
    assert spec.has_residual and not spec.generator.residual_auto
    assert "residual_open" not in define_G(3, 3, spec.generator).state_dict()
