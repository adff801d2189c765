//! Test harness: a real `ontology-registry` process on a random loopback port, with its own
//! data directory (git repository and SQLite file) or its own PostgreSQL database.
#![allow(dead_code)]

pub mod auth;
pub mod catalog_edits;
pub mod history;
pub mod pg;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub use pg::TestDatabase;

/// The registry binary built for these tests.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_ontology-registry")
}

/// The workspace root, where `ontology-repo/` lives.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

pub fn starter_catalog() -> PathBuf {
    workspace_root().join("ontology-repo")
}

/// Which database a test registry uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one test per backend. The PostgreSQL test is skipped, with a message, when
/// `TEST_DATABASE_URL` is not set.
#[macro_export]
macro_rules! on_each_backend {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if $crate::common::pg::admin_url().is_none() {
                        eprintln!("skipped: TEST_DATABASE_URL is not set, so this test did not run against PostgreSQL");
                        return;
                    }
                    super::$name($crate::common::Backend::Postgres).await;
                }
            }
        )*
    };
}

/// A registry's state on disk and in its database, which outlives server processes.
pub struct TestRegistry {
    pub data_dir: TempDir,
    pub database: Option<TestDatabase>,
    pub seed_catalog: PathBuf,
    pub extra_env: Vec<(String, String)>,
}

impl TestRegistry {
    pub async fn new(backend: Backend) -> TestRegistry {
        TestRegistry::with_catalog(backend, starter_catalog()).await
    }

    pub async fn with_catalog(backend: Backend, seed_catalog: PathBuf) -> TestRegistry {
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDatabase::create().await),
        };
        TestRegistry {
            data_dir: tempfile::Builder::new().prefix("registry-test-").tempdir().unwrap(),
            database,
            seed_catalog,
            extra_env: Vec::new(),
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    pub fn repository(&self) -> PathBuf {
        self.data_dir().join("ontology.git")
    }

    pub fn sqlite_file(&self) -> PathBuf {
        self.data_dir().join("registry.db")
    }

    /// A command of the registry binary set up for this registry.
    pub fn command(&self) -> Command {
        let mut command = Command::new(binary());
        command
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--catalog")
            .arg(&self.seed_catalog)
            .env_remove("DATABASE_URL")
            .env_remove("REGISTRY_LOG_FORMAT")
            .env("RUST_LOG", "info")
            .current_dir(self.data_dir());
        if let Some(database) = &self.database {
            command.env("DATABASE_URL", &database.url);
        }
        for (key, value) in &self.extra_env {
            command.env(key, value);
        }
        command
    }

    /// Runs a command to completion and returns (success, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (bool, String, String) {
        let output = self.command().args(args).output().expect("the registry binary runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    pub async fn start(&self) -> TestServer {
        self.start_with(&[]).await
    }

    /// Starts a server on a random loopback port and waits until it listens.
    pub async fn start_with(&self, extra_args: &[&str]) -> TestServer {
        let mut command = self.command();
        command.args(["serve", "--bind", "127.0.0.1:0"]).args(extra_args).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("the registry binary starts");
        let stderr = child.stderr.take().unwrap();

        let logs = Arc::new(Mutex::new(String::new()));
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            let mut address_tx = Some(address_tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let address: String = rest.chars().take_while(|c| !c.is_whitespace() && *c != '"').collect();
                    if let Some(tx) = address_tx.take() {
                        let _ = tx.send(address);
                    }
                }
                let mut logs = sink.lock().unwrap();
                logs.push_str(&line);
                logs.push('\n');
            }
        });

        let address =
            tokio::task::spawn_blocking(move || address_rx.recv_timeout(Duration::from_secs(120))).await.unwrap();
        let address = match address {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                panic!("the server did not start; its log:\n{}", logs.lock().unwrap());
            }
        };
        TestServer {
            child: Some(child),
            base: format!("http://{address}"),
            address,
            logs,
            client: reqwest::Client::builder().no_gzip().build().unwrap(),
        }
    }
}

/// A running server process. Dropping it kills the process.
pub struct TestServer {
    child: Option<Child>,
    pub base: String,
    pub address: String,
    pub logs: Arc<Mutex<String>>,
    pub client: reqwest::Client,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request succeeds")
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request succeeds")
    }

    /// GETs a path and returns the status and the JSON body.
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path} answered non-JSON: {text}"));
        (status, json)
    }

    /// Sends raw bytes as one HTTP/1.1 request, so paths reach the server exactly as
    /// written (an HTTP client would normalise `..` away). Returns status and body.
    pub async fn raw_get(&self, target: &str) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(&self.address).await.unwrap();
        let request = format!("GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.address);
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"));
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
        (status, body)
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// Sends SIGTERM without waiting.
    pub fn terminate(&self) {
        terminate(self.child.as_ref().unwrap());
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        terminate(&child);
        Self::wait_for_exit(&mut child)
    }

    /// Waits for a process that was already sent SIGTERM.
    pub fn wait(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        Self::wait_for_exit(&mut child)
    }

    fn wait_for_exit(child: &mut Child) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the server did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn terminate(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success(), "kill -TERM failed");
}

/// Asserts that a response is a problem document with the given status and code.
pub async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    let actual_status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    assert_eq!(actual_status, status, "status of {text}");
    if status == 401 {
        assert!(challenge.is_some_and(|c| c.starts_with("Bearer ")), "a 401 names the Bearer scheme: {text}");
    }
    assert_eq!(content_type, "application/problem+json", "content type of {text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["code"], code, "code of {text}");
    assert_eq!(body["status"], status, "status member of {text}");
    assert!(body["title"].is_string(), "title of {text}");
    assert!(body["detail"].is_string(), "detail of {text}");
    assert!(body["type"].is_string(), "type of {text}");
    body
}

/// Runs `git` against a repository and returns its standard output.
pub fn git(repository: &Path, args: &[&str]) -> String {
    let output = Command::new("git").arg("--git-dir").arg(repository).args(args).output().expect("git runs");
    assert!(output.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}
