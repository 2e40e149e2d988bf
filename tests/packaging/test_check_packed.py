# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""scripts/check_packed.py: what it accepts and, above all, what it refuses.

Each test writes a small `.charm` (a zip laid out like charmcraft's) whose venv holds tiny
stand-ins for ops and the two libraries, for the Python running the tests: the manifest's
Ubuntu base is mapped to that Python, so the import check runs for real on this machine.
The host's own ops and libraries are importable here, so a passing import also proves that
the check only sees what is inside the charm.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import stat
import sys
import zipfile
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import types

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
LIBRARIES = ["service_mesh", "coordinated_workers"]
PYTHON = f"python{sys.version_info.major}.{sys.version_info.minor}"
SITE = f"venv/lib/{PYTHON}/site-packages/"

DISPATCH = """#!/bin/sh
dispatch_path="$(dirname $(realpath $0))"
export PYTHONPATH="${dispatch_path}/lib:${dispatch_path}/src"
exec "${dispatch_path}/venv/bin/python" "${dispatch_path}/src/charm.py"
"""
CHARM_PY = """import ops
import service_mesh
import coordinated_workers

class Charm:
    pass

if __name__ == "__main__":
    ops.main(Charm)
"""


@pytest.fixture(scope="module")
def checker() -> types.ModuleType:
    """Import scripts/check_packed.py by path: it is a script, not part of any package."""
    path = REPO_ROOT / "scripts" / "check_packed.py"
    spec = importlib.util.spec_from_file_location("check_packed_script", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first: its dataclasses resolve their annotations through sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _base_runs_this_python(checker: types.ModuleType, monkeypatch: pytest.MonkeyPatch):
    """Let ubuntu@24.04 run the Python of the tests, so the import check can run here."""
    monkeypatch.setitem(checker.BASE_PYTHON, "24.04", sys.version_info[:2])


def _files(**overrides: str | None) -> dict[str, str]:
    """A well-formed charm's files; an override of None removes the file."""
    files = {
        "manifest.yaml": "bases:\n- name: ubuntu\n  channel: '24.04'\n  architectures: [amd64]\n",
        "metadata.yaml": "name: test-charm\n",
        "dispatch": DISPATCH,
        "src/charm.py": CHARM_PY,
        "venv/pyvenv.cfg": "include-system-site-packages = false\n",
        f"{SITE}ops/__init__.py": "def main(charm_class):\n    raise SystemExit(0)\n",
        f"{SITE}service_mesh/__init__.py": "",
        f"{SITE}service_mesh/_policies.py": "",
        f"{SITE}coordinated_workers/__init__.py": "",
    }
    for name, content in overrides.items():
        if content is None:
            files.pop(name, None)
        else:
            files[name] = content
    return files


def _write(
    path: pathlib.Path,
    files: dict[str, str],
    *,
    modes: dict[str, int] | None = None,
    symlinks: dict[str, str] | None = None,
) -> pathlib.Path:
    """Write a charm zip; dispatch is executable unless `modes` says otherwise."""
    modes = {"dispatch": 0o755, **(modes or {})}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | modes.get(name, 0o644)) << 16
            archive.writestr(info, content)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


def _failures(report: Any) -> list[str]:
    return [message for passed, message in report.lines if not passed]


def test_a_complete_charm_passes(checker: types.ModuleType, tmp_path: pathlib.Path):
    report = checker.check(_write(tmp_path / "ok.charm", _files()), LIBRARIES)
    assert report.ok, report.render()
    rendered = report.render()
    assert f"venv: {PYTHON}, base ubuntu@24.04 runs {PYTHON}" in rendered
    assert "ops, service_mesh, coordinated_workers from the packed venv" in rendered


def test_a_missing_library_fails_even_though_the_host_has_it(
    checker: types.ModuleType, tmp_path: pathlib.Path
):
    assert importlib.util.find_spec("coordinated_workers") is not None
    files = _files(**{f"{SITE}coordinated_workers/__init__.py": None})
    report = checker.check(_write(tmp_path / "missing.charm", files), LIBRARIES)
    failures = _failures(report)
    assert any(m.startswith("coordinated_workers: 0 .py files") for m in failures)
    assert any("No module named 'coordinated_workers'" in m for m in failures)


def test_a_library_stored_as_a_symlink_fails(checker: types.ModuleType, tmp_path: pathlib.Path):
    name = f"{SITE}service_mesh/__init__.py"
    charm = _write(
        tmp_path / "link.charm",
        _files(**{name: None}),
        symlinks={name: "../../../../../../lib/service_mesh/src/service_mesh/__init__.py"},
    )
    failures = _failures(checker.check(charm, LIBRARIES))
    assert any(m.startswith("service_mesh:") and "1 symlinks" in m for m in failures)


def test_an_editable_install_pointing_at_the_build_host_fails(
    checker: types.ModuleType, tmp_path: pathlib.Path
):
    source = tmp_path / "build-host" / "src"  # where an editable install would point
    (source / "service_mesh").mkdir(parents=True)
    (source / "service_mesh" / "__init__.py").write_text("")
    direct_url = {"url": f"file://{source.parent}", "dir_info": {"editable": True}}
    files = _files(
        **{
            f"{SITE}service_mesh/__init__.py": None,
            f"{SITE}service_mesh/_policies.py": None,
            f"{SITE}_service_mesh.pth": f"{source}\n",
            f"{SITE}service_mesh-0.1.0.dist-info/direct_url.json": json.dumps(direct_url),
        }
    )
    failures = _failures(checker.check(_write(tmp_path / "editable.charm", files), LIBRARIES))
    assert any("_service_mesh.pth" in m and "direct_url.json" in m for m in failures)
    # The .pth makes the import succeed, from the build host's files: that must fail too.
    assert any(m.startswith("import charm used files outside the packed charm") for m in failures)


def test_a_venv_for_another_python_than_the_base_fails(
    checker: types.ModuleType, tmp_path: pathlib.Path
):
    other = f"python{sys.version_info.major}.{sys.version_info.minor - 1}"
    files = {name.replace(PYTHON, other): content for name, content in _files().items()}
    report = checker.check(_write(tmp_path / "py.charm", files), LIBRARIES, sys.executable)
    failures = _failures(report)
    assert f"venv: {other}, base ubuntu@24.04 runs {PYTHON}" in failures
    assert any(m.endswith(f"the venv needs {other}") for m in failures)


def test_an_entry_point_that_does_not_call_ops_main_fails(
    checker: types.ModuleType, tmp_path: pathlib.Path
):
    files = _files(**{"src/charm.py": CHARM_PY.replace("ops.main(Charm)", "Charm()")})
    failures = _failures(checker.check(_write(tmp_path / "nomain.charm", files), LIBRARIES))
    assert failures == ["src/charm.py: does NOT call ops.main"]


def test_ops_main_imported_under_another_name_counts(
    checker: types.ModuleType, tmp_path: pathlib.Path
):
    source = "from ops import main as run\nimport service_mesh\nif __name__ == '__main__':\n"
    files = _files(**{"src/charm.py": source + "    run(object)\n"})
    report = checker.check(_write(tmp_path / "alias.charm", files), LIBRARIES)
    assert report.ok, report.render()


def test_a_dispatch_that_is_not_executable_fails(
    checker: types.ModuleType, tmp_path: pathlib.Path
):
    charm = _write(tmp_path / "noexec.charm", _files(), modes={"dispatch": 0o644})
    failures = _failures(checker.check(charm, LIBRARIES))
    assert len(failures) == 1
    assert "dispatch (NOT executable" in failures[0]


def test_a_charm_that_breaks_on_import_fails(checker: types.ModuleType, tmp_path: pathlib.Path):
    files = _files(**{"src/charm.py": CHARM_PY + "\nraise RuntimeError('broken at import')\n"})
    failures = _failures(checker.check(_write(tmp_path / "broken.charm", files), LIBRARIES))
    assert len(failures) == 1
    assert "RuntimeError: broken at import" in failures[0]


def test_missing_required_files_fail(checker: types.ModuleType, tmp_path: pathlib.Path):
    files = _files(**{"dispatch": None, "metadata.yaml": None})
    failures = _failures(checker.check(_write(tmp_path / "bare.charm", files), LIBRARIES))
    assert "layout: missing ['metadata.yaml', 'dispatch'], symlinked none" in failures


def test_entries_escaping_the_charm_are_never_extracted(
    checker: types.ModuleType, tmp_path: pathlib.Path
):
    outside = tmp_path / "escaped.txt"
    files = _files(**{f"../../../../../../../../..{outside}": "written outside"})
    failures = _failures(checker.check(_write(tmp_path / "evil.charm", files), LIBRARIES))
    assert any(m.startswith("entries escape the charm directory") for m in failures)
    assert "import charm: not attempted (no usable venv in the charm)" in failures
    assert not outside.exists()


def test_a_file_that_is_not_a_zip_fails(checker: types.ModuleType, tmp_path: pathlib.Path):
    path = tmp_path / "junk.charm"
    path.write_text("not a zip")
    failures = _failures(checker.check(path, LIBRARIES))
    assert len(failures) == 1
    assert failures[0].startswith("not a readable zip")


def test_the_command_line_reports_and_exits_non_zero_on_failure(
    checker: types.ModuleType, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
):
    good = _write(tmp_path / "good.charm", _files())
    bad = _write(tmp_path / "bad.charm", _files(**{"src/charm.py": None}))
    assert checker.main([str(good), "--expect", "service_mesh"]) == 0
    assert "all passed" in capsys.readouterr().out
    assert checker.main([str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"FAILED ['{bad}']" in out
    assert "  FAIL layout: missing ['src/charm.py']" in out
