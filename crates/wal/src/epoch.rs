//! A counter that threads sleep on until it changes: how group commit wakes
//! the writers an fsync covered.
//!
//! On Linux the sleepers wait on a futex on the counter itself, so one system
//! call wakes all of them, and a woken writer needs no lock to see that its
//! record is durable. With 8 writers on 2 cores this halved the time from the
//! end of one fsync to the start of the next against a condition variable,
//! whose woken threads queue up on its mutex one by one. Elsewhere sleepers
//! register and are unparked one by one ([`Parked`], also tested on Linux).

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

/// A wake-up counter; see the module docs. `S` is how its sleepers sleep:
/// a futex on Linux, parking elsewhere (and in tests, so that path is
/// compiled and checked on Linux too).
#[derive(Debug, Default)]
pub(crate) struct Epoch<S: Sleep = DefaultSleep> {
    value: AtomicU32,
    sleepers: S,
}

impl<S: Sleep> Epoch<S> {
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
            self.sleepers.sleep(&self.value, seen, timeout);
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
        self.sleepers.wake_all(&self.value);
    }
}

/// How the sleepers of an [`Epoch`] sleep on its counter `word`.
pub(crate) trait Sleep: Default + std::fmt::Debug {
    /// Sleeps until woken, `timeout` passed, or (maybe spuriously) at
    /// once; returns at once if `word` no longer equals `seen`, so no
    /// wake-up is lost between the caller's check and the sleep.
    fn sleep(&self, word: &AtomicU32, seen: u32, timeout: Option<Duration>);
    /// Wakes every sleeper (after `word` changed).
    fn wake_all(&self, word: &AtomicU32);
}

#[cfg(target_os = "linux")]
pub(crate) type DefaultSleep = Futex;
#[cfg(not(target_os = "linux"))]
pub(crate) type DefaultSleep = Parked;

/// Sleepers wait on a futex on the counter itself: one system call wakes
/// them all.
#[cfg(target_os = "linux")]
#[derive(Debug, Default)]
pub(crate) struct Futex;

#[cfg(target_os = "linux")]
impl Sleep for Futex {
    fn sleep(&self, word: &AtomicU32, seen: u32, timeout: Option<Duration>) {
        let timespec = timeout.map(|left| libc::timespec {
            tv_sec: libc::time_t::try_from(left.as_secs()).unwrap_or(libc::time_t::MAX),
            // Below one billion: fits a 32-bit `c_long` too.
            tv_nsec: left.subsec_nanos() as libc::c_long,
        });
        let timespec_ptr = timespec.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: the futex word is a live, aligned AtomicU32 borrowed for
        // the call; FUTEX_WAIT only reads it, and returns at once if it no
        // longer equals `seen` (no wake-up can be lost between the check and
        // the sleep). The timeout, if any, outlives the call. Errors (EAGAIN,
        // EINTR, ETIMEDOUT) all mean "look again", which the caller does.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                seen,
                timespec_ptr,
            );
        }
    }

    fn wake_all(&self, word: &AtomicU32) {
        // SAFETY: as in `sleep`; FUTEX_WAKE does not touch the word.
        unsafe {
            libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, i32::MAX);
        }
    }
}

/// Sleepers register under a lock and park; waking unparks them one by one.
#[cfg(any(not(target_os = "linux"), test))]
#[derive(Debug, Default)]
pub(crate) struct Parked {
    sleepers: std::sync::Mutex<Vec<std::thread::Thread>>,
}

#[cfg(any(not(target_os = "linux"), test))]
impl Sleep for Parked {
    fn sleep(&self, word: &AtomicU32, seen: u32, timeout: Option<Duration>) {
        {
            let mut sleepers = self.sleepers.lock().unwrap_or_else(|p| p.into_inner());
            // Checked under the lock `wake_all` takes after the change.
            if word.load(Ordering::Acquire) != seen {
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

    fn wake_all(&self, _word: &AtomicU32) {
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

    /// Each test runs with the platform's sleep (the futex on Linux) and
    /// with parking, the path of every other platform.
    macro_rules! for_each_sleep {
        ($($test:ident),* $(,)?) => {
            mod default_sleep {
                $(#[test] fn $test() { super::$test::<super::DefaultSleep>() })*
            }
            mod parked {
                $(#[test] fn $test() { super::$test::<super::Parked>() })*
            }
        };
    }

    for_each_sleep!(
        advance_wakes_every_sleeper,
        a_deadline_ends_the_wait,
        spinning_sees_an_advance_or_stops_at_its_limit,
        after_a_slow_yield_the_thread_sleeps_instead_of_polling,
        a_stale_value_returns_at_once,
    );

    fn advance_wakes_every_sleeper<S: Sleep + Send + Sync + 'static>() {
        let epoch = Arc::new(Epoch::<S>::default());
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

    fn a_deadline_ends_the_wait<S: Sleep>() {
        let epoch = Epoch::<S>::default();
        let seen = epoch.current();
        let start = Instant::now();
        epoch.wait_while(seen, Some(start + Duration::from_millis(5)));
        assert!(start.elapsed() >= Duration::from_millis(5));
        assert_eq!(epoch.current(), seen);
    }

    fn spinning_sees_an_advance_or_stops_at_its_limit<S: Sleep + Send + Sync + 'static>() {
        let epoch = Arc::new(Epoch::<S>::default());
        let seen = epoch.current();
        assert!(!epoch.spin_while(seen, Instant::now() + Duration::from_micros(50)));
        let advancer = {
            let epoch = epoch.clone();
            std::thread::spawn(move || epoch.advance())
        };
        // A slow yield (a loaded machine) may end the polling early: then
        // the caller sleeps, as `sync_through` does.
        if !epoch.spin_while(seen, Instant::now() + Duration::from_secs(60)) {
            epoch.wait_while(seen, None);
        }
        assert_ne!(epoch.current(), seen);
        advancer.join().expect("advancer");
        POLL_PAUSED_UNTIL.set(None);
    }

    fn after_a_slow_yield_the_thread_sleeps_instead_of_polling<S: Sleep>() {
        let epoch = Epoch::<S>::default();
        let seen = epoch.current();
        // What a yield that returned SLOW_YIELD late leaves behind.
        POLL_PAUSED_UNTIL.set(Some(Instant::now() + Duration::from_secs(60)));
        let start = Instant::now();
        assert!(!epoch.spin_while(seen, start + Duration::from_secs(5)));
        assert!(start.elapsed() < Duration::from_secs(1), "returned at once instead of polling for 5 s");
        POLL_PAUSED_UNTIL.set(None);
    }

    fn a_stale_value_returns_at_once<S: Sleep>() {
        let epoch = Epoch::<S>::default();
        let seen = epoch.current();
        epoch.advance();
        epoch.wait_while(seen, None);
    }
}
