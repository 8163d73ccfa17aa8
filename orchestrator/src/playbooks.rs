//! The playbook catalogue, as data: what each playbook fixes (Security Hub controls, finding
//! types), the parameters a binding may give it, and the IAM actions the member role needs for
//! it.
//!
//! These are descriptors only. Planning, executing and verifying a remediation arrive with the
//! remediation issue; until then nothing here touches an account.

/// What kind of value a parameter takes; bindings are checked against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// Any text.
    Text,
    /// `true` or `false`.
    Bool,
    /// A whole number within the bounds.
    Integer { min: i64, max: i64 },
    /// One of the listed words.
    OneOf(&'static [&'static str]),
    /// Comma-separated TCP/UDP ports or ranges: `22,3389,8000-8080`.
    Ports,
}

/// One parameter a playbook takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parameter {
    pub name: &'static str,
    pub description: &'static str,
    pub required: bool,
    /// Used when a binding leaves the parameter out; empty when there is none.
    pub default: &'static str,
    pub kind: ParamKind,
}

/// A playbook's descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Playbook {
    /// Such as `revoke-public-ingress`.
    pub name: &'static str,
    pub description: &'static str,
    /// Security Hub control ids it fixes.
    pub controls: &'static [&'static str],
    /// Finding types it handles: a GuardDuty type or an ASFF type, exact, or a prefix when it
    /// ends with `/` (`CryptoCurrency:EC2/` handles every `CryptoCurrency:EC2/...` type).
    pub finding_types: &'static [&'static str],
    /// The ASFF resource types it can act on; empty: whatever its controls and types name.
    /// A finding of a matching type on another kind of resource (Access Analyzer reports
    /// external access to roles and keys as well as buckets) is not dispatched to it.
    pub resource_types: &'static [&'static str],
    pub parameters: &'static [Parameter],
    /// IAM actions the member role needs, such as `ec2:RevokeSecurityGroupIngress`.
    pub permissions: &'static [&'static str],
}

impl Playbook {
    /// Whether it can act on a resource of ASFF type `ty`.
    pub fn acts_on(&self, ty: &str) -> bool {
        self.resource_types.is_empty() || self.resource_types.contains(&ty)
    }

    /// Whether it fixes the control `id`.
    pub fn fixes_control(&self, id: &str) -> bool {
        self.controls.contains(&id)
    }

    /// Whether it handles findings of type `ty`, which must be one of its types or lie under one
    /// of its prefixes. A binding naming a broader prefix than the playbook handles is refused.
    pub fn handles_type(&self, ty: &str) -> bool {
        self.finding_types.iter().any(|t| *t == ty || (t.ends_with('/') && ty.starts_with(t)))
    }

    pub fn parameter(&self, name: &str) -> Option<&'static Parameter> {
        self.parameters.iter().find(|p| p.name == name)
    }
}

impl ParamKind {
    /// Why `value` is not of this kind, or `None` when it is.
    pub fn check(&self, value: &str) -> Option<String> {
        match self {
            ParamKind::Text => None,
            ParamKind::Bool => {
                (!matches!(value, "true" | "false")).then(|| format!("\"{value}\" is not true or false"))
            }
            ParamKind::Integer { min, max } => match value.parse::<i64>() {
                Ok(n) if (*min..=*max).contains(&n) => None,
                _ => Some(format!("\"{value}\" is not a whole number from {min} to {max}")),
            },
            ParamKind::OneOf(words) => {
                (!words.contains(&value)).then(|| format!("\"{value}\" is not one of {}", words.join(", ")))
            }
            ParamKind::Ports => {
                let port = |s: &str| s.trim().parse::<u16>().ok().filter(|p| *p > 0);
                let ok = !value.trim().is_empty()
                    && value.split(',').all(|part| match part.split_once('-') {
                        Some((lo, hi)) => port(lo).zip(port(hi)).is_some_and(|(lo, hi)| lo <= hi),
                        None => port(part).is_some(),
                    });
                (!ok).then(|| format!("\"{value}\" is not a list of ports such as \"22,3389,8000-8080\""))
            }
        }
    }
}

const fn param(name: &'static str, description: &'static str, default: &'static str, kind: ParamKind) -> Parameter {
    Parameter { name, description, required: false, default, kind }
}

/// Every playbook, in name order.
pub static CATALOGUE: &[Playbook] = &[
    Playbook {
        name: "block-public-bucket",
        description: "Turns on all four S3 Block Public Access settings of the bucket a finding names, so that neither its ACLs nor its bucket policy can make it public.",
        controls: &["S3.8"],
        finding_types: &["Software and Configuration Checks/AWS Security Best Practices/External Access Granted"],
        resource_types: &["AwsS3Bucket"],
        parameters: &[],
        permissions: &["s3:GetBucketPolicyStatus", "s3:GetBucketPublicAccessBlock", "s3:PutBucketPublicAccessBlock"],
    },
    Playbook {
        name: "deactivate-access-key",
        description: "Deactivates the IAM user access key a GuardDuty credential finding names (a leaked or misused key), keeping the key so that it can be examined; the user's other keys are untouched.",
        controls: &[],
        finding_types: &[
            "CredentialAccess:IAMUser/AnomalousBehavior",
            "Exfiltration:IAMUser/AnomalousBehavior",
            "Impact:IAMUser/AnomalousBehavior",
            "Persistence:IAMUser/AnomalousBehavior",
            "UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B",
            "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS",
            "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
            "UnauthorizedAccess:IAMUser/MaliciousIPCaller",
            "UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom",
            "UnauthorizedAccess:IAMUser/TorIPCaller",
        ],
        resource_types: &[],
        parameters: &[],
        permissions: &["iam:GetAccessKeyLastUsed", "iam:ListAccessKeys", "iam:UpdateAccessKey"],
    },
    Playbook {
        name: "enable-ebs-default-encryption",
        description: "Turns on EBS encryption by default in the finding's account and region, optionally with a customer managed KMS key. Existing volumes are unchanged.",
        controls: &["EC2.7"],
        finding_types: &[],
        resource_types: &[],
        parameters: &[param(
            "kms_key_id",
            "KMS key (id, ARN or alias ARN) for new volumes; empty keeps the AWS managed key aws/ebs.",
            "",
            ParamKind::Text,
        )],
        permissions: &[
            "ec2:EnableEbsEncryptionByDefault",
            "ec2:GetEbsDefaultKmsKeyId",
            "ec2:GetEbsEncryptionByDefault",
            "ec2:ModifyEbsDefaultKmsKeyId",
        ],
    },
    Playbook {
        name: "enable-guardduty",
        description: "Creates (or re-enables) the GuardDuty detector in the finding's account and region.",
        controls: &["GuardDuty.1"],
        finding_types: &[],
        resource_types: &[],
        parameters: &[param(
            "finding_publishing_frequency",
            "How often updated findings are exported: FIFTEEN_MINUTES, ONE_HOUR or SIX_HOURS.",
            "SIX_HOURS",
            ParamKind::OneOf(&["FIFTEEN_MINUTES", "ONE_HOUR", "SIX_HOURS"]),
        )],
        permissions: &[
            "guardduty:CreateDetector",
            "guardduty:GetDetector",
            "guardduty:ListDetectors",
            "guardduty:UpdateDetector",
        ],
    },
    Playbook {
        name: "enable-s3-account-bpa",
        description: "Turns on all four settings of S3 Block Public Access for the finding's whole account.",
        controls: &["S3.1"],
        finding_types: &[],
        resource_types: &[],
        parameters: &[],
        permissions: &["s3:GetAccountPublicAccessBlock", "s3:PutAccountPublicAccessBlock"],
    },
    Playbook {
        name: "isolate-instance",
        description: "Incident response for a compromised EC2 instance: saves its metadata, snapshots every attached volume, enables termination protection, detaches its instance profile, moves it to a quarantine security group with no rules, and tags it.",
        controls: &[],
        finding_types: &[
            "Backdoor:EC2/",
            "Behavior:EC2/",
            "CryptoCurrency:EC2/",
            "Impact:EC2/",
            "Trojan:EC2/",
            "UnauthorizedAccess:EC2/",
        ],
        resource_types: &[],
        parameters: &[
            param(
                "detach_instance_profile",
                "Detach the instance profile, so the instance's role credentials stop being renewed.",
                "true",
                ParamKind::Bool,
            ),
            param(
                "quarantine_group_name",
                "Name of the security group with no rules that the instance is moved to; created in the instance's VPC when missing.",
                "orgsec-quarantine",
                ParamKind::Text,
            ),
            param(
                "snapshot_volumes",
                "Snapshot every attached EBS volume first, for forensics.",
                "true",
                ParamKind::Bool,
            ),
        ],
        permissions: &[
            "ec2:CreateSecurityGroup",
            "ec2:CreateSnapshot",
            "ec2:CreateTags",
            "ec2:DescribeIamInstanceProfileAssociations",
            "ec2:DescribeInstanceAttribute",
            "ec2:DescribeInstances",
            "ec2:DescribeSecurityGroupRules",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSnapshots",
            "ec2:DescribeVolumes",
            "ec2:DisassociateIamInstanceProfile",
            "ec2:ModifyInstanceAttribute",
            "ec2:RevokeSecurityGroupEgress",
        ],
    },
    Playbook {
        name: "revoke-public-ingress",
        description: "Removes only the security group ingress permissions open to 0.0.0.0/0 or ::/0 on the ports the finding's control is about (or those given), keeping every other rule.",
        controls: &["EC2.13", "EC2.14", "EC2.19", "EC2.53", "EC2.54"],
        finding_types: &[],
        resource_types: &[],
        parameters: &[param(
            "ports",
            "Ports (comma-separated, ranges allowed) whose public permissions are revoked; empty means the ports the finding's control names.",
            "",
            ParamKind::Ports,
        )],
        permissions: &[
            "ec2:DescribeSecurityGroupRules",
            "ec2:DescribeSecurityGroups",
            "ec2:RevokeSecurityGroupIngress",
        ],
    },
    Playbook {
        name: "set-password-policy",
        description: "Sets the account's IAM password policy to the parameters (each defaulting to what the CIS and AWS Foundational controls ask), replacing the whole policy.",
        controls: &["IAM.7", "IAM.11", "IAM.12", "IAM.13", "IAM.14", "IAM.15", "IAM.16", "IAM.17"],
        finding_types: &[],
        resource_types: &[],
        parameters: &[
            param("allow_users_to_change_password", "Users may change their own password.", "true", ParamKind::Bool),
            param("hard_expiry", "Users cannot set a new password once theirs expired.", "false", ParamKind::Bool),
            param(
                "max_password_age",
                "Days before a password expires (IAM.17: 90 or fewer).",
                "90",
                ParamKind::Integer { min: 1, max: 1095 },
            ),
            param(
                "minimum_password_length",
                "Minimum length (IAM.15: 14 or more).",
                "14",
                ParamKind::Integer { min: 6, max: 128 },
            ),
            param(
                "password_reuse_prevention",
                "How many previous passwords cannot be reused (IAM.16: 24).",
                "24",
                ParamKind::Integer { min: 1, max: 24 },
            ),
            param("require_lowercase_characters", "At least one lowercase letter (IAM.12).", "true", ParamKind::Bool),
            param("require_numbers", "At least one number (IAM.14).", "true", ParamKind::Bool),
            param("require_symbols", "At least one symbol (IAM.13).", "true", ParamKind::Bool),
            param("require_uppercase_characters", "At least one uppercase letter (IAM.11).", "true", ParamKind::Bool),
        ],
        permissions: &["iam:GetAccountPasswordPolicy", "iam:UpdateAccountPasswordPolicy"],
    },
];

/// The playbook named `name`.
pub fn find(name: &str) -> Option<&'static Playbook> {
    CATALOGUE.iter().find(|p| p.name == name)
}

/// The names of every playbook, for messages.
pub fn names() -> Vec<&'static str> {
    CATALOGUE.iter().map(|p| p.name).collect()
}

/// The identity policy the member role needs to run `playbooks`: one statement per playbook,
/// each allowing exactly its actions.
pub fn member_role_policy(playbooks: &[&Playbook]) -> serde_json::Value {
    let mut statements = vec![
        serde_json::json!({
            "Sid": "OrgsecCollect",
            "Effect": "Allow",
            "Action": COLLECT_PERMISSIONS,
            "Resource": "*",
        }),
        serde_json::json!({
            "Sid": "OrgsecAcceptInvitation",
            "Effect": "Allow",
            "Action": ACCEPT_PERMISSIONS,
            "Resource": "*",
        }),
    ];
    let per_playbook: Vec<serde_json::Value> = playbooks
        .iter()
        .map(|p| {
            let sid: String = p
                .name
                .split('-')
                .map(|w| {
                    let mut c = w.chars();
                    c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
                })
                .collect();
            serde_json::json!({
                "Sid": format!("Orgsec{sid}"),
                "Effect": "Allow",
                "Action": p.permissions,
                "Resource": "*",
            })
        })
        .collect();
    statements.extend(per_playbook);
    if !playbooks.is_empty() {
        statements.push(serde_json::json!({
            "Sid": "OrgsecMarkFindings",
            "Effect": "Allow",
            "Action": MARK_PERMISSIONS,
            "Resource": "*",
        }));
    }
    serde_json::json!({ "Version": "2012-10-17", "Statement": statements })
}

/// What collection reads through the member role, whatever the playbooks.
pub const COLLECT_PERMISSIONS: &[&str] = &[
    "securityhub:GetFindings",
    "guardduty:ListDetectors",
    "guardduty:ListFindings",
    "guardduty:GetFindings",
    "config:DescribeConfigRules",
    "config:GetComplianceDetailsByConfigRule",
    "access-analyzer:ListAnalyzers",
    "access-analyzer:ListFindings",
];

/// What remediation does through the member role whatever the playbook: mark the account's
/// own Security Hub findings RESOLVED (or NOTIFIED) with a note.
pub const MARK_PERMISSIONS: &[&str] = &["securityhub:BatchUpdateFindings"];

/// What enrollment does through the member role for an account outside the organization:
/// accept the admin's Security Hub and GuardDuty invitations.
pub const ACCEPT_PERMISSIONS: &[&str] =
    &["securityhub:AcceptAdministratorInvitation", "guardduty:AcceptAdministratorInvitation"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_is_sorted_unique_and_complete() {
        let names = names();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        assert_eq!(names.len(), 8);
        for p in CATALOGUE {
            assert!(!p.description.is_empty() && !p.permissions.is_empty(), "{}", p.name);
            assert!(!(p.controls.is_empty() && p.finding_types.is_empty()), "{} fixes nothing", p.name);
            let mut params: Vec<_> = p.parameters.iter().map(|x| x.name).collect();
            params.sort_unstable();
            assert_eq!(params, p.parameters.iter().map(|x| x.name).collect::<Vec<_>>(), "{}", p.name);
            for x in p.parameters {
                assert!(x.default.is_empty() || x.kind.check(x.default).is_none(), "{}.{}", p.name, x.name);
                assert!(!x.required || x.default.is_empty(), "{}.{} required with a default", p.name, x.name);
            }
            for perm in p.permissions {
                assert!(perm.split_once(':').is_some_and(|(s, a)| !s.is_empty() && !a.is_empty()), "{perm}");
            }
        }
    }

    #[test]
    fn controls_and_types_are_matched() {
        let p = find("revoke-public-ingress").unwrap();
        assert!(p.fixes_control("EC2.13") && p.fixes_control("EC2.54") && !p.fixes_control("EC2.7"));
        let iso = find("isolate-instance").unwrap();
        assert!(iso.handles_type("CryptoCurrency:EC2/BitcoinTool.B!DNS"));
        assert!(iso.handles_type("CryptoCurrency:EC2/"));
        assert!(!iso.handles_type("CryptoCurrency:"), "a broader prefix than the playbook's");
        let key = find("deactivate-access-key").unwrap();
        assert!(key.handles_type("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"));
        assert!(!key.handles_type("UnauthorizedAccess:IAMUser/"));
        let bucket = find("block-public-bucket").unwrap();
        assert!(
            bucket.acts_on("AwsS3Bucket") && !bucket.acts_on("AwsIamRole"),
            "external access to a role is not a bucket's"
        );
        assert!(p.acts_on("AwsEc2SecurityGroup"), "no resource types: whatever the controls name");
        assert!(find("nope").is_none());
    }

    #[test]
    fn parameter_kinds_check_values() {
        assert_eq!(ParamKind::Bool.check("true"), None);
        assert!(ParamKind::Bool.check("yes").is_some());
        let n = ParamKind::Integer { min: 6, max: 128 };
        assert_eq!(n.check("14"), None);
        assert!(n.check("5").is_some() && n.check("x").is_some());
        assert_eq!(ParamKind::Ports.check("22,3389,8000-8080"), None);
        for bad in ["", "0", "22,", "9-1", "70000", "ssh"] {
            assert!(ParamKind::Ports.check(bad).is_some(), "{bad}");
        }
        assert!(ParamKind::OneOf(&["A", "B"]).check("C").unwrap().contains("A, B"));
    }

    #[test]
    fn the_member_role_policy_has_a_statement_per_playbook() {
        let p = member_role_policy(&[find("enable-s3-account-bpa").unwrap(), find("set-password-policy").unwrap()]);
        assert_eq!(p["Version"], "2012-10-17");
        assert_eq!(p["Statement"][0]["Sid"], "OrgsecCollect");
        assert!(
            p["Statement"][0]["Action"].as_array().unwrap().contains(&serde_json::json!("securityhub:GetFindings"))
        );
        assert_eq!(p["Statement"][1]["Sid"], "OrgsecAcceptInvitation");
        assert_eq!(p["Statement"][2]["Sid"], "OrgsecEnableS3AccountBpa");
        assert_eq!(p["Statement"][3]["Action"][1], "iam:UpdateAccountPasswordPolicy");
        assert_eq!(p["Statement"][3]["Resource"], "*");
        assert_eq!(p["Statement"][4]["Sid"], "OrgsecMarkFindings");
        assert_eq!(p["Statement"][4]["Action"][0], "securityhub:BatchUpdateFindings");
        let none = member_role_policy(&[]);
        assert_eq!(none["Statement"].as_array().unwrap().len(), 2, "no playbook, nothing to mark");
    }
}
