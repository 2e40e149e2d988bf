# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Cold import of each reference charm's module chain, against bare ``import ops``.

Run: ``uv run python benchmarks/charms.py`` (or ``tox -e bench``).

Juju runs ``src/charm.py`` with ``src/`` and the charm's venv on the import path, so the chain
measured here is exactly that: a fresh interpreter started in ``<charm>/src`` importing
``charm`` (which imports ops, the libraries and whatever they import at module level), and
nothing else: no ops.testing, no pytest. Bytecode is precompiled first
(``compileall`` on the libraries and charms, ``PYTHONDONTWRITEBYTECODE`` removed), as in a
packed charm's venv. Each figure is the median of 15 fresh processes, the chains taking
turns in the same run, so the ratio to ``import ops`` cancels most of the machine's speed.

The script also lists, for each chain, the third-party packages it loads (pydantic,
lightkube, yaml, crossplane, ops.testing...), taken from ``sys.modules`` of a fresh process.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 15
TARGET_RATIO = 1.2
UPSTREAM_RATIO = 1.8  # upstream coordinated_workers._coordinator chain vs ops (see README)
WATCHED = (
    *("pydantic", "lightkube", "httpx2", "yaml", "crossplane", "scenario", "ops.testing"),
    *("charmlibs.interfaces.tls_certificates", "cryptography"),
)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def precompile() -> None:
    """Write bytecode for the libraries and charms, as a packed charm's venv would hold it."""
    paths = [*map(str, ROOT.glob("lib/*/src")), str(ROOT / "coordinator/src")]
    paths.append(str(ROOT / "worker/src"))
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *paths],
        env=_env(),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def cold_import_ms(chains: dict[str, tuple[str, Path]]) -> dict[str, float]:
    """Median wall time of a fresh interpreter running each statement in its directory.

    The chains take turns, one run each per round, so that the machine's drift (these VMs
    swing by a third) falls on all of them alike and the ratios stay put.
    """
    times: dict[str, list[float]] = {label: [] for label in chains}
    for statement, cwd in chains.values():  # warm-up: writes any missing .pyc
        subprocess.run([sys.executable, "-c", statement], env=_env(), cwd=cwd, check=True)
    for _ in range(RUNS):
        for label, (statement, cwd) in chains.items():
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", statement], env=_env(), cwd=cwd, check=True)
            times[label].append((time.perf_counter() - start) * 1000)
    return {label: statistics.median(runs) for label, runs in times.items()}


def loaded_packages(statement: str, cwd: Path) -> list[str]:
    """Which of the WATCHED packages `statement` leaves in sys.modules."""
    probe = f"{statement}; import json, sys; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env=_env(),
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    modules = set(json.loads(result.stdout.splitlines()[-1]))
    return [name for name in WATCHED if name in modules]


def main() -> int:
    precompile()
    chains = {
        "python -c pass": ("pass", ROOT),
        "import ops": ("import ops", ROOT),
        "import ops, pydantic": ("import ops, pydantic", ROOT),
        "coordinator charm chain": ("import charm", ROOT / "coordinator/src"),
        "worker charm chain": ("import charm", ROOT / "worker/src"),
    }
    print(f"cold import, median of {RUNS} fresh processes, interleaved (bytecode precompiled):")
    print("  columns: chain | median wall time | ratio to `import ops` | target and PASS/FAIL")
    results = cold_import_ms(chains)
    ops_ms = results["import ops"]
    failed = 0
    for label, ms in results.items():
        ratio = ms / ops_ms
        verdict = "figure, no target"
        if label.endswith("chain"):
            ok = ratio <= TARGET_RATIO
            failed += not ok
            verdict = f"target <= {TARGET_RATIO}x  {'PASS' if ok else 'FAIL'}"
        print(f"  {label:26} {ms:7.1f} ms  {ratio:5.2f}x ops   {verdict}")
    print(f"  (upstream coordinator chain: about {UPSTREAM_RATIO}x ops)")
    print("\nthird-party packages each chain loads at import time:")
    for label in ("coordinator charm chain", "worker charm chain"):
        statement, cwd = chains[label]
        print(f"  {label:26} {', '.join(loaded_packages(statement, cwd)) or 'none watched'}")
    print(f"\n{failed} target(s) failed" + (" (exit status 1)" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
