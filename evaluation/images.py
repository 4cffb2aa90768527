"""test.py for 2D models (and validation while training): every test item's visuals saved as images (one folder per
label, so FID tools can read them), and MAE, PSNR and SSIM of each translation against its target where the dataset
holds real pairs, beside a baseline (the copy of the input unless test.py's --baseline says otherwise;
evaluation.baselines). Without real pairs, models that translate both ways report their cycle error (MAE of
A -> B -> A against A, and B -> A -> B against B): the only honest reference there.

Every translation runs through evaluation.translator.Translator, the path the translate API takes too."""
import os
from collections import OrderedDict

from evaluation import metrics
from evaluation.translator import Translator
from util.progress import progress, write as progress_write
from util.results import Results
from util.util import save_image, tensor2im, to01


def run(opt, model, dataset, out_dir=None, limit=None, say=print, desc="test", sets=None, baselines=None):
    """Returns (items, rows): per item its name and saved images (``out_dir``; None saves nothing), and its results
    ({item name: util.results.Results}). At most ``limit`` items (default --num_test). ``sets``: a collector of
    set-level metrics (evaluation.fid.SetMetrics) that sees every item's visuals. ``baselines``: {output label:
    evaluation.baselines.Baseline} (default: the copy of the input)."""
    rows, items = {}, []
    limit = limit or opt.num_test
    pairing = dataset.dataset.pairing
    runners = translators(model)
    translators_ = model.translators() if pairing else {}
    if pairing == "by name":
        say(f"metrics: {desc} A and B images are paired by file name")
    elif not pairing and dataset.dataset.two_domains:
        say(f"no reference metrics: the {desc} A and B images are not paired by file name (unpaired data), so no "
            f"output has a true target" + ("; the cycle error is reported instead" if model.has_cycle_error else ""))
    total, tell = min(len(dataset), limit), progress_write if say is print else say
    output_name = OutputNames(tell)
    unpaired = not pairing and dataset.dataset.two_domains
    seen = {"A": set(), "B": set()}  # unpaired: each file's outputs once, named by it (B's by B's files)
    for i, data in enumerate(progress(dataset, desc, total=total)):
        if i >= limit:
            break
        sides = ("A", "B")
        if unpaired:  # the shorter folder repeats its files (the dataset is as long as the longer one): each once
            paths = {side: data[f"{side}_paths"][0] for side in sides}
            sides = tuple(side for side in sides if paths[side] not in seen[side])
        visuals = item_visuals(model, data, dataset.dataset.domains, runners, sides)
        if unpaired:  # each side's outputs named after its own file
            names = {}
            for side in sides:
                seen[side].add(paths[side])
                domain = dataset.dataset.domains.side[side]
                own = ("real_" + domain, "fake_" + {"A": "B", "B": "A"}[domain], "rec_" + domain)
                names.update(dict.fromkeys(own, output_name(paths[side])))
            name = names.get("real_" + dataset.dataset.domains.side["A"]) or next(iter(names.values()))
        else:
            name = output_name(data["A_paths"][0])
            names = dict.fromkeys(visuals, name)
        if sets is not None:
            sets.add(visuals, data, dataset.dataset.domains)
        if out_dir is not None:
            items.append({"name": name, "images": save_visuals(opt, visuals, data, names, out_dir)})
        row = []
        for label, translation in translators_.items():
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


class OutputNames:
    """The name of each item's outputs: its file's name without the extension (``stem``: how it is found; a volume's
    is its name without .nii.gz, .nii or .npy), unless an earlier item of the run has that name: then, for another
    file of that name (another extension, another subfolder: the folders are read recursively; testA/x.png and
    testB/x.png of unpaired data), its extension or its folder's name is added, and for the same file again a number,
    so that no output overwrites another's; each file renamed is said once (``say``)."""

    def __init__(self, say=print, stem=None):
        self.say, self.names, self.files, self.told = say, set(), set(), set()  # names given, files named, said
        self.stem = stem or (lambda path: os.path.splitext(os.path.basename(path))[0])  # volumes: util.volume's

    def __call__(self, path):
        stem = self.stem(path)
        ext = os.path.basename(path)[len(stem):].lstrip(".").replace(".", "_")  # "nii.gz" -> "nii_gz"
        folder = os.path.basename(os.path.dirname(path))
        again = path in self.files
        tries = [stem] + ([] if again else [f"{stem}_{ext}" if ext else None,
                                            f"{folder}_{stem}" + (f"_{ext}" if ext else "") if folder else None])
        name = next((t for t in tries if t and t not in self.names), None)
        n = 2
        while name is None:
            name = f"{stem}_{n}" if f"{stem}_{n}" not in self.names else None
            n += 1
        if name != stem and path not in self.told:
            self.told.add(path)
            self.say(f"note: {path}: " + ("it comes again (more items than its folder has files); its outputs are "
                                          "numbered" if again else f"an earlier test input is named {stem} too; its "
                                          f"outputs are named {name}"))
        self.names.add(name)
        self.files.add(path)
        return name


def translators(model):
    """{output label: Translator} of each direction ``model`` translates."""
    return {label: Translator(model, t.source + "to" + t.target) for label, t in model.translators().items()}


def item_visuals(model, data, domains, runners, sides=("A", "B")):
    """The images of one dataset item as the model names them (its ``visual_names``): ``real_X`` the item's image of
    domain X (``domains``: the data.base_dataset.DomainMap of the dataset), ``fake_Y`` the translation of the real
    image of the other domain, ``rec_X`` the translation of that fake back into X (models with a cycle error); a
    one-direction model (--model test) names its input ``real`` and its output ``fake``. Computed in that order, as
    the models' forward() computes them; visuals only training computes (idt_X) are left out. ``runners``:
    ``translators(model)``; ``sides``: the item's sides to translate (the others' visuals are None)."""
    reals = {domains.side[side]: data[side] for side in sides if side in data}
    into = {r.target: r for r in runners.values()}  # the translation into each domain
    visuals = OrderedDict()
    for name in model.visual_names:
        kind, _, domain = name.partition("_")
        if not domain:  # "real" and "fake" of the one translation of --model test
            (one,) = runners.values()
            domain = one.source if kind == "real" else one.target
        if kind == "real":
            value = reals.get(domain)
        elif kind == "fake":
            source = reals.get(into[domain].source) if domain in into else None
            value = None if source is None else into[domain].run(source)
        elif kind == "rec":
            other = {"A": "B", "B": "A"}[domain]
            fake = visuals.get("fake_" + other)
            value = None if fake is None or domain not in into else into[domain].run(fake)
        else:  # what only training computes (the identity images idt_X of a cycle model)
            continue
        visuals[name] = value
    return visuals


def save_visuals(opt, visuals, data, names, out_dir):
    """Writes every visual as images/LABEL/NAME.png (16-bit where its domain's images are 16-bit grayscale);
    ``names``: {label: NAME}. Returns {label: path relative to out_dir}."""
    saved = {}
    for label, image in visuals.items():
        if image is None:
            continue
        side = "B" if label.endswith("B") else "A"
        bits = int(data.get(f"{side}_bits", data.get("A_bits"))[0])
        path = os.path.join(out_dir, "images", label, names[label] + ".png")
        save_image(tensor2im(image, bits=16 if bits == 16 and image.shape[1] == 1 else 8), path, opt.aspect_ratio)
        saved[label] = os.path.relpath(path, out_dir)
    return saved
