#!/usr/bin/env python3
# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Check packed charms: `python scripts/check_packed.py [--expect PKG ...] [--python PY] CHARM...`.

`charmcraft pack` succeeding says little about whether the charm will run on a unit: a
vendored library can be left out (charmcraft drops symlinks, canonical/charmcraft#260), land
as an editable install pointing at the build machine, or the venv can be built for another
Python than the base's. This script opens each `.charm` (a zip) and checks, without Juju:

- the layout Juju needs: manifest.yaml, metadata.yaml, an executable dispatch that runs
  src/charm.py, which calls ops.main, and one venv/lib/pythonX.Y/site-packages;
- that the venv's Python is the one the manifest's Ubuntu base ships;
- that every `--expect`ed package is in the venv as real files (no symlink, no editable
  `.pth` or `direct_url.json`);
- that `import charm` works the way dispatch runs it (venv/bin/python linked to the base's
  interpreter, PYTHONPATH=lib:src) and that ops and each expected package then come from the
  packed venv, not from the machine running the check.

It prints one line per check and exits 1 when any check fails (2 on bad arguments).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import pathlib
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field

import yaml

# The Python each Ubuntu base runs charms with (its python3). A venv built for any other
# version cannot load its compiled dependencies (pydantic-core) on the unit.
BASE_PYTHON = {"20.04": (3, 8), "22.04": (3, 10), "24.04": (3, 12)}
REQUIRED_FILES = ("manifest.yaml", "metadata.yaml", "dispatch", "src/charm.py")
ENTRYPOINT = "src/charm.py"
_SITE_PACKAGES = re.compile(r"^venv/lib/python(\d+)\.(\d+)/site-packages/")
_IMPORT_TIMEOUT_S = 120

# Run by the packed venv's interpreter: import the charm module like dispatch would, then
# report where each module came from. Kept to the standard library on purpose.
_PROBE = """
import importlib, json, sys, time
start = time.perf_counter()
import charm
seconds = time.perf_counter() - start
files = {name: importlib.import_module(name).__file__ for name in ["charm", *sys.argv[1:]]}
print(json.dumps({"prefix": sys.prefix, "version": sys.version.split()[0],
                  "seconds": seconds, "files": files}))
"""


@dataclass
class Report:
    """What was checked for one charm: each line is (passed, message)."""

    charm: pathlib.Path
    lines: list[tuple[bool, str]] = field(default_factory=lambda: [])

    def add(self, passed: bool, message: str) -> None:
        """Record one check."""
        self.lines.append((passed, message))

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return all(passed for passed, _ in self.lines)

    def render(self) -> str:
        """The report as text, one check per line."""
        body = [f"  {'ok  ' if passed else 'FAIL'} {message}" for passed, message in self.lines]
        return "\n".join([f"{self.charm}", *body])


@dataclass
class _Layout:
    """What the structural checks learned, for the import check."""

    venv_python: tuple[int, int] | None = None
    safe_to_extract: bool = True


def _mode(info: zipfile.ZipInfo) -> int:
    """Unix mode bits of a zip entry (0 when the archive was not made on Unix)."""
    return info.external_attr >> 16


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(_mode(info))


def _check_names(archive: zipfile.ZipFile, report: Report, layout: _Layout) -> None:
    """Refuse entries that would land outside the extraction directory."""
    unsafe = [
        name
        for name in archive.namelist()
        if name.startswith("/") or ".." in pathlib.PurePosixPath(name).parts
    ]
    if unsafe:
        layout.safe_to_extract = False
        report.add(False, f"entries escape the charm directory: {unsafe[:5]}")


def _check_required(archive: zipfile.ZipFile, report: Report) -> None:
    """The files Juju and dispatch need, as regular files; dispatch executable."""
    infos = {info.filename: info for info in archive.infolist()}
    missing = [name for name in REQUIRED_FILES if name not in infos]
    linked = [name for name in REQUIRED_FILES if name in infos and _is_symlink(infos[name])]
    if missing or linked:
        report.add(False, f"layout: missing {missing or 'nothing'}, symlinked {linked or 'none'}")
        return
    dispatch = infos["dispatch"]
    executable = _mode(dispatch) & 0o111 or not _mode(dispatch)
    runs_entrypoint = ENTRYPOINT in archive.read(dispatch).decode(errors="replace")
    name = yaml.safe_load(archive.read("metadata.yaml")).get("name")
    report.add(
        bool(executable and runs_entrypoint and name),
        f"layout: metadata.yaml (name {name}), dispatch "
        f"({'executable' if executable else 'NOT executable'}, "
        f"{'runs' if runs_entrypoint else 'does NOT run'} {ENTRYPOINT})",
    )


def _calls_ops_main(source: bytes) -> bool:
    """Whether the entry point calls `ops.main` (under any name it imported it as)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    names = {"ops.main", "ops.main.main"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("ops", "ops.main"):
            names |= {alias.asname or alias.name for alias in node.names if alias.name == "main"}
    return any(
        isinstance(node, ast.Call) and ast.unparse(node.func) in names for node in ast.walk(tree)
    )


def _check_entrypoint(archive: zipfile.ZipFile, report: Report) -> None:
    """src/charm.py hands control to ops.

    charmcraft 4.5's own `entrypoint` and `ops-main-call` linters cannot follow the dispatch it
    generates (`exec ... "${dispatch_path}/src/charm.py"`), so this is checked here instead.
    """
    if ENTRYPOINT not in archive.namelist():
        return
    calls = _calls_ops_main(archive.read(ENTRYPOINT))
    report.add(calls, f"{ENTRYPOINT}: {'calls' if calls else 'does NOT call'} ops.main")


def _base_python(archive: zipfile.ZipFile) -> tuple[str, tuple[int, int] | None]:
    """The manifest's Ubuntu base and the Python it runs charms with (None if unknown)."""
    manifest = yaml.safe_load(archive.read("manifest.yaml")) or {}
    for base in manifest.get("bases") or []:
        if base.get("name") == "ubuntu":
            channel = str(base.get("channel"))
            return f"ubuntu@{channel}", BASE_PYTHON.get(channel)
    return "no ubuntu base", None


def _check_venv(archive: zipfile.ZipFile, report: Report, layout: _Layout) -> None:
    """One site-packages, for the Python of the charm's base."""
    versions = sorted(
        {(int(m[1]), int(m[2])) for n in archive.namelist() if (m := _SITE_PACKAGES.match(n))}
    )
    if len(versions) != 1:
        report.add(False, f"venv: expected one venv/lib/pythonX.Y/site-packages, found {versions}")
        return
    layout.venv_python = versions[0]
    venv = "python{}.{}".format(*versions[0])
    if "manifest.yaml" not in archive.namelist():
        return
    base, wanted = _base_python(archive)
    if wanted is None:
        report.add(True, f"venv: {venv} (base {base}: its Python is not known here)")
        return
    report.add(
        wanted == versions[0],
        f"venv: {venv}, base {base} runs python{wanted[0]}.{wanted[1]}",
    )


def _is_editable(archive: zipfile.ZipFile, name: str, short: str) -> bool:
    """Whether a site-packages entry marks an editable install (code left on the build host)."""
    top_level = "/" not in short
    if top_level and short.startswith("__editable__"):
        return True
    if top_level and short.endswith(".pth"):
        lines = archive.read(name).decode(errors="replace").splitlines()
        return any(line.strip().startswith("/") for line in lines)
    if short.count("/") == 1 and short.endswith(".dist-info/direct_url.json"):
        info = json.loads(archive.read(name) or b"{}")
        return bool((info.get("dir_info") or {}).get("editable"))
    return False


def _editable_markers(archive: zipfile.ZipFile, site: str) -> list[str]:
    """Editable installs: `.pth` lines holding a path, `__editable__` hooks, direct_url flags."""
    return [
        name[len(site) :]
        for name in archive.namelist()
        if name.startswith(site) and _is_editable(archive, name, name[len(site) :])
    ]


def _check_packages(
    archive: zipfile.ZipFile, expected: list[str], report: Report, layout: _Layout
) -> None:
    """Each expected package is in site-packages as real files, and nothing is editable."""
    if layout.venv_python is None:
        return
    site = "venv/lib/python{}.{}/site-packages/".format(*layout.venv_python)
    infos = archive.infolist()
    for package in expected:
        prefix = f"{site}{package}/"
        files = [i for i in infos if i.filename.startswith(prefix) and not i.is_dir()]
        sources = [i for i in files if i.filename.endswith(".py")]
        linked = [i.filename for i in files if _is_symlink(i)]
        has_init = any(i.filename == f"{prefix}__init__.py" for i in sources)
        report.add(
            has_init and not linked,
            f"{package}: {len(sources)} .py files in {prefix.rstrip('/')}"
            + ("" if has_init else " (no __init__.py)")
            + (f" ({len(linked)} symlinks)" if linked else ""),
        )
    editable = _editable_markers(archive, site)
    report.add(not editable, f"editable installs in the venv: {editable or 'none'}")


class _NoInterpreterError(Exception):
    """No usable Python for the import check; the message says why."""


def _interpreter(explicit: str | None, version: tuple[int, int]) -> str:
    """The real executable of the Python to test with, checked to be of `version`.

    A venv's or a version manager's `python3.12` is a wrapper: ask the interpreter itself for
    the executable it runs as, since dispatch links venv/bin/python to a real interpreter.
    """
    wanted = "python{}.{}".format(*version)
    candidate = explicit or shutil.which(wanted)
    if candidate is None:
        raise _NoInterpreterError(f"no {wanted} on PATH (pass --python)")
    query = (
        "import os, sys; "
        "print(os.path.realpath(getattr(sys, '_base_executable', sys.executable))); "
        "print('%d.%d' % sys.version_info[:2])"
    )
    try:
        # A fixed argv; the interpreter is the one the caller named or python3.X from PATH.
        result = subprocess.run(  # noqa: S603
            [candidate, "-c", query], capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise _NoInterpreterError(f"{candidate} does not run ({error})") from error
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no output"])[0]
        raise _NoInterpreterError(f"{candidate} does not run ({reason})")
    executable, found = result.stdout.split()
    if found != wanted.removeprefix("python"):
        raise _NoInterpreterError(f"{executable} is Python {found}, the venv needs {wanted}")
    return executable


def _run_probe(root: pathlib.Path, executable: str, expected: list[str]) -> tuple[bool, str]:
    """Import the charm from an extracted copy the way dispatch does; explain the outcome."""
    python = root / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True, exist_ok=True)
    python.unlink(missing_ok=True)
    python.symlink_to(executable)
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "PYTHONPATH": f"{root / 'lib'}:{root / 'src'}",
        "LD_LIBRARY_PATH": f"{root / 'usr' / 'lib'}:{root / 'lib'}",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
    }
    modules = ["ops", *expected]
    try:
        # A fixed argv; the probe is a constant of this script.
        result = subprocess.run(  # noqa: S603
            [str(python), "-c", _PROBE, *modules],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=_IMPORT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return False, f"import charm did not finish in {_IMPORT_TIMEOUT_S} s"
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-3:]
        return False, f"import charm failed with {executable}: {' | '.join(tail)}"
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    venv = (root / "venv").resolve()
    outside = [
        name
        for name, file in facts["files"].items()
        if name != "charm" and venv not in pathlib.Path(file).resolve().parents
    ]
    charm_file = pathlib.Path(facts["files"]["charm"]).resolve()
    if outside or charm_file != (root / ENTRYPOINT).resolve():
        where = {name: facts["files"][name] for name in [*outside, "charm"]}
        return False, f"import charm used files outside the packed charm: {where}"
    return True, (
        f"import charm with {executable} ({facts['version']}) in {facts['seconds']:.2f} s; "
        f"{', '.join(modules)} from the packed venv"
    )


def _check_import(
    archive: zipfile.ZipFile,
    expected: list[str],
    python: str | None,
    report: Report,
    layout: _Layout,
) -> None:
    """Extract the charm to a temporary directory and import src/charm.py from it."""
    if layout.venv_python is None or not layout.safe_to_extract:
        report.add(False, "import charm: not attempted (no usable venv in the charm)")
        return
    try:
        executable = _interpreter(python, layout.venv_python)
    except _NoInterpreterError as error:
        report.add(False, f"import charm: {error}")
        return
    with tempfile.TemporaryDirectory(prefix="check-packed-") as tmp:
        archive.extractall(tmp)
        report.add(*_run_probe(pathlib.Path(tmp), executable, expected))


def check(charm: pathlib.Path, expected: list[str], python: str | None = None) -> Report:
    """Run every check on one packed charm.

    Args:
        charm: the `.charm` file.
        expected: import names of packages that must be in the venv as real files.
        python: interpreter for the import check; default `python3.X` (the venv's) from PATH.

    Returns:
        The report; `report.ok` tells whether the charm passed.
    """
    report = Report(charm)
    try:
        archive = zipfile.ZipFile(charm)
    except (OSError, zipfile.BadZipFile) as error:
        report.add(False, f"not a readable zip: {error}")
        return report
    layout = _Layout()
    with archive:
        size = charm.stat().st_size
        unpacked = sum(info.file_size for info in archive.infolist())
        report.add(
            True,
            f"{size / 1e6:.1f} MB, {len(archive.namelist())} entries, "
            f"{unpacked / 1e6:.1f} MB unpacked",
        )
        _check_names(archive, report, layout)
        _check_required(archive, report)
        _check_entrypoint(archive, report)
        _check_venv(archive, report, layout)
        _check_packages(archive, expected, report, layout)
        _check_import(archive, expected, python, report, layout)
    return report


def main(argv: list[str] | None = None) -> int:
    """Check the charms named on the command line; exit 1 if any check fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("charms", nargs="+", type=pathlib.Path, metavar="CHARM")
    parser.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="PKG",
        help="import name of a package that must be in the venv (repeatable)",
    )
    parser.add_argument(
        "--python",
        help="interpreter for the import check (default: the venv's python3.X from PATH)",
    )
    args = parser.parse_args(argv)
    missing = [str(path) for path in args.charms if not path.is_file()]
    if missing:
        parser.error(f"no such file: {', '.join(missing)}")
    reports = [check(path, args.expect, args.python) for path in args.charms]
    for report in reports:
        print(report.render(), flush=True)
    failed = [str(report.charm) for report in reports if not report.ok]
    print(f"checked {len(reports)} charm(s): " + (f"FAILED {failed}" if failed else "all passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
