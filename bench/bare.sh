#!/usr/bin/env bash
# Benchmarks of --mode bare (not tests; results go to docs/benchmarks.md), each ratio measured in one run:
#   1. a cold `toolkit bootstrap --mode bare` on 3 fresh nodes against a plain shell doing the same package
#      installs on 3 other fresh nodes, in parallel, with the package cache equally warm (both after a
#      first run that filled it);
#   2. the no-op rerun against `ansible all -m setup` on the same inventory;
#   3. `common` + `java` on 1, 3 and 6 fresh nodes, cold and rerun (how Ansible's cost grows with nodes).
# Runs on a lab of its own (toolkit-bench), never the built-in one. Usage: bench/bare.sh [--skip-scaling]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export TOOLKIT_LAB_NAME=toolkit-bench TOOLKIT_LAB_PORT_OFFSET=500 TOOLKIT_HOME=${BENCH_HOME:-/tmp/toolkit-bench}
INV=$TOOLKIT_HOME/lab/inventory
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.1f}')"; }
ratio() { python3 -c "print(f'{($2) / ($1):.2f}')"; }
row() { printf '| %s | %s |\n' "$1" "$2"; }
fresh_lab() { toolkit lab down >/dev/null 2>&1 || true; toolkit lab up --nodes "$1" >/dev/null; }

# The same packages by hand, the way an operator would type them, on every node at once.
SHELL_DATA='DEBIAN_FRONTEND=noninteractive apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server rabbitmq-server >/dev/null'
SHELL_APPS='printf "deb http://deb.debian.org/debian sid main\n" > /etc/apt/sources.list.d/sid.list &&
  printf "Package: *\nPin: release a=unstable\nPin-Priority: 100\n" > /etc/apt/preferences.d/sid &&
  apt-get -qq -o Acquire::Check-Valid-Until=false update &&
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null &&
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t unstable openjdk-8-jre-headless >/dev/null'

echo "== warming the package cache (one cold bootstrap, not measured)" >&2
fresh_lab 3
toolkit bootstrap --mode bare --output json >/dev/null 2>&1

echo "== 1. cold converge vs the plain shell" >&2
fresh_lab 3
t0=$(now); toolkit bootstrap --mode bare --output json >/tmp/bench-cold.json 2>/dev/null; t1=$(now)
echo "== 2. no-op rerun vs ansible -m setup" >&2
t2=$(now); toolkit bootstrap --mode bare --output json >/tmp/bench-rerun.json 2>/dev/null; t3=$(now)
t4=$(now); ansible all -i "$INV" -m ansible.builtin.setup >/dev/null; t5=$(now)
changed=$(python3 -c "import json; d=json.load(open('/tmp/bench-rerun.json')); print(sum(h['changed'] for h in d['hosts'].values()))")
bench/profile.py > /tmp/bench-rerun-profile.md
fresh_lab 3
t6=$(now)
docker exec "$TOOLKIT_LAB_NAME-node1" sh -c "$SHELL_DATA" & p1=$!
docker exec "$TOOLKIT_LAB_NAME-node2" sh -c "$SHELL_APPS" & p2=$!
docker exec "$TOOLKIT_LAB_NAME-node3" sh -c "$SHELL_APPS" & p3=$!
wait $p1 $p2 $p3
t7=$(now)
cold=$(secs "$t0" "$t1"); rerun=$(secs "$t2" "$t3"); setup=$(secs "$t4" "$t5"); shell=$(secs "$t6" "$t7")

printf '\n### bare, 3 nodes\n| what | seconds |\n|---|---|\n'
row "toolkit bootstrap --mode bare, cold (packages, config, users, 4 apps x 2 hosts, health checks)" "$cold"
row "plain shell: the same package installs, 3 nodes in parallel (no config, no apps)" "$shell"
row "**ratio cold / shell** (target <= 1.5)" "$(ratio "$shell" "$cold")"
row "toolkit bootstrap --mode bare, no-op rerun ($changed changed)" "$rerun"
row "ansible all -m setup, same inventory" "$setup"
row "**ratio rerun / setup** (target <= 10)" "$(ratio "$setup" "$rerun")"
echo; echo "Where the rerun's time goes (bench/profile.py):"; cat /tmp/bench-rerun-profile.md

if [ "${1:-}" != "--skip-scaling" ]; then
  printf '\n### common + java, by node count\n| nodes | cold s | rerun s |\n|---|---|---|\n'
  for n in 1 3 6; do
    fresh_lab "$n"
    t0=$(now); toolkit bootstrap --mode bare --tags common,java --output json >/dev/null 2>&1; t1=$(now)
    toolkit bootstrap --mode bare --tags common,java --output json >/dev/null 2>&1; t2=$(now)
    printf '| %s | %s | %s |\n' "$n" "$(secs "$t0" "$t1")" "$(secs "$t1" "$t2")"
  done
fi
toolkit lab down >/dev/null
