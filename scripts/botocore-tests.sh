#!/usr/bin/env bash
# Second-client conformance: builds the emulator and runs the botocore suite
# (emulator/tests/botocore) against it, in a virtualenv at .venv with the pinned versions of
# emulator/tests/botocore/requirements.txt. Extra arguments go to pytest.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

requirements=emulator/tests/botocore/requirements.txt
venv=.venv

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi

# Install only when a pinned version is missing, so a warm run starts at once.
if ! "$venv/bin/python" - "$requirements" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version

missing = []
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, _, pinned = line.partition("==")
    try:
        installed = version(name.strip())
    except PackageNotFoundError:
        installed = None
    if installed != pinned.strip():
        missing.append(line)
sys.exit(1 if missing else 0)
PY
then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
fi

cargo build --locked -p orgsec-emulator --bin orgsec-emulator
export ORGSEC_EMULATOR_BIN="${CARGO_TARGET_DIR:-target}/debug/orgsec-emulator"

exec "$venv/bin/python" -m pytest -q emulator/tests/botocore "$@"
