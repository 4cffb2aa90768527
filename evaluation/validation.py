"""Validation while training (--val_freq N): every N epochs (and after the last) the model runs as test.py --eval
would on held-out data, and the mean metrics go to loss_log.txt, visdom and the training page; best.pth keeps the
checkpoint with the best --val_metric.

The held-out data (data.validation_source): DATAROOT/val (or valA and valB) when present, read like the test set;
else --val_fraction of the training files, held out from training by file name. Paired data gives PSNR, SSIM and
MAE of every translation with the copy-the-input baseline; unpaired data without pairs of the same name has no true
target, so two-way models report their cycle error instead (and say so). A --val_metric of FID or KID (FID_fake_B,
KID_fake_A) adds both, for 2D data with at least evaluation.fid.MIN_VALIDATION_IMAGES held-out images per domain
(checked before training, with the feature network's weights). 3D models translate whole held-out volumes
with test.py's sliding window, against targets of the same names and shapes, or, for the two-way models, with the
cycle error of the volumes that have none (the one-way models need targets: checked before training). Under torchrun
every process validates all of the held-out data and the means are averaged, so all take the same decisions.

Validation does not touch training: it runs in eval mode without gradients, on its own data loader, and restores
every random state it could draw from, so a run with validation trains exactly as one without (and resumes exactly).
"""
import os
import random

import torch

from data import TEST_READING, create_dataset, test_scale, validation_source
from data.base_dataset import split_paths
from evaluation import domain_map, images, set_metrics, volumes
from evaluation.fid import MIN_VALIDATION_IMAGES
from util import distributed
from util.errors import UserError
from util.results import DOMAINS, METRICS, PSNR, REGIONS, Results, measured_names, summarize
from util.volume import list_volumes, target_of, volume_shape, volumes_by_name


class Validation:
    """The validation of one training run.

    Args:
        opt: the run configuration (--val_freq, --val_fraction, --val_metric, --val_max).
        model: the model being trained (its spec says which channels each domain has).
    """

    def __init__(self, opt, model):
        self.source = validation_source(opt)
        self.opt, self.metric, self.best = opt, None, None
        if self.source is None:
            return
        self.val_opt = opt.replace(is_train=False, phase="val" if self.source == "folder" else opt.phase,
                                   **TEST_READING, **test_scale(opt.preprocess, opt.load_size, opt.crop_size))
        self.domains = domain_map(opt, model)
        self.split = "val" if self.source == "fraction" else None
        self.dataset, self.sets = None, None
        if model.dims == 3:
            self.check_volumes(model)
        else:  # every torchrun process validates on all of it: the same numbers and decisions everywhere
            self.dataset = create_dataset(self.val_opt, self.domains, self.split, shard=False)
            if self.dataset.dataset.pairing is None and not model.has_cycle_error:
                raise UserError(f"--val_freq: the validation images of --model {opt.model} need targets: A and B "
                                f"files of the same names (a {opt.model} model has no cycle error to measure)")
        if set_level(opt.val_metric):
            self.sets = self.check_set_metrics(model)
        else:
            self.check_metric(model)

    def keep(self, paths):
        return split_paths(paths, self.opt.val_fraction, "val") if self.split else paths

    def check_volumes(self, model):
        """Before any training: the held-out volumes exist and, for a model without a cycle error (one way), at least
        one has a target of its name and shape (a two-way model's volumes without one give their cycle error)."""
        folders = {d: os.path.join(self.opt.dataroot, self.val_opt.phase + letter)
                   for d, letter in self.domains.folder.items()}
        for label, (src, dst, _) in model.translators().items():
            sources = self.keep(list_volumes(folders[src], what=f"validation {src}"))
            if not sources:
                raise UserError(f"--val_fraction {self.opt.val_fraction:g} holds out no volume of {folders[src]}")
            targets = volumes_by_name(folders[dst])
            if not model.has_cycle_error and not any((target := target_of(targets, p)) and volume_shape(p) ==
                                                     volume_shape(target) for p in sources):
                raise UserError(f"--val_freq: the validation volumes of --model {self.opt.model} need targets: "
                                f"volumes of the same names and shapes for the held-out volumes of {folders[src]} in "
                                f"{folders[dst]} (a {self.opt.model} model has no cycle error to measure)")

    def check_metric(self, model):
        """Before any training: --val_metric names a result validation gives (of a translation with targets, 3D also
        in the foreground; of a cycle error on unpaired 2D data, and of 3D volumes without targets)."""
        wanted = self.opt.val_metric
        if wanted.lower() == "auto":
            return
        if model.dims == 3:
            names = measured_names(model.translators(), regions=REGIONS,
                                   cycles=DOMAINS if model.has_cycle_error else ())
        elif self.dataset.dataset.pairing:
            names = measured_names(model.translators())
        else:
            names = measured_names(cycles=DOMAINS)
        if wanted.lower() not in {n.lower() for n in names}:
            raise UserError(f"--val_metric {wanted}: validation here measures {', '.join(names)}")

    def check_set_metrics(self, model):
        """--val_metric FID_... or KID_...: 2D data, enough held-out images per domain, the feature network (its
        weights) at hand; returns the evaluation.fid.SetMetrics validation fills."""
        flag = f"--val_metric {self.opt.val_metric}"
        if model.dims == 3:
            raise UserError(f"{flag}: FID and KID are measured on 2D images; validate volumes by PSNR_, SSIM_ or MAE_")
        ds = self.dataset.dataset
        sizes = [len(getattr(ds, k)) for k in ("paths_a", "paths_b") if hasattr(ds, k)] or [len(ds)]
        n = min(min(sizes), self.opt.val_max)
        if n < MIN_VALIDATION_IMAGES:
            raise UserError(f"{flag}: FID and KID need at least {MIN_VALIDATION_IMAGES} held-out images per domain to "
                            f"mean something; validation has {n} (raise --val_fraction or --val_max, add valA and "
                            f"valB, or validate by PSNR_, SSIM_ or cycle_MAE_)")
        return set_metrics(self.val_opt, model, self.dataset, flag)

    @property
    def enabled(self):
        return self.source is not None

    def describe(self):
        if self.source == "folder":
            return f"validation every {self.opt.val_freq} epoch(s) on {self.opt.dataroot}/val*"
        return f"validation every {self.opt.val_freq} epoch(s) on {self.opt.val_fraction:g} of the training files " \
               f"(held out from training)"

    def due(self, epoch, last_epoch):
        return self.enabled and (epoch % self.opt.val_freq == 0 or epoch == last_epoch)

    def run(self, model):
        """The mean results on the held-out data (util.results.Results, averaged over torchrun's processes so that
        they agree exactly); training's random states and modes untouched."""
        cuda = [model.device] if model.device.type == "cuda" else []
        python_state = random.getstate()
        with torch.random.fork_rng(devices=cuda):
            model.eval()
            try:
                if model.dims == 3:
                    _, rows = volumes.run(self.val_opt, model, self.domains, None, self.val_opt.phase,
                                          self.opt.val_max, self.keep, say=lambda *a: None)
                else:
                    if self.sets is not None:
                        self.sets.reset()
                    _, rows = images.run(self.val_opt, model, self.dataset, None, self.opt.val_max,
                                         say=lambda *a: None, desc="validation", sets=self.sets)
            finally:
                model.train()
        random.setstate(python_state)
        if not rows:
            raise UserError("validation found no held-out item with a target or a cycle error to measure")
        means = summarize(rows)
        if self.sets is not None:
            means = Results(list(means) + self.sets.results())
        return means.with_flat_values(distributed.mean(means.flat()))

    def pick_metric(self, means):
        """The name of the result --val_metric means, checked against what validation measures (auto: PSNR of the
        first translation with targets, else the first cycle error)."""
        wanted = self.opt.val_metric
        if wanted == "auto":
            auto = next((r for r in means.translations if r.metric is PSNR), next(iter(means.cycles), means[0]))
            return auto.key
        match = {r.key.lower(): r.key for r in means}.get(wanted.lower())
        if match is None:
            raise UserError(f"--val_metric {wanted}: validation measures {', '.join(r.key for r in means)}")
        return match

    def improved(self, means):
        """Whether ``means`` beat the best so far on --val_metric (and remember it)."""
        self.metric = self.metric or self.pick_metric(means)
        result = means.get(self.metric)
        if result is None:
            raise UserError(f"--val_metric {self.metric}: validation measures {', '.join(r.key for r in means)}")
        better = self.best is None or result.metric.better(result.value, self.best)
        if better:
            self.best = result.value
        return better

    def state(self):
        return {"metric": self.metric, "best": self.best}

    def load(self, state, typed=(), say=print):
        """The best so far from a checkpoint; a --val_metric typed now that differs starts the search anew."""
        if not state or not state.get("metric"):
            return
        if "val_metric" in typed and self.opt.val_metric.lower() not in ("auto", state["metric"].lower()):
            say(f"--val_metric {self.opt.val_metric}: the checkpoint kept best.pth by {state['metric']}; best.pth is "
                f"chosen anew by {self.opt.val_metric}")
            return
        self.metric, self.best = state["metric"], state["best"]


def set_level(name):
    """Whether --val_metric ``name`` is a metric of whole sets (FID, KID)."""
    metric = METRICS.get(str(name).split("_")[0].upper())
    return metric is not None and not metric.per_item


def format_metrics(means):
    """"PSNR_fake_B: 24.1000 (copy 22.0000) SSIM_fake_B: 0.8123 (copy 0.8000) ..." for a log line (``means``:
    util.results.Results)."""
    return " ".join(f"{r.key}: {r.value:.4f}" + (f" (copy {r.baseline:.4f})" if r.baseline is not None else "")
                    + (f" (± {r.std:.4f})" if r.std is not None else "") for r in means)
