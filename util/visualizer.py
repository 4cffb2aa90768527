"""Training feedback: console and loss_log.txt (visdom and HTML pages are added by util/html.py users)."""
import os
import time


class Visualizer:
    def __init__(self, opt):
        self.opt = opt
        self.log_name = os.path.join(opt.checkpoints_dir, opt.name, "loss_log.txt")
        os.makedirs(os.path.dirname(self.log_name), exist_ok=True)
        with open(self.log_name, "a") as f:
            f.write(f"================ Training Loss ({time.strftime('%c')}) ================\n")

    def print_current_losses(self, epoch, iters, total_iters, losses, t_comp, t_data):
        message = f"(epoch: {epoch}, iters: {iters}, total_iters: {total_iters}, time: {t_comp:.3f}, " \
                  f"data: {t_data:.3f}) " + " ".join(f"{k}: {v:.6f}" for k, v in losses.items())
        with open(self.log_name, "a") as f:
            f.write(message + "\n")
        return message
