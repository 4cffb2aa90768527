"""What a model's networks are, as typed values: built once from the options (training) or from a checkpoint
(test.py, --continue_train), passed by keyword to the network factories, and saved in every checkpoint.

The defaults written here are the only ones: the command-line flags take theirs from these classes (a model may set
its own with ``parser.set_defaults``, as pix2pix does for ``--netG`` and ``--norm``).
"""
from dataclasses import dataclass, field, fields
from typing import Optional

REVERSIBLE_NETG = ("revgan", "iunet")
NETG = ("resnet_9blocks", "resnet_6blocks", "unet_128", "unet_256") + REVERSIBLE_NETG
NETD = ("basic", "n_layers", "pixel")
NORMS = ("instance", "batch", "syncbatch", "none")
INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")
COUPLINGS = ("additive", "affine")
STEMS = ("conv7", "unshuffle")
STEM_PADDINGS = ("zeros", "reflect")
STEM_NETG = ("resnet_9blocks", "resnet_6blocks", "revgan")  # the generators with an encoder and a decoder


@dataclass(frozen=True)
class GeneratorConfig:
    """A generator's structure.

    Args:
        netG: architecture (see NETG).
        ngf: filters of the first convolution (of F and G in the iUNet).
        norm: normalization layer (see NORMS).
        dropout: dropout in the residual/coupling bodies and the U-Net.
        init_type, init_gain: weight initialization.
        n_blocks: ResNet blocks or coupling blocks; None: the architecture's own (resnet_9blocks 9, resnet_6blocks 6).
        n_downsampling: stride-2 levels of the encoder and decoder (ResNet and RevGAN generators).
        coupling: additive or affine couplings (reversible generators).
        use_naive: run the reversible core on plain autograd (stores activations: the memory reference).
        tanh: a tanh on the output.
        stem: how the encoder enters and the decoder leaves the first resolution level (ResNet and RevGAN
            generators): conv7 (a 7x7 convolution at full resolution, CycleGAN's and the original RevGAN's; what a
            checkpoint without the entry holds) or unshuffle (pixel unshuffle, then convolutions at half resolution;
            see networks.encoder; the default of paired_revgan and the 3D models, ModelSpec.from_options).
        stem_padding: the padding of the unshuffle stem's first convolution: zeros (a uniform image then does not
            reach the core as an exactly constant map, whose instance norms would amplify the gradients without
            bound) or reflect (what an unshuffle checkpoint without the entry holds).
        residual: the output starts from the input (a global residual; see networks.Generator), where input and
            output have as many channels; the invertible U-Net has none (it starts as the identity anyway).
        residual_gate: the residual's input path is scaled by a learned gain per output channel and direction,
            starting at 1 and fast to move (networks.Generator.output), so that training can leave the identity;
            what a checkpoint without the entry lacks.
        residual_auto: the unpaired models' default: before training, a probe with the residual open decides
            whether training keeps it (models.cycle.CycleModel.decide_residual); the generator records the decision
            in buffers. What a checkpoint without the entry lacks (its residual, if any, stays as trained).
        iunet_architecture: coupling blocks per level of the invertible U-Net, comma-separated.
        dims: 2 for images, 3 for volumes.
    """
    netG: str = "resnet_9blocks"
    ngf: int = 64
    norm: str = "instance"  # CycleGAN's, and what checkpoints without the entry had; the GAN models' --norm: none
    dropout: bool = True
    init_type: str = "normal"
    init_gain: float = 0.02
    n_blocks: Optional[int] = None
    n_downsampling: int = 2
    coupling: str = "additive"
    use_naive: bool = False
    tanh: bool = True
    residual: bool = False
    residual_gate: bool = False
    residual_auto: bool = False
    stem: str = "conv7"
    stem_padding: str = "zeros"
    iunet_architecture: str = "2,2,2,2"
    dims: int = 2

    @property
    def reversible(self) -> bool:
        return self.netG in REVERSIBLE_NETG

    def depth(self) -> int:
        """The number of ResNet or coupling blocks this generator has."""
        if self.n_blocks is not None:
            return self.n_blocks
        return 9 if self.netG == "resnet_9blocks" else 6


REVGAN_DEPTH = 6  # --n_blocks of the RevGAN models: the depth of the reversible core


@dataclass(frozen=True)
class DiscriminatorConfig:
    """A discriminator's structure.

    Args:
        netD: basic (70x70 PatchGAN), n_layers (PatchGAN of ``n_layers`` stride-2 convolutions) or pixel (1x1).
        ndf: filters of the first convolution.
        n_layers: layers of the n_layers PatchGAN.
        norm, init_type, init_gain, dims: as for the generator.
    """
    netD: str = "basic"
    ndf: int = 64
    n_layers: int = 3
    norm: str = "instance"
    init_type: str = "normal"
    init_gain: float = 0.02
    dims: int = 2


NEGATED = ("residual", "residual_gate")  # architecture entries whose flags are --no_<entry>


def flag_value(key: str, value):
    """The command-line flag of "architecture" entry ``key`` and its value (``residual`` is ``--no_residual``)."""
    return ("no_" + key, None if value is None else not value) if key in NEGATED else (key, value)


@dataclass(frozen=True)
class ModelSpec:
    """A model's name, channel counts and network structures: everything needed to rebuild its networks.

    Args:
        model: the --model that trained it (e.g. unpaired_revgan).
        input_nc, output_nc: channels of domain A and domain B.
        generator, discriminator: the network structures.
        one_way: paired RevGAN models trained in their A -> B direction only (their default; not --two_way): no
            discriminator D_B, and the B -> A networks (encoder of B, decoder of A) untrained, so B -> A is refused;
            what a checkpoint without the entry (written before the option existed) was not.
    """
    model: str
    input_nc: int = 3
    output_nc: int = 3
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    one_way: bool = False

    @property
    def has_one_way(self) -> bool:
        """Whether the direction flags (--two_way; --one_way, the default) apply to this model (the paired RevGAN
        models)."""
        return self.model.startswith("paired_revgan")

    @property
    def dims(self) -> int:
        return self.generator.dims

    @property
    def trains_unpaired(self) -> bool:
        """Whether its model learns from unpaired data with cycle losses (cycle_gan, unpaired_revgan and their 3D
        versions); False for a generator of pytorch-CycleGAN-and-pix2pix run alone (models.upstream.SINGLE_G), which
        names no model of ours."""
        from models import available_models, find_model_using_name
        from models.cycle import CycleModel
        return self.model in available_models() and issubclass(find_model_using_name(self.model), CycleModel)

    @property
    def residual_applies(self) -> bool:
        """Whether the global residual can apply to its generator: not the invertible U-Net (it starts as the
        identity anyway), and as many input as output channels."""
        return self.generator.netG != "iunet" and self.input_nc == self.output_nc

    @property
    def has_residual(self) -> bool:
        """Whether the generator's output starts from its input: the global residual, where it applies."""
        return self.generator.residual and self.residual_applies

    @classmethod
    def from_options(cls, opt, dims: int = 2) -> "ModelSpec":
        """The spec the command line asks for. Flags a model does not define keep the defaults above."""
        values = vars(opt)

        def pick(config_cls, renames, **fixed):
            kw = {f.name: values[renames.get(f.name, f.name)] for f in fields(config_cls)
                  if renames.get(f.name, f.name) in values}
            kw.update(fixed)
            return config_cls(**kw)
        # --no_residual None: the unpaired models' default with neither --residual nor --no_residual typed (the
        # residual, decided before training); --residual_auto None: follow that
        no_residual = values.get("no_residual", not GeneratorConfig.residual)
        auto = values.get("residual_auto")
        # --stem None: the default of paired_revgan and the 3D models with no --stem typed (unshuffle, where
        # the encoder has a stride-2 level for it to take the place of; else conv7)
        stem = values.get("stem", GeneratorConfig.stem) or (
            "unshuffle" if values.get("n_downsampling", GeneratorConfig.n_downsampling)
            and values.get("netG") in STEM_NETG else GeneratorConfig.stem)
        generator = pick(GeneratorConfig, {}, dims=dims, dropout=not values.get("no_dropout", False),
                         tanh=not values.get("no_output_tanh", False), residual=not no_residual,
                         residual_gate=not values.get("no_residual_gate", not GeneratorConfig.residual_gate),
                         residual_auto=not no_residual and (no_residual is None if auto is None else bool(auto)),
                         stem=stem)
        discriminator = pick(DiscriminatorConfig, {"n_layers": "n_layers_D"}, dims=dims)
        return cls(opt.model, opt.input_nc, opt.output_nc, generator, discriminator, bool(values.get("one_way")))

    def to_architecture(self) -> dict:
        """The checkpoint's "architecture" dict (flag names as keys; None where a flag does not apply)."""
        g, d = self.generator, self.discriminator
        return {
            "model": self.model, "netG": g.netG, "netD": d.netD, "ngf": g.ngf, "ndf": d.ndf, "n_layers_D": d.n_layers,
            "input_nc": self.input_nc, "output_nc": self.output_nc, "norm": g.norm,
            "n_blocks": g.n_blocks if g.netG != "iunet" else None,
            "n_downsampling": g.n_downsampling, "coupling": g.coupling if g.reversible else None,
            "no_output_tanh": not g.tanh, "residual": g.residual if g.netG != "iunet" else None, "dims": g.dims,
            "residual_gate": g.residual_gate if g.netG != "iunet" and g.residual else None,
            "residual_auto": g.residual_auto if g.netG != "iunet" and g.residual else None,
            "stem": g.stem if g.netG in STEM_NETG else None,
            "stem_padding": g.stem_padding if g.netG in STEM_NETG and g.stem == "unshuffle" else None,
            "iunet_architecture": g.iunet_architecture if g.netG == "iunet" else None,
            "no_dropout": not g.dropout, "use_naive": g.use_naive if g.reversible else None,
            "one_way": self.one_way if self.has_one_way else None,
        }

    @classmethod
    def from_architecture(cls, arch: dict) -> "ModelSpec":
        """The spec a checkpoint's "architecture" dict describes (missing or None entries take the defaults)."""
        def given(key, default):
            value = arch.get(key)
            return default if value is None else value
        dims = given("dims", 2)
        norm = given("norm", GeneratorConfig.norm)
        stem = given("stem", "conv7")
        generator = GeneratorConfig(
            netG=given("netG", GeneratorConfig.netG), ngf=given("ngf", GeneratorConfig.ngf), norm=norm,
            dropout=not given("no_dropout", False), n_blocks=arch.get("n_blocks"),
            n_downsampling=given("n_downsampling", GeneratorConfig.n_downsampling),
            coupling=given("coupling", GeneratorConfig.coupling), use_naive=given("use_naive", False),
            tanh=not given("no_output_tanh", False), residual=given("residual", False),
            residual_gate=given("residual_gate", False), residual_auto=given("residual_auto", False),
            stem=stem, stem_padding=given("stem_padding", "reflect" if stem == "unshuffle" else
                                          GeneratorConfig.stem_padding),
            iunet_architecture=given("iunet_architecture", GeneratorConfig.iunet_architecture), dims=dims)
        discriminator = DiscriminatorConfig(netD=given("netD", DiscriminatorConfig.netD),
                                            ndf=given("ndf", DiscriminatorConfig.ndf),
                                            n_layers=given("n_layers_D", DiscriminatorConfig.n_layers),
                                            norm=norm, dims=dims)
        return cls(arch["model"], given("input_nc", 3), given("output_nc", 3), generator, discriminator,
                   given("one_way", False))

    def flags(self) -> dict:
        """The architecture as command-line flags, {flag: value}; None where a flag does not shape these networks
        (what --continue_train and test.py take from a checkpoint; see options.resolution)."""
        return dict(flag_value(k, v) for k, v in self.to_architecture().items() if k != "dims")
