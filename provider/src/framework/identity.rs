//! Resource identity (Terraform 1.12+): a small object, stored beside a resource's state, that
//! names the remote object, so that `import { to = ..., identity = { ... } }` can bring an object
//! under Terraform by its parts instead of by an opaque id string.
//!
//! A resource opts in with one line, [`crate::framework::Resource::identity`], naming the state
//! attribute that holds its import id. Everything else is derived here, from the state and from
//! where the provider acts:
//!
//! - [`Identity::Aws`]: `account_id` and `region` (optional for import: they default to the
//!   provider's) and `id` (required for import).
//! - [`Identity::Orchestrator`]: `id` alone: the object lives in the orgsec orchestrator, where an
//!   account and a region mean nothing.
//!
//! Terraform's rules (`internal/terraform/node_resource_abstract_instance.go`: `refresh`, `plan`,
//! `planDestroy`, `apply`, `validateIdentity*`; `node_resource_plan_instance.go`: `importState`;
//! `context_plan_identity_test.go`, `context_apply_identity_test.go`), which the functions below
//! keep:
//!
//! - A null identity is accepted from every call; a non-null one must match the identity schema.
//! - ReadResource, ApplyResourceChange and a destroy plan must return a wholly known identity.
//! - PlanResourceChange may return an identity with unknown values only for a create or a
//!   replacement; for an update (or no change) it must be known and equal to the prior identity.
//!   But Terraform's own plan renderer cannot show an identity with unknown values (Terraform
//!   1.15.5 prints "Failed to marshal plan to json: value is not known" and plan -detailed-exitcode
//!   then reports no changes), so a planned identity here is always wholly known or null.
//! - An existing object's identity never changes: a read or update returning a different one than
//!   the stored identity is rejected as a provider bug. Here it is refused first with an error
//!   that names both, because it means the provider now acts in another account or region than
//!   the object was recorded in.
//! - ImportResourceState gets either `id` or, for an `identity` import, an identity whose
//!   required-for-import attributes are set (optional ones may be null). The identity returned
//!   with the imported state becomes the current identity of the ReadResource that follows.
//! - UpgradeResourceIdentity is called when the stored identity's version differs from the
//!   schema's; the raw identity is JSON.

use std::collections::BTreeMap;

use super::diag::Diagnostics;
use crate::tfvalue::{self, Type, Value};

/// How a resource is identified; see the module documentation. The `&'static str` is the state
/// attribute (a string) holding the resource's import id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// An AWS object in the provider's account and region: `account_id`, `region` and `id`.
    Aws(&'static str),
    /// An object in the orgsec orchestrator: `id` alone.
    Orchestrator(&'static str),
}

/// The version of every identity schema. Bump it (and teach [`Identity::upgrade`] the old shape)
/// when an identity's attributes change.
pub const VERSION: i64 = 0;

const ACCOUNT_ID: &str = "account_id";
const REGION: &str = "region";
const ID: &str = "id";

/// One attribute of an identity schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityAttribute {
    pub name: &'static str,
    pub ty: Type,
    /// Must be given in an `import { identity = { ... } }` block.
    pub required_for_import: bool,
    /// May be given there; the provider fills it in when it is not.
    pub optional_for_import: bool,
    pub description: &'static str,
}

/// The shape of a resource type's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySchema {
    pub version: i64,
    pub attributes: Vec<IdentityAttribute>,
}

/// Where the provider acts: the account and region of its configured AWS clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place<'a> {
    pub account_id: &'a str,
    pub region: &'a str,
}

impl Identity {
    /// The state attribute that holds the import id.
    pub fn attribute(self) -> &'static str {
        match self {
            Identity::Aws(a) | Identity::Orchestrator(a) => a,
        }
    }

    pub fn schema(self) -> IdentitySchema {
        let id = IdentityAttribute {
            name: ID,
            ty: Type::String,
            required_for_import: true,
            optional_for_import: false,
            description: "The object's import id: what `terraform import` takes for this resource type.",
        };
        let attributes = match self {
            Identity::Orchestrator(_) => vec![id],
            Identity::Aws(_) => vec![
                IdentityAttribute {
                    name: ACCOUNT_ID,
                    ty: Type::String,
                    required_for_import: false,
                    optional_for_import: true,
                    description: "The AWS account the provider acts in for this object. On import it defaults to the \
                                  provider's account; given, it must be that account.",
                },
                IdentityAttribute {
                    name: REGION,
                    ty: Type::String,
                    required_for_import: false,
                    optional_for_import: true,
                    description: "The AWS region the provider acts in for this object. On import it defaults to the \
                                  provider's region; given, it must be that region.",
                },
                id,
            ],
        };
        IdentitySchema { version: VERSION, attributes }
    }

    /// The object type of this identity's values.
    pub fn value_type(self) -> Type {
        Type::object(self.schema().attributes.into_iter().map(|a| (a.name, a.ty)))
    }

    /// The identity of the object `state` describes: null for a null state. Without a `place`
    /// (the provider is not configured yet) the account and region are unknown, and so is an id
    /// the state leaves unknown.
    pub fn of(self, state: &Value, place: Option<Place<'_>>) -> Value {
        if state.is_null() {
            return Value::Null;
        }
        let id = match state.get_attr(self.attribute()) {
            Some(v @ (Value::String(_) | Value::Unknown)) => v.clone(),
            _ => Value::Null,
        };
        let mut attrs = BTreeMap::from([(ID.to_string(), id)]);
        if let Identity::Aws(_) = self {
            let (account, region) = match place {
                Some(p) => (Value::from(p.account_id), Value::from(p.region)),
                None => (Value::Unknown, Value::Unknown),
            };
            attrs.insert(ACCOUNT_ID.to_string(), account);
            attrs.insert(REGION.to_string(), region);
        }
        Value::Object(attrs)
    }

    /// ReadResource: the identity of the object just read (`new_state`, null when it is gone),
    /// checked against the `stored` identity.
    pub fn for_read(
        self,
        type_name: &str,
        stored: &Value,
        new_state: &Value,
        place: Place<'_>,
    ) -> Result<Value, Diagnostics> {
        unchanged(type_name, stored, self.of(new_state, Some(place)))
    }

    /// PlanResourceChange: the planned identity. A destroy keeps the prior identity; a create or a
    /// replacement names the new object when all of it is known already (else null: see the
    /// module documentation); an update (or no change) names the existing object, which must
    /// match its stored identity.
    pub fn for_plan(self, type_name: &str, p: &PlanInput<'_>, place: Option<Place<'_>>) -> Result<Value, Diagnostics> {
        if p.planned.is_null() {
            return Ok(if p.prior_identity.is_known_fully() { p.prior_identity.clone() } else { Value::Null });
        }
        let identity = if p.prior.is_null() || p.replace {
            self.of(p.planned, place)
        } else {
            unchanged(type_name, p.prior_identity, self.of(p.prior, place))?
        };
        Ok(if identity.is_known_fully() { identity } else { Value::Null })
    }

    /// ApplyResourceChange: the identity of the object as it is after the change (`new_state`,
    /// null after a delete). Unknown values in the state (a resource bug, reported elsewhere)
    /// leave the identity null rather than partly unknown.
    pub fn for_apply(self, new_state: &Value, place: Place<'_>) -> Value {
        let identity = self.of(new_state, Some(place));
        if identity.is_known_fully() { identity } else { Value::Null }
    }

    /// ImportResourceState by identity: the import id the `requested` identity names, after
    /// checking that its account and region, where given, are where the provider acts.
    pub fn import_id(self, type_name: &str, requested: &Value, place: Place<'_>) -> Result<String, Diagnostics> {
        let mut d = Diagnostics::default();
        let Some(id) = requested.get_attr(ID).and_then(Value::as_str).filter(|s| !s.is_empty()) else {
            d.error(
                "Missing id in the import identity",
                format!(
                    "Importing {type_name} by identity needs `id`, the object's import id (what `terraform import` takes)."
                ),
            );
            return Err(d);
        };
        if let Identity::Aws(_) = self {
            for (attr, what, actual) in [(ACCOUNT_ID, "account", place.account_id), (REGION, "region", place.region)] {
                match requested.get_attr(attr) {
                    Some(Value::String(given)) if given != actual => d.error(
                        format!("Import identity names another {what}"),
                        format!(
                            "The identity of {type_name} \"{id}\" names {what} {given}, but the provider acts in account \
                             {}, region {}. Import it with a provider configured for {what} {given}, or leave {attr} \
                             out of the identity to import from {what} {actual}.",
                            place.account_id, place.region
                        ),
                    ),
                    Some(Value::String(_) | Value::Null) | None => {}
                    Some(_) => d.error(
                        format!("Invalid {attr} in the import identity"),
                        format!("The {attr} of an import identity must be a known string."),
                    ),
                }
            }
        }
        if d.has_errors() { Err(d) } else { Ok(id.to_string()) }
    }

    /// The identity to return with an imported state: that of the `state` the import built,
    /// with the import id when the state leaves it out, so that the read that follows the import
    /// finds the identity it derives.
    pub fn for_import(self, state: &Value, import_id: &str, place: Place<'_>) -> Value {
        let mut identity = self.of(state, Some(place));
        if let Value::Object(attrs) = &mut identity
            && !attrs.get(ID).is_some_and(|v| v.is_known_fully() && !v.is_null())
        {
            attrs.insert(ID.to_string(), Value::from(import_id));
        }
        if identity.is_known_fully() { identity } else { Value::Null }
    }

    /// UpgradeResourceIdentity: a stored identity (JSON) written with schema `version`, as a value
    /// of the current identity type.
    pub fn upgrade(self, type_name: &str, version: i64, json: &[u8]) -> Result<Value, Diagnostics> {
        let mut d = Diagnostics::default();
        if version > VERSION {
            d.error(
                "Identity from a newer provider",
                format!(
                    "The identity of this {type_name} was written with identity schema version {version}, but this version \
                     of the orgsec provider only knows versions up to {VERSION}. Upgrade the provider."
                ),
            );
            return Err(d);
        }
        if version < VERSION {
            // Where VERSION is bumped, the upgrade from each older version goes here.
            d.error(
                "No identity upgrade available",
                format!(
                    "The orgsec provider cannot upgrade the identity of {type_name} from version {version} to {VERSION}."
                ),
            );
            return Err(d);
        }
        if json.is_empty() {
            return Ok(Value::Null);
        }
        tfvalue::decode_json(json, &self.value_type()).map_err(|e| {
            let mut d = Diagnostics::default();
            d.error(
                "Invalid stored identity",
                format!("The provider could not read the stored identity of this {type_name}: {e}"),
            );
            d
        })
    }
}

/// What PlanResourceChange knows, for [`Identity::for_plan`].
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub prior: &'a Value,
    pub planned: &'a Value,
    pub prior_identity: &'a Value,
    /// The plan replaces the object.
    pub replace: bool,
}

/// `derived`, unless a non-null `stored` identity differs from it: then an error naming both,
/// since an existing object's identity never changes.
fn unchanged(type_name: &str, stored: &Value, derived: Value) -> Result<Value, Diagnostics> {
    if stored.is_null() || derived.is_null() || *stored == derived {
        return Ok(derived);
    }
    let mut d = Diagnostics::default();
    d.error(
        "Resource identity changed",
        format!(
            "This {type_name} was recorded as {}, but the provider now finds it as {}. An object's identity never \
             changes: most likely the provider now acts in another account or region than when the object was \
             created or imported. Point the provider back at where the object is, or remove it from the state \
             (terraform state rm) and import it again.",
            describe(stored),
            describe(&derived)
        ),
    );
    Err(d)
}

/// "account 111111111111, region us-east-1, id main", for messages.
fn describe(identity: &Value) -> String {
    let part = |name: &str| match identity.get_attr(name) {
        Some(Value::String(s)) => Some(format!("{} {s}", if name == ACCOUNT_ID { "account" } else { name })),
        Some(Value::Unknown) => Some(format!("{name} (unknown)")),
        _ => None,
    };
    let parts: Vec<String> = [ACCOUNT_ID, REGION, ID].iter().filter_map(|n| part(n)).collect();
    if parts.is_empty() { "an object without identity".to_string() } else { parts.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: Place<'static> = Place { account_id: "666666666666", region: "us-east-1" };
    const AWS: Identity = Identity::Aws("id");
    const ORCH: Identity = Identity::Orchestrator("id");

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    fn aws_identity(account: &str, region: &str, id: &str) -> Value {
        obj(&[("account_id", account.into()), ("region", region.into()), ("id", id.into())])
    }

    fn summaries(d: &Diagnostics) -> Vec<String> {
        d.0.iter().map(|x| x.summary.clone()).collect()
    }

    #[test]
    fn schemas_name_their_attributes_with_descriptions() {
        let s = AWS.schema();
        assert_eq!(s.version, 0);
        let names: Vec<_> =
            s.attributes.iter().map(|a| (a.name, a.required_for_import, a.optional_for_import)).collect();
        assert_eq!(names, [("account_id", false, true), ("region", false, true), ("id", true, false)]);
        assert!(s.attributes.iter().all(|a| !a.description.is_empty() && a.ty == Type::String));
        assert_eq!(ORCH.schema().attributes.iter().map(|a| a.name).collect::<Vec<_>>(), ["id"]);
        assert_eq!(ORCH.value_type(), Type::object([("id", Type::String)]));
    }

    #[test]
    fn identity_is_derived_from_the_state_and_where_the_provider_acts() {
        let state = obj(&[("id", "main".into()), ("name", "main".into())]);
        assert_eq!(AWS.of(&state, Some(HERE)), aws_identity("666666666666", "us-east-1", "main"));
        assert_eq!(ORCH.of(&state, Some(HERE)), obj(&[("id", "main".into())]));
        assert_eq!(AWS.of(&Value::Null, Some(HERE)), Value::Null);
        // Before configuration, or before the id is known, those parts are unknown.
        let planned = obj(&[("id", Value::Unknown)]);
        let expected = obj(&[("account_id", Value::Unknown), ("region", Value::Unknown), ("id", Value::Unknown)]);
        assert_eq!(AWS.of(&planned, None), expected);
        // A missing or non-string attribute is null, never a panic.
        assert_eq!(ORCH.of(&obj(&[("id", Value::from(3))]), None), obj(&[("id", Value::Null)]));
        assert_eq!(ORCH.of(&Value::Bool(true), None), obj(&[("id", Value::Null)]));
    }

    #[test]
    fn read_keeps_the_identity_and_refuses_a_changed_one() {
        let state = obj(&[("id", "main".into())]);
        let stored = aws_identity("666666666666", "us-east-1", "main");
        assert_eq!(AWS.for_read("orgsec_x", &stored, &state, HERE), Ok(stored.clone()));
        // No stored identity yet (state from before identity): derived.
        assert_eq!(AWS.for_read("orgsec_x", &Value::Null, &state, HERE), Ok(stored.clone()));
        // Gone: null, whatever was stored.
        assert_eq!(AWS.for_read("orgsec_x", &stored, &Value::Null, HERE), Ok(Value::Null));
        // The provider now acts in another account: a clear error naming both.
        let elsewhere = Place { account_id: "111111111111", region: "us-east-1" };
        let d = AWS.for_read("orgsec_x", &stored, &state, elsewhere).expect_err("changed");
        assert_eq!(summaries(&d), ["Resource identity changed"]);
        let detail = &d.0[0].detail;
        assert!(detail.contains("account 666666666666, region us-east-1, id main"), "{detail}");
        assert!(detail.contains("account 111111111111, region us-east-1, id main"), "{detail}");
    }

    #[test]
    fn plans_follow_terraforms_rules() {
        let prior = obj(&[("id", "main".into())]);
        let stored = aws_identity("666666666666", "us-east-1", "main");
        let plan = |prior: &Value, planned: &Value, prior_identity: &Value, replace: bool, place| {
            AWS.for_plan("orgsec_x", &PlanInput { prior, planned, prior_identity, replace }, place)
        };
        // Create: null while the new object's id is unknown (Terraform cannot render unknowns in an
        // identity), else the new object's identity.
        let planned = obj(&[("id", Value::Unknown)]);
        assert_eq!(plan(&Value::Null, &planned, &Value::Null, false, Some(HERE)), Ok(Value::Null));
        assert_eq!(plan(&Value::Null, &prior, &Value::Null, false, Some(HERE)), Ok(stored.clone()));
        // Update or no change: the stored identity, known.
        assert_eq!(plan(&prior, &prior, &stored, false, Some(HERE)), Ok(stored.clone()));
        assert_eq!(plan(&prior, &prior, &Value::Null, false, Some(HERE)), Ok(stored.clone()));
        // ... and null rather than unknown before configuration.
        assert_eq!(plan(&prior, &prior, &Value::Null, false, None), Ok(Value::Null));
        // Replace: the new object's, null while unknown.
        assert_eq!(plan(&prior, &planned, &stored, true, Some(HERE)), Ok(Value::Null));
        // Destroy: the prior identity, or null.
        assert_eq!(plan(&prior, &Value::Null, &stored, false, Some(HERE)), Ok(stored.clone()));
        assert_eq!(plan(&prior, &Value::Null, &Value::Unknown, false, Some(HERE)), Ok(Value::Null));
        // An update in another account is refused, as a read is.
        let elsewhere = Place { account_id: "111111111111", region: "us-east-1" };
        let d = plan(&prior, &prior, &stored, false, Some(elsewhere)).expect_err("changed");
        assert_eq!(summaries(&d), ["Resource identity changed"]);
    }

    #[test]
    fn apply_and_import_return_known_identities() {
        let state = obj(&[("id", "main".into())]);
        assert_eq!(AWS.for_apply(&state, HERE), aws_identity("666666666666", "us-east-1", "main"));
        assert_eq!(AWS.for_apply(&Value::Null, HERE), Value::Null);
        assert_eq!(AWS.for_apply(&obj(&[("id", Value::Unknown)]), HERE), Value::Null);
        assert_eq!(AWS.for_import(&state, "main", HERE), aws_identity("666666666666", "us-east-1", "main"));
        // A stub without the id attribute still carries the import id.
        assert_eq!(ORCH.for_import(&obj(&[]), "ingress", HERE), obj(&[("id", "ingress".into())]));
    }

    #[test]
    fn import_by_identity_checks_account_and_region() {
        let only_id = obj(&[("account_id", Value::Null), ("region", Value::Null), ("id", "main".into())]);
        assert_eq!(AWS.import_id("orgsec_x", &only_id, HERE), Ok("main".to_string()));
        let matching = aws_identity("666666666666", "us-east-1", "main");
        assert_eq!(AWS.import_id("orgsec_x", &matching, HERE), Ok("main".to_string()));

        let other_account = aws_identity("111111111111", "us-east-1", "main");
        let d = AWS.import_id("orgsec_x", &other_account, HERE).expect_err("wrong account");
        assert_eq!(summaries(&d), ["Import identity names another account"]);
        assert!(d.0[0].detail.contains("111111111111") && d.0[0].detail.contains("666666666666"), "{:?}", d);

        let both = aws_identity("111111111111", "eu-west-1", "main");
        let d = AWS.import_id("orgsec_x", &both, HERE).expect_err("wrong account and region");
        assert_eq!(summaries(&d), ["Import identity names another account", "Import identity names another region"]);

        for bad in [obj(&[("id", Value::Null)]), obj(&[("id", "".into())]), Value::Null, obj(&[("id", Value::Unknown)])]
        {
            let d = AWS.import_id("orgsec_x", &bad, HERE).expect_err("no id");
            assert_eq!(summaries(&d), ["Missing id in the import identity"]);
        }
        let unknown_region = obj(&[("region", Value::Unknown), ("id", "main".into())]);
        assert_eq!(
            summaries(&AWS.import_id("orgsec_x", &unknown_region, HERE).expect_err("unknown")),
            ["Invalid region in the import identity"]
        );
        // The orchestrator's identity has no account or region to check.
        assert_eq!(ORCH.import_id("orgsec_x", &obj(&[("id", "ingress".into())]), HERE), Ok("ingress".to_string()));
    }

    #[test]
    fn stored_identities_upgrade_from_version_zero_only() {
        let json = br#"{"account_id":"666666666666","region":"us-east-1","id":"main"}"#;
        assert_eq!(AWS.upgrade("orgsec_x", 0, json), Ok(aws_identity("666666666666", "us-east-1", "main")));
        assert_eq!(AWS.upgrade("orgsec_x", 0, b""), Ok(Value::Null));
        assert_eq!(
            summaries(&AWS.upgrade("orgsec_x", 1, json).expect_err("newer")),
            ["Identity from a newer provider"]
        );
        assert_eq!(
            summaries(&AWS.upgrade("orgsec_x", -1, json).expect_err("older")),
            ["No identity upgrade available"]
        );
        let extra = br#"{"id":"main","arn":"x"}"#;
        assert_eq!(summaries(&AWS.upgrade("orgsec_x", 0, extra).expect_err("extra")), ["Invalid stored identity"]);
        assert_eq!(summaries(&ORCH.upgrade("orgsec_x", 0, b"{").expect_err("garbage")), ["Invalid stored identity"]);
    }

    #[test]
    fn every_opted_in_resource_names_a_string_attribute() {
        for r in crate::resources::all() {
            let Some(identity) = r.identity() else { continue };
            let schema = r.schema();
            let attr = schema.block.attribute(identity.attribute());
            assert!(
                attr.is_some_and(|a| a.ty == Type::String),
                "{}: identity attribute {} is not a string attribute",
                r.type_name(),
                identity.attribute()
            );
        }
    }
}
