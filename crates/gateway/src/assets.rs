//! The web UI's files, embedded at build time (see build.rs), served with
//! their content type and a content security policy that allows no inline
//! script or style.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The policy of Palisade's own pages.
const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

fn find(path: &str) -> Option<&'static [u8]> {
    EMBEDDED
        .iter()
        .find(|(name, _)| *name == path)
        .map(|(_, bytes)| *bytes)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

fn serve(path: &str, body: Vec<u8>, csp: Option<String>) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(csp) = csp.and_then(|csp| HeaderValue::from_str(&csp).ok()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

fn file_name_ok(file: &str) -> bool {
    !file.is_empty()
        && !file.starts_with('.')
        && file
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

pub async fn widget(
    State(state): State<AppState>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    if !file_name_ok(&file) {
        return Err(ApiError::NotFound("file"));
    }
    let path = format!("widget/{file}");
    if file == "theme.css" {
        return theme_css(&state, query.as_deref()).await;
    }
    let bytes = find(&path).ok_or(ApiError::NotFound("file"))?;
    match file.as_str() {
        "frame.html" => {
            let ancestors = frame_ancestors(&state, query.as_deref()).await?;
            let csp = PAGE_CSP.replace(
                "frame-ancestors 'none'",
                &format!("frame-ancestors {ancestors}"),
            );
            Ok(serve(&path, bytes.to_vec(), Some(csp)))
        }
        "demo.html" => {
            let page = String::from_utf8_lossy(bytes)
                .replace(
                    "__PALISADE_WIDGET_KEY__",
                    state.settings.demo_widget_key.as_deref().unwrap_or(""),
                )
                .replace("__PALISADE_ORIGIN__", &state.settings.public_origin);
            Ok(serve(&path, page.into_bytes(), Some(PAGE_CSP.into())))
        }
        _ if path.ends_with(".html") => Ok(serve(&path, bytes.to_vec(), Some(PAGE_CSP.into()))),
        _ => {
            let mut response = serve(&path, bytes.to_vec(), None);
            // The loader runs on tenants' sites.
            response.headers_mut().insert(
                "cross-origin-resource-policy",
                HeaderValue::from_static("cross-origin"),
            );
            Ok(response)
        }
    }
}

fn key_of(query: Option<&str>) -> &str {
    query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("key="))
        .unwrap_or("")
}

/// The launcher's colour and corner for one widget, as a stylesheet the
/// loader adds after launcher.css (so the host page needs no script-written
/// styles). The colour was checked to be `#rrggbb` before it was stored.
async fn theme_css(state: &AppState, query: Option<&str>) -> Result<Response, ApiError> {
    let key = key_of(query);
    if key.is_empty() {
        return Err(ApiError::NotFound("widget"));
    }
    let store = state.chat.store();
    let widget = store
        .widget_by_public_key(key)
        .await?
        .ok_or(ApiError::NotFound("widget"))?;
    let settings = &widget.settings;
    let color = settings.theme_color.as_str();
    let mut css = format!(
        "#palisade-widget .palisade-launcher,\n\
         #palisade-widget .palisade-launcher:hover {{ background: {color}; }}\n\
         #palisade-widget .palisade-launcher:focus-visible {{ \
         box-shadow: 0 0 0 3px #ffffff, 0 0 0 6px {color}; }}\n"
    );
    if settings.position == palisade_model::Position::Left {
        // Phones keep launcher.css's full-screen panel.
        css.push_str(
            "#palisade-widget .palisade-launcher { left: 20px; right: auto; }\n\
             @media (min-width: 480px) {\n\
             #palisade-widget .palisade-panel { left: 20px; right: auto; }\n}\n",
        );
    }
    let mut response = serve("widget/theme.css", css.into_bytes(), None);
    response.headers_mut().insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    Ok(response)
}

/// Who may frame the chat: Palisade itself and the widget's allowed origins.
async fn frame_ancestors(state: &AppState, query: Option<&str>) -> Result<String, ApiError> {
    let key = key_of(query);
    let mut ancestors = vec!["'self'".to_owned()];
    if !key.is_empty()
        && let Some(widget) = state.chat.store().widget_by_public_key(key).await?
    {
        // Origins were checked when saved; re-check the characters here so
        // nothing can break out of the header.
        let safe = |o: &String| {
            o.chars()
                .all(|c| c.is_ascii_alphanumeric() || ":/.-[]".contains(c))
        };
        ancestors.extend(widget.allowed_origins.iter().filter(|o| safe(o)).cloned());
    }
    Ok(ancestors.join(" "))
}

pub async fn app_index() -> Result<Response, ApiError> {
    let bytes = find("app/index.html").ok_or(ApiError::NotFound("file"))?;
    Ok(serve(
        "app/index.html",
        bytes.to_vec(),
        Some(PAGE_CSP.into()),
    ))
}

pub async fn app(Path(file): Path<String>) -> Result<Response, ApiError> {
    if !file_name_ok(&file) {
        return Err(ApiError::NotFound("file"));
    }
    let path = format!("app/{file}");
    let bytes = find(&path).ok_or(ApiError::NotFound("file"))?;
    let csp = path.ends_with(".html").then(|| PAGE_CSP.to_owned());
    Ok(serve(&path, bytes.to_vec(), csp))
}

pub async fn root() -> Redirect {
    Redirect::to("/app/")
}
