//! `/_emulator/...` admin endpoints.

use crate::Shared;
use crate::wire::{Request, Response};

pub fn handle(_shared: &Shared, _req: &Request) -> Response {
    Response::json(&serde_json::json!({"status": "ok"}))
}
