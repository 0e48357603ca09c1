//! The conformance suite of the ports: every case runs against the embedded backend, and against
//! DynamoDB and SQS when `AWS_ENDPOINT_URL` points at an emulator (moto's server, started by
//! `scripts/test`). Without an endpoint the AWS cases print that they were skipped, unless
//! `SWITCHYARD_REQUIRE_AWS=1`, in which case they fail.

mod harness;
mod queue;
mod store;

/// Instantiates each case once per backend.
macro_rules! cases {
    ($suite:ident => $source:ident, $harness:ident: $($case:ident),* $(,)?) => {
        mod $suite {
            mod embedded {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $case() {
                        crate::$source::$case(crate::harness::$harness::embedded().await).await;
                    }
                )*
            }
            mod aws {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $case() {
                        if let Some(h) = crate::harness::$harness::aws().await {
                            crate::$source::$case(h).await;
                        }
                    }
                )*
            }
        }
    };
}

cases!(store_cases => store, StoreHarness:
    put_then_get_round_trips,
    absent_condition_guards_creation,
    version_condition_detects_concurrent_change,
    present_condition_and_conditional_delete,
    transaction_is_all_or_nothing_and_names_failed_write,
    limits_are_enforced,
    query_ranges_orders_and_pages,
    expired_items_are_absent_everywhere,
    appends_are_dense_and_ordered,
    concurrent_appends_never_collide,
    failed_transaction_appends_nothing,
    get_many_returns_slots_in_order,
    receipts_record_appended_range,
    receipts_of_one_log_each_locate_their_entry,
    listened_appends_are_reported_once_in_commit_order,
);

cases!(queue_cases => queue, QueueHarness:
    sent_message_is_received_once_and_deleted,
    a_queue_that_does_not_exist_is_not_found,
    delayed_message_stays_hidden_until_due,
    visibility_hides_and_then_returns_message,
    change_visibility_reschedules_message,
    over_received_message_moves_to_dead_letter_queue,
    waiting_receive_wakes_on_send,
    batches_larger_than_ten_are_sent_whole,
    oversized_message_is_refused,
);
