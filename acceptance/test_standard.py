"""orgsec_standard under real Terraform: basic, disabled controls added, re-reasoned and removed in
place, a control disabled out of band put back, disappears, import, destroy, waiting for READY, the
errors a user meets first and the validation diagnostics. In the sandbox account 666666666666 (no
Security Hub in the demo org), through OrganizationAccountAccessRole assumed from the management
account, with orgsec_securityhub_account in the same configuration."""
import json
import urllib.parse
import urllib.request

from conftest import Workspace, aws_call

SANDBOX = "666666666666"
FSBP = "aws-foundational-security-best-practices/v/1.0.0"
FSBP_ARN = f"arn:aws:securityhub:us-east-1::standards/{FSBP}"
FSBP_SUB = f"arn:aws:securityhub:us-east-1:{SANDBOX}:subscription/{FSBP}"
CIS_12 = "cis-aws-foundations-benchmark/v/1.2.0"


def config(url, body=f'  standard = "{FSBP}"', hub=True):
    hub_block = 'resource "orgsec_securityhub_account" "this" {}\n' if hub else ""
    depends = "\n  depends_on = [orgsec_securityhub_account.this]" if hub else ""
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

{hub_block}
resource "orgsec_standard" "this" {{
{body}{depends}
}}

output "subscription_arn" {{
  value = orgsec_standard.this.subscription_arn
}}

output "standards_arn" {{
  value = orgsec_standard.this.standards_arn
}}

output "status" {{
  value = orgsec_standard.this.status
}}
"""


def controls_body(standard, controls):
    if controls is None:
        return f'  standard = "{standard}"'
    entries = "\n".join(f'    "{k}" = "{v}"' for k, v in controls.items())
    return f'  standard = "{standard}"\n  disabled_controls = {{\n{entries}\n  }}'


def plan_exit(ws):
    p = ws.run("plan", "-detailed-exitcode", "-input=false")
    assert p.returncode in (0, 2), p.stdout + p.stderr
    return p.returncode, p.stdout


def apply(ws):
    return ws.run("apply", "-auto-approve", "-input=false", check=True)


def output(ws, name):
    return ws.run("output", "-raw", name, check=True).stdout.strip()


def subscriptions(url):
    """{standards ARN: (subscription ARN, status)} of the sandbox, or None without Security Hub."""
    status, body = aws_call(url, "securityhub", SANDBOX, "POST", "/standards/get", b"{}")
    if status == 401:
        return None
    assert status == 200, body
    return {s["StandardsArn"]: (s["StandardsSubscriptionArn"], s["StandardsStatus"]) for s in body["StandardsSubscriptions"]}


def controls(url, sub_arn):
    """{control id: (control ARN, reason or None when enabled)} of a subscription."""
    status, body = aws_call(url, "securityhub", SANDBOX, "GET", f"/standards/controls/{quote(sub_arn)}?MaxResults=100")
    assert status == 200, body
    out = {c["ControlId"]: (c["StandardsControlArn"], c.get("DisabledReason")) for c in body["Controls"]}
    assert "NextToken" not in body, "more than one page: read them all"
    return out


def disabled(url, sub_arn):
    return {k: reason for k, (_, reason) in controls(url, sub_arn).items() if reason is not None}


def set_control(url, control_arn, reason=None):
    body = {"ControlStatus": "DISABLED", "DisabledReason": reason} if reason else {"ControlStatus": "ENABLED"}
    status, out = aws_call(
        url, "securityhub", SANDBOX, "PATCH", f"/standards/control/{quote(control_arn)}", json.dumps(body).encode()
    )
    assert status == 200, out


def quote(arn):
    return urllib.parse.quote(arn, safe="")


def emulator_config(url, **settings):
    req = urllib.request.Request(url + "/_emulator/config", data=json.dumps(settings).encode(), method="PUT")
    urllib.request.urlopen(req, timeout=30).read()


def test_lifecycle_basic_controls_drift_disappears_import_destroy(workspace, tmp_path):
    url = workspace.emulator_url
    assert subscriptions(url) is None, "the sandbox starts without Security Hub"

    # basic
    workspace.write(config(url))
    apply(workspace)
    assert subscriptions(url) == {FSBP_ARN: (FSBP_SUB, "READY")}
    assert output(workspace, "subscription_arn") == FSBP_SUB
    assert output(workspace, "standards_arn") == FSBP_ARN
    assert output(workspace, "status") == "READY"
    assert disabled(url, FSBP_SUB) == {}
    assert plan_exit(workspace)[0] == 0, "a second plan after apply is empty"

    # disabled_controls: add
    wanted = {"IAM.1": "Root access is governed by an SCP", "EC2.7": "Volumes are encrypted per workload"}
    workspace.write(config(url, controls_body(FSBP, wanted)))
    code, text = plan_exit(workspace)
    assert code == 2 and "update in-place" in text and "must be replaced" not in text, text
    apply(workspace)
    assert disabled(url, FSBP_SUB) == wanted
    assert plan_exit(workspace)[0] == 0

    # disabled_controls: change a reason
    wanted["IAM.1"] = "Root has no access keys; checked by the quarterly audit"
    workspace.write(config(url, controls_body(FSBP, wanted)))
    code, text = plan_exit(workspace)
    assert code == 2 and "quarterly audit" in text and "update in-place" in text, text
    apply(workspace)
    assert disabled(url, FSBP_SUB) == wanted
    assert plan_exit(workspace)[0] == 0

    # disabled_controls: remove an entry, which enables its control again
    del wanted["EC2.7"]
    workspace.write(config(url, controls_body(FSBP, wanted)))
    code, text = plan_exit(workspace)
    assert code == 2 and "EC2.7" in text and "update in-place" in text, text
    apply(workspace)
    assert disabled(url, FSBP_SUB) == wanted
    assert plan_exit(workspace)[0] == 0

    # drift: a control disabled outside Terraform (and a reason changed) is put back
    all_controls = controls(url, FSBP_SUB)
    set_control(url, all_controls["S3.1"][0], "disabled by hand")
    set_control(url, all_controls["IAM.1"][0], "changed by hand")
    code, text = plan_exit(workspace)
    assert code == 2 and "S3.1" in text and "changed by hand" in text and "update in-place" in text, text
    apply(workspace)
    assert disabled(url, FSBP_SUB) == wanted
    assert plan_exit(workspace)[0] == 0

    # disappears: the standard disabled outside Terraform -> the next plan enables it again
    body = json.dumps({"StandardsSubscriptionArns": [FSBP_SUB]}).encode()
    assert aws_call(url, "securityhub", SANDBOX, "POST", "/standards/deregister", body)[0] == 200
    assert subscriptions(url) == {}
    code, text = plan_exit(workspace)
    assert code == 2 and "orgsec_standard.this will be created" in text, text
    apply(workspace)
    assert subscriptions(url) == {FSBP_ARN: (FSBP_SUB, "READY")}
    assert disabled(url, FSBP_SUB) == wanted
    assert plan_exit(workspace)[0] == 0

    # import into a fresh directory (the hub and the standard), then import-verify: the plan is empty
    imported = tmp_path / "import"
    imported.mkdir()
    other = Workspace(imported, url)
    other.write(config(url, controls_body(FSBP, wanted)))
    wrong = other.run("import", "-input=false", "orgsec_standard.this", FSBP_ARN)
    text = " ".join((wrong.stdout + wrong.stderr).split())
    assert wrong.returncode == 1 and "Cannot import Security Hub standard" in text and "subscription ARN" in text, text
    missing = FSBP_SUB.replace(FSBP, "pci-dss/v/3.2.1")
    wrong = other.run("import", "-input=false", "orgsec_standard.this", missing)
    text = " ".join((wrong.stdout + wrong.stderr).split())
    assert wrong.returncode == 1 and "No standard with subscription" in text and FSBP_SUB in text, text
    other.run("import", "-input=false", "orgsec_securityhub_account.this", SANDBOX, check=True)
    other.run("import", "-input=false", "orgsec_standard.this", FSBP_SUB, check=True)
    assert plan_exit(other)[0] == 0
    state = json.loads(other.run("show", "-json", check=True).stdout)
    values = next(
        r["values"] for r in state["values"]["root_module"]["resources"] if r["type"] == "orgsec_standard"
    )
    assert values["standard"] == FSBP and values["disabled_controls"] == wanted, values
    assert values["status"] == "READY" and values["standards_arn"] == FSBP_ARN, values

    # spelling the same standard by its ARN is an in-place change, not a replacement
    sub_before = subscriptions(url)
    other.write(config(url, controls_body(FSBP_ARN, wanted)))
    code, text = plan_exit(other)
    assert code == 2 and "update in-place" in text and "must be replaced" not in text, text
    other.run("apply", "-auto-approve", "-input=false", check=True)
    assert subscriptions(url) == sub_before, "the subscription was kept"
    assert plan_exit(other)[0] == 0

    # destroy: the standard is disabled, then Security Hub
    workspace.run("destroy", "-auto-approve", "-input=false", check=True)
    assert subscriptions(url) is None


def test_apply_waits_until_the_standard_is_ready(workspace):
    url = workspace.emulator_url
    # The emulator keeps new standards PENDING for 3 s, and refuses control updates until READY.
    emulator_config(url, standards_ready_ms=3000)
    workspace.write(config(url, controls_body(CIS_12, {"IAM.16": "Root MFA is enforced by the identity provider"})))
    apply(workspace)
    assert output(workspace, "status") == "READY"
    ruleset = f"arn:aws:securityhub:::ruleset/{CIS_12}"
    assert output(workspace, "standards_arn") == ruleset, "CIS v1.2.0 has the odd ruleset ARN"
    sub_arn = output(workspace, "subscription_arn")
    assert subscriptions(url) == {ruleset: (sub_arn, "READY")}
    assert disabled(url, sub_arn) == {"IAM.16": "Root MFA is enforced by the identity provider"}
    assert plan_exit(workspace)[0] == 0
    workspace.run("destroy", "-auto-approve", "-input=false", check=True)
    assert subscriptions(url) is None


def test_a_standard_named_by_its_full_arn(workspace):
    url = workspace.emulator_url
    arn = "arn:aws:securityhub:us-east-1::standards/pci-dss/v/3.2.1"
    workspace.write(config(url, f'  standard = "{arn}"'))
    apply(workspace)
    assert output(workspace, "standards_arn") == arn
    assert plan_exit(workspace)[0] == 0
    workspace.run("destroy", "-auto-approve", "-input=false", check=True)


def test_an_unknown_standard_fails_with_the_valid_ones(workspace):
    url = workspace.emulator_url
    workspace.write(config(url, '  standard = "made-up-benchmark/v/1.0.0"'))
    result = workspace.run("apply", "-auto-approve", "-input=false")
    assert result.returncode == 1
    text = " ".join((result.stdout + result.stderr).split())
    assert "made-up-benchmark/v/1.0.0" in text and FSBP in text and "nist-800-53/v/5.0.0" in text, text
    assert subscriptions(url) == {}, "nothing was enabled"


def test_an_unknown_control_fails_and_leaves_nothing_enabled(workspace):
    url = workspace.emulator_url
    workspace.write(config(url, controls_body(FSBP, {"Nope.1": "does not exist"})))
    result = workspace.run("apply", "-auto-approve", "-input=false")
    assert result.returncode == 1
    text = " ".join((result.stdout + result.stderr).split())
    assert '"Nope.1"' in text and "is not a control of" in text and "disabled again" in text, text
    assert subscriptions(url) == {}


def test_without_security_hub_the_error_says_to_add_the_account_resource(workspace):
    url = workspace.emulator_url
    workspace.write(config(url, hub=False))
    result = workspace.run("apply", "-auto-approve", "-input=false")
    assert result.returncode == 1
    text = " ".join((result.stdout + result.stderr).split())
    assert "Security Hub is not enabled" in text and "orgsec_securityhub_account" in text, text
    assert "depends_on" in text, text


def test_an_already_enabled_standard_says_how_to_import(workspace):
    url = workspace.emulator_url
    assert aws_call(url, "securityhub", SANDBOX, "POST", "/accounts", b'{"EnableDefaultStandards": true}')[0] == 200
    workspace.write(config(url, hub=False))
    result = workspace.run("apply", "-auto-approve", "-input=false")
    assert result.returncode == 1
    text = " ".join((result.stdout + result.stderr).split())
    assert "already enabled" in text and f"terraform import <address> {FSBP_SUB}" in text, text


def test_malformed_standard_is_named_in_its_diagnostic(workspace):
    workspace.write(config(workspace.emulator_url, '  standard = "FSBP"'))
    result = workspace.run("validate")
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert "Invalid standard" in text and 'standard = "FSBP"' in text, text


def test_empty_reason_is_named_in_its_diagnostic(workspace):
    workspace.write(config(workspace.emulator_url, controls_body(FSBP, {"IAM.1": " "})))
    result = workspace.run("validate")
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert "Missing reason for a disabled control" in text and '"IAM.1" = " "' in text, text


def test_malformed_control_id_is_named_in_its_diagnostic(workspace):
    workspace.write(config(workspace.emulator_url, controls_body(FSBP, {"IAM 1": "spaces are not ids"})))
    result = workspace.run("validate")
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert "Invalid control id" in text and '"IAM 1" = "spaces are not ids"' in text, text


def test_many_control_updates_get_through_the_rate_limit(workspace):
    """UpdateStandardsControl allows 1 call a second (burst 5): throttled calls are retried."""
    url = workspace.emulator_url
    ids = ["IAM.1", "IAM.2", "IAM.3", "IAM.4", "IAM.5", "IAM.6", "IAM.7", "IAM.8"]
    wanted = {i: f"{i} is covered by the identity provider" for i in ids}
    workspace.write(config(url, controls_body(FSBP, wanted)))
    limits(url, True)
    try:
        apply(workspace)
    finally:
        limits(url, False)  # a reset does not turn them off again
    assert disabled(url, FSBP_SUB) == wanted
    assert plan_exit(workspace)[0] == 0


def limits(url, enabled):
    body = json.dumps({"enabled": enabled}).encode()
    req = urllib.request.Request(url + "/_emulator/rate-limits", data=body, method="PUT")
    urllib.request.urlopen(req, timeout=30).read()
