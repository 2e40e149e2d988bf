# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""What a converged simulation amounts to, as plain data ready to print, write or diff.

Everything is read back from where the charms put it: pod labels and AuthorizationPolicies from
the fake cluster, the published mesh policies and each worker's data from the coordinator
leader's relation databags, nginx.conf from its nginx container, statuses from each unit.
Server-assigned fields (uid, resourceVersion, timestamps) are dropped so output is stable.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from typing import TYPE_CHECKING, Any

from coordinated_workers import ClusterDataError, ClusterProviderAppData
from coordinated_workers import _mesh as mesh
from coordinated_workers._nginx import NGINX_CONFIG_PATH
from coordinated_workers.telemetry import alert_rules
from coordinated_workers.telemetry.grafana_dashboard import decode_content
from service_mesh import MeshPolicy, istio
from service_mesh.allow_matrix import Allow, Rule, Service, Workload, allow_rules

from . import charms
from .simulate import fewer_collections, scratch_directory, simulate
from .topology import CERTIFICATES_APP

if TYPE_CHECKING:
    from .simulate import Simulation
    from .topology import Topology

Manifest = dict[str, Any]

RESOLVER_PLACEHOLDER = "<pod DNS server>"
_RESOLVER = re.compile(r"^(\s*resolver\s+)\S+", re.MULTILINE)
_POLICY_PLURAL = "authorizationpolicies"


@dataclasses.dataclass(frozen=True)
class UnitStatus:
    """A unit's status after the last hook."""

    unit: str
    name: str
    message: str


@dataclasses.dataclass(frozen=True)
class Footprint:
    """The deployment's footprint on the cluster and on the wire."""

    model: str
    coordinator: str
    """``<namespace>/<app>`` of the coordinator."""
    rounds: int
    steady: bool
    units: dict[str, int]
    """``<namespace>/<app>`` -> unit count."""
    workloads: list[Workload]
    services: list[Service]
    cluster_policies: list[Manifest]
    """AuthorizationPolicies the coordinator applies itself (cluster-internal traffic)."""
    published: list[MeshPolicy]
    """What the coordinator asks the beacon to allow (``policies`` on ``service-mesh``)."""
    beacon: str | None
    """``<namespace>/<app>`` of the beacon, None without a mesh."""
    beacon_policies: list[Manifest]
    other_policies: list[Manifest]
    """AuthorizationPolicies owned by neither (none, unless something is wrong)."""
    rules: list[Rule]
    """What the policies allow, one row per policy rule, source and operation."""
    nginx_conf: str | None
    """The coordinator leader's nginx.conf with the resolver address replaced."""
    nginx_units_agree: bool
    worker_data: dict[str, ClusterProviderAppData | str]
    """Worker app -> what the coordinator publishes to it (or why it cannot be read)."""
    statuses: list[UnitStatus]
    reasons: dict[str, str] = dataclasses.field(default_factory=dict[str, str])
    """AuthorizationPolicy name -> why it exists, in words."""
    related: dict[str, list[str]] = dataclasses.field(default_factory=dict[str, list[str]])
    """Source ``<namespace>/<app>`` -> the coordinator endpoints it is related on, which the
    coordinator's servers (``relations``) and charm policies grant access to."""
    observability: dict[str, list[str]] = dataclasses.field(default_factory=dict[str, list[str]])
    """Related backend (``<endpoint>:<app>``) -> the rule groups or dashboards it receives."""
    urls: list[tuple[str, str]] = dataclasses.field(default_factory=list[tuple[str, str]])
    """(what, URL) for every URL the coordinator serves or publishes, scheme included."""

    @property
    def policies(self) -> list[Manifest]:
        """Every AuthorizationPolicy in the cluster."""
        return [*self.cluster_policies, *self.beacon_policies, *self.other_policies]

    @functools.cached_property
    def matrix(self) -> list[Allow]:
        """Every allowed flow, one row per source, target and operation (n * n for n members)."""
        return sorted({flow for rule in self.rules for flow in rule.flows()})

    @property
    def flow_count(self) -> int:
        """``len(self.matrix)``, without building it."""
        return sum(len(rule.targets) for rule in self.rules)

    @property
    def problems(self) -> list[str]:
        """What went wrong, in words: a plan with problems is not one to deploy as it is."""
        found = [
            f"{s.unit} ended {s.name}" + (f": {s.message}" if s.message else "")
            for s in self.statuses
            if s.name != "active"
        ]
        if not self.steady:
            found.append("a final update-status still wrote to a databag or to Kubernetes")
        if not self.nginx_units_agree:
            found.append("the coordinator units rendered different nginx.conf files")
        if self.other_policies:
            found.append(
                f"{len(self.other_policies)} AuthorizationPolicies are owned by neither the "
                "coordinator nor the beacon"
            )
        return found


def plan(topology: Topology) -> Footprint:
    """Run ``topology``'s charms to a fixed point and read the footprint they leave."""
    with scratch_directory() as files:
        sim = simulate(topology, files)
        with fewer_collections():
            return collect(sim)


def collect(sim: Simulation) -> Footprint:
    """Read the footprint of a converged simulation."""
    topology = sim.topology
    coordinator = topology.coordinator.app
    leader = sim.actor(f"{coordinator}/0")
    workloads = [
        Workload(s["metadata"]["namespace"], s["metadata"]["name"], _template_labels(s))
        for s in sim.kube.list("statefulsets")
    ]
    services = [
        Service(s["metadata"]["namespace"], s["metadata"]["name"], s["spec"].get("selector", {}))
        for s in sim.kube.list("services")
    ]
    policies = [_clean(p) for p in sim.kube.list(_POLICY_PLURAL)]
    own = mesh.policy_manager_labels(coordinator, topology.model)
    beacon_labels = charms.beacon_policy_labels(topology.mesh.beacon, topology.beacon_model)
    cluster = [p for p in policies if _owned(p, own)]
    beacon = [p for p in policies if topology.mesh.enabled and _owned(p, beacon_labels)]
    claimed = {id(p) for p in (*cluster, *beacon)}  # by identity: linear in the policies
    other = [p for p in policies if id(p) not in claimed]
    published = _published(leader.state.relations)
    reasons = {p["metadata"]["name"]: _internal_reason(p) for p in cluster}
    related = _related_on(leader.state.relations, topology.model)
    if topology.mesh.enabled:
        for policy in published:
            name = istio.policy_name(topology.mesh.beacon, topology.beacon_model, policy)
            source = f"{policy.source_namespace}/{policy.source_app_name}"
            endpoints = ", ".join(f"`{e}`" for e in related.get(source, ["?"]))
            reasons[name] = (
                f"{source} is related to the coordinator on {endpoints}; the coordinator asked "
                f"the beacon to let it in"
            )
    confs = [_nginx_conf(actor) for actor in sim.actors if actor.app == coordinator]
    return Footprint(
        model=topology.model,
        coordinator=f"{topology.model}/{coordinator}",
        rounds=sim.rounds,
        steady=sim.steady,
        units=_units(sim),
        workloads=workloads,
        services=services,
        cluster_policies=cluster,
        published=published,
        beacon=f"{topology.beacon_model}/{topology.mesh.beacon}"
        if topology.mesh.enabled
        else None,
        beacon_policies=beacon,
        other_policies=other,
        rules=allow_rules(policies, workloads, services),
        nginx_conf=confs[0],
        nginx_units_agree=len(set(confs)) == 1,
        worker_data=_worker_data(leader.state.relations),
        statuses=[
            UnitStatus(a.unit, a.state.unit_status.name, a.state.unit_status.message)
            for a in sim.actors
        ],
        reasons=reasons,
        related=related,
        observability=_observability(leader.state.relations),
        urls=_urls(topology, confs[0], leader.state.relations),
    )


def _internal_reason(policy: Manifest) -> str:
    [rule] = policy["spec"]["rules"]
    [principal] = rule["from"][0]["source"]["principals"]
    source = principal.split("/ns/", 1)[-1].replace("/sa/", "/")
    if "targetRefs" in policy["spec"]:
        service = policy["spec"]["targetRefs"][0]["name"]
        return (
            f"{source} may reach the coordinator's Service {service} on any port: workers "
            "talk to the coordinator at its stable address"
        )
    labels = ",".join(f"{k}={v}" for k, v in policy["spec"]["selector"]["matchLabels"].items())
    return (
        f"{source} may reach every pod labelled {labels} (all members of the cluster) on any "
        "port: members trust each other"
    )


def _related_on(relations: Any, model: str) -> dict[str, list[str]]:
    """Source ``<namespace>/<app>`` -> the coordinator endpoints that may let it in.

    Only endpoints the coordinator *provides* (``api``, ``metrics-endpoint``) serve the related
    app; on the ones it requires (``logging``, ``send-remote-write``...) the coordinator is the
    client, so they grant the related app nothing.
    """
    provided = set(charms.charm_meta("coordinator").get("provides", {}))
    skip = {"cluster", "provide-cmr-mesh"}
    real: dict[str, str] = {}
    for relation in relations:
        if relation.endpoint == "provide-cmr-mesh" and "cmr_data" in relation.remote_app_data:
            data = json.loads(relation.remote_app_data["cmr_data"])
            real[relation.remote_app_name] = f"{data['juju_model_name']}/{data['app_name']}"
    related: dict[str, list[str]] = {}
    for relation in sorted(relations, key=lambda r: r.id):
        if relation.endpoint not in provided or relation.endpoint in skip:
            continue
        source = real.get(relation.remote_app_name, f"{model}/{relation.remote_app_name}")
        related.setdefault(source, []).append(relation.endpoint)
    return related


def _units(sim: Simulation) -> dict[str, int]:
    topology = sim.topology
    units = {f"{topology.model}/{topology.coordinator.app}": topology.coordinator.units}
    units |= {f"{topology.model}/{w.app}": w.units for w in topology.workers}
    if topology.mesh.enabled:
        units[f"{topology.beacon_model}/{topology.mesh.beacon}"] = 1
    for backend in topology.backends().values():
        units[f"{topology.backend_model(backend)}/{backend.app}"] = backend.units
    units |= {f"{topology.model}/{c.app}": c.units for c in topology.api_clients}
    units |= {f"{s.model}/{s.app}": 1 for s in topology.cross_model_sources}
    if topology.tls:
        units[f"{topology.model}/{CERTIFICATES_APP}"] = 1
    return units


def _template_labels(statefulset: Manifest) -> dict[str, str]:
    return dict(statefulset["spec"]["template"]["metadata"].get("labels", {}))


def _clean(obj: Manifest) -> Manifest:
    """The object as one would write it: no server-assigned metadata, conventional key order."""
    metadata = obj["metadata"]
    kept = {key: metadata[key] for key in ("name", "namespace", "labels") if key in metadata}
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "metadata": kept,
        "spec": obj["spec"],
    }


def _owned(policy: Manifest, labels: dict[str, str]) -> bool:
    found = policy["metadata"].get("labels", {})
    return all(found.get(key) == value for key, value in labels.items())


def _published(relations: Any) -> list[MeshPolicy]:
    for relation in relations:
        if relation.endpoint == "service-mesh":
            raw = relation.local_app_data.get("policies", "[]")
            return [MeshPolicy.model_validate(item) for item in json.loads(raw)]
    return []


def _observability(relations: Any) -> dict[str, list[str]]:
    """What the coordinator leader published to each Prometheus, Loki and Grafana."""
    received: dict[str, list[str]] = {}
    for relation in sorted(relations, key=lambda r: (r.endpoint, r.id)):
        bag = relation.local_app_data
        key = f"{relation.endpoint}:{getattr(relation, 'remote_app_name', '')}"
        if relation.endpoint in ("metrics-endpoint", "logging") and "alert_rules" in bag:
            received[key] = alert_rules.group_names(json.loads(bag["alert_rules"]))
        elif relation.endpoint == "grafana-dashboard" and "dashboards" in bag:
            templates = json.loads(bag["dashboards"])["templates"]
            received[key] = [
                f"{name}: {json.loads(decode_content(t['content'])).get('title', '?')}"
                for name, t in sorted(templates.items())
            ]
    return received


def _worker_data(relations: Any) -> dict[str, ClusterProviderAppData | str]:
    data: dict[str, ClusterProviderAppData | str] = {}
    for relation in sorted(relations, key=lambda r: getattr(r, "remote_app_name", "")):
        if relation.endpoint != "cluster":
            continue
        try:
            data[relation.remote_app_name] = ClusterProviderAppData.load(relation.local_app_data)
        except ClusterDataError as e:
            data[relation.remote_app_name] = f"unreadable: {e}"
    return data


_LISTEN = re.compile(r"^        listen (\d+)( ssl)?[ ;]", re.MULTILINE)


def _urls(topology: Topology, conf: str | None, relations: Any) -> list[tuple[str, str]]:
    """Every URL the coordinator serves (from nginx.conf) or publishes, with its scheme."""
    host = f"{topology.coordinator.app}.{topology.model}.svc.cluster.local"
    urls = {
        ("nginx serves", f"{'https' if tls else 'http'}://{host}:{port}")
        for port, tls in _LISTEN.findall(conf or "")
    }
    for relation in relations:
        bag = relation.local_app_data
        if relation.endpoint == "metrics-endpoint" and "scrape_jobs" in bag:
            for job in json.loads(bag["scrape_jobs"]):
                for target in job["static_configs"][0]["targets"]:
                    scheme = job.get("scheme", "http")
                    url = f"{scheme}://{target}{job['metrics_path']}"
                    urls.add((f"scrape job {relation.remote_app_name}", url))
        if relation.endpoint == "cluster" and "loki_endpoints" in bag:
            for url in json.loads(bag["loki_endpoints"]).values():
                urls.add((f"logs of {relation.remote_app_name}", url))
    return sorted(urls, key=lambda row: (row[0], row[1]))


def _nginx_conf(actor: Any) -> str | None:
    """nginx.conf as pushed, with the machine-specific resolver address made generic."""
    container = actor.state.get_container("nginx")
    path = container.get_filesystem(actor.ctx) / NGINX_CONFIG_PATH.lstrip("/")
    if not path.is_file():
        return None
    return _RESOLVER.sub(rf"\g<1>{RESOLVER_PLACEHOLDER}", path.read_text())
