# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""TLS end to end through both reference charms: certificates provider -> coordinator -> workers.

The test CA answers the coordinator's CSR on the ``certificates`` relation; what the coordinator
then publishes (its cluster bag) and the key's secret it made are handed to the worker units as
Juju shows them to a worker (the same bag as remote data, the same secret id and content, owned
by someone else). Every worker unit first ran itself and published its address, which is what the
coordinator reads. Each worker's workload directories are directories of the test, so the files
it writes are loaded with ``ssl`` and ``cryptography`` and checked against what the coordinator
got. Added, renewed (same key; new key) and removed each flow through both charms.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import ssl

import pytest
from charmlibs.interfaces.tls_certificates import PrivateKey
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from ops import testing
from reliability_charms import (
    COORDINATOR,
    MODEL,
    coordinator_charm,
    coordinator_state,
    worker_charm,
)

from coordinated_workers import ClusterRequirerUnitData
from coordinated_workers._tls_share import KEY_FIELD, SECRET_LABEL
from coordinated_workers.testing import coordinator_relation
from tests.support.pebble_counts import counted
from tests.support.pki import CA, certificate_names, csr_names

CERTIFICATES_ID = 31
UPDATE_CA = ["update-ca-certificates", "--fresh"]
ROLES = {"worker-read": "role-read", "worker-write": "role-write"}
UNITS = {"worker-read": 2, "worker-write": 1}
TLS_KEYS = {"ca_cert", "server_cert", "privkey_secret_id"}


class WorkerUnit:
    """One unit of a reference worker app; its /etc/worker and CA directory are on the host."""

    def __init__(self, root: pathlib.Path, app: str, number: int, relation_id: int) -> None:
        self.app, self.number, self.relation_id = app, number, relation_id
        self.name = f"{app}/{number}"
        self.etc = root / f"{app}-{number}" / "etc-worker"
        self.trusted = root / f"{app}-{number}" / "ca-certificates"
        self.etc.mkdir(parents=True)
        self.trusted.mkdir()
        self.ctx = testing.Context(worker_charm.WorkerCharm, app_name=app, unit_id=number)
        workload = testing.Container(
            "workload",
            can_connect=True,
            mounts={
                "etc": testing.Mount(location="/etc/worker", source=self.etc),
                "cas": testing.Mount(
                    location="/usr/local/share/ca-certificates", source=self.trusted
                ),
            },
            execs={testing.Exec(UPDATE_CA)},
        )
        self.state = testing.State(
            leader=number == 0,
            model=testing.Model(name=MODEL),
            config={"role-all": False, ROLES[app]: True},
            containers=[workload],
            relations=[coordinator_relation(None, COORDINATOR, relation_id=relation_id)],
        )

    def run(self, event: str, bag: dict[str, str], secrets: list[testing.Secret]) -> testing.State:
        """Run ``event`` with the coordinator's ``bag`` and the ``secrets`` a worker sees."""
        (relation,) = self.state.relations
        relation = dataclasses.replace(relation, remote_app_data=bag)
        state = dataclasses.replace(self.state, relations=[relation], secrets=secrets)
        if event == "secret_changed":
            (secret,) = secrets
            self.state = self.ctx.run(self.ctx.on.secret_changed(secret), state)
        else:
            self.state = self.ctx.run(self.ctx.on.relation_changed(relation), state)
        return self.state

    @property
    def published(self) -> testing.Relation:
        (relation,) = self.state.relations
        assert isinstance(relation, testing.Relation)
        return relation

    @property
    def address(self) -> str:
        """The address this unit published for the coordinator (its readiness check's host)."""
        address = ClusterRequirerUnitData.load(self.published.local_unit_data).address
        assert address is not None
        return address

    def files(self) -> dict[str, str | None]:
        paths = {
            "ca": self.etc / "ca.cert",
            "cert": self.etc / "server.cert",
            "key": self.etc / "private.key",
            "trusted": self.trusted / "ca.crt",
        }
        return {name: p.read_text() if p.exists() else None for name, p in paths.items()}

    def update_ca_runs(self) -> int:
        return sum(run.command == UPDATE_CA for run in self.ctx.exec_history.get("workload", []))


class Cluster:
    """The coordinator leader, its certificate provider (a test CA) and every worker unit."""

    def __init__(self, root: pathlib.Path, ca: CA) -> None:
        self.ca = ca
        self.nginx = root / "nginx"
        self.nginx.mkdir()
        self.workers = [
            WorkerUnit(root, app, n, relation_id)
            for relation_id, app in enumerate(UNITS, start=7)
            for n in range(UNITS[app])
        ]
        self.ctx = testing.Context(coordinator_charm.CoordinatorCharm, app_name=COORDINATOR)
        self.coordinator = testing.State()
        self.seen: dict[str, dict[str, str]] = {}
        """Per worker unit, the content of the key's secret it tracks (Juju's revision)."""

    # --- both sides -----------------------------------------------------------------------

    def join(self) -> None:
        """Each worker unit publishes itself; the coordinator relates to them and to the CA."""
        for unit in self.workers:
            unit.run("relation_changed", {}, [])
        certificates = testing.Relation(
            "certificates", id=CERTIFICATES_ID, remote_app_name="self-signed-certificates"
        )
        state = coordinator_state(
            *(self._cluster(app) for app in UNITS),
            certificates,
            nginx={"mounts": {"etc": testing.Mount(location="/etc/nginx", source=self.nginx)}},
        )
        self.coordinator = self.ctx.run(self.ctx.on.relation_created(certificates), state)

    def add_unit(self, root: pathlib.Path, app: str) -> WorkerUnit:
        """A new unit of ``app`` starts with what the coordinator publishes now, then the
        coordinator hears it joined (its address in the unit bag)."""
        number = sum(unit.app == app for unit in self.workers)
        relation_id = next(unit.relation_id for unit in self.workers if unit.app == app)
        unit = WorkerUnit(root, app, number, relation_id)
        self.workers.append(unit)
        self.to_workers(only=unit)
        cluster = self._cluster(app)
        others = [r for r in self.coordinator.relations if r.id != relation_id]
        state = dataclasses.replace(self.coordinator, relations=[*others, cluster])
        self.coordinator = self.ctx.run(
            self.ctx.on.relation_joined(cluster, remote_unit=number), state
        )
        return unit

    def _cluster(self, app: str) -> testing.Relation:
        """The coordinator's cluster relation with ``app`` as the app's units published it."""
        units = [unit for unit in self.workers if unit.app == app]
        published = {
            "remote_app_data": units[0].published.local_app_data,
            "remote_units_data": {u.number: u.published.local_unit_data for u in units},
        }
        ours = [
            r
            for r in self.coordinator.relations
            if r.id == units[0].relation_id and isinstance(r, testing.Relation)
        ]
        if ours:  # the coordinator's own side as it last wrote it
            return dataclasses.replace(ours[0], **published)
        return testing.Relation(
            "cluster",
            interface="cluster",
            id=units[0].relation_id,
            remote_app_name=app,
            **published,
        )

    def answer(self) -> None:
        """The CA signs every CSR in the coordinator's unit bag; the coordinator hears of it."""
        ours = self.certificates
        bag = self.ca.provider_bag(ours.local_unit_data)
        self.certificates_changed(dataclasses.replace(ours, remote_app_data=bag))

    def certificates_changed(self, relation: testing.Relation | None = None) -> None:
        relation = relation or self.certificates
        others = [r for r in self.coordinator.relations if r.id != CERTIFICATES_ID]
        state = dataclasses.replace(self.coordinator, relations=[*others, relation])
        self.coordinator = self.ctx.run(self.ctx.on.relation_changed(relation), state)

    def remove_certificates(self) -> None:
        self.coordinator = self.ctx.run(
            self.ctx.on.relation_broken(self.certificates), self.coordinator
        )

    def to_workers(self, event: str = "relation_changed", only: WorkerUnit | None = None) -> None:
        """Every worker unit (or ``only``) runs ``event`` with the coordinator's bag and key
        secret as they are now."""
        secret = self.key_secret
        for unit in self.workers if only is None else [only]:
            secrets = []
            if secret is not None:
                tracked = self.seen.setdefault(unit.name, dict(secret.latest_content))
                if event == "secret_changed":
                    tracked = self.seen[unit.name] = dict(secret.latest_content)
                secrets = [
                    testing.Secret(
                        tracked_content=tracked,
                        latest_content=dict(secret.latest_content),
                        id=secret.id,
                        owner=None,
                    )
                ]
            unit.run(event, self.bag(unit.relation_id), secrets)

    # --- what the coordinator holds -------------------------------------------------------

    @property
    def certificates(self) -> testing.Relation:
        relation = self.coordinator.get_relation(CERTIFICATES_ID)
        assert isinstance(relation, testing.Relation)
        return relation

    def bag(self, relation_id: int) -> dict[str, str]:
        relation = self.coordinator.get_relation(relation_id)
        assert isinstance(relation, testing.Relation)
        return dict(relation.local_app_data)

    @property
    def key_secret(self) -> testing.Secret | None:
        return next((s for s in self.coordinator.secrets if s.label == SECRET_LABEL), None)

    def served(self) -> tuple[str, str]:
        """The certificate and key nginx serves (the coordinator's own files)."""
        certs = self.nginx / "certs"
        return (certs / "server.cert").read_text(), (certs / "server.key").read_text()

    def rotate_library_key(self) -> None:
        """The library's unit key is replaced (as its ``regenerate_private_key`` does)."""
        (secret,) = [
            s
            for s in self.coordinator.secrets
            if (s.label or "").endswith("-private-key-0-certificates")
        ]
        key = {"private-key": str(PrivateKey.generate())}
        rotated = dataclasses.replace(secret, tracked_content=key, latest_content=key)
        others = [s for s in self.coordinator.secrets if s is not secret]
        self.coordinator = dataclasses.replace(self.coordinator, secrets=[*others, rotated])


def _public(pem: str) -> bytes:
    """The public key of a certificate or a private key, DER: equal for a matching pair."""
    if "PRIVATE KEY" in pem:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        public = key.public_key()
    else:
        public = x509.load_pem_x509_certificate(pem.encode()).public_key()
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _handshake(unit: WorkerUnit, ca_file: pathlib.Path) -> None:
    """A TLS handshake (in memory) served with the unit's own files, to a client that trusts
    only ``ca_file`` and checks the name the unit published, as an https readiness check does.

    Raises:
        ssl.SSLError: the key is not the certificate's, or the name is not in it.
    """
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(unit.etc / "server.cert", unit.etc / "private.key")
    client = ssl.create_default_context(cafile=str(ca_file))
    client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
    ends = [
        client.wrap_bio(client_in, client_out, server_hostname=unit.address),
        server.wrap_bio(server_in, server_out, server_side=True),
    ]
    for _ in range(10):
        for end in list(ends):
            try:
                end.do_handshake()
                ends.remove(end)
            except ssl.SSLWantReadError:
                pass
        server_in.write(client_out.read())
        client_in.write(server_out.read())
        if not ends:
            return
    raise AssertionError("the handshake did not finish")


@pytest.fixture
def cluster(kube, tmp_path: pathlib.Path) -> Cluster:
    """Workers related to a coordinator that has just adopted its first certificate, and
    every worker unit has run with what it published."""
    del kube  # serving: both charms reach it through their own lightkube client
    return _related(tmp_path, CA("cluster-ca"))


def _related(root: pathlib.Path, ca: CA) -> Cluster:
    cluster = Cluster(root, ca)
    cluster.join()
    cluster.answer()
    return cluster


def _assert_workers_hold(cluster: Cluster) -> None:
    """Every worker unit has the coordinator's CA, certificate and key, and they work."""
    root = cluster.ca.chain[-1]
    served_cert, served_key = cluster.served()
    secret = cluster.key_secret
    assert secret is not None
    for unit in cluster.workers:
        _handshake(unit, unit.trusted / "ca.crt")
        files = unit.files()
        assert files == {
            "ca": root,
            "cert": served_cert.strip(),
            "key": secret.latest_content[KEY_FIELD],
            "trusted": root,
        }, unit.name
        assert files["key"] == served_key
        assert _public(files["key"] or "") == _public(files["cert"] or "")
        assert unit.state.unit_status == testing.ActiveStatus(f"{unit.app[7:]} ready")


def test_added_every_worker_unit_serves_the_coordinators_certificate(cluster):
    assert cluster.coordinator.unit_status == testing.ActiveStatus()
    # The certificate names every worker unit as the unit published its address.
    addresses = {unit.address for unit in cluster.workers}
    assert len(addresses) == sum(UNITS.values())
    assert addresses <= certificate_names(cluster.served()[0])
    for unit in cluster.workers:
        assert set(cluster.bag(unit.relation_id)) >= TLS_KEYS
    with counted() as counts:
        cluster.to_workers()
    assert counts.restarts == len(cluster.workers)
    assert [unit.update_ca_runs() for unit in cluster.workers] == [1] * len(cluster.workers)
    _assert_workers_hold(cluster)
    # The next hook changes nothing on a worker.
    with counted() as counts:
        cluster.to_workers()
    assert (counts.restarts, counts.secret_reads) == (0, 0)


def test_renewed_with_the_same_key_restarts_each_worker_once(cluster):
    cluster.to_workers()
    served_cert, key = cluster.served()
    cluster.answer()  # the CA signs the same request again
    assert cluster.served()[0] != served_cert and cluster.served()[1] == key
    with counted() as counts:
        cluster.to_workers()
    assert counts.restarts == len(cluster.workers)
    assert [unit.update_ca_runs() for unit in cluster.workers] == [1] * len(cluster.workers)
    _assert_workers_hold(cluster)


@pytest.mark.parametrize("first", ["relation_changed", "secret_changed"])
def test_renewed_with_a_new_key_converges_in_two_worker_hooks(cluster, first):
    cluster.to_workers()
    old_key = cluster.served()[1]
    cluster.rotate_library_key()
    cluster.certificates_changed()  # the library asks again; the old certificate is still served
    assert cluster.served()[1] == old_key
    cluster.answer()
    new_key = cluster.served()[1]
    secret = cluster.key_secret
    assert new_key != old_key
    assert secret is not None and secret.latest_content[KEY_FIELD] == new_key
    with counted() as counts:
        cluster.to_workers(first)
        if first == "relation_changed":
            # The new certificate, but the key revision the worker tracks is the old one: it
            # keeps the last good files and waits for its secret-changed.
            for unit in cluster.workers:
                assert isinstance(unit.state.unit_status, testing.WaitingStatus), unit.name
                assert unit.files()["key"] == old_key
            assert counts.restarts == 0
        cluster.to_workers("secret_changed" if first == "relation_changed" else first)
    assert counts.restarts == len(cluster.workers)
    _assert_workers_hold(cluster)


def test_removed_takes_the_files_and_the_trust_back_on_every_worker(cluster):
    cluster.to_workers()
    cluster.remove_certificates()
    assert cluster.key_secret is None
    for unit in cluster.workers:
        assert not TLS_KEYS & set(cluster.bag(unit.relation_id))
    with counted() as counts:
        cluster.to_workers()
    assert counts.restarts == len(cluster.workers)
    for unit in cluster.workers:
        assert unit.files() == dict.fromkeys(("ca", "cert", "key", "trusted")), unit.name
        assert unit.update_ca_runs() == 2
        assert unit.state.unit_status == testing.ActiveStatus(f"{unit.app[7:]} ready")


def test_a_new_worker_unit_is_named_in_the_next_certificate(cluster, tmp_path):
    cluster.to_workers()
    before = cluster.served()[0]
    unit = cluster.add_unit(tmp_path, "worker-read")
    # It starts with the certificate the coordinator has, which does not name it yet.
    assert unit.address not in certificate_names(before)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(unit, unit.trusted / "ca.crt")
    # The coordinator asked for one that does; once the CA answers, every worker takes it.
    assert unit.address in csr_names(cluster.certificates.local_unit_data)[1]
    cluster.answer()
    assert unit.address in certificate_names(cluster.served()[0])
    with counted() as counts:
        cluster.to_workers()
    assert counts.restarts == len(cluster.workers)
    _assert_workers_hold(cluster)


def test_a_certificate_from_an_intermediate_ca_reaches_the_workers_with_its_chain(kube, tmp_path):
    # The provider signs with an intermediate: ``ca`` is the root, the chain holds both.
    # nginx serves the certificate and the intermediate; so must every worker, or a client
    # that trusts the root (ca_cert, in the worker's trust store) cannot verify it.
    del kube
    intermediate = CA("issuing-ca", parent=CA("root-ca"))
    cluster = _related(tmp_path, intermediate)
    served = cluster.served()[0]
    assert intermediate.pem in served
    cluster.to_workers()
    _assert_workers_hold(cluster)
    for unit in cluster.workers:
        assert json.loads(cluster.bag(unit.relation_id)["ca_cert"]) == intermediate.chain[-1]
