//! A counter that threads sleep on until it changes: how group commit wakes
//! the writers an fsync covered.
//!
//! On Linux the sleepers wait on a futex on the counter itself, so one system
//! call wakes all of them, and a woken writer needs no lock to see that its
//! record is durable. With 8 writers on 2 cores this halved the time from the
//! end of one fsync to the start of the next against a condition variable,
//! whose woken threads queue up on its mutex one by one. Elsewhere sleepers
//! register and are unparked one by one.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A yield that returns this late ran another thread's work in between
/// (polling writers and the group's own leader hand the core back within a
/// few microseconds); see [`Epoch::spin_while`].
const SLOW_YIELD: Duration = Duration::from_micros(500);
/// How long a thread that saw a slow yield sleeps instead of polling.
const POLL_PAUSE: Duration = Duration::from_millis(100);

thread_local! {
    /// Until when this thread does not poll (see [`Epoch::spin_while`]).
    static POLL_PAUSED_UNTIL: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// A wake-up counter; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct Epoch {
    value: AtomicU32,
    #[cfg(not(target_os = "linux"))]
    sleepers: std::sync::Mutex<Vec<std::thread::Thread>>,
}

impl Epoch {
    /// The current value, to pass to [`Epoch::wait_while`].
    pub fn current(&self) -> u32 {
        self.value.load(Ordering::Acquire)
    }

    /// Sleeps while the counter still equals `seen`, at most until
    /// `deadline`. Returns once it changed or the deadline passed.
    pub fn wait_while(&self, seen: u32, deadline: Option<Instant>) {
        while self.current() == seen {
            let timeout = match deadline {
                None => None,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return,
                },
            };
            self.sleep(seen, timeout);
        }
    }

    /// Yields the processor while the counter still equals `seen`, until
    /// `until`; true once it changed. For a waiter that expects the change
    /// within an fsync: it sees the change without being woken, and any
    /// other runnable thread on its core runs first.
    ///
    /// A yield that returns [`SLOW_YIELD`] late means other threads want the
    /// core for real work: a poller then sees the change a whole time slice
    /// late, where a sleeper is woken at once. So the calling thread stops
    /// polling, here and for the next [`POLL_PAUSE`] (RocksDB's write thread
    /// backs off from yielding the same way, `slow_yield_usec`).
    pub fn spin_while(&self, seen: u32, until: Instant) -> bool {
        if POLL_PAUSED_UNTIL.get().is_some_and(|paused_until| Instant::now() < paused_until) {
            return self.current() != seen;
        }
        loop {
            if self.current() != seen {
                return true;
            }
            let before = Instant::now();
            if before >= until {
                return false;
            }
            std::thread::yield_now();
            let after = Instant::now();
            if after.duration_since(before) >= SLOW_YIELD {
                POLL_PAUSED_UNTIL.set(Some(after + POLL_PAUSE));
                return self.current() != seen;
            }
        }
    }

    /// Advances the counter and wakes every sleeper.
    pub fn advance(&self) {
        self.value.fetch_add(1, Ordering::AcqRel);
        self.wake_all();
    }

    #[cfg(target_os = "linux")]
    fn sleep(&self, seen: u32, timeout: Option<std::time::Duration>) {
        let timespec = timeout.map(|left| libc::timespec {
            tv_sec: libc::time_t::try_from(left.as_secs()).unwrap_or(libc::time_t::MAX),
            // Below one billion: fits a 32-bit `c_long` too.
            tv_nsec: left.subsec_nanos() as libc::c_long,
        });
        let timespec_ptr = timespec.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: the futex word is a live, aligned AtomicU32 owned by `self`;
        // FUTEX_WAIT only reads it, and returns at once if it no longer
        // equals `seen` (no wake-up can be lost between the check and the
        // sleep). The timeout, if any, outlives the call. Errors (EAGAIN,
        // EINTR, ETIMEDOUT) all mean "look again", which the caller does.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.value.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                seen,
                timespec_ptr,
            );
        }
    }

    #[cfg(target_os = "linux")]
    fn wake_all(&self) {
        // SAFETY: as in `sleep`; FUTEX_WAKE does not touch the word.
        unsafe {
            libc::syscall(libc::SYS_futex, self.value.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, i32::MAX);
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn sleep(&self, seen: u32, timeout: Option<std::time::Duration>) {
        {
            let mut sleepers = self.sleepers.lock().unwrap_or_else(|p| p.into_inner());
            if self.current() != seen {
                return;
            }
            sleepers.push(std::thread::current());
        }
        // An unpark between the unlock and here makes park return at once.
        match timeout {
            None => std::thread::park(),
            Some(left) => std::thread::park_timeout(left),
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn wake_all(&self) {
        let sleepers = std::mem::take(&mut *self.sleepers.lock().unwrap_or_else(|p| p.into_inner()));
        for sleeper in sleepers {
            sleeper.unpark();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn advance_wakes_every_sleeper() {
        let epoch = Arc::new(Epoch::default());
        let seen = epoch.current();
        let sleepers: Vec<_> = (0..4)
            .map(|_| {
                let epoch = epoch.clone();
                std::thread::spawn(move || epoch.wait_while(seen, None))
            })
            .collect();
        epoch.advance();
        for sleeper in sleepers {
            sleeper.join().expect("sleeper woke");
        }
        assert_ne!(epoch.current(), seen);
    }

    #[test]
    fn a_deadline_ends_the_wait() {
        let epoch = Epoch::default();
        let seen = epoch.current();
        let start = Instant::now();
        epoch.wait_while(seen, Some(start + Duration::from_millis(5)));
        assert!(start.elapsed() >= Duration::from_millis(5));
        assert_eq!(epoch.current(), seen);
    }

    #[test]
    fn spinning_sees_an_advance_or_stops_at_its_limit() {
        let epoch = Arc::new(Epoch::default());
        let seen = epoch.current();
        assert!(!epoch.spin_while(seen, Instant::now() + Duration::from_micros(50)));
        let advancer = {
            let epoch = epoch.clone();
            std::thread::spawn(move || epoch.advance())
        };
        assert!(epoch.spin_while(seen, Instant::now() + Duration::from_secs(60)));
        advancer.join().expect("advancer");
    }

    #[test]
    fn after_a_slow_yield_the_thread_sleeps_instead_of_polling() {
        let epoch = Epoch::default();
        let seen = epoch.current();
        // What a yield that returned SLOW_YIELD late leaves behind.
        POLL_PAUSED_UNTIL.set(Some(Instant::now() + Duration::from_secs(60)));
        let start = Instant::now();
        assert!(!epoch.spin_while(seen, start + Duration::from_secs(5)));
        assert!(start.elapsed() < Duration::from_secs(1), "returned at once instead of polling for 5 s");
        POLL_PAUSED_UNTIL.set(None);
    }

    #[test]
    fn a_stale_value_returns_at_once() {
        let epoch = Epoch::default();
        let seen = epoch.current();
        epoch.advance();
        epoch.wait_while(seen, None);
    }
}
