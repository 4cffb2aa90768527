"""The training page, checkpoints/NAME/web/index.html (written by util.visualizer while training runs, and again by
test.py when it writes a results page of the run), and its curves (``loss_figure``: web/loss_curve.png).

The page is rebuilt from files alone (``rebuild``): web/page.json (what util.visualizer says about the run: name,
model, validation frequency, the fixed sample its pictures show, whether training finished), loss_history.jsonl
(the curves), web/images/epochNNN_LABEL.png (the pictures of each epoch) and web/results.json (test.py's results
pages of the run). The curves are drawn in the browser (static/curves.js): per loss the mean of each epoch and a
smoothed line of the logged values, values on hover; validation beside its baseline when it ran. While training
runs the page reloads itself every minute; it stops when training ended (or wrote nothing for a quarter of an
hour)."""
import json
import math
import os
import time

from dominate import tags

from util.pages.html import document, image_size, json_data, page_header, thumb_slider, url, viewer, write_page
from util.pages.table import Column, data_table, summary_table, thumb_td
from util.results import PSNR, Results

RECON_FLOOR = 1e-16  # an exact round trip (0) is drawn here on the log axes
RECON_TITLE = "core reconstruction error (relative; exact 0 drawn at 1e-16)"
INFO = "page.json"  # web/page.json: what the page says about the run (util.visualizer writes it)
RESULTS = "results.json"  # web/results.json: the results pages of the run (util.pages.results adds to it)
RELOAD = 60  # seconds between reloads while training runs
STALE = 15 * 60  # a page not rewritten for this long stops reloading (training stopped without ending)
MAX_POINTS = 20000  # points per curve on the page (more are thinned, evenly)


# -- the page's files --------------------------------------------------------------------------------------------------
# its pictures are web/images/epochNNN_LABEL.png; these two functions are the only ones that know the name
def image_name(epoch, label):
    return os.path.join("images", f"epoch{epoch:03d}_{label}.png")


def page_images(web_dir):
    """{epoch: {label: path relative to web/}} of the pictures on the training page."""
    epochs = {}
    folder = os.path.join(web_dir, "images")
    if not os.path.isdir(folder):
        return epochs
    for f in sorted(os.listdir(folder)):
        num, _, label = f[5:-4].partition("_")
        if f.startswith("epoch") and f.endswith(".png") and num.isdigit() and label:
            epochs.setdefault(int(num), {})[label] = os.path.join("images", f)
    return epochs


def _read_json(path, default):
    try:
        with open(path) as f:
            value = json.load(f)
    except (OSError, ValueError):
        return default
    return value if isinstance(value, type(default)) else default


def _write_json(path, value):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=1)
    os.replace(tmp, path)


def read_history(path):
    """The points of a loss_history.jsonl (damaged lines skipped)."""
    points = []
    if not os.path.exists(path):
        return points
    with open(path) as f:
        for line in f:
            try:
                point = json.loads(line)
            except ValueError:
                continue
            if isinstance(point, dict):
                points.append(point)
    return points


def read_info(web_dir):
    """web/page.json ({} where there is none)."""
    return _read_json(os.path.join(web_dir, INFO), {})


def write_info(web_dir, info):
    """web/page.json, then the page rebuilt from the files (see the module's text)."""
    os.makedirs(web_dir, exist_ok=True)
    _write_json(os.path.join(web_dir, INFO), info)
    return rebuild(web_dir)


def add_results(web_dir, results_page):
    """Lists a results page (results/NAME/PHASE_EPOCH/index.html) of the run on its training page (web/results.json)
    and rebuilds the page; nothing where the run has no training page of this version."""
    if not os.path.isfile(os.path.join(web_dir, INFO)):
        return None
    path = os.path.join(web_dir, RESULTS)
    pages = [p for p in _read_json(path, []) if isinstance(p, str) and os.path.isfile(p)]
    page = os.path.abspath(results_page)
    if page not in pages:
        pages.append(page)
    _write_json(path, pages)
    return rebuild(web_dir)


def rebuild(web_dir):
    """Writes web/index.html from the files (page.json, loss_history.jsonl, the pictures, results.json)."""
    info = read_info(web_dir)
    history = read_history(os.path.join(os.path.dirname(os.path.abspath(web_dir)), "loss_history.jsonl"))
    results = [p for p in _read_json(os.path.join(web_dir, RESULTS), []) if isinstance(p, str) and os.path.isfile(p)]
    return write_training_page(web_dir, info, page_images(web_dir), history, results)


# -- the page ----------------------------------------------------------------------------------------------------------
def write_training_page(web_dir, info, epochs, history, results=()):
    """checkpoints/NAME/web/index.html: validation (its latest results, or why there are none), the curves, then the
    pictures of each epoch ({epoch: {label: relative path}}), newest epoch first, labels in ``info["order"]`` (the
    model's) and then by name. ``info``: web/page.json ({"name", "model", "val_freq", "finished", "epoch",
    "snapshot", "order", ...}); ``history``: the points of loss_history.jsonl; ``results``: paths of the run's
    results pages."""
    name, finished = info.get("name", ""), bool(info.get("finished"))
    doc = document(f"Training: {name}", reload_every=None if finished else RELOAD)
    doc.body["data-updated"] = str(int(time.time()))
    doc.body["data-stale"] = str(STALE)
    points = [p for p in history if isinstance(p.get("x"), (int, float))]
    validation = next((p for p in reversed(points) if p.get("val")), None)
    done = max([p["x"] for p in points if p.get("losses")] or [0])
    status = (f"stopped at epoch {done:.2f}: an error or an interruption ended the run (its console said which)"
              if finished and info.get("stopped") else f"finished: {info.get('epoch') or round(done)} epochs"
              if finished else f"training: epoch {done:.2f} (this page reloads every minute)")
    links = [(name, href) for name, href in (("loss_log.txt", "../loss_log.txt"),
                                             ("loss_history.jsonl", "../loss_history.jsonl"),
                                             ("train_opt.txt", "../train_opt.txt"))
             if os.path.isfile(os.path.join(web_dir, href))]  # a run stopped early may not have written them
    if os.path.isfile(os.path.join(web_dir, "loss_curve.png")):
        links.append(("curves as PNG", "loss_curve.png"))
    for page in results:  # results/NAME/PHASE_EPOCH/index.html: "results/test_latest"
        folder = os.path.dirname(page)
        where = os.path.basename(os.path.dirname(os.path.dirname(folder)))
        links.append((f"{where}/{os.path.basename(folder)}", url(os.path.relpath(page, web_dir))))
    with doc:
        page_header(name, f"training · {info.get('model', '')}",
                    chips=[("", status), ("updated", time.strftime("%Y-%m-%d %H:%M:%S")),
                           ("epochs shown", len(epochs))], links=links)
        tags.div(id="stale", cls="stale", hidden=True)
        with tags.main():
            _validation_section(info, validation)
            with tags.section(id="curves-section"):
                tags.h2("Curves", tags.small("per loss: the mean of each epoch over all its steps (dots) and a "
                                             "smoothed line of the values logged every --print_freq images; hover "
                                             "for values"))
                with tags.div(cls="tools"):
                    with tags.label():
                        tags.span("smoothing ")
                        tags.input_(type="range", id="c-smooth", min="0", max="0.99", step="0.01", value="0.8",
                                    aria_label="smoothing")
                        tags.span(id="c-smooth-value")
                    with tags.label():
                        tags.input_(type="checkbox", id="c-raw")
                        tags.span(" single iterations")
                    with tags.label():
                        tags.input_(type="checkbox", id="c-log", checked=True)
                        tags.span(" log scale where values span 50× or more")
                tags.div(id="curves", cls="curves")
                if not points:
                    tags.p("no points yet: the losses are logged every --print_freq images", cls="empty")
                json_data("curve-data", curve_data(points))
            _images_section(web_dir, info, epochs)
        viewer()
    return write_page(doc, web_dir, scripts=("curves.js",))


def _validation_section(info, validation):
    freq = info.get("val_freq") or 0
    with tags.section(id="validation"):
        if validation:
            every = f"every {freq} epoch(s); " if freq else ""
            tags.h2("Validation", tags.small(f"at epoch {validation.get('x', 0):g}, on held-out data ({every}the "
                                             f"curves below)"))
            if summary_table(Results.from_flat(validation["val"]), table_id="validation-summary") is None:
                tags.p("no metrics in the last validation", cls="empty")
        elif freq:
            tags.h2("Validation")
            tags.p(f"Validation runs every {freq} epoch(s) (--val_freq {freq}); its first results come after epoch "
                   f"{freq}.", cls="empty")
        else:
            tags.h2("Validation")
            tags.p("Validation is off (--val_freq 0, the default), so this page has no held-out metrics: train with "
                   "--val_freq N (on DATAROOT/val or valA and valB, else --val_fraction 0.1 of the training files) "
                   "to measure PSNR, SSIM and MAE every N epochs; best.pth then keeps the best checkpoint.",
                   cls="empty", id="validation-off")


def _images_section(web_dir, info, epochs):
    with tags.section():
        labels = sorted({lbl for e in epochs.values() for lbl in e}, key=lambda lbl: (
            info.get("order", []).index(lbl) if lbl in info.get("order", []) else len(info.get("order", [])), lbl))
        note = info.get("snapshot") or "the images of the batch being trained on"
        tags.h2("Images", tags.small("newest epoch first; click an image to enlarge, ← → step epochs"))
        tags.p(note, cls="muted", id="snapshot-note")
        with tags.div(cls="tools"):
            thumb_slider()
        groups = [{"title": "", "panels": [{"label": lbl, "caption": lbl} for lbl in labels]}]

        def image(label):
            def cell(epoch):
                src = epochs[epoch].get(label)
                return tags.td() if src is None else thumb_td(src, label, image_size(os.path.join(web_dir, src)))
            return cell
        columns = [Column("epoch", lambda epoch: tags.td(f"epoch {epoch}", cls="name"))]
        columns += [Column(label, image(label)) for label in labels]
        with tags.div(cls="scroll"):
            data_table(columns, sorted(epochs, reverse=True), lambda epoch: {"data-name": f"epoch {epoch}"},
                       cls="data viewable", id="images", data_groups=json.dumps(groups))
        if not epochs:
            tags.p("no images yet: they are saved every --display_freq images with --update_html_freq", cls="empty")


def _thin(pts):
    step = max(1, -(-len(pts) // MAX_POINTS))
    return pts[::step]


def curve_data(points):
    """What static/curves.js draws: {"charts": [{"title", "key", "series": [{"label", "points": [[x, y]], "kind":
    "loss" (epoch means and a smoothed line are drawn) | "plain" | "baseline", and for losses "means": [[epoch,
    mean of its steps, steps]] where training logged them}], "log": "auto"|True|False}]}."""
    train = [p for p in points if p.get("losses")]
    charts = []
    names = list(dict.fromkeys(n for p in train for n in p["losses"]))
    epochs = [p for p in points if isinstance(p.get("epoch_means"), dict)]
    for loss in names:
        pts = _thin([[p["x"], p["losses"][loss]] for p in train if isinstance(p["losses"].get(loss), (int, float))])
        series = {"label": loss, "points": pts, "kind": "loss"}
        means = [[p["x"], p["epoch_means"][loss], p.get("steps")] for p in epochs
                 if isinstance(p["epoch_means"].get(loss), (int, float))]
        if means:  # the mean of every step of each epoch (else the page takes the mean of the logged values)
            series["means"] = means
        charts.append({"title": loss, "key": "loss_" + loss, "log": "auto", "series": [series]})
    lr = _thin([[p["x"], p["lr"]] for p in points if isinstance(p.get("lr"), (int, float))])
    if lr:
        charts.append({"title": "learning rate", "key": "lr", "log": False,
                       "series": [{"label": "learning rate", "points": lr, "kind": "plain"}]})
    mem = _thin([[p["x"], p["memory_mib"]] for p in points if isinstance(p.get("memory_mib"), (int, float))])
    if mem:
        charts.append({"title": "peak memory (MiB)", "key": "memory", "log": False,
                       "series": [{"label": "peak memory (MiB)", "points": mem, "kind": "plain"}]})
    recon = _thin([[p["x"], max(p["recon"], RECON_FLOOR)] for p in points if isinstance(p.get("recon"), (int, float))])
    if recon:
        charts.append({"title": RECON_TITLE, "key": "recon", "log": True,
                       "series": [{"label": "reconstruction error", "points": recon, "kind": "plain"}]})
    val = [p for p in points if p.get("val")]
    if val:
        series, psnr = validation_series(val)
        charts.append({"title": "validation PSNR (dB; dashed: the baseline)" if psnr else
                       "validation: cycle error (MAE; unpaired data: no true targets)", "key": "validation",
                       "log": False, "series": [{"label": label, "points": [[x, y] for x, y in pts],
                                                 "kind": "baseline" if base else "plain"}
                                                for label, pts, base in series]})
    return {"charts": charts}


def validation_series(history):
    """The validation curves of loss_history.jsonl's points: [(label, [(epoch, value)], baseline: bool)], PSNR of
    each translation beside its baseline; without targets, the cycle errors."""
    points = [(p["x"], Results.from_flat(p["val"])) for p in history if "x" in p and p.get("val")]
    outs = list(dict.fromkeys(r.output for _, res in points for r in res.translations if r.metric is PSNR))
    series = []
    for out in outs:
        found = [(x, res.find(PSNR, out)) for x, res in points]
        series.append((out, [(x, r.value) for x, r in found if r is not None], False))
        based = [(x, r) for x, r in found if r is not None and r.baseline is not None]
        name = based[0][1].baseline_name if based else "baseline"
        series.append((f"{out}: {name}", [(x, r.baseline) for x, r in based], True))
    cycles = list(dict.fromkeys(r.key for _, res in points for r in res.cycles))
    for key in cycles:  # unpaired data: the cycle error is what can be measured
        series.append((key, [(x, res.get(key).value) for x, res in points if res.get(key)], False))
    return series, bool(outs)
def epoch_means(points):
    """[(epoch, mean)] of [(x, value)]: epoch e holds the points of x in (e - 1, e] (as static/curves.js)."""
    sums = {}
    for x, v in points:
        if v is not None and v == v:
            e = max(1, math.ceil(x - 1e-9))
            s, n = sums.get(e, (0.0, 0))
            sums[e] = (s + v, n + 1)
    return [(e, s / n) for e, (s, n) in sorted(sums.items())]


def loss_figure(history, name):
    """The training page's curves as a matplotlib figure: losses (faint: each logged value; strong: the mean of each
    epoch); learning rate and peak memory; the reversible
    core's reconstruction error (when logged); validation PSNR beside the copy-the-input baseline (points
    {"x", "val": {...}} without "losses", when validation ran). Curves with few points have markers (a single point
    shows as a dot), and tick labels are plain numbers (no offset or scientific notation)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, ScalarFormatter

    def plain(axis):
        f = ScalarFormatter(useOffset=False)
        f.set_scientific(False)
        axis.yaxis.set_major_formatter(f)

    def line(axis, pts, **kw):
        if pts:
            axis.plot(*zip(*pts), **({"marker": "o", "ms": 3} if len(pts) <= 30 else {}), **kw)

    points = [p for p in history if "x" in p]
    train = [p for p in points if p.get("losses")]
    val = [p for p in points if p.get("val")]
    recon = [(p["x"], max(p["recon"], RECON_FLOOR)) for p in points if p.get("recon") is not None]
    panels = ["losses", "lr"] + (["recon"] if recon else []) + (["val"] if val else [])
    ratios = {"losses": 2.2, "lr": 1, "recon": 1, "val": 1.6}
    fig, axes = plt.subplots(len(panels), 1, figsize=(9.5, 1.2 + 2 * sum(ratios[k] for k in panels)), sharex=True,
                             gridspec_kw={"height_ratios": [ratios[k] for k in panels]}, squeeze=False)
    ax = dict(zip(panels, axes[:, 0]))
    names = list(dict.fromkeys(n for p in train for n in p["losses"]))
    logged = [p for p in points if isinstance(p.get("epoch_means"), dict)]
    for loss in names:  # faint: the logged values; strong: the mean of each epoch (over every step, where logged)
        pts = [(p["x"], p["losses"][loss]) for p in train if loss in p["losses"]]
        line(ax["losses"], pts, lw=0.8, alpha=0.35)
        colour = ax["losses"].lines[-1].get_color() if pts else None
        means = [(p["x"], p["epoch_means"][loss]) for p in logged if loss in p["epoch_means"]] or epoch_means(pts)
        line(ax["losses"], means, label=loss, lw=1.8, color=colour)
    values = [v for p in train for v in p["losses"].values() if v is not None]
    wide = bool(values) and min(values) > 0 and max(values) / min(values) > 50
    if wide:  # losses of very different sizes (L1 x lambda beside GAN terms): each readable on a log axis
        ax["losses"].set_yscale("log")
        ax["losses"].yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax["losses"].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 0.5 1 2 5 10, not 10^0
        ax["losses"].yaxis.set_minor_formatter(NullFormatter())
    ax["losses"].set_ylabel("loss" + (" (log scale)" if wide else ""))
    ax["losses"].set_title(f"{name}: training losses")
    if names:
        ax["losses"].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    if not wide:
        plain(ax["losses"])
    line(ax["lr"], [(p["x"], p["lr"]) for p in points if p.get("lr") is not None], color="tab:blue")
    ax["lr"].set_ylabel("learning rate", color="tab:blue")
    ax["lr"].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    mem = [(p["x"], p["memory_mib"]) for p in points if p.get("memory_mib") is not None]
    if mem:
        ax_mem = ax["lr"].twinx()
        line(ax_mem, mem, color="tab:red")
        ax_mem.set_ylabel("peak memory (MiB)", color="tab:red")
        plain(ax_mem)
    if recon:
        line(ax["recon"], recon, color="tab:green")
        ax["recon"].set_yscale("log")
        ax["recon"].set_ylabel("core reconstruction\nerror (relative)")
        ax["recon"].set_title(RECON_TITLE, fontsize=8)
    if val:
        series, psnr = validation_series(val)
        color = -1
        for label, pts, baseline in series:
            color += not baseline  # a baseline shares its translation's colour, dashed
            line(ax["val"], pts, color=f"C{color}", label=label, **({"ls": "--", "lw": 1} if baseline else {}))
        ax["val"].set_ylabel("validation\nPSNR (dB)" if psnr else "validation\ncycle error (MAE)")
        ax["val"].set_title("validation (dashed: the copy-the-input baseline)" if psnr else
                            "validation: cycle error (unpaired data: no true targets)", fontsize=8)
        if series:
            ax["val"].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
        plain(ax["val"])
    for a in ax.values():
        a.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("epoch")
    fig.tight_layout()
    return fig
