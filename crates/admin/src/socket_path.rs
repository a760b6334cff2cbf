//! Where the Unix socket of a data directory lives, and how to reach a path
//! longer than `sockaddr_un` holds.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The directory, inside the data directory, that holds the socket (mode 0700).
pub const SOCKET_DIR_NAME: &str = "admin";
/// The socket's file name (mode 0600).
pub const SOCKET_FILE_NAME: &str = "admin.sock";

/// Longest path `bind`/`connect` take (`sun_path` is 108 bytes with its NUL).
const SUN_PATH_BYTES_MAX: usize = 107;

/// `<data dir>/admin/admin.sock`.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_DIR_NAME).join(SOCKET_FILE_NAME)
}

/// Runs `f` with a path to `socket` short enough for `bind` and `connect`:
/// the path itself, or, when it is too long, the same file reached through
/// `/proc/self/fd/<fd of its directory>/` (Linux resolves that link to the
/// directory itself, so the socket is still created in, and found in, the
/// data directory).
pub fn with_short_path<T>(socket: &Path, f: impl FnOnce(&Path) -> std::io::Result<T>) -> std::io::Result<T> {
    if socket.as_os_str().len() <= SUN_PATH_BYTES_MAX {
        return f(socket);
    }
    let (Some(parent), Some(name)) = (socket.parent(), socket.file_name()) else { return f(socket) };
    let dir = std::fs::File::open(parent)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name);
    let result = f(&short);
    drop(dir);
    result
}
