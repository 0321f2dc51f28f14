#!/usr/bin/env bash
# Benchmark (not a test): a kubeadm cluster plus the stack from bare nodes to every app Ready on a fresh
# 3-node lab (1 control plane, 2 workers), the no-op reruns, and the cold build of the offline bundle from
# source when it is not cached yet. Takes over the lab named by TOOLKIT_LAB_NAME (default: the built-in
# lab; set TOOLKIT_LAB_NAME, TOOLKIT_LAB_PORT_OFFSET and TOOLKIT_HOME to use a lab of your own).
# Usage: bench/k8s.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
. lab/k8s-versions.env
BUNDLE="$HOME/.cache/toolkit/bundles/k8s-$K8S_VERSION"
NODE1="${TOOLKIT_LAB_NAME:-toolkit-lab}-node1"
OUT="${TMPDIR:-/tmp}/bench-k8s.$$"
mkdir -p "$OUT"
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.1f}')"; }
changed() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(sum(h['changed'] for h in d['hosts'].values()))" "$1"; }
# Seconds per play of a run, from its events (artifacts/run/job_events): "play name<TAB>seconds".
plays() {
  python3 - "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['artifacts'])" "$1")" <<'EOF'
import json, sys
from datetime import datetime
from pathlib import Path
events = sorted((json.loads(p.read_text()) for p in Path(sys.argv[1], "job_events").glob("*.json")),
                key=lambda e: e.get("counter", 0))
marks = [(e["event_data"].get("play", ""), datetime.fromisoformat(e["created"])) for e in events
         if e.get("event") == "playbook_on_play_start"]
end = datetime.fromisoformat(events[-1]["created"])
for (name, start), nxt in zip(marks, [m[1] for m in marks[1:]] + [end]):
    print(f"{name}\t{(nxt - start).total_seconds():.1f}")
EOF
}

tb0=$(now); lab/build-k8s-bundle "$BUNDLE" >"$OUT/bundle.log" 2>&1; tb1=$(now)
toolkit lab down >/dev/null
tl0=$(now); toolkit lab up --nodes 3 --profile k8s >/dev/null; tl1=$(now)
ts0=$(now); toolkit bundle serve "$BUNDLE" --lab >/dev/null 2>&1; ts1=$(now)
# The example apps' artifacts, which the stack's images are built from (not measured).
SKIP_TESTS=1 apps/build.sh "${TOOLKIT_HOME:-$HOME/.local/share/toolkit}/lab/files" >"$OUT/apps.log" 2>&1
ti0=$(now); toolkit lab images >"$OUT/images.log" 2>&1; ti1=$(now)
t0=$(now); toolkit bootstrap --mode k8s --output json >"$OUT/cold.json" 2>"$OUT/cold.log"; t1=$(now)
docker exec "$NODE1" kubectl get nodes -o wide
docker exec "$NODE1" kubectl -n toolkit get deployments,statefulsets,pvc
toolkit bootstrap --mode k8s --output json >"$OUT/rerun.json" 2>/dev/null; t2=$(now)
toolkit deploy --mode k8s --output json >"$OUT/deploy.json" 2>/dev/null; t3=$(now)

printf '\n| what | seconds |\n|---|---|\n'
printf '| bundle %s from source (0 when cached) | %s |\n' "$K8S_VERSION" "$(secs "$tb0" "$tb1")"
printf '| toolkit lab up --nodes 3 --profile k8s | %s |\n' "$(secs "$tl0" "$tl1")"
printf '| toolkit bundle serve --lab (verify, push 14 images, link files) | %s |\n' "$(secs "$ts0" "$ts1")"
printf '| toolkit lab images (build, cached layers; push every stack image to the empty registry) | %s |\n' "$(secs "$ti0" "$ti1")"
printf '| **toolkit bootstrap --mode k8s: bare nodes to every app Ready** | **%s** |\n' "$(secs "$t0" "$t1")"
plays "$OUT/cold.json" | while IFS=$'\t' read -r play s; do printf '| &nbsp;&nbsp;play: %s | %s |\n' "$play" "$s"; done
printf '| toolkit bootstrap --mode k8s, rerun (%s changed) | %s |\n' "$(changed "$OUT/rerun.json")" "$(secs "$t1" "$t2")"
printf '| toolkit deploy --mode k8s, rerun (%s changed) | %s |\n' "$(changed "$OUT/deploy.json")" "$(secs "$t2" "$t3")"
echo "runs: $OUT"
