//! Page cursors bound to their map and list.
//!
//! The engine's cursors name a position and the key filter they were made
//! for, not the map: a cursor of `customers` would page `vendors` from the
//! same seq without complaint. The API therefore wraps each cursor it hands
//! out with the list and the map it belongs to, and refuses it anywhere
//! else with [`ErrorCode::BadCursor`]:
//!
//! `<list><crc>-<engine cursor>`, where `<list>` is `q` (queued) or `e`
//! (catch-up errors) and `<crc>` the CRC32, in 8 lowercase hex digits, of
//! the list letter, the map's name, a NUL and the engine cursor: a cursor
//! moved to another map or list, or edited, no longer matches its CRC.
//!
//! ```
//! use pauselog_admin::cursor::{bind, unbind, List};
//! let wrapped = bind(List::Queued, "customers", "0100");
//! assert_eq!(unbind(List::Queued, "customers", &wrapped).unwrap(), "0100");
//! assert!(unbind(List::Queued, "vendors", &wrapped).is_err());
//! assert!(unbind(List::Errors, "customers", &wrapped).is_err());
//! ```

use crate::schema::{ApiError, ErrorCode};

/// Which listing a cursor pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// The queued records.
    Queued,
    /// The catch-up errors.
    Errors,
}

impl List {
    fn tag(self) -> char {
        match self {
            List::Queued => 'q',
            List::Errors => 'e',
        }
    }

    fn name(self) -> &'static str {
        match self {
            List::Queued => "queued records",
            List::Errors => "catch-up errors",
        }
    }
}

/// Length of the `<list><crc>-` prefix.
const PREFIX_CHARS: usize = 10;

fn crc(list: List, map: &str, inner: &str) -> String {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[list.tag() as u8]);
    hasher.update(map.as_bytes());
    hasher.update(&[0]);
    hasher.update(inner.as_bytes());
    format!("{:08x}", hasher.finalize())
}

/// Wraps the engine cursor `inner` of `map`'s `list`.
pub fn bind(list: List, map: &str, inner: &str) -> String {
    format!("{}{}-{inner}", list.tag(), crc(list, map, inner))
}

/// The engine cursor inside `text`, if `text` was made by [`bind`] for
/// this `list` and `map`.
pub fn unbind<'a>(list: List, map: &str, text: &'a str) -> Result<&'a str, ApiError> {
    let bad = |why: String| ApiError::new(ErrorCode::BadCursor, format!("{why}; start again without `after`"));
    let (Some(prefix), Some(inner)) = (text.get(..PREFIX_CHARS), text.get(PREFIX_CHARS..)) else {
        return Err(bad("the cursor is too short to be one this API made".into()));
    };
    let made_for = [List::Queued, List::Errors].into_iter().find(|l| prefix.starts_with(l.tag()));
    let (Some(made_for), true) = (made_for, prefix.ends_with('-')) else {
        return Err(bad("the cursor is not one this API made".into()));
    };
    let stored = &prefix[1..9];
    if made_for == list && stored == crc(list, map, inner) {
        return Ok(inner);
    }
    let other = if list == List::Queued { List::Errors } else { List::Queued };
    if made_for == other && stored == crc(other, map, inner) {
        return Err(bad(format!("the cursor pages the {} of {map}, not its {}", other.name(), list.name())));
    }
    Err(bad(format!("the cursor was made for another table map than {map}, or was damaged")))
}
