"""``paired_revgan`` on 3D volumes (NIfTI or .npy, ``--dataset_mode volume``): the same dimension-generic
networks with 3D convolutions, trained on random patches and tested on whole volumes by sliding-window inference."""
from models.paired_revgan_model import PairedRevGANModel
from models.volume import VolumeModel, volume_defaults


class PairedRevGAN3DModel(VolumeModel, PairedRevGANModel):
    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        parser = volume_defaults(PairedRevGANModel.modify_commandline_options(parser, is_train), paired=True)
        return parser
