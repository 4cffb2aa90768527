from util.errors import UserError
from util.flags import RUN

from .test_options import TestOptions


class ExportOptions(TestOptions):
    """export.py's flags: test.py's (which checkpoint, --direction, and for pytorch-CycleGAN-and-pix2pix files their
    architecture) with --model test, plus the format."""
    script, purpose = "export.py", "export"
    usage = "python export.py --name NAME --format {torchscript,onnx} [flags]"

    def initialize(self, parser):
        parser = super().initialize(parser)
        parser.set_defaults(model="test")
        parser.add_argument("--format", policy=RUN, default=None, choices=["torchscript", "onnx"],  # required: parse
                            help="torchscript: a traced TorchScript module (torch.jit.load); onnx: an ONNX model "
                                 "(onnxruntime and others)")
        parser.add_argument("--opset", policy=RUN, type=int, default=18, help="ONNX opset version")
        return parser

    def parse(self, argv=None):
        opt = super().parse(argv)
        if opt.format is None:  # not argparse's required=True, which would refuse --help too
            raise UserError("export.py needs a format: add --format torchscript or --format onnx")
        if opt.model != "test":
            raise UserError(f"--model {opt.model}: export.py exports one generator, as test.py --model test runs it "
                            f"(the checkpoint says which network); drop --model")
        return opt
