# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Databag models of the ``cluster`` relation, byte-compatible with upstream coordinated-workers.

Each field travels JSON-encoded under its own key (so strings arrive double-quoted), every field
is optional on read, unknown keys are ignored and an empty databag parses. Output is canonical:
free-form mappings are sorted by key and order-free lists are sorted, so publishing the same
facts always produces the same bytes and never wakes the other side for nothing.

Reading is strict: a value of the wrong JSON type is an error, not something to coerce, and a
bag with any bad value is refused as a whole (:class:`ClusterDataError` says which keys and
why), because half a configuration is worse than none.
"""

from __future__ import annotations

import ipaddress
import json
import re
import urllib.parse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import pydantic

from service_mesh import safe_text
from service_mesh.databag import describe_validation_error

from ._status import CoordinatedWorkersError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    import ops

__all__ = [
    "MAX_VALUE_LENGTH",
    "MAX_WORKER_PORTS",
    "ClusterDataError",
    "ClusterProviderAppData",
    "ClusterRequirerAppData",
    "ClusterRequirerUnitData",
    "JujuTopology",
    "RemoteWriteEndpoint",
    "encode",
]

MAX_VALUE_LENGTH = 1 << 20
"""Longest databag value (characters) we parse; a longer one is hostile or broken."""

_MAX_REPORTED_ERRORS = 5
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

_DatabagT = TypeVar("_DatabagT", bound="_Databag")

MAX_WORKER_PORTS = 100
"""Most ``worker_ports`` a worker opens: each port is one ``open-port`` hook-tool process."""

_REMOTE = {"remote": True}
"""Validation context of :meth:`_Databag.load`: checks that apply to what others wrote.

What our own charm constructs is not held to them, so a coordinator never fails to publish;
a worker refuses what it cannot safely use.
"""
_URL_PATH = re.compile(r"(/[A-Za-z0-9._~-]*)*")
_URL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,99}")
_PORT = re.compile(r"[0-9]{1,5}")
_SECRET_ID = re.compile(r"secret:(//[0-9a-f-]{1,64}/)?[0-9a-z]{20}")
_PEM_BLOCK = r"-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----"
_PEM_CHAIN = re.compile(rf"{_PEM_BLOCK}(\s*{_PEM_BLOCK})*\s*", re.ASCII)  # ASCII whitespace


class ClusterDataError(CoordinatedWorkersError, ValueError):
    """A ``cluster`` databag cannot be used; the message names each bad key and the reason."""


def encode(value: Any) -> str:
    """Encode one databag value the way upstream does (``json.dumps`` defaults, pinned)."""
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=True, allow_nan=False)


class _Frozen(pydantic.BaseModel):
    # Validators are built on first use (defer_build), so a hook pays only for the bags it
    # reads or writes: a non-leader coordinator never builds ClusterProviderAppData's.
    model_config = pydantic.ConfigDict(frozen=True, extra="ignore", defer_build=True)


class _Databag(_Frozen):
    """One field per databag key, each JSON-encoded on its own."""

    @classmethod
    def load(cls: type[_DatabagT], databag: Mapping[str, str]) -> _DatabagT:
        """Parse a databag written by anyone, trusting nothing in it.

        Raises:
            ClusterDataError: if any known key holds an oversized, non-JSON or mistyped value.
        """
        decoded: dict[str, Any] = {}
        problems: list[str] = []
        for key in cls.model_fields:
            raw = databag.get(key)
            if raw is None:
                continue
            if len(raw) > MAX_VALUE_LENGTH:
                problems.append(f"{key}: value too large ({len(raw)} characters)")
                continue
            try:
                value = json.loads(raw)
            except (ValueError, RecursionError):
                problems.append(f"{key}: not valid JSON")
                continue
            if not _encodable(value):
                problems.append(f"{key}: holds text that is not valid Unicode (a lone surrogate)")
                continue
            decoded[key] = value
        if problems:
            raise ClusterDataError("; ".join(problems))
        try:
            return cls.model_validate(decoded, strict=True, context=_REMOTE)
        except pydantic.ValidationError as e:
            raise ClusterDataError(
                describe_validation_error(e, most=_MAX_REPORTED_ERRORS, location_limit=40)
            ) from None

    def dump(self) -> dict[str, str]:
        """The databag content: one canonical JSON value per field that is set."""
        fields = self.model_dump(mode="json", exclude_none=True)
        return {key: encode(value) for key, value in fields.items()}


def _encodable(value: Any) -> bool:
    r"""Whether every string in ``value`` (keys too) can be written out as UTF-8.

    JSON may carry a lone surrogate as a pure-ASCII escape (``"\ud800"``); decoded, it is a
    string no file, YAML layer or hook-tool argument can encode. Every use of such a value
    fails (a ``container.push`` of the config, ops' YAML dump of a Pebble layer), so it is
    refused here, where a refusal keeps the last good state.
    """
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


def _is_host(value: str) -> bool:
    """Whether ``value`` is a DNS name or an IP literal, i.e. safe to put in a config file."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        labels = value.split(".")
        return len(value) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)
    return True


def _is_remote(info: pydantic.ValidationInfo) -> bool:
    context: Any = info.context
    return isinstance(context, dict) and bool(context.get("remote"))  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]


def _url_problem(url: str) -> str | None:
    """Why ``url`` is not a telemetry URL as a coordinator publishes it, or None.

    A coordinator publishes ``http(s)://host[:port][/path]`` (its proxy, or the real
    receiver) or, for gRPC, a bare ``host:port``. Charm code may paste these into a Pebble
    ``command``, so nothing else gets through: no whitespace, quotes, credentials, query,
    fragment, zone id or leading ``-``.
    """
    if "%" in url:  # an IPv6 zone id or an escape: neither is in what a coordinator sends
        return "a URL with '%' (a zone id or an escape) is not accepted"
    if "://" not in url:
        host, _, port = url.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if host and _is_host(host) and _PORT.fullmatch(port) and 0 < int(port) < 65536:
            return None
        return "not an http(s) URL nor a host:port"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a valid URL"
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + ("" if port is None else f":{port}")
    if parts.scheme not in ("http", "https") or not _is_host(host):
        return "not an http(s) URL with a host"
    if parts.netloc.lower() != netloc or parts.query or parts.fragment or "#" in url:
        return "an http(s) URL may only have a host, a port and a path"
    if not _URL_PATH.fullmatch(parts.path):
        return "the URL path holds characters outside [A-Za-z0-9._~/-]"
    return None


def _check_urls(value: dict[str, str] | None) -> dict[str, str] | None:
    for key, url in (value or {}).items():
        if not _URL_KEY.fullmatch(key):
            raise ValueError(f"{safe_text(key, 40)!r} is not a unit or protocol name")
        if problem := _url_problem(url):
            raise ValueError(f"{key}: {problem}")
    return value


class JujuTopology(_Frozen):
    """Who a worker unit is; used to label the telemetry the coordinator collects for it."""

    application: str
    unit: str
    charm_name: str

    @classmethod
    def from_charm(cls, charm: ops.CharmBase) -> JujuTopology:
        """The topology of the unit ``charm`` runs as."""
        return cls(application=charm.app.name, unit=charm.unit.name, charm_name=charm.meta.name)


class RemoteWriteEndpoint(_Frozen):
    """A Prometheus remote-write URL workers may push to."""

    url: str

    @pydantic.field_validator("url")
    @classmethod
    def _check_url(cls, value: str, info: pydantic.ValidationInfo) -> str:
        if _is_remote(info) and (problem := _url_problem(value)):
            raise ValueError(problem)
        return value


class ClusterRequirerAppData(_Databag):
    """The worker application's bag: the roles its units run, comma-joined and sorted."""

    role: str | None = None

    @classmethod
    def from_roles(cls, roles: Iterable[str]) -> ClusterRequirerAppData:
        """Encode roles the way the provider expects them: sorted, unique, comma-joined.

        Raises:
            ValueError: if a name is empty or holds a comma or surrounding whitespace, which
                the comma-joined wire format cannot carry.
        """
        names = sorted(set(roles))
        if bad := [name for name in names if not name or "," in name or name != name.strip()]:
            raise ValueError(f"role names cannot be sent over the cluster relation: {bad}")
        return cls(role=",".join(names))

    @property
    def roles(self) -> frozenset[str]:
        """The announced roles (meta roles not expanded); empty if none were published."""
        if not self.role:
            return frozenset()
        return frozenset(part.strip() for part in self.role.split(",") if part.strip())


class ClusterRequirerUnitData(_Databag):
    """A worker unit's bag: where to reach it and who it is."""

    address: str | None = None
    juju_topology: JujuTopology | None = None

    @pydantic.field_validator("address")
    @classmethod
    def _check_address(cls, value: str | None) -> str | None:
        # Python's ipaddress takes any text after "%" as an IPv6 zone id ("fe80::1%x\"; } ..."),
        # and the address reaches charm code (WorkloadConfigContext): a zone id only means
        # something on the host that wrote it, so it is refused with the rest of the junk.
        if value is not None and ("%" in value or not _is_host(value)):
            raise ValueError("not a DNS name or IP address (without a zone id)")
        return value


_Port = Annotated[int, pydantic.Field(ge=1, le=65535)]


class ClusterProviderAppData(_Databag):
    """The coordinator's bag: everything a worker needs to run, identical for every worker.

    Only ``worker_ports`` differs per relation; :meth:`ClusterProvider.publish` fills it in.
    """

    worker_config: str | None = None
    loki_endpoints: dict[str, str] | None = None
    charm_tracing_receivers: dict[str, str] | None = None
    workload_tracing_receivers: dict[str, str] | None = None
    remote_write_endpoints: Sequence[RemoteWriteEndpoint] | None = None
    worker_ports: Sequence[_Port] | None = None
    worker_labels: dict[str, str] | None = None
    ca_cert: str | None = None
    server_cert: str | None = None
    privkey_secret_id: str | None = None
    s3_tls_ca_chain: str | None = None
    s3_secret_id: str | None = None
    """The Juju secret holding the s3 connection (``coordinated_workers._s3``), granted to us."""

    @pydantic.field_validator("s3_secret_id", "privkey_secret_id")
    @classmethod
    def _check_secret_id(cls, value: str | None, info: pydantic.ValidationInfo) -> str | None:
        if value is not None and _is_remote(info) and not _SECRET_ID.fullmatch(value):
            raise ValueError("not a Juju secret id")
        return value

    @pydantic.field_validator("s3_tls_ca_chain", "ca_cert", "server_cert")
    @classmethod
    def _check_ca_chain(cls, value: str | None, info: pydantic.ValidationInfo) -> str | None:
        # Written to a file in the workload: PEM certificates and blank lines only.
        if value is not None and _is_remote(info) and not _PEM_CHAIN.fullmatch(value):
            raise ValueError("not a chain of PEM certificates")
        return value

    @pydantic.field_validator(
        "loki_endpoints", "charm_tracing_receivers", "workload_tracing_receivers", "worker_labels"
    )
    @classmethod
    def _sort_keys(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else dict(sorted(value.items()))

    @pydantic.field_validator(
        "loki_endpoints", "charm_tracing_receivers", "workload_tracing_receivers"
    )
    @classmethod
    def _check_urls(
        cls, value: dict[str, str] | None, info: pydantic.ValidationInfo
    ) -> dict[str, str] | None:
        # Handed to charm code (the layer callback) and to Pebble: the URL grammar a
        # coordinator publishes, nothing more.
        return _check_urls(value) if _is_remote(info) else value

    @pydantic.field_validator("worker_ports")
    @classmethod
    def _sort_ports(
        cls, value: Sequence[int] | None, info: pydantic.ValidationInfo
    ) -> tuple[int, ...] | None:
        if value is None:
            return None
        ports = tuple(sorted(set(value)))
        if _is_remote(info) and len(ports) > MAX_WORKER_PORTS:
            raise ValueError(f"{len(ports)} ports; a worker opens at most {MAX_WORKER_PORTS}")
        return ports

    @pydantic.field_validator("remote_write_endpoints")
    @classmethod
    def _sort_endpoints(
        cls, value: Sequence[RemoteWriteEndpoint] | None
    ) -> tuple[RemoteWriteEndpoint, ...] | None:
        if value is None:
            return None
        unique = {endpoint.url: endpoint for endpoint in value}
        return tuple(unique[url] for url in sorted(unique))

    def with_worker_ports(self, ports: Iterable[int]) -> ClusterProviderAppData:
        """A copy whose ``worker_ports`` are ``ports`` (validated: 1-65535, sorted, unique)."""
        return type(self).model_validate({**dict(self), "worker_ports": list(ports)})
