"""Inference without full-resolution copies (models/lean.py): the same outputs as the plain forward, the input
untouched, and less peak memory on a large image."""
import os
import subprocess
import sys

import pytest
import torch

from models import lean
from models.config import GeneratorConfig
from models.networks import define_G
from tests.conftest import ROOT

CASES = [("revgan", 2, "conv7"), ("revgan", 2, "unshuffle"), ("resnet_6blocks", 2, "conv7"), ("revgan", 3, "conv7"),
         ("revgan", 1, "conv7")]


@pytest.mark.parametrize("netG,dims,stem", CASES)
def test_lean_forward_equals_plain_forward(monkeypatch, netG, dims, stem):
    torch.manual_seed(0)
    net = define_G(2, 2, GeneratorConfig(netG=netG, ngf=4, n_blocks=1, dims=dims, residual=True, stem=stem,
                                         n_downsampling=2 if stem == "unshuffle" else 1)).double().eval()  # no dropout
    size = {1: (37,), 2: (23, 18), 3: (11, 9, 7)}[dims]  # odd sizes: reflection at both ends, padding to a multiple
    x = torch.rand((2, 2) + size, dtype=torch.float64) * 2 - 1
    before = x.clone()
    directions = ["AtoB", "BtoA"] if netG == "revgan" else ["AtoB"]
    with torch.no_grad():
        plain = {}
        for d in directions:
            with monkeypatch.context() as m:
                m.setattr(lean, "run_lean", lambda part, a: part(a))
                m.setattr("models.networks.run_lean", lambda part, a: part(a))
                plain[d] = net(x, d)
        calls = []
        for name in ("_conv_in_slabs", "_transposed_in_slabs"):
            real = getattr(lean, name)
            monkeypatch.setattr(lean, name, lambda *a, real=real, name=name: calls.append(name) or real(*a))
        monkeypatch.setattr(lean, "SLAB_BYTES", 8 * 4 * 20)  # a few rows or channels per call: many calls
        for d in directions:
            assert torch.allclose(net(x, d), plain[d], rtol=0, atol=1e-12), d
    assert set(calls) == {"_conv_in_slabs", "_transposed_in_slabs"}
    assert torch.equal(x, before)  # the caller's input is not changed in place


def test_lean_refuses_gradients():
    with pytest.raises(RuntimeError, match="no_grad"):
        lean.run_lean(torch.nn.Sequential(torch.nn.ReLU()), torch.zeros(1, 1, 2, 2))


PEAK = """
import sys, torch
import models.networks as networks
from models.config import GeneratorConfig
from scripts import bench_utils as bu
torch.manual_seed(0)
net = networks.define_G(3, 3, GeneratorConfig(netG="revgan", ngf=16, n_blocks=2, residual=True)).eval()
x = torch.rand(1, 3, 512, 512) * 2 - 1
if sys.argv[1] == "plain":
    networks.run_lean = lambda part, a: part(a)
else:  # slabs of 1 MiB here, as 16 MiB ones on an image 4x the side
    from models import lean
    lean.SLAB_BYTES = 2 ** 20
with torch.no_grad():
    net(x[..., :64, :64], "AtoB")  # warm-up
    meter = bu.PeakMemory("cpu"); meter.start(); net(x, "AtoB")
print(meter.peak())
"""


def measure(mode):
    """Peak resident memory of one forward in a fresh process, large allocations through mmap (as
    scripts/bench_utils measures)."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", PEAK, mode], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return int(out.stdout.split()[-1])


def test_lean_inference_holds_less_memory():
    """One RevGAN generator forward on a 512x512 RGB image (ngf 16, 16 MiB per full-resolution map): the peak above
    the level before it falls by 30% or more."""
    plain, lean_peak = measure("plain"), measure("lean")
    assert lean_peak < 0.7 * plain, (lean_peak, plain)


@pytest.mark.parametrize("k,s,p,op", [(3, 2, 1, 1), (4, 2, 1, 0), (3, 1, 1, 0), (5, 3, 2, 2), (2, 2, 0, 0)])
def test_slabs_equal_whole_layers(monkeypatch, k, s, p, op):
    """Each layer kind on its own, for kernel, stride, padding and output padding combinations."""
    torch.manual_seed(1)
    x = torch.randn(2, 3, 13, 7, dtype=torch.float64)
    monkeypatch.setattr(lean, "SLAB_BYTES", 1)  # the smallest slabs
    up = torch.nn.ConvTranspose2d(3, 4, k, stride=s, padding=p, output_padding=op).double()
    down = torch.nn.Conv2d(3, 4, k, stride=s, padding=p).double()
    with torch.no_grad():
        assert torch.allclose(lean._transposed_in_slabs(up, x), up(x), rtol=0, atol=1e-12)
        assert torch.allclose(lean._conv_in_slabs(down, x, None), down(x), rtol=0, atol=1e-12)
        pad = torch.nn.ReflectionPad2d((p, p + 1, p, p + 1))
        same = torch.nn.Conv2d(3, 4, k).double()
        assert torch.allclose(lean._conv_in_slabs(same, x, pad.padding), same(pad(x)), rtol=0, atol=1e-12)
