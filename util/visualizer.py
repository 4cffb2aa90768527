"""Training feedback: loss_log.txt, the live visdom dashboard, the HTML pages under checkpoints/NAME/web/ and, with
--log, TensorBoard and Weights & Biases (util.loggers).

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

from util.loggers import Loggers
from util.pages import training as page
from util.results import PSNR, Results
from util.util import save_image, visual_to_rgb

# visdom window ids, counted from --display_id
WIN_LOSSES, WIN_LR, WIN_MEMORY, WIN_RECON, WIN_IMAGES = 0, 1, 2, 3, 4
WIN_VALIDATION = 99  # after any number of one-window-per-image windows


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
        self.loggers = Loggers(opt, enabled)  # --log tensorboard / wandb
        self.snapshot = None  # what the page's pictures show (evaluation.snapshots: a fixed sample), for the page
        self.finished = None  # the last epoch, once training ended (the page stops reloading)
        self.stopped = False  # ended by an error or an interruption, not at its last epoch
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
    def start(self, progress, resumed, step=0):
        """Called once before training, at ``progress`` (epochs done, fractional) and global ``step`` (images seen:
        TensorBoard's and W&B's x axis). A resumed run keeps the curve points and page images up to there; a fresh
        run under an old name starts both anew."""
        if not self.enabled:
            return
        self.loggers.start(step, resumed)
        self.load_history(progress)
        if self.use_html and not resumed:
            for labels in self.page_images().values():
                for f in labels.values():
                    os.remove(os.path.join(self.web_dir, f))
            if os.path.exists(os.path.join(self.web_dir, page.RESULTS)):  # results of an earlier run of the name
                os.remove(os.path.join(self.web_dir, page.RESULTS))
        if self.use_html:  # a resumed run keeps what the page said about its pictures; the page says it runs again
            info = page.read_info(self.web_dir) if resumed else {}
            self.order, self.snapshot = info.get("order", []), info.get("snapshot")
            self.write_page()

    def page_images(self):
        """{epoch: {label: path relative to web/}} of the images on the training page."""
        return page.page_images(self.web_dir)

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

    def plot_current_losses(self, progress, losses, lr=None, memory_mib=None, recon=None, step=None):
        """Adds one point at ``progress`` (epochs, fractional; ``step``: images seen) to the curves, on disk, in visdom
        and in the --log backends; ``recon`` is the reversible core's relative reconstruction error (None for models
        without one)."""
        if not self.enabled:
            return
        self.loggers.scalars(step, {**{f"loss/{k}": v for k, v in losses.items()}, "learning_rate": lr,
                                    "peak_memory_MiB": memory_mib, "recon_err": recon, "epoch": progress})
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
                                       ("recon", WIN_RECON, page.RECON_TITLE, "log")):
            floor = page.RECON_FLOOR if key == "recon" else -math.inf  # a log axis cannot show an exact 0
            pts = [(p["x"], max(p[key], floor)) for p in self.history if p.get(key) is not None]
            if pts:
                self._send("line", X=np.array([x for x, _ in pts]), Y=np.array([y for _, y in pts]),
                           win=self._win(win), opts={"title": f"{self.opt.name} {title}", "xlabel": "epoch",
                                                     "ylabel": title, "ytype": scale})

    def plot_epoch_means(self, epoch, means, steps):
        """Adds the mean losses of ``epoch`` over its ``steps`` steps (those since a resume, for the epoch a run
        resumed in) to the curves on disk; the training page draws them as the losses' epoch means."""
        if not self.enabled:
            return
        point = {"x": float(epoch), "epoch_means": dict(means), "steps": steps}
        self.history.append(point)
        with open(self.history_path, "a") as f:
            f.write(json.dumps(point) + "\n")

    def plot_validation(self, epoch, means, line, step=None):
        """Adds the validation results ``means`` (util.results.Results) of ``epoch`` (at ``step``, images seen) to the
        curves (on disk, the page and visdom: PSNR of each translation beside its baseline, or the cycle errors;
        every result in the --log backends) and ``line`` to loss_log.txt."""
        if not self.enabled:
            return
        self.loggers.scalars(step, {f"validation/{k}": v for k, v in means.flat().items()})
        self.loggers.flush()
        point = {"x": float(epoch), "val": means.flat()}
        self.history.append(point)
        with open(self.history_path, "a") as f:
            f.write(json.dumps(point) + "\n")
        with open(self.log_name, "a") as f:
            f.write(line + "\n")
        if self.use_html:
            self.write_page()
        if self.vis is None:
            return
        series = []  # (legend, the result's name, its baseline?)
        for r in means:
            if r.cycle or (r.metric is PSNR and r.region is None):
                series += [(r.key, r.key, False)] + ([(r.baseline_key, r.key, True)] if r.baseline is not None else [])

        def values(results):  # of each series; None where a point lacks it
            found = [(results.get(key), base) for _, key, base in series]
            return [None if r is None else r.baseline if base else r.value for r, base in found]
        points = [(p["x"], values(Results.from_flat(p["val"]))) for p in self.history if "val" in p]
        points = [(x, ys) for x, ys in points if None not in ys]
        if series and points:
            self._send("line", X=np.tile(np.array([x for x, _ in points])[:, None], (1, len(series))),
                       Y=np.array([ys for _, ys in points]), win=self._win(WIN_VALIDATION),
                       opts={"title": f"{self.opt.name} validation", "legend": [s[0] for s in series],
                             "xlabel": "epoch"})

    # -- images -----------------------------------------------------------------------------------------------------
    def display_current_results(self, visuals, epoch, save_result, page_visuals=None, about=None, step=None):
        """Shows the current visuals in visdom and the --log backends (at ``step``, images seen); with
        ``save_result`` also writes ``page_visuals`` (the fixed sample the page shows every epoch, ``about`` saying
        which; default: the current visuals) as this epoch's row of the HTML page and redraws the page and its loss
        curve. Volumes show as orthogonal mid-slices."""
        if not self.enabled:
            return
        images = {label: visual_to_rgb(t) for label, t in visuals.items() if t is not None}
        self.loggers.images(step, images)
        if self.vis is not None and images:
            self._show_images(images)
        if save_result and self.use_html:
            if page_visuals is not None:
                images = {label: visual_to_rgb(t) for label, t in page_visuals.items() if t is not None}
            self.order, self.snapshot = list(images), about if page_visuals is not None else None
            for label, im in images.items():
                save_image(im, os.path.join(self.web_dir, page.image_name(epoch, label)))
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
        """checkpoints/NAME/web/index.html (util.pages.training): the latest validation metrics, the curves, then
        every epoch's images, newest first; rebuilt from web/page.json, which this writes, and the files."""
        self.save_loss_curve()
        opt = self.opt
        info = {"name": opt.name, "model": getattr(opt, "model", ""), "val_freq": getattr(opt, "val_freq", 0) or 0,
                "print_freq": getattr(opt, "print_freq", None), "order": self.order, "snapshot": self.snapshot,
                "finished": self.finished is not None, "epoch": self.finished, "stopped": self.stopped}
        return page.write_info(self.web_dir, info)

    def finish(self, epoch, stopped=False):
        """Training ended after ``epoch`` (``stopped``: ended by an error or an interruption before its last epoch):
        the page says so and stops reloading itself."""
        if not self.enabled or not self.use_html:
            return
        self.finished, self.stopped = epoch, stopped
        self.write_page()

    def save_loss_curve(self):
        """web/loss_curve.png from the logged points (see ``loss_figure``), or None when nothing was logged."""
        if not self.history:
            return None
        fig = page.loss_figure(self.history, self.opt.name)
        import matplotlib.pyplot as plt
        path = os.path.join(self.web_dir, "loss_curve.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        return "loss_curve.png"

    def close(self):
        """At the end of training: the --log backends written out and closed."""
        self.loggers.close()

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
