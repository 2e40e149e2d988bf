# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The fuzz figures: per endpoint, cases tried, uncaught exceptions, last good state kept."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any


@dataclasses.dataclass
class _Tally:
    cases: int = 0
    uncaught: int = 0
    kept: int = 0


@dataclasses.dataclass
class _NginxT:
    checked: int = 0
    accepted: int = 0


@dataclasses.dataclass
class Figures:
    """Counters filled by the fuzz tests and printed in the terminal summary.

    Under pytest-xdist each worker fills its own; the conftest sends them to the controller
    (:meth:`export`, :meth:`absorb`), which prints the sums.
    """

    tallies: dict[str, _Tally] = dataclasses.field(default_factory=dict)
    nginx_t: dict[str, _NginxT] = dataclasses.field(default_factory=dict)
    nginx_missing: bool = False

    def nginx_t_for(self, endpoint: str) -> _NginxT:
        """The nginx -t counts of `endpoint` (created at zero)."""
        return self.nginx_t.setdefault(endpoint, _NginxT())

    def export(self) -> dict[str, Any]:
        """The counts as plain data (what an xdist worker can send to the controller)."""
        return {
            "tallies": {name: dataclasses.asdict(t) for name, t in self.tallies.items()},
            "nginx_t": {name: dataclasses.asdict(n) for name, n in self.nginx_t.items()},
            "nginx_missing": self.nginx_missing,
        }

    def absorb(self, data: dict[str, Any]) -> None:
        """Add counts that :meth:`export` produced (in another process) to these."""
        for name, counts in data["tallies"].items():
            tally = self.tallies.setdefault(name, _Tally())
            tally.cases += counts["cases"]
            tally.uncaught += counts["uncaught"]
            tally.kept += counts["kept"]
        for name, counts in data["nginx_t"].items():
            nginx = self.nginx_t_for(name)
            nginx.checked += counts["checked"]
            nginx.accepted += counts["accepted"]
        self.nginx_missing = self.nginx_missing or data["nginx_missing"]

    def nginx_table(self) -> list[str]:
        """Configs run through the real nginx -t and accepted, per endpoint."""
        if self.nginx_missing:
            return ["nginx -t: not run (nginx is not installed; REQUIRE_NGINX=1 makes it fail)"]
        width = max(len(name) for name in self.nginx_t)
        lines = [f"{'endpoint':<{width}}  {'configs checked by nginx -t':>27}  {'accepted':>8}"]
        lines += [
            f"{name:<{width}}  {counts.checked:>27}  {counts.accepted:>8}"
            for name, counts in sorted(self.nginx_t.items())
        ]
        checked = sum(n.checked for n in self.nginx_t.values())
        accepted = sum(n.accepted for n in self.nginx_t.values())
        lines.append(f"{'total':<{width}}  {checked:>27}  {accepted:>8}")
        return lines

    @contextlib.contextmanager
    def case(self, endpoint: str) -> Iterator[_Tally]:
        """Count one case; an exception escaping it is an uncaught exception (and re-raised)."""
        tally = self.tallies.setdefault(endpoint, _Tally())
        tally.cases += 1
        try:
            yield tally
        except AssertionError:
            raise
        except Exception:
            tally.uncaught += 1
            raise

    def any(self) -> bool:
        return bool(self.tallies)

    def table(self) -> list[str]:
        width = max(len(name) for name in self.tallies)
        lines = [f"{'endpoint':<{width}}  {'cases':>7}  {'uncaught':>8}  {'last good kept':>14}"]
        for name, tally in sorted(self.tallies.items()):
            lines.append(
                f"{name:<{width}}  {tally.cases:>7}  {tally.uncaught:>8}  {tally.kept:>14}"
            )
        total = _Tally(
            sum(t.cases for t in self.tallies.values()),
            sum(t.uncaught for t in self.tallies.values()),
            sum(t.kept for t in self.tallies.values()),
        )
        lines.append(
            f"{'total':<{width}}  {total.cases:>7}  {total.uncaught:>8}  {total.kept:>14}"
        )
        return [*lines, *LEGEND]


LEGEND = (
    "endpoint: the relation whose remote databag was replaced by hostile data (the pure parser",
    "  the charm calls and whole charm hooks through ops.testing are both counted under it)",
    "cases: hostile databags tried (one parser call or one hook each)",
    "uncaught: exceptions that escaped the parser or the hook (must be 0: any fails its test)",
    "last good kept: cases after which the parser had returned or raised only its documented",
    "  error, or the hook had raised nothing and left pod labels, policies and the workload as",
    "  they were. Data that turned out usable is acted upon, as it should be, and counted in",
    "  cases only, so cases - kept = the usable ones (a case that failed stops its test)",
)


FIGURES = Figures()
