//! End-to-end tests through the public API, one module per behaviour, each
//! citing the rule of docs/rules.md it checks. One binary, so the crash tests can re-exec
//! it as a child process.

mod background_ticker_runs_rules_without_tick;
mod bad_input_changes_nothing;
mod batched_catch_up_matches_record_by_record;
mod caps_block_without_dropping;
mod catch_up_failures_move_to_errors;
mod catch_up_redirects_new_writes_to_tail;
mod corruption_is_reported;
mod counters_count_submits_and_fsyncs;
mod crash_loses_no_acknowledged_record;
mod delivery_is_at_least_once_in_order;
mod drain_rate_and_eta_are_sane;
mod drain_switch_race_under_always_loses_nothing;
mod fsync_failure_poisons_the_map;
mod group_commit_shares_fsyncs;
mod index_store_is_derived;
mod inspection_matches_the_engine;
mod interval_crash_loses_no_acknowledged_record;
mod lanes_deliver_each_key_in_order;
mod live_sync_delivers_at_once;
mod pass_through_during_catch_up;
mod pause_from_each_state;
mod paused_submit_queues_durably;
mod public_types_are_thread_safe_and_debug;
mod queued_view_pages_and_filters;
mod refusals_change_nothing_at_every_entry_point;
mod replay_backoff_grows_and_is_capped;
mod retry_errors_is_a_tracked_job;
mod rules_pause_automatically;
mod rules_survive_restart_and_catch_up;
mod seqs_are_never_reused_after_a_power_loss;
mod skip_to_live_preserves_or_discards;
mod stale_retry_guard_on_every_path;
mod state_survives_restart;
mod stats_show_operator_figures;
mod stopped_catch_up_accounting_survives_a_failed_release;
mod strict_hold_back_never_outlives_a_newer_delivery;
mod verify_recounts_from_the_files;
mod versions_make_last_writer_win;
