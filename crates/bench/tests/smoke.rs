//! The load generator against a real in-process Palisade: it must work end
//! to end. No figure is asserted, only that messages were acked and
//! delivered and nothing failed.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_chat_load_is_acked_and_delivered_without_errors() {
    let report = palisade_bench::smoke::run(4, &palisade_bench::smoke::plan())
        .await
        .expect("the smoke load runs");
    assert_eq!(report.errors, 0, "{:?}", report.error_samples);
    assert_eq!(report.unanswered, 0, "{report:?}");
    assert!(report.acked > 0, "{report:?}");
    assert_eq!(report.acked, report.sent, "{report:?}");
    assert_eq!(report.delivered, report.sent, "{report:?}");
}
