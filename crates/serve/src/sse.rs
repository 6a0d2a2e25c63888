//! Response bodies: one JSON object, or a Server-Sent Events stream fed by an upstream task.
//!
//! Each SSE event is `event: message` + one `data:` line holding one JSON-RPC message (messages are
//! single-line JSON, so no line splitting is needed). Streams that may stay quiet (the standalone GET
//! stream) carry a comment line every [`KEEPALIVE`] so intermediaries and clients do not time them out.
//! Dropping a request stream before its response arrives tells the upstream ([`Cmd::Abandon`]), which
//! in the 2026-07-28 era cancels the request.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame as BodyFrame, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

use crate::upstream::{Cmd, Frame};

/// The response body type of every handler.
pub(crate) type ResBody = UnsyncBoxBody<Bytes, Infallible>;

/// How often a quiet standalone stream gets a keep-alive comment.
pub(crate) const KEEPALIVE: Duration = Duration::from_secs(15);

pub(crate) fn full(bytes: impl Into<Bytes>) -> ResBody {
    Full::new(bytes.into()).boxed_unsync()
}

pub(crate) fn empty() -> ResBody {
    Empty::new().boxed_unsync()
}

/// One SSE event carrying one JSON-RPC message.
pub(crate) fn event(json: &[u8]) -> Bytes {
    let mut b = Vec::with_capacity(json.len() + 24);
    b.extend_from_slice(b"event: message\ndata: ");
    b.extend_from_slice(json);
    b.extend_from_slice(b"\n\n");
    Bytes::from(b)
}

/// An SSE stream of frames from an upstream task.
pub(crate) struct SseBody {
    first: Option<Frame>,
    rx: mpsc::Receiver<Frame>,
    done: bool,
    /// Set while the request's response has not been delivered.
    abandon: Option<(mpsc::Sender<Cmd>, u64)>,
    keepalive: Option<tokio::time::Interval>,
}

impl SseBody {
    /// The stream of one request: ends after the frame marked `last`.
    pub(crate) fn request(
        first: Frame,
        rx: mpsc::Receiver<Frame>,
        abandon: Option<(mpsc::Sender<Cmd>, u64)>,
    ) -> SseBody {
        let done_now = first.last;
        SseBody {
            first: Some(first),
            rx,
            done: false,
            abandon: if done_now { None } else { abandon },
            keepalive: None,
        }
    }

    /// The standalone stream: open until the session ends or the client leaves.
    pub(crate) fn standalone(rx: mpsc::Receiver<Frame>) -> SseBody {
        let mut tick = tokio::time::interval(KEEPALIVE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.reset();
        SseBody {
            first: None,
            rx,
            done: false,
            abandon: None,
            keepalive: Some(tick),
        }
    }

    fn emit(&mut self, f: &Frame) -> Poll<Option<Result<BodyFrame<Bytes>, Infallible>>> {
        if f.last {
            self.done = true;
            self.abandon = None;
        }
        Poll::Ready(Some(Ok(BodyFrame::data(event(&f.bytes)))))
    }
}

impl Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<BodyFrame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(f) = this.first.take() {
            return this.emit(&f);
        }
        if this.done {
            return Poll::Ready(None);
        }
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some(f)) => {
                if let Some(k) = &mut this.keepalive {
                    k.reset();
                }
                this.emit(&f)
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                let tick = this
                    .keepalive
                    .as_mut()
                    .is_some_and(|k| k.poll_tick(cx).is_ready());
                if tick {
                    Poll::Ready(Some(Ok(BodyFrame::data(Bytes::from_static(b":\n\n")))))
                } else {
                    Poll::Pending
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.first.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

impl Drop for SseBody {
    fn drop(&mut self) {
        if let Some((tx, key)) = self.abandon.take() {
            let _ = tx.try_send(Cmd::Abandon { key });
        }
    }
}

/// Sends [`Cmd::Abandon`] when dropped while armed: a handler waiting for the first message of a
/// response is dropped when its client disconnects.
pub(crate) struct AbandonGuard(pub(crate) Option<(mpsc::Sender<Cmd>, u64)>);

impl AbandonGuard {
    pub(crate) fn disarm(&mut self) -> Option<(mpsc::Sender<Cmd>, u64)> {
        self.0.take()
    }
}

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        if let Some((tx, key)) = self.0.take() {
            let _ = tx.try_send(Cmd::Abandon { key });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_data_line() {
        assert_eq!(
            &event(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#)[..],
            b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n"
        );
    }
}
