# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""A fake Kubernetes API for testing charms and libraries that use lightkube.

:class:`FakeKubernetes` keeps objects in memory and answers the Kubernetes REST API, so the code
under test uses a *real* ``lightkube.Client`` and the test sees exactly what went over the wire.
It has two front ends over the same state:

* in process, for library tests::

      fake = FakeKubernetes()
      fake.add_juju_app("tempo", namespace="cos")
      client = fake.client(namespace="cos", field_manager="tempo")
      reconcile_charm_labels(client, "tempo", "cos", "tempo-pod-labels", {"a": "b"})
      assert fake.get("statefulsets", "cos", "tempo")["spec"]["template"]["metadata"]["labels"]

* a loopback HTTP server, for charm code that builds ``lightkube.Client()`` itself::

      with fake.serve(namespace="cos") as kubeconfig:
          monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
          ctx.run(ctx.on.config_changed(), state)

  or, where thousands of hooks run in one process, the same without the socket::

      with fake.serve_to_environment(namespace="cos", in_process=True):
          ctx.run(ctx.on.config_changed(), state)

Every request is recorded in :attr:`FakeKubernetes.requests` as ``{"method", "path", "query",
"content_type", "body"}``, the shape of the ``*-wire.json`` vectors. Faults can be injected
with :meth:`FakeKubernetes.fail` (an API error), :meth:`FakeKubernetes.fail_transport`
(connection refused or timed out) and :meth:`FakeKubernetes.fail_body` (a 200 whose body is
not JSON, cut short, or another kind of object). A request failed with an error or below HTTP
is recorded but changes nothing; a mangled answer comes after the request was carried out.

What is modelled: get, list (label selectors, one or all namespaces), create, replace, delete,
delete-collection, merge/strategic-merge/JSON patches, server-side apply (fields a manager stops
applying are removed; lists of named objects, such as containers, merged by name),
``resourceVersion`` bumps and preconditions, name and label validation, a StatefulSet or
Deployment whose template no longer matches its selector (422), ``dryRun``, unknown
CRDs (:attr:`FakeKubernetes.crds_installed`), and garbage collection of objects whose
``ownerReferences`` owners are all gone (in the same namespace). What is not: watches, field
selectors, subresources, pagination, strategic-merge list semantics, apply conflicts between field
managers (``force`` is recorded, never needed), admission and RBAC (use
:meth:`FakeKubernetes.fail` with 403).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import json
import os
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TYPE_CHECKING, Any, Literal, TypedDict, cast
from urllib.parse import parse_qsl, urlsplit

import httpx2

from ._fake_api import (
    CRD_GROUPS,
    ApiFailureError,
    Json,
    Target,
    apply_merge,
    drop_unapplied,
    json_patch,
    label_problems,
    merge_patch,
    name_problems,
    parse_path,
    plural_of,
    section,
    selector_matches,
    selector_problems,
    success_status,
)

if TYPE_CHECKING:
    from collections.abc import Generator, Sequence

    import lightkube
    from lightkube.config.client_adapter import ConnectionParams
    from lightkube.config.kubeconfig import SingleConfig
    from ops import testing as ops_testing

__all__ = ["BodyFault", "FakeKubernetes", "WireRequest", "mesh_relation"]

# httpx honours these even for loopback addresses unless NO_PROXY lists them.
_PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)

# Where lightkube looks first for in-cluster credentials; if present it ignores KUBECONFIG.
_SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")

_StoreKey = tuple[str, str, "str | None", str]  # (apiVersion, plural, namespace, name)


def mesh_relation(
    labels: dict[str, str] | None = None,
    *,
    mesh_type: str | None = "istio",
    endpoint: str = "service-mesh",
    remote_app_name: str = "istio-beacon-k8s",
    **kwargs: Any,
) -> ops_testing.Relation:
    """An ``ops.testing.Relation`` to a beacon that has published ``labels`` and ``mesh_type``.

    ``labels`` defaults to Istio's ambient label; ``mesh_type=None`` leaves the key out (a
    provider from before it existed). Other keyword arguments go to ``testing.Relation``
    (``remote_app_data`` replaces the published bag).
    """
    from ops import testing  # imported here: FakeKubernetes alone needs no ops.testing

    bag = {
        "labels": json.dumps({"istio.io/dataplane-mode": "ambient"} if labels is None else labels)
    }
    if mesh_type is not None:
        bag["mesh_type"] = json.dumps(mesh_type)
    kwargs.setdefault("remote_app_data", bag)
    kwargs.setdefault("limit", 1)
    return testing.Relation(
        endpoint, interface="service_mesh", remote_app_name=remote_app_name, **kwargs
    )


class WireRequest(TypedDict):
    """One HTTP request as the API server saw it (the ``*-wire.json`` vector shape)."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str | None
    body: Any


BodyFault = Literal["not-json", "truncated", "wrong-kind"]
"""How :meth:`FakeKubernetes.fail_body` mangles a success answer."""


@dataclasses.dataclass
class _Fault:
    method: str | None
    path_contains: str | None
    times: int | None
    status: int = 500
    message: str | None = None
    transport_error: Literal["connect", "timeout"] | None = None
    body: BodyFault | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path_contains is None or self.path_contains in path
        )


class _TransportFaultError(Exception):
    def __init__(self, kind: Literal["connect", "timeout"]) -> None:
        super().__init__(kind)
        self.kind = kind


class FakeKubernetes:
    """An in-memory Kubernetes API server; see the module docstring for what it models.

    Attributes:
        requests: every request received, oldest first, in the wire-vector shape.
        crds_installed: when False, Istio and Gateway API groups answer 404 like a cluster
            without those CRDs.
    """

    def __init__(self) -> None:
        self.requests: list[WireRequest] = []
        self.crds_installed = True
        self._objects: dict[_StoreKey, Json] = {}
        self._applied: dict[tuple[_StoreKey, str], Json] = {}
        self._faults: list[_Fault] = []
        self._versions = itertools.count(1)
        self._lock = threading.RLock()

    # ----- seeding and inspection (no request is recorded) -----

    def add(self, obj: Json) -> Json:
        """Store ``obj`` as if it existed before the test; returns the stored copy.

        A ``metadata.uid`` in ``obj`` is kept (so objects copied from another fake still
        match the ``ownerReferences`` that name them); otherwise one is made up, or the uid
        of the object it replaces is kept.
        """
        with self._lock:
            metadata = section(obj, "metadata")
            key: _StoreKey = (
                obj["apiVersion"],
                plural_of(obj["kind"]),
                metadata.get("namespace"),
                metadata["name"],
            )
            stored = self._store(key, copy.deepcopy(obj))
            if metadata.get("uid"):
                stored["metadata"]["uid"] = metadata["uid"]
            return copy.deepcopy(stored)

    def add_juju_app(self, app_name: str, namespace: str, containers: Sequence[str] = ()) -> None:
        """Seed what Juju creates for a Kubernetes charm: its StatefulSet and two Services.

        The pod template has the ``charm`` container, then one per name in ``containers`` (the
        charm's workload containers, for code that looks them up).
        """
        juju_labels = {"app.kubernetes.io/name": app_name}
        service_labels = {**juju_labels, "app.kubernetes.io/managed-by": "juju"}
        meta = {"name": app_name, "namespace": namespace}
        self.add(
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": dict(meta),
                "spec": {
                    "selector": {"matchLabels": dict(juju_labels)},
                    "serviceName": f"{app_name}-endpoints",
                    "template": {
                        "metadata": {"labels": dict(juju_labels)},
                        "spec": {
                            "containers": [
                                {"name": "charm", "image": "jujusolutions/charm-base"},
                                *({"name": name, "image": f"{name}-image"} for name in containers),
                            ]
                        },
                    },
                },
            }
        )
        for name, cluster_ip in ((app_name, "10.152.183.10"), (f"{app_name}-endpoints", "None")):
            self.add(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {
                        "name": name,
                        "namespace": namespace,
                        "labels": dict(service_labels),
                    },
                    "spec": {"selector": dict(juju_labels), "clusterIP": cluster_ip},
                }
            )

    def remove_juju_app(self, app_name: str, namespace: str) -> None:
        """Delete what :meth:`add_juju_app` seeded, as Juju does when the app is removed.

        Objects whose ``ownerReferences`` name a deleted object go too, as Kubernetes' garbage
        collector deletes them. No request is recorded: Juju, not the charm, does this.
        """
        with self._lock:
            for plural, name in (
                ("statefulsets", app_name),
                ("services", app_name),
                ("services", f"{app_name}-endpoints"),
            ):
                for key in [k for k in self._objects if k[1:] == (plural, namespace, name)]:
                    self._remove(key)

    def get(self, plural: str, namespace: str | None, name: str) -> Json | None:
        """A copy of the stored object, or None; e.g. ``get("configmaps", "cos", "x")``."""
        with self._lock:
            for (_, p, ns, n), obj in self._objects.items():
                if (p, ns, n) == (plural, namespace, name):
                    return copy.deepcopy(obj)
        return None

    def list(self, plural: str, namespace: str | None = None) -> list[Json]:
        """Copies of every stored object of ``plural`` (in ``namespace`` if given), sorted."""
        with self._lock:
            return [
                copy.deepcopy(obj)
                for (_, p, ns, _), obj in sorted(self._objects.items(), key=_sort_key)
                if p == plural and (namespace is None or ns == namespace)
            ]

    def clear_requests(self) -> list[WireRequest]:
        """Forget the recorded requests and return them (handy between test phases)."""
        with self._lock:
            taken, self.requests = self.requests, []
            return taken

    # ----- fault injection -----

    def fail(
        self,
        method: str | None = None,
        path_contains: str | None = None,
        status: int = 403,
        times: int | None = 1,
        message: str | None = None,
    ) -> None:
        """Answer the next matching request(s) with a Kubernetes ``Status`` error.

        Args:
            method: HTTP method to match (``"PATCH"``), any if None.
            path_contains: substring of the path to match, any if None.
            status: HTTP status code (403, 404, 409, 500, ...).
            times: how many matching requests fail; None for all of them until
                :meth:`clear_faults`.
            message: the Status message; a realistic one is made up if None.
        """
        with self._lock:
            self._faults.append(
                _Fault(method and method.upper(), path_contains, times, status, message)
            )

    def fail_transport(
        self,
        method: str | None = None,
        path_contains: str | None = None,
        error: Literal["connect", "timeout"] = "connect",
        times: int | None = 1,
    ) -> None:
        """Make the next matching request(s) fail below HTTP.

        In process the transport raises ``httpx2.ConnectError`` or ``httpx2.ReadTimeout``;
        the loopback server drops the connection without answering for both kinds.
        """
        with self._lock:
            self._faults.append(
                _Fault(method and method.upper(), path_contains, times, transport_error=error)
            )

    def fail_body(
        self,
        kind: BodyFault,
        method: str | None = None,
        path_contains: str | None = None,
        times: int | None = 1,
    ) -> None:
        """Carry out the next matching request(s), but answer 200 with a body that is wrong.

        As when a proxy or a half-broken connection mangles the answer: the API server did
        what was asked, the client cannot tell. Kinds: ``"not-json"`` (an HTML error page),
        ``"truncated"`` (the real answer's JSON cut in half, with a matching length), and
        ``"wrong-kind"`` (a well-formed Secret, or SecretList for a collection).
        """
        with self._lock:
            self._faults.append(
                _Fault(method and method.upper(), path_contains, times, status=200, body=kind)
            )

    def clear_faults(self) -> None:
        """Remove every pending fault."""
        with self._lock:
            self._faults.clear()

    # ----- front ends -----

    @property
    def transport(self) -> httpx2.BaseTransport:
        """An httpx2 transport answering from this fake, for ``lightkube.Client(transport=)``."""
        return _FakeTransport(self)

    def client(
        self, namespace: str = "default", field_manager: str | None = None, dry_run: bool = False
    ) -> lightkube.Client:
        """A real ``lightkube.Client`` wired to this fake in process."""
        import lightkube  # lazily: keeps lightkube out of import time for non-users
        from lightkube.config.kubeconfig import KubeConfig
        from lightkube.config.models import Cluster, User

        config = KubeConfig.from_one(
            cluster=Cluster(server="http://fake-kubernetes.invalid"),
            user=User(token="fake-token"),  # noqa: S106 - not a secret
            namespace=namespace,
        )
        return lightkube.Client(
            config=config,
            namespace=namespace,
            field_manager=field_manager,
            dry_run=dry_run,
            trust_env=False,  # env proxies would otherwise replace our transport
            transport=self.transport,
        )

    @contextlib.contextmanager
    def serve(self, namespace: str = "default") -> Generator[Path, None, None]:
        """Serve this fake on 127.0.0.1 and yield the path of a kubeconfig pointing at it.

        Point ``KUBECONFIG`` at the yielded path and ``lightkube.Client()`` talks to the fake.
        lightkube prefers in-cluster credentials over ``KUBECONFIG``, so this refuses to run
        where a service-account token is mounted. Environment proxies (``HTTP_PROXY``) also
        apply to loopback addresses unless ``NO_PROXY`` lists 127.0.0.1.
        """
        _refuse_in_cluster_credentials()
        server = _LoopbackServer(("127.0.0.1", 0))
        server.fake = self
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            with TemporaryDirectory(prefix="fake-kubernetes-") as tmp:
                kubeconfig = Path(tmp, "kubeconfig")
                address = f"http://127.0.0.1:{server.server_address[1]}"
                kubeconfig.write_text(json.dumps(_kubeconfig(address, namespace)))
                yield kubeconfig
        finally:
            server.shutdown()
            server.close_connections()
            server.server_close()
            thread.join()

    @contextlib.contextmanager
    def serve_to_environment(
        self, namespace: str = "default", *, in_process: bool = False
    ) -> Generator[Path, None, None]:
        """`serve`, with this process's ``KUBECONFIG`` pointing at it and no proxy in the way.

        For charm code run in process (``ops.testing``), which builds ``lightkube.Client()``
        from the environment. The previous environment is restored on exit.

        With ``in_process``, nothing listens on a socket: the kubeconfig names a server that
        does not exist (``http://fake-kubernetes-<id>.invalid``) and every ``lightkube.Client``
        built for that server gets :attr:`transport`, as :meth:`client` does. The client is
        still lightkube's own, from the kubeconfig on down to the httpx2 request and its
        decoded answer; only the connection is replaced by a call to :meth:`handle`. A
        loopback request costs a server thread's wake-up and HTTP parsing on both sides
        (two to three times the in-process one, more on a busy machine), and each client a
        connection and a thread; this is for callers that build clients by the thousand.
        """
        overrides: dict[str, str | None] = dict.fromkeys(_PROXY_VARIABLES)
        serving = self._serve_in_process(namespace) if in_process else self.serve(namespace)
        with serving as kubeconfig:
            overrides["KUBECONFIG"] = str(kubeconfig)
            saved = {name: os.environ.get(name) for name in overrides}
            try:
                _set_environment(overrides)
                yield kubeconfig
            finally:
                _set_environment(saved)

    @contextlib.contextmanager
    def _serve_in_process(self, namespace: str) -> Generator[Path, None, None]:
        """A kubeconfig for a made-up server whose lightkube clients get :attr:`transport`."""
        from lightkube.core.generic_client import GenericSyncClient

        _refuse_in_cluster_credentials()
        server = f"http://fake-kubernetes-{uuid.uuid4().hex[:12]}.invalid"
        transport = self.transport
        own = GenericSyncClient.__dict__.get("AdapterClient")
        build = GenericSyncClient.AdapterClient

        def adapter(config: SingleConfig, conn_parameters: ConnectionParams) -> httpx2.Client:
            if config.cluster.server == server and conn_parameters.transport is None:
                conn_parameters = dataclasses.replace(conn_parameters, transport=transport)
            return build(config, conn_parameters)

        GenericSyncClient.AdapterClient = staticmethod(adapter)
        try:
            with TemporaryDirectory(prefix="fake-kubernetes-") as tmp:
                kubeconfig = Path(tmp, "kubeconfig")
                kubeconfig.write_text(json.dumps(_kubeconfig(server, namespace)))
                yield kubeconfig
        finally:
            if own is None:
                del GenericSyncClient.AdapterClient
            else:
                GenericSyncClient.AdapterClient = own

    # ----- the API server -----

    def handle(
        self, method: str, path: str, query: dict[str, str], content_type: str | None, raw: bytes
    ) -> tuple[int, Json | bytes]:
        """Answer one request: returns (HTTP status, JSON body or raw bytes).

        Both front ends call this; raw bytes (from :meth:`fail_body`) are sent as they are.

        Raises:
            _TransportFaultError: when an injected transport fault matches.
        """
        with self._lock:
            body = _parse_body(raw, content_type)
            self.requests.append(
                WireRequest(
                    method=method,
                    path=path,
                    query=dict(query),
                    content_type=content_type,
                    body=copy.deepcopy(body),
                )
            )
            mangle: BodyFault | None = None
            try:
                mangle = self._inject_fault(method, path)
                status, answer = self._dispatch(method, path, query, content_type, body)
            except ApiFailureError as failure:
                status, answer = failure.code, failure.status_body()
            if mangle is None:
                return status, answer
            return 200, _mangled(mangle, answer, parse_path(path))

    def _inject_fault(self, method: str, path: str) -> BodyFault | None:
        """Raise the first matching fault, or return how to mangle the answer (None: don't)."""
        for fault in self._faults:
            if not fault.matches(method, path):
                continue
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
            if fault.transport_error:
                raise _TransportFaultError(fault.transport_error)
            if fault.body:
                return fault.body
            raise ApiFailureError(
                fault.status, fault.message or _fault_message(fault.status, method, path)
            )
        return None

    def _dispatch(
        self, method: str, path: str, query: dict[str, str], content_type: str | None, body: Any
    ) -> tuple[int, Json]:
        target = parse_path(path)
        if not self.crds_installed and target.group in CRD_GROUPS:
            raise ApiFailureError(404, "the server could not find the requested resource")
        if target.subresource is not None:
            raise ApiFailureError(404, f"FakeKubernetes does not model subresources ({path})")
        if "watch" in query or "fieldSelector" in query:
            raise ApiFailureError(400, "FakeKubernetes does not support watch or fieldSelector")
        dry_run = query.get("dryRun") == "All"
        if target.name is None:
            return self._on_collection(method, target, query, body, dry_run)
        return self._on_object(method, target, query, content_type, body, dry_run)

    def _on_collection(
        self, method: str, target: Target, query: dict[str, str], body: Any, dry_run: bool
    ) -> tuple[int, Json]:
        if method == "GET":
            return 200, self._list(target, query.get("labelSelector"))
        if method == "POST":
            return 201, self._create(target, body, dry_run)
        if method == "DELETE":
            return 200, self._delete_collection(target, query.get("labelSelector"), dry_run)
        raise ApiFailureError(405, f"{method} is not allowed on a collection")

    def _on_object(
        self,
        method: str,
        target: Target,
        query: dict[str, str],
        content_type: str | None,
        body: Any,
        dry_run: bool,
    ) -> tuple[int, Json]:
        if method == "GET":
            return 200, copy.deepcopy(self._existing(target))
        if method == "PUT":
            return 200, self._replace(target, body, dry_run)
        if method == "PATCH":
            return self._patch(target, query, content_type, body, dry_run)
        if method == "DELETE":
            self._existing(target)
            if not dry_run:
                self._remove(_key(target))
            return 200, success_status(str(target.name), target.plural)
        raise ApiFailureError(405, f"{method} is not allowed on an object")

    def _list(self, target: Target, selector: str | None) -> Json:
        items = [
            copy.deepcopy(obj)
            for (api_version, plural, ns, _), obj in sorted(self._objects.items(), key=_sort_key)
            if (api_version, plural) == (target.api_version, target.plural)
            and (target.namespace is None or ns == target.namespace)
            and (not selector or selector_matches(selector, _labels(obj)))
        ]
        kind = items[0]["kind"] + "List" if items else "List"
        return {
            "apiVersion": target.api_version,
            "kind": kind,
            "metadata": {"resourceVersion": str(self._current_version())},
            "items": items,
        }

    def _create(self, target: Target, body: Any, dry_run: bool) -> Json:
        obj = _checked_object(target, body)
        name = obj["metadata"].get("name")
        key = _key(dataclasses.replace(target, name=name))
        if key in self._objects:
            raise ApiFailureError(
                409, f'{target.plural} "{name}" already exists', reason="AlreadyExists"
            )
        return obj if dry_run else copy.deepcopy(self._store(key, obj))

    def _replace(self, target: Target, body: Any, dry_run: bool) -> Json:
        current = self._existing(target)
        obj = _checked_object(target, body)
        _check_precondition(target, current, obj)
        return current if dry_run else copy.deepcopy(self._store(_key(target), obj))

    def _patch(
        self,
        target: Target,
        query: dict[str, str],
        content_type: str | None,
        body: Any,
        dry_run: bool,
    ) -> tuple[int, Json]:
        key = _key(target)
        if content_type == "application/apply-patch+yaml":
            return self._apply(target, key, query, body, dry_run)
        current = self._existing(target)
        if content_type == "application/json-patch+json":
            patched = json_patch(current, body)
        elif content_type in (
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
        ):
            if not isinstance(body, dict):
                raise ApiFailureError(400, "a merge patch must be a JSON object")
            _check_precondition(target, current, cast(Json, body))
            patched = merge_patch(current, body)
        else:
            raise ApiFailureError(415, f"unsupported patch content type {content_type!r}")
        obj = _checked_object(target, patched)
        return 200, (obj if dry_run else copy.deepcopy(self._store(key, obj)))

    def _apply(
        self, target: Target, key: _StoreKey, query: dict[str, str], body: Any, dry_run: bool
    ) -> tuple[int, Json]:
        manager = query.get("fieldManager")
        if not manager:
            raise ApiFailureError(
                400, "PATCH is missing the fieldManager query parameter for apply"
            )
        if not isinstance(body, dict):
            raise ApiFailureError(400, "an apply patch must be an object")
        applied = cast(Json, body)
        current = self._objects.get(key)
        # The server merges the body into the live object before it checks the name, so a body
        # without a name applies to the object in the URL (the compute-resources patch sends
        # none); a body that names another object, or none when there is nothing to merge
        # into, is refused.
        name = section(applied, "metadata").get("name", None if current is None else target.name)
        if name != target.name:
            raise ApiFailureError(400, "the name in the body does not match the name in the URL")
        if current is None:
            obj = _checked_object(target, copy.deepcopy(applied))
            status = 201
        else:
            merged = copy.deepcopy(current)
            drop_unapplied(merged, self._applied.get((key, manager), {}), applied)
            obj = _checked_object(target, apply_merge(merged, applied))
            status = 200
        if dry_run:
            return status, obj
        self._applied[key, manager] = copy.deepcopy(applied)
        return status, copy.deepcopy(self._store(key, obj))

    def _delete_collection(self, target: Target, selector: str | None, dry_run: bool) -> Json:
        listed = self._list(target, selector)
        if not dry_run:
            for item in listed["items"]:
                self._remove(
                    _key(
                        dataclasses.replace(
                            target,
                            name=item["metadata"]["name"],
                            namespace=item["metadata"].get("namespace"),
                        )
                    )
                )
        return listed

    # ----- storage -----

    def _existing(self, target: Target) -> Json:
        obj = self._objects.get(_key(target))
        if obj is None:
            raise ApiFailureError(404, f'{target.plural} "{target.name}" not found')
        return obj

    def _store(self, key: _StoreKey, obj: Json) -> Json:
        """Save ``obj`` under ``key``, bumping resourceVersion only if something changed."""
        metadata = obj.setdefault("metadata", {})
        previous = self._objects.get(key)
        if previous is not None:
            old_meta = previous["metadata"]
            metadata["uid"] = old_meta["uid"]
            metadata["creationTimestamp"] = old_meta["creationTimestamp"]
            metadata["resourceVersion"] = old_meta["resourceVersion"]
            if obj == previous:
                return previous
        else:
            metadata.setdefault("uid", str(uuid.uuid4()))
            metadata.setdefault("creationTimestamp", "2025-01-01T00:00:00Z")
        if key[2] is not None:
            metadata["namespace"] = key[2]
        metadata["resourceVersion"] = str(next(self._versions))
        self._objects[key] = obj
        return obj

    def _remove(self, key: _StoreKey) -> None:
        """Delete an object, then (as the garbage collector) every object it alone owned."""
        del self._objects[key]
        for applied_key in [k for k in self._applied if k[0] == key]:
            del self._applied[applied_key]
        namespace = key[2]
        uids = {o["metadata"]["uid"] for k, o in self._objects.items() if k[2] == namespace}
        orphans = [
            k
            for k, obj in self._objects.items()
            if k[2] == namespace
            and (owners := [ref.get("uid") for ref in _owner_references(obj)])
            and not any(uid in uids for uid in owners)
        ]
        for orphan in orphans:
            if orphan in self._objects:  # an earlier orphan's removal may have taken it
                self._remove(orphan)

    def _current_version(self) -> int:
        return max(
            (int(o["metadata"]["resourceVersion"]) for o in self._objects.values()), default=0
        )


def _key(target: Target) -> _StoreKey:
    assert target.name is not None, "callers only pass object paths"
    return (target.api_version, target.plural, target.namespace, target.name)


def _owner_references(obj: Json) -> list[Json]:
    references: Any = section(obj, "metadata").get("ownerReferences")
    if not isinstance(references, list):
        return []
    return [cast(Json, ref) for ref in cast(list[Any], references) if isinstance(ref, dict)]


def _sort_key(item: tuple[_StoreKey, Json]) -> tuple[str, str]:
    (_, _, namespace, name), _ = item
    return (namespace or "", name)


def _labels(obj: Json) -> dict[str, str]:
    return section(obj, "metadata", "labels")


def _checked_object(target: Target, body: Any) -> Json:
    """Validate an object the way the API server would before storing it."""
    if not isinstance(body, dict):
        raise ApiFailureError(400, "the request body must be a JSON object")
    obj = cast(Json, body)
    metadata = obj.setdefault("metadata", {})
    if (
        target.namespace is not None
        and metadata.get("namespace", target.namespace) != target.namespace
    ):
        raise ApiFailureError(
            400,
            "the namespace of the object does not match the namespace sent on the request",
        )
    if obj.get("apiVersion", target.api_version) != target.api_version:
        raise ApiFailureError(400, f"apiVersion {obj.get('apiVersion')!r} does not match the URL")
    obj.setdefault("apiVersion", target.api_version)
    problems = name_problems(metadata.get("name")) + label_problems(metadata.get("labels"))
    template = section(obj, "spec", "template", "metadata")
    problems += label_problems(template.get("labels"))
    if target.plural in ("statefulsets", "deployments"):
        problems += selector_problems(obj)
    if target.name is not None and metadata.get("name") != target.name:
        problems.append("metadata.name does not match the name in the URL")
    if problems:
        name = metadata.get("name")
        raise ApiFailureError(422, f'{target.plural} "{name}" is invalid: ' + "; ".join(problems))
    return obj


def _check_precondition(target: Target, current: Json, body: Json) -> None:
    wanted = section(body, "metadata").get("resourceVersion")
    if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
        raise ApiFailureError(
            409,
            f'Operation cannot be fulfilled on {target.plural} "{target.name}": the object has '
            "been modified; please apply your changes to the latest version and try again",
        )


def _parse_body(raw: bytes, content_type: str | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        if content_type and "yaml" in content_type:
            import yaml  # lightkube depends on PyYAML; only needed for YAML bodies

            return yaml.safe_load(raw)
        return raw.decode(errors="replace")


def _mangled(kind: BodyFault, answer: Json, target: Target) -> bytes:
    """The body :meth:`FakeKubernetes.fail_body` sends instead of ``answer``."""
    if kind == "not-json":
        return b"<html><body><h1>200 OK</h1>upstream said nothing useful</body></html>"
    if kind == "truncated":
        text = json.dumps(answer).encode()
        return text[: max(len(text) // 2, 1)]
    impostor: Json = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "impostor", "namespace": target.namespace or "default"},
        "type": "Opaque",
    }
    if target.name is None:
        impostor = {"apiVersion": "v1", "kind": "SecretList", "metadata": {}, "items": [impostor]}
    return json.dumps(impostor).encode()


def _fault_message(status: int, method: str, path: str) -> str:
    if status == 403:
        target = parse_path(path)
        scope = (
            f'in the namespace "{target.namespace}"'
            if target.namespace
            else "at the cluster scope"
        )
        return (
            f'{target.plural} is forbidden: User "system:serviceaccount:fake:fake" cannot '
            f'{method.lower()} resource "{target.plural}" in API group "{target.group}" {scope}'
        )
    return f"injected failure ({status}) for {method} {path}"


def _refuse_in_cluster_credentials() -> None:
    if _SERVICE_ACCOUNT_TOKEN.exists():
        raise RuntimeError(
            f"{_SERVICE_ACCOUNT_TOKEN} exists, so lightkube.Client() would use in-cluster "
            "credentials and ignore KUBECONFIG; run these tests outside a pod"
        )


def _kubeconfig(server: str, namespace: str) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        # Plain HTTP, so there is no certificate to verify; saying so keeps lightkube from
        # loading the system CA bundle (about 20 ms per client), which a real pod does not do
        # either (in-cluster config trusts only the service-account CA).
        "clusters": [
            {
                "name": "fake",
                "cluster": {
                    "server": server,
                    "insecure-skip-tls-verify": True,
                },
            }
        ],
        "users": [{"name": "fake", "user": {"token": "fake-token"}}],
        "contexts": [
            {
                "name": "fake",
                "context": {"cluster": "fake", "user": "fake", "namespace": namespace},
            }
        ],
        "current-context": "fake",
    }


class _FakeTransport(httpx2.BaseTransport):
    def __init__(self, fake: FakeKubernetes) -> None:
        self._fake = fake

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            status, payload = self._fake.handle(
                request.method,
                request.url.path,
                dict(request.url.params.multi_items()),
                request.headers.get("content-type"),
                request.read(),
            )
        except _TransportFaultError as fault:
            if fault.kind == "timeout":
                raise httpx2.ReadTimeout("timed out (injected)", request=request) from None
            raise httpx2.ConnectError("connection refused (injected)", request=request) from None
        return httpx2.Response(
            status,
            headers={"Content-Type": "application/json"},
            content=_encoded(payload),
            request=request,
        )


def _encoded(payload: Json | bytes) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def _set_environment(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


class _LoopbackServer(ThreadingHTTPServer):
    """Keeps track of open connections so that closing the server also ends kept-alive ones."""

    daemon_threads = True
    fake: FakeKubernetes

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up on every client, waking handler threads that wait for a next request."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive, as a real API server does: a client's requests share
    # one connection, so counts and timings taken against the fake are those of production.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm on, a kept-alive connection
    # then waits for the client's delayed ACK (about 40 ms) on every answer.
    disable_nagle_algorithm = True
    timeout = 10

    def _answer(self) -> None:
        fake = cast(_LoopbackServer, self.server).fake
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            status, payload = fake.handle(
                self.command,
                url.path,
                dict(parse_qsl(url.query)),
                self.headers.get("Content-Type"),
                raw,
            )
        except _TransportFaultError:
            self.close_connection = True
            return
        content = _encoded(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer  # noqa: N815 - http.server's names

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - overrides the stdlib
        """Stay quiet: the recorded requests are the log."""
