#!/usr/bin/env bash
# Download an official pretrained generator of pytorch-CycleGAN-and-pix2pix into
# ./checkpoints/NAME_pretrained/latest_net_G.pth, where test.py --model test finds it:
#   bash datasets/download_pretrained_model.sh cyclegan horse2zebra     (or: download_cyclegan_model.sh horse2zebra)
#   bash datasets/download_pretrained_model.sh pix2pix facades_label2photo   (or: download_pix2pix_model.sh ...)
set -euo pipefail
KIND=${1:-}
FILE=${2:-}
case "$KIND" in
    cyclegan)
        VALID="apple2orange orange2apple summer2winter_yosemite winter2summer_yosemite horse2zebra zebra2horse
            monet2photo style_monet style_cezanne style_ukiyoe style_vangogh sat2map map2sat cityscapes_photo2label
            cityscapes_label2photo facades_photo2label facades_label2photo iphone2dslr_flower"
        URL=http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/$FILE.pth ;;
    pix2pix)
        VALID="edges2shoes sat2map map2sat facades_label2photo day2night"
        URL=http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/$FILE.pth ;;
    *)
        echo "usage: $0 cyclegan|pix2pix NAME" >&2; exit 2 ;;
esac
VALID=$(echo $VALID)
if [[ -z "$FILE" || " $VALID " != *" $FILE "* ]]; then
    echo "usage: $0 $KIND NAME  (one of: $VALID)" >&2; exit 2
fi
TARGET=./checkpoints/${FILE}_pretrained
mkdir -p "$TARGET"
wget -N "$URL" -O "$TARGET/latest_net_G.pth"
echo "saved $TARGET/latest_net_G.pth"
