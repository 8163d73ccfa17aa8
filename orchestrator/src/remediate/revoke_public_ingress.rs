//! `revoke-public-ingress` (EC2.13, EC2.14, EC2.19, EC2.53, EC2.54): removes the ingress
//! permissions of one security group that are open to the whole internet (0.0.0.0/0 or ::/0) on
//! the ports the finding's control is about, and nothing else. A rule from 10.0.0.0/8 on the
//! same port, or a public rule on another port, stays: an EC2.13 (SSH) fix must not also close
//! RDP that someone else decided about.
//!
//! A public rule is revoked whole when its port range covers a targeted port (a 0-65535 rule
//! goes entirely): splitting it would keep the rest of the range open to the internet while
//! looking fixed.

use aws_sdk_ec2::types::{Filter, SecurityGroupRule};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Remediation as _;
use super::{Outcome, Parameters, Plan, RemediationError, Target, Verified, code, failed, plan_of, step};
use crate::aws::Clients;

pub(crate) struct RevokePublicIngress;
super::remediation!(RevokePublicIngress, "revoke-public-ingress");

/// Ports EC2.19 treats as high risk (AWS's list for the control).
const HIGH_RISK_PORTS: &[u16] = &[
    20, 21, 22, 23, 25, 110, 135, 143, 445, 1433, 1434, 3000, 3306, 3389, 4333, 5000, 5432, 5500, 5601, 8080, 8088,
    8888, 9200, 9300,
];
/// Remote administration ports (EC2.53 for IPv4, EC2.54 for IPv6).
const ADMIN_PORTS: &[u16] = &[22, 3389];

const IPV4_WORLD: &str = "0.0.0.0/0";
const IPV6_WORLD: &str = "::/0";

/// Which public permissions are revoked: port ranges, and which of the two "anywhere" ranges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Selection {
    ports: Vec<(u16, u16)>,
    ipv4: bool,
    ipv6: bool,
}

/// One ingress permission, as revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Permission {
    rule_id: String,
    protocol: String,
    from_port: i32,
    to_port: i32,
    cidr: String,
    description: String,
}

impl Permission {
    fn same(&self, other: &Permission) -> bool {
        (self.protocol.as_str(), self.from_port, self.to_port, self.cidr.as_str())
            == (other.protocol.as_str(), other.from_port, other.to_port, other.cidr.as_str())
    }

    fn label(&self) -> String {
        let ports = match (self.protocol.as_str(), self.from_port, self.to_port) {
            ("-1", _, _) => "all traffic".to_string(),
            (p, -1, -1) => format!("{p} all ports"),
            (p, f, t) if f == t => format!("{p} {f}"),
            (p, f, t) => format!("{p} {f}-{t}"),
        };
        format!("{ports} from {} ({})", self.cidr, self.rule_id)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Desired {
    group_id: String,
    selection: Selection,
    revoke: Vec<Permission>,
}

impl Selection {
    fn for_target(t: &Target, params: &Parameters) -> Result<Selection, RemediationError> {
        let given = super::text_param(params, "ports");
        if !given.is_empty() {
            return Ok(Selection { ports: parse_ports(given)?, ipv4: true, ipv6: true });
        }
        let single = |ports: &[u16]| ports.iter().map(|p| (*p, *p)).collect::<Vec<_>>();
        Ok(match t.control_id.as_deref() {
            Some("EC2.13") => Selection { ports: single(&[22]), ipv4: true, ipv6: true },
            Some("EC2.14") => Selection { ports: single(&[3389]), ipv4: true, ipv6: true },
            Some("EC2.19") => Selection { ports: single(HIGH_RISK_PORTS), ipv4: true, ipv6: true },
            Some("EC2.53") => Selection { ports: single(ADMIN_PORTS), ipv4: true, ipv6: false },
            Some("EC2.54") => Selection { ports: single(ADMIN_PORTS), ipv4: false, ipv6: true },
            other => {
                return Err(RemediationError::Invalid(format!(
                    "the finding's control ({}) does not say which ports to close; give the ports parameter",
                    other.unwrap_or("none")
                )));
            }
        })
    }

    /// Whether `r` is an ingress permission this selection revokes.
    fn matches(&self, r: &SecurityGroupRule) -> bool {
        if r.is_egress() != Some(false) {
            return false;
        }
        let public =
            (self.ipv4 && r.cidr_ipv4() == Some(IPV4_WORLD)) || (self.ipv6 && r.cidr_ipv6() == Some(IPV6_WORLD));
        if !public {
            return false;
        }
        let (from, to) = match r.ip_protocol() {
            Some("-1") => return true,
            Some("tcp" | "udp" | "6" | "17") => (r.from_port().unwrap_or(-1), r.to_port().unwrap_or(-1)),
            _ => return false,
        };
        if from == -1 && to == -1 {
            return true;
        }
        self.ports.iter().any(|(lo, hi)| i32::from(*lo) <= to && from <= i32::from(*hi))
    }
}

/// `22,3389,8000-8080` as ranges (the catalogue's `Ports` kind has checked the form).
fn parse_ports(s: &str) -> Result<Vec<(u16, u16)>, RemediationError> {
    let bad =
        || RemediationError::Invalid(format!("ports: \"{s}\" is not a list of ports such as \"22,3389,8000-8080\""));
    s.split(',')
        .map(|part| {
            let (lo, hi) = part.split_once('-').unwrap_or((part, part));
            let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
            let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
            if lo == 0 || lo > hi { Err(bad()) } else { Ok((lo, hi)) }
        })
        .collect()
}

fn permission(r: &SecurityGroupRule) -> Permission {
    Permission {
        rule_id: r.security_group_rule_id().unwrap_or_default().to_string(),
        protocol: r.ip_protocol().unwrap_or_default().to_string(),
        from_port: r.from_port().unwrap_or(-1),
        to_port: r.to_port().unwrap_or(-1),
        cidr: r.cidr_ipv4().or(r.cidr_ipv6()).unwrap_or_default().to_string(),
        description: r.description().unwrap_or_default().to_string(),
    }
}

fn group_id(t: &Target) -> Result<String, RemediationError> {
    super::resource_name(&t.resource_id, "security-group/", "sg-").ok_or_else(|| {
        RemediationError::Invalid(format!(
            "revoke-public-ingress fixes security groups, and the finding names {} ({})",
            t.resource_id, t.resource_type
        ))
    })
}

/// Every rule of the group (ingress and egress), after checking that the group exists.
async fn rules(c: &Clients, group_id: &str) -> Result<Vec<SecurityGroupRule>, RemediationError> {
    c.ec2().describe_security_groups().group_ids(group_id).send().await.map_err(|e| match code(&e) {
        "InvalidGroup.NotFound" => RemediationError::NotFound(format!("security group {group_id} in {}", c.account_id)),
        _ => failed(c, "ec2:DescribeSecurityGroups", &e),
    })?;
    let mut out = Vec::new();
    let mut pages = c
        .ec2()
        .describe_security_group_rules()
        .filters(Filter::builder().name("group-id").values(group_id).build())
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| failed(c, "ec2:DescribeSecurityGroupRules", &e))?;
        out.extend(page.security_group_rules().iter().cloned());
    }
    Ok(out)
}

impl RevokePublicIngress {
    async fn plan(&self, c: &Clients, t: &Target, params: Parameters) -> Result<Plan, RemediationError> {
        let group_id = group_id(t)?;
        let selection = Selection::for_target(t, &params)?;
        let all = rules(c, &group_id).await?;
        let revoke: Vec<Permission> = all.iter().filter(|r| selection.matches(r)).map(permission).collect();
        let kept = all.iter().filter(|r| r.is_egress() == Some(false)).count() - revoke.len();
        let steps = revoke
            .iter()
            .map(|p| {
                step(
                    "ec2:RevokeSecurityGroupIngress",
                    format!("revoke {} in {group_id}", p.label()),
                    serde_json::to_value(p).unwrap_or_default(),
                )
            })
            .collect::<Vec<_>>();
        let summary = if steps.is_empty() {
            format!("{group_id} has no public ingress on the targeted ports; nothing to change")
        } else {
            format!(
                "revoke {} public ingress permission(s) of {group_id}; its {kept} other ingress rule(s) stay",
                steps.len()
            )
        };
        plan_of(self.descriptor(), summary, params, steps, Desired { group_id, selection, revoke })
    }

    async fn execute(&self, c: &Clients, _t: &Target, plan: &Plan) -> Result<Outcome, RemediationError> {
        let d: Desired = super::desired(plan)?;
        if d.revoke.is_empty() {
            return Ok(Outcome { changed: vec![], details: json!({"group_id": d.group_id, "revoked": []}) });
        }
        // Only the planned permissions, matched by what they are (a rule re-created since the
        // plan has another id) and only those still present.
        let now: Vec<Permission> =
            rules(c, &d.group_id).await?.iter().filter(|r| r.is_egress() == Some(false)).map(permission).collect();
        let present: Vec<&Permission> = now.iter().filter(|p| d.revoke.iter().any(|x| x.same(p))).collect();
        if present.is_empty() {
            return Ok(Outcome { changed: vec![], details: json!({"group_id": d.group_id, "revoked": []}) });
        }
        let ids: Vec<String> = present.iter().map(|p| p.rule_id.clone()).collect();
        match c
            .ec2()
            .revoke_security_group_ingress()
            .group_id(&d.group_id)
            .set_security_group_rule_ids(Some(ids))
            .send()
            .await
        {
            Ok(_) => {}
            // Revoked by someone else between the read and the call: the state wanted holds.
            Err(e) if matches!(code(&e), "InvalidSecurityGroupRuleId.NotFound" | "InvalidPermission.NotFound") => {}
            Err(e) => return Err(failed(c, "ec2:RevokeSecurityGroupIngress", &e)),
        }
        let changed = present.iter().map(|p| format!("revoked {} in {}", p.label(), d.group_id)).collect();
        Ok(Outcome { changed, details: json!({"group_id": d.group_id, "revoked": present}) })
    }

    async fn verify(&self, c: &Clients, _t: &Target, plan: &Plan) -> Result<Verified, RemediationError> {
        let d: Desired = super::desired(plan)?;
        let open: Vec<String> = rules(c, &d.group_id)
            .await?
            .iter()
            .filter(|r| d.selection.matches(r))
            .map(|r| permission(r).label())
            .collect();
        Ok(if open.is_empty() {
            Verified { ok: true, observed: format!("{} has no public ingress on the targeted ports", d.group_id) }
        } else {
            Verified { ok: false, observed: format!("{} is still open: {}", d.group_id, open.join(", ")) }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(protocol: &str, from: i32, to: i32, cidr: &str) -> SecurityGroupRule {
        let b = SecurityGroupRule::builder().is_egress(false).ip_protocol(protocol).from_port(from).to_port(to);
        if cidr.contains(':') { b.cidr_ipv6(cidr).build() } else { b.cidr_ipv4(cidr).build() }
    }

    #[test]
    fn only_public_rules_covering_a_targeted_port_are_selected() {
        let ssh = Selection { ports: vec![(22, 22)], ipv4: true, ipv6: true };
        assert!(ssh.matches(&rule("tcp", 22, 22, "0.0.0.0/0")));
        assert!(ssh.matches(&rule("tcp", 22, 22, "::/0")));
        assert!(ssh.matches(&rule("tcp", 0, 65535, "0.0.0.0/0")), "a range covering 22");
        assert!(ssh.matches(&rule("-1", -1, -1, "0.0.0.0/0")), "all traffic");
        assert!(!ssh.matches(&rule("tcp", 3389, 3389, "0.0.0.0/0")));
        assert!(!ssh.matches(&rule("tcp", 22, 22, "10.0.0.0/8")));
        assert!(!ssh.matches(&rule("icmp", -1, -1, "0.0.0.0/0")));
        let egress = SecurityGroupRule::builder().is_egress(true).ip_protocol("-1").cidr_ipv4("0.0.0.0/0").build();
        assert!(!ssh.matches(&egress));

        let v4_only = Selection { ports: vec![(22, 22), (3389, 3389)], ipv4: true, ipv6: false };
        assert!(!v4_only.matches(&rule("tcp", 22, 22, "::/0")), "EC2.53 is about IPv4 only");
    }

    #[test]
    fn ports_come_from_the_parameter_or_the_control() {
        let mut t = Target {
            account_id: "333333333333".into(),
            region: "us-east-1".into(),
            resource_type: "AwsEc2SecurityGroup".into(),
            resource_id: "arn:aws:ec2:us-east-1:333333333333:security-group/sg-1".into(),
            control_id: Some("EC2.13".into()),
            finding_type: None,
            finding_id: "f".into(),
            raw: serde_json::Value::Null,
        };
        let none = Parameters::new();
        assert_eq!(Selection::for_target(&t, &none).unwrap().ports, vec![(22, 22)]);
        let given = Parameters::from([("ports".to_string(), "80, 8000-8080".to_string())]);
        assert_eq!(Selection::for_target(&t, &given).unwrap().ports, vec![(80, 80), (8000, 8080)]);
        t.control_id = Some("EC2.54".into());
        let s = Selection::for_target(&t, &none).unwrap();
        assert!(!s.ipv4 && s.ipv6);
        t.control_id = None;
        assert!(Selection::for_target(&t, &none).unwrap_err().to_string().contains("give the ports parameter"));
    }
}
