"""Checkpoints: one file per save holding the full training state, written atomically, loaded safely.

``save_checkpoint`` serializes the state in memory, writes it to a hidden temporary file in the same folder, flushes
it to disk and renames it over the target, so a crash, a full disk or a kill during a save never damages the last
good checkpoint; a full disk is reported with the space the save needed. ``load_checkpoint`` uses
``torch.load(weights_only=True)``: only tensors and plain containers are unpickled, never arbitrary code; empty,
truncated and foreign files are reported in one line (and never with advice to load them unsafely).
"""
import contextlib
import errno
import glob
import io
import os
import pickle
import re
import shutil
import tempfile
import time
import zipfile

import torch

from util.errors import UserError

FORMAT = 1
CHUNK = 1 << 20
NO_SPACE = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def megabytes(n):
    return f"{n / 2 ** 20:.1f} MB"


def _write_all(f, data):
    """Writes ``data`` (a memoryview) to ``f`` in chunks."""
    for i in range(0, len(data), CHUNK):
        f.write(data[i:i + CHUNK])


def _reason(e):
    return e.strerror or str(e)


def save_checkpoint(state, path):
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the checkpoint folder {folder} ({_reason(e)}): choose another "
                        f"--checkpoints_dir") from None
    buffer = io.BytesIO()
    torch.save(dict(state, format=FORMAT), buffer)
    data = buffer.getbuffer()
    kept = f"the previous {os.path.basename(path)} is kept" if os.path.exists(path) else \
        "no earlier checkpoint of this name existed"
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would make checkpoints private to their writer
        with os.fdopen(fd, "wb") as f:
            _write_all(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _remove(tmp)
        if e.errno in NO_SPACE:
            free = shutil.disk_usage(folder).free
            raise UserError(f"no space left on the device of {folder} while saving {path}: the checkpoint needs "
                            f"{megabytes(len(data))}, {megabytes(free)} are free; {kept} (free some space, then "
                            f"resume with --continue_train)") from None
        raise UserError(f"cannot write checkpoint {path} ({_reason(e)}); {kept}: choose a writable "
                        f"--checkpoints_dir") from None
    except BaseException:
        _remove(tmp)
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove(path):
    if path and os.path.exists(path):
        os.remove(path)


def remove_stale_temporaries(folder):
    """Deletes the hidden temporary files that saves killed mid-write left in ``folder`` (each as large as a
    checkpoint); returns (how many, bytes freed)."""
    count = freed = 0
    for path in glob.glob(os.path.join(glob.escape(folder), ".*.pth.*.tmp")):
        try:
            size = os.path.getsize(path)
            os.remove(path)
        except OSError:
            continue
        count, freed = count + 1, freed + size
    return count, freed


EARLIER = "earlier"  # checkpoints/NAME/earlier/STAMP/: the files of earlier runs under the name


def checkpoint_files(folder):
    """The checkpoint files in ``folder`` (``*.pth``, not a save's temporaries), latest.pth first, then by epoch."""
    if not os.path.isdir(folder):
        return []
    found = [f for f in os.listdir(folder) if f.endswith(".pth") and not f.startswith(".")
             and os.path.isfile(os.path.join(folder, f))]
    return sorted(found, key=lambda f: (not f.startswith("latest"), not f.startswith("best"), len(f), f))


def shown_files(names, most=6):
    """``names`` for a message: the first ``most`` and how many more."""
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


class EarlierRun:
    """A fresh run's handling of an earlier run under its name (checkpoints/NAME holding checkpoints): once the new
    run is set up, ``set_aside`` moves that run's files to earlier/STAMP (so the new run's logs and page start
    clean); if the new run then fails before it saves a checkpoint (a bad image in its first batch, Ctrl-C),
    ``restored_on_failure`` removes what it wrote and moves the earlier run back, as it was. ``enabled`` False
    (--continue_train, ranks other than 0): nothing is moved."""

    def __init__(self, folder, enabled=True):
        self.folder, self.enabled, self.dest, self.saved = folder, enabled, None, False

    def set_aside(self, say=print):
        """Where the folder holds checkpoints: every entry but earlier/ and a save's temporaries (checkpoints,
        exports, train_opt.txt, logs, web/) moves to earlier/STAMP, the time its newest checkpoint was written."""
        found = checkpoint_files(self.folder) if self.enabled else []
        if not found:
            return
        stats = [os.stat(os.path.join(self.folder, f)) for f in found]
        base = os.path.join(self.folder, EARLIER, time.strftime("%Y-%m-%d_%H%M%S",
                                                                time.localtime(max(st.st_mtime for st in stats))))
        dest, n = base, 2
        while os.path.exists(dest):
            dest, n = f"{base}_{n}", n + 1
        os.makedirs(dest)
        for f in sorted(os.listdir(self.folder)):
            if f != EARLIER and not (f.startswith(".") and f.endswith(".tmp")):
                os.replace(os.path.join(self.folder, f), os.path.join(dest, f))
        self.dest = dest
        size = megabytes(sum(st.st_size for st in stats))
        say(f"note: {self.folder} held an earlier run ({shown_files(found)}: {size} of checkpoints); this run starts "
            f"anew (no --continue_train), so that run's files moved to {dest} (back again if this run stops before "
            f"its first save; to test or resume that run give --checkpoints_dir {os.path.dirname(dest)} --name "
            f"{os.path.basename(dest)}; delete the folder to free its space)")

    @contextlib.contextmanager
    def restored_on_failure(self):
        try:
            yield
        except BaseException:
            if self.dest is not None and not self.saved:
                try:
                    self._restore()
                except OSError as e:  # the run's own error is the one to say
                    print(f"note: the earlier run's files stay in {self.dest} (moving them back failed: {e})")
            raise

    def _restore(self):
        for f in os.listdir(self.folder):  # what the failed run wrote (it saved no checkpoint)
            if f != EARLIER:
                path = os.path.join(self.folder, f)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        for f in os.listdir(self.dest):
            os.replace(os.path.join(self.dest, f), os.path.join(self.folder, f))
        os.rmdir(self.dest)
        with contextlib.suppress(OSError):  # other earlier runs are there
            os.rmdir(os.path.dirname(self.dest))
        print(f"note: the earlier run's files are back in {self.folder} (this run saved nothing)")


def earlier_hint(path):
    """Where the earlier runs set aside beside checkpoint ``path`` hold a file of its name ("" if none): how to
    read it from there."""
    folder, name = os.path.split(path)
    root = os.path.join(folder, EARLIER)
    stamps = sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, name))) \
        if os.path.isdir(root) else []
    if not stamps:
        return ""
    return f"; earlier runs under this name, set aside, hold {name}: {', '.join(stamps)} (read one with " \
           f"--checkpoints_dir {root} --name {stamps[-1]})"


def load_checkpoint(path, map_location="cpu"):
    if not os.path.isfile(path):
        there = [f[:-4] for f in checkpoint_files(os.path.dirname(path) or ".")
                 if re.fullmatch(r"(latest|best|\d+)\.pth", f)]
        best = "; best.pth is written when validation (--val_freq) has run" if \
            os.path.basename(path) == "best.pth" else ""
        raise UserError(f"no checkpoint at {path}" + (f" (--epoch can be {shown_files(there)}{best}" if there else
                                                      f" (train first, or check --name, --checkpoints_dir and "
                                                      f"--epoch{best}") + earlier_hint(path) + ")")
    other = "use another --epoch, or resume from an earlier checkpoint"
    if os.path.getsize(path) == 0:
        raise UserError(f"checkpoint {path} is empty (0 bytes: a save that was interrupted): {other}")
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path} is not a readable PyTorch checkpoint (truncated, damaged, or another kind of "
                        f"file): {other}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" in str(e).lower():
            raise UserError(f"{path} holds Python objects other than tensors and plain containers; it is refused, "
                            f"because loading such a file can run code (RevGAN checkpoints never hold any)") from None
        raise UserError(f"checkpoint {path} is damaged (its contents cannot be read): {other}") from None
    except Exception:  # a damaged archive member, a wrong record, ...
        raise UserError(f"checkpoint {path} is damaged (its contents cannot be read): {other}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "architecture" not in state:
        raise UserError(f"{path} is not a RevGAN checkpoint of format {FORMAT}")
    return state


def checkpoint_path(opt, epoch):
    return os.path.join(opt.checkpoints_dir, opt.name, f"{epoch}.pth")


@contextlib.contextmanager
def removed_if_unused(folder):
    """Around a run's start: if it fails, the folders it created on the way to ``folder`` (checkpoints/NAME, and
    checkpoints/ itself where it was new) are removed again while they hold no file, so that a mistake in the
    command leaves nothing behind. A file in them (a log, a checkpoint) keeps them; folders that existed before
    are never touched."""
    created, path = [], os.path.abspath(folder)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        created.append(path)
        path = os.path.dirname(path)
    try:
        yield
    except BaseException:
        for path in created:  # the deepest first
            for root, _, _ in sorted(os.walk(path), key=lambda w: -len(w[0])):
                with contextlib.suppress(OSError):  # not empty
                    os.rmdir(root)
        raise


def writable_folder(folder, flag):
    """Creates ``folder`` if needed and checks that files can be written in it; a UserError naming ``flag``
    otherwise (read-only, a path through a file, no permission)."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise UserError(f"cannot write in {folder} ({_reason(e)}): choose another {flag}") from None
