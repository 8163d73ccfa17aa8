//! An SDK interceptor that keeps the raw body of a call's response, and counts the attempts AWS
//! throttled (which the SDK may have retried on its own).
//!
//! Collection needs the source's own JSON: it is the evidence auditors get, and parsing it
//! directly is what lets one malformed finding be set aside without losing its page. The SDK
//! still does what it is good at: endpoints, credentials, signing, retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use parking_lot::Mutex;

/// Whether an error code means "slow down" (the SDK's own list of throttling codes).
pub fn is_throttling_code(code: &str) -> bool {
    crate::metrics::THROTTLING_ERRORS.contains(&code)
}

/// One call's capture: attach a clone to the call, read it after.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    body: Arc<Mutex<Option<Vec<u8>>>>,
    throttled: Arc<AtomicU32>,
}

impl Capture {
    pub fn new() -> Capture {
        Capture::default()
    }

    /// The body of the last attempt that was deserialized.
    pub fn take_body(&self) -> Option<Vec<u8>> {
        self.body.lock().take()
    }

    /// Attempts of this call that AWS throttled.
    pub fn throttled_attempts(&self) -> u32 {
        self.throttled.load(Ordering::Relaxed)
    }
}

impl Intercept for Capture {
    fn name(&self) -> &'static str {
        "orgsec.capture"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response();
        if response.status().is_success() {
            *self.body.lock() = response.body().bytes().map(<[u8]>::to_vec);
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(response) = context.response() {
            let status = response.status().as_u16();
            let code = response.headers().get("x-amzn-errortype").map(|c| c.split(':').next().unwrap_or(c));
            if status == 429 || code.is_some_and(is_throttling_code) {
                self.throttled.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}
