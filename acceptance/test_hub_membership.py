"""orgsec_hub_membership under real Terraform, as the demo's delegated administrator 222222222222
enrolling the sandbox 666666666666 (in the organization but no hub member):

- the organization path: basic, services removed and added back in place, disappears (wholly and
  in one service), import with import-verify, destroy;
- the invitation path, after the management account removes the sandbox from the organization
  (the emulator, like AWS, enables organization accounts directly and only invites the others):
  the clear error while the member has no GuardDuty detector, then invitations accepted through
  a role in the member account, and destroy;
- the errors: an account outside the organization without invite, an invitation never accepted
  (timeout naming the stuck statuses), a caller that is not the administrator, an unknown account,
  and every validation diagnostic.

OrganizationAccountAccessRole trusts only the management account 111111111111, so the invitation
test first lets 222222222222 assume it (with an external ID) through IAM in the sandbox."""
import json
import urllib.parse

import pytest

from conftest import Workspace, aws_call

ADMIN = "222222222222"
MANAGEMENT = "111111111111"
PROD = "333333333333"
SANDBOX = "666666666666"
SANDBOX_EMAIL = "aws-sandbox@example.com"
ACCEPT_ROLE = f"arn:aws:iam::{SANDBOX}:role/OrganizationAccountAccessRole"
EXTERNAL_ID = "orgsec-accept"


def config(url, body=f'  account_id = "{SANDBOX}"'):
    return f"""
terraform {{
  required_providers {{
    orgsec = {{ source = "orgsec/orgsec" }}
  }}
}}

provider "orgsec" {{
  region       = "us-east-1"
  endpoint_url = "{url}"
}}

resource "orgsec_hub_membership" "this" {{
{body}
}}

output "status" {{
  value = orgsec_hub_membership.this.status
}}
"""


def invite_body(extra=""):
    return f"""  account_id         = "{SANDBOX}"
  email              = "{SANDBOX_EMAIL}"
  invite             = true
  accept_role_arn    = "{ACCEPT_ROLE}"
  accept_external_id = "{EXTERNAL_ID}"
{extra}"""


def run(ws, *args, check=False, account=ADMIN):
    return ws.run(*args, check=check, account=account)


def apply(ws, account=ADMIN):
    return run(ws, "apply", "-auto-approve", "-input=false", check=True, account=account)


def failed_apply(ws, account=ADMIN):
    result = run(ws, "apply", "-auto-approve", "-input=false", account=account)
    assert result.returncode == 1, result.stdout + result.stderr
    return " ".join((result.stdout + result.stderr).split())  # Terraform wraps long details


def plan_exit(ws):
    p = run(ws, "plan", "-detailed-exitcode", "-input=false")
    assert p.returncode in (0, 2), p.stdout + p.stderr
    return p.returncode, p.stdout


def status_output(ws):
    return json.loads(run(ws, "output", "-json", "status", check=True).stdout)


def admin_detector(url):
    status, body = aws_call(url, "guardduty", ADMIN, "GET", "/detector")
    assert status == 200, body
    return body["detectorIds"][0]


def members(url):
    """The sandbox's member status in the administrator's Security Hub and GuardDuty (None when
    it has no member record)."""
    body = json.dumps({"AccountIds": [SANDBOX]}).encode()
    status, hub = aws_call(url, "securityhub", ADMIN, "POST", "/members/get", body)
    assert status == 200, hub
    body = json.dumps({"accountIds": [SANDBOX]}).encode()
    status, gd = aws_call(url, "guardduty", ADMIN, "POST", f"/detector/{admin_detector(url)}/member/get", body)
    assert status == 200, gd
    return (
        next((m["MemberStatus"] for m in hub["Members"] if m["AccountId"] == SANDBOX), None),
        next((m["relationshipStatus"] for m in gd["members"] if m["accountId"] == SANDBOX), None),
    )


def delete_member(url, service):
    if service == "securityhub":
        body = json.dumps({"AccountIds": [SANDBOX]}).encode()
        status, out = aws_call(url, "securityhub", ADMIN, "POST", "/members/delete", body)
    else:
        body = json.dumps({"accountIds": [SANDBOX]}).encode()
        path = f"/detector/{admin_detector(url)}/member/delete"
        status, out = aws_call(url, "guardduty", ADMIN, "POST", path, body)
    assert status == 200, out


def leave_organization(url):
    """The management account removes the sandbox from the organization, and the sandbox lets the
    administrator assume its OrganizationAccountAccessRole (with an external ID) to accept."""
    body = json.dumps({"AccountId": SANDBOX}).encode()
    headers = {
        "x-amz-target": "AWSOrganizationsV20161128.RemoveAccountFromOrganization",
        "content-type": "application/x-amz-json-1.1",
    }
    status, out = aws_call(url, "organizations", MANAGEMENT, "POST", "/", body, headers)
    assert status == 200, out
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ADMIN}:root"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}},
            }
        ],
    }
    form = urllib.parse.urlencode(
        {
            "Action": "UpdateAssumeRolePolicy",
            "Version": "2010-05-08",
            "RoleName": "OrganizationAccountAccessRole",
            "PolicyDocument": json.dumps(trust),
        }
    ).encode()
    headers = {"content-type": "application/x-www-form-urlencoded"}
    status, out = aws_call(url, "iam", SANDBOX, "POST", "/", form, headers)
    assert status == 200, out


def test_organization_path_basic_services_disappears_import_destroy(workspace, tmp_path):
    url = workspace.emulator_url
    assert members(url) == (None, None), "the sandbox starts as no member"

    # basic: both services by default, enabled at once on the organization path
    workspace.write(config(url))
    apply(workspace)
    assert members(url) == ("Enabled", "Enabled")
    assert status_output(workspace) == {"securityhub": "Enabled", "guardduty": "Enabled"}
    assert plan_exit(workspace)[0] == 0, "a second plan after apply is empty"

    # services: GuardDuty removed in place, then added back
    workspace.write(config(url, f'  account_id = "{SANDBOX}"\n  services   = ["securityhub"]'))
    code, text = plan_exit(workspace)
    assert code == 2 and "update in-place" in text and "must be replaced" not in text, text
    apply(workspace)
    assert members(url) == ("Enabled", None)
    assert status_output(workspace) == {"securityhub": "Enabled"}
    assert plan_exit(workspace)[0] == 0
    workspace.write(config(url))
    code, text = plan_exit(workspace)
    assert code == 2 and "update in-place" in text and "guardduty" in text, text
    apply(workspace)
    assert members(url) == ("Enabled", "Enabled")
    assert plan_exit(workspace)[0] == 0

    # disappears from one service: put back in place
    delete_member(url, "guardduty")
    code, text = plan_exit(workspace)
    assert code == 2 and "update in-place" in text, text
    apply(workspace)
    assert members(url) == ("Enabled", "Enabled")
    assert plan_exit(workspace)[0] == 0

    # disappears: deleted in both services outside Terraform -> the next plan creates it again
    delete_member(url, "securityhub")
    delete_member(url, "guardduty")
    code, text = plan_exit(workspace)
    assert code == 2 and "will be created" in text, text
    apply(workspace)
    assert members(url) == ("Enabled", "Enabled")
    assert plan_exit(workspace)[0] == 0

    # import into a fresh directory, then import-verify: the plan is empty
    imported = tmp_path / "import"
    imported.mkdir()
    other = Workspace(imported, url)
    other.write(config(url))
    for wrong, why in [("999999999999", "is not a member"), ("12345", "12-digit")]:
        result = run(other, "import", "-input=false", "orgsec_hub_membership.this", wrong)
        text = " ".join((result.stdout + result.stderr).split())
        assert result.returncode == 1 and "Cannot import hub membership" in text and why in text, text
    run(other, "import", "-input=false", "orgsec_hub_membership.this", SANDBOX, check=True)
    assert plan_exit(other)[0] == 0
    state = json.loads(run(other, "show", "-json", check=True).stdout)
    values = state["values"]["root_module"]["resources"][0]["values"]
    assert sorted(values["services"]) == ["guardduty", "securityhub"], values
    assert values["invite"] is False and values["email"] == SANDBOX_EMAIL, values

    # destroy: the member is disassociated and deleted in both services
    run(workspace, "destroy", "-auto-approve", "-input=false", check=True)
    assert members(url) == (None, None)


def test_invitation_path_accepts_through_a_role_in_the_member_account(workspace):
    url = workspace.emulator_url
    leave_organization(url)
    body = json.dumps({"EnableDefaultStandards": False}).encode()
    status, out = aws_call(url, "securityhub", SANDBOX, "POST", "/accounts", body)
    assert status == 200, out

    # Without a GuardDuty detector the member cannot accept: the error says so.
    workspace.write(config(url, invite_body()))
    text = failed_apply(workspace)
    assert "has no GuardDuty detector" in text and "orgsec_guardduty_detector" in text, text

    status, out = aws_call(url, "guardduty", SANDBOX, "POST", "/detector", json.dumps({"enable": True}).encode())
    assert status == 200, out
    apply(workspace)
    assert members(url) == ("Enabled", "Enabled")
    assert status_output(workspace) == {"securityhub": "Enabled", "guardduty": "Enabled"}
    status, out = aws_call(url, "securityhub", SANDBOX, "GET", "/administrator")
    assert status == 200 and out["Administrator"]["AccountId"] == ADMIN, out
    assert plan_exit(workspace)[0] == 0

    run(workspace, "destroy", "-auto-approve", "-input=false", check=True)
    assert members(url) == (None, None)
    status, out = aws_call(url, "securityhub", SANDBOX, "GET", "/administrator")
    assert status == 200 and "Administrator" not in out, out


def test_an_invitation_never_accepted_times_out_naming_each_status(workspace):
    url = workspace.emulator_url
    leave_organization(url)
    body = f'  account_id = "{SANDBOX}"\n  email      = "{SANDBOX_EMAIL}"\n  invite     = true\n  timeout    = "2s"'
    workspace.write(config(url, body))
    text = failed_apply(workspace)
    assert f"Account {SANDBOX} was not enabled within 2s" in text, text
    assert "Security Hub reports Invited" in text and "GuardDuty reports Invited" in text, text
    assert "set accept_role_arn" in text, text


def test_an_account_outside_the_organization_needs_invite(workspace):
    url = workspace.emulator_url
    leave_organization(url)
    workspace.write(config(url))
    text = failed_apply(workspace)
    assert f"Account {SANDBOX} is not in the organization" in text and "set invite = true" in text, text
    assert members(url) == (None, None), "nothing was created"


def test_a_caller_that_is_not_the_administrator_is_told_where_to_run(workspace):
    url = workspace.emulator_url
    workspace.write(config(url, f'  account_id = "{SANDBOX}"\n  timeout    = "2s"'))
    text = failed_apply(workspace, account=PROD)
    assert f"Account {PROD} is not the organization's Security Hub delegated administrator" in text, text
    assert "EnableOrganizationAdminAccount" in text, text


def test_an_unknown_account_is_named(workspace):
    url = workspace.emulator_url
    body = '  account_id = "999999999999"\n  email      = "nobody@example.com"\n  invite     = true\n  timeout    = "2s"'
    workspace.write(config(url, body))
    text = failed_apply(workspace)
    assert "did not find AWS account 999999999999" in text and "Check account_id" in text, text


@pytest.mark.parametrize(
    "body, summary, line",
    [
        ('  account_id = "12345"', "Invalid account id", 'account_id = "12345"'),
        (
            f'  account_id = "{SANDBOX}"\n  services   = ["securityhub", "inspector"]',
            "Unknown service",
            'services   = ["securityhub", "inspector"]',
        ),
        (f'  account_id = "{SANDBOX}"\n  services   = []', "No services", "services   = []"),
        (f'  account_id = "{SANDBOX}"\n  email      = "nobody"', "Invalid email", 'email      = "nobody"'),
        (f'  account_id = "{SANDBOX}"\n  invite     = true', "An invitation needs an email", "invite     = true"),
        (f'  account_id = "{SANDBOX}"\n  timeout    = "soon"', "Invalid timeout", 'timeout    = "soon"'),
        (
            invite_body().replace(ACCEPT_ROLE, "OrganizationAccountAccessRole"),
            "Invalid role ARN",
            'accept_role_arn    = "OrganizationAccountAccessRole"',
        ),
        (
            invite_body().replace(f"iam::{SANDBOX}", f"iam::{PROD}"),
            "The accepting role must be in the member account",
            f'accept_role_arn    = "arn:aws:iam::{PROD}:role/OrganizationAccountAccessRole"',
        ),
        (
            invite_body().replace("invite             = true", "invite             = false"),
            "accept_role_arn needs invite = true",
            f'accept_role_arn    = "{ACCEPT_ROLE}"',
        ),
        (
            f'  account_id         = "{SANDBOX}"\n  accept_external_id = "x"',
            "accept_external_id needs accept_role_arn",
            'accept_external_id = "x"',
        ),
    ],
    ids=[
        "account_id",
        "unknown_service",
        "no_services",
        "email",
        "invite_without_email",
        "timeout",
        "role_arn",
        "role_elsewhere",
        "role_without_invite",
        "external_id_without_role",
    ],
)
def test_invalid_values_are_named_in_their_diagnostics(workspace, body, summary, line):
    workspace.write(config(workspace.emulator_url, body))
    result = run(workspace, "validate")
    assert result.returncode == 1
    text = result.stdout + result.stderr
    # The diagnostic points at the attribute: Terraform quotes its line.
    assert summary in text and line in text, text
