#!/usr/bin/env bash
# Benchmark (not a test): a kubeadm cluster from bare nodes to every node Ready on a fresh
# 3-node lab (1 control plane, 2 workers), the rerun, and the cold build of the offline bundle
# from source when it is not cached yet. Takes over the built-in lab. Usage: bench/k8s.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
. lab/k8s-versions.env
BUNDLE="$HOME/.cache/toolkit/bundles/k8s-$K8S_VERSION"
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.1f}')"; }

tb0=$(now); lab/build-k8s-bundle "$BUNDLE" >/tmp/bench-bundle.log 2>&1; tb1=$(now)
toolkit lab down >/dev/null
tl0=$(now); toolkit lab up --nodes 3 --profile k8s >/dev/null; tl1=$(now)
ts0=$(now); toolkit bundle serve "$BUNDLE" --lab >/dev/null 2>&1; ts1=$(now)
t0=$(now); toolkit bootstrap --mode k8s --output json >/tmp/bench-k8s-cold.json 2>/dev/null; t1=$(now)
docker exec toolkit-lab-node1 kubectl get nodes -o wide
toolkit bootstrap --mode k8s --output json >/tmp/bench-k8s-rerun.json 2>/dev/null; t2=$(now)
changed=$(python3 -c "import json; d=json.load(open('/tmp/bench-k8s-rerun.json')); print(sum(h['changed'] for h in d['hosts'].values()))")

printf '\n| what | seconds |\n|---|---|\n'
printf '| bundle %s from source (0 when cached) | %s |\n' "$K8S_VERSION" "$(secs "$tb0" "$tb1")"
printf '| toolkit lab up --nodes 3 --profile k8s | %s |\n' "$(secs "$tl0" "$tl1")"
printf '| toolkit bundle serve --lab (verify, push 9 images, link files) | %s |\n' "$(secs "$ts0" "$ts1")"
printf '| toolkit bootstrap --mode k8s, bare nodes to every node Ready | %s |\n' "$(secs "$t0" "$t1")"
printf '| toolkit bootstrap --mode k8s, rerun (%s changed) | %s |\n' "$changed" "$(secs "$t1" "$t2")"
