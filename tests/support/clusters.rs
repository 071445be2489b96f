//! Servers beside the script-started ones: databases created per test, PgBouncer in front
//! of Postgres, and whole Postgres clusters a test may stop and restart. Each stops what it
//! started when dropped.

use std::path::PathBuf;

use uuid::Uuid;

use super::env::required_env;
use super::provision::create_database;

/// What Supabase sets up in a project's database before any app migration runs, as far as
/// ragworker meets it: roles, default privileges, the `extensions` schema with pgvector, the
/// `auth` and `storage` schemas owned by their services, `postgres`' search_path.
pub const SUPABASE_SQL: &str = include_str!("supabase.sql");

/// A new empty database on the script-started server, named `<prefix>_<random>`; its URL.
pub async fn fresh_database(prefix: &str) -> String {
    create_database(
        &required_env("RAGWORKER_TEST_DATABASE_URL"),
        &format!("{prefix}_{}", Uuid::new_v4().simple()),
    )
    .await
}

/// PgBouncer from Debian's packages in front of the test server, on loopback, as the
/// pooler Supabase users are handed (`pool_mode` "transaction" or "session"). Stopped on drop.
pub struct PgBouncer {
    port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl PgBouncer {
    pub fn start(pool_mode: &str, pool_size: u32) -> Self {
        Self::start_with(pool_mode, pool_size, "extra_float_digits")
    }

    /// With `ignore_startup_parameters` as given ("" for PgBouncer's stock setting).
    pub fn start_with(pool_mode: &str, pool_size: u32, ignore_startup_parameters: &str) -> Self {
        let server = required_env("RAGWORKER_TEST_DATABASE_URL");
        let server_port = server
            .rsplit_once(':')
            .and_then(|(_, rest)| rest.split('/').next())
            .unwrap()
            .to_string();
        let dir = tempfile::Builder::new()
            .prefix("rw-bouncer-")
            .tempdir_in("/tmp")
            .unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let root = dir.path().display().to_string();
        std::fs::write(dir.path().join("users.txt"), "\"postgres\" \"\"\n").unwrap();
        // Stock settings but one: sqlx sends extra_float_digits at start-up, which PgBouncer
        // refuses unless told to ignore it (Supabase's Supavisor accepts it).
        std::fs::write(
            dir.path().join("pgbouncer.ini"),
            format!(
                "[databases]\n* = host=127.0.0.1 port={server_port}\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {root}/users.txt\npool_mode = {pool_mode}\n\
                 default_pool_size = {pool_size}\nmax_client_conn = 500\n\
                 ignore_startup_parameters = {ignore_startup_parameters}\n\
                 logfile = {root}/pgbouncer.log\npidfile = {root}/pgbouncer.pid\n"
            ),
        )
        .unwrap();
        run_as_postgres(&format!("chown -R postgres {root}"), false);
        // PgBouncer refuses to run as root: -u switches to postgres at start.
        let child = std::process::Command::new("/usr/sbin/pgbouncer")
            .args(["-u", "postgres"])
            .arg(dir.path().join("pgbouncer.ini"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("pgbouncer (scripts/test.sh installs Debian's package)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "pgbouncer did not start: {}",
                std::fs::read_to_string(dir.path().join("pgbouncer.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self {
            port,
            child,
            _dir: dir,
        }
    }

    /// The URL of `database_url`'s database through the pooler.
    pub fn url(&self, database_url: &str) -> String {
        let db = database_url.rsplit_once('/').unwrap().1;
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private PostgreSQL cluster for tests that restart the server.
pub struct PgCluster {
    pub admin_url: String,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl PgCluster {
    const BIN: &'static str = "/usr/lib/postgresql/15/bin";

    pub fn start() -> Self {
        Self::start_as("postgres")
    }

    /// A cluster whose superuser is `superuser` (Supabase's is `supabase_admin`, and its
    /// `postgres` is an ordinary role).
    pub fn start_as(superuser: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("rw-pg-")
            .tempdir_in("/tmp")
            .unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let root = dir.path().display().to_string();
        let d = data.display().to_string();
        run_as_postgres(
            &format!("chown -R postgres {root} && chmod 755 {root}"),
            false,
        );
        run_as_postgres(
            &format!(
                "{}/initdb -D {d} -A trust -U {superuser} >/dev/null",
                Self::BIN
            ),
            true,
        );
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{root}'\nfsync = off\nsynchronous_commit = off\nmax_connections = 100\n"
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, conf.as_bytes()))
            .unwrap();
        let cluster = Self {
            admin_url: format!("postgres://{superuser}@127.0.0.1:{port}/postgres"),
            data,
            _dir: dir,
        };
        cluster.ctl("start -w");
        cluster
    }

    fn ctl(&self, action: &str) {
        run_as_postgres(
            &format!(
                "{}/pg_ctl -D {} -l {}/log {action} >/dev/null",
                Self::BIN,
                self.data.display(),
                self.data.display()
            ),
            true,
        );
    }

    /// A fast shutdown (connections are cut) and start.
    pub fn restart(&self) {
        self.ctl("restart -m fast -w");
    }

    /// Down for `outage`: a fast shutdown, then a start.
    pub fn outage(&self, outage: std::time::Duration) {
        self.ctl("stop -m fast -w");
        std::thread::sleep(outage);
        self.ctl("start -w");
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.ctl("stop -m immediate");
    }
}

fn run_as_postgres(script: &str, as_postgres: bool) {
    let status = if as_postgres {
        std::process::Command::new("su")
            .args(["postgres", "-c", script])
            .status()
    } else {
        std::process::Command::new("sh")
            .args(["-c", script])
            .status()
    }
    .unwrap();
    assert!(status.success(), "{script} failed");
}
