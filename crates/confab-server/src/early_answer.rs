//! An answer given before the request body was read (a refused token, a body over the limit, a
//! GET or DELETE whose body no handler reads) must not break the connection for the next request.
//!
//! hyper 1 alone does not manage it. Its HTTP/1 dispatcher (`proto/h1/dispatch.rs`, `poll_read`)
//! learns that the handler dropped the body only after it has written the answer's head, which
//! promised keep-alive; it then tries once to read the rest from what has already arrived
//! (`proto/h1/conn.rs`, `poll_drain_or_close_read`: one `poll_read_body`, one chunk of a chunked
//! body) and, when the rest is not all there, closes the connection after the answer. The client
//! reuses the connection it was told stays open, and its next request fails; what it still sends
//! of the body meets a reset.
//!
//! This layer, around every face, takes the body back when the handler drops it unfinished,
//! before the answer leaves: a small rest (at most [`DRAIN_MAX`] bytes, arriving within
//! [`DRAIN_WAIT`]) is read and discarded, so the connection stays usable; otherwise the answer
//! says `Connection: close`, hyper closes after it, and the serve loop's lingering close
//! (`serve.rs`) lets the client read the whole answer before the socket goes.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::header::{CONNECTION, EXPECT};
use axum::http::{HeaderValue, Version};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};

/// The most of an unread body that is read to keep the connection open.
pub const DRAIN_MAX: u64 = 64 * 1024;
/// How long the rest of an unread body may take to arrive before the connection is given up.
pub const DRAIN_WAIT: Duration = Duration::from_secs(1);

/// The middleware (`axum::middleware::from_fn(early_answer::layer)`).
pub async fn layer(req: Request, next: Next) -> Response {
    let version = req.version();
    if version >= Version::HTTP_2 {
        // a stream of its own: hyper resets the stream, never the connection
        return next.run(req).await;
    }
    let expects_continue = req.headers().get(EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let left = Arc::new(Mutex::new(None));
    let req = req.map(|body| Body::new(Returned { body: Some(body), ended: false, left: left.clone() }));
    let mut resp = next.run(req).await;
    let unread = left.lock().ok().and_then(|mut l| l.take());
    if let Some(body) = unread {
        // A client waiting for `100 Continue` has not sent its body: reading it would ask for it.
        if expects_continue || !drain(body).await {
            resp.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
        }
    }
    resp
}

/// Read the rest of a body and discard it: whether it ended within the bounds.
async fn drain(mut body: Body) -> bool {
    if body.size_hint().lower() > DRAIN_MAX {
        return false;
    }
    let read = async {
        let mut seen = 0;
        loop {
            match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                None => return true,
                Some(Err(_)) => return false,
                Some(Ok(frame)) => {
                    seen += frame.data_ref().map_or(0, |d| d.len() as u64);
                    if seen > DRAIN_MAX {
                        return false;
                    }
                }
            }
        }
    };
    tokio::time::timeout(DRAIN_WAIT, read).await.unwrap_or(false)
}

/// The request body as the handler sees it; dropped before its end, the rest goes to `left`.
struct Returned {
    body: Option<Body>,
    ended: bool,
    left: Arc<Mutex<Option<Body>>>,
}

impl HttpBody for Returned {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let Some(body) = self.body.as_mut() else { return Poll::Ready(None) };
        let frame = std::task::ready!(Pin::new(body).poll_frame(cx));
        if frame.is_none() {
            self.ended = true;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.body.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body.as_ref().map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for Returned {
    fn drop(&mut self) {
        if self.is_end_stream() {
            return;
        }
        if let (Some(body), Ok(mut left)) = (self.body.take(), self.left.lock()) {
            *left = Some(body);
        }
    }
}
