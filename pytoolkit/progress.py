"""Turn ansible-runner events into progress a person (or a CI log) can follow."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

COUNTERS = ("ok", "changed", "failed", "unreachable", "skipped")


@dataclass
class HostCounts:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTERS}


@dataclass
class Failure:
    host: str
    play: str
    task: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"host": self.host, "play": self.play, "task": self.task, "message": self.message}


@dataclass
class Tracker:
    """Accumulates what the events say; the display reads from it."""

    started: float = field(default_factory=time.monotonic)
    play: str = ""
    task: str = ""
    hosts: dict[str, HostCounts] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    final_stats: dict[str, dict[str, int]] | None = None
    data: dict[str, Any] = field(default_factory=dict)  # what the playbook reported with set_stats

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def feed(self, event: dict[str, Any]) -> str | None:
        """Update from one event; return a short line describing it, if it is worth one."""
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        host = data.get("host") or data.get("remote_addr") or ""
        if kind == "playbook_on_play_start":
            self.play = data.get("play") or data.get("name") or ""
            return f"PLAY {self.play}"
        if kind == "playbook_on_task_start":
            self.task = data.get("task") or data.get("name") or ""
            role = data.get("role")
            return f"TASK {role + ' : ' if role else ''}{self.task}"
        if kind == "playbook_on_stats":
            self.final_stats = _stats(data)
            self.data = dict((data.get("artifact_data") or {}))
            return None
        if not kind.startswith("runner_on_") or not host:
            return None
        counts = self.hosts.setdefault(host, HostCounts())
        res = data.get("res") or {}
        if kind == "runner_on_ok":
            counts.ok += 1  # as in Ansible's recap, ok counts changed tasks too
            if res.get("changed"):
                counts.changed += 1
                return f"  changed: {host}"
        elif kind == "runner_on_skipped":
            counts.skipped += 1
        elif kind == "runner_on_unreachable":
            counts.unreachable += 1
            self.failures.append(Failure(host, self.play, self.task, _message(res)))
            return f"  UNREACHABLE: {host}: {_message(res)}"
        elif kind == "runner_on_failed":
            if data.get("ignore_errors"):
                counts.ok += 1
                return None
            counts.failed += 1
            self.failures.append(Failure(host, self.play, self.task, _message(res)))
            return f"  FAILED: {host}: {_message(res)}"
        return None

    def recap(self) -> dict[str, dict[str, int]]:
        if self.final_stats is not None:
            return self.final_stats
        return {host: counts.as_dict() for host, counts in self.hosts.items()}


def _stats(data: dict[str, Any]) -> dict[str, dict[str, int]]:
    names = {"ok": "ok", "changed": "changed", "failures": "failed", "dark": "unreachable", "skipped": "skipped"}
    hosts: set[str] = set()
    for key in names:
        hosts |= set((data.get(key) or {}).keys())
    recap = {}
    for host in sorted(hosts):
        recap[host] = {ours: int((data.get(theirs) or {}).get(host, 0)) for theirs, ours in names.items()}
    return recap


def _message(res: dict[str, Any]) -> str:
    failed_items = [r for r in res.get("results") or [] if isinstance(r, dict) and r.get("failed")]
    if failed_items:
        item = failed_items[0]
        return f"item {item.get('item')!r}: {_message(item)}"
    if res.get("censored"):
        return str(res["censored"])
    for key in ("msg", "stderr", "reason", "stdout"):
        value = res.get(key)
        # A loop of includes says only "All items completed"; the cause is in `reason`.
        if value == "All items completed" and res.get("reason"):
            continue
        if value:
            text = str(value).strip().splitlines()
            return " | ".join(text[-5:])[:600]
    return "(no message)"


class Display:
    """Live screen on a terminal, plain lines elsewhere (CI logs, --output json to stderr)."""

    def __init__(self, tracker: Tracker, stream: TextIO, echo_results: bool) -> None:
        self.tracker = tracker
        self.stream = stream
        self.echo_results = echo_results  # -v or --diff: show Ansible's own rendering of results
        self.live: Live | None = None
        if stream.isatty():
            self.console = Console(file=stream)
            self.live = Live(self._render(), console=self.console, refresh_per_second=4, transient=True)
        else:
            self.console = Console(file=stream, force_terminal=False, no_color=True, width=200)

    def __enter__(self) -> Display:
        if self.live:
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.live.stop()

    def event(self, event: dict[str, Any]) -> bool:
        line = self.tracker.feed(event)
        rendered = (event.get("stdout") or "").strip()
        if self.echo_results and rendered and event.get("event", "").startswith("runner_on_"):
            self._print(rendered)
        elif line and self.live is None:
            self._print(f"[{self.tracker.elapsed:6.1f}s] {line}")
        elif line and line.startswith(("  FAILED", "  UNREACHABLE", "PLAY")):
            self._print(line)  # the live screen shows the rest
        if self.live:
            self.live.update(self._render())
        return True

    def _print(self, text: str) -> None:
        if self.live:
            self.live.console.print(Text(text))
        else:
            print(text, file=self.stream, flush=True)

    def _render(self) -> Group:
        t = self.tracker
        head = Text.assemble(("▶ ", "bold cyan"), (t.play or "starting", "bold"), f"  [{t.elapsed:5.0f}s]\n",
                             ("  task: ", "dim"), t.task or "-")
        table = Table(box=None, pad_edge=False)
        table.add_column("host")
        for name in COUNTERS:
            table.add_column(name, justify="right")
        for host, counts in sorted(t.hosts.items()):
            table.add_row(host, *(str(v) for v in counts.as_dict().values()))
        return Group(head, table)


def recap_table(recap: dict[str, dict[str, int]], stream: TextIO = sys.stderr) -> None:
    console = Console(file=stream, no_color=not stream.isatty(), width=120)
    table = Table(title="recap", box=None)
    table.add_column("host")
    for name in COUNTERS:
        table.add_column(name, justify="right")
    for host, counts in recap.items():
        style = "red" if counts["failed"] or counts["unreachable"] else ("yellow" if counts["changed"] else "green")
        table.add_row(host, *(str(counts[n]) for n in COUNTERS), style=style)
    console.print(table)
