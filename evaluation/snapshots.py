"""The fixed sample the training page shows every epoch, so that epochs compare: the same image (or, in 3D, the same
patch of the same volume) translated by the model as it stands.

Which sample: a held-out one where validation holds data out (DATAROOT/val or valA/valB, else the files
--val_fraction holds out), otherwise a training one. 2D: of the first eight items (read as validation reads them:
the whole image at --crop_size, no flips), the one whose input varies most, so never a blank one. 3D: the first
volume of the folder (and its target of the same name), cut to the training patch around the centre of its
foreground (voxels above the lowest tenth of the intensity window), so never an all-background patch.

Drawing it does not change training: the networks run in eval mode without gradients, every random state is
forked or restored (torch's, on the CPU and the GPU, Python's, NumPy's), the networks' buffers (normalization
running statistics) are put back as they were, and the networks are called directly (through
evaluation.translator.Translator with ``direct=True``, never DistributedDataParallel, whose forward would
synchronize processes). A run with the page trains, and resumes, exactly as one without it (tested)."""
import os
import random
import sys

import numpy as np
import torch

from data import TEST_READING, create_dataset, validation_source
from data.base_dataset import split_paths
from evaluation import domain_map
from evaluation.translator import Translator
from util.volume import list_volumes, load_volume, pad_to, parse_patch_size, target_of, to_unit, volumes_by_name

CANDIDATES = 8  # 2D: items looked at for the one that varies most
LABELS = {"AtoB": ("A", "B"), "BtoA": ("B", "A")}


class Snapshot:
    """The training page's fixed sample of one run (built on first use).

    Args:
        opt: the run configuration.
        model: the model being trained.
    """

    def __init__(self, opt, model):
        self.opt, self.model = opt, model
        self.items, self.about, self.failed = None, None, False

    def _source(self):
        """(phase, split, where) of the data the sample is taken from."""
        source = validation_source(self.opt)
        if source == "folder":
            return "val", None, "held out for validation (DATAROOT/val)"
        if source == "fraction":
            return self.opt.phase, "val", "held out for validation (--val_fraction)"
        return self.opt.phase, None, "from the training data"

    def _pick_image(self):
        phase, split, where = self._source()
        opt = self.opt.replace(is_train=False, load_size=self.opt.crop_size, phase=phase, **TEST_READING)
        data = create_dataset(opt, domain_map(self.opt, self.model), split, shard=False).dataset
        best, spread = None, -1.0
        for k in range(min(CANDIDATES, len(data))):
            item = data[k]
            s = float(item["A"].std())
            if s > spread:
                best, spread = item, s
        items = {d: best[d][None] for d in ("A", "B") if torch.is_tensor(best.get(d))}
        name = os.path.basename(str(best.get("A_paths", "")))
        return items, f"The same image every epoch: {name}, {where}, translated by the model of that epoch " \
                      f"(eval mode)."

    def _pick_patch(self):
        phase, split, where = self._source()
        domains = domain_map(self.opt, self.model)
        folders = {d: os.path.join(self.opt.dataroot, phase + letter) for d, letter in domains.folder.items()}
        sources = list_volumes(folders["A"], what=f"{phase} A")
        if split:
            sources = split_paths(sources, self.opt.val_fraction, "val")
        path_a = sources[0]
        targets = volumes_by_name(folders["B"]) if os.path.isdir(folders["B"]) else {}
        path_b = target_of(targets, path_a) or (sorted(targets.values())[0] if targets else None)
        patch = parse_patch_size(self.opt.patch_size)
        windows = self.model.volume.intensity
        a = pad_to(to_unit(load_volume(path_a)[0], *windows["A"]).astype(np.float32), patch, -1.0)
        fg = np.argwhere(a > -0.8)
        centre = fg.mean(axis=0).round().astype(int) if len(fg) else np.array(a.shape) // 2
        corner = [int(min(max(0, c - p // 2), n - p)) for c, p, n in zip(centre, patch, a.shape)]
        cut = tuple(slice(c, c + p) for c, p in zip(corner, patch))
        items = {"A": torch.from_numpy(np.ascontiguousarray(a[cut]))[None, None]}
        if path_b is not None:
            b = pad_to(to_unit(load_volume(path_b)[0], *windows["B"]).astype(np.float32), patch, -1.0)
            if b.shape == a.shape:
                items["B"] = torch.from_numpy(np.ascontiguousarray(b[cut]))[None, None]
        size = "×".join(str(p) for p in patch)
        return items, f"The same patch every epoch: {size} voxels of {os.path.basename(path_a)} around the centre " \
                      f"of its foreground, {where}, as axial, coronal and sagittal mid-slices, translated by the " \
                      f"model of that epoch (eval mode)."

    def visuals(self):
        """{label: tensor (1, C, ...) in [-1, 1]}: real_A, fake_B (rec_A), real_B, fake_A (rec_B) of the fixed sample
        by the model as it stands; None where no sample can be read (a note says why, once)."""
        if self.failed:
            return None
        model = self.model
        cuda = [model.device] if model.device.type == "cuda" else []
        states = random.getstate(), np.random.get_state()
        nets = {name: model.net(name) for name in model.model_names}
        modes = {name: net.training for name, net in nets.items()}
        buffers = {name: [b.detach().clone() for b in net.buffers()] for name, net in nets.items()}
        try:
            with torch.random.fork_rng(devices=cuda), torch.no_grad():
                if self.items is None:
                    self.items, self.about = self._pick_patch() if model.dims == 3 else self._pick_image()
                for net in nets.values():
                    net.eval()
                return self._translate()
        except Exception as e:  # the page then shows the batch being trained on, as before
            self.failed = True
            print(f"note: the training page shows the current batch: no fixed sample could be drawn ({e})",
                  file=sys.stderr)
            return None
        finally:
            for name, net in nets.items():
                net.train(modes[name])
                for b, saved in zip(net.buffers(), buffers[name]):
                    b.copy_(saved)
            random.setstate(states[0])
            np.random.set_state(states[1])

    def _translate(self):
        """Each direction through evaluation.translator.Translator (test.py's and validation's inference path), on
        the networks themselves (``direct``: never a DistributedDataParallel wrapper, as only rank 0 draws)."""
        model, out = self.model, {}
        real = {d: x.to(model.device) for d, x in self.items.items()}
        runners = {d: Translator(model, d, say=lambda *a: None, direct=True) for d in model.directions}
        fakes = {}
        for direction, runner in runners.items():
            src, dst = LABELS[direction]
            if src in real:
                fakes[dst] = runner.run(real[src])
        for src, dst in (("A", "B"), ("B", "A")):
            if src not in real:
                continue
            out["real_" + src] = real[src]
            if dst in fakes:
                out["fake_" + dst] = fakes[dst]
                back = "AtoB" if src == "B" else "BtoA"
                if model.has_cycle_error and back in runners:
                    out["rec_" + src] = runners[back].run(fakes[dst])
        return {label: t.float().cpu() for label, t in out.items()}
