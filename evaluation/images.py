"""test.py for 2D models (and validation while training): every test item's visuals saved as images (one folder per
label, so FID tools can read them), and MAE, PSNR and SSIM of each translation against its target where the dataset
holds real pairs, beside the copy-the-input baseline. Without real pairs, models that translate both ways report
their cycle error (MAE of A -> B -> A against A, and B -> A -> B against B): the only honest reference there."""
import os

from evaluation import metrics
from util.progress import progress
from util.results import Results
from util.util import save_image, tensor2im, to01


def run(opt, model, dataset, out_dir=None, limit=None, say=print, desc="test", baselines=None):
    """Returns (items, rows): per item its name and saved images (``out_dir``; None saves nothing), and its results
    ({item name: util.results.Results}). At most ``limit`` items (default --num_test). ``baselines``: {output
    label: evaluation.baselines.Baseline} (default: the copy of the input)."""
    rows, items = {}, []
    limit = limit or opt.num_test
    pairing = dataset.dataset.pairing
    translators = model.translators() if pairing else {}
    if pairing == "by name":
        say(f"metrics: {desc} A and B images are paired by file name")
    elif not pairing and dataset.dataset.two_domains:
        say(f"no reference metrics: the {desc} A and B images are not paired by file name (unpaired data), so no "
            f"output has a true target" + ("; the cycle error is reported instead" if model.has_cycle_error else ""))
    total = min(len(dataset), limit)
    for i, data in enumerate(progress(dataset, desc, total=total)):
        if i >= limit:
            break
        model.set_input(data)
        model.test()
        visuals = model.get_current_visuals()
        name = os.path.splitext(os.path.basename(model.get_image_paths()[0]))[0]
        if out_dir is not None:
            items.append({"name": name, "images": save_visuals(opt, visuals, data, name, out_dir)})
        row = []
        for label, translation in translators.items():
            out, target = visuals.get(label), visuals.get("real_" + translation.target)
            if out is None or target is None:
                continue
            source = visuals.get("real_" + translation.source)
            row += metrics.translation(label, to01(out[0]), to01(target[0]),
                                       None if source is None else to01(source[0]),
                                       baseline=(baselines or {}).get(label))
        if not pairing and model.has_cycle_error:
            for domain in ("A", "B"):
                rec, real = visuals.get("rec_" + domain), visuals.get("real_" + domain)
                if rec is not None and real is not None:
                    row.append(metrics.cycle_error(domain, to01(rec[0]), to01(real[0])))
        if row:
            rows[name] = Results(row)
    return items, rows


def save_visuals(opt, visuals, data, name, out_dir):
    """Writes every visual as images/LABEL/NAME.png (16-bit where its domain's images are 16-bit grayscale);
    returns {label: path relative to out_dir}."""
    saved = {}
    for label, image in visuals.items():
        if image is None:
            continue
        side = "B" if label.endswith("B") else "A"
        bits = int(data.get(f"{side}_bits", data.get("A_bits"))[0])
        path = os.path.join(out_dir, "images", label, name + ".png")
        save_image(tensor2im(image, bits=16 if bits == 16 and image.shape[1] == 1 else 8), path, opt.aspect_ratio)
        saved[label] = os.path.relpath(path, out_dir)
    return saved
