# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The roles a coordinated cluster knows, and when a set of deployed workers is enough.

Workers announce roles by name on the ``cluster`` relation. Some names are *meta roles* that
stand for several concrete roles (``all`` = every role a worker can run), so everything that
compares roles first expands meta roles into concrete ones. A cluster is *coherent* when its
workers together cover the minimal deployment; below that, the workload cannot serve.
"""

from __future__ import annotations

import dataclasses
import re
import types
from typing import TYPE_CHECKING

from service_mesh import safe_text

from ._status import CoordinatedWorkersError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["ClusterRolesConfig", "ClusterRolesConfigError", "UnknownRolesError"]

# Roles travel comma-joined in one databag value, so a name may contain neither a comma nor
# whitespace; the rest of the pattern keeps names usable in labels, URLs and log lines.
_ROLE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?")


class ClusterRolesConfigError(CoordinatedWorkersError, ValueError):
    """A :class:`ClusterRolesConfig` contradicts itself; the message lists every problem."""


class UnknownRolesError(CoordinatedWorkersError, ValueError):
    """Some role names are not declared in the :class:`ClusterRolesConfig`."""

    def __init__(self, unknown: Iterable[str]) -> None:
        self.unknown: frozenset[str] = frozenset(unknown)
        # Names may come from a remote app: show a few, shortened, never all of them.
        shown = [safe_text(name, 40) for name in sorted(self.unknown)[:_MAX_SHOWN]]
        if len(self.unknown) > _MAX_SHOWN:
            shown.append(f"and {len(self.unknown) - _MAX_SHOWN} more")
        super().__init__(f"unknown role(s): {', '.join(shown)}")


_MAX_SHOWN = 5


@dataclasses.dataclass(frozen=True)
class ClusterRolesConfig:
    """Which roles exist, which are shorthands for others, and what the cluster needs to run.

    Field types match upstream's so charms port unchanged; ``__post_init__`` freezes every
    collection (any iterable is accepted) and rejects a config that could never be satisfied.

    Attributes:
        roles: every role name, meta roles included (upstream requires meta roles here too).
        meta_roles: meta role -> the concrete roles it stands for.
        minimal_deployment: concrete roles that must all be deployed for the cluster to work.
    """

    roles: Iterable[str]
    meta_roles: Mapping[str, Iterable[str]] = dataclasses.field(hash=False)
    minimal_deployment: Iterable[str]

    def __post_init__(self) -> None:
        problems = _freeze_fields(self)
        problems += _contradictions(self)
        if problems:
            raise ClusterRolesConfigError("; ".join(problems))

    @property
    def concrete_roles(self) -> frozenset[str]:
        """Every role that is not a meta role: what a worker can actually run."""
        return frozenset(self.roles) - frozenset(self.meta_roles)

    def expand(self, roles: Iterable[str]) -> frozenset[str]:
        """Replace every meta role by the concrete roles it stands for.

        Raises:
            UnknownRolesError: if any name is not declared in ``roles``.
        """
        names = frozenset(roles)
        if unknown := names - frozenset(self.roles):
            raise UnknownRolesError(unknown)
        expanded: set[str] = set()
        for name in names:
            expanded.update(self.meta_roles.get(name, (name,)))
        return frozenset(expanded)

    def missing_roles(self, deployed: Iterable[str]) -> frozenset[str]:
        """The minimal-deployment roles that ``deployed`` does not cover.

        Unknown names in ``deployed`` are ignored: they cannot cover anything.
        """
        known = frozenset(deployed) & frozenset(self.roles)
        return frozenset(self.minimal_deployment) - self.expand(known)

    def is_coherent_with(self, deployed: Iterable[str]) -> bool:
        """Whether the deployed roles (meta roles allowed) cover the minimal deployment."""
        return not self.missing_roles(deployed)


def _freeze_fields(config: ClusterRolesConfig) -> list[str]:
    """Replace the fields by frozen copies; a bare string is refused, not split into letters."""
    problems: list[str] = []

    def freeze(field: str, value: Iterable[str]) -> frozenset[str]:
        if isinstance(value, str):
            problems.append(
                f"{field} must be a collection of role names, not the string {value!r}"
            )
            return frozenset()
        return frozenset(value)

    object.__setattr__(config, "roles", freeze("roles", config.roles))
    meta = {name: freeze(f"meta_roles[{name!r}]", m) for name, m in config.meta_roles.items()}
    object.__setattr__(config, "meta_roles", types.MappingProxyType(meta))
    minimal = freeze("minimal_deployment", config.minimal_deployment)
    object.__setattr__(config, "minimal_deployment", minimal)
    return problems


def _contradictions(config: ClusterRolesConfig) -> list[str]:
    """Everything that makes a (frozen) config unsatisfiable or ambiguous."""
    problems: list[str] = []
    roles = frozenset(config.roles)
    meta = frozenset(config.meta_roles)
    if bad_names := sorted(r for r in roles if not _ROLE_NAME.fullmatch(r)):
        problems.append(f"invalid role names {bad_names}: use letters, digits, '-', '_' or '.'")
    if not roles - meta:
        problems.append("roles must contain at least one concrete (non-meta) role")
    if undeclared := sorted(meta - roles):
        problems.append(f"meta roles {undeclared} are not declared in roles")
    for name, members in sorted(config.meta_roles.items()):
        if not members:
            problems.append(f"meta role {name!r} expands to nothing")
        if undeclared := sorted(frozenset(members) - roles):
            problems.append(f"meta role {name!r} expands to undeclared roles {undeclared}")
        if nested := sorted(frozenset(members) & meta):
            problems.append(f"meta role {name!r} expands to other meta roles {nested}")
    minimal = frozenset(config.minimal_deployment)
    if undeclared := sorted(minimal - roles):
        problems.append(f"minimal_deployment names undeclared roles {undeclared}")
    if as_meta := sorted(minimal & meta):
        problems.append(
            f"minimal_deployment names meta roles {as_meta}; list concrete roles, "
            "since deployed roles are always expanded"
        )
    return problems
