"""Comparison pages of result folders and the runs index, from the command line (the pages: util.pages.runs). Both
only read result folders (summary.json, metrics.json, images/LABEL/NAME.png), so they need no model, data or GPU:

    python -m util.compare results/maps_a/test_latest results/maps_b/test_latest [--out DIR]
    python -m util.compare --index results/

The comparison page shows each input with every run's output side by side (and the target), the per-image metrics
of every run and their differences from the first run, sortable; inputs are matched by name, and the ones that
are not in every run are listed. test.py rewrites the runs index after each run; ``--index`` rebuilds it.
"""
import argparse
import os
import sys

from util.errors import UserError
from util.pages.runs import write_comparison, write_runs_index


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m util.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", help="result folders, results/NAME/PHASE_EPOCH (two or more)")
    parser.add_argument("--out", help="where to write the comparison page (default: RESULTS/_compare/A_vs_B)")
    parser.add_argument("--index", metavar="RESULTS_DIR", help="rebuild RESULTS_DIR/index.html, the runs index")
    args = parser.parse_args(argv)
    try:
        if args.index:
            if not os.path.isdir(args.index):
                raise UserError(f"--index {args.index}: no such folder: give the --results_dir of test.py runs "
                                f"(default ./results)")
            print(f"runs index: {write_runs_index(args.index)}")
        if args.folders or not args.index:
            print(f"comparison: {write_comparison(args.folders, args.out)}")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot read or write {e.filename or 'a file'}: {e.strerror or e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
