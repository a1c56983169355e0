"""What each version of an entity did to its conflicts: Central's versions listing.

Pure: it reads the versions in order (and when conflicts were resolved) and says,
per version, whether it conflicted (`soft`, or `hard` when a property it set was
changed meanwhile), whether that was resolved since, which properties it changed
against its base and against the version before it, which version was the last
good one, and which versions matter for resolving the current conflict
(`?relevantToConflict=true` returns only those).

A version conflicts when it was not based on the one just before it, or when an
offline branch it belongs to was interrupted by an update from elsewhere since
the branch's trunk version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class VersionFacts:
    """One stored version, as the analysis needs it."""

    version: int
    label: str
    data: dict[str, str]
    received: dict[str, str]  # what this version sent, `label` included when it set one
    base_version: int | None
    trunk_version: int | None
    branch_id: str | None
    conflicting_properties: list[str] | None
    created_at: datetime


@dataclass(slots=True)
class ConflictFacts:
    conflict: str | None = None
    resolved: bool = False
    base_diff: list[str] = field(default_factory=list)
    server_diff: list[str] = field(default_factory=list)
    last_good_version: bool = False
    relevant_to_conflict: bool = False


class _Branch:
    """How far an offline branch runs on from its trunk with nothing from elsewhere between."""

    def __init__(self, first: VersionFacts) -> None:
        if first.trunk_version is not None:
            contiguous = first.version == first.trunk_version + 1
            self.last_contiguous = first.version if contiguous else 0
        else:
            # Made and updated offline: no trunk; version 2 is the normal first update,
            # version 1 a create that came late (an order problem, not a contiguity one).
            self.last_contiguous = 2 if first.version == 2 else 1

    def add(self, later: VersionFacts) -> None:
        if later.base_version == self.last_contiguous and later.version == later.base_version + 1:
            self.last_contiguous = later.version


def _diff(received: dict[str, str], other: dict[str, str]) -> list[str]:
    return [key for key, value in received.items() if key not in other or other[key] != value]


def conflict_facts(
    versions: Sequence[VersionFacts], resolved_at: Sequence[datetime]
) -> list[ConflictFacts]:
    """`versions` in order from version 1; `resolved_at`: when conflicts were resolved."""
    last_resolved = max(resolved_at, default=None)
    facts: list[ConflictFacts] = []
    branches: dict[str, _Branch] = {}
    last_good = 0
    relevant_bases: set[int] = set()
    for current in versions:
        if current.branch_id is not None:
            branch = branches.get(current.branch_id)
            if branch is None:
                branches[current.branch_id] = _Branch(current)
            else:
                branch.add(current)
        shown = ConflictFacts()
        if current.version > 1:
            base = current.base_version if current.base_version else current.version - 1
            broken_branch = (
                current.branch_id is not None and branches[current.branch_id].last_contiguous < base
            )
            conflicted = current.version != base + 1 or broken_branch
            before = versions[base - 1]
            previous = versions[current.version - 2]
            shown.base_diff = _diff(current.received, before.data | {"label": before.label})
            shown.server_diff = _diff(current.received, previous.data | {"label": previous.label})
            if conflicted:
                shown.conflict = "hard" if current.conflicting_properties else "soft"
                shown.resolved = last_resolved is not None and last_resolved >= current.created_at
                if not shown.resolved and last_good == 0:
                    last_good = current.version - 1
                    facts[current.version - 2].last_good_version = True
            if last_good > 0:
                relevant_bases.add(base)
        facts.append(shown)
    for number, shown in enumerate(facts, start=1):
        shown.relevant_to_conflict = last_good > 0 and (
            number >= last_good or number in relevant_bases
        )
    if last_good == 0 and facts:
        facts[-1].last_good_version = True
    return facts
