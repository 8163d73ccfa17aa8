"""orgsec_securityhub_account under real Terraform: basic, update, disappears, import, destroy, and the
errors a user meets first. The new sandbox account 666666666666 is baselined from nothing, through
OrganizationAccountAccessRole assumed from the management account."""
from conftest import aws_call

SANDBOX = "666666666666"


def config(url, body="", role=f"arn:aws:iam::{SANDBOX}:role/OrganizationAccountAccessRole", external_id=None):
    ext = f'\n    external_id = "{external_id}"' if external_id else ""
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
    role_arn = "{role}"{ext}
  }}
}}

resource "orgsec_securityhub_account" "this" {{
{body}
}}

output "hub_arn" {{
  value = orgsec_securityhub_account.this.hub_arn
}}
"""


def plan_exit(ws):
    p = ws.run("plan", "-detailed-exitcode", "-input=false")
    assert p.returncode in (0, 2), p.stdout + p.stderr
    return p.returncode, p.stdout


def hub(url):
    return aws_call(url, "securityhub", SANDBOX, "GET", "/accounts")


def test_lifecycle_basic_update_disappears_import_destroy(workspace, tmp_path):
    url = workspace.emulator_url
    assert hub(url)[0] == 401, "the sandbox starts without Security Hub"

    # basic
    workspace.write(config(url, "  enable_default_standards = false"))
    workspace.run("apply", "-auto-approve", "-input=false", check=True)
    status, body = hub(url)
    assert status == 200 and body["HubArn"] == f"arn:aws:securityhub:us-east-1:{SANDBOX}:hub/default"
    out = workspace.run("output", "-raw", "hub_arn", check=True).stdout
    assert out.strip() == body["HubArn"]
    assert plan_exit(workspace)[0] == 0, "a second plan after apply is empty"
    # No default standards were enabled.
    status, body = aws_call(url, "securityhub", SANDBOX, "POST", "/standards/get", b"{}")
    assert status == 200 and body["StandardsSubscriptions"] == []

    # update: auto_enable_controls
    workspace.write(config(url, "  enable_default_standards = false\n  auto_enable_controls = false"))
    code, text = plan_exit(workspace)
    assert code == 2 and "auto_enable_controls" in text and "update in-place" in text, text
    workspace.run("apply", "-auto-approve", "-input=false", check=True)
    assert hub(url)[1]["AutoEnableControls"] is False
    assert plan_exit(workspace)[0] == 0

    # update: control_finding_generator
    workspace.write(
        config(url, '  auto_enable_controls = false\n  control_finding_generator = "STANDARD_CONTROL"')
    )
    workspace.run("apply", "-auto-approve", "-input=false", check=True)
    assert hub(url)[1]["ControlFindingGenerator"] == "STANDARD_CONTROL"
    assert plan_exit(workspace)[0] == 0

    # disappears: disabled outside Terraform -> the next plan creates it again
    assert aws_call(url, "securityhub", SANDBOX, "DELETE", "/accounts")[0] == 200
    code, text = plan_exit(workspace)
    assert code == 2 and "will be created" in text, text
    workspace.run("apply", "-auto-approve", "-input=false", check=True)
    assert plan_exit(workspace)[0] == 0

    # import into a fresh directory, then import-verify: the plan is empty
    imported = tmp_path / "import"
    imported.mkdir()
    from conftest import Workspace

    other = Workspace(imported, url)
    other.write(config(url, '  auto_enable_controls = false\n  control_finding_generator = "STANDARD_CONTROL"'))
    wrong = other.run("import", "-input=false", "orgsec_securityhub_account.this", "123456789012")
    assert wrong.returncode == 1 and "Wrong account for import" in wrong.stdout + wrong.stderr
    other.run("import", "-input=false", "orgsec_securityhub_account.this", SANDBOX, check=True)
    assert plan_exit(other)[0] == 0

    # destroy
    workspace.run("destroy", "-auto-approve", "-input=false", check=True)
    assert hub(url)[0] == 401


def test_enabling_an_already_enabled_hub_says_how_to_import(workspace):
    url = workspace.emulator_url
    assert aws_call(url, "securityhub", SANDBOX, "POST", "/accounts", b"{}")[0] == 200
    workspace.write(config(url))
    result = workspace.run("apply", "-auto-approve", "-input=false")
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert "already enabled" in text and "terraform import" in text, text


def test_a_role_that_cannot_be_assumed_gives_one_clear_error(workspace):
    url = workspace.emulator_url
    workspace.write(config(url, role=f"arn:aws:iam::{SANDBOX}:role/OrgSecRemediationRole", external_id="wrong"))
    result = workspace.run("plan", "-input=false")
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert text.count("Cannot connect to AWS") == 1, text
    assert "OrgSecRemediationRole" in text, text


def test_an_unreachable_endpoint_fails_fast_and_clearly(workspace):
    workspace.write(config("http://127.0.0.1:9"))
    result = workspace.run("plan", "-input=false")
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert "Cannot connect to AWS" in text and "127.0.0.1:9" in text, text


def test_invalid_attribute_is_named_in_its_diagnostic(workspace):
    workspace.write(config(workspace.emulator_url, '  control_finding_generator = "NOPE"'))
    result = workspace.run("validate")
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert "Invalid control finding generator" in text and "control_finding_generator" in text, text
