//! One module per AWS service. Each exposes the same two functions:
//!
//! - `operation(req) -> Option<&'static str>`: which operation a request is (from the
//!   `X-Amz-Target` header, the `Action` form field, or the method and path), `None` when the
//!   service has no such operation;
//! - `handle(op, call) -> AwsResult<Response>`: runs it against the world.
//!
//! Authentication, authorization (`<service>:<Operation>`), rate limits and fault injection happen
//! before `handle` is called, in [`crate::server`].

pub mod accessanalyzer;
pub mod config;
pub mod ec2;
pub mod guardduty;
pub mod iam;
pub mod organizations;
pub mod s3;
pub mod s3control;
pub mod securityhub;
pub mod sts;

use parking_lot::{RwLockReadGuard, RwLockWriteGuard};

use crate::Shared;
use crate::error::AwsResult;
use crate::identity::Caller;
use crate::wire::{Request, Response, Service};
use crate::world::World;

/// Everything a handler needs for one call.
pub struct Call<'a> {
    pub shared: &'a Shared,
    pub caller: &'a Caller,
    pub region: &'a str,
    pub req: &'a Request,
    pub request_id: &'a str,
}

impl Call<'_> {
    pub fn read(&self) -> RwLockReadGuard<'_, World> {
        self.shared.world.read()
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, World> {
        self.shared.world.write()
    }

    /// The caller's account id.
    pub fn account(&self) -> &str {
        &self.caller.account
    }
}

/// Resolves the operation of a request for a service.
pub fn operation(service: Service, req: &Request) -> Option<&'static str> {
    match service {
        Service::Organizations => organizations::operation(req),
        Service::Sts => sts::operation(req),
        Service::Iam => iam::operation(req),
        Service::Ec2 => ec2::operation(req),
        Service::S3 => s3::operation(req),
        Service::S3Control => s3control::operation(req),
        Service::SecurityHub => securityhub::operation(req),
        Service::GuardDuty => guardduty::operation(req),
        Service::Config => config::operation(req),
        Service::AccessAnalyzer => accessanalyzer::operation(req),
    }
}

/// Runs an operation.
pub fn handle(service: Service, op: &str, call: &Call<'_>) -> AwsResult<Response> {
    match service {
        Service::Organizations => organizations::handle(op, call),
        Service::Sts => sts::handle(op, call),
        Service::Iam => iam::handle(op, call),
        Service::Ec2 => ec2::handle(op, call),
        Service::S3 => s3::handle(op, call),
        Service::S3Control => s3control::handle(op, call),
        Service::SecurityHub => securityhub::handle(op, call),
        Service::GuardDuty => guardduty::handle(op, call),
        Service::Config => config::handle(op, call),
        Service::AccessAnalyzer => accessanalyzer::handle(op, call),
    }
}

/// Picks an operation name out of a fixed list by the value the request carries (the
/// `X-Amz-Target` suffix or the `Action` field), returning the list's `'static` copy.
pub fn known(ops: &'static [&'static str], name: &str) -> Option<&'static str> {
    ops.iter().copied().find(|o| *o == name)
}

/// Reads `Action` from a form-encoded body (awsQuery, ec2Query).
pub fn form_action(req: &Request) -> Option<String> {
    form_urlencoded::parse(&req.body)
        .chain(req.query.iter().map(|(k, v)| (k.as_str().into(), v.as_str().into())))
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.into_owned())
}

/// Opaque pagination tokens: an offset, base64-free but not meant to be parsed by clients.
pub fn encode_token(offset: usize) -> String {
    format!("tok-{offset:08x}")
}

/// Decodes a token made by [`encode_token`]; `None` for garbage.
pub fn decode_token(token: &str) -> Option<usize> {
    token.strip_prefix("tok-").and_then(|h| usize::from_str_radix(h, 16).ok())
}

/// The IAM action a call needs, or `None` when AWS never denies it. Mostly
/// `<prefix>:<Operation>`; S3's actions have their own names.
pub fn iam_action(service: Service, op: &str) -> Option<String> {
    let name = match (service, op) {
        (Service::Sts, "GetCallerIdentity") => return None,
        (Service::S3, "ListBuckets") => "ListAllMyBuckets",
        (Service::S3, "GetPublicAccessBlock") => "GetBucketPublicAccessBlock",
        (Service::S3, "PutPublicAccessBlock" | "DeletePublicAccessBlock") => "PutBucketPublicAccessBlock",
        (Service::S3, "HeadBucket") => "ListBucket",
        (Service::S3, "DeleteBucketPolicy") => "DeleteBucketPolicy",
        (Service::S3, "DeleteBucketTagging") => "PutBucketTagging",
        (Service::S3, "GetBucketAcl") => "GetBucketAcl",
        (Service::S3, "PutBucketAcl") => "PutBucketAcl",
        (Service::S3Control, "GetPublicAccessBlock") => "GetAccountPublicAccessBlock",
        (Service::S3Control, "PutPublicAccessBlock" | "DeletePublicAccessBlock") => "PutAccountPublicAccessBlock",
        (_, op) => op,
    };
    Some(format!("{}:{name}", service.iam_prefix()))
}
