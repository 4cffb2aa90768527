#!/usr/bin/env bash
# Download a CycleGAN dataset: bash datasets/download_cyclegan_dataset.sh maps
set -euo pipefail
FILE=${1:-}
VALID="apple2orange summer2winter_yosemite horse2zebra monet2photo cezanne2photo ukiyoe2photo vangogh2photo maps cityscapes facades iphone2dslr_flower mini mini_pix2pix mini_colorization"
if [[ -z "$FILE" || " $VALID " != *" $FILE "* ]]; then
    echo "usage: $0 NAME  (one of: $VALID)" >&2; exit 2
fi
URL=http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/$FILE.zip
mkdir -p ./datasets
wget -N "$URL" -O "./datasets/$FILE.zip"
unzip -o "./datasets/$FILE.zip" -d ./datasets/
rm "./datasets/$FILE.zip"
