//! Transaction files for the lifetime-value models: the CDNOW text files and
//! a plain `customer,date,amount` CSV.
//!
//! This module owns reading those files into [`TxRecord`]s, one per line,
//! streaming (nothing but the current line is held), with errors that name
//! the file, the line, the column and the reason.
//!
//! Formats:
//! - **cdnow**: whitespace-separated `id date cds dollars` (CDNOW_master.txt,
//!   whose first line is a header that is skipped) or `master_id id date cds
//!   dollars` (CDNOW_sample.txt, no header; the customer key is the sample's
//!   own id, the second field). Dates are `YYYYMMDD`.
//! - **csv**: a header line naming the columns `customer` (or `customer_id`),
//!   `date` and `amount` (or `dollars`, `value`), in any order; dates are
//!   `YYYY-MM-DD`, `YYYYMMDD` or an RFC 3339 timestamp (its date is used).
//!
//! [`detect_format`] picks the format from the first non-empty line.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::IngestError;

/// Errors are the crate's [`IngestError`]: `BadValue` for a cell that does
/// not parse (its `column` reads like `date (column 2)`), `BadRow` for a line
/// of the wrong shape, `File` for unreadable or empty files.
pub type TxError = IngestError;

fn shape(file: &Path, line: u64, reason: String) -> IngestError {
    if line == 0 {
        IngestError::File {
            file: file.display().to_string(),
            reason,
        }
    } else {
        IngestError::BadRow {
            file: file.display().to_string(),
            line,
            reason,
        }
    }
}

/// Format of a transaction file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxFormat {
    /// Whitespace-separated CDNOW layout.
    Cdnow,
    /// CSV with a `customer,date,amount` header.
    Csv,
}

impl std::str::FromStr for TxFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cdnow" => Ok(TxFormat::Cdnow),
            "csv" => Ok(TxFormat::Csv),
            other => Err(format!(
                "unknown transaction format {other:?} (expected cdnow or csv)"
            )),
        }
    }
}

/// One transaction read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct TxRecord {
    /// Customer key as written in the file.
    pub customer: String,
    /// Day number: days since 1970-01-01.
    pub day: i64,
    /// Amount spent.
    pub amount: f64,
    /// 1-based line number in the file.
    pub line: u64,
}

fn io_err(path: &Path, source: std::io::Error) -> TxError {
    IngestError::File {
        file: path.display().to_string(),
        reason: source.to_string(),
    }
}

/// Days since 1970-01-01 of a date.
pub fn day_number(d: NaiveDate) -> i64 {
    d.signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN))
        .num_days()
}

/// Parses a date given as `YYYYMMDD`, `YYYY-MM-DD` or an RFC 3339 timestamp
/// into a day number (days since 1970-01-01).
pub fn parse_day(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let d = if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        NaiveDate::parse_from_str(s, "%Y%m%d")
            .map_err(|e| format!("{s:?} is not a valid YYYYMMDD date ({e})"))?
    } else if s.len() >= 10 && s.is_char_boundary(10) {
        NaiveDate::parse_from_str(&s[..10], "%Y-%m-%d")
            .map_err(|e| format!("{s:?} is not a valid date (YYYY-MM-DD or YYYYMMDD; {e})"))?
    } else {
        return Err(format!(
            "{s:?} is not a date (expected YYYY-MM-DD or YYYYMMDD)"
        ));
    };
    Ok(day_number(d))
}

/// Guesses the format from the first non-empty line: a comma means CSV.
pub fn detect_format(path: &Path) -> Result<TxFormat, TxError> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).map_err(|e| io_err(path, e))?;
        if n == 0 {
            return Err(shape(path, 0, "the file is empty".into()));
        }
        if !line.trim().is_empty() {
            return Ok(if line.contains(',') {
                TxFormat::Csv
            } else {
                TxFormat::Cdnow
            });
        }
    }
}

enum Inner {
    Cdnow {
        lines: std::io::Lines<BufReader<File>>,
        line: u64,
    },
    Csv {
        reader: csv::Reader<BufReader<File>>,
        cols: [usize; 3],
        record: csv::StringRecord,
    },
}

/// A streaming reader of transactions: an iterator of records or errors.
pub struct TxReader {
    path: PathBuf,
    inner: Inner,
    done: bool,
}

impl std::fmt::Debug for TxReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxReader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Opens a transaction file; `format` `None` means detect it.
pub fn open(path: &Path, format: Option<TxFormat>) -> Result<TxReader, TxError> {
    let format = match format {
        Some(f) => f,
        None => detect_format(path)?,
    };
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let inner = match format {
        TxFormat::Cdnow => Inner::Cdnow {
            lines: BufReader::new(file).lines(),
            line: 0,
        },
        TxFormat::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .trim(csv::Trim::All)
                .flexible(true)
                .from_reader(BufReader::new(file));
            let headers = reader
                .headers()
                .map_err(|e| shape(path, 1, format!("cannot read the CSV header: {e}")))?;
            let find = |names: &[&str]| {
                headers
                    .iter()
                    .position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)))
            };
            let (Some(c), Some(d), Some(a)) = (
                find(&["customer", "customer_id", "customer_key"]),
                find(&["date", "time", "day"]),
                find(&["amount", "dollars", "value", "dollar_value"]),
            ) else {
                return Err(shape(
                    path,
                    1,
                    format!(
                        "the header must name the columns customer, date and amount; found {:?}",
                        headers.iter().collect::<Vec<_>>()
                    ),
                ));
            };
            Inner::Csv {
                reader,
                cols: [c, d, a],
                record: csv::StringRecord::new(),
            }
        }
    };
    Ok(TxReader {
        path: path.to_path_buf(),
        inner,
        done: false,
    })
}

impl TxReader {
    fn parse_err(
        &self,
        line: u64,
        column: usize,
        field: &str,
        value: &str,
        reason: String,
    ) -> TxError {
        IngestError::BadValue {
            file: self.path.display().to_string(),
            line,
            column: format!("{field} (column {column})"),
            value: value.to_string(),
            reason,
        }
    }

    fn amount(&self, s: &str, line: u64, column: usize) -> Result<f64, TxError> {
        match s.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            Ok(_) => Err(self.parse_err(line, column, "amount", s, "not a finite number".into())),
            Err(_) => Err(self.parse_err(line, column, "amount", s, "not a number".into())),
        }
    }

    fn next_cdnow(&mut self) -> Option<Result<TxRecord, TxError>> {
        loop {
            let Inner::Cdnow { lines, line } = &mut self.inner else {
                return None;
            };
            let text = match lines.next()? {
                Ok(t) => t,
                Err(e) => return Some(Err(io_err(&self.path, e))),
            };
            *line += 1;
            let ln = *line;
            let fields: Vec<&str> = text.split_whitespace().collect();
            if fields.is_empty() {
                continue;
            }
            let (customer, rest) = match fields.len() {
                4 => (fields[0], &fields[1..]),
                5 => (fields[1], &fields[2..]),
                n => {
                    return Some(Err(shape(
                        &self.path,
                        ln,
                        format!(
                            "expected 4 fields (id date cds dollars) or 5 (master_id id date cds dollars), found {n}"
                        ),
                    )));
                }
            };
            let date_col = fields.len() - 2;
            // A header line: first line whose date field is not numeric.
            if ln == 1 && !rest[0].bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let day = match parse_day(rest[0]) {
                Ok(d) if rest[0].len() == 8 => d,
                Ok(_) => {
                    return Some(Err(self.parse_err(
                        ln,
                        date_col,
                        "date",
                        rest[0],
                        "not a YYYYMMDD date".into(),
                    )));
                }
                Err(reason) => {
                    return Some(Err(self.parse_err(ln, date_col, "date", rest[0], reason)));
                }
            };
            if rest[1].parse::<u64>().is_err() {
                return Some(Err(self.parse_err(
                    ln,
                    date_col + 1,
                    "cds",
                    rest[1],
                    "not a whole number of CDs".into(),
                )));
            }
            let amount = match self.amount(rest[2], ln, date_col + 2) {
                Ok(a) => a,
                Err(e) => return Some(Err(e)),
            };
            return Some(Ok(TxRecord {
                customer: customer.to_string(),
                day,
                amount,
                line: ln,
            }));
        }
    }

    fn next_csv(&mut self) -> Option<Result<TxRecord, TxError>> {
        loop {
            let Inner::Csv {
                reader,
                cols,
                record,
            } = &mut self.inner
            else {
                return None;
            };
            match reader.read_record(record) {
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    return Some(Err(shape(
                        &self.path,
                        line.max(1),
                        format!("malformed CSV: {e}"),
                    )));
                }
            }
            let ln = record.position().map_or(0, |p| p.line());
            if record.iter().all(|f| f.is_empty()) {
                continue;
            }
            let [c, d, a] = *cols;
            let get = |i: usize| record.get(i).unwrap_or("");
            let (customer, date, amount) =
                (get(c).to_string(), get(d).to_string(), get(a).to_string());
            if customer.is_empty() {
                return Some(Err(self.parse_err(
                    ln,
                    c + 1,
                    "customer",
                    "",
                    "empty customer".into(),
                )));
            }
            let day = match parse_day(&date) {
                Ok(d) => d,
                Err(reason) => return Some(Err(self.parse_err(ln, d + 1, "date", &date, reason))),
            };
            let amount = match self.amount(&amount, ln, a + 1) {
                Ok(v) => v,
                Err(e) => return Some(Err(e)),
            };
            return Some(Ok(TxRecord {
                customer,
                day,
                amount,
                line: ln,
            }));
        }
    }
}

impl Iterator for TxReader {
    type Item = Result<TxRecord, TxError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = match self.inner {
            Inner::Cdnow { .. } => self.next_cdnow(),
            Inner::Csv { .. } => self.next_csv(),
        };
        if matches!(item, None | Some(Err(_))) {
            self.done = true;
        }
        item
    }
}

/// All transactions of a file with customers interned to dense indices.
#[derive(Debug, Clone, Default)]
pub struct Transactions {
    /// Customer keys; index = dense customer id.
    pub customers: Vec<String>,
    /// (customer index, day number, amount), in file order.
    pub rows: Vec<(usize, i64, f64)>,
}

/// Reads a whole transaction file (streaming), interning customer keys.
/// Fails on the first bad line, and on a file without any transaction.
pub fn read_transactions(path: &Path, format: Option<TxFormat>) -> Result<Transactions, TxError> {
    let mut out = Transactions::default();
    let mut index = std::collections::HashMap::<String, usize>::new();
    for rec in open(path, format)? {
        let rec = rec?;
        let next = index.len();
        let id = *index.entry(rec.customer).or_insert_with_key(|k| {
            out.customers.push(k.clone());
            next
        });
        out.rows.push((id, rec.day, rec.amount));
    }
    if out.rows.is_empty() {
        return Err(shape(path, 0, "no transactions in the file".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(name: &str, text: &str) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("infogap-cdnow-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let p = dir.join(name);
        let mut f = File::create(&p).expect("create");
        f.write_all(text.as_bytes()).expect("write");
        (dir, p)
    }

    #[test]
    fn reads_sample_and_master_layouts() {
        let (d1, p) = file(
            "sample.txt",
            " 00004 0001 19970101  2   29.33\n 00004 0001 19970118  2   29.73\n 00018 0002 19970102  1   14.96\n",
        );
        let t = read_transactions(&p, None).expect("sample");
        assert_eq!(t.customers, vec!["0001", "0002"]);
        assert_eq!(t.rows.len(), 3);
        assert_eq!(
            t.rows[1],
            (
                0,
                day_number(NaiveDate::from_ymd_opt(1997, 1, 18).expect("date")),
                29.73
            )
        );
        let (d2, p) = file(
            "master.txt",
            " customer_id  date number_of_cds  dollar_value\n 00001 19970101  1   11.77\n\n 00002 19970112  1   12.00\n",
        );
        let t = read_transactions(&p, Some(TxFormat::Cdnow)).expect("master");
        assert_eq!(t.customers, vec!["00001", "00002"]);
        assert_eq!(t.rows[1].2, 12.0);
        for d in [d1, d2] {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    #[test]
    fn reads_csv_with_any_column_order() {
        let (d, p) = file(
            "tx.csv",
            "amount,customer,date\n10.5,alice,1997-01-01\n3,bob,19970105\n",
        );
        assert_eq!(detect_format(&p).expect("detect"), TxFormat::Csv);
        let t = read_transactions(&p, None).expect("csv");
        assert_eq!(t.customers, vec!["alice", "bob"]);
        assert_eq!(
            t.rows[0].1,
            day_number(NaiveDate::from_ymd_opt(1997, 1, 1).expect("date"))
        );
        assert_eq!(t.rows[1].2, 3.0);
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn bad_values_name_line_and_column() {
        let (d, p) = file(
            "bad.txt",
            " 00001 19970101  1   11.77\n 00002 19971301  1   12.00\n",
        );
        let e = read_transactions(&p, None)
            .expect_err("bad month")
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("column 2") && e.contains("date"),
            "{e}"
        );
        let (d2, p) = file(
            "bad.csv",
            "customer,date,amount\na,1997-01-01,1\nb,1997-01-02,ten\n",
        );
        let e = read_transactions(&p, None)
            .expect_err("bad amount")
            .to_string();
        assert!(
            e.contains("line 3") && e.contains("column 3") && e.contains("amount"),
            "{e}"
        );
        let (d3, p) = file("short.txt", " 00001 19970101 11.77\n");
        let e = read_transactions(&p, None)
            .expect_err("3 fields")
            .to_string();
        assert!(e.contains("line 1") && e.contains("found 3"), "{e}");
        let (d4, p) = file("hdr.csv", "who,when,what\na,1997-01-01,1\n");
        let e = read_transactions(&p, None).expect_err("header").to_string();
        assert!(
            e.contains("line 1") && e.contains("customer, date and amount"),
            "{e}"
        );
        for d in [d, d2, d3, d4] {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
