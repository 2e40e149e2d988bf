# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The deploy commands in the READMEs work as written, and agree with the charms and tests.

They are copied by hand, so these checks keep them honest: every `--resource` is the image
the charm pins in charmcraft.yaml, every `./.packed/*.charm` is a file `tox -e pack` writes,
and the Istio channel is the one the integration tests and the CI workflow use.
"""

from __future__ import annotations

import ast
import pathlib
import re

import pytest
import yaml

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
READMES = ["README.md", "coordinator/README.md", "worker/README.md"]
CHARM_DIRS = ["coordinator", "worker", "tests/integration/testers/api-client"]


def _upstream_sources() -> dict[str, str]:
    """Every OCI resource of every charm -> its pinned `upstream-source`."""
    sources: dict[str, str] = {}
    for charm_dir in CHARM_DIRS:
        metadata = yaml.safe_load((REPO_ROOT / charm_dir / "charmcraft.yaml").read_text())
        for name, spec in (metadata.get("resources") or {}).items():
            sources[name] = spec["upstream-source"]
    return sources


def _packed_names() -> set[str]:
    """The files `tox -e pack` writes into .packed/: `<charmcraft name>.charm`."""
    names = set()
    for charm_dir in CHARM_DIRS:
        metadata = yaml.safe_load((REPO_ROOT / charm_dir / "charmcraft.yaml").read_text())
        names.add(f"{metadata['name']}.charm")
    return names


def _commands(readme: str) -> list[str]:
    """The shell commands in a README's ```bash blocks, continuation lines joined."""
    text = (REPO_ROOT / readme).read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    return [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]


def _deploys(readme: str) -> list[str]:
    return [command for command in _commands(readme) if command.startswith("juju deploy ./")]


@pytest.mark.parametrize("readme", READMES)
def test_local_deploys_give_every_resource_as_pinned(readme: str):
    sources = _upstream_sources()
    deploys = _deploys(readme)
    assert deploys, f"{readme} shows no `juju deploy` of a packed charm"
    for command in deploys:
        given = dict(re.findall(r"--resource (\S+?)=(\S+)", command))
        charm = re.search(r"juju deploy \./\.packed/(\S+)\.charm", command)
        assert charm, f"{readme}: deploys a charm from outside .packed/: {command}"
        charm_dir = {"coordinator-k8s": "coordinator", "worker-k8s": "worker"}[charm.group(1)]
        metadata = yaml.safe_load((REPO_ROOT / charm_dir / "charmcraft.yaml").read_text())
        wanted = {name: sources[name] for name in metadata.get("resources") or {}}
        assert given == wanted, f"{readme}: {command}"


@pytest.mark.parametrize("readme", READMES)
def test_packed_paths_are_what_pack_writes(readme: str):
    paths = re.findall(r"\./\.packed/(\S+\.charm)", (REPO_ROOT / readme).read_text())
    assert set(paths) <= _packed_names(), f"{readme}: {sorted(set(paths) - _packed_names())}"


def _test_default_istio_channel() -> str:
    """The default of `ISTIO_CHANNEL` in tests/integration/test_mesh.py."""
    tree = ast.parse((REPO_ROOT / "tests/integration/test_mesh.py").read_text())
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and [getattr(t, "id", None) for t in node.targets] == ["ISTIO_CHANNEL"]
            and isinstance(node.value, ast.Call)
        ):
            default = node.value.args[1]
            assert isinstance(default, ast.Constant)
            return str(default.value)
    raise AssertionError("test_mesh.py defines no ISTIO_CHANNEL = os.environ.get(..., default)")


def test_one_istio_channel_everywhere():
    channel = _test_default_istio_channel()
    readme = [c for c in _commands("README.md") if re.search(r"juju deploy .*istio", c)]
    assert len(readme) == 2, readme  # istio-k8s and istio-beacon-k8s
    for command in readme:
        assert f"--channel {channel} " in f"{command} ", command
    workflow = yaml.safe_load((REPO_ROOT / ".github/workflows/ci.yaml").read_text())
    steps = workflow["jobs"]["integration"]["steps"]
    channels = {
        step["env"]["ISTIO_CHANNEL"] for step in steps if "ISTIO_CHANNEL" in step.get("env", {})
    }
    assert channels == {channel}


def test_readme_sets_the_platform_for_canonical_kubernetes():
    istio = [c for c in _commands("README.md") if re.search(r"juju deploy .*istio-k8s ", c)]
    assert len(istio) == 1 and "--config platform= " in f"{istio[0]} ", istio
