"""orgsec_posture under real Terraform against a real `orgsec serve` that has enrolled, synced and
scored the emulator's demo org: the scores Terraform reads are the ones the orchestrator's CLI
prints from the same store, priorities come ranked, and unknown scopes fail with a diagnostic."""
import json

from conftest import Orchestrator


def config(ws, orch, body, token=Orchestrator.ADMIN_TOKEN):
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


def outputs(ws):
    return {k: v["value"] for k, v in json.loads(ws.run("output", "-json", check=True).stdout).items()}


def test_posture_reads_the_scores_of_the_last_round(workspace, synced_orchestrator):
    orch = synced_orchestrator
    workspace.write(
        config(
            workspace,
            orch,
            """
data "orgsec_posture" "org" {}

data "orgsec_posture" "web" {
  scope = "account"
  id    = "333333333333"
  top   = 3
}

data "orgsec_posture" "prod" {
  scope = "ou"
  id    = "Root/Prod"
}

output "org" { value = data.orgsec_posture.org }
output "web" { value = data.orgsec_posture.web }
output "prod" { value = data.orgsec_posture.prod.score }
""",
        )
    )
    workspace.run("apply", "-auto-approve", "-input=false", check=True)
    out = outputs(workspace)

    cli = {(s["scope"], s["id"]): s["score"] for s in json.loads(orch.cli("score", "--by", "account", "--output", "json").stdout)}
    ous = {(s["scope"], s["id"]): s["score"] for s in json.loads(orch.cli("score", "--by", "ou", "--output", "json").stdout)}
    assert out["org"]["score"] == cli[("org", "org")]
    assert out["web"]["score"] == cli[("account", "333333333333")]
    assert out["prod"] == ous[("ou", "Root/Prod")]
    assert 0 < out["org"]["score"] < 100
    assert out["org"]["failing_findings"] > 0 and out["org"]["computed_at"]

    top = out["web"]["priorities"]
    assert len(top) == 3
    assert [p["improvement_potential"] for p in top] == sorted((p["improvement_potential"] for p in top), reverse=True)
    assert all(p["title"] and p["severity"] in ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL") for p in top)
    cli_top = json.loads(orch.cli("priorities", "--account", "333333333333", "--limit", "3", "--output", "json").stdout)
    assert [p["control_id"] for p in top] == [p["control_id"] for p in cli_top]

    p = workspace.run("plan", "-detailed-exitcode", "-input=false")
    assert p.returncode == 0, p.stdout + p.stderr


def test_an_unknown_scope_is_a_diagnostic(workspace, synced_orchestrator):
    workspace.write(
        config(
            workspace,
            synced_orchestrator,
            """
data "orgsec_posture" "nobody" {
  scope = "account"
  id    = "999999999999"
}
""",
        )
    )
    p = workspace.run("plan", "-input=false")
    assert p.returncode != 0
    text = " ".join((p.stdout + p.stderr).replace("│", " ").split())
    assert "No score" in text and "999999999999" in text, text
