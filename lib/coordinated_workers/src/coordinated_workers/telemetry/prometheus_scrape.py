# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""``prometheus_scrape`` v0, provider side: how the coordinator asks Prometheus to scrape.

Wire format (charm-relation-interfaces ``interfaces/prometheus_scrape/v0``), every value a
string:

- application databag, written by the leader:
  ``scrape_jobs``: JSON list of Prometheus ``scrape_config`` subsets (``job_name``,
  ``metrics_path``, ``static_configs``, ``relabel_configs``, ``scheme``, ...);
  ``scrape_metadata``: JSON object ``model``, ``model_uuid``, ``application``, ``unit``,
  ``charm_name`` of the writer; ``alert_rules``: JSON object ``{"groups": [...]}``.
- unit databag, written by every unit: ``prometheus_scrape_unit_address`` and
  ``prometheus_scrape_unit_name`` (plain text), and ``prometheus_scrape_unit_path`` for a
  unit behind an ingress (its URL's path; an empty path cannot be stored in Juju, so the key is
  then absent).

Prometheus' consumer labels every target with the *writer's* topology, and only wildcard
(``*:port``) targets get a ``juju_unit``. Our targets are explicit (worker units reached
through the coordinator, and each coordinator unit's nginx exporter), so each job carries
``relabel_configs`` that force the right ``juju_*`` labels (prometheus-k8s-operator#571: static
labels get overwritten, relabelling happens after that).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from service_mesh.databag import canonical_json, update_changed

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    import ops

    from coordinated_workers._cluster import WorkerApp

logger = logging.getLogger(__name__)

NGINX_EXPORTER_PORT = 9113
"""Port of the nginx-prometheus-exporter sidecar on every coordinator unit."""

ScrapeJob = dict[str, object]
"""One Prometheus ``scrape_config``, JSON-ready."""

ALERT_RULES_KEY = "alert_rules"
_NO_RULES = canonical_json({"groups": []})


def scrape_jobs(
    workers: Iterable[WorkerApp],
    coordinator_units: Mapping[str, str],
    *,
    model: str,
    model_uuid: str,
    worker_metrics_port: int,
    proxy_target: str | None,
    tls: bool,
    exporter_port: int = NGINX_EXPORTER_PORT,
    ca: str | None = None,
) -> list[ScrapeJob]:
    """Build the scrape jobs the coordinator publishes: one per worker unit, one per exporter.

    Args:
        workers: worker applications of the cluster (`ClusterProvider.workers`); every unit
            listed there has published an address. A unit without a charm name (no topology
            published) gets an empty ``juju_charm``, which Prometheus drops, rather than the
            coordinator's charm name.
        coordinator_units: coordinator unit name -> that unit's FQDN (from the peer relation).
        model: the Juju model name, forced as ``juju_model`` on worker series.
        model_uuid: the Juju model UUID, forced as ``juju_model_uuid`` on worker series.
        worker_metrics_port: port of the workers' ``/metrics``, for direct scraping.
        proxy_target: ``<coordinator app service FQDN>:<proxy port>`` when the worker telemetry
            proxy is on: every worker is then scraped through the coordinator at
            ``/proxy/worker/<app>-<n>/metrics``. None scrapes workers directly.
        tls: whether the coordinator's nginx (and so the proxy) serves HTTPS. Only jobs
            through the proxy follow it: the workers themselves serve plain HTTP (nginx
            reaches them so), and so does the exporter, so their jobs stay http.
        exporter_port: port of the nginx exporter on each coordinator unit.
        ca: with ``tls``, the CA (PEM) Prometheus is to trust for the https jobs
            (``tls_config.ca_file``, which the Prometheus charm writes to a file).

    Returns:
        Jobs sorted by worker (application, unit number) then coordinator unit, so the
        published JSON is the same whatever order the inputs came in.
    """
    # Here, not at import: workers import this package too and never build scrape jobs.
    from coordinated_workers._telemetry_proxy import worker_metrics_path

    jobs: list[ScrapeJob] = []
    https = tls and proxy_target is not None
    for app in sorted(workers, key=lambda a: a.name):
        for unit in sorted(app.units, key=lambda u: _unit_sort_key(u.name)):
            if proxy_target is not None:
                target, path = proxy_target, worker_metrics_path(unit.name)
            else:
                target, path = f"{unit.address}:{worker_metrics_port}", "/metrics"
            labels = {
                "juju_model": model,
                "juju_model_uuid": model_uuid,
                "juju_application": app.name,
                "juju_unit": unit.name,
                "juju_charm": unit.charm_name or "",
            }
            job = _job(f"worker-{_dashed(unit.name)}", target, path, labels, https)
            if https and ca:
                job["tls_config"] = {"ca_file": ca}
            jobs.append(job)

    for unit in sorted(coordinator_units, key=_unit_sort_key):
        target = f"{coordinator_units[unit]}:{exporter_port}"
        jobs.append(
            _job(f"nginx-exporter-{_dashed(unit)}", target, "/metrics", {"juju_unit": unit}, False)
        )
    return jobs


class MetricsEndpointProvider:
    """Publishes scrape jobs on a ``prometheus_scrape`` endpoint, writing only what changed."""

    def __init__(self, charm: ops.CharmBase, endpoint: str = "metrics-endpoint") -> None:
        self._charm = charm
        self._endpoint = endpoint

    def publish(
        self,
        jobs: Sequence[Mapping[str, object]],
        *,
        unit_address: str,
        unit_path: str = "",
        alert_rules: Mapping[str, object] | None = None,
        relation: ops.Relation | None = None,
    ) -> bool:
        """Write our unit's address on every relation, and (leader only) the jobs and metadata.

        ``scrape_metadata`` is this unit's topology: Prometheus labels unrelabelled series
        and names job files with it.

        Args:
            jobs: from `scrape_jobs`, or any JSON-ready list of scrape configs.
            unit_address: this unit's resolvable address (its FQDN), or its ingress host.
            unit_path: the ingress URL's path, when behind one (an empty one is not stored).
            alert_rules: ``{"groups": [...]}``; None leaves the published rules as they are
                (`publish_alert_rules` keeps them up to date, only when they change), or
                publishes no groups where there are none yet (the key is required).
            relation: publish on this relation only; default: every relation of the endpoint.

        Returns:
            True if any databag was written.
        """
        relations = [relation] if relation else self._charm.model.relations[self._endpoint]
        unit_data = {
            "prometheus_scrape_unit_address": unit_address,
            "prometheus_scrape_unit_name": self._charm.unit.name,
            "prometheus_scrape_unit_path": unit_path,
        }
        app_data = {
            "scrape_jobs": canonical_json(list(jobs)),
            "scrape_metadata": canonical_json(self._metadata()),
        }
        if alert_rules is not None:
            app_data[ALERT_RULES_KEY] = canonical_json(alert_rules)
        is_leader = self._charm.unit.is_leader()
        changed = False
        for rel in relations:
            changed |= update_changed(rel.data[self._charm.unit], unit_data)
            if is_leader:
                bag = rel.data[self._charm.app]
                if alert_rules is None and ALERT_RULES_KEY not in bag:
                    changed |= update_changed(bag, {ALERT_RULES_KEY: _NO_RULES})
                changed |= update_changed(bag, app_data)
        return changed

    def publish_alert_rules(self, alert_rules: Mapping[str, object]) -> bool:
        """Write ``alert_rules`` (``{"groups": [...]}``) on every relation (leader only).

        Returns:
            True if any databag was written.
        """
        if not self._charm.unit.is_leader():
            return False
        value = {ALERT_RULES_KEY: canonical_json(alert_rules)}
        changed = False
        for relation in self._charm.model.relations[self._endpoint]:
            changed |= update_changed(relation.data[self._charm.app], value)
        return changed

    def _metadata(self) -> dict[str, str]:
        return {
            "model": self._charm.model.name,
            "model_uuid": self._charm.model.uuid,
            "application": self._charm.app.name,
            "unit": self._charm.unit.name,
            "charm_name": self._charm.meta.name,
        }


def _job(name: str, target: str, path: str, labels: Mapping[str, str], tls: bool) -> ScrapeJob:
    job: ScrapeJob = {
        "job_name": name,
        "metrics_path": path,
        "static_configs": [{"targets": [target]}],
        # No source_labels: the empty source matches the default regex, so each rule sets its
        # label unconditionally.
        "relabel_configs": [
            {"target_label": label, "replacement": value} for label, value in labels.items()
        ],
    }
    if tls:
        job["scheme"] = "https"
    return job


def _dashed(unit: str) -> str:
    return unit.replace("/", "-")


def _unit_sort_key(unit: str) -> tuple[str, int, str]:
    app, _, number = unit.rpartition("/")
    return (app, int(number), unit) if number.isdigit() else (unit, -1, unit)
