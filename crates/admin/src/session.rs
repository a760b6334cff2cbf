//! The web page's login sessions: a random id in a cookie (HttpOnly,
//! SameSite=Strict) that stands for the bearer token, and a CSRF token per
//! session that the page sends with every state-changing request.
//!
//! ```
//! use pauselog_admin::session::Sessions;
//! let sessions = Sessions::default();
//! let (id, csrf) = sessions.create();
//! assert_eq!(sessions.csrf_of(&id), Some(csrf));
//! sessions.remove(&id);
//! assert_eq!(sessions.csrf_of(&id), None);
//! ```

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The start of the session cookie's name; each router adds 8 random hex
/// digits of its own, because cookies do not tell the ports of one host
/// apart: two engines on 127.0.0.1 must not replace each other's sessions.
pub const COOKIE_NAME_PREFIX: &str = "pauselog_session_";
/// Sessions kept at once; a new login past this ends the least recently
/// used one.
pub const SESSIONS_MAX: usize = 64;
/// A session unused for this long ends.
pub const SESSION_IDLE_MAX: Duration = Duration::from_secs(8 * 3600);
/// Random bytes of a session id and of a CSRF token (shown as hex).
const SECRET_BYTES: usize = 32;

/// The sessions of one router, in memory: a restart logs everyone out.
#[derive(Debug)]
pub struct Sessions {
    cookie_name: String,
    by_id: Mutex<HashMap<String, Session>>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            cookie_name: format!("{COOKIE_NAME_PREFIX}{}", crate::token::random_hex(4)),
            by_id: Mutex::default(),
        }
    }
}

#[derive(Debug)]
struct Session {
    csrf: String,
    last_used: Instant,
}

/// A fresh random secret, as lowercase hex.
fn secret() -> String {
    crate::token::random_hex(SECRET_BYTES)
}

impl Sessions {
    /// The name of this router's session cookie.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// Starts a session: its id (the cookie's value) and its CSRF token.
    pub fn create(&self) -> (String, String) {
        let (id, csrf) = (secret(), secret());
        let mut sessions = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, session| session.last_used.elapsed() < SESSION_IDLE_MAX);
        if sessions.len() >= SESSIONS_MAX {
            let oldest = sessions.iter().min_by_key(|(_, s)| s.last_used).map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(id.clone(), Session { csrf: csrf.clone(), last_used: Instant::now() });
        (id, csrf)
    }

    /// The CSRF token of the live session `id`, which counts as used now.
    pub fn csrf_of(&self, id: &str) -> Option<String> {
        let mut sessions = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        let session = sessions.get_mut(id)?;
        if session.last_used.elapsed() >= SESSION_IDLE_MAX {
            sessions.remove(id);
            return None;
        }
        session.last_used = Instant::now();
        Some(session.csrf.clone())
    }

    /// Ends the session `id`.
    pub fn remove(&self, id: &str) {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_tokens_are_random_and_distinct() {
        let sessions = Sessions::default();
        let (a, csrf_a) = sessions.create();
        let (b, csrf_b) = sessions.create();
        assert_eq!(a.len(), 2 * SECRET_BYTES);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(a != b && csrf_a != csrf_b && a != csrf_a);
        assert_eq!(sessions.csrf_of(&a), Some(csrf_a));
        assert_eq!(sessions.csrf_of(&b), Some(csrf_b));
        assert_eq!(sessions.csrf_of("not-a-session"), None);
    }

    #[test]
    fn past_the_limit_the_least_recently_used_session_ends() {
        let sessions = Sessions::default();
        let ids: Vec<String> = (0..SESSIONS_MAX).map(|_| sessions.create().0).collect();
        assert!(sessions.csrf_of(&ids[0]).is_some(), "the first is used now, so the second is the oldest");
        let (newest, _) = sessions.create();
        assert!(sessions.csrf_of(&ids[1]).is_none());
        assert!(sessions.csrf_of(&ids[0]).is_some() && sessions.csrf_of(&newest).is_some());
    }
}
