//! (being written)

use crate::error::{AwsError, AwsResult};
use crate::services::Call;
use crate::wire::{Request, Response};

pub fn operation(_req: &Request) -> Option<&'static str> {
    None
}

pub fn handle(op: &str, _call: &Call<'_>) -> AwsResult<Response> {
    Err(AwsError::new(400, "UnknownOperationException", format!("{op} is not served yet")))
}
