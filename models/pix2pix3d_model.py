"""``pix2pix`` on 3D volumes (NIfTI or .npy, ``--dataset_mode volume``): the same dimension-generic
networks with 3D convolutions, trained on random patches and tested on whole volumes by sliding-window inference."""
from models.pix2pix_model import Pix2PixModel
from models.volume import VolumeModel, volume_defaults


class Pix2Pix3DModel(VolumeModel, Pix2PixModel):
    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        parser = volume_defaults(Pix2PixModel.modify_commandline_options(parser, is_train), paired=True)
        parser.set_defaults(netG="resnet_9blocks")  # the U-Nets need 128³ or 256³ patches
        return parser
