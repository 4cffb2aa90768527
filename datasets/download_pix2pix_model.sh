#!/usr/bin/env bash
# Download an official pretrained pix2pix generator (pytorch-CycleGAN-and-pix2pix's script name):
#   bash datasets/download_pix2pix_model.sh facades_label2photo
#   python test.py --dataroot datasets/facades/testB --name facades_label2photo_pretrained --model test \
#       --netG unet_256 --norm batch --direction BtoA
exec bash "$(dirname "$0")/download_pretrained_model.sh" pix2pix "$@"
