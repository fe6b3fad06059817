//! The one error type of the HTTP boundary.
//!
//! A client's mistake becomes a 4xx whose JSON body says what to fix. Our
//! own failure is logged once, with its whole cause chain and the request
//! id, and reaches the client as an opaque 500 carrying only that id.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use palisade_chat::ChatError;
use palisade_store::StoreError;
use serde_json::json;

tokio::task_local! {
    /// The id of the request being served, set by the request middleware.
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is wrong; `code` is stable, `message` says what to fix.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    /// The visitor's identity could not be verified.
    #[error("{0}")]
    IdentityRejected(&'static str),
    /// Signed in with a password; the second factor is still to come.
    #[error("enter the code from your authenticator app (POST /v1/agent/login/mfa)")]
    MfaRequired,
    /// The role requires a second factor that is not set up yet.
    #[error("set up a second factor first (POST /v1/agent/mfa/enroll)")]
    EnrollmentRequired,
    /// A sensitive operation needs a recent second-factor code.
    #[error("confirm with a fresh code first (POST /v1/agent/mfa/step-up)")]
    StepUpRequired,
    #[error("too many attempts; try again in {0} seconds")]
    TooManyRequests(u64),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(&'static str),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("content-type must be application/json")]
    UnsupportedMediaType,
    #[error("the server is busy; try again in a moment")]
    Unavailable,
    /// A rate limit refused the request; the decision fills the headers.
    #[error("too many requests; slow down and retry after the Retry-After seconds")]
    RateLimited(crate::limits::Decision),
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    /// The web application firewall refused the request.
    #[error("the request was refused by the application firewall")]
    Blocked,
    #[error("cross-origin requests are not allowed here")]
    CrossOrigin,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::IdentityRejected(_) => (StatusCode::UNAUTHORIZED, "identity_verification_failed"),
            Self::MfaRequired => (StatusCode::UNAUTHORIZED, "mfa_required"),
            Self::EnrollmentRequired => (StatusCode::FORBIDDEN, "mfa_enrollment_required"),
            Self::StepUpRequired => (StatusCode::FORBIDDEN, "step_up_required"),
            Self::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            Self::Blocked => (StatusCode::FORBIDDEN, "blocked"),
            Self::CrossOrigin => (StatusCode::FORBIDDEN, "cross_origin"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let request_id = current_request_id();
        if let Self::Internal(err) = &self {
            tracing::error!(error = format!("{err:#}"), "request failed");
        }
        let body =
            json!({"error": {"code": code, "message": self.to_string(), "request_id": request_id}});
        let mut response = (status, Json(body)).into_response();
        if matches!(self, Self::Unavailable) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Self::TooManyRequests(seconds) = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Self::RateLimited(decision) = &self {
            decision.write_headers(response.headers_mut());
        }
        if matches!(self, Self::Unauthorized(_)) {
            let challenge = HeaderValue::from_static("Bearer");
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

impl From<ChatError> for ApiError {
    fn from(err: ChatError) -> Self {
        match err {
            ChatError::NotFound => Self::NotFound("conversation"),
            ChatError::Forbidden => Self::Forbidden("only agents may do this"),
            ChatError::Unavailable => Self::Unavailable,
            ChatError::ClientIdReused => {
                Self::Conflict("client_msg_id was already used for a different message")
            }
            ChatError::Store(err) => err.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Self::NotFound("record"),
            StoreError::Conflict(what) => Self::Conflict(what),
            other => Self::internal(other),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
