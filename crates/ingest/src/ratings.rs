//! Ratings files: the one reader every recommender command uses.
//!
//! A ratings file is one `(user, item, rating[, timestamp])` triple per line.
//! The common public layouts are all accepted and auto-detected from the first
//! non-empty line (or forced with [`RatingFormat`]):
//!
//! | format | example | detected when the first line … |
//! |---|---|---|
//! | [`RatingFormat::Colons`] (MovieLens `ratings.dat`) | `1::1193::5::978300760` | contains `::` |
//! | [`RatingFormat::Csv`] (header optional, `,` or `;`) | `userId,movieId,rating,timestamp` | contains `,` or `;` |
//! | [`RatingFormat::Tab`] (MovieLens `u.data`) | `196\t242\t3\t881250949` | contains a tab |
//! | [`RatingFormat::Whitespace`] | `196 242 3` | anything else |
//!
//! Any of them may start with a header line: a first line whose rating field
//! is not a number is a header. Header names choose the columns (user:
//! `user`, `userId`, `user_id`, `customer`, …; item: `item`, `movieId`,
//! `item_id`, `product`, `isbn`, …; rating: `rating`, `score`, `value`, …;
//! time: `timestamp`, `ts`, `time`, `date`); without a header (or with
//! unknown names) the columns are positional: user, item, rating, timestamp.
//!
//! CRLF line endings, a missing final newline, blank lines and surrounding
//! double quotes on CSV fields are fine. The file is streamed line by line;
//! ids are interned as they come, so memory is one `u32` pair per rating plus
//! one string per distinct user and item.
//!
//! Duplicate `(user, item)` pairs keep the **last** rating (and timestamp) at
//! the position of the first occurrence; [`RatingsFile::duplicates`] counts how
//! many lines were overridden that way.
//!
//! Errors ([`RatingsError`]) name the file, the 1-based line and column and
//! the reason.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Layout of a ratings file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RatingFormat {
    /// Tab-separated `user item rating [timestamp]` (MovieLens `u.data`).
    Tab,
    /// `::`-separated `user::item::rating[::timestamp]` (MovieLens `ratings.dat`).
    Colons,
    /// Comma- (or semicolon-) separated, with or without a header line.
    Csv,
    /// Runs of spaces/tabs between `user item rating [timestamp]`.
    Whitespace,
}

impl RatingFormat {
    /// The name used on the command line (`tab`, `colons`, `csv`, `whitespace`).
    pub fn name(self) -> &'static str {
        match self {
            RatingFormat::Tab => "tab",
            RatingFormat::Colons => "colons",
            RatingFormat::Csv => "csv",
            RatingFormat::Whitespace => "whitespace",
        }
    }
}

impl fmt::Display for RatingFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RatingFormat {
    type Err = String;
    /// Accepts `tab`/`tsv`/`udata`, `colons`/`dat`/`::`, `csv`, `whitespace`/`ws`/`space`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tab" | "tsv" | "udata" | "u.data" => Ok(RatingFormat::Tab),
            "colons" | "dat" | "::" | "ratings.dat" => Ok(RatingFormat::Colons),
            "csv" => Ok(RatingFormat::Csv),
            "whitespace" | "ws" | "space" | "spaces" => Ok(RatingFormat::Whitespace),
            other => Err(format!(
                "unknown ratings format {other:?} (expected tab, colons, csv or whitespace)"
            )),
        }
    }
}

/// One rating, with user and item as indices into [`RatingsFile::users`] and
/// [`RatingsFile::items`] (first-seen order).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatingRow {
    /// Index into [`RatingsFile::users`].
    pub user: u32,
    /// Index into [`RatingsFile::items`].
    pub item: u32,
    /// The rating value (finite).
    pub rating: f32,
    /// Unix seconds when the file has a time column.
    pub ts: Option<i64>,
}

/// Everything read from a ratings file.
#[derive(Debug, Clone, Default)]
pub struct RatingsFile {
    /// External user ids, in first-seen order (`rows[i].user` indexes here).
    pub users: Vec<String>,
    /// External item ids, in first-seen order (`rows[i].item` indexes here).
    pub items: Vec<String>,
    /// One row per distinct `(user, item)` pair, in first-seen order, holding
    /// the last rating given for that pair.
    pub rows: Vec<RatingRow>,
    /// Lines that repeated an earlier `(user, item)` pair (their rating replaced the earlier one).
    pub duplicates: usize,
    /// The format used (detected or forced).
    pub format: Option<RatingFormat>,
    /// Whether a header line was found and skipped.
    pub header: bool,
    /// Data lines read (including duplicates, excluding header and blank lines).
    pub lines_read: usize,
}

impl RatingsFile {
    /// External user id of a row.
    pub fn user_id(&self, row: &RatingRow) -> &str {
        &self.users[row.user as usize]
    }
    /// External item id of a row.
    pub fn item_id(&self, row: &RatingRow) -> &str {
        &self.items[row.item as usize]
    }
    /// Iterates `(user, item, rating, ts)` with external string ids.
    pub fn iter_external(&self) -> impl Iterator<Item = (&str, &str, f32, Option<i64>)> + '_ {
        self.rows
            .iter()
            .map(|r| (self.user_id(r), self.item_id(r), r.rating, r.ts))
    }
}

/// Why a ratings file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RatingsError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A line could not be parsed.
    #[error("{path}: line {line}, column {column} ({field}): {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// 1-based column (field) number.
        column: usize,
        /// What the column holds (`user`, `item`, `rating`, `timestamp` or the header name).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The file holds no ratings.
    #[error("{path}: no ratings found (empty file or header only)")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Reads a ratings file; `format: None` auto-detects it (see the module docs).
pub fn read_ratings(
    path: &Path,
    format: Option<RatingFormat>,
) -> Result<RatingsFile, RatingsError> {
    let file = File::open(path).map_err(|source| RatingsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_ratings_from(BufReader::with_capacity(1 << 16, file), path, format)
}

/// Reads ratings from any reader; `path` is only used in error messages.
pub fn read_ratings_from<R: Read>(
    reader: R,
    path: &Path,
    format: Option<RatingFormat>,
) -> Result<RatingsFile, RatingsError> {
    let mut reader = BufReader::new(reader);
    let mut out = RatingsFile::default();
    let mut user_ix: HashMap<String, u32> = HashMap::new();
    let mut item_ix: HashMap<String, u32> = HashMap::new();
    let mut pair_ix: HashMap<(u32, u32), usize> = HashMap::new();
    let mut splitter: Option<Splitter> = None;
    let mut cols = Columns::positional();
    let mut buf = Vec::<u8>::with_capacity(256);
    let mut line_no = 0usize;
    let io_err = |source| RatingsError::Io {
        path: path.to_path_buf(),
        source,
    };
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(io_err)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t,
            Err(e) => {
                return Err(RatingsError::Parse {
                    path: path.to_path_buf(),
                    line: line_no,
                    column: 1,
                    field: "line".into(),
                    reason: format!("not valid UTF-8 at byte {}", e.valid_up_to() + 1),
                });
            }
        };
        let text = text.trim_end_matches(['\n', '\r']);
        let text = if line_no == 1 {
            text.trim_start_matches('\u{feff}')
        } else {
            text
        };
        if text.trim().is_empty() {
            continue;
        }
        let sp = match splitter {
            Some(s) => s,
            None => {
                let f = format.unwrap_or_else(|| detect(text));
                let s = Splitter::new(f, text);
                out.format = Some(f);
                splitter = Some(s);
                s
            }
        };
        let mut fields: Vec<&str> = Vec::with_capacity(8);
        sp.split(text, &mut fields);
        let first_data = out.lines_read == 0 && !out.header;
        if first_data && is_header(&fields, &cols) {
            cols = Columns::from_header(&fields);
            out.header = true;
            continue;
        }
        let perr = |column: usize, field: &str, reason: String| RatingsError::Parse {
            path: path.to_path_buf(),
            line: line_no,
            column: column + 1,
            field: field.to_string(),
            reason,
        };
        if fields.len() <= cols.max_needed() {
            return Err(perr(
                fields.len().min(cols.max_needed()),
                cols.name_of(fields.len()),
                format!(
                    "expected at least {} {}-separated fields, found {}",
                    cols.max_needed() + 1,
                    sp.describe(),
                    fields.len()
                ),
            ));
        }
        let user = fields[cols.user];
        let item = fields[cols.item];
        if user.is_empty() {
            return Err(perr(cols.user, "user", "empty user id".into()));
        }
        if item.is_empty() {
            return Err(perr(cols.item, "item", "empty item id".into()));
        }
        let rtext = fields[cols.rating];
        let rating: f32 = match rtext.parse::<f32>() {
            Ok(v) if v.is_finite() => v,
            Ok(_) => {
                return Err(perr(
                    cols.rating,
                    "rating",
                    format!("rating {rtext:?} is not finite"),
                ));
            }
            Err(_) => {
                return Err(perr(
                    cols.rating,
                    "rating",
                    format!("rating {rtext:?} is not a number"),
                ));
            }
        };
        let ts = match cols.ts {
            Some(c) if c < fields.len() && !fields[c].is_empty() => match parse_ts(fields[c]) {
                Some(t) => Some(t),
                None => {
                    return Err(perr(
                        c,
                        "timestamp",
                        format!(
                            "timestamp {:?} is neither Unix seconds nor a date (YYYY-MM-DD[ HH:MM:SS])",
                            fields[c]
                        ),
                    ));
                }
            },
            _ => None,
        };
        out.lines_read += 1;
        let u = intern(&mut user_ix, &mut out.users, user);
        let i = intern(&mut item_ix, &mut out.items, item);
        match pair_ix.entry((u, i)) {
            std::collections::hash_map::Entry::Occupied(e) => {
                let row = &mut out.rows[*e.get()];
                row.rating = rating;
                row.ts = ts;
                out.duplicates += 1;
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(out.rows.len());
                out.rows.push(RatingRow {
                    user: u,
                    item: i,
                    rating,
                    ts,
                });
            }
        }
    }
    if out.rows.is_empty() {
        return Err(RatingsError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

fn intern(ix: &mut HashMap<String, u32>, names: &mut Vec<String>, key: &str) -> u32 {
    if let Some(&v) = ix.get(key) {
        return v;
    }
    let v = names.len() as u32;
    names.push(key.to_string());
    ix.insert(key.to_string(), v);
    v
}

/// Guesses the format from the first non-empty line.
fn detect(line: &str) -> RatingFormat {
    if line.contains("::") {
        RatingFormat::Colons
    } else if line.contains(',') || line.contains(';') {
        RatingFormat::Csv
    } else if line.contains('\t') {
        RatingFormat::Tab
    } else {
        RatingFormat::Whitespace
    }
}

#[derive(Debug, Clone, Copy)]
enum Splitter {
    Tab,
    Colons,
    Csv(char),
    Whitespace,
}

impl Splitter {
    fn new(f: RatingFormat, first_line: &str) -> Self {
        match f {
            RatingFormat::Tab => Splitter::Tab,
            RatingFormat::Colons => Splitter::Colons,
            RatingFormat::Csv => {
                if !first_line.contains(',') && first_line.contains(';') {
                    Splitter::Csv(';')
                } else {
                    Splitter::Csv(',')
                }
            }
            RatingFormat::Whitespace => Splitter::Whitespace,
        }
    }
    fn describe(self) -> &'static str {
        match self {
            Splitter::Tab => "tab",
            Splitter::Colons => "'::'",
            Splitter::Csv(',') => "comma",
            Splitter::Csv(_) => "semicolon",
            Splitter::Whitespace => "whitespace",
        }
    }
    fn split<'a>(self, line: &'a str, out: &mut Vec<&'a str>) {
        match self {
            Splitter::Tab => out.extend(line.split('\t').map(str::trim)),
            Splitter::Colons => out.extend(line.split("::").map(str::trim)),
            Splitter::Csv(d) => out.extend(line.split(d).map(|f| unquote(f.trim()))),
            Splitter::Whitespace => out.extend(line.split_whitespace()),
        }
    }
}

fn unquote(f: &str) -> &str {
    if f.len() >= 2 && f.starts_with('"') && f.ends_with('"') {
        &f[1..f.len() - 1]
    } else {
        f
    }
}

/// Which field holds what.
#[derive(Debug, Clone)]
struct Columns {
    user: usize,
    item: usize,
    rating: usize,
    ts: Option<usize>,
    names: Vec<String>,
}

impl Columns {
    fn positional() -> Self {
        Columns {
            user: 0,
            item: 1,
            rating: 2,
            ts: Some(3),
            names: Vec::new(),
        }
    }
    /// Largest index among the required columns.
    fn max_needed(&self) -> usize {
        self.user.max(self.item).max(self.rating)
    }
    fn name_of(&self, col: usize) -> &str {
        if let Some(n) = self.names.get(col) {
            return n;
        }
        if col == self.user {
            "user"
        } else if col == self.item {
            "item"
        } else if col == self.rating {
            "rating"
        } else {
            "field"
        }
    }
    fn from_header(fields: &[&str]) -> Self {
        let norm: Vec<String> = fields
            .iter()
            .map(|f| {
                f.chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .collect::<String>()
                    .to_ascii_lowercase()
            })
            .collect();
        let find = |cands: &[&str]| norm.iter().position(|n| cands.contains(&n.as_str()));
        let user = find(&[
            "user",
            "userid",
            "users",
            "uid",
            "customer",
            "customerid",
            "reviewerid",
            "member",
            "memberid",
        ]);
        let item = find(&[
            "item",
            "itemid",
            "items",
            "iid",
            "movie",
            "movieid",
            "product",
            "productid",
            "isbn",
            "book",
            "bookid",
            "asin",
            "track",
            "trackid",
            "artist",
            "artistid",
            "business",
            "businessid",
            "jokeid",
            "anime",
            "animeid",
        ]);
        let rating = find(&[
            "rating",
            "ratings",
            "score",
            "stars",
            "value",
            "bookrating",
            "overall",
            "rate",
        ]);
        let ts = find(&[
            "timestamp",
            "ts",
            "time",
            "date",
            "datetime",
            "unixreviewtime",
            "created",
            "createdat",
        ]);
        let mut c = match (user, item, rating) {
            (Some(u), Some(i), Some(r)) if u != i && u != r && i != r => Columns {
                user: u,
                item: i,
                rating: r,
                ts,
                names: Vec::new(),
            },
            _ => {
                let mut c = Columns::positional();
                c.ts = if fields.len() > 3 { Some(3) } else { None };
                c
            }
        };
        c.names = fields.iter().map(|s| s.to_string()).collect();
        c
    }
}

/// A first line is a header when its rating field is not a number.
fn is_header(fields: &[&str], cols: &Columns) -> bool {
    match fields.get(cols.rating) {
        Some(r) => r.parse::<f64>().is_err(),
        None => fields.iter().any(|f| f.parse::<f64>().is_err()) && fields.len() >= 3,
    }
}

fn parse_ts(s: &str) -> Option<i64> {
    if let Ok(v) = s.parse::<i64>() {
        return Some(v);
    }
    if let Ok(v) = s.parse::<f64>() {
        return v.is_finite().then_some(v as i64);
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp());
    }
    for f in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y/%m/%d %H:%M:%S",
    ] {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(dt.and_utc().timestamp());
        }
    }
    for f in ["%Y-%m-%d", "%Y/%m/%d"] {
        if let Ok(d) = chrono::NaiveDate::parse_from_str(s, f) {
            return d.and_hms_opt(0, 0, 0).map(|dt| dt.and_utc().timestamp());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, f: Option<RatingFormat>) -> Result<RatingsFile, RatingsError> {
        read_ratings_from(text.as_bytes(), Path::new("mem.txt"), f)
    }

    #[test]
    fn udata_tab() {
        let r = read("196\t242\t3\t881250949\n186\t302\t3\t891717742\n", None).unwrap();
        assert_eq!(r.format, Some(RatingFormat::Tab));
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.user_id(&r.rows[1]), "186");
        assert_eq!(r.item_id(&r.rows[0]), "242");
        assert_eq!(r.rows[0].ts, Some(881250949));
        assert!(!r.header);
    }

    #[test]
    fn dat_colons_crlf_no_final_newline() {
        let r = read("1::1193::5::978300760\r\n1::661::3::978302109", None).unwrap();
        assert_eq!(r.format, Some(RatingFormat::Colons));
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[1].rating, 3.0);
        assert_eq!(r.rows[1].ts, Some(978302109));
    }

    #[test]
    fn csv_header_reordered_columns() {
        let r = read("rating,movieId,userId\r\n4.5,10,u1\r\n", None).unwrap();
        assert_eq!(r.format, Some(RatingFormat::Csv));
        assert!(r.header);
        let (u, i, v, t) = r.iter_external().next().unwrap();
        assert_eq!((u, i, v, t), ("u1", "10", 4.5, None));
    }

    #[test]
    fn semicolon_quoted() {
        let r = read(
            "\"User-ID\";\"ISBN\";\"Book-Rating\"\n\"276725\";\"034545104X\";\"0\"\n",
            None,
        )
        .unwrap();
        assert_eq!(r.rows.len(), 1);
        assert_eq!(r.item_id(&r.rows[0]), "034545104X");
    }

    #[test]
    fn whitespace_and_duplicates() {
        let r = read("a  x 1\nb x 2\na x 5\n\n  a   x 4  \n", None).unwrap();
        assert_eq!(r.format, Some(RatingFormat::Whitespace));
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.duplicates, 2);
        assert_eq!(r.rows[0].rating, 4.0);
        assert_eq!(r.lines_read, 4);
    }

    #[test]
    fn bad_rating_names_line_and_column() {
        let e = read("1\t2\t3\n1\t3\tfive\n", None).unwrap_err().to_string();
        assert!(
            e.contains("line 2") && e.contains("column 3") && e.contains("five"),
            "{e}"
        );
    }

    #[test]
    fn short_line_is_error() {
        let e = read("1,2,3\n4,5\n", None).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("found 2"), "{e}");
    }

    #[test]
    fn forced_format_and_empty() {
        assert!(matches!(read("", None), Err(RatingsError::Empty { .. })));
        assert!(matches!(
            read("user,item,rating\n", None),
            Err(RatingsError::Empty { .. })
        ));
        // Forced whitespace on a tab file still splits on tabs.
        let r = read("1\t2\t3\n", Some(RatingFormat::Whitespace)).unwrap();
        assert_eq!(r.rows.len(), 1);
        assert_eq!("dat".parse::<RatingFormat>().unwrap(), RatingFormat::Colons);
        assert!("xml".parse::<RatingFormat>().is_err());
    }

    #[test]
    fn date_timestamps() {
        let r = read("u,i,r,date\n1,2,3,2020-01-02\n", None).unwrap();
        assert_eq!(r.rows[0].ts, Some(1_577_923_200));
    }
}
