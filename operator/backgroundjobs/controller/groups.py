"""Which BackgroundJobs belong to the group a continuation waits for (``spec.after.selector``).

Kept by the cache as objects come and go, so a waiting child finds its members and their
phases without listing anything, and a member that joins or changes phase wakes it. Only
children that have not started yet are indexed: a group matters until its child's first run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

Key = tuple[str, str]


def matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` carry every label of ``selector`` (matchLabels' meaning)."""
    return all(labels.get(name) == value for name, value in selector.items())


class GroupIndex:
    """The members (name -> phase) of each waiting child's group, and the reverse."""

    def __init__(self) -> None:
        self._selectors: dict[Key, dict[str, str]] = {}
        self._waiting_in: dict[str, set[str]] = {}  # namespace -> waiting children
        self._members: dict[Key, dict[str, str]] = {}  # child -> member name -> phase
        self._waiters: dict[Key, set[str]] = {}  # member -> children waiting for it

    def watched(self, child: Key) -> dict[str, str] | None:
        """The selector ``child`` is indexed with; None when it is not."""
        return self._selectors.get(child)

    def watch(
        self,
        child: Key,
        selector: Mapping[str, str],
        existing: Iterable[tuple[str, Mapping[str, str], str]],
    ) -> None:
        """Index ``child``'s group; ``existing``: (name, labels, phase) of the objects
        already cached in its namespace."""
        self.unwatch(child)
        ns, name = child
        self._selectors[child] = dict(selector)
        self._waiting_in.setdefault(ns, set()).add(name)
        members: dict[str, str] = {}
        self._members[child] = members
        for member, labels, phase in existing:
            if member != name and matches(selector, labels):
                members[member] = phase
                self._waiters.setdefault((ns, member), set()).add(name)

    def unwatch(self, child: Key) -> None:
        """Stop indexing ``child``'s group (it started, or is gone)."""
        if self._selectors.pop(child, None) is None:
            return
        ns, name = child
        waiting = self._waiting_in.get(ns)
        if waiting is not None:
            waiting.discard(name)
            if not waiting:
                del self._waiting_in[ns]
        for member in self._members.pop(child, {}):
            self._drop_waiter((ns, member), name)

    def observe(self, key: Key, labels: Mapping[str, str], phase: str) -> list[Key]:
        """``key`` was stored: keep the groups it belongs to right; the children to wake (a
        member joined, left or changed phase)."""
        ns, name = key
        woken: list[Key] = []
        for child_name in self._waiting_in.get(ns, ()):
            child = (ns, child_name)
            if child_name == name:
                continue
            members = self._members[child]
            if matches(self._selectors[child], labels):
                if members.get(name) != phase:
                    members[name] = phase
                    self._waiters.setdefault(key, set()).add(child_name)
                    woken.append(child)
            elif name in members:
                del members[name]
                self._drop_waiter(key, child_name)
                woken.append(child)
        return woken

    def forget(self, key: Key) -> list[Key]:
        """``key`` was deleted: the children whose group lost a member."""
        self.unwatch(key)
        ns, name = key
        woken = [(ns, child) for child in self._waiters.pop(key, ())]
        for child in woken:
            self._members.get(child, {}).pop(name, None)
        return woken

    def waiters(self, member: Key) -> list[Key]:
        """The children whose group ``member`` belongs to."""
        return [(member[0], child) for child in self._waiters.get(member, ())]

    def members(self, child: Key) -> dict[str, str] | None:
        """Member name -> phase of ``child``'s group (a copy); None when not indexed."""
        members = self._members.get(child)
        return dict(members) if members is not None else None

    def _drop_waiter(self, member: Key, child: str) -> None:
        waiters = self._waiters.get(member)
        if waiters is not None:
            waiters.discard(child)
            if not waiters:
                del self._waiters[member]
