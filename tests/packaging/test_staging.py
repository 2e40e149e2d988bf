# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The charms' packaging: charmcraft.yaml hygiene and the staging step of `tox -e pack`.

charmcraft cannot run here, so these tests check what `charmcraft pack` relies on: the staged
copy made by scripts/pack.py is self-contained (no symlinks, both libraries' sources present)
and its committed uv.lock still matches its pyproject.toml once the real `lib/` is out of
reach, which is the exact state charmcraft's uv plugin builds from.
"""

from __future__ import annotations

import importlib.util
import pathlib
import re
import shutil
import subprocess
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:
    import types

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
CHARM_DIRS = {
    "coordinator": REPO_ROOT / "coordinator",
    "worker": REPO_ROOT / "worker",
    "api-client": REPO_ROOT / "tests" / "integration" / "testers" / "api-client",
}
VENDORED = {
    "coordinator": ("coordinated_workers", "service_mesh"),
    "worker": ("coordinated_workers", "service_mesh"),
}


def _load_pack_script() -> types.ModuleType:
    """Import scripts/pack.py by path: it is a script, not part of any package."""
    spec = importlib.util.spec_from_file_location("pack_script", REPO_ROOT / "scripts" / "pack.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pack_script() -> types.ModuleType:
    return _load_pack_script()


@pytest.fixture(scope="module")
def staged(pack_script: types.ModuleType, tmp_path_factory: pytest.TempPathFactory):
    """Stage every charm two levels below a fresh tmp dir, so `../../lib` resolves to nothing."""
    root = tmp_path_factory.mktemp("stage") / "a" / "b"
    assert not (root / ".." / ".." / "lib").exists()
    return {name: pack_script.stage(path, root / name) for name, path in CHARM_DIRS.items()}


def _charmcraft(name: str) -> dict[str, Any]:
    return yaml.safe_load((CHARM_DIRS[name] / "charmcraft.yaml").read_text())


def test_the_pack_script_knows_every_charm(pack_script: types.ModuleType):
    assert {name: path.resolve() for name, path in pack_script.CHARMS.items()} == {
        name: path.resolve() for name, path in CHARM_DIRS.items()
    }


@pytest.mark.parametrize("name", ["coordinator", "worker"])
def test_vendor_holds_committed_symlinks_into_lib(name: str):
    for package in VENDORED[name]:
        link = CHARM_DIRS[name] / "vendor" / package
        assert link.is_symlink(), f"{link} must be a symlink so lib/ stays the single source"
        assert link.resolve() == (REPO_ROOT / "lib" / package).resolve()


@pytest.mark.parametrize("name", list(CHARM_DIRS))
def test_staged_copy_has_no_symlinks(name: str, staged: dict[str, pathlib.Path]):
    links = [p for p in staged[name].rglob("*") if p.is_symlink()]
    assert links == []


@pytest.mark.parametrize("name", list(CHARM_DIRS))
def test_staged_copy_leaves_out_local_clutter(name: str, staged: dict[str, pathlib.Path]):
    names = {p.name for p in staged[name].rglob("*")}
    assert not names & {".venv", ".tox", "__pycache__"}
    assert not [n for n in names if n.endswith(".charm")]


@pytest.mark.parametrize("name", ["coordinator", "worker"])
def test_staged_copy_carries_both_libraries_sources(name: str, staged: dict[str, pathlib.Path]):
    for package in VENDORED[name]:
        source = REPO_ROOT / "lib" / package
        copy = staged[name] / "vendor" / package
        assert (copy / "pyproject.toml").read_text() == (source / "pyproject.toml").read_text()
        expected = sorted(
            p.relative_to(source).as_posix()
            for p in (source / "src").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        )
        copied = sorted(
            p.relative_to(copy).as_posix() for p in (copy / "src").rglob("*") if p.is_file()
        )
        assert copied == expected
        assert not (copy / "tests").exists(), "library test suites do not belong in a charm"


@pytest.mark.parametrize("name", list(CHARM_DIRS))
def test_committed_lock_still_holds_in_the_staged_copy(name: str, staged: dict[str, pathlib.Path]):
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH; the lock check needs it (the tox envs always have it)")
    result = subprocess.run(
        [uv, "lock", "--check", "--offline", "--directory", str(staged[name])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", list(CHARM_DIRS))
def test_charmcraft_yaml_follows_the_conventions(name: str):
    meta = _charmcraft(name)
    assert meta["type"] == "charm"
    assert meta["base"] == "ubuntu@24.04"
    assert meta["platforms"] == {"amd64": None}
    assert meta["assumes"] == ["k8s-api", "juju >= 3.6"]
    assert meta["parts"] == {
        "charm": {"plugin": "uv", "source": ".", "build-snaps": ["astral-uv"]}
    }
    for key in ("summary", "description"):
        assert str(meta[key]).strip()


@pytest.mark.parametrize("name", list(CHARM_DIRS))
def test_every_endpoint_says_whether_it_is_optional(name: str):
    meta = _charmcraft(name)
    endpoints = {
        endpoint: spec
        for kind in ("provides", "requires", "peers")
        for endpoint, spec in (meta.get(kind) or {}).items()
    }
    assert endpoints
    missing = [endpoint for endpoint, spec in endpoints.items() if "optional" not in spec]
    assert missing == []


@pytest.mark.parametrize("name", list(CHARM_DIRS))
def test_every_resource_is_pinned_by_tag_and_digest(name: str):
    meta = _charmcraft(name)
    resources: dict[str, dict[str, str]] = meta.get("resources") or {}
    containers: dict[str, dict[str, str]] = meta.get("containers") or {}
    assert {c["resource"] for c in containers.values()} == set(resources)
    for resource, spec in resources.items():
        source = spec["upstream-source"]
        image, _, digest = source.partition("@sha256:")
        assert re.fullmatch("[0-9a-f]{64}", digest), f"{resource}: no sha256 digest"
        assert ":" in image.rsplit("/", 1)[-1], f"{resource}: no tag before the digest"


# Both charms size their workload container; empty means "not set" (issue 16).
_RESOURCE_OPTIONS = dict.fromkeys(
    ("cpu_limit", "memory_limit", "cpu_request", "memory_request"), ("string", "")
)


def test_the_charms_declare_the_designed_endpoints():
    coordinator = _charmcraft("coordinator")
    assert set(coordinator["provides"]) == {
        "cluster",
        "metrics-endpoint",
        "api",
        "provide-cmr-mesh",
        "grafana-dashboard",
    }
    assert set(coordinator["requires"]) == {
        "service-mesh",
        "require-cmr-mesh",
        "logging",
        "charm-tracing",
        "workload-tracing",
        "send-remote-write",
        "s3",
        "certificates",
    }
    assert coordinator["requires"]["certificates"]["interface"] == "tls-certificates"
    assert coordinator["requires"]["certificates"]["limit"] == 1
    assert set(coordinator["containers"]) == {"nginx", "nginx-prometheus-exporter"}
    worker = _charmcraft("worker")
    assert set(worker["requires"]) == {"cluster"}
    assert worker["requires"]["cluster"]["limit"] == 1
    options = worker["config"]["options"]
    assert {k: (v["type"], v["default"]) for k, v in options.items()} == {
        "role-all": ("boolean", True),
        "role-read": ("boolean", False),
        "role-write": ("boolean", False),
        **_RESOURCE_OPTIONS,
    }
    coordinator_options = coordinator["config"]["options"]
    assert {k: (v["type"], v["default"]) for k, v in coordinator_options.items()} == (
        _RESOURCE_OPTIONS
    )
