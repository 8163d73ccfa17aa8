//! The worked example of docs/scoring.md, the edge cases of the model, and property tests of
//! its five promises (bounded, monotone, deterministic, decomposable, incremental) against a
//! from-scratch reference written as plainly as the formula.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::finding;

#[allow(clippy::too_many_arguments)]
fn check(
    key: &str,
    account: &str,
    ou: &str,
    resource_type: &str,
    resource: &str,
    control: Option<&str>,
    label: &str,
    severity: Severity,
    criticality: f64,
    failing: bool,
) -> Check {
    Check {
        key: key.to_string(),
        account_id: account.to_string(),
        ou_path: ou.to_string(),
        resource_type: resource_type.to_string(),
        resource_id: resource.to_string(),
        control: control.map(str::to_string),
        label: label.to_string(),
        severity,
        criticality,
        failing,
    }
}

fn control(key: &str, control_id: &str, severity: Severity, criticality: f64, failing: bool) -> Check {
    check(
        key,
        "333333333333",
        "Root/Prod",
        "AwsS3Bucket",
        key,
        Some(control_id),
        control_id,
        severity,
        criticality,
        failing,
    )
}

const PROD: &str = "333333333333";
const DEV: &str = "555555555555";
const BUCKET: &str = "arn:aws:s3:::prod-customer-data";
const SG_PROD: &str = "arn:aws:ec2:us-east-1:333333333333:security-group/sg-0a1";
const SG_DEV: &str = "arn:aws:ec2:us-east-1:555555555555:security-group/sg-0b2";
const CRYPTO: &str = "CryptoCurrency:EC2/BitcoinTool.B!DNS";

/// The seven checks of the worked example in docs/scoring.md.
fn worked_example() -> Vec<Check> {
    use Severity::*;
    let key = |account: &str, control: &str, resource: &str| {
        finding::control_check_key(account, "us-east-1", control, resource)
    };
    vec![
        check(
            &key(PROD, "S3.8", BUCKET),
            PROD,
            "Root/Prod",
            "AwsS3Bucket",
            BUCKET,
            Some("S3.8"),
            "S3.8",
            High,
            3.0,
            true,
        ),
        check(
            &key(PROD, "EC2.19", SG_PROD),
            PROD,
            "Root/Prod",
            "AwsEc2SecurityGroup",
            SG_PROD,
            Some("EC2.19"),
            "EC2.19",
            Critical,
            1.0,
            true,
        ),
        check(
            &key(PROD, "EC2.2", SG_PROD),
            PROD,
            "Root/Prod",
            "AwsEc2SecurityGroup",
            SG_PROD,
            Some("EC2.2"),
            "EC2.2",
            Medium,
            1.0,
            false,
        ),
        check(
            &key(PROD, "IAM.6", "AWS::::Account:333333333333"),
            PROD,
            "Root/Prod",
            "AwsAccount",
            "AWS::::Account:333333333333",
            Some("IAM.6"),
            "IAM.6",
            Critical,
            2.0,
            false,
        ),
        check(
            &key(DEV, "EC2.19", SG_DEV),
            DEV,
            "Root/Dev",
            "AwsEc2SecurityGroup",
            SG_DEV,
            Some("EC2.19"),
            "EC2.19",
            Critical,
            0.5,
            true,
        ),
        check(
            "threat|555555555555|us-east-1|i-0c3|CryptoCurrency:EC2/BitcoinTool.B!DNS",
            DEV,
            "Root/Dev",
            "AwsEc2Instance",
            "arn:aws:ec2:us-east-1:555555555555:instance/i-0c3",
            None,
            CRYPTO,
            High,
            1.0,
            true,
        ),
        check(
            &key(DEV, "S3.8", "arn:aws:s3:::dev-build-artifacts"),
            DEV,
            "Root/Dev",
            "AwsS3Bucket",
            "arn:aws:s3:::dev-build-artifacts",
            Some("S3.8"),
            "S3.8",
            High,
            1.0,
            false,
        ),
    ]
}

fn board_of(checks: impl IntoIterator<Item = Check>) -> Scoreboard {
    let mut board = Scoreboard::default();
    for c in checks {
        board.upsert(c);
    }
    board
}

#[test]
fn worked_example_scores() {
    let mut board = board_of(worked_example());
    // Config reports the bucket's S3.8 check too: same check key, counted once.
    let mut from_config = worked_example()[0].clone();
    from_config.label = "s3-bucket-level-public-access-prohibited".to_string();
    assert!(board.upsert(from_config).is_empty(), "a second report of the same check changes nothing");
    assert_eq!(board.len(), 7);

    let s = |scope: ScopeRef| {
        let s = board.score(&scope);
        (s.score, s.total_weight, s.failing_weight)
    };
    assert_eq!(s(ScopeRef::org()), (40.3, 77_000, 46_000));
    assert_eq!(s(ScopeRef::account(PROD)), (43.6, 55_000, 31_000));
    assert_eq!(s(ScopeRef::account(DEV)), (31.8, 22_000, 15_000));
    assert_eq!(s(ScopeRef::ou("Root/Prod")), (43.6, 55_000, 31_000));
    assert_eq!(s(ScopeRef::ou("Root/Dev")), (31.8, 22_000, 15_000));
    assert_eq!(s(ScopeRef::resource_type("AwsS3Bucket")), (25.0, 28_000, 21_000));
    assert_eq!(s(ScopeRef::resource_type("AwsEc2SecurityGroup")), (18.2, 22_000, 18_000));
    assert_eq!(s(ScopeRef::resource_type("AwsEc2Instance")), (0.0, 7_000, 7_000));
    assert_eq!(s(ScopeRef::resource_type("AwsAccount")), (100.0, 20_000, 0));
    assert_eq!(s(ScopeRef::resource(SG_PROD)), (28.6, 14_000, 10_000));

    let explained: Vec<(String, f64, u64, u64)> = board
        .explain(&ScopeRef::org())
        .into_iter()
        .map(|c| (c.label, c.points, c.failing_checks, c.failing_resources))
        .collect();
    assert_eq!(
        explained,
        vec![("S3.8".to_string(), 27.27, 1, 1), ("EC2.19".to_string(), 23.38, 2, 2), (CRYPTO.to_string(), 9.09, 1, 1),]
    );

    let priorities: Vec<(String, f64, u64, u64, Severity)> = board
        .priorities(&ScopeRef::org(), 10)
        .into_iter()
        .map(|p| (p.control_id, p.improvement_potential, p.failing_resources, p.failing_accounts, p.severity))
        .collect();
    assert_eq!(
        priorities,
        vec![
            ("S3.8".to_string(), 27.27, 1, 1, Severity::High),
            ("EC2.19".to_string(), 23.38, 2, 2, Severity::Critical)
        ]
    );
    let dev: Vec<(String, f64)> =
        board.explain(&ScopeRef::account(DEV)).into_iter().map(|c| (c.label, c.points)).collect();
    assert_eq!(dev, vec![("EC2.19".to_string(), 36.36), (CRYPTO.to_string(), 31.82)]);

    // Fixing S3.8 on the bucket gains the org exactly its improvement potential.
    let mut fixed = worked_example()[0].clone();
    fixed.failing = false;
    let changed = board.upsert(fixed);
    assert_eq!(
        changed,
        vec![
            ScopeRef::org(),
            ScopeRef::ou("Root/Prod"),
            ScopeRef::account(PROD),
            ScopeRef::resource_type("AwsS3Bucket"),
            ScopeRef::resource(BUCKET),
        ]
    );
    assert_eq!(board.score(&ScopeRef::org()).score, 67.5);
    assert_eq!(board.score(&ScopeRef::account(PROD)).score, 81.8);
    assert_eq!(board.score(&ScopeRef::account(DEV)).score, 31.8);
}

#[test]
fn criticality_is_clamped() {
    assert_eq!(clamp_criticality(0.1), MIN_CRITICALITY);
    assert_eq!(clamp_criticality(-3.0), MIN_CRITICALITY);
    assert_eq!(clamp_criticality(f64::NEG_INFINITY), MIN_CRITICALITY);
    assert_eq!(clamp_criticality(9.0), MAX_CRITICALITY);
    assert_eq!(clamp_criticality(f64::INFINITY), MAX_CRITICALITY);
    assert_eq!(clamp_criticality(f64::NAN), 1.0);
    assert_eq!(clamp_criticality(2.5), 2.5);

    let w = Weights::default();
    let weight = |c: f64| w.quantized(&control("k", "EC2.19", Severity::Critical, c, true));
    assert_eq!(weight(0.1), 8_000);
    assert_eq!(weight(50.0), 50_000);
    assert_eq!(weight(f64::NAN), 10_000);
    assert_eq!(weight(1.2345678), 12_346, "rounded to whole milli-points");

    let mut board = Scoreboard::default();
    board.upsert(control("a", "EC2.19", Severity::Critical, 100.0, true));
    board.upsert(control("b", "EC2.19", Severity::Critical, 0.0, false));
    let org = board.score(&ScopeRef::org());
    assert_eq!((org.total_weight, org.failing_weight), (58_000, 50_000));
}

#[test]
fn criticality_comes_from_the_resource_then_the_account() {
    let tags = |v: &str| BTreeMap::from([(CRITICALITY_TAG.to_string(), v.to_string())]);
    let none = BTreeMap::new();
    assert_eq!(criticality_from_tags(&tags("3"), &tags("2")), 3.0);
    assert_eq!(criticality_from_tags(&none, &tags("2")), 2.0);
    assert_eq!(criticality_from_tags(&none, &none), 1.0);
    assert_eq!(criticality_from_tags(&tags("high"), &tags("4.5")), 4.5, "an unreadable tag falls back to the account");
    assert_eq!(criticality_from_tags(&tags("NaN"), &none), 1.0);
    assert_eq!(criticality_from_tags(&tags(" 12 "), &none), MAX_CRITICALITY);
    assert_eq!(criticality_from_tags(&tags("0"), &none), MIN_CRITICALITY);
}

#[test]
fn control_weight_overrides_severity() {
    let mut w = Weights::default();
    w.set_control_weight("IAM.6", 0.0).unwrap();
    w.set_control_weight("S3.1", 10.0).unwrap();
    w.set_severity_weight(Severity::Low, 2.0).unwrap();
    assert_eq!(w.weight(Some("IAM.6"), Severity::Critical), 0.0);
    assert_eq!(w.weight(Some("S3.1"), Severity::Medium), 10.0);
    assert_eq!(w.weight(Some("EC2.2"), Severity::Low), 2.0);
    assert_eq!(w.weight(None, Severity::High), 7.0);

    let mut board = Scoreboard::new(w);
    board.upsert(control("root-mfa", "IAM.6", Severity::Critical, 2.0, true));
    board.upsert(control("bpa", "S3.1", Severity::Medium, 1.0, false));
    let org = board.score(&ScopeRef::org());
    assert_eq!((org.score, org.total_weight, org.failing_weight), (100.0, 10_000, 0));
    // The overridden control still fails and is still explained, at no cost.
    let explained = board.explain(&ScopeRef::org());
    assert_eq!(explained.len(), 1);
    assert_eq!((explained[0].label.as_str(), explained[0].points, explained[0].failing_checks), ("IAM.6", 0.0, 1));

    for bad in [-1.0, f64::NAN, f64::INFINITY, MAX_WEIGHT + 1.0] {
        let mut w = Weights::default();
        let err = w.set_control_weight("EC2.19", bad).unwrap_err();
        assert!(err.to_string().contains("control EC2.19"), "{err}");
        assert!(w.set_severity_weight(Severity::High, bad).is_err());
        assert_eq!(w, Weights::default(), "a refused weight leaves the weights as they were");
    }
}

#[test]
fn empty_scopes_score_100() {
    let board = Scoreboard::default();
    let org = board.score(&ScopeRef::org());
    assert_eq!((org.score, org.total_weight, org.checks), (100.0, 0, 0));
    assert_eq!(board.scores(ScopeKind::Org), vec![org]);
    assert!(board.scores(ScopeKind::Account).is_empty());
    assert_eq!(board.score(&ScopeRef::account("999999999999")).score, 100.0);
    assert!(board.explain(&ScopeRef::account("999999999999")).is_empty());

    // Weightless checks (INFORMATIONAL) leave W at 0: the scope exists and scores 100.
    let board = board_of([control("info", "CloudTrail.5", Severity::Informational, 5.0, true)]);
    let s = board.score(&ScopeRef::account(PROD));
    assert_eq!((s.score, s.total_weight, s.checks, s.failing_checks), (100.0, 0, 1, 1));
}

#[test]
fn a_moved_check_leaves_its_old_scopes() {
    let mut board = Scoreboard::default();
    let mut c =
        check("k", PROD, "Root/Prod/Web", "AwsS3Bucket", BUCKET, Some("S3.8"), "S3.8", Severity::High, 1.0, true);
    board.upsert(c.clone());
    assert_eq!(
        board.scores(ScopeKind::Ou).iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["Root/Prod", "Root/Prod/Web"]
    );
    c.account_id = DEV.to_string();
    c.ou_path = "Root/Dev".to_string();
    let changed = board.upsert(c);
    assert_eq!(
        changed,
        vec![
            ScopeRef::ou("Root/Dev"),
            ScopeRef::ou("Root/Prod"),
            ScopeRef::ou("Root/Prod/Web"),
            ScopeRef::account(PROD),
            ScopeRef::account(DEV)
        ]
    );
    assert_eq!(board.scores(ScopeKind::Account).iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), [DEV]);
    assert_eq!(board.scores(ScopeKind::Ou).iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["Root/Dev"]);
    assert_eq!(board.score(&ScopeRef::account(DEV)).score, 0.0);
    assert_eq!(board.priorities(&ScopeRef::account(DEV), 5)[0].failing_accounts, 1);

    assert_eq!(board.remove("k").len(), 5, "org, OU, account, resource type and resource");
    assert!(board.remove("k").is_empty());
    assert!(board.is_empty());
    assert_eq!(board.scores(ScopeKind::Resource), vec![]);
}

#[test]
fn a_resource_failing_twice_counts_once() {
    let mut board = Scoreboard::default();
    for region in ["us-east-1", "eu-west-1"] {
        let key = finding::control_check_key(PROD, region, "S3.8", BUCKET);
        board.upsert(check(
            &key,
            PROD,
            "Root/Prod",
            "AwsS3Bucket",
            BUCKET,
            Some("S3.8"),
            "S3.8",
            Severity::High,
            1.0,
            true,
        ));
    }
    let p = &board.priorities(&ScopeRef::org(), 1)[0];
    assert_eq!((p.failing_checks, p.failing_resources, p.failing_accounts), (2, 1, 1));
    board.remove(&finding::control_check_key(PROD, "us-east-1", "S3.8", BUCKET));
    let p = &board.priorities(&ScopeRef::org(), 1)[0];
    assert_eq!((p.failing_checks, p.failing_resources), (1, 1));
}

#[test]
fn ou_ancestors_exclude_the_root() {
    assert_eq!(ou_ancestors("Root/Prod/Web"), ["Root/Prod", "Root/Prod/Web"]);
    assert_eq!(ou_ancestors("Prod/Web/"), ["Root/Prod", "Root/Prod/Web"]);
    assert!(ou_ancestors("Root").is_empty());
    assert!(ou_ancestors("").is_empty());
    assert_eq!(ScopeRef::ou("Prod"), ScopeRef::ou("Root/Prod"));
}

#[test]
fn names_and_json() {
    for k in ScopeKind::ALL {
        assert_eq!(ScopeKind::parse(k.as_str()), Some(k));
        assert_eq!(serde_json::to_value(k).unwrap(), serde_json::json!(k.as_str()));
    }
    let board = board_of(worked_example());
    let json = serde_json::to_value(board.score(&ScopeRef::resource_type("AwsS3Bucket"))).unwrap();
    assert_eq!(json["scope"], "resource-type");
    assert_eq!(json["id"], "AwsS3Bucket");
    assert_eq!(json["score"], 25.0);
    assert_eq!(ScopeRef::new(ScopeKind::Org, "anything").to_string(), "org");
    assert_eq!(ScopeRef::account(PROD).to_string(), "account:333333333333");
}

// ---------------------------------------------------------------------------------------------
// Properties, against a reference that recomputes everything from the set of checks.

/// Everything a board answers, for every scope it knows of.
#[derive(Debug, PartialEq)]
struct View {
    scores: Vec<Score>,
    explanations: Vec<Vec<Contribution>>,
    priorities: Vec<Vec<Priority>>,
}

fn view(board: &Scoreboard) -> View {
    let scores: Vec<Score> = ScopeKind::ALL.into_iter().flat_map(|k| board.scores(k)).collect();
    let explanations = scores.iter().map(|s| board.explain(&s.scope_ref())).collect();
    let priorities = scores.iter().map(|s| board.priorities(&s.scope_ref(), usize::MAX)).collect();
    View { scores, explanations, priorities }
}

fn memberships(c: &Check) -> Vec<ScopeRef> {
    let mut out = vec![ScopeRef::org()];
    out.extend(ou_ancestors(&c.ou_path).into_iter().map(|id| ScopeRef { kind: ScopeKind::Ou, id }));
    out.push(ScopeRef::account(c.account_id.clone()));
    out.push(ScopeRef::resource_type(c.resource_type.clone()));
    out.push(ScopeRef::resource(c.resource_id.clone()));
    out
}

/// The model, from scratch: the view a board of `checks` must give.
fn reference(checks: &BTreeMap<String, Check>, weights: &Weights) -> View {
    let mut scopes: BTreeSet<ScopeRef> = checks.values().flat_map(memberships).collect();
    scopes.insert(ScopeRef::org());
    let mut out = View { scores: Vec::new(), explanations: Vec::new(), priorities: Vec::new() };
    for scope in scopes {
        let members: Vec<&Check> = checks.values().filter(|c| memberships(c).contains(&scope)).collect();
        let total: u64 = members.iter().map(|c| weights.quantized(c)).sum();
        let failing: Vec<&Check> = members.iter().copied().filter(|c| c.failing).collect();
        let failing_weight: u64 = failing.iter().map(|c| weights.quantized(c)).sum();
        out.scores.push(Score {
            scope: scope.kind,
            id: scope.id.clone(),
            score: round_to(exact_score(total, failing_weight), 1),
            total_weight: total,
            failing_weight,
            checks: members.len() as u64,
            failing_checks: failing.len() as u64,
        });
        let mut by_label: BTreeMap<(bool, String), Vec<&Check>> = BTreeMap::new();
        for c in &failing {
            by_label.entry((c.control.is_some(), c.explained_as().to_string())).or_default().push(c);
        }
        let mut contributions: Vec<Contribution> = by_label
            .iter()
            .map(|((control, label), cs)| {
                let f: u64 = cs.iter().map(|c| weights.quantized(c)).sum();
                Contribution {
                    label: label.clone(),
                    control: *control,
                    points: round_to(points(total, f), 2),
                    failing_weight: f,
                    failing_checks: cs.len() as u64,
                    failing_resources: cs.iter().map(|c| &c.resource_id).collect::<BTreeSet<_>>().len() as u64,
                    failing_accounts: cs.iter().map(|c| &c.account_id).collect::<BTreeSet<_>>().len() as u64,
                }
            })
            .collect();
        contributions.sort_by(|a, b| {
            b.failing_weight.cmp(&a.failing_weight).then_with(|| a.label.cmp(&b.label)).then(a.control.cmp(&b.control))
        });
        let priorities = contributions
            .iter()
            .filter(|c| c.control)
            .map(|c| Priority {
                control_id: c.label.clone(),
                improvement_potential: c.points,
                failing_weight: c.failing_weight,
                failing_checks: c.failing_checks,
                failing_resources: c.failing_resources,
                failing_accounts: c.failing_accounts,
                severity: by_label[&(true, c.label.clone())].iter().map(|c| c.severity).max().unwrap(),
            })
            .collect();
        out.explanations.push(contributions);
        out.priorities.push(priorities);
    }
    out
}

fn severity() -> impl Strategy<Value = Severity> {
    prop::sample::select(Severity::ALL.to_vec())
}

fn criticality() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => 0.0..6.0f64,
        1 => prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -2.0, 0.8, 5.0, 40.0]),
    ]
}

/// A check from small pools, so that keys repeat (an upsert replaces, and may move, a check),
/// resources carry several checks, and OUs nest.
fn arb_check() -> impl Strategy<Value = Check> {
    let accounts = ["111111111111", "333333333333", "444444444444", "555555555555"];
    let ous = ["", "Root", "Root/Prod", "Root/Prod/Web", "Root/Prod/Web/Api", "Root/Dev", "Sandbox"];
    let types = ["AwsS3Bucket", "AwsEc2SecurityGroup", "AwsAccount"];
    let labels: [(Option<&str>, &str); 6] = [
        (Some("EC2.13"), "EC2.13"),
        (Some("EC2.19"), "EC2.19"),
        (Some("S3.8"), "S3.8"),
        (Some("IAM.6"), "IAM.6"),
        (None, "Recon:EC2/PortProbeUnprotectedPort"),
        (None, "UnauthorizedAccess:IAMUser/ConsoleLogin"),
    ];
    (0..16usize, 0..4usize, 0..7usize, 0..3usize, 0..8usize, 0..6usize, severity(), criticality(), any::<bool>())
        .prop_map(move |(k, a, ou, t, r, l, severity, criticality, failing)| {
            let account = accounts[a];
            // Most resources are account-local ARNs; two ids are shared across accounts, as a
            // global name could be.
            let resource = if r < 6 {
                format!("arn:aws:{}:{account}:r/{r}", types[t])
            } else {
                format!("arn:aws:s3:::global-{r}")
            };
            Check {
                key: format!("k{k}"),
                account_id: account.to_string(),
                ou_path: ous[ou].to_string(),
                resource_type: types[t].to_string(),
                resource_id: resource,
                control: labels[l].0.map(str::to_string),
                label: labels[l].1.to_string(),
                severity,
                criticality,
                failing,
            }
        })
}

fn arb_weights() -> impl Strategy<Value = Weights> {
    prop_oneof![
        Just(Weights::default()),
        Just({
            let mut w = Weights::default();
            // A zero override makes weightless failing checks; a large one dominates.
            w.set_control_weight("EC2.13", 0.0).ok();
            w.set_control_weight("S3.8", 25.0).ok();
            w.set_severity_weight(Severity::Low, 0.5).ok();
            w
        }),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Upsert(Check),
    Remove(String),
}

fn arb_ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![4 => arb_check().prop_map(Op::Upsert), 1 => (0..16usize).prop_map(|k| Op::Remove(format!("k{k}")))],
        0..60,
    )
}

/// The set of checks a sequence of operations ends with.
fn final_set(ops: &[Op]) -> BTreeMap<String, Check> {
    let mut set = BTreeMap::new();
    for op in ops {
        match op {
            Op::Upsert(c) => {
                set.insert(c.key.clone(), c.clone());
            }
            Op::Remove(k) => {
                set.remove(k);
            }
        }
    }
    set
}

fn run(weights: &Weights, ops: &[Op]) -> Scoreboard {
    let mut board = Scoreboard::new(weights.clone());
    for op in ops {
        match op {
            Op::Upsert(c) => board.upsert(c.clone()),
            Op::Remove(k) => board.remove(k),
        };
    }
    board
}

fn fresh(weights: &Weights, checks: impl IntoIterator<Item = Check>) -> Scoreboard {
    let mut board = Scoreboard::new(weights.clone());
    for c in checks {
        board.upsert(c);
    }
    board
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn incremental_equals_from_scratch(weights in arb_weights(), ops in arb_ops()) {
        let set = final_set(&ops);
        let incremental = run(&weights, &ops);
        let scratch = fresh(&weights, set.values().cloned());
        prop_assert_eq!(incremental.len(), set.len());
        prop_assert_eq!(view(&incremental), view(&scratch));
        prop_assert_eq!(view(&incremental), reference(&set, &weights));
    }

    #[test]
    fn bounded(weights in arb_weights(), ops in arb_ops()) {
        let board = run(&weights, &ops);
        for kind in ScopeKind::ALL {
            for s in board.scores(kind) {
                prop_assert!((0.0..=100.0).contains(&s.score), "{s:?}");
                prop_assert!((0.0..=100.0).contains(&s.exact()), "{s:?}");
                prop_assert!(s.failing_weight <= s.total_weight);
            }
        }
    }

    #[test]
    fn decomposable(weights in arb_weights(), ops in arb_ops()) {
        let board = run(&weights, &ops);
        for kind in ScopeKind::ALL {
            for s in board.scores(kind) {
                let contributions = board.explain(&s.scope_ref());
                let f: u64 = contributions.iter().map(|c| c.failing_weight).sum();
                prop_assert_eq!(f, s.failing_weight);
                let lost: f64 = contributions.iter().map(|c| points(s.total_weight, c.failing_weight)).sum();
                prop_assert!((lost - (100.0 - s.exact())).abs() < 1e-9, "{s:?}: {lost}");
                prop_assert_eq!(contributions.iter().map(|c| c.failing_checks).sum::<u64>(), s.failing_checks);
            }
        }
    }

    #[test]
    fn monotone(weights in arb_weights(), ops in arb_ops(), pick in any::<prop::sample::Index>()) {
        let mut board = run(&weights, &ops);
        let set = final_set(&ops);
        let failing: Vec<&Check> = set.values().filter(|c| c.failing).collect();
        prop_assume!(!failing.is_empty());
        let mut fixed = (*pick.get(&failing)).clone();
        fixed.failing = false;
        let containing = memberships(&fixed);
        let weight = weights.quantized(&fixed);

        let before = view(&board).scores;
        let changed = board.upsert(fixed);
        let after = view(&board).scores;
        prop_assert_eq!(before.len(), after.len(), "fixing a check adds or removes no scope");
        let mut rose = 0;
        for (b, a) in before.iter().zip(&after) {
            prop_assert_eq!(b.scope_ref(), a.scope_ref());
            prop_assert!(a.exact() >= b.exact(), "{b:?} -> {a:?}");
            if containing.contains(&a.scope_ref()) {
                prop_assert_eq!(a.total_weight, b.total_weight);
                if a.exact() > b.exact() {
                    rose += 1;
                }
            } else {
                prop_assert_eq!(a, b);
            }
        }
        if weight > 0 {
            prop_assert!(rose >= 1);
            prop_assert_eq!(changed, containing.into_iter().collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn deterministic(
        weights in arb_weights(),
        checks in prop::collection::vec(arb_check(), 0..40),
        noise in prop::collection::vec(arb_check(), 0..20),
        seed in any::<u64>(),
    ) {
        // Unique keys, so that the order of insertion cannot change which version wins.
        let set: BTreeMap<String, Check> = checks.into_iter().map(|c| (c.key.clone(), c)).collect();
        let forward = fresh(&weights, set.values().cloned());
        let backward = fresh(&weights, set.values().rev().cloned());
        prop_assert_eq!(view(&forward), view(&backward));

        // Shuffled, with other checks upserted and removed along the way (and keys of the set
        // first written with other values, then overwritten).
        let mut order: Vec<Check> = set.values().cloned().collect();
        let mut state = seed | 1;
        for i in (1..order.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            order.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let mut board = Scoreboard::new(weights.clone());
        for (i, n) in noise.iter().enumerate() {
            let mut n = n.clone();
            if i % 2 == 0 {
                n.key = format!("noise{i}");
            }
            board.upsert(n);
        }
        for c in order {
            board.upsert(c);
        }
        for (i, n) in noise.iter().enumerate() {
            if i % 2 == 0 {
                board.remove(&format!("noise{i}"));
            } else if !set.contains_key(&n.key) {
                board.remove(&n.key);
            }
        }
        prop_assert_eq!(view(&board), view(&forward));
    }
}
