//! Helpers shared by the integration tests that drive librdkafka (`mod common;`).

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

/// Creates `topic` through librdkafka's admin client from synchronous test code; panics
/// unless the broker reports it created.
pub fn create_topic(bootstrap: &str, topic: NewTopic<'_>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .create()
            .expect("admin client");
        for r in admin
            .create_topics([&topic], &AdminOptions::new())
            .await
            .expect("create_topics")
        {
            r.expect("topic created");
        }
    });
}
