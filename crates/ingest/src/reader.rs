//! Streaming row readers for import: delimited text, JSON Lines and Parquet
//! behind one [`RowReader`] interface of typed [`Cell`]s.
//!
//! Readers hold one row (text) or one record batch (Parquet) at a time, so
//! memory does not grow with the file. Parquet reads only the mapped columns
//! (a projection), and typed Parquet values arrive typed (no text round trip).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit};
use infogap_core::config::FileFormat;
use infogap_core::value::Cell;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use crate::IngestError;

/// A streaming reader of rows with named columns.
pub trait RowReader: Send {
    /// Column names, in file order.
    fn headers(&self) -> &[String];
    /// Moves to the next row; `false` at the end.
    fn advance(&mut self) -> Result<bool, IngestError>;
    /// Line of the current row (header = 1), or row number for Parquet.
    fn line(&self) -> u64;
    /// The cell of column `col` (an index into [`RowReader::headers`]) in the current row.
    fn cell(&self, col: usize) -> Cell<'_>;
    /// Progress so far and its total, in the reader's unit (bytes or rows).
    fn progress(&self) -> (u64, u64);
    /// Word for what a line number means ("line" or "row").
    fn line_word(&self) -> &'static str {
        "line"
    }
}

/// Opens a reader. `wanted` names the columns that will be read (Parquet reads only those).
pub fn open(
    path: &Path,
    format: FileFormat,
    delimiter: Option<u8>,
    wanted: &[String],
) -> Result<Box<dyn RowReader>, IngestError> {
    match format {
        FileFormat::Csv => Ok(Box::new(CsvRows::open(path, delimiter)?)),
        FileFormat::JsonLines => Ok(Box::new(JsonRows::open(path)?)),
        FileFormat::Parquet => Ok(Box::new(ParquetRows::open(path, wanted)?)),
    }
}

fn file_err(path: &Path, reason: impl std::fmt::Display) -> IngestError {
    IngestError::File {
        file: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Guesses the delimiter from the first line: the most frequent of `,` tab `;` `|` outside quotes.
pub fn sniff_delimiter(first_line: &str) -> u8 {
    let mut counts = [0usize; 4];
    let cands = [b',', b'\t', b';', b'|'];
    let mut in_quotes = false;
    for b in first_line.bytes() {
        if b == b'"' {
            in_quotes = !in_quotes;
        } else if !in_quotes && let Some(i) = cands.iter().position(|&c| c == b) {
            counts[i] += 1;
        }
    }
    let mut best = 0;
    for i in 1..4 {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    cands[best]
}

struct CountingReader<R> {
    inner: R,
    count: Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// Delimited text (CSV, TSV, …) with a header line.
pub struct CsvRows {
    file: String,
    headers: Vec<String>,
    reader: csv::Reader<CountingReader<File>>,
    record: csv::StringRecord,
    line: u64,
    crlf: u64,
    read: Arc<std::sync::atomic::AtomicU64>,
    total: u64,
}

impl CsvRows {
    /// Opens a delimited file; the delimiter is sniffed from the header when not given.
    pub fn open(path: &Path, delimiter: Option<u8>) -> Result<CsvRows, IngestError> {
        let f = File::open(path).map_err(|e| file_err(path, e))?;
        let total = f.metadata().map(|m| m.len()).unwrap_or(0);
        let mut first = String::new();
        let mut br = BufReader::new(File::open(path).map_err(|e| file_err(path, e))?);
        br.read_line(&mut first)
            .map_err(|e| file_err(path, format!("not UTF-8 text ({e})")))?;
        // csv reports a CRLF record's start on the previous line: correct for it
        let crlf = u64::from(first.ends_with("\r\n"));
        let delimiter = delimiter.unwrap_or_else(|| sniff_delimiter(&first));
        let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .flexible(false)
            .from_reader(CountingReader {
                inner: f,
                count: read.clone(),
            });
        let headers = reader
            .headers()
            .map_err(|e| file_err(path, format!("cannot read the header line: {e}")))?
            .iter()
            .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
            .collect::<Vec<_>>();
        if headers.iter().all(String::is_empty) {
            return Err(file_err(path, "empty file: no header line"));
        }
        Ok(CsvRows {
            file: path.display().to_string(),
            headers,
            reader,
            record: csv::StringRecord::new(),
            line: 1,
            crlf,
            read,
            total,
        })
    }
}

impl RowReader for CsvRows {
    fn headers(&self) -> &[String] {
        &self.headers
    }

    fn advance(&mut self) -> Result<bool, IngestError> {
        match self.reader.read_record(&mut self.record) {
            Ok(more) => {
                if more {
                    self.line = self
                        .record
                        .position()
                        .map(|p| p.line() + self.crlf)
                        .unwrap_or(self.line + 1);
                }
                Ok(more)
            }
            Err(e) => {
                let line = e
                    .position()
                    .map(|p| p.line() + self.crlf)
                    .unwrap_or(self.line + 1);
                let reason = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!("has {len} fields but the header has {expected_len}")
                    }
                    csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_string(),
                    _ => e.to_string(),
                };
                self.line = line;
                Err(IngestError::BadRow {
                    file: self.file.clone(),
                    line,
                    reason,
                })
            }
        }
    }

    fn line(&self) -> u64 {
        self.line
    }

    fn cell(&self, col: usize) -> Cell<'_> {
        match self.record.get(col) {
            Some(s) if !s.trim().is_empty() => Cell::Str(s),
            _ => Cell::Null,
        }
    }

    fn progress(&self) -> (u64, u64) {
        (
            self.read.load(std::sync::atomic::Ordering::Relaxed),
            self.total,
        )
    }
}

/// JSON Lines: one object per line; columns are the keys of the first object.
pub struct JsonRows {
    file: String,
    headers: Vec<String>,
    lines: std::io::Lines<BufReader<CountingReader<File>>>,
    current: Vec<serde_json::Value>,
    pending: Option<serde_json::Map<String, serde_json::Value>>,
    line: u64,
    read: Arc<std::sync::atomic::AtomicU64>,
    total: u64,
}

impl JsonRows {
    /// Opens a JSON Lines file.
    pub fn open(path: &Path) -> Result<JsonRows, IngestError> {
        let f = File::open(path).map_err(|e| file_err(path, e))?;
        let total = f.metadata().map(|m| m.len()).unwrap_or(0);
        let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut lines = BufReader::new(CountingReader {
            inner: f,
            count: read.clone(),
        })
        .lines();
        let file = path.display().to_string();
        let mut line = 0;
        let first = loop {
            match lines.next() {
                None => return Err(file_err(path, "empty file: no JSON object")),
                Some(Err(e)) => return Err(file_err(path, e)),
                Some(Ok(l)) => {
                    line += 1;
                    if !l.trim().is_empty() {
                        break parse_object(&file, line, &l)?;
                    }
                }
            }
        };
        let headers = first.keys().cloned().collect();
        Ok(JsonRows {
            file,
            headers,
            lines,
            current: Vec::new(),
            pending: Some(first),
            line: line - 1,
            read,
            total,
        })
    }

    fn load(&mut self, obj: serde_json::Map<String, serde_json::Value>) {
        self.current.clear();
        for h in &self.headers {
            self.current
                .push(obj.get(h).cloned().unwrap_or(serde_json::Value::Null));
        }
    }
}

fn parse_object(
    file: &str,
    line: u64,
    text: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, IngestError> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err(IngestError::BadRow {
            file: file.to_string(),
            line,
            reason: "not a JSON object".into(),
        }),
        Err(e) => Err(IngestError::BadRow {
            file: file.to_string(),
            line,
            reason: format!("invalid JSON: {e}"),
        }),
    }
}

impl RowReader for JsonRows {
    fn headers(&self) -> &[String] {
        &self.headers
    }

    fn advance(&mut self) -> Result<bool, IngestError> {
        if let Some(first) = self.pending.take() {
            self.line += 1;
            self.load(first);
            return Ok(true);
        }
        loop {
            match self.lines.next() {
                None => return Ok(false),
                Some(Err(e)) => {
                    return Err(IngestError::BadRow {
                        file: self.file.clone(),
                        line: self.line + 1,
                        reason: e.to_string(),
                    });
                }
                Some(Ok(l)) => {
                    self.line += 1;
                    if l.trim().is_empty() {
                        continue;
                    }
                    let obj = parse_object(&self.file, self.line, &l)?;
                    self.load(obj);
                    return Ok(true);
                }
            }
        }
    }

    fn line(&self) -> u64 {
        self.line
    }

    fn cell(&self, col: usize) -> Cell<'_> {
        json_cell(self.current.get(col))
    }

    fn progress(&self) -> (u64, u64) {
        (
            self.read.load(std::sync::atomic::Ordering::Relaxed),
            self.total,
        )
    }
}

enum Col {
    Int(arrow::array::Int64Array),
    Float(arrow::array::Float64Array),
    Str(arrow::array::StringArray),
    Bool(arrow::array::BooleanArray),
    /// Raw integer times and the divisor that turns them into seconds (or multiplier for days).
    Time(arrow::array::Int64Array, i64, i64),
}

/// Parquet, read one record batch at a time, only the wanted columns.
pub struct ParquetRows {
    file: String,
    headers: Vec<String>,
    /// header index → position in the projected batch
    position: Vec<Option<usize>>,
    reader: ParquetRecordBatchReader,
    cols: Vec<Col>,
    row: usize,
    rows_in_batch: usize,
    done: u64,
    total: u64,
}

impl ParquetRows {
    /// Opens a Parquet file reading only `wanted` columns (all when empty).
    pub fn open(path: &Path, wanted: &[String]) -> Result<ParquetRows, IngestError> {
        let f = File::open(path).map_err(|e| file_err(path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(f)
            .map_err(|e| file_err(path, format!("not a readable Parquet file: {e}")))?;
        let total = builder.metadata().file_metadata().num_rows().max(0) as u64;
        let schema = builder.schema().clone();
        let headers: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let mut roots: Vec<usize> = headers
            .iter()
            .enumerate()
            .filter(|(_, h)| wanted.is_empty() || wanted.contains(h))
            .map(|(i, _)| i)
            .collect();
        roots.sort_unstable();
        let mut position = vec![None; headers.len()];
        for (p, &i) in roots.iter().enumerate() {
            position[i] = Some(p);
        }
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(16 * 1024)
            .build()
            .map_err(|e| file_err(path, e))?;
        Ok(ParquetRows {
            file: path.display().to_string(),
            headers,
            position,
            reader,
            cols: Vec::new(),
            row: 0,
            rows_in_batch: 0,
            done: 0,
            total,
        })
    }

    fn load(&mut self, batch: RecordBatch) -> Result<(), IngestError> {
        self.cols.clear();
        for (i, array) in batch.columns().iter().enumerate() {
            let name = batch.schema().field(i).name().clone();
            self.cols
                .push(normalize(array, &name).map_err(|reason| IngestError::File {
                    file: self.file.clone(),
                    reason: format!("column {name:?}: {reason}"),
                })?);
        }
        self.rows_in_batch = batch.num_rows();
        self.row = 0;
        Ok(())
    }
}

fn normalize(array: &ArrayRef, _name: &str) -> Result<Col, String> {
    use arrow::compute::cast;
    let dt = array.data_type().clone();
    let c = |t: &DataType| cast(array, t).map_err(|e| e.to_string());
    Ok(match dt {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => Col::Int(c(&DataType::Int64)?.as_primitive::<Int64Type>().clone()),
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => {
            Col::Float(c(&DataType::Float64)?.as_primitive::<Float64Type>().clone())
        }
        DataType::Boolean => Col::Bool(array.as_boolean().clone()),
        DataType::Timestamp(unit, _) => {
            let div = match unit {
                TimeUnit::Second => 1,
                TimeUnit::Millisecond => 1_000,
                TimeUnit::Microsecond => 1_000_000,
                TimeUnit::Nanosecond => 1_000_000_000,
            };
            Col::Time(
                c(&DataType::Int64)?.as_primitive::<Int64Type>().clone(),
                div,
                1,
            )
        }
        DataType::Date32 => {
            let ints = c(&DataType::Int32)
                .and_then(|a| cast(&a, &DataType::Int64).map_err(|e| e.to_string()))?;
            Col::Time(ints.as_primitive::<Int64Type>().clone(), 1, 86_400)
        }
        DataType::Date64 => Col::Time(
            c(&DataType::Int64)?.as_primitive::<Int64Type>().clone(),
            1_000,
            1,
        ),
        _ => Col::Str(c(&DataType::Utf8)?.as_string::<i32>().clone()),
    })
}

impl RowReader for ParquetRows {
    fn headers(&self) -> &[String] {
        &self.headers
    }

    fn advance(&mut self) -> Result<bool, IngestError> {
        if self.rows_in_batch > 0 && self.row + 1 < self.rows_in_batch {
            self.row += 1;
            self.done += 1;
            return Ok(true);
        }
        loop {
            match self.reader.next() {
                None => return Ok(false),
                Some(Err(e)) => {
                    return Err(IngestError::File {
                        file: self.file.clone(),
                        reason: format!("Parquet read error: {e}"),
                    });
                }
                Some(Ok(batch)) => {
                    if batch.num_rows() == 0 {
                        continue;
                    }
                    self.load(batch)?;
                    self.done += 1;
                    return Ok(true);
                }
            }
        }
    }

    fn line(&self) -> u64 {
        self.done
    }

    fn cell(&self, col: usize) -> Cell<'_> {
        let Some(Some(p)) = self.position.get(col) else {
            return Cell::Null;
        };
        let Some(c) = self.cols.get(*p) else {
            return Cell::Null;
        };
        let r = self.row;
        match c {
            Col::Int(a) => {
                if a.is_null(r) {
                    Cell::Null
                } else {
                    Cell::Int(a.value(r))
                }
            }
            Col::Float(a) => {
                if a.is_null(r) {
                    Cell::Null
                } else {
                    Cell::Float(a.value(r))
                }
            }
            Col::Bool(a) => {
                if a.is_null(r) {
                    Cell::Null
                } else {
                    Cell::Bool(a.value(r))
                }
            }
            Col::Str(a) => {
                if a.is_null(r) || a.value(r).trim().is_empty() {
                    Cell::Null
                } else {
                    Cell::Str(a.value(r))
                }
            }
            Col::Time(a, div, mul) => {
                if a.is_null(r) {
                    Cell::Null
                } else {
                    Cell::Time(a.value(r).div_euclid(*div) * mul)
                }
            }
        }
    }

    fn progress(&self) -> (u64, u64) {
        (self.done, self.total)
    }

    fn line_word(&self) -> &'static str {
        "row"
    }
}

/// A JSON value as a cell.
fn json_cell(v: Option<&serde_json::Value>) -> Cell<'_> {
    match v {
        None | Some(serde_json::Value::Null) => Cell::Null,
        Some(serde_json::Value::String(s)) => {
            if s.trim().is_empty() {
                Cell::Null
            } else {
                Cell::Str(s)
            }
        }
        Some(serde_json::Value::Bool(b)) => Cell::Bool(*b),
        Some(serde_json::Value::Number(n)) => match n.as_i64() {
            Some(i) => Cell::Int(i),
            None => n.as_f64().map(Cell::Float).unwrap_or(Cell::Null),
        },
        // nested values are not scalar fields; refuse them as text the parsers will reject
        Some(serde_json::Value::Array(_)) => Cell::Str("[array]"),
        Some(serde_json::Value::Object(_)) => Cell::Str("{object}"),
    }
}

/// Rows held in memory (events taken over HTTP): each row carries the line
/// number its errors should name (the intake journal's sequence number).
pub struct MemoryRows {
    file: String,
    headers: Vec<String>,
    rows: Vec<(u64, Vec<serde_json::Value>)>,
    pos: usize,
}

impl MemoryRows {
    /// Rows of `headers` called `file` in errors.
    pub fn new(
        file: impl Into<String>,
        headers: Vec<String>,
        rows: Vec<(u64, Vec<serde_json::Value>)>,
    ) -> MemoryRows {
        MemoryRows {
            file: file.into(),
            headers,
            rows,
            pos: 0,
        }
    }

    /// The name errors give the rows.
    pub fn file(&self) -> &str {
        &self.file
    }
}

impl RowReader for MemoryRows {
    fn headers(&self) -> &[String] {
        &self.headers
    }

    fn advance(&mut self) -> Result<bool, IngestError> {
        if self.pos < self.rows.len() {
            self.pos += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn line(&self) -> u64 {
        self.pos
            .checked_sub(1)
            .and_then(|i| self.rows.get(i))
            .map_or(0, |r| r.0)
    }

    fn cell(&self, col: usize) -> Cell<'_> {
        let Some((_, row)) = self.pos.checked_sub(1).and_then(|i| self.rows.get(i)) else {
            return Cell::Null;
        };
        json_cell(row.get(col))
    }

    fn progress(&self) -> (u64, u64) {
        (self.pos as u64, self.rows.len() as u64)
    }

    fn line_word(&self) -> &'static str {
        "message"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_delimiters() {
        assert_eq!(sniff_delimiter("a,b,c"), b',');
        assert_eq!(sniff_delimiter("a;b;\"c,d\""), b';');
        assert_eq!(sniff_delimiter("a\tb\tc"), b'\t');
        assert_eq!(sniff_delimiter("a|b"), b'|');
    }

    #[test]
    fn csv_lines_and_ragged_rows() {
        let d = std::env::temp_dir().join(format!("infogap-rd-{}", std::process::id()));
        std::fs::create_dir_all(&d).ok();
        let p = d.join("x.csv");
        std::fs::write(&p, "\u{feff}id;name\r\n1;\"a;b\"\r\n2;c\r\n3\r\n").ok();
        let mut r = match CsvRows::open(&p, None) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(r.headers(), &["id".to_string(), "name".to_string()]);
        assert!(matches!(r.advance(), Ok(true)));
        assert_eq!(r.cell(1), Cell::Str("a;b"));
        assert_eq!(r.line(), 2, "{:?}", r.record.position());
        assert!(matches!(r.advance(), Ok(true)));
        assert_eq!(r.line(), 3);
        match r.advance() {
            Err(IngestError::BadRow { line, reason, .. }) => {
                assert_eq!(line, 4);
                assert!(reason.contains("1 fields"), "{reason}");
            }
            other => panic!("expected a bad row, got {other:?}"),
        }
    }

    #[test]
    fn jsonl_rows() {
        let d = std::env::temp_dir().join(format!("infogap-rj-{}", std::process::id()));
        std::fs::create_dir_all(&d).ok();
        let p = d.join("x.jsonl");
        std::fs::write(&p, "{\"id\": 7, \"v\": \"x\"}\n\n{\"id\": 8}\nnot json\n").ok();
        let mut r = match JsonRows::open(&p) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        assert!(matches!(r.advance(), Ok(true)));
        assert_eq!(r.line(), 1);
        let id = r.headers().iter().position(|h| h == "id").unwrap_or(9);
        assert_eq!(r.cell(id), Cell::Int(7));
        assert!(matches!(r.advance(), Ok(true)));
        assert_eq!(r.line(), 3);
        assert!(matches!(
            r.advance(),
            Err(IngestError::BadRow { line: 4, .. })
        ));
    }
}
