"""Export one direction of a trained generator as TorchScript or ONNX, to run it without this repository.

    python export.py --name maps_revgan --format onnx                     # AtoB: the translation it was trained for
    python export.py --name maps_revgan --direction BtoA --format torchscript   # a RevGAN's inverse, from its one core
    python export.py --name ct_revgan3d --epoch best --format onnx        # 3D: one window of the sliding window
    python export.py --name horse2zebra_pretrained --no_dropout --format onnx   # pytorch-CycleGAN-and-pix2pix files

--direction means what it means for test.py --model test on that checkpoint: AtoB is the translation the model was
trained for (whatever --direction it was trained with), BtoA the other way (RevGAN: the inverse of its core;
CycleGAN: G_B; a paired RevGAN trained one way, its default without --two_way, has no trained BtoA and is
refused). The network is exported in eval mode (batch-norm running statistics, no dropout), traced under
torch.no_grad (where the reversible core runs as a plain forward, no custom autograd), with the batch size and the
spatial sizes free: any multiple of the generator's size multiple (other sizes: pad, run, crop; test.py and the
translate API do that for you). Both directions of a RevGAN come from one core: BtoA is
dec_A(core.inverse(enc_B(x))).

Writes checkpoints/NAME/EPOCH_DIRECTION.torchscript.pt or .onnx, and beside it FILE.json: what a caller needs
(channels, size multiple, value range and how images map to it; for volumes the intensity windows, the patch size,
the overlap and the blending of the sliding window). The export is checked against the PyTorch network on two input
sizes before it is kept (TorchScript loaded back; ONNX run by onnxruntime where installed), within 1e-4 on outputs in
[-1, 1]. What cannot be exported (e.g. --netG iunet to ONNX: its resampling kernels use matrix_exp, which ONNX has no
operator for) is said in one line.
"""
import json
import os
import tempfile
import warnings

import torch

from cli import user_facing
from evaluation.translator import Translator
from options.export_options import ExportOptions
from translate import load_model
from util.errors import UserError
from util.util import size_text

FORMATS = {"torchscript": "torchscript.pt", "onnx": "onnx"}
TOLERANCE = 1e-4  # largest difference from the PyTorch network accepted, on outputs in [-1, 1]


class OneDirection(torch.nn.Module):
    """The generator in one direction: ``forward(x) = net(x, direction)``."""

    def __init__(self, net, direction):
        super().__init__()
        self.net, self.direction = net, direction

    def forward(self, x):
        return self.net(x, self.direction)


def multiples(translator):
    m = translator.size_multiple
    return tuple(m) if isinstance(m, tuple) else (m,) * translator.dims


def example_sizes(translator):
    """Two input sizes (N, C, *spatial) that the generator takes unpadded: the traced one (batch 2, twice the size
    multiple, at least 32 pixels; volumes: the sliding window) and another one to check the export on."""
    ms = multiples(translator)
    if translator.dims == 3:
        first = tuple(translator.patch)
    else:
        first = tuple(m * max(2, -(-32 // m)) for m in ms)
    second = first[:-1] + (first[-1] + ms[-1],)
    c = translator.in_channels
    return (2, c) + first, (1, c) + second


def inputs(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) * 2 - 1).to(torch.float32)


def write_atomically(folder, name, write):
    """``write(path)`` into a temporary file of ``folder``, then renamed to ``name``; returns the final path."""
    fd, tmp = tempfile.mkstemp(prefix="." + name + ".", suffix=".tmp", dir=folder)
    os.close(fd)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)  # mkstemp's 0600 would make the export private to its writer
    try:
        write(tmp)
        path = os.path.join(folder, name)
        os.replace(tmp, path)
        return path
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def torchscript(module, example, path):
    with warnings.catch_warnings():
        # the tracer's notes about Python values (the direction, the size checks); torch.jit's deprecation notice
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, example, check_trace=False)
        torch.jit.save(traced, path)


def load_torchscript(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(path, map_location="cpu")
    return lambda x: module(x)


def onnx(module, example, path, opset, translator):
    try:
        import onnx as _onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise UserError("--format onnx needs the onnx and onnxscript packages (optional): pip install -r "
                        "requirements-extras.txt") from None
    batch = torch.export.Dim("batch", min=1)
    axes = {0: batch}
    for i, m in enumerate(multiples(translator)):
        k = torch.export.Dim(f"size{i}", min=1)
        axes[2 + i] = k if m == 1 else m * k  # any multiple of the size multiple
    try:
        with warnings.catch_warnings(), _quiet():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example,), path, dynamo=True, dynamic_shapes={"x": axes}, opset_version=opset,
                              input_names=["input"], output_names=["output"], external_data=False)
    except Exception as e:  # the exporter's many error types: one line for the user
        reason = _first_line(e)
        if "matrix_exp" in str(e):
            reason = "its resampling kernels are computed with matrix_exp, which ONNX has no operator for"
        raise UserError(f"--netG {translator.model.spec.generator.netG} ({translator.direction}) cannot be exported "
                        f"to ONNX: {reason}; --format torchscript exports it") from None


def _first_line(e):
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return (lines[0] if lines else type(e).__name__)[:200]


class _quiet:
    """Keeps the ONNX exporter's progress lines off the console."""

    def __enter__(self):
        import contextlib
        import io
        self.stack = contextlib.ExitStack()
        self.stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        return self

    def __exit__(self, *exc):
        self.stack.close()
        return False


def load_onnx(path):
    """An onnxruntime session of ``path`` as a function of tensors; None where onnxruntime is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"input": x.numpy()})[0])


def check(run, module, shapes):
    """The largest difference between ``run`` (the export, loaded back) and ``module`` on inputs of ``shapes``."""
    worst = 0.0
    for k, shape in enumerate(shapes):
        x = inputs(shape, k)
        with torch.no_grad():
            want = module(x)
        got = run(x)
        if tuple(got.shape) != tuple(want.shape):
            raise UserError(f"the export gives shape {tuple(got.shape)} for input {tuple(shape)}, the network "
                            f"{tuple(want.shape)}")
        worst = max(worst, float((got - want).abs().max()))
    return worst


def export(translator, fmt, folder, stem, opset=18):
    """Writes ``translator``'s network (on the CPU, eval mode) as ``fmt`` into ``folder``/``stem``.EXT with its
    JSON sidecar; checks it against the network. Returns (path, sidecar path, largest difference or None when it
    could not be run here)."""
    net = translator.net.to("cpu").eval()
    net.requires_grad_(False)
    module = OneDirection(net, translator.call).eval()
    first, second = example_sizes(translator)
    name = f"{stem}.{FORMATS[fmt]}"
    with torch.no_grad():
        example = inputs(first, 0)
        if fmt == "torchscript":
            path = write_atomically(folder, name, lambda p: torchscript(module, example, p))
            run = load_torchscript(path)
        else:
            path = write_atomically(folder, name, lambda p: onnx(module, example, p, opset, translator))
            run = load_onnx(path)
        difference = None if run is None else check(run, module, [first, second])
    if difference is not None and not difference <= TOLERANCE:
        os.remove(path)
        raise UserError(f"the {fmt} export differs from the network by {difference:.2e} (more than {TOLERANCE:g}): "
                        f"not kept")
    info = translator.describe()
    if str(info.get("checkpoint") or "").startswith(os.path.join(folder, "")):  # beside the export: named relative
        info["checkpoint"] = info["checkpoint"][len(os.path.join(folder, "")):]  # to it, right when the folder moves
    info.update({"format": fmt, "file": name, "input": "input" if fmt == "onnx" else "the first argument",
                 "dynamic": "batch and every spatial size (multiples of size_multiple)",
                 "checked_sizes": [size_text(s) for s in (first, second)],
                 "max_difference_from_pytorch": difference, "mode": "eval"})
    if fmt == "onnx":
        info["opset"] = opset
    sidecar = write_atomically(folder, name + ".json", lambda p: _write_json(p, info))
    return path, sidecar, difference


def _write_json(path, info):
    with open(path, "w") as f:
        json.dump(info, f, indent=1)


@user_facing
def main(argv=None):
    options = ExportOptions()
    command = options.parse(argv)
    if command.dataroot is None:  # no data is read: not the demo dataset test.py would build
        command = command.replace(dataroot=os.path.join(command.checkpoints_dir, command.name))
    opt, model = load_model(options, command)
    model.eval()
    translator = Translator(model, opt.direction, opt.patch_size, opt.overlap)
    folder = os.path.join(opt.checkpoints_dir, opt.name)
    path, sidecar, difference = export(translator, opt.format, folder, f"{opt.epoch}_{opt.direction}", opt.opset)
    checked = "not checked here: onnxruntime is not installed" if difference is None else \
        f"checked against the PyTorch network: largest difference {difference:.1e}"
    print(f"exported {opt.name} {opt.direction} ({translator.source} -> {translator.target}, "
          f"{translator.in_channels} -> {translator.out_channels} channels, sizes: multiples of "
          f"{translator.size_multiple}) to {path} ({checked}); what a caller needs: {sidecar}")
    return path


if __name__ == "__main__":
    main()
