//! An SDK interceptor that keeps the raw body of a call's response, and counts the attempts AWS
//! throttled (which the SDK may have retried on its own).
//!
//! Collection needs the source's own JSON: it is the evidence auditors get, and parsing it
//! directly is what lets one malformed finding be set aside without losing its page. The SDK
//! still does what it is good at: endpoints, credentials, signing, retries.
//!
//! A capture made with [`Capture::raw_only`] also spares the SDK from parsing what orgsec will
//! parse itself: it keeps the body of a successful response as it arrives and hands the SDK's
//! deserializer an empty object instead, so the call's typed output is empty (every field of a
//! list call's output is optional). Parsing a page of a hundred findings into typed values that
//! would be thrown away was a third of collection's CPU. Error responses are left alone, so the
//! SDK still classifies and retries them.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeDeserializationInterceptorContextMut,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use parking_lot::Mutex;

/// Whether an error code means "slow down" (the SDK's own list of throttling codes).
pub fn is_throttling_code(code: &str) -> bool {
    crate::metrics::THROTTLING_ERRORS.contains(&code)
}

/// The most a body's announced length reserves ahead (a body may still be longer).
const MAX_PRESIZE: usize = 16 << 20;

/// One call's capture: attach a clone to the call, read it after.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    body: Arc<Mutex<Option<Vec<u8>>>>,
    throttled: Arc<AtomicU32>,
    raw_only: bool,
}

impl Capture {
    /// Keeps the body; the SDK parses it as usual.
    pub fn new() -> Capture {
        Capture::default()
    }

    /// Keeps the body of a successful response and leaves the SDK's typed output empty.
    pub fn raw_only() -> Capture {
        Capture { raw_only: true, ..Capture::default() }
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

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response_mut();
        if self.raw_only && response.status().is_success() {
            // Room for the whole body at once when its length is announced (a page of findings
            // is about 200 KB: grown chunk by chunk, it was copied several times over).
            let announced = response.headers().get("content-length").and_then(|n| n.parse::<usize>().ok());
            let buf = Vec::with_capacity(announced.unwrap_or(0).min(MAX_PRESIZE));
            let inner = std::mem::replace(response.body_mut(), SdkBody::taken());
            *response.body_mut() =
                SdkBody::from_body_1_x(KeepBody { inner, buf, slot: self.body.clone(), done: false });
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response();
        if !self.raw_only && response.status().is_success() {
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

/// A response body that reads its source to the end, puts what it read in `slot`, and yields
/// only `{}` to whoever reads it.
struct KeepBody {
    inner: SdkBody,
    buf: Vec<u8>,
    slot: Arc<Mutex<Option<Vec<u8>>>>,
    done: bool,
}

impl Body for KeepBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        this.buf.extend_from_slice(&data);
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {
                    this.done = true;
                    *this.slot.lock() = Some(std::mem::take(&mut this.buf));
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"{}")))));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
