"""export.py: TorchScript (loaded back) and ONNX (run by onnxruntime) against the PyTorch network, 2D and 3D,
both directions of a RevGAN from its one core, pytorch-CycleGAN-and-pix2pix generator files, the JSON sidecar,
sizes other than the traced one; what cannot be exported says so in one line.

Tolerance: 1e-5 (TorchScript) and 1e-4 (ONNX, onnxruntime's float32 kernels) on outputs in [-1, 1]."""
import json
import os
import shutil
import sys

import numpy as np
import pytest
import torch

import export as export_script
from models.config import GeneratorConfig, ModelSpec
from models.networks import define_G
from tests.test_translate import FIXTURES
from tests.test_upstream import their_resnet
from tests.test_user_errors import one_line_failure
from translate import load_translator


def checkpoints(tmp_path, case):
    folder = tmp_path / "ckpt" / case
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(os.path.join(FIXTURES, case, "latest.pth"), folder / "latest.pth")
    return folder


def run_export(folder, *flags):
    return export_script.main(["--name", folder.name, "--checkpoints_dir", str(folder.parent), "--gpu_ids", "-1"]
                              + list(flags))


def test_torchscript_of_a_revgans_inverse_and_forward(tmp_path):
    folder = checkpoints(tmp_path, "unpaired2d")
    for direction in ("BtoA", "AtoB"):
        path = run_export(folder, "--direction", direction, "--format", "torchscript")
        assert path == str(folder / f"latest_{direction}.torchscript.pt")
        module = torch.jit.load(path)
        ref = load_translator(str(folder), direction=direction)
        x = torch.rand(3, 3, 36, 44) * 2 - 1  # another batch and size than traced (2 x 3 x 32 x 32)
        np.testing.assert_allclose(module(x).numpy(), ref.run(x).numpy(), rtol=0, atol=1e-5)
        info = json.load(open(path + ".json"))
        assert info["direction"] == direction and info["source_domain"] == direction[0]
        assert info["in_channels"] == 3 and info["size_multiple"] == 4 and info["value_range"] == [-1.0, 1.0]
        assert info["mode"] == "eval" and info["max_difference_from_pytorch"] <= 1e-5
        # the checkpoint beside it, named relative to the sidecar's folder (right after the folder moves: earlier/)
        assert info["checkpoint"].startswith("latest.pth (trained "), info["checkpoint"]
    # the inverse is the inverse of the same core: B->A(A->B(x)) is close to x only through it; here: both files differ
    assert open(folder / "latest_AtoB.torchscript.pt", "rb").read() != open(folder / "latest_BtoA.torchscript.pt",
                                                                           "rb").read()


def test_onnx_of_a_revgans_inverse_runs_in_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    folder = checkpoints(tmp_path, "unpaired2d")
    path = run_export(folder, "--direction", "BtoA", "--format", "onnx")
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    ref = load_translator(str(folder), direction="BtoA")
    x = torch.rand(1, 3, 28, 40) * 2 - 1
    got = session.run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(got, ref.run(x).numpy(), rtol=0, atol=1e-4)
    assert json.load(open(path + ".json"))["opset"] == 18


def test_3d_export_with_its_sliding_window_described(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    folder = checkpoints(tmp_path, "paired3d")
    ref = load_translator(str(folder), direction="BtoA")
    x = torch.rand(2, 1, 16, 20, 12) * 2 - 1
    path = run_export(folder, "--direction", "BtoA", "--format", "onnx")
    got = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(got, ref.run(x).numpy(), rtol=0, atol=1e-4)
    info = json.load(open(path + ".json"))
    volume = info["volume"]
    assert info["dims"] == 3 and volume["patch_size"] == [16, 16, 16] and volume["overlap"] == 0.5
    assert volume["intensity_source"] == list(ref.intensity["source"])
    assert volume["intensity_target"] == list(ref.intensity["target"]) and volume["blending"]["kind"] == "gaussian"
    path = run_export(folder, "--format", "torchscript")
    np.testing.assert_allclose(torch.jit.load(path)(x).numpy(), load_translator(str(folder)).run(x).numpy(),
                               rtol=0, atol=1e-5)


def test_pytorch_cyclegan_generator_files_export(tmp_path):
    """Their G_B file (--model_suffix _B): the exported network equals test.py's reading of it."""
    folder = tmp_path / "ckpt" / "h2z"
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    theirs = their_resnet(3, 3, 8, 6)
    for p in theirs.parameters():
        p.data.normal_(0, 0.2)
    torch.save(theirs.state_dict(), folder / "latest_net_G_B.pth")
    flags = ["--netG", "resnet_6blocks", "--ngf", "8", "--no_dropout"]
    path = run_export(folder, "--model_suffix", "_B", "--format", "torchscript", *flags)
    assert path.endswith("latest_BtoA.torchscript.pt")
    x = torch.rand(1, 3, 40, 32) * 2 - 1
    with torch.no_grad():
        want = theirs(x)
    np.testing.assert_allclose(torch.jit.load(path)(x).numpy(), want.numpy(), rtol=0, atol=1e-5)


def fake_checkpoint(folder, model, **generator):
    """A checkpoint of ``model`` with a freshly initialized generator G (what test.py reads of one)."""
    spec = ModelSpec(model, 3, 3, GeneratorConfig(**generator))
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"format": 1, "architecture": spec.to_architecture(),
                "networks": {"G": define_G(3, 3, spec.generator).state_dict()},
                "counters": {"epoch": 2, "epoch_iter": 0, "total_iters": 4}, "extra": {}, "options": {}},
               folder / "latest.pth")
    return folder


@pytest.mark.parametrize("case", ["unpaired2d", "paired3d"])
def test_unshuffle_stem_exports(tmp_path, case):
    """The unshuffle stem (the default of paired_revgan and the 3D models) through TorchScript and ONNX: the same
    output as test.py's translator at a size other than the traced one (a multiple of its size_multiple, as the export
    says; a fixture checkpoint, its generator rebuilt with that stem)."""
    from dataclasses import replace
    ort = pytest.importorskip("onnxruntime")
    folder = checkpoints(tmp_path, case)
    state = torch.load(folder / "latest.pth", weights_only=False)
    spec = ModelSpec.from_architecture(state["architecture"])
    spec = replace(spec, generator=replace(spec.generator, stem="unshuffle", stem_padding="zeros"))
    torch.manual_seed(0)
    state["architecture"] = spec.to_architecture()
    state["networks"] = {"G": define_G(spec.input_nc, spec.output_nc, spec.generator).state_dict()}
    torch.save(state, folder / "latest.pth")
    ref = load_translator(str(folder))
    assert not any(isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d)) and m.kernel_size[0] == 7
                   for m in ref.model.net("G").modules())
    x = torch.rand((1, spec.input_nc) + ((36, 44) if spec.dims == 2 else (16, 20, 12))) * 2 - 1
    path = run_export(folder, "--format", "torchscript")
    np.testing.assert_allclose(torch.jit.load(path)(x).numpy(), ref.run(x).numpy(), rtol=0, atol=1e-5)
    path = run_export(folder, "--format", "onnx")
    got = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(got, ref.run(x).numpy(), rtol=0, atol=1e-4)


def test_what_cannot_be_exported_says_so_in_one_line(tmp_path, capsys, monkeypatch):
    folder = fake_checkpoint(tmp_path / "ckpt" / "iu", "unpaired_revgan", netG="iunet", ngf=4,
                             iunet_architecture="1,1")
    argv = ["--name", "iu", "--checkpoints_dir", str(tmp_path / "ckpt"), "--gpu_ids", "-1"]
    path = export_script.main(argv + ["--format", "torchscript", "--direction", "BtoA"])  # TorchScript works
    x = torch.rand(1, 3, 32, 24) * 2 - 1
    np.testing.assert_allclose(torch.jit.load(path)(x).numpy(),
                               load_translator(str(folder), direction="BtoA").run(x).numpy(), rtol=0, atol=1e-5)
    one_line_failure(capsys, export_script.main, argv + ["--format", "onnx"], "cannot be exported to ONNX")
    assert not (folder / "latest_AtoB.onnx").exists()
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # the optional package missing
    one_line_failure(capsys, export_script.main, argv + ["--format", "onnx"], "requirements-extras.txt")
    one_line_failure(capsys, export_script.main, argv + ["--format", "onnx", "--model", "cycle_gan"],
                     "export.py exports one generator")
    # a missing or misspelt --format, and --help without one
    one_line_failure(capsys, export_script.main, argv, "add --format torchscript or --format onnx")
    one_line_failure(capsys, export_script.main, argv + ["--fromat", "onnx"], "did you mean --format?")
    with pytest.raises(SystemExit) as e:
        export_script.main(["--help"])
    assert e.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith("usage: python export.py") and "RevGAN export" in shown and "--format" in shown
