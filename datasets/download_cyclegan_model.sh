#!/usr/bin/env bash
# Download an official pretrained CycleGAN generator (pytorch-CycleGAN-and-pix2pix) into
# ./checkpoints/NAME_pretrained/latest_net_G.pth, where test.py --model test finds it:
#   bash datasets/download_cyclegan_model.sh horse2zebra
#   python test.py --dataroot datasets/horse2zebra/testA --name horse2zebra_pretrained --model test --no_dropout
set -euo pipefail
FILE=${1:-}
VALID="apple2orange orange2apple summer2winter_yosemite winter2summer_yosemite horse2zebra zebra2horse monet2photo
style_monet style_cezanne style_ukiyoe style_vangogh sat2map map2sat cityscapes_photo2label cityscapes_label2photo
facades_photo2label facades_label2photo iphone2dslr_flower"
if [[ -z "$FILE" || " $(echo $VALID) " != *" $FILE "* ]]; then
    echo "usage: $0 NAME  (one of: $(echo $VALID))" >&2; exit 2
fi
TARGET=./checkpoints/${FILE}_pretrained
mkdir -p "$TARGET"
wget -N "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/$FILE.pth" -O "$TARGET/latest_net_G.pth"
echo "saved $TARGET/latest_net_G.pth"
