"""FID and KID: how close the set of a translation's outputs is to the set of real images of its target domain, for
2D results without true targets (unpaired data; paired data too). test.py computes them with --fid; validation when
--val_metric names one (FID_fake_B, KID_fake_A, ...), on at least ``MIN_VALIDATION_IMAGES`` held-out images.

The features are the standard ones: InceptionV3's 2048-d pool features with the weights of the original TensorFlow
FID (pt_inception-2015-12-05, as torch-fidelity and torchmetrics load them), images resized to 299x299 as the
original does (TF1-style bilinear, no antialiasing); FID and KID (polynomial-kernel MMD, mean and standard deviation
over 100 random subsets of min(1000, n) images) are torchmetrics' implementations, fed those features. The weights
come from --fid_weights PATH, from torch's hub cache (downloaded there on first use, ~92 MB), or not at all: then
one line says how to get them. The baseline is test.py's (--baseline) for the same translation: the copy of the input
(the FID (KID) of the real input images against the real target images, where both domains have as many channels),
the look-up table's outputs of the inputs (or the mean target everywhere) against the real target images, or
none.

FID of a few dozen images is biased upwards (its covariance estimate needs thousands): compare numbers of the same
test set only. KID is unbiased; its standard deviation over subsets is reported with it.
"""
import os
import urllib.error
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from util.errors import UserError
from util.results import FID, KID, Result
from util.util import tensor2im, to01

MIN_VALIDATION_IMAGES = 50  # validation computes FID/KID only on at least this many held-out images per domain
WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + WEIGHTS_FILE
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000
INSTALL = "pip install -r requirements-extras.txt (torchmetrics and torch-fidelity)"


@dataclass
class FeatureNetwork:
    """Images -> features: ``fn`` maps a uint8 batch (N, 3, H, W) to (N, D) features; ``name`` says which."""
    name: str
    fn: Callable
    dims: int


def hub_weights():
    """Where torch's hub cache keeps the standard weights (whether or not they are there)."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", WEIGHTS_FILE)


def weights_path(path=None):
    """The weights file: ``path`` (--fid_weights), else the hub cache's, downloaded there if missing."""
    if path:
        if not os.path.isfile(path):
            raise UserError(f"--fid_weights {path}: no such file")
        return path
    cached = hub_weights()
    if os.path.isfile(cached):
        return cached
    try:
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        torch.hub.download_url_to_file(WEIGHTS_URL, cached, progress=False)
    except (OSError, urllib.error.URLError, ValueError) as e:
        reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
        raise UserError(f"FID and KID need the standard InceptionV3 weights ({WEIGHTS_FILE}, 92 MB), which are not in "
                        f"{os.path.dirname(cached)} and could not be downloaded ({str(reason).splitlines()[0][:80]}): "
                        f"fetch {WEIGHTS_URL} on a machine with internet and pass --fid_weights PATH (or put it in "
                        f"{os.path.dirname(cached)})") from None
    return cached


def inception(weights=None):
    """The standard FID feature network (a FeatureNetwork); one line when its packages or weights are missing."""
    try:
        from torchmetrics.image.fid import NoTrainInceptionV3
    except (ImportError, ModuleNotFoundError):
        raise UserError(f"FID and KID need the optional packages torchmetrics and torch-fidelity: {INSTALL}") from None
    path = weights_path(weights)
    try:  # only tensors: then torch-fidelity's own (unrestricted) load of the same file runs no code either
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError("not a state dict")
        net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                 feature_extractor_weights_path=path, antialias=False)
    except ModuleNotFoundError:
        raise UserError(f"FID and KID need the optional packages torchmetrics and torch-fidelity: {INSTALL}") from None
    except Exception as e:
        raise UserError(f"{path} is not the InceptionV3 weights FID needs ({WEIGHTS_FILE}): "
                        f"{str(e).splitlines()[0][:120]}") from None

    def fn(images):
        with torch.no_grad():
            return net(images).double()
    return FeatureNetwork("InceptionV3 (pt_inception-2015-12-05, pool 2048)", fn, 2048)


def feature_network(weights=None):
    """The network FID and KID use (tests replace this function with a small stand-in: their numbers are no FID)."""
    return inception(weights)


def as_uint8(image):
    """A visual (1, C, H, W) in [-1, 1] as the uint8 (1, 3, H, W) the feature network takes (grey replicated), the
    same 8-bit values test.py saves."""
    arr = tensor2im(image)
    arr = np.repeat(arr[:, :, None], 3, axis=2) if arr.ndim == 2 else arr
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]


class _Features(torch.nn.Module):
    """Precomputed features as torchmetrics' "feature network" (its metrics then only do the statistics)."""

    def __init__(self, num_features):
        super().__init__()
        self.num_features = num_features

    def forward(self, features):
        return features


def fid(real, fake):
    """FID between feature sets (n, D) (torchmetrics' FrechetInceptionDistance on them)."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    metric = FrechetInceptionDistance(feature=_Features(real.shape[1]))
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return float(metric.compute())


def kid(real, fake):
    """KID (mean, standard deviation over subsets) between feature sets (torchmetrics' KernelInceptionDistance),
    with a fixed seed: the same sets give the same numbers."""
    import warnings

    from torchmetrics.image.kid import KernelInceptionDistance
    size = min(KID_SUBSET_SIZE, len(real), len(fake))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "will save all extracted features": they are the features
        metric = KernelInceptionDistance(feature=_Features(real.shape[1]), subsets=KID_SUBSETS, subset_size=size)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        mean, std = metric.compute()
    return float(mean), float(std)


class SetMetrics:
    """FID and KID of each translation of a test or validation run: evaluation.images.run hands it every item's
    visuals; ``results()`` gives the set-level util.results records.

    Args:
        network: a FeatureNetwork.
        translations: {output label: (source domain, target domain)} (model.translators()).
        channels: {domain: channels}: the copy-the-input baseline only where source and target have as many.
        baselines: {output label: evaluation.baselines.Baseline} (test.py's --baseline; settable until the first
            item); None or a label not in it: the copy of the input.
    """

    def __init__(self, network, translations, channels, baselines=None):
        self.network, self.translations, self.channels = network, translations, channels
        self.baselines = baselines
        self.reset()

    def reset(self):
        """Forgets the images seen (validation measures anew each time)."""
        self.real, self.fake, self.based = {}, {}, {}  # domain -> {path: features}; label -> [features] (twice)

    def kind(self, label):
        """The kind of baseline of ``label``: "copy", "lut", "mean" or "none"."""
        chosen = (self.baselines or {}).get(label)
        return "copy" if chosen is None else chosen.kind

    def add(self, visuals, data, domains):
        """One item: its real images (each file once, by path), its outputs and, for a look-up table or mean baseline,
        its output of the input."""
        side_of = {domain: side for side, domain in domains.side.items()}
        for domain in ("A", "B"):
            image, side = visuals.get("real_" + domain), side_of.get(domain)
            paths = data.get(f"{side}_paths") if side else None
            if image is None or paths is None:
                continue
            seen = self.real.setdefault(domain, {})
            if paths[0] not in seen:
                seen[paths[0]] = self.network.fn(as_uint8(image))
        for label, (source, _) in self.translations.items():
            if visuals.get(label) is not None:
                self.fake.setdefault(label, []).append(self.network.fn(as_uint8(visuals[label])))
            if self.kind(label) in ("lut", "mean") and visuals.get("real_" + source) is not None:
                predicted = self.baselines[label](to01(visuals["real_" + source][0]))  # (C, H, W) on 0..1
                image = torch.from_numpy(np.asarray(predicted, np.float32) * 2 - 1)[None]
                self.based.setdefault(label, []).append(self.network.fn(as_uint8(image)))

    def counts(self, label):
        source, target = self.translations[label]
        return len(self.fake.get(label, [])), len(self.real.get(target, {}))

    def results(self):
        """[Result] of FID and KID (with its std) per translation whose output and target sets have 2 or more
        images; the baseline (``baselines``): the real inputs, or the look-up table's (mean's) outputs, against the
        real targets."""
        out = []
        for label, (source, target) in self.translations.items():
            fake, real = self.fake.get(label), self.real.get(target)
            if not fake or not real or len(fake) < 2 or len(real) < 2:
                continue
            fake, real = torch.cat(fake), torch.cat(list(real.values()))
            kind, base = self.kind(label), None
            inputs = list(self.real.get(source, {}).values()) if kind == "copy" else self.based.get(label, [])
            if kind == "copy" and self.channels[source] != self.channels[target]:
                inputs = []
            if kind != "none" and len(inputs) >= 2:
                inputs = torch.cat(inputs)
                base = fid(real, inputs), kid(real, inputs)
            k = kid(real, fake)
            based = {} if base is None else {"baseline_kind": kind}
            out += [Result(FID, label, fid(real, fake), None if base is None else base[0], **based),
                    Result(KID, label, k[0], None if base is None else base[1][0], std=k[1], **based)]
        return out

    def describe(self):
        """"FID and KID: InceptionV3 ..., fake_B: 50 outputs against 50 real B images, ..." for the console."""
        sets = ", ".join(f"{label}: {n} outputs against {m} real {self.translations[label][1]} images"
                         for label in self.translations for n, m in [self.counts(label)] if n)
        return f"FID and KID features: {self.network.name}; {sets}"
