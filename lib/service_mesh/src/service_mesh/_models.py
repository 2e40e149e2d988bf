# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Policy and relation-data models, wire-compatible with the upstream service-mesh library.

Field names, field order and defaults are part of the wire format: the consumer's databag is a
plain ``model_dump()`` of :class:`MeshPolicy`, and AuthorizationPolicy names embed a hash of
``str(MeshPolicy)``. Reordering a field, renaming a class or changing a default therefore
changes every policy name in every cluster that runs this library. Don't.

A policy that can only do harm (a unit policy with L7 rules, which no manifest can carry, or a
unit policy with no target, which would be namespace-wide) is refused at construction with a
:class:`ValueError` that says why.
"""

from __future__ import annotations

import enum
import warnings
from typing import Annotated, Any

import pydantic

# Juju's own rule for application names (juju/names ``IsValidApplication``): lowercase words
# joined by single hyphens, no word all digits (``app-1`` would read as a unit). Kubernetes then
# caps them at 63 characters: the name is also the app's Service and service account.
_JUJU_APP_NAME = r"^[a-z][a-z0-9]*(-[a-z0-9]*[a-z][a-z0-9]*)*$"
# Juju accepts model names ``^[a-z0-9]+[a-z0-9-]*$`` (``obs--prod`` included); on Kubernetes the
# model is a namespace, a DNS-1123 label, which also rules out a trailing hyphen. Together:
_NAMESPACE = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
# A Kubernetes Service name (DNS-1035 label): what ``target_service`` names.
_SERVICE_NAME = r"^[a-z]([a-z0-9-]*[a-z0-9])?$"
_MAX_NAME = 63

AppName = Annotated[str, pydantic.Field(pattern=_JUJU_APP_NAME, max_length=_MAX_NAME)]
"""A Juju application name that can exist on Kubernetes."""
Namespace = Annotated[str, pydantic.Field(pattern=_NAMESPACE, max_length=_MAX_NAME)]
"""A Kubernetes namespace, which for Juju is a model name."""
ServiceName = Annotated[str, pydantic.Field(pattern=_SERVICE_NAME, max_length=_MAX_NAME)]
Port = Annotated[int, pydantic.Field(ge=1, le=65535)]

_ON_FIRST_USE = pydantic.ConfigDict(defer_build=True)
"""Each model builds its validator when first used, not when the module is imported: a hook
pays only for the models it reads or writes (a consumer with no cross-model relation never
builds `CMRData`), and importing the package stays cheap."""


class Method(str, enum.Enum):
    """HTTP methods an :class:`Endpoint` may allow."""

    connect = "CONNECT"
    delete = "DELETE"
    get = "GET"
    head = "HEAD"
    options = "OPTIONS"
    patch = "PATCH"
    post = "POST"
    put = "PUT"
    trace = "TRACE"


class MeshType(str, enum.Enum):
    """Service mesh implementations a provider can announce."""

    istio = "istio"


class PolicyTargetType(str, enum.Enum):
    """What a policy protects: an application's Service (L7) or its pods (L4)."""

    app = "app"
    unit = "unit"


class Endpoint(pydantic.BaseModel):
    """A set of ports, hosts, methods and paths a source may reach; ``None`` means any."""

    model_config = _ON_FIRST_USE

    hosts: list[str] | None = None
    ports: list[Port] | None = None
    methods: list[Method] | None = None
    paths: list[str] | None = None

    @property
    def is_l4(self) -> bool:
        """Whether this endpoint restricts nothing but ports, so ztunnel can enforce it."""
        return not (self.hosts or self.methods or self.paths)


class AppPolicy(pydantic.BaseModel):
    """Let applications related on ``relation`` reach this app's Service (enforced at L7)."""

    model_config = _ON_FIRST_USE

    relation: str
    endpoints: list[Endpoint]
    service: str | None = None


class Policy(AppPolicy):
    """Deprecated alias of :class:`AppPolicy`, kept so charms written for upstream still load."""

    def __init__(self, **data: Any) -> None:
        warnings.warn("Policy is deprecated; use AppPolicy", DeprecationWarning, stacklevel=2)
        super().__init__(**data)


class UnitPolicy(pydantic.BaseModel):
    """Let applications related on ``relation`` reach this app's pods directly (L4, ports only)."""

    model_config = _ON_FIRST_USE

    relation: str
    ports: list[Port] | None = None


class MeshPolicy(pydantic.BaseModel):
    """One concrete allow rule: a source application may reach a target.

    This is what travels in the ``policies`` key of the ``service_mesh`` relation and what
    :func:`service_mesh.istio.authorization_policies` turns into an AuthorizationPolicy.

    Names are checked as Juju and Kubernetes check them (upstream accepts any string): a name
    the API server would refuse in a policy name or a principal is refused here, when a
    consumer's bag is decoded, rather than by the API server on every reconcile.
    """

    model_config = _ON_FIRST_USE

    source_namespace: Namespace
    source_app_name: AppName
    target_namespace: Namespace
    target_app_name: AppName | None = None
    target_selector_labels: dict[str, str] | None = None
    target_service: ServiceName | None = None
    target_type: PolicyTargetType = PolicyTargetType.app
    endpoints: list[Endpoint] = pydantic.Field(default_factory=lambda: list[Endpoint]())

    @pydantic.model_validator(mode="after")
    def _check_target(self) -> MeshPolicy:
        if self.target_type is PolicyTargetType.app:
            if not (self.target_app_name or self.target_service):
                raise ValueError(
                    "an app policy needs target_app_name or target_service to know which "
                    "Service it protects"
                )
            if self.target_selector_labels:
                raise ValueError(
                    "an app policy targets a Service and cannot use target_selector_labels; "
                    "use target_type='unit' for a pod selector"
                )
            return self
        if self.target_service:
            raise ValueError("a unit policy targets pods and cannot use target_service")
        if self.target_app_name and self.target_selector_labels:
            raise ValueError(
                "a unit policy takes target_app_name or target_selector_labels, not both"
            )
        if not (self.target_app_name or self.target_selector_labels):
            raise ValueError(
                "a unit policy needs target_app_name or target_selector_labels; without a "
                "target it would allow the source into every pod of the namespace"
            )
        for endpoint in self.endpoints:
            if not endpoint.is_l4:
                raise ValueError(
                    "a unit policy is enforced at L4 and can only restrict ports; "
                    f"hosts, methods and paths are not allowed (got {endpoint!r})"
                )
        return self


class CMRData(pydantic.BaseModel):
    """What a cross-model source tells the target about its real identity (``cmr_data``).

    Both names become part of an Istio principal (``cluster.local/ns/<model>/sa/<app>``), so
    they must be real Juju names: ``*`` or ``/`` would widen the principal to every service
    account of a namespace, or beyond. Upstream accepts any string.
    """

    model_config = _ON_FIRST_USE

    app_name: AppName
    juju_model_name: Namespace


class ServiceMeshProviderAppData(pydantic.BaseModel):
    """The provider's application databag: labels to put on pods and the mesh implementation."""

    model_config = _ON_FIRST_USE

    labels: dict[str, str]
    mesh_type: MeshType
