# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Object storage: the ``s3`` interface (requirer side) and how its credentials reach workers.

Wire format, as the data-platform ``s3`` library (v0.6) and ``s3-integrator`` write it:

- requirer app bag: ``bucket``, a plain string, ``relation-<id>`` when the charm names no
  bucket (the provider's configured bucket wins anyway);
- provider app bag, all plain strings: ``access-key``, ``secret-key``, ``bucket``,
  ``endpoint``, ``region``, ``path``, ``s3-uri-style``, and ``storage-class``,
  ``s3-api-version`` when configured; ``tls-ca-chain`` is a JSON list of PEM strings. The
  provider also copies our bag into ``data``, which we ignore.

Workers never see the credentials as databag text: the coordinator's leader keeps the whole
connection in an application-owned Juju secret (:func:`secret_content`), grants it to each
cluster relation and publishes only its id; the CA chain travels as ``s3_tls_ca_chain``,
joined with blank lines as upstream coordinated-workers does. A worker decodes the secret with
:func:`from_secret_content`, which trusts nothing in it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from typing import TYPE_CHECKING

from service_mesh.databag import update_changed

from .telemetry import _databag

if TYPE_CHECKING:
    from collections.abc import Mapping

    import ops

__all__ = [
    "S3ConnectionInfo",
    "S3DataError",
    "S3Requirer",
    "S3Status",
    "from_provider_bag",
    "from_secret_content",
    "join_ca_chain",
    "secret_content",
]

logger = logging.getLogger(__name__)

MAX_FIELD_LENGTH = 1024
"""Longest single-line value (key, bucket, region...) accepted from a remote bag."""
MAX_CA_CHAIN_LENGTH = 64 * 1024
"""Longest CA chain accepted (characters of the JSON list): a few dozen certificates."""

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----")
_URI_STYLES = ("path", "host")

# Provider bag key -> field; the secret holds the same keys (lowercase and dashes, as Juju
# secret content keys must be).
_TEXT_FIELDS = {
    "access-key": "access_key",
    "secret-key": "secret_key",
    "bucket": "bucket",
    "region": "region",
    "path": "path",
    "s3-uri-style": "s3_uri_style",
    "storage-class": "storage_class",
    "s3-api-version": "s3_api_version",
}
_ENDPOINT = "endpoint"
_CA_CHAIN = "tls-ca-chain"


class S3DataError(ValueError):
    """S3 connection data (a provider bag or the shared secret) cannot be used; says why."""


@dataclasses.dataclass(frozen=True)
class S3ConnectionInfo:
    """Where the workload keeps its objects and how to authenticate, all checked."""

    endpoint: str
    """An http(s) URL."""
    bucket: str
    access_key: str
    secret_key: str
    region: str | None = None
    path: str | None = None
    s3_uri_style: str | None = None
    """``path`` or ``host``, when the provider says."""
    storage_class: str | None = None
    s3_api_version: str | None = None
    tls_ca_chain: tuple[str, ...] = ()
    """PEM certificates to trust for ``endpoint``, without trailing newlines."""

    @property
    def ca_chain_text(self) -> str | None:
        """The CA chain as one file's text (blank-line separated), or None without one."""
        return join_ca_chain(self.tls_ca_chain)

    def __repr__(self) -> str:
        # Never let a log line or a traceback print the secret key.
        return (
            f"S3ConnectionInfo(endpoint={self.endpoint!r}, bucket={self.bucket!r}, "
            f"access_key={self.access_key!r}, secret_key='***')"
        )


@dataclasses.dataclass(frozen=True)
class S3Status:
    """What the coordinator knows of its object storage this hook."""

    related: bool
    info: S3ConnectionInfo | None = None
    """The connection, once the provider has sent usable credentials."""
    problem: str | None = None
    """Why the provider's data was ignored (already escaped); None when usable or absent."""


def join_ca_chain(chain: tuple[str, ...] | list[str]) -> str | None:
    """The chain as upstream publishes ``s3_tls_ca_chain``: PEMs joined by a blank line."""
    return "\n\n".join(chain) if chain else None


def _text(bag: Mapping[str, str], key: str) -> str | None:
    value = bag.get(key)
    if value is None or value == "":
        return None
    if len(value) > MAX_FIELD_LENGTH:
        raise S3DataError(f"{key!r} is longer than {MAX_FIELD_LENGTH} characters")
    if not value.isprintable() or value != value.strip():
        raise S3DataError(f"{key!r} holds whitespace at its ends or unprintable characters")
    return value


def _ca_chain(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    if len(raw) > MAX_CA_CHAIN_LENGTH:
        raise S3DataError(f"{_CA_CHAIN!r} is longer than {MAX_CA_CHAIN_LENGTH} characters")
    try:
        value: object = json.loads(raw)
    except (ValueError, RecursionError):
        raise S3DataError(f"{_CA_CHAIN!r} is not valid JSON") from None
    if not isinstance(value, list):
        raise S3DataError(f"{_CA_CHAIN!r} is not a JSON list")
    chain: list[str] = []
    for item in value:  # pyright: ignore[reportUnknownVariableType]
        if not isinstance(item, str) or not _PEM.fullmatch(item.strip()):
            raise S3DataError(f"{_CA_CHAIN!r} holds an item that is not one PEM certificate")
        chain.append(item.strip())
    return tuple(chain)


def _info(bag: Mapping[str, str], ca_chain: tuple[str, ...]) -> S3ConnectionInfo | None:
    fields = {field: _text(bag, key) for key, field in _TEXT_FIELDS.items()}
    endpoint_text = _text(bag, _ENDPOINT)
    if fields["access_key"] is None or fields["secret_key"] is None:
        return None  # not sent yet: the provider writes the keys once it has them
    if endpoint_text is None or fields["bucket"] is None:
        raise S3DataError("credentials without an 'endpoint' and a 'bucket'")
    try:
        endpoint = _databag.http_url(endpoint_text, repr(_ENDPOINT))
    except _databag.DatabagError as e:
        raise S3DataError(str(e)) from None
    style = fields["s3_uri_style"]
    if style is not None and style not in _URI_STYLES:
        raise S3DataError(f"'s3-uri-style' is neither {' nor '.join(_URI_STYLES)}")
    return S3ConnectionInfo(
        endpoint=endpoint,
        bucket=fields["bucket"],
        access_key=fields["access_key"],
        secret_key=fields["secret_key"],
        region=fields["region"],
        path=fields["path"],
        s3_uri_style=style,
        storage_class=fields["storage_class"],
        s3_api_version=fields["s3_api_version"],
        tls_ca_chain=ca_chain,
    )


def from_provider_bag(bag: Mapping[str, str]) -> S3ConnectionInfo | None:
    """The connection an s3 provider published; None until it has sent both keys.

    Raises:
        S3DataError: a value is malformed (the message never quotes it).
    """
    return _info(bag, _ca_chain(bag.get(_CA_CHAIN)))


def secret_content(info: S3ConnectionInfo) -> dict[str, str]:
    """The content of the secret shared with workers: the provider's keys, empty ones left out.

    Juju refuses empty secret values, and a key's absence already means "not set".
    """
    content = {_ENDPOINT: info.endpoint}
    for key, field in _TEXT_FIELDS.items():
        value: str | None = getattr(info, field)
        if value:
            content[key] = value
    if info.tls_ca_chain:
        content[_CA_CHAIN] = json.dumps(list(info.tls_ca_chain))
    return content


def from_secret_content(content: Mapping[str, str]) -> S3ConnectionInfo:
    """Decode what :func:`secret_content` wrote, checked as strictly as a provider bag.

    Raises:
        S3DataError: the content is malformed or has no credentials.
    """
    info = _info(content, _ca_chain(content.get(_CA_CHAIN)))
    if info is None:
        raise S3DataError("the s3 secret holds no credentials")
    return info


class S3Requirer:
    """The coordinator's ``s3`` endpoint: asks for a bucket and reads the connection.

    Wire-compatible with the data-platform ``S3Requirer`` used with no bucket name.
    """

    def __init__(self, charm: ops.CharmBase, endpoint: str = "s3") -> None:
        self._charm = charm
        self._endpoint = endpoint

    def _relation(self) -> ops.Relation | None:
        relations = sorted(self._charm.model.relations[self._endpoint], key=lambda r: r.id)
        return relations[0] if relations else None

    def request_bucket(self) -> bool:
        """Ask for ``relation-<id>`` (leader only), if not asked already; whether we wrote."""
        relation = self._relation()
        if relation is None or not self._charm.unit.is_leader():
            return False
        import ops

        try:
            bag = relation.data[self._charm.app]
            return update_changed(bag, {"bucket": f"relation-{relation.id}"})
        except ops.ModelError as e:
            logger.warning("cannot request a bucket on %s: %s", relation.name, e)
            return False

    def status(self) -> S3Status:
        """The connection the provider sent, or why there is none; never raises."""
        import ops

        from service_mesh import safe_text

        relation = self._relation()
        if relation is None:
            return S3Status(related=False)
        app = relation.app
        try:
            info = from_provider_bag(relation.data[app])
        except (S3DataError, ops.ModelError) as e:
            problem = f"{_databag.relation_label(relation)}: {safe_text(str(e), 200)}"
            logger.warning("s3 data ignored: %s", problem)
            return S3Status(related=True, problem=problem)
        return S3Status(related=True, info=info)
