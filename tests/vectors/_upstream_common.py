# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""What every upstream vector generator shares: names, versions and the JSON layout."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

VECTORS_DIR = Path(__file__).resolve().parent

UPSTREAM_PACKAGES = ("charmlibs-interfaces-service-mesh", "canonical-service-mesh")
"""The packages whose behaviour the files record; their versions are compared."""

ENVIRONMENT_PACKAGES = ("lightkube", "ops", "pydantic")
"""Packages that shaped the run without being the subject of it; recorded, not compared."""

Document = dict[str, Any]

COORDINATOR, MODEL, WORKERS = "tempo", "cos", ("tempo-querier", "tempo-ingester")
"""The example cluster of the vectors: a tempo coordinator with two worker apps in model cos."""

MESH_LABELS = {
    "istio.io/dataplane-mode": "ambient",
    "istio.io/use-waypoint": "cos-istio-beacon-k8s-waypoint",
    "istio.io/use-waypoint-namespace": "cos",
}


def produced_by(*names: str) -> dict[str, str]:
    """The installed version of each named distribution, in the order given."""
    return {name: version(name) for name in names}


def render(document: Document) -> str:
    """The committed text of a JSON vector: two-space indent, ASCII, one final newline."""
    return json.dumps(document, indent=2) + "\n"
