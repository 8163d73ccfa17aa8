//! `orgsec_remediation_binding` and `orgsec_posture` through the provider's gRPC service, as
//! Terraform drives them, against an in-process orchestrator API: validate, plan (with the
//! catalogue check), create, read, re-plan, update, drift, disappear, import, delete, and the
//! errors for a refused token and an orchestrator that is down.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use orgsec_proto::orgsec::v1 as api;
use orgsec_proto::tfplugin6 as pb;
use orgsec_proto::tfplugin6::provider_server::Provider as _;
use terraform_provider_orgsec::aws::Aws;
use terraform_provider_orgsec::data_sources;
use terraform_provider_orgsec::framework::Provider;
use terraform_provider_orgsec::grpc::ProviderService;
use terraform_provider_orgsec::orchestrator::Orchestrator;
use terraform_provider_orgsec::resources;
use terraform_provider_orgsec::tfvalue::{self, Type, Value};
use tonic::{Request, Response, Status};

const TOKEN: &str = "s3cret-admin";
const BINDING: &str = "orgsec_remediation_binding";
const POSTURE: &str = "orgsec_posture";

// ---------------------------------------------------------------------------------------------
// the in-process orchestrator

#[derive(Default)]
struct State {
    bindings: BTreeMap<String, api::Binding>,
    validations: usize,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<State>>);

impl Fake {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn authorize<T>(r: &Request<T>) -> Result<(), Status> {
    match r.metadata().get("authorization").and_then(|v| v.to_str().ok()) {
        Some(v) if v == format!("Bearer {TOKEN}") => Ok(()),
        Some(_) => Err(Status::unauthenticated("unknown token")),
        None => Err(Status::unauthenticated("no token")),
    }
}

fn violations(b: &api::Binding) -> Vec<api::Violation> {
    let mut out = Vec::new();
    if b.playbook != "revoke-public-ingress" {
        out.push(api::Violation {
            field: "playbook".into(),
            description: format!("no playbook named \"{}\"; known: revoke-public-ingress", b.playbook),
        });
    }
    for (i, c) in b.controls.iter().enumerate() {
        if !["EC2.13", "EC2.14", "EC2.19"].contains(&c.as_str()) {
            out.push(api::Violation {
                field: format!("controls[{i}]"),
                description: format!("revoke-public-ingress does not fix {c}"),
            });
        }
    }
    out
}

#[tonic::async_trait]
impl api::binding_service_server::BindingService for Fake {
    async fn create_binding(&self, r: Request<api::CreateBindingRequest>) -> Result<Response<api::Binding>, Status> {
        authorize(&r)?;
        let mut b = r.into_inner().binding.unwrap_or_default();
        if let Some(v) = violations(&b).first() {
            return Err(Status::invalid_argument(format!("{}: {}", v.field, v.description)));
        }
        let mut s = self.state();
        if s.bindings.contains_key(&b.name) {
            return Err(Status::already_exists(format!("binding {} exists", b.name)));
        }
        b.revision = 1;
        b.created_by = "admin".into();
        s.bindings.insert(b.name.clone(), b.clone());
        Ok(Response::new(b))
    }

    async fn get_binding(&self, r: Request<api::GetBindingRequest>) -> Result<Response<api::Binding>, Status> {
        authorize(&r)?;
        let name = r.into_inner().name;
        self.state().bindings.get(&name).cloned().map(Response::new).ok_or_else(|| Status::not_found(name))
    }

    async fn update_binding(&self, r: Request<api::UpdateBindingRequest>) -> Result<Response<api::Binding>, Status> {
        authorize(&r)?;
        let mut b = r.into_inner().binding.unwrap_or_default();
        let mut s = self.state();
        let Some(old) = s.bindings.get(&b.name) else { return Err(Status::not_found(b.name)) };
        b.revision = old.revision + 1;
        b.created_by = old.created_by.clone();
        s.bindings.insert(b.name.clone(), b.clone());
        Ok(Response::new(b))
    }

    async fn delete_binding(
        &self,
        r: Request<api::DeleteBindingRequest>,
    ) -> Result<Response<api::DeleteBindingResponse>, Status> {
        authorize(&r)?;
        let req = r.into_inner();
        match (self.state().bindings.remove(&req.name), req.allow_missing) {
            (None, false) => Err(Status::not_found(req.name)),
            _ => Ok(Response::new(api::DeleteBindingResponse {})),
        }
    }

    async fn list_bindings(
        &self,
        r: Request<api::ListBindingsRequest>,
    ) -> Result<Response<api::ListBindingsResponse>, Status> {
        authorize(&r)?;
        let bindings = self.state().bindings.values().cloned().collect();
        Ok(Response::new(api::ListBindingsResponse { bindings, next_page_token: String::new() }))
    }

    async fn validate_binding(
        &self,
        r: Request<api::ValidateBindingRequest>,
    ) -> Result<Response<api::ValidateBindingResponse>, Status> {
        authorize(&r)?;
        self.state().validations += 1;
        let b = r.into_inner().binding.unwrap_or_default();
        Ok(Response::new(api::ValidateBindingResponse { violations: violations(&b) }))
    }
}

#[tonic::async_trait]
impl api::posture_service_server::PostureService for Fake {
    async fn get_score(&self, r: Request<api::GetScoreRequest>) -> Result<Response<api::Score>, Status> {
        authorize(&r)?;
        let req = r.into_inner();
        if req.scope == api::ScopeKind::Account as i32 && req.id != "333333333333" {
            return Err(Status::not_found(format!("no account {}", req.id)));
        }
        Ok(Response::new(api::Score {
            scope: req.scope,
            id: req.id,
            score: 72.456,
            failing_findings: 14,
            failing_resources: 9,
            resources: 40,
            computed_at: Some(prost_types::Timestamp { seconds: 1_795_305_600, nanos: 0 }),
            contributions: vec![],
        }))
    }

    async fn list_scores(
        &self,
        r: Request<api::ListScoresRequest>,
    ) -> Result<Response<api::ListScoresResponse>, Status> {
        authorize(&r)?;
        Ok(Response::new(api::ListScoresResponse::default()))
    }

    async fn list_priorities(
        &self,
        r: Request<api::ListPrioritiesRequest>,
    ) -> Result<Response<api::ListPrioritiesResponse>, Status> {
        authorize(&r)?;
        let all = [("EC2.13", 9.5, "HIGH"), ("S3.1", 4.25, "MEDIUM"), ("IAM.7", 1.0, "LOW")];
        let limit = usize::try_from(r.get_ref().limit).unwrap_or(0);
        let priorities = all
            .iter()
            .take(if limit == 0 { all.len() } else { limit })
            .map(|(c, p, s)| api::Priority {
                control_id: (*c).into(),
                title: format!("{c} title"),
                severity: (*s).into(),
                improvement_potential: *p,
                failing_resources: 2,
            })
            .collect();
        Ok(Response::new(api::ListPrioritiesResponse { priorities }))
    }
}

/// Serves the fake on a free loopback port; the URL.
async fn serve(fake: Fake) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(api::binding_service_server::BindingServiceServer::new(fake.clone()))
            .add_service(api::posture_service_server::PostureServiceServer::new(fake))
            .serve_with_incoming(incoming),
    );
    format!("http://{addr}")
}

// ---------------------------------------------------------------------------------------------
// Terraform's side

fn provider(url: &str, token: &str) -> ProviderService {
    let sdk = aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
    let aws = Aws::from_parts(sdk, "222222222222", "us-east-1");
    let orch = Orchestrator::new(url, Some(token)).expect("endpoint");
    ProviderService::new(
        Provider::new(Box::new(|_| None))
            .with_resources(resources::all())
            .with_data_sources(data_sources::all())
            .configured_with(aws, Some(orch)),
    )
}

fn ty(svc: &ProviderService, name: &str) -> Type {
    let p = svc.core();
    match p.resource(name) {
        Some(r) => r.schema().value_type(),
        None => p.data_source(name).expect("known type").schema().value_type(),
    }
}

fn dv(svc: &ProviderService, name: &str, v: &Value) -> Option<pb::DynamicValue> {
    Some(pb::DynamicValue { msgpack: tfvalue::encode_msgpack(v, &ty(svc, name)).expect("encode"), json: vec![] })
}

fn undv(svc: &ProviderService, name: &str, v: Option<pb::DynamicValue>) -> Value {
    v.map_or(Value::Null, |v| tfvalue::decode_msgpack(&v.msgpack, &ty(svc, name)).expect("decode"))
}

fn s(x: &str) -> Value {
    Value::String(x.into())
}

fn set(items: &[&str]) -> Value {
    Value::Set(items.iter().map(|x| s(x)).collect())
}

/// A binding configuration: every attribute, `pairs` set and the rest null.
fn config(svc: &ProviderService, pairs: &[(&str, Value)]) -> Value {
    let mut m = svc.core().resource(BINDING).expect("binding").schema().block.null_state();
    for (k, v) in pairs {
        m.insert((*k).to_string(), v.clone());
    }
    Value::Object(m)
}

/// What Terraform proposes: the configuration, with the prior state's values for the computed
/// attributes the configuration leaves null.
fn propose(svc: &ProviderService, prior: &Value, config: &Value) -> Value {
    let schema = svc.core().resource(BINDING).expect("binding").schema();
    let mut out = config.as_map().cloned().unwrap_or_default();
    for a in schema.block.attributes.iter().filter(|a| a.computed) {
        if config.get_attr(a.name).is_none_or(Value::is_null) {
            out.insert(a.name.to_string(), prior.get_attr(a.name).cloned().unwrap_or(Value::Null));
        }
    }
    Value::Object(out)
}

struct Diags(Vec<pb::Diagnostic>);

impl Diags {
    fn errors(&self) -> Vec<(String, Vec<String>)> {
        use pb::attribute_path::step::Selector;
        self.0
            .iter()
            .filter(|d| d.severity == pb::diagnostic::Severity::Error as i32)
            .map(|d| {
                let path = d
                    .attribute
                    .iter()
                    .flat_map(|p| &p.steps)
                    .filter_map(|s| match &s.selector {
                        Some(Selector::AttributeName(n) | Selector::ElementKeyString(n)) => Some(n.clone()),
                        _ => None,
                    })
                    .collect();
                (d.summary.clone(), path)
            })
            .collect()
    }

    fn text(&self) -> String {
        self.0.iter().map(|d| format!("{}: {}", d.summary, d.detail)).collect::<Vec<_>>().join("\n")
    }
}

async fn validate(svc: &ProviderService, config: &Value) -> Diags {
    let r = svc
        .validate_resource_config(Request::new(pb::validate_resource_config::Request {
            type_name: BINDING.into(),
            config: dv(svc, BINDING, config),
            client_capabilities: None,
        }))
        .await
        .expect("validate")
        .into_inner();
    Diags(r.diagnostics)
}

async fn plan(svc: &ProviderService, prior: &Value, config: &Value) -> (Value, Diags) {
    let r = svc
        .plan_resource_change(Request::new(pb::plan_resource_change::Request {
            type_name: BINDING.into(),
            prior_state: dv(svc, BINDING, prior),
            proposed_new_state: dv(svc, BINDING, &propose(svc, prior, config)),
            config: dv(svc, BINDING, config),
            ..Default::default()
        }))
        .await
        .expect("plan")
        .into_inner();
    (undv(svc, BINDING, r.planned_state), Diags(r.diagnostics))
}

async fn apply(svc: &ProviderService, prior: &Value, planned: &Value) -> (Value, Diags) {
    let r = svc
        .apply_resource_change(Request::new(pb::apply_resource_change::Request {
            type_name: BINDING.into(),
            prior_state: dv(svc, BINDING, prior),
            planned_state: dv(svc, BINDING, planned),
            config: dv(svc, BINDING, planned),
            ..Default::default()
        }))
        .await
        .expect("apply")
        .into_inner();
    (undv(svc, BINDING, r.new_state), Diags(r.diagnostics))
}

async fn read(svc: &ProviderService, state: &Value) -> (Value, Diags) {
    let r = svc
        .read_resource(Request::new(pb::read_resource::Request {
            type_name: BINDING.into(),
            current_state: dv(svc, BINDING, state),
            ..Default::default()
        }))
        .await
        .expect("read")
        .into_inner();
    (undv(svc, BINDING, r.new_state), Diags(r.diagnostics))
}

/// plan + apply, both clean; the new state.
async fn converge(svc: &ProviderService, prior: &Value, config: &Value) -> Value {
    let (planned, d) = plan(svc, prior, config).await;
    assert!(d.0.is_empty(), "{}", d.text());
    let (state, d) = apply(svc, prior, &planned).await;
    assert!(d.0.is_empty(), "{}", d.text());
    state
}

async fn read_posture(svc: &ProviderService, pairs: &[(&str, Value)]) -> (Value, Diags) {
    let mut m = svc.core().data_source(POSTURE).expect("posture").schema().block.null_state();
    for (k, v) in pairs {
        m.insert((*k).to_string(), v.clone());
    }
    let r = svc
        .read_data_source(Request::new(pb::read_data_source::Request {
            type_name: POSTURE.into(),
            config: dv(svc, POSTURE, &Value::Object(m)),
            ..Default::default()
        }))
        .await
        .expect("read data source")
        .into_inner();
    (undv(svc, POSTURE, r.state), Diags(r.diagnostics))
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_binding_lives_its_whole_life_in_the_orchestrator() {
    let fake = Fake::default();
    let url = serve(fake.clone()).await;
    let svc = provider(&url, TOKEN);
    let base =
        [("name", s("public-ingress")), ("controls", set(&["EC2.13"])), ("playbook", s("revoke-public-ingress"))];
    let cfg = config(&svc, &base);

    // Create: the mode defaults to approve; the catalogue was consulted.
    let (planned, d) = plan(&svc, &Value::Null, &cfg).await;
    assert!(d.0.is_empty(), "{}", d.text());
    assert_eq!(planned.get_attr("mode"), Some(&s("approve")));
    assert_eq!(planned.get_attr("revision"), Some(&Value::Unknown));
    assert_eq!(fake.state().validations, 1);
    let (state, d) = apply(&svc, &Value::Null, &planned).await;
    assert!(d.0.is_empty(), "{}", d.text());
    assert_eq!(state.get_attr("revision"), Some(&Value::from(1)));
    assert_eq!(state.get_attr("created_by"), Some(&s("admin")));
    let stored = fake.state().bindings.get("public-ingress").cloned().expect("stored");
    assert_eq!((stored.mode, stored.controls.clone()), (api::Mode::Approve as i32, vec!["EC2.13".to_string()]));

    // Read and re-plan: nothing to do.
    let (refreshed, d) = read(&svc, &state).await;
    assert!(d.0.is_empty(), "{}", d.text());
    assert_eq!(refreshed, state);
    assert_eq!(plan(&svc, &refreshed, &cfg).await.0, refreshed);

    // Update in place: mode, scope and parameters.
    let scope = Value::Object(BTreeMap::from([
        ("accounts".to_string(), set(&["333333333333"])),
        ("organizational_units".to_string(), Value::Null),
        ("tags".to_string(), Value::Null),
    ]));
    let params = Value::Map(BTreeMap::from([("ports".to_string(), s("22,3389"))]));
    let cfg2 = config(
        &svc,
        &[
            base[0].clone(),
            base[1].clone(),
            base[2].clone(),
            ("mode", s("auto")),
            ("scope", scope.clone()),
            ("parameters", params.clone()),
        ],
    );
    let updated = converge(&svc, &refreshed, &cfg2).await;
    assert_eq!(updated.get_attr("revision"), Some(&Value::from(2)));
    assert_eq!((updated.get_attr("scope"), updated.get_attr("parameters")), (Some(&scope), Some(&params)));
    let stored = fake.state().bindings.get("public-ingress").cloned().expect("stored");
    assert_eq!(stored.mode, api::Mode::Auto as i32);
    assert_eq!(stored.scope.map(|s| s.accounts), Some(vec!["333333333333".to_string()]));
    assert_eq!(read(&svc, &updated).await.0, updated);
    assert_eq!(plan(&svc, &updated, &cfg2).await.0, updated, "converged: no diff");

    // Drift: changed outside Terraform -> the read shows it and the plan puts it back.
    if let Some(b) = fake.state().bindings.get_mut("public-ingress") {
        b.mode = api::Mode::DryRun as i32;
        b.notify = vec!["slack".into()];
    }
    let (drifted, _) = read(&svc, &updated).await;
    assert_eq!((drifted.get_attr("mode"), drifted.get_attr("notify")), (Some(&s("dry_run")), Some(&set(&["slack"]))));
    let (replanned, _) = plan(&svc, &drifted, &cfg2).await;
    assert_eq!((replanned.get_attr("mode"), replanned.get_attr("notify")), (Some(&s("auto")), Some(&Value::Null)));
    let fixed = apply(&svc, &drifted, &replanned).await.0;
    let stored = fake.state().bindings.get("public-ingress").cloned().expect("stored");
    assert_eq!((stored.mode, stored.notify.len()), (api::Mode::Auto as i32, 0));

    // Disappears: deleted outside Terraform -> the read drops it, and a plan creates it again.
    fake.state().bindings.clear();
    assert_eq!(read(&svc, &fixed).await.0, Value::Null);
    let recreated = converge(&svc, &Value::Null, &cfg2).await;
    assert_eq!(recreated.get_attr("revision"), Some(&Value::from(1)));

    // Import, then read: the same state as managed, so import-verify plans nothing.
    let imported = svc
        .import_resource_state(Request::new(pb::import_resource_state::Request {
            type_name: BINDING.into(),
            id: "public-ingress".into(),
            client_capabilities: None,
            identity: None,
        }))
        .await
        .expect("import")
        .into_inner();
    let skeleton = undv(&svc, BINDING, imported.imported_resources.first().and_then(|r| r.state.clone()));
    let (after_import, _) = read(&svc, &skeleton).await;
    assert_eq!(plan(&svc, &after_import, &cfg2).await.0, after_import);
    let missing = svc
        .import_resource_state(Request::new(pb::import_resource_state::Request {
            type_name: BINDING.into(),
            id: "nope".into(),
            client_capabilities: None,
            identity: None,
        }))
        .await
        .expect("import")
        .into_inner();
    assert!(Diags(missing.diagnostics).text().contains("has no binding named \"nope\""));

    // Destroy, twice: already gone is fine.
    let (gone, d) = apply(&svc, &recreated, &Value::Null).await;
    assert!(d.0.is_empty() && gone.is_null(), "{}", d.text());
    assert!(fake.state().bindings.is_empty());
    assert!(apply(&svc, &recreated, &Value::Null).await.1.0.is_empty());
}

#[tokio::test]
async fn validation_names_each_attribute() {
    let svc = provider("http://127.0.0.1:9", TOKEN);
    let scope = Value::Object(BTreeMap::from([
        ("accounts".to_string(), set(&["3333"])),
        ("organizational_units".to_string(), set(&["Prod"])),
        ("tags".to_string(), Value::Null),
    ]));
    let bad = config(
        &svc,
        &[
            ("name", s("has space")),
            ("controls", set(&["EC2"])),
            ("playbook", s("p")),
            ("mode", s("sometimes")),
            ("scope", scope),
        ],
    );
    let errors = validate(&svc, &bad).await.errors();
    let expected = [
        ("Invalid binding name", vec!["name"]),
        ("Invalid control id", vec!["controls"]),
        ("Invalid mode", vec!["mode"]),
        ("Invalid account id", vec!["scope", "accounts"]),
        ("Invalid OU path", vec!["scope", "organizational_units"]),
    ];
    let expected: Vec<(String, Vec<String>)> =
        expected.iter().map(|(s, p)| ((*s).to_string(), p.iter().map(|x| (*x).to_string()).collect())).collect();
    assert_eq!(errors, expected);
    let nothing = config(&svc, &[("name", s("x")), ("playbook", s("p"))]);
    assert_eq!(
        validate(&svc, &nothing).await.errors(),
        [("Binding matches nothing".to_string(), vec!["controls".to_string()])]
    );
}

#[tokio::test]
async fn the_catalogue_rejects_a_bad_binding_at_plan_time() {
    let fake = Fake::default();
    let svc = provider(&serve(fake.clone()).await, TOKEN);
    let cfg =
        config(&svc, &[("name", s("x")), ("controls", set(&["EC2.13", "S3.1"])), ("playbook", s("revoke-everything"))]);
    let (_, d) = plan(&svc, &Value::Null, &cfg).await;
    let errors = d.errors();
    assert_eq!(errors.len(), 2, "{}", d.text());
    assert!(errors.contains(&("Invalid remediation binding".into(), vec!["playbook".into()])), "{errors:?}");
    assert!(errors.contains(&("Invalid remediation binding".into(), vec!["controls".into()])), "{errors:?}");
    assert!(d.text().contains("no playbook named \"revoke-everything\""));
    assert!(fake.state().bindings.is_empty());
}

#[tokio::test]
async fn a_refused_token_and_a_down_orchestrator_say_what_to_do() {
    let fake = Fake::default();
    let url = serve(fake.clone()).await;
    let cfg_pairs = [("name", s("x")), ("controls", set(&["EC2.13"])), ("playbook", s("revoke-public-ingress"))];

    let wrong = provider(&url, "guess");
    let cfg = config(&wrong, &cfg_pairs);
    let (_, d) = plan(&wrong, &Value::Null, &cfg).await;
    assert_eq!(d.errors().len(), 1, "a refused token fails the plan: {}", d.text());
    assert!(d.text().contains("did not accept the token"), "{}", d.text());
    let planned = plan(&provider(&url, TOKEN), &Value::Null, &cfg).await.0;
    let (_, d) = apply(&wrong, &Value::Null, &planned).await;
    assert!(d.text().contains("did not accept the token") && d.text().contains("ORGSEC_TOKEN"), "{}", d.text());

    // Nothing listens on port 9 (discard) on loopback here.
    let down = provider("http://127.0.0.1:9", TOKEN);
    let (planned, d) = plan(&down, &Value::Null, &cfg).await;
    assert!(d.errors().is_empty(), "unreachable at plan time is a warning: {}", d.text());
    assert!(d.text().contains("Remediation binding not checked"), "{}", d.text());
    let (_, d) = apply(&down, &Value::Null, &planned).await;
    assert!(d.text().contains("cannot reach the orchestrator at http://127.0.0.1:9"), "{}", d.text());
    assert!(fake.state().bindings.is_empty());
}

#[tokio::test]
async fn posture_reads_a_score_and_its_priorities() {
    let svc = provider(&serve(Fake::default()).await, TOKEN);
    let (org, d) = read_posture(&svc, &[]).await;
    assert!(d.0.is_empty(), "{}", d.text());
    assert_eq!(org.get_attr("score"), Some(&Value::from(tfvalue::Number::from_f64(72.46).expect("finite"))));
    assert_eq!(org.get_attr("failing_findings"), Some(&Value::from(14)));
    assert_eq!(org.get_attr("computed_at"), Some(&s("2026-11-22T00:00:00Z")));
    assert_eq!(org.get_attr("priorities").and_then(Value::as_elements).map(<[Value]>::len), Some(3));

    let (top1, _) =
        read_posture(&svc, &[("scope", s("account")), ("id", s("333333333333")), ("top", Value::from(1))]).await;
    let first = top1.get_attr("priorities").and_then(Value::as_elements).and_then(|p| p.first()).cloned();
    assert_eq!(first.as_ref().and_then(|p| p.get_attr("control_id")), Some(&s("EC2.13")));
    assert_eq!(top1.get_attr("priorities").and_then(Value::as_elements).map(<[Value]>::len), Some(1));

    let (_, d) = read_posture(&svc, &[("scope", s("account")), ("id", s("999999999999"))]).await;
    assert_eq!(d.errors(), [("No score".to_string(), vec!["id".to_string()])]);
}
