//! Hooks for the fuzz targets in `fuzz/`: not part of the API, hidden
//! from the docs, and subject to change without notice.
//!
//! ```
//! use pauselog::fuzzing::{decode_meta_event, encode_meta_event};
//! // A version 2 commit that sets the replay head to 1.
//! let body = [2, 1, 3, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
//! let event = decode_meta_event(&body).expect("a valid event");
//! assert_eq!(encode_meta_event(&event), body);
//! assert!(decode_meta_event(&body[..5]).is_err());
//! ```

/// A decoded meta log event, opaque outside the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaEvent(crate::meta::MetaEvent);

/// Decodes a meta log body of any version the engine reads; `Err` says
/// why it is refused.
pub fn decode_meta_event(body: &[u8]) -> Result<MetaEvent, String> {
    crate::meta::decode_event(body).map(MetaEvent)
}

/// Encodes an event as the engine writes it now.
pub fn encode_meta_event(event: &MetaEvent) -> Vec<u8> {
    crate::meta::encode_event(&event.0)
}
