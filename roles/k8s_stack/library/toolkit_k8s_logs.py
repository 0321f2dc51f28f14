#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module: an app's log lines from every replica, and from the log store for pods that are gone. Read-only."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: toolkit_k8s_logs
short_description: Read an app's logs across its replicas, and its gone pods' logs from VictoriaLogs
description:
  - Reads the log of every container of every pod that matches I(selector) through the Kubernetes API
    (what C(kubectl logs) reads), with the kubelet's timestamps.
  - Asks the log store (VictoriaLogs, filled by vlagent) for the lines of pods that match I(store_filter)
    and no longer exist, so a replaced or deleted replica's last words are still found.
  - Returns every line with its time, pod, container and source, oldest first. C(kubernetes.core.k8s_log)
    returns neither timestamps nor gone pods, hence this module. Changes nothing; supports check mode.
options:
  kubeconfig:
    description: Kubeconfig file to use.
    type: path
    required: true
  namespace:
    description: Namespace of the pods.
    type: str
    required: true
  selector:
    description: Label selector of the app's pods (C(app.kubernetes.io/name=catalog)).
    type: str
    required: true
  store_filter:
    description: LogsQL filter that selects the app's lines in the store, without the namespace and time filters.
    type: str
    default: ""
  store_namespace:
    description: Namespace of the log store's Service; empty means no store is asked.
    type: str
    default: ""
  store_service:
    description: Name of the log store's Service.
    type: str
    default: victoria-logs
  store_port:
    description: Port of the log store's Service.
    type: int
    default: 9428
  since_seconds:
    description: Only lines of the last this many seconds (0 - live pods' whole logs, and the store's last day).
    type: int
    default: 0
  after:
    description: Only lines strictly after this RFC 3339 time (a follow loop passes the last time it saw).
    type: str
    default: ""
  limit:
    description: At most this many lines from the store (the newest).
    type: int
    default: 5000
requirements: [kubernetes (Python client)]
author: toolkit
"""

RETURN = r"""
lines:
  description: Every line, oldest first - time (RFC 3339, UTC), pod, container, source (pod or store) and text.
  type: list
  elements: dict
  returned: always
pods:
  description: The app's pods that exist now.
  type: list
  elements: str
  returned: always
gone:
  description: Pods found only in the log store.
  type: list
  elements: str
  returned: always
store_error:
  description: Why the store could not be asked (empty when it answered or was not asked).
  type: str
  returned: always
"""

import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

from ansible.module_utils.basic import AnsibleModule

try:
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    HAS_CLIENT = True
except ImportError:
    HAS_CLIENT = False


def _parse_time(text):
    """RFC 3339 with up to nanoseconds -> aware datetime (microseconds), or None."""
    text = text.strip()
    if not text:
        return None
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    main, plus, zone = text.partition("+")
    if "." in main:
        head, _, frac = main.partition(".")
        main = f"{head}.{frac[:6].ljust(6, '0')}"
    try:
        return datetime.fromisoformat(main + plus + zone)
    except ValueError:
        return None


def _iso(moment):
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _live(core, p, after):
    lines, pods = [], []
    for pod in core.list_namespaced_pod(p["namespace"], label_selector=p["selector"]).items:
        pods.append(pod.metadata.name)
        for container in pod.spec.containers:
            kwargs = {"container": container.name, "timestamps": True}
            if p["since_seconds"] > 0:
                kwargs["since_seconds"] = p["since_seconds"]
            try:
                text = core.read_namespaced_pod_log(pod.metadata.name, p["namespace"], **kwargs)
            except ApiException as exc:
                if exc.status in (400, 404):  # not started yet, or gone meanwhile
                    continue
                raise
            for raw in (text or "").splitlines():
                stamp, _, line = raw.partition(" ")
                moment = _parse_time(stamp)
                if moment is None or (after is not None and moment <= after):
                    continue
                lines.append({"time": _iso(moment), "pod": pod.metadata.name, "container": container.name,
                              "source": "pod", "line": line})
    return lines, pods


def _store(core, p, pods, after):
    """Lines of gone pods from VictoriaLogs, through its Service's cluster IP."""
    service = core.read_namespaced_service(p["store_service"], p["store_namespace"])
    host = service.spec.cluster_ip
    query = f'kubernetes.pod_namespace:={json.dumps(p["namespace"])} {p["store_filter"]}'.strip()
    if pods:
        query += " -kubernetes.pod_name:in(" + ",".join(json.dumps(n) for n in pods) + ")"
    now = datetime.now(timezone.utc)
    if after is not None:
        start = after
    elif p["since_seconds"] > 0:
        start = now - timedelta(seconds=p["since_seconds"])
    else:
        start = now - timedelta(days=1)
    form = urllib.parse.urlencode({"query": query, "start": _iso(start), "limit": str(p["limit"])}).encode()
    url = f"http://{host}:{p['store_port']}/select/logsql/query"
    with urllib.request.urlopen(urllib.request.Request(url, data=form), timeout=20) as response:
        body = response.read().decode("utf-8", errors="replace")
    lines = []
    for raw in body.splitlines():
        if not raw.strip():
            continue
        entry = json.loads(raw)
        moment = _parse_time(entry.get("_time", ""))
        if moment is None or (after is not None and moment <= after):
            continue
        lines.append({"time": _iso(moment), "pod": entry.get("kubernetes.pod_name", "?"),
                      "container": entry.get("kubernetes.container_name", ""), "source": "store",
                      "line": entry.get("_msg", "")})
    return lines


def main():
    module = AnsibleModule(
        argument_spec=dict(
            kubeconfig=dict(type="path", required=True),
            namespace=dict(type="str", required=True),
            selector=dict(type="str", required=True),
            store_filter=dict(type="str", default=""),
            store_namespace=dict(type="str", default=""),
            store_service=dict(type="str", default="victoria-logs"),
            store_port=dict(type="int", default=9428),
            since_seconds=dict(type="int", default=0),
            after=dict(type="str", default=""),
            limit=dict(type="int", default=5000),
        ),
        supports_check_mode=True,
    )
    if not HAS_CLIENT:
        module.fail_json(msg="the Python kubernetes client is missing on this host (python3-kubernetes)")
    p = module.params
    after = _parse_time(p["after"]) if p["after"] else None
    if p["after"] and after is None:
        module.fail_json(msg=f"after: '{p['after']}' is not an RFC 3339 time")
    config.load_kube_config(config_file=p["kubeconfig"])
    core = client.CoreV1Api()
    lines, pods = _live(core, p, after)
    store_error = ""
    if p["store_namespace"]:
        try:
            lines += _store(core, p, pods, after)
        except (ApiException, urllib.error.URLError, OSError, ValueError) as exc:
            store_error = f"the log store {p['store_namespace']}/{p['store_service']} did not answer: {exc}"
    lines.sort(key=lambda item: item["time"])
    gone = sorted({item["pod"] for item in lines if item["source"] == "store"})
    module.exit_json(changed=False, lines=lines, pods=sorted(pods), gone=gone, store_error=store_error)


if __name__ == "__main__":
    main()
