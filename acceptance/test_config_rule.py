"""orgsec_config_rule under real Terraform, with the orgsec_config_recorder it needs in the same
configuration: basic with compliance, each updatable attribute in place, input parameters whose
key order, whitespace and value types never show as a diff, drift, disappears, import, the
missing-recorder and existing-rule errors, validation and destroy, in the sandbox account
666666666666 (nothing enabled in the demo org), through OrganizationAccountAccessRole assumed from
the management account."""
import json
import urllib.parse

from conftest import Workspace, aws_call

SANDBOX = "666666666666"
ROLE = f"arn:aws:iam::{SANDBOX}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"
BUCKET = "config-history-666666666666"
ARN_PREFIX = f"arn:aws:config:us-east-1:{SANDBOX}:config-rule/config-rule-"

RECORDER = f"""
resource "orgsec_config_recorder" "this" {{
  role_arn        = "{ROLE}"
  delivery_bucket = "{BUCKET}"
}}
"""


def config(url, body, recorder=True):
    depends = "  depends_on = [orgsec_config_recorder.this]\n" if recorder else ""
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
{RECORDER if recorder else ""}
resource "orgsec_config_rule" "this" {{
{depends}{body}
}}

output "arn" {{
  value = orgsec_config_rule.this.arn
}}
"""


def plan_exit(ws):
    p = ws.run("plan", "-detailed-exitcode", "-input=false")
    assert p.returncode in (0, 2), p.stdout + p.stderr
    return p.returncode, p.stdout


def apply(ws):
    ws.run("apply", "-auto-approve", "-input=false", check=True)
    assert plan_exit(ws)[0] == 0, "a second plan after apply is empty"


def config_call(url, op, payload=None):
    """An AWS Config (awsJson1_1) call as the sandbox's administrator."""
    return aws_call(
        url,
        "config",
        SANDBOX,
        "POST",
        "/",
        json.dumps(payload or {}).encode(),
        headers={"X-Amz-Target": f"StarlingDoveService.{op}", "Content-Type": "application/x-amz-json-1.1"},
    )


def ok(url, op, payload=None):
    status, out = config_call(url, op, payload)
    assert status == 200, (op, out)
    return out


def create_bucket(url, name=BUCKET):
    status, out = aws_call(url, "s3", SANDBOX, "PUT", f"/{name}")
    assert status == 200, out


def rules(url):
    return {r["ConfigRuleName"]: r for r in ok(url, "DescribeConfigRules")["ConfigRules"]}


def rule_values(ws):
    state = json.loads(ws.run("show", "-json", check=True).stdout)
    [rule] = [r for r in state["values"]["root_module"]["resources"] if r["type"] == "orgsec_config_rule"]
    return rule["values"]


S3_RULE = """  name              = "s3-bucket-level-public-access"
  source_identifier = "S3_BUCKET_LEVEL_PUBLIC_ACCESS_PROHIBITED"
"""

PASSWORD_RULE = """  name              = "s3-bucket-level-public-access"
  source_identifier = "IAM_PASSWORD_POLICY"
  input_parameters  = jsonencode({ RequireSymbols = true, MinimumPasswordLength = 14 })
"""

NAME = "s3-bucket-level-public-access"


def put_parameters(url, text):
    """Puts the rule as Terraform left it, with `text` as its input parameters."""
    rule = rules(url)[NAME]
    rule["InputParameters"] = text
    for k in ("ConfigRuleArn", "ConfigRuleId", "ConfigRuleState", "EvaluationModes"):
        rule.pop(k, None)
    ok(url, "PutConfigRule", {"ConfigRule": rule})


def test_lifecycle_basic_updates_parameters_disappears_import_destroy(workspace, tmp_path):
    url = workspace.emulator_url
    create_bucket(url)

    # basic: recorder first, then the rule; the delivery bucket blocks public access: COMPLIANT
    workspace.write(config(url, S3_RULE + '  resource_types = ["AWS::S3::Bucket"]'))
    apply(workspace)
    rule = rules(url)[NAME]
    assert rule["Source"] == {"Owner": "AWS", "SourceIdentifier": "S3_BUCKET_LEVEL_PUBLIC_ACCESS_PROHIBITED"}, rule
    assert rule["Scope"]["ComplianceResourceTypes"] == ["AWS::S3::Bucket"], rule
    arn = workspace.run("output", "-raw", "arn", check=True).stdout.strip()
    assert arn == rule["ConfigRuleArn"] and arn.startswith(ARN_PREFIX), arn
    assert rule_values(workspace)["compliance"] == "COMPLIANT"

    # resource_types, in place
    workspace.write(config(url, S3_RULE + '  resource_types = ["AWS::S3::Bucket", "AWS::S3::AccessPoint"]'))
    code, text = plan_exit(workspace)
    assert code == 2 and "update in-place" in text and "AWS::S3::AccessPoint" in text, text
    apply(workspace)
    assert sorted(rules(url)[NAME]["Scope"]["ComplianceResourceTypes"]) == ["AWS::S3::AccessPoint", "AWS::S3::Bucket"]

    # description, in place
    workspace.write(config(url, S3_RULE + '  description = "Buckets block public access"'))
    code, text = plan_exit(workspace)
    assert code == 2 and "update in-place" in text and "must be replaced" not in text, text
    apply(workspace)
    rule = rules(url)[NAME]
    assert rule["Description"] == "Buckets block public access" and "Scope" not in rule, rule

    # input_parameters with whitespace and a trailing newline: sent compact, no diff afterwards
    workspace.write(
        config(url, S3_RULE + '  input_parameters = <<-EOT\n    { "excludedPublicBuckets" : "public-site" }\n  EOT')
    )
    code, text = plan_exit(workspace)
    assert code == 2 and "update in-place" in text and "input_parameters" in text, text
    apply(workspace)
    assert rules(url)[NAME]["InputParameters"] == '{"excludedPublicBuckets":"public-site"}'
    assert arn == workspace.run("output", "-raw", "arn", check=True).stdout.strip(), "updated in place"

    # source_identifier, in place; numbers and booleans reach AWS as strings, and plan no diff
    workspace.write(config(url, PASSWORD_RULE))
    code, text = plan_exit(workspace)
    assert code == 2 and "update in-place" in text and "IAM_PASSWORD_POLICY" in text, text
    apply(workspace)
    rule = rules(url)[NAME]
    assert rule["Source"]["SourceIdentifier"] == "IAM_PASSWORD_POLICY", rule
    assert rule["InputParameters"] == '{"MinimumPasswordLength":"14","RequireSymbols":"true"}', rule
    assert rule_values(workspace)["compliance"] == "COMPLIANT", "the sandbox has a strong password policy"
    assert arn == workspace.run("output", "-raw", "arn", check=True).stdout.strip(), "updated in place"

    # compliance is read, not remembered: the policy deleted outside Terraform makes it NON_COMPLIANT,
    # which changes no configured attribute, so nothing is planned
    form = urllib.parse.urlencode({"Action": "DeleteAccountPasswordPolicy", "Version": "2010-05-08"}).encode()
    headers = {"content-type": "application/x-www-form-urlencoded"}
    status, out = aws_call(url, "iam", SANDBOX, "POST", "/", form, headers)
    assert status == 200, out
    assert plan_exit(workspace)[0] == 0
    workspace.run("apply", "-refresh-only", "-auto-approve", "-input=false", check=True)
    assert rule_values(workspace)["compliance"] == "NON_COMPLIANT"

    # AWS's text in another key order and spacing, but the same parameters: no drift
    put_parameters(url, '{ "RequireSymbols": "true",  "MinimumPasswordLength": "14" }')
    assert plan_exit(workspace)[0] == 0
    # A parameter changed outside Terraform is drift, put back by the next apply
    put_parameters(url, '{"MinimumPasswordLength":"8","RequireSymbols":"true"}')
    code, text = plan_exit(workspace)
    assert code == 2 and "update in-place" in text and "input_parameters" in text, text
    apply(workspace)
    assert rules(url)[NAME]["InputParameters"] == '{"MinimumPasswordLength":"14","RequireSymbols":"true"}'

    # input_parameters removed: cleared in place
    workspace.write(config(url, PASSWORD_RULE.splitlines(keepends=True)[0] + PASSWORD_RULE.splitlines()[1]))
    code, text = plan_exit(workspace)
    assert code == 2 and "update in-place" in text and "input_parameters" in text, text
    apply(workspace)
    assert rules(url)[NAME]["InputParameters"] == "{}"
    workspace.write(config(url, PASSWORD_RULE))
    apply(workspace)

    # disappears: deleted outside Terraform -> the next plan creates it again
    ok(url, "DeleteConfigRule", {"ConfigRuleName": NAME})
    code, text = plan_exit(workspace)
    assert code == 2 and "will be created" in text, text
    apply(workspace)
    assert list(rules(url)) == [NAME]

    # import into a fresh directory (the rule alone), then import-verify: the plan is empty.
    # Parameters written as strings are exactly the text AWS holds.
    imported = tmp_path / "import"
    imported.mkdir()
    other = Workspace(imported, url)
    other.write(
        config(
            url,
            PASSWORD_RULE.replace(
                "jsonencode({ RequireSymbols = true, MinimumPasswordLength = 14 })",
                'jsonencode({ RequireSymbols = "true", MinimumPasswordLength = "14" })',
            ),
            recorder=False,
        )
    )
    wrong = other.run("import", "-input=false", "orgsec_config_rule.this", "missing")
    text = wrong.stdout + wrong.stderr
    assert wrong.returncode == 1 and "Cannot import AWS Config rule" in text, text
    other.run("import", "-input=false", "orgsec_config_rule.this", NAME, check=True)
    assert plan_exit(other)[0] == 0
    values = rule_values(other)
    assert values["arn"].startswith(ARN_PREFIX) and values["source_identifier"] == "IAM_PASSWORD_POLICY", values

    # destroy: the rule first, then the recorder it depends on
    workspace.run("destroy", "-auto-approve", "-input=false", check=True)
    assert rules(url) == {}
    assert ok(url, "DescribeConfigurationRecorders")["ConfigurationRecorders"] == []


def test_a_rule_without_a_recorder_says_to_add_orgsec_config_recorder(workspace):
    url = workspace.emulator_url
    workspace.write(config(url, S3_RULE, recorder=False))
    result = workspace.run("apply", "-auto-approve", "-input=false")
    assert result.returncode == 1
    text = " ".join((result.stdout + result.stderr).split())  # Terraform wraps long details
    assert "no configuration recorder" in text and "orgsec_config_recorder" in text and "depends_on" in text, text
    assert rules(url) == {}


def test_an_existing_rule_fails_and_says_how_to_import(workspace):
    url = workspace.emulator_url
    ok(url, "PutConfigurationRecorder", {"ConfigurationRecorder": {"name": "default", "roleARN": ROLE}})
    ok(
        url,
        "PutConfigRule",
        {"ConfigRule": {"ConfigRuleName": NAME, "Source": {"Owner": "AWS", "SourceIdentifier": "IAM_PASSWORD_POLICY"}}},
    )
    workspace.write(config(url, S3_RULE, recorder=False))
    result = workspace.run("apply", "-auto-approve", "-input=false")
    assert result.returncode == 1
    text = " ".join((result.stdout + result.stderr).split())
    assert "already exists" in text and f"terraform import <address> {NAME}" in text, text
    assert rules(url)[NAME]["Source"]["SourceIdentifier"] == "IAM_PASSWORD_POLICY", "left alone"


def validate(workspace, body):
    workspace.write(config(workspace.emulator_url, body))
    result = workspace.run("validate")
    assert result.returncode == 1
    return result.stdout + result.stderr


def test_invalid_json_in_input_parameters_is_named_in_its_diagnostic(workspace):
    text = validate(workspace, S3_RULE + '  input_parameters = "{excludedPublicBuckets: 1}"')
    assert "Invalid input parameters" in text and "not valid JSON" in text, text
    assert 'input_parameters = "{excludedPublicBuckets: 1}"' in text, text


def test_input_parameters_that_are_not_an_object_are_named_in_their_diagnostic(workspace):
    text = validate(workspace, S3_RULE + '  input_parameters = jsonencode(["public-site"])')
    assert "Invalid input parameters" in text and "must be a JSON object" in text, text
    assert "input_parameters = jsonencode" in text, text


def test_a_nested_parameter_value_is_named_in_its_diagnostic(workspace):
    text = validate(workspace, S3_RULE + '  input_parameters = jsonencode({ excludedPublicBuckets = ["a", "b"] })')
    assert "Invalid input parameters" in text and '"excludedPublicBuckets" is an array' in text, text


def test_invalid_source_identifier_is_named_in_its_diagnostic(workspace):
    text = validate(workspace, '  name              = "r"\n  source_identifier = "s3-bucket-public-read-prohibited"')
    assert "Invalid source identifier" in text, text
    assert 'source_identifier = "s3-bucket-public-read-prohibited"' in text, text
