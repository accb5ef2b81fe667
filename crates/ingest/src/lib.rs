//! infogap-ingest: readers, column mapping, validation and identity resolution.
//!
//! Everything here is about getting outside files into typed rows: it streams
//! CSV/TSV, JSON Lines and Parquet ([`reader`]), parses and validates values
//! with errors that name file, line and column ([`IngestError`]), reads the
//! special-purpose files of the evaluation commands (ratings, tables, CDNOW
//! transactions, series), and resolves identities (normalize → link →
//! union-find) as a pure function ([`identity`]).

pub mod cdnow;
pub mod identity;
pub mod ratings;
pub mod reader;
pub mod segment;
pub mod series;
pub mod table;

/// A problem with an input file. Every variant names the file; row-level ones
/// name the line (the header is line 1; for Parquet, the row number) and the
/// column by its header name.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A cell could not be parsed into the type its field needs.
    #[error("{file}: line {line}, column {column:?}: {reason} (value {value:?})")]
    BadValue {
        /// File.
        file: String,
        /// Line (header = 1) or Parquet row number.
        line: u64,
        /// Header name of the column.
        column: String,
        /// The offending value.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// A row is unusable as a whole (wrong number of fields, no identity key, …).
    #[error("{file}: line {line}: {reason}")]
    BadRow {
        /// File.
        file: String,
        /// Line.
        line: u64,
        /// Why.
        reason: String,
    },
    /// A column named in the config is not in the file's header.
    #[error(
        "{file}: column {column:?} (mapped for field {field:?} at {config}:{config_line}) is not in the header; columns are: {available}"
    )]
    MissingColumn {
        /// Data file.
        file: String,
        /// Missing column.
        column: String,
        /// infogap field it was mapped to.
        field: String,
        /// Config file.
        config: String,
        /// Line of the mapping in the config.
        config_line: usize,
        /// Header names found.
        available: String,
    },
    /// The file as a whole cannot be read (missing, unreadable, not the format it claims).
    #[error("{file}: {reason}")]
    File {
        /// File.
        file: String,
        /// Why.
        reason: String,
    },
}

impl IngestError {
    /// The line (or row) the error is about, when it is about one.
    pub fn line(&self) -> Option<u64> {
        match self {
            IngestError::BadValue { line, .. } | IngestError::BadRow { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// A row-level error (can be skipped with `--skip-bad-rows`).
    pub fn is_row_error(&self) -> bool {
        matches!(
            self,
            IngestError::BadValue { .. } | IngestError::BadRow { .. }
        )
    }
}
