# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Compute resources: CPU and memory requests and limits on a workload container.

Operators size pods with charm config; the leader patches its own StatefulSet's pod template
the way the maintained ``kubernetes_compute_resources_patch`` library (v0.8) does, so a charm
that moves from it keeps the same field ownership and Kubernetes sees the same requests:

- ``GET`` the StatefulSet: are the resources already as wanted? If so, nothing else;
- ``GET`` it again and ``PATCH`` a server-side apply (``application/apply-patch+yaml``, field
  manager ``ResourcePatcher``, no ``force``) of ``apiVersion``/``kind``, the live ``selector``
  and ``serviceName``, and the one container ``{name, resources: {limits, requests}}``.

Limits follow upstream's ``adjust_resource_requirements(adhere_to_requests=True)``: a limit
below its request is raised to it, every limit is written as a plain decimal (``2Gi`` becomes
``2147483648``), a resource with a limit and no request is requested at its limit, and memory is
rounded up to whole bytes. Quantities are parsed here (the Kubernetes grammar), not with
lightkube, so computing what is wanted, which every hook does, loads no HTTP stack.

A patch changes the pod template, so Kubernetes rolls the pods: :class:`ResourcePatch` applies a
given spec once (a fingerprint in stored state), and a steady hook sends no request at all.
"""

from __future__ import annotations

import dataclasses
import decimal
import logging
import math
import re
from typing import TYPE_CHECKING, Any, cast

import ops

from service_mesh import kubernetes_client, safe_text
from service_mesh.databag import canonical_json
from service_mesh.errors import KubernetesError

from ._status import Problem, kubernetes_problem

if TYPE_CHECKING:
    from collections.abc import Mapping

    import lightkube

__all__ = [
    "FIELD_MANAGER",
    "ComputeResources",
    "ContainerNotFoundError",
    "InvalidResourcesError",
    "ResourcePatch",
    "ResourceRequirements",
    "adjust_requirements",
    "parse_quantity",
    "patch_resources",
]

logger = logging.getLogger(__name__)

FIELD_MANAGER = "ResourcePatcher"
"""The maintained library's field manager: the same one keeps ownership across a migration."""

RESOURCES = ("cpu", "memory")

_NUMBER = r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+"
_QUANTITY = re.compile(
    rf"(?P<number>\+?(?:{_NUMBER}))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?"
)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_MAX_TEXT = 64
_MAX_EXPONENT = 30  # no CPU or memory quantity is that far off; Decimal would overflow later
_THOUSANDTH = decimal.Decimal("0.001")


class InvalidResourcesError(ValueError):
    """A configured request or limit is not a non-negative Kubernetes quantity; says which."""


class ContainerNotFoundError(ValueError):
    """The StatefulSet has no container of the name to size (a charm bug, or not yet there)."""


def parse_quantity(text: str) -> decimal.Decimal:
    """The value of a Kubernetes quantity (``50m``, ``2Gi``, ``1e3``), non-negative.

    Raises:
        InvalidResourcesError: not a quantity Kubernetes accepts for a resource.
    """
    match = _QUANTITY.fullmatch(text) if len(text) <= _MAX_TEXT else None
    if match is None:
        raise InvalidResourcesError(f"{safe_text(text, _MAX_TEXT)!r} is not a quantity")
    number = decimal.Decimal(match["number"])
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * (1024 ** _BINARY[suffix])
    if suffix[:1] in ("e", "E"):
        exponent = int(suffix[1:])
        if abs(exponent) > _MAX_EXPONENT:
            raise InvalidResourcesError(f"{text!r} is out of range")
        return number.scaleb(exponent)
    return number.scaleb(_DECIMAL.get(suffix, 0))


@dataclasses.dataclass(frozen=True)
class ResourceRequirements:
    """A container's ``resources``: resource name -> quantity text, as sent to Kubernetes."""

    limits: Mapping[str, str]
    requests: Mapping[str, str]

    def to_json(self) -> dict[str, dict[str, str]]:
        """The ``resources`` object of a container (``limits`` present even when empty)."""
        return {"limits": dict(self.limits), "requests": dict(self.requests)}


def _sanitised(spec: Mapping[str, str], what: str) -> dict[str, str]:
    """Empty values dropped, each checked; memory rounded up to whole bytes."""
    result: dict[str, str] = {}
    for name, text in spec.items():
        if not text:
            continue
        try:
            value = parse_quantity(text)
        except InvalidResourcesError as e:
            raise InvalidResourcesError(f"{what} {name}: {e}") from None
        if name == "memory" and value != value.to_integral_value():
            text = str(math.ceil(value))
        result[name] = text
    return result


def adjust_requirements(
    limits: Mapping[str, str], requests: Mapping[str, str]
) -> ResourceRequirements:
    """Requests as given; limits raised to their request and written as plain decimals.

    Raises:
        InvalidResourcesError: a value is not a non-negative quantity.
    """
    wanted_limits = _sanitised(limits, "limit")
    wanted_requests = _sanitised(requests, "request")
    # Kubernetes requests a resource at its limit when no request is given: say so outright.
    wanted_requests.update({k: v for k, v in wanted_limits.items() if k not in wanted_requests})
    adjusted: dict[str, str] = {}
    for name, text in wanted_limits.items():
        value = max(parse_quantity(wanted_requests[name]), parse_quantity(text))
        try:
            rounded = value.quantize(_THOUSANDTH, rounding=decimal.ROUND_UP)
        except decimal.InvalidOperation:
            raise InvalidResourcesError(f"limit {name}: {text!r} is out of range") from None
        adjusted[name] = str(rounded).rstrip("0").rstrip(".")
    return ResourceRequirements(limits=adjusted, requests=wanted_requests)


@dataclasses.dataclass(frozen=True)
class ComputeResources:
    """Which charm config options size the workload container, and the default requests.

    Declare the options (``type: string``) in ``charmcraft.yaml``; an empty value means "not
    set". A request option the charm does not declare takes ``default_requests``.
    """

    container: str | None = None
    """The container to size; None: the coordinator's nginx, or the worker's workload."""
    limit_options: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: {"cpu": "cpu_limit", "memory": "memory_limit"}
    )
    request_options: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: {"cpu": "cpu_request", "memory": "memory_request"}
    )
    default_requests: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: {"cpu": "50m", "memory": "100Mi"}
    )

    def requirements(self, config: Mapping[str, Any]) -> ResourceRequirements:
        """What the container should get under ``config`` (the charm's config).

        Raises:
            InvalidResourcesError: a value is not a non-negative quantity.
        """
        limits = {name: _option(config, option) for name, option in self.limit_options.items()}
        requests = dict(self.default_requests)
        for name, option in self.request_options.items():
            if option in config:
                requests[name] = _option(config, option)
        return adjust_requirements(limits, requests)


def _option(config: Mapping[str, Any], option: str) -> str:
    value = config.get(option)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidResourcesError(f"option {option!r} must be a string")
    return value.strip()


def _canonical(resources: Mapping[str, Any] | None) -> dict[str, dict[str, decimal.Decimal]]:
    """Resources compared by value (``1000m`` equals ``1``); unreadable values never equal."""
    result: dict[str, dict[str, decimal.Decimal]] = {}
    for part in ("limits", "requests"):
        values: Any = (resources or {}).get(part) or {}
        texts = {str(name): str(text) for name, text in dict(values).items()}
        result[part] = {name: _value_or_nan(text) for name, text in texts.items()}
    return result


def _value_or_nan(text: str) -> decimal.Decimal:
    try:
        return parse_quantity(text)
    except InvalidResourcesError:
        return decimal.Decimal("NaN")  # never equal to anything: such a value is replaced


def _live(client: lightkube.Client, app: str, namespace: str) -> dict[str, Any]:
    from lightkube.resources.apps_v1 import StatefulSet

    from service_mesh import kubernetes_errors

    with kubernetes_errors(f"get StatefulSet {app}", app):
        sts = client.get(StatefulSet, app, namespace=namespace)
    return cast("dict[str, Any]", sts.to_dict())  # pyright: ignore[reportUnknownMemberType]


def _template_resources(sts: Mapping[str, Any], container: str) -> Mapping[str, Any] | None:
    spec: Any = sts.get("spec") or {}
    containers: list[dict[str, Any]] = spec.get("template", {}).get("spec", {}).get("containers")
    for item in containers or []:
        if item.get("name") == container:
            return cast("Mapping[str, Any]", item.get("resources") or {})
    raise ContainerNotFoundError(f"the StatefulSet has no container {container!r}")


def patch_body(
    sts: Mapping[str, Any], container: str, wanted: ResourceRequirements
) -> dict[str, Any]:
    """The apply body upstream sends: the live selector and serviceName, and one container."""
    spec = sts.get("spec", {})
    return {
        "spec": {
            "selector": spec.get("selector"),
            "template": {"spec": {"containers": [{"name": container, **_resources(wanted)}]}},
            "serviceName": spec.get("serviceName"),
        },
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
    }


def _resources(wanted: ResourceRequirements) -> dict[str, Any]:
    return {"resources": wanted.to_json()}


def patch_resources(
    client: lightkube.Client,
    app: str,
    namespace: str,
    container: str,
    wanted: ResourceRequirements,
) -> bool:
    """Give ``container`` of StatefulSet ``app`` the resources ``wanted``; whether it patched.

    Raises:
        KubernetesError: a request failed.
        ContainerNotFoundError: the StatefulSet has no such container.
    """
    from lightkube.resources.apps_v1 import StatefulSet
    from lightkube.types import PatchType

    from service_mesh import kubernetes_errors

    current = _template_resources(_live(client, app, namespace), container)
    if _canonical(current) == _canonical(wanted.to_json()):
        return False
    body = patch_body(_live(client, app, namespace), container, wanted)
    with kubernetes_errors(f"patch the resources of StatefulSet {app}", app):
        client.patch(  # pyright: ignore[reportUnknownMemberType]
            StatefulSet,
            app,
            body,
            namespace=namespace,
            patch_type=PatchType.APPLY,
            field_manager=FIELD_MANAGER,
        )
    logger.info("resources of %s in StatefulSet %s set to %s", container, app, wanted.to_json())
    return True


class ResourcePatch(ops.Object):
    """A charm's side: patch its own StatefulSet once per wanted spec (leader only)."""

    _applied = ops.StoredState()

    def __init__(self, charm: ops.CharmBase, resources: ComputeResources, container: str) -> None:
        super().__init__(charm, f"resources-{resources.container or container}")
        self._applied.set_default(fingerprint="", sized=False)
        self._charm = charm
        self._resources = resources
        self._container = resources.container or container
        self._problems: list[Problem] = []
        self._wanted: ResourceRequirements | None = None  # as this hook's reconcile found it

    @property
    def problems(self) -> list[Problem]:
        """An invalid value (blocked) or a failed patch (as any Kubernetes failure)."""
        if self._wanted is None and not self._problems:  # no reconcile in this hook
            try:
                self._resources.requirements(self._charm.config)
            except InvalidResourcesError as e:
                return [Problem.blocked(f"resources: {e}")]
        return list(self._problems)

    def reconcile(self, *, verify: bool) -> None:
        """Patch if the wanted spec changed (or ``verify``: compare with the cluster anyway).

        An invalid value patches nothing (the pods keep their last good resources); a failure
        leaves the fingerprint unset, so the next hook tries again. With nothing configured and
        nothing applied before, no request is made at all.
        """
        self._problems.clear()
        if not self._charm.unit.is_leader():
            return
        try:
            wanted = self._wanted = self._resources.requirements(self._charm.config)
        except InvalidResourcesError as e:
            logger.error("resources: %s", e)
            self._problems.append(Problem.blocked(f"resources: {e}"))
            return
        desired = canonical_json({"container": self._container, "resources": wanted.to_json()})
        if not verify and desired == self._applied.fingerprint:
            return
        if not (wanted.limits or wanted.requests or self._applied.sized):
            return  # nothing configured, and nothing of ours to take back: no request at all
        app = self._charm.app.name
        try:
            with kubernetes_client(self.model.name, FIELD_MANAGER) as client:
                patch_resources(client, app, self.model.name, self._container, wanted)
        except (KubernetesError, ContainerNotFoundError) as e:
            logger.error("resources: %s", safe_text(str(e), 1000))
            problem = (
                kubernetes_problem("resources", e, app)
                if isinstance(e, KubernetesError)
                else Problem.blocked(f"resources: {e}")
            )
            self._problems.append(problem)
            self._applied.fingerprint = ""
            return
        if desired != self._applied.fingerprint:  # stored state written only on a change
            self._applied.fingerprint = desired
        sized = bool(wanted.limits or wanted.requests)
        if sized != self._applied.sized:
            self._applied.sized = sized
