//! The HTTP front: one port for every service. Each request goes through the same pipeline:
//! read the body (bounded) -> admin endpoints -> credential scope -> service -> caller ->
//! operation -> authorization -> faults and rate limits -> due evaluations -> handler -> response.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::Shared;
use crate::error::AwsError;
use crate::identity;
use crate::services::{self, Call};
use crate::wire::{self, Protocol, Request, Response, Service};

/// Accepts connections until `stop` fires.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: tokio::sync::oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(respond(&shared, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        }
    }
}

async fn respond(shared: &Shared, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let seq = shared.request_seq.fetch_add(1, Ordering::Relaxed);
    let request_id = format!("{:08x}-0000-4000-8000-{:012x}", (seq >> 16) as u32, seq);
    let (parts, body) = req.into_parts();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let host = parts
        .headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.host())
        .unwrap_or_default()
        .to_string();
    let query: Vec<(String, String)> =
        parts.uri.query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let mut request = Request {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query,
        headers,
        body: Bytes::new(),
        host,
    };

    let declared =
        parts.headers.get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let too_large = AwsError::new(
        413,
        "RequestEntityTooLarge",
        format!("Request body exceeds the {} byte limit", shared.max_body_bytes),
    );
    if declared.is_some_and(|n| n > shared.max_body_bytes) {
        return finish(wire::render_error(wire::guess_protocol(&request), &too_large, &request_id), &request_id);
    }
    match Limited::new(body, shared.max_body_bytes).collect().await {
        Ok(collected) => request.body = collected.to_bytes(),
        Err(_) => {
            let err = if declared.is_some() {
                too_large
            } else {
                AwsError::new(400, "IncompleteBody", "The request body could not be read")
            };
            return finish(wire::render_error(wire::guess_protocol(&request), &err, &request_id), &request_id);
        }
    }

    if request.path.starts_with("/_emulator") {
        return finish(crate::admin::handle(shared, &request), &request_id);
    }
    let (protocol, result) = dispatch(shared, &request, &request_id).await;
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            if e.status >= 500 {
                tracing::debug!(code = %e.code, "injected or internal error");
            }
            wire::render_error(protocol, &e, &request_id)
        }
    };
    finish(response, &request_id)
}

async fn dispatch(shared: &Shared, req: &Request, request_id: &str) -> (Protocol, Result<Response, AwsError>) {
    let Some(scope) = wire::credential_scope(req) else {
        let protocol = wire::guess_protocol(req);
        let code = match protocol {
            Protocol::AwsJson11 | Protocol::RestJson => "MissingAuthenticationTokenException",
            Protocol::RestXml | Protocol::RestXmlUnwrapped => "AccessDenied",
            _ => "MissingAuthenticationToken",
        };
        return (protocol, Err(AwsError::new(403, code, "Request is missing Authentication Token")));
    };
    let Some(service) = wire::service_for(&scope, req) else {
        let protocol = wire::guess_protocol(req);
        return (
            protocol,
            Err(AwsError::new(
                400,
                "UnknownService",
                format!("The emulator does not serve the '{}' service", scope.service),
            )),
        );
    };
    let protocol = service.protocol();
    (protocol, run(shared, service, &scope, req, request_id).await)
}

async fn run(
    shared: &Shared,
    service: Service,
    scope: &wire::CredentialScope,
    req: &Request,
    request_id: &str,
) -> Result<Response, AwsError> {
    let caller = {
        let world = shared.world.read();
        identity::authenticate(&world, &scope.access_key, service)?
    };
    let Some(op) = services::operation(service, req) else {
        return Err(unknown_operation(service, req));
    };
    if let Some(action) = services::iam_action(service, op) {
        let world = shared.world.read();
        identity::authorize(&world, &caller, service, &action)?;
    }
    let verdict = {
        let now = shared.world.read().now();
        shared.faults.lock().check(&caller.account, &scope.region, service, op, now)
    };
    if verdict.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(verdict.latency_ms)).await;
    }
    if let Some(e) = verdict.error {
        return Err(e);
    }
    if shared.world.read().has_due() {
        shared.world.write().run_due();
    }
    let call = Call { shared, caller: &caller, region: &scope.region, req, request_id };
    let result = services::handle(service, op, &call);
    tracing::debug!(service = service.name(), op, account = %caller.account, ok = result.is_ok(), "call");
    result
}

fn unknown_operation(service: Service, req: &Request) -> AwsError {
    match service.protocol() {
        Protocol::AwsJson11 => AwsError::new(
            400,
            "UnknownOperationException",
            format!("Unknown operation {}", req.header("x-amz-target").unwrap_or("(no X-Amz-Target)")),
        ),
        Protocol::AwsQuery | Protocol::Ec2Query => AwsError::new(
            400,
            "InvalidAction",
            format!("The action {} is not valid for this web service.", services::form_action(req).unwrap_or_default()),
        ),
        Protocol::RestJson => AwsError::new(
            404,
            "UnknownOperationException",
            format!("No {} operation matches {} {}", service.name(), req.method, req.path),
        ),
        Protocol::RestXml | Protocol::RestXmlUnwrapped => AwsError::new(
            405,
            "MethodNotAllowed",
            format!("The specified method is not allowed against this resource: {} {}", req.method, req.path),
        ),
    }
}

fn finish(r: Response, request_id: &str) -> hyper::Response<Full<Bytes>> {
    let mut b = hyper::Response::builder()
        .status(r.status)
        .header("content-type", r.content_type)
        .header("x-amzn-requestid", request_id)
        .header("x-amz-request-id", request_id);
    for (k, v) in &r.headers {
        b = b.header(*k, v.as_str());
    }
    b.body(Full::new(r.body)).unwrap_or_else(|_| {
        let mut resp = hyper::Response::new(Full::new(Bytes::from_static(b"internal emulator error")));
        *resp.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        resp
    })
}
