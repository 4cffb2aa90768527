"""Argument types that check ranges at parse time: a bad value ends in argparse's one-line error naming the flag."""
import argparse
import math
import ntpath
import os


def number(kind=int, lo=None, hi=None, lo_open=False, hi_open=False):
    """An argparse ``type`` for ``kind`` (int or float) within [lo, hi], open at an end with ``lo_open`` or
    ``hi_open``."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if lo is not None and (value < lo or (lo_open and value == lo)):
            raise argparse.ArgumentTypeError(f"{text} must be {'>' if lo_open else '>='} {lo}")
        if hi is not None and (value > hi or (hi_open and value == hi)):
            raise argparse.ArgumentTypeError(f"{text} must be {'<' if hi_open else '<='} {hi}")
        return value
    parse.__name__ = kind.__name__
    return parse


COUNT = number(int, 1)          # 1, 2, ...
NONNEG_INT = number(int, 0)     # 0, 1, ...
WEIGHT = number(float, 0)       # a loss weight, >= 0
POSITIVE = number(float, 0, lo_open=True)
FRACTION = number(float, 0, 1)  # [0, 1]
BELOW_ONE = number(float, 0, 1, hi_open=True)  # [0, 1)


def run_name(text):
    """An argparse ``type`` for --name: a folder under --checkpoints_dir and --results_dir (a trailing slash
    dropped), never their parent, an absolute path or one on a drive (--name .. wrote a run's files into the folder
    that holds checkpoints/)."""
    name = text.rstrip("/\\")
    parts = name.replace("\\", "/").split("/")
    if not name.strip() or os.path.isabs(name) or ntpath.splitdrive(name)[0] or \
            any(p.strip() in ("", ".", "..") for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not a run name: give a folder name such as maps_revgan (no "
                                         f"'.', '..' or empty parts, not an absolute path)")
    return name


def model_group(parser, title=None):
    """The --help section of the model being set up (one per title: a model's setters may add to it twice)."""
    title = title or f"--model {getattr(parser, 'model', None) or 'flags'}"
    for group in getattr(parser, "_action_groups", []):
        if group.title == title:
            return group
    return parser.add_argument_group(title) if hasattr(parser, "add_argument_group") else parser
