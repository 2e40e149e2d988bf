# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""``ops.testing`` builders and readers for the ``cluster`` relation.

Charm tests describe a cluster in domain terms (an app, its roles, how many units) and let
these helpers write the databags exactly as the real other side would, so no test hand-writes
JSON-in-strings. Requires ``ops[testing]``, which charms only install for their unit tests.

Example::

    reader = worker_relation("worker-read", ["read"], units=2)
    state = testing.State(leader=True, relations=[reader], model=testing.Model(name="test"))
    out = ctx.run(ctx.on.update_status(), state)
    published = read_provider_data(out.get_relation(reader.id))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ops import testing

from ._cluster_data import (
    ClusterProviderAppData,
    ClusterRequirerAppData,
    ClusterRequirerUnitData,
    JujuTopology,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "coordinator_relation",
    "layers_as_ops_sends_them",
    "read_provider_data",
    "read_worker_roles",
    "read_worker_unit_data",
    "worker_address",
    "worker_relation",
]

# What Juju itself puts in every unit databag; present so tests prove such keys are ignored.
_JUJU_UNIT_KEYS = {
    "egress-subnets": "192.0.2.0/32",
    "ingress-address": "192.0.2.0",
    "private-address": "192.0.2.0",
}


def worker_address(app: str, unit_number: int, model: str = "test") -> str:
    """The FQDN a worker unit publishes: its pod's name in the app's headless Service."""
    return f"{app}-{unit_number}.{app}-endpoints.{model}.svc.cluster.local"


def worker_relation(
    app: str,
    roles: Iterable[str],
    units: int = 1,
    model: str = "test",
    *,
    relation_id: int | None = None,
    charm_name: str = "worker-k8s",
    endpoint: str = "cluster",
    **overrides: Any,
) -> testing.Relation:
    """A cluster relation as the coordinator sees it once worker ``app`` has published.

    Args:
        app: the worker application's name.
        roles: the roles its leader announces (a single string is one role).
        units: how many units have joined and published their address and topology.
        model: the model name used in unit addresses.
        relation_id: a fixed relation id; a fresh one by default.
        charm_name: the worker's charm name, as sent in its topology.
        endpoint: the coordinator's cluster endpoint name.
        **overrides: any other ``testing.Relation`` field, replacing what is built here
            (e.g. ``remote_app_data={"role": "not json"}`` for a malformed worker).
    """
    role_names = (roles,) if isinstance(roles, str) else tuple(roles)
    units_data = {
        n: {
            **_JUJU_UNIT_KEYS,
            **ClusterRequirerUnitData(
                address=worker_address(app, n, model),
                juju_topology=JujuTopology(
                    application=app, unit=f"{app}/{n}", charm_name=charm_name
                ),
            ).dump(),
        }
        for n in range(units)
    }
    fields: dict[str, Any] = {
        "endpoint": endpoint,
        "interface": "cluster",
        "remote_app_name": app,
        "remote_app_data": ClusterRequirerAppData.from_roles(role_names).dump(),
        "remote_units_data": units_data,
        "limit": 1,
    }
    if relation_id is not None:
        fields["id"] = relation_id
    return testing.Relation(**{**fields, **overrides})


def coordinator_relation(
    data: ClusterProviderAppData | None = None,
    coordinator_app: str = "coordinator-k8s",
    *,
    relation_id: int | None = None,
    endpoint: str = "cluster",
    **overrides: Any,
) -> testing.Relation:
    """A cluster relation as a worker sees it, with ``data`` published by the coordinator.

    Args:
        data: the coordinator's application data; None for a coordinator that has not
            published yet.
        coordinator_app: the coordinator application's name.
        relation_id: a fixed relation id; a fresh one by default.
        endpoint: the worker's cluster endpoint name.
        **overrides: any other ``testing.Relation`` field, replacing what is built here.
    """
    fields: dict[str, Any] = {
        "endpoint": endpoint,
        "interface": "cluster",
        "remote_app_name": coordinator_app,
        "remote_app_data": data.dump() if data else {},
        "limit": 1,
    }
    if relation_id is not None:
        fields["id"] = relation_id
    return testing.Relation(**{**fields, **overrides})


def read_provider_data(relation: testing.Relation) -> ClusterProviderAppData:
    """What a coordinator published on ``relation`` (take it from the output state).

    Raises:
        ClusterDataError: if the published bag is malformed, which is a bug worth a failure.
    """
    return ClusterProviderAppData.load(relation.local_app_data)


def read_worker_roles(relation: testing.Relation) -> frozenset[str]:
    """The roles a worker's leader announced on ``relation`` (from the output state)."""
    return ClusterRequirerAppData.load(relation.local_app_data).roles


def read_worker_unit_data(relation: testing.Relation) -> ClusterRequirerUnitData:
    """What a worker unit published about itself on ``relation`` (from the output state)."""
    return ClusterRequirerUnitData.load(relation.local_unit_data)


def layers_as_ops_sends_them(container: testing.Container) -> dict[str, str]:
    """Each Pebble layer of an output container as the YAML real ops sends to Pebble.

    ``ops.testing`` stores a layer as given, so a layer real ops could not serialise (a lone
    surrogate in a name or URL makes its YAML dump raise) passes there unnoticed; assert on
    this in a test to get real ops' behaviour.

    Raises:
        UnicodeEncodeError: a layer holds text that cannot be encoded, as real ops would.
    """
    return {name: layer.to_yaml() for name, layer in container.layers.items()}
