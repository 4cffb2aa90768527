"""``cycle_gan`` on 3D volumes (NIfTI or .npy, ``--dataset_mode volume``): the same dimension-generic
networks with 3D convolutions, trained on random patches and tested on whole volumes by sliding-window inference."""
from models.cycle_gan_model import CycleGANModel
from models.volume import VolumeModel, volume_defaults


class CycleGAN3DModel(VolumeModel, CycleGANModel):
    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        parser = volume_defaults(CycleGANModel.modify_commandline_options(parser, is_train), paired=False)
        return parser
