"""The provider under real Terraform: handshake, AutoMTLS, schema and configuration validation."""


def provider_block(url, extra=""):
    return f"""
terraform {{
  required_providers {{
    orgsec = {{ source = "orgsec/orgsec" }}
  }}
}}

provider "orgsec" {{
  region       = "us-east-1"
  endpoint_url = "{url}"
  {extra}
}}
"""


def test_terraform_loads_the_provider_and_accepts_a_valid_configuration(workspace):
    workspace.write(
        provider_block(
            workspace.emulator_url,
            """
  assume_role {
    role_arn    = "arn:aws:iam::666666666666:role/OrganizationAccountAccessRole"
    external_id = "orgsec-demo"
  }
""",
        )
    )
    validate = workspace.run("validate", check=True)
    assert "The configuration is valid" in validate.stdout
    plan = workspace.run("plan", "-detailed-exitcode", "-input=false")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "No changes" in plan.stdout


def test_schema_is_served_with_descriptions(workspace):
    workspace.write(provider_block(workspace.emulator_url))
    schema = workspace.run("providers", "schema", "-json", check=True)
    import json

    doc = json.loads(schema.stdout)
    provider = doc["provider_schemas"]["registry.terraform.io/orgsec/orgsec"]["provider"]["block"]
    assert set(provider["attributes"]) == {"region", "profile", "endpoint_url"}
    assert set(provider["block_types"]) == {"assume_role", "orchestrator"}
    assert provider["block_types"]["orchestrator"]["block"]["attributes"]["token"]["sensitive"] is True
    for name, attr in provider["attributes"].items():
        assert attr.get("description"), f"{name} has no description"


def test_terraform_version_is_the_one_we_support(workspace):
    out = workspace.run("version", check=True).stdout
    assert out.startswith("Terraform v1.") or out.startswith("OpenTofu v1."), out
