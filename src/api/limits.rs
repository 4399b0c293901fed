//! What keeps a hostile or broken client from holding the daemon: connection timeouts, a layer
//! that turns a handler's panic into a JSON 500, and one that gives every error answer the
//! JSON `{"detail"}` body (axum's own rejections are plain text).
//!
//! `axum::serve` has no timeouts at all: a socket that sends half a request, or nothing, or
//! announces a huge `Content-Length` and stalls, stays open for ever, and a few hundred of them
//! exhaust the process. [`serve`] is the same accept loop with three limits
//! (`limits.header_timeout`, `limits.idle_timeout`, `limits.body_timeout`):
//!
//! - **header**: once the first byte of a request has arrived, its head must be complete
//!   within this time (slowloris);
//! - **idle**: a connection with no request in progress and nothing moving in either
//!   direction is closed after this time (a fresh connection that sends nothing, or a
//!   keep-alive connection left open);
//! - **body**: a request body that delivers nothing for this long fails the request, and with
//!   it the connection.
//!
//! hyper's own header timeout starts when it waits for a head, idle or not, so it cannot tell
//! the two apart; the watchdog here can, because it sees both the bytes on the socket and the
//! requests in progress.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;

use super::error::ApiError;
use crate::config::LimitsConfig;

/// The three connection timeouts (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub header: Duration,
    pub idle: Duration,
    pub body: Duration,
}

impl Timeouts {
    pub fn from_config(limits: &LimitsConfig) -> Self {
        Timeouts {
            header: limits.header_timeout,
            idle: limits.idle_timeout,
            body: limits.body_timeout,
        }
    }

    /// How often a connection's watchdog looks: a fraction of the shortest limit, so a
    /// connection is closed no later than about a quarter past its deadline.
    fn tick(&self) -> Duration {
        (self.header.min(self.idle) / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in progress finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let app = tower::ServiceBuilder::new()
        .layer(RequestBodyTimeoutLayer::new(timeouts.body))
        .service(guard(app));
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: activity.clone(),
        });
        let app = app.clone();
        let requests = activity.clone();
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            let in_progress = requests.begin_request();
            // What axum's `ConnectInfo` extractor reads (`/metrics` admits loopback peers).
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            let app = app.clone();
            async move {
                let _in_progress = in_progress;
                app.oneshot(req).await
            }
        });
        let connection = graceful.watch(
            builder
                .serve_connection_with_upgrades(io, service)
                .into_owned(),
        );
        tokio::spawn(async move {
            let watchdog = async {
                loop {
                    tokio::time::sleep(timeouts.tick()).await;
                    if let Some(reason) = activity.expired(&timeouts) {
                        return reason;
                    }
                }
            };
            tokio::select! {
                result = connection => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                reason = watchdog => tracing::debug!(reason, "closing a stalled connection"),
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Wraps the router: a handler's panic becomes a logged JSON 500 instead of a dropped
/// connection, and a plain-text error answer (axum's rejections: a path that is not UTF-8, a
/// multipart body without a boundary, a body that timed out) becomes Sentry's JSON `{"detail"}`.
pub fn guard(router: Router) -> Router {
    router
        .layer(axum::middleware::map_response(json_errors))
        .layer(CatchPanicLayer::custom(panic_answer))
}

/// The most of a plain-text error answer carried over into `detail`.
const MAX_TEXT_DETAIL: usize = 16 * 1024;

async fn json_errors(response: Response<Body>) -> Response<Body> {
    let is_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !is_text || !(response.status().is_client_error() || response.status().is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let detail = match axum::body::to_bytes(body, MAX_TEXT_DETAIL).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => parts
            .status
            .canonical_reason()
            .unwrap_or("error")
            .to_owned(),
    };
    ApiError::new(parts.status, detail).into_response()
}

fn panic_answer(panic: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = ?message, "a request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error; the server log has the details",
    )
    .into_response()
}

/// What a connection's watchdog knows: when bytes last moved, whether a request head is being
/// received, and how many requests are in progress. Times are milliseconds since `opened`.
struct Activity {
    opened: Instant,
    last_io: AtomicU64,
    head_started: AtomicU64,
    in_progress: AtomicUsize,
}

/// `head_started` when no head is being received.
const NONE: u64 = u64::MAX;

impl Activity {
    fn new() -> Self {
        Activity {
            opened: Instant::now(),
            last_io: AtomicU64::new(0),
            head_started: AtomicU64::new(NONE),
            in_progress: AtomicUsize::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if self.in_progress.load(Ordering::Acquire) == 0 {
            let _ =
                self.head_started
                    .compare_exchange(NONE, now, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    fn begin_request(self: &Arc<Self>) -> InProgress {
        self.in_progress.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(NONE, Ordering::Release);
        InProgress(self.clone())
    }

    /// Why the connection should be closed now, if it should.
    fn expired(&self, timeouts: &Timeouts) -> Option<&'static str> {
        if self.in_progress.load(Ordering::Acquire) > 0 {
            return None;
        }
        let now = self.now();
        let since = |t: u64| Duration::from_millis(now.saturating_sub(t));
        match self.head_started.load(Ordering::Acquire) {
            NONE if since(self.last_io.load(Ordering::Relaxed)) >= timeouts.idle => Some("idle"),
            NONE => None,
            started if since(started) >= timeouts.header => Some("request head too slow"),
            _ => None,
        }
    }
}

/// A request in progress; ends when the handler's response (or its failure) is produced.
struct InProgress(Arc<Activity>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.wrote();
        self.0.in_progress.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A socket that reports its traffic to the connection's [`Activity`].
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    async fn call(router: Router, uri: &str) -> (StatusCode, String, serde_json::Value) {
        let response = router
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            content_type,
            serde_json::from_slice(&bytes).unwrap_or_default(),
        )
    }

    async fn boom() -> &'static str {
        panic!("a bug")
    }

    #[tokio::test]
    async fn a_panic_answers_a_json_500_and_plain_text_errors_become_json() {
        let router = guard(
            Router::new()
                .route("/boom", get(boom))
                .route(
                    "/text",
                    get(|| async { (StatusCode::BAD_REQUEST, "Invalid URL: bad bytes") }),
                )
                .route("/json", get(|| async { ApiError::bad_request("as is") })),
        );
        let (status, content_type, body) = call(router.clone(), "/boom").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(content_type.starts_with("application/json"));
        assert_eq!(
            body["detail"],
            "internal error; the server log has the details"
        );
        let (status, content_type, body) = call(router.clone(), "/text").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(content_type.starts_with("application/json"));
        assert_eq!(body["detail"], "Invalid URL: bad bytes");
        let (_, _, body) = call(router, "/json").await;
        assert_eq!(body["detail"], "as is");
    }

    #[test]
    fn the_watchdog_tells_idle_from_a_slow_head_and_spares_requests_in_progress() {
        let timeouts = Timeouts {
            header: Duration::from_millis(0),
            idle: Duration::from_secs(3600),
            body: Duration::from_secs(1),
        };
        let activity = Arc::new(Activity::new());
        assert_eq!(activity.expired(&timeouts), None);
        activity.read();
        assert_eq!(activity.expired(&timeouts), Some("request head too slow"));
        let request = activity.begin_request();
        assert_eq!(activity.expired(&timeouts), None);
        drop(request);
        assert_eq!(activity.expired(&timeouts), None);
        let idle = Timeouts {
            idle: Duration::from_millis(0),
            ..timeouts
        };
        assert_eq!(activity.expired(&idle), Some("idle"));
    }
}
