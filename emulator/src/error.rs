//! One error type for every service: a status, an AWS error code and a message. Each protocol
//! renders it in its own shape (see [`crate::wire::render_error`]), so the SDK's own error and retry
//! classification sees exactly what AWS would send.

use std::borrow::Cow;

/// An error as AWS reports it on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// HTTP status code.
    pub status: u16,
    /// The AWS error code (`InvalidInputException`, `NoSuchEntity`, ...).
    pub code: Cow<'static, str>,
    /// Human-readable message.
    pub message: String,
    /// Whether the caller is at fault (`Sender`) or the service (`Receiver`), for awsQuery.
    pub sender_fault: bool,
    /// Milliseconds the client should wait before retrying (`x-amz-retry-after`), if any.
    pub retry_after_ms: Option<u64>,
}

impl AwsError {
    pub fn new(status: u16, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        AwsError {
            status,
            code: code.into(),
            message: message.into(),
            sender_fault: status < 500,
            retry_after_ms: None,
        }
    }

    pub fn with_retry_after(mut self, ms: u64) -> Self {
        self.retry_after_ms = Some(ms);
        self
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for AwsError {}

pub type AwsResult<T> = Result<T, AwsError>;
