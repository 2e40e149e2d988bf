# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Every command tools/plan/README.md documents runs as written, from the repository root.

``tox -e plan -- ARGS`` is ``python -m tools.plan ARGS`` (checked against tox.ini), so each
documented command is run in process through ``main``. Only the ``--output`` directory is moved
into the test's temporary directory, so that the test leaves nothing in the checkout.
"""

from __future__ import annotations

import configparser
import pathlib
import re
import shlex

import pytest

from tools.plan.__main__ import main

ROOT = pathlib.Path(__file__).resolve().parents[2]
README = ROOT / "tools" / "plan" / "README.md"
_BLOCK = re.compile(r"```bash\n(.*?)```", re.DOTALL)


def documented_commands() -> list[str]:
    commands = [
        line.split("#", 1)[0].strip()
        for block in _BLOCK.findall(README.read_text(encoding="utf-8"))
        for line in block.splitlines()
    ]
    return [command for command in commands if command.startswith("tox -e plan")]


def test_the_readme_documents_the_main_commands():
    commands = documented_commands()
    assert "tox -e plan" in commands
    for option in ("--show", "--output", "--format mermaid", "--diff"):
        assert any(option in command for command in commands), option


def test_tox_plan_env_is_the_python_module():
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    command = tox["testenv:plan"]["commands"].strip()
    assert command.endswith("python -m tools.plan {posargs}")


def test_the_root_readme_links_the_plan_readme():
    assert "(tools/plan/README.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("command", documented_commands())
def test_documented_command_runs_as_written(command, tmp_path, monkeypatch, capsys):
    words = shlex.split(command)
    assert words[:3] == ["tox", "-e", "plan"]
    args = words[4:] if words[3:4] == ["--"] else words[3:]
    if "--output" in args:
        index = args.index("--output") + 1
        args[index] = str(tmp_path / args[index])
    monkeypatch.chdir(ROOT)
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out
    if "--output" in args:
        assert sorted(p.name for p in pathlib.Path(args[args.index("--output") + 1]).iterdir())
