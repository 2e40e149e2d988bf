# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The cluster observes itself: alert rules and dashboards for COS, rendered only on change.

The coordinator's leader publishes:

- on ``prometheus_scrape`` (``alert_rules``): the charm's worker rules once per worker app,
  labelled with that app's topology; the library's nginx rules and the generic ``HostHealth``
  group, labelled with the coordinator's;
- on ``loki_push_api`` (``alert_rules``, ``metadata``): the charm's Loki rules once per worker
  app and once for the coordinator;
- on ``grafana_dashboard`` (``dashboards``): the charm's dashboards and the library's nginx one.

Reading, labelling and encoding ~10 kB of rule files is most of a hook's work upstream, and
its inputs hardly ever change: the charm's files (only on a refresh), the worker apps and our
relations. So each leader keeps a fingerprint of those inputs (file names, sizes and mtimes
from one directory listing each: no file is opened) in its stored state, and renders and
writes again only when it changes. Files that could not be used are remembered with it, so
the status keeps naming them in the hooks that render nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard

import ops

from ..telemetry.loki_push_api import LokiPushApiRequirer
from ..telemetry.prometheus_scrape import MetricsEndpointProvider

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._cluster import WorkerApp
    from ..telemetry import alert_rules
    from ..telemetry import grafana_dashboard as dashboards

# The rule and dashboard modules are imported where they are used: every hook builds this
# object, but only a hook whose inputs changed renders (they cost every coordinator hook ~3 ms).

logger = logging.getLogger(__name__)

_HERE = Path(__file__).parent
NGINX_RULES = _HERE / "prometheus_alert_rules"
"""The library's rules about the coordinator's nginx (coordinator topology)."""
NGINX_DASHBOARDS = _HERE / "grafana_dashboards"
"""The library's dashboard of the coordinator's nginx."""
_LIBRARY_PATH = "coordinated_workers/observability/grafana_dashboards"
"""How the library's dashboards are named in their uid (with the charm's name)."""
_FORMAT = 1
"""Bumped when what we render changes, so a refreshed charm renders again."""
_CHARM = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
"""A charm name as charmcraft accepts it; anything else from a worker is not used."""
_CHARM_NAME_LIMIT = 64


@dataclasses.dataclass(frozen=True)
class ObservabilityConfig:
    """Where a coordinator charm keeps its rules and dashboards (relative to the charm dir).

    A folder that does not exist simply has nothing in it; None switches a source off.
    """

    worker_prometheus_rules: str | None = "src/prometheus_alert_rules"
    """Prometheus rules about the workers: each worker app gets them with its own topology."""
    loki_rules: str | None = "src/loki_alert_rules"
    """Loki rules: each worker app and the coordinator get them with their own topology."""
    dashboards: str | None = "src/grafana_dashboards"
    coordinator_prometheus_rules: Path | None = NGINX_RULES
    """Prometheus rules about the coordinator itself (default: the library's nginx rules)."""
    library_dashboards: Path | None = NGINX_DASHBOARDS
    """Dashboards the library adds (default: its nginx dashboard)."""


@dataclasses.dataclass(frozen=True)
class ObservabilityEndpoints:
    """The coordinator's endpoint names; an endpoint the charm does not declare is skipped."""

    metrics: str | None
    logging: str | None
    dashboards: str | None


@dataclasses.dataclass(frozen=True)
class Rendered:
    """What the leader publishes, and the files it had to leave out."""

    prometheus: dict[str, object] | None
    """None when no rules could be labelled (the published ones are left as they are)."""
    loki: dict[str, object] | None
    dashboards: dict[str, dashboards.Template]
    problems: tuple[str, ...]


class SelfObservability(ops.Object):
    """Publishes the cluster's alert rules and dashboards, rendering them only on change."""

    _state = ops.StoredState()

    def __init__(
        self,
        charm: ops.CharmBase,
        config: ObservabilityConfig,
        endpoints: ObservabilityEndpoints,
    ) -> None:
        super().__init__(charm, "observability")
        self._state.set_default(fingerprint="", problems=[])
        self._charm = charm
        self.config = config
        declared = charm.meta.relations
        self._metrics = endpoints.metrics if endpoints.metrics in declared else None
        self._logging = endpoints.logging if endpoints.logging in declared else None
        self._dashboards = endpoints.dashboards if endpoints.dashboards in declared else None

    @property
    def problems(self) -> tuple[str, ...]:
        """The rule and dashboard files last left out (leader only), e.g. ``<file>: <why>``."""
        if not self._charm.unit.is_leader():
            return ()
        return tuple(self._state.problems)

    def reconcile(self, workers: Sequence[WorkerApp]) -> bool:
        """Render and publish if anything the output depends on changed; whether it did.

        Only the leader publishes (the data is in application databags).
        """
        if not self._charm.unit.is_leader():
            return False
        endpoints = (self._metrics, self._logging, self._dashboards)
        if not any(self.model.relations[endpoint] for endpoint in endpoints if endpoint):
            return False  # nobody to publish to: no fingerprint, no file listed
        topologies = self.worker_topologies(workers)
        fingerprint = self._fingerprint(topologies)
        if fingerprint == self._state.fingerprint:
            return False
        rendered = self.render(topologies)
        self._publish(rendered)
        if list(rendered.problems) != list(self._state.problems):
            self._state.problems = list(rendered.problems)
        self._state.fingerprint = fingerprint
        return True

    def worker_topologies(self, workers: Sequence[WorkerApp]) -> list[alert_rules.Topology]:
        """One topology per worker app that told us its charm, in app-name order."""
        topologies: list[alert_rules.Topology] = []
        for worker in sorted(workers, key=lambda w: w.name):
            # Remote text copied into every rule: only a name Juju could have given a charm.
            charm_names = sorted(
                {unit.charm_name for unit in worker.units if _usable_charm_name(unit.charm_name)}
            )
            if charm_names:
                topologies.append(self._topology(worker.name, charm_names[0]))
            elif any(unit.charm_name for unit in worker.units):
                logger.warning("alert rules: no usable charm name from %s", worker.name)
        return topologies

    def render(self, workers: Sequence[alert_rules.Topology]) -> Rendered:
        """Read every source and build the three payloads (no databag is touched)."""
        from ..telemetry import alert_rules
        from ..telemetry import grafana_dashboard as dashboards

        problems: list[str] = []
        coordinator = self._topology(self._charm.app.name, self._charm.meta.name)
        worker_files = self._rule_files(self.config.worker_prometheus_rules, problems)
        own_files = self._rule_files(self.config.coordinator_prometheus_rules, problems)
        loki_files = self._rule_files(self.config.loki_rules, problems)
        templates, dashboard_problems = dashboards.load_templates(
            self._dashboard_files(),
            charm_name=self._charm.meta.name,
            juju_topology={
                "model": self.model.name,
                "model_uuid": self.model.uuid,
                "application": self._charm.app.name,
                "unit": self._charm.unit.name,
            },
        )
        problems.extend(str(problem) for problem in dashboard_problems)
        try:
            prometheus = alert_rules.prometheus_rules(
                coordinator, own_files, workers, worker_files
            )
            loki = alert_rules.loki_rules(coordinator, loki_files, workers)
        except alert_rules.TopologyError as e:
            logger.error("alert rules: %s", e)
            problems.append(f"alert rules: {e}")
            prometheus = loki = None
        return Rendered(prometheus, loki, templates, tuple(problems))

    def _publish(self, rendered: Rendered) -> None:
        from ..telemetry import grafana_dashboard as dashboards

        if self._metrics and rendered.prometheus is not None:
            MetricsEndpointProvider(self._charm, self._metrics).publish_alert_rules(
                rendered.prometheus
            )
        if self._logging and rendered.loki is not None:
            LokiPushApiRequirer(self._charm, self._logging).publish_alert_rules(rendered.loki)
        if self._dashboards:
            dashboards.GrafanaDashboardProvider(self._charm, self._dashboards).publish(
                rendered.dashboards
            )

    def _topology(self, application: str, charm_name: str) -> alert_rules.Topology:
        from ..telemetry import alert_rules

        return alert_rules.Topology(self.model.name, self.model.uuid, application, charm_name)

    def _rule_files(
        self, folder: str | Path | None, problems: list[str]
    ) -> list[alert_rules.RuleFile]:
        from ..telemetry import alert_rules

        if folder is None:
            return []
        path, shown_as = self._resolve(folder)
        files, file_problems = alert_rules.read_rule_files(path, shown_as)
        problems.extend(str(problem) for problem in file_problems)
        problems.extend(str(problem) for problem in alert_rules.duplicate_group_problems(files))
        return files

    def _dashboard_files(self) -> list[dashboards.DashboardFile]:
        from ..telemetry import grafana_dashboard as dashboards

        files: list[dashboards.DashboardFile] = []
        if self.config.library_dashboards is not None:
            files += dashboards.dashboard_files(self.config.library_dashboards, _LIBRARY_PATH)
        if self.config.dashboards is not None:
            path, shown_as = self._resolve(self.config.dashboards)
            files += dashboards.dashboard_files(path, shown_as)  # the charm's win on a clash
        return files

    def _resolve(self, folder: str | Path) -> tuple[Path, str]:
        """The folder's path, and how statuses name it (relative to the charm when it is)."""
        if isinstance(folder, Path) and folder.is_absolute():
            packages = _HERE.parent.parent  # the library's own files: named from its package
            shown = folder.relative_to(packages) if folder.is_relative_to(packages) else folder
            return folder, str(shown)
        return self._charm.charm_dir / folder, str(folder)

    def _fingerprint(self, workers: Sequence[alert_rules.Topology]) -> str:
        """A hash of everything the rendered output depends on; lists folders, opens no file."""
        config = self.config
        folders = [
            config.worker_prometheus_rules,
            config.loki_rules,
            config.dashboards,
            config.coordinator_prometheus_rules,
            config.library_dashboards,
        ]
        inputs = {
            "format": _FORMAT,
            "files": [
                _listing(self._resolve(folder)[0]) if folder is not None else None
                for folder in folders
            ],
            "me": [self.model.name, self.model.uuid, self._charm.unit.name, self._charm.meta.name],
            "workers": [[w.application, w.charm_name] for w in workers],
            "relations": [
                sorted(relation.id for relation in self.model.relations[endpoint])
                if endpoint
                else None
                for endpoint in (self._metrics, self._logging, self._dashboards)
            ],
        }
        text = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def _listing(folder: Path) -> list[tuple[str, int, int]] | None:
    """Name, size and mtime of each entry at the top of `folder` (one ``scandir``)."""
    try:
        with os.scandir(folder) as entries:
            return sorted(
                (entry.name, entry.stat().st_size, entry.stat().st_mtime_ns) for entry in entries
            )
    except OSError:
        return None


def _usable_charm_name(name: str | None) -> TypeGuard[str]:
    return name is not None and len(name) <= _CHARM_NAME_LIMIT and bool(_CHARM.fullmatch(name))
