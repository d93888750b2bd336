//! A PostgreSQL cluster of the suite's own: `initdb` in a scratch directory, served on a free
//! port of 127.0.0.1 with trust authentication, so a scenario may stop and start it without
//! touching any server others use. Run as root, its commands run as the `postgres` OS user
//! (`initdb` refuses root).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use sales_bench::service::free_port;

pub struct Cluster {
    bin_dir: PathBuf,
    /// `data/` (the cluster), the socket and `postgres.log`; removed on drop.
    dir: tempfile::TempDir,
    pub port: u16,
    /// Run as root: the commands run as `postgres` through `runuser`.
    as_postgres: bool,
}

/// The uid and gid of an OS user, from `id`.
fn user_ids(user: &str) -> anyhow::Result<(u32, u32)> {
    let id = |flag: &str| -> anyhow::Result<u32> {
        let out = Command::new("id")
            .args([flag, user])
            .output()
            .context("running id")?;
        if !out.status.success() {
            bail!("no OS user {user:?} to run PostgreSQL as (initdb refuses root)");
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
    };
    Ok((id("-u")?, id("-g")?))
}

impl Cluster {
    /// `initdb`, then starts the server; `bin_dir` holds `initdb`, `pg_ctl` and `postgres`.
    pub fn start(bin_dir: &Path) -> anyhow::Result<Self> {
        for tool in ["initdb", "pg_ctl", "postgres"] {
            anyhow::ensure!(
                bin_dir.join(tool).exists(),
                "no {tool} in {} (pass --pg-bin-dir, e.g. the output of `pg_config --bindir`)",
                bin_dir.display()
            );
        }
        // The euid owns /proc/self.
        let root = std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        let dir = tempfile::Builder::new()
            .prefix("fault-suite-pg-")
            .tempdir()
            .context("creating the cluster's directory")?;
        if root {
            let (uid, gid) = user_ids("postgres")?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .context("giving the cluster's directory to postgres")?;
        }
        let cluster = Self {
            bin_dir: bin_dir.to_owned(),
            dir,
            port: free_port()?,
            as_postgres: root,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        )?;
        cluster.start_again()?;
        Ok(cluster)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) -> anyhow::Result<()> {
        let bin = self.bin_dir.join(tool);
        let mut cmd = if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(&bin);
            cmd
        } else {
            Command::new(&bin)
        };
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .with_context(|| format!("running {}", bin.display()))?;
        if !out.status.success() {
            bail!(
                "{tool} {} failed ({}): {}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn start_again(&self) -> anyhow::Result<()> {
        self.pg_ctl_start(&["-w", "-t", "60"])
    }

    /// Starts the server (again) without waiting: `pg_ctl` only looks every so often, so a
    /// caller timing an outage polls [`Cluster::accepts`] itself.
    pub fn start_no_wait(&self) -> anyhow::Result<()> {
        self.pg_ctl_start(&["-W"])
    }

    fn pg_ctl_start(&self, wait: &[&str]) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log").display().to_string();
        let data = self.data();
        let mut args = vec!["-D", &data, "-l", &log, "-o", &options];
        args.extend_from_slice(wait);
        args.push("start");
        self.run("pg_ctl", &args)
    }

    /// Whether the server takes a connection now.
    pub fn accepts(&self) -> bool {
        use diesel::Connection;
        diesel::PgConnection::establish(&self.admin_url()).is_ok()
    }

    /// Stops the server: `immediate` ends every backend at once with no checkpoint (a crash:
    /// the next start recovers from the WAL), `fast` disconnects the clients and checkpoints.
    pub fn stop(&self, mode: &str) -> anyhow::Result<()> {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", mode, "-w", "-t", "60", "stop"],
        )
    }

    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(err) = self.stop("immediate") {
            eprintln!("warning: stopping the suite's PostgreSQL: {err:#}");
        }
    }
}
