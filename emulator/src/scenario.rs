//! Scenarios: the organization an emulator starts with. Three sources, one format:
//!
//! - `demo`: the built-in organization (`scenarios/demo.toml`) that orgsec's demo and tests use;
//! - a path to a TOML file in the same format, for users' own organizations;
//! - `generate:accounts=N,resources=M,seed=S`: a deterministic organization for benchmarks.
//!
//! A scenario describes accounts and their resources; [`build`] turns it into a [`World`] with
//! the baseline (Security Hub, GuardDuty, Config, Access Analyzer, hub membership, the
//! `OrganizationAccountAccessRole` and `OrgSecRemediationRole` roles) laid down as AWS would
//! have it, then evaluates every finding once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;
use serde_json::json;

use crate::world::catalogue::Standard;
use crate::world::{
    AccessKey, Account, Analyzer, Bucket, ConfigState, Detector, GdMember, Hub, HubAdministrator, HubMember, IamState,
    IdGen, Instance, InstanceProfile, Organization, Ou, PasswordPolicy, PublicAccessBlock, Recorder, Role, RuleSource,
    SecurityGroup, SgRule, StandardsSubscription, Threat, User, Volume, World, WorldConfig,
};

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("scenario {path} is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("scenario {name}: {message}")]
    Invalid { name: String, message: String },
    #[error(
        "bad generator spec '{0}': expected generate:accounts=N,resources=M,seed=S (each optional, e.g. generate:accounts=1000,resources=50,seed=7)"
    )]
    Generator(String),
}

/// The TOML scenario format.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub name: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// ExternalId in the trust policy of every `OrgSecRemediationRole`.
    #[serde(default = "default_external_id")]
    pub remediation_external_id: String,
    /// Standards enabled in baselined accounts: fsbp, cis-1.2, cis-1.4, cis-3.0, pci-3.2.1, nist-800-53.
    #[serde(default = "default_standards")]
    pub standards: Vec<String>,
    pub organization: OrgSpec,
    #[serde(default, rename = "account")]
    pub accounts: Vec<AccountSpec>,
    #[serde(default, rename = "security_group")]
    pub security_groups: Vec<SecurityGroupSpec>,
    #[serde(default, rename = "instance")]
    pub instances: Vec<InstanceSpec>,
    #[serde(default, rename = "user")]
    pub users: Vec<UserSpec>,
    #[serde(default, rename = "bucket")]
    pub buckets: Vec<BucketSpec>,
    #[serde(default, rename = "threat")]
    pub threats: Vec<ThreatSpec>,
}

fn default_region() -> String {
    "us-east-1".into()
}
fn default_external_id() -> String {
    "orgsec-demo".into()
}
fn default_standards() -> Vec<String> {
    vec!["fsbp".into(), "cis-3.0".into()]
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgSpec {
    pub management: String,
    /// Security Hub and GuardDuty delegated administrator, home of the Config aggregator.
    #[serde(default)]
    pub delegated_admin: Option<String>,
    /// OU paths below the root, e.g. `Prod` or `Prod/Web`.
    #[serde(default)]
    pub ous: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    /// OU path; the root when absent.
    #[serde(default)]
    pub ou: Option<String>,
    /// Not a member of the organization (for invitation flows).
    #[serde(default)]
    pub outside_org: bool,
    /// Security Hub (with the scenario's standards), GuardDuty, Config and Access Analyzer on.
    #[serde(default = "yes")]
    pub baseline: bool,
    /// Member of the delegated admin's Security Hub and GuardDuty (when baselined).
    #[serde(default = "yes")]
    pub hub_member: bool,
    #[serde(default = "yes")]
    pub ebs_encryption_by_default: bool,
    /// A strong IAM password policy is set.
    #[serde(default = "yes")]
    pub password_policy: bool,
    /// S3 account-level Block Public Access fully on.
    #[serde(default = "yes")]
    pub s3_block_public_access: bool,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    #[serde(default = "tcp")]
    pub protocol: String,
    #[serde(default)]
    pub port: Option<i64>,
    #[serde(default)]
    pub from_port: Option<i64>,
    #[serde(default)]
    pub to_port: Option<i64>,
    #[serde(default)]
    pub cidr: Option<String>,
    #[serde(default)]
    pub ipv6_cidr: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

fn tcp() -> String {
    "tcp".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroupSpec {
    pub account: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub ingress: Vec<RuleSpec>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceSpec {
    pub account: String,
    pub name: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub instance_profile: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub account: String,
    pub name: String,
    #[serde(default)]
    pub access_keys: u32,
    /// Age of the access keys in days (for IAM.3).
    #[serde(default)]
    pub key_age_days: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketSpec {
    pub account: String,
    pub name: String,
    #[serde(default)]
    pub region: Option<String>,
    /// A bucket policy open to everyone, with bucket-level Block Public Access off.
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreatSpec {
    pub account: String,
    #[serde(rename = "type")]
    pub finding_type: String,
    #[serde(default)]
    pub region: Option<String>,
    /// Instance name the threat concerns.
    #[serde(default)]
    pub instance: Option<String>,
    /// User whose (first) access key the threat concerns.
    #[serde(default)]
    pub user: Option<String>,
}

const DEMO: &str = include_str!("../scenarios/demo.toml");

/// Loads a scenario by name: `demo`, `generate:...`, or a TOML file path.
pub fn load(name: &str, config: WorldConfig, seed: u64) -> Result<World, ScenarioError> {
    let spec = if name == "demo" {
        parse(DEMO, "demo")?
    } else if let Some(args) = name.strip_prefix("generate:").or((name == "generate").then_some("")) {
        generate(args)?
    } else {
        let text = std::fs::read_to_string(Path::new(name))
            .map_err(|source| ScenarioError::Read { path: name.to_string(), source })?;
        parse(&text, name)?
    };
    build(&spec, config, seed)
}

/// Parses a TOML scenario.
pub fn parse(text: &str, path: &str) -> Result<Spec, ScenarioError> {
    toml::from_str(text).map_err(|e| ScenarioError::Parse { path: path.to_string(), message: e.to_string() })
}

/// The parsed built-in demo scenario.
pub fn demo_spec() -> Spec {
    parse(DEMO, "demo").unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Generator

/// Parses `accounts=N,resources=M,seed=S` and generates an organization: N member accounts
/// under three OUs (plus management 111111111111 and delegated admin 222222222222), each with
/// M resources of mixed kinds and a seeded share of misconfigurations and threats.
pub fn generate(args: &str) -> Result<Spec, ScenarioError> {
    let bad = || ScenarioError::Generator(args.to_string());
    let (mut accounts, mut resources, mut seed) = (100usize, 20usize, 7u64);
    for part in args.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(bad)?;
        match k.trim() {
            "accounts" => accounts = v.trim().parse().map_err(|_| bad())?,
            "resources" => resources = v.trim().parse().map_err(|_| bad())?,
            "seed" => seed = v.trim().parse().map_err(|_| bad())?,
            _ => return Err(bad()),
        }
    }
    if accounts > 100_000 || resources > 10_000 {
        return Err(bad());
    }
    let mut rng = IdGen::new(seed);
    let mut roll = |pct: u64| rng.next_u64() % 100 < pct;
    let mut spec = Spec {
        name: format!("generate:accounts={accounts},resources={resources},seed={seed}"),
        region: default_region(),
        remediation_external_id: default_external_id(),
        standards: default_standards(),
        organization: OrgSpec {
            management: "111111111111".into(),
            delegated_admin: Some("222222222222".into()),
            ous: vec!["Prod".into(), "Dev".into(), "Sandbox".into()],
        },
        ..Spec::default()
    };
    let base = |id: &str, name: &str, ou: Option<&str>| AccountSpec {
        id: id.into(),
        name: name.into(),
        email: None,
        ou: ou.map(str::to_string),
        outside_org: false,
        baseline: true,
        hub_member: true,
        ebs_encryption_by_default: true,
        password_policy: true,
        s3_block_public_access: true,
        tags: BTreeMap::new(),
    };
    spec.accounts.push(AccountSpec { baseline: false, ..base("111111111111", "management", None) });
    spec.accounts.push(base("222222222222", "security", Some("Prod")));
    let ous = ["Prod", "Dev", "Sandbox"];
    const RISKY: &[i64] = &[22, 3389, 3306, 5432, 8080, 9200];
    for i in 0..accounts {
        let id = format!("{:012}", 300_000_000_000u64 + i as u64);
        let mut a = base(&id, &format!("member-{i:05}"), Some(ous[i % 3]));
        a.ebs_encryption_by_default = !roll(40);
        a.password_policy = !roll(30);
        a.s3_block_public_access = !roll(30);
        a.tags.insert("orgsec:criticality".into(), format!("{}", 1 + (i % 5)));
        spec.accounts.push(a);
        for r in 0..resources {
            match r % 5 {
                0 | 1 => {
                    let mut ingress = vec![RuleSpec {
                        protocol: "tcp".into(),
                        port: Some(443),
                        from_port: None,
                        to_port: None,
                        cidr: Some("10.0.0.0/8".into()),
                        ipv6_cidr: None,
                        description: None,
                    }];
                    if roll(30) {
                        ingress.push(RuleSpec {
                            protocol: "tcp".into(),
                            port: Some(RISKY[(r / 5) % RISKY.len()]),
                            from_port: None,
                            to_port: None,
                            cidr: Some("0.0.0.0/0".into()),
                            ipv6_cidr: None,
                            description: None,
                        });
                    }
                    spec.security_groups.push(SecurityGroupSpec {
                        account: id.clone(),
                        name: format!("sg-{r:04}"),
                        description: None,
                        region: None,
                        ingress,
                        tags: BTreeMap::new(),
                    });
                }
                2 => {
                    spec.instances.push(InstanceSpec {
                        account: id.clone(),
                        name: format!("i-{r:04}"),
                        region: None,
                        security_groups: vec![],
                        instance_profile: None,
                        tags: BTreeMap::new(),
                    });
                    if roll(3) {
                        spec.threats.push(ThreatSpec {
                            account: id.clone(),
                            finding_type: "CryptoCurrency:EC2/BitcoinTool.B!DNS".into(),
                            region: None,
                            instance: Some(format!("i-{r:04}")),
                            user: None,
                        });
                    }
                }
                3 => spec.users.push(UserSpec {
                    account: id.clone(),
                    name: format!("user-{r:04}"),
                    access_keys: 1,
                    key_age_days: if roll(30) { 200 } else { 10 },
                }),
                _ => spec.buckets.push(BucketSpec {
                    account: id.clone(),
                    name: format!("bucket-{id}-{r:04}"),
                    region: None,
                    public: roll(10),
                    tags: BTreeMap::new(),
                }),
            }
        }
    }
    Ok(spec)
}

// ---------------------------------------------------------------------------------------------
// Building the world

fn standard_from_key(key: &str) -> Option<Standard> {
    Some(match key {
        "fsbp" => Standard::Fsbp,
        "cis-1.2" => Standard::Cis12,
        "cis-1.4" => Standard::Cis14,
        "cis-3.0" => Standard::Cis30,
        "pci-3.2.1" => Standard::Pci321,
        "nist-800-53" => Standard::Nist53,
        _ => return None,
    })
}

/// The inline policy of `OrgSecRemediationRole`: what orgsec's collection and playbooks need,
/// and nothing destructive.
pub fn remediation_role_policy() -> serde_json::Value {
    json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Read", "Effect": "Allow", "Resource": "*", "Action": [
            "ec2:Describe*", "ec2:GetEbsEncryptionByDefault", "ec2:GetEbsDefaultKmsKeyId", "iam:Get*", "iam:List*",
            "s3:Get*", "s3:List*",
            "securityhub:Get*", "securityhub:Describe*", "securityhub:List*", "securityhub:BatchGet*",
            "guardduty:Get*", "guardduty:List*", "config:Describe*", "config:Get*", "config:List*",
            "access-analyzer:Get*", "access-analyzer:List*", "organizations:Describe*", "organizations:List*"]},
        {"Sid": "Remediate", "Effect": "Allow", "Resource": "*", "Action": [
            "ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress", "ec2:EnableEbsEncryptionByDefault",
            "ec2:ModifyEbsDefaultKmsKeyId", "guardduty:CreateDetector", "guardduty:UpdateDetector",
            "ec2:CreateSnapshot", "ec2:CreateTags", "ec2:CreateSecurityGroup", "ec2:ModifyInstanceAttribute",
            "ec2:DisassociateIamInstanceProfile", "iam:UpdateAccountPasswordPolicy", "iam:UpdateAccessKey",
            "s3:PutAccountPublicAccessBlock", "s3:PutBucketPublicAccessBlock",
            "securityhub:BatchUpdateFindings", "guardduty:ArchiveFindings", "access-analyzer:UpdateFindings"]}
    ]})
}

fn trust(principal_account: &str, external_id: Option<&str>) -> serde_json::Value {
    let mut st = json!({"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{principal_account}:root")}, "Action": "sts:AssumeRole"});
    if let Some(x) = external_id {
        st["Condition"] = json!({"StringEquals": {"sts:ExternalId": x}});
    }
    json!({"Version": "2012-10-17", "Statement": [st]})
}

fn invalid(spec: &Spec, message: String) -> ScenarioError {
    ScenarioError::Invalid { name: spec.name.clone(), message }
}

/// Builds a world from a scenario and evaluates every finding once.
pub fn build(spec: &Spec, config: WorldConfig, seed: u64) -> Result<World, ScenarioError> {
    let mut w = World::new(WorldConfig { default_region: spec.region.clone(), ..config }, seed);
    let now = w.now();
    let region = spec.region.clone();
    let standards: Vec<Standard> = spec
        .standards
        .iter()
        .map(|k| {
            standard_from_key(k).ok_or_else(|| {
                invalid(
                    spec,
                    format!("unknown standard '{k}' (known: fsbp, cis-1.2, cis-1.4, cis-3.0, pci-3.2.1, nist-800-53)"),
                )
            })
        })
        .collect::<Result<_, _>>()?;

    // Organization and OUs.
    let root_id = format!("r-{}", w.ids.hex(4));
    let mut org = Organization {
        id: format!("o-{}", w.ids.hex(10)),
        management_account: spec.organization.management.clone(),
        root_id: root_id.clone(),
        ous: BTreeMap::new(),
        delegated_admins: BTreeSet::new(),
        service_access: BTreeSet::from([
            "securityhub.amazonaws.com".into(),
            "guardduty.amazonaws.com".into(),
            "config.amazonaws.com".into(),
            "access-analyzer.amazonaws.com".into(),
        ]),
        created_ms: now,
    };
    let mut ou_ids: BTreeMap<String, String> = BTreeMap::new();
    for path in &spec.organization.ous {
        let mut parent = root_id.clone();
        let mut prefix = String::new();
        for name in path.split('/') {
            prefix = if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") };
            if let Some(id) = ou_ids.get(&prefix) {
                parent = id.clone();
                continue;
            }
            let id = format!("ou-{}-{}", &root_id[2..], w.ids.hex(8));
            org.ous.insert(id.clone(), Ou { id: id.clone(), name: name.to_string(), parent_id: parent.clone() });
            ou_ids.insert(prefix.clone(), id.clone());
            parent = id;
        }
    }
    let admin = spec.organization.delegated_admin.clone();
    if let Some(a) = &admin {
        for sp in [
            "securityhub.amazonaws.com",
            "guardduty.amazonaws.com",
            "config.amazonaws.com",
            "access-analyzer.amazonaws.com",
        ] {
            org.delegated_admins.insert((a.clone(), sp.to_string()));
        }
        w.org_admins.insert(("securityhub".into(), region.clone()), a.clone());
        w.org_admins.insert(("guardduty".into(), region.clone()), a.clone());
    }

    // Accounts.
    if !spec.accounts.iter().any(|a| a.id == spec.organization.management) {
        return Err(invalid(
            spec,
            format!("the management account {} is not listed as an [[account]]", spec.organization.management),
        ));
    }
    for a in &spec.accounts {
        if a.id.len() != 12 || !a.id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(spec, format!("account id '{}' is not 12 digits", a.id)));
        }
        if w.accounts.contains_key(&a.id) {
            return Err(invalid(spec, format!("account {} is listed twice", a.id)));
        }
        let parent_id = if a.outside_org {
            None
        } else {
            match &a.ou {
                None => Some(root_id.clone()),
                Some(p) => Some(ou_ids.get(p).cloned().ok_or_else(|| {
                    invalid(spec, format!("account {} names OU '{p}', which is not in organization.ous", a.id))
                })?),
            }
        };
        let mut iam = IamState::default();
        if a.password_policy {
            iam.password_policy = Some(PasswordPolicy {
                minimum_password_length: 14,
                require_symbols: true,
                require_numbers: true,
                require_uppercase: true,
                require_lowercase: true,
                allow_users_to_change_password: true,
                max_password_age: Some(90),
                password_reuse_prevention: Some(24),
                hard_expiry: false,
            });
        }
        if a.id != spec.organization.management && !a.outside_org {
            let mut add_role = |w: &mut World,
                                name: &str,
                                trust_doc: serde_json::Value,
                                inline: Option<serde_json::Value>,
                                attached: Option<&str>| {
                let role = Role {
                    name: name.to_string(),
                    id: format!("AROA{}", w.ids.upper(17)),
                    arn: format!("arn:aws:iam::{}:role/{name}", a.id),
                    path: "/".into(),
                    created_ms: now,
                    description: String::new(),
                    max_session_duration: 3600,
                    trust_policy: trust_doc,
                    inline_policies: inline
                        .map(|p| BTreeMap::from([("orgsec-remediation".to_string(), p)]))
                        .unwrap_or_default(),
                    attached_policies: attached.map(|p| BTreeSet::from([p.to_string()])).unwrap_or_default(),
                    tags: BTreeMap::new(),
                };
                iam.roles.insert(name.to_string(), role);
            };
            add_role(
                &mut w,
                "OrganizationAccountAccessRole",
                trust(&spec.organization.management, None),
                None,
                Some("arn:aws:iam::aws:policy/AdministratorAccess"),
            );
            if let Some(admin) = &admin {
                add_role(
                    &mut w,
                    "OrgSecRemediationRole",
                    trust(admin, Some(&spec.remediation_external_id)),
                    Some(remediation_role_policy()),
                    None,
                );
            }
        }
        w.accounts.insert(
            a.id.clone(),
            Account {
                id: a.id.clone(),
                name: a.name.clone(),
                email: a.email.clone().unwrap_or_else(|| format!("aws+{}@example.com", a.id)),
                status: "ACTIVE".into(),
                parent_id,
                joined_ms: now,
                joined_method: if a.id == spec.organization.management { "INVITED".into() } else { "CREATED".into() },
                tags: a.tags.clone(),
                iam,
                s3_public_access_block: a.s3_block_public_access.then_some(PublicAccessBlock::ALL),
            },
        );
        w.add_default_vpc(&a.id, &region);
        let rs = w.region_mut(&a.id, &region);
        rs.ec2.ebs_encryption_by_default = a.ebs_encryption_by_default;
    }
    w.org = Some(org);

    // Resources.
    for sg in &spec.security_groups {
        let r = sg.region.clone().unwrap_or_else(|| region.clone());
        need_account(&w, spec, &sg.account)?;
        let id = format!("sg-{}", w.ids.hex(17));
        let mut ingress = Vec::new();
        for rule in &sg.ingress {
            let source = match (&rule.cidr, &rule.ipv6_cidr) {
                (Some(c), _) => RuleSource::Ipv4(c.clone()),
                (None, Some(c)) => RuleSource::Ipv6(c.clone()),
                (None, None) => {
                    return Err(invalid(
                        spec,
                        format!("a rule of security group {} has neither cidr nor ipv6_cidr", sg.name),
                    ));
                }
            };
            ingress.push(SgRule {
                id: format!("sgr-{}", w.ids.hex(17)),
                protocol: rule.protocol.clone(),
                from_port: rule.from_port.or(rule.port),
                to_port: rule.to_port.or(rule.port),
                source,
                description: rule.description.clone(),
            });
        }
        let egress = vec![SgRule {
            id: format!("sgr-{}", w.ids.hex(17)),
            protocol: "-1".into(),
            from_port: None,
            to_port: None,
            source: RuleSource::Ipv4("0.0.0.0/0".into()),
            description: None,
        }];
        let rs = w.region_mut(&sg.account, &r);
        let vpc_id = rs.ec2.vpcs.values().find(|v| v.is_default).map(|v| v.id.clone()).unwrap_or_default();
        rs.ec2.security_groups.insert(
            id.clone(),
            SecurityGroup {
                id,
                name: sg.name.clone(),
                description: sg.description.clone().unwrap_or_else(|| sg.name.clone()),
                vpc_id,
                ingress,
                egress,
                tags: sg.tags.clone(),
            },
        );
    }
    let mut instance_ids: BTreeMap<(String, String), String> = BTreeMap::new();
    for inst in &spec.instances {
        let r = inst.region.clone().unwrap_or_else(|| region.clone());
        need_account(&w, spec, &inst.account)?;
        let id = format!("i-{}", w.ids.hex(17));
        let vol_id = format!("vol-{}", w.ids.hex(17));
        let subnet = format!("subnet-{}", w.ids.hex(17));
        let assoc = format!("iip-assoc-{}", w.ids.hex(17));
        let profile_arn =
            inst.instance_profile.as_ref().map(|p| format!("arn:aws:iam::{}:instance-profile/{p}", inst.account));
        if let Some(p) = &inst.instance_profile {
            let pid = format!("AIPA{}", w.ids.upper(17));
            if let Some(acct) = w.accounts.get_mut(&inst.account) {
                acct.iam.instance_profiles.entry(p.clone()).or_insert(InstanceProfile {
                    name: p.clone(),
                    id: pid,
                    arn: format!("arn:aws:iam::{}:instance-profile/{p}", inst.account),
                    roles: vec![],
                    created_ms: now,
                });
            }
        }
        let rs = w.region_mut(&inst.account, &r);
        let vpc_id = rs.ec2.vpcs.values().find(|v| v.is_default).map(|v| v.id.clone()).unwrap_or_default();
        let mut groups = Vec::new();
        for g in &inst.security_groups {
            let sg = rs.ec2.security_groups.values().find(|s| &s.name == g).map(|s| s.id.clone());
            groups.push(sg.ok_or_else(|| {
                invalid(
                    spec,
                    format!(
                        "instance {} names security group '{g}', which is not defined in account {}",
                        inst.name, inst.account
                    ),
                )
            })?);
        }
        if groups.is_empty() {
            groups.extend(rs.ec2.security_groups.values().find(|s| s.is_default()).map(|s| s.id.clone()));
        }
        let encrypted = rs.ec2.ebs_encryption_by_default;
        rs.ec2.volumes.insert(
            vol_id.clone(),
            Volume {
                id: vol_id.clone(),
                size_gib: 8,
                encrypted,
                attached_to: Some(id.clone()),
                device: Some("/dev/xvda".into()),
                created_ms: now,
                tags: BTreeMap::new(),
            },
        );
        let mut tags = inst.tags.clone();
        tags.insert("Name".into(), inst.name.clone());
        let n = rs.ec2.instances.len();
        rs.ec2.instances.insert(
            id.clone(),
            Instance {
                id: id.clone(),
                instance_type: "t3.micro".into(),
                image_id: "ami-0abcdef1234567890".into(),
                vpc_id,
                subnet_id: subnet,
                private_ip: format!("172.31.{}.{}", (n / 250) % 250, 10 + n % 240),
                state: "running".into(),
                security_groups: groups,
                volumes: vec![vol_id],
                iam_instance_profile: profile_arn.clone(),
                profile_association_id: profile_arn.map(|_| assoc),
                disable_api_termination: false,
                launched_ms: now,
                tags,
                metadata_http_tokens: "optional".into(),
            },
        );
        instance_ids.insert((inst.account.clone(), inst.name.clone()), id);
    }
    for u in &spec.users {
        need_account(&w, spec, &u.account)?;
        let uid = format!("AIDA{}", w.ids.upper(17));
        let mut keys = Vec::new();
        for _ in 0..u.access_keys {
            keys.push(AccessKey {
                id: format!("AKIA{}", w.ids.upper(16)),
                secret: w.ids.hex(40),
                status: "Active".into(),
                created_ms: now - u.key_age_days * 86_400_000,
            });
        }
        if let Some(acct) = w.accounts.get_mut(&u.account) {
            acct.iam.users.insert(
                u.name.clone(),
                User {
                    name: u.name.clone(),
                    id: uid,
                    arn: format!("arn:aws:iam::{}:user/{}", u.account, u.name),
                    path: "/".into(),
                    created_ms: now - u.key_age_days * 86_400_000,
                    access_keys: keys,
                    tags: BTreeMap::new(),
                },
            );
        }
    }
    for b in &spec.buckets {
        need_account(&w, spec, &b.account)?;
        if w.buckets.contains_key(&b.name) {
            return Err(invalid(spec, format!("bucket name '{}' is used twice (bucket names are global)", b.name)));
        }
        let policy = b.public.then(|| {
            json!({"Version": "2012-10-17", "Statement": [{"Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
                "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{}/*", b.name)}]})
            .to_string()
        });
        w.buckets.insert(
            b.name.clone(),
            Bucket {
                name: b.name.clone(),
                owner: b.account.clone(),
                region: b.region.clone().unwrap_or_else(|| region.clone()),
                created_ms: now,
                public_access_block: if b.public { None } else { Some(PublicAccessBlock::ALL) },
                policy,
                public_acl: None,
                tags: b.tags.clone(),
            },
        );
    }
    for t in &spec.threats {
        need_account(&w, spec, &t.account)?;
        let resource = if let Some(i) = &t.instance {
            instance_ids.get(&(t.account.clone(), i.clone())).cloned().ok_or_else(|| {
                invalid(spec, format!("threat names instance '{i}', which is not defined in account {}", t.account))
            })?
        } else if let Some(u) = &t.user {
            w.accounts
                .get(&t.account)
                .and_then(|a| a.iam.users.get(u))
                .and_then(|u| u.access_keys.first())
                .map(|k| k.id.clone())
                .ok_or_else(|| {
                    invalid(spec, format!("threat names user '{u}' in account {}, which has no access key", t.account))
                })?
        } else {
            format!("ASIA{}", w.ids.upper(16))
        };
        w.threats.push(Threat {
            account: t.account.clone(),
            region: t.region.clone().unwrap_or_else(|| region.clone()),
            finding_type: t.finding_type.clone(),
            resource,
        });
    }

    // The baseline: Security Hub, GuardDuty, Config, Access Analyzer, hub membership.
    for a in &spec.accounts {
        if !a.baseline {
            continue;
        }
        let det_id = w.ids.hex(32);
        let is_admin = admin.as_deref() == Some(a.id.as_str());
        let rs = w.region_mut(&a.id, &region);
        rs.hub = Some(Hub {
            arn: format!("arn:aws:securityhub:{region}:{}:hub/default", a.id),
            subscribed_ms: now,
            auto_enable_controls: true,
            control_finding_generator: "SECURITY_CONTROL".into(),
            standards: standards
                .iter()
                .map(|s| {
                    (
                        s.arn(&region),
                        StandardsSubscription {
                            subscription_arn: s.subscription_arn(&region, &a.id),
                            standards_arn: s.arn(&region),
                            ready_ms: now,
                            input: BTreeMap::new(),
                        },
                    )
                })
                .collect(),
            disabled_controls: BTreeMap::new(),
            members: BTreeMap::new(),
            administrator: None,
            action_targets: BTreeMap::new(),
            automation_rules: BTreeMap::new(),
            org_auto_enable: is_admin,
            org_auto_enable_standards: "DEFAULT".into(),
        });
        rs.detector = Some(Detector {
            id: det_id,
            status: "ENABLED".into(),
            created_ms: now,
            updated_ms: now,
            finding_publishing_frequency: "SIX_HOURS".into(),
            features: BTreeMap::new(),
            tags: BTreeMap::new(),
            members: BTreeMap::new(),
            administrator: None,
            invitations: BTreeMap::new(),
            findings: BTreeMap::new(),
            org_auto_enable: if is_admin { "NEW".into() } else { "NONE".into() },
        });
        rs.config = ConfigState {
            recorder: Some(Recorder {
                name: "default".into(),
                role_arn: format!(
                    "arn:aws:iam::{}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig",
                    a.id
                ),
                recording_group: json!({"AllSupported": true, "IncludeGlobalResourceTypes": true}),
            }),
            recording: true,
            last_start_ms: Some(now),
            delivery_channel: Some(json!({"name": "default", "s3BucketName": format!("config-bucket-{}", a.id)})),
            ..ConfigState::default()
        };
        if is_admin {
            rs.config.aggregators.insert(
                "orgsec-org-aggregator".into(),
                json!({"ConfigurationAggregatorName": "orgsec-org-aggregator",
                       "ConfigurationAggregatorArn": format!("arn:aws:config:{region}:{}:config-aggregator/config-aggregator-{}", a.id, &a.id[..8]),
                       "OrganizationAggregationSource": {"RoleArn": format!("arn:aws:iam::{}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig", a.id), "AllAwsRegions": true},
                       "CreationTime": now, "LastUpdatedTime": now}),
            );
        }
        let analyzer_name = "orgsec-account-analyzer".to_string();
        rs.analyzers.insert(
            analyzer_name.clone(),
            Analyzer {
                arn: format!("arn:aws:access-analyzer:{region}:{}:analyzer/{analyzer_name}", a.id),
                name: analyzer_name,
                kind: "ACCOUNT".into(),
                created_ms: now,
                tags: BTreeMap::new(),
                archive_rules: BTreeMap::new(),
                findings: BTreeMap::new(),
            },
        );
    }
    // Membership of the delegated admin's hubs (org-managed: Enabled at once).
    if let Some(admin_id) = &admin {
        let members: Vec<&AccountSpec> = spec
            .accounts
            .iter()
            .filter(|a| a.baseline && a.hub_member && &a.id != admin_id && !a.outside_org)
            .collect();
        for m in &members {
            let email = w.accounts.get(&m.id).map(|a| a.email.clone()).unwrap_or_default();
            let member_det = w.region(&m.id, &region).and_then(|r| r.detector.as_ref()).map(|d| d.id.clone());
            let rs = w.region_mut(admin_id, &region);
            if let Some(hub) = rs.hub.as_mut() {
                hub.members.insert(
                    m.id.clone(),
                    HubMember {
                        account_id: m.id.clone(),
                        email: Some(email.clone()),
                        status: "Enabled".into(),
                        invited_ms: None,
                        updated_ms: now,
                        org_managed: true,
                    },
                );
            }
            if let Some(det) = rs.detector.as_mut() {
                det.members.insert(
                    m.id.clone(),
                    GdMember {
                        account_id: m.id.clone(),
                        email: email.clone(),
                        relationship_status: "Enabled".into(),
                        invited_ms: None,
                        updated_ms: now,
                        detector_id: member_det,
                    },
                );
            }
            let rs = w.region_mut(&m.id, &region);
            let rel = HubAdministrator {
                account_id: admin_id.clone(),
                invitation_id: String::new(),
                invited_ms: now,
                status: "Enabled".into(),
            };
            if let Some(hub) = rs.hub.as_mut() {
                hub.administrator = Some(rel.clone());
            }
            if let Some(det) = rs.detector.as_mut() {
                det.administrator = Some(rel);
            }
        }
    }
    w.evaluate_all();
    Ok(w)
}

fn need_account(w: &World, spec: &Spec, id: &str) -> Result<(), ScenarioError> {
    if w.accounts.contains_key(id) {
        Ok(())
    } else {
        Err(invalid(spec, format!("account {id} is used by a resource but not listed as an [[account]]")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_builds_with_the_documented_org() {
        let w = load("demo", WorldConfig::default(), 1).unwrap();
        assert_eq!(w.accounts.len(), 6);
        assert_eq!(w.org.as_ref().unwrap().management_account, "111111111111");
        assert_eq!(w.ou_path("333333333333").as_deref(), Some("Root/Prod"));
        assert_eq!(w.ou_path("666666666666").as_deref(), Some("Root/Sandbox"));
        assert!(w.region("666666666666", "us-east-1").unwrap().hub.is_none());
        let role = &w.accounts["333333333333"].iam.roles["OrgSecRemediationRole"];
        assert!(role.trust_policy.to_string().contains("orgsec-demo"));
        // The SSH-open security group fails EC2.19 (FSBP) and EC2.53 (CIS 3.0) in 333333333333.
        let store = &w.findings["us-east-1"];
        let failed: Vec<_> = store
            .iter()
            .filter(|f| f.account == "333333333333")
            .filter_map(|f| f.doc.get("Compliance"))
            .filter(|c| c["Status"] == "FAILED")
            .map(|c| c["SecurityControlId"].as_str().unwrap_or("").to_string())
            .collect();
        assert!(failed.contains(&"EC2.19".to_string()), "{failed:?}");
        assert!(failed.contains(&"EC2.53".to_string()), "{failed:?}");
        assert!(failed.contains(&"EC2.7".to_string()), "{failed:?}");
        // GuardDuty's crypto-mining finding is there, and imported into Security Hub.
        let det = w.region("333333333333", "us-east-1").unwrap().detector.as_ref().unwrap();
        assert_eq!(det.findings.len(), 1);
        assert!(store.iter().any(|f| f.str_field("ProductArn").is_some_and(|p| p.ends_with("product/aws/guardduty"))));
    }

    #[test]
    fn the_same_seed_generates_the_same_world() {
        let a = generate("accounts=5,resources=10,seed=7").unwrap();
        let b = generate("accounts=5,resources=10,seed=7").unwrap();
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_eq!(a.accounts.len(), 7);
        let w = build(&a, WorldConfig::default(), 1).unwrap();
        assert!(w.findings["us-east-1"].len() > 50);
    }

    #[test]
    fn bad_scenarios_say_what_is_wrong() {
        let e = generate("accounts=x").unwrap_err().to_string();
        assert!(e.contains("generate:accounts=N"), "{e}");
        let e = parse("name = 1", "x.toml").unwrap_err().to_string();
        assert!(e.contains("x.toml"), "{e}");
        let text = "name = \"t\"\n[organization]\nmanagement = \"111111111111\"\n[[account]]\nid = \"111111111111\"\nname = \"m\"\nou = \"Nope\"\n";
        let e = build(&parse(text, "t").unwrap(), WorldConfig::default(), 1).unwrap_err().to_string();
        assert!(e.contains("Nope"), "{e}");
        let e = load("/nonexistent/scenario.toml", WorldConfig::default(), 1).unwrap_err().to_string();
        assert!(e.contains("cannot read"), "{e}");
    }
}
