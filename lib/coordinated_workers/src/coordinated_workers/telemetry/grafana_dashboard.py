# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""``grafana_dashboard`` v0, provider side: the dashboards the coordinator gives Grafana.

Wire format (as Grafana's ``GrafanaDashboardProvider`` v0.44 writes it; see
``tests/vectors/cos``): the application databag holds ``dashboards``, a JSON object
``{"templates": {<id>: template}, "uuid": <uuid4>}``, where each template is ``charm`` (the
charm name), ``content`` (the dashboard JSON, LZMA-compressed at preset 3 and base64-encoded:
``cosl.LZMABase64``), ``juju_topology`` (``model``, ``model_uuid``, ``application``, ``unit``),
``inject_dropdowns`` (true: Grafana adds the Juju topology variables) and ``dashboard_alt_uid``
(``shake_256("<charm>-<id>")``, 16 hex digits). A file's id is ``file:<stem>``.

Before encoding, a dashboard's ``uid`` becomes ``shake_256("<charm>-<path in the charm>")`` (40
hex digits) unless it already is 40 hex digits, and a ``charm: <charm>`` tag is added unless
one is there. Dashboards should query ``${prometheusds}`` / ``${lokids}``, the datasource
variables Grafana fills in.

The uuid changes on every write, which is what makes Juju pass the new data on; we write only
when a template changed, so a steady hook writes nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    import ops

logger = logging.getLogger(__name__)

DASHBOARDS_KEY = "dashboards"
MAX_DASHBOARD_BYTES = 512 * 1024
"""A dashboard file larger than this is refused unread: the whole cluster's app databag goes
to Grafana on every change, and no dashboard needs that much (Tempo's largest is 55 kB)."""

_UID_40 = re.compile(r"[0-9a-fA-F]{40}")
Template = dict[str, object]


@dataclasses.dataclass(frozen=True)
class DashboardProblem:
    """A dashboard file that was left out, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclasses.dataclass(frozen=True)
class DashboardFile:
    """A dashboard to publish: where it is, and how the charm names it."""

    path: Path
    relative_path: str
    """The path in the charm (``src/grafana_dashboards/x.json``): the uid is made from it."""
    template_id: str
    """``file:<stem>`` for the charm's own files."""


def dashboard_files(folder: Path, relative_folder: str) -> list[DashboardFile]:
    """The ``.json`` (and ``.tmpl``) files at the top of `folder`, by name; none if absent."""
    try:
        paths = sorted(
            p for p in folder.iterdir() if p.name.endswith((".json", ".tmpl")) and p.is_file()
        )
    except OSError:
        return []
    return [DashboardFile(p, f"{relative_folder}/{p.name}", f"file:{p.stem}") for p in paths]


def load_templates(
    files: Sequence[DashboardFile], *, charm_name: str, juju_topology: Mapping[str, str]
) -> tuple[dict[str, Template], list[DashboardProblem]]:
    """Read, check and encode each dashboard; a bad or oversized one is left out and named."""
    templates: dict[str, Template] = {}
    problems: list[DashboardProblem] = []
    for file in files:
        try:
            dashboard = _read_dashboard(file.path)
        except DashboardError as e:
            problems.append(DashboardProblem(file.relative_path, str(e)))
            logger.error("dashboards: leaving out %s: %s", file.relative_path, e)
            continue
        templates[file.template_id] = template(
            dashboard,
            charm_name=charm_name,
            relative_path=file.relative_path,
            template_id=file.template_id,
            juju_topology=juju_topology,
        )
    return templates, problems


class DashboardError(ValueError):
    """A dashboard file cannot be used; the message says why."""


def _read_dashboard(path: Path) -> dict[str, Any]:
    try:
        size = path.stat().st_size
        text = None if size > MAX_DASHBOARD_BYTES else path.read_bytes()
    except OSError as e:
        raise DashboardError(f"cannot be read ({e.strerror})") from e
    if text is None:
        raise DashboardError(
            f"{size} bytes, more than the {MAX_DASHBOARD_BYTES} a dashboard may have"
        )
    try:
        dashboard = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise DashboardError("not valid JSON") from e
    if not isinstance(dashboard, dict):
        raise DashboardError("not a JSON object")
    return cast("dict[str, Any]", dashboard)


def template(
    dashboard: dict[str, Any],
    *,
    charm_name: str,
    relative_path: str,
    template_id: str,
    juju_topology: Mapping[str, str],
) -> Template:
    """One template, with the uid and tag rules applied to `dashboard` (changed in place)."""
    from cosl import LZMABase64  # here: only hooks that render dashboards import cosl

    uid = dashboard.get("uid")
    if not (isinstance(uid, str) and _UID_40.fullmatch(uid)):
        dashboard["uid"] = _shake(f"{charm_name}-{relative_path}", 20)
    found = dashboard.get("tags")
    tags = cast("list[object]", found) if isinstance(found, list) else []
    if not any(isinstance(tag, str) and tag.startswith("charm: ") for tag in tags):
        tags.append(f"charm: {charm_name}")
    dashboard["tags"] = tags
    return {
        "charm": charm_name,
        "content": LZMABase64.compress(json.dumps(dashboard)),
        "juju_topology": dict(juju_topology),
        "inject_dropdowns": True,
        "dashboard_alt_uid": _shake(f"{charm_name}-{template_id}", 8),
    }


def decode_content(content: str) -> str:
    """The dashboard JSON text a template's ``content`` holds (for tests and tools)."""
    from cosl import LZMABase64

    return LZMABase64.decompress(content)


def _shake(text: str, length: int) -> str:
    return hashlib.shake_256(text.encode("utf-8")).hexdigest(length)


class GrafanaDashboardProvider:
    """Publishes dashboard templates on a ``grafana_dashboard`` endpoint (leader only)."""

    def __init__(self, charm: ops.CharmBase, endpoint: str = "grafana-dashboard") -> None:
        self._charm = charm
        self._endpoint = endpoint

    def publish(self, templates: Mapping[str, Template]) -> bool:
        """Write `templates` on every relation whose bag holds other ones.

        Returns:
            True if any databag was written.
        """
        if not self._charm.unit.is_leader():
            return False
        changed = False
        for relation in self._charm.model.relations[self._endpoint]:
            bag = relation.data[self._charm.app]
            if _published_templates(bag.get(DASHBOARDS_KEY)) == templates:
                continue
            import uuid  # here: few hooks write dashboards

            bag[DASHBOARDS_KEY] = json.dumps(
                {"templates": dict(templates), "uuid": str(uuid.uuid4())}
            )
            changed = True
        return changed


def _published_templates(raw: str | None) -> object:
    if raw is None:
        return None
    try:
        return cast("dict[str, object]", json.loads(raw)).get("templates")
    except (ValueError, AttributeError):
        return None
