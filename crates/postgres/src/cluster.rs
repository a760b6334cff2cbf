//! [`ThrowawayCluster`]: a PostgreSQL server of its own on a temp directory,
//! for tests, benches and demos — and for stopping and starting it, as a
//! maintenance window would.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Environment variable naming the directory of `initdb` and `pg_ctl`,
/// when they are neither where `pg_config --bindir` says nor under
/// `/usr/lib/postgresql/*/bin` (Debian's place) nor on `PATH`.
pub const BIN_DIR_ENV: &str = "PAUSELOG_PG_BIN";

/// The role and database of a throwaway cluster (trust authentication,
/// loopback only).
pub const SUPERUSER: &str = "postgres";

/// Tries at starting on a free port before giving up (another process may
/// take the port between the probe and the server's bind).
const START_TRIES_MAX: usize = 3;

/// Longest wait for the server to start or stop.
const PG_CTL_WAIT: Duration = Duration::from_secs(60);

/// Why a throwaway cluster could not be made, started or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// No `initdb`/`pg_ctl` found.
    #[error(
        "PostgreSQL's server programs (initdb, pg_ctl) were not found: install them (Debian: \
         `apt-get install postgresql`) or set {BIN_DIR_ENV} to their directory"
    )]
    NoBinaries,
    /// Running as root, and no unprivileged user to run the server as.
    #[error("initdb refuses to run as root and there is no `postgres` user to run it as: create one")]
    NoServerUser,
    /// A file operation on the cluster's directory failed.
    #[error("throwaway PostgreSQL cluster in {dir}: {what}: {source}")]
    Io {
        /// The cluster's directory.
        dir: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A server program exited with an error.
    #[error("throwaway PostgreSQL cluster in {dir}: `{command}` failed: {output}")]
    Command {
        /// The cluster's directory.
        dir: PathBuf,
        /// The program and its arguments.
        command: String,
        /// Its stderr and stdout, and the end of the server log.
        output: String,
    },
}

/// A PostgreSQL cluster made by `initdb` in a temp directory, listening on
/// 127.0.0.1 only, on a free port, with trust authentication for the
/// `postgres` role. Stopped (immediately) and removed on drop.
///
/// Run as root (as CI does), it runs the server programs as the `postgres`
/// user through `runuser`, since `initdb` refuses root.
///
/// ```no_run
/// let cluster = pauselog_postgres::ThrowawayCluster::start()?;
/// let mut client = postgres::Client::connect(&cluster.url(), postgres::NoTls)?;
/// client.batch_execute("CREATE TABLE t (key text PRIMARY KEY, seq bigint NOT NULL)")?;
/// cluster.stop()?; // the maintenance window
/// cluster.start_again()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ThrowawayCluster {
    /// Holds `data/` and `server.log`; removed on drop.
    dir: tempfile::TempDir,
    bin_dir: PathBuf,
    port: u16,
    /// The user that runs the server programs, when we are root.
    run_as: Option<String>,
}

impl ThrowawayCluster {
    /// Makes a cluster (`initdb`) and starts it.
    pub fn start() -> Result<ThrowawayCluster, ClusterError> {
        let bin_dir = find_bin_dir().ok_or(ClusterError::NoBinaries)?;
        let dir = tempfile::Builder::new().prefix("pauselog-pg-").tempdir().map_err(|source| ClusterError::Io {
            dir: std::env::temp_dir(),
            what: "creating the directory",
            source,
        })?;
        let run_as = if is_root() { Some(server_user(dir.path())?) } else { None };
        let mut cluster = ThrowawayCluster { dir, bin_dir, port: 0, run_as };
        cluster
            .run("initdb", &["-D", "data", "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"])?;
        let settings = "\n# pauselog throwaway cluster\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n\
                        max_connections = 100\n";
        let conf = cluster.data_dir().join("postgresql.conf");
        let append = |conf: &Path| -> std::io::Result<()> {
            use std::io::Write;
            std::fs::OpenOptions::new().append(true).open(conf)?.write_all(settings.as_bytes())
        };
        append(&conf).map_err(|source| cluster.io_error("writing postgresql.conf", source))?;
        let mut last_error = None;
        for _ in 0..START_TRIES_MAX {
            cluster.port = free_port().map_err(|source| cluster.io_error("finding a free port", source))?;
            match cluster.start_again() {
                Ok(()) => return Ok(cluster),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.expect("at least one try"))
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/postgres", self.port)
    }

    /// The TCP port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Stops the server (`pg_ctl stop -m fast`: open sessions are ended,
    /// new connections refused), as an operator does for maintenance.
    pub fn stop(&self) -> Result<(), ClusterError> {
        self.pg_ctl(&["stop", "-m", "fast"])
    }

    /// Starts the (stopped) server again on the same port and data.
    pub fn start_again(&self) -> Result<(), ClusterError> {
        let port = self.port.to_string();
        self.pg_ctl(&["start", "-l", "server.log", "-o", &format!("-p {port}")])
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), ClusterError> {
        let wait = PG_CTL_WAIT.as_secs().to_string();
        let mut all = vec!["-D", "data", "-w", "-t", &wait];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all)
    }

    /// Runs a server program in the cluster's directory, as the server user.
    fn run(&self, program: &str, args: &[&str]) -> Result<(), ClusterError> {
        let path = self.bin_dir.join(program);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(&path);
                command
            }
            None => Command::new(&path),
        };
        command.args(args).current_dir(self.dir.path()).stdin(std::process::Stdio::null());
        let output = command.output().map_err(|source| self.io_error("running a server program", source))?;
        if output.status.success() {
            return Ok(());
        }
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let log_tail: Vec<&str> = log.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect();
        Err(ClusterError::Command {
            dir: self.dir.path().to_owned(),
            command: format!("{} {}", path.display(), args.join(" ")),
            output: format!(
                "{}; stderr: {}; stdout: {}; server log: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim(),
                String::from_utf8_lossy(&output.stdout).trim(),
                log_tail.join(" | ")
            ),
        })
    }

    fn io_error(&self, what: &'static str, source: std::io::Error) -> ClusterError {
        ClusterError::Io { dir: self.dir.path().to_owned(), what, source }
    }
}

impl Drop for ThrowawayCluster {
    fn drop(&mut self) {
        if self.port != 0 && self.data_dir().join("postmaster.pid").exists() {
            // Immediate: the data is thrown away next, nothing to flush.
            let _ = self.pg_ctl(&["stop", "-m", "immediate"]);
        }
    }
}

/// Where `initdb` and `pg_ctl` are: `PAUSELOG_PG_BIN`, `pg_config --bindir`,
/// the newest `/usr/lib/postgresql/*/bin`, or `PATH`.
pub fn find_bin_dir() -> Option<PathBuf> {
    let has_programs = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        return Some(PathBuf::from(dir)).filter(|dir| has_programs(dir));
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    if let Some(dir) = from_pg_config.filter(|dir| has_programs(dir)) {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_programs(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Some(dir);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).find(|dir| has_programs(dir))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

/// The `postgres` user, after giving it the cluster's directory.
fn server_user(dir: &Path) -> Result<String, ClusterError> {
    let id = |flag: &str| -> Option<u32> {
        let output = Command::new("id").args([flag, SUPERUSER]).output().ok()?;
        String::from_utf8_lossy(&output.stdout).trim().parse().ok()
    };
    let (Some(uid), Some(gid)) = (id("-u"), id("-g")) else {
        return Err(ClusterError::NoServerUser);
    };
    std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(|source| ClusterError::Io {
        dir: dir.to_owned(),
        what: "giving the directory to the postgres user",
        source,
    })?;
    Ok(SUPERUSER.to_owned())
}

/// A port that was free on 127.0.0.1 a moment ago.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}
