"""``unpaired_revgan`` on 3D volumes (NIfTI or .npy, ``--dataset_mode volume``): the same dimension-generic
networks with 3D convolutions, trained on random patches and tested on whole volumes by sliding-window inference."""
from models.unpaired_revgan_model import UnpairedRevGANModel
from models.volume import VolumeModel, volume_defaults


class UnpairedRevGAN3DModel(VolumeModel, UnpairedRevGANModel):
    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        parser = volume_defaults(UnpairedRevGANModel.modify_commandline_options(parser, is_train), paired=False)
        return parser
