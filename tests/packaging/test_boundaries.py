# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Architecture rules the libraries keep, checked on their source.

- Dependencies point one way: ``service_mesh`` <- ``coordinated_workers`` <- charms.
- No module reaches into another distribution's private names (``_x``), so an upstream
  refactor cannot silently break us (upstream coordinated-workers imports a Loki lib's
  ``_PebbleLogClient``).
- Importing a library has no side effects that can fail: no Kubernetes config, no charm libs.
"""

from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
LIBS = {
    "service_mesh": REPO / "lib/service_mesh/src",
    "coordinated_workers": REPO / "lib/coordinated_workers/src",
}


def _modules():
    for package, src in LIBS.items():
        for path in sorted((src / package).rglob("*.py")):
            yield package, path


def _imported(tree: ast.Module) -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@pytest.mark.parametrize(("package", "path"), list(_modules()), ids=lambda v: str(v)[-60:])
def test_no_private_names_of_other_distributions(package: str, path: pathlib.Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for module, names in _imported(tree):
        top = module.split(".")[0]
        if top == package:
            continue
        private = [part for part in module.split(".") if _is_private(part)]
        private += [name for name in names if _is_private(name)]
        assert not private, f"{path.name} imports private {private} from {module}"
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and _is_private(str(node.args[1].value))
        ):
            pytest.fail(f"{path.name}: getattr of a private name {node.args[1].value!r}")


@pytest.mark.parametrize(("package", "path"), list(_modules()), ids=lambda v: str(v)[-60:])
def test_service_mesh_does_not_depend_on_coordinated_workers(package: str, path: pathlib.Path):
    if package != "service_mesh":
        return
    tree = ast.parse(path.read_text(), filename=str(path))
    assert all(module.split(".")[0] != "coordinated_workers" for module, _ in _imported(tree))


def test_importing_the_libraries_needs_no_cluster_and_no_charm_libs(tmp_path: pathlib.Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "JUJU"))}
    env["HOME"] = str(tmp_path)
    modules = [
        "service_mesh",
        "service_mesh.istio",
        "coordinated_workers",
        "coordinated_workers._coordinator",
        "coordinated_workers._worker",
    ]
    code = (
        "; ".join(f"import {m}" for m in modules)
        + "; import sys; assert 'charms' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, check=True)


@pytest.mark.parametrize("charm", ["coordinator", "worker"])
def test_the_reference_charms_import_the_libraries_from_their_roots_only(charm: str):
    path = REPO / charm / "src/charm.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    deep = [
        module
        for module, _ in _imported(tree)
        if module.split(".")[0] in LIBS and module not in LIBS
    ]
    assert deep == [], f"{charm} imports {deep}; use the package root"
