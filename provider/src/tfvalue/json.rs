//! The JSON encoding of values (`DynamicValue.json`, `RawState.json`) and a small JSON parser
//! that keeps numbers as written and bounds nesting.

use std::collections::BTreeMap;

use super::error::Walk;
use super::types::element_step;
use super::{CodecError, MAX_DEPTH, Number, PathStep, Type, Value};

/// Options for [`decode_json_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JsonDecodeOptions {
    /// Skip object attributes the type does not have instead of failing. Useful for raw state
    /// written by an older schema that had attributes since removed.
    pub ignore_undefined_attributes: bool,
}

/// Decodes a JSON-encoded value of type `ty`.
///
/// As in Terraform: `null` is null at any type; an object attribute missing from the input is
/// null; an attribute the type does not have is an error; a dynamic-typed value is
/// `{"value": ..., "type": ...}`. Like Terraform's decoder this accepts a number or bool where a
/// string is expected, a numeric string where a number is, and `"true"`/`"false"`/`"1"`/`"0"` (or
/// `1`/`0`) where a bool is. Duplicate keys are errors. JSON cannot express unknown values.
pub fn decode_json(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    decode_json_with(bytes, ty, JsonDecodeOptions::default())
}

/// [`decode_json`] with options.
pub fn decode_json_with(bytes: &[u8], ty: &Type, options: JsonDecodeOptions) -> Result<Value, CodecError> {
    let node = parse(bytes)?;
    let mut d = Decoder { walk: Walk::new(), options };
    d.value(&node, ty)
}

/// Encodes `v`, a value of type `ty`, as JSON: compact, with map keys and object attributes in
/// sorted order, numbers in plain decimal notation. Fails if `v` contains an unknown value or an
/// infinity (neither has a JSON form) or does not conform to `ty`.
pub fn encode_json(v: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let mut e = Encoder { out: String::new(), walk: Walk::new() };
    e.value(v, ty)?;
    Ok(e.out.into_bytes())
}

/// A parsed JSON document. Numbers keep their text; object members keep their order and any
/// duplicates, for the caller to judge.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "bool",
            Json::Number(_) => "number",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }
}

/// JSON nesting the parser accepts. A type takes two JSON levels per type level (`["object",{`)
/// and a dynamic value one more for its wrapper, so this is generous; the decoders then apply
/// [`MAX_DEPTH`] to the meaning.
const PARSE_DEPTH: usize = 4 * MAX_DEPTH + 8;

/// Parses one JSON document (surrounding whitespace allowed, nothing else).
pub(crate) fn parse(bytes: &[u8]) -> Result<Json, CodecError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(CodecError::root("invalid JSON: not valid UTF-8"));
    }
    let mut p = Parser { s: bytes, pos: 0, depth: 0 };
    let v = p.value()?;
    p.ws();
    if p.pos < p.s.len() {
        return Err(p.err("unexpected data after the JSON value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> CodecError {
        CodecError::root(format!("invalid JSON at byte {}: {what}", self.pos))
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8], v: Json) -> Result<Json, CodecError> {
        if self.s.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn value(&mut self) -> Result<Json, CodecError> {
        self.ws();
        match self.peek() {
            None => Err(self.err("unexpected end of input")),
            Some(b'n') => self.literal(b"null", Json::Null),
            Some(b't') => self.literal(b"true", Json::Bool(true)),
            Some(b'f') => self.literal(b"false", Json::Bool(false)),
            Some(b'"') => self.string().map(Json::String),
            Some(b'-' | b'0'..=b'9') => self.number().map(Json::Number),
            Some(b'[') => {
                self.nest()?;
                let items = self.array();
                self.depth -= 1;
                items.map(Json::Array)
            }
            Some(b'{') => {
                self.nest()?;
                let members = self.object();
                self.depth -= 1;
                members.map(Json::Object)
            }
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    fn nest(&mut self) -> Result<(), CodecError> {
        if self.depth >= PARSE_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        self.depth += 1;
        Ok(())
    }

    fn array(&mut self) -> Result<Vec<Json>, CodecError> {
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(items);
        }
        loop {
            items.push(self.value()?);
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(items);
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    fn object(&mut self) -> Result<Vec<(String, Json)>, CodecError> {
        self.pos += 1; // '{'
        let mut members = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(members);
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key"));
            }
            let key = self.string()?;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':'"));
            }
            self.pos += 1;
            let v = self.value()?;
            members.push((key, v));
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(members);
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<String, CodecError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.err("invalid number: no digit after '.'"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("invalid number: no digit in exponent"));
            }
        }
        let text = self.s.get(start..self.pos).unwrap_or_default();
        Ok(String::from_utf8_lossy(text).into_owned())
    }

    fn hex4(&mut self) -> Result<u32, CodecError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d =
                self.peek().and_then(|c| char::from(c).to_digit(16)).ok_or_else(|| self.err("invalid \\u escape"))?;
            v = v * 16 + d;
            self.pos += 1;
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<String, CodecError> {
        self.pos += 1; // '"'
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(c) = self.peek() else { return Err(self.err("unterminated string")) };
            self.pos += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(e) = self.peek() else { return Err(self.err("unterminated string")) };
                    self.pos += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(self.err("invalid escape")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => return Err(self.err("control character in string")),
                _ => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| self.err("invalid UTF-8 in string"))
    }

    /// The character of a `\u` escape with its four hex digits (the `\u` already read), joining a surrogate pair. A
    /// lone surrogate becomes U+FFFD, as Terraform's JSON decoder does.
    fn unicode_escape(&mut self) -> Result<char, CodecError> {
        let first = self.hex4()?;
        if (0xD800..0xDC00).contains(&first) && self.s.get(self.pos..self.pos + 2) == Some(b"\\u") {
            let save = self.pos;
            self.pos += 2;
            let second = self.hex4()?;
            if (0xDC00..0xE000).contains(&second) {
                let c = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                return Ok(char::from_u32(c).unwrap_or('\u{FFFD}'));
            }
            self.pos = save;
        }
        Ok(char::from_u32(first).unwrap_or('\u{FFFD}'))
    }
}

/// `s` as a JSON string literal.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

struct Decoder {
    walk: Walk,
    options: JsonDecodeOptions,
}

impl Decoder {
    fn mismatch(&self, ty: &Type, node: &Json) -> CodecError {
        self.walk.err(format!("expected {}, found {}", ty.kind(), node.kind()))
    }

    fn value(&mut self, node: &Json, ty: &Type) -> Result<Value, CodecError> {
        if let Json::Null = node {
            return Ok(Value::Null);
        }
        match ty {
            Type::Dynamic => self.dynamic(node),
            Type::Bool => match node {
                Json::Bool(b) => Ok(Value::Bool(*b)),
                Json::String(s) | Json::Number(s) if s == "true" || s == "1" => Ok(Value::Bool(true)),
                Json::String(s) | Json::Number(s) if s == "false" || s == "0" => Ok(Value::Bool(false)),
                _ => Err(self.mismatch(ty, node)),
            },
            Type::Number => match node {
                Json::Number(s) | Json::String(s) => match s.parse::<Number>() {
                    Ok(n) => Ok(Value::Number(n)),
                    Err(_) => Err(self.walk.err(format!("expected number, found {} {}", node.kind(), quote(s)))),
                },
                _ => Err(self.mismatch(ty, node)),
            },
            Type::String => match node {
                Json::String(s) | Json::Number(s) => Ok(Value::String(s.clone())),
                Json::Bool(b) => Ok(Value::String(b.to_string())),
                _ => Err(self.mismatch(ty, node)),
            },
            Type::List(e) | Type::Set(e) => {
                let Json::Array(items) = node else { return Err(self.mismatch(ty, node)) };
                self.walk.enter()?;
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    self.walk.push(element_step(ty, i));
                    let v = self.value(item, e);
                    self.walk.pop();
                    out.push(v?);
                }
                self.walk.leave();
                Ok(if matches!(ty, Type::Set(_)) { Value::Set(out) } else { Value::List(out) })
            }
            Type::Tuple(types) => {
                let Json::Array(items) = node else { return Err(self.mismatch(ty, node)) };
                if items.len() != types.len() {
                    return Err(self.walk.err(format!(
                        "expected a tuple of {} elements, found {}",
                        types.len(),
                        items.len()
                    )));
                }
                self.walk.enter()?;
                let mut out = Vec::with_capacity(items.len());
                for (i, (item, t)) in items.iter().zip(types).enumerate() {
                    self.walk.push(element_step(ty, i));
                    let v = self.value(item, t);
                    self.walk.pop();
                    out.push(v?);
                }
                self.walk.leave();
                Ok(Value::Tuple(out))
            }
            Type::Map(e) => {
                let Json::Object(members) = node else { return Err(self.mismatch(ty, node)) };
                self.walk.enter()?;
                let mut out = BTreeMap::new();
                for (k, item) in members {
                    self.walk.push(PathStep::Key(k.clone()));
                    let v = self.value(item, e);
                    let v = match v {
                        Ok(_) if out.contains_key(k) => Err(self.walk.err("duplicate map key")),
                        other => other,
                    };
                    self.walk.pop();
                    out.insert(k.clone(), v?);
                }
                self.walk.leave();
                Ok(Value::Map(out))
            }
            Type::Object { attributes, .. } => {
                let Json::Object(members) = node else { return Err(self.mismatch(ty, node)) };
                self.walk.enter()?;
                let mut out = BTreeMap::new();
                for (k, item) in members {
                    let Some(t) = attributes.get(k) else {
                        if self.options.ignore_undefined_attributes {
                            continue;
                        }
                        return Err(self.walk.err(format!("unsupported attribute {}", quote(k))));
                    };
                    self.walk.push(PathStep::Attr(k.clone()));
                    let v = self.value(item, t);
                    let v = match v {
                        Ok(_) if out.contains_key(k) => Err(self.walk.err("duplicate attribute")),
                        other => other,
                    };
                    self.walk.pop();
                    out.insert(k.clone(), v?);
                }
                for name in attributes.keys() {
                    if !out.contains_key(name) {
                        out.insert(name.clone(), Value::Null);
                    }
                }
                self.walk.leave();
                Ok(Value::Object(out))
            }
        }
    }

    /// `{"value": V, "type": T}` at a dynamic position.
    fn dynamic(&mut self, node: &Json) -> Result<Value, CodecError> {
        let Json::Object(members) = node else {
            return Err(self
                .walk
                .err(format!("expected a dynamic value ({{\"value\": ..., \"type\": ...}}), found {}", node.kind())));
        };
        let (mut value, mut ty) = (None, None);
        for (k, v) in members {
            let slot = match k.as_str() {
                "value" => &mut value,
                "type" => &mut ty,
                other => return Err(self.walk.err(format!("invalid key {} in dynamic value", quote(other)))),
            };
            if slot.replace(v).is_some() {
                return Err(self.walk.err(format!("duplicate key {} in dynamic value", quote(k))));
            }
        }
        let Some(ty) = ty else { return Err(self.walk.err("dynamic value has no \"type\"")) };
        let Some(value) = value else { return Err(self.walk.err("dynamic value has no \"value\"")) };
        let ty = Type::from_node(ty, &mut Walk::at(&self.walk.path))?;
        self.walk.enter()?;
        let v = self.value(value, &ty);
        self.walk.leave();
        let v = v?;
        Ok(if ty == Type::Dynamic { v } else { Value::dynamic(ty, v) })
    }
}

struct Encoder {
    out: String,
    walk: Walk,
}

impl Encoder {
    fn value(&mut self, v: &Value, ty: &Type) -> Result<(), CodecError> {
        if let Type::Dynamic = ty {
            return match v {
                Value::Null => {
                    self.out.push_str("null");
                    Ok(())
                }
                Value::Dynamic(t, inner) => {
                    check_dynamic_type(t, &self.walk)?;
                    self.out.push_str("{\"value\":");
                    self.walk.enter()?;
                    let r = self.value(inner, t);
                    self.walk.leave();
                    r?;
                    self.out.push_str(",\"type\":");
                    self.out.push_str(&String::from_utf8_lossy(&t.to_json()));
                    self.out.push('}');
                    Ok(())
                }
                Value::Unknown => Err(self.walk.err("an unknown value cannot be encoded as JSON")),
                other => Err(self.walk.err(format!(
                    "a value of dynamic type must be a Value::Dynamic carrying its type, found {}",
                    other.kind()
                ))),
            };
        }
        match (ty, v) {
            (_, Value::Null) => self.out.push_str("null"),
            (_, Value::Unknown) => return Err(self.walk.err("an unknown value cannot be encoded as JSON")),
            (Type::Bool, Value::Bool(b)) => self.out.push_str(if *b { "true" } else { "false" }),
            (Type::Number, Value::Number(n)) => {
                if n.is_infinite() {
                    return Err(self.walk.err("an infinite number cannot be encoded as JSON"));
                }
                self.out.push_str(&n.to_string());
            }
            (Type::String, Value::String(s)) => self.out.push_str(&quote(s)),
            (Type::List(e), Value::List(vs)) | (Type::Set(e), Value::Set(vs)) => {
                let e = e.as_ref();
                self.elements(ty, vs, |_| e)?;
            }
            (Type::Tuple(ts), Value::Tuple(vs)) => {
                if ts.len() != vs.len() {
                    return Err(self.walk.err(format!(
                        "expected a tuple of {} elements, found {}",
                        ts.len(),
                        vs.len()
                    )));
                }
                self.elements(ty, vs, |i| ts.get(i).unwrap_or(&Type::Dynamic))?;
            }
            (Type::Map(e), Value::Map(m)) => {
                self.walk.enter()?;
                self.out.push('{');
                for (i, (k, item)) in m.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.out.push_str(&quote(k));
                    self.out.push(':');
                    self.walk.push(PathStep::Key(k.clone()));
                    let r = self.value(item, e);
                    self.walk.pop();
                    r?;
                }
                self.out.push('}');
                self.walk.leave();
            }
            (Type::Object { attributes, .. }, Value::Object(m)) => {
                check_object_attributes(attributes, m, &self.walk)?;
                self.walk.enter()?;
                self.out.push('{');
                for (i, (k, t)) in attributes.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.out.push_str(&quote(k));
                    self.out.push(':');
                    self.walk.push(PathStep::Attr(k.clone()));
                    let r = match m.get(k) {
                        Some(item) => self.value(item, t),
                        None => Err(self.walk.err("attribute missing from the object value")),
                    };
                    self.walk.pop();
                    r?;
                }
                self.out.push('}');
                self.walk.leave();
            }
            (ty, v) => return Err(self.walk.err(format!("expected {}, found {}", ty.kind(), v.kind()))),
        }
        Ok(())
    }

    fn elements<'t>(
        &mut self,
        ty: &Type,
        vs: &[Value],
        element_type: impl Fn(usize) -> &'t Type,
    ) -> Result<(), CodecError> {
        self.walk.enter()?;
        self.out.push('[');
        for (i, item) in vs.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.walk.push(element_step(ty, i));
            let r = self.value(item, element_type(i));
            self.walk.pop();
            r?;
        }
        self.out.push(']');
        self.walk.leave();
        Ok(())
    }
}

/// The concrete type a [`Value::Dynamic`] carries must not be `dynamic` itself, and must be
/// shallow enough to write out.
pub(crate) fn check_dynamic_type(t: &Type, walk: &Walk) -> Result<(), CodecError> {
    if *t == Type::Dynamic {
        return Err(walk.err("a Value::Dynamic must carry a concrete type, not dynamic"));
    }
    if t.depth_within(MAX_DEPTH).is_none() {
        return Err(walk.err(format!("type nests deeper than {MAX_DEPTH} levels")));
    }
    Ok(())
}

/// An object value must have no attribute its type lacks (missing ones are reported as they
/// are reached).
pub(crate) fn check_object_attributes(
    attributes: &BTreeMap<String, Type>,
    m: &BTreeMap<String, Value>,
    walk: &Walk,
) -> Result<(), CodecError> {
    match m.keys().find(|k| !attributes.contains_key(*k)) {
        Some(extra) => Err(walk.err(format!("object value has attribute {} which its type lacks", quote(extra)))),
        None => Ok(()),
    }
}
