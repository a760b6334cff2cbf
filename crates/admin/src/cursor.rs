//! Page cursors bound to their map and list.
//!
//! The engine's cursors name a position and the key filter they were made
//! for, not the map: a cursor of `customers` would page `vendors` from the
//! same seq without complaint. The API therefore wraps each cursor it hands
//! out with the list and the map it belongs to, and refuses it anywhere
//! else with [`ErrorCode::BadCursor`]:
//!
//! `<list><crc>-<engine cursor>`, where `<list>` is `q` (queued) or `e`
//! (catch-up errors) and `<crc>` the CRC32 of the map's name in 8 lowercase
//! hex digits.
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

/// Wraps the engine cursor `inner` of `map`'s `list`.
pub fn bind(list: List, map: &str, inner: &str) -> String {
    format!("{}{:08x}-{inner}", list.tag(), crc32fast::hash(map.as_bytes()))
}

/// The engine cursor inside `text`, if `text` was made by [`bind`] for
/// this `list` and `map`.
pub fn unbind<'a>(list: List, map: &str, text: &'a str) -> Result<&'a str, ApiError> {
    let bad = |why: String| ApiError::new(ErrorCode::BadCursor, format!("{why}; start again without `after`"));
    let (Some(prefix), Some(inner)) = (text.get(..PREFIX_CHARS), text.get(PREFIX_CHARS..)) else {
        return Err(bad("the cursor is too short to be one this API made".into()));
    };
    let mut chars = prefix.chars();
    let tag = chars.next().expect("the prefix has ten characters");
    let crc = &prefix[1..9];
    if !prefix.ends_with('-') || !crc.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(bad("the cursor is not one this API made".into()));
    }
    let other = [List::Queued, List::Errors].into_iter().find(|l| l.tag() == tag);
    match other {
        None => return Err(bad("the cursor is not one this API made".into())),
        Some(other) if other != list => {
            return Err(bad(format!("the cursor pages the {}, not the {}", other.name(), list.name())))
        }
        Some(_) => {}
    }
    if crc != format!("{:08x}", crc32fast::hash(map.as_bytes())) {
        return Err(bad(format!("the cursor was made for another table map than {map}")));
    }
    Ok(inner)
}
