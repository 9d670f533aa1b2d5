//! The state both listeners share, and [`Shared::call`]: one request in, one reply body out.

use super::audit::{AuditCounts, Outcome};
use super::config::Config;
use super::inflight::{Inflight, InflightPermit};
use super::metrics::Metrics;
use super::pipeline::PipelineHandle;
use super::procinfo;
use super::reply::{self, Said};
use crate::kernel::{Handled, Kernel, PendingPolicy, parse_journal_append};
use heidi_common::clock::Clock;
use heidi_core::journal::By;
use heidi_core::proto::{
    Admitted, Credentials, DaemonStatus, ErrorCode, HostCall, HostRefusal, Method,
    PROTOCOL_VERSION, Queue, Request, RequestError, Server,
};
use heidi_core::service;
use heidi_store::{AppendError, Appended, Journal};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

/// The daemon's version, as `version`, `PING` and `STATUS` report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The reply to `PING`, the same on every call: the core writes it once.
static PONG: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    let mut pong = Vec::new();
    reply::written(&mut pong, |w| service::write_pong_reply(VERSION, w));
    pong
});

/// Who sent a request: for authorization, the audit log and journaled privileged actions.
#[derive(Clone, Debug)]
pub enum Peer {
    /// A Unix-socket peer's credentials (SO_PEERCRED).
    Unix {
        /// User id.
        uid: u32,
        /// Group id.
        gid: u32,
        /// Process id, when the kernel reports one.
        pid: Option<i32>,
    },
    /// An HTTP client's address.
    Http(std::net::SocketAddr),
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Unix {
                uid,
                gid,
                pid: Some(pid),
            } => write!(f, "uid={uid} gid={gid} pid={pid}"),
            Peer::Unix {
                uid,
                gid,
                pid: None,
            } => write!(f, "uid={uid} gid={gid}"),
            Peer::Http(addr) => write!(f, "http {addr}"),
        }
    }
}

impl Peer {
    /// A socket peer's uid and gid; `None` over HTTP and when the kernel gave none.
    pub fn credentials(&self) -> Option<Credentials> {
        match *self {
            Peer::Unix { uid, gid, .. } if uid != u32::MAX && gid != u32::MAX => {
                Some(Credentials { uid, gid })
            }
            _ => None,
        }
    }

    fn transport(&self) -> &'static str {
        match self {
            Peer::Unix { .. } => "unix",
            Peer::Http(_) => "http",
        }
    }
}

/// A peer and the classes of methods it may call, decided once per connection (per call over
/// HTTP).
pub(crate) struct Caller {
    /// Who it is.
    pub(crate) peer: Peer,
    /// What [`Shared::admitted`] answered for it.
    pub(crate) admitted: Admitted,
}

/// Everything the listeners share.
pub struct Shared {
    /// The configuration in force.
    pub config: Config,
    /// The monotonic clock the core reads through.
    pub clock: Clock,
    /// When the daemon started.
    pub started: std::time::Instant,
    /// The core components (pure; held only for microseconds).
    pub kernel: Arc<Mutex<Kernel>>,
    /// The durable journal.
    pub journal: Journal,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Requests being served; a request that finds none free is answered `OVERLOADED`.
    pub inflight: Inflight,
    /// Open connections on both listeners (for `STATUS`) and their peak.
    pub connections: super::memory::Connections,
    /// Set once both listeners are up; cleared when shutdown begins (`/readyz`).
    pub ready: AtomicBool,
    /// Serializes `APPLY_POLICY` from validation through journal, commit and persistence.
    pub policy_lock: tokio::sync::Mutex<()>,
    /// `policy.json` and `policy.next.json`, keyed with the seal key.
    pub(crate) policy_files: super::policy_file::PolicyFiles,
    /// The pipeline driver.
    pub pipeline: PipelineHandle,
    /// Tasks journaling kernel events (breaker transitions), awaited at shutdown.
    pub event_tasks: Mutex<tokio::task::JoinSet<()>>,
    /// The audit log: per-peer counts of mutating and refused admin calls, and the bounded
    /// lines of carried-out admin calls.
    pub audit: AuditCounts,
    /// The durable idempotency records (`OUT_DIR/idempotency.jsonl`).
    pub idempotency: heidi_store::IdemLog,
    /// Read buffers and frame decoders lent to Unix connections while they have bytes.
    pub(crate) buffers: super::buffers::ConnBuffers,
}

/// What [`Shared::answer_now`] did with a request.
pub(crate) enum Answer<'s> {
    /// The reply is in `out`.
    Done {
        /// The request's method (`None`: it did not parse).
        method: Option<Method>,
        /// What the reply said.
        said: Said,
    },
    /// The request must wait (journal, policy lock, pipeline): finish it with
    /// [`Shared::answer_later`]. Boxed: it is big and off the hot path.
    Later(Box<Later<'s>>),
}

/// A request that holds an in-flight slot and waits for something before its reply. It owns
/// a copy of its params, so that it outlives the read that brought it (the path of requests
/// that wait for a disk or a lock, where a copy costs nothing next to the wait).
pub(crate) struct Later<'s> {
    method: Method,
    params: Box<str>,
    work: Work,
    _permit: InflightPermit<'s>,
}

/// What a [`Later`] request waits for.
enum Work {
    /// `JOURNAL_APPEND`: the journal's group commit.
    Append,
    /// `PIPELINE_*`: the pipeline driver.
    Pipeline,
    /// `APPLY_POLICY`: the policy lock, then the kernel, then the journal.
    Policy,
    /// The kernel handled it and asks for more before the reply is sent.
    Kernel(KernelWait),
}

/// What the kernel asks for before a reply is sent.
enum KernelWait {
    /// A validated policy change to carry out.
    ApplyPolicy(Box<PendingPolicy>),
    /// An idempotency record (or barrier) queued under the kernel's lock, to wait for; the
    /// reply in `out` says this once it is durable.
    Idempotency(
        Result<heidi_store::Durable, heidi_store::IdemLogError>,
        Said,
    ),
}

/// What [`Shared::kernel_step`] left to do.
enum Step {
    /// The reply is in `out`, and said this.
    Done(Said),
    /// The kernel asks for more before the reply is sent.
    Wait(KernelWait),
}

/// Most requests served under one hold of the kernel's lock: a connection that read many
/// frames at once releases it this often, so other connections' requests wait at most
/// this many requests' work for it.
const KERNEL_HOLD_REQUESTS: u32 = 32;

/// The kernel's lock, taken at the first request that needs it and held for the requests
/// served after it without waiting (at most [`KERNEL_HOLD_REQUESTS`]): one lock and unlock
/// per read instead of per request. Dropped before anything waits.
pub(crate) struct KernelLock<'s> {
    mutex: &'s Mutex<Kernel>,
    guard: Option<MutexGuard<'s, Kernel>>,
    /// Requests served under the current hold.
    uses: u32,
}

impl<'s> KernelLock<'s> {
    /// Not locked yet.
    pub(crate) fn new(mutex: &'s Mutex<Kernel>) -> KernelLock<'s> {
        KernelLock {
            mutex,
            guard: None,
            uses: 0,
        }
    }

    /// The kernel, locked for one more request.
    fn get(&mut self) -> &mut Kernel {
        if self.uses >= KERNEL_HOLD_REQUESTS {
            // Let the others in before taking it again.
            self.guard = None;
            self.uses = 0;
        }
        self.uses += 1;
        let mutex = self.mutex;
        self.guard
            .get_or_insert_with(|| mutex.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Shared {
    /// Serves one request body (JSON text) and leaves the reply body in `out`.
    pub async fn call(&self, body: &str, peer: &Peer, out: &mut Vec<u8>) {
        let start = std::time::Instant::now();
        let now = self.clock.at(start);
        let caller = Caller {
            peer: peer.clone(),
            admitted: self.admitted(peer),
        };
        let answer = {
            let mut kernel = KernelLock::new(&self.kernel);
            self.answer_now(now, Request::parse(body), &caller, out, &mut kernel)
        };
        let (method, said) = match answer {
            Answer::Done { method, said } => (method, said),
            Answer::Later(later) => {
                let (method, said) = self.answer_later(*later, peer, out).await;
                (Some(method), said)
            }
        };
        self.metrics
            .request(method, peer.transport(), said.is_success(), start.elapsed());
    }

    /// Serves a request (or the parser's refusal of one) as far as it can without waiting,
    /// leaving the reply body in `out`. `now` is the core's time for it (see
    /// [`Clock::at`]): a listener reads the clock once for all the requests of one read.
    /// Metrics are the caller's.
    pub(crate) fn answer_now<'s>(
        &'s self,
        now: heidi_core::Instant,
        parsed: Result<Request<'_>, RequestError>,
        caller: &Caller,
        out: &mut Vec<u8>,
        kernel: &mut KernelLock<'_>,
    ) -> Answer<'s> {
        let (method, said) = match parsed {
            Ok(request) => match self.serve_now(&request, now, caller, out, kernel) {
                Ok(said) => (Some(request.method), said),
                Err(later) => return Answer::Later(later),
            },
            Err(e) => (None, reply::error(e.code(), &e.to_string(), out)),
        };
        let said = self.bound_reply(said, out);
        Answer::Done { method, said }
    }

    /// Finishes a request [`Shared::answer_now`] left waiting; returns its method and what
    /// its reply said.
    pub(crate) async fn answer_later(
        &self,
        later: Later<'_>,
        peer: &Peer,
        out: &mut Vec<u8>,
    ) -> (Method, Said) {
        let method = later.method;
        let said = self.serve_later(later, peer, out).await;
        (method, self.bound_reply(said, out))
    }

    /// Replaces a reply above `limits.response_max_bytes` with an `INTERNAL` error; returns
    /// what the reply in `out` says (`said`, when it was within the limit).
    fn bound_reply(&self, said: Said, out: &mut Vec<u8>) -> Said {
        if out.len() <= self.config.limits.response_max_bytes {
            return said;
        }
        let refusal = HostRefusal::ReplyTooLarge {
            len: out.len(),
            limit: self.config.limits.response_max_bytes,
        };
        reply::refuse(&refusal, out)
    }

    /// Serves a request whose answer needs no waiting (the kernel's methods but
    /// `APPLY_POLICY`, `PING`, `STATUS`, `JOURNAL_TAIL`) and says what its reply said;
    /// returns the others, holding their in-flight slot. `now` is the core's time for the
    /// request.
    ///
    /// A request answered without waiting holds no slot (it would give it back before
    /// anything else ran on this thread): it is refused only when every slot is held.
    fn serve_now<'s>(
        &'s self,
        request: &Request<'_>,
        now: heidi_core::Instant,
        caller: &Caller,
        out: &mut Vec<u8>,
        kernel: &mut KernelLock<'_>,
    ) -> Result<Said, Box<Later<'s>>> {
        let peer = &caller.peer;
        if !caller.admitted.admits(request.method.class()) {
            let said = self.forbid(request.method, peer, out);
            self.audit_admin(request.method, peer, Outcome::Refused);
            return Ok(said);
        }
        if !self.inflight.has_room() {
            let said = reply::refuse(&HostRefusal::InflightFull, out);
            self.audit_admin(request.method, peer, Outcome::Refused);
            return Ok(said);
        }
        self.audit.call(request.method, peer);
        let work = match request.method.server() {
            Server::Host(HostCall::Ping) => {
                out.clear();
                out.extend_from_slice(&PONG);
                return Ok(Said::Success);
            }
            Server::Host(HostCall::Status) => return Ok(self.status_reply(kernel.get(), out)),
            Server::Host(HostCall::JournalTail) => {
                return Ok(self.journal_tail(request.params, out));
            }
            Server::Host(HostCall::JournalAppend) => Work::Append,
            Server::Host(HostCall::Pipeline) => Work::Pipeline,
            Server::Host(HostCall::ApplyPolicy) => Work::Policy,
            Server::Host(HostCall::GetPolicy) | Server::Service => {
                match self.kernel_step(kernel.get(), out, |k, out| {
                    k.handle_request(now, request, out)
                }) {
                    Step::Done(said) => return Ok(said),
                    Step::Wait(wait) => Work::Kernel(wait),
                }
            }
        };
        Err(Box::new(Later {
            method: request.method,
            params: request.params.into(),
            work,
            _permit: self.inflight.hold(),
        }))
    }

    /// The classes of methods `peer` may call (docs/DAEMON.md, "Authorization"). A socket
    /// peer is judged by its uid and gid; an HTTP caller passed the bearer token when one is
    /// configured (configuration refuses restrictions without one), else it has no
    /// credentials.
    pub(crate) fn admitted(&self, peer: &Peer) -> Admitted {
        let access = self.config.authorization.access();
        match peer {
            Peer::Http(_) => access.admitted_over_http(self.config.http_token.is_some()),
            _ => access.admitted(peer.credentials()),
        }
    }

    /// Audits an admin call (other methods are ignored) once its outcome is known: a line if
    /// it was carried out (within the audit's line rate), else a count.
    pub(crate) fn audit_admin(&self, method: Method, peer: &Peer, outcome: Outcome) {
        self.audit.admin(self.clock.now(), method, peer, outcome);
    }

    /// Answers a call `peer` may not make with `FORBIDDEN`, and counts it.
    fn forbid(&self, method: Method, peer: &Peer, out: &mut Vec<u8>) -> Said {
        self.metrics.forbidden(method.class());
        reply::refuse(&HostRefusal::Forbidden { peer, method }, out)
    }

    /// The waiting part of a request [`Shared::serve_now`] returned; says what its reply
    /// said.
    async fn serve_later(&self, later: Later<'_>, peer: &Peer, out: &mut Vec<u8>) -> Said {
        let Later {
            method,
            params,
            work,
            _permit,
        } = later;
        match work {
            Work::Append => self.journal_append(&params, out).await,
            Work::Pipeline => {
                let said = self.pipeline_call(method, &params, peer, out).await;
                let outcome = match said {
                    Said::Success => Outcome::CarriedOut,
                    Said::Error(_) => Outcome::Refused,
                };
                self.audit_admin(method, peer, outcome);
                said
            }
            Work::Policy => {
                let _policy_guard = self.policy_lock.lock().await;
                let now = self.clock.now();
                let step = |k: &mut Kernel, out: &mut Vec<u8>| k.handle(now, method, &params, out);
                let stepped = {
                    let mut kernel = self.kernel.lock().unwrap_or_else(|p| p.into_inner());
                    self.kernel_step(&mut kernel, out, step)
                };
                let (outcome, said) = match stepped {
                    Step::Done(said) => (Outcome::Refused, said),
                    Step::Wait(wait) => self.kernel_wait(wait, peer, out).await,
                };
                self.audit_admin(method, peer, outcome);
                said
            }
            Work::Kernel(wait) => self.kernel_wait(wait, peer, out).await.1,
        }
    }

    /// Does what the kernel asked for before the reply. Returns whether a policy change was
    /// carried out (journaled; [`Outcome::Refused`] for anything else) and what the reply in
    /// `out` says.
    async fn kernel_wait(
        &self,
        wait: KernelWait,
        peer: &Peer,
        out: &mut Vec<u8>,
    ) -> (Outcome, Said) {
        match wait {
            KernelWait::ApplyPolicy(mut pending) => {
                pending.entry.message = format!("{}{}", pending.entry.message, By(peer));
                self.apply_policy(pending, out).await
            }
            KernelWait::Idempotency(queued, said) => {
                let said = super::idempotency_file::finish(queued, said, out).await;
                (Outcome::Refused, said)
            }
        }
    }

    /// Hands a request to the kernel and journals the kernel's own events; returns what the
    /// kernel asks for beyond sending `out` ([`Step::Done`]: nothing). An idempotency record is
    /// queued before the kernel's lock is released, so records reach the file in the
    /// kernel's order.
    fn kernel_step(
        &self,
        kernel: &mut Kernel,
        out: &mut Vec<u8>,
        handle: impl FnOnce(&mut Kernel, &mut Vec<u8>) -> Handled,
    ) -> Step {
        let handled = handle(kernel, out);
        self.journal_kernel_events(kernel);
        match handled {
            Handled::Reply(said) => Step::Done(said),
            Handled::Decided(decided) => Step::Done(Said::from(&decided)),
            Handled::Idempotency(persist, said) => Step::Wait(KernelWait::Idempotency(
                super::idempotency_file::submit(&self.idempotency, self.clock, persist),
                said,
            )),
            Handled::NotKernel => Step::Done(reply::refuse(&HostRefusal::NoHandler, out)),
            Handled::ApplyPolicy(pending) => Step::Wait(KernelWait::ApplyPolicy(pending)),
        }
    }

    /// Stages a validated policy change in `policy.next.json`, journals it, commits it, then
    /// makes it `policy.json`. If the file cannot be written or the journal refuses the
    /// entry, nothing is applied and the caller is told why. Returns
    /// [`Outcome::CarriedOut`] once the change is journaled (then it is in force from the next
    /// start even if committing it here fails), and what the reply in `out` says.
    async fn apply_policy(
        &self,
        pending: Box<PendingPolicy>,
        out: &mut Vec<u8>,
    ) -> (Outcome, Said) {
        let (version, policy) = (pending.version(), pending.policy().clone());
        if let Err(e) = self.policy_files.stage(version, &policy).await {
            tracing::error!("{e}");
            let refused = reply::refuse(&HostRefusal::PolicyNotApplied(&e), out);
            return (Outcome::Refused, refused);
        }
        if let Err(e) = self.journal.append(pending.entry.clone()).await {
            self.policy_files.discard().await;
            let refused = match e {
                AppendError::Overloaded => reply::refuse(&HostRefusal::PolicyQueueFull, out),
                e => {
                    let why = format!("cannot journal the change: {e}");
                    reply::refuse(&HostRefusal::PolicyNotApplied(&why), out)
                }
            };
            return (Outcome::Refused, refused);
        }
        let committed = {
            let mut kernel = self.kernel.lock().unwrap_or_else(|p| p.into_inner());
            kernel.commit_policy(self.clock.now(), *pending)
        };
        // Journaled: the journal says this is the policy in force from now on, so it is
        // what the next start loads, committed here or not.
        self.policy_files.promote(version, &policy).await;
        let said = match committed {
            Ok(_) => Said::Success,
            Err(e) => {
                tracing::error!(error = %e, "a journaled policy change could not be committed");
                reply::refuse(&HostRefusal::Failed(&e), out)
            }
        };
        (Outcome::CarriedOut, said)
    }

    /// Journals the kernel's own events (breaker transitions) in the background: nobody
    /// waits for their acknowledgement, and a failure is logged.
    pub fn journal_kernel_events(&self, kernel: &mut Kernel) {
        let Some(entry) = kernel.poll_journal() else {
            return;
        };
        let mut tasks = self.event_tasks.lock().unwrap_or_else(|p| p.into_inner());
        while tasks.try_join_next().is_some() {}
        let mut entries = vec![entry];
        entries.extend(std::iter::from_fn(|| kernel.poll_journal()));
        let journal = self.journal.clone();
        // One task per batch keeps the events in order.
        tasks.spawn(async move {
            for entry in entries {
                if let Err(e) = journal.append(entry).await {
                    tracing::error!(error = %e, "cannot journal a kernel event");
                }
            }
        });
    }

    /// Waits until every kernel event handed to the journal is written (at shutdown, before
    /// the last event and the final seal).
    pub async fn finish_kernel_events(&self) {
        let mut tasks =
            std::mem::take(&mut *self.event_tasks.lock().unwrap_or_else(|p| p.into_inner()));
        while tasks.join_next().await.is_some() {}
    }

    async fn journal_append(&self, params: &str, out: &mut Vec<u8>) -> Said {
        match parse_journal_append(params) {
            Ok(entry) => append_reply(self.journal.append(entry).await, out),
            Err((code, message)) => reply::error(code, &message, out),
        }
    }

    /// `{"ok":true,"events":[…]}` with the newest lines that fit the reply limit, oldest first.
    fn journal_tail(&self, params: &str, out: &mut Vec<u8>) -> Said {
        let lines = match heidi_core::service::read_journal_tail(params) {
            Ok(n) => usize::from(n),
            Err(e) => return reply::error(ErrorCode::BadRequest, &e.to_string(), out),
        };
        let tail = self.journal.tail(lines);
        let max = self.config.limits.response_max_bytes;
        reply::written(out, |w| {
            heidi_core::service::write_tail_reply(&tail, max, w)
        })
    }

    /// Replaces `out` with the `STATUS` reply (the core writes it).
    fn status_reply(&self, kernel: &Kernel, out: &mut Vec<u8>) -> Said {
        let policy_version = kernel.policy_version();
        let pipeline = self.pipeline.status();
        let status = service::StatusReply {
            daemon: self.daemon_status(),
            connections: self.connections.open(),
            policy_version,
            journal_run_id: self.journal.run_id(),
            journal_lines: self.journal.lines(),
            pipeline: pipeline.text(),
        };
        reply::written(out, |w| service::write_status_reply(&status, w))
    }

    /// The fields the `status` line command and `STATUS` share.
    pub fn daemon_status(&self) -> DaemonStatus<'static> {
        let (rss_kb, threads) = procinfo::rss_and_threads();
        DaemonStatus {
            protocol_version: PROTOCOL_VERSION,
            version: VERSION,
            pid: std::process::id(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            rss_kb,
            threads,
            queue_depth: self.queue_depth(),
        }
    }

    /// The pipeline status (`STATUS`, `GET /api/v1/status`): state, round, mode, run id,
    /// the current stage and its start, the last error.
    pub fn pipeline_status(&self) -> crate::pipeline::StatusDoc {
        self.pipeline.status()
    }

    /// Requests being served right now.
    pub fn queue_depth(&self) -> u32 {
        self.inflight.current()
    }
}

/// The `JOURNAL_APPEND` reply for the journal's answer.
pub(crate) fn append_reply(answer: Result<Appended, AppendError>, out: &mut Vec<u8>) -> Said {
    match answer {
        Ok(done) => reply::written(out, |w| {
            heidi_core::service::write_appended_reply(done.line, &done.hash, w)
        }),
        Err(AppendError::Invalid(message)) => reply::error(ErrorCode::BadRequest, &message, out),
        Err(AppendError::Overloaded) => reply::refuse(&HostRefusal::QueueFull(Queue::Journal), out),
        Err(e) => reply::refuse(&HostRefusal::Failed(&e), out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{KernelCapacity, KernelSeeds, Policy};
    use serde_json::json;

    /// The lock is taken at the first request, held for [`KERNEL_HOLD_REQUESTS`] of them,
    /// let go and taken again for the next, and let go when the hold is dropped.
    #[test]
    fn the_kernel_lock_is_let_go_every_hold_and_at_the_end() {
        let seeds = KernelSeeds {
            key_hasher: [1; 16],
            lease_ids: [2; 16],
            idempotency_tokens: [3; 16],
        };
        let small = KernelCapacity {
            limiter_slots: 8,
            lease_slots: 8,
            idempotency_slots: 8,
            held_permits: 8,
        };
        let mutex = Mutex::new(Kernel::with_capacity(seeds, Policy::default(), small));
        let mut lock = KernelLock::new(&mutex);
        assert!(
            mutex.try_lock().is_ok(),
            "nothing is locked before a request needs it"
        );
        for _ in 0..KERNEL_HOLD_REQUESTS {
            lock.get();
        }
        assert!(mutex.try_lock().is_err(), "held for the whole hold");
        assert_eq!(lock.uses, KERNEL_HOLD_REQUESTS);
        lock.get();
        assert_eq!(lock.uses, 1, "the next request begins a new hold");
        assert!(lock.guard.is_some());
        drop(lock);
        assert!(mutex.try_lock().is_ok(), "let go with the hold");
    }

    /// The core's `STATUS` reply is what `serde_json` writes for the same fields.
    #[test]
    fn status_reply_is_the_bytes_serde_would_write() {
        let pipeline = json!({"state": "IDLE", "last_error": null, "round": 1});
        let text = pipeline.to_string();
        let status = service::StatusReply {
            daemon: heidi_core::proto::DaemonStatus {
                protocol_version: 1,
                version: "0.1.0-\"dev\"",
                pid: 42,
                uptime_ms: u64::MAX,
                rss_kb: 9000,
                threads: 7,
                queue_depth: 3,
            },
            connections: 12,
            policy_version: 5,
            journal_run_id: "run-\u{1}x",
            journal_lines: 1234,
            pipeline: &text,
        };
        let mut core = Vec::new();
        let said = reply::written(&mut core, |w| service::write_status_reply(&status, w));
        assert_eq!(said, Said::Success);
        let d = status.daemon;
        let by_serde = json!({
            "ok": true,
            "protocol_version": d.protocol_version,
            "version": d.version,
            "pid": d.pid,
            "uptime_ms": d.uptime_ms,
            "rss_kb": d.rss_kb,
            "threads": d.threads,
            "queue_depth": d.queue_depth,
            "connections": status.connections,
            "policy_version": status.policy_version,
            "journal": {"run_id": status.journal_run_id, "lines": status.journal_lines},
            "pipeline": pipeline,
        });
        assert_eq!(String::from_utf8(core).unwrap(), by_serde.to_string());
    }

    #[test]
    fn pong_is_the_json_reply() {
        let expected = json!({"ok": true, "pong": true, "version": VERSION});
        assert_eq!(*PONG, serde_json::to_vec(&expected).unwrap());
    }

    #[test]
    fn only_socket_peers_with_reported_credentials_have_credentials() {
        let unix = |uid, gid| Peer::Unix {
            uid,
            gid,
            pid: None,
        };
        assert_eq!(
            unix(5, 6).credentials(),
            Some(Credentials { uid: 5, gid: 6 })
        );
        // What `unix.rs` records when the kernel reports no credentials.
        assert_eq!(unix(u32::MAX, u32::MAX).credentials(), None);
        assert_eq!(
            Peer::Http("127.0.0.1:1".parse().unwrap()).credentials(),
            None
        );
    }
}
