# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the plan tool: topologies as files, and the default plan computed once."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from tools.plan import footprint, topology


@pytest.fixture
def write_topology(tmp_path: pathlib.Path):
    """Write topology data to a YAML file in the test's directory and return its path."""

    def write(name: str, data: object) -> pathlib.Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


@pytest.fixture
def default_data() -> dict:
    """The shipped default topology as plain data, to derive variants from."""
    return yaml.safe_load(topology.DEFAULT_TOPOLOGY.read_text())


@pytest.fixture(scope="module")
def default_footprint() -> footprint.Footprint:
    return footprint.plan(topology.load(None))
