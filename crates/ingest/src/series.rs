//! Reads one time series (a date column and a numeric value column) from a CSV
//! file, for the forecasting commands.
//!
//! Why a reader of its own: series files come from spreadsheets and R/pandas
//! exports in many shapes (`"date","value"` quoted headers, CRLF line ends, a
//! BOM, an unnamed index column, `1949-01` or `1949-01-01` dates). The columns
//! can be named (`date_col`, `value_col`) or are detected: the date column is
//! the first one whose name says so (`date`, `time`, `month`, `ds`, …) or
//! whose first value parses as a date; the value column is the last column
//! (other than the date) whose first value is a number. Rows are put in date
//! order when every date parses; a duplicate date, a missing or non-numeric
//! value is an error naming the file, line and column.

use std::path::Path;

use chrono::NaiveDate;

/// Errors of the series reader; each names the file and, where there is one,
/// the line and column.
#[derive(Debug, thiserror::Error)]
pub enum SeriesError {
    /// The file could not be opened or read.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A CSV record could not be parsed.
    #[error("{file}: line {line}: {reason}")]
    Csv {
        /// The file.
        file: String,
        /// 1-based line number.
        line: u64,
        /// Why.
        reason: String,
    },
    /// A value is missing or malformed.
    #[error("{file}: line {line}, column {column:?}: {reason}")]
    Value {
        /// The file.
        file: String,
        /// 1-based line number.
        line: u64,
        /// Column name.
        column: String,
        /// Why.
        reason: String,
    },
    /// The file's shape does not allow a series (no numeric column, unknown
    /// column name, no rows, …).
    #[error("{file}: {reason}")]
    Shape {
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
}

/// Which columns to read (`None` = detect).
#[derive(Debug, Clone, Default)]
pub struct SeriesOptions {
    /// Name of the date column.
    pub date_col: Option<String>,
    /// Name of the value column.
    pub value_col: Option<String>,
}

/// A series read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The date column's name, when there is one.
    pub date_column: Option<String>,
    /// The value column's name.
    pub value_column: String,
    /// The date of each observation as written in the file (empty without a date column).
    pub dates: Vec<String>,
    /// Parsed dates, when every date parsed.
    pub parsed_dates: Option<Vec<NaiveDate>>,
    /// The values, in date order.
    pub values: Vec<f64>,
}

/// Parses a date in the usual spellings: `2024-01-31`, `2024/01/31`,
/// `2024-01` (first of the month), `31.01.2024`, with an optional time part.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    let head = s.split(['T', ' ']).next().unwrap_or(s);
    for fmt in ["%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y", "%m/%d/%Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(head, fmt) {
            return Some(d);
        }
    }
    for sep in ['-', '/'] {
        if let Some((y, m)) = head.split_once(sep)
            && y.len() == 4
            && (1..=2).contains(&m.len())
            && let (Ok(y), Ok(m)) = (y.parse::<i32>(), m.parse::<u32>())
        {
            return NaiveDate::from_ymd_opt(y, m, 1);
        }
    }
    None
}

fn looks_like_date_name(name: &str) -> bool {
    let n = name.trim().to_ascii_lowercase();
    matches!(
        n.as_str(),
        "date" | "time" | "ds" | "month" | "week" | "day" | "period" | "timestamp" | "datetime"
    ) || n.ends_with("_date")
        || n.starts_with("date")
}

fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Reads a series from a CSV file.
pub fn read_series(path: &Path, opts: &SeriesOptions) -> Result<Series, SeriesError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| SeriesError::Io {
        file: file.clone(),
        source,
    })?;
    parse_series(&bytes, &file, opts)
}

/// Parses a series from CSV bytes; `file` names the source in errors.
pub fn parse_series(bytes: &[u8], file: &str, opts: &SeriesOptions) -> Result<Series, SeriesError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let shape = |reason: String| SeriesError::Shape {
        file: file.to_string(),
        reason,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| SeriesError::Csv {
            file: file.to_string(),
            line: 1,
            reason: e.to_string(),
        })?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if headers.is_empty() || headers.iter().all(|h| h.is_empty()) {
        return Err(shape("no header line".into()));
    }
    let mut rows: Vec<(u64, csv::StringRecord)> = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            SeriesError::Csv {
                file: file.to_string(),
                line,
                reason: e.to_string(),
            }
        })?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        rows.push((line, rec));
    }
    if rows.is_empty() {
        return Err(shape("no data rows".into()));
    }
    let find = |name: &str, what: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .or_else(|| headers.iter().position(|h| h.eq_ignore_ascii_case(name)))
            .ok_or_else(|| {
                shape(format!(
                    "no {what} column named {name:?} (columns: {})",
                    headers.join(", ")
                ))
            })
    };
    let first = &rows[0].1;
    let date_idx = match &opts.date_col {
        Some(name) => Some(find(name, "date")?),
        None => headers
            .iter()
            .position(|h| looks_like_date_name(h))
            .or_else(|| (0..headers.len()).find(|&i| first.get(i).and_then(parse_date).is_some())),
    };
    let value_idx = match &opts.value_col {
        Some(name) => find(name, "value")?,
        None => (0..headers.len())
            .rev()
            .filter(|&i| Some(i) != date_idx)
            .find(|&i| first.get(i).and_then(parse_number).is_some())
            .ok_or_else(|| {
                shape(format!(
                    "no numeric value column found (columns: {}); name one with --value-col",
                    headers.join(", ")
                ))
            })?,
    };
    if Some(value_idx) == date_idx {
        return Err(shape(format!(
            "column {:?} cannot be both date and value",
            headers[value_idx]
        )));
    }
    let value_name = headers[value_idx].clone();
    let mut dates = Vec::with_capacity(rows.len());
    let mut values = Vec::with_capacity(rows.len());
    let mut lines = Vec::with_capacity(rows.len());
    for (line, rec) in &rows {
        let cell = rec.get(value_idx).unwrap_or("");
        let v = if cell.trim().is_empty() {
            return Err(SeriesError::Value {
                file: file.to_string(),
                line: *line,
                column: value_name.clone(),
                reason: "missing value".into(),
            });
        } else {
            parse_number(cell).ok_or_else(|| SeriesError::Value {
                file: file.to_string(),
                line: *line,
                column: value_name.clone(),
                reason: format!("{cell:?} is not a number"),
            })?
        };
        values.push(v);
        lines.push(*line);
        if let Some(d) = date_idx {
            dates.push(rec.get(d).unwrap_or("").trim().to_string());
        }
    }
    let mut parsed_dates = None;
    if let Some(d) = date_idx {
        let parsed: Option<Vec<NaiveDate>> = dates.iter().map(|s| parse_date(s)).collect();
        if let Some(parsed) = parsed {
            let mut order: Vec<usize> = (0..parsed.len()).collect();
            order.sort_by_key(|&i| (parsed[i], i));
            for w in order.windows(2) {
                if parsed[w[0]] == parsed[w[1]] {
                    return Err(SeriesError::Value {
                        file: file.to_string(),
                        line: lines[w[1]],
                        column: headers[d].clone(),
                        reason: format!(
                            "duplicate date {} (also on line {})",
                            dates[w[1]], lines[w[0]]
                        ),
                    });
                }
            }
            values = order.iter().map(|&i| values[i]).collect();
            dates = order.iter().map(|&i| dates[i].clone()).collect();
            parsed_dates = Some(order.iter().map(|&i| parsed[i]).collect());
        } else if opts.date_col.is_some() {
            let i = dates
                .iter()
                .position(|s| parse_date(s).is_none())
                .unwrap_or(0);
            return Err(SeriesError::Value {
                file: file.to_string(),
                line: lines[i],
                column: headers[d].clone(),
                reason: format!("{:?} is not a date (use YYYY-MM-DD or YYYY-MM)", dates[i]),
            });
        }
    }
    Ok(Series {
        date_column: date_idx.map(|d| headers[d].clone()),
        value_column: value_name,
        dates,
        parsed_dates,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_of(r: Result<Series, SeriesError>) -> String {
        match r {
            Ok(s) => panic!("expected an error, got {s:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn parse(s: &str) -> Result<Series, SeriesError> {
        parse_series(s.as_bytes(), "t.csv", &SeriesOptions::default())
    }

    #[test]
    fn quoted_headers_and_crlf() {
        let s = parse("\"date\",\"value\"\r\n1949-01-01,112\r\n1949-02-01,118\r\n").expect("parse");
        assert_eq!(s.values, vec![112.0, 118.0]);
        assert_eq!(s.date_column.as_deref(), Some("date"));
        assert_eq!(s.value_column, "value");
        assert_eq!(s.parsed_dates.as_ref().map(|d| d.len()), Some(2));
    }

    #[test]
    fn bom_index_column_and_month_dates_detected() {
        let s = parse("\u{feff},Month,#Passengers\n1,1949-02,118\n2,1949-01,112\n").expect("parse");
        assert_eq!(s.date_column.as_deref(), Some("Month"));
        assert_eq!(s.value_column, "#Passengers");
        // sorted by date
        assert_eq!(s.values, vec![112.0, 118.0]);
    }

    #[test]
    fn named_columns() {
        let opts = SeriesOptions {
            date_col: Some("d".into()),
            value_col: Some("units".into()),
        };
        let s = parse_series(
            b"d,units,price\n2024-01-01,3,9.5\n2024-01-02,4,9.0\n",
            "f",
            &opts,
        )
        .expect("parse");
        assert_eq!(s.values, vec![3.0, 4.0]);
        let bad = SeriesOptions {
            value_col: Some("nope".into()),
            ..SeriesOptions::default()
        };
        let e = err_of(parse_series(b"d,units\n2024-01-01,3\n", "f.csv", &bad));
        assert!(e.contains("f.csv") && e.contains("nope"), "{e}");
    }

    #[test]
    fn errors_name_file_line_column() {
        let e = err_of(parse("date,value\n2024-01-01,1\n2024-01-02,abc\n"));
        assert!(
            e.contains("t.csv") && e.contains("line 3") && e.contains("value"),
            "{e}"
        );
        let e = err_of(parse("date,value\n2024-01-01,1\n2024-01-02,\n"));
        assert!(e.contains("line 3") && e.contains("missing"), "{e}");
        let e = err_of(parse("date,value\n2024-01-01,1\n2024-01-01,2\n"));
        assert!(e.contains("duplicate"), "{e}");
        let e = err_of(parse("date,value\n2024-01-01,1\n2024-01-02,2,3\n"));
        assert!(e.contains("line 3"), "{e}");
        assert!(parse("date,value\n").is_err());
        assert!(parse("a,b\nx,y\n").is_err());
    }

    #[test]
    fn no_date_column_keeps_file_order() {
        let s = parse("value\n3\n1\n2\n").expect("parse");
        assert_eq!(s.values, vec![3.0, 1.0, 2.0]);
        assert!(s.date_column.is_none());
    }
}
