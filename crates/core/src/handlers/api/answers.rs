//! The API's HTTP answers: the contract's typed bodies (`contract.rs`) with their status and
//! headers. Every refusal is a [`Problem`], answered as an [`ErrorBody`].

use crate::contract::{Accepted, ApiError, ErrorBody};
use crate::domain::ending::Reported;
use crate::domain::request::RequestError;
use crate::Error;
use lambda_http::http::{header, HeaderName, HeaderValue, Response, StatusCode};
use lambda_http::Body;
use serde::Serialize;

/// A refusal or failure, as the caller sees it.
#[derive(Debug)]
pub(super) struct Problem {
    status: u16,
    code: &'static str,
    field: Option<String>,
    message: String,
    allow: Option<String>,
    build_status: Option<Reported>,
}

impl Problem {
    pub(super) fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            field: None,
            message: message.into(),
            allow: None,
            build_status: None,
        }
    }

    /// The build's final status, as the body's `status`.
    pub(super) fn build_status(mut self, status: Reported) -> Self {
        self.build_status = Some(status);
        self
    }

    pub(super) fn field(mut self, field: &str) -> Self {
        self.field = Some(field.to_string());
        self
    }

    pub(super) fn allow(mut self, methods: impl Into<String>) -> Self {
        self.allow = Some(methods.into());
        self
    }

    pub(super) fn into_response(self, request_id: Option<&str>) -> Response<Body> {
        // Server-side failures name the request so its log lines can be found; the details
        // (bucket names, ARNs, SDK messages) stay in the log.
        let message = match request_id {
            Some(id) if self.status >= 500 => format!("{} (request {id})", self.message),
            _ => self.message,
        };
        let body = ErrorBody {
            error: ApiError {
                code: self.code.to_string(),
                field: self.field,
                message,
                status: self.build_status,
            },
        };
        let mut headers = Vec::new();
        if let Some(allow) = self.allow {
            headers.push((header::ALLOW, allow));
        }
        if self.status == 503 {
            headers.push((header::RETRY_AFTER, "2".to_string()));
        }
        json(self.status, &body, headers)
    }
}

impl From<RequestError> for Problem {
    fn from(e: RequestError) -> Self {
        Problem::new(400, "InvalidRequest", e.message).field(&e.field)
    }
}

impl From<Error> for Problem {
    fn from(err: Error) -> Self {
        match err {
            Error::InvalidRequest(e) => e.into(),
            Error::TransientAws(_) => {
                tracing::warn!(error = %err, "AWS busy; answering 503");
                Problem::new(503, "ServiceUnavailable", "AWS is busy; retry shortly")
            }
            other => {
                tracing::error!(error = %other, error_type = other.name(), "request failed");
                Problem::new(500, "InternalError", "internal error")
            }
        }
    }
}

/// `200` with a contract type as JSON.
pub(super) fn ok_json<T: Serialize>(body: &T) -> Response<Body> {
    json(200, body, Vec::new())
}

/// `200` with a stored record, as stored (fields of newer schema versions included).
pub(super) fn ok_record(bytes: Vec<u8>) -> Result<Response<Body>, Problem> {
    let text = String::from_utf8(bytes)
        .map_err(|_| Problem::from(Error::InvalidState("a record is not UTF-8".into())))?;
    Ok(response(200, text, Vec::new()))
}

/// `202` with a stored record, as stored: a cancelled build's STOPPED record.
pub(super) fn accepted_record(bytes: Vec<u8>) -> Result<Response<Body>, Problem> {
    let mut r = ok_record(bytes)?;
    *r.status_mut() = StatusCode::ACCEPTED;
    Ok(r)
}

/// `202` with a contract type as JSON.
pub(super) fn accepted_json<T: Serialize>(body: &T) -> Response<Body> {
    json(202, body, Vec::new())
}

/// `202` pointing at the build's status.
pub(super) fn accepted(accepted: &Accepted) -> Response<Body> {
    let location = vec![(header::LOCATION, accepted.status_url.clone())];
    json(202, accepted, location)
}

fn json<T: Serialize>(status: u16, body: &T, headers: Vec<(HeaderName, String)>) -> Response<Body> {
    match serde_json::to_string(body) {
        Ok(text) => response(status, text, headers),
        // The contract's types always serialize; should one not, say so without a panic.
        Err(e) => {
            tracing::error!(error = %e, "an answer did not serialize");
            let text = r#"{"error":{"code":"InternalError","message":"internal error"}}"#;
            response(500, text.to_string(), Vec::new())
        }
    }
}

fn response(status: u16, body: String, headers: Vec<(HeaderName, String)>) -> Response<Body> {
    let mut r = Response::new(Body::Text(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Statuses change while a build runs: no cache may keep one.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    r
}
