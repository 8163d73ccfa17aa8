//! Security Hub's finding store for one region: ASFF documents kept with their rendered JSON, so
//! that serving a page of `GetFindings` is filtering plus copying bytes. Also the ASFF filter
//! language (`StringFilter`, `DateFilter`, `NumberFilter`, `MapFilter`, `BooleanFilter`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::error::{AwsError, AwsResult};
use crate::wire::{Millis, parse_iso8601};

/// One finding with its rendered JSON.
#[derive(Debug, Clone)]
pub struct StoredFinding {
    pub seq: u64,
    pub account: String,
    pub doc: Map<String, Value>,
    pub json: Bytes,
}

impl StoredFinding {
    fn render(&mut self) {
        self.json = serde_json::to_vec(&self.doc).unwrap_or_default().into();
    }

    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.doc.get(name).and_then(Value::as_str)
    }
}

/// Findings of one region, in arrival order, addressable by (ProductArn, Id).
#[derive(Debug, Clone, Default)]
pub struct FindingStore {
    by_seq: BTreeMap<u64, StoredFinding>,
    by_key: HashMap<(String, String), u64>,
    /// Sequence numbers per AwsAccountId, so that evaluating one account does not scan all.
    by_account: HashMap<String, BTreeSet<u64>>,
    next_seq: u64,
    /// Changes so far: a sorted listing made at one version is still right at that version.
    version: u64,
    sorted: SortedListings,
}

/// Most sorted listings kept at once; past it, the oldest are dropped.
const SORTED_LISTINGS: usize = 4_096;

/// Sorted `GetFindings` results, kept so that the pages after the first are a slice of the
/// list the first page sorted, instead of filtering and sorting again: without it, reading
/// N findings in pages of 100 costs N/100 sorts of N. Keyed by the caller's request (its
/// account, what it sees, its filters and sort); an entry is used only at the store version it
/// was made at, so a change in between makes the next page sort afresh. Not part of the
/// store's state: a clone starts with none.
#[derive(Default)]
struct SortedListings(parking_lot::Mutex<Listings>);

/// The listings kept, and a clock that orders them by when each was made.
#[derive(Default)]
struct Listings {
    clock: u64,
    /// Request -> (store version, made at, sequence numbers in order).
    entries: HashMap<String, (u64, u64, std::sync::Arc<Vec<u64>>)>,
}

impl Clone for SortedListings {
    fn clone(&self) -> Self {
        SortedListings::default()
    }
}

impl std::fmt::Debug for SortedListings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SortedListings({})", self.0.lock().entries.len())
    }
}

impl FindingStore {
    pub fn len(&self) -> usize {
        self.by_seq.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }

    pub fn seq_of(&self, product_arn: &str, id: &str) -> Option<u64> {
        self.by_key.get(&(product_arn.to_string(), id.to_string())).copied()
    }

    pub fn get(&self, seq: u64) -> Option<&StoredFinding> {
        self.by_seq.get(&seq)
    }

    /// Inserts a new finding or replaces an existing one with the same (ProductArn, Id).
    /// Returns its sequence number and whether it was new.
    pub fn put(&mut self, doc: Map<String, Value>) -> (u64, bool) {
        let product = doc.get("ProductArn").and_then(Value::as_str).unwrap_or_default().to_string();
        let id = doc.get("Id").and_then(Value::as_str).unwrap_or_default().to_string();
        let account = doc.get("AwsAccountId").and_then(Value::as_str).unwrap_or_default().to_string();
        self.version += 1;
        if let Some(&seq) = self.by_key.get(&(product.clone(), id.clone())) {
            if let Some(f) = self.by_seq.get_mut(&seq) {
                if f.account != account {
                    if let Some(set) = self.by_account.get_mut(&f.account) {
                        set.remove(&seq);
                    }
                    self.by_account.entry(account.clone()).or_default().insert(seq);
                }
                f.doc = doc;
                f.account = account;
                f.render();
            }
            return (seq, false);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_account.entry(account.clone()).or_default().insert(seq);
        let mut f = StoredFinding { seq, account, doc, json: Bytes::new() };
        f.render();
        self.by_seq.insert(seq, f);
        self.by_key.insert((product, id), seq);
        (seq, true)
    }

    /// Changes a finding in place and re-renders it. Returns false when it does not exist.
    pub fn update(&mut self, seq: u64, change: impl FnOnce(&mut Map<String, Value>)) -> bool {
        self.version += 1;
        match self.by_seq.get_mut(&seq) {
            Some(f) => {
                change(&mut f.doc);
                f.render();
                true
            }
            None => false,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &StoredFinding> {
        self.by_seq.values()
    }

    /// One account's findings, in order.
    pub fn for_account<'a>(&'a self, account: &str) -> impl Iterator<Item = &'a StoredFinding> + 'a {
        self.by_account.get(account).into_iter().flatten().filter_map(|seq| self.by_seq.get(seq))
    }

    /// Findings after sequence number `after` (exclusive), in order.
    pub fn iter_after(&self, after: Option<u64>) -> impl Iterator<Item = &StoredFinding> {
        let start = after.map_or(0, |a| a.saturating_add(1));
        self.by_seq.range(start..).map(|(_, f)| f)
    }

    /// The sorted listing kept for `request`, if it was made at the store's current version.
    pub fn sorted_listing(&self, request: &str) -> Option<std::sync::Arc<Vec<u64>>> {
        let cache = self.sorted.0.lock();
        cache.entries.get(request).filter(|(version, _, _)| *version == self.version).map(|(_, _, list)| list.clone())
    }

    /// Keeps `list` as the sorted listing for `request` at the store's current version.
    pub fn keep_sorted_listing(&self, request: String, list: std::sync::Arc<Vec<u64>>) {
        let mut cache = self.sorted.0.lock();
        let Listings { clock, entries } = &mut *cache;
        *clock += 1;
        let made = *clock;
        if entries.len() >= SORTED_LISTINGS && !entries.contains_key(&request) {
            // Drop the older half, by when each was made.
            let mut ages: Vec<u64> = entries.values().map(|(_, made, _)| *made).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            entries.retain(|_, (_, made, _)| *made > cut);
        }
        entries.insert(request, (self.version, made, list));
    }

    /// The findings of `accounts` after sequence number `after` (exclusive), in sequence order:
    /// what [`FindingStore::iter_after`] yields for those accounts, without visiting the others.
    pub fn accounts_after<'a>(&'a self, accounts: &[&str], after: Option<u64>) -> Vec<&'a StoredFinding> {
        let start = after.map_or(0, |a| a.saturating_add(1));
        let mut seqs: Vec<u64> = accounts
            .iter()
            .filter_map(|a| self.by_account.get(*a))
            .flat_map(|set| set.range(start..).copied())
            .collect();
        if accounts.len() > 1 {
            seqs.sort_unstable();
            seqs.dedup();
        }
        seqs.iter().filter_map(|s| self.by_seq.get(s)).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Filters

#[derive(Debug, Clone)]
enum Cond {
    Str { value: String, cmp: StrCmp },
    Date { start: Option<Millis>, end: Option<Millis> },
    Num { gte: Option<f64>, lte: Option<f64>, gt: Option<f64>, lt: Option<f64>, eq: Option<f64> },
    Map { key: String, value: String, cmp: StrCmp },
    Bool(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StrCmp {
    Equals,
    Prefix,
    Contains,
    NotEquals,
    PrefixNotEquals,
    NotContains,
}

impl StrCmp {
    fn negative(self) -> bool {
        matches!(self, StrCmp::NotEquals | StrCmp::PrefixNotEquals | StrCmp::NotContains)
    }

    fn test(self, actual: &str, expected: &str) -> bool {
        match self {
            StrCmp::Equals => actual == expected,
            StrCmp::Prefix => actual.starts_with(expected),
            StrCmp::Contains => actual.contains(expected),
            StrCmp::NotEquals => actual != expected,
            StrCmp::PrefixNotEquals => !actual.starts_with(expected),
            StrCmp::NotContains => !actual.contains(expected),
        }
    }
}

/// A parsed `Filters` object of `GetFindings` (also used by automation rules).
#[derive(Debug, Clone, Default)]
pub struct Filters {
    fields: Vec<(&'static [&'static str], Vec<Cond>)>,
}

/// ASFF filter names and where each looks in a finding. Arrays along the path fan out.
const FIELDS: &[(&str, &[&str])] = &[
    ("Id", &["Id"]),
    ("ProductArn", &["ProductArn"]),
    ("AwsAccountId", &["AwsAccountId"]),
    ("AwsAccountName", &["AwsAccountName"]),
    ("Region", &["Region"]),
    ("GeneratorId", &["GeneratorId"]),
    ("Type", &["Types"]),
    ("FirstObservedAt", &["FirstObservedAt"]),
    ("LastObservedAt", &["LastObservedAt"]),
    ("CreatedAt", &["CreatedAt"]),
    ("UpdatedAt", &["UpdatedAt"]),
    ("SeverityLabel", &["Severity", "Label"]),
    ("SeverityNormalized", &["Severity", "Normalized"]),
    ("SeverityProduct", &["Severity", "Product"]),
    ("Confidence", &["Confidence"]),
    ("Criticality", &["Criticality"]),
    ("Title", &["Title"]),
    ("Description", &["Description"]),
    ("ProductName", &["ProductName"]),
    ("CompanyName", &["CompanyName"]),
    ("SourceUrl", &["SourceUrl"]),
    ("ProductFields", &["ProductFields"]),
    ("UserDefinedFields", &["UserDefinedFields"]),
    ("ResourceType", &["Resources", "Type"]),
    ("ResourceId", &["Resources", "Id"]),
    ("ResourcePartition", &["Resources", "Partition"]),
    ("ResourceRegion", &["Resources", "Region"]),
    ("ResourceTags", &["Resources", "Tags"]),
    ("ComplianceStatus", &["Compliance", "Status"]),
    ("ComplianceSecurityControlId", &["Compliance", "SecurityControlId"]),
    ("ComplianceAssociatedStandardsId", &["Compliance", "AssociatedStandards", "StandardsId"]),
    ("VerificationState", &["VerificationState"]),
    ("WorkflowState", &["WorkflowState"]),
    ("WorkflowStatus", &["Workflow", "Status"]),
    ("RecordState", &["RecordState"]),
    ("RelatedFindingsProductArn", &["RelatedFindings", "ProductArn"]),
    ("RelatedFindingsId", &["RelatedFindings", "Id"]),
    ("NoteText", &["Note", "Text"]),
    ("NoteUpdatedAt", &["Note", "UpdatedAt"]),
    ("NoteUpdatedBy", &["Note", "UpdatedBy"]),
    ("Sample", &["Sample"]),
];

fn parse_cmp(s: Option<&str>, invalid: &dyn Fn(String) -> AwsError) -> AwsResult<StrCmp> {
    Ok(match s.unwrap_or("EQUALS") {
        "EQUALS" => StrCmp::Equals,
        "PREFIX" => StrCmp::Prefix,
        "CONTAINS" => StrCmp::Contains,
        "NOT_EQUALS" => StrCmp::NotEquals,
        "PREFIX_NOT_EQUALS" => StrCmp::PrefixNotEquals,
        "NOT_CONTAINS" => StrCmp::NotContains,
        other => return Err(invalid(format!("Invalid Comparison '{other}'"))),
    })
}

impl Filters {
    /// Parses a `Filters` object; `now` anchors `DateRange` filters.
    pub fn parse(filters: Option<&Value>, now: Millis) -> AwsResult<Filters> {
        let invalid = |m: String| AwsError::new(400, "InvalidInputException", m);
        let mut out = Filters::default();
        let Some(filters) = filters else { return Ok(out) };
        let Value::Object(obj) = filters else { return Err(invalid("Filters must be an object".into())) };
        for (name, list) in obj {
            let Some((_, path)) = FIELDS.iter().find(|(n, _)| n == name) else {
                return Err(invalid(format!("The filter field '{name}' is not supported")));
            };
            let Value::Array(list) = list else { return Err(invalid(format!("Filter '{name}' must be a list"))) };
            let mut conds = Vec::new();
            for item in list {
                let Value::Object(f) = item else {
                    return Err(invalid(format!("Filter '{name}' entries must be objects")));
                };
                let cond = if f.contains_key("Start") || f.contains_key("End") || f.contains_key("DateRange") {
                    let date = |k: &str| -> AwsResult<Option<Millis>> {
                        match f.get(k).and_then(Value::as_str) {
                            None => Ok(None),
                            Some(s) => parse_iso8601(s)
                                .map(Some)
                                .ok_or_else(|| invalid(format!("Filter '{name}': '{s}' is not an ISO 8601 timestamp"))),
                        }
                    };
                    let (mut start, mut end) = (date("Start")?, date("End")?);
                    if let Some(range) = f.get("DateRange") {
                        let days = range.get("Value").and_then(Value::as_i64).unwrap_or(0);
                        start = Some(now - days * 86_400_000);
                        end = Some(now);
                    }
                    Cond::Date { start, end }
                } else if f.contains_key("Key") {
                    Cond::Map {
                        key: f.get("Key").and_then(Value::as_str).unwrap_or_default().to_string(),
                        value: f.get("Value").and_then(Value::as_str).unwrap_or_default().to_string(),
                        cmp: parse_cmp(f.get("Comparison").and_then(Value::as_str), &invalid)?,
                    }
                } else if ["Gte", "Lte", "Gt", "Lt", "Eq"].iter().any(|k| f.contains_key(*k)) {
                    let n = |k: &str| f.get(k).and_then(Value::as_f64);
                    Cond::Num { gte: n("Gte"), lte: n("Lte"), gt: n("Gt"), lt: n("Lt"), eq: n("Eq") }
                } else if let Some(Value::Bool(b)) = f.get("Value") {
                    Cond::Bool(*b)
                } else {
                    let value = f
                        .get("Value")
                        .and_then(Value::as_str)
                        .ok_or_else(|| invalid(format!("Filter '{name}' needs a Value")))?;
                    Cond::Str {
                        value: value.to_string(),
                        cmp: parse_cmp(f.get("Comparison").and_then(Value::as_str), &invalid)?,
                    }
                };
                conds.push(cond);
            }
            if !conds.is_empty() {
                out.fields.push((path, conds));
            }
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The values that the filter field `name` must equal, when the filters pin it: every
    /// condition on the field is a positive `EQUALS` (they are OR-ed, so a match equals one of
    /// them). `None` when the field is unfiltered or compared any other way.
    pub fn pinned(&self, name: &str) -> Option<Vec<&str>> {
        let (_, path) = FIELDS.iter().find(|(n, _)| *n == name)?;
        let (_, conds) = self.fields.iter().find(|(p, _)| p == path)?;
        conds
            .iter()
            .map(|c| match c {
                Cond::Str { value, cmp: StrCmp::Equals } => Some(value.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Whether a finding passes every filter. Within one field, positive string comparisons are
    /// OR-ed and negative ones AND-ed, as Security Hub does.
    pub fn matches(&self, doc: &Map<String, Value>) -> bool {
        self.fields.iter().all(|(path, conds)| {
            let mut values = Vec::new();
            collect(doc, path, &mut values);
            let mut any_positive = false;
            let mut positive_hit = false;
            for c in conds {
                match c {
                    Cond::Str { value, cmp } if cmp.negative() => {
                        if !values.iter().filter_map(|v| v.as_str()).all(|a| cmp.test(a, value)) {
                            return false;
                        }
                    }
                    Cond::Str { value, cmp } => {
                        any_positive = true;
                        positive_hit |= values.iter().filter_map(|v| v.as_str()).any(|a| cmp.test(a, value));
                    }
                    Cond::Map { key, value, cmp } => {
                        let hit = values.iter().any(|v| match v {
                            Value::Object(m) => m.get(key).and_then(Value::as_str).is_some_and(|a| cmp.test(a, value)),
                            Value::Array(tags) => tags.iter().any(|t| {
                                t.get("Key").and_then(Value::as_str) == Some(key.as_str())
                                    && t.get("Value").and_then(Value::as_str).is_some_and(|a| cmp.test(a, value))
                            }),
                            _ => false,
                        });
                        if cmp.negative() {
                            if !hit && values.iter().any(|v| v.is_object()) {
                                return false;
                            }
                        } else {
                            any_positive = true;
                            positive_hit |= hit;
                        }
                    }
                    Cond::Date { start, end } => {
                        any_positive = true;
                        positive_hit |= values
                            .iter()
                            .filter_map(|v| v.as_str())
                            .filter_map(parse_iso8601)
                            .any(|t| start.is_none_or(|s| t >= s) && end.is_none_or(|e| t <= e));
                    }
                    Cond::Num { gte, lte, gt, lt, eq } => {
                        any_positive = true;
                        positive_hit |= values.iter().filter_map(|v| v.as_f64()).any(|n| {
                            gte.is_none_or(|g| n >= g)
                                && lte.is_none_or(|l| n <= l)
                                && gt.is_none_or(|g| n > g)
                                && lt.is_none_or(|l| n < l)
                                && eq.is_none_or(|e| n == e)
                        });
                    }
                    Cond::Bool(b) => {
                        any_positive = true;
                        positive_hit |= values.iter().any(|v| v.as_bool() == Some(*b));
                    }
                }
            }
            !any_positive || positive_hit
        })
    }
}

fn collect<'a>(v: &'a Map<String, Value>, path: &[&str], out: &mut Vec<&'a Value>) {
    let Some((first, rest)) = path.split_first() else { return };
    let Some(next) = v.get(*first) else { return };
    descend(next, rest, out);
}

fn descend<'a>(v: &'a Value, path: &[&str], out: &mut Vec<&'a Value>) {
    match (v, path.is_empty()) {
        (Value::Array(items), _) if !(path.is_empty() && items.iter().any(|i| i.get("Key").is_some())) => {
            for i in items {
                descend(i, path, out);
            }
        }
        (v, true) => out.push(v),
        (Value::Object(m), false) => collect(m, path, out),
        _ => {}
    }
}

/// Reads one sortable value at a filter field's path.
pub fn sort_key(doc: &Map<String, Value>, field: &str) -> AwsResult<Option<Value>> {
    let Some((_, path)) = FIELDS.iter().find(|(n, _)| *n == field) else {
        return Err(AwsError::new(400, "InvalidInputException", format!("Cannot sort by '{field}'")));
    };
    let mut values = Vec::new();
    collect(doc, path, &mut values);
    Ok(values.first().map(|v| (*v).clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn string_filters_or_positive_and_negative() {
        let f = doc(json!({"Id": "a", "Workflow": {"Status": "NEW"}, "Severity": {"Label": "HIGH", "Normalized": 70},
            "Resources": [{"Type": "AwsEc2SecurityGroup", "Id": "sg-1", "Tags": {"env": "prod"}}], "UpdatedAt": "2026-01-02T00:00:00.000Z"}));
        let parse = |v: Value| Filters::parse(Some(&v), 0).unwrap();
        assert!(parse(json!({"WorkflowStatus": [{"Value": "NEW", "Comparison": "EQUALS"}, {"Value": "NOTIFIED", "Comparison": "EQUALS"}]})).matches(&f));
        assert!(!parse(json!({"WorkflowStatus": [{"Value": "RESOLVED", "Comparison": "EQUALS"}]})).matches(&f));
        assert!(!parse(json!({"SeverityLabel": [{"Value": "HIGH", "Comparison": "NOT_EQUALS"}]})).matches(&f));
        assert!(parse(json!({"ResourceType": [{"Value": "AwsEc2", "Comparison": "PREFIX"}]})).matches(&f));
        assert!(parse(json!({"ResourceTags": [{"Key": "env", "Value": "prod", "Comparison": "EQUALS"}]})).matches(&f));
        assert!(parse(json!({"SeverityNormalized": [{"Gte": 40}]})).matches(&f));
        assert!(!parse(json!({"SeverityNormalized": [{"Gt": 70}]})).matches(&f));
        assert!(
            parse(json!({"UpdatedAt": [{"Start": "2026-01-01T00:00:00Z", "End": "2026-01-03T00:00:00Z"}]})).matches(&f)
        );
        assert!(!parse(json!({"UpdatedAt": [{"Start": "2026-01-03T00:00:00Z"}]})).matches(&f));
    }

    #[test]
    fn only_positive_equals_pin_a_field() {
        let parse = |v: Value| Filters::parse(Some(&v), 0).unwrap();
        let f = parse(json!({"AwsAccountId": [{"Value": "1", "Comparison": "EQUALS"}, {"Value": "2"}]}));
        assert_eq!(f.pinned("AwsAccountId"), Some(vec!["1", "2"]));
        assert_eq!(f.pinned("Region"), None);
        let f = parse(json!({"AwsAccountId": [{"Value": "1"}, {"Value": "2", "Comparison": "NOT_EQUALS"}]}));
        assert_eq!(f.pinned("AwsAccountId"), None);
        let f = parse(json!({"AwsAccountId": [{"Value": "1", "Comparison": "PREFIX"}]}));
        assert_eq!(f.pinned("AwsAccountId"), None);
    }

    #[test]
    fn a_sorted_listing_is_used_only_at_the_version_it_was_made_at() {
        let mut s = FindingStore::default();
        s.put(doc(json!({"ProductArn": "p", "Id": "1"})));
        let list = std::sync::Arc::new(vec![0]);
        s.keep_sorted_listing("q".into(), list.clone());
        assert_eq!(s.sorted_listing("q"), Some(list));
        assert_eq!(s.sorted_listing("other"), None);
        assert_eq!(s.clone().sorted_listing("q"), None, "a clone starts without listings");
        s.update(0, |d| {
            d.insert("Title".into(), json!("changed"));
        });
        assert_eq!(s.sorted_listing("q"), None, "a change makes the listing stale");
        for i in 0..SORTED_LISTINGS + 10 {
            s.keep_sorted_listing(format!("q{i}"), std::sync::Arc::new(vec![]));
        }
        assert!(s.sorted.0.lock().entries.len() <= SORTED_LISTINGS);
        assert!(s.sorted_listing(&format!("q{}", SORTED_LISTINGS + 9)).is_some(), "the newest is kept");
    }

    #[test]
    fn accounts_after_is_iter_after_restricted_to_the_accounts() {
        let mut s = FindingStore::default();
        for i in 0..30 {
            let account = ["a", "b", "c"][i % 3];
            s.put(doc(json!({"ProductArn": "p", "Id": i.to_string(), "AwsAccountId": account})));
        }
        for after in [None, Some(0), Some(7), Some(29)] {
            for accounts in [vec!["a"], vec!["c", "a"], vec!["b", "zz"], vec![]] {
                let want: Vec<u64> =
                    s.iter_after(after).filter(|f| accounts.contains(&f.account.as_str())).map(|f| f.seq).collect();
                let got: Vec<u64> = s.accounts_after(&accounts, after).iter().map(|f| f.seq).collect();
                assert_eq!(got, want, "accounts {accounts:?} after {after:?}");
            }
        }
    }

    #[test]
    fn unknown_filter_fields_are_rejected_with_a_clear_error() {
        let err = Filters::parse(Some(&json!({"Nope": []})), 0).unwrap_err();
        assert_eq!(err.code, "InvalidInputException");
        assert!(err.message.contains("Nope"));
    }

    #[test]
    fn put_replaces_by_product_and_id() {
        let mut s = FindingStore::default();
        let (a, new_a) = s.put(doc(json!({"ProductArn": "p", "Id": "1", "Title": "x"})));
        let (b, new_b) = s.put(doc(json!({"ProductArn": "p", "Id": "1", "Title": "y"})));
        assert!(new_a && !new_b);
        assert_eq!(a, b);
        assert_eq!(s.len(), 1);
        assert_eq!(s.get(a).unwrap().str_field("Title"), Some("y"));
    }
}
