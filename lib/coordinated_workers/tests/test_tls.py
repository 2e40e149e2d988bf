# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""TLS on the coordinator: the certificates relation through the published library, end to end.

The coordinator is an inline charm run through ops.testing (Kubernetes faked at HTTP); the
test plays the certificate provider with a real CA (``tests/support/pki.py``): it
signs the CSR the library put in the coordinator's unit bag and answers in the provider's
wire format. nginx's /etc/nginx is a directory of the test, so its files can be read.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from ops import testing

from coordinated_workers._catalogue import CatalogueItem
from coordinated_workers._telemetry_proxy import WorkerTelemetryProxyConfig
from coordinated_workers._tls import ServerCertificate
from coordinated_workers._tls_share import KEY_FIELD, SECRET_LABEL
from coordinated_workers.testing import read_provider_data, worker_address, worker_relation
from service_mesh import AppPolicy, Endpoint
from service_mesh.testing import FakeKubernetes
from tests.support.coordinators import (
    CoordinatorTester,
    coordinator_charm,
    kubernetes_with,
    minimal_coordinator_config,
)
from tests.support.pki import CA, csr_names

VECTORS = pathlib.Path(__file__).parents[3] / "tests" / "vectors" / "cos"
TLS_VECTOR = json.loads((VECTORS / "tls_certificates-v1.json").read_text())
CLUSTER_VECTOR = json.loads(
    (VECTORS / "cluster-coordinator-worker-tls-s3-tracing.json").read_text()
)

MODEL = "obs"
APP = "coordinator"
CERTS = 31
META = {
    "name": APP,
    "containers": {"nginx": {}, "nginx-prometheus-exporter": {}},
    "provides": {
        "cluster": {"interface": "cluster"},
        "metrics-endpoint": {"interface": "prometheus_scrape"},
    },
    "requires": {"certificates": {"interface": "tls-certificates", "limit": 1}},
}


TlsCoordinator = coordinator_charm(
    minimal_coordinator_config(
        keep=("metrics",),
        telemetry_proxy=WorkerTelemetryProxyConfig(http_port=8081, https_port=8443),
    )
)


@pytest.fixture
def kube() -> Iterator[FakeKubernetes]:
    with kubernetes_with(APP, model=MODEL) as fake:
        yield fake


def _ctx() -> testing.Context[CoordinatorTester]:
    return testing.Context(TlsCoordinator, meta=META, app_name=APP)


def _state(etc: pathlib.Path, *relations: testing.RelationBase, **kwargs) -> testing.State:
    kwargs.setdefault("leader", True)
    return testing.State(
        model=testing.Model(name=MODEL),
        containers=[
            testing.Container(
                "nginx",
                can_connect=True,
                mounts={"etc": testing.Mount(location="/etc/nginx", source=etc)},
                execs={testing.Exec(["nginx", "-t"]), testing.Exec(["nginx", "-s", "reload"])},
            ),
            testing.Container("nginx-prometheus-exporter", can_connect=True),
        ],
        relations=list(relations),
        **kwargs,
    )


def _certificates(remote_app_data: dict[str, str] | None = None) -> testing.Relation:
    return testing.Relation(
        "certificates",
        interface="tls-certificates",
        id=CERTS,
        remote_app_name="self-signed-certificates",
        remote_app_data=remote_app_data or {},
    )


def _worker(app: str = "worker", relation_id: int = 11) -> testing.Relation:
    return worker_relation(app, ["work"], model=MODEL, relation_id=relation_id)


def _relation(state: testing.State, relation_id: int) -> testing.Relation:
    relation = state.get_relation(relation_id)
    assert isinstance(relation, testing.Relation)
    return relation


def _answered(state: testing.State, ca: CA) -> tuple[testing.State, testing.Relation]:
    """``state`` with the provider's answer to the coordinator's CSR in its bag."""
    ours = _relation(state, CERTS)
    answered = dataclasses.replace(ours, remote_app_data=ca.provider_bag(ours.local_unit_data))
    relations = [r for r in state.relations if r.id != CERTS]
    return dataclasses.replace(state, relations=[*relations, answered]), answered


def _reloads(ctx: testing.Context[CoordinatorTester]) -> int:
    return sum(e.command[1:] == ["-s", "reload"] for e in ctx.exec_history.get("nginx", []))


def _key_secret(state: testing.State) -> testing.Secret | None:
    return next((s for s in state.secrets if s.label == SECRET_LABEL), None)


def _with_tls(
    ctx: testing.Context[CoordinatorTester], etc: pathlib.Path, ca: CA, *workers
) -> testing.State:
    """Relate certificates (the library sends its CSR), then answer it (TLS on)."""
    certs = _certificates()
    requested = ctx.run(ctx.on.relation_created(certs), _state(etc, *workers, certs))
    state, answered = _answered(requested, ca)
    return ctx.run(ctx.on.relation_changed(answered), state)


# --- the request --------------------------------------------------------------------------------


def test_the_request_is_the_librarys_bag_with_the_upstream_sans(kube, tmp_path):
    ctx = _ctx()
    certs = _certificates()
    out = ctx.run(ctx.on.relation_created(certs), _state(tmp_path, _worker(), certs))
    ours = _relation(out, CERTS).local_unit_data
    vector = TLS_VECTOR["requirer_unit_databag_coordinator_0"]
    assert set(ours) == set(vector) == {"certificate_signing_requests"}
    # The published library's encoding: a JSON list of {csr, ca}, keys in its order.
    (request,) = json.loads(ours["certificate_signing_requests"])
    (expected,) = json.loads(vector["certificate_signing_requests"])
    assert list(request) == list(expected) and request["ca"] is False
    common_name, sans = csr_names(ours)
    assert common_name == APP
    # Same app, model and worker as the vector: the SANs are upstream's, name for name.
    assert sans == set(TLS_VECTOR["decoded"]["parsed"]["csr_sans_dns"])
    # Nothing to serve yet: plain HTTP, no TLS keys for the workers.
    assert "ssl" not in (tmp_path / "nginx.conf").read_text()
    assert "ca_cert" not in _relation(out, 11).local_app_data


def test_a_new_worker_app_is_a_new_request_with_its_address(kube, tmp_path):
    ctx = _ctx()
    ca = CA()
    out = _with_tls(ctx, tmp_path, ca, _worker())
    before = _relation(out, CERTS).local_unit_data["certificate_signing_requests"]
    other = _worker("other", 12)
    grown = ctx.run(
        ctx.on.relation_joined(other), dataclasses.replace(out, relations=[*out.relations, other])
    )
    ours = _relation(grown, CERTS).local_unit_data
    assert ours["certificate_signing_requests"] != before
    assert worker_address("other", 0, MODEL) in csr_names(ours)[1]
    # Until the new certificate comes, the one we have is still served and shared.
    assert read_provider_data(_relation(grown, 12)).server_cert is not None


def test_a_worker_cannot_choose_the_names_on_the_certificate_whose_key_it_gets(kube, tmp_path):
    """The worker SANs come from Juju's unit names, not from the address a worker writes."""
    hostile = _worker("evil")
    bag = {**hostile.remote_units_data[0], "address": json.dumps("grafana.cos.svc.cluster.local")}
    hostile = dataclasses.replace(hostile, remote_units_data={0: bag})
    ctx = _ctx()
    certs = _certificates()
    out = ctx.run(ctx.on.relation_created(certs), _state(tmp_path, hostile, certs))
    names = csr_names(_relation(out, CERTS).local_unit_data)[1]
    assert "grafana.cos.svc.cluster.local" not in names
    assert worker_address("evil", 0, MODEL) in names


# --- added, renewed, removed ------------------------------------------------------------------


def test_added_serves_https_publishes_https_and_shares_the_certificate(kube, tmp_path):
    ctx = _ctx()
    ca = CA()
    metrics = testing.Relation("metrics-endpoint", id=41, remote_app_name="prometheus")
    out = _with_tls(ctx, tmp_path, ca, _worker(), metrics)
    assert out.unit_status == testing.ActiveStatus()
    conf = (tmp_path / "nginx.conf").read_text()
    assert "listen 8080 ssl;" in conf and "listen 8443 ssl;" in conf
    assert "    ssl_protocols TLSv1.2 TLSv1.3;\n" in conf
    assert "return 308 https://$host:8443$request_uri;" in conf  # the proxy's plain port
    served = (tmp_path / "certs" / "server.cert").read_text()
    certificate = x509.load_pem_x509_certificate(served.encode())
    assert certificate.issuer == ca.certificate.subject
    assert (tmp_path / "certs" / "server.key").read_text().startswith("-----BEGIN")
    assert set(out.opened_ports) >= {testing.TCPPort(8443), testing.TCPPort(8081)}
    # The cluster bag: upstream's three keys, the key itself only in the secret.
    data = read_provider_data(_relation(out, 11))
    assert data.ca_cert == ca.pem
    assert data.server_cert == served.strip()
    secret = _key_secret(out)
    assert secret is not None and data.privkey_secret_id == secret.id
    assert secret.owner == "app"
    assert secret.tracked_content[KEY_FIELD] == (tmp_path / "certs" / "server.key").read_text()
    assert secret.remote_grants == {11: {"worker"}}
    # Scrape jobs through the proxy are https with the CA; the exporter stays http.
    jobs = json.loads(_relation(out, 41).local_app_data["scrape_jobs"])
    proxied = [job for job in jobs if job["job_name"].startswith("worker-")]
    assert proxied and all(job["scheme"] == "https" for job in proxied)
    assert all(job["tls_config"] == {"ca_file": ca.pem} for job in proxied)
    assert all(
        job["static_configs"][0]["targets"] == [f"{APP}.{MODEL}.svc.cluster.local:8443"]
        for job in proxied
    )
    # The private key is in no databag at all.
    key_body = secret.tracked_content[KEY_FIELD].splitlines()[1]
    for relation in out.relations:
        bags = [relation.local_app_data, relation.local_unit_data]
        assert not any(key_body in value for bag in bags for value in bag.values())


def test_the_wire_keys_are_upstreams(kube, tmp_path):
    ctx = _ctx()
    out = _with_tls(ctx, tmp_path, CA(), _worker())
    bag = _relation(out, 11).local_app_data
    upstream = CLUSTER_VECTOR["worker_after_cluster_changed"]["cluster_databags"]["coordinator"]
    for key in ("ca_cert", "server_cert", "privkey_secret_id"):
        assert key in upstream and key in bag
        # JSON strings, PEMs without a trailing newline, as upstream encodes them.
        assert bag[key].startswith('"') and not json.loads(bag[key]).endswith("\n")
    assert json.loads(bag["privkey_secret_id"]).startswith("secret:")


def test_the_workers_get_the_intermediates_nginx_serves(kube, tmp_path):
    # A provider that signs with an intermediate: ``ca`` is the root. A worker serves what
    # the bag's server_cert holds, so it holds the intermediate too, as nginx's file does.
    issuing = CA("issuing-ca", parent=CA("root-ca"))
    out = _with_tls(_ctx(), tmp_path, issuing, _worker())
    served = (tmp_path / "certs" / "server.cert").read_text()
    assert served.count("-----BEGIN CERTIFICATE-----") == 2 and issuing.pem in served
    data = read_provider_data(_relation(out, 11))
    assert data.server_cert == served.strip()
    assert data.ca_cert == issuing.chain[-1] != issuing.pem


def test_a_certificate_adopted_before_intermediates_were_kept_gets_them(kube, tmp_path):
    issuing = CA("issuing-ca", parent=CA("root-ca"))
    ctx = _ctx()
    out = _with_tls(ctx, tmp_path, issuing, _worker())
    stored = []
    for state in out.stored_states:  # the record as an older version of the library wrote it
        record = dict(state.content)
        if record.get("tls_certificate"):
            fields = json.loads(record["tls_certificate"])
            del fields["intermediates"]
            record["tls_certificate"] = json.dumps(fields)
        stored.append(dataclasses.replace(state, content=record))
    (tmp_path / "certs" / "server.cert").unlink()
    after = ctx.run(ctx.on.update_status(), dataclasses.replace(out, stored_states=stored))
    served = (tmp_path / "certs" / "server.cert").read_text()
    assert served.count("-----BEGIN CERTIFICATE-----") == 2 and issuing.pem in served
    assert issuing.chain[-1] not in served
    assert after.unit_status == testing.ActiveStatus()


def test_renewed_reloads_nginx_once_and_keeps_the_key_secret(kube, tmp_path):
    ctx = _ctx()
    ca = CA()
    out = _with_tls(ctx, tmp_path, ca, _worker())
    first = (tmp_path / "certs" / "server.cert").read_text()
    secret = _key_secret(out)
    assert secret is not None
    reloads = _reloads(ctx)
    renewed_state, renewed = _answered(out, ca)  # a new certificate for the same CSR
    again = ctx.run(ctx.on.relation_changed(renewed), renewed_state)
    assert (tmp_path / "certs" / "server.cert").read_text() != first
    assert _reloads(ctx) == reloads + 1
    assert read_provider_data(_relation(again, 11)).server_cert == (
        (tmp_path / "certs" / "server.cert").read_text().strip()
    )
    after = _key_secret(again)
    assert after is not None and after.id == secret.id
    assert after.latest_content == secret.latest_content  # same key: not rewritten
    # A steady hook then touches neither nginx nor the secret.
    steady = ctx.run(ctx.on.update_status(), dataclasses.replace(again, secrets=again.secrets))
    assert _reloads(ctx) == reloads + 1
    assert _relation(steady, 11).local_app_data == _relation(again, 11).local_app_data


def test_steady_hooks_read_no_secret_and_do_not_use_the_library(kube, tmp_path):
    ctx = _ctx()
    out = _with_tls(ctx, tmp_path, CA(), _worker())
    # Without the secrets a hook that read one would fail or change what it publishes.
    bare = dataclasses.replace(out, secrets=[])
    with ctx(ctx.on.config_changed(), bare) as manager:
        steady = manager.run()
        # The published requirer was never constructed (so never imported in a fresh hook).
        assert manager.charm.coordinator.tls._requirer is None
    assert steady.unit_status == testing.ActiveStatus()
    assert _relation(steady, 11).local_app_data == _relation(out, 11).local_app_data
    assert not steady.secrets


@pytest.mark.parametrize("related", [False, True])
def test_the_library_is_constructed_for_its_hooks_only_while_related(kube, tmp_path, related):
    """leader-elected is one of the library's hooks, but without a relation it has no work;
    an action is never one of them."""
    ctx = testing.Context(TlsCoordinator, meta=META, app_name=APP, actions={"show-mesh": {}})
    relations = [_worker(), _certificates()] if related else [_worker()]
    state = _state(tmp_path, *relations)
    with ctx(ctx.on.leader_elected(), state) as manager:
        manager.run()
        assert (manager.charm.coordinator.tls._requirer is not None) is related
    with ctx(ctx.on.action("show-mesh"), state) as manager:
        manager.run()
        assert manager.charm.coordinator.tls._requirer is None


def test_scrapers_may_reach_the_https_proxy_port_by_port_and_the_http_one_by_path(kube, tmp_path):
    ctx = _ctx()
    out = _with_tls(ctx, tmp_path, CA(), _worker())
    with ctx(ctx.on.update_status(), out) as manager:
        policies = manager.charm.coordinator.external_policies()
    by_port = {
        tuple(e.ports or ()): e for p in policies if isinstance(p, AppPolicy) for e in p.endpoints
    }
    assert by_port[(8443,)] == Endpoint(ports=[8443])  # TLS: the waypoint sees no paths
    assert by_port[(8081,)].paths == ["/proxy/worker/{*}/metrics"]  # plain: L7 as before
    with ctx(ctx.on.update_status(), _state(tmp_path, _worker())) as manager:
        untouched = manager.charm.coordinator.external_policies()
    assert [e.ports for p in untouched if isinstance(p, AppPolicy) for e in p.endpoints] == [
        [8081]
    ]


def test_removed_goes_back_to_http_and_takes_everything_back(kube, tmp_path):
    ctx = _ctx()
    out = _with_tls(ctx, tmp_path, CA(), _worker())
    reloads = _reloads(ctx)
    removed = ctx.run(ctx.on.relation_broken(_relation(out, CERTS)), out)
    conf = (tmp_path / "nginx.conf").read_text()
    assert "ssl" not in conf and "listen 8081;" in conf and "8443" not in conf
    assert not (tmp_path / "certs" / "server.cert").exists()
    assert not (tmp_path / "certs" / "server.key").exists()
    assert _reloads(ctx) == reloads + 1
    bag = _relation(removed, 11).local_app_data
    assert not {"ca_cert", "server_cert", "privkey_secret_id"} & set(bag)
    assert _key_secret(removed) is None
    assert removed.unit_status == testing.ActiveStatus()
    assert testing.TCPPort(8443) not in removed.opened_ports


def test_removal_finishes_when_the_container_already_lost_the_files(kube, tmp_path):
    ctx = _ctx()
    out = _with_tls(ctx, tmp_path, CA(), _worker())
    (tmp_path / "certs" / "server.cert").unlink()  # a container restarted with an empty disk
    (tmp_path / "certs" / "server.key").unlink()
    removed = ctx.run(ctx.on.relation_broken(_relation(out, CERTS)), out)
    assert removed.unit_status == testing.ActiveStatus()
    assert "ssl" not in (tmp_path / "nginx.conf").read_text()
    unrelated = [r for r in removed.relations if r.id != CERTS]
    again = ctx.run(ctx.on.update_status(), dataclasses.replace(removed, relations=unrelated))
    assert again.unit_status == testing.ActiveStatus()


def test_grants_follow_the_worker_apps_exactly(kube, tmp_path):
    ctx = _ctx()
    first, second = _worker("worker", 11), _worker("other", 12)
    out = _with_tls(ctx, tmp_path, CA(), first, second)
    secret = _key_secret(out)
    assert secret is not None and secret.remote_grants == {11: {"worker"}, 12: {"other"}}
    gone = ctx.run(ctx.on.relation_broken(_relation(out, 12)), out)
    after = _key_secret(gone)
    assert after is not None and after.remote_grants == {11: {"worker"}}


def test_with_an_intermediate_ca_nginx_serves_it_and_a_client_trusting_the_root_accepts(
    kube, tmp_path
):
    root = CA("root")
    issuing = CA("intermediate", parent=root)
    ctx = _ctx()
    certs = _certificates()
    requested = ctx.run(ctx.on.relation_created(certs), _state(tmp_path, _worker(), certs))
    ours = _relation(requested, CERTS)
    (request,) = json.loads(ours.local_unit_data["certificate_signing_requests"])
    leaf = issuing.sign(request["certificate_signing_request"])
    entry = {  # the provider's fields: the issuing CA, the chain from the leaf to the root
        "ca": issuing.pem,
        "certificate_signing_request": request["certificate_signing_request"],
        "certificate": leaf,
        "chain": [leaf, issuing.pem, root.pem],
    }
    answered = dataclasses.replace(ours, remote_app_data={"certificates": json.dumps([entry])})
    others = [r for r in requested.relations if r.id != CERTS]
    ctx.run(
        ctx.on.relation_changed(answered),
        dataclasses.replace(requested, relations=[*others, answered]),
    )
    served = x509.load_pem_x509_certificates((tmp_path / "certs" / "server.cert").read_bytes())
    assert [c.subject for c in served] == [
        x509.load_pem_x509_certificate(leaf.encode()).subject,
        issuing.certificate.subject,
    ]  # no root: a client has it or does not trust us anyway
    host = f"{APP}.{MODEL}.svc.cluster.local"
    _handshake(tmp_path / "certs", root.pem, host)  # raises when the chain does not reach root
    only_leaf = tmp_path / "leaf"
    only_leaf.mkdir()
    (only_leaf / "server.cert").write_text(leaf + "\n")
    (only_leaf / "server.key").write_text((tmp_path / "certs" / "server.key").read_text())
    with pytest.raises(ssl.SSLCertVerificationError):  # a check that the check can fail
        _handshake(only_leaf, root.pem, host)


def test_the_intermediates_are_found_whatever_the_providers_order_and_ca():
    root = CA("root")
    middle = CA("middle", parent=root)
    issuing = CA("issuing", parent=middle)
    leaf = issuing.issue("coordinator.obs.svc.cluster.local").cert
    for ca, chain in (
        (root.pem, [leaf, issuing.pem, middle.pem, root.pem]),  # ca: the root
        (issuing.pem, [root.pem, leaf, middle.pem, issuing.pem]),  # ca: the issuer, any order
        (issuing.pem, [leaf]),  # what the chain lacks ends the path
    ):
        served = ServerCertificate.from_provider(leaf, ca, chain)
        expected = (issuing.pem, middle.pem) if len(chain) > 1 else (issuing.pem,)
        assert served.intermediates == expected
        assert root.pem not in served.served


def _handshake(certs: pathlib.Path, trusted: str, host: str) -> None:
    """A TLS handshake, in memory, between a server given nginx's two files (as nginx loads
    them, with OpenSSL) and a client that trusts only ``trusted``."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(certs / "server.cert", certs / "server.key")
    client_context = ssl.create_default_context(cadata=trusted)
    pipes = [(ssl.MemoryBIO(), ssl.MemoryBIO()) for _ in range(2)]  # (incoming, outgoing)
    client = client_context.wrap_bio(*pipes[0], server_hostname=host)
    server = server_context.wrap_bio(*pipes[1], server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, side in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        pipes[1][0].write(pipes[0][1].read())  # client -> server
        pipes[0][0].write(pipes[1][1].read())  # server -> client
        if all(done.values()):
            return
    raise AssertionError("the handshake did not finish")


def test_a_refused_grant_keeps_tls_for_the_workers_that_have_it(kube, tmp_path):
    ctx = _ctx()
    out = _with_tls(ctx, tmp_path, CA(), _worker())
    shared = _key_secret(out)
    assert shared is not None and read_provider_data(_relation(out, 11)).server_cert is not None
    # The controller refuses to let us manage the secret (here: ops.testing's refusal for a
    # secret we do not own), so granting it to a new worker app fails.
    refusing = dataclasses.replace(shared, owner=None)
    other = _worker("other", 12)
    state = dataclasses.replace(
        out,
        relations=[*out.relations, other],
        secrets=[s for s in out.secrets if s.id != shared.id] + [refusing],
    )
    after = ctx.run(ctx.on.relation_joined(other), state)
    assert isinstance(after.unit_status, testing.WaitingStatus)
    assert after.unit_status.message.startswith("certificates: cannot share the key")
    data = read_provider_data(_relation(after, 11))
    assert data.server_cert is not None and data.privkey_secret_id == shared.id
    assert data.ca_cert is not None and "ssl" in (tmp_path / "nginx.conf").read_text()


def test_a_non_leader_serves_its_own_certificate_and_shares_nothing(kube, tmp_path):
    ctx = _ctx()
    certs = _certificates()
    requested = ctx.run(
        ctx.on.relation_created(certs), _state(tmp_path, _worker(), certs, leader=False)
    )
    state, answered = _answered(requested, CA())
    out = ctx.run(ctx.on.relation_changed(answered), state)
    assert "listen 8080 ssl;" in (tmp_path / "nginx.conf").read_text()
    assert _key_secret(out) is None
    assert _relation(out, 11).local_app_data == {}


# --- hostile provider data ----------------------------------------------------------------------


def _hostile(ca: CA, requested: testing.State) -> list[dict[str, str]]:
    ours = _relation(requested, CERTS).local_unit_data
    (request,) = json.loads(ours["certificate_signing_requests"])
    csr = request["certificate_signing_request"]
    stranger = ca.issue("elsewhere").cert
    good = ca.sign(csr)
    entry = {"ca": ca.pem, "certificate_signing_request": csr, "certificate": good, "chain": []}
    return [
        {"certificates": "not json"},
        {"certificates": json.dumps({"a": 1})},
        {"certificates": json.dumps([{**entry, "certificate": "-----BEGIN CERTIFICATE-----x"}])},
        {"certificates": json.dumps([{**entry, "ca": "\ud800"}])},
        {"certificates": json.dumps([{**entry, "certificate": stranger}])},  # not our key
        {"certificates": json.dumps([{**entry, "chain": [1, 2]}])},
        {"certificates": json.dumps([{**entry, "chain": 7}])},
        {"certificates": json.dumps([{**entry, "certificate_signing_request": None}])},
        {"certificates": json.dumps([entry, "x"])},
        {"certificates": "[" * 5000 + "]" * 5000},  # deeper than Python's recursion limit
        TLS_VECTOR["provider_app_databag_ca"],  # a real bag, for someone else's CSR
    ]


def test_hostile_provider_data_is_a_status_and_the_last_good_certificate_stays(kube, tmp_path):
    ctx = _ctx()
    ca = CA()
    out = _with_tls(ctx, tmp_path, ca, _worker())
    served = (tmp_path / "certs" / "server.cert").read_text()
    published = _relation(out, 11).local_app_data
    for bag in _hostile(ca, out):
        broken = dataclasses.replace(_relation(out, CERTS), remote_app_data=bag)
        state = dataclasses.replace(
            out, relations=[*(r for r in out.relations if r.id != CERTS), broken]
        )
        after = ctx.run(ctx.on.relation_changed(broken), state)
        assert (tmp_path / "certs" / "server.cert").read_text() == served, bag
        assert _relation(after, 11).local_app_data == published, bag
        assert "listen 8080 ssl;" in (tmp_path / "nginx.conf").read_text()
        status = after.unit_status
        if bag is TLS_VECTOR["provider_app_databag_ca"]:
            # Well formed, but nothing for us: nothing changes.
            assert status == testing.ActiveStatus(), bag
        else:
            assert isinstance(status, testing.BlockedStatus), bag
            assert status.message.startswith("certificates: "), bag


def test_a_new_leader_shares_its_own_key_even_after_leading_before(kube, tmp_path):
    ctx = _ctx()
    ca = CA()
    out = _with_tls(ctx, tmp_path, ca, _worker())
    mine = _key_secret(out)
    assert mine is not None
    # Another unit led in between: the bag and the secret now hold its certificate and key.
    other_ca = CA("other")
    other = other_ca.issue("elsewhere")
    cluster = _relation(out, 11)
    bag = dict(cluster.local_app_data)
    bag["server_cert"] = json.dumps(other.cert)
    taken = dataclasses.replace(
        mine, tracked_content={KEY_FIELD: other.key}, latest_content={KEY_FIELD: other.key}
    )
    state = dataclasses.replace(
        out,
        relations=[
            *(r for r in out.relations if r.id != 11),
            dataclasses.replace(cluster, local_app_data=bag),
        ],
        secrets=[*(s for s in out.secrets if s.label != SECRET_LABEL), taken],
    )
    back = ctx.run(ctx.on.leader_elected(), state)
    served = (tmp_path / "certs" / "server.key").read_text()
    secret = _key_secret(back)
    assert secret is not None and secret.latest_content[KEY_FIELD] == served
    assert read_provider_data(_relation(back, 11)).server_cert == (
        (tmp_path / "certs" / "server.cert").read_text().strip()
    )


# --- what follows the scheme, and failures on our side -----------------------------------------


CatalogueTlsCoordinator = coordinator_charm(
    minimal_coordinator_config(
        keep=("metrics",),
        catalogue=lambda host: CatalogueItem(
            name="Cluster",
            icon="server",
            url=f"http://{host}:8080/ui",
            api_docs="https://docs.example.com/api",
            api_endpoints={"Query": f"http://{host}:8080/query", "Ext": "http://x/y"},
        ),
    )
)


def test_the_catalogue_entry_follows_the_scheme(kube, tmp_path):
    meta = {**META, "requires": {**META["requires"], "catalogue": {"interface": "catalogue"}}}
    ctx = testing.Context(CatalogueTlsCoordinator, meta=meta, app_name=APP)
    catalogue = testing.Relation("catalogue", id=51, remote_app_name="catalogue")
    certs = _certificates()
    requested = ctx.run(
        ctx.on.relation_created(certs), _state(tmp_path, _worker(), catalogue, certs)
    )
    host = f"{APP}.{MODEL}.svc.cluster.local"
    plain = _relation(requested, 51).local_app_data
    assert f"http://{host}:8080/ui" in plain["url"]
    state, answered = _answered(requested, CA())
    out = ctx.run(ctx.on.relation_changed(answered), state)
    bag = _relation(out, 51).local_app_data
    assert f"https://{host}:8080/ui" in bag["url"]
    assert f"https://{host}:8080/query" in bag["api_endpoints"]
    # Only URLs on our host change scheme.
    assert "http://x/y" in bag["api_endpoints"]
    assert "https://docs.example.com/api" in bag["api_docs"]


def _external_url(
    ctx: testing.Context[CoordinatorTester], event: Any, state: testing.State
) -> tuple[testing.State, str]:
    """Run ``event`` and read the coordinator's ``external_url`` once the hook is done."""
    with ctx(event, state) as manager:
        out = manager.run()
        return out, manager.charm.coordinator.external_url


def test_the_external_url_follows_the_scheme(kube, tmp_path):
    ctx = _ctx()
    url = f"{APP}.{MODEL}.svc.cluster.local:{minimal_coordinator_config().api_port}"
    certs = _certificates()
    requested, before = _external_url(
        ctx, ctx.on.relation_created(certs), _state(tmp_path, _worker(), certs)
    )
    assert before == f"http://{url}"  # related, but no certificate yet
    state, answered = _answered(requested, CA())
    adopted, on = _external_url(ctx, ctx.on.relation_changed(answered), state)
    assert on == f"https://{url}"  # in the hook that adopts the certificate
    assert _external_url(ctx, ctx.on.update_status(), adopted)[1] == f"https://{url}"
    removed, off = _external_url(ctx, ctx.on.relation_broken(_relation(adopted, CERTS)), adopted)
    assert off == f"http://{url}"
    after = dataclasses.replace(removed, relations=[r for r in removed.relations if r.id != CERTS])
    assert _external_url(ctx, ctx.on.update_status(), after)[1] == f"http://{url}"


def test_nginx_unreachable_is_waiting_and_the_certificate_is_written_later(kube, tmp_path):
    ctx = _ctx()
    ca = CA()
    out = _with_tls(ctx, tmp_path, ca, _worker())
    # A new certificate arrives while nginx's Pebble is down: nothing crashes, the status
    # waits for the container, and the next hook writes the files.
    renewed_state, renewed = _answered(out, ca)
    down = dataclasses.replace(
        renewed_state,
        containers=[
            dataclasses.replace(c, can_connect=False) if c.name == "nginx" else c
            for c in renewed_state.containers
        ],
    )
    before = (tmp_path / "certs" / "server.cert").read_text()
    waiting = ctx.run(ctx.on.relation_changed(renewed), down)
    assert waiting.unit_status == testing.WaitingStatus("waiting for the nginx container")
    assert (tmp_path / "certs" / "server.cert").read_text() == before
    up = dataclasses.replace(waiting, containers=renewed_state.containers)
    ctx.run(ctx.on.pebble_ready(up.get_container("nginx")), up)
    assert (tmp_path / "certs" / "server.cert").read_text() != before


def test_every_coordinator_unit_is_in_the_request(kube, tmp_path):
    meta = {**META, "peers": {"peers": {"interface": "coordinator_peers"}}}
    ctx = testing.Context(TlsCoordinator, meta=meta, app_name=APP)
    certs = _certificates()
    peers = testing.PeerRelation("peers", peers_data={1: {}, 2: {}})
    out = ctx.run(ctx.on.relation_created(certs), _state(tmp_path, _worker(), certs, peers))
    sans = csr_names(_relation(out, CERTS).local_unit_data)[1]
    assert {f"{APP}-{n}.{APP}-endpoints.{MODEL}.svc.cluster.local" for n in (0, 1, 2)} <= sans
    assert f"{APP}.{MODEL}.svc.cluster.local" in sans


def test_update_status_puts_back_files_the_container_lost(kube, tmp_path):
    ctx = _ctx()
    out = _with_tls(ctx, tmp_path, CA(), _worker())
    served = (tmp_path / "certs" / "server.cert").read_text()
    (tmp_path / "certs" / "server.cert").unlink()
    (tmp_path / "certs" / "server.key").unlink()
    # A steady hook trusts its record; update-status reads the certificate back.
    ctx.run(ctx.on.config_changed(), out)
    assert not (tmp_path / "certs" / "server.cert").exists()
    repaired = ctx.run(ctx.on.update_status(), out)
    assert (tmp_path / "certs" / "server.cert").read_text() == served
    assert (tmp_path / "certs" / "server.key").exists()
    assert repaired.unit_status == testing.ActiveStatus()


def test_a_new_key_without_its_certificate_is_neither_served_nor_shared(kube, tmp_path):
    """The library made a new key (rotation) and the provider has not answered its CSR yet."""
    ctx = _ctx()
    out = _with_tls(ctx, tmp_path, CA(), _worker())
    served_key = (tmp_path / "certs" / "server.key").read_text()
    shared = _key_secret(out)
    assert shared is not None
    new_key = CA().issue("x").key
    secrets = [
        dataclasses.replace(s, tracked_content={"private-key": new_key}, latest_content=None)
        if s.label and s.label.endswith("-private-key-0-certificates")
        else s
        for s in out.secrets
    ]
    (tmp_path / "certs" / "server.cert").unlink()  # update-status will want to write the pair
    other = _worker("other", 12)  # and a new worker app, the key's secret to be rewritten
    state = dataclasses.replace(out, secrets=secrets, relations=[*out.relations, other])
    after = ctx.run(ctx.on.update_status(), state)
    assert isinstance(after.unit_status, testing.WaitingStatus)
    assert "a new key awaits its certificate" in after.unit_status.message
    assert (tmp_path / "certs" / "server.key").read_text() == served_key
    assert not (tmp_path / "certs" / "server.cert").exists()
    kept = _key_secret(after)
    assert kept is not None and kept.tracked_content == shared.tracked_content
    assert read_provider_data(_relation(after, 11)).privkey_secret_id == shared.id


def test_an_unreadable_key_is_waiting_and_nothing_is_written(kube, tmp_path):
    ctx = _ctx()
    out = _with_tls(ctx, tmp_path, CA(), _worker())
    (tmp_path / "certs" / "server.cert").unlink()
    keyless = dataclasses.replace(out, secrets=[])  # the library's key secret is gone
    after = ctx.run(ctx.on.update_status(), keyless)
    assert isinstance(after.unit_status, testing.WaitingStatus)
    assert after.unit_status.message.startswith(
        "certificates: cannot read this unit's private key"
    )
    assert not (tmp_path / "certs" / "server.cert").exists()
