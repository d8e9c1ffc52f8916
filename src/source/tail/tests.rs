use super::*;
use crate::metrics::Metrics;
use crate::store::StoreOptions;

#[tokio::test(flavor = "multi_thread")]
async fn reloading_after_a_failure_keeps_the_host_that_ids_are_built_from() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreOptions::for_test(dir.path(), "UTC", 3650)).unwrap();
    let metrics = std::sync::Arc::new(Metrics::default());
    let (ingester, _writer) =
        Ingester::spawn(crate::store::Writer::new(store.clone()), metrics.clone()).unwrap();
    let source = SourceConfig {
        kind: crate::source::SourceKind::Exim,
        path: Some(dir.path().join("mainlog")),
        directory: None,
        users: None,
        host: None,
    };
    let follower = Follower::new(source, store, (ingester, metrics), "mx1").unwrap();
    let (mut follower, reloaded) = blocking(follower, Follower::reload).await.unwrap();
    reloaded.unwrap();
    let log = include_str!("../../../tests/fixtures/mta/exim-mainlog.log");
    let line = log.lines().find(|l| l.contains(" <= ")).unwrap();
    let msg_id = line.split(' ').nth(2).unwrap();
    let mut events = Vec::new();
    follower.parser.line(line, &mut events).unwrap();
    assert_eq!(events[0].id, Some(format!("mx1:{msg_id}")));
}
