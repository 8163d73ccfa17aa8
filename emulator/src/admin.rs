//! `/_emulator/...` admin endpoints (JSON): health, state dump and reset, mutation counters,
//! fault injection, rate limits, world settings, the clock, and GuardDuty threats.
//!
//! | method | path | does |
//! |---|---|---|
//! | GET | /_emulator/health | liveness |
//! | GET | /_emulator/state | the world as JSON (accounts, resources, services, finding counts) |
//! | POST | /_emulator/reset | back to the scenario as loaded |
//! | GET, DELETE | /_emulator/counters | mutation counters per operation and resource; DELETE zeroes them |
//! | GET, PUT | /_emulator/faults | fault rules `{"rules": [{"service", "operation", "throttle", "error", "latency_ms"}]}` |
//! | GET, PUT | /_emulator/rate-limits | `{"enabled": bool, "overrides": {"securityhub:GetFindings": {"rate": 3, "burst": 6}}}` |
//! | GET, PUT | /_emulator/config | `{"evaluation_delay_ms": N, "standards_ready_ms": N}` |
//! | POST | /_emulator/clock | `{"advance_ms": N}` moves the world's clock forward |
//! | POST | /_emulator/threats | `{"account", "type", "resource", "region"?}` adds a GuardDuty threat |

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::Shared;
use crate::faults::{FaultRule, Rate};
use crate::wire::{Request, Response, iso8601};
use crate::world::{RuleSource, SgRule, Threat, World};

fn error(status: u16, message: impl Into<String>) -> Response {
    Response::json(&json!({"error": message.into()})).with_status(status)
}

fn body<T: for<'de> Deserialize<'de>>(req: &Request) -> Result<T, Response> {
    serde_json::from_slice(&req.body).map_err(|e| error(400, format!("invalid JSON body: {e}")))
}

pub fn handle(shared: &Shared, req: &Request) -> Response {
    let path = req.path.trim_end_matches('/');
    match (req.method.as_str(), path) {
        ("GET", "/_emulator/health") => Response::json(&json!({"status": "ok"})),
        ("GET", "/_emulator/state") => Response::json(&state_json(&shared.world.read())),
        ("POST", "/_emulator/reset") => {
            *shared.world.write() = shared.initial.clone();
            shared.faults.lock().reset_buckets();
            Response::json(&json!({"reset": true}))
        }
        ("GET", "/_emulator/counters") => Response::json(&counters_json(&shared.world.read())),
        ("DELETE", "/_emulator/counters") => {
            shared.world.write().counters = Default::default();
            Response::json(&json!({"cleared": true}))
        }
        ("GET", "/_emulator/faults") => Response::json(&json!({"rules": shared.faults.lock().rules})),
        ("PUT", "/_emulator/faults") => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Body {
                rules: Vec<FaultRule>,
            }
            match body::<Body>(req) {
                Ok(b) => {
                    if let Some(bad) =
                        b.rules.iter().find(|r| !(0.0..=1.0).contains(&r.throttle) || !(0.0..=1.0).contains(&r.error))
                    {
                        return error(400, format!("throttle and error are probabilities in [0, 1]: {bad:?}"));
                    }
                    shared.faults.lock().rules = b.rules.clone();
                    Response::json(&json!({"rules": b.rules}))
                }
                Err(r) => r,
            }
        }
        ("GET", "/_emulator/rate-limits") => {
            let f = shared.faults.lock();
            Response::json(&json!({"enabled": f.rate_limits, "overrides": f.overrides}))
        }
        ("PUT", "/_emulator/rate-limits") => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Body {
                enabled: Option<bool>,
                #[serde(default)]
                overrides: Option<std::collections::HashMap<String, Rate>>,
            }
            match body::<Body>(req) {
                Ok(b) => {
                    let mut f = shared.faults.lock();
                    if let Some(e) = b.enabled {
                        f.rate_limits = e;
                    }
                    if let Some(o) = b.overrides {
                        if let Some((k, _)) = o.iter().find(|(_, r)| r.rate <= 0.0 || r.burst < 1.0) {
                            return error(400, format!("override {k}: rate must be > 0 and burst >= 1"));
                        }
                        f.overrides = o;
                    }
                    f.reset_buckets();
                    Response::json(&json!({"enabled": f.rate_limits, "overrides": f.overrides}))
                }
                Err(r) => r,
            }
        }
        ("GET", "/_emulator/config") => {
            let w = shared.world.read();
            Response::json(
                &json!({"evaluation_delay_ms": w.config.evaluation_delay_ms, "standards_ready_ms": w.config.standards_ready_ms}),
            )
        }
        ("PUT", "/_emulator/config") => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Body {
                evaluation_delay_ms: Option<i64>,
                standards_ready_ms: Option<i64>,
            }
            match body::<Body>(req) {
                Ok(b) => {
                    let mut w = shared.world.write();
                    if let Some(d) = b.evaluation_delay_ms {
                        w.config.evaluation_delay_ms = d.max(0);
                    }
                    if let Some(d) = b.standards_ready_ms {
                        w.config.standards_ready_ms = d.max(0);
                    }
                    Response::json(
                        &json!({"evaluation_delay_ms": w.config.evaluation_delay_ms, "standards_ready_ms": w.config.standards_ready_ms}),
                    )
                }
                Err(r) => r,
            }
        }
        ("POST", "/_emulator/clock") => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Body {
                advance_ms: i64,
            }
            match body::<Body>(req) {
                Ok(b) if b.advance_ms >= 0 => {
                    let mut w = shared.world.write();
                    w.clock_offset_ms += b.advance_ms;
                    w.run_due();
                    Response::json(&json!({"now": iso8601(w.now())}))
                }
                Ok(_) => error(400, "advance_ms must be >= 0: the clock only moves forward"),
                Err(r) => r,
            }
        }
        ("POST", "/_emulator/threats") => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Body {
                account: String,
                #[serde(rename = "type")]
                finding_type: String,
                resource: String,
                region: Option<String>,
            }
            match body::<Body>(req) {
                Ok(b) => {
                    let mut w = shared.world.write();
                    if !w.accounts.contains_key(&b.account) {
                        return error(400, format!("account {} does not exist", b.account));
                    }
                    let region = b.region.unwrap_or_else(|| w.config.default_region.clone());
                    w.threats.push(Threat {
                        account: b.account.clone(),
                        region: region.clone(),
                        finding_type: b.finding_type,
                        resource: b.resource,
                    });
                    w.schedule(&b.account, &region);
                    Response::json(&json!({"added": true}))
                }
                Err(r) => r,
            }
        }
        _ => error(
            404,
            format!(
                "no admin endpoint {} {} (see the table in the emulator's admin module docs)",
                req.method, req.path
            ),
        ),
    }
}

fn counters_json(w: &World) -> Value {
    let resources: Vec<Value> = w
        .counters
        .by_resource
        .iter()
        .map(|((op, res), n)| json!({"operation": op, "resource": res, "count": n}))
        .collect();
    json!({"operations": w.counters.by_operation, "resources": resources})
}

fn rule_json(r: &SgRule) -> Value {
    let source = match &r.source {
        RuleSource::Ipv4(c) => json!({"cidr": c}),
        RuleSource::Ipv6(c) => json!({"ipv6_cidr": c}),
        RuleSource::Group(g) => json!({"group": g}),
        RuleSource::PrefixList(p) => json!({"prefix_list": p}),
    };
    json!({"id": r.id, "protocol": r.protocol, "from_port": r.from_port, "to_port": r.to_port, "source": source})
}

/// The world as JSON, for debugging and for tests that check state directly.
pub fn state_json(w: &World) -> Value {
    let accounts: Vec<Value> = w
        .accounts
        .values()
        .map(|a| {
            json!({
                "id": a.id, "name": a.name, "email": a.email, "ou_path": w.ou_path(&a.id), "in_org": a.in_org(), "tags": a.tags,
                "password_policy": a.iam.password_policy.as_ref().map(|p| json!({"minimum_password_length": p.minimum_password_length,
                    "require_symbols": p.require_symbols, "require_numbers": p.require_numbers, "require_uppercase": p.require_uppercase,
                    "require_lowercase": p.require_lowercase, "max_password_age": p.max_password_age, "password_reuse_prevention": p.password_reuse_prevention})),
                "s3_public_access_block": a.s3_public_access_block.map(|b| b.all()),
                "users": a.iam.users.values().map(|u| json!({"name": u.name, "access_keys": u.access_keys.iter().map(|k| json!({"id": k.id, "status": k.status})).collect::<Vec<_>>()})).collect::<Vec<_>>(),
                "roles": a.iam.roles.keys().collect::<Vec<_>>(),
            })
        })
        .collect();
    let regions: Vec<Value> = w
        .regions
        .iter()
        .map(|((acct, region), rs)| {
            json!({
                "account": acct, "region": region,
                "ebs_encryption_by_default": rs.ec2.ebs_encryption_by_default,
                "security_groups": rs.ec2.security_groups.values().map(|g| json!({"id": g.id, "name": g.name, "ingress": g.ingress.iter().map(rule_json).collect::<Vec<_>>(), "egress": g.egress.iter().map(rule_json).collect::<Vec<_>>()})).collect::<Vec<_>>(),
                "instances": rs.ec2.instances.values().map(|i| json!({"id": i.id, "state": i.state, "security_groups": i.security_groups, "tags": i.tags, "disable_api_termination": i.disable_api_termination, "iam_instance_profile": i.iam_instance_profile})).collect::<Vec<_>>(),
                "snapshots": rs.ec2.snapshots.keys().collect::<Vec<_>>(),
                "securityhub": rs.hub.as_ref().map(|h| json!({"standards": h.standards.keys().collect::<Vec<_>>(), "members": h.members.values().map(|m| json!({"account": m.account_id, "status": m.status})).collect::<Vec<_>>(),
                    "administrator": h.administrator.as_ref().map(|a| &a.account_id), "disabled_controls": h.disabled_controls.iter().map(|((s, c), (r, _))| json!({"standard": s, "control": c, "reason": r})).collect::<Vec<_>>()})),
                "guardduty": rs.detector.as_ref().map(|d| json!({"detector_id": d.id, "status": d.status, "members": d.members.values().map(|m| json!({"account": m.account_id, "status": m.relationship_status})).collect::<Vec<_>>(), "findings": d.findings.len()})),
                "config": json!({"recorder": rs.config.recorder.as_ref().map(|r| &r.name), "recording": rs.config.recording, "rules": rs.config.rules.keys().collect::<Vec<_>>()}),
                "analyzers": rs.analyzers.values().map(|a| json!({"name": a.name, "type": a.kind, "findings": a.findings.len()})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let buckets: Vec<Value> = w
        .buckets
        .values()
        .map(|b| json!({"name": b.name, "owner": b.owner, "region": b.region, "public": crate::world::eval::bucket_is_public(b, w.accounts.get(&b.owner).and_then(|a| a.s3_public_access_block.as_ref()))}))
        .collect();
    let findings: BTreeMap<&String, usize> = w.findings.iter().map(|(r, s)| (r, s.len())).collect();
    json!({
        "now": iso8601(w.now()),
        "organization": w.org.as_ref().map(|o| json!({"id": o.id, "management_account": o.management_account, "root_id": o.root_id})),
        "accounts": accounts, "regions": regions, "buckets": buckets, "findings_per_region": findings,
        "pending_evaluations": w.pending.len(),
    })
}
