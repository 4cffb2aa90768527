"""Progress for long-running commands: tqdm's bars on a terminal; plain lines when stdout is a file or a pipe (a log
file then holds readable lines, not carriage returns and escape codes)."""
import sys
import time

from tqdm import tqdm


def progress(iterable, desc, total=None, initial=0, leave=True, position=0, disable=False, every=30.0,
             quiet_in_logs=False):
    """Iterates ``iterable`` with a progress display named ``desc``.

    Args:
        total, initial, leave, position: as tqdm's.
        disable: no display at all (e.g. on torchrun's other ranks).
        every: in plain mode, seconds between two progress lines (a last line comes at the end).
        quiet_in_logs: in plain mode print nothing (the caller prints its own line per step).
    """
    if disable or (quiet_in_logs and not sys.stdout.isatty()):
        return tqdm(iterable, disable=True, total=total)
    if sys.stdout.isatty():
        return tqdm(iterable, desc=desc, total=total, initial=initial, leave=leave, position=position,
                    file=sys.stdout)
    return PlainProgress(iterable, desc, total, initial, every)


def write(message, file=None):
    """Prints ``message`` without breaking a progress bar on the terminal."""
    tqdm.write(message, file=file or sys.stdout)


class PlainProgress:
    """A progress display in plain lines: "desc: 120/400 (30%), 45 s" at most every ``every`` seconds."""

    def __init__(self, iterable, desc, total=None, initial=0, every=30.0):
        self.iterable, self.desc, self.initial, self.every = iterable, desc, initial, every
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)

    def _line(self, n, start):
        of = f"/{self.total} ({100 * n / self.total:.0f}%)" if self.total else ""
        print(f"{self.desc}: {n}{of}, {time.time() - start:.0f} s", flush=True)

    def __iter__(self):
        start = last = time.time()
        n = self.initial
        for item in self.iterable:
            yield item
            n += 1
            if time.time() - last >= self.every:
                self._line(n, start)
                last = time.time()
        if n > self.initial and time.time() - start >= 1.0:
            self._line(n, start)

    def __len__(self):
        return self.total

    @staticmethod
    def write(message, file=None):
        print(message, file=file or sys.stdout, flush=True)
