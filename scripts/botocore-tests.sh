#!/usr/bin/env bash
# Second-client conformance: builds the emulator and runs the botocore suite
# (emulator/tests/botocore) against it, in a virtualenv at .venv with the pinned versions of
# emulator/tests/botocore/requirements.txt. Extra arguments go to pytest.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/venv.sh emulator/tests/botocore/requirements.txt

cargo build --locked -p orgsec-emulator --bin orgsec-emulator
export ORGSEC_EMULATOR_BIN="${CARGO_TARGET_DIR:-target}/debug/orgsec-emulator"

exec .venv/bin/python -m pytest -q emulator/tests/botocore "$@"
