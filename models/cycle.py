"""CycleGAN's training step (Zhu et al. 2017) for any model that translates both ways: adversarial losses for both
directions, cycle-consistency (A -> B -> A and B -> A -> B) and identity losses. Used by cycle_gan (two generators)
and unpaired_revgan (one reversible generator)."""
import itertools

from models import training_state
from models.gan import GANModel, add_generator_options
from util import distributed
from util.argtypes import WEIGHT, model_group
from util.flags import ARCH, RESUMED

# --residual_auto, the unpaired models' default: before training, PROBE_STEPS steps with the residual's input path
# open (as --residual) probe the task; the residual is kept where the discriminators, over the probe's second half,
# tell the translations from the target domain apart no better than PROBE_SEPARATION (the probability that D scores
# a patch of a real image above a patch of a translation: 0.5 is chance). Measured with --residual on the quick
# benchmark tasks, both unpaired models (docs/benchmarks.md, "The residual decided in training"): between domains
# that look alike, where the residual learns best, 0.63-0.72 (faded photos, two seeds), 0.78-0.79 (camera
# restoration), 0.50-0.54 (thick -> thin MRI slices, 3D); between domains that look different, where it held the
# generators near their input, 0.94-0.97 (satellite -> map, two seeds), 0.90-0.93 (T1 -> grey-matter map, 3D).
# Above it, training goes without it, as with --no_residual (CycleGAN's generator and identity loss, the unpaired
# default before). The probe's steps are undone (CycleModel.decide_residual), so training runs exactly as with either
# flag from the same start. A run of fewer steps probes as many as it has.
PROBE_STEPS = 100
PROBE_SEPARATION = 0.85


def add_cycle_options(parser, is_train: bool, reversible: bool):
    """The flags of a cycle model: its generator's and the cycle losses'."""
    add_generator_options(parser, reversible)
    # The residual decided before training by default (no_residual None: neither --residual nor --no_residual typed): a
    # residual generator starts at its input, where the cycle loss is zero, and between domains that look different
    # it stayed near its input, drifting back with longer training (docs/benchmarks.md, "The unpaired models without
    # the residual"); between domains that look alike it learns best ("The unpaired models on faded photos").
    parser.set_defaults(no_dropout=True, dataset_mode="unaligned", no_residual=None)
    model_group(parser).add_argument(
        "--residual_auto", policy=ARCH, action="store_true", default=None,
        help=f"the default unless --residual or --no_residual is typed: before training, {PROBE_STEPS} probe steps "
             "(a shorter run: as many as it has) with the global residual (undone afterwards) decide whether "
             "training keeps it (as --residual, no identity loss; where the discriminators cannot tell the "
             "translations from the target domain: domains that look alike, such as restoration) or goes without it "
             "(as --no_residual, --lambda_identity applies; where they can: domains that look different); the "
             "decision is printed and saved in the checkpoint")
    if is_train:
        g = model_group(parser)
        g.add_argument("--lambda_A", policy=RESUMED, type=WEIGHT, default=10.0, help="weight of cycle loss A -> B -> A")
        g.add_argument("--lambda_B", policy=RESUMED, type=WEIGHT, default=10.0, help="weight of cycle loss B -> A -> B")
        g.add_argument("--lambda_identity", policy=RESUMED, type=WEIGHT, default=None,
                       help="identity loss weight, relative to lambda_A/lambda_B; 0 turns it off. Default: 0 with "
                            "--residual (it starts at the identity, where this loss would hold it: it then returns its "
                            "input on tasks between different-looking domains), else 0.5 as in CycleGAN; with "
                            "--residual_auto (the default) it applies where the residual is closed")
    return parser


def identity_default(spec) -> float:
    """--lambda_identity's default for the generator of ``spec``: 0 with the global residual kept (--residual), else
    CycleGAN's 0.5 (with --residual_auto it applies only where the probe closes the residual).

    A residual generator starts as the identity, where the cycle and identity losses are both zero; with the identity
    loss on, the generator stayed there on a cross-domain task (satellite -> map: its output was its input after 8
    epochs, 6.5 dB against 12.0 dB without it; docs/benchmarks.md, "Quality ablation: the identity as a resting
    point")."""
    return 0.0 if spec.has_residual and not spec.generator.residual_auto else 0.5


class CycleModel(GANModel):
    """A GANModel with the cycle step. The subclass declares ``directions`` for both ways and registers its
    generator network(s) before calling ``build_cycle_training``.

    Discriminator D_A judges domain B (the output of A -> B), D_B judges domain A."""
    loss_names = ("D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B")
    generator_losses = ("G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B")
    has_cycle_error = True  # evaluation measures rec_A against real_A and rec_B against real_B

    @staticmethod
    def architecture_defaults(config, spec):
        return {**GANModel.architecture_defaults(config, spec),
                **({"lambda_identity": identity_default(spec)} if config.lambda_identity is None else {})}

    def build_cycle_training(self, generators) -> None:
        """Visuals; for training the discriminators, pools and the two optimizers (generators, discriminators)."""
        self.uses_identity = self.is_train and self.opt.lambda_identity > 0 and \
            self.spec.input_nc == self.spec.output_nc
        self.switched = [g for g in generators if hasattr(g, "residual_open")]  # --residual_auto
        self.path_open, self.probe_due = self.spec.has_residual, False
        visuals_A, visuals_B = ["real_A", "fake_B", "rec_A"], ["real_B", "fake_A", "rec_B"]
        self.visual_names = visuals_A + ["idt_B"] + visuals_B + ["idt_A"] if self.uses_identity else \
            visuals_A + visuals_B
        if self.is_train:
            self.netD_A = self.add_network("D_A", self.make_D(self.spec.output_nc))
            self.netD_B = self.add_network("D_B", self.make_D(self.spec.input_nc))
            self.add_pools("fake_A", "fake_B")
            self.optimizer_G = self.add_optimizer(*generators)
            self.optimizer_D = self.add_optimizer(self.netD_A, self.netD_B)

    def set_input(self, data):
        self.real_A = data["A"].to(self.device)
        self.real_B = data["B"].to(self.device) if "B" in data else None
        self.image_paths = data["A_paths"]
        self.check_input(self.real_A)
        if self.is_train:
            self.guards.check_discriminator("D_A", self.net("D_A"), self.spec.output_nc, self.real_B.shape[2:])

    def forward(self):
        self.fake_B = self.translate(self.real_A, "AtoB")
        self.rec_A = self.translate(self.fake_B, "BtoA")
        self.fake_A = self.translate(self.real_B, "BtoA")
        self.rec_B = self.translate(self.fake_A, "AtoB")

    def generators_loss(self):
        """The generators' objective: GAN + cycle + identity losses."""
        opt = self.opt
        if self.uses_identity and not (self.switched and self.path_open):  # --residual_auto kept it open: none
            self.idt_A = self.translate(self.real_B, "AtoB")
            self.idt_B = self.translate(self.real_A, "BtoA")
            self.loss_idt_A = self.criterionL1(self.idt_A, self.real_B) * opt.lambda_B * opt.lambda_identity
            self.loss_idt_B = self.criterionL1(self.idt_B, self.real_A) * opt.lambda_A * opt.lambda_identity
        else:
            self.loss_idt_A = self.loss_idt_B = self.real_A.new_zeros(())
        self.loss_G_A = self.criterionGAN(self.netD_A(self.fake_B), True)
        self.loss_G_B = self.criterionGAN(self.netD_B(self.fake_A), True)
        self.loss_cycle_A = self.criterionL1(self.rec_A, self.real_A) * opt.lambda_A
        self.loss_cycle_B = self.criterionL1(self.rec_B, self.real_B) * opt.lambda_B
        self.check_losses_finite(self.generator_losses)
        return sum(getattr(self, "loss_" + name) for name in self.generator_losses)

    def optimize_parameters(self):
        with self.precision.autocast():
            self.forward()
            self.set_requires_grad([self.netD_A, self.netD_B], False)
            self.optimizer_G.zero_grad()
            self.precision.update(self.generators_loss(), self.optimizer_G)
            self.set_requires_grad([self.netD_A, self.netD_B], True)
            self.optimizer_D.zero_grad()
            self.loss_D_A = self.discriminator_loss(self.netD_A, self.real_B, self.pools["fake_B"].query(self.fake_B))
            self.loss_D_B = self.discriminator_loss(self.netD_B, self.real_A, self.pools["fake_A"].query(self.fake_A))
            self.check_losses_finite(["D_A", "D_B"])
            self.precision.update(self.loss_D_A + self.loss_D_B, self.optimizer_D)

    def setup(self, opt, checkpoint=None) -> None:
        """BaseModel.setup; then, for training with --residual_auto undecided, ``probe_due`` (train.py runs
        decide_residual before the first step)."""
        super().setup(opt, checkpoint)
        self.path_open = self.spec.has_residual and not (self.switched and not float(self.switched[0].residual_open))
        self.probe_due = bool(self.is_train and self.switched and not float(self.switched[0].residual_decided))

    def decide_residual(self, batches, steps=None) -> None:
        """--residual_auto, before the first step: PROBE_STEPS steps (fewer where the whole run has fewer ``steps``,
        at least 2) on ``batches`` (an iterable of as many training batches) with the residual open, the
        discriminators' separation over their second half, and the decision, printed and kept in the generators'
        buffers. Then the networks, optimizers, scalers, pools and random states go back to what they were: training
        runs from the same start as with --residual (no identity loss), or as with --no_residual (the same networks,
        the input path closed; --lambda_identity, 0.5 unless typed)."""
        wanted = max(2, min(PROBE_STEPS, steps or PROBE_STEPS))
        saved = training_state.snapshot(self)
        separations, done = [], 0
        for done, batch in enumerate(itertools.islice(batches, wanted), 1):
            self.measure_separation = done > wanted // 2
            self.set_input(batch)
            self.optimize_parameters()
            separations, self.separations = separations + self.separations, []
        self.measure_separation = False
        training_state.restore(self, saved)
        if done < wanted:
            raise ValueError(f"the residual's probe needs {wanted} batches, got {done}")
        value = distributed.mean(sum(separations) / len(separations))
        keep = value <= PROBE_SEPARATION
        for g in self.switched:
            g.residual_open.fill_(1.0 if keep else 0.0)
            g.residual_decided.fill_(1.0)
        self.path_open, self.probe_due = keep, False
        if distributed.is_main():
            print(f"residual: in {wanted} probe steps the discriminators told translations from real images "
                  f"with probability {value:.2f} (chance 0.5, limit {PROBE_SEPARATION}): "
                  + ("the domains look alike; training keeps the residual (as --residual" +
                     (f", so without the identity loss: --lambda_identity {self.opt.lambda_identity:g} applies only "
                      f"without the residual)" if self.uses_identity else ")") if keep else
                     "the domains look different; training goes without the residual (as --no_residual"
                     + (f", identity loss {self.opt.lambda_identity:g})" if self.uses_identity else ")")) +
                  ". --residual or --no_residual decide for yourself")
