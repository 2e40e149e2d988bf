# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Time and peak memory of ``python -m tools.plan`` at 50, 200 and 500 worker apps.

Run: ``uv run python benchmarks/plan.py`` (or ``tox -e bench``).

Each size is a fresh process running the real command (default sections, output discarded)
on a topology of one coordinator unit, N one-unit worker apps with every role, the mesh on,
Prometheus and Loki. Wall time, CPU time (user + system) and peak resident memory
(``ru_maxrss`` of that one child, from ``os.wait4``) are printed for each; at 500 worker apps
the plan must finish in under 10 s and 300 MiB. The plan grows linearly with the worker apps:
each unit runs a fixed handful of hooks, so the time per worker app stays put from 50 to 500.
Wall time on a machine shared with other work is higher than the CPU time; both are printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SIZES = (50, 200, 500)
TARGET_APPS = 500
TARGET_SECONDS = 10.0
TARGET_MIB = 300.0


def topology(workers: int) -> dict[str, object]:
    """One coordinator, ``workers`` one-unit worker apps, the mesh, Prometheus and Loki."""
    return {
        "model": "bench",
        "coordinator": {"app": "coordinator", "units": 1},
        "workers": [{"app": f"worker-w{i}", "roles": ["all"]} for i in range(workers)],
        "mesh": {"enabled": True},
        "telemetry": {"prometheus": {"app": "prometheus"}, "loki": {"app": "loki"}},
    }


def measure(path: Path) -> tuple[float, float, float, int]:
    """(wall s, CPU s, peak MiB, exit code) of one ``python -m tools.plan path`` process."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.plan", str(path)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if process.returncode:
        sys.stderr.write(errors.decode(errors="replace"))
    # ru_maxrss is in KiB on Linux.
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, process.returncode


def main() -> int:
    print("python -m tools.plan, one fresh process per size (default sections):")
    print(f"  {'worker apps':>11}  {'wall':>7}  {'CPU':>7}  {'CPU/app':>8}  {'peak':>9}")
    failed = 0
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        for size in SIZES:
            path = Path(tmp, f"workers-{size}.yaml")
            path.write_text(yaml.safe_dump(topology(size), sort_keys=False))
            wall, cpu, mib, code = measure(path)
            verdict = "figure, no target"
            if code:
                verdict = f"FAIL (exit code {code})"
                failed += 1
            elif size == TARGET_APPS:
                ok = wall < TARGET_SECONDS and mib < TARGET_MIB
                failed += not ok
                verdict = (
                    f"target < {TARGET_SECONDS:.0f} s and < {TARGET_MIB:.0f} MiB  "
                    f"{'PASS' if ok else 'FAIL'}"
                )
            print(
                f"  {size:>11}  {wall:6.1f}s  {cpu:6.1f}s  {cpu / size * 1000:6.1f}ms  "
                f"{mib:6.0f} MiB   {verdict}"
            )
    print(f"\n{failed} target(s) failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
