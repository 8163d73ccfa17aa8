"""orgsec_access_analyzer under real Terraform: basic, tags in place, replacement on a name change,
disappears, import, the existing-analyzer error, validation and destroy, in the sandbox account
666666666666 (no analyzer in the demo org), through OrganizationAccountAccessRole assumed from the
management account."""
import json

from conftest import Workspace, aws_call

SANDBOX = "666666666666"
ARN_PREFIX = f"arn:aws:access-analyzer:us-east-1:{SANDBOX}:analyzer/"


def config(url, body='  name = "main"'):
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

resource "orgsec_access_analyzer" "this" {{
{body}
}}

output "arn" {{
  value = orgsec_access_analyzer.this.arn
}}
"""


def plan_exit(ws):
    p = ws.run("plan", "-detailed-exitcode", "-input=false")
    assert p.returncode in (0, 2), p.stdout + p.stderr
    return p.returncode, p.stdout


def analyzers(url):
    status, body = aws_call(url, "access-analyzer", SANDBOX, "GET", "/analyzer")
    assert status == 200, body
    return sorted(a["name"] for a in body["analyzers"])


def get_analyzer(url, name):
    return aws_call(url, "access-analyzer", SANDBOX, "GET", f"/analyzer/{name}")


def test_lifecycle_basic_tags_replace_disappears_import_destroy(workspace, tmp_path):
    url = workspace.emulator_url
    assert analyzers(url) == [], "the sandbox starts without an analyzer"

    # basic
    workspace.write(config(url, '  name = "main"\n  tags = { env = "dev" }'))
    workspace.run("apply", "-auto-approve", "-input=false", check=True)
    status, body = get_analyzer(url, "main")
    assert status == 200, body
    assert body["analyzer"]["type"] == "ACCOUNT" and body["analyzer"]["tags"] == {"env": "dev"}, body
    assert workspace.run("output", "-raw", "arn", check=True).stdout.strip() == ARN_PREFIX + "main"
    assert plan_exit(workspace)[0] == 0, "a second plan after apply is empty"

    # tags: changed, added and removed in place
    workspace.write(config(url, '  name = "main"\n  tags = { env = "prod", team = "sec" }'))
    code, text = plan_exit(workspace)
    assert code == 2 and "update in-place" in text and "must be replaced" not in text, text
    workspace.run("apply", "-auto-approve", "-input=false", check=True)
    assert get_analyzer(url, "main")[1]["analyzer"]["tags"] == {"env": "prod", "team": "sec"}
    assert plan_exit(workspace)[0] == 0
    workspace.write(config(url, '  name = "main"\n  tags = { team = "sec" }'))
    code, text = plan_exit(workspace)
    assert code == 2 and "update in-place" in text, text
    workspace.run("apply", "-auto-approve", "-input=false", check=True)
    assert get_analyzer(url, "main")[1]["analyzer"]["tags"] == {"team": "sec"}
    assert plan_exit(workspace)[0] == 0

    # a tag added outside Terraform is drift, put back by the next apply
    body = json.dumps({"tags": {"extra": "x"}}).encode()
    arn = ARN_PREFIX + "main"
    assert aws_call(url, "access-analyzer", SANDBOX, "POST", f"/tags/{arn.replace('/', '%2F')}", body)[0] == 200
    code, text = plan_exit(workspace)
    assert code == 2 and "extra" in text and "update in-place" in text, text
    workspace.run("apply", "-auto-approve", "-input=false", check=True)
    assert get_analyzer(url, "main")[1]["analyzer"]["tags"] == {"team": "sec"}

    # a name change replaces the analyzer
    workspace.write(config(url, '  name = "renamed"\n  tags = { team = "sec" }'))
    code, text = plan_exit(workspace)
    assert code == 2 and "must be replaced" in text, text
    workspace.run("apply", "-auto-approve", "-input=false", check=True)
    assert analyzers(url) == ["renamed"]
    assert plan_exit(workspace)[0] == 0

    # disappears: deleted outside Terraform -> the next plan creates it again
    assert aws_call(url, "access-analyzer", SANDBOX, "DELETE", "/analyzer/renamed")[0] == 200
    code, text = plan_exit(workspace)
    assert code == 2 and "will be created" in text, text
    workspace.run("apply", "-auto-approve", "-input=false", check=True)
    assert analyzers(url) == ["renamed"]
    assert plan_exit(workspace)[0] == 0

    # import into a fresh directory, then import-verify: the plan is empty
    imported = tmp_path / "import"
    imported.mkdir()
    other = Workspace(imported, url)
    other.write(config(url, '  name = "renamed"\n  tags = { team = "sec" }'))
    wrong = other.run("import", "-input=false", "orgsec_access_analyzer.this", "missing")
    text = wrong.stdout + wrong.stderr
    assert wrong.returncode == 1 and "Cannot import Access Analyzer analyzer" in text, text
    other.run("import", "-input=false", "orgsec_access_analyzer.this", "renamed", check=True)
    assert plan_exit(other)[0] == 0
    state = json.loads(other.run("show", "-json", check=True).stdout)
    values = state["values"]["root_module"]["resources"][0]["values"]
    assert values["arn"] == ARN_PREFIX + "renamed" and values["type"] == "ACCOUNT", values

    # destroy
    workspace.run("destroy", "-auto-approve", "-input=false", check=True)
    assert analyzers(url) == []
    assert get_analyzer(url, "renamed")[0] == 404


def test_an_unused_access_analyzer_is_created_with_its_type(workspace):
    url = workspace.emulator_url
    workspace.write(config(url, '  name = "unused"\n  type = "ACCOUNT_UNUSED_ACCESS"\n  unused_access_age = 30'))
    workspace.run("apply", "-auto-approve", "-input=false", check=True)
    status, body = get_analyzer(url, "unused")
    assert status == 200 and body["analyzer"]["type"] == "ACCOUNT_UNUSED_ACCESS", body
    assert plan_exit(workspace)[0] == 0
    workspace.run("destroy", "-auto-approve", "-input=false", check=True)
    assert analyzers(url) == []


def test_an_existing_analyzer_fails_and_says_how_to_import(workspace):
    url = workspace.emulator_url
    body = json.dumps({"analyzerName": "main", "type": "ACCOUNT"}).encode()
    status, out = aws_call(url, "access-analyzer", SANDBOX, "PUT", "/analyzer", body)
    assert status == 200, out
    workspace.write(config(url))
    result = workspace.run("apply", "-auto-approve", "-input=false")
    assert result.returncode == 1
    text = " ".join((result.stdout + result.stderr).split())  # Terraform wraps long details
    assert "already exists" in text and "terraform import" in text and "main" in text, text
    assert f"account {SANDBOX}" in text, text


def test_invalid_type_is_named_in_its_diagnostic(workspace):
    workspace.write(config(workspace.emulator_url, '  name = "main"\n  type = "EVERYTHING"'))
    result = workspace.run("validate")
    assert result.returncode == 1
    text = result.stdout + result.stderr
    # The diagnostic points at the attribute: Terraform quotes its line.
    assert "Invalid analyzer type" in text and 'type = "EVERYTHING"' in text, text


def test_unused_access_age_on_an_account_analyzer_is_named_in_its_diagnostic(workspace):
    workspace.write(
        config(workspace.emulator_url, '  name = "main"\n  type = "ACCOUNT"\n  unused_access_age = 30')
    )
    result = workspace.run("validate")
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert "unused-access analyzer" in text and "unused_access_age = 30" in text, text


def test_invalid_name_is_named_in_its_diagnostic(workspace):
    workspace.write(config(workspace.emulator_url, '  name = "9lives"'))
    result = workspace.run("validate")
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert "Invalid analyzer name" in text and 'name = "9lives"' in text, text
