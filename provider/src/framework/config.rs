//! The provider block: `region`, `profile`, `endpoint_url`, `assume_role { role_arn, external_id,
//! session_name }` and `orchestrator { endpoint, token }`, with AWS's usual environment
//! fallbacks. Validation reports every problem at once, each on its attribute.

use super::diag::{AttrPath, Diagnostics};
use super::schema::{Attribute, Block, NestedBlock, Nesting, Schema};
use crate::tfvalue::{Type, Value};

/// Role to assume for every AWS call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRole {
    pub role_arn: String,
    pub external_id: Option<String>,
    pub session_name: String,
}

/// Where the orchestrator's API is, for remediation bindings and posture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orchestrator {
    pub endpoint: String,
    pub token: Option<String>,
}

/// The provider configuration after environment fallbacks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderConfig {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    pub assume_role: Option<AssumeRole>,
    pub orchestrator: Option<Orchestrator>,
}

/// The provider block's schema.
pub fn schema() -> Schema {
    Schema {
        version: 0,
        block: Block {
            description: "Manages an AWS Organization's security baseline: Security Hub, GuardDuty, Config, IAM Access Analyzer, hub membership and remediation bindings.",
            attributes: vec![
                Attribute::optional(
                    "region",
                    Type::String,
                    "AWS region for every call, e.g. `eu-west-1`. Defaults to `AWS_REGION`, then `AWS_DEFAULT_REGION`.",
                ),
                Attribute::optional(
                    "profile",
                    Type::String,
                    "Named profile from the shared AWS config and credentials files. Defaults to `AWS_PROFILE`.",
                ),
                Attribute::optional(
                    "endpoint_url",
                    Type::String,
                    "One endpoint URL for every AWS service, e.g. the orgsec emulator or LocalStack. Defaults to `AWS_ENDPOINT_URL`.",
                ),
            ],
            blocks: vec![
                NestedBlock {
                    name: "assume_role",
                    nesting: Nesting::Single,
                    min_items: 0,
                    max_items: 0,
                    block: Block {
                        description: "Assume this role for every AWS call, e.g. a member account's baseline role.",
                        attributes: vec![
                            Attribute::required(
                                "role_arn",
                                Type::String,
                                "ARN of the role to assume, `arn:aws:iam::<account-id>:role/<name>`.",
                            ),
                            Attribute::optional(
                                "external_id",
                                Type::String,
                                "External ID the role's trust policy requires (`sts:ExternalId`).",
                            ),
                            Attribute::optional(
                                "session_name",
                                Type::String,
                                "Session name recorded in CloudTrail. Defaults to `orgsec-terraform`.",
                            ),
                        ],
                        blocks: vec![],
                    },
                },
                NestedBlock {
                    name: "orchestrator",
                    nesting: Nesting::Single,
                    min_items: 0,
                    max_items: 0,
                    block: Block {
                        description: "The orgsec orchestrator's API, used by remediation bindings and the posture data source.",
                        attributes: vec![
                            Attribute::required(
                                "endpoint",
                                Type::String,
                                "URL of the orchestrator's API, e.g. `https://orgsec.internal:7443`.",
                            ),
                            Attribute::optional("token", Type::String, "API token. Defaults to `ORGSEC_TOKEN`.")
                                .sensitive(),
                        ],
                        blocks: vec![],
                    },
                },
            ],
        },
    }
}

/// A known string attribute of an object value: `Ok(None)` when null or absent, `Err(())` when
/// unknown (validation of unknowns waits for apply).
fn string_attr(v: Option<&Value>, name: &str) -> Result<Option<String>, ()> {
    match v.and_then(|o| o.get_attr(name)) {
        None => Ok(None),
        Some(x) if x.is_unknown() => Err(()),
        Some(x) if x.is_null() => Ok(None),
        Some(x) => Ok(x.as_str().map(str::to_string)),
    }
}

fn valid_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts.last().is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        && parts[1..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
}

fn valid_url(u: &str) -> bool {
    let rest = u.strip_prefix("http://").or_else(|| u.strip_prefix("https://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !host.contains(' ')
    })
}

fn valid_role_arn(a: &str) -> bool {
    let Some(rest) = a.strip_prefix("arn:") else { return false };
    let mut parts = rest.splitn(5, ':');
    let partition = parts.next().unwrap_or_default();
    let service = parts.next().unwrap_or_default();
    let region = parts.next().unwrap_or_default();
    let account = parts.next().unwrap_or_default();
    let resource = parts.next().unwrap_or_default();
    partition.starts_with("aws")
        && service == "iam"
        && region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && resource.strip_prefix("role/").is_some_and(|n| !n.is_empty())
}

fn valid_sts_token(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c))
}

/// Reads the configuration, falling back to the environment (`env`), and validates it.
pub fn from_value(v: &Value, env: &dyn Fn(&str) -> Option<String>) -> (ProviderConfig, Diagnostics) {
    let mut d = Diagnostics::default();
    let mut c = ProviderConfig::default();
    let top = Some(v);
    let env_nonempty = |k: &str| env(k).filter(|s| !s.is_empty());

    let region = string_attr(top, "region");
    if let Ok(r) = &region {
        c.region = r.clone().or_else(|| env_nonempty("AWS_REGION")).or_else(|| env_nonempty("AWS_DEFAULT_REGION"));
        if let Some(r) = &c.region
            && !valid_region(r)
        {
            d.error_at(
                AttrPath::root("region"),
                "Invalid AWS region",
                format!("\"{r}\" is not an AWS region name; expected something like \"eu-west-1\"."),
            );
        }
    }
    if let Ok(p) = string_attr(top, "profile") {
        c.profile = p.or_else(|| env_nonempty("AWS_PROFILE"));
    }
    if let Ok(e) = string_attr(top, "endpoint_url") {
        c.endpoint_url = e.or_else(|| env_nonempty("AWS_ENDPOINT_URL"));
        if let Some(u) = &c.endpoint_url
            && !valid_url(u)
        {
            d.error_at(
                AttrPath::root("endpoint_url"),
                "Invalid endpoint URL",
                format!("\"{u}\" is not an http:// or https:// URL; expected e.g. \"http://127.0.0.1:4566\"."),
            );
        }
    }

    let ar = v.get_attr("assume_role").filter(|x| !x.is_null() && !x.is_unknown());
    if ar.is_some() {
        let path = AttrPath::root("assume_role");
        let role_arn = string_attr(ar, "role_arn");
        let external_id = string_attr(ar, "external_id");
        let session = string_attr(ar, "session_name");
        if let Ok(Some(a)) = &role_arn
            && !valid_role_arn(a)
        {
            d.error_at(
                path.attr("role_arn"),
                "Invalid role ARN",
                format!("\"{a}\" is not an IAM role ARN; expected \"arn:aws:iam::123456789012:role/NAME\"."),
            );
        }
        if let Ok(Some(x)) = &external_id
            && !valid_sts_token(x, 2, 1224)
        {
            d.error_at(
                path.attr("external_id"),
                "Invalid external ID",
                "An external ID is 2 to 1224 characters of letters, digits and +=,.@:/-_.",
            );
        }
        if let Ok(Some(s)) = &session
            && !valid_sts_token(s, 2, 64)
        {
            d.error_at(
                path.attr("session_name"),
                "Invalid session name",
                "A session name is 2 to 64 characters of letters, digits and +=,.@-_.",
            );
        }
        if let (Ok(Some(role_arn)), Ok(external_id), Ok(session)) = (role_arn, external_id, session) {
            c.assume_role = Some(AssumeRole {
                role_arn,
                external_id,
                session_name: session.unwrap_or_else(|| "orgsec-terraform".to_string()),
            });
        }
    }

    let orch = v.get_attr("orchestrator").filter(|x| !x.is_null() && !x.is_unknown());
    if orch.is_some() {
        let path = AttrPath::root("orchestrator");
        let endpoint = string_attr(orch, "endpoint");
        let token = string_attr(orch, "token").map(|t| t.or_else(|| env_nonempty("ORGSEC_TOKEN")));
        if let Ok(Some(e)) = &endpoint
            && !valid_url(e)
        {
            d.error_at(
                path.attr("endpoint"),
                "Invalid orchestrator endpoint",
                format!("\"{e}\" is not an http:// or https:// URL."),
            );
        }
        if let (Ok(Some(endpoint)), Ok(token)) = (endpoint, token) {
            c.orchestrator = Some(Orchestrator { endpoint, token });
        }
    }
    (c, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn s(x: &str) -> Value {
        Value::String(x.to_string())
    }

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<BTreeMap<_, _>>())
    }

    fn config(pairs: &[(&str, Value)]) -> Value {
        let mut all = vec![
            ("region", Value::Null),
            ("profile", Value::Null),
            ("endpoint_url", Value::Null),
            ("assume_role", Value::Null),
            ("orchestrator", Value::Null),
        ];
        for (k, v) in pairs {
            all.retain(|(n, _)| n != k);
            all.push((k, v.clone()));
        }
        obj(&all)
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn each_invalid_attribute_gets_its_own_diagnostic_naming_it() {
        let v = config(&[
            ("region", s("Europe")),
            ("endpoint_url", s("localhost:4566")),
            (
                "assume_role",
                obj(&[
                    ("role_arn", s("arn:aws:iam::12:role/x")),
                    ("external_id", s("a")),
                    ("session_name", s("ok-session")),
                ]),
            ),
            ("orchestrator", obj(&[("endpoint", s("grpc://x")), ("token", Value::Null)])),
        ]);
        let (_, d) = from_value(&v, &no_env);
        let paths: Vec<String> = d.0.iter().filter_map(|x| x.path.as_ref().map(ToString::to_string)).collect();
        assert_eq!(
            paths,
            vec!["region", "endpoint_url", "assume_role.role_arn", "assume_role.external_id", "orchestrator.endpoint"]
        );
    }

    #[test]
    fn valid_configuration_with_environment_fallbacks() {
        let v = config(&[(
            "assume_role",
            obj(&[
                ("role_arn", s("arn:aws:iam::666666666666:role/OrganizationAccountAccessRole")),
                ("external_id", Value::Null),
                ("session_name", Value::Null),
            ]),
        )]);
        let env = |k: &str| match k {
            "AWS_DEFAULT_REGION" => Some("eu-west-1".to_string()),
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:4566".to_string()),
            _ => None,
        };
        let (c, d) = from_value(&v, &env);
        assert!(!d.has_errors(), "{d:?}");
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.endpoint_url.as_deref(), Some("http://127.0.0.1:4566"));
        assert_eq!(c.assume_role.unwrap().session_name, "orgsec-terraform");
    }

    #[test]
    fn unknown_values_are_not_validated_yet() {
        let v = config(&[("region", Value::Unknown), ("endpoint_url", Value::Unknown)]);
        let (_, d) = from_value(&v, &no_env);
        assert!(d.0.is_empty());
    }

    #[test]
    fn region_and_arn_shapes() {
        assert!(valid_region("us-east-1") && valid_region("us-gov-west-1") && valid_region("ap-southeast-2"));
        assert!(!valid_region("useast1") && !valid_region("US-EAST-1") && !valid_region("us-east-"));
        assert!(valid_role_arn("arn:aws:iam::123456789012:role/path/Name"));
        assert!(!valid_role_arn("arn:aws:iam::123456789012:user/Name") && !valid_role_arn("role/Name"));
    }
}
