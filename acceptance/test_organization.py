"""data.orgsec_organization under real Terraform: the demo org's accounts with their OU paths and
tags, the OU filter, and the errors for a bad path, a missing OU and a member account."""
import json

ACCOUNTS = ["111111111111", "222222222222", "333333333333", "444444444444", "555555555555", "666666666666"]


def config(url, body=""):
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

data "orgsec_organization" "this" {{
{body}
}}

output "org" {{
  value = data.orgsec_organization.this
}}

output "prod_ids" {{
  value = [for a in data.orgsec_organization.this.accounts : a.id if a.ou_path == "Root/Prod"]
}}
"""


def outputs(ws, account="111111111111"):
    ws.run("apply", "-auto-approve", "-input=false", check=True, account=account)
    return json.loads(ws.run("output", "-json", check=True, account=account).stdout)


def test_reads_accounts_with_ou_paths_and_tags(workspace):
    workspace.write(config(workspace.emulator_url))
    out = outputs(workspace)
    org = out["org"]["value"]
    assert org["id"].startswith("o-") and org["management_account_id"] == "111111111111", org
    assert [a["id"] for a in org["accounts"]] == ACCOUNTS
    by_id = {a["id"]: a for a in org["accounts"]}
    assert by_id["111111111111"]["ou_path"] == "Root"
    assert by_id["333333333333"]["ou_path"] == "Root/Prod"
    assert by_id["666666666666"]["ou_path"] == "Root/Sandbox"
    assert by_id["333333333333"]["name"] == "prod-web" and by_id["333333333333"]["email"] == "aws-prod-web@example.com"
    assert by_id["333333333333"]["status"] == "ACTIVE"
    assert by_id["444444444444"]["tags"] == {"orgsec:criticality": "5", "team": "data"}
    assert [o["path"] for o in org["organizational_units"]] == ["Root/Dev", "Root/Prod", "Root/Sandbox"]
    prod = next(o for o in org["organizational_units"] if o["path"] == "Root/Prod")
    assert by_id["333333333333"]["ou_id"] == prod["id"]
    assert out["prod_ids"]["value"] == ["222222222222", "333333333333", "444444444444"]
    p = workspace.run("plan", "-detailed-exitcode", "-input=false")
    assert p.returncode == 0, p.stdout + p.stderr


def test_the_delegated_admin_can_read_it_too(workspace):
    workspace.write(config(workspace.emulator_url))
    org = outputs(workspace, account="222222222222")["org"]["value"]
    assert [a["id"] for a in org["accounts"]] == ACCOUNTS


def test_ou_path_keeps_that_ou_and_below(workspace):
    workspace.write(config(workspace.emulator_url, '  ou_path = "Root/Prod"'))
    org = outputs(workspace)["org"]["value"]
    assert [a["id"] for a in org["accounts"]] == ["222222222222", "333333333333", "444444444444"]
    assert [o["path"] for o in org["organizational_units"]] == ["Root/Prod"]


def test_malformed_ou_path_is_named_in_its_diagnostic(workspace):
    workspace.write(config(workspace.emulator_url, '  ou_path = "Prod"'))
    result = workspace.run("validate")
    text = result.stdout + result.stderr
    assert result.returncode == 1 and "Invalid OU path" in text and 'ou_path = "Prod"' in text, text


def test_missing_ou_lists_the_ones_there_are(workspace):
    workspace.write(config(workspace.emulator_url, '  ou_path = "Root/Staging"'))
    result = workspace.run("plan", "-input=false")
    text = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1 and "No such OU" in text, text
    assert "Root/Dev, Root/Prod, Root/Sandbox" in text, text


def test_a_member_account_is_told_where_to_read_it_from(workspace):
    workspace.write(config(workspace.emulator_url))
    result = workspace.run("plan", "-input=false", account="333333333333")
    text = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1 and "management account or a delegated administrator" in text, text
    assert "account 333333333333" in text, text
