# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The test coordinator most library tests run: its config, its charm, its pod and its cluster.

Each test names only what it tests. `minimal_coordinator_config` is a one-role cluster whose
workers serve ``/<role>`` on ``port``, with every optional endpoint that would need relations or
Kubernetes switched off unless the test keeps it; `coordinator_charm` wraps any config in a charm
(a `CoordinatorTester`) that reports the coordinator's problems as its status;
`coordinator_state` is a pod with reachable nginx and exporter containers; `kubernetes_with` is
the fake cluster it labels.

Example::

    Charm = coordinator_charm(minimal_coordinator_config())
    META = {"name": "c", "containers": COORDINATOR_CONTAINERS, "provides": {...}}

    def test_something():
        with kubernetes_with("c", model="test"):
            ctx = testing.Context(Charm, meta=META, app_name="c")
            out = ctx.run(ctx.on.config_changed(), coordinator_state(worker_relation(...)))
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import ops
from ops import testing

from coordinated_workers import ClusterRolesConfig
from coordinated_workers._coordinator import Coordinator, CoordinatorConfig, CoordinatorEndpoints
from coordinated_workers._nginx import RoleRoute
from service_mesh.testing import FakeKubernetes

COORDINATOR_CONTAINERS: dict[str, Any] = {"nginx": {}, "nginx-prometheus-exporter": {}}
"""The containers a coordinator charm declares (its metadata's ``containers``)."""

OPTIONAL_ENDPOINTS = (
    "metrics",
    "logging",
    "charm_tracing",
    "workload_tracing",
    "remote_write",
    "service_mesh",
    "require_cmr_mesh",
    "provide_cmr_mesh",
)


def minimal_coordinator_config(
    *,
    role: str = "work",
    port: int = 9000,
    workload_config: str | Callable[[Any], str] = "x: 1\n",
    keep: tuple[str, ...] = (),
    **fields: Any,
) -> CoordinatorConfig:
    """A one-role coordinator config; ``keep`` names optional endpoints left at their default.

    ``workload_config`` is the text every worker gets, or the charm's callback itself.
    """
    off: dict[str, Any] = {name: None for name in OPTIONAL_ENDPOINTS if name not in keep}
    settings: dict[str, Any] = {
        "roles": ClusterRolesConfig(roles={role}, meta_roles={}, minimal_deployment={role}),
        "workload_config": (
            workload_config if callable(workload_config) else lambda _context: workload_config
        ),
        "routes": [RoleRoute(f"/{role}", role, port)],
        "worker_metrics_port": port,
        "endpoints": CoordinatorEndpoints(**off),
    }
    return CoordinatorConfig(**{**settings, **fields})


class CoordinatorTester(ops.CharmBase):
    """A charm that is a `Coordinator` with its class's `CONFIG` and nothing else.

    Its collect-status shows the coordinator's problems (the worst one wins), else active, as
    the reference charm does.
    """

    CONFIG: ClassVar[CoordinatorConfig]

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.coordinator = Coordinator(self, self.CONFIG)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        for problem in self.coordinator.problems:
            event.add_status(problem.status())
        event.add_status(ops.ActiveStatus())


def coordinator_charm(config: CoordinatorConfig) -> type[CoordinatorTester]:
    """A `CoordinatorTester` class of its own with `config` (ops.testing takes a charm class)."""

    class Charm(CoordinatorTester):
        CONFIG = config

    return Charm


def coordinator_containers(**nginx: Any) -> list[testing.Container]:
    """nginx and its exporter, reachable; nginx runs ``nginx -t`` and reloads.

    Args:
        **nginx: more ``testing.Container`` fields for nginx (e.g. ``mounts``).
    """
    return [
        testing.Container(
            "nginx",
            can_connect=True,
            execs={testing.Exec(["nginx", "-t"]), testing.Exec(["nginx", "-s", "reload"])},
            **nginx,
        ),
        testing.Container("nginx-prometheus-exporter", can_connect=True),
    ]


def coordinator_state(
    *relations: testing.RelationBase,
    model: str | testing.Model = "test",
    leader: bool = True,
    nginx: dict[str, Any] | None = None,
    **fields: Any,
) -> testing.State:
    """The leader's (or, with ``leader=False``, a follower's) state in `model`, with `relations`.

    Args:
        *relations: the relations the unit sees.
        model: the model, or its name (the fake cluster's namespace).
        leader: whether the unit leads.
        nginx: more fields for the nginx container (see `coordinator_containers`).
        **fields: any other ``testing.State`` field.
    """
    return testing.State(
        leader=leader,
        model=testing.Model(name=model) if isinstance(model, str) else model,
        containers=coordinator_containers(**(nginx or {})),
        relations=list(relations),
        **fields,
    )


@contextlib.contextmanager
def kubernetes_with(app: str, model: str = "test") -> Iterator[FakeKubernetes]:
    """A fake cluster in which Juju deployed `app` in `model`, the one lightkube reaches."""
    fake = FakeKubernetes()
    fake.add_juju_app(app, namespace=model)
    with fake.serve_to_environment(namespace=model):
        yield fake
