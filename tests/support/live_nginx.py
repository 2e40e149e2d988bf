# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The host's real nginx, for tests that check (``nginx -t``) or serve rendered configs.

Every config lives in its own prefix directory (a test's ``tmp_path``): ``nginx.conf``, the
extra files it names (certificates, keys, includes) by paths relative to that directory, and
``run/`` for the pid and temp files, where the renderer puts them when given
``runtime_dir=runtime_dir(directory)``. Runs in different directories never collide, and
nginx logs its errors to ``nginx.log`` there.

The ``nginx_binary`` fixture (the repository's ``conftest.py``) finds the binary, or skips
with a printed reason unless ``REQUIRE_NGINX=1``. A test that serves a config::

    def test_https(nginx_binary: str, tmp_path: pathlib.Path) -> None:
        port = free_port()
        text = render_config(dataclasses.replace(inputs, runtime_dir=runtime_dir(tmp_path)))
        files = {"tls/server.crt": cert_pem, "tls/server.key": key_pem}
        with serving(nginx_binary, tmp_path, text, [port], files, scheme="https") as [url]:
            ...  # url is "https://127.0.0.1:<port>"

Upstreams named by DNS (the workers' Services) resolve through :class:`FakeDns`, given to the
renderer as its ``resolver``.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import socket
import subprocess
import threading
import time
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

NGINX_PATHS = ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
"""Where nginx is installed when it is not on PATH (Debian's sbin is not on a user's PATH)."""

START_TIMEOUT_S = 10.0


def find_nginx() -> str | None:
    """The host's nginx binary, or None when it is not installed."""
    return shutil.which("nginx") or next((p for p in NGINX_PATHS if os.access(p, os.X_OK)), None)


def nginx_or_skip() -> str:
    """The nginx binary; skips the test with a printed reason, or fails with REQUIRE_NGINX=1.

    CI sets REQUIRE_NGINX=1 so that a missing nginx cannot pass the suite unnoticed.
    """
    binary = find_nginx()
    if binary is None:
        reason = "nginx is not installed, so rendered configs cannot be checked or served"
        if os.environ.get("REQUIRE_NGINX") == "1":
            pytest.fail(reason + " (REQUIRE_NGINX=1)")
        print(reason)
        pytest.skip(reason)
    return binary


def free_port() -> int:
    """A TCP port free on every address, IPv4 and IPv6 (nginx listens on both)."""
    with socket.socket(socket.AF_INET6) as s:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", 0))
        return s.getsockname()[1]


def runtime_dir(directory: pathlib.Path) -> str:
    """``directory/run``, created: the renderer's ``runtime_dir`` for a config run there."""
    runtime = directory / "run"
    runtime.mkdir(exist_ok=True)
    return str(runtime)


def write_config(
    directory: pathlib.Path, text: str, files: Mapping[str, str | bytes] | None = None
) -> pathlib.Path:
    """Write ``nginx.conf`` and `files` (relative path -> content) into `directory`.

    Returns:
        The path of the written ``nginx.conf``.
    """
    for name, content in (files or {}).items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    config = directory / "nginx.conf"
    config.write_text(text)
    return config


def nginx_t(binary: str, config: pathlib.Path) -> subprocess.CompletedProcess[str]:
    """``nginx -t`` on `config`, with its directory as the prefix; the result, not raised."""
    return subprocess.run(
        [binary, "-t", "-q", "-e", "stderr", "-p", str(config.parent), "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_nginx_accepts(binary: str, config: pathlib.Path) -> None:
    """Fail with nginx's message and the config when ``nginx -t`` refuses `config`."""
    result = nginx_t(binary, config)
    assert result.returncode == 0, result.stderr + "\n" + config.read_text()


@contextlib.contextmanager
def running(binary: str, config: pathlib.Path, ports: Iterable[int]) -> Iterator[None]:
    """nginx in the foreground on `config` until the block ends.

    The block starts once every port in `ports` accepts a TCP connection on 127.0.0.1 (nginx
    binds all its sockets before it answers, so any listen port of the config will do).

    Raises:
        OSError: nginx exited or a port stayed closed for START_TIMEOUT_S; its errors are
            in ``nginx.log`` next to the config.
    """
    with (config.parent / "nginx.log").open("w") as log:
        prefix = ["-e", "stderr", "-p", str(config.parent), "-c", str(config)]
        process = subprocess.Popen(
            [binary, *prefix, "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            for port in ports:
                _wait_for(port, process, deadline)
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@contextlib.contextmanager
def serving(
    binary: str,
    directory: pathlib.Path,
    text: str,
    ports: Iterable[int],
    files: Mapping[str, str | bytes] | None = None,
    *,
    scheme: str = "http",
) -> Iterator[list[str]]:
    """Serve the config `text` (and its `files`) from `directory` until the block ends.

    Yields:
        One base URL per port, in order: ``<scheme>://127.0.0.1:<port>``.
    """
    wanted = list(ports)
    with running(binary, write_config(directory, text, files), wanted):
        yield [f"{scheme}://127.0.0.1:{port}" for port in wanted]


def _wait_for(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise
            time.sleep(0.05)


class FakeDns:
    """A DNS server on 127.0.0.1 answering A queries with `answer(name)`; None gives no answer.

    Stands in for the cluster DNS that nginx asks for the workers' Service names: pass
    ``f"127.0.0.1:{dns.port}"`` as the renderer's resolver. `names` lists every name asked for
    an A record, in order. AAAA and other queries get an empty answer. Use it as a context
    manager (or call `close`).
    """

    def __init__(self, answer: Callable[[str], str | None]) -> None:
        self.answer = answer
        self.names: list[str] = []
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.1)
        self.port: int = self.socket.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def __enter__(self) -> FakeDns:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, client = self.socket.recvfrom(512)
            except TimeoutError:
                continue
            labels: list[str] = []
            end = 12
            while query[end]:
                labels.append(query[end + 1 : end + 1 + query[end]].decode())
                end += 1 + query[end]
            question = query[12 : end + 5]
            address = None
            if query[end + 1 : end + 3] == b"\x00\x01":  # type A
                name = ".".join(labels)
                self.names.append(name)
                address = self.answer(name)
            record = b""
            if address is not None:
                record = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x05\x00\x04"
                record += socket.inet_aton(address)
            header = query[:2] + b"\x81\x80\x00\x01" + (b"\x00\x01" if record else b"\x00\x00")
            self.socket.sendto(header + b"\x00\x00\x00\x00" + question + record, client)

    def close(self) -> None:
        """Stop answering and free the port."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.socket.close()
