//! [`CodecError`]: what went wrong and where, as an attribute path.

use std::fmt;

use orgsec_proto::tfplugin6::AttributePath;
use orgsec_proto::tfplugin6::attribute_path::{Step, step::Selector};

/// One step of the path from the root value to where an error happened.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathStep {
    /// An object attribute, rendered `.name`.
    Attr(String),
    /// A list or tuple element, rendered `[3]`.
    Index(u64),
    /// A map element, rendered `["key"]`.
    Key(String),
    /// A set element by its position in the encoded input, rendered `[3]`. Set elements have no
    /// stable address in Terraform, so [`CodecError::attribute_path`] stops before this step.
    SetElement(u64),
}

/// A value or type could not be decoded or encoded. The message names the attribute path and
/// what was expected, e.g. `.assume_role.role_arn: expected string, found integer`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CodecError {
    path: Vec<PathStep>,
    message: String,
}

impl CodecError {
    pub(crate) fn new(path: &[PathStep], message: impl Into<String>) -> CodecError {
        CodecError { path: path.to_vec(), message: message.into() }
    }

    /// An error about the whole input rather than one place in it.
    pub(crate) fn root(message: impl Into<String>) -> CodecError {
        CodecError { path: Vec::new(), message: message.into() }
    }

    /// Where the error happened; empty for the root value.
    pub fn path(&self) -> &[PathStep] {
        &self.path
    }

    /// What went wrong, without the path.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The path as a tfplugin6 attribute path, for a diagnostic. Steps below a set element are
    /// dropped: Terraform addresses set elements by value, which this path does not carry.
    pub fn attribute_path(&self) -> AttributePath {
        let mut steps = Vec::new();
        for s in &self.path {
            let selector = match s {
                PathStep::Attr(n) => Selector::AttributeName(n.clone()),
                PathStep::Key(k) => Selector::ElementKeyString(k.clone()),
                PathStep::Index(i) => Selector::ElementKeyInt(i64::try_from(*i).unwrap_or(i64::MAX)),
                PathStep::SetElement(_) => break,
            };
            steps.push(Step { selector: Some(selector) });
        }
        AttributePath { steps }
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            return f.write_str(&self.message);
        }
        for s in &self.path {
            match s {
                PathStep::Attr(n) => write!(f, ".{n}")?,
                PathStep::Index(i) | PathStep::SetElement(i) => write!(f, "[{i}]")?,
                PathStep::Key(k) => {
                    f.write_str("[")?;
                    f.write_str(&super::json::quote(k))?;
                    f.write_str("]")?;
                }
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// The stack of path steps a codec maintains while it walks a value, and the nesting depth that
/// goes with it.
pub(crate) struct Walk {
    pub(crate) path: Vec<PathStep>,
    depth: usize,
}

impl Walk {
    pub(crate) fn new() -> Walk {
        Walk { path: Vec::new(), depth: 0 }
    }

    /// A fresh depth count whose errors are reported at `path`.
    pub(crate) fn at(path: &[PathStep]) -> Walk {
        Walk { path: path.to_vec(), depth: 0 }
    }

    /// An error at the current position.
    pub(crate) fn err(&self, message: impl Into<String>) -> CodecError {
        CodecError::new(&self.path, message)
    }

    /// Enters one more level of nesting, failing past [`super::MAX_DEPTH`].
    pub(crate) fn enter(&mut self) -> Result<(), CodecError> {
        if self.depth >= super::MAX_DEPTH {
            return Err(self.err(format!("nesting deeper than {} levels", super::MAX_DEPTH)));
        }
        self.depth += 1;
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    pub(crate) fn push(&mut self, step: PathStep) {
        self.path.push(step);
    }

    pub(crate) fn pop(&mut self) {
        self.path.pop();
    }
}
