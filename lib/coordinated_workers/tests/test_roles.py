# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""ClusterRolesConfig expands meta roles, judges coherence and refuses contradictory configs."""

import pytest

from coordinated_workers import ClusterRolesConfig, ClusterRolesConfigError, UnknownRolesError

ROLES = ClusterRolesConfig(
    roles={"all", "read", "write", "backend"},
    meta_roles={"all": {"read", "write", "backend"}},
    minimal_deployment={"read", "write"},
)


def test_accepts_any_iterables_and_freezes_them():
    config = ClusterRolesConfig(
        roles=(r for r in ["all", "a", "b"]),
        meta_roles={"all": ["a", "b"]},
        minimal_deployment=["a"],
    )
    assert config.roles == frozenset({"all", "a", "b"})
    assert config.meta_roles == {"all": frozenset({"a", "b"})}
    assert config.minimal_deployment == frozenset({"a"})
    assert config.concrete_roles == frozenset({"a", "b"})
    # Equal configs hash equal even though meta_roles is a mapping.
    twin = ClusterRolesConfig(
        roles={"a", "b", "all"}, meta_roles={"all": {"b", "a"}}, minimal_deployment={"a"}
    )
    assert config == twin
    assert hash(config) == hash(twin)


def test_meta_roles_cannot_be_mutated_after_validation():
    with pytest.raises(TypeError):
        ROLES.meta_roles["all"] = frozenset({"read"})  # type: ignore[index]


def test_tester_style_config_without_meta_roles():
    config = ClusterRolesConfig(roles={"a", "b"}, meta_roles={}, minimal_deployment={"a", "b"})
    assert config.expand(["a"]) == {"a"}
    assert not config.is_coherent_with(["a"])
    assert config.is_coherent_with(["a", "b"])


@pytest.mark.parametrize(
    ("roles", "expanded"),
    [
        (["all"], {"read", "write", "backend"}),
        (["read"], {"read"}),
        (["read", "all"], {"read", "write", "backend"}),
        ([], set()),
    ],
)
def test_expand_replaces_meta_roles_by_concrete_ones(roles: list[str], expanded: set[str]):
    assert ROLES.expand(roles) == expanded


def test_expand_refuses_unknown_roles_and_names_them():
    with pytest.raises(UnknownRolesError, match="unknown role\\(s\\): bogus, nope") as info:
        ROLES.expand(["read", "nope", "bogus"])
    assert info.value.unknown == {"nope", "bogus"}


def test_unknown_role_message_stays_short_for_hostile_input():
    names = [f"r{i}-" + "x" * 10_000 for i in range(1000)]
    with pytest.raises(UnknownRolesError) as info:
        ROLES.expand(names)
    assert len(str(info.value)) < 400
    assert "and 995 more" in str(info.value)


@pytest.mark.parametrize(
    ("deployed", "missing"),
    [
        ([], {"read", "write"}),
        (["read"], {"write"}),
        (["read", "write"], set()),
        (["all"], set()),
        (["backend"], {"read", "write"}),
        (["read", "unknown-role"], {"write"}),
    ],
)
def test_coherence_needs_the_minimal_deployment(deployed: list[str], missing: set[str]):
    assert ROLES.missing_roles(deployed) == missing
    assert ROLES.is_coherent_with(deployed) is (not missing)


@pytest.mark.parametrize(
    ("kwargs", "messages"),
    [
        (
            {"roles": {"a"}, "meta_roles": {"all": {"a"}}, "minimal_deployment": {"a"}},
            ["meta roles ['all'] are not declared in roles"],
        ),
        (
            {
                "roles": {"a", "all"},
                "meta_roles": {"all": {"a", "b"}},
                "minimal_deployment": {"a"},
            },
            ["meta role 'all' expands to undeclared roles ['b']"],
        ),
        (
            {"roles": {"a"}, "meta_roles": {}, "minimal_deployment": {"a", "z"}},
            ["minimal_deployment names undeclared roles ['z']"],
        ),
        (
            {"roles": {"a", "all"}, "meta_roles": {"all": {"a"}}, "minimal_deployment": {"all"}},
            ["minimal_deployment names meta roles ['all']"],
        ),
        (
            {
                "roles": {"a", "m", "n"},
                "meta_roles": {"m": {"n"}, "n": {"a"}},
                "minimal_deployment": {"a"},
            },
            ["meta role 'm' expands to other meta roles ['n']"],
        ),
        (
            {"roles": {"a", "m"}, "meta_roles": {"m": set()}, "minimal_deployment": {"a"}},
            ["meta role 'm' expands to nothing"],
        ),
        (
            {"roles": {"all"}, "meta_roles": {"all": set()}, "minimal_deployment": set()},
            ["at least one concrete (non-meta) role"],
        ),
        (
            {"roles": {"a,b", " c", ""}, "meta_roles": {}, "minimal_deployment": set()},
            ["invalid role names ['', ' c', 'a,b']"],
        ),
        (
            {"roles": "read", "meta_roles": {}, "minimal_deployment": ["read"]},
            ["roles must be a collection of role names, not the string 'read'"],
        ),
    ],
)
def test_contradictions_are_refused(kwargs: dict[str, object], messages: list[str]):
    with pytest.raises(ClusterRolesConfigError) as info:
        ClusterRolesConfig(**kwargs)  # type: ignore[arg-type]
    for message in messages:
        assert message in str(info.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ClusterRolesConfigError) as info:
        ClusterRolesConfig(roles={"a"}, meta_roles={"all": {"x"}}, minimal_deployment={"y"})
    problems = str(info.value).split("; ")
    assert len(problems) == 3, problems
