//! Group commit, the batch limit, the queue limit and close, with the writer stalled on
//! purpose so that the outcome never depends on timing.

use std::sync::{Arc, Mutex};

use super::*;
use crate::{AppendError, Journal};

type Batches = Arc<Mutex<Vec<usize>>>;

fn recording(config: &mut JournalConfig) -> Batches {
    let batches: Batches = Arc::default();
    let b = batches.clone();
    config.on_fsync = Some(Arc::new(move |_, entries| b.lock().unwrap().push(entries)));
    batches
}

#[test]
fn queued_appends_from_many_threads_share_fsyncs() {
    let (_tmp, mut config) = setup();
    let batches = recording(&mut config);
    let (journal, _) = Journal::open(config.clone()).unwrap();
    let release = journal.stall();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let journal = journal.clone();
            std::thread::spawn(move || {
                (0..500)
                    .map(|i| journal.submit(entry(t * 1000 + i)).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let answers: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    drop(release);
    for answer in answers {
        answer.blocking_recv().unwrap().unwrap();
    }
    // The first line alone (sealed at once), then batches of at most 1024: 5 fsyncs, not
    // 4000.
    assert_eq!(*batches.lock().unwrap(), vec![1, 1024, 1024, 1024, 927]);
    journal.close().unwrap();
    assert_eq!(verify_dir(&config).sealed_lines, 4000);
}

#[test]
fn batches_never_exceed_max_batch() {
    let (_tmp, mut config) = setup();
    config.max_batch = 3;
    let batches = recording(&mut config);
    let (journal, _) = Journal::open(config.clone()).unwrap();
    let release = journal.stall();
    let answers: Vec<_> = (0..10).map(|i| journal.submit(entry(i)).unwrap()).collect();
    drop(release);
    let lines: Vec<u64> = answers
        .into_iter()
        .map(|a| a.blocking_recv().unwrap().unwrap().line)
        .collect();
    assert_eq!(lines, (1..=10).collect::<Vec<u64>>());
    assert_eq!(*batches.lock().unwrap(), vec![1, 3, 3, 3]);
    journal.close().unwrap();
}

#[test]
fn a_full_queue_is_overloaded() {
    let (_tmp, mut config) = setup();
    config.queue_capacity = 2;
    let (journal, _) = Journal::open(config.clone()).unwrap();
    let release = journal.stall();
    let a = journal.submit(entry(1)).unwrap();
    let b = journal.submit(entry(2)).unwrap();
    assert_eq!(
        journal.submit(entry(3)).err(),
        Some(AppendError::Overloaded)
    );
    assert_eq!(
        journal.append_blocking(entry(3)),
        Err(AppendError::Overloaded)
    );
    drop(release);
    assert_eq!(a.blocking_recv().unwrap().unwrap().line, 1);
    assert_eq!(b.blocking_recv().unwrap().unwrap().line, 2);
    // Room again.
    assert_eq!(journal.append_blocking(entry(4)).unwrap().line, 3);
    journal.close().unwrap();
}

#[test]
fn close_drains_the_queue_seals_and_refuses_later_appends() {
    let (_tmp, config) = setup();
    let (journal, _) = Journal::open(config.clone()).unwrap();
    let release = journal.stall();
    let mut answers: Vec<_> = (0..5).map(|i| journal.submit(entry(i)).unwrap()).collect();
    let closing = journal.clone();
    let closer = std::thread::spawn(move || closing.close());
    // Appends accepted until close took the queue are drained too.
    wait_until("close to stop accepting", || {
        match journal.submit(entry(9)) {
            Ok(answer) => {
                answers.push(answer);
                false
            }
            Err(AppendError::Overloaded) => false,
            Err(e) => {
                assert_eq!(e, AppendError::Closed);
                true
            }
        }
    });
    drop(release);
    closer.join().unwrap().unwrap();
    let total = answers.len();
    for (i, answer) in answers.into_iter().enumerate() {
        assert_eq!(answer.blocking_recv().unwrap().unwrap().line, i as u64 + 1);
    }
    assert_eq!(journal.lines(), total as u64);
    assert_eq!(seal_records(&config).last().unwrap().lines(), total as u64);
    assert_eq!(journal.append_blocking(entry(0)), Err(AppendError::Closed));
    journal.close().unwrap();
    assert_eq!(verify_dir(&config).sealed_lines, total as u64);
}

#[test]
fn a_failed_write_fails_the_batch_and_every_later_append() {
    let (_tmp, config) = setup();
    let (journal, _) = Journal::open(config.clone()).unwrap();
    journal.append_blocking(entry(1)).unwrap();
    journal.break_file();
    match journal.append_blocking(entry(2)) {
        Err(AppendError::Io(why)) => assert!(why.contains(JOURNAL_FILE), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        journal.append_blocking(entry(3)),
        Err(AppendError::Io(_))
    ));
    assert_eq!(journal.lines(), 1);
    assert!(journal.close().is_err());
    // Nothing half-written: the journal reopens and continues after line 1.
    let (journal, report) = Journal::open(config.clone()).unwrap();
    assert_eq!((report.lines, report.cut_bytes), (1, 0));
    assert_eq!(journal.append_blocking(entry(4)).unwrap().line, 2);
    journal.close().unwrap();
    assert_eq!(verify_dir(&config).sealed_lines, 2);
}
