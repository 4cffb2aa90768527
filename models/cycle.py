"""CycleGAN's training step (Zhu et al. 2017) for any model that translates both ways: adversarial losses for both
directions, cycle-consistency (A -> B -> A and B -> A -> B) and identity losses. Used by cycle_gan (two generators)
and unpaired_revgan (one reversible generator)."""
from models.gan import GANModel, add_generator_options
from util.argtypes import WEIGHT, model_group
from util.flags import RESUMED


def add_cycle_options(parser, is_train: bool, reversible: bool):
    """The flags of a cycle model: its generator's and the cycle losses'."""
    add_generator_options(parser, reversible)
    # No global residual by default (CycleGAN's generator): with it the generator starts at its input, where the
    # cycle loss is zero, and between domains that look different it stayed near its input, drifting back with
    # longer training (docs/benchmarks.md, "The unpaired models without the residual"); --residual turns it on.
    parser.set_defaults(no_dropout=True, dataset_mode="unaligned", no_residual=True)
    if is_train:
        g = model_group(parser)
        g.add_argument("--lambda_A", policy=RESUMED, type=WEIGHT, default=10.0, help="weight of cycle loss A -> B -> A")
        g.add_argument("--lambda_B", policy=RESUMED, type=WEIGHT, default=10.0, help="weight of cycle loss B -> A -> B")
        g.add_argument("--lambda_identity", policy=RESUMED, type=WEIGHT, default=None,
                       help="identity loss weight, relative to lambda_A/lambda_B; 0 turns it off. Default: 0 where the "
                            "generator has the global residual (it starts at the identity, where this loss would "
                            "hold it: it then returns its input on tasks between different-looking domains), else 0.5 "
                            "as in CycleGAN")
    return parser


def identity_default(spec) -> float:
    """--lambda_identity's default for the generator of ``spec``: 0 with the global residual, else CycleGAN's 0.5.

    A residual generator starts as the identity, where the cycle and identity losses are both zero; with the identity
    loss on, the generator stayed there on a cross-domain task (satellite -> map: its output was its input after 8
    epochs, 6.5 dB against 12.0 dB without it; docs/benchmarks.md, "Quality ablation: the identity as a resting
    point")."""
    return 0.0 if spec.has_residual else 0.5


class CycleModel(GANModel):
    """A GANModel with the cycle step. The subclass declares ``directions`` for both ways and registers its
    generator network(s) before calling ``build_cycle_training``.

    Discriminator D_A judges domain B (the output of A -> B), D_B judges domain A."""
    loss_names = ("D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B")
    generator_losses = ("G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B")
    has_cycle_error = True  # evaluation measures rec_A against real_A and rec_B against real_B

    @staticmethod
    def architecture_defaults(config, spec):
        return {"lambda_identity": identity_default(spec)} if config.lambda_identity is None else {}

    def build_cycle_training(self, generators) -> None:
        """Visuals; for training the discriminators, pools and the two optimizers (generators, discriminators)."""
        self.uses_identity = self.is_train and self.opt.lambda_identity > 0 and \
            self.spec.input_nc == self.spec.output_nc
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
        if self.uses_identity:
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
