"""Training feedback: loss_log.txt, the live visdom dashboard and the HTML pages under checkpoints/NAME/web/.

visdom is optional at run time: an unreachable server costs one warning (with the command that starts one) and
training goes on; so does a server that goes away during training. The HTML page needs no server: it shows the
current images of every epoch, newest first, and a loss-curve PNG.
"""
import json
import math
import os
import resource
import socket
import sys
import time
import warnings
from urllib.parse import urlparse

import numpy as np
import torch

from util.util import save_image, visual_to_rgb

# visdom window ids, counted from --display_id
WIN_LOSSES, WIN_LR, WIN_MEMORY, WIN_RECON, WIN_IMAGES = 0, 1, 2, 3, 4
WIN_VALIDATION = 99  # after any number of one-window-per-image windows
RECON_FLOOR = 1e-16  # an exact round trip (0) is drawn here on the log axes
RECON_TITLE = "core reconstruction error (relative; exact 0 drawn at 1e-16)"


def start_server_hint(port):
    return f"start one with `python -m util.visdom_server -port {port}` (works offline), or pass --display_id 0"


def peak_memory_mib(device):
    """Peak memory of this process so far: CUDA allocations on a GPU, the resident set (max RSS) on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class Visualizer:
    """``opt`` is the training options; ``enabled=False`` (ranks other than 0) turns every output off."""

    def __init__(self, opt, enabled=True):
        self.opt = opt
        self.enabled = enabled
        self.save_dir = os.path.join(opt.checkpoints_dir, opt.name)
        self.log_name = os.path.join(self.save_dir, "loss_log.txt")
        self.history_path = os.path.join(self.save_dir, "loss_history.jsonl")
        self.web_dir = os.path.join(self.save_dir, "web")
        self.img_dir = os.path.join(self.web_dir, "images")
        self.use_html = enabled and not opt.no_html
        self.display_id = opt.display_id if enabled else 0
        self.vis = None
        self.history = []
        self.order = []  # the model's visual labels, in its order (for the page)
        if not enabled:
            return
        os.makedirs(self.img_dir if self.use_html else self.save_dir, exist_ok=True)
        with open(self.log_name, "a") as f:
            f.write(f"================ Training Loss ({time.strftime('%c')}) ================\n")
        if self.display_id > 0:
            self._connect()

    # -- visdom -----------------------------------------------------------------------------------------------------
    def _connect(self):
        opt = self.opt
        try:
            import visdom
        except ImportError:
            return self._give_up("the visdom package is not installed (it is optional: requirements-visdom.txt says "
                                 "how to install it)", hint="pass --display_id 0 to silence this")
        url = opt.display_server if "://" in opt.display_server else "http://" + opt.display_server
        host = urlparse(url).hostname or "localhost"
        try:  # a plain TCP probe first: the visdom client has no timeout and would hang on a silent host
            socket.create_connection((host, opt.display_port), timeout=3).close()
        except OSError as e:
            return self._give_up(f"cannot reach {url}:{opt.display_port} ({e.strerror or e})")
        import logging
        logging.getLogger("visdom").setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():  # visdom's own notes about the socket we do not use
                warnings.simplefilter("ignore")
                self.vis = visdom.Visdom(server=url, port=opt.display_port, env=opt.display_env,
                                         raise_exceptions=True, use_incoming_socket=False)
        except Exception as e:  # the port answered but is not a visdom server
            self._give_up(f"{url}:{opt.display_port} did not answer as a visdom server ({e})")

    def _give_up(self, reason, hint=None):
        self.vis = None
        print(f"warning: visdom: {reason}; training goes on without the live dashboard: "
              f"{hint or start_server_hint(self.opt.display_port)}", file=sys.stderr, flush=True)

    def _send(self, method, *args, **kwargs):
        """Calls visdom's ``method`` unless the dashboard is off (or went away earlier)."""
        if self.vis is None:
            return
        try:
            getattr(self.vis, method)(*args, **kwargs)
        except Exception as e:  # the server went away during training
            self._give_up(f"lost the server ({e})")

    def _win(self, k):
        return str(self.display_id + k)

    # -- history: what the loss curves are drawn from (kept on disk, so a resumed run keeps its curves) ---------------
    def start(self, progress, resumed):
        """Called once before training, at ``progress`` (epochs done, fractional). A resumed run keeps the curve
        points and page images up to there; a fresh run under an old name starts both anew."""
        if not self.enabled:
            return
        self.load_history(progress)
        if self.use_html and not resumed:
            for labels in self.page_images().values():
                for f in labels.values():
                    os.remove(os.path.join(self.web_dir, f))

    # the page's images are web/images/epochNNN_LABEL.png; these two functions are the only ones that know the name
    @staticmethod
    def _image_name(epoch, label):
        return os.path.join("images", f"epoch{epoch:03d}_{label}.png")

    def page_images(self):
        """{epoch: {label: path relative to web/}} of the images on the training page."""
        epochs = {}
        if not os.path.isdir(self.img_dir):
            return epochs
        for f in sorted(os.listdir(self.img_dir)):
            num, _, label = f[5:-4].partition("_")
            if f.startswith("epoch") and f.endswith(".png") and num.isdigit() and label:
                epochs.setdefault(int(num), {})[label] = os.path.join("images", f)
        return epochs

    def has_epoch(self, epoch):
        return epoch in self.page_images()

    def load_history(self, upto):
        """Reads the points logged before, up to training progress ``upto`` (in epochs) of the checkpoint being
        resumed; points logged after that checkpoint belonged to the interrupted run and are dropped."""
        self.history = []
        if not os.path.exists(self.history_path):
            return
        with open(self.history_path) as f:
            for line in f:
                try:
                    point = json.loads(line)
                except ValueError:
                    continue
                if point.get("x", float("inf")) <= upto + 1e-9:
                    self.history.append(point)
        with open(self.history_path, "w") as f:
            f.writelines(json.dumps(p) + "\n" for p in self.history)

    def plot_current_losses(self, progress, losses, lr=None, memory_mib=None, recon=None):
        """Adds one point at ``progress`` (epochs, fractional) to the curves, on disk and in visdom; ``recon`` is the
        reversible core's relative reconstruction error (None for models without one)."""
        if not self.enabled:
            return
        point = {"x": progress, "losses": dict(losses), "lr": lr, "memory_mib": memory_mib, "recon": recon}
        self.history.append(point)
        with open(self.history_path, "a") as f:
            f.write(json.dumps(point) + "\n")
        if self.vis is None:
            return
        names = list(losses)
        points = [p for p in self.history if all(n in p.get("losses", {}) for n in names)]  # not validation points
        xs = np.array([p["x"] for p in points])
        ys = np.array([[p["losses"][n] for n in names] for p in points])
        self._send("line", X=np.tile(xs[:, None], (1, len(names))), Y=ys, win=self._win(WIN_LOSSES),
                   opts={"title": f"{self.opt.name} loss over time", "legend": names, "xlabel": "epoch",
                         "ylabel": "loss"})
        for key, win, title, scale in (("lr", WIN_LR, "learning rate", "linear"),
                                       ("memory_mib", WIN_MEMORY, "peak memory (MiB)", "linear"),
                                       ("recon", WIN_RECON, RECON_TITLE, "log")):
            floor = RECON_FLOOR if key == "recon" else -math.inf  # a log axis cannot show an exact 0
            pts = [(p["x"], max(p[key], floor)) for p in self.history if p.get(key) is not None]
            if pts:
                self._send("line", X=np.array([x for x, _ in pts]), Y=np.array([y for _, y in pts]),
                           win=self._win(win), opts={"title": f"{self.opt.name} {title}", "xlabel": "epoch",
                                                     "ylabel": title, "ytype": scale})

    def plot_validation(self, epoch, means, line):
        """Adds the validation metrics ``means`` of ``epoch`` to the curves (on disk, the page and visdom: PSNR of
        each translation beside its copy-the-input baseline) and ``line`` to loss_log.txt."""
        if not self.enabled:
            return
        point = {"x": float(epoch), "val": dict(means)}
        self.history.append(point)
        with open(self.history_path, "a") as f:
            f.write(json.dumps(point) + "\n")
        with open(self.log_name, "a") as f:
            f.write(line + "\n")
        if self.use_html:
            self.write_page()
        if self.vis is None:
            return
        names = [k for k in means if k.startswith(("PSNR_", "baseline_PSNR_", "cycle_"))]
        points = [p for p in self.history if "val" in p and all(n in p["val"] for n in names)]
        if names and points:
            self._send("line", X=np.tile(np.array([p["x"] for p in points])[:, None], (1, len(names))),
                       Y=np.array([[p["val"][n] for n in names] for p in points]), win=self._win(WIN_VALIDATION),
                       opts={"title": f"{self.opt.name} validation", "legend": names, "xlabel": "epoch"})

    # -- images -----------------------------------------------------------------------------------------------------
    def display_current_results(self, visuals, epoch, save_result):
        """Shows the current visuals in visdom; with ``save_result`` also writes them as this epoch's row of the
        HTML page and redraws the page and its loss curve. Volumes show as orthogonal mid-slices."""
        if not self.enabled:
            return
        images = {label: visual_to_rgb(t) for label, t in visuals.items() if t is not None}
        self.order = list(images)
        if self.vis is not None and images:
            self._show_images(images)
        if save_result and self.use_html:
            for label, im in images.items():
                save_image(im, os.path.join(self.web_dir, self._image_name(epoch, label)))
            self.write_page()

    def _show_images(self, images):
        labels = list(images)
        h = max(im.shape[0] for im in images.values())
        w = max(im.shape[1] for im in images.values())
        batch = np.full((len(images), 3, h, w), 255, dtype=np.uint8)
        for i, im in enumerate(images.values()):
            batch[i, :, :im.shape[0], :im.shape[1]] = im.transpose(2, 0, 1)
        ncols = self.opt.display_ncols
        if ncols > 0:
            self._send("images", batch, nrow=ncols, win=self._win(WIN_IMAGES), padding=2,
                       opts={"title": f"{self.opt.name} images: " + " | ".join(labels), "caption": " | ".join(labels)})
        else:  # one window per image
            for i, label in enumerate(labels):
                self._send("image", batch[i], win=self._win(WIN_IMAGES + i), opts={"title": label})

    def write_page(self):
        """checkpoints/NAME/web/index.html: the latest validation metrics, the curves, then every epoch's images,
        newest first."""
        from util.html import write_training_page
        validation = next((p for p in reversed(self.history) if p.get("val")), None)
        return write_training_page(self.web_dir, self.opt, self.page_images(), self.save_loss_curve(), self.order,
                                   validation=validation)

    def save_loss_curve(self):
        """web/loss_curve.png from the logged points (see ``loss_figure``), or None when nothing was logged."""
        if not self.history:
            return None
        fig = loss_figure(self.history, self.opt.name)
        import matplotlib.pyplot as plt
        path = os.path.join(self.web_dir, "loss_curve.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        return "loss_curve.png"

    # -- text -------------------------------------------------------------------------------------------------------
    def print_current_losses(self, epoch, iters, total_iters, losses, t_comp, t_data, recon=None):
        message = f"(epoch: {epoch}, iters: {iters}, total_iters: {total_iters}, time: {t_comp:.3f}, " \
                  f"data: {t_data:.3f}) " + " ".join(f"{k}: {v:.6f}" for k, v in losses.items())
        if recon is not None:
            message += f" recon_err: {recon:.3e}"
        if self.enabled:
            with open(self.log_name, "a") as f:
                f.write(message + "\n")
        return message


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
        outs = list(dict.fromkeys(k[len("PSNR_"):] for p in val for k in p["val"] if k.startswith("PSNR_")))
        for i, out in enumerate(outs):
            color = f"C{i}"
            line(ax["val"], [(p["x"], p["val"][f"PSNR_{out}"]) for p in val if f"PSNR_{out}" in p["val"]],
                 color=color, label=out)
            line(ax["val"], [(p["x"], p["val"][f"baseline_PSNR_{out}"]) for p in val
                             if f"baseline_PSNR_{out}" in p["val"]], color=color, ls="--", lw=1,
                 label=f"{out}: copy of input")
        cycles = [k for k in dict.fromkeys(k for p in val for k in p["val"]) if k.startswith("cycle_MAE_")]
        for i, key in enumerate(cycles):  # unpaired data: the cycle error is what can be measured
            line(ax["val"], [(p["x"], p["val"][key]) for p in val if key in p["val"]], color=f"C{i}", label=key)
        ax["val"].set_ylabel("validation\nPSNR (dB)" if outs else "validation\ncycle error (MAE)")
        ax["val"].set_title("validation (dashed: the copy-the-input baseline)" if outs else
                            "validation: cycle error (unpaired data: no true targets)", fontsize=8)
        if outs or cycles:
            ax["val"].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
        plain(ax["val"])
    for a in ax.values():
        a.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("epoch")
    fig.tight_layout()
    return fig
