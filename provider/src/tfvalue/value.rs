//! [`Value`]: a Terraform value, possibly null or unknown at any level.

use std::collections::BTreeMap;

use super::{Number, Type};

/// A Terraform value. A value does not carry its type: the codecs pair it with the [`Type`] the
/// schema gives, and check that the two agree.
///
/// | type | value |
/// |---|---|
/// | any | `Null`, `Unknown` |
/// | `bool`, `number`, `string` | `Bool`, `Number`, `String` |
/// | `list(T)`, `set(T)`, `tuple([...])` | `List`, `Set`, `Tuple` (elements of the element types) |
/// | `map(T)` | `Map` |
/// | `object({...})` | `Object`, with exactly the type's attributes (each may be `Null`) |
/// | `dynamic` | `Dynamic(concrete type, value of that type)` |
///
/// A set keeps its elements in the order they were decoded or built; the codecs do not remove
/// duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Null: absent in the configuration, or explicitly `null`.
    Null,
    /// Not known until apply. Refinements Terraform may attach (string prefix, number bounds,
    /// not-null) are accepted and dropped.
    Unknown,
    Bool(bool),
    Number(Number),
    String(String),
    List(Vec<Value>),
    Set(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Object(BTreeMap<String, Value>),
    Tuple(Vec<Value>),
    /// A value at a position of the `dynamic` pseudo-type, with the concrete type it has there
    /// (never [`Type::Dynamic`] itself). The inner value may be null or unknown of that type; a
    /// null or unknown whose type is not known either is plain [`Value::Null`] / [`Value::Unknown`].
    Dynamic(Type, Box<Value>),
}

impl Value {
    /// A value of concrete type `ty` at a `dynamic` position.
    pub fn dynamic(ty: Type, value: Value) -> Value {
        Value::Dynamic(ty, Box::new(value))
    }

    /// The value itself, seen through any [`Value::Dynamic`] wrapper.
    pub fn unwrap_dynamic(&self) -> &Value {
        let mut v = self;
        while let Value::Dynamic(_, inner) = v {
            v = inner;
        }
        v
    }

    /// Whether the value is null (looking through a dynamic wrapper).
    pub fn is_null(&self) -> bool {
        matches!(self.unwrap_dynamic(), Value::Null)
    }

    /// Whether the value itself is unknown (looking through a dynamic wrapper). A known list may
    /// still contain unknown elements: see [`Value::is_known_fully`].
    pub fn is_unknown(&self) -> bool {
        matches!(self.unwrap_dynamic(), Value::Unknown)
    }

    /// Whether neither the value nor anything nested in it is unknown.
    pub fn is_known_fully(&self) -> bool {
        let mut stack = vec![self];
        while let Some(v) = stack.pop() {
            match v {
                Value::Unknown => return false,
                Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
                Value::List(vs) | Value::Set(vs) | Value::Tuple(vs) => stack.extend(vs),
                Value::Map(m) | Value::Object(m) => stack.extend(m.values()),
                Value::Dynamic(_, inner) => stack.push(inner),
            }
        }
        true
    }

    /// Attribute `name` of an object value; `None` when this is not a known object or has no
    /// such attribute.
    pub fn get_attr(&self, name: &str) -> Option<&Value> {
        match self.unwrap_dynamic() {
            Value::Object(m) => m.get(name),
            _ => None,
        }
    }

    /// The string, if this is a known string.
    pub fn as_str(&self) -> Option<&str> {
        match self.unwrap_dynamic() {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is a known bool.
    pub fn as_bool(&self) -> Option<bool> {
        match self.unwrap_dynamic() {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number, if this is a known number.
    pub fn as_number(&self) -> Option<&Number> {
        match self.unwrap_dynamic() {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    /// The number as an `i64`, if this is a known integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_number()?.as_i64()
    }

    /// The elements, if this is a known list, set or tuple.
    pub fn as_elements(&self) -> Option<&[Value]> {
        match self.unwrap_dynamic() {
            Value::List(vs) | Value::Set(vs) | Value::Tuple(vs) => Some(vs),
            _ => None,
        }
    }

    /// The entries, if this is a known map or object.
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self.unwrap_dynamic() {
            Value::Map(m) | Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// A short name for messages: `string`, `list`, `null`, ...
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Unknown => "unknown",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Map(_) => "map",
            Value::Object(_) => "object",
            Value::Tuple(_) => "tuple",
            Value::Dynamic(..) => "dynamic value",
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Number(Number::from(n))
    }
}

impl From<Number> for Value {
    fn from(n: Number) -> Value {
        Value::Number(n)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    /// `None` is null.
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}
