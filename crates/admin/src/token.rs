//! The bearer token of the loopback TCP listener, read from a file that
//! only its owner can read.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Fewest characters of a token.
pub const TOKEN_CHARS_MIN: usize = 16;
/// Most characters of a token.
pub const TOKEN_CHARS_MAX: usize = 4096;

/// A bearer token. `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

/// Why a token file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The file could not be read.
    #[error("cannot read the admin token file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Others could read it, or another user owns it.
    #[error("the admin token file {path} has mode {mode:o} and owner uid {owner}; it must be a regular file of uid {uid} that only its owner can read (chmod 600)")]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// Its owner.
        owner: u32,
        /// This process's effective uid.
        uid: u32,
    },
    /// The content is not a usable token.
    #[error("the admin token file {path} must hold one token of {TOKEN_CHARS_MIN}-{TOKEN_CHARS_MAX} printable ASCII characters without spaces")]
    Malformed {
        /// The file.
        path: PathBuf,
    },
}

impl Token {
    /// A token from text; `None` unless it is 16–4096 printable ASCII
    /// characters without spaces.
    pub fn new(text: &str) -> Option<Token> {
        let valid =
            (TOKEN_CHARS_MIN..=TOKEN_CHARS_MAX).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic());
        valid.then(|| Token(text.to_owned()))
    }

    /// Reads the token from `path`: a regular file owned by this process's
    /// user, with no permission bits for group or others (mode 0600 or
    /// 0400), holding the token and at most surrounding whitespace.
    pub fn from_file(path: &Path) -> Result<Token, TokenError> {
        let io = |source| TokenError::Io { path: path.to_path_buf(), source };
        let metadata = std::fs::metadata(path).map_err(io)?;
        let uid = rustix::process::geteuid().as_raw();
        let mode = metadata.mode() & 0o7777;
        if !metadata.is_file() || metadata.uid() != uid || mode & 0o077 != 0 {
            return Err(TokenError::Exposed { path: path.to_path_buf(), mode, owner: metadata.uid(), uid });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Token::new(text.trim()).ok_or_else(|| TokenError::Malformed { path: path.to_path_buf() })
    }

    /// A fresh token of 32 random hex digits (128 bits) from the OS.
    pub fn generate() -> Token {
        Token(random_hex(16))
    }

    /// The token's text (to send it).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Compares in time independent of where the texts differ.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        constant_time_eq::constant_time_eq(self.0.as_bytes(), candidate)
    }
}

/// `bytes` random bytes from the OS, as lowercase hex.
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::getrandom(&mut buffer).expect("the OS random source works (getrandom(2) does not fail once seeded)");
    buffer.iter().map(|b| format!("{b:02x}")).collect()
}
