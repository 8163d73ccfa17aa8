//! Terraform's value model (the `cty` type system) and its two wire encodings.
//!
//! Terraform hands a provider every configuration, plan and state as a `DynamicValue`: bytes in
//! MessagePack (the usual form) or JSON (raw state, and some older paths). Neither encoding
//! carries the type; the receiver decodes against the [`Type`] it derived from its own schema.
//!
//! - [`Type`]: bool, number, string, the `dynamic` pseudo-type, list/set/map of one element type,
//!   object (named attributes, some optional) and tuple (positional element types). Its JSON form
//!   (`"string"`, `["list","number"]`, `["object",{"a":"bool"},["a"]]`, ...) is what schemas and
//!   dynamic values carry: [`Type::from_json`], [`Type::to_json`].
//! - [`Value`]: a value of some type, which may be null or unknown at any level. Numbers are
//!   exact decimals ([`Number`]), never rounded through `f64`.
//! - [`decode_msgpack`] / [`encode_msgpack`] and [`decode_json`] / [`encode_json`]: the codecs.
//!   Encoding follows what Terraform's own library emits byte for byte where it is canonical.
//!
//! Every decoder treats its input as hostile: no input makes it panic, nesting deeper than
//! [`MAX_DEPTH`] is an error rather than a stack overflow, and no length prefix makes it allocate
//! more than the input could fill. A [`CodecError`] names the attribute path where decoding
//! stopped, e.g. `.assume_role.role_arn: expected string, found integer`.

mod error;
mod json;
mod msgpack;
mod number;
mod types;
mod value;

#[cfg(test)]
mod tests;

pub use error::{CodecError, PathStep};
pub use json::{JsonDecodeOptions, decode_json, decode_json_with, encode_json};
pub use msgpack::{decode_msgpack, encode_msgpack};
pub use number::Number;
pub use types::Type;
pub use value::Value;

/// How deeply values (and types) may nest: each list, set, map, object, tuple and dynamic
/// wrapper is one level. Deeper input is rejected with an error. Terraform schemas nest a few
/// levels; 64 leaves ample room while keeping recursion far from any thread's stack limit.
pub const MAX_DEPTH: usize = 64;
