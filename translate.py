"""Use a trained model anywhere: ``load_translator`` gives one direction of a checkpoint as a function of images,
volumes and files, the same inference test.py and validation run (evaluation.translator.Translator).

    from translate import load_translator
    to_map = load_translator("checkpoints/maps_revgan")                 # AtoB, eval mode, on the CPU
    to_map.translate_file("photo.png", "map.png")                        # one file
    to_map.translate_folder("datasets/maps/testA", "out/maps")           # a folder
    to_photo = load_translator("checkpoints/maps_revgan", direction="BtoA")   # a RevGAN's inverse
    ct_to_mr = load_translator("checkpoints/ct_revgan3d/best.pth", device="cuda")
    mr = ct_to_mr("ct.nii.gz")          # a nibabel image in MR units, with the input's affine and header

It also loads the checkpoints test.py reads: ``load_model`` is test.py's (and export.py's) way to build a model from
checkpoints/NAME (RevGAN checkpoints, or pytorch-CycleGAN-and-pix2pix generator files built from the flags).
"""
import contextlib
import io
import os
import re

import torch

from evaluation.translator import Translator
from models import create_model, upstream
from options.resolution import resolve
from options.test_options import TestOptions
from util.checkpoint import checkpoint_path, load_checkpoint
from util.errors import UserError

MODES = ("eval", "train")
UPSTREAM_FILE = re.compile(r"(?P<epoch>.+)_net_G(?P<suffix>_A|_B)?\.pth$")


def load_model(options, command):
    """The model of ``command`` (a parsed TestOptions command line; ``options`` holds what was typed) with its
    networks loaded: checkpoints/NAME/EPOCH.pth, or pytorch-CycleGAN-and-pix2pix's EPOCH_net_G*.pth built from the
    flags when NAME holds no RevGAN checkpoint. Returns (the resolved RunConfig, the model); the networks are in train
    mode, as test.py runs them unless --eval."""
    path, folder = checkpoint_path(command, command.epoch), os.path.join(command.checkpoints_dir, command.name)
    if not os.path.isfile(path) and upstream.available(folder, command.epoch, upstream.network_names(command)):
        opt, spec = resolve(command, options.typed)  # pytorch-CycleGAN-and-pix2pix's files: built from the flags
        model = create_model(opt, upstream.spec_for(opt, spec, options.typed))
        model.setup(opt)
        upstream.load_networks(model, folder, opt.epoch)
    else:
        checkpoint = load_checkpoint(path)
        opt, spec = resolve(command, options.typed, checkpoint, path)
        model = create_model(opt, spec)
        model.setup(opt, checkpoint)
    return opt, model


def checkpoint_arguments(path, epoch=None):
    """test.py's --checkpoints_dir, --name and --epoch (and --model_suffix for pytorch-CycleGAN-and-pix2pix files)
    of a run folder (checkpoints/NAME) or a checkpoint file in one (NAME/EPOCH.pth, NAME/EPOCH_net_G_A.pth)."""
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        folder, file_epoch, suffix = path, None, None
    elif os.path.isfile(path):
        folder, base = os.path.split(path)
        m = UPSTREAM_FILE.match(base)
        if m:
            file_epoch, suffix = m["epoch"], m["suffix"] or ""
        elif base.endswith(".pth"):
            file_epoch, suffix = base[:-4], None
        else:
            raise UserError(f"{path} is not a checkpoint (NAME/EPOCH.pth, or pytorch-CycleGAN-and-pix2pix's "
                            f"EPOCH_net_G.pth)")
    else:
        raise UserError(f"no checkpoint or run folder {path}")
    if epoch is not None and file_epoch is not None and str(epoch) != file_epoch:
        raise UserError(f"epoch {epoch}: {path} is the checkpoint of epoch {file_epoch}")
    args = ["--checkpoints_dir", os.path.dirname(folder), "--name", os.path.basename(folder),
            "--epoch", str(epoch or file_epoch or "latest")]
    if suffix:
        args += ["--model_suffix", suffix]
    return args, suffix


def gpu_arguments(device):
    """--gpu_ids of a torch device ("cpu", "cuda", "cuda:1")."""
    device = torch.device(device)
    if device.type == "cpu":
        return ["--gpu_ids", "-1"]
    if device.type != "cuda":
        raise UserError(f"device {device}: use cpu or cuda[:N]")
    if not torch.cuda.is_available():
        raise UserError(f"device {device}: no GPU is visible here: use device='cpu'")
    return ["--gpu_ids", str(device.index or 0)]


def _argument_words(message):
    """A message of test.py's loading in load_translator's terms: ``--direction BtoA`` -> ``direction='BtoA'``."""
    message = re.sub(r"--direction (AtoB|BtoA)", r"direction='\1'", message)
    return re.sub(r"--(direction|epoch|patch_size|overlap)\b", r"\1", message)


def load_translator(checkpoint, direction=None, epoch=None, mode="eval", device="cpu", patch_size=None, overlap=0.5,
                    batch_size=1, flags=(), quiet=True):
    """One direction of a trained model as an evaluation.translator.Translator.

    Args:
        checkpoint: a run folder (checkpoints/NAME: its ``epoch``, default latest) or a checkpoint file in one
            (checkpoints/NAME/best.pth; pytorch-CycleGAN-and-pix2pix's NAME/latest_net_G.pth, whose architecture
            comes from ``flags`` as with test.py, e.g. ``["--netG", "unet_256", "--norm", "batch"]``).
        direction: AtoB (default: the translation the model was trained for, whatever --direction it was trained
            with) or BtoA (the other way: a RevGAN's inverse, a CycleGAN's G_B); as test.py's --model test.
        epoch: the checkpoint of a run folder to read (latest, best or an epoch number).
        mode: "eval" (default: batch-norm running statistics, no dropout) or "train" (what test.py does without
            --eval, as CycleGAN's test.py).
        device: where the networks run ("cpu", "cuda", "cuda:1").
        patch_size, overlap, batch_size: volumes: the sliding window (default: the training patch, overlap 0.5).
        flags: more test.py flags (for pytorch-CycleGAN-and-pix2pix files: their architecture).
        quiet: keep the loading notes off the console.
    """
    if mode not in MODES:
        raise UserError(f"mode {mode!r}: use eval or train")
    if direction not in (None, "AtoB", "BtoA"):
        raise UserError(f"direction {direction!r}: use AtoB or BtoA")
    args, suffix = checkpoint_arguments(checkpoint, epoch)
    if direction is None:
        direction = "BtoA" if suffix == "_B" else "AtoB"
    folder = os.path.join(args[1], args[3])
    argv = args + ["--model", "test", "--direction", direction, "--dataroot", folder, "--num_threads", "0",
                   "--overlap", str(overlap)] + gpu_arguments(device)
    if patch_size is not None:
        argv += ["--patch_size"] + [str(p) for p in ([patch_size] if isinstance(patch_size, int) else patch_size)]
    options = TestOptions()
    with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
        try:
            command = options.parse(argv + list(flags))
        except SystemExit:  # argparse's error, already printed: a library raises instead of exiting
            raise UserError(f"load_translator: flags {list(flags)} are not understood (see the line above)") from None
        try:
            opt, model = load_model(options, command)
        except UserError as e:  # test.py's words for what this function takes as arguments
            raise UserError(_argument_words(str(e))) from None
    if mode == "eval":
        model.eval()
    return Translator(model, direction, opt.patch_size, opt.overlap, batch_size,
                      say=(lambda *a: None) if quiet else print)
