//! The Security Hub control catalogue the orchestrator reasons with: each control's severity,
//! resource type and the AWS Config managed rule behind it. It is the table the emulator embeds
//! (`emulator/data/securityhub-controls.csv`), read through the emulator's parser: one file, one
//! parser, the facts the emulator evaluates and orgsec scores always the same.
//!
//! Scoring falls back on a control's catalogue severity when a finding carries none, and the
//! collector maps a Config rule to the control it checks, so that Security Hub's control finding
//! and the Config evaluation of the same resource are recognised as one check.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::finding::Severity;

/// One Security Hub control.
#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    /// ASFF resource type the control evaluates (`AwsAccount` for account-level checks).
    pub resource_type: String,
    /// The AWS Config managed rule's name (`restricted-ssh`).
    pub config_rule: String,
    /// Requirement ids per framework, keyed by the framework's short name (`cis-1.2`, `pci-3.2.1`,
    /// `nist-800-53-r5`); `fsbp` holds `["yes"]` when the control is in FSBP.
    pub frameworks: Vec<(&'static str, Vec<String>)>,
}

/// The catalogue, with lookups.
#[derive(Debug)]
pub struct Catalogue {
    controls: Vec<Control>,
    by_id: HashMap<String, usize>,
    /// Config managed rule name -> the first control (in catalogue order) it backs.
    by_rule: HashMap<String, usize>,
}

impl Catalogue {
    pub fn controls(&self) -> &[Control] {
        &self.controls
    }

    pub fn get(&self, id: &str) -> Option<&Control> {
        self.by_id.get(id).map(|&i| &self.controls[i])
    }

    /// The control a Config rule checks, from the rule's managed source identifier (e.g.
    /// `INCOMING_SSH_DISABLED`), its input parameters (JSON, for `RESTRICTED_INCOMING_TRAFFIC`,
    /// whose blocked ports decide between EC2.13, EC2.14 and EC2.19) and its name (Security
    /// Hub's service-linked rules are named `securityhub-<managed rule>-<suffix>`).
    ///
    /// A rule that backs several controls (`iam-password-policy` backs IAM.7 and IAM.11-17)
    /// maps to the first of them: Config reports one verdict per resource, so one check.
    pub fn control_for_rule(
        &self,
        name: &str,
        identifier: Option<&str>,
        input_parameters: Option<&str>,
    ) -> Option<&Control> {
        if let Some(ident) = identifier {
            match ident {
                "INCOMING_SSH_DISABLED" => return self.get("EC2.13"),
                "RESTRICTED_INCOMING_TRAFFIC" => return self.get(restricted_ports_control(input_parameters)),
                _ => {}
            }
            let managed = ident.to_ascii_lowercase().replace('_', "-");
            if let Some(&i) = self.by_rule.get(&managed) {
                return Some(&self.controls[i]);
            }
        }
        let rest = name.strip_prefix("securityhub-")?;
        // The longest managed rule name that prefixes the rest (names end with `-<suffix>`).
        self.by_rule
            .iter()
            .filter(|(rule, _)| rest == rule.as_str() || rest.starts_with(&format!("{rule}-")))
            .max_by_key(|(rule, _)| rule.len())
            .map(|(_, &i)| &self.controls[i])
    }
}

/// EC2.13 for a rule blocking only 22, EC2.14 for only 3389, EC2.19 otherwise.
fn restricted_ports_control(input_parameters: Option<&str>) -> &'static str {
    let mut ports: Vec<i64> = input_parameters
        .and_then(|p| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(p).ok())
        .map(|m| {
            m.iter()
                .filter(|(k, _)| k.starts_with("blockedPort"))
                .filter_map(|(_, v)| match v {
                    serde_json::Value::String(s) => s.trim().parse().ok(),
                    serde_json::Value::Number(n) => n.as_i64(),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    ports.sort_unstable();
    ports.dedup();
    match ports.as_slice() {
        [22] => "EC2.13",
        [3389] => "EC2.14",
        _ => "EC2.19",
    }
}

/// The catalogue, built once from the table the emulator parses (one CSV, one parser).
pub fn catalogue() -> &'static Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        let controls: Vec<Control> =
            orgsec_emulator::world::catalogue::catalogue().controls.iter().map(from_table).collect();
        let by_id = controls.iter().enumerate().map(|(i, c)| (c.id.clone(), i)).collect();
        let mut by_rule = HashMap::new();
        for (i, c) in controls.iter().enumerate() {
            if !c.config_rule.is_empty() {
                by_rule.entry(c.config_rule.clone()).or_insert(i);
            }
        }
        Catalogue { controls, by_id, by_rule }
    })
}

fn from_table(c: &orgsec_emulator::world::catalogue::Control) -> Control {
    let fsbp: Vec<String> = if c.fsbp { vec!["yes".to_string()] } else { Vec::new() };
    let frameworks = [
        ("fsbp", &fsbp),
        ("cis-1.2", &c.cis_1_2),
        ("cis-1.4", &c.cis_1_4),
        ("cis-3.0", &c.cis_3_0),
        ("pci-3.2.1", &c.pci_3_2_1),
        ("nist-800-53-r5", &c.nist_800_53_r5),
    ]
    .into_iter()
    .filter(|(_, reqs)| !reqs.is_empty())
    .map(|(name, reqs)| (name, reqs.clone()))
    .collect();
    Control {
        id: c.id.clone(),
        title: c.title.clone(),
        severity: Severity::parse(&c.severity).unwrap_or(Severity::Medium),
        resource_type: c.resource_type.clone(),
        config_rule: c.config_rule.clone(),
        frameworks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_has_every_control() {
        let c = catalogue();
        assert_eq!(c.controls().len(), 90);
        let ssh = c.get("EC2.13").expect("EC2.13");
        assert_eq!(ssh.severity, Severity::High);
        assert_eq!(ssh.resource_type, "AwsEc2SecurityGroup");
        assert_eq!(c.get("EC2.19").map(|c| c.severity), Some(Severity::Critical));
        assert!(ssh.frameworks.iter().any(|(f, reqs)| *f == "cis-1.2" && reqs == &["4.1".to_string()]));
    }

    #[test]
    fn config_rules_map_to_controls() {
        let c = catalogue();
        let id = |name: &str, ident: Option<&str>, params: Option<&str>| {
            c.control_for_rule(name, ident, params).map(|c| c.id.clone())
        };
        assert_eq!(id("ssh", Some("INCOMING_SSH_DISABLED"), None).as_deref(), Some("EC2.13"));
        assert_eq!(
            id("r", Some("RESTRICTED_INCOMING_TRAFFIC"), Some(r#"{"blockedPort1":"3389"}"#)).as_deref(),
            Some("EC2.14")
        );
        assert_eq!(
            id("r", Some("RESTRICTED_INCOMING_TRAFFIC"), Some(r#"{"blockedPort1":"22","blockedPort2":"3306"}"#))
                .as_deref(),
            Some("EC2.19")
        );
        assert_eq!(id("ebs", Some("EC2_EBS_ENCRYPTION_BY_DEFAULT"), None).as_deref(), Some("EC2.7"));
        assert_eq!(id("pw", Some("IAM_PASSWORD_POLICY"), None).as_deref(), Some("IAM.7"));
        assert_eq!(id("securityhub-restricted-ssh-a1b2c3", None, None).as_deref(), Some("EC2.13"));
        assert_eq!(id("my-custom-rule", Some("CUSTOM_THING"), None), None);
    }
}
