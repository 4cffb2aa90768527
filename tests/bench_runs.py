"""Runs a benchmark script's smoke configuration for the benchmark tests: into a scratch docs file that already holds
another benchmark's section (which must survive), one torch thread unless OMP_NUM_THREADS says otherwise."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OTHER_SECTION = "<!-- begin other -->\nkept\n<!-- end other -->"


def tiny_benchmark(tmp, script, args, timeout):
    """``python scripts/SCRIPT --tiny ARGS --workdir TMP/work --docs TMP/docs/benchmarks.md``; asserts it succeeds.
    Returns {"tmp", "docs" (its path), "stdout", "results" (its results.json)}."""
    docs = tmp / "docs" / "benchmarks.md"
    docs.parent.mkdir()
    docs.write_text(f"# Benchmarks\n\n{OTHER_SECTION}\n")
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", script), "--tiny", *args,
                           "--workdir", str(tmp / "work"), "--docs", str(docs)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(tmp / "work" / "results.json") as f:
        results = json.load(f)
    return {"tmp": tmp, "docs": docs, "stdout": proc.stdout, "results": results}
