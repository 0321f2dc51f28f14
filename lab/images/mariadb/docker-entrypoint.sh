#!/usr/bin/env bash
# Entrypoint of the lab's mariadb image, with the official mariadb image's interface:
#   MARIADB_ROOT_PASSWORD(_FILE) | MARIADB_ALLOW_EMPTY_ROOT_PASSWORD | MARIADB_RANDOM_ROOT_PASSWORD
#                                   one is required when the data directory is initialised
#   MARIADB_ROOT_HOST (%)           where root may also connect from ("localhost": nowhere else)
#   MARIADB_DATABASE                database created on first start
#   MARIADB_USER, MARIADB_PASSWORD(_FILE)   user created on first start, all privileges on MARIADB_DATABASE
#   MARIADB_INITDB_SKIP_TZINFO      do not load the time zone tables
#   /docker-entrypoint-initdb.d/    *.sh (run if executable, else sourced), *.sql, *.sql.gz, *.sql.xz,
#                                   *.sql.zst, run once (as root, in MARIADB_DATABASE) after initialisation
# Each MARIADB_* variable also answers to its MYSQL_* name and accepts VAR_FILE. A healthcheck
# account (USAGE only) is created for /usr/local/bin/healthcheck.sh; its credentials are kept in
# DATADIR/.my-healthcheck.cnf. The server runs as the mysql user.
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

# maria_env NAME [DEFAULT]: MARIADB_NAME, falling back to MYSQL_NAME (each with its _FILE form).
maria_env() {
  file_env "MYSQL_$1" "${2:-}"
  file_env "MARIADB_$1" "$(eval printf '%s' "\"\${MYSQL_$1}\"")"
}

wants_setup() {
  case "$1" in mariadbd|mysqld) ;; *) return 1 ;; esac
  shift
  local arg
  for arg; do
    case "$arg" in -'?'|--help|--print-defaults|-V|--version) return 1 ;; esac
  done
  return 0
}

# server_option NAME SERVER-COMMAND...: the value the server would use (configuration files included).
server_option() {
  local name="$1"
  shift
  # The values table follows the "Variables (--variable-name=value)" heading; its rows start at column 0.
  "$@" --verbose --help 2>/dev/null \
    | awk -v key="$name" '/^Variables / { table = 1 } table && /^[^ ]/ && $1 == key { $1 = ""; sub(/^ +/, ""); value = $0 } END { print value }'
}

# sql_string TEXT: TEXT as the inside of a single-quoted SQL string literal.
sql_string() {
  local value="$1"
  value="${value//\\/\\\\}"
  printf '%s' "${value//\'/\\\'}"
}

# sql_name TEXT: TEXT as the inside of a backquoted SQL identifier.
sql_name() {
  printf '%s' "${1//\`/\`\`}"
}

random_password() {
  head -c 24 /dev/urandom | base64 | tr -d '/+=\n'
}

load_env() {
  maria_env ROOT_PASSWORD
  maria_env ROOT_HOST '%'
  maria_env DATABASE
  maria_env USER
  maria_env PASSWORD
  : "${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:=${MYSQL_ALLOW_EMPTY_PASSWORD:-}}"
  : "${MARIADB_RANDOM_ROOT_PASSWORD:=${MYSQL_RANDOM_ROOT_PASSWORD:-}}"
  : "${MARIADB_INITDB_SKIP_TZINFO:=${MYSQL_INITDB_SKIP_TZINFO:-}}"
  export MARIADB_ALLOW_EMPTY_ROOT_PASSWORD MARIADB_RANDOM_ROOT_PASSWORD MARIADB_INITDB_SKIP_TZINFO
}

check_env() {
  if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ] \
    && [ -z "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
    die "the database is not initialised and no root password option is set. Set one of
  MARIADB_ROOT_PASSWORD (or MARIADB_ROOT_PASSWORD_FILE), MARIADB_ALLOW_EMPTY_ROOT_PASSWORD or
  MARIADB_RANDOM_ROOT_PASSWORD."
  fi
  if [ -n "$MARIADB_USER" ] && [ "$MARIADB_USER" = root ]; then
    die "MARIADB_USER=root: root exists already; set MARIADB_ROOT_PASSWORD for it instead"
  fi
  if [ -n "$MARIADB_USER" ] && [ -z "$MARIADB_PASSWORD" ]; then
    die "MARIADB_USER is set but MARIADB_PASSWORD (or MARIADB_PASSWORD_FILE) is not"
  fi
}

client() {
  mariadb --no-defaults --protocol=socket --socket="$SOCKET" --user=root --skip-ssl "$@"
}

start_local_server() {
  # No network while the database is set up: clients (and healthcheck.sh --connect) see the port
  # only when it is ready.
  "$@" --skip-networking --default-time-zone=SYSTEM --socket="$SOCKET" --wsrep_on=OFF \
    --expire-logs-days=0 --skip-slave-start --loose-innodb_buffer_pool_load_at_startup=0 \
    --skip-ssl &
  SERVER_PID=$!
  local _
  for _ in $(seq 60); do
    if client -e 'SELECT 1' >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || die "the server stopped during initialisation (see above)"
    sleep 1
  done
  die "the server did not answer on $SOCKET within 60 s"
}

stop_local_server() {
  kill "$SERVER_PID"
  wait "$SERVER_PID"
}

setup_sql() {
  local root_password healthcheck_password="$1" host
  root_password="$(sql_string "$MARIADB_ROOT_PASSWORD")"
  echo "SET @@SESSION.SQL_LOG_BIN=0;"
  # Only the accounts made here: no anonymous users, no root under other host names.
  echo "DROP USER IF EXISTS root@'127.0.0.1', root@'::1';"
  # shellcheck disable=SC2028 # the backslashes are SQL's, meant literally
  echo "EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS root@\\'', @@hostname, '\\'');"
  # shellcheck disable=SC2028
  echo "EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS \\'\\'@\\'', @@hostname, '\\'');"
  echo "DROP USER IF EXISTS ''@'localhost';"
  echo "SET PASSWORD FOR 'root'@'localhost' = PASSWORD('${root_password}');"
  if [ "$MARIADB_ROOT_HOST" != localhost ]; then
    local root_host
    root_host="$(sql_string "$MARIADB_ROOT_HOST")"
    echo "CREATE USER 'root'@'${root_host}' IDENTIFIED BY '${root_password}';"
    echo "GRANT ALL ON *.* TO 'root'@'${root_host}' WITH GRANT OPTION;"
    echo "GRANT PROXY ON ''@'%' TO 'root'@'${root_host}' WITH GRANT OPTION;"
  fi
  for host in 127.0.0.1 ::1 localhost; do
    echo "CREATE USER healthcheck@'${host}' IDENTIFIED BY '${healthcheck_password}';"
    echo "GRANT USAGE ON *.* TO healthcheck@'${host}';"
  done
  if [ -n "$MARIADB_DATABASE" ]; then
    echo "CREATE DATABASE IF NOT EXISTS \`$(sql_name "$MARIADB_DATABASE")\`;"
  fi
  if [ -n "$MARIADB_USER" ]; then
    echo "CREATE USER '$(sql_string "$MARIADB_USER")'@'%' IDENTIFIED BY '$(sql_string "$MARIADB_PASSWORD")';"
    if [ -n "$MARIADB_DATABASE" ]; then
      echo "GRANT ALL ON \`$(sql_name "$MARIADB_DATABASE")\`.* TO '$(sql_string "$MARIADB_USER")'@'%';"
    fi
  fi
  echo "FLUSH PRIVILEGES;"
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
      *.sql) note "running $file"; init_sql < "$file" ;;
      *.sql.gz) note "running $file"; gunzip -c "$file" | init_sql ;;
      *.sql.xz) note "running $file"; xzcat "$file" | init_sql ;;
      *.sql.zst) note "running $file"; zstd -dc "$file" | init_sql ;;
      *) note "ignoring $file" ;;
    esac
  done
}

init_sql() {
  MYSQL_PWD="$MARIADB_ROOT_PASSWORD" client ${MARIADB_DATABASE:+--database="$MARIADB_DATABASE"}
}

initialise() {
  check_env
  note "initialising database files in $DATADIR"
  mariadb-install-db --datadir="$DATADIR" --rpm --auth-root-authentication-method=normal \
    --skip-test-db --default-time-zone=SYSTEM --skip-log-bin --expire-logs-days=0 \
    --loose-innodb_buffer_pool_load_at_startup=0 --loose-innodb_buffer_pool_dump_at_shutdown=0 >/dev/null
  start_local_server "$@"
  if [ -z "$MARIADB_INITDB_SKIP_TZINFO" ]; then
    mariadb-tzinfo-to-sql --skip-write-binlog /usr/share/zoneinfo 2>/dev/null | client mysql
  fi
  if [ -n "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
    MARIADB_ROOT_PASSWORD="$(random_password)"
    export MARIADB_ROOT_PASSWORD
    note "GENERATED ROOT PASSWORD: $MARIADB_ROOT_PASSWORD"
  fi
  local healthcheck_password
  healthcheck_password="$(random_password)"
  setup_sql "$healthcheck_password" | client
  # Read by healthcheck.sh (and only by the server's account).
  (umask 077 && printf '[mariadb-client]\nport=%s\nsocket=%s\nuser=healthcheck\npassword=%s\n' \
    "$PORT" "$SOCKET" "$healthcheck_password" > "$DATADIR/.my-healthcheck.cnf")
  run_init_files
  stop_local_server
  note "MariaDB init process done; ready for start up."
}

main() {
  if [ "${1:0:1}" = - ]; then
    set -- mariadbd "$@"
  fi
  if wants_setup "$@"; then
    DATADIR="$(server_option datadir "$@")"
    DATADIR="${DATADIR%/}"
    SOCKET="$(server_option socket "$@")"
    PORT="$(server_option port "$@")"
    if [ "$(id -u)" = 0 ]; then
      mkdir -p "$DATADIR" /run/mysqld
      find "$DATADIR" /run/mysqld \! -user mysql -exec chown mysql: '{}' +
      exec gosu mysql "${BASH_SOURCE[0]}" "$@"
    fi
    if [ ! -d "$DATADIR/mysql" ]; then
      load_env
      initialise "$@"
    fi
  fi
  exec "$@"
}

main "$@"
