#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module: which toolkit apps on a host must be (re)started. Read-only."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: toolkit_app_status
short_description: Tell which toolkit apps are stale, from the host's own state
description:
  - For each app, reads its systemd unit C(toolkit-<name>.service) and the files it runs from.
  - An app is stale when its unit is not active, when systemd asks for a daemon-reload, or when one of
    the files it runs from changed after the service last started (inode change time, so a replaced
    file or a package upgrade counts). Those files are read from systemd itself - the unit file, its
    environment files and every existing absolute path on its ExecStart line (runtime binary, jar or
    entry file) - plus any given in I(files).
  - The answer comes from the host, not from what this run changed, so a restart that a failed run
    never reached still happens on the next run.
  - Changes nothing; supports check mode.
options:
  apps:
    description: The apps to look at.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: App name; its unit is C(toolkit-<name>.service).
        type: str
        required: true
      files:
        description: More files the running service depends on; missing ones are ignored.
        type: list
        elements: path
        default: []
author: toolkit
"""

RETURN = r"""
stale:
  description: Names of the apps to (re)start, in the order given.
  type: list
  elements: str
  returned: always
daemon_reload:
  description: Whether systemd must reload its units first.
  type: bool
  returned: always
apps:
  description: Per app, the unit's state, why it is stale, and its health URL (the unit's X-Toolkit-Health).
  type: dict
  returned: always
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule


def _show(module: AnsibleModule, unit: str) -> dict:
    rc, out, err = module.run_command(
        ["systemctl", "show", "--property=LoadState,ActiveState,ActiveEnterTimestampMonotonic,NeedDaemonReload,"
         "FragmentPath,EnvironmentFiles,ExecStart", unit])
    if rc != 0:
        module.fail_json(msg=f"systemctl show {unit} failed: {err.strip() or out.strip()}")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def _run_files(props: dict) -> list:
    """The unit file, its environment files and the absolute paths of its ExecStart argv."""
    files = [props.get("FragmentPath", "")]
    files += [entry.split(" (")[0] for entry in props.get("EnvironmentFiles", "").split("\n") if entry]
    argv = props.get("ExecStart", "").partition("argv[]=")[2].partition(" ;")[0]
    files += [word for word in argv.split() if word.startswith("/")]
    return [f for f in files if f]


def _health_url(fragment: str) -> str:
    """The unit's X-Toolkit-Health key (templates/app.service.j2), or an empty string."""
    try:
        with open(fragment, encoding="utf-8") as unit:
            for line in unit:
                if line.startswith("X-Toolkit-Health="):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return ""


def _changed_at(path: str) -> float | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return max(info.st_ctime, info.st_mtime)


def main() -> None:
    module = AnsibleModule(
        argument_spec={"apps": {"type": "list", "elements": "dict", "required": True, "options": {
            "name": {"type": "str", "required": True},
            "files": {"type": "list", "elements": "path", "default": []}}}},
        supports_check_mode=True,
    )
    # systemd stamps start times on CLOCK_MONOTONIC; Python's monotonic clock is the same one.
    offset = time.time() - time.monotonic()
    stale, reload_needed, apps = [], False, {}
    for app in module.params["apps"]:
        unit = f"toolkit-{app['name']}.service"
        props = _show(module, unit)
        reasons = []
        if props.get("LoadState") != "loaded":
            reasons.append(f"unit {props.get('LoadState', 'unknown')}")
        if props.get("ActiveState") != "active":
            reasons.append(f"service {props.get('ActiveState', 'unknown')}")
        if props.get("NeedDaemonReload") == "yes":
            reload_needed = True
            reasons.append("unit file changed on disk")
        started_us = int(props.get("ActiveEnterTimestampMonotonic") or 0)
        if props.get("ActiveState") == "active" and started_us:
            started = offset + started_us / 1e6
            newer = [p for p in _run_files(props) + app["files"] if (_changed_at(p) or 0) > started]
            reasons += [f"{p} changed after the service started" for p in newer]
        if reasons:
            stale.append(app["name"])
        apps[app["name"]] = {"unit": unit, "active": props.get("ActiveState") == "active", "reasons": reasons,
                             "health": _health_url(props.get("FragmentPath", ""))}
    module.exit_json(changed=False, stale=stale, daemon_reload=reload_needed, apps=apps)


if __name__ == "__main__":
    main()
