#!/usr/bin/env python3
# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Stage and pack the charms of this repository: `python scripts/pack.py [charm ...]`.

Why staging: each charm reaches the shared libraries through committed symlinks
(`<charm>/vendor/<pkg> -> ../../lib/<pkg>`), and `charmcraft pack` silently drops symlinks
that point outside the charm directory (canonical/charmcraft#260). So each charm is first
copied into `.build/<charm>` with every symlink replaced by what it points to; the committed
`uv.lock` stays valid there because the vendored paths are unchanged. `charmcraft pack` then
runs in the staged copy and the result lands in `.packed/<charm name>.charm`, where the
integration tests look for it.

Each packed charm is then checked by scripts/check_packed.py: its layout, its venv's Python
against the base's, every vendored library present as real files, and `import charm` with the
packed venv on the base's Python (`--python`, default `python3.X` from PATH).

Without arguments every charm is packed. The exit status is non-zero when charmcraft is
missing, or any pack or check fails.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import yaml

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD_DIR = REPO_ROOT / ".build"
PACKED_DIR = REPO_ROOT / ".packed"
CHECK_SCRIPT = REPO_ROOT / "scripts" / "check_packed.py"

# Short name (as used by CI and `tox -e pack -- <name>`) -> charm project directory.
CHARMS: dict[str, pathlib.Path] = {
    "coordinator": REPO_ROOT / "coordinator",
    "worker": REPO_ROOT / "worker",
    "api-client": REPO_ROOT / "tests" / "integration" / "testers" / "api-client",
}

# Never part of a charm: local environments, caches, earlier build outputs, and the vendored
# libraries' own test suites (the charm ships only their sources).
_IGNORED_NAMES = {".venv", ".tox", "__pycache__", ".pytest_cache", ".ruff_cache"}
_IGNORED_SUFFIXES = (".charm", ".pyc")


class PackError(RuntimeError):
    """A charm could not be staged or packed; the message says why."""


def _ignore(directory: str, names: list[str]) -> set[str]:
    """Tell `shutil.copytree` which entries of `directory` to leave out of the staged copy."""
    skipped = {
        name for name in names if name in _IGNORED_NAMES or name.endswith(_IGNORED_SUFFIXES)
    }
    if pathlib.Path(directory).parent.name == "vendor" and "tests" in names:
        skipped.add("tests")
    return skipped


def stage(charm_dir: pathlib.Path, destination: pathlib.Path) -> pathlib.Path:
    """Copy `charm_dir` to `destination` with every symlink dereferenced.

    Args:
        charm_dir: the charm project (holds charmcraft.yaml, pyproject.toml, uv.lock).
        destination: the staging directory; replaced if it exists.

    Returns:
        The staged directory, ready for `charmcraft pack`.

    Raises:
        PackError: `charm_dir` is not a charm project, or a vendored symlink is dangling.
    """
    if not (charm_dir / "charmcraft.yaml").is_file():
        raise PackError(f"{charm_dir} has no charmcraft.yaml")
    vendor = charm_dir / "vendor"
    if vendor.is_dir():
        for link in vendor.iterdir():
            if not link.exists():
                raise PackError(f"{link} points to {link.readlink()}, which does not exist")
    if destination.exists():
        shutil.rmtree(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(charm_dir, destination, symlinks=False, ignore=_ignore)
    return destination


def charm_name(charm_dir: pathlib.Path) -> str:
    """Return the `name` declared in the charm's charmcraft.yaml."""
    metadata = yaml.safe_load((charm_dir / "charmcraft.yaml").read_text())
    return str(metadata["name"])


def builds_on_host() -> bool:
    """Whether charmcraft will build on this machine instead of in an LXD instance."""
    variables = ("CRAFT_BUILD_ENVIRONMENT", "CHARMCRAFT_BUILD_ENVIRONMENT")
    return any(os.environ.get(name, "").strip().lower() == "host" for name in variables)


def host_build_env(python: str, bin_dir: pathlib.Path) -> dict[str, str]:
    """The environment for a host build: `python3` in `bin_dir`, first on PATH, is `python`.

    On the host, charmcraft's uv plugin builds the charm's venv with the first `python3` on
    PATH, and tox, tox-uv and `uv run` all put their own Python before the caller's PATH: the
    charm would get the tooling's Python instead of its base's.
    """
    query = (
        "import os, sys; print(os.path.realpath(getattr(sys, '_base_executable', sys.executable)))"
    )
    try:
        # A fixed argv; the interpreter is the one the caller named.
        result = subprocess.run(  # noqa: S603
            [python, "-c", query], capture_output=True, text=True, check=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise PackError(f"--python {python} does not run: {error}") from error
    (bin_dir / "python3").symlink_to(result.stdout.strip())
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", os.defpath)])
    return env


def pack(short_name: str, charmcraft: str, env: dict[str, str] | None = None) -> pathlib.Path:
    """Stage one charm, pack it with charmcraft (in `env`) and move it to `.packed/`."""
    charm_dir = CHARMS[short_name]
    staged = stage(charm_dir, BUILD_DIR / short_name)
    for old in staged.glob("*.charm"):
        old.unlink()
    print(f"packing {short_name} in {staged}", flush=True)
    # A fixed argv; charmcraft comes from PATH, like any build tool the developer runs.
    result = subprocess.run(  # noqa: S603
        [charmcraft, "pack", "--verbose"], cwd=staged, env=env, check=False
    )
    if result.returncode != 0:
        raise PackError(f"charmcraft pack failed for {short_name} (exit {result.returncode})")
    built = sorted(staged.glob("*.charm"))
    if len(built) != 1:
        raise PackError(f"expected one .charm in {staged}, found {[p.name for p in built]}")
    PACKED_DIR.mkdir(exist_ok=True)
    target = PACKED_DIR / f"{charm_name(charm_dir)}.charm"
    shutil.move(built[0], target)
    print(f"packed {target.relative_to(REPO_ROOT)}", flush=True)
    return target


def check_packed(short_name: str, target: pathlib.Path, python: str | None) -> None:
    """Run scripts/check_packed.py on a packed charm, expecting each vendored library in it."""
    vendor = CHARMS[short_name] / "vendor"
    argv = [sys.executable, str(CHECK_SCRIPT), str(target)]
    if vendor.is_dir():
        for package in sorted(link.name for link in vendor.iterdir()):
            argv += ["--expect", package]
    if python:
        argv += ["--python", python]
    # A fixed argv: this interpreter running the repository's own check script.
    result = subprocess.run(argv, check=False)  # noqa: S603
    if result.returncode != 0:
        raise PackError(f"the packed {short_name} charm failed its checks (see above)")


def main(argv: list[str] | None = None) -> int:
    """Pack the charms named on the command line (all of them by default)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("charms", nargs="*", metavar="charm", help=f"any of {', '.join(CHARMS)}")
    parser.add_argument(
        "--python",
        metavar="PY",
        help="the base's Python (python3.12 for ubuntu@24.04): the import check runs on it and,"
        " with CRAFT_BUILD_ENVIRONMENT=host, the charm's venv is built with it",
    )
    args = parser.parse_args(argv)
    names: list[str] = args.charms or list(CHARMS)
    unknown = sorted(set(names) - set(CHARMS))
    if unknown:
        parser.error(f"unknown charm(s) {', '.join(unknown)}; choose from {', '.join(CHARMS)}")

    charmcraft = shutil.which("charmcraft")
    if charmcraft is None:
        print(
            "error: charmcraft is not installed, so nothing can be packed.\n"
            "Install it with `sudo snap install charmcraft --classic` (it needs LXD, or set\n"
            "CRAFT_BUILD_ENVIRONMENT=host on a matching Ubuntu host), then rerun `tox -e pack`.\n"
            "scripts/README-pack.md shows how to pack and check on other machines.",
            file=sys.stderr,
        )
        return 2
    if builds_on_host() and not args.python:
        parser.error(
            "a host build (CRAFT_BUILD_ENVIRONMENT=host) needs --python, the base's Python"
        )
    try:
        with tempfile.TemporaryDirectory(prefix="pack-python-") as bin_dir:
            env = host_build_env(args.python, pathlib.Path(bin_dir)) if builds_on_host() else None
            for name in names:
                check_packed(name, pack(name, charmcraft, env), args.python)
    except PackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
