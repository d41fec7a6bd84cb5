//! KafkaJS 2.2 (Node.js, pinned in tests/js/package-lock.json) against a real `keel serve`:
//! tests/js/compat.js produces with an idempotent producer, reads everything back through a
//! consumer group, and checks that a transactional producer is refused at once with a
//! non-retriable error. KafkaJS is the client that found the transactional-producer hang
//! (issue 11, item 3). Without node or `npm ci --prefix tests/js` this prints a SKIPPED line,
//! or fails when `CI` is set.

use keel_tests::{require, run_with_timeout, temp_data_dir, Keel};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const INSTALL: &str = "apt-get install -y nodejs npm && npm ci --prefix tests/js";

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// `None` when node runs and kafkajs is installed, else what is missing.
fn missing() -> Option<String> {
    match Command::new("node").arg("--version").output() {
        Err(e) => return Some(format!("node ({e})")),
        Ok(out) if !out.status.success() => return Some("a working node".into()),
        Ok(_) => {}
    }
    (!js_dir().join("node_modules/kafkajs").exists())
        .then(|| "kafkajs in tests/js/node_modules".to_string())
}

#[test]
fn kafkajs_produces_consumes_and_is_refused_transactions_at_once() {
    if !require("kafkajs", missing(), INSTALL) {
        return;
    }
    let dir = temp_data_dir("kafkajs");
    let keel = Keel::start(&dir, &["--group-initial-rebalance-delay-ms", "0"]);
    let out = run_with_timeout(
        Command::new("node")
            .arg(js_dir().join("compat.js"))
            .arg(keel.bootstrap()),
        b"",
        Duration::from_secs(90),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "compat.js exited {}\n--- stdout\n{stdout}\n--- stderr\n{}\n--- keel log\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        keel.log()
    );
    print!("{stdout}");
    let log = keel.log();
    assert_eq!(
        log.matches("refused a transactional producer").count(),
        1,
        "one warning for the one client: {log}"
    );
}
