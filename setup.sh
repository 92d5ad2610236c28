#!/usr/bin/env bash
# One-step set-up on a fresh Debian/Ubuntu machine with Python 3.11:
#   system libraries (OpenCV's GUI, and for the tests a virtual X server, xdotool and Chromium),
#   then a virtualenv in .venv with cifarlab installed (editable) and its test tools.
# Needs root or sudo for the system packages; set CIFARLAB_SKIP_APT=1 to skip that step.
set -euo pipefail
cd "$(dirname "$0")"

SYSTEM_PACKAGES=(python3-venv libgl1 libglib2.0-0 xvfb xdotool x11-utils imagemagick fonts-dejavu-core chromium)

if [[ "${CIFARLAB_SKIP_APT:-0}" != 1 ]] && command -v apt-get >/dev/null; then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "setup: installing system packages: ${SYSTEM_PACKAGES[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${SYSTEM_PACKAGES[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
echo "setup: installing cifarlab into .venv"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
echo "setup: done; activate with: source .venv/bin/activate"
