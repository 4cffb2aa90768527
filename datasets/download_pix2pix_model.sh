#!/usr/bin/env bash
# Download an official pretrained pix2pix generator (pytorch-CycleGAN-and-pix2pix) into
# ./checkpoints/NAME_pretrained/latest_net_G.pth, where test.py --model test finds it:
#   bash datasets/download_pix2pix_model.sh facades_label2photo
#   python test.py --dataroot datasets/facades/testB --name facades_label2photo_pretrained --model test \
#       --netG unet_256 --norm batch --direction BtoA
set -euo pipefail
FILE=${1:-}
VALID="edges2shoes sat2map map2sat facades_label2photo day2night"
if [[ -z "$FILE" || " $VALID " != *" $FILE "* ]]; then
    echo "usage: $0 NAME  (one of: $VALID)" >&2; exit 2
fi
TARGET=./checkpoints/${FILE}_pretrained
mkdir -p "$TARGET"
wget -N "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/$FILE.pth" -O "$TARGET/latest_net_G.pth"
echo "saved $TARGET/latest_net_G.pth"
