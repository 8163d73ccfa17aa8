//! Just enough IAM policy evaluation to test least privilege: identity policies (Allow/Deny on
//! actions with wildcards; resources are not narrowed) and role trust policies (principals and
//! the `sts:ExternalId` condition that guards against the confused deputy).

use serde_json::Value;

/// Outcome of evaluating identity policies for one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

/// AWS-managed policies the emulator knows by ARN.
pub fn managed_policy(arn: &str) -> Option<Value> {
    let actions: Value = match arn.rsplit('/').next()? {
        "AdministratorAccess" => "*".into(),
        "ReadOnlyAccess" | "SecurityAudit" | "ViewOnlyAccess" => {
            serde_json::json!(["*:Get*", "*:List*", "*:Describe*", "*:BatchGet*"])
        }
        "AWSSecurityHubFullAccess" => serde_json::json!(["securityhub:*"]),
        "AmazonGuardDutyFullAccess" => serde_json::json!(["guardduty:*"]),
        "AWSConfigRole" | "service-role/AWS_ConfigRole" => {
            serde_json::json!(["config:*", "*:Describe*", "*:Get*", "*:List*"])
        }
        _ => return None,
    };
    Some(
        serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}),
    )
}

fn statements(doc: &Value) -> Vec<&serde_json::Map<String, Value>> {
    match doc.get("Statement") {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_object).collect(),
        Some(Value::Object(o)) => vec![o],
        _ => Vec::new(),
    }
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Case-insensitive glob with `*` and `?`, as IAM matches actions.
pub fn glob(pattern: &str, text: &str) -> bool {
    crate::wire::wildcard(&pattern.to_ascii_lowercase(), &text.to_ascii_lowercase())
}

/// Evaluates identity policies for `action` (`ec2:RevokeSecurityGroupIngress`).
pub fn evaluate<'a>(policies: impl IntoIterator<Item = &'a Value>, action: &str) -> Decision {
    let mut allowed = false;
    for doc in policies {
        for st in statements(doc) {
            let matches = if st.contains_key("NotAction") {
                !strings(st.get("NotAction")).iter().any(|p| glob(p, action))
            } else {
                strings(st.get("Action")).iter().any(|p| glob(p, action))
            };
            if !matches {
                continue;
            }
            match st.get("Effect").and_then(Value::as_str) {
                Some("Deny") => return Decision::ExplicitDeny,
                Some("Allow") => allowed = true,
                _ => {}
            }
        }
    }
    if allowed { Decision::Allow } else { Decision::ImplicitDeny }
}

/// Who is asking to assume a role.
#[derive(Debug, Clone)]
pub struct AssumingPrincipal<'a> {
    pub account: &'a str,
    /// `arn:aws:iam::<acct>:root` or `arn:aws:iam::<acct>:role/<name>`.
    pub arn: &'a str,
    pub org_id: Option<&'a str>,
}

/// Checks a trust policy for `sts:AssumeRole` by `who` with `external_id`. The error says why
/// the trust policy does not allow it (logged; the caller only sees AccessDenied).
pub fn trust_allows(trust: &Value, who: &AssumingPrincipal<'_>, external_id: Option<&str>) -> Result<(), String> {
    let mut allowed = false;
    let mut reason = format!("no statement of the trust policy allows {} to assume this role", who.arn);
    for st in statements(trust) {
        let actions = strings(st.get("Action"));
        if !actions.iter().any(|a| glob(a, "sts:AssumeRole")) {
            continue;
        }
        if !principal_matches(st.get("Principal"), who) {
            continue;
        }
        match conditions_hold(st.get("Condition"), who, external_id) {
            Ok(()) => {}
            Err(why) => {
                reason = why;
                continue;
            }
        }
        match st.get("Effect").and_then(Value::as_str) {
            Some("Deny") => return Err("an explicit Deny in the trust policy matches".into()),
            Some("Allow") => allowed = true,
            _ => {}
        }
    }
    if allowed { Ok(()) } else { Err(reason) }
}

fn principal_matches(principal: Option<&Value>, who: &AssumingPrincipal<'_>) -> bool {
    let aws: Vec<&str> = match principal {
        Some(Value::String(s)) if s == "*" => return true,
        Some(Value::Object(o)) => strings(o.get("AWS")),
        _ => return false,
    };
    aws.iter()
        .any(|p| *p == "*" || *p == who.account || *p == format!("arn:aws:iam::{}:root", who.account) || *p == who.arn)
}

fn conditions_hold(
    condition: Option<&Value>,
    who: &AssumingPrincipal<'_>,
    external_id: Option<&str>,
) -> Result<(), String> {
    let Some(Value::Object(ops)) = condition else { return Ok(()) };
    for (op, keys) in ops {
        let Value::Object(keys) = keys else { return Err(format!("malformed condition {op}")) };
        for (key, expected) in keys {
            let actual: Option<&str> = match key.to_ascii_lowercase().as_str() {
                "sts:externalid" => external_id,
                "aws:principalaccount" => Some(who.account),
                "aws:principalorgid" => who.org_id,
                "aws:principalarn" => Some(who.arn),
                other => return Err(format!("condition key {other} is not supported by the emulator")),
            };
            let expected = strings(Some(expected));
            let holds = match op.as_str() {
                "StringEquals" => actual.is_some_and(|a| expected.contains(&a)),
                "StringLike" => actual.is_some_and(|a| expected.iter().any(|e| glob(e, a))),
                "StringNotEquals" => actual.is_none_or(|a| !expected.contains(&a)),
                other => return Err(format!("condition operator {other} is not supported by the emulator")),
            };
            if !holds {
                return Err(match key.to_ascii_lowercase().as_str() {
                    "sts:externalid" if external_id.is_none() => {
                        "the trust policy requires an ExternalId and none was given".into()
                    }
                    "sts:externalid" => "the ExternalId does not match the trust policy".into(),
                    _ => format!("condition {op} on {key} does not hold"),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn glob_matches_like_iam() {
        assert!(glob("ec2:Describe*", "ec2:DescribeSecurityGroups"));
        assert!(glob("*", "anything"));
        assert!(glob("EC2:revoke*", "ec2:RevokeSecurityGroupIngress"));
        assert!(!glob("ec2:Describe*", "ec2:RevokeSecurityGroupIngress"));
        assert!(glob("s3:Get?ucket*", "s3:GetBucketPolicy"));
    }

    #[test]
    fn deny_wins_over_allow() {
        let p = json!({"Statement": [
            {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "ec2:TerminateInstances", "Resource": "*"}]});
        assert_eq!(evaluate([&p], "ec2:DescribeInstances"), Decision::Allow);
        assert_eq!(evaluate([&p], "ec2:TerminateInstances"), Decision::ExplicitDeny);
        assert_eq!(evaluate([&p], "iam:ListUsers"), Decision::ImplicitDeny);
    }

    #[test]
    fn trust_policy_checks_principal_and_external_id() {
        let trust = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
            "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": "orgsec-demo"}}}]});
        let admin = AssumingPrincipal { account: "222222222222", arn: "arn:aws:iam::222222222222:root", org_id: None };
        let other = AssumingPrincipal { account: "333333333333", arn: "arn:aws:iam::333333333333:root", org_id: None };
        assert!(trust_allows(&trust, &admin, Some("orgsec-demo")).is_ok());
        assert!(trust_allows(&trust, &admin, None).unwrap_err().contains("requires an ExternalId"));
        assert!(trust_allows(&trust, &admin, Some("wrong")).unwrap_err().contains("does not match"));
        assert!(trust_allows(&trust, &other, Some("orgsec-demo")).is_err());
    }
}
