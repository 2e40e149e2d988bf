# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Who is related to whom: the Juju relations of a topology, seen from each simulated unit.

Each relation is a :class:`Link` named the same on both ends (``cluster:worker-read``), so what
one end writes can be handed to the other. The apps a plan does not run (telemetry backends and
cross-model sources) are written here as static databags, in their real wire format.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING

from service_mesh import CMRData

from .topology import CERTIFICATES_APP, model_uuid

if TYPE_CHECKING:
    from .topology import Backend, Topology

Bag = dict[str, str]


@dataclasses.dataclass(frozen=True)
class Link:
    """One relation as one unit sees it.

    ``writer`` is the simulated app whose output feeds the remote side; when None the remote
    side is the static ``app_data``/``units_data``.
    """

    name: str
    endpoint: str
    interface: str
    remote_app: str
    remote_units: tuple[int, ...]
    writer: str | None = None
    app_data: Bag = dataclasses.field(default_factory=Bag)
    units_data: dict[int, Bag] = dataclasses.field(default_factory=dict[int, Bag])
    remote_model: str | None = None
    """The remote app's model when it is related across models."""
    limit: int = 1

    @property
    def remote_model_uuid(self) -> str | None:
        """What ops.testing needs to treat the relation as cross-model."""
        return None if self.remote_model is None else model_uuid(self.remote_model)


def _static(
    name: str, endpoint: str, interface: str, app: str, units: int, remote_model: str | None
) -> Link:
    return Link(name, endpoint, interface, app, tuple(range(units)), remote_model=remote_model)


def coordinator_links(topology: Topology) -> list[Link]:
    """Every relation of a coordinator unit."""
    links = [
        Link(
            f"cluster:{worker.app}",
            "cluster",
            "cluster",
            worker.app,
            tuple(range(worker.units)),
            writer=worker.app,
        )
        for worker in topology.workers
    ]
    if topology.mesh.enabled:
        links.append(beacon_link(topology, for_beacon=False))
    links += [
        _static(f"api:{client.app}", "api", "coordinated_api", client.app, client.units, None)
        for client in topology.api_clients
    ]
    for source in topology.cross_model_sources:
        interface = "coordinated_api" if source.endpoint == "api" else "prometheus_scrape"
        name = source.local_name
        links.append(
            _static(f"{source.endpoint}:{name}", source.endpoint, interface, name, 1, source.model)
        )
        links.append(_cmr_link(name, source.app, source.model))
    links.extend(_backend_links(topology))
    if topology.tls:
        links.append(certificates_link(topology, for_provider=False))
    return links


def certificates_link(topology: Topology, *, for_provider: bool) -> Link:
    """``certificates`` between the coordinator and the provider stand-in, from either side.

    The coordinator units' CSRs reach the provider; its app bag (the certificates) comes back.
    """
    coordinator = topology.coordinator
    if for_provider:
        units = tuple(range(coordinator.units))
        return Link(
            "certificates",
            "certificates",
            "tls-certificates",
            coordinator.app,
            units,
            writer=coordinator.app,
        )
    return Link(
        "certificates",
        "certificates",
        "tls-certificates",
        CERTIFICATES_APP,
        (0,),
        writer=CERTIFICATES_APP,
    )


def _cmr_link(local_name: str, real_app: str, model: str) -> Link:
    """``provide-cmr-mesh`` from a cross-model app: its real name and model (``cmr_data``)."""
    cmr_data = json.dumps(CMRData(app_name=real_app, juju_model_name=model).model_dump())
    link = _static(
        f"cmr:{local_name}", "provide-cmr-mesh", "cross_model_mesh", local_name, 1, model
    )
    return dataclasses.replace(link, app_data={"cmr_data": cmr_data})


def _unit_urls(backend: Backend, model: str, key: str, port: int, path: str) -> dict[int, Bag]:
    host = f"{backend.app}-{{n}}.{backend.app}-endpoints.{model}.svc.cluster.local"
    return {
        n: {key: json.dumps({"url": f"http://{host.format(n=n)}:{port}{path}"})}
        for n in range(backend.units)
    }


def _backend_links(topology: Topology) -> list[Link]:
    links: list[Link] = []
    for kind, backend in topology.backends().items():
        model = topology.backend_model(backend)
        remote_model = model if model != topology.model else None
        app, units = backend.app, backend.units
        if kind == "prometheus":
            urls = _unit_urls(backend, model, "remote_write", 9090, "/api/v1/write")
            links += [
                _static(
                    f"metrics-endpoint:{app}",
                    "metrics-endpoint",
                    "prometheus_scrape",
                    app,
                    units,
                    remote_model,
                ),
                dataclasses.replace(
                    _static(
                        f"send-remote-write:{app}",
                        "send-remote-write",
                        "prometheus_remote_write",
                        app,
                        units,
                        remote_model,
                    ),
                    units_data=urls,
                ),
            ]
        elif kind == "loki":
            urls = _unit_urls(backend, model, "endpoint", 3100, "/loki/api/v1/push")
            link = _static(f"logging:{app}", "logging", "loki_push_api", app, units, remote_model)
            links.append(dataclasses.replace(link, units_data=urls))
        elif kind == "grafana":
            endpoint, interface = "grafana-dashboard", "grafana_dashboard"
            links.append(
                _static(f"{endpoint}:{app}", endpoint, interface, app, units, remote_model)
            )
        else:
            receivers = {"receivers": json.dumps(_tempo_receivers(app, model))}
            links += [
                dataclasses.replace(
                    _static(f"{endpoint}:{app}", endpoint, "tracing", app, units, remote_model),
                    app_data=receivers,
                )
                for endpoint in ("charm-tracing", "workload-tracing")
            ]
        if remote_model is not None:
            links.append(_cmr_link(app, app, remote_model))
    return links


def _tempo_receivers(app: str, model: str) -> list[dict[str, object]]:
    host = f"{app}.{model}.svc.cluster.local"
    return [
        {"protocol": {"name": "otlp_grpc", "type": "grpc"}, "url": f"{host}:4317"},
        {"protocol": {"name": "otlp_http", "type": "http"}, "url": f"http://{host}:4318"},
    ]


def beacon_link(topology: Topology, *, for_beacon: bool) -> Link:
    """The ``service-mesh`` relation, from the coordinator's or the beacon's side."""
    remote_model = None
    if topology.beacon_model != topology.model:
        remote_model = topology.model if for_beacon else topology.beacon_model
    if for_beacon:
        coordinator = topology.coordinator
        return Link(
            "service-mesh",
            "service-mesh",
            "service_mesh",
            coordinator.app,
            tuple(range(coordinator.units)),
            writer=coordinator.app,
            remote_model=remote_model,
        )
    beacon = topology.mesh.beacon
    return Link(
        "service-mesh",
        "service-mesh",
        "service_mesh",
        beacon,
        (0,),
        writer=beacon,
        remote_model=remote_model,
    )


def worker_links(topology: Topology, worker_app: str) -> list[Link]:
    """A worker unit's one relation: ``cluster`` to the coordinator."""
    coordinator = topology.coordinator
    return [
        Link(
            f"cluster:{worker_app}",
            "cluster",
            "cluster",
            coordinator.app,
            tuple(range(coordinator.units)),
            writer=coordinator.app,
        )
    ]
