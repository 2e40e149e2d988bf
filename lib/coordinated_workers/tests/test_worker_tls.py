# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The worker's side of TLS: certificates from the cluster bag, the key from a Juju secret.

The coordinator's bag is built by hand in upstream's wire format (``ca_cert``, ``server_cert``,
``privkey_secret_id``) with real certificates, and the key sits in a secret granted to the
worker. Juju's ``secret-get`` and Pebble's restarts are counted at ops.testing's fakes (the
edges), so the tests show when the worker reads the secret and restarts its workload.
"""

from __future__ import annotations

import dataclasses
import http.client
import http.server
import json
import os
import pathlib
import socket
import ssl
import stat
import threading
from typing import Any

import ops
import pytest
from ops import testing

from coordinated_workers import ClusterProviderAppData, WorkerContext, WorkerTLS
from coordinated_workers._worker import Worker, WorkerConfig
from coordinated_workers.testing import coordinator_relation
from tests.support.pebble_counts import counted, pebble_goes_away_on
from tests.support.pki import CA, Issued

VECTORS = pathlib.Path(__file__).parents[3] / "tests" / "vectors" / "cos"
MODEL = "tls"
ADDRESS = f"w-0.w-endpoints.{MODEL}.svc.cluster.local"
SECRET_ID = "secret:d5g1k2qr0000c0ord1na"
UPDATE_CA = ("update-ca-certificates", "--fresh")
META = {
    "name": "w",
    "containers": {"workload": {}},
    "requires": {"cluster": {"interface": "cluster", "limit": 1}},
}
CONFIG = {"options": {"role-all": {"type": "boolean", "default": True}}}
SEEN: list[WorkerContext] = []
REFRESH = 2
"""``secret-get`` calls of a read on ``secret-changed``: ops fetches the tracked revision with
``get_secret``, then the newest with ``refresh``. Any other read is one call."""


def _readiness(context: WorkerContext) -> str:
    scheme = "https" if context.tls else "http"
    return f"{scheme}://{context.address}:8080/ready"


def _layer(context: WorkerContext) -> ops.pebble.LayerDict:
    SEEN.append(context)
    args = f" --cert={context.tls.cert_path} --key={context.tls.key_path}" if context.tls else ""
    return {
        "services": {
            "app": {"override": "replace", "command": f"/bin/app{args}", "startup": "enabled"}
        }
    }


class TLSWorker(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.worker = Worker(
            self, WorkerConfig(container="workload", layer=_layer, readiness_url=_readiness)
        )
        framework.observe(self.on.collect_unit_status, self._on_collect_status)

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        for problem in self.worker.problems:
            event.add_status(problem.status())
        event.add_status(ops.ActiveStatus())


@pytest.fixture
def ca() -> CA:
    return CA("tls-ca")


@pytest.fixture
def issued(ca: CA) -> Issued:
    return ca.issue(ADDRESS, f"coordinator.{MODEL}.svc.cluster.local")


def _data(tls: Issued | None = None, **fields: Any) -> ClusterProviderAppData:
    if tls is not None:
        fields = {
            "ca_cert": tls.ca,
            "server_cert": tls.cert,
            "privkey_secret_id": SECRET_ID,
            **fields,
        }
    return ClusterProviderAppData(worker_config="x: 1\n", **fields)


def _secret(key: str | None, latest: str | None = None) -> testing.Secret:
    content = {} if key is None else {"private-key": key}
    if latest is None:
        return testing.Secret(tracked_content=content, id=SECRET_ID, owner=None)
    return testing.Secret(
        tracked_content=content, latest_content={"private-key": latest}, id=SECRET_ID, owner=None
    )


class Unit:
    """One worker unit whose workload files live in ``root`` across hooks."""

    def __init__(self, root, exit_code: int = 0) -> None:
        self.root = root
        self.ctx = testing.Context(TLSWorker, meta=META, config=CONFIG, app_name="w")
        for folder in ("etc-worker", "ca-certificates"):
            (root / folder).mkdir()
        self.workload = testing.Container(
            "workload",
            can_connect=True,
            mounts={
                "etc": testing.Mount(location="/etc/worker", source=root / "etc-worker"),
                "cas": testing.Mount(
                    location="/usr/local/share/ca-certificates", source=root / "ca-certificates"
                ),
            },
            execs={testing.Exec(list(UPDATE_CA), return_code=exit_code, stderr="no space")},
        )
        self.relation_id: int | None = None

    def state(
        self,
        data: ClusterProviderAppData,
        secrets: list[testing.Secret],
        previous: testing.State | None = None,
    ) -> testing.State:
        relation = coordinator_relation(data, "coordinator", relation_id=self.relation_id)
        self.relation_id = relation.id
        if previous is None:
            return testing.State(
                leader=False,  # no pod labels to apply: nothing of Kubernetes here
                model=testing.Model(name=MODEL),
                relations=[relation],
                containers=[self.workload],
                secrets=secrets,
            )
        return dataclasses.replace(previous, relations=[relation], secrets=secrets)

    def run(self, event: Any, state: testing.State) -> testing.State:
        return self.ctx.run(event, state)

    def file(self, path: str) -> str | None:
        folder = "ca-certificates" if path.startswith("/usr/") else "etc-worker"
        target = self.root / folder / os.path.basename(path)
        return target.read_text() if target.exists() else None

    def mode(self, path: str) -> int:
        return stat.S_IMODE((self.root / "etc-worker" / os.path.basename(path)).stat().st_mode)

    def update_ca_runs(self) -> int:
        return sum(
            1
            for run in self.ctx.exec_history.get("workload", [])
            if run.command == list(UPDATE_CA)
        )


def _cluster(state: testing.State) -> testing.RelationBase:
    (relation,) = state.relations
    return relation


def _tls_files(unit: Unit) -> dict[str, str | None]:
    return {
        path: unit.file(path)
        for path in (
            "/etc/worker/ca.cert",
            "/etc/worker/server.cert",
            "/etc/worker/private.key",
            "/usr/local/share/ca-certificates/ca.crt",
        )
    }


def _expected(tls: Issued) -> dict[str, str]:
    return {
        "/etc/worker/ca.cert": tls.ca,
        "/etc/worker/server.cert": tls.cert,
        "/etc/worker/private.key": tls.key,
        "/usr/local/share/ca-certificates/ca.crt": tls.ca,
    }


def _started(unit: Unit, tls: Issued) -> testing.State:
    return unit.run(unit.ctx.on.config_changed(), unit.state(_data(tls), [_secret(tls.key)]))


def test_tls_added_writes_the_files_trusts_the_ca_and_restarts_once(tmp_path, issued):
    unit = Unit(tmp_path)
    plain = unit.run(unit.ctx.on.config_changed(), unit.state(_data(), [_secret(issued.key)]))
    assert _tls_files(unit) == dict.fromkeys(_expected(issued))
    assert unit.update_ca_runs() == 0
    SEEN.clear()
    with counted() as counts:
        out = unit.run(
            unit.ctx.on.relation_changed(_cluster(unit.state(_data(issued), [], plain))),
            unit.state(_data(issued), [_secret(issued.key)], plain),
        )
    assert out.unit_status == testing.ActiveStatus()
    assert _tls_files(unit) == _expected(issued)
    assert unit.mode("/etc/worker/private.key") == 0o600
    assert unit.mode("/etc/worker/server.cert") == 0o644
    assert unit.update_ca_runs() == 1
    assert (counts.secret_reads, counts.restarts) == (1, 1)
    assert SEEN[-1].tls == WorkerTLS(
        "/etc/worker/ca.cert", "/etc/worker/server.cert", "/etc/worker/private.key"
    )
    # The key is in the file only: not in what the unit publishes, nor in its stored state.
    relation = _cluster(out)
    published = [*relation.local_unit_data.values(), *relation.local_app_data.values()]
    stored = [str(stored.content) for stored in out.stored_states]
    assert not [text for text in published + stored if "PRIVATE KEY" in text or issued.key in text]
    plan = out.get_container("workload").plan
    assert plan.services["app"].command.endswith("--key=/etc/worker/private.key")
    assert plan.checks["ready"].http == {"url": f"https://{ADDRESS}:8080/ready"}


@pytest.mark.parametrize(
    "event",
    [
        lambda ctx, state: ctx.on.config_changed(),
        lambda ctx, state: ctx.on.relation_changed(_cluster(state)),
        lambda ctx, state: ctx.on.update_status(),
        lambda ctx, state: ctx.on.pebble_ready(state.get_container("workload")),
    ],
    ids=["config-changed", "relation-changed", "update-status", "pebble-ready"],
)
def test_a_steady_hook_never_reads_the_secret_nor_restarts(tmp_path, issued, event, request):
    unit = Unit(tmp_path)
    out = _started(unit, issued)
    runs = unit.update_ca_runs()
    with counted() as counts:
        again = unit.run(event(unit.ctx, out), out)
    assert again.unit_status == testing.ActiveStatus()
    assert (counts.secret_reads, counts.restarts) == (0, 0)
    # Only the hooks that verify (update-status, pebble-ready) look at the files.
    verifies = request.node.callspec.id in ("update-status", "pebble-ready")
    assert counts.tls_pulls == (4 if verifies else 0)
    assert unit.update_ca_runs() == runs
    assert _tls_files(unit) == _expected(issued)


def test_renewed_certificate_same_key_restarts_once_and_trust_is_unchanged(tmp_path, ca, issued):
    unit = Unit(tmp_path)
    out = _started(unit, issued)
    renewed = ca.renew(issued, ADDRESS)
    assert renewed.key == issued.key and renewed.cert != issued.cert
    with counted() as counts:
        state = unit.state(_data(renewed), [_secret(issued.key)], out)
        out = unit.run(unit.ctx.on.relation_changed(_cluster(state)), state)
    assert out.unit_status == testing.ActiveStatus()
    assert _tls_files(unit) == _expected(renewed)
    # A new certificate may come with a new key: the secret is read again, once.
    assert (counts.secret_reads, counts.restarts) == (1, 1)
    assert unit.update_ca_runs() == 1, "same CA: the trust store is left alone"


def test_new_key_arrives_as_a_new_secret_revision(tmp_path, ca, issued):
    unit = Unit(tmp_path)
    out = _started(unit, issued)
    rekeyed = ca.issue(ADDRESS)
    assert rekeyed.key != issued.key
    # secret-changed first, while the bag still holds the old certificate: the new key does
    # not match it, so the last good files stay and the unit waits.
    secret = _secret(issued.key, latest=rekeyed.key)
    with counted() as counts:
        state = unit.state(_data(issued), [secret], out)
        out = unit.run(unit.ctx.on.secret_changed(secret), state)
    assert isinstance(out.unit_status, testing.WaitingStatus)
    assert "does not match the server certificate" in out.unit_status.message
    assert _tls_files(unit) == _expected(issued)
    assert (counts.secret_reads, counts.restarts) == (REFRESH, 0)
    # then the coordinator publishes the certificate for the new key: one restart.
    with counted() as counts:
        state = unit.state(_data(rekeyed), [_secret(rekeyed.key)], out)
        out = unit.run(unit.ctx.on.relation_changed(_cluster(state)), state)
    assert out.unit_status == testing.ActiveStatus()
    assert _tls_files(unit) == _expected(rekeyed)
    assert (counts.secret_reads, counts.restarts) == (1, 1)


def test_secret_changed_with_the_same_key_changes_nothing(tmp_path, issued):
    unit = Unit(tmp_path)
    out = _started(unit, issued)
    secret = _secret(issued.key, latest=issued.key)
    with counted() as counts:
        out = unit.run(
            unit.ctx.on.secret_changed(secret), unit.state(_data(issued), [secret], out)
        )
    assert out.unit_status == testing.ActiveStatus()
    assert (counts.secret_reads, counts.restarts) == (REFRESH, 0)


def test_another_secret_changing_does_not_reread_the_key(tmp_path, issued):
    """secret-changed for some other secret (the s3 credentials, say) leaves the key alone."""
    unit = Unit(tmp_path)
    out = _started(unit, issued)
    other = testing.Secret(
        tracked_content={"a": "1"}, latest_content={"a": "2"}, id="secret:d5othersecret0000001"
    )
    with counted() as counts:
        state = unit.state(_data(issued), [_secret(issued.key), other], out)
        out = unit.run(unit.ctx.on.secret_changed(other), state)
    assert out.unit_status == testing.ActiveStatus()
    assert (counts.secret_reads, counts.restarts) == (0, 0)


def test_new_ca_is_trusted_again(tmp_path, issued):
    unit = Unit(tmp_path)
    out = _started(unit, issued)
    other = CA("other-ca").issue(ADDRESS)
    state = unit.state(_data(other), [_secret(other.key)], out)
    out = unit.run(unit.ctx.on.relation_changed(_cluster(state)), state)
    assert _tls_files(unit) == _expected(other)
    assert unit.update_ca_runs() == 2


def test_tls_removed_removes_the_files_and_the_trust_and_restarts_once(tmp_path, issued):
    unit = Unit(tmp_path)
    out = _started(unit, issued)
    SEEN.clear()
    with counted() as counts:
        state = unit.state(_data(), [], out)
        out = unit.run(unit.ctx.on.relation_changed(_cluster(state)), state)
    assert out.unit_status == testing.ActiveStatus()
    assert _tls_files(unit) == dict.fromkeys(_expected(issued))
    assert unit.update_ca_runs() == 2
    assert (counts.secret_reads, counts.restarts) == (0, 1)
    assert SEEN[-1].tls is None
    plan = out.get_container("workload").plan
    assert plan.checks["ready"].http == {"url": f"http://{ADDRESS}:8080/ready"}
    with counted() as counts:
        unit.run(unit.ctx.on.update_status(), out)
    assert (counts.secret_reads, counts.restarts) == (0, 0)
    assert unit.update_ca_runs() == 2


def test_leaving_the_cluster_removes_the_coordinators_key_and_trust(tmp_path, issued):
    unit = Unit(tmp_path)
    out = _started(unit, issued)
    assert _tls_files(unit) == _expected(issued)
    broken = unit.run(unit.ctx.on.relation_broken(_cluster(out)), out)
    gone = unit.run(
        unit.ctx.on.update_status(), dataclasses.replace(broken, relations=[], secrets=[])
    )
    assert _tls_files(unit) == dict.fromkeys(_expected(issued))
    assert unit.update_ca_runs() == 2  # trusted on the way in, forgotten on the way out
    statuses = gone.get_container("workload").service_statuses.values()
    assert ops.pebble.ServiceStatus.ACTIVE not in statuses
    with counted() as counts:  # nothing more to remove: no file read, no exec
        unit.run(unit.ctx.on.update_status(), gone)
    assert unit.update_ca_runs() == 2 and (counts.restarts, counts.tls_pulls) == (0, 0)


def test_a_restarted_container_gets_its_files_back_without_a_new_secret_read(tmp_path, issued):
    unit = Unit(tmp_path)
    out = _started(unit, issued)
    (tmp_path / "etc-worker" / "server.cert").unlink()
    (tmp_path / "ca-certificates" / "ca.crt").unlink()
    with counted() as counts:
        out = unit.run(unit.ctx.on.pebble_ready(out.get_container("workload")), out)
    assert _tls_files(unit) == _expected(issued)
    assert unit.update_ca_runs() == 2
    assert (counts.secret_reads, counts.restarts) == (0, 1)


def test_a_key_file_changed_behind_our_back_is_read_again_from_the_secret(tmp_path, issued):
    unit = Unit(tmp_path)
    out = _started(unit, issued)
    (tmp_path / "etc-worker" / "private.key").write_text("tampered")
    with counted() as counts:
        unit.run(unit.ctx.on.update_status(), out)
    assert _tls_files(unit) == _expected(issued)
    assert (counts.secret_reads, counts.restarts) == (1, 1)


# ----- hostile or broken input: a status that says what, the last good files kept --------------


def _after_good(tmp_path, issued: Issued, bag: dict[str, str], secrets: list[testing.Secret]):
    unit = Unit(tmp_path)
    out = _started(unit, issued)
    relation = coordinator_relation(
        remote_app_data={**_data(issued).dump(), **bag}, relation_id=_cluster(out).id
    )
    with counted() as counts:
        out = unit.run(
            unit.ctx.on.relation_changed(relation),
            dataclasses.replace(out, relations=[relation], secrets=secrets),
        )
    assert _tls_files(unit) == _expected(issued), "the last good files are kept"
    assert counts.restarts == 0
    assert out.get_container("workload").service_statuses["app"] == ops.pebble.ServiceStatus.ACTIVE
    return out.unit_status


def test_a_malformed_pem_in_the_bag_is_refused_with_the_whole_bag(tmp_path, issued):
    bad = issued.cert.replace("\n", "\n$", 1)
    status = _after_good(tmp_path, issued, {"server_cert": f'"{bad}"'.replace("\n", "\\n")}, [])
    assert isinstance(status, testing.BlockedStatus)
    assert status.message.startswith("cluster:") and "server_cert" in status.message


def test_a_pem_shaped_certificate_that_does_not_parse_is_blocked(tmp_path, issued):
    lines = issued.cert.split("\n")
    garbage = "\n".join([lines[0], "QUJD" * 16, lines[-1]])
    bag = _data(issued, server_cert=garbage).dump()
    status = _after_good(tmp_path, issued, bag, [_secret(issued.key)])
    assert isinstance(status, testing.BlockedStatus)
    assert status.message.startswith("cluster: server_cert is not a usable certificate")


def test_a_secret_not_granted_waits(tmp_path, ca, issued):
    rekeyed = ca.issue(ADDRESS)
    status = _after_good(tmp_path, issued, _data(rekeyed).dump(), [])
    assert isinstance(status, testing.WaitingStatus)
    assert status.message.startswith("cluster: cannot read the TLS key secret yet")


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ({"key": "x"}, "has no 'private-key' field"),
        ({"private-key": "k" * 100_000}, "too large"),
        (
            {"private-key": "-----BEGIN PRIVATE KEY-----\n\ud800\n-----END PRIVATE KEY-----"},
            "not an unencrypted PEM",
        ),
        (
            {"private-key": "-----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----"},
            "the TLS key is not usable",
        ),
    ],
    ids=["no key", "huge", "surrogate", "not a key"],
)
def test_a_secret_without_a_usable_key_is_blocked(tmp_path, ca, issued, content, why):
    rekeyed = ca.issue(ADDRESS)
    secret = testing.Secret(tracked_content=content, id=SECRET_ID, owner=None)
    status = _after_good(tmp_path, issued, _data(rekeyed).dump(), [secret])
    assert isinstance(status, testing.BlockedStatus)
    assert why in status.message
    status.message.encode()


def test_incomplete_tls_data_is_blocked(tmp_path, issued):
    bag = _data(issued).dump()
    del bag["privkey_secret_id"]
    unit = Unit(tmp_path)
    out = _started(unit, issued)
    relation = coordinator_relation(remote_app_data=bag, relation_id=_cluster(out).id)
    out = unit.run(
        unit.ctx.on.relation_changed(relation), dataclasses.replace(out, relations=[relation])
    )
    assert out.unit_status == testing.BlockedStatus(
        "cluster: TLS data incomplete (no privkey_secret_id)"
    )
    assert _tls_files(unit) == _expected(issued)


def test_update_ca_certificates_failing_is_blocked_and_retried(tmp_path, issued):
    unit = Unit(tmp_path, exit_code=1)
    out = _started(unit, issued)
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith("workload: update-ca-certificates failed (exit 1)")
    assert _tls_files(unit) == _expected(issued), "the workload still gets its files"
    with counted() as counts:
        out = unit.run(unit.ctx.on.config_changed(), out)
    assert unit.update_ca_runs() == 2, "retried by the next hook"
    assert (counts.secret_reads, counts.restarts) == (0, 0)


def test_an_image_without_update_ca_certificates_still_gets_its_files_and_is_active(
    tmp_path, issued, caplog
):
    """The reference worker's image is busybox-based: no update-ca-certificates (exit 127)."""
    unit = Unit(tmp_path, exit_code=127)
    out = _started(unit, issued)
    assert out.unit_status == testing.ActiveStatus(), out.unit_status
    assert _tls_files(unit) == _expected(issued)
    assert "update-ca-certificates is not in the workload image" in caplog.text
    with counted() as counts:
        out = unit.run(unit.ctx.on.config_changed(), out)
    assert unit.update_ca_runs() == 1, "not retried while the CA is the same"
    assert (counts.secret_reads, counts.restarts) == (0, 0)
    assert out.unit_status == testing.ActiveStatus()


def test_https_telemetry_urls_are_used_with_the_ca_in_the_trust_store(tmp_path, issued):
    # The coordinator switches its proxy URLs to https with TLS; the worker validates them as
    # any URL and uses them as they are, the CA in the container's trust store.
    proxy = f"https://coordinator.{MODEL}.svc.cluster.local:8081/proxy"
    data = _data(
        issued,
        loki_endpoints={"loki/0": f"{proxy}/loki/loki-0/push"},
        workload_tracing_receivers={"otlp_http": f"{proxy}/workload-tracing/otlp_http/"},
    )
    unit = Unit(tmp_path)
    SEEN.clear()
    out = unit.run(unit.ctx.on.config_changed(), unit.state(data, [_secret(issued.key)]))
    assert out.unit_status == testing.ActiveStatus()
    targets = out.get_container("workload").plan.log_targets
    assert targets["loki-loki-0"].location == f"{proxy}/loki/loki-0/push"
    assert SEEN[-1].workload_tracing == {"otlp_http": f"{proxy}/workload-tracing/otlp_http/"}
    assert unit.file("/usr/local/share/ca-certificates/ca.crt") == issued.ca
    assert unit.update_ca_runs() == 1


def test_upstreams_bag_with_tls_is_read_and_its_certificates_load(tmp_path, issued):
    # Upstream's coordinator bag under TLS (coordinated-workers 4.1.4): the three keys parse
    # as a worker reads them, both certificates load with OpenSSL, and a key that is not the
    # certificate's (the vector holds no private key) is caught before anything is written.
    vector = json.loads((VECTORS / "cluster-coordinator-worker-tls-s3-tracing.json").read_text())
    bag = vector["coordinator_cluster_app_databag_with_tls"]
    data = ClusterProviderAppData.load(bag)
    assert data.privkey_secret_id == SECRET_ID
    assert data.ca_cert and data.server_cert
    unit = Unit(tmp_path)
    relation = coordinator_relation(remote_app_data=bag)
    state = testing.State(
        leader=False,
        model=testing.Model(name=MODEL),
        relations=[relation],
        containers=[unit.workload],
        secrets=[_secret(issued.key)],
    )
    out = unit.run(unit.ctx.on.relation_changed(relation), state)
    assert out.unit_status == testing.WaitingStatus(
        "cluster: the TLS key does not match the server certificate (a renewal half "
        "published?); keeping the last good files"
    )
    assert _tls_files(unit) == dict.fromkeys(_expected(issued)), "nothing written"


def _https_get(server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext) -> int:
    """Serve https on loopback with ``server_ssl``, GET / with ``client_ssl``; the status."""

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base names it)
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Ok)
    server.socket = server_ssl.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPSConnection(
            ADDRESS, server.server_address[1], context=client_ssl, timeout=10
        )
        connection.sock = client_ssl.wrap_socket(
            socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10),
            server_hostname=ADDRESS,
        )
        connection.request("GET", "/")
        return connection.getresponse().status
    finally:
        thread.join(timeout=10)
        server.server_close()


def test_the_files_serve_https_to_a_client_that_trusts_only_the_installed_ca(tmp_path, issued):
    unit = Unit(tmp_path)
    _started(unit, issued)
    server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    etc = tmp_path / "etc-worker"
    server_ssl.load_cert_chain(etc / "server.cert", etc / "private.key")
    trusting = ssl.create_default_context(cafile=tmp_path / "ca-certificates" / "ca.crt")
    assert _https_get(server_ssl, trusting) == 200
    stranger = ssl.create_default_context(cadata=CA("another-ca").pem)
    with pytest.raises(ssl.SSLCertVerificationError):
        _https_get(server_ssl, stranger)


def test_a_removal_that_pebble_interrupts_is_finished_by_the_next_hook(tmp_path, issued):
    unit = Unit(tmp_path)
    out = _started(unit, issued)
    state = unit.state(_data(), [], out)
    with pebble_goes_away_on("remove_path", 2):
        out = unit.run(unit.ctx.on.relation_changed(_cluster(state)), state)
    assert unit.file("/etc/worker/ca.cert") is None
    assert unit.file("/etc/worker/server.cert") is not None, "interrupted"
    with counted() as counts:
        unit.run(unit.ctx.on.config_changed(), out)
    assert _tls_files(unit) == dict.fromkeys(_expected(issued))
    assert unit.update_ca_runs() == 2
    assert counts.restarts == 1, "the restart the interrupted hook owed"


def test_a_write_that_pebble_interrupts_is_finished_and_restarted_by_the_next_hook(
    tmp_path, issued
):
    unit = Unit(tmp_path)
    plain = unit.run(unit.ctx.on.config_changed(), unit.state(_data(), []))
    state = unit.state(_data(issued), [_secret(issued.key)], plain)
    with pebble_goes_away_on("push", 3):
        out = unit.run(unit.ctx.on.relation_changed(_cluster(state)), state)
    assert None in _tls_files(unit).values(), "interrupted"
    with counted() as counts:
        unit.run(unit.ctx.on.config_changed(), out)
    assert _tls_files(unit) == _expected(issued)
    assert unit.update_ca_runs() == 1
    assert (counts.secret_reads, counts.restarts) == (1, 1)
