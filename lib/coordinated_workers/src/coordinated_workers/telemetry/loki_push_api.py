# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""``loki_push_api`` v1, requirer side, and the Pebble log forwarding that uses it.

Wire format (as the Loki charm's ``LokiPushApiProvider`` writes it): each Loki unit puts
``endpoint`` in its unit databag, a JSON object ``{"url": "<push url>"}`` such as
``{"url": "http://loki-0.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"}``. Other
provider keys (``public_address``, the app's ``promtail_binary_zip_url``) are not needed here.

The coordinator reads the push URLs with `LokiPushApiRequirer`, keyed by Loki unit name, and
hands them to workers (proxied or not). A worker forwards its workload's logs with Pebble's
``log-targets``, built by `log_forwarding_layer`.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from coordinated_workers.telemetry import _databag
from service_mesh.databag import canonical_json, update_changed

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import ops

logger = logging.getLogger(__name__)

ENDPOINT_KEY = "endpoint"
"""Unit databag key holding ``{"url": ...}``."""

LOG_TARGET_PREFIX = "loki-"
"""Pebble log targets we own are named ``loki-<loki app>-<n>``; others are left alone."""

_DISABLED = "-all"


def push_url(unit_bag: Mapping[str, str]) -> str | None:
    """The push URL a Loki unit published, or None if it has not published one yet.

    Raises:
        DatabagError: the ``endpoint`` value is malformed.
    """
    return _databag.url_field(unit_bag, ENDPOINT_KEY)


class LokiPushApiRequirer:
    """Reads the Loki push URLs related on a ``loki_push_api`` requirer endpoint."""

    def __init__(self, charm: ops.CharmBase, endpoint: str = "logging") -> None:
        self._charm = charm
        self._endpoint = endpoint

    def push_urls(self) -> _databag.Reading[dict[str, str]]:
        """Loki unit name -> push URL, for every Loki unit that published a usable one.

        A unit with malformed data is skipped and reported in `Reading.problems`; the other
        units, and other relations, are unaffected.
        """
        return _databag.unit_urls(self._charm, self._endpoint, ENDPOINT_KEY, "Loki endpoint")

    def publish_alert_rules(self, alert_rules: Mapping[str, object]) -> bool:
        """Write our Loki ``alert_rules`` and ``metadata`` on every relation (leader only).

        The Loki charm labels and files the rules by ``metadata``, this app's topology.

        Returns:
            True if any databag was written.
        """
        charm = self._charm
        if not charm.unit.is_leader():
            return False
        values = {
            "metadata": json.dumps(
                {
                    "model": charm.model.name,
                    "model_uuid": charm.model.uuid,
                    "application": charm.app.name,
                    "unit": charm.unit.name,
                    "charm_name": charm.meta.name,
                }
            ),
            "alert_rules": canonical_json(alert_rules),
        }
        changed = False
        for relation in charm.model.relations[self._endpoint]:
            changed |= update_changed(relation.data[charm.app], values)
        return changed


def topology_labels(charm: ops.CharmBase) -> dict[str, str]:
    """The labels Juju charms put on forwarded logs, so COS can tell where a line came from."""
    return {
        "product": "Juju",
        "charm": charm.meta.name,
        "juju_model": charm.model.name,
        "juju_model_uuid": charm.model.uuid,
        "juju_application": charm.app.name,
        "juju_unit": charm.unit.name,
    }


def log_target_name(loki_unit: str) -> str:
    """The Pebble log target for a Loki unit: ``loki/0`` -> ``loki-loki-0``."""
    return LOG_TARGET_PREFIX + loki_unit.replace("/", "-")


def log_forwarding_layer(
    loki_urls: Mapping[str, str],
    labels: Mapping[str, str],
    services: Sequence[str],
    *,
    current_targets: Mapping[str, str] | None = None,
) -> ops.pebble.LayerDict:
    """A Pebble layer forwarding `services`' logs to every Loki push URL.

    Add it with ``container.add_layer(<label>, layer, combine=True)`` under a fixed label.
    Combining keeps targets the new layer does not mention, so a Loki unit that went away must
    be switched off explicitly: pass the targets currently in the plan (`enabled_log_targets`)
    as `current_targets`, and every one we own that is no longer wanted is replaced with
    ``services: ["-all"]`` (Pebble's way to forward nothing; it still needs a type and a
    location, so the old location is kept).

    Args:
        loki_urls: Loki unit name -> push URL (from the cluster relation on a worker).
        labels: labels added to every log line, normally `topology_labels`. Names starting
            ``pebble_`` are reserved by Pebble.
        services: service names to forward, or ``["all"]``. Every name must exist in the plan.
        current_targets: our enabled log targets in the current plan, name -> location.

    Raises:
        ValueError: a label uses Pebble's reserved ``pebble_`` prefix.
    """
    reserved = sorted(name for name in labels if name.startswith("pebble_"))
    if reserved:
        raise ValueError(f"Pebble reserves the 'pebble_' label prefix: {reserved}")
    targets: dict[str, ops.pebble.LogTargetDict] = {}
    for unit, url in sorted(loki_urls.items()):
        targets[log_target_name(unit)] = {
            "override": "replace",
            "type": "loki",
            "location": url,
            "services": list(services),
            "labels": dict(sorted(labels.items())),
        }
    for name, location in sorted((current_targets or {}).items()):
        if name.startswith(LOG_TARGET_PREFIX) and name not in targets:
            targets[name] = {
                "override": "replace",
                "type": "loki",
                "location": location,
                "services": [_DISABLED],
            }
    return {"log-targets": targets}


def enabled_log_targets(plan: ops.pebble.Plan) -> dict[str, str]:
    """Our log targets in `plan` that still forward something: name -> location."""
    return {
        name: target.location
        for name, target in sorted(plan.log_targets.items())
        if name.startswith(LOG_TARGET_PREFIX) and target.services != [_DISABLED]
    }


def forward_container_logs(
    container: ops.Container, loki_urls: Mapping[str, str], labels: Mapping[str, str], label: str
) -> bool:
    """Make Pebble forward all of `container`'s services' logs to `loki_urls` (or nowhere).

    Reads the plan once; adds a layer (named `label`) only when a log target differs, so a
    steady hook costs one Pebble call per container.

    Returns:
        Whether a layer was added.

    Raises:
        ops.pebble.Error: Pebble failed (``ConnectionError`` when unreachable).
    """
    plan = container.get_plan()
    current = enabled_log_targets(plan)
    if not loki_urls and not current:
        return False
    layer = log_forwarding_layer(loki_urls, labels, ["all"], current_targets=current)
    wanted = layer.get("log-targets", {})
    if all(
        name in plan.log_targets and _target(plan.log_targets[name].to_dict()) == _target(target)
        for name, target in wanted.items()
    ):
        return False
    container.add_layer(label, layer, combine=True)
    container.replan()
    return True


def _target(target: Mapping[str, object]) -> dict[str, object]:
    # The combined plan may or may not echo `override`; it says nothing about the target.
    return {key: value for key, value in target.items() if key != "override"}
