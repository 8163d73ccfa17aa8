//! The Security Hub control catalogue (embedded from `data/securityhub-controls.csv`) and the
//! standards that group those controls.

use std::sync::OnceLock;

/// One Security Hub control.
#[derive(Debug, Clone)]
pub struct Control {
    pub id: String,
    pub title: String,
    pub severity: String,
    pub resource_type: String,
    pub config_rule: String,
    pub fsbp: bool,
    pub cis_1_2: Vec<String>,
    pub cis_1_4: Vec<String>,
    pub cis_3_0: Vec<String>,
    pub pci_3_2_1: Vec<String>,
    pub nist_800_53_r5: Vec<String>,
    pub remediation: String,
}

/// A Security Hub standard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standard {
    Fsbp,
    Cis12,
    Cis14,
    Cis30,
    Pci321,
    Nist53,
}

impl Standard {
    pub const ALL: [Standard; 6] =
        [Standard::Fsbp, Standard::Cis12, Standard::Cis14, Standard::Cis30, Standard::Pci321, Standard::Nist53];

    /// The part of the ARN after `standards/` (or `ruleset/` for CIS 1.2).
    pub fn path(self) -> &'static str {
        match self {
            Standard::Fsbp => "aws-foundational-security-best-practices/v/1.0.0",
            Standard::Cis12 => "cis-aws-foundations-benchmark/v/1.2.0",
            Standard::Cis14 => "cis-aws-foundations-benchmark/v/1.4.0",
            Standard::Cis30 => "cis-aws-foundations-benchmark/v/3.0.0",
            Standard::Pci321 => "pci-dss/v/3.2.1",
            Standard::Nist53 => "nist-800-53/v/5.0.0",
        }
    }

    /// `StandardsId` as it appears in `Compliance.AssociatedStandards`.
    pub fn standards_id(self) -> String {
        match self {
            Standard::Cis12 => format!("ruleset/{}", self.path()),
            _ => format!("standards/{}", self.path()),
        }
    }

    pub fn arn(self, region: &str) -> String {
        match self {
            Standard::Cis12 => format!("arn:aws:securityhub:::ruleset/{}", self.path()),
            _ => format!("arn:aws:securityhub:{region}::standards/{}", self.path()),
        }
    }

    pub fn subscription_arn(self, region: &str, account: &str) -> String {
        format!("arn:aws:securityhub:{region}:{account}:subscription/{}", self.path())
    }

    pub fn control_arn(self, region: &str, account: &str, control_id: &str) -> String {
        format!("arn:aws:securityhub:{region}:{account}:control/{}/{control_id}", self.path())
    }

    pub fn from_arn(arn: &str) -> Option<Standard> {
        Standard::ALL.into_iter().find(|s| {
            arn.ends_with(&format!("standards/{}", s.path())) || arn.ends_with(&format!("ruleset/{}", s.path()))
        })
    }

    pub fn from_subscription_arn(arn: &str) -> Option<Standard> {
        Standard::ALL.into_iter().find(|s| arn.ends_with(&format!("subscription/{}", s.path())))
    }

    pub fn name(self) -> &'static str {
        match self {
            Standard::Fsbp => "AWS Foundational Security Best Practices v1.0.0",
            Standard::Cis12 => "CIS AWS Foundations Benchmark v1.2.0",
            Standard::Cis14 => "CIS AWS Foundations Benchmark v1.4.0",
            Standard::Cis30 => "CIS AWS Foundations Benchmark v3.0.0",
            Standard::Pci321 => "PCI DSS v3.2.1",
            Standard::Nist53 => "NIST Special Publication 800-53 Revision 5",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Standard::Fsbp => {
                "The AWS Foundational Security Best Practices standard is a set of automated security checks that detect when AWS accounts and deployed resources do not align with security best practices."
            }
            Standard::Cis12 | Standard::Cis14 | Standard::Cis30 => {
                "The Center for Internet Security (CIS) AWS Foundations Benchmark is a set of security configuration best practices for AWS."
            }
            Standard::Pci321 => {
                "The Payment Card Industry Data Security Standard (PCI DSS) is an information security standard for organizations that handle cardholder data."
            }
            Standard::Nist53 => {
                "NIST SP 800-53 Rev. 5 is a cybersecurity and compliance framework developed by the National Institute of Standards and Technology."
            }
        }
    }

    /// Whether Security Hub enables this standard when `EnableDefaultStandards` is true.
    pub fn enabled_by_default(self) -> bool {
        matches!(self, Standard::Fsbp | Standard::Cis12)
    }

    /// The requirement ids of `control` in this standard; empty when the control is not part of it.
    /// FSBP has no requirement ids of its own: membership is a flag.
    pub fn requirements(self, control: &Control) -> Option<Vec<String>> {
        let reqs = match self {
            Standard::Fsbp => return control.fsbp.then(Vec::new),
            Standard::Cis12 => &control.cis_1_2,
            Standard::Cis14 => &control.cis_1_4,
            Standard::Cis30 => &control.cis_3_0,
            Standard::Pci321 => &control.pci_3_2_1,
            Standard::Nist53 => &control.nist_800_53_r5,
        };
        (!reqs.is_empty()).then(|| reqs.clone())
    }

    /// `RelatedRequirements` entries, e.g. `CIS AWS Foundations Benchmark v1.2.0/4.1`.
    pub fn related_requirement(self, requirement: &str) -> String {
        match self {
            Standard::Nist53 => format!("NIST.800-53.r5 {requirement}"),
            _ => format!("{}/{requirement}", self.name()),
        }
    }
}

/// The embedded catalogue.
#[derive(Debug)]
pub struct Catalogue {
    pub controls: Vec<Control>,
    by_id: std::collections::HashMap<String, usize>,
}

impl Catalogue {
    pub fn get(&self, id: &str) -> Option<&Control> {
        self.by_id.get(id).and_then(|i| self.controls.get(*i))
    }

    /// Controls of one standard, in catalogue order.
    pub fn in_standard(&self, standard: Standard) -> impl Iterator<Item = &Control> {
        self.controls.iter().filter(move |c| standard.requirements(c).is_some())
    }
}

const CSV: &str = include_str!("../../data/securityhub-controls.csv");

/// The catalogue, parsed once.
pub fn catalogue() -> &'static Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        let controls = parse(CSV);
        let by_id = controls.iter().enumerate().map(|(i, c)| (c.id.clone(), i)).collect();
        Catalogue { controls, by_id }
    })
}

fn parse(csv: &str) -> Vec<Control> {
    let split = |s: &str| -> Vec<String> {
        s.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
    };
    csv.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .filter_map(|line| {
            let f = csv_fields(line);
            if f.len() < 12 {
                return None;
            }
            Some(Control {
                id: f[0].clone(),
                title: f[1].clone(),
                severity: f[2].clone(),
                resource_type: f[3].clone(),
                config_rule: f[4].clone(),
                fsbp: f[5] == "yes",
                cis_1_2: split(&f[6]),
                cis_1_4: split(&f[7]),
                cis_3_0: split(&f[8]),
                pci_3_2_1: split(&f[9]),
                nist_800_53_r5: split(&f[10]),
                remediation: f[11].clone(),
            })
        })
        .collect()
}

/// Splits one CSV line, honouring double-quoted fields.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// `Severity.Normalized` for a label, as Security Hub assigns it to control findings.
pub fn normalized_severity(label: &str) -> i64 {
    match label {
        "CRITICAL" => 90,
        "HIGH" => 70,
        "MEDIUM" => 40,
        "LOW" => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_has_every_row_and_the_mappings() {
        let c = catalogue();
        assert_eq!(c.controls.len(), 90);
        let ec2_13 = c.get("EC2.13").unwrap();
        assert_eq!(ec2_13.severity, "HIGH");
        assert_eq!(Standard::Cis12.requirements(ec2_13), Some(vec!["4.1".to_string()]));
        assert_eq!(Standard::Fsbp.requirements(ec2_13), None);
        assert!(Standard::Fsbp.requirements(c.get("EC2.19").unwrap()).is_some());
        assert_eq!(Standard::Cis12.related_requirement("4.1"), "CIS AWS Foundations Benchmark v1.2.0/4.1");
    }

    #[test]
    fn standards_round_trip_through_their_arns() {
        for s in Standard::ALL {
            assert_eq!(Standard::from_arn(&s.arn("eu-west-1")), Some(s));
            assert_eq!(Standard::from_subscription_arn(&s.subscription_arn("eu-west-1", "123456789012")), Some(s));
        }
    }
}
