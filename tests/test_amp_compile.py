"""Mixed precision (--amp bf16/fp16) through the reversible core, the reconstruction monitor, and --compile."""
import math
import re

import pytest
import torch

import train as train_script
from tests.conftest import logged_rows, tiny_flags, vol_flags
from util.checkpoint import load_checkpoint

REVGAN_MODELS = ["paired_revgan", "unpaired_revgan", "paired_revgan3d", "unpaired_revgan3d"]


def fp16_autocast_works_on_cpu():
    try:
        with torch.autocast("cpu", dtype=torch.float16):
            return torch.nn.functional.conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 1, 1)).dtype == torch.float16
    except RuntimeError:
        return False


AMPS = ["bf16"] + (["fp16"] if fp16_autocast_works_on_cpu() else [])


def flags_for(model, root, vol_root, tmp_path, name, extra=()):
    if model.endswith("3d"):
        return vol_flags(vol_root, tmp_path, name, model, ["--n_epochs_decay", "0", "--print_freq", "1"] + list(extra))
    return tiny_flags(root, tmp_path, name, model, ["--n_epochs_decay", "0"] + list(extra))


@pytest.mark.parametrize("amp", AMPS)
@pytest.mark.parametrize("model", REVGAN_MODELS)
def test_mixed_precision_trains_every_revgan_model(demo_root, vol_root, tmp_path, model, amp):
    flags = flags_for(model, demo_root, vol_root, tmp_path, "amp", ["--n_blocks", "2", "--amp", amp])
    train_script.main(flags)
    rows = logged_rows(tmp_path / "ckpt" / "amp" / "loss_log.txt")
    assert len(rows) >= 2
    for row in rows:
        assert all(math.isfinite(v) for v in row.values()), row
        # the monitor: measured under the same autocast; the float32 stream keeps the core exact to float32
        assert 0 <= row["recon_err"] < 1e-4
    state = load_checkpoint(str(tmp_path / "ckpt" / "amp" / "latest.pth"))
    scales = [s.get("scale") for s in state["scalers"]]
    assert scales == ([s for s in scales if s and s > 0] if amp == "fp16" else [None, None])  # G's and D's scaler


def test_iunet_generator_under_bf16(demo_root, tmp_path):
    train_script.main(tiny_flags(demo_root, tmp_path, "iu", "unpaired_revgan", [
        "--netG", "iunet", "--iunet_architecture", "1,1", "--amp", "bf16", "--n_epochs_decay", "0"]))
    rows = logged_rows(tmp_path / "ckpt" / "iu" / "loss_log.txt")
    assert rows and all(math.isfinite(v) for row in rows for v in row.values())
    assert all(0 < row["recon_err"] < 1e-2 for row in rows)  # bf16 rounding of F/G on rebuilt inputs: measured


def test_monitor_warns_above_the_threshold(demo_root, tmp_path, capsys):
    train_script.main(tiny_flags(demo_root, tmp_path, "warn", "paired_revgan", [
        "--coupling", "affine", "--n_blocks", "2", "--n_epochs_decay", "0", "--recon_warn", "1e-12"]))
    err = capsys.readouterr().err
    logged = [row["recon_err"] for row in logged_rows(tmp_path / "ckpt" / "warn" / "loss_log.txt")]
    warnings = re.findall(r"warning: the reversible core's relative reconstruction error (\S+) exceeds", err)
    assert len(warnings) == len([v for v in logged if v > 1e-12]) >= 1
    assert "--recon_warn 1e-12" in err


def test_compile_trains_and_matches_eager(demo_root, tmp_path):
    import torch._dynamo
    common = ["--n_blocks", "1", "--n_epochs_decay", "0", "--max_dataset_size", "2", "--netD", "pixel"]
    train_script.main(tiny_flags(demo_root, tmp_path, "eager", "paired_revgan", common))
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    train_script.main(tiny_flags(demo_root, tmp_path, "compiled", "paired_revgan", common + ["--compile"]))
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 4  # encoders, decoders, discriminators
    eager = logged_rows(tmp_path / "ckpt" / "eager" / "loss_log.txt")
    compiled = logged_rows(tmp_path / "ckpt" / "compiled" / "loss_log.txt")
    assert len(eager) == len(compiled) == 2
    # the first step's losses come from the same weights: compiled kernels compute what eager ones do; after one
    # Adam step (which normalizes each gradient, so tiny ones flip sign) the runs may drift slightly apart
    for (a, b), tol in zip(zip(eager, compiled), (1e-4, 1e-2)):
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=tol, abs=1e-6), key
    torch._dynamo.reset()


def small_gradient_discriminator(shrink=1e-5):
    """A PatchGAN-like critic whose input gradients are tiny (weights shrunk), as early in training: in float16 they
    underflow unless taken scaled."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 4, 2, 1), torch.nn.LeakyReLU(0.2), torch.nn.Conv2d(8, 8, 4, 2, 1),
                              torch.nn.LeakyReLU(0.2), torch.nn.Conv2d(8, 1, 4, 1, 1))
    for m in net:
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight, 0, 0.02 * shrink ** (1 / 3))
            torch.nn.init.zeros_(m.bias)
    return net


@pytest.mark.skipif("fp16" not in AMPS, reason="this torch build has no float16 autocast on the CPU")
def test_gradient_penalty_inside_the_fp16_scaler():
    """WGAN-GP under fp16 autocast: the penalty's gradient for the critic matches float32's when its input gradient
    is taken scaled (the gradient scaler's scale); taken unscaled, it underflows and the critic gets no signal."""
    from models.networks import gradient_penalty
    net = small_gradient_discriminator()
    real, fake = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1

    def weight_gradient(amp, scale):
        torch.manual_seed(1)  # the same interpolates
        net.zero_grad()
        with torch.autocast("cpu", dtype=torch.float16, enabled=amp):
            penalty = gradient_penalty(net, real, fake, lambda_gp=10.0, scale=scale)
        penalty.backward()
        return net[0].weight.grad.clone()
    reference = weight_gradient(False, 1.0)
    error = lambda g: float((g - reference).norm() / reference.norm())  # noqa: E731
    assert error(weight_gradient(True, 65536.0)) < 0.05  # GradScaler's initial scale
    assert error(weight_gradient(True, 1.0)) > 0.5  # what an unscaled penalty gives the critic: nothing
    assert error(weight_gradient(True, 2.0 ** 40)) < 0.05  # a scale that overflows float16 is lowered


@pytest.mark.skipif("fp16" not in AMPS, reason="this torch build has no float16 autocast on the CPU")
def test_wgangp_training_takes_the_penalty_at_the_scalers_scale(demo_root, tmp_path, monkeypatch):
    from models import networks
    scales, original = [], networks.gradient_penalty

    def recording(*args, **kwargs):
        scales.append(kwargs["scale"])
        return original(*args, **kwargs)
    monkeypatch.setattr(networks, "gradient_penalty", recording)
    train_script.main(tiny_flags(demo_root, tmp_path, "gp16", "paired_revgan", [
        "--n_blocks", "1", "--amp", "fp16", "--gan_mode", "wgangp", "--n_epochs_decay", "0", "--max_dataset_size",
        "2"]))
    state = load_checkpoint(str(tmp_path / "ckpt" / "gp16" / "latest.pth"))
    assert scales and scales[0] == 65536.0 and all(s > 1 for s in scales)
    saved = state["scalers"][1]["scale"]  # the discriminators' scaler after the last step (halved if it overflowed)
    assert scales[-1] in (saved, 2 * saved)
    assert all(math.isfinite(v) for row in logged_rows(tmp_path / "ckpt" / "gp16" / "loss_log.txt")
               for v in row.values())
