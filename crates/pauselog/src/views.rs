//! Turning index pages (seqs) into records, shared by the live maps and the
//! read-only inspector.

use pauselog_wal::Wal;

use crate::clock::from_nanos;
use crate::codec;
use crate::errors_table::{ErrorRun, ErrorTable};
use crate::{CatchupError, Error, QueuedRecord, Result};

/// Reads one queued record; `None` if it has left the log.
pub(crate) fn read_record(data: &Wal, seq: u64) -> Result<Option<QueuedRecord>> {
    let map = data.dir().display().to_string();
    let Some(entry) = data.read(seq).map_err(|e| Error::from_wal(&map, e))? else { return Ok(None) };
    codec::decode_record(seq, entry.body()).map(Some).ok_or_else(|| Error::Corrupt {
        path: data.dir().to_path_buf(),
        offset: 0,
        reason: format!("record seq {seq} passed its CRC but does not decode as a queued record"),
    })
}

/// Reads the records of a page; those that left meanwhile are skipped.
pub(crate) fn read_records(data: &Wal, seqs: &[u64]) -> Result<Vec<QueuedRecord>> {
    let mut records = Vec::with_capacity(seqs.len());
    for &seq in seqs {
        if let Some(record) = read_record(data, seq)? {
            records.push(record);
        }
    }
    Ok(records)
}

pub(crate) fn runs_of(table: &ErrorTable, seqs: &[u64]) -> Vec<Option<ErrorRun>> {
    seqs.iter().map(|&seq| table.get(seq).cloned()).collect()
}

/// Catch-up errors for a page of seqs and their runs.
pub(crate) fn read_errors(data: &Wal, seqs: &[u64], runs: Vec<Option<ErrorRun>>) -> Result<Vec<CatchupError>> {
    let mut items = Vec::with_capacity(seqs.len());
    for (&seq, run) in seqs.iter().zip(runs) {
        let (Some(run), Some(record)) = (run, read_record(data, seq)?) else { continue };
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
