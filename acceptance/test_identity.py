"""Resource identity under real Terraform (1.12+): the identity stored beside the state, import
by `import { identity = {...} }` into a fresh directory followed by an empty plan, an identity naming
another account or region refused with a clear error, and an object found in another account than
its identity records. With orgsec_access_analyzer in the sandbox account 666666666666, through
OrganizationAccountAccessRole assumed from the management account."""
import json

from conftest import Workspace, aws_call

SANDBOX = "666666666666"
MANAGEMENT = "111111111111"
REGION = "us-east-1"

ASSUME_SANDBOX = f"""
  assume_role {{
    role_arn = "arn:aws:iam::{SANDBOX}:role/OrganizationAccountAccessRole"
  }}"""


def config(url, body, assume_role=ASSUME_SANDBOX):
    return f"""
terraform {{
  required_providers {{
    orgsec = {{ source = "orgsec/orgsec" }}
  }}
}}

provider "orgsec" {{
  region       = "{REGION}"
  endpoint_url = "{url}"{assume_role}
}}

{body}
"""


def analyzer(name):
    return f'resource "orgsec_access_analyzer" "this" {{\n  name = "{name}"\n}}'


def import_block(identity):
    fields = ", ".join(f'{k} = "{v}"' for k, v in identity.items())
    return f"import {{\n  to       = orgsec_access_analyzer.this\n  identity = {{ {fields} }}\n}}"


def plan_exit(ws):
    p = ws.run("plan", "-detailed-exitcode", "-input=false")
    assert p.returncode in (0, 2), p.stdout + p.stderr
    return p.returncode, p.stdout


def resource_in_state(ws):
    state = json.loads(ws.run("show", "-json", check=True).stdout)
    [resource] = state["values"]["root_module"]["resources"]
    return resource


def create_analyzer(url, account, name):
    body = json.dumps({"analyzerName": name, "type": "ACCOUNT"}).encode()
    status, out = aws_call(url, "access-analyzer", account, "PUT", "/analyzer", body)
    assert status == 200, out


def fresh(tmp_path, name, url):
    path = tmp_path / name
    path.mkdir()
    return Workspace(path, url)


def one_line(text):
    return " ".join(text.split())  # Terraform wraps long details


def test_identity_is_stored_and_an_identity_import_converges(workspace, tmp_path):
    url = workspace.emulator_url
    expected = {"account_id": SANDBOX, "id": "main", "region": REGION}

    # Apply: the identity is stored beside the state.
    workspace.write(config(url, analyzer("main")))
    workspace.run("apply", "-auto-approve", "-input=false", check=True)
    resource = resource_in_state(workspace)
    assert resource["identity"] == expected and resource["identity_schema_version"] == 0, resource
    raw = json.loads((workspace.path / "terraform.tfstate").read_text())
    assert raw["resources"][0]["instances"][0]["identity"] == expected
    assert plan_exit(workspace)[0] == 0, "the identity does not make a second plan differ"

    # Terraform lists the identity schemas the provider serves.
    schemas = json.loads(workspace.run("providers", "schema", "-json", check=True).stdout)
    identities = schemas["provider_schemas"]["registry.terraform.io/orgsec/orgsec"]["resource_identity_schemas"]
    attrs = identities["orgsec_access_analyzer"]["attributes"]
    assert attrs["id"].get("required_for_import") and attrs["account_id"].get("optional_for_import"), attrs
    assert set(identities["orgsec_remediation_binding"]["attributes"]) == {"id"}, identities

    # A fresh directory imports it by identity, generating its configuration.
    other = fresh(tmp_path, "import", url)
    other.write(config(url, import_block({"id": "main"})))
    p = other.run("plan", "-input=false", "-generate-config-out=generated.tf", check=True)
    assert "1 to import" in p.stdout, p.stdout
    generated = (other.path / "generated.tf").read_text()
    assert 'resource "orgsec_access_analyzer" "this"' in generated and 'name              = "main"' in generated, generated
    a = other.run("apply", "-auto-approve", "-input=false", check=True)
    assert "1 imported" in a.stdout, a.stdout
    assert resource_in_state(other)["identity"] == expected
    assert plan_exit(other)[0] == 0, "import-verify: the plan after an identity import is empty"

    # The same import with the account and region spelled out.
    spelled = fresh(tmp_path, "spelled", url)
    spelled.write(config(url, import_block(expected) + "\n\n" + analyzer("main")))
    spelled.run("apply", "-auto-approve", "-input=false", check=True)
    assert resource_in_state(spelled)["identity"] == expected
    assert plan_exit(spelled)[0] == 0

    # Destroy: the identity goes with the object.
    workspace.run("destroy", "-auto-approve", "-input=false", check=True)
    assert aws_call(url, "access-analyzer", SANDBOX, "GET", "/analyzer/main")[0] == 404


def test_an_identity_naming_another_account_or_region_is_refused(workspace, tmp_path):
    url = workspace.emulator_url
    create_analyzer(url, SANDBOX, "main")
    for attr, wrong, what in [("account_id", MANAGEMENT, "account"), ("region", "eu-west-1", "region")]:
        ws = fresh(tmp_path, attr, url)
        ws.write(config(url, import_block({"id": "main", attr: wrong}) + "\n\n" + analyzer("main")))
        result = ws.run("plan", "-input=false")
        text = one_line(result.stdout + result.stderr)
        assert result.returncode == 1, text
        assert f"Import identity names another {what}" in text, text
        assert wrong in text and f"account {SANDBOX}, region {REGION}" in text, text
    # An identity naming no existing analyzer gets the resource's own import error.
    ws = fresh(tmp_path, "missing", url)
    ws.write(config(url, import_block({"id": "missing"}) + "\n\n" + analyzer("missing")))
    result = ws.run("plan", "-input=false")
    text = one_line(result.stdout + result.stderr)
    assert result.returncode == 1 and "Cannot import Access Analyzer analyzer" in text, text


def test_an_object_found_in_another_account_than_its_identity_is_refused(workspace):
    url = workspace.emulator_url
    workspace.write(config(url, analyzer("main")))
    workspace.run("apply", "-auto-approve", "-input=false", check=True)
    # The provider is pointed at the management account, which has an analyzer of the same name:
    # a different object, which the stored identity tells apart.
    create_analyzer(url, MANAGEMENT, "main")
    workspace.write(config(url, analyzer("main"), assume_role=""))
    result = workspace.run("plan", "-input=false")
    text = one_line(result.stdout + result.stderr)
    assert result.returncode == 1 and "Resource identity changed" in text, text
    assert f"account {SANDBOX}, region {REGION}, id main" in text, text
    assert f"account {MANAGEMENT}, region {REGION}, id main" in text, text
    # Pointed back, all is well again.
    workspace.write(config(url, analyzer("main")))
    assert plan_exit(workspace)[0] == 0
