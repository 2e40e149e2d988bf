# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The coordinator's steps: each applies one part of a :class:`CoordinatorPlan`.

Every step returns what went wrong as :class:`Problem` values instead of raising, so one
failing step (Kubernetes refusing a call, Pebble down) leaves the later ones to run; the next
hook retries.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

import ops

from service_mesh import (
    PolicyResourceManager,
    kubernetes_client,
    reconcile_charm_labels,
    safe_text,
)
from service_mesh.errors import KubernetesError

from . import _charm_tracing
from . import _mesh as mesh
from ._nginx import (
    ExporterWorkload,
    NginxConfigRejectedError,
    NginxReloadError,
    NginxWorkload,
)
from ._nginx_tls import sync_certificate
from ._plan import KEEP, Authorised, CoordinatorPlan, authorised_apps, enrolled_labels
from ._status import Problem, kubernetes_problem, pebble_problem

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from types import TracebackType

    import lightkube

    from ._cluster import WorkerApp
    from ._log_forwarding import OwnLogForwarding
    from ._resources import ResourcePatch
    from .observability import SelfObservability

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class StepResult:
    """What a step found wrong, and whether every Kubernetes change it owed was made."""

    problems: tuple[Problem, ...] = ()
    complete: bool = True
    """False: something was not applied, so the fingerprint is not remembered as applied."""


@dataclasses.dataclass(frozen=True)
class PolicyResult(StepResult):
    """The policy step's result, with which apps may now be given the mesh labels."""

    authorised: Authorised = None


@dataclasses.dataclass(frozen=True)
class PebbleResult(StepResult):
    """A Pebble step's result, with whether Pebble answered (None: not asked)."""

    reachable: bool | None = None
    reload_pending: bool = False


@dataclasses.dataclass(frozen=True)
class CertificateResult(StepResult):
    """What nginx's certificate files hold after a step, and whether they just changed."""

    fingerprint: str = ""
    changed: bool = False


class KubernetesSession:
    """One hook's connection to the API server, opened on first use and closed at the end."""

    def __init__(self, app: str, model: str) -> None:
        self._app = app
        self._model = model
        self._client: lightkube.Client | None = None

    def __enter__(self) -> KubernetesSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def run(self, what: str, step: Callable[[lightkube.Client], object]) -> StepResult:
        """Run ``step`` with the hook's client; a Kubernetes failure becomes a problem."""
        try:
            step(self._kubernetes())
        except KubernetesError as e:
            logger.error("%s: %s", what, safe_text(str(e), 1000))
            return StepResult((kubernetes_problem(what, e, self._app),), complete=False)
        return StepResult()

    def policy_manager(
        self, client: lightkube.Client, charm: ops.CharmBase
    ) -> PolicyResourceManager:
        """The manager of our cluster-internal policies.

        Every one is in our namespace; listing only there keeps a coordinator elsewhere whose
        upstream labels equal ours (app "a-b" in model "c", app "a" in model "b-c") from having
        its policies deleted as ours. Our StatefulSet owns them: Kubernetes deletes them when
        Juju removes this app, and only then.
        """
        return PolicyResourceManager(
            charm,
            client,
            mesh.policy_manager_labels(self._app, self._model),
            namespace=self._model,
            owner_statefulset=self._app,
        )

    def _kubernetes(self) -> lightkube.Client:
        if self._client is None:
            self._client = kubernetes_client(
                self._model, mesh.policy_field_manager(self._app, self._model)
            )
        return self._client


def apply_policies(
    kube: KubernetesSession, charm: ops.CharmBase, plan: CoordinatorPlan
) -> PolicyResult:
    """Reconcile the cluster-internal policies; say which apps may be enrolled.

    ``authorised`` is None when there is nothing to hold back (no mesh, nothing changed since
    the last complete apply, or not the leader), the set of apps whose policies are in place
    after a reconcile (complete or partial), or ``KEEP`` when that could not be found out.
    """
    policy_plan = plan.policies
    if policy_plan.action == "none":
        return PolicyResult()
    if policy_plan.action == "keep":
        refused = policy_plan.problems
        return PolicyResult(refused, complete=not refused, authorised=KEEP)
    mesh_type = policy_plan.mesh_type
    if policy_plan.action == "delete" or mesh_type is None:
        result = kube.run(
            "cluster-internal policies",
            lambda client: kube.policy_manager(client, charm).delete(),
        )
        return PolicyResult(result.problems, result.complete)
    managers: list[PolicyResourceManager] = []

    def reconcile(client: lightkube.Client) -> None:
        managers.append(kube.policy_manager(client, charm))
        managers[0].reconcile(list(policy_plan.policies), mesh_type)

    result = kube.run("cluster-internal policies", reconcile)
    problems = (*policy_plan.problems, *result.problems)
    complete = result.complete and not policy_plan.problems
    last = managers[0].last_result if managers else None
    if last is None:
        return PolicyResult(problems, complete, authorised=KEEP)
    authorised = authorised_apps(
        charm.app.name, charm.model.name, policy_plan.policies, list(last.in_place)
    )
    return PolicyResult(problems, complete, authorised=authorised)


def apply_own_labels(
    kube: KubernetesSession,
    plan: CoordinatorPlan,
    authorised: Authorised,
    charm: ops.CharmBase,
    force: bool,
) -> StepResult:
    """Our own pods' labels; left as they are when it could not be found out (``KEEP``)."""
    if not (plan.apply_kubernetes and plan.labels_known) or authorised is KEEP:
        return StepResult()
    app = charm.app.name
    labels = enrolled_labels(app, plan, app, authorised, {})
    return kube.run(
        "pod labels",
        lambda client: reconcile_charm_labels(
            client,
            app,
            charm.model.name,
            mesh.pod_labels_configmap(app),
            labels,
            force=force,
        ),
    )


def apply_charm_tracing(plan: CoordinatorPlan, enabled: bool) -> StepResult:
    """Send our own charm traces to the real receiver (our proxy is for workers only).

    An https receiver is verified with the system's CAs. Without a ``charm_tracing`` endpoint
    the destination is left alone: the charm may manage ``ops.tracing`` itself.
    """
    if not enabled:
        return StepResult()
    try:
        _charm_tracing.set_destination(plan.charm_tracing)
    except ValueError as e:
        message = f"charm-tracing: {safe_text(str(e), 300)}"
        logger.warning("%s", message)
        return StepResult((Problem.blocked(message),))
    return StepResult()


def apply_nginx(
    container: ops.Container, plan: CoordinatorPlan, reload_pending: bool
) -> PebbleResult:
    """Push nginx.conf and reload nginx only when it changed (or an earlier reload failed)."""
    if plan.nginx is None:  # nothing is pushed: nginx keeps the last config it accepted
        return PebbleResult(plan.nginx_problems, reload_pending=reload_pending)
    problems = list(plan.nginx_problems)
    workload = NginxWorkload(container)
    reachable = None
    try:
        reachable = workload.reconcile(plan.nginx.text, reload_pending=reload_pending)
    except (NginxConfigRejectedError, NginxReloadError) as e:
        message = f"nginx: {e}"
        logger.error("%s", safe_text(message, 2000))
        problems.append(Problem.blocked(message))
    except ops.pebble.Error as e:
        problems.append(_pebble_failed(container.name, e))
    return PebbleResult(
        tuple(problems), reachable=reachable, reload_pending=workload.reload_pending
    )


def write_certificate(
    container: ops.Container,
    plan: CoordinatorPlan,
    key: Callable[[], str],
    applied: str,
    verify: bool,
) -> CertificateResult:
    """Before nginx: put the plan's certificate and key on disk (nothing without TLS).

    A change makes nginx reload once, together with any change of its config. On a failure
    the files are as they were and the next hook tries again.
    """
    if plan.tls is None:
        return CertificateResult(fingerprint=applied)
    try:
        fingerprint, changed = sync_certificate(container, plan.tls, key, applied, verify=verify)
    except ops.pebble.ConnectionError:  # the nginx step reports the container as waiting
        return CertificateResult(fingerprint=applied)
    except ops.pebble.Error as e:
        return CertificateResult((_pebble_failed(container.name, e),), fingerprint=applied)
    except (ops.ModelError, ValueError) as e:  # the key's secret
        message = safe_text(f"certificates: cannot read this unit's private key ({e})", 200)
        logger.error("%s", message)
        return CertificateResult((Problem.waiting(message),), fingerprint=applied)
    return CertificateResult(fingerprint=fingerprint, changed=changed)


def remove_certificate(container: ops.Container, applied: str) -> CertificateResult:
    """After nginx: without TLS, remove the certificate and key (nginx no longer reads them)."""
    if not applied:
        return CertificateResult()
    try:
        sync_certificate(container, None, str, applied, verify=False)
    except ops.pebble.ConnectionError:
        return CertificateResult(fingerprint=applied)
    except ops.pebble.Error as e:
        return CertificateResult((_pebble_failed(container.name, e),), fingerprint=applied)
    return CertificateResult(changed=True)


def apply_exporter(container: ops.Container, plan: CoordinatorPlan) -> PebbleResult:
    """Run nginx-prometheus-exporter with the plan's layer."""
    try:
        return PebbleResult(reachable=ExporterWorkload(container).reconcile(plan.exporter_layer))
    except ops.pebble.Error as e:
        return PebbleResult((_pebble_failed(container.name, e),))


def apply_resources(resources: ResourcePatch | None, *, verify: bool) -> StepResult:
    """Size our pods from charm config (leader; its problems are read as standing ones)."""
    if resources is not None:
        resources.reconcile(verify=verify)
    return StepResult()


def forward_own_logs(
    own_logs: OwnLogForwarding, reachable: Mapping[str, bool], loki_urls: Mapping[str, str]
) -> StepResult:
    """Forward the nginx and exporter containers' logs straight to Loki.

    Only containers whose Pebble answered in this hook are touched; the others wait for a
    later hook.
    """
    return StepResult(tuple(own_logs.reconcile(reachable, loki_urls)))


def publish_observability(
    observability: SelfObservability | None, workers: Sequence[WorkerApp]
) -> StepResult:
    """Publish the cluster's alert rules and dashboards (leader; rendered only on change).

    Files left out are read as standing problems, so they show in hooks that do not publish.
    """
    if observability is not None:
        observability.reconcile(workers)
    return StepResult()


def publish_catalogue(
    charm: ops.CharmBase, endpoint: str | None, plan: CoordinatorPlan
) -> StepResult:
    """Write the plan's catalogue entry, where the charm has one and declares the endpoint."""
    if plan.catalogue is not None and endpoint is not None and endpoint in charm.meta.relations:
        from ._catalogue import CatalogueRequirer  # only charms that publish an entry

        CatalogueRequirer(charm, endpoint).publish(plan.catalogue)
    return StepResult()


def _pebble_failed(container: str, error: ops.pebble.Error) -> Problem:
    logger.error("%s: Pebble failed: %s", container, safe_text(str(error), 500))
    return pebble_problem(container, error)


def worker_labels(
    plan: CoordinatorPlan,
    app: str,
    authorised: Authorised,
    published_by_app: Callable[[], Mapping[str, Mapping[str, str]]],
) -> Callable[[str], dict[str, str]]:
    """Each worker app's pod labels, given which apps' policies are in place."""
    published: Mapping[str, Mapping[str, str]] = published_by_app() if authorised is KEEP else {}
    return lambda worker: enrolled_labels(worker, plan, app, authorised, published)
