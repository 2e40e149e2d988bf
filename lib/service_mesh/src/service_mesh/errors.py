# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Named errors raised by the service_mesh library.

The library never lets a lightkube or httpx2 exception escape: a charm catches
:class:`ServiceMeshError` (or a subclass) and can show ``str(error)`` to the operator, because
every message says what failed and, where there is one, what to do about it.
"""

from __future__ import annotations

__all__ = [
    "CRDMissingError",
    "ConflictError",
    "ForbiddenError",
    "KubernetesError",
    "LabelRecordOwnerError",
    "MalformedResponseError",
    "MissingEndpointError",
    "ServiceMeshError",
]


class ServiceMeshError(Exception):
    """Base class of every error the service_mesh library raises on purpose."""


class KubernetesError(ServiceMeshError):
    """A Kubernetes API call failed.

    Attributes:
        status_code: the HTTP status of the API server's answer, or None when no answer came
            (connection refused, timeout, broken connection).
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ForbiddenError(KubernetesError):
    """The charm's service account may not do this (HTTP 403): the application lacks trust."""


class CRDMissingError(KubernetesError):
    """The cluster does not serve Istio's AuthorizationPolicy API: Istio is not installed."""


class ConflictError(KubernetesError):
    """Another writer got there first (HTTP 409): the object exists or changed meanwhile."""


class LabelRecordOwnerError(KubernetesError):
    """The label record belongs to another application's StatefulSet: names collided.

    Two record names can coincide (``<app>-pod-labels`` of a worker ``juju-service-mesh-a`` is
    ``juju-service-mesh-<app>-labels`` of an app ``a-pod``); each would take the other's labels
    for its own, so the record is left alone and this is raised instead.
    """


class MalformedResponseError(KubernetesError):
    """The API server said yes, but its answer is unusable.

    A body that is not JSON, is cut short, or holds another kind of object than the one asked
    for: something between us and the API server (a proxy, a broken connection it did not
    notice) mangled it. What was asked may or may not have been done; the next try finds out.
    """


class MissingEndpointError(ServiceMeshError, KeyError):
    """A relation endpoint the library needs is not declared in the charm's metadata.

    It is also a :class:`KeyError` because upstream fails with a bare ``KeyError`` in the same
    situation, so code written for upstream keeps catching it; unlike that one, the message
    names the endpoint and what to declare.
    """

    def __init__(self, endpoint: str, purpose: str) -> None:
        super().__init__(endpoint)
        self.endpoint = endpoint
        self.purpose = purpose

    def __str__(self) -> str:
        return (
            f"relation endpoint {self.endpoint!r} ({self.purpose}) is not declared in the "
            "charm's metadata; add it to charmcraft.yaml or pass the name your charm uses"
        )
