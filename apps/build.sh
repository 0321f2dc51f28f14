#!/usr/bin/env bash
# Builds the reference stack's applications and writes the deployable artifacts to one directory:
#   catalog.jar orders.jar billing.jar   runnable fat jars (Java 8 bytecode, `java -jar X.jar`)
#   front.tar.gz                         front/ with server.js, upstream.js and its production node_modules
#   SHA256SUMS                           sha256sum format, for the four files above
#
# Usage: apps/build.sh [OUTPUT_DIR]        (default: apps/dist)
# Env:   SKIP_TESTS=1   skip the unit tests (Maven Surefire, node --test)
#        MVN_ARGS=...   extra Maven arguments (e.g. "-o" to build offline from ~/.m2)
# Needs: JDK 8+ (17 is fine: the code is compiled with --release 8), Maven 3.6+, Node 18+ with npm.
#
# Artifacts are reproducible (fixed timestamps, sorted archive entries): rebuilding unchanged
# sources gives the same checksums, and unchanged files in OUTPUT_DIR are not rewritten.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dist="${1:-$here/dist}"
mkdir -p "$dist"
dist="$(cd "$dist" && pwd)"

for tool in java mvn node npm tar gzip sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build.sh: '$tool' is required but not found" >&2; exit 1; }
done

log() { printf '[build] %s\n' "$*" >&2; }

# One build at a time per checkout: Maven builds in the source tree (java/*/target) and fills ~/.m2, which
# Maven 3.8 does not share safely between two runs. Two labs building at once (two e2e files, or two
# operators) otherwise copy a jar another run is still writing.
command -v flock >/dev/null 2>&1 || { echo "build.sh: 'flock' (util-linux) is required but not found" >&2; exit 1; }
exec 9>"$here/.build.lock"
if ! flock -n 9; then
  log "waiting for another build of this checkout to finish"
  flock 9
fi

# Copies $1 to $2 only when the content differs (keeps mtimes stable for idempotent deploys).
install_if_changed() {
  if cmp -s "$1" "$2"; then
    log "unchanged $(basename "$2")"
  else
    cp "$1" "$2.tmp"
    mv -f "$2.tmp" "$2"
    log "wrote $(basename "$2")"
  fi
}

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT

# ---------------------------------------------------------------- Java services
log "java: mvn package (catalog, orders, billing)"
mvn_flags=(-q -B -Dstyle.color=never -f "$here/java/pom.xml")
if [[ -n "${SKIP_TESTS:-}" ]]; then mvn_flags+=(-DskipTests); fi
# shellcheck disable=SC2086
# (Debian's Maven prints stray ANSI resets even with -q -B: drop them.)
mvn "${mvn_flags[@]}" ${MVN_ARGS:-} package 2>&1 | { sed -e $'s/\x1b\\[0m//g' | grep -v '^$' || true; } >&2
for svc in catalog orders billing; do
  install_if_changed "$here/java/$svc/target/$svc.jar" "$dist/$svc.jar"
done

# ---------------------------------------------------------------- Node front
log "front: npm ci --omit=dev"
mkdir -p "$stage/front"
cp -R "$here/front/server.js" "$here/front/upstream.js" "$here/front/package.json" "$here/front/package-lock.json" \
      "$here/front/public" "$stage/front/"
(
  cd "$stage/front"
  npm ci --omit=dev --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null
  if [[ -z "${SKIP_TESTS:-}" ]]; then
    log "front: node --test"
    cp -R "$here/front/test" ./test
    node --test test/*.test.js >"$stage/front-test.log" 2>&1 || { cat "$stage/front-test.log" >&2; exit 1; }
    rm -rf ./test
  fi
)
tar --sort=name --mtime='2024-01-01 00:00:00Z' --owner=0 --group=0 --numeric-owner \
    --mode='u+rwX,go+rX,go-w' -C "$stage" -cf - front | gzip -9 -n >"$stage/front.tar.gz"
install_if_changed "$stage/front.tar.gz" "$dist/front.tar.gz"

# ---------------------------------------------------------------- checksums
(
  cd "$dist"
  sha256sum catalog.jar orders.jar billing.jar front.tar.gz >"$stage/SHA256SUMS"
  # Lines of other artifacts published beside these (the lab's Kafka tarball) stay.
  if [[ -f SHA256SUMS ]]; then
    awk '$2 !~ /^\*?(catalog\.jar|orders\.jar|billing\.jar|front\.tar\.gz)$/' SHA256SUMS >>"$stage/SHA256SUMS"
  fi
)
install_if_changed "$stage/SHA256SUMS" "$dist/SHA256SUMS"
log "artifacts in $dist:"
(cd "$dist" && ls -l catalog.jar orders.jar billing.jar front.tar.gz SHA256SUMS >&2)
