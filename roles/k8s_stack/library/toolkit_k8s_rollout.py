#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module: wait for Deployments and StatefulSets to finish their rollouts, failing fast. Read-only."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: toolkit_k8s_rollout
short_description: Wait until Deployments and StatefulSets have rolled out, and say why when they cannot
description:
  - Polls the named Deployments and StatefulSets until every one has all its replicas updated, ready
    and available, with no old pods left (what C(kubectl rollout status) waits for).
  - Fails fast, naming the object, the pod and the cause, when a pod of the new revision cannot pull
    its image (the image is named), cannot be configured (a missing Secret or ConfigMap key), keeps
    crashing (I(max_restarts) restarts), or stays unschedulable for I(unschedulable_seconds);
    and when a Deployment exceeds its progress deadline or nothing finishes within I(timeout).
  - kubernetes.core has no module that waits for a rollout while reading its new pods' states (its
    C(wait) only times out), hence this one. Changes nothing; supports check mode.
options:
  kubeconfig:
    description: Kubeconfig file to use.
    type: path
    required: true
  namespace:
    description: Namespace of the objects.
    type: str
    required: true
  deployments:
    description: Names of the Deployments to wait for.
    type: list
    elements: str
    default: []
  statefulsets:
    description: Names of the StatefulSets to wait for.
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds to wait in all before failing.
    type: int
    default: 300
  max_restarts:
    description: A new pod whose container restarted this many times fails the rollout.
    type: int
    default: 3
  unschedulable_seconds:
    description: How long a new pod may stay unschedulable before the rollout fails.
    type: int
    default: 90
  poll:
    description: Seconds between two looks.
    type: int
    default: 2
requirements: [kubernetes (Python client)]
author: toolkit
"""

RETURN = r"""
objects:
  description: Per object (C(Deployment/NAME), C(StatefulSet/NAME)) its desired, updated, ready and available replicas, images and whether it is done.
  type: dict
  returned: always
failures:
  description: What failed, one entry per object - kind, name, pod, reason, image (when an image is the cause) and message.
  type: list
  elements: dict
  returned: always
"""

import time

from ansible.module_utils.basic import AnsibleModule

try:
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    HAS_CLIENT = True
except ImportError:  # reported by the module
    HAS_CLIENT = False

_IMAGE_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
_CONFIG_REASONS = ("CreateContainerConfigError", "CreateContainerError")
# ErrImagePull messages that no retry will cure.
_DEFINITE = ("not found", "manifest unknown", "unauthorized", "denied", "invalid reference")


def _labels(selector):
    return ",".join(f"{k}={v}" for k, v in sorted((selector.match_labels or {}).items()))


def _images(template):
    return [c.image for c in template.spec.containers]


def _deployment_state(apps, core, namespace, name):
    """(done, summary, new pods, deadline message or None). Raises ApiException."""
    dep = apps.read_namespaced_deployment(name, namespace)
    want = dep.spec.replicas if dep.spec.replicas is not None else 1
    st = dep.status
    summary = {"kind": "Deployment", "desired": want, "updated": st.updated_replicas or 0,
               "ready": st.ready_replicas or 0, "available": st.available_replicas or 0,
               "current": st.replicas or 0, "images": _images(dep.spec.template),
               "revision": (dep.metadata.annotations or {}).get("deployment.kubernetes.io/revision", "")}
    observed = (st.observed_generation or 0) >= (dep.metadata.generation or 0)
    done = (observed and summary["updated"] == want and summary["current"] == want
            and summary["available"] == want and summary["ready"] == want)
    deadline = None
    for cond in st.conditions or []:
        if cond.type == "Progressing" and cond.reason == "ProgressDeadlineExceeded":
            deadline = cond.message or "progress deadline exceeded"
    pods = []
    if not done:
        revision = summary["revision"]
        sets = apps.list_namespaced_replica_set(namespace, label_selector=_labels(dep.spec.selector)).items
        new = [rs for rs in sets if (rs.metadata.annotations or {}).get("deployment.kubernetes.io/revision") == revision
               and any(o.uid == dep.metadata.uid for o in rs.metadata.owner_references or [])]
        for rs in new:
            pods += core.list_namespaced_pod(namespace, label_selector=_labels(rs.spec.selector)).items
    summary["done"] = done
    return done, summary, pods, deadline


def _statefulset_state(apps, core, namespace, name):
    sts = apps.read_namespaced_stateful_set(name, namespace)
    want = sts.spec.replicas if sts.spec.replicas is not None else 1
    st = sts.status
    summary = {"kind": "StatefulSet", "desired": want, "updated": st.updated_replicas or 0,
               "ready": st.ready_replicas or 0, "available": st.available_replicas or 0,
               "current": st.replicas or 0, "images": _images(sts.spec.template),
               "revision": st.update_revision or ""}
    observed = (st.observed_generation or 0) >= (sts.metadata.generation or 0)
    done = (observed and summary["ready"] == want and summary["updated"] == want and summary["current"] == want
            and (not st.update_revision or st.current_revision == st.update_revision))
    pods = []
    if not done:
        pods = [p for p in core.list_namespaced_pod(namespace, label_selector=_labels(sts.spec.selector)).items
                if (p.metadata.labels or {}).get("controller-revision-hash") == st.update_revision]
    summary["done"] = done
    return done, summary, pods, None


def _pod_problem(pod, max_restarts, unschedulable_seconds, first_seen, now):
    """A failure dict for a pod that cannot become ready, or None."""
    name = pod.metadata.name
    for cond in (pod.status.conditions or []) if pod.status else []:
        if cond.type == "PodScheduled" and cond.status == "False" and cond.reason == "Unschedulable":
            key = ("unschedulable", name)
            first_seen.setdefault(key, now)
            if now - first_seen[key] >= unschedulable_seconds:
                return {"pod": name, "reason": "Unschedulable", "message": cond.message or "no node fits the pod"}
    images = {c.name: c.image for c in pod.spec.containers}
    for cs in (pod.status.container_statuses or []) if pod.status else []:
        image = images.get(cs.name, cs.image)
        waiting = cs.state.waiting if cs.state else None
        if waiting is not None and waiting.reason in _IMAGE_REASONS:
            message = waiting.message or waiting.reason
            key = ("pull", name, cs.name)
            first_seen.setdefault(key, now)
            if (waiting.reason != "ErrImagePull" or any(d in message.lower() for d in _DEFINITE)
                    or now - first_seen[key] >= 30):
                return {"pod": name, "reason": waiting.reason, "image": image,
                        "message": f"image {image} cannot be pulled: {message}"}
        if waiting is not None and waiting.reason in _CONFIG_REASONS:
            return {"pod": name, "reason": waiting.reason, "image": image, "message": waiting.message or waiting.reason}
        if (cs.restart_count or 0) >= max_restarts:
            last = cs.last_state.terminated if cs.last_state else None
            how = f"exit code {last.exit_code} ({last.reason})" if last is not None else "restarts"
            return {"pod": name, "reason": "Restarting", "image": image,
                    "message": f"container {cs.name} ({image}) restarted {cs.restart_count} times, last {how}"}
    return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            kubeconfig=dict(type="path", required=True),
            namespace=dict(type="str", required=True),
            deployments=dict(type="list", elements="str", default=[]),
            statefulsets=dict(type="list", elements="str", default=[]),
            timeout=dict(type="int", default=300),
            max_restarts=dict(type="int", default=3),
            unschedulable_seconds=dict(type="int", default=90),
            poll=dict(type="int", default=2),
        ),
        supports_check_mode=True,
    )
    if not HAS_CLIENT:
        module.fail_json(msg="the Python kubernetes client is missing on this host (python3-kubernetes)")
    p = module.params
    config.load_kube_config(config_file=p["kubeconfig"])
    apps, core = client.AppsV1Api(), client.CoreV1Api()
    pending = [("Deployment", n) for n in p["deployments"]] + [("StatefulSet", n) for n in p["statefulsets"]]
    objects, failures, first_seen = {}, [], {}
    started = time.monotonic()
    while True:
        now = time.monotonic()
        still = []
        for kind, name in pending:
            try:
                if kind == "Deployment":
                    done, summary, pods, deadline = _deployment_state(apps, core, p["namespace"], name)
                else:
                    done, summary, pods, deadline = _statefulset_state(apps, core, p["namespace"], name)
            except ApiException as exc:
                if exc.status == 404:
                    failures.append({"kind": kind, "name": name, "reason": "NotFound",
                                     "message": f"{kind} {p['namespace']}/{name} does not exist"})
                    continue
                raise
            objects[f"{kind}/{name}"] = summary
            if done:
                continue
            problem = None
            for pod in pods:
                problem = _pod_problem(pod, p["max_restarts"], p["unschedulable_seconds"], first_seen, now)
                if problem:
                    break
            if problem is None and deadline:
                problem = {"reason": "ProgressDeadlineExceeded", "message": deadline}
            if problem is not None:
                failures.append({"kind": kind, "name": name, **problem})
            else:
                still.append((kind, name))
        pending = still
        if not pending or now - started >= p["timeout"]:
            break
        time.sleep(p["poll"])
    for kind, name in pending:
        s = objects.get(f"{kind}/{name}", {})
        failures.append({"kind": kind, "name": name, "reason": "Timeout",
                         "message": f"not rolled out after {p['timeout']} s: {s.get('ready', 0)}/{s.get('desired', '?')} "
                                    f"ready, {s.get('updated', 0)} updated"})
    if failures:
        msg = "; ".join(f"{f['kind']} {f['name']}: {f['message']}" for f in failures)
        module.fail_json(msg=msg, objects=objects, failures=failures, changed=False)
    module.exit_json(changed=False, objects=objects, failures=[])


if __name__ == "__main__":
    main()
