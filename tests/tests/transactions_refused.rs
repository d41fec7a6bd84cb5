//! Until Keel has transactions, a transactional producer fails at once with a message that
//! says so, rather than retrying FindCoordinator for its whole timeout (issue 11, item 3).
//! The broker logs the refusal once per client, not once per retry.

use keel_tests::{temp_data_dir, Keel};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};
use std::time::{Duration, Instant};

#[test]
fn librdkafka_init_transactions_fails_fast_saying_why() {
    let dir = temp_data_dir("txn-refused");
    let keel = Keel::start(&dir, &[]);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", keel.bootstrap())
        .set("transactional.id", "orders-tx")
        .create()
        .expect("producer");
    // The timeout is librdkafka's budget; before, the call used all of it and then said only
    // that it timed out.
    let budget = Duration::from_secs(60);
    let started = Instant::now();
    let err = producer
        .init_transactions(budget)
        .expect_err("transactions are refused");
    let took = started.elapsed();
    let text = err.to_string();
    assert!(
        text.contains("Keel does not support transactions yet"),
        "the application sees the broker's reason: {text}"
    );
    let fatal = match &err {
        rdkafka::error::KafkaError::Transaction(e) => e.is_fatal(),
        _ => false,
    };
    assert!(fatal, "a fatal transaction error, not retried: {err:?}");
    assert!(
        took < budget / 2,
        "failed fast, not at the deadline: {took:?}"
    );
    eprintln!("librdkafka reports: {text}");
    let log = keel.log();
    let warnings = log.matches("refused a transactional producer").count();
    assert_eq!(warnings, 1, "one warning for the client: {log}");
}
