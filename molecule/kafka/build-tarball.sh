#!/usr/bin/env bash
# Compatibility shim: the builder moved to lab/build-kafka-tarball. Kept only until pytoolkit/images.py
# calls that script; delete it then. Old interface, same files as before:
#   molecule/kafka/build-tarball.sh [VERSION] [OUTDIR]  ->  OUTDIR/VERSION/kafka_2.13-VERSION.tgz and its .sha512
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
outdir="${2:-${XDG_CACHE_HOME:-$HOME/.cache}/toolkit/kafka}/${1:-3.9.1}"
args=("${outdir}")
[[ -z "${1:-}" ]] || args=(--version "$1" "${outdir}")
tarball="$("${here}/../../lab/build-kafka-tarball" "${args[@]}")"
(cd "$(dirname "${tarball}")" && sha512sum "$(basename "${tarball}")" > "$(basename "${tarball}").sha512")
echo "${tarball}"
