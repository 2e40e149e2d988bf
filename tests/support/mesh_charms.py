# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Metadata of the two charms on a ``service_mesh`` relation in the tests: Tempo and the beacon.

The consumer is shaped like tempo-coordinator-k8s (the mesh endpoints, and the endpoints its
policies name); the provider is istio-beacon-k8s. The library's tests, the contract tests and
the vector generator all run these two, so each test's bags match the vectors'.
"""

from __future__ import annotations

from typing import Any

TEMPO_META: dict[str, Any] = {
    "name": "tempo",
    "requires": {
        "service-mesh": {"interface": "service_mesh", "limit": 1},
        "require-cmr-mesh": {"interface": "cross_model_mesh"},
    },
    "provides": {
        "provide-cmr-mesh": {"interface": "cross_model_mesh"},
        "tempo-api": {"interface": "tempo_http"},
        "grafana-source": {"interface": "grafana_datasource"},
        "metrics-endpoint": {"interface": "prometheus_scrape"},
    },
}
"""A mesh consumer: the three mesh endpoints, and three endpoints its policies can name."""

BEACON_META: dict[str, Any] = {
    "name": "istio-beacon-k8s",
    "provides": {"service-mesh": {"interface": "service_mesh"}},
}
"""The mesh provider."""
