"""The entry layer shared by train.py and test.py: how errors reach the user.

A mistake the user can make (util.errors.UserError, or the reversible library's ReversibleError for shapes and
configurations it cannot run) ends in one line on stderr and exit status 2, and so do the failures of the machine a
user meets: a file that cannot be written (disk full, read-only), and running out of memory. Ctrl-C ends in one
line and status 130, SIGTERM and SIGHUP in one line and status 128 + the signal. Saved checkpoints are untouched in
all cases (they are written atomically)."""
import contextlib
import functools
import os
import signal
import sys
import threading

import torch

from models.reversible import ReversibleError
from util.checkpoint import NO_SPACE
from util.errors import UserError, message

OOM_HINT = ("lower --batch_size, --crop_size (3D: --patch_size), --ngf or --load_size; on a GPU also try --amp bf16; "
            "checkpoints already written are kept")


def out_of_memory(e):
    """Whether ``e`` is an allocation failure (CUDA, or the CPU allocator's)."""
    if isinstance(e, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)


def io_error_line(e):
    where = f" ({e.filename})" if getattr(e, "filename", None) else ""
    hint = ": free some space, then resume with --continue_train" if e.errno in NO_SPACE else ""
    return f"cannot read or write a file{where}: {e.strerror or e}{hint}"


class Terminated(BaseException):
    """SIGTERM or SIGHUP (``kill``, ``timeout``, a job scheduler, a closed terminal) while an entry point runs: raised
    as Ctrl-C raises KeyboardInterrupt, so that the same clean-up runs (train.py puts an earlier run's files back)."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def termination_as_exception():
    """SIGTERM and SIGHUP raise Terminated in this process while the block runs (where they have their default
    action and this is the main thread); a forked DataLoader worker that gets one ends as it would have."""
    pid = os.getpid()

    def handler(signum, frame):
        if os.getpid() != pid:  # a worker process forked from this one
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise Terminated(signum)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGTERM", "SIGHUP"):
            sig = getattr(signal, name, None)
            if sig is not None and signal.getsignal(sig) == signal.SIG_DFL:
                previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def user_facing(main):
    """Decorator for an entry point's ``main``."""
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            with termination_as_exception():
                return main(*args, **kwargs)
        except Terminated as e:
            print(f"terminated ({signal.Signals(e.signum).name}); checkpoints already written are kept",
                  file=sys.stderr)
            sys.exit(128 + e.signum)
        except (UserError, ReversibleError) as e:
            line = message(e)
        except BrokenPipeError:  # the output's reader closed it (`| head`): end quietly, as a killed pipeline writer
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            sys.exit(128 + signal.SIGPIPE)
        except OSError as e:
            line = io_error_line(e)
        except KeyboardInterrupt:
            print("interrupted; checkpoints already written are kept", file=sys.stderr)
            sys.exit(130)
        except (MemoryError, RuntimeError) as e:
            if not out_of_memory(e):
                raise
            line = f"out of memory ({str(e).splitlines()[0][:160] if str(e) else type(e).__name__}): {OOM_HINT}"
        print(f"error: {line}", file=sys.stderr)
        sys.exit(2)
    return wrapper
