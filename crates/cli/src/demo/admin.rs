//! `--admin` and `--hold`: the token file of the admin web page, and
//! keeping the engine open after the demo for a second terminal to steer.

use std::path::{Path, PathBuf};

use pauselog::Engine;

use super::MAP_NAME;
use crate::CliError;

/// The file `--admin` keeps its token in, inside the data directory.
const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Writes a fresh token to `<dir>/admin-token`, readable by this user only.
pub(super) fn write_admin_token(dir: &Path) -> Result<(pauselog_admin::Token, PathBuf), CliError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let token = pauselog_admin::Token::generate();
    let path = dir.join(ADMIN_TOKEN_FILE);
    let io = |e: std::io::Error| CliError::Io(format!("cannot write the admin token file {}: {e}", path.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let _ = std::fs::remove_file(&path);
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(io)?;
    writeln!(file, "{}", token.as_str()).map_err(io)?;
    Ok((token, path))
}

pub(super) fn print_admin_page(addr: std::net::SocketAddr, token: &pauselog_admin::Token, file: &Path) {
    println!("admin web page: http://{addr}/ui/");
    println!("admin token: {} (in {})", token.as_str(), file.display());
    println!("metrics: http://{addr}/metrics (Authorization: Bearer <token>)");
}

/// Keeps `engine` open until SIGINT or SIGTERM, after saying where its
/// admin socket is and what to try.
pub(super) fn hold_until_interrupted(engine: &Engine, dir: &Path) -> Result<(), CliError> {
    let (interrupted, wait) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = interrupted.send(());
    })
    .map_err(|e| CliError::Io(format!("cannot catch Ctrl-C to hold the engine: {e}")))?;
    let socket = engine.admin_socket_path().ok_or_else(|| {
        CliError::Failed("the engine serves no admin socket, so there is nothing to hold it open for".into())
    })?;
    let dir = dir.display();
    println!("\n== Holding the engine open until interrupted (Ctrl-C) ==");
    if let Some(addr) = engine.admin_tcp_addr() {
        println!(
            "admin web page: http://{addr}/ui/ (log in with the token printed above, in {dir}/{ADMIN_TOKEN_FILE})"
        );
    }
    println!("admin socket: {}", socket.display());
    println!("the map {MAP_NAME} is paused with a backlog and a few catch-up errors; from a second terminal try:");
    for command in [
        format!("pauselog status --dir {dir}"),
        format!("pauselog queued --dir {dir} --limit 5"),
        format!("pauselog resume --dir {dir} --mode catch-up"),
        format!("pauselog watch --dir {dir}"),
        format!("pauselog retry --dir {dir} --wait"),
        format!("pauselog pause --dir {dir}"),
    ] {
        println!("  {command}");
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let _ = wait.recv();
    println!("interrupted: closing the engine");
    Ok(())
}
