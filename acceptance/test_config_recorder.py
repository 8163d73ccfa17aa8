"""orgsec_config_recorder under real Terraform: basic, each updatable attribute in place, drift
(recording stopped, delivery channel deleted), replacement on a name change, disappears, import,
the existing-recorder error, a missing bucket, validation and destroy, in the sandbox account
666666666666 (no recorder in the demo org), through OrganizationAccountAccessRole assumed from the
management account."""
import json
import re

from conftest import Workspace, aws_call

SANDBOX = "666666666666"
ROLE = f"arn:aws:iam::{SANDBOX}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"
OTHER_ROLE = f"arn:aws:iam::{SANDBOX}:role/config-recorder"
BUCKET = "config-history-666666666666"
OTHER_BUCKET = "config-archive-666666666666"


def config(url, body):
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

resource "orgsec_config_recorder" "this" {{
{body}
}}

output "id" {{
  value = orgsec_config_recorder.this.id
}}
"""


def body(*lines, role=ROLE, bucket=BUCKET):
    return "\n".join([f'  role_arn        = "{role}"', f'  delivery_bucket = "{bucket}"', *lines])


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


def create_bucket(url, name):
    status, out = aws_call(url, "s3", SANDBOX, "PUT", f"/{name}")
    assert status == 200, out


def recorders(url):
    return ok(url, "DescribeConfigurationRecorders")["ConfigurationRecorders"]


def recording(url):
    return [s["recording"] for s in ok(url, "DescribeConfigurationRecorderStatus")["ConfigurationRecordersStatus"]]


def buckets(url):
    return [c["s3BucketName"] for c in ok(url, "DescribeDeliveryChannels")["DeliveryChannels"]]


def test_lifecycle_basic_updates_drift_replace_disappears_import_destroy(workspace, tmp_path):
    url = workspace.emulator_url
    create_bucket(url, BUCKET)
    create_bucket(url, OTHER_BUCKET)
    assert recorders(url) == [], "the sandbox starts without a recorder"

    # basic: the recorder, its channel and recording, with the planned defaults
    workspace.write(config(url, body()))
    code, text = plan_exit(workspace)
    assert code == 2 and re.search(r'\bname\s+= "default"', text), text
    apply(workspace)
    [rec] = recorders(url)
    assert rec["name"] == "default" and rec["roleARN"] == ROLE, rec
    assert rec["recordingGroup"]["allSupported"] is True, rec
    assert rec["recordingGroup"]["includeGlobalResourceTypes"] is False, rec
    assert buckets(url) == [BUCKET] and recording(url) == [True]
    assert workspace.run("output", "-raw", "id", check=True).stdout.strip() == "default"

    # role_arn, in place
    workspace.write(config(url, body(role=OTHER_ROLE)))
    code, text = plan_exit(workspace)
    assert code == 2 and "update in-place" in text and "role_arn" in text, text
    apply(workspace)
    assert recorders(url)[0]["roleARN"] == OTHER_ROLE

    # include_global_resource_types, in place
    workspace.write(config(url, body("  include_global_resource_types = true")))
    code, text = plan_exit(workspace)
    assert code == 2 and "update in-place" in text and "must be replaced" not in text, text
    apply(workspace)
    assert recorders(url)[0]["recordingGroup"]["includeGlobalResourceTypes"] is True

    # all_supported and resource_types, in place
    workspace.write(
        config(url, body("  all_supported  = false", '  resource_types = ["AWS::S3::Bucket", "AWS::IAM::Role"]'))
    )
    code, text = plan_exit(workspace)
    assert code == 2 and "update in-place" in text and "AWS::IAM::Role" in text, text
    apply(workspace)
    group = recorders(url)[0]["recordingGroup"]
    assert group["allSupported"] is False and sorted(group["resourceTypes"]) == ["AWS::IAM::Role", "AWS::S3::Bucket"]
    assert group["includeGlobalResourceTypes"] is False, group
    workspace.write(config(url, body("  all_supported  = false", '  resource_types = ["AWS::S3::Bucket"]')))
    code, text = plan_exit(workspace)
    assert code == 2 and "update in-place" in text, text
    apply(workspace)
    assert recorders(url)[0]["recordingGroup"]["resourceTypes"] == ["AWS::S3::Bucket"]
    assert recording(url) == [True], "changing the recorder does not stop it"

    # delivery_bucket, in place
    workspace.write(config(url, body(bucket=OTHER_BUCKET)))
    code, text = plan_exit(workspace)
    assert code == 2 and "update in-place" in text and OTHER_BUCKET in text, text
    apply(workspace)
    assert buckets(url) == [OTHER_BUCKET] and recording(url) == [True]
    assert recorders(url)[0]["recordingGroup"]["allSupported"] is True

    # recording, in place both ways
    workspace.write(config(url, body("  recording = false", bucket=OTHER_BUCKET)))
    code, text = plan_exit(workspace)
    assert code == 2 and "update in-place" in text, text
    apply(workspace)
    assert recording(url) == [False] and buckets(url) == [OTHER_BUCKET]
    workspace.write(config(url, body(bucket=OTHER_BUCKET)))
    apply(workspace)
    assert recording(url) == [True]

    # drift: recording stopped outside Terraform -> an in-place update starts it again
    ok(url, "StopConfigurationRecorder", {"ConfigurationRecorderName": "default"})
    code, text = plan_exit(workspace)
    assert code == 2 and "update in-place" in text and "recording" in text, text
    apply(workspace)
    assert recording(url) == [True]

    # drift: the delivery channel deleted outside Terraform (after stopping, as AWS requires)
    ok(url, "StopConfigurationRecorder", {"ConfigurationRecorderName": "default"})
    ok(url, "DeleteDeliveryChannel", {"DeliveryChannelName": "default"})
    code, text = plan_exit(workspace)
    assert code == 2 and "update in-place" in text and "delivery_bucket" in text, text
    apply(workspace)
    assert buckets(url) == [OTHER_BUCKET] and recording(url) == [True]

    # a name change replaces the recorder (AWS allows one per region: destroyed first)
    workspace.write(config(url, body('  name = "main"', bucket=OTHER_BUCKET)))
    code, text = plan_exit(workspace)
    assert code == 2 and "must be replaced" in text, text
    apply(workspace)
    assert [r["name"] for r in recorders(url)] == ["main"]
    assert buckets(url) == [OTHER_BUCKET] and recording(url) == [True]

    # disappears: the recorder deleted outside Terraform (its channel left behind) -> created again
    ok(url, "DeleteConfigurationRecorder", {"ConfigurationRecorderName": "main"})
    code, text = plan_exit(workspace)
    assert code == 2 and "will be created" in text, text
    apply(workspace)
    assert [r["name"] for r in recorders(url)] == ["main"]
    assert buckets(url) == [OTHER_BUCKET] and recording(url) == [True]

    # import into a fresh directory, then import-verify: the plan is empty
    imported = tmp_path / "import"
    imported.mkdir()
    other = Workspace(imported, url)
    other.write(config(url, body('  name = "main"', bucket=OTHER_BUCKET)))
    wrong = other.run("import", "-input=false", "orgsec_config_recorder.this", "missing")
    text = wrong.stdout + wrong.stderr
    assert wrong.returncode == 1 and "Cannot import AWS Config recorder" in text, text
    other.run("import", "-input=false", "orgsec_config_recorder.this", "main", check=True)
    assert plan_exit(other)[0] == 0
    values = json.loads(other.run("show", "-json", check=True).stdout)["values"]["root_module"]["resources"][0]
    assert values["values"]["recording"] is True and values["values"]["delivery_bucket"] == OTHER_BUCKET, values

    # destroy: stop, channel, recorder
    workspace.run("destroy", "-auto-approve", "-input=false", check=True)
    assert recorders(url) == [] and buckets(url) == [] and recording(url) == []


def test_an_existing_recorder_fails_and_says_how_to_import(workspace):
    url = workspace.emulator_url
    create_bucket(url, BUCKET)
    ok(url, "PutConfigurationRecorder", {"ConfigurationRecorder": {"name": "legacy", "roleARN": ROLE}})
    workspace.write(config(url, body()))
    result = workspace.run("apply", "-auto-approve", "-input=false")
    assert result.returncode == 1
    text = " ".join((result.stdout + result.stderr).split())  # Terraform wraps long details
    assert "already has a configuration recorder" in text and "terraform import" in text and "legacy" in text, text
    assert [r["name"] for r in recorders(url)] == ["legacy"], "the existing recorder is left alone"


def test_a_missing_bucket_fails_clearly_and_leaves_nothing_behind(workspace):
    url = workspace.emulator_url
    workspace.write(config(url, body(bucket="no-such-bucket-666666666666")))
    result = workspace.run("apply", "-auto-approve", "-input=false")
    assert result.returncode == 1
    text = " ".join((result.stdout + result.stderr).split())
    assert "NoSuchBucketException" in text and "Create the S3 bucket" in text, text
    assert recorders(url) == [] and buckets(url) == []
    # Once the bucket exists, the same configuration applies.
    create_bucket(url, "no-such-bucket-666666666666")
    apply(workspace)
    assert recording(url) == [True]


def test_invalid_role_arn_is_named_in_its_diagnostic(workspace):
    workspace.write(config(workspace.emulator_url, body(role="config-role")))
    result = workspace.run("validate")
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert "Invalid role ARN" in text and 'role_arn        = "config-role"' in text, text


def test_invalid_bucket_name_is_named_in_its_diagnostic(workspace):
    workspace.write(config(workspace.emulator_url, body(bucket="Config_History")))
    result = workspace.run("validate")
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert "Invalid bucket name" in text and 'delivery_bucket = "Config_History"' in text, text


def test_resource_types_without_all_supported_false_is_named_in_its_diagnostic(workspace):
    workspace.write(config(workspace.emulator_url, body('  resource_types = ["AWS::S3::Bucket"]')))
    result = workspace.run("validate")
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert "resource_types needs all_supported = false" in text and 'resource_types = ["AWS::S3::Bucket"]' in text


def test_all_supported_false_without_resource_types_is_named_in_its_diagnostic(workspace):
    workspace.write(config(workspace.emulator_url, body("  all_supported = false")))
    result = workspace.run("validate")
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert "Nothing to record" in text and "all_supported = false" in text, text


def test_global_types_without_all_supported_is_named_in_its_diagnostic(workspace):
    workspace.write(
        config(
            workspace.emulator_url,
            body(
                "  all_supported = false",
                '  resource_types = ["AWS::IAM::Role"]',
                "  include_global_resource_types = true",
            ),
        )
    )
    result = workspace.run("validate")
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert "include_global_resource_types needs all_supported = true" in text, text
    assert "include_global_resource_types = true" in text, text
