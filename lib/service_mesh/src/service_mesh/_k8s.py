# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Turning lightkube and httpx2 failures into the library's named errors.

lightkube 1.0 raises ``lightkube.ApiError`` (an ``httpx2.HTTPStatusError``) for answers with a
Kubernetes Status body, a plain ``httpx2.HTTPStatusError`` for other error answers, and
``httpx2`` transport errors when no answer comes. They are caught by these exact types here,
and only here, so a change of HTTP library in lightkube is handled in one place.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any, cast

from ._text import safe_text
from .errors import ConflictError, ForbiddenError, KubernetesError, MalformedResponseError

# The HTTP stack under lightkube logs about 13 DEBUG/INFO records per request (connection,
# headers, body, close). Under Juju, ops forwards every record to `juju-log`, one hook-tool
# process each: a first hook's 11 requests would cost ~140 processes. Warnings still pass.
_TRANSPORT_LOGGERS = ("httpx2", "httpcore2")

if TYPE_CHECKING:
    from collections.abc import Generator, Mapping

    import lightkube


@contextlib.contextmanager
def kubernetes_errors(doing: str, app_name: str) -> Generator[None, None, None]:
    """Raise a :class:`KubernetesError` (or subclass) for any API failure inside the block.

    Args:
        doing: what the block does, completing "failed to ...", e.g. "patch StatefulSet tempo".
        app_name: the charm's application, named in the advice for a 403.
    """
    import httpx2  # lazily: lightkube (which brings httpx2) loads only when Kubernetes is used
    import msgspec  # lightkube decodes every answer with it

    quiet_transport()
    try:
        yield
    except httpx2.HTTPStatusError as e:
        raise _status_error(e, doing, app_name) from e
    except httpx2.TransportError as e:
        raise KubernetesError(
            f"failed to {doing}: the Kubernetes API did not answer ({type(e).__name__}: {e})"
        ) from e
    except msgspec.MsgspecError as e:
        # lightkube could not decode a success answer: not JSON, cut short, or a shape that is
        # not the object asked for (e.g. a list without items).
        raise MalformedResponseError(
            f"failed to {doing}: Kubernetes sent an answer that cannot be read "
            f"({safe_text(str(e), 120)})",
            status_code=200,
        ) from e


def expect_object(obj: Any, kind: str, name: str | None, doing: str) -> None:
    """Raise unless ``obj`` (a lightkube object or a dict) is the ``kind`` named ``name``.

    An API server always answers with the object asked for; another kind or another name
    means the answer is not the one asked for, and acting on it (an empty label record, a
    foreign object's uid) would be acting on garbage. lightkube's typed objects always say
    their own class's kind whatever was sent, so for those the name is what tells.

    Args:
        obj: the decoded answer.
        kind: the kind asked for; checked on dicts (generic resources, list items).
        name: the name asked for; None for list items.
        doing: what was asked, completing "failed to ...".

    Raises:
        MalformedResponseError: ``obj`` is not what was asked for.
    """
    if isinstance(obj, dict):
        found: object = cast("dict[str, object]", obj).get("kind")
        metadata: object = cast("dict[str, object]", obj).get("metadata")
        found_name: object = (
            cast("dict[str, object]", metadata).get("name") if isinstance(metadata, dict) else None
        )
    else:
        found = kind
        found_name = getattr(getattr(obj, "metadata", None), "name", None)
    if found != kind:
        shown = safe_text(str(found), 60) if found is not None else "no kind"
        raise MalformedResponseError(
            f"failed to {doing}: Kubernetes answered with {shown} instead of a {kind}",
            status_code=200,
        )
    if (name is not None and found_name != name) or not isinstance(found_name, str):
        raise MalformedResponseError(
            f"failed to {doing}: Kubernetes answered with another {kind} "
            f"({safe_text(str(found_name), 60)})",
            status_code=200,
        )


def _status_error(error: Exception, doing: str, app_name: str) -> KubernetesError:
    import httpx2
    import lightkube

    assert isinstance(error, httpx2.HTTPStatusError)
    code = error.response.status_code
    if isinstance(error, lightkube.ApiError):
        detail = error.status.message or error.status.reason or "no message"
    else:
        detail = safe_text(error.response.text, 200) or "no message"
    message = f"failed to {doing}: Kubernetes answered {code} ({detail})"
    if code == 403:
        return ForbiddenError(
            f"{message}; the application needs access to the Kubernetes API: "
            f"run `juju trust {app_name} --scope=cluster`",
            status_code=code,
        )
    if code == 409:
        return ConflictError(message, status_code=code)
    return KubernetesError(message, status_code=code)


def quiet_transport() -> None:
    """Silence the HTTP stack's per-request DEBUG/INFO records (see ``_TRANSPORT_LOGGERS``).

    Called before every call this library makes, whoever built the client, and by
    :func:`kubernetes_client`. Warnings and errors still pass; the library's own errors name
    the status of any failed request.
    """
    for name in _TRANSPORT_LOGGERS:
        transport = logging.getLogger(name)
        if transport.level != logging.WARNING:  # setLevel clears every logger's level cache
            transport.setLevel(logging.WARNING)


def new_client(namespace: str, field_manager: str) -> lightkube.Client:
    """``lightkube.Client`` from the default config (in-cluster, else ``$KUBECONFIG``), quiet.

    Raises:
        lightkube.ConfigError: there is no config to build one from, as lightkube raises it.
    """
    import lightkube  # lazily: only hooks that talk to Kubernetes pay for the import

    quiet_transport()
    return lightkube.Client(namespace=namespace, field_manager=field_manager)


def kubernetes_client(namespace: str, field_manager: str) -> lightkube.Client:
    """A client from the default config (in-cluster, else ``$KUBECONFIG``), quiet on the wire.

    The transport's per-request debug chatter is silenced because every log record of a
    charm becomes a `juju-log` call (see ``_TRANSPORT_LOGGERS``).

    Raises:
        KubernetesError: there is no config to build one from (not in a pod, no kubeconfig),
            which for a charm is the same as an API that does not answer.
    """
    import lightkube

    try:
        return new_client(namespace, field_manager)
    except lightkube.ConfigError as e:
        raise KubernetesError(f"no Kubernetes API to talk to ({e})") from e


def statefulset_reference(name: str, uid: str) -> dict[str, str]:
    """An ``ownerReference`` to the StatefulSet ``name``, so the object dies with the app.

    When Juju removes an application it deletes its StatefulSet, and Kubernetes' garbage
    collector then deletes every object that names the StatefulSet as owner (same namespace),
    even when the charm's ``remove`` hook failed. ``blockOwnerDeletion`` is left unset: it needs
    permission on the owner's finalizers and only delays the owner's deletion.
    """
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": name, "uid": uid}


def patch(
    client: lightkube.Client,
    resource: type[Any],
    name: str,
    body: Mapping[str, Any],
    namespace: str,
    **options: Any,
) -> Any:
    """``client.patch`` with a dict body, typed (lightkube's signature uses a bare ``Dict``)."""
    return client.patch(  # pyright: ignore[reportUnknownMemberType]
        resource, name, dict(body), namespace=namespace, **options
    )


def list_all(
    client: lightkube.Client, resource: type[Any], namespace: str, labels: Mapping[str, str]
) -> list[dict[str, Any]]:
    """``client.list`` by label, as plain dicts, typed (lightkube's selector type is invariant)."""
    listed = client.list(  # pyright: ignore[reportUnknownMemberType]
        resource, namespace=namespace, labels=dict[str, Any](labels)
    )
    return [dict(item) for item in listed]


def statefulset_owner_reference(
    client: lightkube.Client, app_name: str, namespace: str
) -> dict[str, str]:
    """An ``ownerReference`` to the StatefulSet Juju runs ``app_name`` with (one GET).

    An object carrying it is garbage-collected by Kubernetes when Juju removes the application
    (which deletes the StatefulSet), even if the charm's ``remove`` hook failed or never ran;
    scaling the application to zero keeps the StatefulSet, and so the object. Only objects in
    the StatefulSet's namespace may carry it.

    Raises:
        KubernetesError: the GET failed (404 when there is no such StatefulSet).
        MalformedResponseError: the answer is not that StatefulSet, or has no uid.
    """
    from lightkube.resources.apps_v1 import StatefulSet

    doing = f"get StatefulSet {app_name}"
    with kubernetes_errors(doing, app_name):
        statefulset = client.get(StatefulSet, app_name, namespace=namespace)
    expect_object(statefulset, "StatefulSet", app_name, doing)
    uid = statefulset.metadata.uid if statefulset.metadata else None
    if not uid:
        raise MalformedResponseError(
            f"failed to {doing}: Kubernetes answered without its uid", status_code=200
        )
    return statefulset_reference(app_name, uid)
