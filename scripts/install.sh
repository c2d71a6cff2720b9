#!/bin/sh
# The one way moisson is installed: `make install` (CI) and the Dockerfile both run this.
#   scripts/install.sh VENV PIP_ARGS...
#   scripts/install.sh .venv -e '.[dev,embedded]'     # development and CI
#   scripts/install.sh /opt/venv .                     # the container image
# PYTHON picks the interpreter (default python3).
set -eu
if [ "$#" -lt 2 ]; then
    echo "usage: $0 VENV PIP_ARGS..." >&2
    exit 2
fi
venv=$1
shift
"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
# constraints.txt pins every dependency: the same versions in CI, at home and in the image.
"$venv/bin/pip" install -q -c "$(dirname "$0")/../constraints.txt" "$@"
