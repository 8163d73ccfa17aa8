"""orgsec_remediation_binding under real Terraform against a real `orgsec serve`: basic, an
in-place update per updatable attribute, drift made with `orgsec bindings put`, disappears
(`orgsec bindings delete`), import with import-verify, destroy, the provider's own validation, the
orchestrator's catalogue check at plan time, an app-team token outside its scope, and an
orchestrator that is down. Every apply is followed by an empty `plan -detailed-exitcode`."""
import json

from conftest import Orchestrator, Workspace

RESOURCE = "orgsec_remediation_binding.this"


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

resource "orgsec_remediation_binding" "this" {{
{body}
}}

output "revision" {{
  value = orgsec_remediation_binding.this.revision
}}
"""


def flat(text):
    """Terraform's output with its wrapping and box drawing undone, for substring checks."""
    return " ".join(text.replace("│", " ").split())


def apply(ws):
    ws.run("apply", "-auto-approve", "-input=false", check=True)
    assert_converged(ws)


def assert_converged(ws):
    p = ws.run("plan", "-detailed-exitcode", "-input=false")
    assert p.returncode == 0, "a plan after apply is empty:\n" + p.stdout + p.stderr


def plan_changes(ws):
    p = ws.run("plan", "-detailed-exitcode", "-input=false")
    assert p.returncode == 2, p.stdout + p.stderr
    return p.stdout


BASE = """  name     = "public-ingress"
  controls = ["EC2.13"]
  playbook = "revoke-public-ingress"
"""


def test_lifecycle_basic_updates_drift_disappears_import_destroy(workspace, orchestrator, tmp_path_factory):
    ws, orch = workspace, orchestrator

    # basic: the mode defaults to approve; the orchestrator records who created it
    ws.write(config(ws, orch, BASE))
    apply(ws)
    b = orch.bindings()["public-ingress"]
    assert (b["playbook"], b["controls"], b["mode"], b["revision"]) == ("revoke-public-ingress", ["EC2.13"], "approve", 1)
    assert b["created_by"] == "platform"
    assert b["scope"] == {"accounts": [], "organizational_units": [], "tags": {}}

    # one in-place update per updatable attribute, each checked in the store
    body = BASE + '  mode = "auto"\n'
    steps = [
        (body, lambda b: b["mode"] == "auto"),
        (
            body := body.replace('controls = ["EC2.13"]', 'controls = ["EC2.13", "EC2.14"]'),
            lambda b: b["controls"] == ["EC2.13", "EC2.14"],
        ),
        (
            body := body + '  scope {\n    accounts             = ["333333333333"]\n    organizational_units = ["Root/Prod"]\n  }\n',
            lambda b: b["scope"]["accounts"] == ["333333333333"] and b["scope"]["organizational_units"] == ["Root/Prod"],
        ),
        (body := body + '  parameters = { ports = "22,3389" }\n', lambda b: b["parameters"] == {"ports": "22,3389"}),
        (body := body + '  notify = ["secops-slack"]\n', lambda b: b["notify"] == ["secops-slack"]),
    ]
    for revision, (step, check) in enumerate(steps, start=2):
        ws.write(config(ws, orch, step))
        text = plan_changes(ws)
        assert "will be updated in-place" in text and "must be replaced" not in text, text
        apply(ws)
        b = orch.bindings()["public-ingress"]
        assert check(b), b
        assert b["revision"] == revision, b
        assert json.loads(ws.run("output", "-json", check=True).stdout)["revision"]["value"] == revision

    # drift: changed with `orgsec bindings put` -> the plan shows it and the apply puts it back
    drifted = dict(orch.bindings()["public-ingress"], mode="dry_run", notify=[])
    drifted["scope"] = dict(drifted["scope"], accounts=["333333333333", "444444444444"])
    orch.cli("bindings", "put", "--file", "-", stdin=json.dumps(drifted))
    text = plan_changes(ws)
    assert '~ mode' in text and '"dry_run" -> "auto"' in text, text
    assert '"444444444444"' in text and "secops-slack" in text, text
    apply(ws)
    b = orch.bindings()["public-ingress"]
    assert (b["mode"], b["notify"], b["scope"]["accounts"]) == ("auto", ["secops-slack"], ["333333333333"]), b

    # disappears: deleted with `orgsec bindings delete` -> the plan creates it again
    orch.cli("bindings", "delete", "public-ingress")
    text = plan_changes(ws)
    assert f"{RESOURCE} will be created" in text, text
    apply(ws)
    assert orch.bindings()["public-ingress"]["revision"] == 1

    # import into a fresh working directory, then import-verify: nothing to change
    other = Workspace(tmp_path_factory.mktemp("import"), ws.emulator_url)
    other.write(config(other, orch, body))
    other.run("import", "-input=false", RESOURCE, "public-ingress", check=True)
    assert_converged(other)
    state = json.loads(other.run("show", "-json", check=True).stdout)
    imported = state["values"]["root_module"]["resources"][0]["values"]
    assert (imported["id"], imported["mode"], imported["parameters"]) == ("public-ingress", "auto", {"ports": "22,3389"})
    missing = other.run("import", "-input=false", "orgsec_remediation_binding.nope", "nope")
    assert missing.returncode != 0

    # destroy
    ws.run("destroy", "-auto-approve", "-input=false", check=True)
    assert orch.bindings() == {}


def test_the_provider_validates_every_attribute(workspace, orchestrator):
    ws = workspace
    ws.write(
        config(
            ws,
            orchestrator,
            """  name     = "has space"
  controls = ["EC2"]
  playbook = "revoke-public-ingress"
  mode     = "sometimes"
  scope {
    accounts             = ["3333"]
    organizational_units = ["Prod"]
  }
""",
        )
    )
    result = ws.run("validate")
    text = flat(result.stdout + result.stderr)
    assert result.returncode == 1, text
    for summary, quoted in [
        ("Invalid binding name", 'name = "has space"'),
        ("Invalid control id", 'controls = ["EC2"]'),
        ("Invalid mode", 'mode = "sometimes"'),
        ("Invalid account id", 'accounts = ["3333"]'),
        ("Invalid OU path", 'organizational_units = ["Prod"]'),
    ]:
        assert summary in text and quoted in text, f"{summary} / {quoted}: {text}"
    assert orchestrator.bindings() == {}


def test_the_catalogue_rejects_a_bad_binding_at_plan_time(workspace, orchestrator):
    ws = workspace
    ws.write(config(ws, orchestrator, '  name = "x"\n  controls = ["EC2.13"]\n  playbook = "revoke-everything"\n'))
    result = ws.run("plan", "-input=false")
    text = flat(result.stdout + result.stderr)
    assert result.returncode == 1, text
    assert "Invalid remediation binding" in text and 'no playbook named "revoke-everything"' in text, text
    assert 'playbook = "revoke-everything"' in text, text

    ws.write(
        config(
            ws,
            orchestrator,
            '  name = "x"\n  controls = ["S3.1"]\n  playbook = "revoke-public-ingress"\n  parameters = { colour = "blue" }\n',
        )
    )
    result = ws.run("plan", "-input=false")
    text = flat(result.stdout + result.stderr)
    assert result.returncode == 1, text
    assert "revoke-public-ingress does not fix S3.1" in text, text
    assert 'revoke-public-ingress takes no parameter "colour"' in text, text
    assert orchestrator.bindings() == {}


def test_an_app_team_token_binds_only_within_its_scope(workspace, orchestrator):
    ws, orch = workspace, orchestrator
    outside = BASE + '  scope {\n    accounts = ["444444444444"]\n  }\n'
    ws.write(config(ws, orch, outside, token=Orchestrator.APP_TOKEN))
    result = ws.run("plan", "-input=false")
    text = flat(result.stdout + result.stderr)
    assert result.returncode == 1, text
    assert "refused" in text and 'token "web-team" (app-team) may only bind within accounts [333333333333]' in text, text
    assert "the binding's scope is accounts [444444444444]" in text, text

    everywhere = BASE
    ws.write(config(ws, orch, everywhere, token=Orchestrator.APP_TOKEN))
    result = ws.run("apply", "-auto-approve", "-input=false")
    assert result.returncode == 1 and "every account in the organization" in flat(result.stdout + result.stderr)

    inside = BASE + '  scope {\n    accounts = ["333333333333"]\n  }\n'
    ws.write(config(ws, orch, inside, token=Orchestrator.APP_TOKEN))
    apply(ws)
    assert orch.bindings()["public-ingress"]["created_by"] == "web-team"
    assert orch.bindings() == {"public-ingress": orch.bindings()["public-ingress"]}


def test_a_down_orchestrator_cannot_be_reached(workspace, orchestrator):
    ws, orch = workspace, orchestrator
    ws.write(config(ws, orch, BASE))
    url = orch.url
    orch.stop()
    plan = ws.run("plan", "-input=false")
    text = flat(plan.stdout + plan.stderr)
    assert plan.returncode == 0 and "Remediation binding not checked" in text, text
    result = ws.run("apply", "-auto-approve", "-input=false")
    text = flat(result.stdout + result.stderr)
    assert result.returncode == 1, text
    assert f"cannot reach the orchestrator at {url}" in text and "Is `orgsec serve` running there" in text, text
