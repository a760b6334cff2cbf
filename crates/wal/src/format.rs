//! # On-disk format and crash analysis
//!
//! A log is a directory:
//!
//! ```text
//! LOCK                         exclusive lock (flock); holds "pid N (exe)" of the holder
//! 00000000000000000001.seg     segments, named by their first seq, zero-padded to 20 digits
//! 00000000000000000001.idx     sidecar index of a sealed segment, or of the
//!                              active one after a clean close (optional)
//! 00000000000000065281.seg
//! release.log                  released seq ranges inside segments still present
//! ```
//!
//! All integers are explicit little-endian; nothing on disk is `usize`.
//!
//! ## Segment header (32 bytes)
//!
//! | offset | width | field |
//! |---|---|---|
//! | 0 | 8 | magic `PLOGSEG\0` |
//! | 8 | u32 | format version (1) |
//! | 12 | u32 | header bytes (32) |
//! | 16 | u64 | first seq (>= 1; equals the file name) |
//! | 24 | u32 | reserved (0) |
//! | 28 | u32 | CRC32 of bytes 0..28 |
//!
//! ## Frame (16-byte header + body), back to back after the segment header
//!
//! | offset | width | field |
//! |---|---|---|
//! | 0 | u32 | body length (<= 256 MiB) |
//! | 4 | u32 | CRC32 (crc32fast) of `length ‖ seq ‖ body` |
//! | 8 | u64 | seq (first seq of the segment + frame index) |
//! | 16 | len | body |
//!
//! The byte accounting counts `16 + body length` per record.
//!
//! An all-zero frame never validates: seq 0 is never assigned and is never
//! the expected seq, and the CRC of twelve zero bytes is not zero. The active
//! segment is preallocated (fallocate), so its tail reads back as zeros.
//! Under `SyncPolicy::Always` zeros are also written over the preallocated
//! blocks up to 1 MiB ahead of the appends, so that a group fsync writes data
//! only (blocks fallocate leaves *unwritten* make each fdatasync journal
//! their conversion too); a crash leaves those zeros or the file's own
//! zeros, never anything that decodes.
//!
//! A sealed segment (every segment but the last) is truncated to end exactly
//! at its last frame, so any frame that fails to decode before its end of file
//! is damage, reported as [`crate::Error::Corrupt`] with file and offset. Seqs
//! are contiguous inside a segment; between segments there may be gaps, since
//! a fully released segment in the middle is deleted.
//!
//! ## Sidecar index `<first_seq>.idx`
//!
//! | offset | width | field |
//! |---|---|---|
//! | 0 | 8 | magic `PLOGIDX\0` (a sealed segment) or `PLOGCLS\0` (the active segment at a clean close) |
//! | 8 | u32 | format version (1) |
//! | 12 | u32 | record count `n` |
//! | 16 | u64 | end of the last frame (for a sealed segment, the file's exact length) |
//! | 24 | u64 | first seq of the segment |
//! | 32 | 4·n | frame offsets, u32 each, ascending |
//! | 32+4n | u32 | CRC32 of every byte before it |
//!
//! Written and fsynced when a segment is sealed, before the next segment is
//! created. At open, a sealed segment whose sidecar is valid (CRC, magic,
//! version, first seq, offsets back to back) and names the segment's current
//! length is not scanned: its offsets come from the sidecar, and its frames
//! are *unverified* — each is CRC-checked (with its seq and length) by the
//! background check that starts after open, or on its first read in the
//! process, or by `Wal::verify`, whichever comes first, so damage in a
//! sealed segment is still reported as [`crate::Error::Corrupt`] with file
//! and offset, shortly after open rather than at it. A missing or invalid sidecar means a scan, as before
//! sidecars existed. The active (last) segment uses only a `PLOGCLS`
//! sidecar (crash cases C1 and C2 below); a `PLOGIDX` one found there is
//! stale (crash case R2) and removed. A sidecar is deleted before its
//! segment; an orphan sidecar is removed at open.
//!
//! ### The active segment after a clean close
//!
//! Scanning the active segment at open means reading its frames and then
//! the preallocated zeros after them (64 MiB by default): tens of ms even
//! for a nearly empty log. A clean close therefore writes, after its final
//! sync, a `PLOGCLS` sidecar of the active segment: its offsets and the end
//! of its last frame. A writable open that finds one (CRC, magic, version,
//! first seq, offsets back to back), whose frame end lies inside the file
//! and is followed by a zero frame header, takes the offsets from it and
//! reads nothing of the segment: its frames are unverified, checked like a
//! sealed segment's (the background check includes them). A read-only open
//! scans the active segment, as it may be growing.
//!
//! ### Damage found early
//!
//! Reading every sealed segment at open would make a reopen of 1 GiB cost
//! a full read (hundreds of ms) instead of the sidecars (milliseconds); not
//! reading them would leave damage in them unknown until a reader reached
//! it, perhaps hours later, in the middle of a catch-up. So open reads no
//! sealed segment that has a valid sidecar, and right after open a
//! background thread (`check.rs`) CRC-checks their frames, newest segment
//! first (a catch-up reads oldest first, so the two rarely check the same
//! frames), at the lowest CPU priority. Damage it finds is logged
//! (`tracing::error!`, file and offset) and kept for `Wal::damage`, which
//! an owner polls; `Wal::wait_background_check` waits for the check to
//! end. Nothing else is checked at open: a sidecar is only used if it names
//! the segment's current length and its offsets lay frames back to back, so
//! what a cheap check could still find (a frame's bytes changed in place)
//! needs the CRC of the frame anyway.
//!
//! Each frame is checked once per process: frames scanned at open were
//! CRC-checked then, frames appended by this process were encoded from
//! memory; a segment keeps the offset below which every frame was checked
//! (`verified_end`), and readers CRC-check only frames past it. A long scan
//! shares that check with a helper thread (`ahead.rs`); a frame is handed
//! out only once it is checked, by either thread.
//!
//! ## release.log
//!
//! 20-byte entries `lo u64 | hi u64 | crc32(lo ‖ hi) u32`: inclusive seq ranges
//! released. Idempotent; synced with the data; rewritten compactly via a
//! temporary file, fsync, rename and directory fsync. A lost entry only makes
//! released records live again (at-least-once), never the reverse.
//!
//! ## Reading a log another process writes
//!
//! A read-only open takes no lock and repairs nothing, so it may read a
//! directory an engine is changing. A segment deleted between the listing
//! and its open was fully released (L2). The active segment is read with
//! `read_at`, never mapped: sealing cuts its preallocated zeros, and
//! reading a mapping past a file's new end is a SIGBUS. Its last frame may
//! be half written: that ends the log as a torn tail would, and damage
//! followed by valid frames beyond the torn-write window is reported only
//! if a second and third read still find it (a write may land while the
//! file is read). Sealed segments are mapped: nothing shortens them.
//! [`crate::audit`] reads a directory the same way, without mapping
//! anything, and recomputes the accounting from the bytes alone.
//!
//! ## Assumptions about the media
//!
//! 1. `fsync`/`fdatasync` returning Ok means the synced bytes survive power loss.
//! 2. A write that was not synced may be lost, partly present, or torn at any
//!    byte; sectors can tear.
//! 3. After a crash, a file's unsynced tail can read back as zeros.
//! 4. A directory entry (create, delete, rename) is durable only after the
//!    directory is fsynced.
//! 5. After an fsync error the kernel may have dropped the dirty pages: the
//!    file's content is unknown, so the log is poisoned (no retry).
//!
//! ## What a crash leaves behind
//!
//! Append (frame written to the 1 MiB buffer, buffer written with `pwrite`,
//! `fdatasync`, acknowledge):
//!
//! - **W1** crash before or during the `pwrite`, or before the `fdatasync`:
//!   the tail of the active segment holds a prefix of the frames, possibly a
//!   torn last frame, possibly zeros. Recovery decodes frames until the first
//!   that fails (length, CRC or seq) and cuts the file there (then
//!   re-extends it with zeros). None of the lost frames was acknowledged under
//!   `SyncPolicy::Always`, because acknowledgement follows the fdatasync.
//!   Under `SyncPolicy::Interval` acknowledgement follows the `pwrite`: a
//!   crash of the process alone (the kernel's page cache survives it) loses
//!   no acknowledged frame either; a power loss may.
//!
//!   A torn write can leave garbage only inside the writes issued since the
//!   last completed fdatasync: the writer puts frames into the file only by
//!   one `pwrite` of its buffer (flushed at 1 MiB, so a write is at most
//!   1 MiB plus one frame) and acknowledges only after the fdatasync. So
//!   when the bytes after the failing frame are not all zeros, recovery
//!   scans the byte offsets past it for a later valid frame (a seq above the
//!   expected one but no more than the frames that fit in between, a length
//!   that fits, a matching CRC). One found more than
//!   [`crate::TORN_WRITE_WINDOW_BYTES`] (4 MiB; or the damaged frame's own
//!   declared size, if larger and inside the file) past the damage proves
//!   that the failing frame was durable long before: that is damage to
//!   acknowledged data, reported as [`crate::Error::Corrupt`] naming the
//!   damaged frame, never truncated. Damage closer to the tail than the
//!   window cannot be told from a torn write and is cut as above.
//!
//!   Under `SyncPolicy::Never` or `Interval` the unsynced region may be much
//!   larger than the window, and a power loss with out-of-order write-back
//!   can leave a hole (zeros) followed by later frames that did reach the
//!   disk: open then reports `Corrupt` instead of cutting records that were
//!   never promised durable. This errs on the side of reporting.
//! - **W2** crash after the `fdatasync`: the frames are durable and found.
//!
//! Create a segment (file created, header written, fallocate, fsync file,
//! fsync directory):
//!
//! - **W3** crash before the fsyncs: the file may be missing, empty, or have a
//!   torn header followed by zeros. If it is the last segment and everything
//!   after the header region is zero, it held no record: it is removed. A bad
//!   header followed by data is [`crate::Error::Corrupt`].
//!
//! Rotate (flush, `set_len` to the last frame, `fsync` the old segment,
//! write and `fsync` its sidecar, then create the new one as above; the
//! sidecar's directory entry becomes durable with the new segment's
//! directory fsync):
//!
//! - **R1** crash before the old segment's fsync: it is still the last
//!   segment; W1 applies to it. No sidecar was written yet.
//! - **R2** crash after it, before the new segment is durable: the old segment
//!   is the last one again and is exact-length; appends continue in it. Its
//!   sidecar, if present (complete or torn), is removed at open, since the
//!   last segment is always scanned. Should that removal itself be lost to a
//!   later crash, the sidecar names a length the grown segment no longer
//!   has (so it is ignored), and the next seal overwrites it.
//! - **R3** crash after the new segment is durable: the old one is sealed and
//!   exact-length, as a sealed segment must be, and its sidecar is complete
//!   and durable (it was fsynced before the new segment was created).
//!
//! Skip ahead (`Wal::skip_to`): an active segment that holds records is
//! sealed and the next one created at the new seq (R1-R3, W3). An empty
//! one gets a header naming the new seq (written, fdatasynced), is renamed
//! to match, and the directory is fsynced:
//!
//! - **S1** crash after the header is durable, before the rename is: the
//!   last segment's header and name disagree, and nothing follows the
//!   header. It held no record: it is removed, and the log continues at the
//!   higher of the two seqs, in a new segment: the skip that named the
//!   lower one had completed. (Likewise a torn creation, W3, whose name is
//!   past the end of the segment before it: a skip past records.)
//!   Before the header is durable, the file is the empty segment it was
//!   (or a torn header, W3); after the rename, the new one.
//!
//! Clean close (final sync, `PLOGCLS` sidecar written and fsynced; no
//! directory fsync) and the writes after the next open:
//!
//! - **C1** crash while the sidecar is written, or before its directory
//!   entry is durable: it is missing, torn or whole. A torn one fails its
//!   CRC and the segment is scanned; a whole one describes exactly the
//!   frames of the segment, synced before it was written.
//! - **C2** the sidecar is removed, and the directory fsynced, before the
//!   first write to the segment after the open that used it (the first
//!   flush of appended frames): a crash at any later point finds no
//!   sidecar and scans, as after any crash. A crash before the removal is
//!   durable finds the sidecar with nothing written after its frames yet.
//!   Should a stale one be found anyway, the frame written after its end
//!   has a non-zero header, so it is not used. A rotation replaces it with
//!   the sealed segment's own.
//!
//! Release (accounting updated in memory, entry written to release.log, fully
//! released sealed segments deleted — each sidecar before its segment, so a
//! crash leaves at worst a segment without a sidecar (scanned) or an orphan
//! sidecar (removed at open) — directory fsynced):
//!
//! - **L1** crash before release.log is synced: the release is lost, the
//!   records are live again (delivered again by an owner that replays them).
//! - **L2** a fully released sealed segment leaves the log's index at once;
//!   a janitor thread then removes its sidecar and its file (unlinking a
//!   preallocated 64 MiB file costs ~15 ms, too long for the caller or the
//!   log's lock; closing the log waits for the janitor). There is no
//!   directory fsync for this: a crash may bring the segment back, with its
//!   records live unless release.log says otherwise (at least once, never a
//!   loss); recovery deletes it again.
//! - **L3** release.log is created at open and its directory entry is fsynced
//!   before any release is written to it; otherwise a power loss after a
//!   synced release could drop the whole file.
//! - **L4** an entry may name seqs past the recovered tail (under `Never` or
//!   `Interval` a release entry can reach the disk while the buffered records
//!   it names do not). Those seqs are assigned again after the crash, so
//!   recovery rewrites release.log to the releases of the records present
//!   whenever an entry reaches past the tail or the file has a torn tail.
//!   Entries never have `lo` 0 (a release from 0 is clamped to 1), since
//!   `lo` 0 reads as a torn tail.
