"""Builds the small real demo dataset from photographs that ship inside scikit-image (no download).

Domain B is the photo; domain A is the same photo after a fixed "bad exposure" degradation: a colour cast (channel
mixing), underexposure (gamma 1.6, gain 0.8) and sensor noise (Gaussian, sigma 0.03). Paired models learn to restore A to B, and their PSNR is compared with the
copy-the-input baseline. Layout (both the pix2pix and the CycleGAN conventions, so every dataset mode works):

    datasets/demo/train/  test/        A|B side by side (aligned)
    datasets/demo/trainA/ trainB/ testA/ testB/   the same images, unpaired layout

    python datasets/make_demo_dataset.py [--out datasets/demo] [--size 64]
"""
import argparse
import os

import numpy as np
from PIL import Image

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
          "colorwheel"]
TEST_PHOTOS = ["cat"]
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo")


def degrade(rgb, rng):
    """The A-domain transform: a colour cast, underexposure and sensor noise."""
    x = rgb.astype(np.float64) / 255.0
    mix = np.array([[0.80, 0.25, 0.05], [0.10, 0.75, 0.15], [0.05, 0.20, 0.60]])
    x = 0.8 * np.clip(x @ mix.T, 0, 1) ** 1.6
    x = x + rng.normal(0, 0.03, x.shape)
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def crops(image, size, count, rng):
    h, w = image.shape[:2]
    scale = max(size * 3 / min(h, w), 1.0) if min(h, w) < size * 3 else size * 4 / min(h, w)
    img = Image.fromarray(image).resize((max(size, int(w * scale)), max(size, int(h * scale))), Image.BICUBIC)
    arr = np.asarray(img)
    out = []
    for _ in range(count):
        y = int(rng.integers(0, arr.shape[0] - size + 1))
        x = int(rng.integers(0, arr.shape[1] - size + 1))
        out.append(arr[y:y + size, x:x + size])
    return out


def build(out=DEFAULT_OUT, size=64, per_photo=6, seed=0):
    import skimage.data
    rng = np.random.default_rng(seed)
    for phase, names, count in (("train", PHOTOS, per_photo), ("test", TEST_PHOTOS + PHOTOS[:2], 2)):
        for sub in (phase, phase + "A", phase + "B"):
            os.makedirs(os.path.join(out, sub), exist_ok=True)
        for name in names:
            photo = getattr(skimage.data, name)()[..., :3]
            for k, b in enumerate(crops(photo, size, count if phase == "train" or name in TEST_PHOTOS else 1, rng)):
                a = degrade(b, rng)
                stem = f"{name}_{k}.png"
                Image.fromarray(np.concatenate([a, b], axis=1)).save(os.path.join(out, phase, stem))
                Image.fromarray(a).save(os.path.join(out, phase + "A", stem))
                Image.fromarray(b).save(os.path.join(out, phase + "B", stem))
    with open(os.path.join(out, "README.txt"), "w") as f:
        f.write("Demo dataset built by datasets/make_demo_dataset.py from scikit-image's bundled photos.\n"
                "A: degraded photo, B: original. Layouts: train/ test/ (A|B), trainA/ trainB/ testA/ testB/.\n")
    return out


def ensure_demo_dataset(out=DEFAULT_OUT):
    """Builds the demo dataset on first use; returns its folder."""
    if not os.path.isfile(os.path.join(out, "README.txt")):
        print(f"building the demo dataset in {out} (from scikit-image's bundled photos)")
        build(out)
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="Build the demo dataset from scikit-image's bundled photos.")
    p.add_argument("--out", default=DEFAULT_OUT)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--per_photo", type=int, default=6)
    args = p.parse_args()
    print(build(args.out, args.size, args.per_photo))
