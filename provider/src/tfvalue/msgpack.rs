//! The MessagePack encoding of values (`DynamicValue.msgpack`), the form Terraform uses for
//! configuration, plans and state on the wire.
//!
//! - null is `nil`; an unknown value is any extension value (Terraform writes type 0 with a
//!   one-byte zero payload, `d4 00 00`, or type 12 with refinements in the payload);
//! - bool and string as themselves; a number as an integer when it is one that fits `i64`, else
//!   as a float64 when that holds it exactly, else as a string of its decimal digits;
//! - list, set and tuple as arrays; map as a map; object as a map of every attribute, in
//!   sorted order;
//! - a value at a dynamic position as `[type JSON (bin), value]`.

use std::collections::BTreeMap;

use super::error::Walk;
use super::json::{check_dynamic_type, check_object_attributes, quote};
use super::types::element_step;
use super::{CodecError, Number, PathStep, Type, Value};

/// What Terraform writes for an unknown value with no refinements: fixext1, type 0, payload 0.
const UNKNOWN: [u8; 3] = [0xd4, 0x00, 0x00];

/// Decodes a MessagePack-encoded value of type `ty`. The whole input must be one value.
///
/// As in Terraform: any extension value is unknown, at any type; an object must have every
/// attribute of its type and no other. Duplicate map keys or attributes are errors.
pub fn decode_msgpack(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    let mut d = Decoder { r: Reader { buf: bytes, pos: 0 }, walk: Walk::new() };
    let v = d.value(ty)?;
    if d.r.pos < bytes.len() {
        return Err(CodecError::root(format!("{} unexpected bytes after the value", bytes.len() - d.r.pos)));
    }
    Ok(v)
}

/// Encodes `v`, a value of type `ty`, as MessagePack, the way Terraform does. Fails if `v` does
/// not conform to `ty`.
pub fn encode_msgpack(v: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let mut e = Encoder { out: Vec::new(), walk: Walk::new() };
    e.value(v, ty)?;
    Ok(e.out)
}

/// One MessagePack item's header; strings, binaries and extensions come with their payload.
enum Head<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(&'a [u8]),
    Bin(&'a [u8]),
    Array(usize),
    Map(usize),
    Ext,
    /// The never-used byte 0xc1.
    Reserved,
}

impl Head<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Head::Nil => "nil",
            Head::Bool(_) => "bool",
            Head::Int(_) | Head::UInt(_) => "integer",
            Head::Float(_) => "float",
            Head::Str(_) => "string",
            Head::Bin(_) => "binary",
            Head::Array(_) => "array",
            Head::Map(_) => "map",
            Head::Ext => "extension",
            Head::Reserved => "reserved byte 0xc1",
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    /// A big-endian unsigned integer of `n` (at most 8) bytes.
    fn uint(&mut self, n: usize) -> Option<u64> {
        Some(self.take(n)?.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn len(&mut self, n: usize) -> Option<usize> {
        usize::try_from(self.uint(n)?).ok()
    }

    fn head(&mut self) -> Option<Head<'a>> {
        let b = self.byte()?;
        Some(match b {
            0x00..=0x7f => Head::Int(i64::from(b)),
            0x80..=0x8f => Head::Map(usize::from(b & 0x0f)),
            0x90..=0x9f => Head::Array(usize::from(b & 0x0f)),
            0xa0..=0xbf => Head::Str(self.take(usize::from(b & 0x1f))?),
            0xc0 => Head::Nil,
            0xc1 => Head::Reserved,
            0xc2 => Head::Bool(false),
            0xc3 => Head::Bool(true),
            0xc4..=0xc6 => {
                let n = self.len(1 << (b - 0xc4))?;
                Head::Bin(self.take(n)?)
            }
            0xc7..=0xc9 => {
                let n = self.len(1 << (b - 0xc7))?;
                self.take(1)?; // extension type
                self.take(n)?;
                Head::Ext
            }
            0xca => Head::Float(f64::from(f32::from_bits(u32::try_from(self.uint(4)?).ok()?))),
            0xcb => Head::Float(f64::from_bits(self.uint(8)?)),
            0xcc..=0xcf => Head::UInt(self.uint(1 << (b - 0xcc))?),
            0xd0 => Head::Int(i64::from(self.uint(1)? as u8 as i8)),
            0xd1 => Head::Int(i64::from(self.uint(2)? as u16 as i16)),
            0xd2 => Head::Int(i64::from(self.uint(4)? as u32 as i32)),
            0xd3 => Head::Int(self.uint(8)? as i64),
            0xd4..=0xd8 => {
                self.take(1)?; // extension type
                self.take(1 << (b - 0xd4))?;
                Head::Ext
            }
            0xd9..=0xdb => {
                let n = self.len(1 << (b - 0xd9))?;
                Head::Str(self.take(n)?)
            }
            0xdc | 0xdd => Head::Array(self.len(2 << (b - 0xdc))?),
            0xde | 0xdf => Head::Map(self.len(2 << (b - 0xde))?),
            0xe0..=0xff => Head::Int(i64::from(b as i8)),
        })
    }
}

struct Decoder<'a> {
    r: Reader<'a>,
    walk: Walk,
}

impl<'a> Decoder<'a> {
    fn head(&mut self) -> Result<Head<'a>, CodecError> {
        self.r.head().ok_or_else(|| self.walk.err("unexpected end of input"))
    }

    fn mismatch(&self, ty: &Type, head: &Head<'_>) -> CodecError {
        self.walk.err(format!("expected {}, found {}", ty.kind(), head.kind()))
    }

    fn text(&self, bytes: &[u8]) -> Result<String, CodecError> {
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => Err(self.walk.err("string is not valid UTF-8")),
        }
    }

    /// A preallocation no larger than the input could fill (every element takes a byte).
    fn capacity(&self, n: usize) -> usize {
        n.min(self.r.remaining())
    }

    fn value(&mut self, ty: &Type) -> Result<Value, CodecError> {
        let head = self.head()?;
        match head {
            Head::Ext => return Ok(Value::Unknown),
            Head::Nil => return Ok(Value::Null),
            _ => {}
        }
        match ty {
            Type::Dynamic => self.dynamic(head),
            Type::Bool => match head {
                Head::Bool(b) => Ok(Value::Bool(b)),
                _ => Err(self.mismatch(ty, &head)),
            },
            Type::Number => match head {
                Head::Int(i) => Ok(Value::Number(Number::from(i))),
                Head::UInt(u) => Ok(Value::Number(Number::from(u))),
                Head::Float(f) => match Number::from_f64(f) {
                    Some(n) => Ok(Value::Number(n)),
                    None => Err(self.walk.err("expected number, found NaN")),
                },
                Head::Str(s) => {
                    let s = self.text(s)?;
                    match s.parse::<Number>() {
                        Ok(n) => Ok(Value::Number(n)),
                        Err(_) => Err(self.walk.err(format!("expected number, found string {}", quote(&s)))),
                    }
                }
                _ => Err(self.mismatch(ty, &head)),
            },
            Type::String => match head {
                Head::Str(s) | Head::Bin(s) => Ok(Value::String(self.text(s)?)),
                _ => Err(self.mismatch(ty, &head)),
            },
            Type::List(e) | Type::Set(e) => {
                let Head::Array(n) = head else { return Err(self.mismatch(ty, &head)) };
                self.walk.enter()?;
                let mut out = Vec::with_capacity(self.capacity(n));
                for i in 0..n {
                    self.walk.push(element_step(ty, i));
                    let v = self.value(e);
                    self.walk.pop();
                    out.push(v?);
                }
                self.walk.leave();
                Ok(if matches!(ty, Type::Set(_)) { Value::Set(out) } else { Value::List(out) })
            }
            Type::Tuple(types) => {
                let Head::Array(n) = head else { return Err(self.mismatch(ty, &head)) };
                if n != types.len() {
                    return Err(self.walk.err(format!("expected a tuple of {} elements, found {n}", types.len())));
                }
                self.walk.enter()?;
                let mut out = Vec::with_capacity(n);
                for (i, t) in types.iter().enumerate() {
                    self.walk.push(element_step(ty, i));
                    let v = self.value(t);
                    self.walk.pop();
                    out.push(v?);
                }
                self.walk.leave();
                Ok(Value::Tuple(out))
            }
            Type::Map(e) => {
                let Head::Map(n) = head else { return Err(self.mismatch(ty, &head)) };
                self.walk.enter()?;
                let mut out = BTreeMap::new();
                for _ in 0..n {
                    let k = self.key()?;
                    self.walk.push(PathStep::Key(k.clone()));
                    let v = match self.value(e) {
                        Ok(_) if out.contains_key(&k) => Err(self.walk.err("duplicate map key")),
                        other => other,
                    };
                    self.walk.pop();
                    out.insert(k, v?);
                }
                self.walk.leave();
                Ok(Value::Map(out))
            }
            Type::Object { attributes, .. } => {
                let Head::Map(n) = head else { return Err(self.mismatch(ty, &head)) };
                self.walk.enter()?;
                let mut out = BTreeMap::new();
                for _ in 0..n {
                    let k = self.key()?;
                    let Some(t) = attributes.get(&k) else {
                        return Err(self.walk.err(format!("unsupported attribute {}", quote(&k))));
                    };
                    self.walk.push(PathStep::Attr(k.clone()));
                    let v = match self.value(t) {
                        Ok(_) if out.contains_key(&k) => Err(self.walk.err("duplicate attribute")),
                        other => other,
                    };
                    self.walk.pop();
                    out.insert(k, v?);
                }
                if let Some(missing) = attributes.keys().find(|k| !out.contains_key(*k)) {
                    return Err(self.walk.err(format!("attribute {} is missing", quote(missing))));
                }
                self.walk.leave();
                Ok(Value::Object(out))
            }
        }
    }

    fn key(&mut self) -> Result<String, CodecError> {
        match self.head()? {
            Head::Str(s) | Head::Bin(s) => self.text(s),
            other => Err(self.walk.err(format!("expected a string key, found {}", other.kind()))),
        }
    }

    /// `[type JSON, value]` at a dynamic position (nil and unknown already handled).
    fn dynamic(&mut self, head: Head<'a>) -> Result<Value, CodecError> {
        let Head::Array(2) = head else {
            return Err(self
                .walk
                .err(format!("expected a dynamic value ([type, value] array), found {}", head.kind())));
        };
        let type_json = match self.head()? {
            Head::Str(s) | Head::Bin(s) => s,
            other => {
                return Err(self.walk.err(format!("expected a dynamic value's type JSON, found {}", other.kind())));
            }
        };
        let ty =
            Type::from_json(type_json).map_err(|e| self.walk.err(format!("dynamic value's type: {}", e.message())))?;
        self.walk.enter()?;
        let v = self.value(&ty);
        self.walk.leave();
        let v = v?;
        Ok(if ty == Type::Dynamic { v } else { Value::dynamic(ty, v) })
    }
}

struct Encoder {
    out: Vec<u8>,
    walk: Walk,
}

impl Encoder {
    fn value(&mut self, v: &Value, ty: &Type) -> Result<(), CodecError> {
        if let Type::Dynamic = ty {
            return match v {
                Value::Null => {
                    self.out.push(0xc0);
                    Ok(())
                }
                Value::Unknown => {
                    self.out.extend_from_slice(&UNKNOWN);
                    Ok(())
                }
                Value::Dynamic(t, inner) => {
                    check_dynamic_type(t, &self.walk)?;
                    self.out.push(0x92);
                    self.bin(&t.to_json())?;
                    self.walk.enter()?;
                    let r = self.value(inner, t);
                    self.walk.leave();
                    r
                }
                other => Err(self.walk.err(format!(
                    "a value of dynamic type must be a Value::Dynamic carrying its type, found {}",
                    other.kind()
                ))),
            };
        }
        match (ty, v) {
            (_, Value::Null) => self.out.push(0xc0),
            (_, Value::Unknown) => self.out.extend_from_slice(&UNKNOWN),
            (Type::Bool, Value::Bool(b)) => self.out.push(if *b { 0xc3 } else { 0xc2 }),
            (Type::Number, Value::Number(n)) => self.number(n)?,
            (Type::String, Value::String(s)) => self.str(s)?,
            (Type::List(e), Value::List(vs)) | (Type::Set(e), Value::Set(vs)) => {
                self.array_len(vs.len())?;
                self.walk.enter()?;
                for (i, item) in vs.iter().enumerate() {
                    self.walk.push(element_step(ty, i));
                    let r = self.value(item, e);
                    self.walk.pop();
                    r?;
                }
                self.walk.leave();
            }
            (Type::Tuple(ts), Value::Tuple(vs)) => {
                if ts.len() != vs.len() {
                    return Err(self.walk.err(format!(
                        "expected a tuple of {} elements, found {}",
                        ts.len(),
                        vs.len()
                    )));
                }
                self.array_len(vs.len())?;
                self.walk.enter()?;
                for (i, (item, t)) in vs.iter().zip(ts).enumerate() {
                    self.walk.push(element_step(ty, i));
                    let r = self.value(item, t);
                    self.walk.pop();
                    r?;
                }
                self.walk.leave();
            }
            (Type::Map(e), Value::Map(m)) => {
                self.map_len(m.len())?;
                self.walk.enter()?;
                for (k, item) in m {
                    self.str(k)?;
                    self.walk.push(PathStep::Key(k.clone()));
                    let r = self.value(item, e);
                    self.walk.pop();
                    r?;
                }
                self.walk.leave();
            }
            (Type::Object { attributes, .. }, Value::Object(m)) => {
                check_object_attributes(attributes, m, &self.walk)?;
                self.map_len(attributes.len())?;
                self.walk.enter()?;
                for (k, t) in attributes {
                    self.str(k)?;
                    self.walk.push(PathStep::Attr(k.clone()));
                    let r = match m.get(k) {
                        Some(item) => self.value(item, t),
                        None => Err(self.walk.err("attribute missing from the object value")),
                    };
                    self.walk.pop();
                    r?;
                }
                self.walk.leave();
            }
            (ty, v) => return Err(self.walk.err(format!("expected {}, found {}", ty.kind(), v.kind()))),
        }
        Ok(())
    }

    /// As Terraform does: an integer if it is one in `i64` range, else a float64 if that is
    /// exact (infinities included), else the decimal digits as a string.
    fn number(&mut self, n: &Number) -> Result<(), CodecError> {
        if let Some(i) = n.as_i64() {
            self.int(i);
        } else if let Some(f) = n.as_f64_exact() {
            self.out.push(0xcb);
            self.out.extend_from_slice(&f.to_bits().to_be_bytes());
        } else {
            self.str(&n.to_string())?;
        }
        Ok(())
    }

    /// The shortest integer form.
    fn int(&mut self, i: i64) {
        let out = &mut self.out;
        if let Ok(u) = u64::try_from(i) {
            if u <= 0x7f {
                out.push(u as u8);
            } else if let Ok(b) = u8::try_from(u) {
                out.extend_from_slice(&[0xcc, b]);
            } else if let Ok(h) = u16::try_from(u) {
                out.push(0xcd);
                out.extend_from_slice(&h.to_be_bytes());
            } else if let Ok(w) = u32::try_from(u) {
                out.push(0xce);
                out.extend_from_slice(&w.to_be_bytes());
            } else {
                out.push(0xcf);
                out.extend_from_slice(&u.to_be_bytes());
            }
        } else if i >= -32 {
            out.push(i as i8 as u8);
        } else if let Ok(b) = i8::try_from(i) {
            out.extend_from_slice(&[0xd0, b as u8]);
        } else if let Ok(h) = i16::try_from(i) {
            out.push(0xd1);
            out.extend_from_slice(&h.to_be_bytes());
        } else if let Ok(w) = i32::try_from(i) {
            out.push(0xd2);
            out.extend_from_slice(&w.to_be_bytes());
        } else {
            out.push(0xd3);
            out.extend_from_slice(&i.to_be_bytes());
        }
    }

    /// A length header: the fix form (`fix | n`) when `n < fix_limit`, else the 8-bit form when
    /// there is one (`Some(marker)`), else 16- or 32-bit.
    fn header(&mut self, n: usize, fix: u8, fix_limit: usize, m8: Option<u8>, m16: u8) -> Result<(), CodecError> {
        if n < fix_limit {
            self.out.push(fix | n as u8);
        } else if let (Some(m), Ok(b)) = (m8, u8::try_from(n)) {
            self.out.extend_from_slice(&[m, b]);
        } else if let Ok(h) = u16::try_from(n) {
            self.out.push(m16);
            self.out.extend_from_slice(&h.to_be_bytes());
        } else if let Ok(w) = u32::try_from(n) {
            self.out.push(m16 + 1);
            self.out.extend_from_slice(&w.to_be_bytes());
        } else {
            return Err(self.walk.err("too long for MessagePack"));
        }
        Ok(())
    }

    fn str(&mut self, s: &str) -> Result<(), CodecError> {
        self.header(s.len(), 0xa0, 32, Some(0xd9), 0xda)?;
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    fn bin(&mut self, b: &[u8]) -> Result<(), CodecError> {
        self.header(b.len(), 0, 0, Some(0xc4), 0xc5)?;
        self.out.extend_from_slice(b);
        Ok(())
    }

    fn array_len(&mut self, n: usize) -> Result<(), CodecError> {
        self.header(n, 0x90, 16, None, 0xdc)
    }

    fn map_len(&mut self, n: usize) -> Result<(), CodecError> {
        self.header(n, 0x80, 16, None, 0xde)
    }
}
