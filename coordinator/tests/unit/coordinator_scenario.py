# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Shared scenario helpers for the coordinator charm tests (charm class, state builders)."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

from ops import testing

CHARM_DIR = pathlib.Path(__file__).parents[2]
MODEL = "test"
APP = "coordinator-k8s"


def _load_charm_module():
    spec = importlib.util.spec_from_file_location(
        "coordinator_charm", CHARM_DIR / "src" / "charm.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # ops.testing finds charmcraft.yaml from the module file
    spec.loader.exec_module(module)
    return module


charm_module = _load_charm_module()


def containers() -> list[testing.Container]:
    """The nginx and exporter containers, reachable, with the execs the charm may run."""
    return [
        testing.Container(
            "nginx",
            can_connect=True,
            execs={testing.Exec(["nginx", "-t"]), testing.Exec(["nginx", "-s", "reload"])},
        ),
        testing.Container("nginx-prometheus-exporter", can_connect=True),
    ]


def state(*relations: testing.RelationBase, leader: bool = True, **kwargs) -> testing.State:
    kwargs.setdefault("containers", containers())
    return testing.State(
        leader=leader, model=testing.Model(name=MODEL), relations=list(relations), **kwargs
    )
