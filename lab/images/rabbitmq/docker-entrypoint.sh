#!/usr/bin/env bash
# Entrypoint of the lab's rabbitmq image, with the official rabbitmq image's conventions: rabbitmq*
# commands run as the rabbitmq user (the data directory is handed to it first); everything else
# runs as given. RABBITMQ_DEFAULT_USER, RABBITMQ_DEFAULT_PASS and RABBITMQ_DEFAULT_VHOST are read by
# RabbitMQ itself when the node first starts; later settings belong in /etc/rabbitmq/conf.d/*.conf.
set -euo pipefail

if [[ "$1" == rabbitmq* ]] && [ "$(id -u)" = 0 ]; then
  if [ "$1" = rabbitmq-server ]; then
    # The Erlang cookie is made here, before anything else can: a `docker exec rabbitmqctl ...` (as
    # root, HOME=/var/lib/rabbitmq) racing the first start would otherwise create one the server
    # cannot read.
    if [ ! -e /var/lib/rabbitmq/.erlang.cookie ]; then
      (umask 077 && head -c 30 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' > /var/lib/rabbitmq/.erlang.cookie)
      chmod 0400 /var/lib/rabbitmq/.erlang.cookie
    fi
    find /var/lib/rabbitmq \! -user rabbitmq -exec chown rabbitmq '{}' +
  fi
  exec gosu rabbitmq "${BASH_SOURCE[0]}" "$@"
fi

# The official image refuses these (removed from RabbitMQ's container conventions): so does this one.
for old in RABBITMQ_DEFAULT_PASS_FILE RABBITMQ_DEFAULT_USER_FILE RABBITMQ_VM_MEMORY_HIGH_WATERMARK \
           RABBITMQ_SSL_CERTFILE RABBITMQ_SSL_KEYFILE RABBITMQ_SSL_CACERTFILE \
           RABBITMQ_MANAGEMENT_SSL_CERTFILE RABBITMQ_MANAGEMENT_SSL_KEYFILE RABBITMQ_MANAGEMENT_SSL_CACERTFILE; do
  if [ -n "${!old:-}" ]; then
    echo "error: $old is no longer supported; use a file in /etc/rabbitmq/conf.d/ instead" >&2
    exit 1
  fi
done

# A fully qualified host name needs long Erlang node names.
if [ -z "${RABBITMQ_USE_LONGNAME:-}" ] && [ "$(hostname)" != "$(hostname -s)" ]; then
  export RABBITMQ_USE_LONGNAME=true
fi

exec "$@"
