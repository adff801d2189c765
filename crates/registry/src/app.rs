//! The HTTP application: shared state, the router with its middleware, and serving with
//! graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::serve::ListenerExt;
use axum::{Extension, Router};
use ontology_core::GitStore;
use ontology_governance::Database;
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Level;
use utoipa_axum::router::UtoipaMethodRouterExt;

use crate::auth::AuthService;
use crate::catalog::{Body, CatalogService};
use crate::openapi::{self, OpenApiBody};
use crate::problem::{PROBLEM_JSON, problem_response};
use crate::publisher::Publisher;
use crate::{routes, web};

/// Settings the request handlers read.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Absolute base URL of the registry, for the few documents that need absolute links
    /// (the Atom feed). Paths stay relative without it.
    pub public_url: Option<String>,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Approvals from reviewers other than the author that a proposal needs to merge.
    pub required_approvals: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { public_url: None, body_limit: 1024 * 1024, required_approvals: 1 }
    }
}

/// State shared by every handler. The router clones the state for each request, so it is
/// one reference-counted pointer.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub catalog: Arc<CatalogService>,
    pub store: GitStore,
    pub db: Database,
    pub config: Arc<ServerConfig>,
    pub auth: Arc<AuthService>,
    pub publisher: Arc<Publisher>,
}

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.config.body_limit;
    // The document describes every route, the route that serves it included, so it is
    // filled in once the routes are collected; only that route carries it.
    let document = OpenApiBody::default();
    let (routes, collected) = routes::public_routes()
        .merge(routes::account_routes(&state))
        .merge(routes::proposal_routes(&state))
        .routes(utoipa_axum::routes!(openapi::openapi_json).layer(Extension(document.clone())))
        .split_for_parts();
    let json = openapi::document(collected).to_json().expect("the OpenAPI document serialises to JSON");
    document.set(Arc::new(Body::new(json)));

    routes
        .merge(web::routes(body_limit))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(problem_guard))
        // Rendered bodies carry their own gzip form and ETag; compressing them again would
        // leave a strong ETag on different bytes.
        .layer(CompressionLayer::new().compress_when(DefaultPredicate::new().and(WithoutEtag)))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    let path = request.uri().path();
                    // Probes poll every few seconds; their lines would drown the access log.
                    if path == "/healthz" || path == "/readyz" {
                        tracing::debug_span!("request", request_id = %request_id, method = %request.method(), path = %path)
                    } else {
                        tracing::info_span!("request", request_id = %request_id, method = %request.method(), path = %path)
                    }
                })
                .on_request(())
                .on_response(|response: &Response, latency: Duration, span: &tracing::Span| {
                    let status = response.status().as_u16();
                    let micros = latency.as_micros() as u64;
                    if response.status().is_server_error() {
                        tracing::error!(status, micros, "request failed");
                    } else if is_health_check(span) {
                        tracing::debug!(status, micros, "request finished");
                    } else {
                        tracing::info!(status, micros, "request finished");
                    }
                })
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Whether a request's span is one of the quiet ones (health probes), or disabled.
fn is_health_check(span: &tracing::Span) -> bool {
    span.metadata().is_none_or(|metadata| *metadata.level() == Level::DEBUG)
}

#[derive(Clone, Copy)]
struct WithoutEtag;

impl Predicate for WithoutEtag {
    fn should_compress<B: http_body::Body>(&self, response: &http::Response<B>) -> bool {
        !response.headers().contains_key(header::ETAG)
    }
}

/// Converts every error response that is not already in the right format: a problem
/// document on the API, an HTML error page on the web pages. Without it, the framework's
/// own rejections and the limits of layers respond in plain text.
async fn problem_guard(request: Request, next: Next) -> Response {
    let page = web::error::is_page_path(request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    // Web pages render their own errors, next to the form fields they concern.
    let content_type = response.headers().get(header::CONTENT_TYPE).map(|v| v.as_bytes()).unwrap_or_default();
    let is_problem = content_type.starts_with(PROBLEM_JSON.as_bytes());
    if content_type.starts_with(b"text/html") || (is_problem && !page) {
        return response;
    }

    let (code, title) = match status {
        StatusCode::BAD_REQUEST => ("malformed_request", "Malformed request"),
        StatusCode::NOT_FOUND => ("not_found", "Not found"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "Method not allowed"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "Payload too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "Unsupported media type"),
        StatusCode::UNPROCESSABLE_ENTITY => ("malformed_request", "Malformed request"),
        status if status.is_server_error() => ("internal_error", "Internal server error"),
        _ => ("malformed_request", "Request not acceptable"),
    };
    // The framework's 422 is a JSON body of the wrong shape, which the contract files under
    // 400 malformed_request.
    let status = if status == StatusCode::UNPROCESSABLE_ENTITY { StatusCode::BAD_REQUEST } else { status };
    let carried_headers: Vec<_> = [header::ALLOW, header::RETRY_AFTER]
        .into_iter()
        .filter_map(|name| response.headers().get(&name).cloned().map(|value| (name, value)))
        .collect();

    // The framework's rejections explain themselves in plain text, such as which path or
    // query parameter failed to parse, and problem documents in their detail. A server
    // error's text stays in the log.
    let explained = status.is_client_error() && (is_problem || content_type.starts_with(b"text/plain"));
    let text = match explained {
        true => axum::body::to_bytes(response.into_body(), REJECTION_TEXT_MAX).await.unwrap_or_default(),
        false => Default::default(),
    };
    let detail = match is_problem {
        true => serde_json::from_slice::<serde_json::Value>(&text)
            .ok()
            .and_then(|problem| problem["detail"].as_str().map(str::to_owned)),
        false => Some(String::from_utf8_lossy(&text).into_owned()).filter(|text| !text.is_empty()),
    };
    let detail = detail.unwrap_or_else(|| title.to_owned());

    let mut converted = match page {
        true => web::error::page(status, title, &detail),
        false => problem_response(status, code, title, &detail, &[]),
    };
    for (name, value) in carried_headers {
        converted.headers_mut().insert(name, value);
    }
    converted
}

/// Maximum length of a rejection text carried into a problem's detail. The framework's
/// rejection texts are one line.
const REJECTION_TEXT_MAX: usize = 2048;

/// Binds `threads` listening sockets to one address with `SO_REUSEPORT`, so the kernel
/// spreads connections over them. With port 0, the first socket picks the port and the
/// others join it.
pub fn bind_listeners(address: SocketAddr, threads: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let mut listeners = Vec::with_capacity(threads);
    let mut bound = address;
    for _ in 0..threads.max(1) {
        let socket = socket2::Socket::new(socket2::Domain::for_address(bound), socket2::Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        #[cfg(unix)]
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&bound.into())?;
        socket.listen(1024)?;
        let listener: std::net::TcpListener = socket.into();
        bound = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Serves on one single-threaded runtime per listener until `shutdown` resolves, then
/// stops accepting and lets in-flight requests finish.
///
/// One runtime per core, each with its own socket, is how nginx runs its workers: a request
/// never moves between threads. On this read-heavy workload it measured faster than a
/// work-stealing runtime that wakes threads across cores (see BENCHMARKS.md).
pub async fn serve(
    listeners: Vec<std::net::TcpListener>,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut workers = Vec::with_capacity(listeners.len());
    for (index, listener) in listeners.into_iter().enumerate() {
        let app = app.clone();
        let mut stopped = stopped.clone();
        let worker = std::thread::Builder::new().name(format!("http-{index}")).spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener)?;
                // Responses are small and written whole, so Nagle's delay would only add latency.
                let listener = listener.tap_io(|stream| {
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(%error, "failed to set TCP_NODELAY");
                    }
                });
                axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                    .with_graceful_shutdown(async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    })
                    .await
            })
        })?;
        workers.push(worker);
    }

    shutdown.await;
    let _ = stop.send(true);
    tokio::task::spawn_blocking(move || {
        for worker in workers {
            match worker.join() {
                Ok(result) => result?,
                Err(_) => return Err(std::io::Error::other("an HTTP worker thread panicked")),
            }
        }
        Ok(())
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Listens for SIGTERM and Ctrl-C from the moment it is called, and returns a future that
/// resolves on the first of them. Registering before the server announces itself means a
/// signal sent right after the announcement still stops it gracefully.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    #[cfg(unix)]
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;

    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing in-flight requests");
    })
}
