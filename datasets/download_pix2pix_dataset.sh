#!/usr/bin/env bash
# Download a pix2pix dataset: bash datasets/download_pix2pix_dataset.sh facades
set -euo pipefail
FILE=${1:-}
VALID="cityscapes night2day edges2handbags edges2shoes facades maps"
if [[ -z "$FILE" || " $VALID " != *" $FILE "* ]]; then
    echo "usage: $0 NAME  (one of: $VALID)" >&2; exit 2
fi
URL=http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/$FILE.tar.gz
mkdir -p ./datasets
wget -N "$URL" -O "./datasets/$FILE.tar.gz"
tar -zxvf "./datasets/$FILE.tar.gz" -C ./datasets/
rm "./datasets/$FILE.tar.gz"
