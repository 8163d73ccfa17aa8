//! Diagnostics: what Terraform shows the user. Validation collects every problem at once, each
//! with the path of the attribute it is about, instead of stopping at the first.

/// A path to an attribute: `assume_role[0].role_arn` is `Attr(assume_role) Index(0) Attr(role_arn)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttrPath(pub Vec<Step>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Attr(String),
    Key(String),
    Index(i64),
}

impl AttrPath {
    pub fn root(name: &str) -> AttrPath {
        AttrPath(vec![Step::Attr(name.to_string())])
    }

    pub fn attr(&self, name: &str) -> AttrPath {
        let mut p = self.clone();
        p.0.push(Step::Attr(name.to_string()));
        p
    }

    pub fn index(&self, i: i64) -> AttrPath {
        let mut p = self.clone();
        p.0.push(Step::Index(i));
        p
    }

    pub fn key(&self, k: &str) -> AttrPath {
        let mut p = self.clone();
        p.0.push(Step::Key(k.to_string()));
        p
    }
}

impl std::fmt::Display for AttrPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Step::Attr(a) if i == 0 => write!(f, "{a}")?,
                Step::Attr(a) => write!(f, ".{a}")?,
                Step::Key(k) => write!(f, "[{k:?}]")?,
                Step::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub summary: String,
    pub detail: String,
    pub path: Option<AttrPath>,
}

/// Diagnostics collected while handling one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn error(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.0.push(Diagnostic {
            severity: Severity::Error,
            summary: summary.into(),
            detail: detail.into(),
            path: None,
        });
    }

    pub fn error_at(&mut self, path: AttrPath, summary: impl Into<String>, detail: impl Into<String>) {
        self.0.push(Diagnostic {
            severity: Severity::Error,
            summary: summary.into(),
            detail: detail.into(),
            path: Some(path),
        });
    }

    pub fn warning(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.0.push(Diagnostic {
            severity: Severity::Warning,
            summary: summary.into(),
            detail: detail.into(),
            path: None,
        });
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_terraform_addresses() {
        let p = AttrPath::root("assume_role").index(0).attr("role_arn");
        assert_eq!(p.to_string(), "assume_role[0].role_arn");
        assert_eq!(AttrPath::root("tags").key("env").to_string(), "tags[\"env\"]");
    }
}
