# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The model's HTTP proxy settings, handed to the workload through its Pebble environment.

Juju gives a charm the model's ``juju-http-proxy``, ``juju-https-proxy`` and ``juju-no-proxy``
as ``JUJU_CHARM_HTTP_PROXY``, ``JUJU_CHARM_HTTPS_PROXY`` and ``JUJU_CHARM_NO_PROXY`` in every
hook, and runs ``config-changed`` when they change. The workload (reaching object storage or
anything outside the cluster) needs them in its own environment: both spellings are set,
since programs differ in which one they read (Go's net/http takes either, curl the lower-case
``http_proxy`` only). Unset values are left out rather than set empty, and a variable the
charm's own layer sets wins.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    import ops

_JUJU_VARIABLES = {
    "JUJU_CHARM_HTTP_PROXY": "HTTP_PROXY",
    "JUJU_CHARM_HTTPS_PROXY": "HTTPS_PROXY",
    "JUJU_CHARM_NO_PROXY": "NO_PROXY",
}


def proxy_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``HTTP_PROXY``, ``http_proxy``... from Juju's variables in ``environ`` (the process's)."""
    source = os.environ if environ is None else environ
    env: dict[str, str] = {}
    for juju, name in _JUJU_VARIABLES.items():
        value = source.get(juju, "").strip()
        if value:
            env[name] = value
            env[name.lower()] = value
    return env


def with_proxy_environment(
    layer: ops.pebble.LayerDict, proxy: Mapping[str, str]
) -> ops.pebble.LayerDict:
    """A copy of ``layer`` whose every service also has ``proxy`` in its environment."""
    if not proxy:
        return layer
    import ops

    services: dict[str, ops.pebble.ServiceDict] = {}
    for name, service in layer.get("services", {}).items():
        copied = ops.pebble.ServiceDict(**service)
        copied["environment"] = {**proxy, **service.get("environment", {})}
        services[name] = copied
    result = ops.pebble.LayerDict(**layer)
    result["services"] = services
    return result
