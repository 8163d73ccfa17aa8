"""The Terraform modules under modules/: each README's inputs and outputs tables match the
module's variables.tf and outputs.tf, and the account baseline applies to the new sandbox account
666666666666 from nothing, re-plans empty, and destroys."""
import json
import sys
from pathlib import Path

import pytest

from conftest import ROOT, aws_call

sys.path.insert(0, str(ROOT / "scripts"))
import module_tables  # noqa: E402

MODULES = sorted(p for p in (ROOT / "modules").iterdir() if (p / "variables.tf").exists())
SANDBOX = "666666666666"


def test_there_are_modules():
    assert [m.name for m in MODULES] >= ["account-baseline"], MODULES


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_readme_tables_match_the_module(module: Path):
    readme = (module / "README.md").read_text()
    assert readme == module_tables.rendered(module), (
        f"{module.name}/README.md's tables are out of date: run python3 scripts/module_tables.py modules/{module.name}"
    )


def baseline(url, extra=""):
    return f"""
terraform {{
  required_providers {{
    orgsec = {{ source = "orgsec/orgsec" }}
  }}
}}

provider "orgsec" {{
  region       = "us-east-1"
  endpoint_url = "{url}"
  assume_role {{
    role_arn = "arn:aws:iam::{SANDBOX}:role/OrganizationAccountAccessRole"
  }}
}}

module "baseline" {{
  source     = "{ROOT / 'modules' / 'account-baseline'}"
  account_id = "{SANDBOX}"

  standards = {{
    "aws-foundational-security-best-practices/v/1.0.0" = {{
      disabled_controls = {{ "IAM.6" = "Hardware MFA for root is held by the central team." }}
    }}
    "cis-aws-foundations-benchmark/v/3.0.0" = {{}}
  }}
  guardduty_features = {{ S3_DATA_EVENTS = "ENABLED" }}
  config_recorder = {{
    role_arn        = "arn:aws:iam::{SANDBOX}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"
    delivery_bucket = "config-history-{SANDBOX}"
  }}
  config_rules = {{
    "access-keys-rotated" = {{
      source_identifier = "ACCESS_KEYS_ROTATED"
      input_parameters  = jsonencode({{ maxAccessKeyAge = "90" }})
    }}
  }}
  analyzers = {{
    "external-access" = {{}}
    "unused-access"   = {{ type = "ACCOUNT_UNUSED_ACCESS", unused_access_age = 60 }}
  }}
{extra}
}}

output "baseline" {{
  value = module.baseline
}}
"""


def test_account_baseline_applies_to_the_sandbox_replans_empty_and_destroys(workspace):
    url = workspace.emulator_url
    status, out = aws_call(url, "s3", SANDBOX, "PUT", f"/config-history-{SANDBOX}")
    assert status == 200, out
    assert aws_call(url, "securityhub", SANDBOX, "GET", "/accounts")[0] == 401, "the sandbox starts bare"

    workspace.write(baseline(url))
    workspace.run("init", "-input=false", check=True)
    workspace.run("apply", "-auto-approve", "-input=false", check=True)
    out = json.loads(workspace.run("output", "-json", "baseline", check=True).stdout)
    assert out["hub_arn"] == f"arn:aws:securityhub:us-east-1:{SANDBOX}:hub/default"
    assert sorted(out["standard_subscriptions"]) == [
        "aws-foundational-security-best-practices/v/1.0.0",
        "cis-aws-foundations-benchmark/v/3.0.0",
    ]
    assert out["guardduty_detector_id"] and out["config_recorder_name"] == "default"
    assert sorted(out["analyzer_arns"]) == ["external-access", "unused-access"]
    assert out["binding_names"] == []

    # What the account now runs, as AWS reports it.
    status, body = aws_call(url, "securityhub", SANDBOX, "GET", "/standards/get")
    if status != 200:
        status, body = aws_call(url, "securityhub", SANDBOX, "POST", "/standards/get", b"{}")
    assert status == 200 and len(body["StandardsSubscriptions"]) == 2, body

    plan = workspace.run("plan", "-detailed-exitcode", "-input=false")
    assert plan.returncode == 0, "the plan after apply is empty:\n" + plan.stdout + plan.stderr

    workspace.run("destroy", "-auto-approve", "-input=false", check=True)
    assert aws_call(url, "securityhub", SANDBOX, "GET", "/accounts")[0] == 401, "Security Hub is off again"


def with_orchestrator(ws, orch, body, token):
    return f"""
terraform {{
  required_providers {{
    orgsec = {{ source = "orgsec/orgsec" }}
  }}
}}

provider "orgsec" {{
  region       = "us-east-1"
  endpoint_url = "{ws.emulator_url}"
  orchestrator {{
    endpoint = "{orch.url}"
    token    = "{token}"
  }}
}}
{body}
"""


def converge_and_destroy(ws, account):
    ws.run("init", "-input=false", check=True)
    ws.run("apply", "-auto-approve", "-input=false", check=True, account=account)
    plan = ws.run("plan", "-detailed-exitcode", "-input=false", account=account)
    assert plan.returncode == 0, "the plan after apply is empty:\n" + plan.stdout + plan.stderr
    out = {k: v["value"] for k, v in json.loads(ws.run("output", "-json", check=True, account=account).stdout).items()}
    ws.run("destroy", "-auto-approve", "-input=false", check=True, account=account)
    return out


def test_delegated_admin_enrolls_members_and_binds_every_playbook(workspace, orchestrator):
    body = f"""
module "admin" {{
  source = "{ROOT / 'modules' / 'delegated-admin'}"
  member_accounts = {{
    prod-web = {{ account_id = "333333333333" }}
    dev      = {{ account_id = "555555555555", services = ["securityhub"] }}
  }}
}}

output "member_status" {{
  value = module.admin.member_status
}}

output "binding_names" {{
  value = module.admin.binding_names
}}
"""
    workspace.write(with_orchestrator(workspace, orchestrator, body, orchestrator.ADMIN_TOKEN))
    out = converge_and_destroy(workspace, "222222222222")
    assert out["member_status"]["prod-web"] == {"securityhub": "Enabled", "guardduty": "Enabled"}, out
    assert out["member_status"]["dev"] == {"securityhub": "Enabled"}, out
    assert len(out["binding_names"]) == 8 and "default-isolate-instance" in out["binding_names"], out
    assert orchestrator.bindings() == {}, "destroy removed the bindings"


def test_app_team_extension_binds_within_the_teams_accounts_only(workspace, orchestrator):
    def body(accounts):
        return f"""
module "web" {{
  source   = "{ROOT / 'modules' / 'app-team-extension'}"
  team     = "web"
  accounts = {json.dumps(accounts)}
  bindings = {{
    "close-ssh" = {{ playbook = "revoke-public-ingress", controls = ["EC2.13"], mode = "auto" }}
  }}
}}

output "binding_names" {{
  value = module.web.binding_names
}}
"""

    workspace.write(with_orchestrator(workspace, orchestrator, body(["333333333333"]), orchestrator.APP_TOKEN))
    out = converge_and_destroy(workspace, "333333333333")
    assert out["binding_names"] == ["web-close-ssh"], out
    # Outside the team's scope, the orchestrator refuses the binding.
    workspace.write(with_orchestrator(workspace, orchestrator, body(["444444444444"]), orchestrator.APP_TOKEN))
    refused = workspace.run("apply", "-auto-approve", "-input=false", account="333333333333")
    assert refused.returncode != 0 and "444444444444" in refused.stdout + refused.stderr, refused.stdout + refused.stderr
