//! Who is calling: access keys `AKID<account>` sign in as an account's administrator; `ASIA…`
//! keys issued by AssumeRole act as the role until they expire. Roles are held to their
//! identity policies (see [`crate::world::policy`]).

use crate::error::AwsError;
use crate::wire::{Protocol, Service};
use crate::world::World;
use crate::world::policy::{self, Decision};

/// The authenticated principal behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account: String,
    pub kind: CallerKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerKind {
    /// The account's administrator (`AKID<account>`).
    Admin,
    /// A role session from AssumeRole.
    Role { name: String, session: String, access_key: String },
}

impl Caller {
    pub fn admin(account: &str) -> Caller {
        Caller { account: account.to_string(), kind: CallerKind::Admin }
    }

    /// The caller's ARN as GetCallerIdentity reports it.
    pub fn arn(&self) -> String {
        match &self.kind {
            CallerKind::Admin => format!("arn:aws:iam::{}:root", self.account),
            CallerKind::Role { name, session, .. } => {
                format!("arn:aws:sts::{}:assumed-role/{name}/{session}", self.account)
            }
        }
    }

    /// The ARN a trust policy names to admit this caller (a role's own ARN for its sessions).
    pub fn principal_arn(&self) -> String {
        match &self.kind {
            CallerKind::Admin => format!("arn:aws:iam::{}:root", self.account),
            CallerKind::Role { name, .. } => format!("arn:aws:iam::{}:role/{name}", self.account),
        }
    }
}

/// Resolves an access key to a caller, or the error the service returns for a bad key.
pub fn authenticate(world: &World, access_key: &str, service: Service) -> Result<Caller, AwsError> {
    if let Some(account) = access_key.strip_prefix("AKID")
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && world.accounts.contains_key(account)
    {
        return Ok(Caller::admin(account));
    }
    if let Some(session) = world.sessions.get(access_key) {
        if session.expires_ms <= world.now() {
            return Err(expired(service));
        }
        let role_exists =
            world.accounts.get(&session.account).is_some_and(|a| a.iam.roles.contains_key(&session.role_name));
        if role_exists {
            return Ok(Caller {
                account: session.account.clone(),
                kind: CallerKind::Role {
                    name: session.role_name.clone(),
                    session: session.session_name.clone(),
                    access_key: access_key.to_string(),
                },
            });
        }
    }
    Err(unknown_key(service))
}

fn unknown_key(service: Service) -> AwsError {
    let msg = "The security token included in the request is invalid.";
    match service.protocol() {
        Protocol::AwsQuery => AwsError::new(403, "InvalidClientTokenId", msg),
        Protocol::Ec2Query => {
            AwsError::new(401, "AuthFailure", "AWS was not able to validate the provided access credentials")
        }
        Protocol::RestXml | Protocol::RestXmlUnwrapped => AwsError::new(
            403,
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        ),
        Protocol::AwsJson11 | Protocol::RestJson => AwsError::new(403, "UnrecognizedClientException", msg),
    }
}

fn expired(service: Service) -> AwsError {
    let msg = "The security token included in the request is expired";
    match service.protocol() {
        Protocol::AwsQuery | Protocol::RestXml | Protocol::RestXmlUnwrapped => AwsError::new(403, "ExpiredToken", msg),
        Protocol::Ec2Query => AwsError::new(400, "RequestExpired", msg),
        Protocol::AwsJson11 | Protocol::RestJson => AwsError::new(403, "ExpiredTokenException", msg),
    }
}

/// The error a service returns when a principal is not allowed an action.
pub fn access_denied(service: Service, caller: &Caller, action: &str) -> AwsError {
    let msg = format!("User: {} is not authorized to perform: {action}", caller.arn());
    match service {
        Service::Sts | Service::Iam | Service::S3 | Service::S3Control => AwsError::new(403, "AccessDenied", msg),
        Service::Ec2 => AwsError::new(
            403,
            "UnauthorizedOperation",
            format!("You are not authorized to perform this operation. {msg}"),
        ),
        Service::Organizations | Service::Config => AwsError::new(400, "AccessDeniedException", msg),
        Service::SecurityHub | Service::GuardDuty | Service::AccessAnalyzer => {
            AwsError::new(403, "AccessDeniedException", msg)
        }
    }
}

/// Checks the caller's identity policies for `action`.
pub fn authorize(world: &World, caller: &Caller, service: Service, action: &str) -> Result<(), AwsError> {
    let CallerKind::Role { name, .. } = &caller.kind else { return Ok(()) };
    let Some(role) = world.accounts.get(&caller.account).and_then(|a| a.iam.roles.get(name)) else {
        return Err(access_denied(service, caller, action));
    };
    let managed: Vec<serde_json::Value> =
        role.attached_policies.iter().filter_map(|arn| policy::managed_policy(arn)).collect();
    let docs = role.inline_policies.values().chain(managed.iter());
    match policy::evaluate(docs, action) {
        Decision::Allow => Ok(()),
        _ => Err(access_denied(service, caller, action)),
    }
}
