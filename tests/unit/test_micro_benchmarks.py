"""The micro-benchmarks in ``bench/micro`` (not collected by the suite) still run: each once,
untimed, so a change to a hot function's signature cannot leave them broken unnoticed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NO_CACHE = ["-p", "no:cacheprovider"]


def test_every_micro_benchmark_runs_once() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "bench/micro", "--benchmark-disable", "-q", *NO_CACHE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary, summary
