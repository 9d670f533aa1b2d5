//! Pipelined `JOURNAL_APPEND`s on one Unix connection.
//!
//! Each append is queued to the journal as soon as its frame is read, and its reply is written
//! once its group commit is durable, in request order. A client that pipelines appends thus
//! shares commits with itself instead of waiting one `fdatasync` per request. Any other
//! request first waits for the appends before it (so `JOURNAL_TAIL` and `STATUS` see them):
//! replies stay in request order and every reply keeps its sequential meaning.

use super::inflight::InflightPermit;
use super::reply::Said;
use super::state::{Answer, Caller, KernelLock, Shared, append_reply};
use crate::kernel::parse_journal_append;
use heidi_core::proto::{Method, Request};
use heidi_store::{AppendError, Appended, durable};
use std::collections::VecDeque;
use tokio::sync::oneshot;

/// An append queued to the journal whose reply is not written yet.
pub(crate) struct Deferred<'s> {
    answer: oneshot::Receiver<Result<Appended, AppendError>>,
    _permit: InflightPermit<'s>,
}

/// What [`Shared::begin`] did with a request.
pub(crate) enum Begun<'s> {
    /// A `JOURNAL_APPEND`, queued: its reply comes from [`Appends::drain`].
    Deferred(Deferred<'s>),
    /// Anything else (an append that failed validation included), served as far as it goes
    /// without waiting.
    Served(Answer<'s>),
    /// Anything else while appends before it wait: answer them, then serve it with
    /// [`Shared::answer_now`] (replies keep request order).
    Behind,
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
    /// Parses a request: a well-formed `JOURNAL_APPEND` is queued to the journal right away
    /// (when an in-flight slot is free) instead of being served; anything else is served at
    /// `now` unless `appends_wait` (then the caller answers them first and serves it again).
    ///
    /// The parsed request never outlives this call, so it stays in this thread's stack frame
    /// rather than the connection's future, whichever way the request goes.
    pub(crate) fn begin<'s>(
        &'s self,
        now: heidi_core::Instant,
        body: &str,
        caller: &Caller,
        out: &mut Vec<u8>,
        appends_wait: bool,
        kernel: &mut KernelLock<'_>,
    ) -> Begun<'s> {
        let parsed = Request::parse(body);
        if let Ok(Request {
            method: Method::JournalAppend,
            params,
            ..
        }) = parsed
        {
            if let Some(deferred) = self.defer_append(params, caller) {
                return Begun::Deferred(deferred);
            }
        }
        if appends_wait {
            return Begun::Behind;
        }
        Begun::Served(self.answer_now(now, parsed, caller, out, kernel))
    }

    /// Queues a well-formed append to the journal, holding an in-flight slot; `None` when
    /// it must be served instead (not admitted, no slot, bad params, the journal refuses).
    fn defer_append<'s>(&'s self, params: &str, caller: &Caller) -> Option<Deferred<'s>> {
        if !caller.admitted.admits(Method::JournalAppend.class()) {
            return None;
        }
        let permit = self.inflight.try_acquire()?;
        let entry = parse_journal_append(params).ok()?;
        let answer = self.journal.submit(entry).ok()?;
        self.audit.call(Method::JournalAppend, &caller.peer);
        Some(Deferred {
            answer,
            _permit: permit,
        })
    }
}
