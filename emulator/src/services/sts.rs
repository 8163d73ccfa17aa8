//! STS (awsQuery): GetCallerIdentity and AssumeRole. AssumeRole enforces the role's trust policy,
//! including `sts:ExternalId`, and issues `ASIA…` keys that act as the role until they expire.

use crate::error::{AwsError, AwsResult};
use crate::identity::CallerKind;
use crate::services::{Call, form_action, known};
use crate::wire::{Params, Request, Response, Xml, iso8601};
use crate::world::Session;
use crate::world::policy::{AssumingPrincipal, trust_allows};

const NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
const OPS: &[&str] = &["GetCallerIdentity", "AssumeRole"];

pub fn operation(req: &Request) -> Option<&'static str> {
    known(OPS, &form_action(req)?)
}

pub fn handle(op: &str, call: &Call<'_>) -> AwsResult<Response> {
    let p = Params::parse(&call.req.body, &call.req.query, "ValidationError", "MissingParameter");
    let mut x = Xml::new();
    x.open_ns(&format!("{op}Response"), NS);
    x.open(&format!("{op}Result"));
    match op {
        "GetCallerIdentity" => {
            let user_id = match &call.caller.kind {
                CallerKind::Admin => call.account().to_string(),
                CallerKind::Role { name, session, .. } => {
                    let w = call.read();
                    let id = w
                        .accounts
                        .get(call.account())
                        .and_then(|a| a.iam.roles.get(name))
                        .map(|r| r.id.clone())
                        .unwrap_or_default();
                    format!("{id}:{session}")
                }
            };
            x.leaf("Arn", &call.caller.arn()).leaf("UserId", &user_id).leaf("Account", call.account());
        }
        "AssumeRole" => assume_role(call, &p, &mut x)?,
        other => {
            return Err(AwsError::new(
                400,
                "InvalidAction",
                format!("The action {other} is not valid for this web service."),
            ));
        }
    }
    x.close(&format!("{op}Result"));
    x.open("ResponseMetadata").leaf("RequestId", call.request_id).close("ResponseMetadata");
    x.close(&format!("{op}Response"));
    Ok(Response::xml(x.finish()))
}

fn assume_role(call: &Call<'_>, p: &Params, x: &mut Xml) -> AwsResult<()> {
    let role_arn = p.req("RoleArn")?.to_string();
    let session = p.req("RoleSessionName")?.to_string();
    let external_id = p.get("ExternalId").map(str::to_string);
    let duration = p.i64("DurationSeconds")?;
    if session.len() < 2
        || session.len() > 64
        || !session.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c))
    {
        return Err(p.invalid(format!(
            "1 validation error detected: Value '{session}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and length 2-64"
        )));
    }
    // arn:aws:iam::<account>:role/<path/>name
    let parsed = role_arn
        .strip_prefix("arn:aws:iam::")
        .and_then(|r| r.split_once(":role/"))
        .filter(|(acct, _)| acct.len() == 12 && acct.bytes().all(|b| b.is_ascii_digit()));
    let Some((account, role_path)) = parsed else {
        return Err(p.invalid(format!("{role_arn} is invalid: RoleArn must be arn:aws:iam::<account-id>:role/<name>")));
    };
    let role_name = role_path.rsplit('/').next().unwrap_or(role_path).to_string();
    let denied = || {
        AwsError::new(
            403,
            "AccessDenied",
            format!("User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}", call.caller.arn()),
        )
    };
    let mut w = call.write();
    let Some(role) = w.accounts.get(account).and_then(|a| a.iam.roles.get(&role_name)).cloned() else {
        return Err(denied());
    };
    let chained = matches!(call.caller.kind, CallerKind::Role { .. });
    let max = if chained { 3600 } else { role.max_session_duration };
    let secs = duration.unwrap_or(w.config.default_session_secs.min(max));
    if secs < 900 || secs > max {
        return Err(p.invalid(format!(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role (900 to {max} seconds)."
        )));
    }
    let principal_arn = call.caller.principal_arn();
    let org_id =
        w.org.as_ref().filter(|_| w.accounts.get(call.account()).is_some_and(|a| a.in_org())).map(|o| o.id.clone());
    let who = AssumingPrincipal { account: call.account(), arn: &principal_arn, org_id: org_id.as_deref() };
    if let Err(why) = trust_allows(&role.trust_policy, &who, external_id.as_deref()) {
        tracing::info!(role = %role_arn, caller = %principal_arn, reason = %why, "AssumeRole denied");
        return Err(denied());
    }
    let now = w.now();
    let access_key = format!("ASIA{}", w.ids.upper(16));
    let secret = w.ids.hex(40);
    let token = format!("FwoGZXIvYXdzE{}", w.ids.hex(96));
    let expires = now + secs * 1000;
    w.sessions.insert(
        access_key.clone(),
        Session {
            access_key: access_key.clone(),
            secret: secret.clone(),
            token: token.clone(),
            account: account.to_string(),
            role_name: role_name.clone(),
            session_name: session.clone(),
            expires_ms: expires,
            source_identity: p.get("SourceIdentity").map(str::to_string),
        },
    );
    w.counters.record("sts:AssumeRole", &role_arn);
    x.open("Credentials")
        .leaf("AccessKeyId", &access_key)
        .leaf("SecretAccessKey", &secret)
        .leaf("SessionToken", &token)
        .leaf("Expiration", &iso8601(expires))
        .close("Credentials");
    x.open("AssumedRoleUser")
        .leaf("AssumedRoleId", &format!("{}:{session}", role.id))
        .leaf("Arn", &format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session}"))
        .close("AssumedRoleUser");
    x.leaf("PackedPolicySize", "0");
    if let Some(si) = p.get("SourceIdentity") {
        x.leaf("SourceIdentity", si);
    }
    Ok(())
}
