#![allow(dead_code)]

//! A real S3-compatible server for the `s3://` blob store tests: moto's server (`moto[server]`
//! from PyPI, installed into the test venv by `scripts/install-sdks` through
//! `SHIPLOG_PY_TEST_PACKAGES`), started on a free 127.0.0.1 port and stopped on drop.
//!
//! Without it tests skip locally and fail in CI (`CI` set), like the other real-parts helpers.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The credentials the daemon and the helpers use against moto (it accepts any).
pub const ACCESS_KEY: &str = "shiplog-test";
pub const SECRET_KEY: &str = "shiplog-test-secret";

pub struct Moto {
    child: Child,
    python: PathBuf,
    pub endpoint: String,
}

fn python() -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os("SHIPLOG_PYTHON")?);
    let ok = Command::new(&p)
        .args(["-c", "import moto.server, boto3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(p)
}

impl Moto {
    /// Starts moto, or `None` (after saying why) when it is not installed and not in CI.
    pub fn start(test: &str) -> Option<Moto> {
        let Some(python) = python() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: moto[server] is not installed in $SHIPLOG_PYTHON's venv (scripts/test installs it)"
            );
            eprintln!("{test}: skipped, moto[server] not installed (run scripts/test)");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto.server");
        let moto = Moto {
            child,
            python,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        // The daemon (a child of this test) takes its S3 credentials from the environment.
        // SAFETY: nextest runs each test in its own process, before it starts other threads
        // that read the environment.
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
            std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
            std::env::set_var("AWS_REGION", "us-east-1");
        }
        Some(moto)
    }

    fn boto(&self, script: &str) -> String {
        let full = format!(
            "import boto3, hashlib, sys\ns3 = boto3.client('s3', endpoint_url='{}', aws_access_key_id='{ACCESS_KEY}', aws_secret_access_key='{SECRET_KEY}', region_name='us-east-1')\n{script}",
            self.endpoint
        );
        let out = Command::new(&self.python)
            .args(["-c", &full])
            .output()
            .expect("run boto3");
        assert!(
            out.status.success(),
            "boto3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn create_bucket(&self, bucket: &str) {
        self.boto(&format!("s3.create_bucket(Bucket='{bucket}')"));
    }

    /// `(key, sha1 of its bytes)` of every object in `bucket` under `prefix`.
    pub fn objects(&self, bucket: &str, prefix: &str) -> Vec<(String, String)> {
        let out = self.boto(&format!(
            "p = s3.get_paginator('list_objects_v2')\n\
             for page in p.paginate(Bucket='{bucket}', Prefix='{prefix}'):\n\
             \x20   for o in page.get('Contents', []):\n\
             \x20       body = s3.get_object(Bucket='{bucket}', Key=o['Key'])['Body'].read()\n\
             \x20       print(o['Key'], hashlib.sha1(body).hexdigest())\n"
        ));
        let mut v: Vec<(String, String)> = out
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(k, s)| (k.to_string(), s.to_string()))
            .collect();
        v.sort();
        v
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
