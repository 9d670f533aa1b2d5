//! Supervision tests with small bash stages written to a temp dir.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use heidi_core::pipeline::StageResult;
use rustix::io::Errno;
use rustix::process::{Pid, test_kill_process_group};
use tokio::sync::watch;
use tokio::time::Instant;

use super::*;

/// Ids of all processes whose process group is `pgid`, with their stat (zombies included).
fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, super::procfs::read_proc_stat(pid).ok()?)))
        .filter(|(_, st)| st.pgrp == pgid)
        .map(|(pid, _)| pid)
        .collect()
}

/// Writes an executable bash script.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn command(program: &Path, args: &[&Path]) -> StageCommand {
    StageCommand {
        program: program.to_path_buf(),
        args: args.iter().map(|a| a.as_os_str().to_owned()).collect(),
        ..StageCommand::default()
    }
}

fn opts(timeout_ms: u64, grace_ms: u64) -> SuperviseOptions {
    SuperviseOptions {
        timeout: Duration::from_millis(timeout_ms),
        grace: Duration::from_millis(grace_ms),
        final_wait: Duration::from_secs(3),
        // These tests are about supervision, not the refusal of an uncontained stage
        // (`Containment::may_start`): they also run where no pids cgroup is writable.
        allow_uncontained: true,
        ..SuperviseOptions::default()
    }
}

/// A cancel receiver whose sender is dropped: never cancels.
fn no_cancel() -> watch::Receiver<bool> {
    watch::channel(false).1
}

fn group_gone(report: &StageReport) -> bool {
    let pgid = Pid::from_raw(report.pgid.expect("started")).unwrap();
    test_kill_process_group(pgid) == Err(Errno::SRCH)
}

fn output(report: &StageReport) -> String {
    String::from_utf8_lossy(&report.output_tail).into_owned()
}

/// Waits (bounded) until `path` holds a pid.
async fn read_pid_file(path: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "stage never wrote {}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn sigterm_ignoring_stage_is_killed_at_timeout_plus_grace() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "stubborn",
        "trap '' TERM\nsleep 30 &\nsleep 30 &\necho started\nwait",
    );
    let t0 = Instant::now();
    let report = run_stage(&command(&s, &[]), &opts(1000, 1000), no_cancel()).await;
    let took = t0.elapsed();
    assert_eq!(report.exit, Exit::TimedOut, "{}", output(&report));
    assert_eq!(report.result(), StageResult::TimedOut);
    assert!(
        took >= Duration::from_secs(2) && took <= Duration::from_secs(3),
        "took {took:?}"
    );
    assert!(output(&report).contains("started"));
    assert!(report.cleaned_up);
    assert!(group_gone(&report), "process group survived");
}

#[tokio::test]
async fn forking_beyond_the_process_limit_is_contained() {
    const LIMIT: u64 = 16;
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let s = script(
        dir.path(),
        "forker",
        "echo $$ > \"$1\"\nfor i in $(seq 200); do sleep 30 & done\nwait",
    );
    let mut o = opts(3000, 500);
    o.limits.processes = Some(LIMIT);
    let cmd = command(&s, &[&pid_file]);
    let run = tokio::spawn(async move { run_stage(&cmd, &o, no_cancel()).await });
    let pgid = read_pid_file(&pid_file).await;
    let mut most = 0;
    while !run.is_finished() {
        most = most.max(group_members(pgid).len());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let report = run.await.unwrap();
    if super::cgroup::PidsCgroup::create(LIMIT).is_ok() {
        assert!(
            matches!(report.containment, Containment::Cgroup(_)),
            "{report:?}"
        );
    }
    if report.containment == Containment::Uncontained {
        eprintln!("SKIPPED: no pids cgroup and running as root; saw {most} processes");
        return;
    }
    assert!(
        most as u64 <= LIMIT + 2,
        "saw {most} processes, limit {LIMIT}"
    );
    assert!(most >= 2, "the stage never forked");
    assert!(output(&report).contains("fork"), "{}", output(&report));
    assert_ne!(report.result(), StageResult::Success);
    assert!(report.cleaned_up);
    assert!(group_gone(&report));
    assert!(group_members(pgid).is_empty());
}

#[tokio::test]
async fn allocating_beyond_the_address_space_limit_fails() {
    let dir = tempfile::tempdir().unwrap();
    let body = "x=$(head -c \"$1\" /dev/zero | tr '\\0' a)\necho \"got ${#x}\"";
    let s = script(dir.path(), "hog", body);
    let mut o = opts(20_000, 500);
    o.limits.address_space_bytes = Some(256 << 20);
    let run = |bytes: &str| {
        let cmd = StageCommand {
            args: vec![bytes.into()],
            ..command(&s, &[])
        };
        async move { run_stage(&cmd, &o, no_cancel()).await }
    };
    let small = run("1000000").await;
    assert_eq!(small.exit, Exit::Code(0), "{}", output(&small));
    let big = run("600000000").await;
    assert_eq!(big.result(), StageResult::Failed, "{:?}", big.exit);
    assert!(output(&big).contains("allocate"), "{}", output(&big));
    assert!(big.cleaned_up);
}

#[tokio::test]
async fn printing_100_mb_keeps_only_the_tail() {
    const TOTAL: u64 = 100_000_000;
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "chatty",
        "head -c 100000000 /dev/zero\necho -n END",
    );
    let mut o = opts(60_000, 500);
    o.capture_max_bytes = 4096;
    let report = run_stage(&command(&s, &[]), &o, no_cancel()).await;
    assert_eq!(report.exit, Exit::Code(0));
    assert_eq!(report.output_tail.len(), 4096);
    assert!(report.output_tail.ends_with(b"END"));
    assert_eq!(report.output_dropped_bytes, TOTAL + 3 - 4096);
}

#[tokio::test]
async fn exit_codes_and_signals_map() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("exit 0", Exit::Code(0), StageResult::Success),
        ("exit 3", Exit::Code(3), StageResult::Failed),
        ("kill -KILL $$", Exit::Signal(9), StageResult::Failed),
        ("kill -USR1 $$", Exit::Signal(10), StageResult::Failed),
    ];
    for (i, (body, exit, result)) in cases.into_iter().enumerate() {
        let s = script(dir.path(), &format!("s{i}"), body);
        let report = run_stage(&command(&s, &[]), &opts(10_000, 500), no_cancel()).await;
        assert_eq!(
            (report.exit.clone(), report.result()),
            (exit, result),
            "{body}"
        );
        assert!(group_gone(&report));
    }
}

#[tokio::test]
async fn cancel_kills_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let s = script(dir.path(), "long", "echo $$ > \"$1\"\nsleep 30 &\nsleep 30");
    let (tx, rx) = watch::channel(false);
    let cmd = command(&s, &[&pid_file]);
    let run = tokio::spawn(async move { run_stage(&cmd, &opts(60_000, 2000), rx).await });
    let pgid = read_pid_file(&pid_file).await;
    let t0 = Instant::now();
    tx.send(true).unwrap();
    let report = run.await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert_eq!(report.exit, Exit::Cancelled);
    assert_eq!(report.result(), StageResult::Failed);
    assert_eq!(report.pgid, Some(pgid));
    assert!(group_gone(&report));
}

#[tokio::test]
async fn cancel_before_start_ends_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), "long", "sleep 30");
    let (tx, rx) = watch::channel(true);
    let report = run_stage(&command(&s, &[]), &opts(60_000, 2000), rx).await;
    drop(tx);
    assert_eq!(report.exit, Exit::Cancelled);
    assert!(report.elapsed < Duration::from_secs(3));
    assert!(group_gone(&report));
}

#[tokio::test]
async fn leftover_children_are_killed_and_reaped_after_the_leader_exits() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let s = script(dir.path(), "leaver", "sleep 30 &\necho $! > \"$1\"\nexit 0");
    let report = run_stage(&command(&s, &[&pid_file]), &opts(10_000, 500), no_cancel()).await;
    assert_eq!(report.exit, Exit::Code(0));
    let child = read_pid_file(&pid_file).await;
    assert!(report.cleaned_up);
    assert!(group_gone(&report));
    // Neither running nor a zombie: the orphan was reaped.
    assert!(!Path::new(&format!("/proc/{child}")).exists());
}

#[tokio::test]
async fn a_missing_program_is_spawn_failed() {
    let dir = tempfile::tempdir().unwrap();
    let not_exec = dir.path().join("plain");
    std::fs::write(&not_exec, "#!/bin/bash\n").unwrap();
    let ok = script(dir.path(), "ok", "exit 0");
    let cases = [
        command(Path::new("/nonexistent/heidi-stage"), &[]),
        command(Path::new("heidi-no-such-program-xyz"), &[]),
        command(Path::new(""), &[]),
        command(&not_exec, &[]),
        StageCommand {
            cwd: Some(dir.path().join("missing-dir")),
            ..command(&ok, &[])
        },
    ];
    for cmd in cases {
        let report = run_stage(&cmd, &opts(5000, 500), no_cancel()).await;
        assert!(
            matches!(report.exit, Exit::SpawnFailed(_)),
            "{cmd:?}: {:?}",
            report.exit
        );
        assert_eq!(report.result(), StageResult::Failed);
    }
}

#[tokio::test]
async fn programs_resolve_like_exec() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    script(&bin, "-dash", "echo \"dash $1\"");
    script(&bin, "named", "echo \"named $1\"");
    let run = |cmd: StageCommand| async move {
        let report = run_stage(&cmd, &opts(10_000, 500), no_cancel()).await;
        assert_eq!(report.exit, Exit::Code(0), "{cmd:?}: {}", output(&report));
        output(&report)
    };
    let on_path = StageCommand {
        program: "named".into(),
        args: vec!["a".into()],
        env: vec![("PATH".into(), bin.clone().into_os_string())],
        cwd: None,
        record: None,
    };
    assert_eq!(run(on_path).await, "named a\n");
    let relative = StageCommand {
        program: "bin/-dash".into(),
        args: vec!["b".into()],
        env: Vec::new(),
        cwd: Some(dir.path().to_path_buf()),
        record: None,
    };
    assert_eq!(run(relative).await, "dash b\n");
    let relative_path_entry = StageCommand {
        program: "-dash".into(),
        args: vec!["c".into()],
        env: vec![("PATH".into(), "bin".into())],
        cwd: Some(dir.path().to_path_buf()),
        record: None,
    };
    assert_eq!(run(relative_path_entry).await, "dash c\n");
}

#[tokio::test]
async fn no_fds_beyond_stdio_are_inherited() {
    let dir = tempfile::tempdir().unwrap();
    let held: Vec<std::fs::File> = (0..3)
        .map(|i| std::fs::File::create(dir.path().join(format!("held{i}"))).unwrap())
        .collect();
    // One without close-on-exec, like an fd the daemon inherited from its own parent.
    rustix::io::fcntl_setfd(&held[0], rustix::io::FdFlags::empty()).unwrap();
    let s = script(dir.path(), "fds", "ls /proc/self/fd");
    let report = run_stage(&command(&s, &[]), &opts(10_000, 500), no_cancel()).await;
    assert_eq!(report.exit, Exit::Code(0));
    let fds: Vec<String> = output(&report).lines().map(str::to_owned).collect();
    // 0, 1, 2 and the directory ls reads.
    assert_eq!(fds, ["0", "1", "2", "3"], "{fds:?}");
    drop(held);
}

#[tokio::test]
async fn bash_env_runs_in_the_stage_only() {
    let dir = tempfile::tempdir().unwrap();
    let rc = dir.path().join("rc");
    std::fs::write(&rc, "echo sourced\n").unwrap();
    let s = script(dir.path(), "plain", "echo stage");
    let cmd = StageCommand {
        env: vec![("BASH_ENV".into(), rc.into_os_string())],
        ..command(&s, &[])
    };
    let report = run_stage(&cmd, &opts(10_000, 500), no_cancel()).await;
    assert_eq!(output(&report), "sourced\nstage\n");
}

#[tokio::test]
async fn usage_reports_cpu_of_a_busy_stage() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "busy",
        "end=$((SECONDS + 1)); while [ $SECONDS -le $end ]; do :; done",
    );
    let report = run_stage(&command(&s, &[]), &opts(10_000, 500), no_cancel()).await;
    assert_eq!(report.exit, Exit::Code(0));
    // A second of spinning is reported as CPU use, whatever share of a CPU the machine's load
    // left it (17 % was seen with a load of 12 on 2 CPUs); an idle second would be 0.
    assert!(report.usage.cpu_pct >= 1, "{:?}", report.usage);
    assert!(report.peak_rss_kb > 0);
}

#[test]
fn defaults_are_the_documented_ones() {
    let o = SuperviseOptions::default();
    assert_eq!(o.timeout, Duration::from_secs(300));
    assert_eq!(o.grace, Duration::from_secs(2));
    assert_eq!(o.limits, StageLimits::default());
    assert_eq!(o.limits.processes, Some(256));
}

#[test]
fn only_an_uncontained_stage_needs_allow_uncontained() {
    let refused = Containment::Uncontained.may_start(false).unwrap_err();
    assert_eq!(refused, UNCONTAINED_REFUSAL);
    assert!(refused.contains("allow_uncontained = true"), "{refused}");
    assert_eq!(Containment::Uncontained.may_start(true), Ok(()));
    for c in [
        Containment::NotRequested,
        Containment::RlimitOnly,
        Containment::Cgroup(CgroupVersion::V1),
        Containment::Cgroup(CgroupVersion::V2),
    ] {
        assert_eq!(c.may_start(false), Ok(()), "{c:?}");
    }
}

/// Live (not zombie) processes whose initial environment holds `HEIDI_STAGE_RUN=<marker>`.
fn marked_processes(marker: &str) -> Vec<i32> {
    let needle = format!("{STAGE_RUN_VAR}={marker}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| super::procfs::read_proc_stat(pid).is_ok_and(|st| st.state != b'Z'))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .unwrap_or_default()
                .split(|&b| b == 0)
                .any(|v| v == needle.as_bytes())
        })
        .collect()
}

fn record_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir.join(RECORD_DIR))
        .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_running_stage_is_recorded_and_the_record_removed_after_clean_up() {
    let dir = tempfile::tempdir().unwrap();
    let (pid_file, stop) = (dir.path().join("pid"), dir.path().join("stop"));
    let s = script(
        dir.path(),
        "waiter",
        "echo $$ > \"$1\"\nwhile [ ! -e \"$2\" ]; do sleep 0.02; done",
    );
    let mut cmd = command(&s, &[&pid_file, &stop]);
    cmd.record = Some(RecordSpec {
        dir: dir.path().to_path_buf(),
        stage: "train".into(),
        round: 3,
    });
    let run = tokio::spawn(async move { run_stage(&cmd, &opts(10_000, 500), no_cancel()).await });
    let pid = read_pid_file(&pid_file).await;
    let files = record_files(dir.path());
    assert_eq!(
        files,
        [dir.path().join(RECORD_DIR).join(format!("{pid}.json"))]
    );
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!(record["leader_pid"], pid);
    assert_eq!(record["pgid"], pid);
    assert_eq!(
        (record["stage"].as_str(), record["round"].as_u64()),
        (Some("train"), Some(3))
    );
    assert_eq!(record["daemon_pid"], std::process::id());
    let start = super::procfs::read_proc_stat(pid).unwrap().start_ticks;
    assert_eq!(record["leader_start_ticks"], start);
    let marker = record["marker"].as_str().unwrap();
    assert_eq!(marked_processes(marker).first(), Some(&pid));
    std::fs::write(&stop, "").unwrap();
    let report = run.await.unwrap();
    assert_eq!(report.exit, Exit::Code(0), "{}", output(&report));
    assert_eq!(
        record["cgroup"].is_string(),
        matches!(report.containment, Containment::Cgroup(_)),
        "{record}"
    );
    assert!(report.cleaned_up);
    assert!(record_files(dir.path()).is_empty());
}

#[tokio::test]
async fn reap_orphans_kills_a_recorded_tree_with_setsid_escapers() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("unit-{}", std::process::id());
    // A stand-in for an orphaned stage: a leader in its own group, a child in the group, and
    // two setsid escapers (one a shell with a child), outside the group and without a cgroup:
    // only the marker in their environment finds them.
    let mut leader = std::process::Command::new("/bin/bash")
        .args([
            "-c",
            "sleep 600 & setsid sleep 601 & (setsid bash -c 'sleep 602 & wait' &) ; wait",
        ])
        .env(STAGE_RUN_VAR, &marker)
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = leader.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(10);
    while marked_processes(&marker).len() < 5 {
        assert!(Instant::now() < deadline, "{:?}", marked_processes(&marker));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let spec = RecordSpec {
        dir: dir.path().to_path_buf(),
        stage: "eval".into(),
        round: 1,
    };
    let file = super::orphans::write_record(&spec, pid, None, &marker).unwrap();
    drop(file);
    let reports = reap_orphans(dir.path(), Duration::from_secs(5));
    let _ = leader.wait();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let r = &reports[0];
    let f = r.found;
    assert!(f.all_gone, "{r:?}");
    assert!(f.processes_found >= 5, "{r:?}");
    assert_eq!(f.processes_killed, f.processes_found, "{r:?}");
    assert_eq!((r.stage.as_str(), r.round), ("eval", 1));
    assert!(!f.cgroup_found && !f.cgroup_removed);
    assert!(marked_processes(&marker).is_empty());
    assert!(record_files(dir.path()).is_empty(), "the record is dropped");
}
