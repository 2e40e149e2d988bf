# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""JSON schemas of the telemetry relation interfaces, reconstructed for wire tests.

Each schema restates, in JSON Schema (draft 7), the requirements of the public interface
definition in canonical/charm-relation-interfaces, merged where the two disagree to the
stricter of them:

- ``prometheus_scrape`` v0: ``interfaces/prometheus_scrape/v0/schemas/provider.json`` (blob
  ``1b799a6c``) and ``schema.py`` (``f66edc5e``). schema.py also requires ``alert_rules``
  (``{"groups": [{"name", "rules": [...]}]}``). It also lists ``prometheus_scrape_unit_path``
  as nullable but required; Juju cannot store an empty value, and upstream readers use
  ``.get(..., "")``, so here it is optional.
- ``tracing`` v2: ``interfaces/tracing/v2/schema.py`` (``c5d9c120``).
- ``prometheus_remote_write`` v0: ``interfaces/prometheus_remote_write/v0/schemas/provider.json``
  (``1b799a6c``).
- ``grafana_datasource_exchange`` v0: ``interfaces/grafana_datasource_exchange/v0/schema.py``
  (both sides: ``datasources``, a JSON list of ``GrafanaDatasource`` with the strings ``type``,
  ``uid`` and ``grafana_uid``; the same model cosl's ``datasource_exchange`` carries).
- ``loki_push_api`` v1 has no schema there; this one follows what the Loki charm's
  ``LokiPushApiProvider`` (loki-k8s-operator ``lib/charms/loki_k8s/v1/loki_push_api.py``) writes.

Databag values are strings; JSON-encoded keys are decoded with `decode` before validation.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import jsonschema

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}

PROMETHEUS_SCRAPE_PROVIDER_APP = {
    "type": "object",
    "required": ["scrape_jobs", "scrape_metadata", "alert_rules"],
    "properties": {
        "scrape_jobs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["static_configs"],
                "properties": {
                    "job_name": {"type": "string"},
                    "metrics_path": {"type": "string"},
                    "static_configs": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["targets"],
                            "properties": {
                                "targets": {"type": "array", "items": {"type": "string"}},
                                "labels": _STRING_MAP,
                            },
                        },
                    },
                },
            },
        },
        "scrape_metadata": {
            "type": "object",
            "required": ["model", "model_uuid", "application", "unit", "charm_name"],
            "properties": {
                key: {"type": "string"}
                for key in ("model", "model_uuid", "application", "unit", "charm_name")
            },
        },
        "alert_rules": {
            "type": "object",
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "properties": {
                            "name": {"type": "string"},
                            "rules": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["alert", "expr", "for", "labels", "annotations"],
                                    "properties": {
                                        "alert": {"type": "string"},
                                        "expr": {"type": "string"},
                                        "for": {"type": "string"},
                                        "labels": _STRING_MAP,
                                        "annotations": _STRING_MAP,
                                    },
                                },
                            },
                        },
                    },
                }
            },
        },
    },
}
PROMETHEUS_SCRAPE_PROVIDER_APP_JSON_KEYS = ("scrape_jobs", "scrape_metadata", "alert_rules")

PROMETHEUS_SCRAPE_PROVIDER_UNIT = {
    "type": "object",
    "required": ["prometheus_scrape_unit_address", "prometheus_scrape_unit_name"],
    "properties": {
        "prometheus_scrape_unit_address": {"type": "string", "minLength": 1},
        "prometheus_scrape_unit_name": {"type": "string", "pattern": "^.+/[0-9]+$"},
        "prometheus_scrape_unit_path": {"type": ["string", "null"]},
    },
}

TRACING_REQUIRER_APP = {
    "type": "object",
    "required": ["receivers"],
    "properties": {"receivers": {"type": "array", "items": {"type": "string"}}},
}
TRACING_PROVIDER_APP = {
    "type": "object",
    "required": ["receivers"],
    "properties": {
        "receivers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["protocol", "url"],
                "properties": {
                    "protocol": {
                        "type": "object",
                        "required": ["name", "type"],
                        "properties": {
                            "name": {"type": "string"},
                            "type": {"enum": ["http", "grpc"]},
                        },
                    },
                    "url": {"type": "string"},
                },
            },
        }
    },
}
TRACING_JSON_KEYS = ("receivers",)

REMOTE_WRITE_PROVIDER_UNIT = {
    "type": "object",
    "required": ["remote_write"],
    "additionalProperties": False,
    "properties": {
        "remote_write": {
            "type": "object",
            "required": ["url"],
            "additionalProperties": False,
            "properties": {"url": {"type": "string"}},
        }
    },
}
REMOTE_WRITE_JSON_KEYS = ("remote_write",)

LOKI_PUSH_API_PROVIDER_UNIT = {
    "type": "object",
    "required": ["endpoint"],
    "properties": {
        "endpoint": {
            "type": "object",
            "required": ["url"],
            "properties": {"url": {"type": "string", "pattern": "^https?://"}},
        },
        "public_address": {"type": "string"},
    },
}
LOKI_PUSH_API_JSON_KEYS = ("endpoint",)

GRAFANA_DATASOURCE_EXCHANGE_APP = {
    "type": "object",
    "required": ["datasources"],
    "properties": {
        "datasources": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "uid", "grafana_uid"],
                "properties": {
                    "type": {"type": "string"},
                    "uid": {"type": "string"},
                    "grafana_uid": {"type": "string"},
                },
            },
        }
    },
}
GRAFANA_DATASOURCE_EXCHANGE_JSON_KEYS = ("datasources",)


def decode(bag: Mapping[str, str], json_keys: Iterable[str]) -> dict[str, object]:
    """The bag with its JSON-encoded keys decoded; other values stay strings."""
    keys = set(json_keys)
    return {key: json.loads(value) if key in keys else value for key, value in bag.items()}


def validate(bag: Mapping[str, str], schema: Mapping[str, object], json_keys: Iterable[str]):
    """Raise `jsonschema.ValidationError` unless the databag matches the interface schema."""
    jsonschema.validate(decode(bag, json_keys), schema, cls=jsonschema.Draft7Validator)
