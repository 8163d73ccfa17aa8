//! `orgsec_organization`: the AWS Organization as the provider's account sees it — its accounts
//! with their OU paths and tags, and its OUs — so that a configuration can enroll or baseline
//! every account of an OU with `for_each` instead of a hand-kept list.
//!
//! OU paths are OU names from the root down, joined by `/` and starting at `Root`: an account
//! directly under the root is in `Root`, one in the Web OU inside Prod is in `Root/Prod/Web`.

use std::collections::{BTreeMap, VecDeque};

use aws_sdk_organizations::types::{Account, OrganizationalUnit};

use crate::aws::{self, Aws};
use crate::framework::DataSource;
use crate::framework::diag::{AttrPath, Diagnostics};
use crate::framework::resource::{BoxFuture, Ctx};
use crate::framework::schema::{Attribute, Block, Schema};
use crate::tfvalue::{Type, Value};

#[derive(Debug, Clone, Copy)]
pub struct Organization;

/// The name every path starts with.
const ROOT: &str = "Root";
/// Stops a malformed or cyclic tree from walking forever.
const MAX_OUS: usize = 10_000;

fn account_type() -> Type {
    Type::object([
        ("id", Type::String),
        ("name", Type::String),
        ("email", Type::String),
        ("status", Type::String),
        ("ou_id", Type::String),
        ("ou_path", Type::String),
        ("tags", Type::map(Type::String)),
    ])
}

fn ou_type() -> Type {
    Type::object([("id", Type::String), ("name", Type::String), ("path", Type::String), ("parent_id", Type::String)])
}

impl DataSource for Organization {
    fn type_name(&self) -> &'static str {
        "orgsec_organization"
    }

    fn schema(&self) -> Schema {
        Schema {
            version: 0,
            block: Block {
                description: "The AWS Organization the provider's account belongs to: its accounts (id, name, email, status, OU and tags) and its organizational units. Needs the management account or a delegated administrator.",
                attributes: vec![
                    Attribute::optional(
                        "ou_path",
                        Type::String,
                        "Only accounts and OUs at or below this OU path, such as `Root/Prod`. Paths are OU names from `Root` down, joined by `/`. All of them when omitted.",
                    ),
                    Attribute::computed("id", Type::String, "The organization id (`o-...`)."),
                    Attribute::computed("arn", Type::String, "ARN of the organization."),
                    Attribute::computed(
                        "management_account_id",
                        Type::String,
                        "The account id of the organization's management account.",
                    ),
                    Attribute::computed(
                        "accounts",
                        Type::list(account_type()),
                        "The accounts, sorted by id: `id`, `name`, `email`, `status` (`ACTIVE`, `SUSPENDED`, ...), `ou_id` (the id of the OU or root holding it), `ou_path` and `tags`.",
                    ),
                    Attribute::computed(
                        "organizational_units",
                        Type::list(ou_type()),
                        "The organizational units, sorted by path: `id`, `name`, `path` and `parent_id`.",
                    ),
                ],
                blocks: vec![],
            },
        }
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        if let Some(path) = config.get_attr("ou_path").and_then(Value::as_str)
            && let Err(why) = check_path(path)
        {
            diags.error_at(AttrPath::root("ou_path"), "Invalid OU path", why);
        }
    }

    fn read<'a>(&'a self, ctx: &'a Ctx, config: &'a Value) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            let filter = config.get_attr("ou_path").and_then(Value::as_str).map(str::to_string);
            let tree = Tree::read(&ctx.aws).await?;
            if let Some(f) = &filter
                && !tree.ous.iter().any(|o| &o.path == f)
                && f != ROOT
            {
                let mut d = Diagnostics::default();
                let known: Vec<&str> = tree.ous.iter().map(|o| o.path.as_str()).collect();
                d.error_at(
                    AttrPath::root("ou_path"),
                    "No such OU",
                    format!(
                        "The organization has no OU at \"{f}\". Its OU paths are: {}.",
                        if known.is_empty() { "none besides Root".to_string() } else { known.join(", ") }
                    ),
                );
                return Err(d);
            }
            let within = |path: &str| filter.as_deref().is_none_or(|f| under(path, f));
            let mut accounts = Vec::new();
            for a in tree.accounts.iter().filter(|a| within(&a.ou_path)) {
                let tags = tags(&ctx.aws, &a.id).await?;
                accounts.push(a.value(tags));
            }
            let ous = tree.ous.iter().filter(|o| within(&o.path)).map(OuEntry::value).collect();
            let mut out = BTreeMap::new();
            out.insert("ou_path".to_string(), filter.map_or(Value::Null, Value::String));
            out.insert("id".to_string(), Value::String(tree.id));
            out.insert("arn".to_string(), Value::String(tree.arn));
            out.insert("management_account_id".to_string(), Value::String(tree.management_account_id));
            out.insert("accounts".to_string(), Value::List(accounts));
            out.insert("organizational_units".to_string(), Value::List(ous));
            Ok(Value::Object(out))
        })
    }
}

/// `Root` or `Root/` followed by non-empty OU names.
fn check_path(path: &str) -> Result<(), String> {
    let mut parts = path.split('/');
    if parts.next() != Some(ROOT) {
        return Err(format!("\"{path}\" must start with \"{ROOT}\", as in \"{ROOT}/Prod\"."));
    }
    if parts.any(str::is_empty) {
        return Err(format!(
            "\"{path}\" has an empty OU name; write OU names joined by single slashes, as in \"{ROOT}/Prod/Web\"."
        ));
    }
    Ok(())
}

/// Whether `path` is `base` or below it.
fn under(path: &str, base: &str) -> bool {
    path == base || path.strip_prefix(base).is_some_and(|rest| rest.starts_with('/'))
}

struct AccountEntry {
    id: String,
    name: String,
    email: String,
    status: String,
    ou_id: String,
    ou_path: String,
}

impl AccountEntry {
    fn new(a: &Account, ou_id: &str, ou_path: &str) -> AccountEntry {
        AccountEntry {
            id: a.id().unwrap_or_default().to_string(),
            name: a.name().unwrap_or_default().to_string(),
            email: a.email().unwrap_or_default().to_string(),
            status: a.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
            ou_id: ou_id.to_string(),
            ou_path: ou_path.to_string(),
        }
    }

    fn value(&self, tags: BTreeMap<String, String>) -> Value {
        let s = |x: &str| Value::String(x.to_string());
        Value::Object(BTreeMap::from([
            ("id".to_string(), s(&self.id)),
            ("name".to_string(), s(&self.name)),
            ("email".to_string(), s(&self.email)),
            ("status".to_string(), s(&self.status)),
            ("ou_id".to_string(), s(&self.ou_id)),
            ("ou_path".to_string(), s(&self.ou_path)),
            ("tags".to_string(), Value::Map(tags.into_iter().map(|(k, v)| (k, Value::String(v))).collect())),
        ]))
    }
}

struct OuEntry {
    id: String,
    name: String,
    path: String,
    parent_id: String,
}

impl OuEntry {
    fn new(ou: &OrganizationalUnit, parent_id: &str, parent_path: &str) -> OuEntry {
        let name = ou.name().unwrap_or_default().to_string();
        OuEntry {
            id: ou.id().unwrap_or_default().to_string(),
            path: format!("{parent_path}/{name}"),
            name,
            parent_id: parent_id.to_string(),
        }
    }

    fn value(&self) -> Value {
        let s = |x: &str| Value::String(x.to_string());
        Value::Object(BTreeMap::from([
            ("id".to_string(), s(&self.id)),
            ("name".to_string(), s(&self.name)),
            ("path".to_string(), s(&self.path)),
            ("parent_id".to_string(), s(&self.parent_id)),
        ]))
    }
}

/// The organization walked from its root: every OU with its path, every account with its OU.
struct Tree {
    id: String,
    arn: String,
    management_account_id: String,
    accounts: Vec<AccountEntry>,
    ous: Vec<OuEntry>,
}

impl Tree {
    async fn read(aws: &Aws) -> Result<Tree, Diagnostics> {
        let org = aws.organizations();
        let fail = |doing: &str, e: String| aws.error(doing, e);
        let described = org.describe_organization().send().await.map_err(|e| {
            let detail = match aws::code(&e) {
                Some("AWSOrganizationsNotInUseException") => {
                    format!("Account {} is not in an AWS Organization.", aws.account_id)
                }
                Some("AccessDeniedException") => format!(
                    "{}. Read the organization from its management account or a delegated administrator.",
                    aws::describe(&e)
                ),
                _ => aws::describe(&e),
            };
            fail("reading the organization", detail)
        })?;
        let o = described.organization();
        let roots =
            org.list_roots().send().await.map_err(|e| fail("listing the organization's roots", aws::describe(&e)))?;
        let mut queue: VecDeque<(String, String)> =
            roots.roots().iter().filter_map(|r| r.id()).map(|id| (id.to_string(), ROOT.to_string())).collect();
        let (mut accounts, mut ous) = (Vec::new(), Vec::new());
        while let Some((parent, path)) = queue.pop_front() {
            let mut token = None;
            loop {
                let page = org
                    .list_accounts_for_parent()
                    .parent_id(&parent)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| fail(&format!("listing the accounts of {path}"), aws::describe(&e)))?;
                accounts.extend(page.accounts().iter().map(|a| AccountEntry::new(a, &parent, &path)));
                token = page.next_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
            let mut token = None;
            loop {
                let page = org
                    .list_organizational_units_for_parent()
                    .parent_id(&parent)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| fail(&format!("listing the OUs of {path}"), aws::describe(&e)))?;
                for ou in page.organizational_units() {
                    let entry = OuEntry::new(ou, &parent, &path);
                    queue.push_back((entry.id.clone(), entry.path.clone()));
                    ous.push(entry);
                }
                token = page.next_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
            if ous.len() > MAX_OUS {
                return Err(fail("walking the organization", format!("more than {MAX_OUS} OUs; is the tree cyclic?")));
            }
        }
        accounts.sort_by(|a, b| a.id.cmp(&b.id));
        ous.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Tree {
            id: o.and_then(|o| o.id()).unwrap_or_default().to_string(),
            arn: o.and_then(|o| o.arn()).unwrap_or_default().to_string(),
            management_account_id: o.and_then(|o| o.master_account_id()).unwrap_or_default().to_string(),
            accounts,
            ous,
        })
    }
}

/// The tags of account `id`.
async fn tags(aws: &Aws, id: &str) -> Result<BTreeMap<String, String>, Diagnostics> {
    let mut out = BTreeMap::new();
    let mut token = None;
    loop {
        let page = aws
            .organizations()
            .list_tags_for_resource()
            .resource_id(id)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| aws.error(&format!("reading the tags of account {id}"), aws::describe(&e)))?;
        out.extend(page.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())));
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_start_at_root_and_have_no_empty_names() {
        assert!(check_path("Root").is_ok());
        assert!(check_path("Root/Prod/Web").is_ok());
        assert!(check_path("Prod").unwrap_err().contains("must start with \"Root\""));
        assert!(check_path("Root//Prod").unwrap_err().contains("empty OU name"));
        assert!(check_path("Root/").is_err());
    }

    #[test]
    fn under_matches_the_path_and_its_descendants_only() {
        assert!(under("Root/Prod", "Root/Prod"));
        assert!(under("Root/Prod/Web", "Root/Prod"));
        assert!(under("Root/Prod", "Root"));
        assert!(!under("Root/Production", "Root/Prod"));
        assert!(!under("Root", "Root/Prod"));
    }
}
