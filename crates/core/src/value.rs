//! Typed cell values and the one place text is parsed into them.
//!
//! Readers hand over [`Cell`]s: text for CSV/JSON strings, or already typed
//! values from Parquet and JSON numbers. Field parsers turn a cell into the
//! type a field needs and return a human reason when it can't.
//!
//! Accepted time forms: RFC 3339 (`2024-03-01T10:00:00Z`, offsets honoured),
//! `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS[.fff]]`, `YYYY-MM-DDTHH:MM:SS` (UTC
//! assumed), `YYYYMMDD`, and Unix seconds (an integer that is not a valid
//! `YYYYMMDD`). Times are stored as Unix seconds, UTC.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

use crate::dataset::AttrValue;

/// One cell as read from a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    /// Empty cell or JSON null.
    Null,
    /// Text (CSV cells, JSON strings).
    Str(&'a str),
    /// An integer (Parquet/JSON).
    Int(i64),
    /// A float (Parquet/JSON).
    Float(f64),
    /// A boolean (Parquet/JSON).
    Bool(bool),
    /// A timestamp already typed by the file, Unix seconds UTC.
    Time(i64),
}

impl Cell<'_> {
    /// True for empty cells and nulls (text that is only whitespace counts as empty).
    pub fn is_null(&self) -> bool {
        match self {
            Cell::Null => true,
            Cell::Str(s) => s.trim().is_empty(),
            _ => false,
        }
    }

    /// The cell as text (for ids, names, categories).
    pub fn text(&self) -> Option<String> {
        match self {
            Cell::Null => None,
            Cell::Str(s) => {
                let t = s.trim();
                (!t.is_empty()).then(|| t.to_string())
            }
            Cell::Int(i) => Some(i.to_string()),
            Cell::Float(f) => Some(format_float(*f)),
            Cell::Bool(b) => Some(b.to_string()),
            Cell::Time(t) => DateTime::from_timestamp(*t, 0).map(|d| d.to_rfc3339()),
        }
    }

    /// Raw rendering for error messages.
    pub fn display(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Str(s) => (*s).to_string(),
            other => other.text().unwrap_or_default(),
        }
    }
}

/// Renders a float without a trailing `.0` for integral values.
pub fn format_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

/// Parses a decimal number (`1234.5`, `-3`, `1e3`; a thousands separator is refused).
pub fn parse_decimal(cell: &Cell<'_>) -> Result<Option<f64>, String> {
    match cell {
        Cell::Null => Ok(None),
        Cell::Int(i) => Ok(Some(*i as f64)),
        Cell::Float(f) if f.is_finite() => Ok(Some(*f)),
        Cell::Float(_) => Err("not a finite number".into()),
        Cell::Bool(_) | Cell::Time(_) => Err("expected a number".into()),
        Cell::Str(s) => {
            let t = s.trim();
            if t.is_empty() {
                return Ok(None);
            }
            match t.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Some(v)),
                _ => Err("expected a decimal number".into()),
            }
        }
    }
}

/// Parses an integer.
pub fn parse_int(cell: &Cell<'_>) -> Result<Option<i64>, String> {
    match cell {
        Cell::Null => Ok(None),
        Cell::Int(i) => Ok(Some(*i)),
        Cell::Float(f) if f.fract() == 0.0 && f.abs() < 9e15 => Ok(Some(*f as i64)),
        Cell::Str(s) => {
            let t = s.trim();
            if t.is_empty() {
                return Ok(None);
            }
            t.parse::<i64>()
                .map(Some)
                .map_err(|_| "expected an integer".into())
        }
        _ => Err("expected an integer".into()),
    }
}

/// Parses a boolean: true/false, yes/no, y/n, 1/0, t/f (any case).
pub fn parse_bool(cell: &Cell<'_>) -> Result<Option<bool>, String> {
    match cell {
        Cell::Null => Ok(None),
        Cell::Bool(b) => Ok(Some(*b)),
        Cell::Int(0) => Ok(Some(false)),
        Cell::Int(1) => Ok(Some(true)),
        Cell::Str(s) => {
            let t = s.trim().to_lowercase();
            match t.as_str() {
                "" => Ok(None),
                "true" | "yes" | "y" | "1" | "t" => Ok(Some(true)),
                "false" | "no" | "n" | "0" | "f" => Ok(Some(false)),
                _ => Err("expected a boolean (true/false, yes/no, 1/0)".into()),
            }
        }
        _ => Err("expected a boolean (true/false, yes/no, 1/0)".into()),
    }
}

/// Parses a timestamp into Unix seconds (UTC).
pub fn parse_time(cell: &Cell<'_>) -> Result<Option<i64>, String> {
    match cell {
        Cell::Null => Ok(None),
        Cell::Time(t) => Ok(Some(*t)),
        Cell::Int(i) => Ok(Some(int_time(*i))),
        Cell::Float(f) if f.is_finite() => Ok(Some(f.floor() as i64)),
        Cell::Str(s) => {
            let t = s.trim();
            if t.is_empty() {
                return Ok(None);
            }
            parse_time_str(t).map(Some).ok_or_else(|| {
                "not a date/time (expected RFC 3339, YYYY-MM-DD, YYYY-MM-DD HH:MM:SS, YYYYMMDD or Unix seconds)"
                    .to_string()
            })
        }
        _ => Err("expected a date/time".into()),
    }
}

fn int_time(i: i64) -> i64 {
    if (10_000_000..=99_999_999).contains(&i)
        && let Some(d) = yyyymmdd(i)
    {
        return d;
    }
    i
}

fn yyyymmdd(i: i64) -> Option<i64> {
    let y = i32::try_from(i / 10_000).ok()?;
    let m = u32::try_from((i / 100) % 100).ok()?;
    let d = u32::try_from(i % 100).ok()?;
    let date = NaiveDate::from_ymd_opt(y, m, d)?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

/// Parses a timestamp string; `None` when no accepted form matches.
pub fn parse_time_str(t: &str) -> Option<i64> {
    let bytes = t.as_bytes();
    if let Some(v) = fast_datetime(bytes) {
        return Some(v);
    }
    if bytes.iter().all(u8::is_ascii_digit) || (bytes.first() == Some(&b'-') && bytes.len() > 1) {
        let i: i64 = t.parse().ok()?;
        return Some(int_time(i));
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.timestamp());
    }
    if t.len() == 10 {
        return NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc().timestamp());
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, fmt) {
            return Some(d.and_utc().timestamp());
        }
    }
    // "2024-03-01 10:00:00+02:00" and "… UTC"
    if let Ok(d) = DateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%z") {
        return Some(d.timestamp());
    }
    if let Some(s) = t.strip_suffix(" UTC") {
        return parse_time_str(s);
    }
    None
}

/// Fast path for the two commonest layouts, `YYYY-MM-DD` and
/// `YYYY-MM-DD HH:MM:SS` (or with `T`), validated field by field.
fn fast_datetime(b: &[u8]) -> Option<i64> {
    if !(b.len() == 10 || (b.len() == 19 && (b[10] == b' ' || b[10] == b'T'))) {
        return None;
    }
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let date = NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)?;
    let (h, m, sec) = if b.len() == 19 {
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        (num(11..13)?, num(14..16)?, num(17..19)?)
    } else {
        (0, 0, 0)
    };
    Some(date.and_hms_opt(h, m, sec)?.and_utc().timestamp())
}

/// Formats Unix seconds as `YYYY-MM-DD HH:MM:SS` (UTC), or the number when out of range.
pub fn format_time(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// Formats Unix seconds as `YYYY-MM-DD` (UTC).
pub fn format_date(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// Infers a typed attribute value from a cell: bool, integer, decimal, else text.
pub fn infer_attr(cell: &Cell<'_>) -> Option<AttrValue> {
    match cell {
        Cell::Null => None,
        Cell::Int(i) => Some(AttrValue::Int(*i)),
        Cell::Float(f) => Some(AttrValue::Float(*f)),
        Cell::Bool(b) => Some(AttrValue::Bool(*b)),
        Cell::Time(t) => Some(AttrValue::Text(format_time(*t))),
        Cell::Str(s) => {
            let t = s.trim();
            if t.is_empty() {
                return None;
            }
            if let Ok(i) = t.parse::<i64>()
                && !(t.len() > 1 && t.starts_with('0'))
            {
                return Some(AttrValue::Int(i));
            }
            if let Ok(f) = t.parse::<f64>()
                && f.is_finite()
                && (!t.starts_with('0') || t.starts_with("0."))
            {
                return Some(AttrValue::Float(f));
            }
            match t.to_lowercase().as_str() {
                "true" => return Some(AttrValue::Bool(true)),
                "false" => return Some(AttrValue::Bool(false)),
                _ => {}
            }
            Some(AttrValue::Text(t.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Option<i64> {
        parse_time(&Cell::Str(s)).ok().flatten()
    }

    #[test]
    fn time_forms() {
        let day = 1_709_251_200; // 2024-03-01
        assert_eq!(t("2024-03-01"), Some(day));
        assert_eq!(t("20240301"), Some(day));
        assert_eq!(t("2024-03-01 00:00:00"), Some(day));
        assert_eq!(t("2024-03-01T02:00:00+02:00"), Some(day));
        assert_eq!(t("2024-03-01T00:00:00Z"), Some(day));
        assert_eq!(t("1709251200"), Some(day));
        assert_eq!(t("2024-03-01 10:30"), Some(day + 37_800));
        assert!(parse_time(&Cell::Str("2024-13-01")).is_err());
        assert!(parse_time(&Cell::Str("yesterday")).is_err());
        assert_eq!(parse_time(&Cell::Str("  ")), Ok(None));
        assert_eq!(parse_time(&Cell::Int(20240301)), Ok(Some(day)));
    }

    #[test]
    fn numbers_and_bools() {
        assert_eq!(parse_decimal(&Cell::Str(" 12.50 ")), Ok(Some(12.5)));
        assert!(parse_decimal(&Cell::Str("12,50")).is_err());
        assert!(parse_decimal(&Cell::Str("NaN")).is_err());
        assert_eq!(parse_int(&Cell::Str("42")), Ok(Some(42)));
        assert!(parse_int(&Cell::Str("4.2")).is_err());
        assert_eq!(parse_bool(&Cell::Str("Yes")), Ok(Some(true)));
        assert!(parse_bool(&Cell::Str("maybe")).is_err());
    }

    #[test]
    fn attr_inference_keeps_codes_as_text() {
        assert_eq!(infer_attr(&Cell::Str("35")), Some(AttrValue::Int(35)));
        assert_eq!(
            infer_attr(&Cell::Str("0123")),
            Some(AttrValue::Text("0123".into()))
        );
        assert_eq!(infer_attr(&Cell::Str("2.5")), Some(AttrValue::Float(2.5)));
        assert_eq!(
            infer_attr(&Cell::Str("25-34")),
            Some(AttrValue::Text("25-34".into()))
        );
        assert_eq!(infer_attr(&Cell::Str("")), None);
    }
}
