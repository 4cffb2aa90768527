"""Generators trained with pytorch-CycleGAN-and-pix2pix (the official pretrained ones, or a user's own).

Their files are one state dict per network, ``checkpoints/NAME/EPOCH_net_G.pth`` (``--model test``; with
``--model_suffix _A|_B``: ``EPOCH_net_G_A.pth`` / ``_G_B.pth``; ``--model cycle_gan``: both; ``--model pix2pix``:
``EPOCH_net_G.pth``). test.py uses them when NAME holds no RevGAN checkpoint. The architecture comes from the flags
(``--netG resnet_9blocks|resnet_6blocks|unet_256|unet_128``, ``--norm``, ``--ngf``, ``--no_dropout``,
``--input_nc/--output_nc``), as with their test.py; the global residual is off (they have none).

Their ResNet generator is one flat ``nn.Sequential`` (``model.1.weight``, ``model.10.conv_block.1.weight``, ...);
ours nests the encoder, the blocks and the decoder (``model.0.1.weight``, ``model.1.conv_block.1.weight``, ...), so
the keys are mapped. Their U-Net nests like ours. InstanceNorm entries of files from before PyTorch 0.4
(``running_mean``, ``running_var``, ``num_batches_tracked``) are dropped, as their loader does. A file that does not fit
is refused in one line that names it and, where its shapes tell, the flags that would fit.
"""
import os
import re
from dataclasses import replace

import torch

from util.errors import UserError

FLAT_ENCODER = 10  # their ResNet: pad, conv, norm, relu, then 2 x (conv, norm, relu) before the blocks
# --model test on their plain net_G file: one network G, for whichever way its user trained it (their --direction
# BtoA only changes which folder and channel count it reads); built from the flags like theirs
SINGLE_G = "pytorch-CycleGAN-and-pix2pix G"
SINGLE_G_DIRECTIONS = {"AtoB": ("G", "AtoB"), "BtoA": ("G", "AtoB")}


def network_names(opt):
    """The networks test.py's --model reads from their files: G (or G_A/G_B with --model_suffix) for test, G_A and
    G_B for cycle_gan, G for pix2pix; none for the RevGAN models (they have no such files)."""
    if opt.model == "test":
        return ["G" + opt.model_suffix]
    return {"cycle_gan": ["G_A", "G_B"], "pix2pix": ["G"]}.get(opt.model, [])


def file_for(folder, epoch, name):
    """Their file of network ``name`` (G, G_A, G_B) at ``epoch``."""
    return os.path.join(folder, f"{epoch}_net_{name}.pth")


def available(folder, epoch, names):
    """Whether ``folder`` holds their files for all of ``names`` (and so test.py should read them)."""
    return bool(names) and all(os.path.isfile(file_for(folder, epoch, n)) for n in names)


def read(path):
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise UserError(f"{path} cannot be read as a PyTorch state dict (damaged, or not a network file)") from None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise UserError(f"{path} is not a pytorch-CycleGAN-and-pix2pix network file (a state dict of tensors)")
    return {k: v for k, v in state.items() if not _old_instance_norm_entry(k, state)}


def _old_instance_norm_entry(key, state):
    """Running statistics that InstanceNorm layers of PyTorch < 0.4 saved (their weight has none)."""
    stem, _, leaf = key.rpartition(".")
    return leaf in ("running_mean", "running_var", "num_batches_tracked") and stem + ".weight" not in state


def resnet_keys(state, blocks):
    """Their flat ResNet keys -> ours (encoder model.0, ``blocks`` blocks model.1..n, decoder model.n+1)."""
    out = {}
    for key, value in state.items():
        m = re.match(r"model\.(\d+)\.(.*)", key)
        if not m:
            out[key] = value
            continue
        k, rest = int(m.group(1)), m.group(2)
        if k < FLAT_ENCODER:
            out[f"model.0.{k}.{rest}"] = value
        elif k < FLAT_ENCODER + blocks:
            out[f"model.{k - FLAT_ENCODER + 1}.{rest}"] = value
        else:
            out[f"model.{blocks + 1}.{k - FLAT_ENCODER - blocks}.{rest}"] = value
    return out


def infer_flags(state):
    """The flags their file was most likely trained with, from its keys and shapes (for error messages)."""
    flags = []
    blocks = {int(m.group(1)) for k in state for m in [re.match(r"model\.(\d+)\.conv_block\.", k)] if m}
    if blocks:
        flags.append(f"--netG resnet_{len(blocks)}blocks" if len(blocks) in (6, 9) else
                     f"--netG resnet_9blocks (it has {len(blocks)} blocks)")
        first = state.get("model.1.weight")
        if first is not None:
            flags += [f"--ngf {first.shape[0]}", f"--input_nc {first.shape[1]}"]
        last = [v for k, v in state.items() if re.match(r"model\.\d+\.weight$", k) and v.dim() == 4]
        if last:
            flags.append(f"--output_nc {last[-1].shape[0]}")
        if any(".conv_block.5." in k for k in state):  # no dropout layer before the second convolution
            flags.append("--no_dropout")
    elif any(k.startswith("model.model.") for k in state):
        depth = max(k.split(".").count("model") for k in state) - 1  # one nested block per level
        flags.append({7: "--netG unet_128", 8: "--netG unet_256"}.get(depth, f"--netG unet ({depth} levels)"))
        outer = state.get("model.model.0.weight")
        if outer is not None:
            flags += [f"--ngf {outer.shape[0]}", f"--input_nc {outer.shape[1]}"]
    elif "model.0.weight" in state and state["model.0.weight"].shape[-1] == 4:
        return None  # a PatchGAN discriminator
    if any(k.endswith("running_mean") for k in state):
        flags.append("--norm batch")
    elif flags:
        flags.append("--norm instance")
    return flags


def load(net, path, netG, blocks):
    """Their state dict in ``path`` into our generator ``net`` (--netG ``netG``, ``blocks`` ResNet blocks)."""
    theirs = read(path)
    state = resnet_keys(theirs, blocks) if netG.startswith("resnet") else theirs
    mine = net.state_dict()
    missing = [k for k in mine if k not in state]
    unexpected = [k for k in state if k not in mine]
    wrong = [k for k in mine if k in state and state[k].shape != mine[k].shape]
    if missing or unexpected or wrong:
        guess = infer_flags(theirs)
        if guess is None:
            raise UserError(f"{path} holds a discriminator (PatchGAN), not a generator: use its net_G file")
        problem = (f"{len(missing)} weight(s) missing" if missing else "") or \
                  (f"{len(unexpected)} unexpected weight(s)" if unexpected else f"shapes differ ({wrong[0]})")
        hint = f"; its shapes fit {' '.join(guess)}" if guess else ""
        raise UserError(f"{path} does not fit --netG {netG} with these flags ({problem}){hint}")
    net.load_state_dict(state)


def load_networks(model, folder, epoch) -> None:
    """Their files in ``folder`` (EPOCH_net_NAME.pth) into ``model``'s networks, as the flags built them."""
    g = model.spec.generator
    for name in model.model_names:
        load(model.net(name), file_for(folder, epoch, name), g.netG, g.depth())
    files = ", ".join(os.path.basename(file_for(folder, epoch, n)) for n in model.model_names)
    model.loaded_from = f"{folder}: {files} (pytorch-CycleGAN-and-pix2pix)"
    print(f"loaded pytorch-CycleGAN-and-pix2pix generator(s) {files} from {folder} (architecture from the flags: "
          f"--netG {g.netG}, --norm {g.norm}, --ngf {g.ngf})")


UPSTREAM_NORM = {"pix2pix": "batch"}  # their --norm defaults (instance for the other models)


def upstream_norm(model):
    """pytorch-CycleGAN-and-pix2pix's --norm default for ``model``."""
    return UPSTREAM_NORM.get(model, "instance")


def spec_for(opt, spec, typed=()):
    """The spec of their generators from the flags: no global residual, two downsamplings, their --norm default
    unless --norm is in ``typed`` (the flags typed; instance norm has no weights, so the file cannot tell it); --model
    test runs their plain G file as SINGLE_G and their G_A/G_B files as CycleGAN's."""
    model = spec.model if opt.model != "test" else "cycle_gan" if opt.model_suffix else SINGLE_G
    norm = spec.generator.norm if "norm" in typed else upstream_norm(opt.model)
    return replace(spec, model=model, generator=replace(spec.generator, residual=False, n_downsampling=2,
                                                        n_blocks=None, norm=norm))  # their depth: the --netG name
