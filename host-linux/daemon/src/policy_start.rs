//! The policy in force at start: the configuration's `[policy]`, or the policy file that the
//! journal's last policy event names (`docs/DAEMON.md`, *Policy file*).
//!
//! The journal is the authority: its last `policy_applied` or `policy_loaded` event (stage
//! `kernel`, which clients cannot journal) names a version and a digest, and only a keyed
//! file holding exactly that policy is loaded ([`check_policy_file`]). `APPLY_POLICY` writes
//! `policy.next.json`, journals, then replaces `policy.json`, so a crash leaves either
//! `policy.json` matching the journal (the change never journaled: `policy.next.json` is
//! discarded) or `policy.next.json` matching it (journaled but not yet moved: it is
//! promoted). Neither needs the operator.

use std::io::{BufRead, BufReader};
use std::path::Path;

use heidi_core::journal::{
    FROM_CONFIGURATION, FoundPolicyFile, JournaledPolicy, Level, MainLoad, POLICY_LOADED,
    POLICY_RETAINED, POLICY_STAGE, PolicyEvents, PolicyMark, PolicyMessage, StartPlan,
    plan_policy_start,
};

use super::policy_file::{POLICY_FILE, POLICY_NEXT_FILE, PolicyFile, PolicyFiles, read};
use crate::kernel::Policy;
use heidi_common::JournalEntry;

/// The journal's policy event in force, if any; `sealed` when a seal found at open
/// (`sealed_lines`) covers its line. Rotated segments beside `journal` are read first, in
/// order (docs/JOURNAL.md, "Segments"); line numbers continue across them.
///
/// The event in force is the last `policy_applied` or `policy_loaded` event; only when
/// retention deleted every one of them, the last `policy_retained` mark, which retention
/// journals in their place ([`retained_policy`]). A retained mark is never newer than an
/// applied or loaded event still in the journal: it names what the deleted (older) lines
/// held.
pub(crate) fn last_journaled(
    journal: &Path,
    sealed_lines: u64,
) -> Result<Option<JournaledPolicy>, String> {
    let dir = journal.parent().unwrap_or(Path::new("."));
    let rotated = heidi_store::list_segments(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let files = heidi_store::journal_files(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut number = files.first().map_or(0, |(_, before)| *before);
    let mut events = PolicyEvents::default();
    for seq in rotated {
        let path = dir.join(heidi_store::segment_file(seq));
        events_in_file(&path, sealed_lines, &mut number, &mut events)?;
    }
    events_in_file(journal, sealed_lines, &mut number, &mut events)?;
    Ok(events.in_force())
}

/// What retention journals in place of the segment `files` it deletes: a `policy_retained`
/// mark naming the policy event in force at the end of those files, if they hold one
/// (the [`CarryHook`](heidi_store::CarryHook) of `heidid`'s journal).
pub(crate) fn retained_policy(files: &[std::path::PathBuf]) -> std::io::Result<Vec<JournalEntry>> {
    let mut events = PolicyEvents::default();
    let mut number = 0;
    for file in files {
        events_in_file(file, u64::MAX, &mut number, &mut events).map_err(std::io::Error::other)?;
    }
    Ok(events
        .in_force()
        .map(|p| {
            let what = if p.from_configuration {
                FROM_CONFIGURATION
            } else {
                "in force"
            };
            let message = PolicyMessage { mark: p.mark, what };
            let message = format!("{message}; retained by journal retention");
            JournalEntry::info(POLICY_STAGE, POLICY_RETAINED, message)
        })
        .into_iter()
        .collect())
}

/// Feeds the lines of one file whose first line is line `number + 1` to `events`.
fn events_in_file(
    journal: &Path,
    sealed_lines: u64,
    number: &mut u64,
    events: &mut PolicyEvents,
) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Line<'a> {
        stage: &'a str,
        event_type: &'a str,
        #[serde(borrow)]
        message: std::borrow::Cow<'a, str>,
    }
    let file = match std::fs::File::open(journal) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{}: {e}", journal.display())),
    };
    let mut reader = BufReader::new(file);
    let mut buf = String::new();
    loop {
        buf.clear();
        let n = reader
            .read_line(&mut buf)
            .map_err(|e| format!("{}: {e}", journal.display()))?;
        if n == 0 || !buf.ends_with('\n') {
            return Ok(());
        }
        *number += 1;
        if !buf.contains("\"event_type\":\"policy_") {
            continue;
        }
        let line: Line<'_> = serde_json::from_str(buf.trim_end())
            .map_err(|e| format!("{} line {number}: {e}", journal.display()))?;
        events.observe(
            *number,
            line.stage,
            line.event_type,
            &line.message,
            sealed_lines,
        );
    }
}

/// The policy to start with, and what start-up writes before serving.
#[derive(Debug)]
pub(crate) struct StartPolicy {
    /// The policy.
    pub(crate) policy: Policy,
    /// Its version.
    pub(crate) version: u64,
    /// The `policy_loaded` event, journaled once the files are written.
    pub(crate) entry: JournalEntry,
    /// Rewrite `policy.json`, keyed, with this policy and version.
    write_main: bool,
    /// Remove `policy.next.json`.
    remove_next: bool,
}

impl StartPolicy {
    /// Writes what the decision asks for, before its event is journaled: a crash in between
    /// leaves files that the journal's previous events still explain (or, for an accepted
    /// file, that are refused again).
    pub(crate) fn write_files(&self, files: &PolicyFiles) -> Result<(), String> {
        if self.write_main {
            files.write_main_now(self.version, &self.policy)?;
        }
        if self.remove_next {
            match std::fs::remove_file(files.dir().join(POLICY_NEXT_FILE)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot remove {POLICY_NEXT_FILE}: {e}")),
            }
        }
        Ok(())
    }
}

/// Decides the policy to start with. `Err` is the refusal, naming the file and the reason.
pub(crate) fn decide(
    files: &PolicyFiles,
    journal: Option<JournaledPolicy>,
    configured: Policy,
    accept: bool,
) -> Result<StartPolicy, String> {
    let next_path = files.dir().join(POLICY_NEXT_FILE);
    let next = read(&next_path).unwrap_or_else(|e| {
        tracing::warn!("{e}; discarding it");
        None
    });
    let remove_next = next.is_some() || next_path.exists();
    let path = files.dir().join(POLICY_FILE);
    let refuse = |why: String| {
        format!(
            "{}: {why}; refusing to start. Delete it to start with the configured policy, or \
             start once with --accept-policy-file to load it (journaled)",
            path.display()
        )
    };
    let found = |file: &PolicyFile| FoundPolicyFile {
        mark: file.mark(),
        tag: file.tag(files.key(), files.run_id()),
    };
    // An unreadable policy.json refuses the start, unless policy.next.json is promoted.
    let main_read = read(&path);
    let plan = plan_policy_start(
        next.as_ref().map(found),
        main_read.as_ref().ok().and_then(Option::as_ref).map(found),
        journal,
        accept,
    );
    let main = match plan {
        StartPlan::PromoteNext => None,
        _ => main_read.map_err(refuse)?,
    };
    if let Some(next) = &next {
        if plan != StartPlan::PromoteNext {
            tracing::warn!(
                version = next.version,
                "discarding {POLICY_NEXT_FILE}: its change was never journaled (a crash, or a \
                 journal that refused it), so it never took effect"
            );
        }
    }
    let what = format!("loaded from {POLICY_FILE}");
    match (plan, next, main) {
        (StartPlan::PromoteNext, Some(next), _) => {
            let what = format!("loaded from {POLICY_NEXT_FILE}");
            let note = format!("journaled before a crash, not yet moved: it is now {POLICY_FILE}");
            Ok(loaded(next, &what, Some(&note), Level::Info, true, true))
        }
        (StartPlan::LoadMain(how), _, Some(file)) => Ok(match how {
            MainLoad::Journaled => loaded(file, &what, None, Level::Info, false, remove_next),
            MainLoad::SealedUnkeyed => {
                let note =
                    "written unkeyed by an older heidid; the sealed journal names it; now keyed";
                loaded(file, &what, Some(note), Level::Info, true, remove_next)
            }
            MainLoad::Accepted(fault) => {
                let note = format!("accepted by --accept-policy-file although {fault}");
                tracing::warn!("{}: {note}", path.display());
                loaded(file, &what, Some(&note), Level::Warning, true, remove_next)
            }
        }),
        (StartPlan::Configured { accepted }, _, _) => {
            let note = accepted.map(|fault| {
                let note = format!("accepted by --accept-policy-file although {fault}");
                tracing::warn!("{}: {note}", path.display());
                note
            });
            Ok(configured_policy(
                configured,
                journal,
                note.as_deref(),
                remove_next,
            ))
        }
        (StartPlan::RefuseMain(fault), _, _) => Err(refuse(fault.to_string())),
        (StartPlan::RefuseMissing(fault), _, _) => Err(format!(
            "{}: {fault}; refusing to start. Restore it, or start once with \
             --accept-policy-file to start with the configured policy (journaled)",
            path.display()
        )),
        (plan, _, _) => Err(format!("{plan:?} without its file (a bug)")),
    }
}

fn loaded(
    file: PolicyFile,
    what: &str,
    note: Option<&str>,
    level: Level,
    write_main: bool,
    remove_next: bool,
) -> StartPolicy {
    let mut message = file.policy.event_message(file.version, what);
    if let Some(note) = note {
        message = format!("{message}; {note}");
    }
    let mut entry = JournalEntry::info(POLICY_STAGE, POLICY_LOADED, message);
    entry.level = level;
    StartPolicy {
        policy: file.policy,
        version: file.version,
        entry,
        write_main,
        remove_next,
    }
}

/// No `policy.json`: the configured policy at version 1 (a warning when the journal's last
/// policy event named another).
/// The configuration's policy at version 1, with no policy file: `accepted` notes a refusal
/// overridden by `--accept-policy-file` (a `warning`).
fn configured_policy(
    configured: Policy,
    journal: Option<JournaledPolicy>,
    accepted: Option<&str>,
    remove_next: bool,
) -> StartPolicy {
    let mark = PolicyMark {
        version: 1,
        digest: configured.digest(),
    };
    let mut message = configured.event_message(1, FROM_CONFIGURATION);
    let mut level = Level::Info;
    if let Some(note) = accepted {
        level = Level::Warning;
        message = format!("{message}; {note}");
    } else if journal.is_some_and(|j| j.mark != mark) {
        message = format!("{message}; the configuration's policy changed since the last start");
    }
    let mut entry = JournalEntry::info(POLICY_STAGE, POLICY_LOADED, message);
    entry.level = level;
    StartPolicy {
        policy: configured,
        version: 1,
        entry,
        write_main: false,
        remove_next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heidi_core::journal::SealKey;
    use heidi_store::{Journal, JournalConfig, load_key};
    use std::path::PathBuf;

    /// An `OUT_DIR` with a journal (opened, so the key exists) and its policy files.
    struct Dir {
        _tmp: tempfile::TempDir,
        config: JournalConfig,
        files: PolicyFiles,
    }

    impl Dir {
        fn new() -> Dir {
            let tmp = tempfile::tempdir().unwrap();
            let mut config =
                JournalConfig::new(tmp.path().join("out"), tmp.path().join("keys/seal.key"));
            config.run_id = Some("run-1".into());
            let (journal, _) = Journal::open(config.clone()).unwrap();
            journal
                .append_blocking(JournalEntry::info("daemon", "daemon_started", "test"))
                .unwrap();
            journal.close().unwrap();
            let key = load_key(&config.key_path).unwrap();
            let files = PolicyFiles::new(config.dir.clone(), key, "run-1".into());
            Dir {
                _tmp: tmp,
                config,
                files,
            }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.config.dir.join(name)
        }

        /// Appends `entries`, sealed when `seal`; otherwise they are left after the last
        /// seal, as a kill -9 before the next seal would (the seals written, and the anchor
        /// that follows them, are dropped).
        fn journal(&self, entries: &[JournalEntry], seal: bool) {
            let (journal, report) = Journal::open(self.config.clone()).unwrap();
            let kept = (!seal).then(|| {
                let seals = std::fs::read(self.path("events.seals")).unwrap();
                (seals, std::fs::read(&report.anchor).ok())
            });
            for e in entries {
                journal.append_blocking(e.clone()).unwrap();
            }
            journal.close().unwrap();
            if let Some((seals, anchor)) = kept {
                std::fs::write(self.path("events.seals"), seals).unwrap();
                match anchor {
                    Some(bytes) => std::fs::write(&report.anchor, bytes).unwrap(),
                    None => std::fs::remove_file(&report.anchor).unwrap(),
                }
            }
        }

        /// What the next start sees: the journal's last policy event, sealed or not.
        fn last(&self) -> Option<JournaledPolicy> {
            let (journal, report) = Journal::open(self.config.clone()).unwrap();
            journal.close().unwrap();
            last_journaled(&self.path("events.jsonl"), report.sealed_lines).unwrap()
        }

        fn decide(&self, accept: bool) -> Result<StartPolicy, String> {
            self.decide_with(Policy::default(), accept)
        }

        fn decide_with(&self, configured: Policy, accept: bool) -> Result<StartPolicy, String> {
            decide(&self.files, self.last(), configured, accept)
        }

        fn write(&self, name: &'static str, version: u64, policy: &Policy) {
            let bytes =
                super::super::policy_file::encode(self.files.key(), "run-1", version, policy);
            std::fs::write(self.path(name), bytes).unwrap();
        }
    }

    fn applied(version: u64, policy: &Policy) -> JournalEntry {
        let message = policy.event_message(version, "applied");
        JournalEntry::info("kernel", "policy_applied", format!("{message} (by test)"))
    }

    fn policy(capacity: u64) -> Policy {
        let doc = serde_json::json!({"limits": {"search": {"capacity_tokens": capacity, "window_ms": 1000}}});
        Policy::from_json(&doc).unwrap()
    }

    /// Retention deletes every segment that holds a policy event: the `policy_retained`
    /// mark it journals in their place keeps the policy in force named (without it the
    /// journal names none, and the next start refuses the policy file); a later
    /// `policy_applied` wins over the mark, and the mark is carried again by the next
    /// retention.
    #[test]
    fn retention_keeps_the_policy_in_force_named() {
        let filler =
            |n: usize| (0..n).map(|i| JournalEntry::info("daemon", "filler", format!("line {i}")));
        let entries: Vec<_> = std::iter::once(applied(2, &policy(7)))
            .chain(filler(60))
            .collect();
        let small = |d: &mut Dir| {
            d.config.segment_max_bytes = 1024;
            d.config.retain_segments = Some(1);
        };
        let mut forgetful = Dir::new();
        small(&mut forgetful);
        forgetful.journal(&entries, true);
        assert_eq!(forgetful.last(), None, "the segments were deleted");

        let mut d = Dir::new();
        small(&mut d);
        d.config.carry = Some(std::sync::Arc::new(retained_policy));
        d.journal(&entries, true);
        let last = d.last().expect("named by the retained mark");
        assert_eq!(last.mark.version, 2);
        assert_eq!(last.mark.digest, policy(7).digest());
        assert!(last.sealed);
        d.write(POLICY_FILE, 2, &policy(7));
        assert_eq!(d.decide(false).unwrap().version, 2);

        let later: Vec<_> = std::iter::once(applied(3, &policy(8)))
            .chain(filler(3))
            .collect();
        d.journal(&later, true);
        assert_eq!(
            d.last().unwrap().mark.version,
            3,
            "applied wins over retained"
        );
        d.journal(&filler(100).collect::<Vec<_>>(), true);
        assert_eq!(d.last().unwrap().mark.version, 3, "carried again");
    }

    #[test]
    fn no_file_is_the_configured_policy_at_version_1() {
        let d = Dir::new();
        let start = d.decide(false).unwrap();
        assert_eq!((start.version, &start.policy), (1, &Policy::default()));
        assert_eq!(start.entry.event_type, "policy_loaded");
        assert_eq!(start.entry.level, Level::Info);
        assert_eq!(
            PolicyMessage::parse(&start.entry.message),
            Some(PolicyMark {
                version: 1,
                digest: Policy::default().digest()
            })
        );
        // The configuration's policy, journaled: still no file needed, also after the
        // configuration changed (and after retention carried the event forward).
        d.journal(std::slice::from_ref(&start.entry), true);
        let changed = d.decide_with(policy(9), false).unwrap();
        assert_eq!((changed.version, changed.entry.level), (1, Level::Info));
        assert!(
            changed.entry.message.contains("changed"),
            "{}",
            changed.entry.message
        );
        let carried = retained_policy(&[d.path("events.jsonl")]).unwrap();
        assert!(carried[0].message.contains("loaded from the configuration"));
        d.journal(&carried, true);
        assert!(d.last().unwrap().from_configuration);
        assert!(d.decide(false).is_ok());
    }

    /// policy.json deleted after an APPLY_POLICY: a rollback to the configured policy, refused
    /// unless accepted (then journaled as a warning); a retained mark keeps it refused.
    #[test]
    fn a_deleted_file_is_refused_until_accepted() {
        let d = Dir::new();
        d.journal(&[applied(2, &policy(7))], true);
        let e = d.decide(false).unwrap_err();
        assert!(
            e.contains("policy.json") && e.contains("missing") && e.contains("version 2"),
            "{e}"
        );
        let carried = retained_policy(&[d.path("events.jsonl")]).unwrap();
        d.journal(&carried, true);
        assert!(!d.last().unwrap().from_configuration);
        assert!(d.decide(false).is_err());
        let start = d.decide(true).unwrap();
        assert_eq!((start.version, start.entry.level), (1, Level::Warning));
        assert!(
            start
                .entry
                .message
                .contains("accepted by --accept-policy-file"),
            "{}",
            start.entry.message
        );
        // Accepted once: the configuration's policy is in force, so the next start needs no
        // flag.
        d.journal(std::slice::from_ref(&start.entry), true);
        assert!(d.last().unwrap().from_configuration);
        assert!(d.decide(false).is_ok());
    }

    #[test]
    fn a_keyed_file_the_journal_names_last_is_loaded() {
        let d = Dir::new();
        d.journal(&[applied(2, &policy(7))], false);
        d.write(POLICY_FILE, 2, &policy(7));
        // Unsealed tail or not: the MAC vouches for the file.
        let start = d.decide(false).unwrap();
        assert_eq!((start.version, &start.policy), (2, &policy(7)));
        assert_eq!(start.entry.level, Level::Info);
        assert!(!start.write_main && !start.remove_next);
        // The policy_loaded event it journals is the journal's last policy event from then on.
        d.journal(&[start.entry], true);
        assert_eq!(d.decide(false).unwrap().version, 2);
    }

    #[test]
    fn a_forged_or_rolled_back_file_is_refused_unless_accepted() {
        let d = Dir::new();
        d.journal(&[applied(2, &policy(7)), applied(3, &policy(8))], true);
        // Forged: a capacity of 4e9 with a correct plain sha256 and no (or a copied) MAC.
        let forged = policy(4_000_000_000);
        let file = serde_json::json!({"version": 3, "sha256": forged.digest_hex(), "policy": forged.to_json()});
        std::fs::write(d.path(POLICY_FILE), file.to_string()).unwrap();
        let e = d.decide(false).unwrap_err();
        assert!(
            e.contains("policy.json") && e.contains("no MAC") && e.contains("--accept-policy-file"),
            "{e}"
        );
        d.write(POLICY_FILE, 3, &policy(8));
        let mut keyed: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.path(POLICY_FILE)).unwrap()).unwrap();
        keyed["policy"] = forged.to_json();
        keyed["sha256"] = forged.digest_hex().into();
        std::fs::write(d.path(POLICY_FILE), keyed.to_string()).unwrap();
        let e = d.decide(false).unwrap_err();
        assert!(e.contains("MAC is wrong"), "{e}");
        // A genuine older file (a rollback) is not the journal's last policy.
        d.write(POLICY_FILE, 2, &policy(7));
        let e = d.decide(false).unwrap_err();
        assert!(e.contains("version 2") && e.contains("version 3"), "{e}");
        // Accepted: loaded, journaled as a warning, and the file keyed.
        std::fs::write(d.path(POLICY_FILE), keyed.to_string()).unwrap();
        let start = d.decide(true).unwrap();
        assert_eq!((start.version, &start.policy), (3, &forged));
        assert_eq!(start.entry.level, Level::Warning);
        assert!(
            start
                .entry
                .message
                .contains("accepted by --accept-policy-file")
        );
        start.write_files(&d.files).unwrap();
        d.journal(&[start.entry], true);
        // From then on it is the journal's last policy, keyed: no flag needed.
        assert_eq!(d.decide(false).unwrap().policy, forged);
    }

    #[test]
    fn a_file_of_another_run_or_key_is_refused() {
        let d = Dir::new();
        d.journal(&[applied(2, &policy(7))], true);
        let other = SealKey::new(b"another key of at least thirty-two bytes").unwrap();
        let bytes = super::super::policy_file::encode(&other, "run-1", 2, &policy(7));
        std::fs::write(d.path(POLICY_FILE), bytes).unwrap();
        assert!(d.decide(false).unwrap_err().contains("MAC is wrong"));
        let bytes = super::super::policy_file::encode(d.files.key(), "run-2", 2, &policy(7));
        std::fs::write(d.path(POLICY_FILE), bytes).unwrap();
        assert!(d.decide(false).unwrap_err().contains("MAC is wrong"));
        // A new journal (no policy event) with a left-over keyed file.
        let fresh = Dir::new();
        fresh.write(POLICY_FILE, 2, &policy(7));
        assert!(fresh.decide(false).unwrap_err().contains("names no policy"));
    }

    #[test]
    fn a_crash_after_staging_but_before_journaling_discards_the_staged_file() {
        let d = Dir::new();
        d.journal(&[applied(2, &policy(7))], true);
        d.write(POLICY_FILE, 2, &policy(7));
        // APPLY_POLICY of version 3 wrote policy.next.json, then the daemon died before its
        // policy_applied event was durable: the change never took effect.
        d.write(POLICY_NEXT_FILE, 3, &policy(8));
        let start = d.decide(false).unwrap();
        assert_eq!((start.version, &start.policy), (2, &policy(7)));
        assert!(start.remove_next && !start.write_main);
        start.write_files(&d.files).unwrap();
        assert!(!d.path(POLICY_NEXT_FILE).exists());
        assert!(d.path(POLICY_FILE).exists());
    }

    #[test]
    fn a_crash_after_journaling_but_before_the_move_promotes_the_staged_file() {
        let d = Dir::new();
        d.write(POLICY_FILE, 2, &policy(7));
        d.write(POLICY_NEXT_FILE, 3, &policy(8));
        // policy_applied of version 3 is durable (unsealed: the daemon died).
        d.journal(&[applied(2, &policy(7)), applied(3, &policy(8))], false);
        let start = d.decide(false).unwrap();
        assert_eq!((start.version, &start.policy), (3, &policy(8)));
        assert!(start.write_main && start.remove_next);
        assert!(start.entry.message.contains(POLICY_NEXT_FILE));
        start.write_files(&d.files).unwrap();
        assert!(!d.path(POLICY_NEXT_FILE).exists());
        // A crash right after the move: policy.json now matches the journal.
        assert_eq!(d.decide(false).unwrap().version, 3);
    }

    #[test]
    fn an_unkeyed_file_of_an_older_heidid_loads_only_when_a_seal_vouches_for_it() {
        let d = Dir::new();
        let legacy = serde_json::json!({"version": 2, "sha256": policy(7).digest_hex(), "policy": policy(7).to_json()});
        std::fs::write(d.path(POLICY_FILE), legacy.to_string()).unwrap();
        // The older heidid was killed: its policy_applied event is after the last seal.
        d.journal(&[applied(2, &policy(7))], false);
        let e = d.decide(false).unwrap_err();
        assert!(e.contains("no MAC"), "{e}");
        // It shut down cleanly (sealed): loaded and keyed.
        d.journal(&[], true);
        let start = d.decide(false).unwrap();
        assert_eq!((start.version, &start.policy), (2, &policy(7)));
        assert!(start.write_main && start.entry.message.contains("now keyed"));
        start.write_files(&d.files).unwrap();
        let file = read(&d.path(POLICY_FILE)).unwrap().unwrap();
        assert_eq!(
            file.tag(d.files.key(), "run-1"),
            heidi_core::journal::FileTag::Authentic
        );
    }

    #[test]
    fn only_the_daemons_own_policy_events_count() {
        let d = Dir::new();
        let mut client = applied(9, &policy(1));
        client.stage = "client".into();
        let mut other = applied(9, &policy(1));
        other.event_type = "policy_note".into();
        d.journal(&[applied(2, &policy(7)), client, other], true);
        let last = d.last().unwrap();
        assert_eq!(last.mark.version, 2);
        assert!(last.sealed);
    }

    #[test]
    fn the_last_policy_event_is_found_in_a_rotated_segment_with_its_global_line() {
        let tmp = tempfile::tempdir().unwrap();
        let mut config =
            JournalConfig::new(tmp.path().join("out"), tmp.path().join("keys/seal.key"));
        config.segment_max_bytes = JournalConfig::SEGMENT_MIN_BYTES;
        let (journal, _) = Journal::open(config.clone()).unwrap();
        for i in 0..2 {
            let tick = JournalEntry::info("test", "tick", format!("tick {i}"));
            journal.append_blocking(tick).unwrap();
        }
        let p = policy(7);
        assert_eq!(journal.append_blocking(applied(3, &p)).unwrap().line, 3);
        for i in 0..20 {
            let tick = JournalEntry::info("test", "tick", format!("tick {i}"));
            journal.append_blocking(tick).unwrap();
        }
        journal.close().unwrap();
        assert!(!heidi_store::list_segments(&config.dir).unwrap().is_empty());
        let path = config.dir.join("events.jsonl");
        let last = last_journaled(&path, 3).unwrap().unwrap();
        assert_eq!(last.mark.version, 3);
        assert!(last.sealed, "line 3 is covered by sealed_lines = 3");
        let last = last_journaled(&path, 2).unwrap().unwrap();
        assert!(!last.sealed, "line numbers count from the run's first line");
    }
}
