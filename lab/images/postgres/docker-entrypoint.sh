#!/usr/bin/env bash
# Entrypoint of the lab's postgres image, with the official postgres image's interface:
#   POSTGRES_PASSWORD / POSTGRES_PASSWORD_FILE   superuser password (required unless
#                                                POSTGRES_HOST_AUTH_METHOD=trust)
#   POSTGRES_USER (postgres), POSTGRES_DB (= user), POSTGRES_INITDB_ARGS, POSTGRES_INITDB_WALDIR,
#   POSTGRES_HOST_AUTH_METHOD (scram-sha-256: the pg_hba.conf method for network clients)
#   PGDATA                                       initialised when it holds no cluster yet
#   /docker-entrypoint-initdb.d/                 *.sh (run if executable, else sourced), *.sql,
#                                                *.sql.gz, *.sql.xz, *.sql.zst, run once after initdb
# Every variable except PGDATA also accepts VAR_FILE. Runs the server as the postgres user.
set -Eeo pipefail

note() { printf '%s [entrypoint] %s\n' "$(date --rfc-3339=seconds)" "$*"; }
die() { printf '%s [entrypoint] error: %s\n' "$(date --rfc-3339=seconds)" "$*" >&2; exit 1; }

# file_env VAR [DEFAULT]: export VAR from $VAR, or from the file $VAR_FILE names, or DEFAULT.
file_env() {
  local var="$1" file_var="${1}_FILE" value="${2:-}"
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    die "both $var and $file_var are set; they exclude each other"
  fi
  if [ -n "${!var:-}" ]; then
    value="${!var}"
  elif [ -n "${!file_var:-}" ]; then
    [ -r "${!file_var}" ] || die "$file_var names ${!file_var}, which cannot be read"
    value="$(< "${!file_var}")"
  fi
  export "$var"="$value"
  unset "$file_var"
}

# Only a server start sets things up: `postgres --version`, `bash`, `psql ...` are run as given.
wants_setup() {
  [ "$1" = postgres ] || return 1
  shift
  local arg
  for arg; do
    case "$arg" in -'?'|--help|--describe-config|-V|--version) return 1 ;; esac
  done
  return 0
}

load_env() {
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "$POSTGRES_USER"
  file_env POSTGRES_INITDB_ARGS
  : "${POSTGRES_HOST_AUTH_METHOD:=}"
}

make_dirs() {
  local user_id
  user_id="$(id -u)"
  mkdir -p "$PGDATA"
  chmod 00700 "$PGDATA" || :
  mkdir -p /var/run/postgresql
  chmod 03775 /var/run/postgresql || :
  if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
    mkdir -p "$POSTGRES_INITDB_WALDIR"
    chmod 00700 "$POSTGRES_INITDB_WALDIR" || :
  fi
  if [ "$user_id" = 0 ]; then
    find "$PGDATA" /var/run/postgresql ${POSTGRES_INITDB_WALDIR:+"$POSTGRES_INITDB_WALDIR"} \
      \! -user postgres -exec chown postgres '{}' +
  fi
}

check_password() {
  if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
    die "the database is not initialised and no superuser password is set. Set POSTGRES_PASSWORD (or
  POSTGRES_PASSWORD_FILE) to a non-empty value, or POSTGRES_HOST_AUTH_METHOD=trust to allow every
  connection without a password (not recommended)."
  fi
  if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
    note "warning: POSTGRES_HOST_AUTH_METHOD=trust lets anyone who reaches the port connect without a password"
  fi
}

run_initdb() {
  # initdb wants the current user in /etc/passwd: fake it with nss_wrapper for arbitrary --user ids.
  if ! getent passwd "$(id -u)" >/dev/null; then
    local wrapper
    wrapper="$(find /usr/lib -name libnss_wrapper.so -print -quit)"
    export NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP LD_PRELOAD="$wrapper"
    NSS_WRAPPER_PASSWD="$(mktemp)"
    NSS_WRAPPER_GROUP="$(mktemp)"
    printf 'postgres:x:%s:%s:PostgreSQL:%s:/bin/false\n' "$(id -u)" "$(id -g)" "$PGDATA" > "$NSS_WRAPPER_PASSWD"
    printf 'postgres:x:%s:\n' "$(id -g)" > "$NSS_WRAPPER_GROUP"
  fi
  local args=(--username="$POSTGRES_USER")
  if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
    args+=(--waldir "$POSTGRES_INITDB_WALDIR")
  fi
  # POSTGRES_INITDB_ARGS is a string of options, split like a shell would (as the official image does).
  # The password goes through a pipe, never a command line.
  eval 'initdb "${args[@]}" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"
  if [ -n "${LD_PRELOAD:-}" ]; then
    rm -f "$NSS_WRAPPER_PASSWD" "$NSS_WRAPPER_GROUP"
    unset LD_PRELOAD NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
  fi
}

# Network clients authenticate with POSTGRES_HOST_AUTH_METHOD (default: the server's
# password_encryption, scram-sha-256). Local socket connections inside the container keep initdb's
# default (trust), so `docker exec ... psql` and pg_isready work as with the official image.
allow_network_clients() {
  local method="$POSTGRES_HOST_AUTH_METHOD"
  if [ -z "$method" ]; then
    method="$(postgres -C password_encryption -D "$PGDATA")"
  fi
  printf '\nhost all all all %s\n' "$method" >> "$PGDATA/pg_hba.conf"
}

sql() {
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}

start_local_server() {
  # Unix socket only while the database is set up: clients see the port only when it is ready.
  PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start
}

stop_local_server() {
  PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -m fast -w stop
}

create_database() {
  [ "$POSTGRES_DB" != postgres ] || return 0
  local exists
  exists="$(sql --dbname postgres --tuples-only --no-align --set db="$POSTGRES_DB" \
    <<< "SELECT 1 FROM pg_database WHERE datname = :'db';")"
  if [ -z "$exists" ]; then
    sql --dbname postgres --set db="$POSTGRES_DB" <<< 'CREATE DATABASE :"db";'
  fi
}

run_init_files() {
  local file
  for file in /docker-entrypoint-initdb.d/*; do
    [ -e "$file" ] || continue
    case "$file" in
      *.sh)
        if [ -x "$file" ]; then
          note "running $file"; "$file"
        else
          note "sourcing $file"
          # shellcheck source=/dev/null
          . "$file"
        fi ;;
      *.sql) note "running $file"; sql --dbname "$POSTGRES_DB" -f "$file" ;;
      *.sql.gz) note "running $file"; gunzip -c "$file" | sql --dbname "$POSTGRES_DB" ;;
      *.sql.xz) note "running $file"; xzcat "$file" | sql --dbname "$POSTGRES_DB" ;;
      *.sql.zst) note "running $file"; zstd -dc "$file" | sql --dbname "$POSTGRES_DB" ;;
      *) note "ignoring $file" ;;
    esac
  done
}

main() {
  if [ "${1:0:1}" = - ]; then
    set -- postgres "$@"
  fi
  if wants_setup "$@"; then
    load_env
    make_dirs
    if [ "$(id -u)" = 0 ]; then
      exec gosu postgres "${BASH_SOURCE[0]}" "$@"
    fi
    if [ -s "$PGDATA/PG_VERSION" ]; then
      note "PostgreSQL database directory appears to contain a database; skipping initialisation"
    else
      check_password
      ls /docker-entrypoint-initdb.d/ >/dev/null  # fail early when the directory cannot be read
      run_initdb
      allow_network_clients
      # PGPASSWORD lets psql authenticate when POSTGRES_INITDB_ARGS asks for password auth locally too.
      export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
      start_local_server
      create_database
      run_init_files
      stop_local_server
      unset PGPASSWORD
      note "PostgreSQL init process complete; ready for start up."
    fi
  fi
  exec "$@"
}

main "$@"
