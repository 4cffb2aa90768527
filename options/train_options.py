from util.argtypes import BELOW_ONE, COUNT, NONNEG_INT, POSITIVE, WEIGHT, number
from util.errors import UserError
from util.flags import FIXED, RESUMED, RUN, SCHEDULE
from util.results import check_val_metric

from .base_options import BaseOptions


class TrainOptions(BaseOptions):
    is_train = True

    def initialize(self, parser):
        parser = super().initialize(parser)
        # display and logging (see util/visualizer.py)
        parser.add_argument("--display_freq", policy=RUN, type=COUNT, default=400,
                            help="show results every N training images")
        parser.add_argument("--display_ncols", policy=RUN, type=NONNEG_INT, default=4, help="images per row in visdom")
        parser.add_argument("--display_id", policy=RUN, type=int, default=1,
                            help="visdom window id; 0 turns visdom off")
        parser.add_argument("--display_server", policy=RUN, default="http://localhost", help="visdom server")
        parser.add_argument("--display_env", policy=RUN, default="main", help="visdom environment")
        parser.add_argument("--display_port", policy=RUN, type=number(int, 1, 65535), default=8097, help="visdom port")
        parser.add_argument("--update_html_freq", policy=RUN, type=COUNT, default=1000,
                            help="save images to the HTML page every N training images")
        parser.add_argument("--print_freq", policy=RUN, type=COUNT, default=100,
                            help="log losses every N training images")
        parser.add_argument("--no_html", policy=RUN, action="store_true", help="do not write checkpoints/NAME/web/")
        parser.add_argument("--log", policy=RUN, nargs="+", default=[], choices=["tensorboard", "wandb"],
                            help="also log the curves and images to TensorBoard (event files in checkpoints/NAME/) "
                                 "and/or Weights & Biases: --log tensorboard wandb (optional packages: "
                                 "requirements-extras.txt)")
        parser.add_argument("--use_wandb", policy=RUN, action="store_true",
                            help="pytorch-CycleGAN-and-pix2pix's name for --log wandb")
        parser.add_argument("--wandb_project_name", policy=RUN, default="RevGAN", help="the W&B project of --log wandb")
        # saving and resuming
        parser.add_argument("--save_latest_freq", policy=RUN, type=COUNT, default=5000,
                            help="save latest.pth every N images")
        parser.add_argument("--save_epoch_freq", policy=RUN, type=COUNT, default=5,
                            help="save EPOCH.pth every N epochs")
        parser.add_argument("--continue_train", policy=RUN, action="store_true",
                            help="resume from checkpoint --epoch (default latest) with its full state")
        parser.add_argument("--epoch_count", policy=FIXED, type=COUNT, default=1,
                            help="number of the first epoch of a fresh run, as in CycleGAN: it trains epochs "
                                 "N to --n_epochs + --n_epochs_decay, at the learning rate the schedule gives them")
        parser.add_argument("--phase", policy=RESUMED, default="train", help="train, val, test, ...")
        parser.add_argument("--samples_per_epoch", policy=RESUMED, type=NONNEG_INT, default=0,
                            help="training samples (images, pairs; patches for volumes) an epoch takes: a random "
                                 "draw, each once before any twice (--serial_batches: the next ones in order), so "
                                 "that epochs (the schedule, saving, validation) need not follow the dataset's size; "
                                 "0 (default): each sample once")
        # validation (see README: validation while training)
        parser.add_argument("--val_freq", policy=RESUMED, type=NONNEG_INT, default=0,
                            help="validate every N epochs (and after the last): test-time inference on held-out data, "
                                 "metrics in loss_log.txt, visdom and the training page; 0: no validation")
        parser.add_argument("--val_fraction", policy=RESUMED, type=BELOW_ONE, default=0.0,
                            help="without DATAROOT/valA+valB (or val/): hold out this fraction of the training files "
                                 "for validation (chosen by file name; A and B files of one name go together)")
        parser.add_argument("--val_metric", policy=RESUMED, default="auto",
                            help="the metric best.pth is kept by, e.g. PSNR_fake_B, SSIM_fake_A, MAE_fake_B or "
                                 "cycle_MAE_A (unpaired data); auto: PSNR of the first translation with targets, "
                                 "else the cycle error")
        parser.add_argument("--val_max", policy=RESUMED, type=COUNT, default=50,
                            help="validate on at most this many images (volumes)")
        # optimization
        parser.add_argument("--n_epochs", policy=SCHEDULE, type=NONNEG_INT, default=100,
                            help="epochs at the initial learning rate")
        parser.add_argument("--n_epochs_decay", policy=SCHEDULE, type=NONNEG_INT, default=100,
                            help="epochs of decay to zero")
        parser.add_argument("--beta1", policy=SCHEDULE, type=BELOW_ONE, default=0.5, help="Adam momentum term")
        parser.add_argument("--lr", policy=SCHEDULE, type=POSITIVE, default=0.0002,
                            help="initial learning rate for Adam (the paired models' residual gains: at most 0.0002)")
        parser.add_argument("--gan_mode", policy=RESUMED, default="lsgan", choices=["lsgan", "vanilla", "wgangp"],
                            help="GAN loss: least squares, the original cross-entropy, or Wasserstein with a "
                                 "gradient penalty")
        parser.add_argument("--lambda_gp", policy=RESUMED, type=WEIGHT, default=10.0,
                            help="gradient penalty weight (wgangp)")
        parser.add_argument("--pool_size", policy=RESUMED, type=NONNEG_INT, default=50,
                            help="image buffer of generated images")
        parser.add_argument("--lr_policy", policy=SCHEDULE, default="linear",
                            choices=["linear", "step", "plateau", "cosine"],
                            help="linear: constant for --n_epochs, then to zero over --n_epochs_decay; step: x0.1 "
                                 "every --lr_decay_iters epochs; plateau: x0.2 when the generator loss stalls; "
                                 "cosine: to zero over all epochs")
        parser.add_argument("--lr_decay_iters", policy=SCHEDULE, type=COUNT, default=50,
                            help="step policy: decay every N epochs")
        # speed and scale (see README: several GPUs, mixed precision, compile)
        parser.add_argument("--amp", policy=RESUMED, default="none", choices=["none", "bf16", "fp16"],
                            help="mixed precision: autocast forward passes to bfloat16 or float16 (fp16 with gradient "
                                 "scaling for the generator and discriminator optimizers)")
        parser.add_argument("--tf32", policy=RESUMED, action="store_true",
                            help="let float32 matmuls and convolutions use TF32 tensor cores (GPUs from Ampere on); "
                                 "without it they run in full float32")
        parser.add_argument("--compile", policy=RUN, action="store_true",
                            help="torch.compile the encoders, decoders and discriminators (whole generators of the "
                                 "non-reversible models; reversible cores stay eager), for static shapes: each new "
                                 "input shape compiles again (after torch's recompile limit, 8, that part runs "
                                 "eager), so use it with fixed crops, not --preprocess none on images of many sizes")
        parser.add_argument("--recon_warn", policy=RUN, type=POSITIVE, default=1e-2,
                            help="reversible models: warn when the core's relative reconstruction error, measured "
                                 "every --print_freq images, exceeds this")
        return parser

    def parse(self, argv=None):
        opt = super().parse(argv)
        check_val_metric(opt.val_metric)
        if opt.n_epochs + opt.n_epochs_decay < 1:
            raise UserError("--n_epochs + --n_epochs_decay must be at least 1")
        last = opt.n_epochs + opt.n_epochs_decay
        if not opt.continue_train and opt.epoch_count > last:  # (resumed: the checkpoint's counts, resolved later)
            raise UserError(f"--epoch_count {opt.epoch_count}: the schedule ends at epoch {last} (--n_epochs "
                            f"{opt.n_epochs} + --n_epochs_decay {opt.n_epochs_decay}), so nothing would train: "
                            f"lower --epoch_count or raise --n_epochs/--n_epochs_decay")
        return opt
