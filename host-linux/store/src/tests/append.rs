//! Appending: acks, hashes, tail, refused entries, concurrency, seals.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use heidi_core::journal::LineHash;

use super::*;
use crate::{AppendError, Journal};

#[test]
fn append_acks_line_hash_and_tail() {
    let (_tmp, config) = setup();
    let (journal, report) = Journal::open(config.clone()).unwrap();
    assert!(report.created);
    assert_eq!(
        (report.lines, report.cut_bytes, report.sealed_lines),
        (0, 0, 0)
    );
    assert_eq!(journal.run_id(), report.run_id);
    assert_eq!(journal.path(), config.dir.join(JOURNAL_FILE));
    let appended = journal.append_blocking(entry(1)).unwrap();
    assert_eq!(appended.line, 1);
    let bytes = journal_bytes(&config);
    assert_eq!(appended.hash, LineHash::of(&bytes).hex().as_str());
    assert_eq!(journal.lines(), 1);
    let line = String::from_utf8(bytes[..bytes.len() - 1].to_vec()).unwrap();
    assert!(line.contains("\"message\":\"entry 1\""), "{line}");
    assert!(line.contains(&format!("\"prev_hash\":\"{}\"", journal.run_id())));
    assert_eq!(journal.tail(10), vec![line]);
    journal.close().unwrap();
}

#[test]
fn tail_is_capped_at_its_capacity() {
    let (_tmp, mut config) = setup();
    config.tail_capacity = 3;
    let (journal, _) = Journal::open(config.clone()).unwrap();
    for i in 0..5 {
        journal.append_blocking(entry(i)).unwrap();
    }
    let lines = journal_lines(&config);
    assert_eq!(journal.tail(10), lines[2..].to_vec());
    assert_eq!(journal.tail(1), lines[4..].to_vec());
    assert!(journal.tail(0).is_empty());
    journal.close().unwrap();
}

#[test]
fn refused_entries_are_invalid_and_the_chain_continues() {
    let (_tmp, config) = setup();
    let (journal, _) = Journal::open(config.clone()).unwrap();
    journal.append_blocking(entry(1)).unwrap();
    let bad_name = JournalEntry::info("bad stage", "tick", "x");
    match journal.append_blocking(bad_name) {
        Err(AppendError::Invalid(why)) => assert!(why.contains("stage"), "{why}"),
        other => panic!("{other:?}"),
    }
    let mut too_many = entry(2);
    too_many.counters_delta = (0..17).map(|i| (format!("c{i}"), 1)).collect();
    assert!(matches!(
        journal.append_blocking(too_many),
        Err(AppendError::Invalid(_))
    ));
    assert_eq!(journal.lines(), 1);
    assert_eq!(journal.append_blocking(entry(3)).unwrap().line, 2);
    journal.close().unwrap();
    assert_eq!(verify_dir(&config).sealed_lines, 2);
}

#[test]
fn many_threads_append_concurrently() {
    let (_tmp, mut config) = setup();
    let (fsyncs, synced) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (f, s) = (fsyncs.clone(), synced.clone());
    config.on_fsync = Some(Arc::new(move |_latency, entries| {
        f.fetch_add(1, Ordering::Relaxed);
        s.fetch_add(entries, Ordering::Relaxed);
    }));
    let (journal, _) = Journal::open(config.clone()).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let journal = journal.clone();
            std::thread::spawn(move || {
                (0..500)
                    .map(|i| journal.append_blocking(entry(t * 1000 + i)).unwrap().line)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut lines: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    lines.sort_unstable();
    assert_eq!(lines, (1..=4000).collect::<Vec<u64>>());
    assert_eq!(journal.lines(), 4000);
    assert_eq!(synced.load(Ordering::Relaxed), 4000);
    assert!(fsyncs.load(Ordering::Relaxed) >= 1);
    journal.close().unwrap();
    let report = verify_dir(&config);
    assert_eq!((report.sealed_lines, report.unsealed_lines), (4000, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_append_concurrently() {
    let (_tmp, config) = setup();
    let (journal, _) = Journal::open(config.clone()).unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let journal = journal.clone();
            tokio::spawn(async move {
                for i in 0..500 {
                    journal.append(entry(t * 1000 + i)).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(journal.lines(), 4000);
    let closing = journal.clone();
    tokio::task::spawn_blocking(move || closing.close())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(journal.append(entry(0)).await, Err(AppendError::Closed));
    assert_eq!(verify_dir(&config).sealed_lines, 4000);
}

#[test]
fn seals_every_n_lines_and_at_close() {
    let (_tmp, mut config) = setup();
    config.seal_every_lines = 10;
    config.seal_interval = Duration::from_secs(3600);
    let (journal, _) = Journal::open(config.clone()).unwrap();
    for i in 0..25 {
        journal.append_blocking(entry(i)).unwrap();
    }
    // The first line is sealed at once, then every 10 lines.
    let sealed: Vec<u64> = seal_records(&config).iter().map(|s| s.lines()).collect();
    assert_eq!(sealed, vec![1, 11, 21]);
    journal.close().unwrap();
    let sealed: Vec<u64> = seal_records(&config).iter().map(|s| s.lines()).collect();
    assert_eq!(sealed, vec![1, 11, 21, 25]);
    assert_eq!(verify_dir(&config).sealed_lines, 25);
}

#[test]
fn seals_when_lines_waited_the_interval() {
    let (_tmp, mut config) = setup();
    config.seal_interval = Duration::from_millis(20);
    let (journal, _) = Journal::open(config.clone()).unwrap();
    // The first line is sealed at once; the second waits for the interval.
    journal.append_blocking(entry(1)).unwrap();
    journal.append_blocking(entry(2)).unwrap();
    wait_until("the interval seal", || seal_records(&config).len() == 2);
    assert_eq!(seal_records(&config)[1].lines(), 2);
    journal.close().unwrap();
    // Nothing new since that seal: close adds none.
    assert_eq!(seal_records(&config).len(), 2);
}

#[test]
fn config_limits_are_refused() {
    type Set = fn(&mut JournalConfig);
    let cases: [(&str, Set); 6] = [
        ("seal_every_lines", |c| c.seal_every_lines = 0),
        ("max_batch", |c| c.max_batch = 0),
        ("max_batch", |c| {
            c.max_batch = JournalConfig::MAX_BATCH_LIMIT + 1
        }),
        ("queue_capacity", |c| c.queue_capacity = 0),
        ("queue_capacity", |c| {
            c.queue_capacity = JournalConfig::QUEUE_CAPACITY_LIMIT + 1
        }),
        ("tail_capacity", |c| {
            c.tail_capacity = JournalConfig::TAIL_CAPACITY_LIMIT + 1
        }),
    ];
    for (field, set) in cases {
        let (_tmp, mut config) = setup();
        set(&mut config);
        let e = Journal::open(config).err().unwrap();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains(field), "{e}");
    }
    // The limits themselves, and an interval too long to add to an instant, are fine.
    let (_tmp, mut config) = setup();
    config.max_batch = JournalConfig::MAX_BATCH_LIMIT;
    config.queue_capacity = JournalConfig::QUEUE_CAPACITY_LIMIT;
    config.tail_capacity = JournalConfig::TAIL_CAPACITY_LIMIT;
    config.seal_interval = Duration::MAX;
    let (journal, _) = Journal::open(config.clone()).unwrap();
    journal.append_blocking(entry(0)).unwrap();
    journal.close().unwrap();
    assert_eq!(verify_dir(&config).sealed_lines, 1);
}
