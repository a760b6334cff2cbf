//! Turning index pages (seqs) into records, shared by the live maps and the
//! read-only inspector.

use pauselog_wal::Wal;

use crate::clock::from_nanos;
use crate::codec;
use crate::errors_table::{ErrorRun, ErrorTable};
use crate::{CatchupError, Error, QueuedRecord, Result};

/// Reads one queued record; `None` if it has left the log.
pub(crate) fn read_record(data: &Wal, seq: u64) -> Result<Option<QueuedRecord>> {
    Ok(read_many(data, &[seq])?.pop().flatten())
}

/// Reads the records of `seqs` under one acquisition of the log's lock;
/// `None` for each that has left the log.
pub(crate) fn read_many(data: &Wal, seqs: &[u64]) -> Result<Vec<Option<QueuedRecord>>> {
    let entries = data.read_many(seqs).map_err(|e| Error::from_wal(&data.dir().display().to_string(), e))?;
    entries
        .into_iter()
        .zip(seqs)
        .map(|(entry, &seq)| {
            let Some(entry) = entry else { return Ok(None) };
            codec::decode_record(seq, entry.body())
                .map(Some)
                .ok_or_else(|| Error::undecodable(&entry, "does not decode as a queued record"))
        })
        .collect()
}

/// Reads the records of a page; those that left meanwhile are skipped.
pub(crate) fn read_records(data: &Wal, seqs: &[u64]) -> Result<Vec<QueuedRecord>> {
    Ok(read_many(data, seqs)?.into_iter().flatten().collect())
}

pub(crate) fn runs_of(table: &ErrorTable, seqs: &[u64]) -> Vec<Option<ErrorRun>> {
    seqs.iter().map(|&seq| table.get(seq).cloned()).collect()
}

/// Catch-up errors for a page of seqs and their runs.
pub(crate) fn read_errors(data: &Wal, seqs: &[u64], runs: Vec<Option<ErrorRun>>) -> Result<Vec<CatchupError>> {
    let records = read_many(data, seqs)?;
    let mut items = Vec::with_capacity(seqs.len());
    for (run, record) in runs.into_iter().zip(records) {
        let (Some(run), Some(record)) = (run, record) else { continue };
        items.push(CatchupError {
            record,
            reason: run.reason,
            last_error: run.last_error,
            attempts: run.attempts,
            first_failed_at: from_nanos(run.first_failed_nanos),
            last_failed_at: from_nanos(run.last_failed_nanos),
        });
    }
    Ok(items)
}
