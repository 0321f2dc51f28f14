#!/usr/bin/env bash
# Entrypoint of the lab's redis image, with the official redis image's conventions:
#   docker run IMAGE                                   redis-server with built-in defaults
#   docker run IMAGE /usr/local/etc/redis/redis.conf   a config file (first argument ending in .conf)
#   docker run IMAGE --maxmemory 128mb                 options (first argument starting with -)
#   docker run IMAGE redis-cli ...                     anything else runs as given
# redis-server runs as the redis user in /data, with umask 0077. Passwords belong in the config
# file (requirepass), never in arguments: arguments show in `ps` and in the container's settings.
#
# Protected mode: the official image compiles Redis with protected mode off (a container's port is
# reachable only where it is published). Debian's build defaults to on, so it is turned off here,
# unless the arguments or the config file (without its includes) set protected-mode themselves.
set -eo pipefail

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi

if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec gosu redis "${BASH_SOURCE[0]}" "$@"
fi

if [ "$1" = redis-server ]; then
  sets_protected_mode=
  for arg in "${@:2}"; do
    if [ "$arg" = --protected-mode ]; then
      sets_protected_mode=1
    fi
  done
  if [ "${2%.conf}" != "${2:-}" ] && [ -r "$2" ] && grep -Eqi '^[[:space:]]*protected-mode[[:space:]]' "$2"; then
    sets_protected_mode=1
  fi
  if [ -z "$sets_protected_mode" ]; then
    set -- "$@" --protected-mode no
  fi
fi

if [ "$(umask)" = 0022 ]; then
  umask 0077
fi

exec "$@"
