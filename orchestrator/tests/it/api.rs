use std::collections::HashMap;

use orgsec::api::Api;
use orgsec::auth::{Tokens, hash_token};
use orgsec_proto::orgsec::v1 as pb;
use pb::binding_service_client::BindingServiceClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;
use tonic::{Code, Request};

use crate::support::{TestStore, stores};

const ADMIN: &str = "admin-secret";
const WEB: &str = "web-secret";
const AUDIT: &str = "audit-secret";

/// An API server on a free loopback port; stops when dropped.
struct Server {
    addr: std::net::SocketAddr,
    channel: Channel,
    _stop: tokio::sync::oneshot::Sender<()>,
    _store: TestStore,
}

fn tokens() -> Tokens {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tokens.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[token]]
name = "platform"
role = "admin"
sha256 = "{}"

[[token]]
name = "web"
role = "app-team"
sha256 = "{}"
accounts = ["333333333333"]
organizational_units = ["Root/Prod/Web"]

[[token]]
name = "audit"
role = "auditor"
sha256 = "{}"
"#,
            hash_token(ADMIN),
            hash_token(WEB),
            hash_token(AUDIT)
        ),
    )
    .expect("write tokens");
    Tokens::load(&path).expect("tokens")
}

async fn serve(store: TestStore) -> Server {
    serve_with(store, orgsec::posture::SharedPosture::default()).await
}

async fn serve_with(store: TestStore, posture: orgsec::posture::SharedPosture) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let api = Api::new(store.store.clone(), tokens()).with_posture(posture);
    tokio::spawn(async move {
        api.serve(listener, async {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    });
    let channel = Channel::from_shared(format!("http://{addr}")).expect("url").connect_lazy();
    Server { addr, channel, _stop: stop, _store: store }
}

fn req<T>(msg: T, token: Option<&str>) -> Request<T> {
    let mut r = Request::new(msg);
    if let Some(t) = token {
        r.metadata_mut().insert("authorization", format!("Bearer {t}").parse().expect("header"));
    }
    r
}

fn binding(name: &str, accounts: &[&str]) -> pb::Binding {
    pb::Binding {
        name: name.into(),
        controls: vec!["EC2.13".into()],
        playbook: "revoke-public-ingress".into(),
        mode: pb::Mode::Auto as i32,
        scope: Some(pb::Scope { accounts: accounts.iter().map(|a| a.to_string()).collect(), ..Default::default() }),
        ..Default::default()
    }
}

impl Server {
    fn bindings(&self) -> BindingServiceClient<Channel> {
        BindingServiceClient::new(self.channel.clone())
    }

    async fn create(&self, b: pb::Binding, token: &str) -> Result<pb::Binding, tonic::Status> {
        self.bindings()
            .create_binding(req(pb::CreateBindingRequest { binding: Some(b) }, Some(token)))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn update(&self, b: pb::Binding, allow_missing: bool, token: &str) -> Result<pb::Binding, tonic::Status> {
        self.bindings()
            .update_binding(req(pb::UpdateBindingRequest { binding: Some(b), allow_missing }, Some(token)))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn get(&self, name: &str, token: &str) -> Result<pb::Binding, tonic::Status> {
        self.bindings()
            .get_binding(req(pb::GetBindingRequest { name: name.into() }, Some(token)))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn delete(&self, name: &str, allow_missing: bool, token: &str) -> Result<(), tonic::Status> {
        self.bindings()
            .delete_binding(req(pb::DeleteBindingRequest { name: name.into(), allow_missing }, Some(token)))
            .await
            .map(|_| ())
    }

    async fn validate(&self, b: pb::Binding, token: &str) -> Result<Vec<(String, String)>, tonic::Status> {
        let r = self
            .bindings()
            .validate_binding(req(pb::ValidateBindingRequest { binding: Some(b) }, Some(token)))
            .await?
            .into_inner();
        Ok(r.violations.into_iter().map(|v| (v.field, v.description)).collect())
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> (Code, String) {
    let s = r.expect_err("an error");
    (s.code(), s.message().to_string())
}

#[tokio::test]
async fn bindings_have_the_semantics_the_provider_relies_on() {
    for ts in stores().await {
        let label = ts.label;
        let s = serve(ts).await;

        let created = s.create(binding("ingress", &["333333333333"]), ADMIN).await.expect(label);
        assert_eq!((created.revision, created.created_by.as_str()), (1, "platform"), "{label}");
        assert!(created.create_time.is_some() && created.update_time.is_some());
        assert_eq!(code(s.create(binding("ingress", &[]), ADMIN).await).0, Code::AlreadyExists, "{label}");
        assert_eq!(s.get("ingress", ADMIN).await.expect(label), created);
        assert_eq!(code(s.get("nope", ADMIN).await).0, Code::NotFound);
        assert_eq!(code(s.update(binding("nope", &[]), false, ADMIN).await).0, Code::NotFound);
        assert_eq!(s.update(binding("made", &[]), true, ADMIN).await.expect(label).revision, 1);

        // Update replaces every setting; sets come back sorted; unspecified mode is the default.
        let mut changed = binding("ingress", &["444444444444", "333333333333"]);
        changed.mode = pb::Mode::Unspecified as i32;
        changed.controls = vec!["EC2.14".into(), "EC2.13".into()];
        changed.notify = vec!["slack".into()];
        changed.parameters = HashMap::from([("ports".to_string(), "22,3389".to_string())]);
        changed.scope.as_mut().expect("scope").tags = HashMap::from([("team".to_string(), "web".to_string())]);
        let updated = s.update(changed, false, ADMIN).await.expect(label);
        assert_eq!(updated.revision, 2);
        assert_eq!(updated.mode, pb::Mode::Approve as i32);
        assert_eq!(updated.controls, ["EC2.13", "EC2.14"]);
        assert_eq!(
            updated.scope.as_ref().map(|s| s.accounts.clone()),
            Some(vec!["333333333333".into(), "444444444444".into()])
        );
        assert_eq!(updated.parameters.get("ports").map(String::as_str), Some("22,3389"));
        assert_eq!((updated.created_by.as_str(), updated.create_time), ("platform", created.create_time));

        // Pages in name order.
        for n in ["c", "b", "a"] {
            s.create(binding(n, &[]), ADMIN).await.expect(label);
        }
        let mut names = Vec::new();
        let mut token = String::new();
        loop {
            let page = s
                .bindings()
                .list_bindings(req(pb::ListBindingsRequest { page_size: 2, page_token: token.clone() }, Some(AUDIT)))
                .await
                .expect(label)
                .into_inner();
            assert!(page.bindings.len() <= 2);
            names.extend(page.bindings.into_iter().map(|b| b.name));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(names, ["a", "b", "c", "ingress", "made"], "{label}");

        s.delete("ingress", false, ADMIN).await.expect(label);
        assert_eq!(code(s.delete("ingress", false, ADMIN).await).0, Code::NotFound);
        s.delete("ingress", true, ADMIN).await.expect("allow_missing");
        assert_eq!(code(s.get("ingress", ADMIN).await).0, Code::NotFound);
    }
}

#[tokio::test]
async fn validation_names_every_field() {
    let s = serve(crate::support::sqlite().await).await;
    let mut bad = binding("has space", &["3333", "333333333333"]);
    bad.playbook = "revoke-everything".into();
    bad.controls = vec!["EC2.13".into(), "EC2".into()];
    bad.mode = 42;
    bad.scope.as_mut().expect("scope").organizational_units = vec!["Prod".into()];
    let v = s.validate(bad.clone(), ADMIN).await.expect("validate");
    let fields: Vec<&str> = v.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        ["mode", "name", "playbook", "controls[1]", "scope.accounts[0]", "scope.organizational_units[0]"]
    );
    assert!(v[2].1.starts_with("no playbook named \"revoke-everything\"; known: "), "{}", v[2].1);

    let mut params = binding("p", &[]);
    params.playbook = "set-password-policy".into();
    params.controls = vec!["IAM.7".into(), "EC2.13".into()];
    params.parameters = HashMap::from([
        ("minimum_password_length".to_string(), "8".to_string()),
        ("colour".to_string(), "blue".to_string()),
        ("require_symbols".to_string(), "maybe".to_string()),
    ]);
    let v = s.validate(params, ADMIN).await.expect("validate");
    let fields: Vec<&str> = v.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["controls[1]", "parameters.colour", "parameters.require_symbols"]);
    assert!(v[0].1.contains("set-password-policy does not fix EC2.13"), "{}", v[0].1);

    assert_eq!(s.validate(binding("ok", &[]), ADMIN).await.expect("validate"), []);

    // Creating the invalid binding fails with every problem in the message, and stores nothing.
    let (c, message) = code(s.create(bad, ADMIN).await);
    assert_eq!(c, Code::InvalidArgument);
    assert!(message.contains("playbook: no playbook named") && message.contains("scope.accounts[0]"), "{message}");
    assert_eq!(code(s.get("has space", ADMIN).await).0, Code::NotFound);
}

#[tokio::test]
async fn tokens_roles_and_scopes_are_enforced() {
    let s = serve(crate::support::sqlite().await).await;
    let no_token = s.bindings().list_bindings(req(pb::ListBindingsRequest::default(), None)).await;
    let (c, m) = code(no_token);
    assert_eq!(c, Code::Unauthenticated);
    assert!(m.starts_with("no token"), "{m}");
    assert_eq!(code(s.get("x", "guess").await).0, Code::Unauthenticated);
    let playbooks = pb::playbook_service_client::PlaybookServiceClient::new(s.channel.clone())
        .list_playbooks(req(pb::ListPlaybooksRequest {}, None))
        .await;
    assert_eq!(code(playbooks).0, Code::Unauthenticated);

    // The auditor reads but writes nothing, not even a validation.
    s.create(binding("central", &[]), ADMIN).await.expect("admin binds everywhere");
    assert_eq!(s.get("central", AUDIT).await.expect("auditor reads").name, "central");
    let (c, m) = code(s.create(binding("a", &["333333333333"]), AUDIT).await);
    assert_eq!(c, Code::PermissionDenied);
    assert!(m.contains("auditor token, which is read-only"), "{m}");
    assert_eq!(code(s.validate(binding("a", &["333333333333"]), AUDIT).await).0, Code::PermissionDenied);
    assert_eq!(code(s.delete("central", true, AUDIT).await).0, Code::PermissionDenied);

    // The app team binds within its accounts and OUs, and nowhere else.
    let own = s.create(binding("web-ingress", &["333333333333"]), WEB).await.expect("within its scope");
    assert_eq!(own.created_by, "web");
    let mut below = binding("web-ou", &[]);
    below.scope = Some(pb::Scope { organizational_units: vec!["Root/Prod/Web/Blue".into()], ..Default::default() });
    s.create(below, WEB).await.expect("below its OU");
    let (c, m) = code(s.create(binding("wide", &["333333333333", "444444444444"]), WEB).await);
    assert_eq!(c, Code::PermissionDenied);
    assert!(
        m.contains("may only bind within accounts [333333333333]")
            && m.contains("accounts [333333333333, 444444444444]"),
        "{m}"
    );
    let (c, m) = code(s.create(binding("everywhere", &[]), WEB).await);
    assert_eq!(c, Code::PermissionDenied);
    assert!(m.contains("every account in the organization"), "{m}");
    assert_eq!(code(s.validate(binding("wide", &["444444444444"]), WEB).await).0, Code::PermissionDenied);
    assert_eq!(s.validate(binding("fine", &["333333333333"]), WEB).await.expect("validate"), []);

    // Nor may it take over or delete a binding outside its scope, or move its own out.
    assert_eq!(code(s.update(binding("central", &["333333333333"]), false, WEB).await).0, Code::PermissionDenied);
    assert_eq!(code(s.delete("central", false, WEB).await).0, Code::PermissionDenied);
    assert_eq!(code(s.update(binding("web-ingress", &["444444444444"]), false, WEB).await).0, Code::PermissionDenied);
    let mut tweaked = binding("web-ingress", &["333333333333"]);
    tweaked.mode = pb::Mode::DryRun as i32;
    assert_eq!(s.update(tweaked, false, WEB).await.expect("its own").revision, 2);
    s.delete("web-ingress", false, WEB).await.expect("its own");
    assert_eq!(s.get("central", ADMIN).await.expect("untouched").revision, 1);
}

#[tokio::test]
async fn playbooks_are_listed_and_posture_is_not_made_up() {
    let s = serve(crate::support::sqlite().await).await;
    let list = pb::playbook_service_client::PlaybookServiceClient::new(s.channel.clone())
        .list_playbooks(req(pb::ListPlaybooksRequest {}, Some(AUDIT)))
        .await
        .expect("playbooks")
        .into_inner()
        .playbooks;
    let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "block-public-bucket",
            "deactivate-access-key",
            "enable-ebs-default-encryption",
            "enable-guardduty",
            "enable-s3-account-bpa",
            "isolate-instance",
            "revoke-public-ingress",
            "set-password-policy",
        ]
    );
    let pw = list.iter().find(|p| p.name == "set-password-policy").expect("set-password-policy");
    assert!(
        pw.controls.contains(&"IAM.15".to_string())
            && pw.permissions.contains(&"iam:UpdateAccountPasswordPolicy".to_string())
    );
    let len = pw.parameters.iter().find(|p| p.name == "minimum_password_length").expect("parameter");
    assert_eq!((len.required, len.default_value.as_str()), (false, "14"));

    // Before any scoring, posture says so instead of making a score up.
    let posture = pb::posture_service_client::PostureServiceClient::new(s.channel.clone())
        .get_score(req(pb::GetScoreRequest::default(), Some(ADMIN)))
        .await;
    assert_eq!(code(posture).0, Code::NotFound);
}

#[tokio::test]
async fn reflection_lists_the_services() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let s = serve(crate::support::sqlite().await).await;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(s.channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let first = responses.message().await.expect("stream").expect("a response");
    let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else { panic!("{first:?}") };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"orgsec.v1.BindingService".to_string()), "{names:?}");
    assert!(names.contains(&"orgsec.v1.PlaybookService".to_string()), "{names:?}");
}

#[tokio::test]
async fn healthz_answers_over_http1() {
    let s = serve(crate::support::sqlite().await).await;
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.expect("connect");
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: orgsec\r\nConnection: close\r\n\r\n").await.expect("write");
    let mut response = String::new();
    conn.read_to_string(&mut response).await.expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok\n"), "{response}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posture_answers_from_the_latest_scoring() {
    use pb::posture_service_client::PostureServiceClient;
    let ts = crate::support::sqlite().await;
    let store = ts.store.clone();
    let posture = orgsec::posture::SharedPosture::default();
    let server = serve_with(ts, posture.clone()).await;
    let mut client = PostureServiceClient::new(server.channel.clone());
    let org = || pb::GetScoreRequest { scope: pb::ScopeKind::Org as i32, id: String::new() };

    let e = client.get_score(req(org(), None)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = client.get_score(req(org(), Some(ADMIN))).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "nothing scored yet: {e:?}");
    assert!(e.message().contains("orgsec sync"), "{e:?}");

    let em = orgsec_emulator::Emulator::builder().scenario("demo").start().await.expect("emulator");
    let accounts = crate::sync::enroll_all(&em, &store).await;
    crate::sync::sync(&em, &store, &accounts).await;
    let board = orgsec::posture::scoreboard(&store, orgsec::score::Weights::default()).await.expect("board");
    let expected = board.score(&orgsec::score::ScopeRef::org()).score;
    orgsec::posture::publish(&posture, board, time::OffsetDateTime::now_utc());

    for token in [ADMIN, WEB, AUDIT] {
        let s = client.get_score(req(org(), Some(token))).await.expect("org score").into_inner();
        assert_eq!(s.score, expected);
        assert!(s.computed_at.is_some() && !s.contributions.is_empty() && s.failing_findings > 0, "{s:?}");
    }
    let account = |id: &str| pb::GetScoreRequest { scope: pb::ScopeKind::Account as i32, id: id.into() };
    let a = client.get_score(req(account("333333333333"), Some(ADMIN))).await.expect("account").into_inner();
    assert!((0.0..=100.0).contains(&a.score) && a.id == "333333333333");
    let e = client.get_score(req(account("999999999999"), Some(ADMIN))).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = client.get_score(req(account(""), Some(ADMIN))).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let ou = pb::GetScoreRequest { scope: pb::ScopeKind::Ou as i32, id: "Root/Prod".into() };
    assert!(client.get_score(req(ou, Some(ADMIN))).await.is_ok());

    let list = client
        .list_scores(req(pb::ListScoresRequest { scope: pb::ScopeKind::Account as i32 }, Some(AUDIT)))
        .await
        .expect("list")
        .into_inner()
        .scores;
    assert!(list.len() >= 5);
    assert!(list.windows(2).all(|w| w[0].score <= w[1].score), "lowest first");

    let top = client
        .list_priorities(req(
            pb::ListPrioritiesRequest { scope: pb::ScopeKind::Org as i32, id: String::new(), limit: 3 },
            Some(WEB),
        ))
        .await
        .expect("priorities")
        .into_inner()
        .priorities;
    assert_eq!(top.len(), 3);
    assert!(top[0].improvement_potential >= top[1].improvement_potential);
    assert!(top.iter().all(|p| !p.title.is_empty() && !p.severity.is_empty()), "{top:?}");
    em.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posture_follows_scores_a_cli_run_stored_beside_the_service() {
    use pb::posture_service_client::PostureServiceClient;
    let ts = crate::support::sqlite().await;
    let store = ts.store.clone();
    // The service scored an empty store when it started, a minute ago.
    let empty = crate::support::sqlite().await;
    let stale = orgsec::posture::scoreboard(&empty.store, orgsec::score::Weights::default()).await.expect("board");
    let posture = orgsec::posture::SharedPosture::default();
    let started = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    orgsec::posture::publish(&posture, stale, started);
    let server = serve_with(ts, posture.clone()).await;
    let mut client = PostureServiceClient::new(server.channel.clone());
    let org = || pb::GetScoreRequest { scope: pb::ScopeKind::Org as i32, id: String::new() };
    let before = client.get_score(req(org(), Some(AUDIT))).await.expect("org score").into_inner();
    assert_eq!(before.failing_findings, 0, "nothing synced yet: {before:?}");

    // Then `orgsec sync` ran beside it: collected, scored and took a snapshot.
    let em = orgsec_emulator::Emulator::builder().scenario("demo").start().await.expect("emulator");
    let accounts = crate::sync::enroll_all(&em, &store).await;
    crate::sync::sync(&em, &store, &accounts).await;
    let board = orgsec::posture::scoreboard(&store, orgsec::score::Weights::default()).await.expect("board");
    let expected = board.score(&orgsec::score::ScopeRef::org()).score;
    let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    orgsec::posture::snapshot(&store, &board, now_ms).await.expect("snapshot");

    let after = client.get_score(req(org(), Some(AUDIT))).await.expect("org score").into_inner();
    assert_eq!(after.score, expected, "the store's newer scores, not the published ones");
    assert!(after.failing_findings > 0 && expected < 100.0, "{after:?}");
    let published = posture.read().computed_at.expect("published");
    assert!(published > started, "published again: {published}");
    em.shutdown().await;
}

#[tokio::test]
async fn the_api_speaks_tls_when_given_a_certificate() {
    use pb::playbook_service_client::PlaybookServiceClient;
    use tonic::transport::{Certificate, ClientTlsConfig};
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());

    let ts = crate::support::sqlite().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let api = Api::new(ts.store.clone(), tokens());
    let (c, k) = (cert_pem.clone(), key_pem.clone());
    tokio::spawn(async move {
        api.serve_tls(listener, Some((c.as_bytes(), k.as_bytes())), async {
            let _ = stopped.await;
        })
        .await
        .expect("serve over TLS");
    });

    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&cert_pem)).domain_name("localhost");
    let channel = Channel::from_shared(format!("https://localhost:{port}"))
        .expect("url")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("a TLS connection");
    let list = PlaybookServiceClient::new(channel)
        .list_playbooks(req(pb::ListPlaybooksRequest::default(), Some(ADMIN)))
        .await
        .expect("playbooks over TLS");
    assert_eq!(list.into_inner().playbooks.len(), 8);

    let plain = Channel::from_shared(format!("http://127.0.0.1:{port}")).expect("url").connect_lazy();
    let refused =
        PlaybookServiceClient::new(plain).list_playbooks(req(pb::ListPlaybooksRequest::default(), Some(ADMIN))).await;
    assert!(refused.is_err(), "plain HTTP is not served when TLS is on");
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_and_findings_are_read_within_the_tokens_reach() {
    use pb::account_service_client::AccountServiceClient;
    use pb::finding_service_client::FindingServiceClient;
    let ts = crate::support::sqlite().await;
    let store = ts.store.clone();
    let em = orgsec_emulator::Emulator::builder().scenario("demo").start().await.expect("emulator");
    let accounts = crate::sync::enroll_all(&em, &store).await;
    crate::sync::sync(&em, &store, &accounts).await;
    let server = serve(ts).await;
    let mut acc = AccountServiceClient::new(server.channel.clone());
    let mut fin = FindingServiceClient::new(server.channel.clone());

    let e = acc.list_accounts(req(pb::ListAccountsRequest::default(), None)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let all = acc.list_accounts(req(pb::ListAccountsRequest::default(), Some(AUDIT))).await.expect("list").into_inner();
    assert_eq!(all.accounts.len(), 6);
    let prod = all.accounts.iter().find(|a| a.account_id == "444444444444").expect("444444444444");
    assert_eq!((prod.ou_path.as_str(), prod.state.as_str()), ("Root/Prod", "enrolled"));
    let mine = acc.list_accounts(req(pb::ListAccountsRequest::default(), Some(WEB))).await.expect("list").into_inner();
    let ids: Vec<&str> = mine.accounts.iter().map(|a| a.account_id.as_str()).collect();
    assert_eq!(ids, ["333333333333"], "the web team sees its own account only");
    let get = |id: &str| pb::GetAccountRequest { account_id: id.into() };
    assert_eq!(acc.get_account(req(get("444444444444"), Some(WEB))).await.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(acc.get_account(req(get("999999999999"), Some(ADMIN))).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(
        acc.get_account(req(get("444444444444"), Some(AUDIT))).await.expect("get").into_inner().name,
        "prod-data"
    );

    // Every finding, ten at a time: each once, and as many as the store holds.
    let total = store.findings(&orgsec::store::FindingQuery::default()).await.expect("findings").len();
    let mut seen = std::collections::BTreeSet::new();
    let mut token = String::new();
    loop {
        let page = fin
            .list_findings(req(
                pb::ListFindingsRequest { page_size: 10, page_token: token, ..Default::default() },
                Some(ADMIN),
            ))
            .await
            .expect("page")
            .into_inner();
        assert!(page.findings.len() <= 10);
        for f in &page.findings {
            assert!(seen.insert(f.uid.clone()), "{} twice", f.uid);
            assert!(f.raw.is_empty(), "raw only on request");
        }
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen.len(), total);

    let web = fin
        .list_findings(req(pb::ListFindingsRequest { include_raw: true, ..Default::default() }, Some(WEB)))
        .await
        .expect("web findings")
        .into_inner();
    assert!(!web.findings.is_empty() && web.findings.iter().all(|f| f.account_id == "333333333333"));
    assert!(web.findings.iter().all(|f| serde_json::from_str::<serde_json::Value>(&f.raw).is_ok()));
    let other = pb::ListFindingsRequest { account_ids: vec!["444444444444".into()], ..Default::default() };
    assert_eq!(fin.list_findings(req(other, Some(WEB))).await.unwrap_err().code(), Code::PermissionDenied);

    let critical = fin
        .list_findings(req(
            pb::ListFindingsRequest {
                severities: vec!["critical".into()],
                statuses: vec!["failing".into()],
                ..Default::default()
            },
            Some(ADMIN),
        ))
        .await
        .expect("filtered")
        .into_inner();
    assert!(!critical.findings.is_empty() && critical.findings.iter().all(|f| f.severity == "CRITICAL" && f.failing));
    let bad = pb::ListFindingsRequest { sources: vec!["inspector".into()], ..Default::default() };
    let e = fin.list_findings(req(bad, Some(ADMIN))).await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().contains("securityhub"), "{e:?}");
    em.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn remediations_are_listed_within_reach_and_only_admins_decide() {
    use orgsec::binding::{BindingSpec, Mode, Scope};
    use orgsec::jobs::{JobState, Worker, WorkerConfig};
    use pb::remediation_service_client::RemediationServiceClient;

    let ts = crate::support::sqlite().await;
    let store = ts.store.clone();
    let em = crate::support::emulator("demo").await;
    let accounts = crate::sync::enroll_all(&em, &store).await;
    crate::sync::sync(&em, &store, &accounts).await;
    let now = time::OffsetDateTime::now_utc();
    let approve = |name: &str, control: &str, playbook: &str, account: &str| BindingSpec {
        name: name.into(),
        controls: vec![control.into()],
        playbook: playbook.into(),
        mode: Mode::Approve,
        scope: Scope { accounts: vec![account.into()], ..Scope::default() },
        ..BindingSpec::default()
    };
    store.put_binding(&approve("ssh", "EC2.13", "revoke-public-ingress", "333333333333"), "test", now).await.unwrap();
    store
        .put_binding(&approve("passwords", "IAM.7", "set-password-policy", "444444444444"), "test", now)
        .await
        .unwrap();
    let dispatched = orgsec::dispatch::dispatch(&store, now).await.expect("dispatch");
    assert_eq!(dispatched.enqueued.len(), 2, "{dispatched:?}");
    let runner = std::sync::Arc::new(orgsec::remediate::PlaybookRunner::new(
        crate::support::admin_aws(&em, Some(crate::support::EXTERNAL_ID), &[]),
        store.clone(),
        orgsec::notify::Notifier::none(),
    ));
    let worker = Worker::new(store.clone(), runner, WorkerConfig::new("test"));
    worker.tick().await.expect("tick");
    let before = em.shared().world.read().counters.by_operation.clone();

    let server = serve(ts).await;
    let mut rem = RemediationServiceClient::new(server.channel.clone());
    let list = |states: &[&str]| pb::ListRemediationsRequest { states: states.iter().map(|s| s.to_string()).collect() };
    assert_eq!(rem.list_remediations(req(list(&[]), None)).await.unwrap_err().code(), Code::Unauthenticated);
    let all = rem.list_remediations(req(list(&[]), Some(AUDIT))).await.expect("list").into_inner().remediations;
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|r| r.state == "PENDING_APPROVAL" && r.plan.contains("summary")), "{all:#?}");
    let mine = rem.list_remediations(req(list(&[]), Some(WEB))).await.expect("list").into_inner().remediations;
    assert_eq!(mine.len(), 1, "the web team sees its own account's job only");
    assert_eq!(mine[0].account_id, "333333333333");
    let ssh = mine[0].id.clone();
    let passwords = all.iter().find(|r| r.account_id == "444444444444").unwrap().id.clone();

    let decide = |id: &str| pb::ApproveRemediationRequest { id: id.into() };
    for token in [WEB, AUDIT] {
        let e = rem.approve_remediation(req(decide(&ssh), Some(token))).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    }
    assert_eq!(em.shared().world.read().counters.by_operation, before, "nothing changes while jobs wait");

    let approved = rem.approve_remediation(req(decide(&ssh), Some(ADMIN))).await.expect("approve").into_inner();
    assert_eq!(approved.state, "QUEUED");
    let e = rem.approve_remediation(req(decide(&ssh), Some(ADMIN))).await.unwrap_err();
    assert!(e.code() == Code::FailedPrecondition && e.message().contains("QUEUED"), "{e:?}");
    let e = rem.approve_remediation(req(decide("no-such-job"), Some(ADMIN))).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let reject = pb::RejectRemediationRequest { id: passwords.clone(), reason: "handled by the IAM team".into() };
    let rejected = rem.reject_remediation(req(reject, Some(ADMIN))).await.expect("reject").into_inner();
    assert_eq!(rejected.state, "REJECTED");
    let only = rem.list_remediations(req(list(&["rejected"]), Some(ADMIN))).await.expect("list").into_inner();
    assert_eq!(only.remediations.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [passwords.as_str()]);
    let e = rem.list_remediations(req(list(&["DONE"]), Some(ADMIN))).await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().contains("PENDING_APPROVAL"), "{e:?}");

    // The approved job runs; the rejected one changes nothing.
    worker.tick().await.expect("tick");
    let ssh_job = store.get_job(&ssh).await.unwrap().unwrap();
    assert_eq!(ssh_job.state, JobState::Succeeded, "{ssh_job:#?}");
    let counters = em.shared().world.read().counters.by_operation.clone();
    assert!(counters.get("ec2:RevokeSecurityGroupIngress") > before.get("ec2:RevokeSecurityGroupIngress"));
    assert_eq!(
        counters.get("iam:UpdateAccountPasswordPolicy"),
        before.get("iam:UpdateAccountPasswordPolicy"),
        "the rejected password policy was not set"
    );
    assert_eq!(store.get_job(&passwords).await.unwrap().unwrap().state, JobState::Rejected);
    em.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn evidence_streams_a_bundle_that_verifies_to_those_allowed() {
    let em = crate::support::emulator("demo").await;
    let ts = crate::support::sqlite().await;
    let accounts = crate::sync::enroll_all(&em, &ts.store).await;
    crate::sync::sync(&em, &ts.store, &accounts).await;
    let s = serve(ts).await;
    let mut ev = pb::evidence_service_client::EvidenceServiceClient::new(s.channel.clone());
    let ask = |framework: &str, account: &str| pb::ExportEvidenceRequest {
        framework: framework.into(),
        account_id: account.into(),
        ..Default::default()
    };
    async fn collect(
        ev: &mut pb::evidence_service_client::EvidenceServiceClient<Channel>,
        r: Request<pb::ExportEvidenceRequest>,
    ) -> Result<Vec<u8>, tonic::Status> {
        let mut stream = ev.export_evidence(r).await?.into_inner();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.message().await? {
            bytes.extend(chunk.data);
        }
        Ok(bytes)
    }

    // An auditor exports the organization's bundle; it verifies offline.
    let bytes = collect(&mut ev, req(ask("cis-1.2", ""), Some(AUDIT))).await.expect("auditor exports");
    let verified = orgsec::evidence::verify(&bytes).expect("verifies");
    assert_eq!((verified.manifest.framework.as_str(), verified.manifest.scope.kind.as_str()), ("cis-1.2", "org"));
    assert!(verified.manifest.counts["findings"] > 0);
    // The standard's own name works too.
    let by_path = collect(&mut ev, req(ask("cis-aws-foundations-benchmark/v/1.2.0", ""), Some(ADMIN))).await;
    assert_eq!(
        orgsec::evidence::verify(&by_path.expect("admin exports")).expect("verifies").manifest.framework,
        "cis-1.2"
    );
    // An app team exports its own account, not the organization.
    let mine = collect(&mut ev, req(ask("fsbp", "333333333333"), Some(WEB))).await.expect("own account");
    assert_eq!(orgsec::evidence::verify(&mine).expect("verifies").manifest.scope.accounts, ["333333333333"]);
    let e = collect(&mut ev, req(ask("fsbp", ""), Some(WEB))).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = collect(&mut ev, req(ask("soc2", ""), Some(AUDIT))).await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().contains("cis-1.2"), "{e:?}");
    let e = collect(&mut ev, req(ask("cis-1.2", ""), None)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    // And the auditor changes nothing.
    let e = s.create(binding("nope", &["333333333333"]), AUDIT).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}
