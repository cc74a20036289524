#!/usr/bin/env bash
# System libraries for rendering the DeepMind Control Suite on a machine without a GPU (Mesa's
# software OpenGL): EGL first, OSMesa as the fallback. Installs them when run as root with apt-get,
# otherwise prints the exact command to run.
set -euo pipefail
PKGS=(libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6)
missing=()
if command -v dpkg >/dev/null 2>&1; then
  for p in "${PKGS[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
else
  echo "tfgap: no dpkg here; make sure these (or your distribution's equivalents) are installed: ${PKGS[*]}"
  exit 0
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "tfgap: installing rendering libraries: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "tfgap: DMC pixel rendering needs system packages that are missing: ${missing[*]}"
  echo "       run: sudo apt-get install -y ${missing[*]}"
fi
