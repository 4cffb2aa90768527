"""What a data folder holds: the kinds of input file, and the error for a folder that is not there, which says
what --dataroot holds instead where that is the likely mistake (a file, the other kind of data, the inputs
themselves rather than PHASEA/PHASEB folders)."""
import os

from util.volume import is_volume_file

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff", ".webp")


def is_image_file(filename):
    return filename.lower().endswith(IMG_EXTENSIONS)


def missing_folder(folder, what, volumes):
    """The message for ``folder`` (DATAROOT/PHASE<side>, read for ``what``) not existing; ``volumes``: whether the
    model reads volumes (3D) or images."""
    root = os.path.dirname(os.path.normpath(folder))
    plain = f"{what} folder {folder} does not exist (check --dataroot and --phase)"
    if os.path.isfile(root):
        return f"--dataroot {root} is a file, not a folder: give the folder that holds it (a single file is " \
               f"translated by the translate API's translate_file)"
    if not os.path.isdir(root):
        return plain
    files = [f for f in os.listdir(root) if os.path.isfile(os.path.join(root, f))]
    images, vols = any(is_image_file(f) for f in files), any(is_volume_file(f) for f in files)
    if volumes and images and not vols:
        return f"{plain}; {root} holds images, but this is a 3D model: it reads volumes (.nii, .nii.gz, .npy)"
    if not volumes and vols and not images:
        return f"{plain}; {root} holds volumes, but this is a 2D model: translate volumes with a 3D model's checkpoint"
    if (vols if volumes else images):
        name = os.path.basename(os.path.normpath(folder))  # e.g. testA; its other side testB
        pair = f"{name}/ and {name[:-1] + {'A': 'B', 'B': 'A'}[name[-1]]}/" if name[-1:] in ("A", "B") else f"{name}/"
        return f"{plain}; {root} holds the inputs themselves: give the folder that holds {pair} (test.py --model " \
               f"test translates a folder of inputs)"
    return plain
