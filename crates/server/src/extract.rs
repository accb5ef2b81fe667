//! Extractors whose rejections are [`ApiError`]s.
//!
//! axum's own `Json`, `Path` and `Query` answer a bad request with plain text
//! that may quote the offending input (`invalid type: string "ann@…"`). These
//! wrappers answer `{"code", "message"}` instead (400, 413 or 415), and their
//! messages name only what the server defines: the position of a JSON syntax
//! error, the field path, the expected type, a missing field. The body, path
//! or query values the client sent are never quoted back.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body (`Content-Type: application/json` or
/// `application/*+json`), and a JSON response when returned.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

/// Path parameters of the matched route.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

/// The query string, deserialized.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::unsupported_media_type(
                "expected a request body with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(bytes_rejection)?;
        parse_json(&bytes).map(Json)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(rejection) => Err(path_rejection(rejection)),
        }
    }
}

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

/// Whether the request says its body is JSON.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a JSON body into `T`; the error names position, path and expected
/// type but quotes nothing of the body.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        json_error(e.inner(), &path)
    })?;
    de.end().map_err(|e| json_error(&e, "."))?;
    Ok(value)
}

fn json_error(err: &serde_json::Error, path: &str) -> ApiError {
    use serde_json::error::Category;
    let (line, column) = (err.line(), err.column());
    match err.classify() {
        Category::Eof if line == 1 && column == 0 => {
            ApiError::bad_request("the request body is empty; expected JSON")
        }
        Category::Eof => ApiError::bad_request(format!(
            "malformed JSON: the body ends early (line {line}, column {column})"
        )),
        Category::Syntax | Category::Io => {
            ApiError::bad_request(format!("malformed JSON at line {line}, column {column}"))
        }
        Category::Data => {
            let detail = safe_serde_detail(&err.to_string());
            let at = if path == "." || path.is_empty() {
                String::new()
            } else {
                format!(" at `{path}`")
            };
            ApiError::bad_request(format!(
                "the JSON body does not match the expected format{at}: {detail}"
            ))
        }
    }
}

/// The part of a serde error message that names only what the server
/// defines (missing field, expected type or values), never the value sent.
fn safe_serde_detail(msg: &str) -> String {
    // serde_json appends " at line L column C"; other formats do not.
    let msg = match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    if msg.starts_with("missing field `") {
        return msg.to_string();
    }
    if let Some(i) = msg.find(", expected ") {
        let head = &msg[..i];
        let kind_end = head
            .find(|c: char| c == ':' || c == '`' || c == '"' || c.is_ascii_digit())
            .unwrap_or(head.len());
        let kind = head[..kind_end].trim();
        let kind = if kind.is_empty() {
            "invalid value"
        } else {
            kind
        };
        return format!("{kind}, {}", &msg[i + 2..]);
    }
    if msg.starts_with("invalid digit") || msg.starts_with("cannot parse") {
        return "expected a number".to_string();
    }
    "invalid value".to_string()
}

fn bytes_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        // The body-limit layer refuses oversized bodies before a handler
        // runs; this is for a route with a smaller `DefaultBodyLimit`.
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than the limit",
        )
    } else {
        ApiError::bad_request("the request body could not be read")
    }
}

fn path_rejection(rejection: PathRejection) -> ApiError {
    use axum::extract::path::ErrorKind;
    match rejection {
        PathRejection::FailedToDeserializePathParams(e) => match e.kind() {
            ErrorKind::ParseErrorAtKey {
                key, expected_type, ..
            } => ApiError::bad_request(format!(
                "invalid path parameter `{key}`: expected {expected_type}"
            )),
            ErrorKind::ParseErrorAtIndex {
                index,
                expected_type,
                ..
            } => ApiError::bad_request(format!(
                "invalid path parameter {index}: expected {expected_type}"
            )),
            ErrorKind::ParseError { expected_type, .. } => {
                ApiError::bad_request(format!("invalid path parameter: expected {expected_type}"))
            }
            ErrorKind::InvalidUtf8InPathParam { key } => {
                ApiError::bad_request(format!("path parameter `{key}` is not valid UTF-8"))
            }
            ErrorKind::DeserializeError { key, message, .. } => ApiError::bad_request(format!(
                "invalid path parameter `{key}`: {}",
                safe_serde_detail(message)
            )),
            ErrorKind::Message(message) => ApiError::bad_request(format!(
                "invalid path parameter: {}",
                safe_serde_detail(message)
            )),
            // Wrong parameter count or unsupported type: a route written
            // wrongly, not a bad request.
            _ => {
                let err = std::io::Error::other(e.body_text());
                ApiError::internal_logged(&err)
            }
        },
        other => {
            let err = std::io::Error::other(other.body_text());
            ApiError::internal_logged(&err)
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    // "Failed to deserialize query string: <serde message>"
    let text = rejection.body_text();
    let detail = match text.split_once(": ") {
        Some((_, rest)) => safe_serde_detail(rest),
        None => "invalid value".to_string(),
    };
    ApiError::bad_request(format!("invalid query string: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        qty: u32,
    }

    #[test]
    fn json_errors_do_not_echo_values() {
        let err = parse_json::<Body>(br#"{"name": "ann@example.com", "qty": "ann@example.com"}"#)
            .unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(!err.message.contains("ann@"), "{}", err.message);
        assert!(err.message.contains("`qty`"), "{}", err.message);
        assert!(err.message.contains("expected u32"), "{}", err.message);

        let err = parse_json::<Body>(br#"{"name": "x"}"#).unwrap_err();
        assert!(
            err.message.contains("missing field `qty`"),
            "{}",
            err.message
        );

        let err = parse_json::<Body>(br#"{"name": "ann@example.com", "#).unwrap_err();
        assert!(err.message.starts_with("malformed JSON"), "{}", err.message);
        assert!(!err.message.contains("ann@"), "{}", err.message);

        let err = parse_json::<Body>(br#"{"name": "x", "qty": 1} trailing"#).unwrap_err();
        assert!(err.message.starts_with("malformed JSON"), "{}", err.message);

        let err = parse_json::<Body>(b"").unwrap_err();
        assert!(err.message.contains("empty"), "{}", err.message);
    }

    #[test]
    fn content_type() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/merge-patch+json".parse().unwrap(),
        );
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(!is_json(&h));
    }

    #[test]
    fn serde_detail() {
        assert_eq!(
            safe_serde_detail("invalid type: string \"secret\", expected u32 at line 1 column 9"),
            "invalid type, expected u32"
        );
        assert_eq!(
            safe_serde_detail("unknown field `secret`, expected `a` or `b`"),
            "unknown field, expected `a` or `b`"
        );
        assert_eq!(
            safe_serde_detail("invalid digit found in string"),
            "expected a number"
        );
        assert_eq!(safe_serde_detail("something \"secret\""), "invalid value");
    }
}
