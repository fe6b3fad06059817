//! `/openapi.json`: the OpenAPI 3.1 description of the public JSON API,
//! written by hand beside docs/API.md (the contract) and embedded in the
//! binary. A unit test checks it is valid JSON and names every JSON route
//! of the router.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The document, as served.
pub const DOCUMENT: &str = include_str!("../openapi.json");

pub async fn document() -> Response {
    let mut response = DOCUMENT.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_is_json_and_names_every_api_route() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("valid JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().expect("paths");
        for route in [
            "/v1/visitor/sessions",
            "/v1/visitor/conversations",
            "/v1/visitor/conversations/{id}/messages",
            "/v1/agent/login",
            "/v1/agent/logout",
            "/v1/agent/me",
            "/v1/agent/conversations",
            "/v1/agent/conversations/{id}",
            "/v1/agent/conversations/{id}/messages",
            "/v1/agent/conversations/{id}/claim",
            "/v1/agent/conversations/{id}/close",
            "/v1/admin/widgets",
            "/v1/admin/agents",
        ] {
            assert!(paths.contains_key(route), "{route} is missing");
        }
    }
}
