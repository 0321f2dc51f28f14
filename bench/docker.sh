#!/usr/bin/env bash
# Benchmark of --mode docker (not a test; results go to docs/benchmarks.md), one run each:
#   1. a cold `toolkit bootstrap --mode docker` on 3 fresh nodes (engine install, pulls, data services, apps
#      healthy) against a raw shell doing the same on 3 other fresh nodes: apt-get install docker.io, the
#      registry login, then the same `docker run`s (network, volumes, env, ports, limits, healthchecks),
#      waiting for every container to be healthy, the three nodes in parallel;
#   2. the no-op rerun against the raw shell's own rerun (`docker inspect NAME || docker run ...` per container).
# Images are pushed to the lab registry first (not measured), and both sides pull them from it. The package
# cache is warmed by a first, unmeasured bootstrap. Runs on a lab of its own (toolkit-bench-docker), never
# the built-in one. Usage: bench/docker.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export TOOLKIT_LAB_NAME=toolkit-bench-docker TOOLKIT_LAB_PORT_OFFSET=600 TOOLKIT_HOME=${BENCH_HOME:-/tmp/toolkit-bench-docker}
LAB=$TOOLKIT_HOME/lab
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.1f}')"; }
ratio() { python3 -c "print(f'{($2) / ($1):.2f}')"; }
row() { printf '| %s | %s |\n' "$1" "$2"; }
fresh_lab() { toolkit lab down >/dev/null 2>&1 || true; toolkit lab up --nodes 3 >/dev/null; }
# lab down empties the registry: the images go back in before each measured part (else the toolkit's run would
# build and push them inside the measured time, and the raw shell would find none).
push_images() { toolkit lab images >/dev/null; }
node() { docker exec -i "$TOOLKIT_LAB_NAME-$1" sh -s; }

echo "== lab, artifacts, images (not measured)" >&2
fresh_lab
if [ -f "${BENCH_ARTIFACTS:-}/SHA256SUMS" ]; then cp "$BENCH_ARTIFACTS"/* "$LAB/files/"; fi
toolkit lab images >/dev/null 2>&1 || { apps/build.sh "$LAB/files" >/dev/null 2>&1 && toolkit lab images >/dev/null 2>&1; }
echo "== warming the package cache (one cold bootstrap, not measured)" >&2
toolkit bootstrap --mode docker --output json >/dev/null 2>&1

echo "== 1. cold converge" >&2
fresh_lab; push_images
t0=$(now); toolkit bootstrap --mode docker --output json >/tmp/bench-docker-cold.json 2>/dev/null; t1=$(now)
echo "== 2. no-op rerun" >&2
t2=$(now); toolkit bootstrap --mode docker --output json >/tmp/bench-docker-rerun.json 2>/dev/null; t3=$(now)
changed=$(python3 -c "import json; d=json.load(open('/tmp/bench-docker-rerun.json')); print(sum(h['changed'] for h in d['hosts'].values()))")

echo "== raw shell on fresh nodes" >&2
fresh_lab; push_images
n1=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$TOOLKIT_LAB_NAME\").IPAddress}}" "$TOOLKIT_LAB_NAME-node1")
n2=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$TOOLKIT_LAB_NAME\").IPAddress}}" "$TOOLKIT_LAB_NAME-node2")
n3=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$TOOLKIT_LAB_NAME\").IPAddress}}" "$TOOLKIT_LAB_NAME-node3")
rdbms=$(cat "$LAB/secrets/rdbms"); nosql=$(cat "$LAB/secrets/nosql"); queue=$(cat "$LAB/secrets/queue")
registry_user=$(cut -d: -f1 "$LAB/secrets/registry"); registry_password=$(cut -d: -f2- "$LAB/secrets/registry")
R=registry:5000

# The engine, its registry settings and the login, as an operator would type them.
ENGINE="set -e
export DEBIAN_FRONTEND=noninteractive
apt-get -qq update && apt-get install -y -qq docker.io >/dev/null
mkdir -p /etc/docker && printf '{\"insecure-registries\": [\"$R\"], \"live-restore\": true}\n' > /etc/docker/daemon.json
systemctl restart docker
printf '%s' '$registry_password' | docker login -u '$registry_user' --password-stdin $R >/dev/null
docker network create toolkit >/dev/null"
wait_healthy='for c in "$@"; do until [ "$(docker inspect -f "{{.State.Health.Status}}" "$c")" = healthy ]; do sleep 1; done; done'
RUN="--network toolkit --restart unless-stopped --stop-timeout 20"
DATA="docker volume create toolkit-postgresql-data >/dev/null
docker volume create toolkit-redis-data >/dev/null
docker volume create toolkit-rabbitmq-data >/dev/null
docker inspect toolkit-postgresql >/dev/null 2>&1 || docker run -d --name toolkit-postgresql $RUN -m 1g --cpus 1 \
  -v toolkit-postgresql-data:/var/lib/postgresql/data -p $n1:5432:5432 \
  -e POSTGRES_USER=shop -e POSTGRES_DB=shop -e POSTGRES_PASSWORD='$rdbms' \
  --health-cmd 'pg_isready -q -h 127.0.0.1 -U shop -d shop' --health-interval 10s --health-start-period 120s \
  --health-start-interval 2s $R/library/postgres:17 >/dev/null
docker inspect toolkit-redis >/dev/null 2>&1 || docker run -d --name toolkit-redis $RUN -m 512m --cpus 0.5 \
  -v toolkit-redis-data:/data -p $n1:6379:6379 \
  --health-cmd 'redis-cli -a \"$nosql\" --no-auth-warning ping | grep -q PONG' --health-interval 10s \
  --health-start-interval 2s $R/library/redis:8 --requirepass '$nosql' --maxmemory 128mb --appendonly yes >/dev/null
docker inspect toolkit-rabbitmq >/dev/null 2>&1 || docker run -d --name toolkit-rabbitmq --hostname rabbitmq $RUN -m 1g --cpus 1 \
  -v toolkit-rabbitmq-data:/var/lib/rabbitmq -p $n1:5672:5672 \
  -e RABBITMQ_DEFAULT_USER=shop -e RABBITMQ_DEFAULT_PASS='$queue' -e RABBITMQ_DEFAULT_VHOST=shop \
  --health-cmd 'rabbitmq-diagnostics -q check_port_connectivity' --health-interval 10s --health-start-period 120s \
  --health-start-interval 2s $R/library/rabbitmq:4.0-management >/dev/null
sh -c '$wait_healthy' - toolkit-postgresql toolkit-redis toolkit-rabbitmq"
apps() {  # $1: this node's address, $2: the other app node's address
  local db="-e DB_URL=jdbc:postgresql://$n1:5432/shop -e DB_USER=shop -e DB_PASSWORD='$rdbms'"
  local redis="-e REDIS_HOST=$n1 -e REDIS_PORT=6379 -e REDIS_PASSWORD='$nosql'"
  local amqp="-e QUEUE_KIND=rabbitmq -e AMQP_ADDRESSES=$n1:5672 -e AMQP_USER=shop -e AMQP_PASSWORD='$queue' -e AMQP_VHOST=shop"
  cat <<EOF
docker inspect toolkit-catalog >/dev/null 2>&1 || docker run -d --name toolkit-catalog $RUN -m 256m --cpus 0.5 -p $1:8081:8081 \
  -e PORT=8081 -e SERVICE_NAME=catalog $db $redis $R/toolkit/catalog:0.1.0 >/dev/null
docker inspect toolkit-orders >/dev/null 2>&1 || docker run -d --name toolkit-orders $RUN -m 256m --cpus 0.5 -p $1:8082:8082 \
  -e PORT=8082 -e SERVICE_NAME=orders $db $redis $amqp -e CATALOG_URLS=http://toolkit-catalog:8081,http://$2:8081 \
  $R/toolkit/orders:0.1.0 >/dev/null
docker inspect toolkit-billing >/dev/null 2>&1 || docker run -d --name toolkit-billing $RUN -m 256m --cpus 0.5 -p $1:8083:8083 \
  -e PORT=8083 -e SERVICE_NAME=billing $db $redis $amqp $R/toolkit/billing:0.1.0 >/dev/null
docker inspect toolkit-front >/dev/null 2>&1 || docker run -d --name toolkit-front $RUN -m 128m --cpus 0.25 -p 3000:3000 \
  -e PORT=3000 -e SERVICE_NAME=front -e CATALOG_URLS=http://toolkit-catalog:8081,http://$2:8081 \
  -e ORDERS_URLS=http://toolkit-orders:8082,http://$2:8082 -e BILLING_URLS=http://toolkit-billing:8083,http://$2:8083 \
  $R/toolkit/front:0.1.0 >/dev/null
sh -c '$wait_healthy' - toolkit-catalog toolkit-orders toolkit-billing toolkit-front
EOF
}
t4=$(now)
{ printf '%s\n%s\n' "$ENGINE" "$DATA" | node node1; } & p1=$!
{ printf '%s\n' "$ENGINE"; apps "$n2" "$n3"; } | node node2 & p2=$!
{ printf '%s\n' "$ENGINE"; apps "$n3" "$n2"; } | node node3 & p3=$!
wait $p1 $p2 $p3
t5=$(now)
t6=$(now)
printf '%s\n' "$DATA" | node node1 & p1=$!
apps "$n2" "$n3" | node node2 & p2=$!
apps "$n3" "$n2" | node node3 & p3=$!
wait $p1 $p2 $p3
t7=$(now)
curl -fsS -m 20 "http://$n2:3000/api/products" >/dev/null || { echo "the raw shell's stack does not answer" >&2; exit 1; }

cold=$(secs "$t0" "$t1"); rerun=$(secs "$t2" "$t3"); shell=$(secs "$t4" "$t5"); shell_rerun=$(secs "$t6" "$t7")
printf '\n### docker, 3 nodes\n| what | seconds |\n|---|---|\n'
row "toolkit bootstrap --mode docker, cold (common, engine, pulls, 3 data services, 4 apps x 2 hosts, all healthy)" "$cold"
row "raw shell: docker.io, login, the same docker runs, waiting for healthy; 3 nodes in parallel" "$shell"
row "**ratio cold / shell**" "$(ratio "$shell" "$cold")"
row "toolkit bootstrap --mode docker, no-op rerun ($changed changed)" "$rerun"
row "raw shell rerun: \`docker inspect NAME \|\| docker run ...\` per container" "$shell_rerun"
row "**ratio rerun / shell rerun**" "$(ratio "$shell_rerun" "$rerun")"
toolkit lab down >/dev/null
