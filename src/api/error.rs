//! The one error type of the HTTP edge: a status and Sentry's `{"detail": ...}` body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::core::CoreError;
use crate::store::StoreError;

/// An error answer. sentry-cli prints `detail` as `sentry reported an error: <detail>`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    /// For validation errors, the input field at fault: Sentry also reports
    /// `{"<field>": ["<message>"]}` next to `detail`.
    pub field: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
            field: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn not_found() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "The requested resource does not exist",
        )
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::NotFound(d) => ApiError::new(StatusCode::NOT_FOUND, d),
            CoreError::Invalid { field, detail } => ApiError {
                status: StatusCode::BAD_REQUEST,
                detail,
                field,
            },
            CoreError::Forbidden(d) => ApiError::new(StatusCode::FORBIDDEN, d),
            CoreError::Conflict(d) => ApiError::new(StatusCode::CONFLICT, d),
            CoreError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error");
        // 503 makes sentry-cli retry, which is right for a busy or briefly failing database.
        let status = match &e {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::DatabaseBusy
                    || f.code == rusqlite::ErrorCode::DatabaseLocked =>
            {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // The database's own words stay in the log: they describe the schema, not the request.
        let detail = if status == StatusCode::SERVICE_UNAVAILABLE {
            "the database is busy; try again"
        } else {
            "internal error; the server log has the details"
        };
        ApiError::new(status, detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "detail": self.detail });
        if let Some(field) = self.field {
            body[field] = json!([self.detail]);
        }
        (self.status, Json(body)).into_response()
    }
}

/// The answer for paths that do not exist, in Sentry's words.
pub async fn fallback() -> ApiError {
    ApiError::not_found()
}

/// The answer for a known path with the wrong method.
pub async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method \"{method}\" not allowed."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_error_text_stays_out_of_the_answer() {
        let e = StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(1),
            Some("no such column: secret_column in releases".into()),
        ));
        let answer = ApiError::from(e);
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            !answer.detail.contains("secret_column"),
            "{}",
            answer.detail
        );
    }
}
