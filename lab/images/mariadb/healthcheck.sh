#!/usr/bin/env bash
# healthcheck.sh [OPTIONS] --TEST...: the official mariadb image's healthcheck interface.
# Tests run in the order given; the first that fails makes the exit status 1. Without --connect
# (or --no-connect), a --connect test runs last, as in the official image.
#   --connect                    the server accepts TCP connections (an "access denied" answer counts:
#                                the server is up and networked; during initialisation it is not)
#   --innodb_initialized         InnoDB has finished starting (crash recovery included)
#   --innodb_buffer_pool_loaded  the buffer pool dump was loaded at start-up
#   --mariadbupgrade             no mariadb-upgrade is running on the data directory
# Options: --su-mysql | --su=USER (run as that user), --datadir=DIR, --no-defaults,
#   --defaults-file=F, --defaults-extra-file=F, --defaults-group-suffix=S, --no-connect.
# The credentials come from DATADIR/.my-healthcheck.cnf (written by the entrypoint) when it exists.
# Galera and replication tests are not part of the lab image: asking for one is an error.
set -eo pipefail

datadir=/var/lib/mysql
defaults=()
no_defaults=
connect_done=

client() {
  local opts=()
  if [ -n "$no_defaults" ]; then
    opts+=(--no-defaults)
  else
    opts+=("${defaults[@]}")
    if [ ${#defaults[@]} -eq 0 ] && [ -f "$datadir/.my-healthcheck.cnf" ]; then
      opts+=(--defaults-extra-file="$datadir/.my-healthcheck.cnf")
    fi
  fi
  mariadb "${opts[@]}" --skip-ssl --skip-ssl-verify-server-cert --batch --skip-column-names "$@"
}

check_connect() {
  connect_done=1
  local answer
  answer="$(client --protocol=tcp --host=localhost -e 'SELECT @@skip_networking' 2>&1)" || true
  case "$answer" in
    0) return 0 ;;
    # Refused credentials, expired or locked accounts, limits: a server answered over TCP.
    "ERROR 1045 "*|"ERROR 1820 "*|"ERROR 4151 "*|"ERROR 1226 "*|"ERROR 1"[0-9][0-9][0-9]" (28000)"*) return 0 ;;
    *) return 1 ;;
  esac
}

check_innodb_initialized() {
  [ "$(client --protocol=socket -e "SELECT 1 FROM information_schema.ENGINES WHERE engine = 'innodb' AND support IN ('YES', 'DEFAULT', 'ENABLED')")" = 1 ]
}

check_innodb_buffer_pool_loaded() {
  [[ "$(client --protocol=socket -e "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'Innodb_buffer_pool_load_status'")" == *"load completed"* ]]
}

check_mariadbupgrade() {
  local info="$datadir/mariadb_upgrade_info"
  [ -r "$info" ] || return 0
  flock --exclusive --nonblock "$info" true
}

run() {
  if ! "check_$1"; then
    echo "healthcheck $1 failed" >&2
    exit 1
  fi
}

[ $# -gt 0 ] || { echo "healthcheck.sh: at least one test is required (e.g. --connect --innodb_initialized)" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --su-mysql) shift; exec gosu mysql "${BASH_SOURCE[0]}" "$@" ;;
    --su=*) user="${1#*=}"; shift; exec gosu "$user" "${BASH_SOURCE[0]}" "$@" ;;
    --su) user="$2"; shift 2; exec gosu "$user" "${BASH_SOURCE[0]}" "$@" ;;
    --datadir=*) datadir="${1#*=}" ;;
    --datadir) datadir="$2"; shift ;;
    --no-defaults) no_defaults=1; defaults=() ;;
    --defaults-file=*|--defaults-extra-file=*|--defaults-group-suffix=*) no_defaults=; defaults+=("$1") ;;
    --no-connect) connect_done=1 ;;
    --connect|--innodb_initialized|--innodb_buffer_pool_loaded|--mariadbupgrade) run "${1#--}" ;;
    --galera_online|--galera_ready|--replication*)
      echo "healthcheck.sh: $1 is not supported by the lab's mariadb image (no Galera, no replication)" >&2
      exit 1 ;;
    *) echo "healthcheck.sh: unknown option or test '$1'" >&2; exit 1 ;;
  esac
  shift
done
if [ -z "$connect_done" ]; then
  run connect
fi
