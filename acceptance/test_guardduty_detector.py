"""orgsec_guardduty_detector under real Terraform: basic, update, disappears, import, adopt_existing,
validation and destroy, in the sandbox account 666666666666 (no detector in the demo org), through
OrganizationAccountAccessRole assumed from the management account."""
import json

from conftest import Workspace, aws_call

SANDBOX = "666666666666"


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
  assume_role {{
    role_arn = "arn:aws:iam::{SANDBOX}:role/OrganizationAccountAccessRole"
  }}
}}

resource "orgsec_guardduty_detector" "this" {{
{body}
}}

output "detector_id" {{
  value = orgsec_guardduty_detector.this.detector_id
}}
"""


def plan_exit(ws):
    p = ws.run("plan", "-detailed-exitcode", "-input=false")
    assert p.returncode in (0, 2), p.stdout + p.stderr
    return p.returncode, p.stdout


def detectors(url):
    status, body = aws_call(url, "guardduty", SANDBOX, "GET", "/detector")
    assert status == 200, body
    return body["detectorIds"]


def get_detector(url, detector_id):
    return aws_call(url, "guardduty", SANDBOX, "GET", f"/detector/{detector_id}")


def features_of(body):
    return {f["name"]: f["status"] for f in body["features"]}


def test_lifecycle_basic_update_disappears_import_destroy(workspace, tmp_path):
    url = workspace.emulator_url
    assert detectors(url) == [], "the sandbox starts without a detector"

    # basic
    workspace.write(config(url, '  features = { S3_DATA_EVENTS = "DISABLED" }'))
    workspace.run("apply", "-auto-approve", "-input=false", check=True)
    detector_id = workspace.run("output", "-raw", "detector_id", check=True).stdout.strip()
    assert detectors(url) == [detector_id]
    status, body = get_detector(url, detector_id)
    assert status == 200 and body["status"] == "ENABLED", body
    assert features_of(body)["S3_DATA_EVENTS"] == "DISABLED"
    assert plan_exit(workspace)[0] == 0, "a second plan after apply is empty"

    # a feature changed outside Terraform that the configuration does not name is not drift
    body = json.dumps({"features": [{"name": "RDS_LOGIN_EVENTS", "status": "DISABLED"}]}).encode()
    assert aws_call(url, "guardduty", SANDBOX, "POST", f"/detector/{detector_id}", body)[0] == 200
    assert plan_exit(workspace)[0] == 0

    # update: finding_publishing_frequency
    workspace.write(
        config(url, '  features = { S3_DATA_EVENTS = "DISABLED" }\n  finding_publishing_frequency = "FIFTEEN_MINUTES"')
    )
    code, text = plan_exit(workspace)
    assert code == 2 and "finding_publishing_frequency" in text and "update in-place" in text, text
    workspace.run("apply", "-auto-approve", "-input=false", check=True)
    status, body = get_detector(url, detector_id)
    assert body["findingPublishingFrequency"] == "FIFTEEN_MINUTES", body
    assert plan_exit(workspace)[0] == 0

    # update: enable and a feature, in place
    workspace.write(
        config(
            url,
            '  enable = false\n  features = { S3_DATA_EVENTS = "ENABLED" }\n'
            '  finding_publishing_frequency = "FIFTEEN_MINUTES"',
        )
    )
    code, text = plan_exit(workspace)
    assert code == 2 and "update in-place" in text, text
    workspace.run("apply", "-auto-approve", "-input=false", check=True)
    status, body = get_detector(url, detector_id)
    assert body["status"] == "DISABLED" and features_of(body)["S3_DATA_EVENTS"] == "ENABLED", body
    assert workspace.run("output", "-raw", "detector_id", check=True).stdout.strip() == detector_id
    assert plan_exit(workspace)[0] == 0

    # disappears: deleted outside Terraform -> the next plan creates it again
    assert aws_call(url, "guardduty", SANDBOX, "DELETE", f"/detector/{detector_id}")[0] == 200
    code, text = plan_exit(workspace)
    assert code == 2 and "will be created" in text, text
    workspace.run("apply", "-auto-approve", "-input=false", check=True)
    assert plan_exit(workspace)[0] == 0
    detector_id = workspace.run("output", "-raw", "detector_id", check=True).stdout.strip()
    assert detectors(url) == [detector_id]

    # import into a fresh directory, then import-verify: the plan is empty
    imported = tmp_path / "import"
    imported.mkdir()
    other = Workspace(imported, url)
    other.write(config(url, '  enable = false\n  finding_publishing_frequency = "FIFTEEN_MINUTES"'))
    wrong = other.run("import", "-input=false", "orgsec_guardduty_detector.this", "0123456789abcdef0123456789abcdef")
    text = wrong.stdout + wrong.stderr
    assert wrong.returncode == 1 and "Cannot import GuardDuty detector" in text, text
    other.run("import", "-input=false", "orgsec_guardduty_detector.this", detector_id, check=True)
    assert plan_exit(other)[0] == 0

    # destroy
    workspace.run("destroy", "-auto-approve", "-input=false", check=True)
    assert detectors(url) == []
    assert get_detector(url, detector_id)[0] == 400


def test_an_existing_detector_fails_without_adopt_existing_and_is_taken_over_with_it(workspace):
    url = workspace.emulator_url
    status, body = aws_call(url, "guardduty", SANDBOX, "POST", "/detector", json.dumps({"enable": False}).encode())
    assert status == 200, body
    existing = body["detectorId"]

    workspace.write(config(url, '  finding_publishing_frequency = "ONE_HOUR"'))
    result = workspace.run("apply", "-auto-approve", "-input=false")
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert "adopt_existing = true" in text and "terraform import" in text and existing in text, text

    workspace.write(config(url, '  finding_publishing_frequency = "ONE_HOUR"\n  adopt_existing = true'))
    workspace.run("apply", "-auto-approve", "-input=false", check=True)
    assert workspace.run("output", "-raw", "detector_id", check=True).stdout.strip() == existing
    status, body = get_detector(url, existing)
    assert body["status"] == "ENABLED" and body["findingPublishingFrequency"] == "ONE_HOUR", body
    assert detectors(url) == [existing]
    assert plan_exit(workspace)[0] == 0


def test_invalid_frequency_is_named_in_its_diagnostic(workspace):
    workspace.write(config(workspace.emulator_url, '  finding_publishing_frequency = "HOURLY"'))
    result = workspace.run("validate")
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert "Invalid finding publishing frequency" in text and "finding_publishing_frequency" in text, text


def test_invalid_feature_status_is_named_in_its_diagnostic(workspace):
    workspace.write(config(workspace.emulator_url, '  features = { S3_DATA_EVENTS = "ON" }'))
    result = workspace.run("validate")
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert "Invalid feature status" in text and "S3_DATA_EVENTS" in text, text
