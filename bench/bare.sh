#!/usr/bin/env bash
# Benchmark (not a test): cold converge of the bare stack on a fresh 3-node lab vs. a plain
# shell `apt-get install` of the same packages on an identical fresh node, and the rerun time.
# Takes over the built-in lab. Prints a small table. Usage: bench/bare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
FILES="${TOOLKIT_HOME:-$HOME/.local/share/toolkit}/lab/files"
IMAGE=toolkit-lab/debian:trixie
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.1f}')"; }

toolkit lab down >/dev/null
toolkit lab up --nodes 3 >/dev/null
SKIP_TESTS=1 apps/build.sh "$FILES" >/dev/null
t0=$(now); toolkit bootstrap --mode bare --output json >/tmp/bench-cold.json 2>/dev/null; t1=$(now)
toolkit bootstrap --mode bare --output json >/tmp/bench-rerun.json 2>/dev/null; t2=$(now)

# The same packages by hand on one fresh node, the way an operator would type them.
docker rm -f bench-shell >/dev/null 2>&1 || true
docker run -d --name bench-shell --cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined \
  --security-opt apparmor=unconfined --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run \
  --tmpfs /run/lock "$IMAGE" >/dev/null
sleep 3
t3=$(now)
docker exec bench-shell sh -c '
  echo "deb http://deb.debian.org/debian sid main" > /etc/apt/sources.list.d/sid.list &&
  printf "Package: *\nPin: release a=unstable\nPin-Priority: 100\n" > /etc/apt/preferences.d/sid &&
  apt-get -qq -o Acquire::Check-Valid-Until=false update &&
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server rabbitmq-server nodejs npm >/dev/null &&
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t unstable openjdk-8-jre-headless >/dev/null'
t4=$(now)
docker rm -f bench-shell >/dev/null

printf '\n| what | seconds |\n|---|---|\n'
printf '| toolkit bootstrap --mode bare, cold, 3 fresh nodes (packages, config, users, apps, health checks) | %s |\n' "$(secs "$t0" "$t1")"
printf '| toolkit bootstrap --mode bare, rerun (0 changed) | %s |\n' "$(secs "$t1" "$t2")"
printf '| shell apt-get install of the same packages on 1 fresh node (no config, no apps) | %s |\n' "$(secs "$t3" "$t4")"
