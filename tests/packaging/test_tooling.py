# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The repository's tooling keeps its promises: quiet tox, honest benchmarks, clear names.

These read the committed configuration (tox.ini, pyproject.toml files, README) rather than run
tox, which would take minutes; each assertion names the promise it guards.
"""

from __future__ import annotations

import configparser
import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
TOX = configparser.ConfigParser(interpolation=None)
TOX.read(REPO / "tox.ini")


def _commands(section: str) -> list[str]:
    raw = TOX.get(section, "commands", fallback="")
    return [line.strip() for line in raw.splitlines() if line.strip()]


def _env_sections() -> list[str]:
    return [name for name in TOX.sections() if name.startswith("testenv:")]


def test_a_bare_tox_rewrites_no_file():
    env_list = {e.strip() for e in TOX.get("tox", "env_list").replace("\n", ",").split(",")}
    assert "format" not in env_list
    assert {"lint", "unit"} <= env_list


def test_uv_run_never_sees_toxs_virtual_env():
    # tox sets VIRTUAL_ENV to its own env; uv then warns on every `uv run` in the project .venv.
    assert "env -u VIRTUAL_ENV uv run" in TOX.get("testenv", "uv_run")
    for section in _env_sections():
        for command in _commands(section):
            assert not re.search(r"(^|\s)uv run\b", command), f"{section}: {command}"


def test_uv_does_not_recompile_bytecode_on_every_command():
    # UV_COMPILE_BYTECODE makes every `uv run` recompile and print "Bytecode compiled ...".
    for section in ["testenv", *_env_sections()]:
        assert "UV_COMPILE_BYTECODE" not in TOX.get(section, "setenv", fallback="")


def test_bench_runs_every_benchmark_and_still_fails_on_a_missed_target():
    commands = _commands("testenv:bench")
    scripts = sorted(path.name for path in (REPO / "benchmarks").glob("*.py"))
    assert sorted(command.rsplit("/", 1)[-1] for command in commands) == scripts
    assert not any(command.startswith("-") for command in commands)  # "-" ignores the failure
    assert TOX.getboolean("testenv:bench", "ignore_errors")


@pytest.mark.parametrize(
    "script", ["coordinated_workers.py", "charms.py", "plan.py", "observers.py"]
)
def test_benchmarks_with_targets_exit_non_zero_on_fail(script: str):
    source = (REPO / "benchmarks" / script).read_text()
    assert "return 1 if failed else 0" in source
    assert "figure, no target" in source


def test_every_tox_env_is_in_the_readme_development_table():
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Development") :]
    for section in _env_sections():
        env = section.removeprefix("testenv:")
        assert f"tox -e {env}`" in table, f"{env} is missing from the README's Development table"


def test_nothing_points_outside_the_repository():
    outside = re.compile(
        r"toolchain\.md|\.\./shared|shared/reference|issue 6\b|targets of the issue"
    )
    tracked = [
        *REPO.glob("*.md"),
        *REPO.glob("docs/*.md"),
        *REPO.glob("benchmarks/*.py"),
        *REPO.glob("lib/*/README.md"),
        REPO / "tox.ini",
    ]
    for path in tracked:
        assert not outside.search(path.read_text()), path.relative_to(REPO)


def test_our_distribution_is_not_named_like_the_published_coordinated_workers():
    # Read as text (tomllib needs Python 3.11; the project supports 3.10).
    library = (REPO / "lib/coordinated_workers/pyproject.toml").read_text()
    assert re.search(r'^name = "mesh-coordinated-workers"$', library, re.MULTILINE)
    for directory in (".", "coordinator", "worker"):
        text = (REPO / directory / "pyproject.toml").read_text()
        assert not re.search(r'^\s*"coordinated-workers",$', text, re.MULTILINE), directory
        assert re.search(r'^\s*"mesh-coordinated-workers",$', text, re.MULTILINE), directory
        assert re.search(r"^mesh-coordinated-workers = \{ path = ", text, re.MULTILINE), directory


def test_every_source_file_names_its_licence():
    """LICENSE is Apache-2.0; each Python or shell file says so in an SPDX line at its top."""
    import subprocess

    listed = subprocess.run(
        ["git", "ls-files", "*.py", "*.sh", ".ci/run", ".ci/setup"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    sources = [REPO / name for name in listed if "vendor/" not in name]
    sources = [path for path in sources if path.is_file() and not path.is_symlink()]
    assert sources, "git listed no source files"
    unlicensed = [
        str(path.relative_to(REPO))
        for path in sources
        if "SPDX-License-Identifier: Apache-2.0"
        not in "".join(path.read_text().splitlines(True)[:3])
    ]
    assert not unlicensed
    assert "Apache License" in (REPO / "LICENSE").read_text()
