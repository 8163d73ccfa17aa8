//! Who is calling: bearer tokens from a tokens file, stored as SHA-256 hashes, each with a role
//! (`admin`, `app-team` limited to its accounts and OUs, `auditor` read-only); and what a
//! caller may change.
//!
//! ```toml
//! [[token]]
//! name = "web-team"
//! role = "app-team"
//! sha256 = "…64 hex digits, from `orgsec tokens hash`…"
//! accounts = ["333333333333"]
//! organizational_units = ["Root/Prod/Web"]
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::binding::{Scope, ou_within, valid_account, valid_ou_path};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything.
    Admin,
    /// Read everything; change bindings only within its own accounts and OUs.
    AppTeam,
    /// Read everything; change nothing.
    Auditor,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Admin => "admin",
            Role::AppTeam => "app-team",
            Role::Auditor => "auditor",
        })
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name, recorded as who created or changed things.
    pub name: String,
    pub role: Role,
    /// For `app-team`: the accounts it may bind.
    pub accounts: Vec<String>,
    /// For `app-team`: the OUs (and everything below them) it may bind.
    pub organizational_units: Vec<String>,
}

/// Why a call is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No token, or one the tokens file does not hold.
    #[error("{0}")]
    Unauthenticated(String),
    /// A known token whose role or scope does not cover the call.
    #[error("{0}")]
    PermissionDenied(String),
}

/// A tokens file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("cannot read the tokens file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the tokens file {path} is not valid TOML of [[token]] entries: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("the tokens file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    token: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    role: Role,
    sha256: String,
    #[serde(default)]
    accounts: Vec<String>,
    #[serde(default)]
    organizational_units: Vec<String>,
}

/// The tokens the API accepts, by the SHA-256 of the token.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    by_hash: HashMap<String, Principal>,
}

/// The SHA-256 of `token`, in lowercase hex: what the tokens file stores.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl Tokens {
    /// Reads and checks the tokens file at `path`.
    pub fn load(path: &Path) -> Result<Tokens, TokensError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| TokensError::Read { path: path.to_path_buf(), source })?;
        Tokens::parse(&text).map_err(|e| match e {
            ParseError::Toml(message) => TokensError::Parse { path: path.to_path_buf(), message },
            ParseError::Invalid(message) => TokensError::Invalid { path: path.to_path_buf(), message },
        })
    }

    fn parse(text: &str) -> Result<Tokens, ParseError> {
        let file: File = toml::from_str(text).map_err(|e| ParseError::Toml(e.message().to_string()))?;
        let mut tokens = Tokens::default();
        let mut names = std::collections::HashSet::new();
        for e in file.token {
            let invalid = |m: String| ParseError::Invalid(format!("token \"{}\": {m}", e.name));
            if e.name.trim().is_empty() {
                return Err(ParseError::Invalid("a token has an empty name".into()));
            }
            if !names.insert(e.name.clone()) {
                return Err(invalid("the name is used twice".into()));
            }
            let hash = e.sha256.to_ascii_lowercase();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(
                    "sha256 must be the token's SHA-256 as 64 hex digits (`orgsec tokens hash` prints it), never the token itself".into(),
                ));
            }
            match e.role {
                Role::AppTeam if e.accounts.is_empty() && e.organizational_units.is_empty() => {
                    return Err(invalid(
                        "an app-team token needs accounts or organizational_units, the scope it may bind in".into(),
                    ));
                }
                Role::Admin | Role::Auditor if !(e.accounts.is_empty() && e.organizational_units.is_empty()) => {
                    return Err(invalid(format!(
                        "only app-team tokens have accounts or organizational_units; a {} token covers everything",
                        e.role
                    )));
                }
                _ => {}
            }
            if let Some(a) = e.accounts.iter().find(|a| !valid_account(a)) {
                return Err(invalid(format!("\"{a}\" is not an AWS account id (12 digits)")));
            }
            if let Some(ou) = e.organizational_units.iter().find(|o| !valid_ou_path(o)) {
                return Err(invalid(format!("\"{ou}\" is not an OU path such as \"Root/Prod\"")));
            }
            let principal = Principal {
                name: e.name.clone(),
                role: e.role,
                accounts: e.accounts,
                organizational_units: e.organizational_units,
            };
            if tokens.by_hash.insert(hash, principal).is_some() {
                return Err(invalid("another token has the same sha256".into()));
            }
        }
        Ok(tokens)
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// The caller behind an `authorization` header value (`Bearer <token>`).
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<&Principal, Denied> {
        let Some(value) = authorization else {
            return Err(Denied::Unauthenticated(
                "no token: send `authorization: Bearer <token>` with a token from the orchestrator's tokens file"
                    .into(),
            ));
        };
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Denied::Unauthenticated("the authorization header is not `Bearer <token>`".into()))?;
        self.by_hash
            .get(&hash_token(token))
            .ok_or_else(|| Denied::Unauthenticated("unknown token: it is not in the orchestrator's tokens file".into()))
    }
}

enum ParseError {
    Toml(String),
    Invalid(String),
}

impl Principal {
    /// Whether the caller may change anything at all.
    pub fn may_write(&self) -> Result<(), Denied> {
        match self.role {
            Role::Auditor => Err(Denied::PermissionDenied(format!(
                "token \"{}\" is an auditor token, which is read-only",
                self.name
            ))),
            Role::Admin | Role::AppTeam => Ok(()),
        }
    }

    /// Whether the caller may read an account's details and findings: admins and auditors every
    /// account; an app team the accounts of its scope, by id or by OU (`ou_path` is the
    /// account's place in the organization, when known).
    pub fn may_read_account(&self, account: &str, ou_path: Option<&str>) -> bool {
        match self.role {
            Role::Admin | Role::Auditor => true,
            Role::AppTeam => {
                self.accounts.iter().any(|a| a == account)
                    || ou_path.is_some_and(|p| self.organizational_units.iter().any(|o| ou_within(p, o)))
            }
        }
    }

    /// Whether the caller may create, change or delete a binding with this scope: an admin
    /// anywhere; an app team only when every account and OU of the scope lies within its own
    /// (an empty scope means every account, which is outside any app team's).
    pub fn may_bind(&self, scope: &Scope) -> Result<(), Denied> {
        self.may_write()?;
        if self.role == Role::Admin {
            return Ok(());
        }
        let within = !scope.is_everywhere()
            && scope.accounts.iter().all(|a| self.accounts.contains(a))
            && scope.organizational_units.iter().all(|ou| self.organizational_units.iter().any(|o| ou_within(ou, o)));
        if within {
            return Ok(());
        }
        let own = Scope {
            accounts: self.accounts.clone(),
            organizational_units: self.organizational_units.clone(),
            tags: Default::default(),
        };
        Err(Denied::PermissionDenied(format!(
            "token \"{}\" (app-team) may only bind within {}; the binding's scope is {}",
            self.name,
            own.describe(),
            scope.describe()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::parse(&format!(
            r#"
[[token]]
name = "platform"
role = "admin"
sha256 = "{}"

[[token]]
name = "web"
role = "app-team"
sha256 = "{}"
accounts = ["333333333333"]
organizational_units = ["Root/Prod/Web"]

[[token]]
name = "audit"
role = "auditor"
sha256 = "{}"
"#,
            hash_token("admin-secret"),
            hash_token("web-secret").to_uppercase(),
            hash_token("audit-secret"),
        ))
        .unwrap_or_else(|_| panic!("parses"))
    }

    fn scope(accounts: &[&str], ous: &[&str]) -> Scope {
        Scope {
            accounts: accounts.iter().map(|s| s.to_string()).collect(),
            organizational_units: ous.iter().map(|s| s.to_string()).collect(),
            tags: Default::default(),
        }
    }

    #[test]
    fn tokens_are_known_by_their_hash() {
        let t = tokens();
        assert_eq!(t.len(), 3);
        assert_eq!(hash_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(t.authenticate(Some("Bearer admin-secret")).map(|p| p.role), Ok(Role::Admin));
        assert_eq!(t.authenticate(Some("Bearer web-secret")).map(|p| p.name.as_str()), Ok("web"));
        assert!(matches!(t.authenticate(None), Err(Denied::Unauthenticated(m)) if m.starts_with("no token")));
        assert!(
            matches!(t.authenticate(Some("Bearer guess")), Err(Denied::Unauthenticated(m)) if m.contains("unknown"))
        );
        assert!(matches!(t.authenticate(Some("admin-secret")), Err(Denied::Unauthenticated(_))));
    }

    #[test]
    fn roles_and_scopes_decide_what_may_be_bound() {
        let t = tokens();
        let admin = t.authenticate(Some("Bearer admin-secret")).unwrap();
        let web = t.authenticate(Some("Bearer web-secret")).unwrap();
        let audit = t.authenticate(Some("Bearer audit-secret")).unwrap();
        assert_eq!(admin.may_bind(&Scope::default()), Ok(()));
        assert!(
            matches!(audit.may_bind(&scope(&["333333333333"], &[])), Err(Denied::PermissionDenied(m)) if m.contains("read-only"))
        );
        assert_eq!(web.may_bind(&scope(&["333333333333"], &["Root/Prod/Web/Blue"])), Ok(()));
        let Err(Denied::PermissionDenied(m)) = web.may_bind(&scope(&["333333333333", "444444444444"], &[])) else {
            panic!("outside")
        };
        assert!(m.contains("accounts [333333333333, 444444444444]"), "{m}");
        let Err(Denied::PermissionDenied(m)) = web.may_bind(&Scope::default()) else { panic!("everything") };
        assert!(m.contains("every account in the organization"), "{m}");
        assert!(web.may_bind(&scope(&[], &["Root/Prod"])).is_err());
    }

    #[test]
    fn a_bad_tokens_file_says_what_to_fix() {
        let bad = |text: &str| match Tokens::parse(text) {
            Err(ParseError::Invalid(m) | ParseError::Toml(m)) => m,
            Ok(_) => panic!("accepted: {text}"),
        };
        assert!(
            bad("[[token]]\nname = \"x\"\nrole = \"admin\"\nsha256 = \"s3cret\"").contains("never the token itself")
        );
        let h = hash_token("x");
        assert!(
            bad(&format!("[[token]]\nname = \"x\"\nrole = \"app-team\"\nsha256 = \"{h}\"")).contains("needs accounts")
        );
        assert!(
            bad(&format!("[[token]]\nname = \"x\"\nrole = \"root\"\nsha256 = \"{h}\"")).contains("unknown variant")
        );
        assert!(
            bad(&format!(
                "[[token]]\nname = \"x\"\nrole = \"admin\"\nsha256 = \"{h}\"\n[[token]]\nname = \"y\"\nrole = \"auditor\"\nsha256 = \"{h}\""
            ))
            .contains("same sha256")
        );
    }
}
