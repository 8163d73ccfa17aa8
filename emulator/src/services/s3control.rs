//! Amazon S3 Control (restXml, `<ErrorResponse>` errors): the account-level Block Public Access
//! configuration at `/v20180820/configuration/publicAccessBlock`. It applies to every bucket of
//! the account in every region, so a change re-evaluates all of the account's regions.

use crate::error::{AwsError, AwsResult};
use crate::services::Call;
use crate::services::s3::{bpa_xml, parse_bpa};
use crate::wire::{Request, Response};

const NS: &str = "http://awss3control.amazonaws.com/doc/2018-08-20/";
const PAB_PATH: &str = "/v20180820/configuration/publicAccessBlock";

pub fn operation(req: &Request) -> Option<&'static str> {
    if req.path.trim_end_matches('/') != PAB_PATH {
        return None;
    }
    match req.method.as_str() {
        "GET" => Some("GetPublicAccessBlock"),
        "PUT" => Some("PutPublicAccessBlock"),
        "DELETE" => Some("DeletePublicAccessBlock"),
        _ => None,
    }
}

pub fn handle(op: &str, call: &Call<'_>) -> AwsResult<Response> {
    let account = call.account();
    match call.req.header("x-amz-account-id").map(str::trim) {
        None | Some("") => {
            return Err(AwsError::new(400, "InvalidRequest", "The x-amz-account-id header is required."));
        }
        Some(a) if a != account => {
            return Err(AwsError::new(403, "AccessDenied", "Access Denied"));
        }
        Some(_) => {}
    }
    match op {
        "GetPublicAccessBlock" => {
            let w = call.read();
            let bpa = w.accounts.get(account).and_then(|a| a.s3_public_access_block).ok_or_else(|| {
                AwsError::new(
                    404,
                    "NoSuchPublicAccessBlockConfiguration",
                    "The public access block configuration was not found",
                )
            })?;
            let mut r = Response::xml(bpa_xml(&bpa, NS).finish());
            r.content_type = "application/xml";
            Ok(r)
        }
        "PutPublicAccessBlock" => {
            let bpa = parse_bpa(&call.req.body)?;
            let mut w = call.write();
            let acct =
                w.accounts.get_mut(account).ok_or_else(|| AwsError::new(403, "AccessDenied", "Access Denied"))?;
            acct.s3_public_access_block = Some(bpa);
            w.counters.record("s3control:PutPublicAccessBlock", account);
            w.schedule_account(account);
            Ok(Response::empty(200))
        }
        "DeletePublicAccessBlock" => {
            let mut w = call.write();
            let acct =
                w.accounts.get_mut(account).ok_or_else(|| AwsError::new(403, "AccessDenied", "Access Denied"))?;
            acct.s3_public_access_block = None;
            w.counters.record("s3control:DeletePublicAccessBlock", account);
            w.schedule_account(account);
            Ok(Response::empty(204))
        }
        other => Err(AwsError::new(
            405,
            "MethodNotAllowed",
            format!("The specified method is not allowed against this resource: {other}"),
        )),
    }
}
