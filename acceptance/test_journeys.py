"""The examples of examples/org-baseline, examples/app-team and examples/auditor, as their users
run them: each is applied, re-planned empty and destroyed with real Terraform, against the
emulator's demo organization and a real `orgsec serve`."""
import json
import shutil
from pathlib import Path

from conftest import ROOT, Orchestrator, aws_call


def prepare(ws, example: str):
    """The example's files in the workspace, its module sources made absolute."""
    for f in (ROOT / "examples" / example).glob("*.tf"):
        text = f.read_text().replace('"../../modules/', f'"{ROOT / "modules"}/')
        (ws.path / f.name).write_text(text)
    ws.run("init", "-input=false", check=True)


def converge(ws, account, *var_args):
    ws.run("apply", "-auto-approve", "-input=false", *var_args, check=True, account=account)
    plan = ws.run("plan", "-detailed-exitcode", "-input=false", *var_args, account=account)
    assert plan.returncode == 0, "the plan after apply is empty:\n" + plan.stdout + plan.stderr
    return {k: v["value"] for k, v in json.loads(ws.run("output", "-json", check=True, account=account).stdout).items()}


def variables(ws, orch, token):
    return ["-var", f"endpoint_url={ws.emulator_url}", "-var", f"orchestrator_endpoint={orch.url}", "-var", f"orchestrator_token={token}"]


def test_org_baseline_baselines_and_enrolls_the_sandbox(workspace, orchestrator):
    url = workspace.emulator_url
    assert aws_call(url, "securityhub", "666666666666", "GET", "/accounts")[0] == 401, "the sandbox starts bare"
    prepare(workspace, "org-baseline")
    args = variables(workspace, orchestrator, Orchestrator.ADMIN_TOKEN)
    out = converge(workspace, "111111111111", *args)
    assert out["members"] == {"sandbox": {"securityhub": "Enabled", "guardduty": "Enabled"}}, out
    assert sorted(out["sandbox"]["standard_subscriptions"]) == [
        "aws-foundational-security-best-practices/v/1.0.0",
        "cis-aws-foundations-benchmark/v/3.0.0",
    ]
    assert len(out["bindings"]) == 8 and set(orchestrator.bindings()) == set(out["bindings"])
    workspace.run("destroy", "-auto-approve", "-input=false", *args, check=True, account="111111111111")
    assert orchestrator.bindings() == {}
    assert aws_call(url, "securityhub", "666666666666", "GET", "/accounts")[0] == 401, "Security Hub is off again"


def test_app_team_extends_the_baseline_in_its_own_account(workspace, orchestrator):
    prepare(workspace, "app-team")
    args = variables(workspace, orchestrator, Orchestrator.APP_TOKEN)
    out = converge(workspace, "333333333333", *args)
    assert out == {"bindings": ["web-close-ssh"], "config_rules": ["web-s3-versioning"]}, out
    binding = orchestrator.bindings()["web-close-ssh"]
    assert binding["scope"]["accounts"] == ["333333333333"], binding
    workspace.run("destroy", "-auto-approve", "-input=false", *args, check=True, account="333333333333")
    assert orchestrator.bindings() == {}


def test_auditor_reads_posture_with_an_auditor_token(workspace, synced_orchestrator):
    prepare(workspace, "auditor")
    args = variables(workspace, synced_orchestrator, Orchestrator.AUDIT_TOKEN)
    out = converge(workspace, "222222222222", *args)
    assert 0 < out["org_score"] < 100, out
    assert out["fix_first"] and set(out["ou_scores"]) == {"Root/Prod", "Root/Dev"}, out
    workspace.run("destroy", "-auto-approve", "-input=false", *args, check=True, account="222222222222")
    # The auditor's token changes nothing: a binding made with it is refused.
    (workspace.path / "binding.tf").write_text(
        'resource "orgsec_remediation_binding" "nope" {\n'
        '  name     = "auditor-was-here"\n'
        '  playbook = "revoke-public-ingress"\n'
        '  controls = ["EC2.13"]\n'
        "}\n"
    )
    refused = workspace.run("apply", "-auto-approve", "-input=false", *args, account="222222222222")
    assert refused.returncode != 0 and "read-only" in refused.stdout + refused.stderr, refused.stdout + refused.stderr
    assert "auditor-was-here" not in synced_orchestrator.bindings()
