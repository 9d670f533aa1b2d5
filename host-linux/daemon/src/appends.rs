//! Pipelined `JOURNAL_APPEND`s on one Unix connection.
//!
//! Each append is queued to the journal as soon as its frame is read, and its reply is written
//! once its group commit is durable, in request order. A client that pipelines appends thus
//! shares commits with itself instead of waiting one `fdatasync` per request. Any other
//! request first waits for the appends before it (so `JOURNAL_TAIL` and `STATUS` see them):
//! replies stay in request order and every reply keeps its sequential meaning.

use super::inflight::InflightPermit;
use super::reply::Said;
use super::state::{Caller, Shared, append_reply};
use crate::kernel::parse_journal_append;
use heidi_core::proto::{Method, Request, RequestError};
use heidi_store::{AppendError, Appended, durable};
use std::collections::VecDeque;
use tokio::sync::oneshot;

/// An append queued to the journal whose reply is not written yet.
pub(crate) struct Deferred<'s> {
    answer: oneshot::Receiver<Result<Appended, AppendError>>,
    _permit: InflightPermit<'s>,
}

/// What [`Shared::begin`] did with a request.
pub(crate) enum Begun<'s, 'a> {
    /// A `JOURNAL_APPEND`, queued: its reply comes from [`Appends::drain`].
    Deferred(Deferred<'s>),
    /// Anything else (an append that failed validation included), to serve with
    /// [`Shared::answer_now`] once the deferred appends before it are answered.
    Serve(Result<Request<'a>, RequestError>),
}

/// The deferred appends of one connection, oldest first.
#[derive(Default)]
pub(crate) struct Appends<'s> {
    queue: VecDeque<Deferred<'s>>,
}

impl<'s> Appends<'s> {
    /// Queues a deferred append behind the others.
    pub(crate) fn push(&mut self, deferred: Deferred<'s>) {
        self.queue.push_back(deferred);
    }

    /// Whether no append is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Waits for every queued append in order, handing each reply body, and what it says,
    /// to `emit`.
    pub(crate) async fn drain(&mut self, body: &mut Vec<u8>, mut emit: impl FnMut(Said, &[u8])) {
        while let Some(deferred) = self.queue.pop_front() {
            let said = append_reply(durable(deferred.answer).await, body);
            emit(said, body);
        }
    }
}

impl Shared {
    /// Parses a request; a well-formed `JOURNAL_APPEND` is queued to the journal right away
    /// (when an in-flight slot is free) instead of being served.
    pub(crate) fn begin<'s, 'a>(&'s self, body: &'a str, caller: &Caller) -> Begun<'s, 'a> {
        let parsed = Request::parse(body);
        let Ok(Request {
            method: Method::JournalAppend,
            params,
            ..
        }) = parsed
        else {
            return Begun::Serve(parsed);
        };
        if !caller.admitted.admits(Method::JournalAppend.class()) {
            return Begun::Serve(parsed);
        }
        let (Some(permit), Ok(entry)) = (self.inflight.try_acquire(), parse_journal_append(params))
        else {
            return Begun::Serve(parsed);
        };
        let Ok(answer) = self.journal.submit(entry) else {
            return Begun::Serve(parsed);
        };
        self.audit.call(Method::JournalAppend, &caller.peer);
        Begun::Deferred(Deferred {
            answer,
            _permit: permit,
        })
    }
}
