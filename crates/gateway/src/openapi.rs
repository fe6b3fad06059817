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
        // Every JSON route of the route table is described, with its method.
        for route in crate::routes::table() {
            let json_api = (route.path.starts_with("/v1/") || route.path.starts_with("/s2s/"))
                && !route.path.ends_with("/ws");
            if !json_api {
                continue;
            }
            let method = route.method.as_str().to_ascii_lowercase();
            let described = paths.get(route.path).and_then(|p| p.get(&method)).is_some();
            assert!(
                described,
                "{} {} is missing from openapi.json",
                route.method, route.path
            );
        }
    }
}
