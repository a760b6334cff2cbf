//! R24, R16a: a retry through the API is a job with an id that can be
//! polled and cancelled; the engine remembers a bounded number of jobs and
//! refuses a new one, changing nothing, only when all of them still run.

use std::time::{Duration, Instant};

use pauselog::admin::RETRY_JOBS_KEPT_MAX;
use pauselog::{MapConfig, ResumeMode};
use pauselog_admin::client::{Client, ClientError};
use pauselog_admin::schema::{ErrorCode, RetryJob, Selection};
use pauselog_tests::{rec, Fixture};

use super::client;

fn wait_done(client: &Client, id: u64) -> RetryJob {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let job = client.job(id).expect("poll the job");
        if job.done {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} did not finish: {job:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn api_code(result: Result<RetryJob, ClientError>) -> ErrorCode {
    match result {
        Err(ClientError::Api(error)) => error.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[test]
fn retry_jobs_are_polled_cancelled_and_kept_within_a_bound() {
    let Fixture { dir, engine, dest, map, .. } = Fixture::named("customers", MapConfig::default());
    let count = RETRY_JOBS_KEPT_MAX as u64 + 4;
    map.pause().expect("pause");
    for n in 1..=count {
        map.submit(rec(&format!("key-{n}"), n)).expect("queued");
    }
    map.resume(ResumeMode::SkipToLivePreserve).expect("preserve the queue as catch-up errors");
    let client = client(dir.path());

    // One job of one record, polled to the end.
    let first = client.retry("customers", Selection::Seqs { seqs: vec![1] }, false).expect("retry");
    assert_eq!((first.total, first.done), (1, false));
    let done = wait_done(&client, first.id);
    assert_eq!((done.delivered, done.failed, done.cancelled), (1, 0, false), "{done:?}");
    assert_eq!(client.cancel_job(first.id).expect("cancel a finished job").delivered, 1);

    // Fill the registry with jobs blocked on the destination.
    dest.close_gate();
    let mut running = Vec::new();
    for seq in 2..=RETRY_JOBS_KEPT_MAX as u64 {
        running.push(client.retry("customers", Selection::Seqs { seqs: vec![seq] }, false).expect("retry").id);
    }
    let full = client.jobs().expect("jobs");
    assert_eq!(full.len(), RETRY_JOBS_KEPT_MAX, "every job is remembered");
    // Full: the finished first job is forgotten to make room.
    let next_seq = RETRY_JOBS_KEPT_MAX as u64 + 1;
    let extra = client.retry("customers", Selection::Seqs { seqs: vec![next_seq] }, false).expect("retry");
    running.push(extra.id);
    assert_eq!(api_code(client.job(first.id)), ErrorCode::UnknownJob, "the oldest finished job made room");
    // Full of running jobs: refused, and nothing was started.
    let errors_before = map.stats().error_records;
    let refused = client.retry("customers", Selection::All, false);
    assert_eq!(api_code(refused), ErrorCode::TooManyJobs);
    assert_eq!(map.stats().error_records, errors_before);

    // Cancel one that is blocked, then let them all finish.
    let cancelled = running[0];
    client.cancel_job(cancelled).expect("cancel");
    dest.open_gate();
    let mut delivered = 1;
    for id in running {
        let job = wait_done(&client, id);
        delivered += job.delivered;
        assert_eq!(job.failed, 0, "{job:?}");
    }
    assert_eq!(delivered, RETRY_JOBS_KEPT_MAX as u64 + 1, "each job delivered its one record");
    let rest = client.retry("customers", Selection::All, false).expect("room again");
    let rest = wait_done(&client, rest.id);
    assert_eq!(rest.delivered, count - delivered, "{rest:?}");
    assert_eq!(map.stats().error_records, 0);
    drop(map);
    engine.close().expect("close");
}
