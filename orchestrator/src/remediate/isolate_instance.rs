//! `isolate-instance` (GuardDuty EC2 findings): the incident-response runbook for a compromised
//! instance, in the order that keeps evidence first:
//!
//! 1. save the instance's metadata (in the outcome, which the job records);
//! 2. snapshot every attached EBS volume, for forensics;
//! 3. enable termination protection, so nobody destroys the evidence by reflex;
//! 4. detach its instance profile, so its role credentials stop being renewed;
//! 5. move it to a quarantine security group with no rules (created when missing), which cuts
//!    new connections both ways;
//! 6. tag it, so that people and automation see it is under investigation.
//!
//! The instance keeps running: memory is evidence too. Each step checks first whether it is
//! done (a snapshot of this volume tagged for this instance, the protection on, ...), so a
//! retried job continues where the last attempt stopped.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, Instance, InstanceAttributeName, ResourceType, Tag, TagSpecification,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Remediation as _;
use super::text_param;
use super::{Outcome, Parameters, Plan, RemediationError, Target, Verified, bool_param, code, failed, plan_of, step};
use crate::aws::Clients;

pub(crate) struct IsolateInstance;
super::remediation!(IsolateInstance, "isolate-instance");

/// The tag on snapshots and on the instance naming the isolated instance.
const TAG_ISOLATED: &str = "orgsec:isolated";
/// The tag naming the finding that caused the isolation.
const TAG_FINDING: &str = "orgsec:finding";

#[derive(Debug, Serialize, Deserialize)]
struct Desired {
    instance_id: String,
    snapshot_volumes: bool,
    detach_instance_profile: bool,
    quarantine_group_name: String,
    tags: BTreeMap<String, String>,
}

/// What the account shows of the instance now.
struct State {
    instance: Instance,
    volumes: Vec<String>,
    /// Volumes that already have a snapshot taken for this isolation.
    snapshotted: BTreeMap<String, String>,
    protected: bool,
    /// Associated instance profile associations: (association id, profile ARN).
    associations: Vec<(String, String)>,
    /// The quarantine group in the instance's VPC, if it exists: (id, rule count).
    quarantine: Option<(String, usize, usize)>,
}

impl State {
    fn groups(&self) -> Vec<String> {
        self.instance.security_groups().iter().filter_map(|g| g.group_id()).map(str::to_string).collect()
    }

    fn in_quarantine(&self) -> bool {
        self.quarantine.as_ref().is_some_and(|(id, _, _)| self.groups() == [id.clone()])
    }

    fn missing_tags(&self, want: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let have: BTreeMap<&str, &str> =
            self.instance.tags().iter().filter_map(|t| Some((t.key()?, t.value().unwrap_or_default()))).collect();
        want.iter()
            .filter(|(k, v)| have.get(k.as_str()) != Some(&v.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

fn instance_id(t: &Target) -> Result<String, RemediationError> {
    super::resource_name(&t.resource_id, "instance/", "i-")
        .or_else(|| t.raw_str(&["/resource/instanceDetails/instanceId"]))
        .ok_or_else(|| {
            RemediationError::Invalid(format!(
                "isolate-instance acts on EC2 instances, and the finding names {} ({})",
                t.resource_id, t.resource_type
            ))
        })
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

async fn read(c: &Clients, id: &str, quarantine_name: &str) -> Result<State, RemediationError> {
    let out = c.ec2().describe_instances().instance_ids(id).send().await.map_err(|e| match code(&e) {
        "InvalidInstanceID.NotFound" => RemediationError::NotFound(format!("instance {id} in {}", c.account_id)),
        _ => failed(c, "ec2:DescribeInstances", &e),
    })?;
    let instance = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| i.instance_id() == Some(id))
        .cloned()
        .ok_or_else(|| RemediationError::NotFound(format!("instance {id} in {}", c.account_id)))?;
    if instance.state().and_then(|s| s.name()).is_some_and(|n| n.as_str() == "terminated") {
        return Err(RemediationError::NotFound(format!("instance {id} (terminated) in {}", c.account_id)));
    }
    let vols = c
        .ec2()
        .describe_volumes()
        .filters(filter("attachment.instance-id", id))
        .send()
        .await
        .map_err(|e| failed(c, "ec2:DescribeVolumes", &e))?;
    let volumes: Vec<String> = vols.volumes().iter().filter_map(|v| v.volume_id()).map(str::to_string).collect();
    let mut snapshotted = BTreeMap::new();
    for v in &volumes {
        let snaps = c
            .ec2()
            .describe_snapshots()
            .owner_ids("self")
            .filters(filter("volume-id", v))
            .send()
            .await
            .map_err(|e| failed(c, "ec2:DescribeSnapshots", &e))?;
        let ours = snaps
            .snapshots()
            .iter()
            .find(|s| s.tags().iter().any(|t| t.key() == Some(TAG_ISOLATED) && t.value() == Some(id)));
        if let Some(s) = ours {
            snapshotted.insert(v.clone(), s.snapshot_id().unwrap_or_default().to_string());
        }
    }
    let attr = c
        .ec2()
        .describe_instance_attribute()
        .instance_id(id)
        .attribute(InstanceAttributeName::DisableApiTermination)
        .send()
        .await
        .map_err(|e| failed(c, "ec2:DescribeInstanceAttribute", &e))?;
    let protected = attr.disable_api_termination().and_then(|v| v.value()).unwrap_or(false);
    let assoc = c
        .ec2()
        .describe_iam_instance_profile_associations()
        .filters(filter("instance-id", id))
        .send()
        .await
        .map_err(|e| failed(c, "ec2:DescribeIamInstanceProfileAssociations", &e))?;
    let associations = assoc
        .iam_instance_profile_associations()
        .iter()
        .filter(|a| a.state().is_some_and(|s| matches!(s.as_str(), "associated" | "associating")))
        .filter_map(|a| {
            Some((
                a.association_id()?.to_string(),
                a.iam_instance_profile().and_then(|p| p.arn()).unwrap_or_default().to_string(),
            ))
        })
        .collect();
    let vpc = instance.vpc_id().unwrap_or_default().to_string();
    let mut q = c.ec2().describe_security_groups().filters(filter("group-name", quarantine_name));
    if !vpc.is_empty() {
        q = q.filters(filter("vpc-id", &vpc));
    }
    let groups = q.send().await.map_err(|e| failed(c, "ec2:DescribeSecurityGroups", &e))?;
    let quarantine = groups.security_groups().first().map(|g| {
        (g.group_id().unwrap_or_default().to_string(), g.ip_permissions().len(), g.ip_permissions_egress().len())
    });
    Ok(State { instance, volumes, snapshotted, protected, associations, quarantine })
}

/// The instance's metadata as saved for the investigation.
fn metadata(s: &State) -> Value {
    let i = &s.instance;
    json!({
        "instance_id": i.instance_id(),
        "instance_type": i.instance_type().map(|t| t.as_str().to_string()),
        "image_id": i.image_id(),
        "launch_time": i.launch_time().map(|t| t.to_string()),
        "state": i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()),
        "vpc_id": i.vpc_id(),
        "subnet_id": i.subnet_id(),
        "private_ip_address": i.private_ip_address(),
        "public_ip_address": i.public_ip_address(),
        "key_name": i.key_name(),
        "security_groups": s.groups(),
        "iam_instance_profile": i.iam_instance_profile().and_then(|p| p.arn()),
        "volumes": s.volumes,
        "tags": i.tags().iter().map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string())).collect::<BTreeMap<_, _>>(),
    })
}

impl IsolateInstance {
    async fn plan(&self, c: &Clients, t: &Target, params: Parameters) -> Result<Plan, RemediationError> {
        let id = instance_id(t)?;
        let d = Desired {
            instance_id: id.clone(),
            snapshot_volumes: bool_param(&params, "snapshot_volumes"),
            detach_instance_profile: bool_param(&params, "detach_instance_profile"),
            quarantine_group_name: text_param(&params, "quarantine_group_name").to_string(),
            tags: BTreeMap::from([
                (TAG_ISOLATED.to_string(), id.clone()),
                (TAG_FINDING.to_string(), t.finding_id.clone()),
            ]),
        };
        let s = read(c, &id, &d.quarantine_group_name).await?;
        if let Some((gid, ingress, _)) = &s.quarantine
            && *ingress > 0
        {
            return Err(RemediationError::Invalid(format!(
                "the quarantine group {} ({gid}) has {ingress} ingress rule(s), and a quarantine group must have none: \
                 remove them or name another group in quarantine_group_name",
                d.quarantine_group_name
            )));
        }
        let mut steps = vec![step("ec2:DescribeInstances", format!("save the metadata of {id}"), metadata(&s))];
        if d.snapshot_volumes {
            for v in s.volumes.iter().filter(|v| !s.snapshotted.contains_key(*v)) {
                steps.push(step("ec2:CreateSnapshot", format!("snapshot volume {v} of {id}"), json!({"volume_id": v})));
            }
        }
        if !s.protected {
            steps.push(step(
                "ec2:ModifyInstanceAttribute",
                format!("enable termination protection of {id}"),
                json!({}),
            ));
        }
        if d.detach_instance_profile {
            for (assoc, arn) in &s.associations {
                steps.push(step(
                    "ec2:DisassociateIamInstanceProfile",
                    format!("detach instance profile {arn} from {id}"),
                    json!({"association_id": assoc, "instance_profile": arn}),
                ));
            }
        }
        match &s.quarantine {
            None => steps.push(step(
                "ec2:CreateSecurityGroup",
                format!(
                    "create the quarantine group {} with no rules in {}",
                    d.quarantine_group_name,
                    s.instance.vpc_id().unwrap_or("the default VPC")
                ),
                json!({"group_name": d.quarantine_group_name}),
            )),
            Some((gid, _, egress)) if *egress > 0 => steps.push(step(
                "ec2:RevokeSecurityGroupEgress",
                format!("remove the {egress} egress rule(s) of the quarantine group {gid}"),
                json!({"group_id": gid}),
            )),
            Some(_) => {}
        }
        if !s.in_quarantine() {
            steps.push(step(
                "ec2:ModifyInstanceAttribute",
                format!("move {id} from {} to the quarantine group only", s.groups().join(", ")),
                json!({"from": s.groups()}),
            ));
        }
        let missing = s.missing_tags(&d.tags);
        if !missing.is_empty() {
            steps.push(step("ec2:CreateTags", format!("tag {id} as isolated"), json!(missing)));
        }
        // Saving metadata alone changes nothing in the account.
        if steps.len() == 1 {
            steps.clear();
        }
        let summary = if steps.is_empty() {
            format!("{id} is already isolated; nothing to change")
        } else {
            format!("isolate {id}: evidence first, then cut its credentials and network; it keeps running")
        };
        plan_of(self.descriptor(), summary, params, steps, d)
    }

    async fn execute(&self, c: &Clients, _t: &Target, plan: &Plan) -> Result<Outcome, RemediationError> {
        let d: Desired = super::desired(plan)?;
        let id = d.instance_id.as_str();
        let s = read(c, id, &d.quarantine_group_name).await?;
        let mut changed = Vec::new();
        let mut record = Vec::new();
        let mut done = |step: &str, status: &str, detail: Value| {
            record.push(json!({"step": step, "status": status, "detail": detail}));
        };
        let meta = metadata(&s);
        done("save metadata", "saved", Value::Null);

        // 2. Snapshots.
        if d.snapshot_volumes {
            let mut snaps = s.snapshotted.clone();
            for v in s.volumes.iter().filter(|v| !s.snapshotted.contains_key(*v)) {
                let tags = TagSpecification::builder()
                    .resource_type(ResourceType::Snapshot)
                    .set_tags(Some(d.tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()))
                    .build();
                let out = c
                    .ec2()
                    .create_snapshot()
                    .volume_id(v)
                    .description(format!("orgsec isolation of {id}: evidence before containment"))
                    .tag_specifications(tags)
                    .send()
                    .await
                    .map_err(|e| failed(c, "ec2:CreateSnapshot", &e))?;
                let snap = out.snapshot_id().unwrap_or_default().to_string();
                changed.push(format!("snapshotted volume {v} of {id} as {snap}"));
                snaps.insert(v.clone(), snap);
            }
            let status = if snaps.len() > s.snapshotted.len() { "done" } else { "already done" };
            done("snapshot volumes", status, json!(snaps));
        } else {
            done("snapshot volumes", "skipped by parameter", Value::Null);
        }

        // 3. Termination protection.
        if s.protected {
            done("enable termination protection", "already done", Value::Null);
        } else {
            c.ec2()
                .modify_instance_attribute()
                .instance_id(id)
                .disable_api_termination(AttributeBooleanValue::builder().value(true).build())
                .send()
                .await
                .map_err(|e| failed(c, "ec2:ModifyInstanceAttribute", &e))?;
            changed.push(format!("enabled termination protection of {id}"));
            done("enable termination protection", "done", Value::Null);
        }

        // 4. Instance profile.
        if !d.detach_instance_profile {
            done("detach instance profile", "skipped by parameter", Value::Null);
        } else if s.associations.is_empty() {
            done("detach instance profile", "already done", Value::Null);
        } else {
            for (assoc, arn) in &s.associations {
                match c.ec2().disassociate_iam_instance_profile().association_id(assoc).send().await {
                    Ok(_) => changed.push(format!("detached instance profile {arn} from {id}")),
                    Err(e) if code(&e) == "InvalidAssociationID.NotFound" => {}
                    Err(e) => return Err(failed(c, "ec2:DisassociateIamInstanceProfile", &e)),
                }
            }
            done("detach instance profile", "done", json!(s.associations));
        }

        // 5. Quarantine group, then the move.
        let group_id = match &s.quarantine {
            Some((gid, _, egress)) => {
                if *egress > 0 {
                    self.revoke_egress(c, gid).await?;
                    changed.push(format!("removed the egress rules of the quarantine group {gid}"));
                }
                gid.clone()
            }
            None => {
                let gid = self.create_quarantine(c, &d, s.instance.vpc_id()).await?;
                changed.push(format!("created the quarantine group {} ({gid}) with no rules", d.quarantine_group_name));
                gid
            }
        };
        if s.groups() == [group_id.clone()] {
            done("move to quarantine group", "already done", json!({"group_id": group_id}));
        } else {
            c.ec2()
                .modify_instance_attribute()
                .instance_id(id)
                .groups(&group_id)
                .send()
                .await
                .map_err(|e| failed(c, "ec2:ModifyInstanceAttribute", &e))?;
            changed.push(format!("moved {id} from {} to the quarantine group {group_id}", s.groups().join(", ")));
            done("move to quarantine group", "done", json!({"group_id": group_id, "from": s.groups()}));
        }

        // 6. Tags.
        let missing = s.missing_tags(&d.tags);
        if missing.is_empty() {
            done("tag instance", "already done", Value::Null);
        } else {
            c.ec2()
                .create_tags()
                .resources(id)
                .set_tags(Some(missing.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()))
                .send()
                .await
                .map_err(|e| failed(c, "ec2:CreateTags", &e))?;
            changed.push(format!("tagged {id} as isolated"));
            done("tag instance", "done", json!(missing));
        }
        Ok(Outcome { changed, details: json!({"instance_id": id, "metadata": meta, "steps": record}) })
    }

    async fn verify(&self, c: &Clients, _t: &Target, plan: &Plan) -> Result<Verified, RemediationError> {
        let d: Desired = super::desired(plan)?;
        let s = read(c, &d.instance_id, &d.quarantine_group_name).await?;
        let mut problems = Vec::new();
        if d.snapshot_volumes {
            let missing: Vec<&String> = s.volumes.iter().filter(|v| !s.snapshotted.contains_key(*v)).collect();
            if !missing.is_empty() {
                problems.push(format!(
                    "no snapshot of {}",
                    missing.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        if !s.protected {
            problems.push("termination protection is off".to_string());
        }
        if d.detach_instance_profile && !s.associations.is_empty() {
            problems.push("an instance profile is still attached".to_string());
        }
        match &s.quarantine {
            None => problems.push(format!("the quarantine group {} does not exist", d.quarantine_group_name)),
            Some((gid, i, e)) if i + e > 0 => problems.push(format!("the quarantine group {gid} has rules")),
            Some(_) => {}
        }
        if !s.in_quarantine() {
            problems.push(format!("the instance is in {}", s.groups().join(", ")));
        }
        if !s.missing_tags(&d.tags).is_empty() {
            problems.push("the isolation tags are missing".to_string());
        }
        Ok(if problems.is_empty() {
            Verified { ok: true, observed: format!("{} is isolated", d.instance_id) }
        } else {
            Verified { ok: false, observed: format!("{} is not isolated: {}", d.instance_id, problems.join("; ")) }
        })
    }

    /// Creates the quarantine group in `vpc` and removes the allow-all egress rule AWS gives
    /// every new group, so that it has no rules at all.
    async fn create_quarantine(&self, c: &Clients, d: &Desired, vpc: Option<&str>) -> Result<String, RemediationError> {
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::SecurityGroup)
            .tags(Tag::builder().key(TAG_ISOLATED).value("quarantine").build())
            .build();
        let out = c
            .ec2()
            .create_security_group()
            .group_name(&d.quarantine_group_name)
            .description("orgsec quarantine: no inbound or outbound traffic")
            .set_vpc_id(vpc.map(str::to_string))
            .tag_specifications(tags)
            .send()
            .await
            .map_err(|e| failed(c, "ec2:CreateSecurityGroup", &e))?;
        let gid = out.group_id().unwrap_or_default().to_string();
        self.revoke_egress(c, &gid).await?;
        Ok(gid)
    }

    async fn revoke_egress(&self, c: &Clients, gid: &str) -> Result<(), RemediationError> {
        let rules = c
            .ec2()
            .describe_security_group_rules()
            .filters(filter("group-id", gid))
            .send()
            .await
            .map_err(|e| failed(c, "ec2:DescribeSecurityGroupRules", &e))?;
        let ids: Vec<String> = rules
            .security_group_rules()
            .iter()
            .filter(|r| r.is_egress() == Some(true))
            .filter_map(|r| r.security_group_rule_id())
            .map(str::to_string)
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        match c.ec2().revoke_security_group_egress().group_id(gid).set_security_group_rule_ids(Some(ids)).send().await {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == "InvalidSecurityGroupRuleId.NotFound" => Ok(()),
            Err(e) => Err(failed(c, "ec2:RevokeSecurityGroupEgress", &e)),
        }
    }
}
