"""Helpers shared by the benchmark scripts: fresh-process measurement, peak memory, docs sections."""
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS_MD = os.path.join(ROOT, "docs", "benchmarks.md")


# -- peak memory of one step --------------------------------------------------------------------------------------
def _proc_status(key):
    with open("/proc/self/status") as f:
        return int(f.read().split(key + ":")[1].split()[0]) * 1024


class PeakMemory:
    """Peak memory above the level at ``start()``: CUDA allocator peak on a GPU, resident set (VmHWM, reset through
    /proc/self/clear_refs) on the CPU. Start it after a warm-up step, so parameters, gradients and optimizer
    state are already allocated and only activations and transients are measured."""

    def __init__(self, device):
        self.device = torch.device(device)

    def start(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.base = _proc_status("VmRSS")

    def peak(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device) - self.base
        return _proc_status("VmHWM") - self.base

    def total_peak(self):
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device)
        return _proc_status("VmHWM")


def median_time(fn, steps, device):
    times = []
    for _ in range(steps):
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved_times(fns, rounds, device):
    """Median seconds per call of each function in ``fns`` (name -> callable), timed round-robin in one process so
    that machine noise (other load, clock changes) hits every method alike; each is called once untimed first."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(median_time(fn, 1, device))
    return {name: statistics.median(t) for name, t in times.items()}


def run_worker(script, args, timeout=1800, mmap=True):
    """Runs ``script --worker ARGS`` in a fresh process; returns its last stdout line parsed as JSON, or
    ``{"error": ...}`` when it failed. ``mmap``: large allocations through mmap, so that freed tensors leave the
    resident set (for memory figures on the CPU); timings run without it, with the allocator users get (mmap for
    every tensor makes code that allocates many mid-sized tensors look slower than it is)."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    if mmap:
        env.update(MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    proc = subprocess.run([sys.executable, script, "--worker"] + [str(a) for a in args], env=env,
                          capture_output=True, text=True, timeout=timeout)
    lines = [l for l in proc.stdout.strip().splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        err = (proc.stderr.strip().splitlines() or ["exit code %d" % proc.returncode])[-1]
        return {"error": err[:200]}
    return json.loads(lines[-1])


# -- reporting --------------------------------------------------------------------------------------------------------
def machine_description(device):
    if torch.device(device).type == "cuda":
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}"


def slope(xs, ys):
    """Least-squares slope of ys against xs."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def markdown_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def update_section(name, body, path=BENCHMARKS_MD):
    """Replaces the section between ``<!-- begin NAME -->`` and ``<!-- end NAME -->`` in docs/benchmarks.md (adding
    it at the end if missing), leaving the other benchmarks' sections as they were."""
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def today():
    return datetime.date.today().isoformat()
