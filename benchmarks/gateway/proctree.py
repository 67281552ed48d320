"""A server's process tree, read from /proc: its CPU time, and how to end all of it.

A server is started in a session of its own, so its tree is every process descended from its
first process plus every process in that session (Ray's and BentoML's helpers included).
CPU time is user + system over all threads, from /proc/<pid>/stat (proc(5), fields 14 and 15).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Proc:
    ppid: int
    session: int
    cpu_ticks: int
    zombie: bool
    name: str


def snapshot() -> dict[int, Proc]:
    """Every live process now."""
    procs: dict[int, Proc] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                text = f.read().decode(errors="replace")
        except OSError:  # it ended while we looked
            continue
        # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
        rest = text[text.rindex(")") + 2 :].split()
        # rest[0] is field 3 (state), so field n is rest[n - 3].
        procs[int(entry.name)] = Proc(
            ppid=int(rest[1]),
            session=int(rest[3]),
            cpu_ticks=int(rest[11]) + int(rest[12]),
            zombie=rest[0] == "Z",
            name=text[text.index("(") + 1 : text.rindex(")")],
        )
    return procs


def tree(root: int, procs: dict[int, Proc] | None = None) -> set[int]:
    """The pids of `root`, its descendants, and the processes of its session."""
    procs = snapshot() if procs is None else procs
    children: dict[int, list[int]] = {}
    for pid, p in procs.items():
        children.setdefault(p.ppid, []).append(pid)
    found = {pid for pid, p in procs.items() if p.session == root}
    stack = [root] if root in procs else []
    seen: set[int] = set()
    while stack:
        pid = stack.pop()
        seen.add(pid)
        stack.extend(c for c in children.get(pid, []) if c not in seen)
    return found | seen


def _alive(root: int, known: frozenset[int]) -> set[int]:
    procs = snapshot()
    return {pid for pid in tree(root, procs) | known if pid in procs and not procs[pid].zombie}


def cpu_seconds(root: int) -> float:
    """User + system CPU seconds used so far by the live processes of `root`'s tree."""
    procs = snapshot()
    return sum(procs[pid].cpu_ticks for pid in tree(root, procs)) / TICKS


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (proc(5), /proc/stat first line)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / TICKS


def _signal_all(pids: set[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def end_tree(root: int, grace_s: float, known: frozenset[int] = frozenset()) -> None:
    """SIGTERM `root` (each server shuts its own helpers down), wait up to `grace_s` for the
    whole tree to go, then SIGKILL whatever is left of it.

    `known` are pids seen in the tree earlier: a helper orphaned by its parent's exit that also
    left the session would otherwise escape.
    """
    _signal_all({root}, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _alive(root, known):
        time.sleep(0.2)
    for _ in range(10):  # a dying parent may still fork; sweep until nothing is left
        left = _alive(root, known)
        if not left:
            return
        _signal_all(left, signal.SIGKILL)
        time.sleep(0.3)
