"""test.py for 2D models: every test item's visuals saved as images (one folder per label, so FID tools can read
them), and MAE, PSNR and SSIM of each translation against its target where the dataset has one, beside the
copy-the-input baseline."""
import os


from evaluation import metrics
from util.progress import progress
from util.util import save_image, tensor2im, to01


def run(opt, model, dataset, out_dir):
    """Returns (items, rows): per item its name and saved images, and its metrics where the dataset holds real pairs
    (aligned data, or testA/testB files of the same names)."""
    rows, items = [], []
    pairing = dataset.dataset.pairing
    translators = model.translators() if pairing else {}
    if pairing == "by name":
        print("metrics: testA and testB images are paired by file name")
    elif dataset.dataset.two_domains:
        print("no reference metrics: testA and testB are not paired by file name (unpaired test data), so no output "
              "has a true target; the images are saved")
    total = min(len(dataset), opt.num_test)
    for i, data in enumerate(progress(dataset, "test", total=total)):
        if i >= opt.num_test:
            break
        model.set_input(data)
        model.test()
        visuals = model.get_current_visuals()
        name = os.path.splitext(os.path.basename(model.get_image_paths()[0]))[0]
        saved = {}
        for label, image in visuals.items():
            if image is None:
                continue
            side = "B" if label.endswith("B") else "A"
            bits = int(data.get(f"{side}_bits", data.get("A_bits"))[0])
            path = os.path.join(out_dir, "images", label, name + ".png")
            save_image(tensor2im(image, bits=16 if bits == 16 and image.shape[1] == 1 else 8), path, opt.aspect_ratio)
            saved[label] = os.path.relpath(path, out_dir)
        items.append({"name": name, "images": saved})
        row = {"name": name}
        for label, translation in translators.items():
            out, target = visuals.get(label), visuals.get("real_" + translation.target)
            if out is None or target is None:
                continue
            for k, v in metrics.compare(to01(out[0]), to01(target[0])).items():
                row[f"{k}_{label}"] = v
            source = visuals.get("real_" + translation.source)
            if source is not None and source.shape == target.shape:
                for k, v in metrics.compare(to01(source[0]), to01(target[0])).items():
                    row[f"baseline_{k}_{label}"] = v
        if len(row) > 1:
            rows.append(row)
    return items, rows
