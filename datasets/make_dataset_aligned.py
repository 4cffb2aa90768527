"""Turn a folder with trainA/trainB (and testA/testB, ...) of matching names into the aligned A|B layout.

    python datasets/make_dataset_aligned.py --dataset-path ./datasets/mydata
writes ./datasets/mydata/train/, test/ ... of side-by-side pairs (names must match between A and B, extensions may
differ; the pairs are made as datasets/combine_A_and_B.py makes them). Mistakes end in one line and exit status 2.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from combine_A_and_B import combine, fail  # noqa: E402  (this folder, also when run as a script)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("--dataset-path", required=True)
    args = p.parse_args()
    root = args.dataset_path
    if not os.path.isdir(root):
        fail(f"{root} is not a folder")
    done = 0
    for sub in sorted(os.listdir(root)):
        if sub.endswith("A") and os.path.isdir(os.path.join(root, sub[:-1] + "B")):
            split = sub[:-1]
            done += combine(os.path.join(root, sub), os.path.join(root, split + "B"), os.path.join(root, split),
                            missing="fail")
    print(f"wrote {done} aligned pairs under {root}")


if __name__ == "__main__":
    main()
