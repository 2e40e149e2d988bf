# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Our AuthorizationPolicy builder agrees with upstream's on every valid policy.

Upstream: ``canonical_service_mesh.utils.istio.build_policy_resources_istio`` (0.3.1) fed with
``charmlibs.interfaces.service_mesh.MeshPolicy`` (1.0.2), the pair istio-beacon-k8s and
coordinated-workers use. Agreement on names matters as much as on specs: a resource manager
switching from upstream to us must find its policies under the same names, or it churns them.
"""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from canonical_service_mesh.k8s.types import istio as upstream_types
from canonical_service_mesh.utils.istio import build_policy_resources_istio
from charmlibs.interfaces import service_mesh as upstream
from hypothesis import HealthCheck, example, given, settings

from service_mesh import MeshPolicy, PolicyTargetType, istio
from tests.support.mesh_strategies import app_names, dns_labels, mesh_policies

pytestmark = pytest.mark.contract

_LONG = "x" * 63


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(owner_app=app_names, owner_model=dns_labels, policy=mesh_policies)
@example(
    owner_app=_LONG,
    owner_model=_LONG,
    policy=MeshPolicy(
        source_namespace=_LONG,
        source_app_name=_LONG,
        target_namespace="c",
        target_selector_labels={"app.kubernetes.io/part-of": _LONG},
        target_type=PolicyTargetType.unit,
    ),
)
def test_builder_matches_upstream(owner_app: str, owner_model: str, policy: MeshPolicy):
    theirs_policy = upstream.MeshPolicy.model_validate(policy.model_dump(mode="json"))
    assert str(theirs_policy) == str(policy)  # the name hash is taken over this string
    [resource] = build_policy_resources_istio(owner_app, owner_model, [theirs_policy])
    assert resource is not None
    # lightkube's generic resources have to_dict(); its stubs declare only the base classes.
    theirs = cast("Any", resource).to_dict()

    [ours] = istio.authorization_policies(owner_app, owner_model, [policy])

    assert ours["metadata"] == theirs["metadata"]
    assert ours["spec"] == theirs["spec"]
    assert json.dumps(ours["spec"]) == json.dumps(theirs["spec"])  # same key order too
    assert istio.policy_name(owner_app, owner_model, policy) == theirs["metadata"]["name"]


def test_manifests_name_the_resource_type_upstream_applies():
    """Upstream's builder leaves apiVersion and kind to lightkube, which takes them from here."""
    api_info = upstream_types.AuthorizationPolicy._api_info
    resource = api_info.resource
    upstream_type = (resource.group, resource.version, resource.kind, api_info.plural)
    assert upstream_type == (istio.GROUP, istio.VERSION, istio.KIND, istio.PLURAL)
    policy = MeshPolicy(
        source_namespace="a", source_app_name="b", target_namespace="a", target_app_name="c"
    )
    [manifest] = istio.authorization_policies("o", "m", [policy])
    assert (manifest["apiVersion"], manifest["kind"]) == (
        f"{resource.group}/{resource.version}",
        resource.kind,
    )
