"""The training page, checkpoints/NAME/web/index.html (written by util.visualizer while training runs), and its
curves (``loss_figure``: web/loss_curve.png from loss_history.jsonl)."""
import json
import os
import time

from dominate import tags

from util.pages.html import document, image_size, page_header, thumb_slider, url, viewer, write_page
from util.pages.table import Column, data_table, summary_table, thumb_td
from util.results import PSNR, Results

RECON_FLOOR = 1e-16  # an exact round trip (0) is drawn here on the log axes
RECON_TITLE = "core reconstruction error (relative; exact 0 drawn at 1e-16)"


def write_training_page(web_dir, opt, epochs, curve, order=(), validation=None):
    """checkpoints/NAME/web/index.html: the latest validation results (when validation ran), the curves (when there
    are points), then the images saved for each epoch ({epoch: {label: relative path}}), newest epoch first,
    labels in ``order`` (the model's) and then by name. The page reloads itself every minute while training runs
    (not while the viewer is open). ``validation``: the last validation point of loss_history.jsonl ({"x": epoch,
    "val": {name: value}})."""
    doc = document(f"Training: {opt.name}", reload_every=60)
    with doc:
        page_header(opt.name, f"training · {getattr(opt, 'model', '')}",
                    chips=[("updated", time.strftime("%Y-%m-%d %H:%M:%S")),
                           ("epochs shown", len(epochs))],
                    links=[("loss_log.txt", "../loss_log.txt"), ("loss_history.jsonl", "../loss_history.jsonl"),
                           ("train_opt.txt", "../train_opt.txt")])
        with tags.main():
            if validation and validation.get("val"):
                with tags.section(id="validation"):
                    tags.h2("Validation", tags.small(f"at epoch {validation.get('x', 0):g}"))
                    if summary_table(Results.from_flat(validation["val"]), table_id="validation-summary") is None:
                        tags.p("no metrics in the last validation", cls="empty")
            if curve:
                with tags.section():
                    tags.h2("Curves", tags.small("from loss_history.jsonl; click for full size"))
                    with tags.a(href=url(curve)):
                        tags.img(src=url(curve), alt="loss curve", id="loss-curve")
            with tags.section():
                labels = sorted({lbl for e in epochs.values() for lbl in e}, key=lambda lbl: (
                    order.index(lbl) if lbl in order else len(order), lbl))
                tags.h2("Images", tags.small("newest epoch first; click an image to enlarge, ← → step epochs"))
                with tags.div(cls="tools"):
                    thumb_slider()
                groups = [{"title": "", "panels": [{"label": lbl, "caption": lbl} for lbl in labels]}]

                def image(label):
                    def cell(epoch):
                        src = epochs[epoch].get(label)
                        return tags.td() if src is None else thumb_td(src, label,
                                                                      image_size(os.path.join(web_dir, src)))
                    return cell
                columns = [Column("epoch", lambda epoch: tags.td(f"epoch {epoch}", cls="name"))]
                columns += [Column(label, image(label)) for label in labels]
                with tags.div(cls="scroll"):
                    data_table(columns, sorted(epochs, reverse=True), lambda epoch: {"data-name": f"epoch {epoch}"},
                               cls="data viewable", id="images", data_groups=json.dumps(groups))
                if not epochs:
                    tags.p("no images yet: they are saved every --display_freq images with --update_html_freq",
                           cls="empty")
        viewer()
    return write_page(doc, web_dir)


def validation_series(history):
    """The validation curves of loss_history.jsonl's points: [(label, [(epoch, value)], baseline: bool)], PSNR of
    each translation beside its copy-the-input baseline; without targets, the cycle errors."""
    points = [(p["x"], Results.from_flat(p["val"])) for p in history if "x" in p and p.get("val")]
    outs = list(dict.fromkeys(r.output for _, res in points for r in res.translations if r.metric is PSNR))
    series = []
    for out in outs:
        found = [(x, res.find(PSNR, out)) for x, res in points]
        series.append((out, [(x, r.value) for x, r in found if r is not None], False))
        series.append((f"{out}: copy of input", [(x, r.baseline) for x, r in found
                                                 if r is not None and r.baseline is not None], True))
    cycles = list(dict.fromkeys(r.key for _, res in points for r in res.cycles))
    for key in cycles:  # unpaired data: the cycle error is what can be measured
        series.append((key, [(x, res.get(key).value) for x, res in points if res.get(key)], False))
    return series, bool(outs)


def loss_figure(history, name):
    """The training page's curves as a matplotlib figure: losses; learning rate and peak memory; the reversible
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
    for loss in names:
        line(ax["losses"], [(p["x"], p["losses"][loss]) for p in train if loss in p["losses"]], label=loss, lw=1)
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
