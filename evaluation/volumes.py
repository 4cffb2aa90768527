"""test.py for 3D models: whole test volumes by sliding-window inference, written as NIfTI in original units.

For each direction the model has (A->B, and B->A for RevGAN and CycleGAN models) every volume of PHASE<source> is
mapped to [-1, 1] with the checkpoint's intensity range of its domain, translated patch by patch (``--patch_size``,
``--overlap``, smooth blending; only one batch of patches on the device), mapped back to the target domain's units
and saved with the input's affine and header as ``volumes/<label>/<name>.nii.gz``. Where PHASE<target> holds a
volume of the same name and shape, MAE, PSNR and SSIM (3D) are computed in original units with the target window
as the data range, over every voxel and over the foreground (evaluation.metrics), beside a baseline (the copy of
the input unless test.py's --baseline says otherwise). Mid-slices (axial, coronal, sagittal) go to ``images/`` for the
results page.
"""
import os

import numpy as np
import torch

from evaluation import metrics
from evaluation.images import OutputNames
from evaluation.translator import Translator
from util.errors import UserError
from util.pages import slices
from util.progress import progress, write as progress_write
from util.results import Results
from util.util import save_image, size_text, tensor2im
from util.volume import (is_volume_file, list_volumes, load_volume, mid_slices, save_volume, to_unit, volume_stem,
                         target_of, volumes_by_name)


def _volumes_of_dataroot(opt):
    """Whether the inputs are the volumes in --dataroot itself: for ``--model test`` (one direction, no targets)
    where --dataroot holds volume files, as the 2D single mode reads the images of a folder given directly."""
    folder = opt.dataroot
    return getattr(opt, "dataset_mode", None) == "single" and os.path.isdir(folder) and any(
        is_volume_file(f) and os.path.isfile(os.path.join(folder, f)) for f in os.listdir(folder))


def run(opt, model, domains, out_dir=None, phase=None, limit=None, keep=None, say=print, baselines=None):
    """Returns (items, rows) for the results page and metrics files (rows: {volume name: util.results.Results});
    ``domains`` (a DomainMap) names the folders; ``baselines``: {output label: evaluation.baselines.Baseline}
    (default: the copy of the input).
    ``out_dir`` None writes nothing (validation); ``phase`` (default --phase) picks the folders, ``limit`` (default
    --num_test) caps the volumes per direction, ``keep`` filters their paths (validation's held-out files)."""
    intensity = model.volume.intensity if model.volume else None
    if not intensity:
        raise UserError(f"the checkpoint of {opt.name} holds no intensity ranges: it was not trained on volumes")
    phase, limit = phase or opt.phase, limit or opt.num_test
    folders = {d: phase + letter for d, letter in domains.folder.items()}
    items, rows, given = {}, {}, _volumes_of_dataroot(opt)
    tell = progress_write if say is print else say  # below the progress bar
    for label, (src, dst, _) in model.translators().items():
        translator = Translator(model, src + "to" + dst, opt.patch_size, opt.overlap, opt.batch_size, say)
        # per direction: a volume's outputs of both directions share an item; renames said when files are written
        output_name = OutputNames(tell if out_dir else (lambda line: None), stem=volume_stem)
        own = given and not os.path.isdir(os.path.join(opt.dataroot, folders[src]))  # PHASE<src>/ first, as 2D
        paths = list_volumes(opt.dataroot if own else os.path.join(opt.dataroot, folders[src]),
                             what=f"{phase} {src}")
        paths = (keep(paths) if keep else paths)[:limit]
        targets = {} if own else volumes_by_name(os.path.join(opt.dataroot, folders[dst]))
        (slo, shi), (dlo, dhi) = intensity[src], intensity[dst]
        baseline = (baselines or {}).get(label)  # None: the copy of the input
        # a volume without a target (test.py and validation): the cycle error of a two-way model
        back = Translator(model, dst + "to" + src, opt.patch_size, opt.overlap, opt.batch_size, lambda *a: None) \
            if model.has_cycle_error else None
        untargeted = targeted = 0
        for path in progress(paths, f"{'test' if out_dir else 'validation'} {label}"):
            name = output_name(path)
            arr, img = load_volume(path)
            parts = translator.volume_parts(arr)
            fake, out = parts.output, parts.output_unit
            pictures = {"real_" + src: parts.source_unit, label: out}
            target_path = target_of(targets, path)
            target = load_volume(target_path)[0] if target_path else None
            if target is not None and target.shape != arr.shape:
                if out_dir is not None:  # test.py (validation, each epoch, measures the pairs that fit)
                    tell(f"note: {target_path} ({size_text(target.shape)}) is not of the shape of {path} "
                         f"({size_text(arr.shape)}): not its target (resample the pair to one grid)")
                target = None
            if target is not None:
                targeted += 1
                pictures["real_" + dst] = to_unit(target, dlo, dhi)
                rows.setdefault(name, []).extend(metrics.translation(
                    label, fake[None], target[None], arr[None], data_range=dhi - dlo, baseline=baseline,
                    window=(dlo, dhi)))
            elif back is not None:  # A -> B -> A against A, both on [0, 1] of A's window (as 2D's)
                untargeted += 1
                rec = back.volume_parts(fake).output_unit
                rows.setdefault(name, []).append(metrics.cycle_error(src, (rec + 1) / 2, (parts.source_unit + 1) / 2))
            if out_dir is None:
                continue
            ext = ".npy" if path.endswith(".npy") else ".nii.gz"
            save_volume(fake, os.path.join(out_dir, "volumes", label, name + ext), like=img)
            item = items.setdefault(name, {"name": name, "images": {}})
            for pic_label, vol in pictures.items():
                rel = os.path.join("images", pic_label, name + ".png")
                save_image(tensor2im(torch.from_numpy(mid_slices(np.asarray(vol, np.float32)))[None]),
                           os.path.join(out_dir, rel))
                item["images"][pic_label] = rel
                window = (slo, shi) if pic_label == "real_" + src else (dlo, dhi)  # every slice, for the page
                item.setdefault("volumes", {})[pic_label] = slices.write(out_dir, name, pic_label, vol, window, img)
        if untargeted:
            say(f"{label}: {untargeted} of {len(paths)} {phase} {src} volumes have no target (of their name and "
                f"shape): the cycle error ({src} -> {dst} -> {src}, MAE on [0, 1] of the {src} window) is reported "
                f"for them instead")
        elif out_dir is not None and not own and not targeted:
            say(f"no reference metrics for {label}: no {phase} {dst} volume has the name and shape of a {phase} {src} "
                f"volume, so no output has a true target")
    return list(items.values()), {name: Results(row) for name, row in rows.items()}
