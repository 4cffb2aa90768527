"""The trivial baseline each translation is measured against (test.py ``--baseline``), so that a gain means something.

- ``copy``: the input unchanged (volumes in their original units). A baseline only where input and target are the
  same kind of image (restoration, denoising, super-resolution); across domains (photos -> maps, or volumes in other
  units) it scores so low that any output looks good beside it.
- ``lut``: a look-up table from the input's colour (its intensity, for one channel) to the mean target colour,
  fitted on the training pairs (aligned pairs, or A and B files of the same names) under --dataroot: the best a
  model can do that sees one pixel and no context. It needs paired training data at hand.
- ``none``: no baseline.

``--baseline auto`` (the default) takes the copy where input and target have the same channels, the look-up table
where their channel counts differ and paired training data is at hand, and no baseline otherwise; give ``lut`` for
a task between different kinds of image with the same channels (satellite photos -> maps), or ``none``.
"""
import os
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from util.errors import UserError

KINDS = ("auto", "copy", "lut", "none")
ABOUT = {"copy": "copy of the input", "lut": "look-up table", "none": "no baseline"}
MAX_PAIRS = 200  # training pairs a look-up table is fitted on (the first, in file order)
MAX_SAMPLES = 4_000_000  # pixels or voxels it is fitted on (a strided sample of the pairs)


@dataclass(frozen=True)
class Baseline:
    """A baseline of one translation: ``predict(source)`` -> the baseline's output on the target's scale (or None).

    Attributes:
        kind: "copy", "lut" or "none".
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


def _strided(arrays, budget):
    """A strided sample of each (source, target) pair, so that all together hold about ``budget`` pixels."""
    total = sum(int(np.prod(s.shape[1:])) for s, _ in arrays)
    step = max(1, int(np.ceil(total / budget)))
    for s, t in arrays:
        yield s.reshape(s.shape[0], -1)[:, ::step], t.reshape(t.shape[0], -1)[:, ::step]


# -- test.py ---------------------------------------------------------------------------------------------------------
def for_test(opt, model, domains, say=print):
    """{output label: Baseline} for test.py's translations, as ``--baseline`` asks (see the module's text)."""
    wanted = getattr(opt, "baseline", "auto") or "auto"
    if wanted not in KINDS:
        raise UserError(f"--baseline {wanted}: use one of {', '.join(KINDS)}")
    out = {}
    tables = {}
    for label, t in model.translators().items():
        same = domains.channels[t.source] == domains.channels[t.target]
        kind = wanted if wanted != "auto" else "copy" if same else "lut"
        if kind == "copy" and not same:
            raise UserError(f"--baseline copy: {label} has {domains.channels[t.source]} input channel(s) and "
                            f"{domains.channels[t.target]} output channel(s), so the input is no baseline: use "
                            f"--baseline lut or none")
        if kind == "lut":
            table, why = tables.get((t.source, t.target)) or _fit(opt, model, domains, t.source, t.target)
            tables[(t.source, t.target)] = (table, why)
            if table is None:
                if wanted == "lut":
                    raise UserError(f"--baseline lut: {why}")
                say(f"note: no baseline for {label}: its input has other channels than its target, and {why}")
                out[label] = NONE
                continue
            out[label] = table
        elif kind == "copy":
            out[label] = COPY
        else:
            out[label] = NONE
    return out


def _fit(opt, model, domains, source, target):
    """(Baseline, None) with a look-up table from domain ``source`` to ``target`` fitted on the training pairs, or
    (None, why not)."""
    try:
        pairs = list(_volume_pairs(opt, model, domains, source, target) if model.dims == 3
                     else _image_pairs(opt, domains, source, target))
    except UserError as e:
        return None, f"the training data cannot be read as pairs ({e})"
    if not pairs:
        return None, (f"no paired training data is at hand under {opt.dataroot} (aligned train/, or trainA/ and "
                      f"trainB/ files of the same names)")
    table = LookUpTable(pairs[0][0].shape[0])
    for s, t in _strided(pairs, MAX_SAMPLES):
        table.add(s, t)
    table.finish(len(pairs))
    what = "colour" if table.channels > 1 else "intensity"
    about = f"look-up table of the input's {what}, fitted on {len(pairs)} training pair{'s' * (len(pairs) != 1)}"
    if model.dims == 3:
        (slo, shi), (dlo, dhi) = model.volume.intensity[source], model.volume.intensity[target]

        def predict(arr):  # original units in, original units out
            unit = np.clip((np.asarray(arr, np.float64) - slo) / (shi - slo), 0, 1)
            return dlo + table(unit) * (dhi - dlo)
        return Baseline("lut", about, predict), None
    return Baseline("lut", about, table), None


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


def _volume_pairs(opt, model, domains, source, target):
    """(source, target) arrays (1, D, H, W) on 0..1 (the checkpoint's intensity windows) of the training volumes of
    the same names and shapes."""
    from util.volume import list_volumes, load_volume, volume_stem, volumes_by_name
    folders = {d: os.path.join(opt.dataroot, "train" + letter) for d, letter in domains.folder.items()}
    if not all(os.path.isdir(f) for f in folders.values()):
        return
    targets = volumes_by_name(folders[target])
    windows = model.volume.intensity
    found = 0
    for path in list_volumes(folders[source], what=f"train {source}"):
        if found >= MAX_PAIRS // 10 or volume_stem(path) not in targets:
            continue
        s, t = load_volume(path)[0], load_volume(targets[volume_stem(path)])[0]
        if s.shape != t.shape:
            continue
        found += 1
        yield tuple(np.clip((v - lo) / (hi - lo), 0, 1)[None].astype(np.float32)
                    for v, (lo, hi) in ((s, windows[source]), (t, windows[target])))
