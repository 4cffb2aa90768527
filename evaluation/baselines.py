"""The trivial baseline each translation is measured against (test.py ``--baseline``), so that a gain means something.

- ``copy``: the input unchanged (volumes in their original units). A baseline only where input and target are the
  same kind of image (restoration, denoising, super-resolution); across domains (photos -> maps, or volumes in other
  units) it scores so low that any output looks good beside it.
- ``lut``: a look-up table from the input's colour (its intensity, for one channel) to the mean target colour,
  fitted on the training pairs (aligned pairs, or A and B files of the same names) under --dataroot: the best a
  model can do that sees one pixel and no context. It needs paired training data at hand.
- ``mean``: the mean target colour (intensity) of the same training pairs, output everywhere whatever the input: what
  a model scores that learned the target domain's average and nothing of the translation. Where the input's colour
  says little about the target's, the table over-fits the training images and this can score better on others (the
  quality benchmark's photo -> map task, tested on other photos).
- ``none``: no baseline.

``--baseline auto`` (the default) fits the table and the mean whenever paired training data is at hand and takes
whichever of the copy, the table and the mean scores the best mean PSNR on the training pairs (the table's and the
mean's scores measured on pairs they were not fitted on: the first half of the pairs in file order scored by the fit
on the second and the other way round, so that, as for a test set of other images, the two halves mostly come from
other images or subjects; a tie goes to the copy, then the table), the copy left out where input and target have different channels; without
paired training data it takes the copy where the channels match, else no baseline. It says which it took, and every
score, on the page and in test.py's printout.
"""
import os
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from util.errors import UserError

KINDS = ("auto", "copy", "lut", "mean", "none")
ABOUT = {"copy": "copy of the input", "lut": "look-up table", "mean": "mean target", "none": "no baseline"}
MAX_PAIRS = 200  # training pairs a look-up table is fitted on (the first, in file order)
MAX_SAMPLES = 4_000_000  # pixels or voxels it is fitted on (a strided sample of the pairs)


@dataclass(frozen=True)
class Baseline:
    """A baseline of one translation: ``predict(source)`` -> the baseline's output on the target's scale (or None).

    Attributes:
        kind: "copy", "lut", "mean" or "none".
        about: what it is, for pages and the console ("look-up table fitted on 120 training pairs").
        predict: source array (C, ...) -> prediction (C', ...) on the target's scale, or None.
    """
    kind: str
    about: str
    predict: Optional[Callable] = None

    def __call__(self, source):
        return None if self.predict is None or source is None else self.predict(source)

    def describe(self):
        return {"kind": self.kind, "about": self.about}


NONE = Baseline("none", ABOUT["none"])


COPY = Baseline("copy", ABOUT["copy"], lambda source: np.asarray(source))


class LookUpTable:
    """Source colour -> mean target colour, fitted on pairs of arrays (C, ...) on 0..1.

    The source's first three channels are quantized (256 levels for one channel, 64 for two, 32 for three or
    more); a colour not seen in training takes the mean of the coarser bin around it (a quarter of the levels per
    channel), else the mean target of all pairs."""

    def __init__(self, channels):
        self.channels = min(3, channels)
        self.levels = {1: 256, 2: 64}.get(self.channels, 32)
        self.fine = self.coarse = self.mean = None
        self.sums = {}

    def _index(self, source, levels):
        q = np.clip((np.asarray(source[:self.channels], np.float64) * levels).astype(np.int64), 0, levels - 1)
        index = np.zeros(q.shape[1:], np.int64)
        for c in range(self.channels):
            index = index * levels + q[c]
        return index.reshape(-1)

    def add(self, source, target):
        """Counts one pair (source (C, ...), target (C', ...) of the same spatial shape, both on 0..1)."""
        target = np.asarray(target, np.float64).reshape(target.shape[0], -1)
        for name, levels in (("fine", self.levels), ("coarse", self.levels // 4)):
            index = self._index(source, levels)
            size = levels ** self.channels
            counts, sums = self.sums.get(name, (np.zeros(size), np.zeros((target.shape[0], size))))
            counts += np.bincount(index, minlength=size)
            for c in range(target.shape[0]):
                sums[c] += np.bincount(index, weights=target[c], minlength=size)
            self.sums[name] = (counts, sums)

    def finish(self, pairs):
        if not self.sums:
            raise ValueError("no pairs")
        counts, sums = self.sums["fine"]
        self.mean = sums.sum(axis=1) / counts.sum()
        coarse_counts, coarse_sums = self.sums["coarse"]
        coarse = np.where(coarse_counts > 0, coarse_sums / np.maximum(coarse_counts, 1), self.mean[:, None])
        # each fine bin's coarse bin: its levels divided by 4 per channel
        levels = self.levels
        digits = np.indices((levels,) * self.channels).reshape(self.channels, -1) // 4
        parent = np.zeros(digits.shape[1], np.int64)
        for c in range(self.channels):
            parent = parent * (levels // 4) + digits[c]
        self.table = np.where(counts > 0, sums / np.maximum(counts, 1), coarse[:, parent])
        self.pairs = pairs
        return self

    def __call__(self, source):
        source = np.asarray(source, np.float64)
        out = self.table[:, self._index(source, self.levels)]
        return out.reshape((self.table.shape[0],) + source.shape[1:])

    def constant(self, source):
        """The mean target of all pairs (per target channel) everywhere: the shape of ``__call__``'s output."""
        source = np.asarray(source)
        return np.broadcast_to(self.mean.reshape((-1,) + (1,) * (source.ndim - 1)),
                               (len(self.mean),) + source.shape[1:]).copy()


def _strided(arrays, budget):
    """A strided sample of each (source, target) pair, so that all together hold about ``budget`` pixels."""
    total = sum(int(np.prod(s.shape[1:])) for s, _ in arrays)
    step = max(1, int(np.ceil(total / budget)))
    for s, t in arrays:
        yield s.reshape(s.shape[0], -1)[:, ::step], t.reshape(t.shape[0], -1)[:, ::step]


# -- test.py ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fitted:
    """A look-up table and the mean target fitted on the training pairs, and how they and the copy score there.

    Attributes:
        baseline: the table as a Baseline.
        pairs: the training pairs it was fitted on.
        what: "colour" or "intensity": what the table looks up.
        lut_psnr: its mean PSNR on the pairs (dB), each half of them (in file order) scored by a table fitted on the
            other half
            (``held_out``; with one pair: on that pair).
        copy_psnr: the copy of the input's mean PSNR on the same pairs; None where input and target differ in
            channels.
        held_out: whether ``lut_psnr`` and ``mean_psnr`` were measured on pairs they were not fitted on.
        mean: the mean target colour (intensity) of the pairs as a Baseline.
        mean_psnr: its mean PSNR on the pairs, measured as ``lut_psnr``.
    """
    baseline: Baseline
    pairs: int
    what: str
    lut_psnr: float
    copy_psnr: Optional[float]
    held_out: bool
    mean: Baseline
    mean_psnr: float

    def choice(self):
        """--baseline auto: the best of the copy, the table and the mean on the training pairs (ties: the copy, then
        the table), said with every score in its ``about``."""
        fitted = " (each half of them, in file order, scored by the fit on the other half)" if self.held_out else \
            " (the table and the mean scored on the one pair they were fitted on, which flatters them: add pairs)"
        candidates = [("copy", self.copy_psnr, COPY, "for the copy of the input")] if self.copy_psnr is not None \
            else []
        candidates += [("lut", self.lut_psnr, self.baseline, f"for a look-up table of the input's {self.what} fitted "
                                                             f"on them"),
                       ("mean", self.mean_psnr, self.mean, f"for their mean target {self.what}")]
        kind, psnr, chosen, _ = max(candidates, key=lambda c: c[1])  # the first of equals: copy, then lut
        others = " and ".join(f"{p:.2f} dB {text}" for k, p, _, text in candidates if k != kind)
        if kind == "copy":
            pairs = f"{self.pairs} training pair{'s' * (self.pairs != 1)}"
            return Baseline(kind, f"{ABOUT['copy']}; chosen by --baseline auto, the best on {pairs}: mean PSNR "
                                  f"{psnr:.2f} dB, against {others}{fitted}", chosen.predict)
        why = "" if self.copy_psnr is not None else \
            " (the input has other channels than the target, so its copy is no baseline)"
        return Baseline(kind, f"{chosen.about}; chosen by --baseline auto{why}, the best on those pairs: mean PSNR "
                              f"{psnr:.2f} dB{fitted}, against {others}", chosen.predict)


def for_test(opt, model, domains, say=print):
    """{output label: Baseline} for test.py's translations, as ``--baseline`` asks (see the module's text); says
    which baseline each translation is measured against."""
    wanted = getattr(opt, "baseline", "auto") or "auto"
    if wanted not in KINDS:
        raise UserError(f"--baseline {wanted}: use one of {', '.join(KINDS)}")
    out, fitted = {}, {}
    for label, t in model.translators().items():
        same = domains.channels[t.source] == domains.channels[t.target]
        if wanted == "copy" and not same:
            raise UserError(f"--baseline copy: {label} has {domains.channels[t.source]} input channel(s) and "
                            f"{domains.channels[t.target]} output channel(s), so the input is no baseline: use "
                            f"--baseline lut or none")
        if wanted in ("copy", "none"):
            out[label] = COPY if wanted == "copy" else NONE
            continue
        key = (t.source, t.target)
        if key not in fitted:
            fitted[key] = _fit(opt, model, domains, t.source, t.target, same)
        fit, why = fitted[key]
        if fit is not None:
            out[label] = {"lut": fit.baseline, "mean": fit.mean}.get(wanted) or fit.choice()
        elif wanted in ("lut", "mean"):
            raise UserError(f"--baseline {wanted}: {why}")
        elif same:
            out[label] = Baseline("copy", f"{ABOUT['copy']}; --baseline auto found nothing to compare it with: "
                                          f"{why}", COPY.predict)
        else:
            say(f"note: no baseline for {label}: its input has other channels than its target, and {why}")
            out[label] = NONE
    for label, b in out.items():
        say(f"baseline of {label}: {b.about}")
    return out


def _psnr(predicted, target, data_range):
    mse = float(np.mean((np.asarray(predicted, np.float64) - target) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(data_range ** 2 / mse)


def _mean_psnr(scores):
    """The mean of per-pair PSNRs, as the summary's mean over test items (a pair reproduced exactly counts as
    100 dB rather than making the mean infinite)."""
    return float(np.mean([min(s, 100.0) for s in scores]))


def _table(samples, channels):
    table = LookUpTable(channels)
    for s, t in samples:
        table.add(s, t)
    return table.finish(len(samples))


def _fit(opt, model, domains, source, target, same):
    """(Fitted, None) with a look-up table from domain ``source`` to ``target`` and the mean target fitted on the
    training pairs, and the scores of them and (``same``: input and target have the same channels) of the copy, or
    (None, why not)."""
    try:  # per pair a strided sample (pixels or voxels): the table is fitted and scored on these
        samples = _volume_samples(opt, domains, source, target) if model.dims == 3 else list(
            _strided(list(_image_pairs(opt, domains, source, target)), MAX_SAMPLES))
    except UserError as e:
        return None, f"the training data cannot be read as pairs ({e})"
    if not samples:
        return None, (f"no paired training data is at hand under {opt.dataroot} (aligned train/, or trainA/ and "
                      f"trainB/ files of the same names)")
    if model.dims == 3:  # volumes in original units; the table maps the windows' 0..1 to 0..1
        (slo, shi), (dlo, dhi) = model.volume.intensity[source], model.volume.intensity[target]
        data_range = dhi - dlo

        def unit(arr, lo, hi):
            return np.clip((np.asarray(arr, np.float64) - lo) / (hi - lo), 0, 1)

        def fit_on(raw):
            return _table([(unit(s, slo, shi), unit(t, dlo, dhi)) for s, t in raw], 1)

        def through(fn):  # original units in, original units out
            return lambda arr: dlo + fn(unit(arr, slo, shi)) * (dhi - dlo)
    else:  # images on 0..1
        data_range = 1.0

        def fit_on(raw):
            return _table(raw, raw[0][0].shape[0])

        def through(fn):
            return fn
    table = fit_on(samples)
    held_out = len(samples) >= 2
    if held_out:  # each half scored by the fit on the other; halves in file order, so that neighbours (tiles or
        # crops of one photo) stay on one side. With every other pair, the table scored 19.53 dB on the quality
        # benchmark's photo -> map training pairs and 17.54 on its test photos, where the mean scores 18.74
        halves = samples[:len(samples) // 2], samples[len(samples) // 2:]
        scored = [(fit_on(halves[1 - k]), halves[k]) for k in (0, 1)]
    else:
        scored = [(table, samples)]
    scores, means = ([_psnr(through(fn(fit))(s), t, data_range) for fit, part in scored for s, t in part]
                     for fn in (lambda fit: fit, lambda fit: fit.constant))
    copy = _mean_psnr(_psnr(s, t, data_range) for s, t in samples) if same and all(
        s.shape == t.shape for s, t in samples) else None
    what = "colour" if table.channels > 1 else "intensity"
    n = len(samples)
    pairs = f"{n} training pair{'s' * (n != 1)}"
    mean = Baseline("mean", f"mean target {what} of {pairs}, the same everywhere", through(table.constant))
    return Fitted(Baseline("lut", f"look-up table of the input's {what}, fitted on {pairs}", through(table)), n, what,
                  _mean_psnr(scores), copy, held_out, mean, _mean_psnr(means)), None


def _image_pairs(opt, domains, source, target):
    """(source, target) arrays (C, H, W) on 0..1 of the training pairs, read as test.py reads its data."""
    from data import TEST_READING, create_dataset
    root = opt.dataroot
    if not (os.path.isdir(os.path.join(root, "train")) or
            all(os.path.isdir(os.path.join(root, "train" + s)) for s in "AB")):
        return
    dataset_mode = opt.dataset_mode if opt.dataset_mode in ("aligned", "unaligned") else "unaligned"
    train = opt.replace(phase="train", dataset_mode=dataset_mode, max_dataset_size=MAX_PAIRS, **TEST_READING)
    data = create_dataset(train, domains, shard=False)
    if not data.dataset.pairing:
        return
    for k in range(min(len(data.dataset), MAX_PAIRS)):
        item = data.dataset[k]
        s, t = item[domains_side(domains, source)], item[domains_side(domains, target)]
        if s.shape[1:] == t.shape[1:]:
            yield ((s.numpy() + 1) / 2).astype(np.float32), ((t.numpy() + 1) / 2).astype(np.float32)


def domains_side(domains, domain):
    """The item side ("A" or "B") that holds the model's ``domain``."""
    return next(side for side, d in domains.side.items() if d == domain)


def _volume_samples(opt, domains, source, target):
    """[(source, target)]: strided samples (1, N) in original units of the training volumes of the same names and
    shapes (at most MAX_PAIRS // 10 of them, MAX_SAMPLES voxels in all; volumes read one at a time)."""
    from util.volume import list_volumes, load_volume, target_of, volume_shape, volumes_by_name
    folders = {d: os.path.join(opt.dataroot, "train" + letter) for d, letter in domains.folder.items()}
    if not all(os.path.isdir(f) for f in folders.values()):
        return []
    targets = volumes_by_name(folders[target])
    pairs = []
    for path in list_volumes(folders[source], what=f"train {source}"):
        target = target_of(targets, path)
        if len(pairs) < MAX_PAIRS // 10 and target:
            shape = volume_shape(path)
            if shape == volume_shape(target):
                pairs.append((path, target, shape))
    step = max(1, int(np.ceil(sum(int(np.prod(shape)) for _, _, shape in pairs) / MAX_SAMPLES)))
    return [tuple(load_volume(p)[0].reshape(1, -1)[:, ::step] for p in (s, t)) for s, t, _ in pairs]
