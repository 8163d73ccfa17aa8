//! [`Number`]: Terraform's arbitrary-precision number, kept as an exact decimal.

use std::fmt;
use std::str::FromStr;

use super::CodecError;

/// Decimal exponents beyond this are rejected: such a number would render as thousands of
/// digits, and no Terraform value comes near it (`f64` needs at most 1074 fractional digits).
const MAX_EXPONENT: i64 = 5000;

/// A Terraform number: an exact decimal of any precision, or an infinity.
///
/// The representation is canonical (`1.50`, `15e-1` and `1.5` are the same number, `-0` is `0`),
/// so `==` compares values. Numbers from `f64` keep the float's exact binary value: `0.1_f64`
/// is `0.1000000000000000055511151231257827021181583404541015625`, while `"0.1".parse()` is
/// exactly one tenth; they are different numbers, as they are in Terraform.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Number(Repr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    /// `digits × 10^exponent`. `digits` holds ASCII digits with no leading or trailing zero; it is
    /// empty for zero, and then `negative` is false and `exponent` is 0.
    Finite {
        negative: bool,
        digits: Box<str>,
        exponent: i64,
    },
    PosInf,
    NegInf,
}

impl Number {
    /// Zero.
    pub fn zero() -> Number {
        Number(Repr::Finite { negative: false, digits: "".into(), exponent: 0 })
    }

    /// Positive or negative infinity, which Terraform numbers can be.
    pub fn infinity(negative: bool) -> Number {
        Number(if negative { Repr::NegInf } else { Repr::PosInf })
    }

    /// The exact value of a float; `None` for NaN, which is no Terraform number.
    pub fn from_f64(f: f64) -> Option<Number> {
        if f.is_nan() {
            return None;
        }
        if f.is_infinite() {
            return Some(Number::infinity(f < 0.0));
        }
        // Enough fractional digits to print the float's binary value exactly: a float is
        // m × 2^e, which has exactly -e digits after the point when e < 0.
        let bits = f.to_bits();
        let biased = i64::try_from((bits >> 52) & 0x7ff).unwrap_or(0);
        let fraction = bits & ((1u64 << 52) - 1);
        let (mantissa, exp2) = if biased == 0 { (fraction, -1074) } else { (fraction | (1u64 << 52), biased - 1075) };
        if mantissa == 0 {
            return Some(Number::zero());
        }
        let exp2 = exp2 + i64::from(mantissa.trailing_zeros());
        let precision = usize::try_from(-exp2).unwrap_or(0);
        let text = format!("{:.*}", precision, f);
        parse_decimal(&text)
    }

    /// The number as an `i64`, if it is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        let v = self.as_i128()?;
        i64::try_from(v).ok()
    }

    /// The number as a `u64`, if it is a non-negative integer in range.
    pub fn as_u64(&self) -> Option<u64> {
        let v = self.as_i128()?;
        u64::try_from(v).ok()
    }

    /// An integer of at most 38 digits, exactly.
    fn as_i128(&self) -> Option<i128> {
        let Repr::Finite { negative, digits, exponent } = &self.0 else { return None };
        if *exponent < 0 {
            return None;
        }
        let total = usize::try_from(*exponent).ok()?.checked_add(digits.len())?;
        if total > 38 {
            return None;
        }
        let mut v: i128 = 0;
        for b in digits.bytes() {
            v = v.checked_mul(10)?.checked_add(i128::from(b.wrapping_sub(b'0')))?;
        }
        for _ in 0..*exponent {
            v = v.checked_mul(10)?;
        }
        Some(if *negative { -v } else { v })
    }

    /// The nearest `f64` (infinite when out of range).
    pub fn to_f64(&self) -> f64 {
        match &self.0 {
            Repr::PosInf => f64::INFINITY,
            Repr::NegInf => f64::NEG_INFINITY,
            Repr::Finite { negative, digits, exponent } => {
                if digits.is_empty() {
                    return 0.0;
                }
                let text = format!("{}{}e{}", if *negative { "-" } else { "" }, digits, exponent);
                text.parse::<f64>().unwrap_or(f64::NAN)
            }
        }
    }

    /// The number as an `f64`, if that float holds it exactly.
    pub fn as_f64_exact(&self) -> Option<f64> {
        let f = self.to_f64();
        (Number::from_f64(f).as_ref() == Some(self)).then_some(f)
    }

    /// Whether the number is a finite integer.
    pub fn is_integer(&self) -> bool {
        matches!(&self.0, Repr::Finite { exponent, .. } if *exponent >= 0)
    }

    /// Whether the number is an infinity.
    pub fn is_infinite(&self) -> bool {
        matches!(self.0, Repr::PosInf | Repr::NegInf)
    }
}

/// Parses `[+-]digits[.digits][(e|E)[+-]digits]` (either side of the point may be empty, not
/// both), or an infinity: `inf`, `+Inf`, `-Infinity`, any case.
fn parse_decimal(s: &str) -> Option<Number> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..)?),
        Some(b'+') => (false, s.get(1..)?),
        _ => (false, s),
    };
    if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        return Some(Number::infinity(negative));
    }
    let (mantissa, exp_text) = match body.find(['e', 'E']) {
        Some(i) => (body.get(..i)?, Some(body.get(i + 1..)?)),
        None => (body, None),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (mantissa.get(..i)?, mantissa.get(i + 1..)?),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut exponent: i64 = match exp_text {
        None => 0,
        Some(t) => parse_exponent(t)?,
    };
    exponent = exponent.checked_sub(i64::try_from(frac_part.len()).ok()?)?;
    let all: String = int_part.chars().chain(frac_part.chars()).collect();
    let trimmed_front = all.trim_start_matches('0');
    let trimmed = trimmed_front.trim_end_matches('0');
    if trimmed.is_empty() {
        return Some(Number::zero());
    }
    exponent = exponent.checked_add(i64::try_from(trimmed_front.len().saturating_sub(trimmed.len())).ok()?)?;
    let len = i64::try_from(trimmed.len()).ok()?;
    if exponent < -MAX_EXPONENT - len || exponent.checked_add(len)? > MAX_EXPONENT {
        return None;
    }
    Some(Number(Repr::Finite { negative, digits: trimmed.into(), exponent }))
}

/// `[+-]digits`, saturating far beyond any accepted exponent so that huge exponents are rejected
/// by the range check instead of overflowing.
fn parse_exponent(t: &str) -> Option<i64> {
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, t.get(1..)?),
        Some(b'+') => (false, t.get(1..)?),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: i64 = 0;
    for b in digits.bytes() {
        v = v.saturating_mul(10).saturating_add(i64::from(b.wrapping_sub(b'0'))).min(1 << 40);
    }
    Some(if neg { -v } else { v })
}

impl FromStr for Number {
    type Err = CodecError;

    /// Parses a decimal such as `-12`, `0.5`, `1e21` or `.5`, or an infinity (`+Inf`).
    fn from_str(s: &str) -> Result<Number, CodecError> {
        parse_decimal(s).ok_or_else(|| CodecError::root(format!("{} is not a valid number", super::json::quote(s))))
    }
}

impl fmt::Display for Number {
    /// Plain decimal notation without an exponent (`1000000000000000000000`, `-0.25`), the form
    /// Terraform uses for numbers it writes as strings and in JSON; infinities are `+Inf`/`-Inf`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (negative, digits, exponent) = match &self.0 {
            Repr::PosInf => return f.write_str("+Inf"),
            Repr::NegInf => return f.write_str("-Inf"),
            Repr::Finite { negative, digits, exponent } => (*negative, digits, *exponent),
        };
        if digits.is_empty() {
            return f.write_str("0");
        }
        let mut out = String::with_capacity(digits.len() + 8);
        if negative {
            out.push('-');
        }
        if exponent >= 0 {
            out.push_str(digits);
            out.extend(std::iter::repeat_n('0', usize::try_from(exponent).unwrap_or(0)));
        } else {
            let frac = usize::try_from(-exponent).unwrap_or(0);
            if frac >= digits.len() {
                out.push_str("0.");
                out.extend(std::iter::repeat_n('0', frac - digits.len()));
                out.push_str(digits);
            } else {
                let split = digits.len() - frac;
                for (i, c) in digits.chars().enumerate() {
                    if i == split {
                        out.push('.');
                    }
                    out.push(c);
                }
            }
        }
        f.write_str(&out)
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Number({self})")
    }
}

impl From<i64> for Number {
    fn from(v: i64) -> Number {
        parse_decimal(&v.to_string()).unwrap_or_else(Number::zero)
    }
}

impl From<u64> for Number {
    fn from(v: u64) -> Number {
        parse_decimal(&v.to_string()).unwrap_or_else(Number::zero)
    }
}

impl From<i32> for Number {
    fn from(v: i32) -> Number {
        Number::from(i64::from(v))
    }
}

impl From<u32> for Number {
    fn from(v: u32) -> Number {
        Number::from(u64::from(v))
    }
}
