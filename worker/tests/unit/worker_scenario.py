# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Shared scenario helpers for the worker charm tests (charm class, state builders)."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

from ops import testing

CHARM_DIR = pathlib.Path(__file__).parents[2]
MODEL = "test"
APP = "worker-read"


def _load_charm_module():
    spec = importlib.util.spec_from_file_location("worker_charm", CHARM_DIR / "src" / "charm.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # ops.testing finds charmcraft.yaml from the module file
    spec.loader.exec_module(module)
    return module


charm_module = _load_charm_module()


def workload(**kwargs) -> testing.Container:
    kwargs.setdefault("can_connect", True)
    return testing.Container("workload", **kwargs)


def state(*relations: testing.RelationBase, leader: bool = True, **kwargs) -> testing.State:
    kwargs.setdefault("containers", [workload()])
    return testing.State(
        leader=leader, model=testing.Model(name=MODEL), relations=list(relations), **kwargs
    )
