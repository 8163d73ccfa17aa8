"""Second-client conformance: botocore must parse every emulator response.

The Rust integration tests drive the emulator through aws-sdk-rust. This suite drives the same
demo organization through botocore, the library under the AWS CLI and most Python security
tools, and asserts on the parsed values, so that a response only one SDK accepts is caught.

On top of the assertions on parsed values, every response is walked against botocore's model of
the operation (`wire_check.py`): a member botocore would silently drop, a boolean it would read
as false, a timestamp in the wrong format or a value outside its enum fails the call.

The emulator binary is started once for the session (`ORGSEC_EMULATOR_BIN`, default
`target/debug/orgsec-emulator` under the repository root) on a free loopback port.

Tests share that one emulator. Tests that change the world change only what no other test
reads, or check the state before and after their own change.
"""

import datetime
import json
import os
import re
import signal
import subprocess
import threading
from pathlib import Path

import botocore.config
import botocore.session
import pytest
from botocore.exceptions import ClientError

from wire_check import WireChecker

REPO_ROOT = Path(__file__).resolve().parents[3]
REGION = "us-east-1"

MANAGEMENT = "111111111111"
ADMIN = "222222222222"
PROD_A = "333333333333"
PROD_B = "444444444444"
DEV = "555555555555"
SANDBOX = "666666666666"
MEMBERS = {ADMIN, PROD_A, PROD_B, DEV, SANDBOX}
ALL_ACCOUNTS = MEMBERS | {MANAGEMENT}
EXTERNAL_ID = "orgsec-demo"
REMEDIATION_ROLE = "OrgSecRemediationRole"
PUBLIC_BUCKET = "orgsec-demo-public-555555555555"
UNKNOWN_KEY = "AKID999999999999"

STARTUP_TIMEOUT_S = 60
LISTENING = re.compile(r"orgsec-emulator listening on (http://\S+)")


# ---------------------------------------------------------------------------------------------
# The emulator process and clients


def _emulator_binary() -> Path:
    path = Path(os.environ.get("ORGSEC_EMULATOR_BIN", "target/debug/orgsec-emulator"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


class _Emulator:
    """The emulator child process; its stdout is drained on a thread so it never blocks."""

    def __init__(self, binary: Path):
        if not binary.is_file():
            pytest.exit(f"emulator binary not found at {binary}: build it or set ORGSEC_EMULATOR_BIN", returncode=2)
        self.lines: list[str] = []
        self._url: str | None = None
        self._found = threading.Event()
        self.proc = subprocess.Popen(
            [str(binary), "--listen", "127.0.0.1:0", "--scenario", "demo", "--no-rate-limits"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env={**os.environ, "NO_COLOR": "1"},
        )
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if self._url is None:
                m = LISTENING.search(line)
                if m:
                    self._url = m.group(1).rstrip("/")
                    self._found.set()
        self._found.set()

    def url(self) -> str:
        self._found.wait(timeout=STARTUP_TIMEOUT_S)
        if self._url is None:
            self.stop()
            output = "\n".join(self.lines[-40:])
            raise RuntimeError(f"the emulator did not report its URL (exit code {self.proc.returncode}):\n{output}")
        return self._url

    def stop(self) -> None:
        if self.proc.poll() is None:
            # SIGINT is the emulator's own shutdown signal (Ctrl-C).
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reader.join(timeout=5)


@pytest.fixture(scope="session")
def emulator_url():
    em = _Emulator(_emulator_binary())
    try:
        yield em.url()
    finally:
        em.stop()


def _config(**extra) -> botocore.config.Config:
    return botocore.config.Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}, **extra)


def _strip_account_host_prefix(request, **_):
    """S3 Control's endpoint rules put `<AccountId>.` in front of the host, which on loopback
    names no machine; send the request to the emulator's own host instead."""
    scheme, rest = request.url.split("://", 1)
    host, sep, path = rest.partition("/")
    m = re.fullmatch(r"\d{12}\.(.+)", host)
    if m:
        request.url = f"{scheme}://{m.group(1)}{sep}{path}"


@pytest.fixture(scope="session")
def session():
    """A botocore session that the developer's own AWS settings cannot steer: no profile, no
    config or credentials file, no endpoint overrides, and no proxy for loopback."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("AWS_"):
                mp.delenv(name)
        mp.setenv("AWS_CONFIG_FILE", os.devnull)
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        for name in ("NO_PROXY", "no_proxy"):
            mp.setenv(name, ",".join(filter(None, [os.environ.get(name), "127.0.0.1", "localhost"])))
        yield botocore.session.get_session()


def _client_factory(session, url):
    """`make(service, account)` signs in as `account`'s administrator; pass
    `credentials=(key, secret, token)` to sign with other credentials. Every client checks
    each raw response against botocore's model (see `wire_check`)."""
    cache = {}
    checker = WireChecker()

    def make(service, account=ADMIN, credentials=None):
        key, secret, token = credentials or (f"AKID{account}", "x", None)
        cache_key = (service, key)
        if cache_key not in cache:
            client = session.create_client(
                service,
                region_name=REGION,
                endpoint_url=url,
                aws_access_key_id=key,
                aws_secret_access_key=secret,
                aws_session_token=token,
                config=_config(),
            )
            if service == "s3control":
                client.meta.events.register("before-sign.s3-control.*", _strip_account_host_prefix)
            checker.attach(client)
            cache[cache_key] = client
        return cache[cache_key]

    return make


@pytest.fixture(scope="session")
def make_client(emulator_url, session):
    """Clients of the emulator shared by the whole session."""
    return _client_factory(session, emulator_url)


@pytest.fixture
def fresh_client(session):
    """Clients of an emulator of the test's own, for changes other tests must not see."""
    em = _Emulator(_emulator_binary())
    try:
        yield _client_factory(session, em.url())
    finally:
        em.stop()


def _error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def _assert_aware_datetime(value):
    assert isinstance(value, datetime.datetime), repr(value)
    assert value.tzinfo is not None, repr(value)
    # Any emulated timestamp is well after 2000 and not far in the future.
    assert datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc) < value
    assert value < datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=3650)


def _assume_remediation_role(make_client, account, external_id=EXTERNAL_ID, session_name="orgsec-botocore"):
    sts = make_client("sts", ADMIN)
    kwargs = {"RoleArn": f"arn:aws:iam::{account}:role/{REMEDIATION_ROLE}", "RoleSessionName": session_name}
    if external_id is not None:
        kwargs["ExternalId"] = external_id
    return sts.assume_role(**kwargs)


# ---------------------------------------------------------------------------------------------
# STS (awsQuery)


def test_sts_get_caller_identity(make_client):
    out = make_client("sts", ADMIN).get_caller_identity()
    assert out["Account"] == ADMIN
    assert out["Arn"] == f"arn:aws:iam::{ADMIN}:root"
    assert out["UserId"] == ADMIN
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert out["ResponseMetadata"]["RequestId"]


def test_sts_assume_role_and_use_the_session(make_client):
    out = _assume_remediation_role(make_client, PROD_A)
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    assert creds["SecretAccessKey"]
    assert creds["SessionToken"]
    _assert_aware_datetime(creds["Expiration"])
    assert creds["Expiration"] > datetime.datetime.now(datetime.timezone.utc)
    user = out["AssumedRoleUser"]
    assert user["Arn"] == f"arn:aws:sts::{PROD_A}:assumed-role/{REMEDIATION_ROLE}/orgsec-botocore"
    assert user["AssumedRoleId"].endswith(":orgsec-botocore")
    assert out["PackedPolicySize"] == 0

    role_sts = make_client(
        "sts", credentials=(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    )
    me = role_sts.get_caller_identity()
    assert me["Account"] == PROD_A
    assert me["Arn"] == user["Arn"]
    assert me["UserId"] == user["AssumedRoleId"]


def test_sts_assume_role_with_a_wrong_external_id_is_access_denied(make_client):
    with pytest.raises(ClientError) as e:
        _assume_remediation_role(make_client, PROD_A, external_id="not-the-external-id")
    assert _error_code(e) == "AccessDenied"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "sts:AssumeRole" in e.value.response["Error"]["Message"]
    assert e.value.response["Error"]["Type"] == "Sender"


# ---------------------------------------------------------------------------------------------
# Organizations (awsJson1_1)


def test_organizations_describe_organization(make_client):
    org = make_client("organizations", PROD_A).describe_organization()["Organization"]
    assert org["MasterAccountId"] == MANAGEMENT
    assert org["FeatureSet"] == "ALL"
    assert org["Id"].startswith("o-")
    assert org["Arn"] == f"arn:aws:organizations::{MANAGEMENT}:organization/{org['Id']}"
    assert org["MasterAccountEmail"] == "aws-management@example.com"


def test_organizations_list_accounts(make_client):
    pages = make_client("organizations", MANAGEMENT).get_paginator("list_accounts").paginate(
        PaginationConfig={"PageSize": 4}
    )
    accounts = [a for page in pages for a in page["Accounts"]]
    by_id = {a["Id"]: a for a in accounts}
    assert len(accounts) == len(by_id), "pagination returned an account twice"
    assert set(by_id) == ALL_ACCOUNTS
    dev = by_id[DEV]
    assert dev["Name"] == "dev"
    assert dev["Email"] == "aws-dev@example.com"
    assert dev["Status"] == "ACTIVE"
    assert dev["Arn"].endswith(f"/{DEV}")
    _assert_aware_datetime(dev["JoinedTimestamp"])


def test_organizations_list_organizational_units_for_parent(make_client):
    orgs = make_client("organizations", MANAGEMENT)
    roots = orgs.list_roots()["Roots"]
    assert len(roots) == 1 and roots[0]["Id"].startswith("r-")
    ous = orgs.list_organizational_units_for_parent(ParentId=roots[0]["Id"])["OrganizationalUnits"]
    by_name = {ou["Name"]: ou for ou in ous}
    assert set(by_name) == {"Prod", "Dev", "Sandbox"}
    assert all(ou["Id"].startswith("ou-") and ou["Arn"].endswith(ou["Id"]) for ou in ous)
    in_sandbox = orgs.list_accounts_for_parent(ParentId=by_name["Sandbox"]["Id"])["Accounts"]
    assert [a["Id"] for a in in_sandbox] == [SANDBOX]


# ---------------------------------------------------------------------------------------------
# IAM (awsQuery)


def test_iam_password_policy_missing_then_updated(make_client):
    iam = make_client("iam", PROD_B)
    with pytest.raises(ClientError) as e:
        iam.get_account_password_policy()
    assert _error_code(e) == "NoSuchEntity"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    iam.update_account_password_policy(
        MinimumPasswordLength=14,
        RequireSymbols=True,
        RequireNumbers=True,
        RequireUppercaseCharacters=True,
        RequireLowercaseCharacters=True,
        AllowUsersToChangePassword=True,
        MaxPasswordAge=90,
        PasswordReusePrevention=24,
    )
    policy = iam.get_account_password_policy()["PasswordPolicy"]
    assert policy["MinimumPasswordLength"] == 14
    assert policy["RequireSymbols"] is True
    assert policy["RequireNumbers"] is True
    assert policy["RequireUppercaseCharacters"] is True
    assert policy["RequireLowercaseCharacters"] is True
    assert policy["AllowUsersToChangePassword"] is True
    assert policy["MaxPasswordAge"] == 90
    assert policy["PasswordReusePrevention"] == 24
    assert policy["ExpirePasswords"] is True


def test_iam_list_users(make_client):
    users = make_client("iam", PROD_B).list_users()["Users"]
    by_name = {u["UserName"]: u for u in users}
    assert "ci-deployer" in by_name
    user = by_name["ci-deployer"]
    assert user["Arn"] == f"arn:aws:iam::{PROD_B}:user/ci-deployer"
    assert user["Path"] == "/"
    assert user["UserId"]
    _assert_aware_datetime(user["CreateDate"])


# ---------------------------------------------------------------------------------------------
# EC2 (ec2Query)


def _web_admin_group(ec2):
    out = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["web-admin"]}])
    groups = out["SecurityGroups"]
    assert len(groups) == 1, groups
    return groups[0]


def _open_ports(group):
    return {
        (p["IpProtocol"], p["FromPort"], p["ToPort"], r["CidrIp"])
        for p in group["IpPermissions"]
        for r in p.get("IpRanges", [])
    }


def test_ec2_describe_security_groups(make_client):
    group = _web_admin_group(make_client("ec2", PROD_A))
    assert group["GroupName"] == "web-admin"
    assert group["GroupId"].startswith("sg-")
    assert group["OwnerId"] == PROD_A
    assert group["Description"] == "Web tier with remote administration"
    assert group["VpcId"].startswith("vpc-")
    ports = _open_ports(group)
    assert ("tcp", 3389, 3389, "0.0.0.0/0") in ports
    assert ("tcp", 443, 443, "10.0.0.0/8") in ports
    descriptions = {r.get("Description") for p in group["IpPermissions"] for r in p.get("IpRanges", [])}
    assert "rdp from anywhere" in descriptions
    assert isinstance(group.get("IpPermissionsEgress", []), list)


def test_ec2_revoke_security_group_ingress_through_the_remediation_role(make_client):
    creds = _assume_remediation_role(make_client, PROD_A)["Credentials"]
    ec2 = make_client(
        "ec2", credentials=(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    )
    group = _web_admin_group(ec2)
    assert ("tcp", 22, 22, "0.0.0.0/0") in _open_ports(group)

    out = ec2.revoke_security_group_ingress(
        GroupId=group["GroupId"],
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    assert out["Return"] is True

    after = ec2.describe_security_groups(GroupIds=[group["GroupId"]])["SecurityGroups"]
    assert len(after) == 1
    ports = _open_ports(after[0])
    assert ("tcp", 22, 22, "0.0.0.0/0") not in ports
    assert ("tcp", 3389, 3389, "0.0.0.0/0") in ports


def test_ec2_get_ebs_encryption_by_default(make_client):
    assert make_client("ec2", PROD_A).get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False
    assert make_client("ec2", PROD_B).get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is True


# ---------------------------------------------------------------------------------------------
# S3 (restXml)


def test_s3_list_buckets(make_client):
    out = make_client("s3", DEV).list_buckets()
    by_name = {b["Name"]: b for b in out["Buckets"]}
    assert PUBLIC_BUCKET in by_name
    _assert_aware_datetime(by_name[PUBLIC_BUCKET]["CreationDate"])
    assert out["Owner"]["ID"]
    # Bucket listings are per account.
    other = {b["Name"] for b in make_client("s3", PROD_A).list_buckets()["Buckets"]}
    assert PUBLIC_BUCKET not in other


def test_s3_get_bucket_policy_status(make_client):
    status = make_client("s3", DEV).get_bucket_policy_status(Bucket=PUBLIC_BUCKET)["PolicyStatus"]
    assert status["IsPublic"] is True


def test_s3_get_bucket_policy(make_client):
    policy = json.loads(make_client("s3", DEV).get_bucket_policy(Bucket=PUBLIC_BUCKET)["Policy"])
    statement = policy["Statement"][0]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == "*"


def test_s3_get_public_access_block_of_the_public_bucket_is_missing(make_client):
    with pytest.raises(ClientError) as e:
        make_client("s3", DEV).get_public_access_block(Bucket=PUBLIC_BUCKET)
    assert _error_code(e) == "NoSuchPublicAccessBlockConfiguration"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_s3_missing_bucket_is_no_such_bucket(make_client):
    with pytest.raises(ClientError) as e:
        make_client("s3", DEV).get_bucket_policy_status(Bucket="orgsec-no-such-bucket-555555555555")
    assert _error_code(e) == "NoSuchBucket"


# ---------------------------------------------------------------------------------------------
# S3 Control (restXml, account id in the host)


def test_s3control_get_public_access_block_missing_in_dev(make_client):
    with pytest.raises(ClientError) as e:
        make_client("s3control", DEV).get_public_access_block(AccountId=DEV)
    assert _error_code(e) == "NoSuchPublicAccessBlockConfiguration"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_s3control_get_public_access_block_in_prod(make_client):
    conf = make_client("s3control", PROD_A).get_public_access_block(AccountId=PROD_A)[
        "PublicAccessBlockConfiguration"
    ]
    assert conf == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }


# ---------------------------------------------------------------------------------------------
# Security Hub (restJson)


def test_securityhub_describe_hub(make_client):
    hub = make_client("securityhub", ADMIN).describe_hub()
    assert hub["HubArn"] == f"arn:aws:securityhub:{REGION}:{ADMIN}:hub/default"
    assert hub["AutoEnableControls"] is True
    assert hub["ControlFindingGenerator"] == "SECURITY_CONTROL"
    # A string in the model, not a timestamp: botocore leaves it as sent.
    assert isinstance(hub["SubscribedAt"], str) and hub["SubscribedAt"].startswith("20")


def test_securityhub_get_enabled_standards(make_client):
    subs = make_client("securityhub", ADMIN).get_enabled_standards()["StandardsSubscriptions"]
    assert subs
    arns = {s["StandardsArn"] for s in subs}
    assert any("aws-foundational-security-best-practices" in a for a in arns), arns
    for s in subs:
        assert s["StandardsStatus"] == "READY"
        assert s["StandardsSubscriptionArn"].startswith(f"arn:aws:securityhub:{REGION}:{ADMIN}:subscription/")
        assert isinstance(s["StandardsInput"], dict)


def test_securityhub_get_findings_paginated_sees_members(make_client):
    hub = make_client("securityhub", ADMIN)
    filters = {
        "AwsAccountId": [{"Value": a, "Comparison": "EQUALS"} for a in (PROD_A, PROD_B, DEV)],
        "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}],
    }
    pages = list(hub.get_paginator("get_findings").paginate(Filters=filters, PaginationConfig={"PageSize": 5}))
    assert len(pages) > 1, "expected more than one page of member findings"
    assert all(len(p["Findings"]) <= 5 for p in pages)
    findings = [f for p in pages for f in p["Findings"]]
    ids = [f["Id"] for f in findings]
    assert len(ids) == len(set(ids)), "pagination returned a finding twice"
    assert {f["AwsAccountId"] for f in findings} == {PROD_A, PROD_B, DEV}
    for f in findings:
        assert f["RecordState"] == "ACTIVE"
        assert f["SchemaVersion"] == "2018-10-08"
        assert f["ProductArn"].startswith("arn:aws:securityhub:")
        assert f["Severity"]["Label"] in {"INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"}
        assert f["Resources"] and f["Resources"][0]["Type"]
        assert isinstance(f["CreatedAt"], str) and isinstance(f["UpdatedAt"], str)

    # Dev's account-level Block Public Access is off: S3.1 fails there.
    s3_1 = [
        f
        for f in findings
        if f["AwsAccountId"] == DEV and f.get("Compliance", {}).get("SecurityControlId") == "S3.1"
    ]
    assert s3_1, "no S3.1 finding for Dev"
    assert s3_1[0]["Compliance"]["Status"] == "FAILED"


def test_securityhub_batch_update_findings(make_client):
    hub = make_client("securityhub", ADMIN)
    filters = {
        "AwsAccountId": [{"Value": PROD_B, "Comparison": "EQUALS"}],
        "ComplianceStatus": [{"Value": "FAILED", "Comparison": "EQUALS"}],
        "WorkflowStatus": [{"Value": "NEW", "Comparison": "EQUALS"}],
    }
    found = hub.get_findings(Filters=filters, MaxResults=1)["Findings"]
    assert found, "no failed NEW finding in 444444444444"
    target = {"Id": found[0]["Id"], "ProductArn": found[0]["ProductArn"]}

    out = hub.batch_update_findings(
        FindingIdentifiers=[target],
        Workflow={"Status": "NOTIFIED"},
        Note={"Text": "routed to the data team", "UpdatedBy": "orgsec-botocore"},
    )
    assert out["ProcessedFindings"] == [target]
    assert out["UnprocessedFindings"] == []

    after = hub.get_findings(Filters={"Id": [{"Value": target["Id"], "Comparison": "EQUALS"}]})["Findings"]
    assert len(after) == 1
    assert after[0]["Workflow"]["Status"] == "NOTIFIED"
    assert after[0]["Note"]["Text"] == "routed to the data team"
    assert after[0]["Note"]["UpdatedBy"] == "orgsec-botocore"


def test_securityhub_not_subscribed_is_invalid_access(make_client):
    with pytest.raises(ClientError) as e:
        make_client("securityhub", SANDBOX).describe_hub()
    assert _error_code(e) == "InvalidAccessException"
    assert e.value.response["Error"]["Message"]


# ---------------------------------------------------------------------------------------------
# GuardDuty (restJson)


def test_guardduty_detectors_and_findings(make_client):
    gd = make_client("guardduty", ADMIN)
    detectors = gd.list_detectors()["DetectorIds"]
    assert len(detectors) == 1
    detector = detectors[0]

    ids = [i for p in gd.get_paginator("list_findings").paginate(DetectorId=detector) for i in p["FindingIds"]]
    assert ids, "the delegated admin sees no GuardDuty findings"
    findings = gd.get_findings(DetectorId=detector, FindingIds=ids[:50])["Findings"]
    assert len(findings) == min(len(ids), 50)
    by_type = {f["Type"]: f for f in findings}
    miner = by_type.get("CryptoCurrency:EC2/BitcoinTool.B!DNS")
    assert miner is not None, sorted(by_type)
    assert miner["AccountId"] == PROD_A
    assert miner["Region"] == REGION
    assert miner["Resource"]["ResourceType"] == "Instance"
    assert miner["Resource"]["InstanceDetails"]["InstanceId"].startswith("i-")
    assert isinstance(miner["Severity"], float) and miner["Severity"] > 0
    assert isinstance(miner["CreatedAt"], str) and isinstance(miner["UpdatedAt"], str)
    assert miner["Arn"].startswith(f"arn:aws:guardduty:{REGION}:")
    assert "InstanceCredentialExfiltration" in " ".join(by_type), sorted(by_type)


# ---------------------------------------------------------------------------------------------
# Config (awsJson1_1)


def test_config_describe_configuration_recorders(make_client):
    recorders = make_client("config", PROD_A).describe_configuration_recorders()["ConfigurationRecorders"]
    assert len(recorders) == 1
    rec = recorders[0]
    assert rec["name"] == "default"
    assert rec["roleARN"].startswith(f"arn:aws:iam::{PROD_A}:role/")
    assert rec["recordingGroup"]["allSupported"] is True
    assert rec["recordingGroup"]["includeGlobalResourceTypes"] is True


def test_config_describe_compliance_by_config_rule(make_client):
    config = make_client("config", DEV)
    config.put_config_rule(
        ConfigRule={
            "ConfigRuleName": "orgsec-botocore-account-bpa",
            "Source": {"Owner": "AWS", "SourceIdentifier": "S3_ACCOUNT_LEVEL_PUBLIC_ACCESS_BLOCKS"},
        }
    )
    rules = config.describe_config_rules(ConfigRuleNames=["orgsec-botocore-account-bpa"])["ConfigRules"]
    assert rules[0]["ConfigRuleName"] == "orgsec-botocore-account-bpa"
    assert rules[0]["Source"]["SourceIdentifier"] == "S3_ACCOUNT_LEVEL_PUBLIC_ACCESS_BLOCKS"
    assert rules[0]["ConfigRuleArn"].startswith(f"arn:aws:config:{REGION}:{DEV}:config-rule/")

    out = config.describe_compliance_by_config_rule(ConfigRuleNames=["orgsec-botocore-account-bpa"])
    items = out["ComplianceByConfigRules"]
    assert len(items) == 1
    assert items[0]["ConfigRuleName"] == "orgsec-botocore-account-bpa"
    assert items[0]["Compliance"]["ComplianceType"] == "NON_COMPLIANT"
    assert items[0]["Compliance"]["ComplianceContributorCount"]["CappedCount"] >= 1

    details = config.get_compliance_details_by_config_rule(ConfigRuleName="orgsec-botocore-account-bpa")
    results = details["EvaluationResults"]
    assert results and results[0]["ComplianceType"] == "NON_COMPLIANT"
    _assert_aware_datetime(results[0]["ResultRecordedTime"])


# ---------------------------------------------------------------------------------------------
# IAM Access Analyzer (restJson)


def test_accessanalyzer_analyzers_and_public_bucket_finding(make_client):
    aa = make_client("accessanalyzer", DEV)
    analyzers = aa.list_analyzers()["analyzers"]
    assert len(analyzers) == 1
    analyzer = analyzers[0]
    assert analyzer["name"] == "orgsec-account-analyzer"
    assert analyzer["type"] == "ACCOUNT"
    assert analyzer["status"] == "ACTIVE"
    assert analyzer["arn"] == f"arn:aws:access-analyzer:{REGION}:{DEV}:analyzer/orgsec-account-analyzer"
    _assert_aware_datetime(analyzer["createdAt"])

    findings = [
        f
        for p in aa.get_paginator("list_findings").paginate(analyzerArn=analyzer["arn"])
        for f in p["findings"]
    ]
    bucket = [f for f in findings if f["resource"] == f"arn:aws:s3:::{PUBLIC_BUCKET}"]
    assert bucket, findings
    f = bucket[0]
    assert f["resourceType"] == "AWS::S3::Bucket"
    assert f["isPublic"] is True
    assert f["status"] == "ACTIVE"
    assert f["resourceOwnerAccount"] == DEV
    _assert_aware_datetime(f["createdAt"])
    _assert_aware_datetime(f["analyzedAt"])
    _assert_aware_datetime(f["updatedAt"])


# ---------------------------------------------------------------------------------------------
# Errors for an unknown access key, one per protocol


UNKNOWN_KEY_CASES = [
    ("sts", lambda c: c.get_caller_identity(), "InvalidClientTokenId"),
    ("iam", lambda c: c.list_users(), "InvalidClientTokenId"),
    ("organizations", lambda c: c.describe_organization(), "UnrecognizedClientException"),
    ("config", lambda c: c.describe_configuration_recorders(), "UnrecognizedClientException"),
    ("securityhub", lambda c: c.describe_hub(), "UnrecognizedClientException"),
    ("guardduty", lambda c: c.list_detectors(), "UnrecognizedClientException"),
    ("accessanalyzer", lambda c: c.list_analyzers(), "UnrecognizedClientException"),
    ("ec2", lambda c: c.describe_security_groups(), "AuthFailure"),
    ("s3", lambda c: c.list_buckets(), "InvalidAccessKeyId"),
    ("s3control", lambda c: c.get_public_access_block(AccountId=DEV), "InvalidAccessKeyId"),
]


@pytest.mark.parametrize(("service", "call", "code"), UNKNOWN_KEY_CASES, ids=[c[0] for c in UNKNOWN_KEY_CASES])
def test_unknown_access_key(make_client, service, call, code):
    client = make_client(service, credentials=(UNKNOWN_KEY, "x", None))
    with pytest.raises(ClientError) as e:
        call(client)
    assert _error_code(e) == code
    assert e.value.response["Error"]["Message"]
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] in (401, 403)


# ---------------------------------------------------------------------------------------------
# A wider sweep: more operations per service, each response walked against botocore's model.
# Each entry drives one or a few related calls and asserts on what it reads.


def _root_id(mk):
    return mk("organizations", MANAGEMENT).list_roots()["Roots"][0]["Id"]


def _ou_id(mk, name):
    ous = mk("organizations", MANAGEMENT).list_organizational_units_for_parent(ParentId=_root_id(mk))
    return next(ou["Id"] for ou in ous["OrganizationalUnits"] if ou["Name"] == name)


def _detector(mk, account=ADMIN):
    return mk("guardduty", account).list_detectors()["DetectorIds"][0]


def _analyzer_arn(account=DEV):
    return f"arn:aws:access-analyzer:{REGION}:{account}:analyzer/orgsec-account-analyzer"


def _miner_instance(mk):
    reservations = mk("ec2", PROD_A).describe_instances(
        Filters=[{"Name": "tag:Name", "Values": ["miner-1"]}]
    )["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    assert len(instances) == 1, reservations
    return instances[0]


def _sweep_organizations_describe_account(mk):
    a = mk("organizations", MANAGEMENT).describe_account(AccountId=DEV)["Account"]
    assert (a["Id"], a["Name"], a["Status"]) == (DEV, "dev", "ACTIVE")
    _assert_aware_datetime(a["JoinedTimestamp"])


def _sweep_organizations_parents_and_children(mk):
    orgs = mk("organizations", MANAGEMENT)
    parents = orgs.list_parents(ChildId=DEV)["Parents"]
    dev_ou = _ou_id(mk, "Dev")
    assert parents == [{"Id": dev_ou, "Type": "ORGANIZATIONAL_UNIT"}]
    children = orgs.list_children(ParentId=dev_ou, ChildType="ACCOUNT")["Children"]
    assert children == [{"Id": DEV, "Type": "ACCOUNT"}]
    ou = orgs.describe_organizational_unit(OrganizationalUnitId=dev_ou)["OrganizationalUnit"]
    assert ou["Name"] == "Dev"


def _sweep_organizations_tags(mk):
    tags = mk("organizations", MANAGEMENT).list_tags_for_resource(ResourceId=DEV)["Tags"]
    assert {"Key": "team", "Value": "web"} in tags
    assert {"Key": "orgsec:criticality", "Value": "2"} in tags


def _sweep_organizations_delegated_admins(mk):
    orgs = mk("organizations", MANAGEMENT)
    admins = orgs.list_delegated_administrators()["DelegatedAdministrators"]
    assert [a["Id"] for a in admins] == [ADMIN]
    _assert_aware_datetime(admins[0]["DelegationEnabledDate"])
    access = orgs.list_aws_service_access_for_organization()["EnabledServicePrincipals"]
    principals = {p["ServicePrincipal"] for p in access}
    assert "securityhub.amazonaws.com" in principals
    for p in access:
        _assert_aware_datetime(p["DateEnabled"])


def _sweep_iam_user_and_keys(mk):
    iam = mk("iam", PROD_B)
    user = iam.get_user(UserName="ci-deployer")["User"]
    assert user["UserName"] == "ci-deployer"
    keys = iam.list_access_keys(UserName="ci-deployer")["AccessKeyMetadata"]
    assert len(keys) == 1 and keys[0]["Status"] == "Active"
    _assert_aware_datetime(keys[0]["CreateDate"])
    last = iam.get_access_key_last_used(AccessKeyId=keys[0]["AccessKeyId"])
    assert last["UserName"] == "ci-deployer"
    assert "AccessKeyLastUsed" in last


def _sweep_iam_roles(mk):
    iam = mk("iam", PROD_A)
    names = {r["RoleName"] for r in iam.list_roles()["Roles"]}
    assert REMEDIATION_ROLE in names
    role = iam.get_role(RoleName=REMEDIATION_ROLE)["Role"]
    assert role["Arn"] == f"arn:aws:iam::{PROD_A}:role/{REMEDIATION_ROLE}"
    _assert_aware_datetime(role["CreateDate"])
    assert isinstance(role["MaxSessionDuration"], int)
    # IAM sends policy documents URL-encoded; botocore decodes them into dicts.
    trust = role["AssumeRolePolicyDocument"]
    assert isinstance(trust, dict), trust
    statement = trust["Statement"][0]
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{ADMIN}:root"}
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}
    inline = iam.list_role_policies(RoleName=REMEDIATION_ROLE)["PolicyNames"]
    for name in inline:
        doc = iam.get_role_policy(RoleName=REMEDIATION_ROLE, PolicyName=name)["PolicyDocument"]
        assert isinstance(doc, dict) and doc["Statement"], doc
    iam.list_attached_role_policies(RoleName=REMEDIATION_ROLE)


def _sweep_iam_instance_profiles(mk):
    iam = mk("iam", PROD_A)
    profiles = iam.list_instance_profiles()["InstanceProfiles"]
    by_name = {p["InstanceProfileName"]: p for p in profiles}
    assert "web-app" in by_name, sorted(by_name)
    got = iam.get_instance_profile(InstanceProfileName="web-app")["InstanceProfile"]
    assert got["Arn"] == by_name["web-app"]["Arn"]
    _assert_aware_datetime(got["CreateDate"])
    for role in got["Roles"]:
        listed = iam.list_instance_profiles_for_role(RoleName=role["RoleName"])["InstanceProfiles"]
        assert "web-app" in {p["InstanceProfileName"] for p in listed}


def _sweep_iam_existing_password_policy(mk):
    policy = mk("iam", PROD_A).get_account_password_policy()["PasswordPolicy"]
    assert isinstance(policy["MinimumPasswordLength"], int)
    assert isinstance(policy["AllowUsersToChangePassword"], bool)


def _sweep_ec2_instances(mk):
    instance = _miner_instance(mk)
    assert instance["InstanceId"].startswith("i-")
    assert instance["State"]["Name"] in {"running", "pending", "stopped"}
    assert isinstance(instance["State"]["Code"], int)
    _assert_aware_datetime(instance["LaunchTime"])
    assert "web-admin" in {g["GroupName"] for g in instance["SecurityGroups"]}
    assert instance["IamInstanceProfile"]["Arn"].endswith("/web-app")
    ec2 = mk("ec2", PROD_A)
    attr = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="disableApiTermination")
    assert attr["InstanceId"] == instance["InstanceId"]
    assert isinstance(attr["DisableApiTermination"]["Value"], bool)
    assocs = ec2.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"]
    assert instance["InstanceId"] in {a["InstanceId"] for a in assocs}


def _sweep_ec2_network(mk):
    ec2 = mk("ec2", PROD_A)
    vpcs = ec2.describe_vpcs()["Vpcs"]
    assert vpcs and all(v["VpcId"].startswith("vpc-") and v["CidrBlock"] for v in vpcs)
    assert all(isinstance(v["IsDefault"], bool) for v in vpcs)
    group = _web_admin_group(ec2)
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group["GroupId"]]}])[
        "SecurityGroupRules"
    ]
    assert rules and all(r["GroupId"] == group["GroupId"] for r in rules)
    assert all(isinstance(r["IsEgress"], bool) for r in rules)
    assert any(r["FromPort"] == 3389 and not r["IsEgress"] for r in rules)
    regions = ec2.describe_regions()["Regions"]
    assert REGION in {r["RegionName"] for r in regions}


def _sweep_ec2_storage(mk):
    ec2 = mk("ec2", PROD_A)
    volumes = ec2.describe_volumes()["Volumes"]
    for v in volumes:
        assert v["VolumeId"].startswith("vol-")
        assert isinstance(v["Encrypted"], bool) and isinstance(v["Size"], int)
        _assert_aware_datetime(v["CreateTime"])
    snaps = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    for s in snaps:
        assert s["SnapshotId"].startswith("snap-")
        _assert_aware_datetime(s["StartTime"])


def _sweep_s3_bucket_reads(mk):
    s3 = mk("s3", DEV)
    loc = s3.get_bucket_location(Bucket=PUBLIC_BUCKET)
    # us-east-1 is the empty location constraint (botocore gives None).
    assert loc.get("LocationConstraint") in (None, "")
    acl = s3.get_bucket_acl(Bucket=PUBLIC_BUCKET)
    assert acl["Owner"]["ID"]
    assert acl["Grants"]
    for g in acl["Grants"]:
        assert g["Permission"] in {"FULL_CONTROL", "WRITE", "WRITE_ACP", "READ", "READ_ACP"}
        assert g["Grantee"]["Type"] in {"CanonicalUser", "AmazonCustomerByEmail", "Group"}
    owner_grant = [g for g in acl["Grants"] if g["Grantee"]["Type"] == "CanonicalUser"]
    assert owner_grant and owner_grant[0]["Grantee"]["ID"] == acl["Owner"]["ID"]
    s3.head_bucket(Bucket=PUBLIC_BUCKET)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=PUBLIC_BUCKET)
    assert _error_code(e) == "NoSuchTagSet"


def _sweep_s3_bucket_round_trip(mk):
    s3 = mk("s3", SANDBOX)
    bucket = "orgsec-botocore-round-trip-666666666666"
    s3.create_bucket(Bucket=bucket)
    try:
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": False,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": False,
            },
        )
        conf = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert conf == {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": False,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": False,
        }
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "owner", "Value": "secops"}]})
        assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "owner", "Value": "secops"}]
        with pytest.raises(ClientError) as e:
            s3.get_bucket_policy_status(Bucket=bucket)
        assert _error_code(e) == "NoSuchBucketPolicy"
        s3.delete_bucket_tagging(Bucket=bucket)
        s3.delete_public_access_block(Bucket=bucket)
    finally:
        s3.delete_bucket(Bucket=bucket)
    assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}


def _sweep_s3control_round_trip(mk):
    s3c = mk("s3control", SANDBOX)
    before = s3c.get_public_access_block(AccountId=SANDBOX)["PublicAccessBlockConfiguration"]
    s3c.put_public_access_block(
        AccountId=SANDBOX,
        PublicAccessBlockConfiguration={**before, "IgnorePublicAcls": not before["IgnorePublicAcls"]},
    )
    after = s3c.get_public_access_block(AccountId=SANDBOX)["PublicAccessBlockConfiguration"]
    assert after == {**before, "IgnorePublicAcls": not before["IgnorePublicAcls"]}
    s3c.put_public_access_block(AccountId=SANDBOX, PublicAccessBlockConfiguration=before)
    assert s3c.get_public_access_block(AccountId=SANDBOX)["PublicAccessBlockConfiguration"] == before


def _sweep_securityhub_standards(mk):
    hub = mk("securityhub", ADMIN)
    standards = hub.describe_standards()["Standards"]
    assert standards and all(s["StandardsArn"] and s["Name"] for s in standards)
    assert all(isinstance(s["EnabledByDefault"], bool) for s in standards)
    sub = hub.get_enabled_standards()["StandardsSubscriptions"][0]
    controls = hub.describe_standards_controls(StandardsSubscriptionArn=sub["StandardsSubscriptionArn"])["Controls"]
    assert controls
    for c in controls[:20]:
        assert c["ControlStatus"] in {"ENABLED", "DISABLED"}
        _assert_aware_datetime(c["ControlStatusUpdatedAt"])


def _sweep_securityhub_members(mk):
    hub = mk("securityhub", ADMIN)
    members = hub.list_members(OnlyAssociated=False)["Members"]
    assert {m["AccountId"] for m in members} == {PROD_A, PROD_B, DEV}
    for m in members:
        assert m["MemberStatus"] == "Enabled"
        assert m["AdministratorId"] == ADMIN
        _assert_aware_datetime(m["UpdatedAt"])
    got = hub.get_members(AccountIds=[DEV, SANDBOX])
    assert [m["AccountId"] for m in got["Members"]] == [DEV]
    assert [u["AccountId"] for u in got["UnprocessedAccounts"]] == [SANDBOX]
    admin = mk("securityhub", PROD_A).get_administrator_account()["Administrator"]
    assert admin["AccountId"] == ADMIN and admin["MemberStatus"] == "Enabled"
    assert mk("securityhub", PROD_A).list_invitations()["Invitations"] == []


def _sweep_securityhub_organization(mk):
    admins = mk("securityhub", MANAGEMENT).list_organization_admin_accounts()["AdminAccounts"]
    assert admins == [{"AccountId": ADMIN, "Status": "ENABLED"}]
    conf = mk("securityhub", ADMIN).describe_organization_configuration()
    assert conf["AutoEnable"] is True
    assert isinstance(conf["MemberAccountLimitReached"], bool)
    assert conf["AutoEnableStandards"] in {"DEFAULT", "NONE"}


def _sweep_securityhub_controls(mk):
    hub = mk("securityhub", ADMIN)
    got = hub.batch_get_security_controls(SecurityControlIds=["S3.1", "EC2.13"])
    by_id = {c["SecurityControlId"]: c for c in got["SecurityControls"]}
    assert set(by_id) == {"S3.1", "EC2.13"}
    assert by_id["S3.1"]["SeverityRating"] in {"LOW", "MEDIUM", "HIGH", "CRITICAL"}
    definitions = hub.list_security_control_definitions()["SecurityControlDefinitions"]
    assert "S3.1" in {d["SecurityControlId"] for d in definitions}
    assert all(isinstance(d["CurrentRegionAvailability"], str) for d in definitions)
    hub.describe_action_targets()
    hub.list_automation_rules()


def _sweep_securityhub_sorted_findings(mk):
    hub = mk("securityhub", ADMIN)
    out = hub.get_findings(
        Filters={"SeverityLabel": [{"Value": "CRITICAL", "Comparison": "EQUALS"}, {"Value": "HIGH", "Comparison": "EQUALS"}]},
        SortCriteria=[{"Field": "SeverityNormalized", "SortOrder": "desc"}],
        MaxResults=10,
    )
    findings = out["Findings"]
    assert findings
    normalized = [f["Severity"]["Normalized"] for f in findings]
    assert normalized == sorted(normalized, reverse=True)
    assert all(f["Severity"]["Label"] in {"CRITICAL", "HIGH"} for f in findings)


def _sweep_guardduty_detector(mk):
    gd = mk("guardduty", ADMIN)
    detector = _detector(mk)
    got = gd.get_detector(DetectorId=detector)
    assert got["Status"] == "ENABLED"
    assert got["FindingPublishingFrequency"] == "SIX_HOURS"
    assert isinstance(got["CreatedAt"], str)
    tags = gd.list_tags_for_resource(ResourceArn=f"arn:aws:guardduty:{REGION}:{ADMIN}:detector/{detector}")
    assert isinstance(tags.get("Tags", {}), dict)


def _sweep_guardduty_members(mk):
    gd = mk("guardduty", ADMIN)
    detector = _detector(mk)
    members = gd.list_members(DetectorId=detector, OnlyAssociated="false")["Members"]
    assert {m["AccountId"] for m in members} == {PROD_A, PROD_B, DEV}
    assert all(m["RelationshipStatus"] == "Enabled" for m in members)
    got = gd.get_members(DetectorId=detector, AccountIds=[PROD_A, SANDBOX])
    assert [m["AccountId"] for m in got["Members"]] == [PROD_A]
    assert [u["AccountId"] for u in got["UnprocessedAccounts"]] == [SANDBOX]
    member_gd = mk("guardduty", PROD_A)
    admin = member_gd.get_administrator_account(DetectorId=_detector(mk, PROD_A))["Administrator"]
    assert admin["AccountId"] == ADMIN and admin["RelationshipStatus"] == "Enabled"
    assert member_gd.get_invitations_count()["InvitationsCount"] == 0
    assert member_gd.list_invitations()["Invitations"] == []


def _sweep_guardduty_organization(mk):
    admins = mk("guardduty", MANAGEMENT).list_organization_admin_accounts()["AdminAccounts"]
    assert admins == [{"AdminAccountId": ADMIN, "AdminStatus": "ENABLED"}]
    conf = mk("guardduty", ADMIN).describe_organization_configuration(DetectorId=_detector(mk))
    assert conf["AutoEnableOrganizationMembers"] == "NEW"
    assert isinstance(conf["MemberAccountLimitReached"], bool)


def _sweep_guardduty_statistics(mk):
    gd = mk("guardduty", ADMIN)
    stats = gd.get_findings_statistics(DetectorId=_detector(mk), FindingStatisticTypes=["COUNT_BY_SEVERITY"])
    counts = stats["FindingStatistics"]["CountBySeverity"]
    assert counts and all(isinstance(v, int) for v in counts.values())


def _sweep_config_recorder_status_and_channel(mk):
    config = mk("config", PROD_A)
    status = config.describe_configuration_recorder_status()["ConfigurationRecordersStatus"]
    assert len(status) == 1 and status[0]["recording"] is True
    _assert_aware_datetime(status[0]["lastStartTime"])
    channels = config.describe_delivery_channels()["DeliveryChannels"]
    assert channels[0]["s3BucketName"] == f"config-bucket-{PROD_A}"


def _sweep_config_rules_and_resources(mk):
    config = mk("config", PROD_B)
    config.put_config_rule(
        ConfigRule={
            "ConfigRuleName": "orgsec-botocore-access-keys",
            "Source": {"Owner": "AWS", "SourceIdentifier": "ACCESS_KEYS_ROTATED"},
            "InputParameters": json.dumps({"maxAccessKeyAge": "90"}),
        }
    )
    rules = {r["ConfigRuleName"]: r for r in config.describe_config_rules()["ConfigRules"]}
    assert rules["orgsec-botocore-access-keys"]["ConfigRuleState"] == "ACTIVE"
    by_resource = config.describe_compliance_by_resource()["ComplianceByResources"]
    for item in by_resource:
        assert item["Compliance"]["ComplianceType"] in {"COMPLIANT", "NON_COMPLIANT", "NOT_APPLICABLE", "INSUFFICIENT_DATA"}
    config.start_config_rules_evaluation(ConfigRuleNames=["orgsec-botocore-access-keys"])
    details = config.get_compliance_details_by_config_rule(ConfigRuleName="orgsec-botocore-access-keys")
    for r in details["EvaluationResults"]:
        _assert_aware_datetime(r["ResultRecordedTime"])
        _assert_aware_datetime(r["EvaluationResultIdentifier"]["OrderingTimestamp"])
    config.delete_config_rule(ConfigRuleName="orgsec-botocore-access-keys")


def _sweep_config_aggregator(mk):
    config = mk("config", ADMIN)
    aggs = config.describe_configuration_aggregators()["ConfigurationAggregators"]
    assert [a["ConfigurationAggregatorName"] for a in aggs] == ["orgsec-org-aggregator"]
    _assert_aware_datetime(aggs[0]["CreationTime"])
    assert aggs[0]["OrganizationAggregationSource"]["AllAwsRegions"] is True
    out = config.describe_aggregate_compliance_by_config_rules(ConfigurationAggregatorName="orgsec-org-aggregator")
    for item in out["AggregateComplianceByConfigRules"]:
        assert item["AccountId"] in MEMBERS and item["AwsRegion"] == REGION


def _sweep_accessanalyzer_analyzer(mk):
    aa = mk("accessanalyzer", DEV)
    analyzer = aa.get_analyzer(analyzerName="orgsec-account-analyzer")["analyzer"]
    assert analyzer["arn"] == _analyzer_arn()
    _assert_aware_datetime(analyzer["createdAt"])
    assert isinstance(aa.list_archive_rules(analyzerName="orgsec-account-analyzer")["archiveRules"], list)
    assert isinstance(aa.list_tags_for_resource(resourceArn=_analyzer_arn()).get("tags", {}), dict)


def _sweep_accessanalyzer_finding(mk):
    aa = mk("accessanalyzer", DEV)
    resource = f"arn:aws:s3:::{PUBLIC_BUCKET}"
    listed = aa.list_findings(
        analyzerArn=_analyzer_arn(), filter={"resource": {"eq": [resource]}}
    )["findings"]
    assert len(listed) == 1
    finding = aa.get_finding(analyzerArn=_analyzer_arn(), id=listed[0]["id"])["finding"]
    assert finding["resource"] == resource
    assert finding["isPublic"] is True
    assert finding["principal"] == {"AWS": "*"} or "*" in json.dumps(finding["principal"])
    assert "s3:GetObject" in finding["action"]
    v2 = aa.list_findings_v2(analyzerArn=_analyzer_arn())["findings"]
    assert listed[0]["id"] in {f["id"] for f in v2}
    got_v2 = aa.get_finding_v2(analyzerArn=_analyzer_arn(), id=listed[0]["id"])
    assert got_v2["resource"] == resource
    assert got_v2["findingType"] == "ExternalAccess"
    _assert_aware_datetime(got_v2["createdAt"])
    analyzed = aa.get_analyzed_resource(analyzerArn=_analyzer_arn(), resourceArn=resource)["resource"]
    assert analyzed["isPublic"] is True
    assert analyzed["resourceOwnerAccount"] == DEV
    _assert_aware_datetime(analyzed["analyzedAt"])


def _paginate_all(client, operation, key, page_size, **kwargs):
    pages = list(client.get_paginator(operation).paginate(PaginationConfig={"PageSize": page_size}, **kwargs))
    items = [item for page in pages for item in page[key]]
    return pages, items


def _sweep_pagination_iam_roles(mk):
    pages, roles = _paginate_all(mk("iam", PROD_A), "list_roles", "Roles", 1)
    assert len(pages) == len(roles) >= 2
    assert all(p["IsTruncated"] is True for p in pages[:-1]) and pages[-1]["IsTruncated"] is False
    names = [r["RoleName"] for r in roles]
    assert len(names) == len(set(names)) and REMEDIATION_ROLE in names


def _sweep_pagination_ec2_security_groups(mk):
    ec2 = mk("ec2", PROD_A)
    pages, groups = _paginate_all(ec2, "describe_security_groups", "SecurityGroups", 5)
    ids = [g["GroupId"] for g in groups]
    assert len(ids) == len(set(ids))
    assert {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]} == set(ids)


def _sweep_pagination_guardduty_findings(mk):
    gd = mk("guardduty", ADMIN)
    pages, ids = _paginate_all(gd, "list_findings", "FindingIds", 1, DetectorId=_detector(mk))
    assert len(ids) >= 2 and len(ids) == len(set(ids))
    assert len(pages) >= len(ids)


def _sweep_pagination_accessanalyzer_findings(mk):
    aa = mk("accessanalyzer", DEV)
    _, findings = _paginate_all(aa, "list_findings", "findings", 1, analyzerArn=_analyzer_arn())
    ids = [f["id"] for f in findings]
    assert ids and len(ids) == len(set(ids))


def _sweep_pagination_config_compliance_by_resource(mk):
    config = mk("config", DEV)
    config.put_config_rule(
        ConfigRule={
            "ConfigRuleName": "orgsec-botocore-bucket-bpa",
            "Source": {"Owner": "AWS", "SourceIdentifier": "S3_BUCKET_LEVEL_PUBLIC_ACCESS_PROHIBITED"},
        }
    )
    try:
        _, items = _paginate_all(config, "describe_compliance_by_resource", "ComplianceByResources", 1)
        keys = [(i["ResourceType"], i["ResourceId"]) for i in items]
        assert keys and len(keys) == len(set(keys))
        assert ("AWS::S3::Bucket", PUBLIC_BUCKET) in keys, keys
    finally:
        config.delete_config_rule(ConfigRuleName="orgsec-botocore-bucket-bpa")


SWEEP = {name[len("_sweep_"):]: fn for name, fn in list(globals().items()) if name.startswith("_sweep_")}


@pytest.mark.parametrize("name", sorted(SWEEP))
def test_sweep(make_client, name):
    SWEEP[name](make_client)


# ---------------------------------------------------------------------------------------------
# Service errors: the code botocore reads, and the modeled exception class it raises (what
# `except client.exceptions.X` catches), per protocol.


SERVICE_ERROR_CASES = [
    ("iam", PROD_A, lambda c: c.get_role(RoleName="orgsec-no-such-role"), "NoSuchEntity", "NoSuchEntityException"),
    (
        "organizations",
        MANAGEMENT,
        lambda c: c.describe_account(AccountId="999999999999"),
        "AccountNotFoundException",
        "AccountNotFoundException",
    ),
    ("organizations", PROD_A, lambda c: c.list_accounts(), "AccessDeniedException", "AccessDeniedException"),
    (
        "config",
        PROD_A,
        lambda c: c.describe_config_rules(ConfigRuleNames=["orgsec-no-such-rule"]),
        "NoSuchConfigRuleException",
        "NoSuchConfigRuleException",
    ),
    (
        "guardduty",
        PROD_A,
        lambda c: c.get_detector(DetectorId="0" * 32),
        "BadRequestException",
        "BadRequestException",
    ),
    (
        "accessanalyzer",
        DEV,
        lambda c: c.get_analyzer(analyzerName="orgsec-no-such-analyzer"),
        "ResourceNotFoundException",
        "ResourceNotFoundException",
    ),
    (
        "securityhub",
        ADMIN,
        lambda c: c.get_findings(MaxResults=1000),
        "InvalidInputException",
        "InvalidInputException",
    ),
    (
        "ec2",
        PROD_A,
        lambda c: c.describe_security_groups(GroupIds=["sg-0123456789abcdef0"]),
        "InvalidGroup.NotFound",
        None,
    ),
    ("s3", DEV, lambda c: c.get_bucket_policy(Bucket="orgsec-no-such-bucket-555555555555"), "NoSuchBucket", "NoSuchBucket"),
    (
        "s3control",
        DEV,
        lambda c: c.get_public_access_block(AccountId=DEV),
        "NoSuchPublicAccessBlockConfiguration",
        "NoSuchPublicAccessBlockConfiguration",
    ),
]


@pytest.mark.parametrize(
    ("service", "account", "call", "code", "modeled"),
    SERVICE_ERROR_CASES,
    ids=[f"{c[0]}-{c[3]}" for c in SERVICE_ERROR_CASES],
)
def test_service_error(make_client, service, account, call, code, modeled):
    client = make_client(service, account)
    with pytest.raises(ClientError) as e:
        call(client)
    assert _error_code(e) == code
    assert e.value.response["Error"]["Message"]
    assert 400 <= e.value.response["ResponseMetadata"]["HTTPStatusCode"] < 500
    if modeled:
        assert type(e.value) is getattr(client.exceptions, modeled), type(e.value)


def test_remediation_role_is_denied_what_its_policy_does_not_allow(make_client):
    creds = _assume_remediation_role(make_client, PROD_A, session_name="orgsec-denied")["Credentials"]
    role = (creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    ec2 = make_client("ec2", credentials=role)
    group = _web_admin_group(ec2)
    with pytest.raises(ClientError) as e:
        ec2.authorize_security_group_ingress(
            GroupId=group["GroupId"],
            IpPermissions=[{"IpProtocol": "tcp", "FromPort": 23, "ToPort": 23, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
        )
    assert _error_code(e) == "UnauthorizedOperation"

    hub = make_client("securityhub", credentials=role)
    assert hub.describe_hub()["HubArn"].endswith(f":{PROD_A}:hub/default")
    with pytest.raises(ClientError) as e:
        hub.disable_security_hub()
    assert _error_code(e) == "AccessDeniedException"
    assert type(e.value) is hub.exceptions.AccessDeniedException

    iam = make_client("iam", credentials=role)
    with pytest.raises(ClientError) as e:
        iam.delete_account_password_policy()
    assert _error_code(e) == "AccessDenied"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


# ---------------------------------------------------------------------------------------------
# Changes and their read-back, each on an emulator of its own.


def test_change_organizations(fresh_client):
    orgs = fresh_client("organizations", MANAGEMENT)
    sandbox_ou = _ou_id(fresh_client, "Sandbox")
    ou = orgs.create_organizational_unit(ParentId=sandbox_ou, Name="quarantine")["OrganizationalUnit"]
    assert ou["Name"] == "quarantine" and ou["Id"].startswith("ou-")
    orgs.move_account(AccountId=SANDBOX, SourceParentId=sandbox_ou, DestinationParentId=ou["Id"])
    assert orgs.list_parents(ChildId=SANDBOX)["Parents"] == [{"Id": ou["Id"], "Type": "ORGANIZATIONAL_UNIT"}]

    orgs.tag_resource(ResourceId=SANDBOX, Tags=[{"Key": "quarantined", "Value": "yes"}])
    assert {"Key": "quarantined", "Value": "yes"} in orgs.list_tags_for_resource(ResourceId=SANDBOX)["Tags"]
    orgs.untag_resource(ResourceId=SANDBOX, TagKeys=["quarantined"])
    assert "quarantined" not in {t["Key"] for t in orgs.list_tags_for_resource(ResourceId=SANDBOX)["Tags"]}

    status = orgs.create_account(Email="new@example.com", AccountName="new")["CreateAccountStatus"]
    assert status["State"] in {"IN_PROGRESS", "SUCCEEDED"}
    assert status["AccountName"] == "new"
    _assert_aware_datetime(status["RequestedTimestamp"])
    again = orgs.describe_create_account_status(CreateAccountRequestId=status["Id"])["CreateAccountStatus"]
    assert again["Id"] == status["Id"]
    assert again["State"] == "SUCCEEDED"
    assert again["AccountId"] in {a["Id"] for a in orgs.list_accounts()["Accounts"]}


def test_change_iam(fresh_client):
    iam = fresh_client("iam", SANDBOX)
    user = iam.create_user(UserName="breakglass")["User"]
    assert user["Arn"] == f"arn:aws:iam::{SANDBOX}:user/breakglass"
    key = iam.create_access_key(UserName="breakglass")["AccessKey"]
    assert key["Status"] == "Active" and key["SecretAccessKey"]
    _assert_aware_datetime(key["CreateDate"])
    iam.update_access_key(UserName="breakglass", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    keys = iam.list_access_keys(UserName="breakglass")["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"]) for k in keys] == [(key["AccessKeyId"], "Inactive")]
    iam.delete_access_key(UserName="breakglass", AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName="breakglass")
    with pytest.raises(ClientError) as e:
        iam.get_user(UserName="breakglass")
    assert _error_code(e) == "NoSuchEntity"

    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    role = iam.create_role(RoleName="app", AssumeRolePolicyDocument=json.dumps(trust), Description="app role")["Role"]
    assert role["RoleName"] == "app" and role["RoleId"]
    iam.put_role_policy(
        RoleName="app",
        PolicyName="read",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}),
    )
    doc = iam.get_role_policy(RoleName="app", PolicyName="read")["PolicyDocument"]
    assert isinstance(doc, dict), doc
    assert doc["Statement"][0]["Action"] == "s3:GetObject"
    iam.attach_role_policy(RoleName="app", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    attached = iam.list_attached_role_policies(RoleName="app")["AttachedPolicies"]
    assert attached == [{"PolicyName": "ReadOnlyAccess", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}]
    profile = iam.create_instance_profile(InstanceProfileName="app")["InstanceProfile"]
    assert profile["Roles"] == []
    iam.add_role_to_instance_profile(InstanceProfileName="app", RoleName="app")
    assert [r["RoleName"] for r in iam.get_instance_profile(InstanceProfileName="app")["InstanceProfile"]["Roles"]] == ["app"]
    iam.remove_role_from_instance_profile(InstanceProfileName="app", RoleName="app")
    iam.delete_instance_profile(InstanceProfileName="app")
    iam.detach_role_policy(RoleName="app", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    iam.delete_role_policy(RoleName="app", PolicyName="read")
    iam.update_assume_role_policy(RoleName="app", PolicyDocument=json.dumps(trust))
    iam.delete_role(RoleName="app")

    iam.delete_account_password_policy()
    with pytest.raises(ClientError) as e:
        iam.get_account_password_policy()
    assert _error_code(e) == "NoSuchEntity"


def test_change_ec2(fresh_client):
    ec2 = fresh_client("ec2", SANDBOX)
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]
    assert vpc["CidrBlock"] == "10.42.0.0/16" and vpc["VpcId"].startswith("vpc-")
    group_id = ec2.create_security_group(GroupName="bastion", Description="bastion hosts", VpcId=vpc["VpcId"])["GroupId"]
    assert group_id.startswith("sg-")
    out = ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "203.0.113.0/24", "Description": "office"}],
            }
        ],
    )
    assert out["Return"] is True
    rules = out.get("SecurityGroupRules", [])
    assert all(r["GroupId"] == group_id and r["IsEgress"] is False for r in rules)
    ec2.create_tags(Resources=[group_id], Tags=[{"Key": "team", "Value": "secops"}])
    tagged = ec2.describe_security_groups(Filters=[{"Name": "tag:team", "Values": ["secops"]}])["SecurityGroups"]
    assert [g["GroupId"] for g in tagged] == [group_id]
    assert {"Key": "team", "Value": "secops"} in tagged[0]["Tags"]
    assert ("tcp", 22, 22, "203.0.113.0/24") in _open_ports(tagged[0])
    ec2.delete_tags(Resources=[group_id], Tags=[{"Key": "team"}])
    assert not ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0].get("Tags")
    ec2.revoke_security_group_egress(
        GroupId=group_id, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    assert ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]["IpPermissionsEgress"] == []

    ec2.enable_ebs_encryption_by_default()
    assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is True
    assert ec2.disable_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False

    reservation = ec2.run_instances(
        ImageId="ami-12345678", InstanceType="t3.micro", MinCount=1, MaxCount=1
    )
    instance = reservation["Instances"][0]
    assert instance["InstanceType"] == "t3.micro"
    assert reservation["OwnerId"] == SANDBOX
    options = ec2.modify_instance_metadata_options(InstanceId=instance["InstanceId"], HttpTokens="required")
    assert options["InstanceMetadataOptions"]["HttpTokens"] == "required"
    volumes = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [instance["InstanceId"]]}])["Volumes"]
    if volumes:
        snap = ec2.create_snapshot(VolumeId=volumes[0]["VolumeId"], Description="forensics")
        assert snap["SnapshotId"].startswith("snap-") and snap["VolumeId"] == volumes[0]["VolumeId"]
        _assert_aware_datetime(snap["StartTime"])
        ec2.delete_snapshot(SnapshotId=snap["SnapshotId"])
    changes = ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])["TerminatingInstances"]
    assert changes[0]["InstanceId"] == instance["InstanceId"]
    assert changes[0]["CurrentState"]["Name"] in {"shutting-down", "terminated"}
    assert isinstance(changes[0]["PreviousState"]["Code"], int)

    with pytest.raises(ClientError) as e:
        ec2.create_security_group(GroupName="dry", Description="dry run", VpcId=vpc["VpcId"], DryRun=True)
    assert _error_code(e) == "DryRunOperation"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_change_s3(fresh_client):
    s3 = fresh_client("s3", DEV)
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": f"arn:aws:s3:::{PUBLIC_BUCKET}/*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}],
    }
    s3.put_bucket_policy(Bucket=PUBLIC_BUCKET, Policy=json.dumps(policy))
    assert json.loads(s3.get_bucket_policy(Bucket=PUBLIC_BUCKET)["Policy"]) == policy
    assert s3.get_bucket_policy_status(Bucket=PUBLIC_BUCKET)["PolicyStatus"]["IsPublic"] is False
    s3.delete_bucket_policy(Bucket=PUBLIC_BUCKET)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_policy(Bucket=PUBLIC_BUCKET)
    assert _error_code(e) == "NoSuchBucketPolicy"
    s3.put_bucket_acl(Bucket=PUBLIC_BUCKET, ACL="private")
    grants = s3.get_bucket_acl(Bucket=PUBLIC_BUCKET)["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]

    s3c = fresh_client("s3control", DEV)
    all_on = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    s3c.put_public_access_block(AccountId=DEV, PublicAccessBlockConfiguration=all_on)
    assert s3c.get_public_access_block(AccountId=DEV)["PublicAccessBlockConfiguration"] == all_on
    s3c.delete_public_access_block(AccountId=DEV)
    with pytest.raises(ClientError) as e:
        s3c.get_public_access_block(AccountId=DEV)
    assert _error_code(e) == "NoSuchPublicAccessBlockConfiguration"


def test_change_securityhub(fresh_client):
    hub = fresh_client("securityhub", PROD_A)
    product_arn = f"arn:aws:securityhub:{REGION}:{PROD_A}:product/{PROD_A}/default"
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    finding = {
        "SchemaVersion": "2018-10-08",
        "Id": "orgsec-botocore-1",
        "ProductArn": product_arn,
        "GeneratorId": "orgsec-botocore",
        "AwsAccountId": PROD_A,
        "Types": ["Software and Configuration Checks"],
        "CreatedAt": now,
        "UpdatedAt": now,
        "Severity": {"Label": "HIGH"},
        "Title": "imported by botocore",
        "Description": "a finding imported through BatchImportFindings",
        "Resources": [{"Type": "Other", "Id": "orgsec-botocore-resource"}],
    }
    out = hub.batch_import_findings(Findings=[finding])
    assert (out["SuccessCount"], out["FailedCount"]) == (1, 0)
    got = hub.get_findings(Filters={"Id": [{"Value": "orgsec-botocore-1", "Comparison": "EQUALS"}]})["Findings"]
    assert len(got) == 1
    assert got[0]["Title"] == "imported by botocore"
    assert got[0]["Severity"]["Label"] == "HIGH"
    assert [(r["Type"], r["Id"]) for r in got[0]["Resources"]] == [("Other", "orgsec-botocore-resource")]
    assert got[0]["ProductArn"] == product_arn
    assert got[0]["RecordState"] == "ACTIVE"
    assert got[0]["Workflow"]["Status"] == "NEW"

    target = hub.create_action_target(Name="Send to SOAR", Description="send", Id="soar")["ActionTargetArn"]
    targets = hub.describe_action_targets(ActionTargetArns=[target])["ActionTargets"]
    assert targets[0]["Name"] == "Send to SOAR"

    rule = hub.create_automation_rule(
        RuleName="suppress-sandbox",
        RuleOrder=1,
        Description="suppress",
        Criteria={"AwsAccountId": [{"Value": SANDBOX, "Comparison": "EQUALS"}]},
        Actions=[{"Type": "FINDING_FIELDS_UPDATE", "FindingFieldsUpdate": {"Workflow": {"Status": "SUPPRESSED"}}}],
    )["RuleArn"]
    rules = hub.list_automation_rules()["AutomationRulesMetadata"]
    assert rule in {r["RuleArn"] for r in rules}
    for r in rules:
        _assert_aware_datetime(r["CreatedAt"])

    subs = hub.get_enabled_standards()["StandardsSubscriptions"]
    sub = subs[0]["StandardsSubscriptionArn"]
    control = hub.describe_standards_controls(StandardsSubscriptionArn=sub, MaxResults=1)["Controls"][0]
    hub.update_standards_control(
        StandardsControlArn=control["StandardsControlArn"], ControlStatus="DISABLED", DisabledReason="not used"
    )
    controls = {
        c["StandardsControlArn"]: c
        for c in hub.get_paginator("describe_standards_controls").paginate(StandardsSubscriptionArn=sub).build_full_result()["Controls"]
    }
    assert controls[control["StandardsControlArn"]]["ControlStatus"] == "DISABLED"
    assert controls[control["StandardsControlArn"]]["DisabledReason"] == "not used"

    disabled = hub.batch_disable_standards(StandardsSubscriptionArns=[sub])["StandardsSubscriptions"]
    assert disabled[0]["StandardsStatus"] in {"DELETING", "INCOMPLETE"}
    enabled = hub.batch_enable_standards(StandardsSubscriptionRequests=[{"StandardsArn": subs[0]["StandardsArn"]}])
    assert enabled["StandardsSubscriptions"][0]["StandardsStatus"] in {"PENDING", "READY"}


def test_change_guardduty(fresh_client):
    # Only the administrator archives findings once an account is a member.
    gd = fresh_client("guardduty", ADMIN)
    detector = _detector(fresh_client, ADMIN)
    gd.update_detector(DetectorId=detector, FindingPublishingFrequency="FIFTEEN_MINUTES")
    assert gd.get_detector(DetectorId=detector)["FindingPublishingFrequency"] == "FIFTEEN_MINUTES"
    arn = f"arn:aws:guardduty:{REGION}:{ADMIN}:detector/{detector}"
    gd.tag_resource(ResourceArn=arn, Tags={"team": "secops"})
    assert gd.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "secops"}
    gd.untag_resource(ResourceArn=arn, TagKeys=["team"])

    gd.create_sample_findings(DetectorId=detector, FindingTypes=["Recon:EC2/PortProbeUnprotectedPort"])
    ids = gd.list_findings(
        DetectorId=detector, FindingCriteria={"Criterion": {"type": {"Equals": ["Recon:EC2/PortProbeUnprotectedPort"]}}}
    )["FindingIds"]
    assert len(ids) == 1
    sample = gd.get_findings(DetectorId=detector, FindingIds=ids)["Findings"][0]
    assert sample["Type"] == "Recon:EC2/PortProbeUnprotectedPort"
    gd.archive_findings(DetectorId=detector, FindingIds=ids[:1])
    archived = gd.list_findings(
        DetectorId=detector, FindingCriteria={"Criterion": {"service.archived": {"Equals": ["true"]}}}
    )["FindingIds"]
    assert archived == ids[:1]
    finding = gd.get_findings(DetectorId=detector, FindingIds=ids[:1])["Findings"][0]
    assert finding["Service"]["Archived"] is True
    assert isinstance(finding["Service"]["Count"], int)
    gd.unarchive_findings(DetectorId=detector, FindingIds=ids[:1])
    assert gd.get_findings(DetectorId=detector, FindingIds=ids[:1])["Findings"][0]["Service"]["Archived"] is False


def test_change_config(fresh_client):
    config = fresh_client("config", PROD_A)
    config.stop_configuration_recorder(ConfigurationRecorderName="default")
    status = config.describe_configuration_recorder_status(ConfigurationRecorderNames=["default"])
    assert status["ConfigurationRecordersStatus"][0]["recording"] is False
    _assert_aware_datetime(status["ConfigurationRecordersStatus"][0]["lastStopTime"])
    config.start_configuration_recorder(ConfigurationRecorderName="default")
    config.put_configuration_recorder(
        ConfigurationRecorder={
            "name": "default",
            "roleARN": f"arn:aws:iam::{PROD_A}:role/config",
            "recordingGroup": {"allSupported": False, "includeGlobalResourceTypes": False, "resourceTypes": ["AWS::EC2::SecurityGroup"]},
        }
    )
    rec = config.describe_configuration_recorders()["ConfigurationRecorders"][0]
    assert rec["recordingGroup"]["resourceTypes"] == ["AWS::EC2::SecurityGroup"]
    fresh_client("s3", PROD_A).create_bucket(Bucket="orgsec-config-333333333333")
    config.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": "orgsec-config-333333333333"})
    assert config.describe_delivery_channels()["DeliveryChannels"][0]["s3BucketName"] == "orgsec-config-333333333333"

    admin = fresh_client("config", ADMIN)
    admin.put_config_rule(ConfigRule={"ConfigRuleName": "ssh", "Source": {"Owner": "AWS", "SourceIdentifier": "INCOMING_SSH_DISABLED"}})
    config.put_config_rule(ConfigRule={"ConfigRuleName": "ssh", "Source": {"Owner": "AWS", "SourceIdentifier": "INCOMING_SSH_DISABLED"}})
    agg = admin.put_configuration_aggregator(
        ConfigurationAggregatorName="botocore",
        AccountAggregationSources=[{"AccountIds": [PROD_A], "AllAwsRegions": True}],
    )["ConfigurationAggregator"]
    assert agg["ConfigurationAggregatorName"] == "botocore"
    details = admin.get_aggregate_compliance_details_by_config_rule(
        ConfigurationAggregatorName="orgsec-org-aggregator", ConfigRuleName="ssh", AccountId=PROD_A, AwsRegion=REGION
    )["AggregateEvaluationResults"]
    assert any(d["ComplianceType"] == "NON_COMPLIANT" for d in details), details
    admin.delete_configuration_aggregator(ConfigurationAggregatorName="botocore")


def test_change_accessanalyzer(fresh_client):
    aa = fresh_client("accessanalyzer", DEV)
    arn = _analyzer_arn()
    aa.create_archive_rule(
        analyzerName="orgsec-account-analyzer",
        ruleName="trusted",
        filter={"principal.AWS": {"eq": ["arn:aws:iam::111111111111:root"]}},
    )
    rule = aa.get_archive_rule(analyzerName="orgsec-account-analyzer", ruleName="trusted")["archiveRule"]
    assert rule["ruleName"] == "trusted" and rule["filter"]["principal.AWS"]["eq"] == ["arn:aws:iam::111111111111:root"]
    _assert_aware_datetime(rule["createdAt"])
    aa.update_archive_rule(
        analyzerName="orgsec-account-analyzer", ruleName="trusted", filter={"isPublic": {"eq": ["false"]}}
    )
    aa.apply_archive_rule(analyzerArn=arn, ruleName="trusted")
    aa.delete_archive_rule(analyzerName="orgsec-account-analyzer", ruleName="trusted")

    finding = aa.list_findings(analyzerArn=arn, filter={"resource": {"eq": [f"arn:aws:s3:::{PUBLIC_BUCKET}"]}})["findings"][0]
    aa.update_findings(analyzerArn=arn, ids=[finding["id"]], status="ARCHIVED")
    assert aa.get_finding(analyzerArn=arn, id=finding["id"])["finding"]["status"] == "ARCHIVED"
    aa.start_resource_scan(analyzerArn=arn, resourceArn=f"arn:aws:s3:::{PUBLIC_BUCKET}")

    aa.tag_resource(resourceArn=arn, tags={"team": "secops"})
    assert aa.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "secops"}
    aa.untag_resource(resourceArn=arn, tagKeys=["team"])

    org = fresh_client("accessanalyzer", ADMIN)
    created = org.create_analyzer(analyzerName="org", type="ORGANIZATION")["arn"]
    assert created == f"arn:aws:access-analyzer:{REGION}:{ADMIN}:analyzer/org"
    assert org.get_analyzer(analyzerName="org")["analyzer"]["type"] == "ORGANIZATION"
    org.delete_analyzer(analyzerName="org")
