//! Typed schemas: what a provider, resource or data source accepts and returns. The value type
//! of a block is derived from its schema, so decoding a DynamicValue never needs a second source
//! of truth.

use std::collections::BTreeMap;

use crate::tfvalue::{Type, Value};

/// A versioned schema (the version drives state upgrades).
#[derive(Debug, Clone)]
pub struct Schema {
    pub version: i64,
    pub block: Block,
}

#[derive(Debug, Clone, Default)]
pub struct Block {
    pub description: &'static str,
    pub attributes: Vec<Attribute>,
    pub blocks: Vec<NestedBlock>,
}

/// How a nested block repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    Single,
    List,
    Set,
}

#[derive(Debug, Clone)]
pub struct NestedBlock {
    pub name: &'static str,
    pub nesting: Nesting,
    pub block: Block,
    pub min_items: i64,
    pub max_items: i64,
}

#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: &'static str,
    pub ty: Type,
    pub description: &'static str,
    pub required: bool,
    pub optional: bool,
    pub computed: bool,
    pub sensitive: bool,
    /// A change to this attribute replaces the resource.
    pub requires_replace: bool,
    /// When computed and unknown in the plan, keep the prior state's value.
    pub use_state_for_unknown: bool,
    /// For an optional computed attribute: the value planned when the configuration leaves it
    /// null, so the plan shows it instead of "(known after apply)".
    pub default: Option<Value>,
    /// For a `requires_replace` attribute: two values this says are the same object (say, a
    /// short id and the ARN it stands for) change it in place instead of replacing it.
    pub equivalent: Option<fn(&Value, &Value) -> bool>,
}

impl Attribute {
    fn new(name: &'static str, ty: Type, description: &'static str) -> Attribute {
        Attribute {
            name,
            ty,
            description,
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            requires_replace: false,
            use_state_for_unknown: false,
            default: None,
            equivalent: None,
        }
    }

    pub fn required(name: &'static str, ty: Type, description: &'static str) -> Attribute {
        Attribute { required: true, ..Attribute::new(name, ty, description) }
    }

    pub fn optional(name: &'static str, ty: Type, description: &'static str) -> Attribute {
        Attribute { optional: true, ..Attribute::new(name, ty, description) }
    }

    /// Set by the provider, never by the user.
    pub fn computed(name: &'static str, ty: Type, description: &'static str) -> Attribute {
        Attribute { computed: true, ..Attribute::new(name, ty, description) }
    }

    /// Set by the user or, when omitted, by the provider.
    pub fn optional_computed(name: &'static str, ty: Type, description: &'static str) -> Attribute {
        Attribute { optional: true, computed: true, ..Attribute::new(name, ty, description) }
    }

    pub fn sensitive(mut self) -> Attribute {
        self.sensitive = true;
        self
    }

    pub fn requires_replace(mut self) -> Attribute {
        self.requires_replace = true;
        self
    }

    pub fn use_state_for_unknown(mut self) -> Attribute {
        self.use_state_for_unknown = true;
        self
    }

    /// A change between values that `same` calls equivalent does not replace the resource (the
    /// new spelling is applied in place).
    pub fn equivalent_when(mut self, same: fn(&Value, &Value) -> bool) -> Attribute {
        self.equivalent = Some(same);
        self
    }

    /// Plans `value` when the configuration leaves the attribute null. Only for optional computed
    /// attributes: Terraform rejects a provider-chosen value for an attribute that is not computed.
    pub fn default_value(mut self, value: impl Into<Value>) -> Attribute {
        debug_assert!(self.optional && self.computed, "{}: a default needs an optional computed attribute", self.name);
        self.default = Some(value.into());
        self
    }
}

impl Block {
    /// The object type of this block's values.
    pub fn value_type(&self) -> Type {
        let mut attrs: BTreeMap<String, Type> = BTreeMap::new();
        for a in &self.attributes {
            attrs.insert(a.name.to_string(), a.ty.clone());
        }
        for b in &self.blocks {
            let inner = b.block.value_type();
            let ty = match b.nesting {
                Nesting::Single => inner,
                Nesting::List => Type::List(Box::new(inner)),
                Nesting::Set => Type::Set(Box::new(inner)),
            };
            attrs.insert(b.name.to_string(), ty);
        }
        Type::object(attrs)
    }

    /// An object of this block with every attribute and nested block null: the skeleton an import
    /// fills with its id before Terraform reads the rest.
    pub fn null_state(&self) -> BTreeMap<String, Value> {
        let names = self.attributes.iter().map(|a| a.name).chain(self.blocks.iter().map(|b| b.name));
        names.map(|n| (n.to_string(), Value::Null)).collect()
    }

    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
}

impl Schema {
    pub fn value_type(&self) -> Type {
        self.block.value_type()
    }
}
