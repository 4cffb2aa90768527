#!/usr/bin/env bash
# Download an official pretrained CycleGAN generator (pytorch-CycleGAN-and-pix2pix's script name):
#   bash datasets/download_cyclegan_model.sh horse2zebra
#   python test.py --dataroot datasets/horse2zebra/testA --name horse2zebra_pretrained --model test --no_dropout
exec bash "$(dirname "$0")/download_pretrained_model.sh" cyclegan "$@"
