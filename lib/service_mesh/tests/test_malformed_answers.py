# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""A 200 whose body is not JSON, is cut short or holds another kind ends in a named error.

Each label call path meets each mangled answer once; the next call, with a sane API, ends where
an undisturbed call would have. (The policy manager's paths are in test_resource_manager.py.)
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from service_mesh import MalformedResponseError, reconcile_charm_labels, remove_charm_labels

if TYPE_CHECKING:
    import lightkube

    from service_mesh.testing import FakeKubernetes

CM = "juju-service-mesh-tempo-labels"
WANTED = {"istio.io/dataplane-mode": "ambient"}


def _reconcile(client: lightkube.Client, labels: dict[str, str]) -> bool:
    return reconcile_charm_labels(client, "tempo", "cos", CM, labels)


def _template_labels(fake: FakeKubernetes) -> dict[str, str]:
    sts = fake.get("statefulsets", "cos", "tempo")
    assert sts is not None
    return sts["spec"]["template"]["metadata"]["labels"]


@pytest.mark.parametrize("body", ["not-json", "truncated", "wrong-kind"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/configmaps/"),
        ("POST", "/configmaps"),
        ("PATCH", "/statefulsets/"),
        ("PATCH", "/services/"),
        ("PATCH", "/configmaps/"),
    ],
)
def test_joining_survives_each_malformed_answer(
    fake: FakeKubernetes, client: lightkube.Client, method: str, path: str, body: Any
):
    fake.fail_body(body, method=method, path_contains=path)

    try:
        _reconcile(client, WANTED)
    except MalformedResponseError as error:
        assert error.status_code == 200
        assert "Kubernetes" in str(error)
    else:
        # Some answers are not used for any decision: the workload patches' results are
        # dropped, and from a record write only its resourceVersion is kept (as a precondition
        # of the next write: None just means none). A well-formed answer of another kind there
        # goes unnoticed, which is harmless; anything lightkube cannot decode is still an error.
        assert body == "wrong-kind" or path != "/configmaps/"
        assert (method, path) != ("GET", "/configmaps/")
    _reconcile(client, WANTED)
    assert WANTED.items() <= _template_labels(fake).items()
    configmap = fake.get("configmaps", "cos", CM)
    assert configmap is not None
    assert json.loads(configmap["data"]["labels"]) == WANTED
    assert "pending" not in configmap["data"]


def test_a_record_answered_with_another_object_is_not_read_as_an_empty_record(
    fake: FakeKubernetes, client: lightkube.Client
):
    # Read as a record without labels, it would make us forget (and so never remove) ours.
    _reconcile(client, WANTED)
    fake.fail_body("wrong-kind", method="GET", path_contains="/configmaps/")

    with pytest.raises(MalformedResponseError, match="another ConfigMap"):
        _reconcile(client, {})

    assert WANTED.items() <= _template_labels(fake).items()
    _reconcile(client, {})
    assert "istio.io/dataplane-mode" not in _template_labels(fake)


@pytest.mark.parametrize("body", ["not-json", "truncated", "wrong-kind"])
def test_removing_survives_a_malformed_record_answer(
    fake: FakeKubernetes, client: lightkube.Client, body: Any
):
    _reconcile(client, WANTED)
    fake.fail_body(body, method="GET", path_contains="/configmaps/")

    with pytest.raises(MalformedResponseError):
        remove_charm_labels(client, "tempo", "cos", CM)

    assert remove_charm_labels(client, "tempo", "cos", CM) is True
    assert "istio.io/dataplane-mode" not in _template_labels(fake)
