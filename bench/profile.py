#!/usr/bin/env python3
"""Where a toolkit run spent its time, from the run's own events (ansible-runner job_events).

    bench/profile.py [RUN_DIR]      default: the newest run under ~/.local/share/toolkit/runs

For every task: its wall time (the union of its results' spans over all hosts), and the
sum of its per-host durations. Summed per role (tasks outside roles: "(play)"), with the number of
task results. Prints a Markdown table, largest first.
"""
from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

RESULTS = {"runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable"}


def newest_run() -> Path:
    base = Path(os.environ.get("TOOLKIT_HOME") or Path.home() / ".local/share/toolkit") / "runs"
    runs = sorted(p for p in base.iterdir() if p.is_dir())
    if not runs:
        sys.exit(f"no runs under {base}")
    return runs[-1]


def wall(spans: list[tuple[datetime, datetime]]) -> float:
    """Seconds covered by the union of the spans (a serial play runs one task in several batches)."""
    covered, current = 0.0, None
    for start, end in sorted(spans):
        if current and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current:
            covered += (current[1] - current[0]).total_seconds()
        current = (start, end)
    if current:
        covered += (current[1] - current[0]).total_seconds()
    return covered


def main() -> None:
    run = Path(sys.argv[1]) if len(sys.argv) > 1 else newest_run()
    events_dir = run / "artifacts" / "run" / "job_events"
    if not events_dir.is_dir():
        sys.exit(f"{run}: no job_events (is it a run directory?)")
    tasks: dict[str, dict[str, object]] = {}
    for path in events_dir.glob("*.json"):
        event = json.loads(path.read_text())
        if event.get("event") not in RESULTS:
            continue
        data = event["event_data"]
        if not data.get("start") or not data.get("end"):
            continue
        start, end = datetime.fromisoformat(data["start"]), datetime.fromisoformat(data["end"])
        task = tasks.setdefault(data["task_uuid"], {"role": data.get("role") or "(play)", "spans": [],
                                                    "host_s": 0.0, "results": 0})
        task["spans"].append((start, end))  # type: ignore[attr-defined]
        task["host_s"] = float(task["host_s"]) + float(data.get("duration") or (end - start).total_seconds())  # type: ignore[arg-type]
        task["results"] = int(task["results"]) + 1  # type: ignore[call-overload]
    roles: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0, 0])
    for task in tasks.values():
        row = roles[str(task["role"])]
        row[0] += wall(task["spans"])  # type: ignore[arg-type]
        row[1] += float(task["host_s"])  # type: ignore[arg-type]
        row[2] += 1
        row[3] += int(task["results"])  # type: ignore[call-overload]
    total = sum(r[0] for r in roles.values()) or 1.0
    print(f"Run {run.name}: {len(tasks)} tasks, {sum(int(r[3]) for r in roles.values())} results\n")
    print("| role | tasks | results | wall s | share | host s |")
    print("|---|---|---|---|---|---|")
    for name, (seconds, host_s, count, results) in sorted(roles.items(), key=lambda kv: -kv[1][0]):
        print(f"| {name} | {int(count)} | {int(results)} | {seconds:.1f} | {100 * seconds / total:.0f}% | {host_s:.1f} |")
    print(f"| **total** | {len(tasks)} | | {total:.1f} | | |")


if __name__ == "__main__":
    main()
