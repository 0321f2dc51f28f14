#!/usr/bin/env bash
# Real check of the wiring contract, failover between instances and graceful shutdown, on this
# machine's loopback only: PostgreSQL, Redis and RabbitMQ in a temporary directory (one password
# with odd characters for all three, a RabbitMQ vhost with odd characters), two instances each of
# catalog and orders, one billing and one front, all from the built artifacts. A client loop calls
# the front (GET products, POST order, GET order) while every Java instance is replaced one after
# the other (SIGTERM, wait for exit, start again, wait for /health). Fails when:
#   - a client request fails (anything but 200/201),
#   - an instance does not exit with status 0 within 15 s of SIGTERM,
#   - an order placed by the client is missing, duplicated, or never billed,
#   - the password appears in any log line.
#
# Usage: apps/test/rolling-restart.sh [DIST_DIR]      (default apps/dist; run apps/build.sh first)
# Env:   JAVA=java            JVM of catalog-1, orders-1, billing
#        JAVA_B=$JAVA         JVM of catalog-2, orders-2 (two Java versions side by side)
#        JAVA_B_IMAGE=IMG     run catalog-2 and orders-2 in this local Docker image instead
#                             (`java` on its PATH, host network; e.g. a Java 8 JRE image)
#        CONTAINER_PREFIX=apps-rr-   name prefix of those containers
#        BASE_PORT=21000      ports BASE_PORT .. BASE_PORT+20 on 127.0.0.1 must be free
#        DRAIN=3              SHUTDOWN_DRAIN_SECONDS of the services
#        KEEP=1               keep the temporary directory (logs) after the run
# Needs: PostgreSQL server binaries (Debian: postgresql), redis-server, rabbitmq-server, node, curl.
# Runs as root (PostgreSQL then runs as user postgres) or as an ordinary user.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dist="$(cd "${1:-$here/dist}" && pwd)"
JAVA="${JAVA:-java}"
JAVA_B="${JAVA_B:-$JAVA}"
JAVA_B_IMAGE="${JAVA_B_IMAGE:-}"
CONTAINER_PREFIX="${CONTAINER_PREFIX:-apps-rr-}"
BASE_PORT="${BASE_PORT:-21000}"
DRAIN="${DRAIN:-3}"

say() { printf '[rolling] %s\n' "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }

for f in catalog.jar orders.jar billing.jar front.tar.gz; do
  [[ -f "$dist/$f" ]] || die "$dist/$f missing: run apps/build.sh first"
done
pgbin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[[ -x "$pgbin/initdb" ]] || die "PostgreSQL server binaries not found (apt-get install postgresql)"
for tool in redis-server redis-cli node curl; do
  command -v "$tool" >/dev/null || die "'$tool' not found"
done
rmq=/usr/lib/rabbitmq/bin
[[ -x "$rmq/rabbitmq-server" ]] || die "RabbitMQ not found (apt-get install rabbitmq-server)"

# Odd characters on purpose: every one must reach the server raw, and none may be logged.
PW="p@ss w/o:rd%41#'\$\"x"
VHOST="/shop vhost@#'"
PGPORT=$((BASE_PORT)); REDISPORT=$((BASE_PORT + 1)); AMQPPORT=$((BASE_PORT + 2)); DEADPORT=$((BASE_PORT + 3))
EPMDPORT=$((BASE_PORT + 4)); DISTPORT=$((BASE_PORT + 5)); FRONTPORT=$((BASE_PORT + 10))
declare -A PORT=([catalog-1]=$((BASE_PORT + 11)) [catalog-2]=$((BASE_PORT + 12)) [orders-1]=$((BASE_PORT + 13))
                 [orders-2]=$((BASE_PORT + 14)) [billing-1]=$((BASE_PORT + 15)))
for p in $PGPORT $REDISPORT $AMQPPORT $DEADPORT $EPMDPORT $DISTPORT $FRONTPORT "${PORT[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then die "port $p is in use (set BASE_PORT)"; fi
done

tmp="$(mktemp -d "${TMPDIR:-/tmp}/apps-rolling.XXXXXX")"
chmod 755 "$tmp"
mkdir -p "$tmp/logs"
declare -A PID=()
cleanup() {
  set +e
  # graceful first (they drain for $DRAIN s), then whatever is left
  for name in "${!PID[@]}"; do kill -TERM "${PID[$name]}" 2>/dev/null; done
  local end=$((SECONDS + 20)) alive
  while (( SECONDS < end )); do
    alive=0
    for name in "${!PID[@]}"; do kill -0 "${PID[$name]}" 2>/dev/null && alive=1; done
    (( alive )) || break
    sleep 0.5
  done
  for name in "${!PID[@]}"; do kill -KILL "${PID[$name]}" 2>/dev/null; { wait "${PID[$name]}"; } 2>/dev/null; done
  [[ -n "${client:-}" ]] && kill "$client" 2>/dev/null
  if [[ -n "$JAVA_B_IMAGE" ]]; then
    for name in catalog-2 orders-2; do docker rm -f "${CONTAINER_PREFIX}${name}-$$" >/dev/null 2>&1; done
  fi
  [[ -f "$tmp/pg/postmaster.pid" ]] && as_pg "$pgbin/pg_ctl" -D "$tmp/pg" -m immediate stop >/dev/null 2>&1
  [[ -f "$tmp/rmq.pid" ]] && rmqctl stop >/dev/null 2>&1
  [[ -n "${redis_pid:-}" ]] && kill "$redis_pid" 2>/dev/null
  # the epmd that RabbitMQ started on our own port
  local epmd_pid
  epmd_pid=$(ss -Hltnp "sport = :$EPMDPORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
  [[ -n "$epmd_pid" ]] && kill "$epmd_pid" 2>/dev/null
  if [[ -n "${KEEP:-}" ]]; then say "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local end=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < end )) || die "timed out waiting for $what"
    sleep 0.3
  done
}

# ------------------------------------------------------------------ PostgreSQL
say "PostgreSQL on 127.0.0.1:$PGPORT"
mkdir -p "$tmp/pg" "$tmp/pgsock"
[[ $(id -u) == 0 ]] && chown postgres "$tmp/pg" "$tmp/pgsock"
as_pg "$pgbin/initdb" -D "$tmp/pg" -U postgres --auth-local=trust --auth-host=scram-sha-256 >"$tmp/logs/initdb.log" 2>&1
as_pg "$pgbin/pg_ctl" -D "$tmp/pg" -w -l "$tmp/pg/server.log" \
  -o "-p $PGPORT -c listen_addresses=127.0.0.1 -k $tmp/pgsock" start >/dev/null
printf "CREATE ROLE shop LOGIN PASSWORD :'pw';\nCREATE DATABASE shop OWNER shop;\n" \
  | as_pg psql -q -h "$tmp/pgsock" -p "$PGPORT" -U postgres -v ON_ERROR_STOP=1 -v pw="$PW" postgres

# ------------------------------------------------------------------ Redis
say "Redis on 127.0.0.1:$REDISPORT"
redis-server --port "$REDISPORT" --bind 127.0.0.1 --requirepass "$PW" --save "" --appendonly no \
  --dir "$tmp" >"$tmp/redis.log" 2>&1 &
redis_pid=$!
REDISCLI_AUTH="$PW" wait_for 20 redis redis-cli -p "$REDISPORT" ping

# ------------------------------------------------------------------ RabbitMQ
say "RabbitMQ on 127.0.0.1:$AMQPPORT (vhost with odd characters)"
mkdir -p "$tmp/rmq/home"
printf 'apps-rolling-%s' "$$" >"$tmp/rmq/home/.erlang.cookie"
chmod 400 "$tmp/rmq/home/.erlang.cookie"
: >"$tmp/rmq/enabled_plugins"
rmqenv=(env HOME="$tmp/rmq/home" ERL_EPMD_PORT="$EPMDPORT" ERL_EPMD_ADDRESS=127.0.0.1
        RABBITMQ_NODENAME="apps-rr@localhost" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$AMQPPORT"
        RABBITMQ_DIST_PORT="$DISTPORT" RABBITMQ_MNESIA_BASE="$tmp/rmq/mnesia" RABBITMQ_LOG_BASE="$tmp/rmq/log"
        RABBITMQ_ENABLED_PLUGINS_FILE="$tmp/rmq/enabled_plugins" RABBITMQ_CONFIG_FILE="$tmp/rmq/rabbitmq"
        RABBITMQ_ADVANCED_CONFIG_FILE="$tmp/rmq/advanced.config" RABBITMQ_CONF_ENV_FILE="$tmp/rmq/env.conf")
rmqctl() { "${rmqenv[@]}" "$rmq/rabbitmqctl" -n apps-rr@localhost "$@"; }
"${rmqenv[@]}" setsid "$rmq/rabbitmq-server" >"$tmp/logs/rabbitmq.log" 2>&1 &
echo $! >"$tmp/rmq.pid"
wait_for 90 rabbitmq rmqctl await_startup
rmqctl add_user shop "$PW" >/dev/null
rmqctl add_vhost "$VHOST" >/dev/null
rmqctl set_permissions -p "$VHOST" shop '.*' '.*' '.*' >/dev/null

# ------------------------------------------------------------------ applications
mkdir -p "$tmp/app"
tar -xzf "$dist/front.tar.gz" -C "$tmp/app"
c_urls="http://127.0.0.1:${PORT[catalog-1]},http://127.0.0.1:${PORT[catalog-2]}"
o_urls="http://127.0.0.1:${PORT[orders-1]},http://127.0.0.1:${PORT[orders-2]}"
common_env=(DB_URL="jdbc:postgresql://127.0.0.1:$PGPORT/shop" DB_USER=shop DB_PASSWORD="$PW"
            REDIS_HOST=127.0.0.1 REDIS_PORT="$REDISPORT" REDIS_PASSWORD="$PW"
            QUEUE_KIND=rabbitmq AMQP_ADDRESSES="127.0.0.1:$DEADPORT,127.0.0.1:$AMQPPORT" AMQP_USER=shop
            AMQP_PASSWORD="$PW" AMQP_VHOST="$VHOST" CATALOG_URLS="$c_urls" SHUTDOWN_DRAIN_SECONDS="$DRAIN"
            STARTUP_TIMEOUT_SECONDS=60)
contract_names=(PORT SERVICE_NAME DB_URL DB_USER DB_PASSWORD REDIS_HOST REDIS_PORT REDIS_PASSWORD QUEUE_KIND
                AMQP_ADDRESSES AMQP_USER AMQP_PASSWORD AMQP_VHOST CATALOG_URLS SHUTDOWN_DRAIN_SECONDS
                STARTUP_TIMEOUT_SECONDS)

start_java() { # start_java NAME
  local name=$1 app=${1%-*} java=$JAVA
  [[ $name == *-2 ]] && java=$JAVA_B
  local envs=(PATH="$PATH" PORT="${PORT[$name]}" SERVICE_NAME="$name" "${common_env[@]}")
  if [[ $name == *-2 && -n "$JAVA_B_IMAGE" ]]; then
    local dflags=()
    for n in "${contract_names[@]}"; do dflags+=(-e "$n"); done
    env -i "${envs[@]}" docker run --rm --network host --name "${CONTAINER_PREFIX}${name}-$$" \
      -v "$dist/$app.jar:/opt/app/app.jar:ro" "${dflags[@]}" "$JAVA_B_IMAGE" \
      java -jar /opt/app/app.jar >>"$tmp/logs/$name.log" 2>&1 &
  else
    env -i "${envs[@]}" "$java" -jar "$dist/$app.jar" >>"$tmp/logs/$name.log" 2>&1 &
  fi
  PID[$name]=$!
}
healthy() { [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/health") == 200 ]]; }

say "starting catalog-1/2, orders-1/2, billing-1 (JAVA=$JAVA, JAVA_B=${JAVA_B_IMAGE:-$JAVA_B}), front"
for name in catalog-1 catalog-2 orders-1 orders-2 billing-1; do start_java "$name"; done
env -i PATH="$PATH" PORT="$FRONTPORT" SERVICE_NAME=front-1 CATALOG_URLS="$c_urls" ORDERS_URLS="$o_urls" \
  BILLING_URLS="http://127.0.0.1:${PORT[billing-1]}" UPSTREAM_TIMEOUT_MS=10000 \
  node "$tmp/app/front/server.js" >"$tmp/logs/front-1.log" 2>&1 &
PID[front-1]=$!
for name in catalog-1 catalog-2 orders-1 orders-2 billing-1; do
  wait_for 120 "$name /health" healthy "${PORT[$name]}"
done
wait_for 20 "front /health" healthy "$FRONTPORT"

# ------------------------------------------------------------------ client loop
cat >"$tmp/client.js" <<'EOF'
'use strict';
// Calls the front until the stop file exists, then checks that every order got its invoice.
const fs = require('fs');
const [base, stopFile, outFile] = process.argv.slice(2);
const res = { requests: 0, failures: [], orders: [] };
async function call(method, path, body) {
  res.requests += 1;
  try {
    const r = await fetch(base + path, body ? { method, headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body) } : { method });
    const text = await r.text();
    return { status: r.status, text };
  } catch (err) {
    return { status: 0, text: String(err.cause || err) };
  }
}
async function worker() {
  while (!fs.existsSync(stopFile)) {
    let r = await call('GET', '/api/products');
    if (r.status !== 200) res.failures.push(`GET /api/products -> ${r.status} ${r.text}`);
    r = await call('POST', '/api/orders', { product_id: 1 + (res.requests % 3), quantity: 1 });
    if (r.status !== 201) { res.failures.push(`POST /api/orders -> ${r.status} ${r.text}`); continue; }
    const id = JSON.parse(r.text).id;
    res.orders.push(id);
    r = await call('GET', `/api/orders/${id}`);
    if (r.status !== 200) res.failures.push(`GET /api/orders/${id} -> ${r.status} ${r.text}`);
  }
}
(async () => {
  await Promise.all([worker(), worker(), worker()]);
  // billing is asynchronous: wait up to 60 s for every invoice
  const end = Date.now() + 60000;
  let missing = res.orders.slice();
  while (missing.length && Date.now() < end) {
    const still = [];
    for (const id of missing) {
      const r = await call('GET', `/api/invoices/${id}`);
      if (r.status !== 200) still.push(id);
    }
    missing = still;
    if (missing.length) await new Promise((r) => setTimeout(r, 1000));
  }
  res.unbilled = missing;
  fs.writeFileSync(outFile, JSON.stringify(res));
})();
EOF
say "client loop started; replacing every Java instance one after the other"
node "$tmp/client.js" "http://127.0.0.1:$FRONTPORT" "$tmp/stop" "$tmp/client.json" &
client=$!
sleep 3

replace() { # replace NAME: SIGTERM, check exit 0 within 15 s, start again, wait until healthy
  local name=$1 t0 rc dt
  t0=$(date +%s%N)
  kill -TERM "${PID[$name]}"
  rc=0; wait "${PID[$name]}" || rc=$?
  dt=$(( ($(date +%s%N) - t0) / 1000000 ))
  say "$name stopped: exit $rc after $dt ms"
  (( rc == 0 )) || die "$name exited with status $rc after SIGTERM (log: $tmp/logs/$name.log)"
  (( dt < 15000 )) || die "$name took $dt ms to stop"
  start_java "$name"
  wait_for 120 "$name /health after restart" healthy "${PORT[$name]}"
  say "$name ready again"
}
for name in catalog-1 orders-1 billing-1 catalog-2 orders-2; do
  replace "$name"
  sleep 2
done
touch "$tmp/stop"
wait "$client"

# ------------------------------------------------------------------ verdict
node -e '
const r = require(process.argv[1]);
const dup = r.orders.length - new Set(r.orders).size;
console.error(`[rolling] ${r.requests} requests, ${r.orders.length} orders, ${r.failures.length} failed, ` +
  `${dup} duplicate ids, ${r.unbilled.length} unbilled`);
for (const f of r.failures.slice(0, 20)) console.error(`[rolling]   ${f}`);
process.exit(r.failures.length || dup || r.unbilled.length || r.orders.length < 20 ? 1 : 0);
' "$tmp/client.json" || die "client saw failures (logs: KEEP=1 to keep $tmp)"

fail=0
for name in catalog-1 catalog-2 orders-1 orders-2 billing-1 front-1; do
  log="$tmp/logs/$name.log"
  grep -q 'wiring: ' "$log" || { say "$name: no wiring line"; fail=1; }
  for secret in "$PW" "p@ss" "w/o:rd" "p%40ss"; do
    if grep -qF -- "$secret" "$log"; then say "$name: '$secret' appears in its log"; fail=1; fi
  done
done
grep -h 'wiring: ' "$tmp/logs/orders-1.log" | head -1 | sed 's/^/[rolling] /' >&2
for name in catalog-1 catalog-2 orders-1 orders-2 billing-1; do
  say "$name ran on $(grep -ho 'java=[^;]*' "$tmp/logs/$name.log" | sort -u | tr '\n' ' ')"
done
(( fail == 0 )) || die "log check failed"
say "PASS: zero failed requests, every order billed once, clean stops, no password in the logs"
