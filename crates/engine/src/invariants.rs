//! Outputs that cannot be true are bugs: the checks every report passes
//! before the engine hands it out.
//!
//! Why here and shaped like this: a wrong number shown with confidence is
//! worse than no number. A model can be right on every benchmark and still
//! produce an impossible value on data of a shape nobody tried (negative
//! expected purchases for a new customer, a probability of 1.3, a NaN that
//! JSON silently prints as `null`). So the engine walks every report through
//! serde (the same traversal that would serialize it, so no field can be
//! forgotten) and checks, by field name, what each kind of number promises:
//!
//! - every floating-point value is finite;
//! - probabilities and scores that are probabilities or fractions
//!   ([`PROBABILITIES`]) lie in [0, 1];
//! - counts of expected purchases, money a customer is worth and error
//!   measures ([`NON_NEGATIVE`]) are ≥ 0.
//!
//! Texts are not checked here: a reason or a description embeds the
//! customers' own values (an attribute level, a category name), which may
//! legitimately read `-0`. Numbers in words go through
//! [`crate::features::fixed`] / [`crate::features::render`], which never write
//! a negative zero, and the tests check every generated text with [`bad_text`].
//!
//! A violation is an internal error ([`EngineError::Invariant`]) naming the
//! report, the field path and the value: never shown as a result, always a
//! bug to fix. The checks run in debug and release builds; they cost one walk
//! of the report, which is small next to computing it.

use serde::ser::{self, Serialize};

use crate::EngineError;

/// Fields that hold a probability, a rate or a score in [0, 1].
pub const PROBABILITIES: &[&str] = &[
    "prob_alive",
    "probability",
    "posterior",
    "posterior_without_event",
    "prior",
    "likelihood",
    "likelihood_not",
    "evidence",
    "churn_rate",
    "observed_rate",
    "mean_predicted",
    "roc_auc",
    "inner_roc_auc",
    "pr_auc",
    "accuracy",
    "brier",
    "precision",
    "recall",
    "ndcg",
    "map",
    "coverage",
    "ece_raw",
    "ece_calibrated",
];

/// Fields that can never be negative.
pub const NON_NEGATIVE: &[&str] = &[
    "expected_purchases",
    "expected_spend",
    "clv",
    "total_clv",
    "prob_alive",
    "log_loss",
    "rmse",
    "mae",
    "mape",
    "fit_seconds",
];

/// Checks a report; `what` names it in the error (`"clv"`, `"churn"`, …).
pub fn check<T: Serialize + ?Sized>(what: &str, report: &T) -> Result<(), EngineError> {
    let violations = violations(report);
    if violations.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = violations.iter().take(5).map(String::as_str).collect();
    Err(EngineError::Invariant(format!(
        "{what}: {} impossible value{} in the report ({}{})",
        violations.len(),
        if violations.len() == 1 { "" } else { "s" },
        shown.join("; "),
        if violations.len() > 5 { "; …" } else { "" }
    )))
}

/// [`check`]s a report and hands it back: `Ok(r)` at the end of a use case
/// becomes `checked("name", r)`.
pub fn checked<T: Serialize>(what: &str, report: T) -> Result<T, EngineError> {
    check(what, &report)?;
    Ok(report)
}

/// Every violation in a report, as `path: reason` (empty when it is sound).
pub fn violations<T: Serialize + ?Sized>(report: &T) -> Vec<String> {
    let mut w = Walker::default();
    // The walker itself never fails; a report whose Serialize impl fails is
    // reported as a violation too.
    if let Err(e) = report.serialize(&mut w) {
        w.out.push(format!("the report could not be walked: {e}"));
    }
    w.out
}

/// Whether a text shows a negative zero (`-0`, `-0.0`, `-0.00` not
/// followed by more digits) or a NaN.
pub fn bad_text(s: &str) -> bool {
    let b = s.as_bytes();
    for (i, _) in s.match_indices("-0") {
        let prev_digit = i > 0 && b[i - 1].is_ascii_digit();
        let mut j = i + 2;
        if j < b.len() && b[j] == b'.' {
            j += 1;
            while j < b.len() && b[j] == b'0' {
                j += 1;
            }
        }
        let next_digit = j < b.len() && b[j].is_ascii_digit();
        if !prev_digit && !next_digit {
            return true;
        }
    }
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| w == "NaN" || w == "nan")
}

#[derive(Default)]
struct Walker {
    /// Field names and indices from the root to the current value.
    path: Vec<String>,
    out: Vec<String>,
}

/// Errors of the walker (it has none of its own; serde requires the type).
#[derive(Debug)]
struct WalkError(String);

impl std::fmt::Display for WalkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WalkError {}

impl ser::Error for WalkError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        WalkError(msg.to_string())
    }
}

impl Walker {
    fn here(&self) -> String {
        if self.path.is_empty() {
            "(report)".into()
        } else {
            self.path.join(".")
        }
    }

    /// The innermost field name (indices skipped).
    fn field(&self) -> Option<&str> {
        self.path
            .iter()
            .rev()
            .find(|p| !p.starts_with('['))
            .map(String::as_str)
    }

    fn number(&mut self, v: f64) {
        if !v.is_finite() {
            self.out
                .push(format!("{} = {v} is not finite", self.here()));
            return;
        }
        let Some(field) = self.field() else { return };
        if PROBABILITIES.contains(&field) && !(0.0..=1.0).contains(&v) {
            self.out
                .push(format!("{} = {v} is outside [0, 1]", self.here()));
        } else if NON_NEGATIVE.contains(&field) && v < 0.0 {
            self.out.push(format!("{} = {v} is negative", self.here()));
        }
    }

    fn nested<T: Serialize + ?Sized>(&mut self, key: String, v: &T) -> Result<(), WalkError> {
        self.path.push(key);
        let r = v.serialize(&mut *self);
        self.path.pop();
        r
    }
}

/// A sequence, tuple or map being walked: counts elements for the path and
/// remembers the pending map key.
struct Compound<'a> {
    w: &'a mut Walker,
    index: usize,
    key: Option<String>,
}

impl Compound<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), WalkError> {
        let key = format!("[{}]", self.index);
        self.index += 1;
        self.w.nested(key, v)
    }
}

macro_rules! seq_like {
    ($tr:ident, $m:ident) => {
        impl ser::$tr for Compound<'_> {
            type Ok = ();
            type Error = WalkError;
            fn $m<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), WalkError> {
                self.element(v)
            }
            fn end(self) -> Result<(), WalkError> {
                Ok(())
            }
        }
    };
}
seq_like!(SerializeSeq, serialize_element);
seq_like!(SerializeTuple, serialize_element);
seq_like!(SerializeTupleStruct, serialize_field);
seq_like!(SerializeTupleVariant, serialize_field);

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = WalkError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), WalkError> {
        // keys are strings or numbers in every report; rendered for the path
        self.key = Some(match serde_json::to_value(k) {
            Ok(serde_json::Value::String(s)) => s,
            Ok(v) => v.to_string(),
            Err(_) => "[key]".into(),
        });
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), WalkError> {
        let key = self.key.take().unwrap_or_else(|| "[value]".into());
        self.w.nested(key, v)
    }
    fn end(self) -> Result<(), WalkError> {
        Ok(())
    }
}

macro_rules! struct_like {
    ($tr:ident) => {
        impl ser::$tr for Compound<'_> {
            type Ok = ();
            type Error = WalkError;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                v: &T,
            ) -> Result<(), WalkError> {
                self.w.nested(key.to_string(), v)
            }
            fn end(self) -> Result<(), WalkError> {
                Ok(())
            }
        }
    };
}
struct_like!(SerializeStruct);
struct_like!(SerializeStructVariant);

/// Scalars no rule applies to.
macro_rules! noop {
    ($($f:ident: $t:ty),*) => {
        $(fn $f(self, _: $t) -> Result<(), WalkError> { Ok(()) })*
    };
}

impl<'a> ser::Serializer for &'a mut Walker {
    type Ok = ();
    type Error = WalkError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    noop!(
        serialize_bool: bool,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
        serialize_char: char,
        serialize_bytes: &[u8]
    );
    fn serialize_i8(self, v: i8) -> Result<(), WalkError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), WalkError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), WalkError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), WalkError> {
        // integers are finite; the sign rules apply to them too
        if v < 0 && self.field().is_some_and(|f| NON_NEGATIVE.contains(&f)) {
            self.out.push(format!("{} = {v} is negative", self.here()));
        }
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), WalkError> {
        self.number(f64::from(v));
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<(), WalkError> {
        self.number(v);
        Ok(())
    }
    fn serialize_str(self, _: &str) -> Result<(), WalkError> {
        Ok(())
    }
    fn serialize_none(self) -> Result<(), WalkError> {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), WalkError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), WalkError> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), WalkError> {
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), WalkError> {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), WalkError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), WalkError> {
        self.nested(variant.to_string(), v)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a>, WalkError> {
        Ok(Compound {
            w: self,
            index: 0,
            key: None,
        })
    }
    fn serialize_tuple(self, _: usize) -> Result<Compound<'a>, WalkError> {
        self.serialize_seq(None)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, WalkError> {
        self.serialize_seq(None)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, WalkError> {
        self.serialize_seq(None)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'a>, WalkError> {
        self.serialize_seq(None)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, WalkError> {
        self.serialize_seq(None)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, WalkError> {
        self.serialize_seq(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use std::collections::BTreeMap;

    #[derive(Serialize)]
    struct Customer {
        key: String,
        expected_purchases: f64,
        prob_alive: f64,
        text: Vec<String>,
        email: String,
    }

    #[derive(Serialize)]
    struct Report {
        total_clv: f64,
        top: Vec<Customer>,
        extra: BTreeMap<String, f64>,
        other: Option<f64>,
    }

    fn report() -> Report {
        Report {
            total_clv: 10.0,
            top: vec![Customer {
                key: "household:1644".into(),
                expected_purchases: 40.8,
                prob_alive: 0.99,
                text: vec!["spent 0.0 in the last 90 days".into()],
                email: "a-0@example.com".into(),
            }],
            extra: BTreeMap::from([("x".into(), 1.5)]),
            other: Some(-3.0),
        }
    }

    #[test]
    fn a_sound_report_passes() {
        assert!(check("clv", &report()).is_ok());
    }

    #[test]
    fn every_kind_of_impossible_value_is_named_with_its_path() {
        let mut r = report();
        r.top[0].expected_purchases = -3.37e12;
        r.top[0].prob_alive = 1.2;
        r.extra.insert("y".into(), f64::NAN);
        // a customer's own text is theirs to write: not checked
        r.top[0].text.push("size -0".into());
        let v = violations(&r);
        assert_eq!(v.len(), 3, "{v:?}");
        assert!(v[0].starts_with("top.[0].expected_purchases = -3370000000000 is negative"));
        assert!(v[1].starts_with("top.[0].prob_alive = 1.2 is outside [0, 1]"));
        assert!(v[2].starts_with("extra.y = NaN is not finite"));
        let e = check("clv", &r)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("clv: 3 impossible values"), "{e}");
    }

    #[test]
    fn negative_zero_is_found_in_text_but_not_in_ordinary_numbers() {
        for bad in ["-0", "spent -0.0 in", "(-0.00)", "gap -0 days", "NaN days"] {
            assert!(bad_text(bad), "{bad}");
        }
        for ok in [
            "-0.05",
            "spent 0.0",
            "2020-01-05",
            "+0.21",
            "10-0.5",
            "x-01",
            "-0.01",
            "nanny",
        ] {
            assert!(!bad_text(ok), "{ok}");
        }
    }
}
