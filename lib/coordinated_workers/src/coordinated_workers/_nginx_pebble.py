# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""nginx and nginx-prometheus-exporter in their containers: Pebble layers and reconcilers.

Both reconcilers write only what changed: nginx.conf is pushed when it differs from the file on
disk, a layer is added when the plan differs, and a running nginx is reloaded (never restarted)
when its configuration changed.

nginx always has a config it accepts: a changed config is first written next to the live one
and checked in the container with ``nginx -t -c <candidate>``; only a config nginx accepts
replaces the live file, so a refused one never reaches a reload, nor a start after a pod
restart. The last good config stays in place.
"""

from __future__ import annotations

import ops

from service_mesh import safe_text

from ._pebble import plan_contains
from ._status import CoordinatedWorkersError

NGINX_CONFIG_PATH = "/etc/nginx/nginx.conf"
CANDIDATE_SUFFIX = ".candidate"
"""The config to check is written to the live path plus this suffix, then tested there."""
NGINX_SERVICE = "nginx"
EXPORTER_SERVICE = "nginx-prometheus-exporter"


class NginxReloadError(CoordinatedWorkersError):
    """nginx refused the new config on reload; the previous file was put back."""


class NginxConfigRejectedError(CoordinatedWorkersError):
    """``nginx -t`` refused the new config; the live file (the last good one) was not touched."""


def nginx_layer() -> ops.pebble.LayerDict:
    """Pebble layer running nginx in the foreground."""
    return {
        "summary": "nginx",
        "description": "nginx routing the cluster API and the worker telemetry proxy",
        "services": {
            NGINX_SERVICE: {
                "override": "replace",
                "summary": "nginx",
                "command": "nginx -g 'daemon off;'",
                "startup": "enabled",
            }
        },
    }


def exporter_layer(status_url: str, listen_port: int = 9113) -> ops.pebble.LayerDict:
    """Pebble layer running nginx-prometheus-exporter against nginx's stub_status page.

    Args:
        status_url: the stub_status page, normally `stub_status_url()`; both containers share
            the pod's network namespace, so loopback reaches nginx.
        listen_port: where the exporter serves ``/metrics``.
    """
    command = (
        f"nginx-prometheus-exporter --web.listen-address=:{listen_port}"
        f" --nginx.scrape-uri={status_url}"
    )
    return {
        "summary": "nginx prometheus exporter",
        "description": "exports nginx stub_status as Prometheus metrics",
        "services": {
            EXPORTER_SERVICE: {
                "override": "replace",
                "summary": "nginx prometheus exporter",
                "command": command,
                "startup": "enabled",
            }
        },
    }


class NginxWorkload:
    """Keeps the nginx container running `render_config`'s output.

    After :meth:`reconcile`, `reload_pending` says whether nginx may still run a config other
    than the file on disk: a push was not followed by a reload (Pebble failed in between).
    The file then looks applied to the next hook, so the caller keeps the flag (in
    ``StoredState``) and passes it back in to have that reload done.
    """

    def __init__(self, container: ops.Container, config_path: str = NGINX_CONFIG_PATH):
        self._container = container
        self._config_path = config_path
        self.reload_pending = False

    def reconcile(self, config_text: str, *, reload_pending: bool = False) -> bool:
        """Push `config_text` and the layer if they changed; reload a running nginx on change.

        Args:
            config_text: the nginx.conf wanted.
            reload_pending: an earlier push was never reloaded (see `reload_pending`).

        Returns:
            False when Pebble is unreachable (the caller reports waiting), else True.

        Raises:
            NginxConfigRejectedError: ``nginx -t`` refused `config_text`; nothing was replaced,
                started or reloaded, and the next reconcile tries again.
            NginxReloadError: nginx rejected the config; the previous file was restored so the
                next reconcile tries again.
        """
        self.reload_pending = reload_pending
        # No can_connect() first: it is a Pebble round trip of its own, and Pebble can go away
        # between it and the next call anyway; the first call below fails the same way.
        try:
            previous = self._current_config()
            if previous != config_text:
                self._check(config_text)
                self.reload_pending = True
                self._container.push(self._config_path, config_text, make_dirs=True)
            running = _running_services(self._container)
            restarted = _ensure_started(self._container, nginx_layer(), running)
            # A start or restart (new layer, or nginx was down) reads the file afresh.
            if self.reload_pending and NGINX_SERVICE in running and not restarted:
                self._reload(previous)
            self.reload_pending = False
        except ops.pebble.ConnectionError:
            return False
        return True

    def _current_config(self) -> str | None:
        try:
            with self._container.pull(self._config_path) as config:
                return config.read()
        except ops.pebble.PathError:
            return None

    def _check(self, config_text: str) -> None:
        """Have the container's nginx test `config_text` before it may replace the live file."""
        candidate = self._config_path + CANDIDATE_SUFFIX
        self._container.push(candidate, config_text, make_dirs=True)
        process = self._container.exec(["nginx", "-t", "-c", candidate])
        try:
            process.wait_output()
        except ops.pebble.ExecError as e:  # pyright: ignore[reportUnknownVariableType]
            # nginx quotes the offending text, which may come from a remote app.
            detail = safe_text(str(e), 300)  # pyright: ignore[reportUnknownArgumentType]
            raise NginxConfigRejectedError(f"nginx -t refused the new config: {detail}") from e

    def _reload(self, previous: str | None) -> None:
        process = self._container.exec(["nginx", "-s", "reload"])
        try:
            process.wait_output()
        except ops.pebble.ExecError as e:  # pyright: ignore[reportUnknownVariableType]
            if previous is None:
                self._container.remove_path(self._config_path)
            else:
                self._container.push(self._config_path, previous)
            self.reload_pending = False  # the file is back to what nginx runs
            detail = safe_text(str(e), 300)  # pyright: ignore[reportUnknownArgumentType]
            raise NginxReloadError(f"nginx rejected the new config: {detail}") from e


class ExporterWorkload:
    """Keeps nginx-prometheus-exporter running with `exporter_layer`."""

    def __init__(self, container: ops.Container):
        self._container = container

    def reconcile(self, layer: ops.pebble.LayerDict) -> bool:
        """Add `layer` if the plan differs and (re)start the exporter.

        Returns:
            False when Pebble is unreachable (the caller reports waiting), else True.
        """
        try:
            _ensure_started(self._container, layer, _running_services(self._container))
        except ops.pebble.ConnectionError:
            return False
        return True


def _running_services(container: ops.Container) -> set[str]:
    """The container's running services, in one Pebble call."""
    return {name for name, info in container.get_services().items() if info.is_running()}


def _ensure_started(
    container: ops.Container, layer: ops.pebble.LayerDict, running: set[str]
) -> bool:
    """Add `layer` unless the plan already matches it, then replan if anything is to do.

    Args:
        container: where the layer's services run.
        layer: the services wanted.
        running: the services running before this call (see ``_running_services``).

    Returns:
        True if the layer changed, i.e. replan (re)started its services.
    """
    wanted = ops.pebble.Layer(layer)
    changed = not plan_contains(container.get_plan(), wanted)
    if changed:
        container.add_layer(next(iter(wanted.services)), wanted, combine=True)
    if changed or not running.issuperset(wanted.services):
        container.replan()
    return changed
