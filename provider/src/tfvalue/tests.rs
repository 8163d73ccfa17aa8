//! Known vectors, round trips and hostile input for the value codecs.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn nb(s: &str) -> Number {
    s.parse().unwrap()
}

fn num(s: &str) -> Value {
    Value::Number(nb(s))
}

fn obj(pairs: &[(&str, Value)]) -> Value {
    Value::Object(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
}

fn obj_ty(pairs: &[(&str, Type)]) -> Type {
    Type::object(pairs.iter().map(|(k, t)| (k.to_string(), t.clone())))
}

/// Decodes `bytes` to `want`, and when `canonical`, encodes `want` back to exactly `bytes`.
fn vector(bytes: &[u8], ty: &Type, want: &Value, canonical: bool) {
    assert_eq!(decode_msgpack(bytes, ty).unwrap(), *want);
    if canonical {
        assert_eq!(encode_msgpack(want, ty).unwrap(), bytes);
    }
}

// ---- msgpack known vectors ----

#[test]
fn object_with_a_null_attribute() {
    let ty = obj_ty(&[("a", Type::String), ("b", Type::Number)]);
    let v = obj(&[("a", "foo".into()), ("b", Value::Null)]);
    vector(&hex("82 a1 61 a3 666f6f a1 62 c0"), &ty, &v, true);
}

#[test]
fn unknown_values_in_every_encoding_terraform_uses() {
    // What Terraform writes: fixext1 type 0 with one zero byte.
    vector(&hex("d4 00 00"), &Type::String, &Value::Unknown, true);
    // Zero-length ext8, a longer fixext, and a refined unknown (type 12, {1: false} = not null).
    vector(&hex("c7 00 00"), &Type::String, &Value::Unknown, false);
    vector(&hex("d5 00 00 00"), &Type::Number, &Value::Unknown, false);
    vector(&hex("c7 03 0c 81 01 c2"), &Type::String, &Value::Unknown, false);
    vector(&hex("d4 00 00"), &Type::Dynamic, &Value::Unknown, true);
    vector(&hex("d4 00 00"), &Type::list(Type::String), &Value::Unknown, true);
    // Unknown nested in a known list.
    let v = Value::List(vec!["a".into(), Value::Unknown]);
    vector(&hex("92 a1 61 d4 00 00"), &Type::list(Type::String), &v, true);
    assert!(!v.is_known_fully() && !v.is_unknown());
}

#[test]
fn list_of_numbers_uses_the_shortest_integer_forms_and_float64() {
    let v = Value::List(vec![num("1"), num("-1"), num("1.5"), num("300"), num("-200"), num("-33")]);
    let bytes = hex("96 01 ff cb 3ff8000000000000 cd 012c d1 ff38 d0 df");
    vector(&bytes, &Type::list(Type::Number), &v, true);
    // Non-shortest integer forms decode to the same numbers.
    let wide = hex("96 d3 0000000000000001 d2 ffffffff ca 3fc00000 cf 000000000000012c d1 ff38 d0 df");
    assert_eq!(decode_msgpack(&wide, &Type::list(Type::Number)).unwrap(), v);
}

#[test]
fn numbers_beyond_int64_and_float64_are_decimal_strings() {
    let big = "123456789012345678901234567890";
    let mut bytes = vec![0xa0 | 30];
    bytes.extend_from_slice(big.as_bytes());
    vector(&bytes, &Type::Number, &num(big), true);
    // One tenth is not a float64: it stays a string, exactly.
    vector(&hex("a3 302e31"), &Type::Number, &num("0.1"), true);
    // u64::MAX is neither an i64 nor an exact float64, so Terraform would write it as a string.
    let v = decode_msgpack(&hex("cf ffffffffffffffff"), &Type::Number).unwrap();
    assert_eq!(v, num("18446744073709551615"));
    let mut s = vec![0xa0 | 20];
    s.extend_from_slice(b"18446744073709551615");
    assert_eq!(encode_msgpack(&v, &Type::Number).unwrap(), s);
    // 2^63 is not an i64 but is an exact float64.
    let v = decode_msgpack(&hex("cf 8000000000000000"), &Type::Number).unwrap();
    assert_eq!(encode_msgpack(&v, &Type::Number).unwrap(), hex("cb 43e0000000000000"));
    // Infinities travel as float64.
    vector(&hex("cb 7ff0000000000000"), &Type::Number, &Value::Number(Number::infinity(false)), true);
    // NaN is no number.
    assert!(decode_msgpack(&hex("cb 7ff8000000000000"), &Type::Number).is_err());
}

#[test]
fn dynamic_values_carry_their_type_as_json() {
    let v = Value::dynamic(Type::String, "hi".into());
    vector(&hex("92 c4 08 22737472696e6722 a2 6869"), &Type::Dynamic, &v, true);
    // The type may also come as a msgpack string.
    vector(&hex("92 a8 22737472696e6722 a2 6869"), &Type::Dynamic, &v, false);
    let v = Value::dynamic(Type::list(Type::Number), Value::List(vec![num("1"), num("2")]));
    let mut bytes = hex("92 c4 11");
    bytes.extend_from_slice(br#"["list","number"]"#);
    bytes.extend_from_slice(&hex("92 01 02"));
    vector(&bytes, &Type::Dynamic, &v, true);
    // A typed null keeps its type; an untyped null is plain nil.
    let v = Value::dynamic(Type::Bool, Value::Null);
    vector(&hex("92 c4 06 22626f6f6c22 c0"), &Type::Dynamic, &v, true);
    vector(&hex("c0"), &Type::Dynamic, &Value::Null, true);
    // A dynamic value whose type is "dynamic" is flattened to the inner dynamic value.
    let nested = hex("92 c4 09 2264796e616d696322 92 c4 06 22626f6f6c22 c3");
    assert_eq!(decode_msgpack(&nested, &Type::Dynamic).unwrap(), Value::dynamic(Type::Bool, true.into()));
    assert!(encode_msgpack(&Value::dynamic(Type::Dynamic, Value::Null), &Type::Dynamic).is_err());
}

#[test]
fn maps_sets_tuples_and_object_attribute_order() {
    let ty = Type::map(Type::Bool);
    let v = Value::Map(BTreeMap::from([("x".to_string(), true.into()), ("a".to_string(), false.into())]));
    vector(&hex("82 a1 61 c2 a1 78 c3"), &ty, &v, true);
    let ty = Type::set(Type::String);
    vector(&hex("91 a1 61"), &ty, &Value::Set(vec!["a".into()]), true);
    let ty = Type::tuple([Type::String, Type::Bool]);
    vector(&hex("92 a1 61 c3"), &ty, &Value::Tuple(vec!["a".into(), true.into()]), true);
    assert!(decode_msgpack(&hex("91 a1 61"), &ty).is_err());
    // Attributes are written sorted by name; any order is read.
    let ty = obj_ty(&[("z", Type::Bool), ("a", Type::Bool)]);
    let v = obj(&[("z", true.into()), ("a", false.into())]);
    vector(&hex("82 a1 61 c2 a1 7a c3"), &ty, &v, true);
    assert_eq!(decode_msgpack(&hex("82 a1 7a c3 a1 61 c2"), &ty).unwrap(), v);
}

#[test]
fn object_attributes_must_match_the_type_exactly() {
    let ty = obj_ty(&[("a", Type::Bool), ("b", Type::Bool)]);
    let e = decode_msgpack(&hex("81 a1 61 c3"), &ty).unwrap_err();
    assert_eq!(e.to_string(), "attribute \"b\" is missing");
    let e = decode_msgpack(&hex("83 a1 61 c3 a1 62 c3 a1 63 c3"), &ty).unwrap_err();
    assert_eq!(e.to_string(), "unsupported attribute \"c\"");
    assert!(decode_msgpack(&hex("82 a1 61 c3 a1 61 c3"), &ty).is_err(), "duplicate attribute");
    assert!(encode_msgpack(&obj(&[("a", true.into())]), &ty).is_err(), "missing attribute");
    let extra = obj(&[("a", true.into()), ("b", true.into()), ("c", true.into())]);
    assert!(encode_msgpack(&extra, &ty).is_err(), "extra attribute");
}

#[test]
fn errors_name_the_attribute_path() {
    let ty = obj_ty(&[("assume_role", obj_ty(&[("role_arn", Type::String)]))]);
    let mut bytes = hex("81 ab");
    bytes.extend_from_slice(b"assume_role");
    bytes.extend_from_slice(&hex("81 a8"));
    bytes.extend_from_slice(b"role_arn");
    bytes.push(0x05);
    let e = decode_msgpack(&bytes, &ty).unwrap_err();
    assert_eq!(e.to_string(), ".assume_role.role_arn: expected string, found integer");
    assert_eq!(e.path(), [PathStep::Attr("assume_role".into()), PathStep::Attr("role_arn".into())]);
    assert_eq!(e.attribute_path().steps.len(), 2);

    let e = decode_msgpack(&hex("81 a3 612062 a1 78"), &Type::map(Type::Number)).unwrap_err();
    assert_eq!(e.to_string(), "[\"a b\"]: expected number, found string \"x\"");
    let e = decode_msgpack(&hex("92 01 c3"), &Type::list(Type::Number)).unwrap_err();
    assert_eq!(e.to_string(), "[1]: expected number, found bool");
    let e = decode_msgpack(&hex("92 01 c3"), &Type::set(Type::Number)).unwrap_err();
    assert_eq!(e.to_string(), "[1]: expected number, found bool");
    assert!(e.attribute_path().steps.is_empty(), "set elements have no wire address");
}

#[test]
fn truncated_trailing_and_empty_input_are_errors() {
    assert!(decode_msgpack(&[], &Type::String).is_err());
    assert!(decode_msgpack(&hex("a3 6162"), &Type::String).is_err());
    assert!(decode_msgpack(&hex("c0 c0"), &Type::String).is_err());
    assert!(decode_msgpack(&hex("dd ffffffff"), &Type::list(Type::String)).is_err());
    assert!(decode_msgpack(&hex("c1"), &Type::String).is_err());
    assert!(decode_msgpack(&hex("a2 ff fe"), &Type::String).is_err(), "invalid UTF-8");
}

// ---- types ----

#[test]
fn type_json_round_trips_byte_for_byte() {
    for json in [
        r#""bool""#,
        r#""number""#,
        r#""string""#,
        r#""dynamic""#,
        r#"["list","string"]"#,
        r#"["map",["set","number"]]"#,
        r#"["object",{"a":"string","b":["list","number"]}]"#,
        r#"["object",{"a":"string","b":["list","number"]},["b"]]"#,
        r#"["tuple",["bool","dynamic"]]"#,
        r#"["tuple",[]]"#,
        r#"["object",{}]"#,
    ] {
        let t = Type::from_json(json.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(t.to_json()).unwrap(), json);
    }
    let t = Type::from_json(br#" [ "object" , { "b" : "bool" , "a" : "number" } , [ ] ] "#).unwrap();
    assert_eq!(t, obj_ty(&[("a", Type::Number), ("b", Type::Bool)]));
    let t = Type::from_json(br#"["object",{"a":"string","b":"bool"},["b"]]"#).unwrap();
    assert_eq!(t.to_string(), "object({a=string, b=optional(bool)})");
}

#[test]
fn invalid_type_json_is_an_error() {
    for json in [
        "",
        "\"strin\"",
        "[\"list\"]",
        "[\"list\",\"string\",\"string\"]",
        "[\"object\",[]]",
        "[\"object\",{\"a\":\"string\"},[\"b\"]]",
        "[\"object\",{\"a\":\"string\",\"a\":\"bool\"}]",
        "[\"tuple\",\"string\"]",
        "[\"vector\",\"string\"]",
        "[1,\"string\"]",
        "\"string\" x",
        "{}",
    ] {
        assert!(Type::from_json(json.as_bytes()).is_err(), "{json}");
    }
}

// ---- JSON ----

#[test]
fn json_known_vectors() {
    let ty = obj_ty(&[("a", Type::String), ("b", Type::Number)]);
    let v = obj(&[("a", "foo".into()), ("b", Value::Null)]);
    assert_eq!(encode_json(&v, &ty).unwrap(), br#"{"a":"foo","b":null}"#);
    assert_eq!(decode_json(br#"{"a":"foo","b":null}"#, &ty).unwrap(), v);
    // A missing attribute is null.
    assert_eq!(decode_json(br#"{"a":"foo"}"#, &ty).unwrap(), v);
    // An attribute the type lacks is an error unless asked to skip it.
    assert!(decode_json(br#"{"a":"foo","gone":[1,{"x":2}]}"#, &ty).is_err());
    let skip = JsonDecodeOptions { ignore_undefined_attributes: true };
    assert_eq!(decode_json_with(br#"{"a":"foo","gone":[1,{"x":2}]}"#, &ty, skip).unwrap(), v);

    let v = Value::dynamic(Type::String, "hi".into());
    assert_eq!(encode_json(&v, &Type::Dynamic).unwrap(), br#"{"value":"hi","type":"string"}"#);
    assert_eq!(decode_json(br#"{"type":"string","value":"hi"}"#, &Type::Dynamic).unwrap(), v);
    assert_eq!(decode_json(b"null", &Type::Dynamic).unwrap(), Value::Null);

    let big = "-123456789012345678901234567890.000000000000000000000000000001";
    assert_eq!(decode_json(big.as_bytes(), &Type::Number).unwrap(), num(big));
    assert_eq!(encode_json(&num(big), &Type::Number).unwrap(), big.as_bytes());
    assert_eq!(encode_json(&num("1e21"), &Type::Number).unwrap(), b"1000000000000000000000");

    // Terraform's decoder converts primitives; so does this one.
    assert_eq!(decode_json(br#""12.5""#, &Type::Number).unwrap(), num("12.5"));
    assert_eq!(decode_json(b"12.50", &Type::String).unwrap(), Value::String("12.50".into()));
    assert_eq!(decode_json(b"true", &Type::String).unwrap(), Value::String("true".into()));
    assert_eq!(decode_json(br#""true""#, &Type::Bool).unwrap(), Value::Bool(true));
    assert!(decode_json(br#""yes""#, &Type::Bool).is_err());
    assert_eq!(
        decode_json(br#""a\u00e9\ud83d\ude00\n""#, &Type::String).unwrap(),
        Value::String("a\u{e9}\u{1f600}\n".into())
    );

    assert!(encode_json(&Value::Unknown, &Type::String).is_err());
    assert!(encode_json(&Value::Number(Number::infinity(true)), &Type::Number).is_err());
    let e = decode_json(
        br#"{"assume_role":{"role_arn":5}}"#,
        &obj_ty(&[("assume_role", obj_ty(&[("role_arn", Type::Bool)]))]),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), ".assume_role.role_arn: expected bool, found number");
}

#[test]
fn invalid_json_is_an_error() {
    for json in ["", "[1,]", "{\"a\" 1}", "01", "1.", "-", "\"\\x\"", "\"a", "[1] 2", "nul", "\"\u{1}\""] {
        assert!(decode_json(json.as_bytes(), &Type::Dynamic).is_err(), "{json:?}");
        assert!(decode_json(json.as_bytes(), &Type::list(Type::Number)).is_err(), "{json:?}");
    }
    assert!(decode_json(b"[1,2]", &Type::tuple([Type::Number])).is_err());
    assert!(decode_json(br#"{"value":1}"#, &Type::Dynamic).is_err());
    assert!(decode_json(br#"{"value":1,"type":"number","x":1}"#, &Type::Dynamic).is_err());
    assert!(decode_json(&[0x22, 0xff, 0x22], &Type::String).is_err());
}

// ---- numbers ----

#[test]
fn numbers_are_exact_and_canonical() {
    assert_eq!(nb("1.50"), nb("15e-1"));
    assert_eq!(nb("-0"), nb("0"));
    assert_eq!(nb("+.5"), nb("0.5"));
    assert_eq!(nb("1e3").as_i64(), Some(1000));
    assert_eq!(nb("-9223372036854775808").as_i64(), Some(i64::MIN));
    assert_eq!(nb("9223372036854775808").as_i64(), None);
    assert_eq!(Number::from(u64::MAX).to_string(), "18446744073709551615");
    assert_eq!(nb("0.00012").to_string(), "0.00012");
    assert_eq!(nb("-12.5e1").to_string(), "-125");
    assert_eq!(Number::from_f64(0.1).unwrap().to_string(), "0.1000000000000000055511151231257827021181583404541015625");
    assert_eq!(Number::from_f64(0.1).unwrap().as_f64_exact(), Some(0.1));
    assert_eq!(nb("0.1").as_f64_exact(), None);
    assert_eq!(Number::from_f64(-2.5).unwrap(), nb("-2.5"));
    let tiny = Number::from_f64(f64::from_bits(1)).unwrap();
    assert_eq!(tiny.as_f64_exact(), Some(f64::from_bits(1)));
    assert!(tiny.to_string().starts_with("0.000000000000000000000000000000000"));
    assert_eq!(Number::from_f64(f64::MAX).unwrap().as_f64_exact(), Some(f64::MAX));
    assert!(Number::from_f64(f64::NAN).is_none());
    for bad in ["", "-", ".", "1e", "1e+", "0x10", "1_000", "1.2.3", "e5", "1e100000", "1e-100000", " 1"] {
        assert!(bad.parse::<Number>().is_err(), "{bad:?}");
    }
    assert_eq!("-Inf".parse::<Number>().unwrap(), Number::infinity(true));
}

// ---- depth and hostile input ----

fn nested_list_type(depth: usize) -> Type {
    let mut t = Type::String;
    for _ in 0..depth {
        t = Type::list(t);
    }
    t
}

#[test]
fn deep_msgpack_nesting_is_an_error_not_a_stack_overflow() {
    let mut bytes = vec![0x91; 100_000];
    bytes.push(0xc0);
    for ty in [nested_list_type(100), Type::Dynamic, Type::list(Type::Dynamic)] {
        assert!(decode_msgpack(&bytes, &ty).is_err());
    }
    // Dynamic values whose type is "dynamic", nested without end.
    let mut bytes = Vec::new();
    for _ in 0..100_000 {
        bytes.extend_from_slice(&hex("92 c4 09 2264796e616d696322"));
    }
    bytes.push(0xc0);
    let e = decode_msgpack(&bytes, &Type::Dynamic).unwrap_err();
    assert!(e.message().contains("nesting"), "{e}");
    // A dynamic value's type JSON nested 100 000 deep.
    let mut json = "[\"list\",".repeat(100_000);
    json.push_str("\"string\"");
    json.push_str(&"]".repeat(100_000));
    let mut bytes = hex("92 c6");
    bytes.extend_from_slice(&u32::try_from(json.len()).unwrap().to_be_bytes());
    bytes.extend_from_slice(json.as_bytes());
    bytes.push(0xc0);
    assert!(decode_msgpack(&bytes, &Type::Dynamic).is_err());
    // Nesting exactly at the limit is fine.
    let mut bytes = vec![0x91; MAX_DEPTH];
    bytes.push(0xa0);
    assert!(decode_msgpack(&bytes, &nested_list_type(MAX_DEPTH)).is_ok());
    let mut bytes = vec![0x91; MAX_DEPTH + 1];
    bytes.push(0xa0);
    assert!(decode_msgpack(&bytes, &nested_list_type(MAX_DEPTH + 1)).is_err());
}

#[test]
fn deep_json_nesting_is_an_error_not_a_stack_overflow() {
    let deep = "[".repeat(100_000);
    assert!(decode_json(deep.as_bytes(), &nested_list_type(100)).is_err());
    assert!(decode_json(deep.as_bytes(), &Type::Dynamic).is_err());
    assert!(Type::from_json(deep.as_bytes()).is_err());
    let mut ty = "[\"list\",".repeat(100_000);
    ty.push_str("\"string\"");
    ty.push_str(&"]".repeat(100_000));
    assert!(Type::from_json(ty.as_bytes()).is_err());
    let dynamic = "{\"type\":\"dynamic\",\"value\":".repeat(100_000);
    assert!(decode_json(dynamic.as_bytes(), &Type::Dynamic).is_err());
    let balanced = format!("{}null{}", "{\"type\":\"dynamic\",\"value\":".repeat(200), "}".repeat(200));
    assert!(decode_json(balanced.as_bytes(), &Type::Dynamic).is_err());
}

#[test]
fn encoding_a_too_deep_value_is_an_error() {
    let ty = nested_list_type(100);
    let mut v = Value::String("x".into());
    for _ in 0..100 {
        v = Value::List(vec![v]);
    }
    assert!(encode_msgpack(&v, &ty).is_err());
    assert!(encode_json(&v, &ty).is_err());
    let d = Value::dynamic(ty, Value::Null);
    assert!(encode_msgpack(&d, &Type::Dynamic).is_err());
}

#[test]
fn value_helpers() {
    let v = Value::dynamic(
        obj_ty(&[("name", Type::String), ("n", Type::Number), ("on", Type::Bool)]),
        obj(&[("name", "x".into()), ("n", 7.into()), ("on", true.into())]),
    );
    assert_eq!(v.get_attr("name").and_then(Value::as_str), Some("x"));
    assert_eq!(v.get_attr("n").and_then(Value::as_i64), Some(7));
    assert_eq!(v.get_attr("on").and_then(Value::as_bool), Some(true));
    assert!(v.get_attr("missing").is_none());
    assert!(v.is_known_fully() && !v.is_null());
    assert!(Value::dynamic(Type::String, Value::Unknown).is_unknown());
    assert_eq!(Value::from(None::<String>), Value::Null);
}

// ---- property tests ----

fn arb_name() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_]{0,5}"
}

/// Types up to three levels deep; `dynamic` only where `allow_dynamic`.
fn arb_type(allow_dynamic: bool) -> BoxedStrategy<Type> {
    let leaf = if allow_dynamic {
        prop_oneof![Just(Type::Bool), Just(Type::Number), Just(Type::String), Just(Type::Dynamic)].boxed()
    } else {
        prop_oneof![Just(Type::Bool), Just(Type::Number), Just(Type::String)].boxed()
    };
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(Type::list),
            inner.clone().prop_map(Type::set),
            inner.clone().prop_map(Type::map),
            (prop::collection::btree_map(arb_name(), inner.clone(), 0..4), any::<u8>()).prop_map(
                |(attributes, mask)| {
                    let optional: BTreeSet<String> = attributes
                        .keys()
                        .enumerate()
                        .filter(|(i, _)| mask >> i & 1 == 1)
                        .map(|(_, k)| k.clone())
                        .collect();
                    Type::Object { attributes, optional }
                }
            ),
            prop::collection::vec(inner, 0..4).prop_map(Type::Tuple),
        ]
    })
    .boxed()
}

fn arb_number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        (-100i64..100).prop_map(Number::from),
        any::<f64>().prop_filter_map("NaN is no number", Number::from_f64),
        "-?[0-9]{1,30}(\\.[0-9]{1,30})?(e-?[0-9]{1,2})?".prop_map(|s| s.parse::<Number>().unwrap()),
    ]
}

/// A value of type `ty`, null or unknown anywhere. `budget` bounds how many dynamic values may
/// nest (each picks a fresh type).
fn arb_value(ty: &Type, budget: u32) -> BoxedStrategy<Value> {
    let known: BoxedStrategy<Value> = match ty {
        Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Type::Number => arb_number().prop_map(Value::Number).boxed(),
        Type::String => any::<String>().prop_map(Value::String).boxed(),
        Type::Dynamic if budget == 0 => Just(Value::Null).boxed(),
        Type::Dynamic => arb_type(budget > 1)
            .prop_filter("a dynamic value carries a concrete type", |t| *t != Type::Dynamic)
            .prop_flat_map(move |t| arb_value(&t, budget - 1).prop_map(move |v| Value::dynamic(t.clone(), v)))
            .boxed(),
        Type::List(e) => prop::collection::vec(arb_value(e, budget), 0..4).prop_map(Value::List).boxed(),
        Type::Set(e) => prop::collection::vec(arb_value(e, budget), 0..4).prop_map(Value::Set).boxed(),
        Type::Map(e) => prop::collection::btree_map(".{0,6}", arb_value(e, budget), 0..4).prop_map(Value::Map).boxed(),
        Type::Object { attributes, .. } => attributes
            .iter()
            .map(|(k, t)| {
                let k = k.clone();
                arb_value(t, budget).prop_map(move |v| (k.clone(), v))
            })
            .collect::<Vec<_>>()
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect()))
            .boxed(),
        Type::Tuple(ts) => ts.iter().map(|t| arb_value(t, budget)).collect::<Vec<_>>().prop_map(Value::Tuple).boxed(),
    };
    prop_oneof![1 => Just(Value::Null), 1 => Just(Value::Unknown), 6 => known].boxed()
}

fn arb_typed_value() -> impl Strategy<Value = (Type, Value)> {
    arb_type(true).prop_flat_map(|t| {
        let v = arb_value(&t, 2);
        (Just(t), v)
    })
}

fn has_infinity(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_infinite(),
        Value::List(vs) | Value::Set(vs) | Value::Tuple(vs) => vs.iter().any(has_infinity),
        Value::Map(m) | Value::Object(m) => m.values().any(has_infinity),
        Value::Dynamic(_, inner) => has_infinity(inner),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn msgpack_round_trip((ty, v) in arb_typed_value()) {
        let bytes = encode_msgpack(&v, &ty).unwrap();
        prop_assert_eq!(&decode_msgpack(&bytes, &ty).unwrap(), &v);
        // An independent MessagePack reader sees exactly one well-formed item.
        let mut rest = &bytes[..];
        prop_assert!(rmpv::decode::read_value(&mut rest).is_ok());
        prop_assert!(rest.is_empty());
    }

    #[test]
    fn json_round_trip((ty, v) in arb_typed_value()) {
        if v.is_known_fully() && !has_infinity(&v) {
            let bytes = encode_json(&v, &ty).unwrap();
            prop_assert_eq!(&decode_json(&bytes, &ty).unwrap(), &v);
            // It is JSON by another parser's judgement too.
            prop_assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_ok());
        } else {
            prop_assert!(encode_json(&v, &ty).is_err());
        }
    }

    #[test]
    fn type_json_round_trip(ty in arb_type(true)) {
        prop_assert_eq!(Type::from_json(&ty.to_json()).unwrap(), ty);
    }

    #[test]
    fn number_text_round_trip(n in arb_number()) {
        prop_assert_eq!(&n.to_string().parse::<Number>().unwrap(), &n);
        if let Some(f) = n.as_f64_exact() {
            prop_assert_eq!(Number::from_f64(f), Some(n.clone()));
        }
        if let Some(i) = n.as_i64() {
            prop_assert_eq!(Number::from(i), n);
        }
    }

    #[test]
    fn decoders_never_panic_on_random_bytes(ty in arb_type(true), bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode_msgpack(&bytes, &ty);
        let _ = decode_json(&bytes, &ty);
        let _ = Type::from_json(&bytes);
    }

    #[test]
    fn decoders_never_panic_on_json_like_text(ty in arb_type(true), text in "[\\[\\]{}\",:0-9a-z\\-.eE\\\\ ]{0,64}") {
        let _ = decode_json(text.as_bytes(), &ty);
        let _ = decode_json_with(text.as_bytes(), &ty, JsonDecodeOptions { ignore_undefined_attributes: true });
        let _ = Type::from_json(text.as_bytes());
    }

    #[test]
    fn decoders_never_panic_on_damaged_encodings(
        (ty, v) in arb_typed_value(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = encode_msgpack(&v, &ty).unwrap();
        let i = at.index(bytes.len());
        let _ = decode_msgpack(&bytes[..i], &ty);
        bytes[i] = byte;
        let _ = decode_msgpack(&bytes, &ty);
        if let Ok(mut json) = encode_json(&v, &ty) {
            let i = at.index(json.len());
            let _ = decode_json(&json[..i], &ty);
            json[i] = byte;
            let _ = decode_json(&json, &ty);
        }
    }
}
