"""Builds the data of the translation-quality benchmark (scripts/benchmark_quality.py) from real images that ship
inside installed packages: photographs of scikit-image, scikit-learn and matplotlib, and nilearn's MNI152 T1
template. Nothing is downloaded.

Three tasks, each a folder with ``trainA/ trainB/ testA/ testB/`` (test pairs share names) and ``task.json``
(what was built, the sizes and the split):

``paired2d``: camera restoration (2D, paired). B: a photo; A: the same photo through a low-light camera: optical
    blur (Gaussian, sigma 0.8 px), a white-balance error (channel mixing), underexposure (gain 0.8, gamma 1.5),
    signal-dependent sensor noise (variance 0.002 x + 0.0002, x in [0, 1]) and JPEG compression (quality 40), applied
    to the whole (resized) photo before tiles are cut. Training tiles are random crops of the training photos,
    test tiles a grid of non-overlapping tiles of the test photos: no test photo is seen in training.
``unpaired2d``: faded-photo restoration (2D, unpaired training, paired evaluation). A: the photo faded like an old
    print (30% desaturation, a warm cast, contrast compressed to [0.12, 0.88], gamma 0.9, film grain sigma 0.015);
    B: the photo. Each training photo is cut into a checkerboard of cells of twice the tile size; domain A's tiles
    are crops inside the "black" cells of the faded photo, domain B's inside the "white" cells of the clean photo,
    so no pixel of a B tile has its degraded version among the A tiles. Tested on real (A, B) pairs of held-out
    photos, as for paired2d.
``thick3d``: thick-slice to thin-slice brain MRI (3D, paired, near-identity super-resolution along z). B: nilearn's
    MNI152 T1 (ICBM 2009a, 1 mm; 2 mm in the quick sizes) cropped to the head; A: the same volume acquired with
    slices ``factor`` times thicker (the mean of ``factor`` consecutive axial slices, sampled every ``factor``
    slices) and linearly interpolated back to the thin grid, as a scanner console or a resampling tool does.
    The template is exactly left/right symmetric (a[::-1] == a along x), so the split is along y: the training
    volume is the posterior part (y below the middle minus ``gap``/2 voxels), the test volume the anterior part (y
    above the middle plus ``gap``/2), with ``gap`` voxels between them never used. Intensities are the template's
    units (0-255); the benchmark trains with ``--intensity_A/B window:0,255`` (data range 255). ``acquired/`` holds
    the thick slices themselves (for interpolation baselines; the models never see them).

    python datasets/make_quality_benchmark.py --out .bench/quality/data [--quick]
"""
import argparse
import importlib.util
import io
import json
import os

import numpy as np
from PIL import Image

# Real photographs shipped by installed packages: (package, name). motorcycle_left is one view of a stereo pair;
# its other view is not used anywhere (it would be a near-duplicate).
TRAIN_PHOTOS = [("skimage", "astronaut"), ("skimage", "coffee"), ("skimage", "rocket"),
                ("skimage", "motorcycle_left"), ("skimage", "immunohistochemistry"), ("sklearn", "china.jpg")]
TEST_PHOTOS = [("skimage", "chelsea"), ("sklearn", "flower.jpg"), ("matplotlib", "grace_hopper.jpg")]


# -- photos ------------------------------------------------------------------------------------------------------------
def load_photo(package, name):
    """An RGB uint8 photo (H, W, 3) from a package's bundled data."""
    if package == "skimage":
        import skimage.data
        if name == "motorcycle_left":
            return np.ascontiguousarray(skimage.data.stereo_motorcycle()[0][..., :3])
        return np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])
    if package == "sklearn":
        from sklearn.datasets import load_sample_image
        return np.ascontiguousarray(load_sample_image(name)[..., :3])
    if package == "matplotlib":
        import matplotlib.cbook
        with Image.open(matplotlib.cbook.get_sample_data(name, asfileobj=False)) as img:
            return np.asarray(img.convert("RGB"))
    raise ValueError(f"unknown package {package}")


def resize_short_side(rgb, side):
    """The photo resized (antialiased) so that its shorter side is ``side`` pixels, or as it is where it is smaller
    (never enlarged: an interpolated target would be unrealistically smooth)."""
    h, w = rgb.shape[:2]
    s = side / min(h, w)
    if s >= 1:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((max(side, round(w * s)), max(side, round(h * s))),
                                                  Image.LANCZOS))


def _to_uint8(x):
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def _jpeg(rgb, quality):
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as img:
        return np.asarray(img.convert("RGB"))


def camera_degrade(rgb, rng):
    """paired2d's A: blur, white-balance error, underexposure, sensor noise, JPEG (see the module docstring)."""
    from scipy.ndimage import gaussian_filter
    x = rgb.astype(np.float64) / 255.0
    x = gaussian_filter(x, sigma=(0.8, 0.8, 0), mode="reflect")
    mix = np.array([[0.85, 0.20, 0.00], [0.08, 0.80, 0.12], [0.00, 0.22, 0.70]])
    x = 0.8 * np.clip(x @ mix.T, 0, 1) ** 1.5
    x = x + rng.normal(size=x.shape) * np.sqrt(0.002 * x + 0.0002)
    return _jpeg(_to_uint8(x), 40)


def fade(rgb, rng):
    """unpaired2d's A: an old, faded print (see the module docstring)."""
    x = rgb.astype(np.float64) / 255.0
    lum = x @ np.array([0.299, 0.587, 0.114])
    x = 0.7 * x + 0.3 * lum[..., None]
    x = np.clip(x * np.array([1.08, 1.0, 0.82]), 0, 1)
    x = (0.12 + 0.76 * x) ** 0.9
    x = x + rng.normal(0, 0.015, x.shape)
    return _to_uint8(x)


# Map colours (OpenStreetMap-like pastels) of the map tasks' regions, and the rules that pick one per region.
MAP_PALETTE = np.array([
    [170, 211, 223],  # water: smooth, mid-dark regions
    [200, 230, 180],  # park: textured regions
    [242, 239, 233],  # land: the rest
    [255, 255, 255],  # road: smooth, bright regions
    [217, 208, 201],  # building: dark regions
    [246, 220, 160],  # sand: saturated red-orange regions
], np.float64)


def render_map(rgb, region_px=120):
    """The map tasks' B: a photo drawn as a map, so that A and B look nothing alike. The photo is cut into SLIC
    superpixels (about one per ``region_px`` pixels); each region gets one flat colour of MAP_PALETTE by its mean
    colour (HSV value, saturation, hue) and its texture (the mean local standard deviation of luminance in 5x5
    windows), in this order of precedence: dark (value < 0.3) building; smooth (texture <= 0.03) and mid-dark
    (value < 0.45) water; textured (> 0.045) park; smooth and bright (value > 0.75) road; saturated (> 0.3) red-orange
    sand; otherwise land. Region borders between different classes are drawn darker (x 0.55), one pixel wide. The
    class of a pixel depends on its region and its texture, not on its colour alone, so a per-colour look-up table
    cannot reproduce it; as with satellite images and maps, context decides."""
    from scipy.ndimage import uniform_filter
    from skimage.color import rgb2hsv
    from skimage.segmentation import find_boundaries, slic
    h, w = rgb.shape[:2]
    x = rgb.astype(np.float64) / 255.0
    seg = slic(rgb, n_segments=max(4, h * w // region_px), compactness=12, start_label=0).ravel()
    n = int(seg.max()) + 1
    count = np.maximum(np.bincount(seg, minlength=n), 1)

    def region_mean(values):
        return np.bincount(seg, weights=values.ravel(), minlength=n) / count
    mean = np.stack([region_mean(x[..., c]) for c in range(3)], axis=1)
    lum = x @ np.array([0.299, 0.587, 0.114])
    texture = np.sqrt(np.maximum(region_mean(uniform_filter(lum ** 2, 5) - uniform_filter(lum, 5) ** 2), 0))
    hue, sat, value = rgb2hsv(mean[None])[0].T
    cls = np.full(n, 2)
    cls[(sat > 0.3) & ((hue < 0.15) | (hue > 0.92))] = 5
    cls[texture > 0.045] = 1
    cls[(texture <= 0.045) & (value > 0.75)] = 3
    cls[value < 0.3] = 4
    cls[(texture <= 0.03) & (value < 0.45) & (value >= 0.3)] = 0
    classes = cls[seg].reshape(h, w)
    out = MAP_PALETTE[classes]
    out[find_boundaries(classes, mode="inner")] *= 0.55
    return out.astype(np.uint8)


def random_crops(h, w, size, count, rng, box=None):
    """``count`` top-left corners of ``size`` crops inside ``box`` (y0, x0, y1, x1; default the whole image)."""
    y0, x0, y1, x1 = box or (0, 0, h, w)
    return [(int(rng.integers(y0, y1 - size + 1)), int(rng.integers(x0, x1 - size + 1))) for _ in range(count)]


def grid_tiles(h, w, size):
    """Corners of the non-overlapping ``size`` tiles of an image, centred (the remainder split at both sides)."""
    oy, ox = (h % size) // 2, (w % size) // 2
    return [(oy + i * size, ox + j * size) for i in range(h // size) for j in range(w // size)]


def _save_png(arr, folder, name):
    os.makedirs(folder, exist_ok=True)
    Image.fromarray(arr).save(os.path.join(folder, name))


def _stem(package, name):
    return os.path.splitext(name)[0]


def _test_tiles(out, make_pair, size, photo_side, max_test, rng):
    """Writes testA/testB: grid tiles of the held-out photos (at most ``max_test`` per photo); returns the count."""
    n = 0
    for package, name in TEST_PHOTOS:
        a, b = make_pair(resize_short_side(load_photo(package, name), photo_side), rng)
        corners = grid_tiles(*b.shape[:2], size)
        if len(corners) > max_test:  # evenly spread over the photo
            corners = [corners[i] for i in np.linspace(0, len(corners) - 1, max_test).round().astype(int)]
        for k, (y, x) in enumerate(corners):
            stem = f"{_stem(package, name)}_{k:03d}.png"
            _save_png(a[y:y + size, x:x + size], os.path.join(out, "testA"), stem)
            _save_png(b[y:y + size, x:x + size], os.path.join(out, "testB"), stem)
            n += 1
    return n


def degraded(degrade):
    """A pair maker for a restoration task: (degrade(photo), photo)."""
    return lambda photo, rng: (degrade(photo, rng), photo)


def mapped(photo, rng):
    """The pair maker of the map tasks: (photo, render_map(photo)); ``rng`` unused (the rendering is deterministic)."""
    return photo, render_map(photo)


def photo_pairs(make_pair, photo_side, seed=0):
    """(A, B) of each whole training photo (for reference baselines that need pairs on the unpaired tasks)."""
    rng = np.random.default_rng(seed)
    return [make_pair(resize_short_side(load_photo(package, name), photo_side), rng) for package, name in TRAIN_PHOTOS]


def build_paired(out, make_pair, size=64, photo_side=256, per_photo=40, max_test=16, seed=0):
    """Training pairs: random crops of the training photos; test pairs: grid tiles of the held-out photos."""
    rng = np.random.default_rng(seed)
    n_train = 0
    for package, name in TRAIN_PHOTOS:
        a, b = make_pair(resize_short_side(load_photo(package, name), photo_side), rng)
        for k, (y, x) in enumerate(random_crops(*b.shape[:2], size, per_photo, rng)):
            stem = f"{_stem(package, name)}_{k:03d}.png"
            _save_png(a[y:y + size, x:x + size], os.path.join(out, "trainA"), stem)
            _save_png(b[y:y + size, x:x + size], os.path.join(out, "trainB"), stem)
            n_train += 1
    n_test = _test_tiles(out, make_pair, size, photo_side, max_test, rng)
    return {"tile": size, "photo_side": photo_side, "train_pairs": n_train, "test_pairs": n_test,
            "train_photos": [n for _, n in TRAIN_PHOTOS], "test_photos": [n for _, n in TEST_PHOTOS],
            "data_range": "1 (8-bit RGB / 255)"}


def build_unpaired(out, make_pair, size=64, photo_side=256, per_photo=40, max_test=16, seed=1):
    """Training tiles of A and B from disjoint checkerboard cells of each training photo (no A tile has its B
    counterpart in trainB); test pairs: grid tiles of the held-out photos."""
    rng = np.random.default_rng(seed)
    counts = {"A": 0, "B": 0}
    cell = 2 * size
    for package, name in TRAIN_PHOTOS:
        a, b = make_pair(resize_short_side(load_photo(package, name), photo_side), rng)
        h, w = b.shape[:2]
        cells = {"A": [], "B": []}
        for i in range(h // cell):
            for j in range(w // cell):
                cells["A" if (i + j) % 2 == 0 else "B"].append((i * cell, j * cell, (i + 1) * cell, (j + 1) * cell))
        for side, img in (("A", a), ("B", b)):
            boxes = cells[side]
            if not boxes:
                continue
            for k in range(per_photo // 2):  # each domain gets half the photo's tiles
                box = boxes[int(rng.integers(len(boxes)))]
                (y, x), = random_crops(h, w, size, 1, rng, box)
                # the domain in the name: A and B tiles are not pairs, and files of the same names would be taken
                # for pairs (test.py's --baseline auto fits its look-up table on them)
                _save_png(img[y:y + size, x:x + size], os.path.join(out, "train" + side),
                          f"{_stem(package, name)}_{side.lower()}{k:03d}.png")
                counts[side] += 1
    n_test = _test_tiles(out, make_pair, size, photo_side, max_test, rng)
    return {"tile": size, "photo_side": photo_side, "train_A": counts["A"], "train_B": counts["B"],
            "test_pairs": n_test, "train_photos": [n for _, n in TRAIN_PHOTOS],
            "test_photos": [n for _, n in TEST_PHOTOS], "data_range": "1 (8-bit RGB / 255)"}


# -- 3D ----------------------------------------------------------------------------------------------------------------
TEMPLATE = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
GREY_MATTER = "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz"  # its grey-matter probability map (0-255)
WHITE_MATTER = "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz"  # its white-matter probability map (0-255)
# The T2-weighted rendering's intensity of each tissue (fraction of 255): CSF brightest, grey above white matter, the
# order of a T2-weighted MRI (the T1's is the reverse: white matter brightest, CSF dark).
T2_CONTRAST = {"csf": 1.0, "grey": 0.55, "white": 0.3}


def template_path(name=TEMPLATE):
    spec = importlib.util.find_spec("nilearn")
    if spec is None:
        raise SystemExit("the 3D tasks need nilearn's bundled MNI152 template: pip install nilearn")
    return os.path.join(spec.submodule_search_locations[0], "datasets", "data", name)


def acquire_thick(vol, factor):
    """The axial slices a scanner with ``factor`` times thicker slices records: the mean of each run of ``factor``
    consecutive z slices (the remainder at the top is dropped)."""
    nz = vol.shape[2] - vol.shape[2] % factor
    return vol[:, :, :nz].reshape(vol.shape[0], vol.shape[1], nz // factor, factor).mean(axis=3)


def interpolate_thick(thick, nz, factor, order=1):
    """Thick slices back on the thin grid of ``nz`` slices with a spline of ``order`` (1: linear, 3: cubic); the
    thick slice j is centred on thin slice j * factor + (factor - 1) / 2; beyond the outer centres values are held."""
    from scipy.ndimage import map_coordinates
    z = (np.arange(nz) - (factor - 1) / 2) / factor
    grid = np.meshgrid(np.arange(thick.shape[0]), np.arange(thick.shape[1]), z, indexing="ij")
    return map_coordinates(np.asarray(thick, np.float64), grid, order=order, mode="nearest").astype(np.float32)


def load_template(voxel_mm=2, names=(TEMPLATE,)):
    """nilearn's MNI152 volumes ``names`` (the T1 template first) at ``voxel_mm`` (1 or 2 mm), all cropped to the
    bounding box of the T1's head (+2 voxels), and their affine: ([volumes], affine)."""
    import nibabel as nib
    vols = []
    for name in names:
        img = nib.load(template_path(name))
        vol = img.get_fdata(dtype=np.float32)
        affine = img.affine.copy()
        if voxel_mm != 1:
            from scipy.ndimage import zoom
            vol = zoom(vol, 1.0 / voxel_mm, order=1)
            affine[:3, :3] *= voxel_mm
        vols.append(vol)
    nz = np.argwhere(vols[0] > 0)
    lo = np.maximum(nz.min(0) - 2, 0)
    hi = np.minimum(nz.max(0) + 3, vols[0].shape)
    affine[:3, 3] = affine[:3, :3] @ lo + affine[:3, 3]
    return [np.ascontiguousarray(v[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]) for v in vols], affine


def _save_nifti(vol, affine, path):
    import nibabel as nib
    os.makedirs(os.path.dirname(path), exist_ok=True)
    nii = nib.Nifti1Image(np.ascontiguousarray(vol, dtype=np.float32), affine)
    nii.header.set_xyzt_units("mm")
    nib.save(nii, path)


def _split_y(ny, gap):
    """The training (posterior) and test (anterior) ranges of y, ``gap`` voxels apart (the template is exactly
    left/right symmetric, so a split along x would test on mirror images)."""
    return {"train": (0, ny // 2 - gap // 2), "test": (ny // 2 + gap - gap // 2, ny)}


def _shifted(affine, y0):
    aff = affine.copy()
    aff[:3, 3] = affine[:3, :3] @ np.array([0, y0, 0]) + affine[:3, 3]
    return aff


def build_thick3d(out, voxel_mm=2, factor=3, gap=6):
    """Writes trainA/B, testA/B (one volume each) and acquired/mni_PHASE.nii.gz (the thick slices themselves, for
    interpolation baselines)."""
    (b,), affine = load_template(voxel_mm)
    thick = acquire_thick(b, factor)
    a = interpolate_thick(thick, b.shape[2], factor, order=1)
    shapes = {}
    for phase, (y0, y1) in _split_y(b.shape[1], gap).items():
        aff = _shifted(affine, y0)
        for side, vol in (("A", a), ("B", b)):
            _save_nifti(vol[:, y0:y1], aff, os.path.join(out, phase + side, f"mni_{phase}.nii.gz"))
        thick_aff = aff.copy()
        thick_aff[:3, 2] *= factor
        thick_aff[:3, 3] = aff[:3, :3] @ np.array([0, 0, (factor - 1) / 2]) + aff[:3, 3]
        _save_nifti(thick[:, y0:y1], thick_aff, os.path.join(out, "acquired", f"mni_{phase}.nii.gz"))
        shapes[phase] = list(b[:, y0:y1].shape)
    return {"voxel_mm": voxel_mm, "factor": factor, "slice_mm": voxel_mm * factor, "gap": gap,
            "train_shape": shapes["train"], "test_shape": shapes["test"], "window": [0.0, 255.0],
            "data_range": "255 (template units, window 0-255)"}


def _build_cross3d(out, a, b, affine, gap):
    """Writes the unpaired cross-domain 3D task A -> B (the T1 and a volume on its grid), split along y as thick3d;
    trained unpaired (random patches of A and of B, drawn independently), tested on the held-out pair."""
    shapes = {}
    for phase, (y0, y1) in _split_y(b.shape[1], gap).items():
        for side, vol in (("A", a), ("B", b)):
            _save_nifti(vol[:, y0:y1], _shifted(affine, y0), os.path.join(out, phase + side, f"mni_{phase}.nii.gz"))
        shapes[phase] = list(b[:, y0:y1].shape)
    return {"gap": gap, "train_shape": shapes["train"], "test_shape": shapes["test"],
            "window": [0.0, 255.0], "data_range": "255 (template units, window 0-255); also in the brain (T1 > 0)"}


def build_tissue3d(out, voxel_mm=2, gap=6):
    """T1 -> grey-matter map (3D, cross-domain): A the MNI152 T1 template, B its grey-matter probability map (0-255:
    bright in the cortex and deep grey matter, dark in white matter, where the T1 is brightest)."""
    (a, b), affine = load_template(voxel_mm, (TEMPLATE, GREY_MATTER))
    return {"voxel_mm": voxel_mm, **_build_cross3d(out, a, b, affine, gap)}


def render_t2(t1, grey, white):
    """A T2-weighted rendering of the template from its tissue probability maps (0-255): each voxel the mix of
    T2_CONTRAST's tissue intensities by its probabilities, CSF taking what grey and white matter leave of the brain
    (T1 > 0: the template is brain-extracted; outside it dark, as in the T1)."""
    brain = np.asarray(t1) > 0
    g, w = brain * grey / 255.0, brain * white / 255.0
    csf = np.clip(brain - g - w, 0, 1)
    c = T2_CONTRAST
    return np.clip(255.0 * (c["csf"] * csf + c["grey"] * g + c["white"] * w), 0, 255).astype(np.float32)


def build_t2w3d(out, voxel_mm=2, gap=6):
    """T1 -> T2-weighted (3D, cross-domain): A the MNI152 T1 template, B its T2-weighted rendering (render_t2: CSF
    bright, white matter dark, the contrast of the T1 reversed inside the brain, the background dark in both)."""
    (a, g, w), affine = load_template(voxel_mm, (TEMPLATE, GREY_MATTER, WHITE_MATTER))
    return {"voxel_mm": voxel_mm, "contrast": T2_CONTRAST, **_build_cross3d(out, a, render_t2(a, g, w), affine, gap)}


# -- all ---------------------------------------------------------------------------------------------------------------
DATA_VERSION = 4  # raise when the data a setting builds changes: cached tasks are rebuilt
SIZES = {  # tile, photo_side, per_photo, max_test (2D); voxel_mm, factor (3D): the benchmark's modes
    "quick": {"tile": 64, "photo_side": 256, "per_photo": 32, "max_test": 16, "voxel_mm": 2, "factor": 3},
    "full": {"tile": 128, "photo_side": 512, "per_photo": 100, "max_test": 24, "voxel_mm": 1, "factor": 5},
    "tiny": {"tile": 32, "photo_side": 128, "per_photo": 4, "max_test": 1, "voxel_mm": 4, "factor": 2},  # tests
}


# The tasks: task -> (title, builder(folder, sizes)).
TASKS = {
    "paired2d": ("camera restoration (2D, paired)",
                 lambda d, z: build_paired(d, degraded(camera_degrade), z["tile"], z["photo_side"], z["per_photo"],
                                           z["max_test"], seed=0)),
    "unpaired2d": ("faded-photo restoration (2D, unpaired)",
                   lambda d, z: build_unpaired(d, degraded(fade), z["tile"], z["photo_side"], z["per_photo"],
                                               z["max_test"], seed=1)),
    "thick3d": ("thick-slice to thin-slice brain MRI (3D, paired)",
                lambda d, z: build_thick3d(d, z["voxel_mm"], z["factor"], gap=max(2, 12 // z["voxel_mm"]))),
    "map2d": ("photo to map (2D, paired, cross-domain)",
              lambda d, z: build_paired(d, mapped, z["tile"], z["photo_side"], z["per_photo"], z["max_test"],
                                        seed=2)),
    "map2d_unpaired": ("photo to map (2D, unpaired, cross-domain)",
                       lambda d, z: build_unpaired(d, mapped, z["tile"], z["photo_side"], z["per_photo"],
                                                   z["max_test"], seed=3)),
    "tissue3d": ("T1 to grey-matter map (3D, unpaired, cross-domain)",
                 lambda d, z: build_tissue3d(d, z["voxel_mm"], gap=max(2, 12 // z["voxel_mm"]))),
    "t2w3d": ("T1 to T2-weighted MRI (3D, unpaired, cross-domain)",
              lambda d, z: build_t2w3d(d, z["voxel_mm"], gap=max(2, 12 // z["voxel_mm"]))),
}


def build(out, tasks=tuple(TASKS), tile=64, photo_side=256, per_photo=40, max_test=16, voxel_mm=2, factor=3):
    """Builds the tasks under ``out/TASK/`` (skipping a task whose task.json holds the same settings); returns
    {task: its task.json contents}."""
    settings = {"version": DATA_VERSION, "tile": tile, "photo_side": photo_side, "per_photo": per_photo,
                "max_test": max_test, "voxel_mm": voxel_mm, "factor": factor}
    info = {}
    for task in tasks:
        folder = os.path.join(out, task)
        meta_path = os.path.join(folder, "task.json")
        if os.path.isfile(meta_path):
            with open(meta_path) as f:
                meta = json.load(f)
            if meta.get("settings") == settings:
                info[task] = meta
                continue
        if os.path.isdir(folder):
            import shutil
            shutil.rmtree(folder)
        title, builder = TASKS[task]
        meta = dict(task=task, title=title, **builder(folder, settings))
        meta["settings"] = settings
        with open(meta_path, "w") as f:
            json.dump(meta, f, indent=1)
        info[task] = meta
    return info


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="Build the quality benchmark's tasks from images bundled in packages.")
    p.add_argument("--out", default=os.path.join(".bench", "quality", "data"))
    p.add_argument("--quick", action="store_true", help="the quick (CPU) sizes; default: the full sizes")
    args = p.parse_args()
    sizes = SIZES["quick" if args.quick else "full"]
    print(json.dumps(build(args.out, **sizes), indent=1))
