//! [`Type`]: Terraform's types and their JSON form.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::CodecError;
use super::error::{PathStep, Walk};
use super::json::{self, Json};

/// A Terraform type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Type {
    Bool,
    Number,
    String,
    /// The `dynamic` pseudo-type ("any"): each value at such a position carries its own concrete
    /// type, see [`super::Value::Dynamic`].
    Dynamic,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    /// Named attributes. `optional` lists the attributes a type conversion may omit; it does not
    /// change how values are encoded (every attribute is always present, possibly null).
    Object {
        attributes: BTreeMap<String, Type>,
        optional: BTreeSet<String>,
    },
    Tuple(Vec<Type>),
}

impl Type {
    /// `list(element)`.
    pub fn list(element: Type) -> Type {
        Type::List(Box::new(element))
    }

    /// `set(element)`.
    pub fn set(element: Type) -> Type {
        Type::Set(Box::new(element))
    }

    /// `map(element)`.
    pub fn map(element: Type) -> Type {
        Type::Map(Box::new(element))
    }

    /// An object type with these attributes, none optional.
    pub fn object<K: Into<String>>(attributes: impl IntoIterator<Item = (K, Type)>) -> Type {
        Type::Object {
            attributes: attributes.into_iter().map(|(k, t)| (k.into(), t)).collect(),
            optional: BTreeSet::new(),
        }
    }

    /// `tuple([elements...])`.
    pub fn tuple(elements: impl IntoIterator<Item = Type>) -> Type {
        Type::Tuple(elements.into_iter().collect())
    }

    /// The type of attribute `name` when this is an object type.
    pub fn attribute_type(&self, name: &str) -> Option<&Type> {
        match self {
            Type::Object { attributes, .. } => attributes.get(name),
            _ => None,
        }
    }

    /// The element type of a list, set or map type.
    pub fn element_type(&self) -> Option<&Type> {
        match self {
            Type::List(t) | Type::Set(t) | Type::Map(t) => Some(t),
            _ => None,
        }
    }

    /// Parses the JSON form of a type: `"bool"`, `"number"`, `"string"`, `"dynamic"`,
    /// `["list",T]`, `["set",T]`, `["map",T]`, `["object",{"name":T,...}]` with an optional third
    /// element listing optional attribute names, and `["tuple",[T,...]]`.
    pub fn from_json(bytes: &[u8]) -> Result<Type, CodecError> {
        let node = json::parse(bytes)?;
        Type::from_node(&node, &mut Walk::new())
    }

    /// The JSON form of the type, compact and with sorted keys, as Terraform writes it.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = String::new();
        self.write_json(&mut out);
        out.into_bytes()
    }

    /// Converts an already parsed JSON type description. The walk only bounds nesting.
    pub(crate) fn from_node(node: &Json, walk: &mut Walk) -> Result<Type, CodecError> {
        match node {
            Json::String(s) => match s.as_str() {
                "bool" => Ok(Type::Bool),
                "number" => Ok(Type::Number),
                "string" => Ok(Type::String),
                "dynamic" => Ok(Type::Dynamic),
                other => Err(walk.err(format!("invalid type: unknown primitive type {}", json::quote(other)))),
            },
            Json::Array(items) => {
                walk.enter()?;
                let t = Type::from_complex(items, walk);
                walk.leave();
                t
            }
            other => Err(walk.err(format!("invalid type: expected a type name or array, found {}", other.kind()))),
        }
    }

    fn from_complex(items: &[Json], walk: &mut Walk) -> Result<Type, CodecError> {
        let (kind, rest) = match items.split_first() {
            Some((Json::String(k), rest)) => (k.as_str(), rest),
            _ => return Err(walk.err("invalid type: a complex type's array must start with its kind name")),
        };
        let arity_error = |n: &str| walk.err(format!("invalid type: {kind} takes {n}"));
        match kind {
            "list" | "set" | "map" => {
                let [element] = rest else { return Err(arity_error("one element type")) };
                let element = Box::new(Type::from_node(element, walk)?);
                Ok(match kind {
                    "list" => Type::List(element),
                    "set" => Type::Set(element),
                    _ => Type::Map(element),
                })
            }
            "object" => {
                let (attrs, opts) = match rest {
                    [a] => (a, None),
                    [a, o] => (a, Some(o)),
                    _ => return Err(arity_error("an attribute map and optionally a list of optional attributes")),
                };
                let Json::Object(members) = attrs else {
                    return Err(walk.err(format!(
                        "invalid type: object attributes must be a JSON object, found {}",
                        attrs.kind()
                    )));
                };
                let mut attributes = BTreeMap::new();
                for (name, t) in members {
                    let t = Type::from_node(t, walk)?;
                    if attributes.insert(name.clone(), t).is_some() {
                        return Err(walk.err(format!("invalid type: duplicate object attribute {}", json::quote(name))));
                    }
                }
                let mut optional = BTreeSet::new();
                match opts {
                    None => {}
                    Some(Json::Array(names)) => {
                        for n in names {
                            let Json::String(n) = n else {
                                return Err(walk.err("invalid type: optional attribute names must be strings"));
                            };
                            if !attributes.contains_key(n) {
                                return Err(walk.err(format!(
                                    "invalid type: optional attribute {} is not an attribute of the object",
                                    json::quote(n)
                                )));
                            }
                            optional.insert(n.clone());
                        }
                    }
                    Some(other) => {
                        return Err(walk.err(format!(
                            "invalid type: optional attributes must be a JSON array, found {}",
                            other.kind()
                        )));
                    }
                }
                Ok(Type::Object { attributes, optional })
            }
            "tuple" => {
                let [Json::Array(elements)] = rest else {
                    return Err(arity_error("one array of element types"));
                };
                let mut types = Vec::with_capacity(elements.len());
                for e in elements {
                    types.push(Type::from_node(e, walk)?);
                }
                Ok(Type::Tuple(types))
            }
            other => Err(walk.err(format!("invalid type: unknown type kind {}", json::quote(other)))),
        }
    }

    fn write_json(&self, out: &mut String) {
        match self {
            Type::Bool => out.push_str("\"bool\""),
            Type::Number => out.push_str("\"number\""),
            Type::String => out.push_str("\"string\""),
            Type::Dynamic => out.push_str("\"dynamic\""),
            Type::List(t) | Type::Set(t) | Type::Map(t) => {
                out.push_str(match self {
                    Type::List(_) => "[\"list\",",
                    Type::Set(_) => "[\"set\",",
                    _ => "[\"map\",",
                });
                t.write_json(out);
                out.push(']');
            }
            Type::Object { attributes, optional } => {
                out.push_str("[\"object\",{");
                for (i, (name, t)) in attributes.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&json::quote(name));
                    out.push(':');
                    t.write_json(out);
                }
                out.push('}');
                if !optional.is_empty() {
                    out.push_str(",[");
                    for (i, name) in optional.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(&json::quote(name));
                    }
                    out.push(']');
                }
                out.push(']');
            }
            Type::Tuple(elements) => {
                out.push_str("[\"tuple\",[");
                for (i, t) in elements.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    t.write_json(out);
                }
                out.push_str("]]");
            }
        }
    }

    /// A short name for messages: `string`, `list`, `object`, ...
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Type::Bool => "bool",
            Type::Number => "number",
            Type::String => "string",
            Type::Dynamic => "dynamic",
            Type::List(_) => "list",
            Type::Set(_) => "set",
            Type::Map(_) => "map",
            Type::Object { .. } => "object",
            Type::Tuple(_) => "tuple",
        }
    }

    /// How deeply the type nests, counting each collection, object and tuple as one level, or
    /// `None` when it is deeper than `limit`. Iterative, so any type can be measured.
    pub(crate) fn depth_within(&self, limit: usize) -> Option<usize> {
        let mut deepest = 0;
        let mut stack: Vec<(&Type, usize)> = vec![(self, 0)];
        while let Some((t, d)) = stack.pop() {
            if d > limit {
                return None;
            }
            deepest = deepest.max(d);
            match t {
                Type::List(e) | Type::Set(e) | Type::Map(e) => stack.push((e, d + 1)),
                Type::Object { attributes, .. } => stack.extend(attributes.values().map(|a| (a, d + 1))),
                Type::Tuple(es) => stack.extend(es.iter().map(|e| (e, d + 1))),
                Type::Bool | Type::Number | Type::String | Type::Dynamic => {}
            }
        }
        Some(deepest)
    }
}

impl fmt::Display for Type {
    /// Terraform's type constraint syntax: `list(string)`, `object({a=bool, b=optional(number)})`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool | Type::Number | Type::String => f.write_str(self.kind()),
            Type::Dynamic => f.write_str("any"),
            Type::List(t) => write!(f, "list({t})"),
            Type::Set(t) => write!(f, "set({t})"),
            Type::Map(t) => write!(f, "map({t})"),
            Type::Object { attributes, optional } => {
                f.write_str("object({")?;
                for (i, (name, t)) in attributes.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if optional.contains(name) {
                        write!(f, "{name}=optional({t})")?;
                    } else {
                        write!(f, "{name}={t}")?;
                    }
                }
                f.write_str("})")
            }
            Type::Tuple(ts) => {
                f.write_str("tuple([")?;
                for (i, t) in ts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str("])")
            }
        }
    }
}

/// The path step for element `i` of a value of collection type `ty`.
pub(crate) fn element_step(ty: &Type, i: usize) -> PathStep {
    let i = u64::try_from(i).unwrap_or(u64::MAX);
    match ty {
        Type::Set(_) => PathStep::SetElement(i),
        _ => PathStep::Index(i),
    }
}
