//! Plan computation: what a resource will look like after apply, derived from the schema alone.
//! Pure functions over [`Value`] and [`Block`]; [`crate::grpc`] calls them for
//! PlanResourceChange and to check what a resource hands back after apply.
//!
//! Terraform proposes the new state itself: the configuration, with the prior state's values
//! kept for computed attributes the configuration leaves null. The provider's part is deciding
//! which of those computed values may change (they become unknown) and which changes force a
//! replacement. The rules, applied to top-level attributes and recursively to nested blocks:
//!
//! - **Destroy**: the proposed state is null; so is the plan.
//! - **Create** (no prior state): every computed attribute the configuration leaves null is
//!   unknown.
//! - **No change** (proposed equals prior): the plan is the proposed state, so that a converged
//!   resource plans no diff.
//! - **Update**: every computed attribute the configuration leaves null is unknown, except those
//!   marked `use_state_for_unknown` whose prior value is not null: they keep it.
//! - **Replace**: a `requires_replace` attribute whose proposed value differs from its prior value
//!   (including by its nested block appearing or disappearing, or by becoming unknown) is listed
//!   in [`Plan::requires_replace`], and the computed attributes are planned as for a create: a new
//!   object keeps nothing from the old one.
//!
//! - **Equivalent values**: a `requires_replace` attribute whose old and new values its
//!   `equivalent` function calls the same (a short id and its ARN) is an in-place change.
//! - **Defaults**: a computed attribute with a `default` that the configuration leaves null is
//!   planned as its default, in every case above, instead of unknown or its prior value.
//!
//! Requires-replace compares proposed values, before computed attributes are marked unknown, so
//! an optional computed attribute that the configuration leaves alone never forces a replacement.
//!
//! Nested blocks: single blocks and list elements (by index) are matched with their prior and
//! configured counterparts directly; set elements are matched by their non-computed attributes,
//! and a requires-replace change inside a set is reported on the set itself, since an attribute
//! path cannot address a set element.

use std::collections::BTreeMap;

use super::diag::AttrPath;
use super::schema::{Block, Nesting};
use crate::tfvalue::Value;

/// The outcome of planning one resource change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The planned new state: null to destroy.
    pub planned: Value,
    /// Attributes whose change forces the resource to be replaced; empty for an in-place change.
    pub requires_replace: Vec<AttrPath>,
}

/// Plans the change from `prior` to `proposed` for a resource whose schema is `block`. `config`
/// is the resource's configuration (null when destroying).
pub fn plan(block: &Block, prior: &Value, proposed: &Value, config: &Value) -> Plan {
    if proposed.is_null() {
        return Plan { planned: Value::Null, requires_replace: Vec::new() };
    }
    let with_defaults = apply_defaults(block, proposed, config);
    let proposed = &with_defaults;
    if prior.is_null() {
        return Plan { planned: mark_computed(block, proposed, config, None), requires_replace: Vec::new() };
    }
    let mut requires_replace = Vec::new();
    replacements(block, prior, proposed, &AttrPath::default(), &mut requires_replace);
    let planned = if !requires_replace.is_empty() {
        mark_computed(block, proposed, config, None)
    } else if equal(proposed, prior) {
        proposed.clone()
    } else {
        mark_computed(block, proposed, config, Some(prior))
    };
    Plan { planned, requires_replace }
}

/// `proposed` with each top-level attribute that has a default and that `config` leaves null set to
/// its default, so that a drifted value (kept in the proposal from the prior state) plans a change.
fn apply_defaults(block: &Block, proposed: &Value, config: &Value) -> Value {
    let Value::Object(attrs) = proposed else { return proposed.clone() };
    let mut out = attrs.clone();
    for a in &block.attributes {
        if let Some(default) = &a.default
            && attr(config, a.name).is_null()
        {
            out.insert(a.name.to_string(), default.clone());
        }
    }
    Value::Object(out)
}

/// `planned` with every computed attribute that `config` leaves null made unknown, or, when
/// `prior` is given and the attribute is `use_state_for_unknown`, set to its non-null prior value.
fn mark_computed(block: &Block, planned: &Value, config: &Value, prior: Option<&Value>) -> Value {
    let Value::Object(attrs) = planned else {
        // A null or unknown block: nothing inside to plan.
        return planned.clone();
    };
    let mut out = attrs.clone();
    for a in block.attributes.iter().filter(|a| a.computed) {
        if !attr(config, a.name).is_null() {
            continue;
        }
        let planned = match &a.default {
            Some(default) => default.clone(),
            None => prior
                .map(|p| attr(p, a.name))
                .filter(|v| a.use_state_for_unknown && !v.is_null())
                .cloned()
                .unwrap_or(Value::Unknown),
        };
        out.insert(a.name.to_string(), planned);
    }
    for b in &block.blocks {
        let Some(value) = attrs.get(b.name) else { continue };
        let config = attr(config, b.name);
        let prior = prior.map(|p| attr(p, b.name)).filter(|v| !v.is_null());
        let marked = match (b.nesting, value) {
            (Nesting::Single, v) => mark_computed(&b.block, v, config, prior),
            (Nesting::List, Value::List(elems)) => Value::List(
                elems
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        let c = element(config, i).unwrap_or(&Value::Null);
                        mark_computed(&b.block, e, c, prior.and_then(|p| element(p, i)))
                    })
                    .collect(),
            ),
            (Nesting::Set, Value::Set(elems)) => {
                let configs = config.as_elements().unwrap_or_default();
                let priors = prior.and_then(Value::as_elements).unwrap_or_default();
                let mut config_used = vec![false; configs.len()];
                let mut prior_used = vec![false; priors.len()];
                Value::Set(
                    elems
                        .iter()
                        .map(|e| {
                            let c = take_match(&b.block, e, configs, &mut config_used).unwrap_or(&Value::Null);
                            let p = take_match(&b.block, e, priors, &mut prior_used);
                            mark_computed(&b.block, e, c, p)
                        })
                        .collect(),
                )
            }
            (_, v) => v.clone(),
        };
        out.insert(b.name.to_string(), marked);
    }
    Value::Object(out)
}

/// Appends to `out` the path of every `requires_replace` attribute whose value differs between
/// `prior` and `proposed` (either may be null, for a block that is added or removed).
fn replacements(block: &Block, prior: &Value, proposed: &Value, path: &AttrPath, out: &mut Vec<AttrPath>) {
    for a in block.attributes.iter().filter(|a| a.requires_replace) {
        let (before, after) = (attr(prior, a.name), attr(proposed, a.name));
        if !equal(before, after) && !a.equivalent.is_some_and(|same| same(before, after)) {
            out.push(path.attr(a.name));
        }
    }
    for b in block.blocks.iter().filter(|b| has_requires_replace(&b.block)) {
        let (before, after) = (attr(prior, b.name), attr(proposed, b.name));
        let path = path.attr(b.name);
        match b.nesting {
            Nesting::Single => replacements(&b.block, before, after, &path, out),
            Nesting::List if after.is_unknown() || before.is_unknown() => {
                if !equal(before, after) {
                    out.push(path);
                }
            }
            Nesting::List => {
                let n =
                    before.as_elements().map_or(0, <[Value]>::len).max(after.as_elements().map_or(0, <[Value]>::len));
                for i in 0..n {
                    let (p, q) =
                        (element(before, i).unwrap_or(&Value::Null), element(after, i).unwrap_or(&Value::Null));
                    replacements(&b.block, p, q, &path.index(i64::try_from(i).unwrap_or(i64::MAX)), out);
                }
            }
            Nesting::Set => {
                let replacing_parts = |v: &Value| -> Option<Vec<Value>> {
                    v.as_elements().map(|es| es.iter().map(|e| project(&b.block, e, &|a| a.requires_replace)).collect())
                };
                let same = match (replacing_parts(before), replacing_parts(after)) {
                    (Some(x), Some(y)) => same_elements(&x, &y),
                    // Null or unknown on either side: compare the values themselves.
                    _ => equal(before, after),
                };
                if !same {
                    out.push(path);
                }
            }
        }
    }
}

/// Whether any attribute of `block`, or of a block nested in it, is `requires_replace`.
fn has_requires_replace(block: &Block) -> bool {
    block.attributes.iter().any(|a| a.requires_replace) || block.blocks.iter().any(|b| has_requires_replace(&b.block))
}

/// The first not yet used element of `candidates` that matches `elem` on non-computed attributes.
fn take_match<'a>(block: &Block, elem: &Value, candidates: &'a [Value], used: &mut [bool]) -> Option<&'a Value> {
    let key = project(block, elem, &|a| !a.computed);
    let i = candidates.iter().enumerate().position(|(i, c)| {
        !used.get(i).copied().unwrap_or(true) && equal(&project(block, c, &|a| !a.computed), &key)
    })?;
    if let Some(u) = used.get_mut(i) {
        *u = true;
    }
    candidates.get(i)
}

/// `v` (an element of `block`) reduced to the attributes `keep` selects, in nested blocks too.
fn project(block: &Block, v: &Value, keep: &dyn Fn(&super::schema::Attribute) -> bool) -> Value {
    let Value::Object(attrs) = v else { return v.clone() };
    let mut out = BTreeMap::new();
    for a in block.attributes.iter().filter(|a| keep(a)) {
        out.insert(a.name.to_string(), attr(v, a.name).clone());
    }
    for b in &block.blocks {
        let Some(inner) = attrs.get(b.name) else { continue };
        let projected = match inner {
            Value::List(es) => Value::List(es.iter().map(|e| project(&b.block, e, keep)).collect()),
            Value::Set(es) => Value::Set(es.iter().map(|e| project(&b.block, e, keep)).collect()),
            other => project(&b.block, other, keep),
        };
        out.insert(b.name.to_string(), projected);
    }
    Value::Object(out)
}

/// Attribute `name` of `v`; null when `v` is null, unknown or lacks it.
fn attr<'a>(v: &'a Value, name: &str) -> &'a Value {
    v.get_attr(name).unwrap_or(&Value::Null)
}

fn element(v: &Value, i: usize) -> Option<&Value> {
    v.as_elements().and_then(|es| es.get(i))
}

/// Value equality with sets compared as unordered collections, as Terraform compares them.
pub fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Set(x), Value::Set(y)) => same_elements(x, y),
        (Value::List(x), Value::List(y)) | (Value::Tuple(x), Value::Tuple(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal(p, q))
        }
        (Value::Map(x), Value::Map(y)) | (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((k, p), (l, q))| k == l && equal(p, q))
        }
        (Value::Dynamic(t, x), Value::Dynamic(u, y)) => t == u && equal(x, y),
        _ => a == b,
    }
}

/// Whether two element lists hold the same elements, in any order, duplicates counted.
fn same_elements(x: &[Value], y: &[Value]) -> bool {
    if x.len() != y.len() {
        return false;
    }
    let mut used = vec![false; y.len()];
    x.iter().all(|e| match y.iter().enumerate().position(|(i, f)| !used[i] && equal(e, f)) {
        Some(i) => {
            used[i] = true;
            true
        }
        None => false,
    })
}

/// The path of the first unknown value inside `v`, if any (a set's path when it is inside a set,
/// whose elements have no path of their own).
pub fn first_unknown(v: &Value) -> Option<AttrPath> {
    fn walk(v: &Value, path: &AttrPath) -> Option<AttrPath> {
        match v {
            Value::Unknown => Some(path.clone()),
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => None,
            Value::Dynamic(_, inner) => walk(inner, path),
            Value::List(es) | Value::Tuple(es) => {
                es.iter().enumerate().find_map(|(i, e)| walk(e, &path.index(i64::try_from(i).unwrap_or(i64::MAX))))
            }
            Value::Set(es) => es.iter().find_map(|e| walk(e, path)).map(|_| path.clone()),
            Value::Map(m) => m.iter().find_map(|(k, e)| walk(e, &path.key(k))),
            Value::Object(m) => m.iter().find_map(|(k, e)| walk(e, &path.attr(k))),
        }
    }
    walk(v, &AttrPath::default())
}

/// `v` with every unknown value inside it replaced by null.
pub fn unknowns_to_null(v: &Value) -> Value {
    match v {
        Value::Unknown => Value::Null,
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => v.clone(),
        Value::Dynamic(t, inner) => Value::Dynamic(t.clone(), Box::new(unknowns_to_null(inner))),
        Value::List(es) => Value::List(es.iter().map(unknowns_to_null).collect()),
        Value::Set(es) => Value::Set(es.iter().map(unknowns_to_null).collect()),
        Value::Tuple(es) => Value::Tuple(es.iter().map(unknowns_to_null).collect()),
        Value::Map(m) => Value::Map(m.iter().map(|(k, e)| (k.clone(), unknowns_to_null(e))).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, e)| (k.clone(), unknowns_to_null(e))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::schema::{Attribute, NestedBlock};
    use crate::tfvalue::Type;

    /// A resource with every kind of attribute the rules distinguish, and a single and a list
    /// block with computed and requires-replace attributes of their own.
    fn block() -> Block {
        let inner = || Block {
            description: "",
            attributes: vec![
                Attribute::required("key", Type::String, ""),
                Attribute::optional("zone", Type::String, "").requires_replace(),
                Attribute::computed("status", Type::String, ""),
            ],
            blocks: vec![],
        };
        Block {
            description: "",
            attributes: vec![
                Attribute::required("name", Type::String, "").requires_replace(),
                Attribute::optional("note", Type::String, ""),
                Attribute::computed("id", Type::String, "").use_state_for_unknown(),
                Attribute::computed("updated_at", Type::String, ""),
                Attribute::optional_computed("mode", Type::String, ""),
                Attribute::optional_computed("arn", Type::String, "").use_state_for_unknown(),
            ],
            blocks: vec![
                NestedBlock { name: "single", nesting: Nesting::Single, block: inner(), min_items: 0, max_items: 1 },
                NestedBlock { name: "items", nesting: Nesting::List, block: inner(), min_items: 0, max_items: 0 },
                NestedBlock { name: "tags", nesting: Nesting::Set, block: inner(), min_items: 0, max_items: 0 },
            ],
        }
    }

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    fn s(x: &str) -> Value {
        Value::String(x.into())
    }

    fn inner(key: &str, zone: Value, status: Value) -> Value {
        obj(&[("key", s(key)), ("zone", zone), ("status", status)])
    }

    /// A full resource value: `top` overrides the null defaults.
    fn resource(top: &[(&str, Value)]) -> Value {
        let mut m: BTreeMap<String, Value> = ["name", "note", "id", "updated_at", "mode", "arn", "single"]
            .iter()
            .map(|k| (k.to_string(), Value::Null))
            .collect();
        m.insert("items".into(), Value::List(vec![]));
        m.insert("tags".into(), Value::Set(vec![]));
        for (k, v) in top {
            m.insert(k.to_string(), v.clone());
        }
        Value::Object(m)
    }

    /// Prior state of a created resource, and the config that produced it.
    fn existing() -> (Value, Value) {
        let prior = resource(&[
            ("name", s("a")),
            ("note", s("n1")),
            ("id", s("id-1")),
            ("updated_at", s("t1")),
            ("mode", s("auto")),
            ("arn", s("arn-1")),
            ("single", inner("k", s("z1"), s("ok"))),
            ("items", Value::List(vec![inner("i0", Value::Null, s("ok0"))])),
        ]);
        let config = resource(&[
            ("name", s("a")),
            ("note", s("n1")),
            ("single", inner("k", s("z1"), Value::Null)),
            ("items", Value::List(vec![inner("i0", Value::Null, Value::Null)])),
        ]);
        (prior, config)
    }

    /// What Terraform proposes: the config, with prior values for computed attributes it leaves
    /// null (a simplification of Terraform's own rule, enough for these schemas).
    fn propose(block: &Block, prior: &Value, config: &Value) -> Value {
        let Value::Object(c) = config else { return config.clone() };
        let mut out = c.clone();
        for a in block.attributes.iter().filter(|a| a.computed) {
            if attr(config, a.name).is_null() {
                out.insert(a.name.to_string(), attr(prior, a.name).clone());
            }
        }
        for b in &block.blocks {
            let (p, cv) = (attr(prior, b.name), attr(config, b.name));
            let v = match b.nesting {
                Nesting::Single => propose(&b.block, p, cv),
                Nesting::List | Nesting::Set => match cv.as_elements() {
                    Some(es) => {
                        let es = es
                            .iter()
                            .enumerate()
                            .map(|(i, e)| propose(&b.block, element(p, i).unwrap_or(&Value::Null), e))
                            .collect();
                        if b.nesting == Nesting::List { Value::List(es) } else { Value::Set(es) }
                    }
                    None => cv.clone(),
                },
            };
            out.insert(b.name.to_string(), v);
        }
        Value::Object(out)
    }

    #[test]
    fn create_marks_every_unset_computed_attribute_unknown() {
        let config = resource(&[
            ("name", s("a")),
            ("mode", s("manual")),
            ("single", inner("k", Value::Null, Value::Null)),
            ("items", Value::List(vec![inner("i0", Value::Null, Value::Null)])),
            ("tags", Value::Set(vec![inner("t0", Value::Null, Value::Null)])),
        ]);
        let p = plan(&block(), &Value::Null, &config, &config);
        assert!(p.requires_replace.is_empty());
        let expected = resource(&[
            ("name", s("a")),
            ("id", Value::Unknown),
            ("updated_at", Value::Unknown),
            ("mode", s("manual")),
            ("arn", Value::Unknown),
            ("single", inner("k", Value::Null, Value::Unknown)),
            ("items", Value::List(vec![inner("i0", Value::Null, Value::Unknown)])),
            ("tags", Value::Set(vec![inner("t0", Value::Null, Value::Unknown)])),
        ]);
        assert_eq!(p.planned, expected);
    }

    #[test]
    fn a_default_is_planned_on_create_and_puts_a_drifted_value_back() {
        let mut b = block();
        if let Some(a) = b.attributes.iter_mut().find(|a| a.name == "mode") {
            *a = Attribute::optional_computed("mode", Type::String, "").default_value("auto");
        }
        let config = resource(&[("name", s("a"))]);
        let created = plan(&b, &Value::Null, &config, &config).planned;
        assert_eq!(created.get_attr("mode"), Some(&s("auto")));
        assert_eq!(created.get_attr("id"), Some(&Value::Unknown));

        // Read found the attribute changed outside Terraform: the plan sets the default again.
        let prior = resource(&[("name", s("a")), ("id", s("id-1")), ("updated_at", s("t")), ("mode", s("manual"))]);
        let proposed = propose(&b, &prior, &config);
        let p = plan(&b, &prior, &proposed, &config);
        assert_eq!(p.planned.get_attr("mode"), Some(&s("auto")));
        assert!(p.requires_replace.is_empty());

        // Converged: no diff.
        let prior = resource(&[("name", s("a")), ("id", s("id-1")), ("updated_at", s("t")), ("mode", s("auto"))]);
        let proposed = propose(&b, &prior, &config);
        assert_eq!(plan(&b, &prior, &proposed, &config).planned, prior);
    }

    #[test]
    fn an_equivalent_spelling_updates_in_place_instead_of_replacing() {
        fn same_ignoring_case(a: &Value, b: &Value) -> bool {
            matches!((a.as_str(), b.as_str()), (Some(x), Some(y)) if x.eq_ignore_ascii_case(y))
        }
        let mut b = block();
        if let Some(a) = b.attributes.iter_mut().find(|a| a.name == "name") {
            *a = Attribute::required("name", Type::String, "").requires_replace().equivalent_when(same_ignoring_case);
        }
        let (prior, mut config) = existing();
        if let Value::Object(m) = &mut config {
            m.insert("name".into(), s("A"));
        }
        let proposed = propose(&b, &prior, &config);
        let p = plan(&b, &prior, &proposed, &config);
        assert!(p.requires_replace.is_empty());
        assert_eq!(p.planned.get_attr("name"), Some(&s("A")));
        assert_eq!(p.planned.get_attr("id"), Some(&s("id-1")), "an in-place change keeps use_state_for_unknown");

        if let Value::Object(m) = &mut config {
            m.insert("name".into(), s("b"));
        }
        let proposed = propose(&b, &prior, &config);
        assert_eq!(plan(&b, &prior, &proposed, &config).requires_replace, vec![AttrPath::root("name")]);
    }

    #[test]
    fn unchanged_resource_plans_exactly_its_prior_state() {
        let (prior, config) = existing();
        let proposed = propose(&block(), &prior, &config);
        assert_eq!(proposed, prior);
        let p = plan(&block(), &prior, &proposed, &config);
        assert_eq!(p, Plan { planned: prior, requires_replace: vec![] });
    }

    #[test]
    fn update_keeps_use_state_for_unknown_and_marks_other_computed_unknown() {
        let (prior, mut config) = existing();
        if let Value::Object(m) = &mut config {
            m.insert("note".into(), s("n2"));
        }
        let proposed = propose(&block(), &prior, &config);
        let p = plan(&block(), &prior, &proposed, &config);
        assert!(p.requires_replace.is_empty());
        let expected = resource(&[
            ("name", s("a")),
            ("note", s("n2")),
            ("id", s("id-1")),
            ("updated_at", Value::Unknown),
            ("mode", Value::Unknown),
            ("arn", s("arn-1")),
            ("single", inner("k", s("z1"), Value::Unknown)),
            ("items", Value::List(vec![inner("i0", Value::Null, Value::Unknown)])),
        ]);
        assert_eq!(p.planned, expected);
    }

    #[test]
    fn use_state_for_unknown_does_not_keep_a_null_prior_value() {
        let (mut prior, mut config) = existing();
        if let (Value::Object(p), Value::Object(c)) = (&mut prior, &mut config) {
            p.insert("arn".into(), Value::Null);
            c.insert("note".into(), s("n2"));
        }
        let proposed = propose(&block(), &prior, &config);
        let p = plan(&block(), &prior, &proposed, &config);
        assert_eq!(p.planned.get_attr("arn"), Some(&Value::Unknown));
        assert_eq!(p.planned.get_attr("id"), Some(&s("id-1")));
    }

    #[test]
    fn configured_computed_values_are_planned_as_configured() {
        let (prior, mut config) = existing();
        if let Value::Object(c) = &mut config {
            c.insert("mode".into(), s("manual"));
            c.insert("arn".into(), Value::Unknown);
        }
        let proposed = propose(&block(), &prior, &config);
        let p = plan(&block(), &prior, &proposed, &config);
        assert_eq!(p.planned.get_attr("mode"), Some(&s("manual")));
        assert_eq!(p.planned.get_attr("arn"), Some(&Value::Unknown));
        assert_eq!(p.planned.get_attr("id"), Some(&s("id-1")));
    }

    #[test]
    fn requires_replace_reports_paths_and_plans_a_new_object() {
        let (prior, mut config) = existing();
        if let Value::Object(c) = &mut config {
            c.insert("name".into(), s("b"));
            c.insert("single".into(), inner("k", s("z2"), Value::Null));
            c.insert(
                "items".into(),
                Value::List(vec![inner("i0", Value::Null, Value::Null), inner("i1", s("z"), Value::Null)]),
            );
        }
        let proposed = propose(&block(), &prior, &config);
        let p = plan(&block(), &prior, &proposed, &config);
        let paths: Vec<String> = p.requires_replace.iter().map(ToString::to_string).collect();
        assert_eq!(paths, ["name", "single.zone", "items[1].zone"]);
        // Nothing survives a replacement, not even use-state-for-unknown values.
        assert_eq!(p.planned.get_attr("id"), Some(&Value::Unknown));
        assert_eq!(p.planned.get_attr("arn"), Some(&Value::Unknown));
        assert_eq!(p.planned.get_attr("name"), Some(&s("b")));
        assert_eq!(attr(attr(&p.planned, "single"), "status"), &Value::Unknown);
    }

    #[test]
    fn requires_replace_on_an_unknown_value_and_on_a_removed_block() {
        let (prior, mut config) = existing();
        if let Value::Object(c) = &mut config {
            c.insert("name".into(), Value::Unknown);
            c.insert("single".into(), Value::Null);
        }
        let proposed = propose(&block(), &prior, &config);
        let p = plan(&block(), &prior, &proposed, &config);
        let paths: Vec<String> = p.requires_replace.iter().map(ToString::to_string).collect();
        assert_eq!(paths, ["name", "single.zone"]);
    }

    #[test]
    fn requires_replace_inside_a_set_is_reported_on_the_set() {
        let (mut prior, mut config) = existing();
        if let (Value::Object(p), Value::Object(c)) = (&mut prior, &mut config) {
            p.insert("tags".into(), Value::Set(vec![inner("a", s("z1"), s("ok")), inner("b", s("z1"), s("ok"))]));
            // Reordered, same zones: no replacement.
            c.insert(
                "tags".into(),
                Value::Set(vec![inner("b", s("z1"), Value::Null), inner("a", s("z1"), Value::Null)]),
            );
        }
        let proposed = propose(&block(), &prior, &config);
        let p = plan(&block(), &prior, &proposed, &config);
        assert!(p.requires_replace.is_empty());
        // The set elements found their prior and configured counterparts by key, not position.
        if let Value::Object(c) = &mut config {
            c.insert("note".into(), s("n2"));
        }
        let proposed = propose(&block(), &prior, &config);
        let p = plan(&block(), &prior, &proposed, &config);
        assert!(p.requires_replace.is_empty());
        assert_eq!(
            attr(&p.planned, "tags"),
            &Value::Set(vec![inner("b", s("z1"), Value::Unknown), inner("a", s("z1"), Value::Unknown)])
        );

        if let Value::Object(c) = &mut config {
            c.insert(
                "tags".into(),
                Value::Set(vec![inner("a", s("z1"), Value::Null), inner("b", s("z9"), Value::Null)]),
            );
        }
        let proposed = propose(&block(), &prior, &config);
        let p = plan(&block(), &prior, &proposed, &config);
        let paths: Vec<String> = p.requires_replace.iter().map(ToString::to_string).collect();
        assert_eq!(paths, ["tags"]);
    }

    #[test]
    fn optional_computed_requires_replace_left_unset_does_not_replace() {
        let mut b = block();
        if let Some(a) = b.attributes.iter_mut().find(|a| a.name == "mode") {
            a.requires_replace = true;
        }
        let (prior, mut config) = existing();
        if let Value::Object(c) = &mut config {
            c.insert("note".into(), s("n2"));
        }
        let proposed = propose(&b, &prior, &config);
        let p = plan(&b, &prior, &proposed, &config);
        assert!(p.requires_replace.is_empty());
        assert_eq!(p.planned.get_attr("mode"), Some(&Value::Unknown));
    }

    #[test]
    fn destroy_plans_null() {
        let (prior, _) = existing();
        let p = plan(&block(), &prior, &Value::Null, &Value::Null);
        assert_eq!(p, Plan { planned: Value::Null, requires_replace: vec![] });
    }

    #[test]
    fn unknowns_are_found_by_path_and_can_be_nulled() {
        let v = resource(&[
            ("name", s("a")),
            ("items", Value::List(vec![inner("i0", Value::Null, s("ok")), inner("i1", Value::Null, Value::Unknown)])),
        ]);
        assert_eq!(first_unknown(&v).map(|p| p.to_string()), Some("items[1].status".to_string()));
        let nulled = unknowns_to_null(&v);
        assert_eq!(first_unknown(&nulled), None);
        assert_eq!(attr(element(attr(&nulled, "items"), 1).unwrap_or(&Value::Null), "status"), &Value::Null);
        let in_set = resource(&[("tags", Value::Set(vec![inner("t", Value::Unknown, s("x"))]))]);
        assert_eq!(first_unknown(&in_set).map(|p| p.to_string()), Some("tags".to_string()));
        assert_eq!(first_unknown(&Value::Unknown), Some(AttrPath::default()));
    }

    #[test]
    fn equality_ignores_set_order_but_not_list_order() {
        assert!(equal(&Value::Set(vec![s("a"), s("b")]), &Value::Set(vec![s("b"), s("a")])));
        assert!(!equal(&Value::Set(vec![s("a"), s("a")]), &Value::Set(vec![s("a"), s("b")])));
        assert!(!equal(&Value::List(vec![s("a"), s("b")]), &Value::List(vec![s("b"), s("a")])));
    }
}
