//! The one error type every handler and middleware answers with.
//!
//! A client always gets `{"code": "...", "message": "..."}` with a stable
//! machine-readable `code`, whatever failed: a handler, an extractor, a
//! panic, a timeout or an oversized body. The mapping from
//! [`EngineError`] to HTTP lives here, in one exhaustive `match`, so a new
//! engine error cannot reach a client without someone deciding its status.
//! Internal errors (store, I/O, invariants) never reach the client: they may
//! hold customer data, so they go to the log (with the request id) and the
//! client gets a generic message naming that id.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use infogap_engine::EngineError;
use serde::Serialize;

use crate::middleware::current_request_id;

/// An error answered to the client as JSON `{"code", "message"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`not_found`, `invalid_request`, …).
    pub code: &'static str,
    /// Human-readable message; never holds internal details.
    pub message: String,
    /// Seconds after which a retry may succeed (`Retry-After`, for 429 and
    /// 503).
    pub retry_after: Option<u64>,
}

/// The JSON body of every error response.
#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 `invalid_request`: the request is wrong, `msg` says how.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", msg)
    }

    /// 401 `unauthorized` (the response carries `WWW-Authenticate: Bearer`).
    pub fn unauthorized(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", msg)
    }

    /// 403 `forbidden`.
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", msg)
    }

    /// 404 `not_found`.
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", msg)
    }

    /// 413 `payload_too_large`; `limit` is the largest body accepted, in
    /// bytes.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    /// 503 `timeout`: the request took longer than `secs` seconds.
    pub fn timeout(secs: f64) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the request took longer than {secs} s and was cancelled"),
        )
    }

    /// 429 `rate_limited`, with `Retry-After: secs`.
    pub fn rate_limited(secs: u64) -> Self {
        ApiError {
            retry_after: Some(secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests; retry after {secs} s"),
            )
        }
    }

    /// 415 `unsupported_media_type`: the body is not of the type expected.
    pub fn unsupported_media_type(msg: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            msg,
        )
    }

    /// 500 `internal` with a generic message naming the request id. Log the
    /// real cause before calling this (see [`ApiError::internal_logged`]).
    pub fn internal() -> Self {
        let message = match current_request_id() {
            Some(id) => format!("internal error (request id {id})"),
            None => "internal error".to_string(),
        };
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// 500 `internal`: logs `err` (with its cause chain and the request id)
    /// and answers the generic message of [`ApiError::internal`].
    pub fn internal_logged(err: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(
            request_id = current_request_id().as_deref().unwrap_or("-"),
            error = %ErrorChain(err),
            "internal error"
        );
        Self::internal()
    }

    /// The default error for a status: used for responses that carry no
    /// JSON error of their own (axum's empty 404 and 405, for instance).
    pub fn from_status(status: StatusCode) -> Self {
        let code = match status {
            StatusCode::BAD_REQUEST => "invalid_request",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::REQUEST_TIMEOUT => "timeout",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "invalid_request",
            StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            s if s.is_server_error() => "internal",
            _ => "error",
        };
        if status.is_server_error() && code == "internal" {
            return ApiError {
                status,
                ..Self::internal()
            };
        }
        let message = status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase();
        Self::new(status, code, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code,
            message: &self.message,
        };
        let mut res = (self.status, Json(body)).into_response();
        let headers = res.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

impl From<EngineError> for ApiError {
    fn from(err: EngineError) -> Self {
        // One arm per variant, no wildcard: a new variant must be mapped here
        // before the server compiles.
        match err {
            EngineError::NotFound(what) => ApiError::not_found(format!("not found: {what}")),
            EngineError::Unauthorized(msg) => ApiError::unauthorized(msg),
            EngineError::Forbidden(msg) => ApiError::forbidden(msg),
            e @ (EngineError::Invalid(_) | EngineError::Ingest(_) | EngineError::Config(_)) => {
                ApiError::bad_request(e.to_string())
            }
            e @ EngineError::Model(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "model_error",
                e.to_string(),
            ),
            e @ (EngineError::Store(_) | EngineError::Io { .. } | EngineError::Invariant(_)) => {
                ApiError::internal_logged(&e)
            }
        }
    }
}

/// Displays an error with its causes: `outer: cause: root`.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_statuses() {
        let cases = [
            (EngineError::NotFound("customer x".into()), 404, "not_found"),
            (
                EngineError::Unauthorized("bad key".into()),
                401,
                "unauthorized",
            ),
            (EngineError::Forbidden("no".into()), 403, "forbidden"),
            (
                EngineError::Invalid("k must be > 0".into()),
                400,
                "invalid_request",
            ),
            (EngineError::Invariant("p = 2".into()), 500, "internal"),
            (
                EngineError::Io {
                    path: "/secret/ann@example.com.csv".into(),
                    source: std::io::Error::other("boom"),
                },
                500,
                "internal",
            ),
        ];
        for (err, status, code) in cases {
            let api = ApiError::from(err);
            assert_eq!(api.status.as_u16(), status);
            assert_eq!(api.code, code);
            if status == 500 {
                assert!(!api.message.contains("ann@"), "{}", api.message);
                assert!(!api.message.contains("p = 2"), "{}", api.message);
            }
        }
        let api = ApiError::from(EngineError::Invalid("k must be > 0".into()));
        assert_eq!(api.message, "k must be > 0");
    }

    #[test]
    fn headers_for_401_and_429() {
        let res = ApiError::unauthorized("no key").into_response();
        assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let res = ApiError::rate_limited(17).into_response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[header::RETRY_AFTER], "17");
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
    }
}
