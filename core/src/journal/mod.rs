//! The event journal: line encoding, hash chain, redaction, streaming verification and seals;
//! and the keyed policy files checked against it ([`PolicyTag`], [`check_policy_file`]).
//!
//! The formats are specified in `docs/JOURNAL.md`. A host writes what
//! [`ChainWriter::append`] returns to `events.jsonl`, and from time to time what
//! [`Seal::encode`] returns (for [`ChainWriter::seal`]) to `events.seals`. To check a run it
//! feeds `events.seals` to a [`SealCheck`], then `events.jsonl` to [`SealCheck::verifier`],
//! and hands the result to [`SealCheck::check`]. After a crash it resumes the chain from
//! [`Verifier::verified`] with [`ChainWriter::resume`].
//!
//! ```
//! use heidi_core::WallTime;
//! use heidi_core::journal::{
//!     ChainWriter, Event, SealCheck, SealKey, MAX_LINE_BYTES, SEAL_MAX_BYTES,
//! };
//!
//! let key = SealKey::new(b"host secret of 32+ bytes, kept outside the journal").unwrap();
//! let mut chain = ChainWriter::new("run-7").unwrap();
//! let (mut journal, mut seals) = ([0u8; 4096], [0u8; SEAL_MAX_BYTES]);
//! let mut line = [0u8; MAX_LINE_BYTES];
//! let mut len = 0;
//! for n in 0..3 {
//!     let e = Event::info(WallTime::from_unix_millis(n), 1, "pipeline", "tick", "hello");
//!     let bytes = chain.append(&e, &mut line).unwrap();
//!     journal[len..len + bytes.len()].copy_from_slice(bytes);
//!     len += bytes.len();
//! }
//! let n = chain.seal(&key).unwrap().encode(&mut seals).unwrap();
//!
//! let mut check = SealCheck::new(&key);
//! check.add_record(&seals[..n]).unwrap();
//! let mut verifier = check.verifier();
//! verifier.feed(&journal[..len]).unwrap();
//! let report = check.check(&verifier.finish().unwrap()).unwrap();
//! assert_eq!((report.sealed_lines, report.unsealed_lines), (3, 0));
//! ```

mod anchor;
mod chain;
mod daemon_event;
mod event;
mod excerpt;
mod hash;
mod line;
mod open_rule;
mod policy_event;
mod policy_seal;
mod policy_start;
mod recovery_event;
pub mod redact;
mod run_choice;
mod scan;
mod seal;
mod seal_check;
mod segment_chain;
mod segments_deleted;
mod upkeep;
mod verify;

pub use anchor::{ANCHOR_MAX_BYTES, ANCHOR_VERSION, Anchor, AnchorCheck, AnchorFault};
pub use chain::{BadRunId, ChainWriter, RUN_ID_MAX_BYTES, is_valid_run_id};
pub use daemon_event::{
    By, DAEMON_STAGE, DAEMON_STARTED, DAEMON_STOPPED, PIPELINE_CONTROL, PipelineControl, Started,
    Stopped,
};
pub use event::{
    ARTIFACT_PATH_MAX_BYTES, ARTIFACT_PATHS_MAX, DELTA_MAX_ENTRIES, Event, Level, NAME_MAX_BYTES,
    is_valid_name,
};
pub use excerpt::{Excerpt, OUTPUT_EXCERPT_CHARS, OUTPUT_EXCERPT_MAX_BYTES, OUTPUT_LINE_CHARS};
pub use hash::{HexHash, LineHash};
pub use line::{EVENT_VERSION, EncodeError, MAX_LINE_BYTES, NameField, encode_line};
pub use open_rule::{OpenRefusal, seals_at_open, tolerated_at_open};
pub use policy_event::{
    FROM_CONFIGURATION, POLICY_APPLIED, POLICY_LOADED, POLICY_RETAINED, POLICY_STAGE, PolicyEvents,
    PolicyMessage,
};
pub use policy_seal::{
    FileTag, JournaledPolicy, POLICY_TAG_LABEL, PolicyFileFault, PolicyFileOk, PolicyMark,
    PolicyTag, check_missing_policy_file, check_policy_file,
};
pub use policy_start::{FoundPolicyFile, MainLoad, StartPlan, plan_policy_start};
pub use recovery_event::{RecoveryEvent, RecoveryFacts};
pub use run_choice::{GeneratedRunId, RunIdChoice, RunIdRefusal, choose_run_id};
pub use seal::{
    BadSeal, SEAL_KEY_MIN_BYTES, SEAL_MAX_BYTES, SEAL_VERSION, Seal, SealKey, WeakSealKey,
};
pub use seal_check::{SealCheck, SealFault, SealReport, UNSEALED_LINES_MAX};
pub use segment_chain::{SegmentChain, SegmentFault};
pub use segments_deleted::{
    JOURNAL_STAGE, SEGMENTS_DELETED, SegmentName, SegmentSealsName, SegmentsDeleted,
};
pub use upkeep::{Retention, Rotation, SealRule};
pub use verify::{Fault, FaultKind, Verified, Verifier};
