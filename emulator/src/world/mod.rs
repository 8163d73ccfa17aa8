//! The world: one organization, its accounts, their resources, and the security services that
//! evaluate those resources. Every service handler reads and mutates this one model, so cause and
//! effect hold across services: revoking a rule through EC2 changes what Security Hub, Config and
//! Access Analyzer report about it.
//!
//! Account-wide state (IAM, organization membership) lives in [`Account`]; per-region state
//! (EC2, Security Hub, GuardDuty, Config, Access Analyzer) in [`RegionState`], keyed by
//! (account, region). Findings are derived from resources by [`eval`] and kept per region in
//! [`findings::FindingStore`].

pub mod catalogue;
pub mod eval;
pub mod findings;
pub mod policy;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use crate::wire::Millis;

pub use findings::{FindingStore, StoredFinding};

/// Settings that shape how the world behaves.
#[derive(Debug, Clone)]
pub struct WorldConfig {
    /// Delay between a change and the re-evaluation of the findings it affects.
    pub evaluation_delay_ms: Millis,
    /// How long a newly enabled Security Hub standard stays `PENDING` before `READY`.
    pub standards_ready_ms: Millis,
    /// Lifetime of AssumeRole sessions when the caller does not ask for one.
    pub default_session_secs: i64,
    /// The region resources of a scenario live in when it names none.
    pub default_region: String,
}

impl Default for WorldConfig {
    fn default() -> Self {
        WorldConfig {
            evaluation_delay_ms: 0,
            standards_ready_ms: 0,
            default_session_secs: 3600,
            default_region: "us-east-1".into(),
        }
    }
}

/// Deterministic id generator (splitmix64), so that a scenario always produces the same ids.
#[derive(Debug, Clone)]
pub struct IdGen {
    state: u64,
}

impl IdGen {
    pub fn new(seed: u64) -> IdGen {
        IdGen { state: seed ^ 0x9e37_79b9_7f4a_7c15 }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// `n` lowercase hex digits.
    pub fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(n);
        s
    }

    /// `n` characters from [A-Z0-9], as IAM unique ids and access keys use.
    pub fn upper(&mut self, n: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        (0..n).map(|_| ALPHABET[(self.next_u64() % 32) as usize] as char).collect()
    }

    /// A UUID-shaped id.
    pub fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    }
}

// ---------------------------------------------------------------------------------------------
// Organization and accounts

#[derive(Debug, Clone)]
pub struct Organization {
    pub id: String,
    pub management_account: String,
    pub root_id: String,
    pub ous: BTreeMap<String, Ou>,
    /// (account, service principal) pairs registered as delegated administrators.
    pub delegated_admins: BTreeSet<(String, String)>,
    pub service_access: BTreeSet<String>,
    pub created_ms: Millis,
}

#[derive(Debug, Clone)]
pub struct Ou {
    pub id: String,
    pub name: String,
    pub parent_id: String,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub email: String,
    /// `ACTIVE` or `SUSPENDED`.
    pub status: String,
    /// The root or OU that holds the account; `None` for accounts outside the organization.
    pub parent_id: Option<String>,
    pub joined_ms: Millis,
    pub joined_method: String,
    pub tags: BTreeMap<String, String>,
    pub iam: IamState,
    /// S3 account-level Block Public Access (S3 Control); `None` when never set.
    pub s3_public_access_block: Option<PublicAccessBlock>,
}

impl Account {
    pub fn in_org(&self) -> bool {
        self.parent_id.is_some()
    }
}

// ---------------------------------------------------------------------------------------------
// IAM

#[derive(Debug, Clone, Default)]
pub struct IamState {
    pub password_policy: Option<PasswordPolicy>,
    pub users: BTreeMap<String, User>,
    pub roles: BTreeMap<String, Role>,
    pub instance_profiles: BTreeMap<String, InstanceProfile>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub minimum_password_length: i64,
    pub require_symbols: bool,
    pub require_numbers: bool,
    pub require_uppercase: bool,
    pub require_lowercase: bool,
    pub allow_users_to_change_password: bool,
    pub max_password_age: Option<i64>,
    pub password_reuse_prevention: Option<i64>,
    pub hard_expiry: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            minimum_password_length: 6,
            require_symbols: false,
            require_numbers: false,
            require_uppercase: false,
            require_lowercase: false,
            allow_users_to_change_password: false,
            max_password_age: None,
            password_reuse_prevention: None,
            hard_expiry: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub id: String,
    pub arn: String,
    pub path: String,
    pub created_ms: Millis,
    pub access_keys: Vec<AccessKey>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
    /// `Active` or `Inactive`.
    pub status: String,
    pub created_ms: Millis,
}

#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    pub id: String,
    pub arn: String,
    pub path: String,
    pub created_ms: Millis,
    pub description: String,
    pub max_session_duration: i64,
    pub trust_policy: Value,
    pub inline_policies: BTreeMap<String, Value>,
    pub attached_policies: BTreeSet<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct InstanceProfile {
    pub name: String,
    pub id: String,
    pub arn: String,
    pub roles: Vec<String>,
    pub created_ms: Millis,
}

/// A live STS session created by AssumeRole.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_key: String,
    pub secret: String,
    pub token: String,
    pub account: String,
    pub role_name: String,
    pub session_name: String,
    pub expires_ms: Millis,
    pub source_identity: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// EC2 and S3

#[derive(Debug, Clone, Default)]
pub struct Ec2State {
    pub vpcs: BTreeMap<String, Vpc>,
    pub security_groups: BTreeMap<String, SecurityGroup>,
    pub instances: BTreeMap<String, Instance>,
    pub volumes: BTreeMap<String, Volume>,
    pub snapshots: BTreeMap<String, Snapshot>,
    pub ebs_encryption_by_default: bool,
}

#[derive(Debug, Clone)]
pub struct Vpc {
    pub id: String,
    pub cidr: String,
    pub is_default: bool,
}

#[derive(Debug, Clone)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub description: String,
    pub vpc_id: String,
    pub ingress: Vec<SgRule>,
    pub egress: Vec<SgRule>,
    pub tags: BTreeMap<String, String>,
}

impl SecurityGroup {
    pub fn is_default(&self) -> bool {
        self.name == "default"
    }
}

/// One security group rule: a protocol, a port range and one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SgRule {
    pub id: String,
    /// `tcp`, `udp`, `icmp` or `-1` (all).
    pub protocol: String,
    pub from_port: Option<i64>,
    pub to_port: Option<i64>,
    pub source: RuleSource,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleSource {
    Ipv4(String),
    Ipv6(String),
    Group(String),
    PrefixList(String),
}

impl SgRule {
    /// Whether this rule lets traffic from anywhere reach `port`.
    pub fn opens_to_world(&self, port: i64) -> bool {
        let world = matches!(&self.source, RuleSource::Ipv4(c) if c == "0.0.0.0/0")
            || matches!(&self.source, RuleSource::Ipv6(c) if c == "::/0");
        world && self.covers_port(port)
    }

    pub fn covers_port(&self, port: i64) -> bool {
        if self.protocol == "-1" {
            return true;
        }
        if self.protocol != "tcp" && self.protocol != "udp" && self.protocol != "6" && self.protocol != "17" {
            return false;
        }
        match (self.from_port, self.to_port) {
            (Some(f), Some(t)) => (f == -1 && t == -1) || (f <= port && port <= t),
            _ => true,
        }
    }

    pub fn is_ipv4_world(&self) -> bool {
        matches!(&self.source, RuleSource::Ipv4(c) if c == "0.0.0.0/0")
    }

    pub fn is_ipv6_world(&self) -> bool {
        matches!(&self.source, RuleSource::Ipv6(c) if c == "::/0")
    }
}

#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    pub instance_type: String,
    pub image_id: String,
    pub vpc_id: String,
    pub subnet_id: String,
    pub private_ip: String,
    /// `running`, `stopped`, `terminated`.
    pub state: String,
    pub security_groups: Vec<String>,
    pub volumes: Vec<String>,
    pub iam_instance_profile: Option<String>,
    pub profile_association_id: Option<String>,
    pub disable_api_termination: bool,
    pub launched_ms: Millis,
    pub tags: BTreeMap<String, String>,
    pub metadata_http_tokens: String,
}

#[derive(Debug, Clone)]
pub struct Volume {
    pub id: String,
    pub size_gib: i64,
    pub encrypted: bool,
    pub attached_to: Option<String>,
    pub device: Option<String>,
    pub created_ms: Millis,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub id: String,
    pub volume_id: String,
    pub description: String,
    pub encrypted: bool,
    pub size_gib: i64,
    pub started_ms: Millis,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    pub const ALL: PublicAccessBlock = PublicAccessBlock {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };

    pub fn all(&self) -> bool {
        *self == PublicAccessBlock::ALL
    }
}

#[derive(Debug, Clone)]
pub struct Bucket {
    pub name: String,
    pub owner: String,
    pub region: String,
    pub created_ms: Millis,
    pub public_access_block: Option<PublicAccessBlock>,
    pub policy: Option<String>,
    /// A canned ACL that grants public read (`public-read`, `public-read-write`).
    pub public_acl: Option<String>,
    pub tags: BTreeMap<String, String>,
}

// ---------------------------------------------------------------------------------------------
// Security Hub

#[derive(Debug, Clone)]
pub struct Hub {
    pub arn: String,
    pub subscribed_ms: Millis,
    pub auto_enable_controls: bool,
    /// `SECURITY_CONTROL` (consolidated) or `STANDARD_CONTROL`.
    pub control_finding_generator: String,
    /// standards ARN -> subscription.
    pub standards: BTreeMap<String, StandardsSubscription>,
    /// (standards ARN, control id) -> (reason, when) for disabled controls.
    pub disabled_controls: BTreeMap<(String, String), (String, Millis)>,
    /// Members this hub administers.
    pub members: BTreeMap<String, HubMember>,
    /// The administrator this hub is a member of, if any.
    pub administrator: Option<HubAdministrator>,
    pub action_targets: BTreeMap<String, ActionTarget>,
    pub automation_rules: BTreeMap<String, Value>,
    /// Organization configuration when this hub is the delegated administrator.
    pub org_auto_enable: bool,
    pub org_auto_enable_standards: String,
}

#[derive(Debug, Clone)]
pub struct StandardsSubscription {
    pub subscription_arn: String,
    pub standards_arn: String,
    pub ready_ms: Millis,
    pub input: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct HubMember {
    pub account_id: String,
    pub email: Option<String>,
    /// `Created`, `Invited`, `Enabled`, `Removed`, `Resigned`, `Deleted`.
    pub status: String,
    pub invited_ms: Option<Millis>,
    pub updated_ms: Millis,
    pub org_managed: bool,
}

#[derive(Debug, Clone)]
pub struct HubAdministrator {
    pub account_id: String,
    pub invitation_id: String,
    pub invited_ms: Millis,
    pub status: String,
}

#[derive(Debug, Clone)]
pub struct Invitation {
    pub account_id: String,
    pub invitation_id: String,
    pub invited_ms: Millis,
    pub status: String,
}

#[derive(Debug, Clone)]
pub struct ActionTarget {
    pub arn: String,
    pub name: String,
    pub description: String,
}

// ---------------------------------------------------------------------------------------------
// GuardDuty

#[derive(Debug, Clone)]
pub struct Detector {
    pub id: String,
    /// `ENABLED` or `DISABLED`.
    pub status: String,
    pub created_ms: Millis,
    pub updated_ms: Millis,
    pub finding_publishing_frequency: String,
    pub features: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub members: BTreeMap<String, GdMember>,
    pub administrator: Option<HubAdministrator>,
    pub invitations: BTreeMap<String, Invitation>,
    pub findings: BTreeMap<String, Value>,
    pub org_auto_enable: String,
}

#[derive(Debug, Clone)]
pub struct GdMember {
    pub account_id: String,
    pub email: String,
    pub relationship_status: String,
    pub invited_ms: Option<Millis>,
    pub updated_ms: Millis,
    pub detector_id: Option<String>,
}

/// Something happening to a resource that GuardDuty detects when a detector is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threat {
    pub account: String,
    pub region: String,
    /// GuardDuty finding type, e.g. `CryptoCurrency:EC2/BitcoinTool.B!DNS`.
    pub finding_type: String,
    /// Instance id, access key id, or the account id for root-credential findings.
    pub resource: String,
}

// ---------------------------------------------------------------------------------------------
// Config

#[derive(Debug, Clone, Default)]
pub struct ConfigState {
    pub recorder: Option<Recorder>,
    pub recording: bool,
    pub last_start_ms: Option<Millis>,
    pub last_stop_ms: Option<Millis>,
    pub delivery_channel: Option<Value>,
    pub rules: BTreeMap<String, ConfigRule>,
    pub aggregators: BTreeMap<String, Value>,
    pub last_rules_evaluation_ms: Option<Millis>,
    /// rule name -> when StartConfigRulesEvaluation last started an evaluation of it.
    pub rule_evaluations: BTreeMap<String, Millis>,
}

#[derive(Debug, Clone)]
pub struct Recorder {
    pub name: String,
    pub role_arn: String,
    pub recording_group: Value,
}

#[derive(Debug, Clone)]
pub struct ConfigRule {
    pub name: String,
    pub arn: String,
    pub id: String,
    pub source_owner: String,
    pub source_identifier: String,
    pub input_parameters: Option<String>,
    pub description: Option<String>,
    pub scope: Option<Value>,
    pub maximum_execution_frequency: Option<String>,
    pub created_by: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Access Analyzer

#[derive(Debug, Clone)]
pub struct Analyzer {
    pub arn: String,
    pub name: String,
    /// `ACCOUNT` or `ORGANIZATION` (unused-access types are accepted and stored).
    pub kind: String,
    pub created_ms: Millis,
    pub tags: BTreeMap<String, String>,
    pub archive_rules: BTreeMap<String, ArchiveRule>,
    /// finding id -> finding.
    pub findings: BTreeMap<String, AnalyzerFinding>,
}

#[derive(Debug, Clone)]
pub struct ArchiveRule {
    pub name: String,
    pub filter: Value,
    pub created_ms: Millis,
    pub updated_ms: Millis,
}

#[derive(Debug, Clone)]
pub struct AnalyzerFinding {
    pub id: String,
    pub resource: String,
    pub resource_type: String,
    pub resource_owner: String,
    pub principal: BTreeMap<String, String>,
    pub action: Vec<String>,
    pub condition: BTreeMap<String, String>,
    pub is_public: bool,
    /// `ACTIVE`, `ARCHIVED`, `RESOLVED`.
    pub status: String,
    pub created_ms: Millis,
    pub updated_ms: Millis,
    pub analyzed_ms: Millis,
}

// ---------------------------------------------------------------------------------------------
// Per (account, region)

#[derive(Debug, Clone, Default)]
pub struct RegionState {
    pub ec2: Ec2State,
    pub hub: Option<Hub>,
    pub detector: Option<Detector>,
    pub config: ConfigState,
    pub analyzers: BTreeMap<String, Analyzer>,
}

/// Counts of mutating calls, per operation and per (operation, resource), so that a test can
/// prove a remediation ran exactly once.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub by_operation: BTreeMap<String, u64>,
    pub by_resource: BTreeMap<(String, String), u64>,
}

impl Counters {
    pub fn record(&mut self, operation: &str, resource: &str) {
        *self.by_operation.entry(operation.to_string()).or_default() += 1;
        *self.by_resource.entry((operation.to_string(), resource.to_string())).or_default() += 1;
    }
}

/// The whole emulated world.
#[derive(Debug, Clone)]
pub struct World {
    pub config: WorldConfig,
    pub clock_offset_ms: Millis,
    pub org: Option<Organization>,
    pub accounts: BTreeMap<String, Account>,
    pub regions: BTreeMap<(String, String), RegionState>,
    pub buckets: BTreeMap<String, Bucket>,
    pub sessions: HashMap<String, Session>,
    pub threats: Vec<Threat>,
    /// Security Hub findings per region.
    pub findings: BTreeMap<String, FindingStore>,
    /// Delegated administrator per (service, region): `securityhub` / `guardduty`.
    pub org_admins: BTreeMap<(String, String), String>,
    /// Security Hub invitations received, per (invitee, region), by inviting account.
    pub hub_invitations: BTreeMap<(String, String), BTreeMap<String, Invitation>>,
    pub counters: Counters,
    /// (due time, account, region) evaluations waiting for the evaluation delay.
    pub pending: BTreeSet<(Millis, String, String)>,
    pub ids: IdGen,
}

impl World {
    pub fn new(config: WorldConfig, seed: u64) -> World {
        World {
            config,
            clock_offset_ms: 0,
            org: None,
            accounts: BTreeMap::new(),
            regions: BTreeMap::new(),
            buckets: BTreeMap::new(),
            sessions: HashMap::new(),
            threats: Vec::new(),
            findings: BTreeMap::new(),
            org_admins: BTreeMap::new(),
            hub_invitations: BTreeMap::new(),
            counters: Counters::default(),
            pending: BTreeSet::new(),
            ids: IdGen::new(seed),
        }
    }

    /// The world's clock: wall time plus any offset set through the admin API.
    pub fn now(&self) -> Millis {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0);
        wall + self.clock_offset_ms
    }

    pub fn region_mut(&mut self, account: &str, region: &str) -> &mut RegionState {
        self.regions.entry((account.to_string(), region.to_string())).or_default()
    }

    pub fn region(&self, account: &str, region: &str) -> Option<&RegionState> {
        self.regions.get(&(account.to_string(), region.to_string()))
    }

    pub fn findings_mut(&mut self, region: &str) -> &mut FindingStore {
        self.findings.entry(region.to_string()).or_default()
    }

    /// Records a mutation and schedules re-evaluation of the account-region it touched.
    pub fn mutated(&mut self, operation: &str, resource: &str, account: &str, region: &str) {
        self.counters.record(operation, resource);
        self.schedule(account, region);
    }

    /// Schedules re-evaluation of an account-region after the evaluation delay (at once when the
    /// delay is zero).
    pub fn schedule(&mut self, account: &str, region: &str) {
        let due = self.now() + self.config.evaluation_delay_ms;
        if self.config.evaluation_delay_ms <= 0 {
            eval::evaluate(self, account, region);
        } else {
            self.pending.insert((due, account.to_string(), region.to_string()));
        }
    }

    /// Schedules re-evaluation of every region of an account (IAM and S3 Control are global).
    pub fn schedule_account(&mut self, account: &str) {
        let regions: Vec<String> = self.regions.keys().filter(|(a, _)| a == account).map(|(_, r)| r.clone()).collect();
        for r in regions {
            self.schedule(account, &r);
        }
    }

    /// Whether any scheduled evaluation is due.
    pub fn has_due(&self) -> bool {
        self.pending.first().is_some_and(|(due, _, _)| *due <= self.now())
    }

    /// Runs every evaluation whose delay has passed.
    pub fn run_due(&mut self) {
        let now = self.now();
        while let Some((due, _, _)) = self.pending.first() {
            if *due > now {
                break;
            }
            let Some((_, account, region)) = self.pending.pop_first() else { break };
            eval::evaluate(self, &account, &region);
        }
    }

    /// Evaluates every account-region now (after loading a scenario).
    pub fn evaluate_all(&mut self) {
        let keys: Vec<(String, String)> = self.regions.keys().cloned().collect();
        for (a, r) in keys {
            eval::evaluate(self, &a, &r);
        }
    }

    /// A new VPC with the default security group AWS creates in every VPC (all traffic in from
    /// the group itself, all traffic out). Not inserted: the caller decides where it goes.
    pub fn new_vpc(&mut self, cidr: &str, is_default: bool) -> (Vpc, SecurityGroup) {
        let vpc_id = format!("vpc-{}", self.ids.hex(17));
        let sg_id = format!("sg-{}", self.ids.hex(17));
        let all = |id: String, source: RuleSource| SgRule {
            id,
            protocol: "-1".into(),
            from_port: None,
            to_port: None,
            source,
            description: None,
        };
        let ingress = vec![all(format!("sgr-{}", self.ids.hex(17)), RuleSource::Group(sg_id.clone()))];
        let egress = vec![all(format!("sgr-{}", self.ids.hex(17)), RuleSource::Ipv4("0.0.0.0/0".into()))];
        let vpc = Vpc { id: vpc_id.clone(), cidr: cidr.to_string(), is_default };
        let sg = SecurityGroup {
            id: sg_id,
            name: "default".into(),
            description: "default VPC security group".into(),
            vpc_id,
            ingress,
            egress,
            tags: BTreeMap::new(),
        };
        (vpc, sg)
    }

    /// Gives an account-region its default VPC (172.31.0.0/16) and default security group.
    pub fn add_default_vpc(&mut self, account: &str, region: &str) {
        let (vpc, sg) = self.new_vpc("172.31.0.0/16", true);
        let ec2 = &mut self.region_mut(account, region).ec2;
        ec2.vpcs.insert(vpc.id.clone(), vpc);
        ec2.security_groups.insert(sg.id.clone(), sg);
    }

    /// The path of OU names from the root to the account's parent, e.g. `Root/Prod`.
    pub fn ou_path(&self, account: &str) -> Option<String> {
        let org = self.org.as_ref()?;
        let mut parent = self.accounts.get(account)?.parent_id.clone()?;
        let mut names = Vec::new();
        while let Some(ou) = org.ous.get(&parent) {
            names.push(ou.name.clone());
            parent = ou.parent_id.clone();
        }
        names.push("Root".to_string());
        names.reverse();
        Some(names.join("/"))
    }

    pub fn partition(&self) -> &'static str {
        "aws"
    }
}
