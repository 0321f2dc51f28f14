#!/bin/sh
# Entrypoint of the lab's node image, with the official node image's convention: an option
# (`-e ...`, `--version`) or anything that is not a command (`server.js`) is given to node.
set -e
if [ "${1#-}" != "$1" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
