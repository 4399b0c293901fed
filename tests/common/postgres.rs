//! A private PostgreSQL cluster for a test: `initdb` into a temp dir, `postgres` on
//! 127.0.0.1 on a free port (its unix socket in the temp dir too), one database per call to
//! [`PgCluster::create_db`]. Dropping the cluster stops the server (`pg_ctl stop -m
//! immediate`) and removes the temp dir. A watchdog shell does the same if the test process
//! dies without dropping it (SIGKILL, abort), so no server outlives its test.
//!
//! The binaries are found in `$SHIPLOG_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`
//! (Debian's layout), else `PATH`. Without them [`PgCluster::start`] returns `None` and the
//! test prints why and passes, except under `CI=true`, where it fails: CI must run them.
//!
//! `initdb` refuses to run as root, so as root every server command runs as the `postgres`
//! system user (`runuser -u postgres --`), in a temp dir handed to that user.
//!
//! Each test starts its own cluster (about a second with `--no-sync` and `fsync=off`): under
//! nextest every test is its own process, so a cluster shared through a static would be
//! started as often and never be dropped.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The system user that runs the server when the tests run as root.
const PG_USER: &str = "postgres";

/// A running private cluster.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_pg_user: bool,
    server: Option<Child>,
    watchdog: Option<Child>,
    databases: AtomicU32,
}

/// Where the PostgreSQL server binaries are, if anywhere.
pub fn find_bin_dir() -> Option<PathBuf> {
    let has = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("SHIPLOG_PG_BIN") {
        let dir = PathBuf::from(dir);
        return has(&dir).then_some(dir);
    }
    // Debian: /usr/lib/postgresql/<major>/bin; the newest major wins.
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has(&bin).then_some((major, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).find(|p| has(p)))
}

fn running_as_root() -> bool {
    // /proc/self belongs to the effective user of this process.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl PgCluster {
    /// Starts a cluster, or returns `None` (after saying why) when PostgreSQL is not
    /// installed. Under `CI=true` a missing PostgreSQL fails the test instead.
    pub fn start() -> Option<PgCluster> {
        let Some(bin) = find_bin_dir() else {
            let why = "PostgreSQL server binaries not found (looked in $SHIPLOG_PG_BIN, \
                       /usr/lib/postgresql/*/bin and PATH; Debian: apt-get install postgresql)";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{why}; CI=true requires them");
            }
            eprintln!("SKIPPED: {why}");
            return None;
        };
        let as_pg_user = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("shiplog-pg-")
            .tempdir()
            .expect("temp dir");
        if as_pg_user {
            let status = Command::new("chown")
                .args([
                    &format!("{PG_USER}:"),
                    dir.path().to_str().expect("utf-8 path"),
                ])
                .status()
                .expect("run chown");
            assert!(status.success(), "chown {PG_USER} {}", dir.path().display());
        }
        let mut cluster = PgCluster {
            dir,
            bin,
            port: 0,
            as_pg_user,
            server: None,
            watchdog: None,
            databases: AtomicU32::new(0),
        };
        cluster.initdb();
        // A port picked now may be taken before the server binds it: try a few.
        for attempt in 0..5 {
            cluster.port = free_port();
            if cluster.spawn_server() {
                cluster.spawn_watchdog();
                return Some(cluster);
            }
            eprintln!(
                "postgres did not start on port {} (attempt {attempt})",
                cluster.port
            );
        }
        panic!("postgres did not start:\n{}", cluster.log());
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A command for a server binary, run as the `postgres` user when we are root.
    fn pg_command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_pg_user {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", PG_USER, "--"]).arg(path);
            cmd
        } else {
            Command::new(path)
        }
    }

    fn initdb(&self) {
        let out = self
            .pg_command("initdb")
            .arg("-D")
            .arg(self.data_dir())
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "--encoding=UTF8",
                // Byte order for text, as SQLite compares it.
                "--locale=C",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server and waits until it accepts connections; `false` if it exited.
    fn spawn_server(&mut self) -> bool {
        let log = std::fs::File::create(self.dir.path().join("postgres.log")).expect("log file");
        let socket_dir = self.dir.path().to_str().expect("utf-8 path").to_string();
        let child = self
            .pg_command("postgres")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", &format!("unix_socket_directories={socket_dir}")])
            // A test's data need not survive a crash.
            .args(["-c", "fsync=off"])
            .args(["-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off"])
            .args(["-c", "max_connections=40"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn postgres");
        self.server = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(child) = self.server.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                self.server = None;
                return false;
            }
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("postgres did not become ready:\n{}", self.log());
    }

    /// Stops the server and removes the temp dir if this process dies without dropping us.
    fn spawn_watchdog(&mut self) {
        let data = self.data_dir();
        let stop = if self.as_pg_user {
            format!("runuser -u {PG_USER} -- ")
        } else {
            String::new()
        };
        let script = format!(
            "while [ -d /proc/{pid} ] && [ -f '{data}/postmaster.pid' ]; do sleep 1; done; \
             if [ -f '{data}/postmaster.pid' ]; then \
               {stop}'{pg_ctl}' stop -D '{data}' -m immediate >/dev/null 2>&1; \
               rm -rf '{dir}'; \
             fi",
            pid = std::process::id(),
            data = data.display(),
            pg_ctl = self.bin.join("pg_ctl").display(),
            dir = self.dir.path().display(),
        );
        self.watchdog = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// The URL of database `db` on this cluster.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a fresh, empty database and returns its URL.
    pub fn create_db(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::SeqCst);
        let name = format!("test_{n}");
        let out = Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", &name])
            .stdin(Stdio::null())
            .output()
            .expect("run createdb");
        assert!(
            out.status.success(),
            "createdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url(&name)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let stopped = self
                .pg_command("pg_ctl")
                .arg("stop")
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", "immediate", "-w"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !stopped {
                let _ = server.kill();
            }
            let _ = server.wait();
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

/// Runs `f` with a connection to `url` on a runtime of its own (the tests are synchronous).
pub fn with_client<T>(url: &str, f: impl AsyncFnOnce(&tokio_postgres::Client) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect to the test cluster");
        let driver = tokio::spawn(connection);
        let out = f(&client).await;
        drop(client);
        let _ = driver.await;
        out
    })
}

/// The rows of `sql` on `url`.
pub fn query(url: &str, sql: &str) -> Vec<tokio_postgres::Row> {
    let sql = sql.to_string();
    with_client(url, async move |c| {
        c.query(sql.as_str(), &[]).await.expect("query")
    })
}

/// Runs `sql` (one or more statements) on `url`.
pub fn execute(url: &str, sql: &str) {
    let sql = sql.to_string();
    with_client(url, async move |c| {
        c.batch_execute(sql.as_str()).await.expect("execute")
    })
}

/// One `bigint` from `sql` on `url`.
pub fn count(url: &str, sql: &str) -> i64 {
    query(url, sql)[0].get(0)
}
