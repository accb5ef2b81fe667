//! Reading any delimited text table into typed columns.
//!
//! `eval classify` and `eval regress` accept "any CSV": files exported by
//! spreadsheets, pandas, databases and CRMs. This module owns turning such a
//! file into a [`Table`] of typed columns so the model layer
//! (`infogap_models::tabular`) never sees raw text:
//!
//! - the delimiter is detected from a sample (`,` `;` tab `|`: the candidate
//!   that splits the header into the most fields and gives the same field count
//!   on the following lines wins);
//! - quoted fields (with doubled quotes and embedded delimiters/newlines), CRLF
//!   line ends and a UTF-8 byte-order mark are handled;
//! - blank or whitespace-only cells, and the usual missing markers (`NA`,
//!   `N/A`, `NaN`, `null`, `None`, `?`, `#N/A`, …) are *missing*;
//! - a column is [`ColumnData::Numeric`] when every non-missing cell parses as a
//!   finite number (so a numeric column with a few blanks, like Telco's
//!   `TotalCharges`, stays numeric), else [`ColumnData::Categorical`]; with a
//!   `;` or tab delimiter a decimal comma (`3,5`) is accepted;
//! - empty header names become `column_N`, duplicate names get a `_2`, `_3` …
//!   suffix;
//! - errors name the file, the line, the column and the reason (ragged rows,
//!   invalid UTF-8, empty file).

use std::path::Path;

/// Errors reading a table; every message names the file and, when there is one,
/// the line and column.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The content is malformed.
    #[error("{path}: line {line}{}: {reason}", column.as_ref().map(|c| format!(", column {c}")).unwrap_or_default())]
    Malformed {
        /// The file.
        path: String,
        /// 1-based line number (physical line where the record starts).
        line: u64,
        /// The column (name, or position when the header is short), when one is concerned.
        column: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// The file has no header or no data rows.
    #[error("{path}: {reason}")]
    Empty {
        /// The file.
        path: String,
        /// What is missing.
        reason: String,
    },
}

/// The typed values of one column, one entry per row; `None` = missing.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// Every non-missing cell is a finite number.
    Numeric(Vec<Option<f64>>),
    /// Text labels (cells trimmed of surrounding whitespace).
    Categorical(Vec<Option<String>>),
}

impl ColumnData {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Numeric(v) => v.len(),
            ColumnData::Categorical(v) => v.len(),
        }
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of missing cells.
    pub fn missing(&self) -> usize {
        match self {
            ColumnData::Numeric(v) => v.iter().filter(|x| x.is_none()).count(),
            ColumnData::Categorical(v) => v.iter().filter(|x| x.is_none()).count(),
        }
    }

    /// True for a numeric column.
    pub fn is_numeric(&self) -> bool {
        matches!(self, ColumnData::Numeric(_))
    }
}

/// One named, typed column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Header name (made unique, never empty).
    pub name: String,
    /// The values.
    pub data: ColumnData,
}

/// A whole table read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Where it came from (for messages).
    pub source: String,
    /// The delimiter that was detected.
    pub delimiter: u8,
    /// Number of data rows.
    pub n_rows: usize,
    /// The columns, in file order.
    pub columns: Vec<Column>,
}

impl Table {
    /// The column named `name` (exact match first, then case-insensitive).
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name).or_else(|| {
            self.columns
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(name))
        })
    }

    /// The delimiter as a printable name (`","`, `";"`, `"tab"`, `"|"`).
    pub fn delimiter_name(&self) -> &'static str {
        match self.delimiter {
            b',' => ",",
            b';' => ";",
            b'\t' => "tab",
            b'|' => "|",
            _ => "?",
        }
    }
}

/// Cells that mean "missing" (compared case-insensitively after trimming),
/// as in pandas' defaults plus `?` (UCI files).
const MISSING_MARKERS: &[&str] = &[
    "", "na", "n/a", "nan", "-nan", "null", "none", "<na>", "#n/a", "#na", "#n/a n/a", "?",
];

/// True when a (raw) cell is a missing marker.
pub fn is_missing(cell: &str) -> bool {
    let t = cell.trim();
    t.is_empty() || MISSING_MARKERS.iter().any(|m| t.eq_ignore_ascii_case(m))
}

/// Reads the file at `path` into a typed [`Table`].
pub fn read_table(path: &Path) -> Result<Table, TableError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| TableError::Io {
        path: name.clone(),
        source,
    })?;
    parse_table(&bytes, &name)
}

/// Parses table bytes; `source` names them in messages.
pub fn parse_table(bytes: &[u8], source: &str) -> Result<Table, TableError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(TableError::Empty {
            path: source.to_string(),
            reason: "the file is empty".into(),
        });
    }
    let delimiter = detect_delimiter(bytes);
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);

    let mut records = rdr.byte_records();
    let header = loop {
        match records.next() {
            None => {
                return Err(TableError::Empty {
                    path: source.to_string(),
                    reason: "no header line".into(),
                });
            }
            Some(Err(e)) => return Err(csv_error(source, e)),
            Some(Ok(r)) => {
                // Skip fully blank leading lines.
                if r.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
                    continue;
                }
                break r;
            }
        }
    };
    let header_line = header.position().map(|p| p.line()).unwrap_or(1);
    let mut names: Vec<String> = Vec::with_capacity(header.len());
    for (i, f) in header.iter().enumerate() {
        let s = std::str::from_utf8(f).map_err(|_| TableError::Malformed {
            path: source.to_string(),
            line: header_line,
            column: Some(format!("#{}", i + 1)),
            reason: "header is not valid UTF-8".into(),
        })?;
        names.push(s.trim().to_string());
    }
    let names = unique_names(names);
    let width = names.len();

    let mut cells: Vec<Vec<Option<String>>> = vec![Vec::new(); width];
    let mut n_rows = 0usize;
    for rec in records {
        let rec = rec.map_err(|e| csv_error(source, e))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        // Blank lines (a single empty field) are skipped, like most readers do.
        if rec.len() <= 1 && rec.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        if rec.len() != width {
            let column = if rec.len() < width {
                Some(names[rec.len()].clone())
            } else {
                Some(format!("#{}", width + 1))
            };
            return Err(TableError::Malformed {
                path: source.to_string(),
                line,
                column,
                reason: format!(
                    "ragged row: {} fields, but the header has {} (delimiter {:?})",
                    rec.len(),
                    width,
                    delimiter as char
                ),
            });
        }
        for (j, f) in rec.iter().enumerate() {
            let s = std::str::from_utf8(f).map_err(|_| TableError::Malformed {
                path: source.to_string(),
                line,
                column: Some(names[j].clone()),
                reason: "cell is not valid UTF-8".into(),
            })?;
            cells[j].push(if is_missing(s) {
                None
            } else {
                Some(s.trim().to_string())
            });
        }
        n_rows += 1;
    }
    if n_rows == 0 {
        return Err(TableError::Empty {
            path: source.to_string(),
            reason: "header but no data rows".into(),
        });
    }
    let decimal_comma = delimiter != b',';
    let columns = names
        .into_iter()
        .zip(cells)
        .map(|(name, col)| Column {
            name,
            data: infer(col, decimal_comma),
        })
        .collect();
    Ok(Table {
        source: source.to_string(),
        delimiter,
        n_rows,
        columns,
    })
}

fn csv_error(source: &str, e: csv::Error) -> TableError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    let reason = match e.kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        csv::ErrorKind::Utf8 { err, .. } => format!("invalid UTF-8 ({err})"),
        _ => e.to_string(),
    };
    TableError::Malformed {
        path: source.to_string(),
        line,
        column: None,
        reason,
    }
}

fn unique_names(names: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for (i, n) in names.into_iter().enumerate() {
        let base = if n.is_empty() {
            format!("column_{}", i + 1)
        } else {
            n
        };
        let mut candidate = base.clone();
        let mut k = 2;
        while out.iter().any(|o| o == &candidate) {
            candidate = format!("{base}_{k}");
            k += 1;
        }
        out.push(candidate);
    }
    out
}

fn parse_number(s: &str, decimal_comma: bool) -> Option<f64> {
    let v = match s.parse::<f64>() {
        Ok(v) => v,
        Err(_) if decimal_comma && s.matches(',').count() == 1 && !s.contains('.') => {
            s.replace(',', ".").parse::<f64>().ok()?
        }
        Err(_) => return None,
    };
    v.is_finite().then_some(v)
}

fn infer(col: Vec<Option<String>>, decimal_comma: bool) -> ColumnData {
    let mut nums = Vec::with_capacity(col.len());
    let mut any = false;
    for c in &col {
        match c {
            None => nums.push(None),
            Some(s) => match parse_number(s, decimal_comma) {
                Some(v) => {
                    any = true;
                    nums.push(Some(v));
                }
                None => return ColumnData::Categorical(col),
            },
        }
    }
    if any {
        ColumnData::Numeric(nums)
    } else {
        ColumnData::Categorical(col)
    }
}

/// Detects the delimiter among `,` `;` tab `|` from the first lines: among the
/// candidates that split the header into at least two fields, those on which
/// every sampled line agrees with the header's field count win, then the one
/// with the most fields; `,` when nothing splits.
pub fn detect_delimiter(bytes: &[u8]) -> u8 {
    const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];
    let sample = &bytes[..bytes.len().min(256 * 1024)];
    // (all lines agree, header fields, agreeing lines)
    let mut best: Option<((bool, usize, usize), u8)> = None;
    for &d in &CANDIDATES {
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(d)
            .has_headers(false)
            .flexible(true)
            .from_reader(sample);
        let mut counts = Vec::new();
        for rec in rdr.byte_records().take(30) {
            match rec {
                Ok(r) => counts.push(r.len()),
                Err(_) => break,
            }
        }
        // The last sampled record may be cut by the sample boundary.
        if sample.len() < bytes.len() && counts.len() > 1 {
            counts.pop();
        }
        let Some(&head) = counts.first() else {
            continue;
        };
        if head < 2 {
            continue;
        }
        let agree = counts.iter().filter(|&&c| c == head).count();
        let key = (agree == counts.len(), head, agree);
        if best.is_none_or(|(k, _)| key > k) {
            best = Some((key, d));
        }
    }
    best.map_or(b',', |(_, d)| d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Table, TableError> {
        parse_table(s.as_bytes(), "t.csv")
    }

    #[test]
    fn detects_delimiters() {
        assert_eq!(detect_delimiter(b"a,b,c\n1,2,3\n"), b',');
        assert_eq!(detect_delimiter(b"a;b;c\n1,5;2;3\n"), b';');
        assert_eq!(detect_delimiter(b"a\tb\n1\t2\n"), b'\t');
        assert_eq!(detect_delimiter(b"a|b|c\n1|2|3\n"), b'|');
        // A comma inside quotes does not fool it.
        assert_eq!(
            detect_delimiter(b"name;note\n\"x, y, z\";1\n\"p, q\";2\n"),
            b';'
        );
    }

    #[test]
    fn quotes_crlf_bom_and_blanks() {
        let t = parse_table(
            b"\xEF\xBB\xBFid,name,score\r\n1,\"Smith, J\"\"r\"\"\",3.5\r\n2,Lee, \r\n3,\"multi\nline\",NA\r\n",
            "t.csv",
        )
        .unwrap();
        assert_eq!(t.n_rows, 3);
        assert_eq!(t.columns[0].name, "id");
        assert_eq!(
            t.columns[1].data,
            ColumnData::Categorical(vec![
                Some("Smith, J\"r\"".into()),
                Some("Lee".into()),
                Some("multi\nline".into())
            ])
        );
        assert_eq!(
            t.columns[2].data,
            ColumnData::Numeric(vec![Some(3.5), None, None])
        );
    }

    #[test]
    fn numeric_with_blanks_stays_numeric() {
        let t = parse("a,b\n1, \n2,3\n3,x\n").unwrap();
        assert_eq!(
            t.columns[0].data,
            ColumnData::Numeric(vec![Some(1.0), Some(2.0), Some(3.0)])
        );
        assert!(!t.columns[1].data.is_numeric());
        assert_eq!(t.columns[1].data.missing(), 1);
    }

    #[test]
    fn decimal_comma_with_semicolons() {
        let t = parse("a;b\n1,5;x\n2;y\n").unwrap();
        assert_eq!(
            t.columns[0].data,
            ColumnData::Numeric(vec![Some(1.5), Some(2.0)])
        );
    }

    #[test]
    fn ragged_row_names_line_and_column() {
        let e = parse("a,b,c\n1,2,3\n4,5\n").unwrap_err().to_string();
        assert!(
            e.contains("t.csv")
                && e.contains("line 3")
                && e.contains("column c")
                && e.contains("ragged"),
            "{e}"
        );
        let e = parse("a,b\n1,2\n4,5,6\n").unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("3 fields"), "{e}");
    }

    #[test]
    fn header_names_made_unique() {
        let t = parse(",x,x\n1,2,3\n").unwrap();
        let names: Vec<_> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["column_1", "x", "x_2"]);
    }

    #[test]
    fn empty_inputs_are_errors() {
        assert!(parse("").unwrap_err().to_string().contains("empty"));
        assert!(
            parse("a,b\n")
                .unwrap_err()
                .to_string()
                .contains("no data rows")
        );
    }

    #[test]
    fn invalid_utf8_names_the_column() {
        let e = parse_table(b"a,b\n1,\xff\xfe\n", "t.csv")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("column b") && e.contains("UTF-8"),
            "{e}"
        );
    }
}
