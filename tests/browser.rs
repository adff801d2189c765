//! The web sign-in in a real browser: headless Chromium driven through ChromeDriver against
//! a real server process. These tests check what only a browser decides: which cookies it
//! keeps and sends, what page scripts can read, and what a form on another site can do.
//!
//! Without Chromium and ChromeDriver on the machine the tests are skipped with a message,
//! unless `REQUIRE_BROWSER_TESTS` is set (as `.ci/run` does), which makes a missing browser
//! a failure.

mod common;

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tempfile::TempDir;

use common::auth::{ADMIN_PASSWORD, registry};
use common::catalog_edits::publish_edit;
use common::{Backend, TestServer};
use ontology_core::Bump;

const SESSION_COOKIE: &str = "registry_session";

/// Finds a program from an environment variable or the usual Debian paths.
fn program(variable: &str, candidates: &[&str]) -> Option<PathBuf> {
    std::env::var_os(variable)
        .map(PathBuf::from)
        .into_iter()
        .chain(candidates.iter().map(PathBuf::from))
        .find(|path| path.is_file())
}

/// The Chromium and ChromeDriver binaries, or `None` (after saying why) when a test should
/// be skipped.
fn browser_programs() -> Option<(PathBuf, PathBuf)> {
    let chromium = program("CHROMIUM", &["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
    let driver = program("CHROMEDRIVER", &["/usr/bin/chromedriver"]);
    match (chromium, driver) {
        (Some(chromium), Some(driver)) => Some((chromium, driver)),
        _ if std::env::var_os("REQUIRE_BROWSER_TESTS").is_some() => {
            panic!(
                "REQUIRE_BROWSER_TESTS is set but chromium or chromedriver is missing; run scripts/install-test-deps.sh"
            )
        }
        _ => {
            eprintln!("skipped: chromium and chromedriver are not installed, so this browser test did not run");
            None
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A ChromeDriver process and one headless Chromium session with a fresh profile. Dropping
/// it stops the driver, which ends the browser.
struct Browser {
    client: Client,
    driver: Child,
    _profile: TempDir,
}

impl Browser {
    async fn start(chromium: &Path, driver: &Path) -> Browser {
        let port = free_port();
        // In a process group of its own, which the browsers it starts join, so that one
        // signal ends them all even when a test fails before closing its session.
        let mut driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::Builder::new().prefix("registry-browser-").tempdir().unwrap();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let capabilities = match capabilities {
            Value::Object(map) => map,
            _ => unreachable!(),
        };

        // ChromeDriver takes a moment to listen, so connecting is retried until it responds.
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            let attempt = ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await;
            match attempt {
                Ok(client) => break client,
                Err(error) if Instant::now() > deadline => {
                    let _ = driver.kill();
                    panic!("no browser session within 30 s: {error}");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        Browser { client, driver, _profile: profile }
    }

    async fn open(&self, server: &TestServer, path: &str) {
        self.client.goto(&server.url(path)).await.unwrap();
    }

    /// Returns the path and query of the page the browser shows.
    async fn location(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    async fn text_of(&self, css: &str) -> String {
        self.client.find(Locator::Css(css)).await.unwrap().text().await.unwrap()
    }

    async fn value_of(&self, css: &str) -> String {
        self.client.find(Locator::Css(css)).await.unwrap().prop("value").await.unwrap().unwrap_or_default()
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Clicks a button or link and waits until the browser has left the page, so that the
    /// next step reads the server's response.
    async fn click_and_wait(&self, css: &str) {
        let page = self.client.find(Locator::Css("html")).await.unwrap();
        self.client.find(Locator::Css(css)).await.unwrap().click().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        // An element of the old page goes stale once the new page has replaced it.
        while page.tag_name().await.is_ok() {
            assert!(Instant::now() < deadline, "the form submission did not load a page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fills the sign-in form and submits it.
    async fn sign_in(&self, username: &str, password: &str) {
        self.fill("#username", username).await;
        self.fill("#password", password).await;
        self.click_and_wait("form[action='/login'] button[type=submit]").await;
    }

    /// Returns the session cookie as the browser stores it.
    async fn session_cookie(&self) -> Option<fantoccini::cookies::Cookie<'static>> {
        self.client.get_all_cookies().await.unwrap().into_iter().find(|cookie| cookie.name() == SESSION_COOKIE)
    }

    async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// Ends ChromeDriver and every browser process it started.
    fn drop(&mut self) {
        // The group id is ChromeDriver's own pid. Ids 0 and 1 would name this process's
        // own group and init's, so they are never signalled.
        let group = i32::try_from(self.driver.id()).unwrap_or(0);
        if group > 1 {
            // SAFETY: killpg only sends a signal; the group contains ChromeDriver and the
            // browsers it started, nothing of this process.
            unsafe { libc::killpg(group, libc::SIGKILL) };
        }
        // Ends ChromeDriver itself even if the group signal failed, so the wait returns.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Starts a server with a known admin password and a browser, or returns `None` when the
/// browser is missing.
async fn setup() -> Option<(common::TestRegistry, TestServer, Browser)> {
    let (chromium, driver) = browser_programs()?;
    let registry = registry(Backend::Sqlite).await;
    let server = registry.start().await;
    let browser = Browser::start(&chromium, &driver).await;
    Some((registry, server, browser))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookie_lifecycle() {
    let Some((_registry, server, browser)) = setup().await else { return };

    // A protected page sends the browser to the sign-in form, which remembers where to return.
    browser.open(&server, "/account").await;
    assert_eq!(browser.location().await, "/login?next=/account");

    // A wrong password shows the error next to the password field and keeps the username.
    browser.sign_in("admin", "not the password").await;
    assert_eq!(browser.location().await, "/login");
    assert_eq!(browser.text_of("#password-error").await, "The username or password is not right.");
    assert_eq!(browser.value_of("#username").await, "admin");
    assert_eq!(browser.value_of("#password").await, "", "a password is never sent back to the page");
    assert!(browser.session_cookie().await.is_none());

    // The right password lands on the page the browser asked for.
    browser.sign_in("admin", ADMIN_PASSWORD).await;
    assert_eq!(browser.location().await, "/account");
    let page = browser.text_of("main").await;
    assert!(page.contains("admin"), "account page: {page}");

    // The browser keeps the session as HttpOnly and SameSite=Strict, and not Secure over
    // plain http (a Secure cookie would never come back to this server).
    let cookie = browser.session_cookie().await.expect("a session cookie after signing in");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site().map(|policy| policy.to_string()).as_deref(), Some("Strict"));
    assert_ne!(cookie.secure(), Some(true));
    let token = cookie.value().to_owned();
    let from_script = browser.client.execute("return document.cookie", vec![]).await.unwrap();
    assert!(
        !from_script.as_str().unwrap_or_default().contains(&token),
        "page scripts can read the session: {from_script}"
    );

    // The session token works against the API until the browser signs out.
    let me = server.client.get(server.url("/api/account")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(me.status(), 200);

    browser.click_and_wait("form[action='/logout'] button[type=submit]").await;
    assert_eq!(browser.location().await, "/login");
    assert!(browser.session_cookie().await.is_none(), "signing out deletes the cookie");
    browser.open(&server, "/account").await;
    assert_eq!(browser.location().await, "/login?next=/account");

    // Signing out revoked the token itself, not only the browser's copy of it.
    let me = server.client.get(server.url("/api/account")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(me.status(), 401);

    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_forged_csrf_rejected() {
    let Some((_registry, server, browser)) = setup().await else { return };

    browser.open(&server, "/login").await;
    browser
        .client
        .execute("document.querySelector(\"input[name='csrf_token']\").value = 'forged'", vec![])
        .await
        .unwrap();
    browser.sign_in("admin", ADMIN_PASSWORD).await;

    // Rejected with the reason above the form, the username kept, and no session.
    let error = browser.text_of("#form-error").await;
    assert!(error.contains("did not come from this site"), "form error: {error}");
    assert_eq!(browser.value_of("#username").await, "admin");
    assert!(browser.session_cookie().await.is_none());

    // The new form in the rejection page works.
    browser.sign_in("admin", ADMIN_PASSWORD).await;
    assert_eq!(browser.location().await, "/account");
    assert!(browser.session_cookie().await.is_some());

    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_sign_out_ignored() {
    let Some((_registry, server, browser)) = setup().await else { return };

    browser.open(&server, "/login").await;
    browser.sign_in("admin", ADMIN_PASSWORD).await;
    let token = browser.session_cookie().await.expect("signed in").value().to_owned();

    // A page from another origin posts the sign-out form to the registry. The browser
    // does not send the SameSite=Strict cookie, so the request carries no session to end.
    let elsewhere = tempfile::Builder::new().prefix("registry-elsewhere-").tempdir().unwrap();
    let page = elsewhere.path().join("attack.html");
    std::fs::write(
        &page,
        format!(
            "<!doctype html><title>elsewhere</title>\
             <form id=f method=post action='{}'><input type=hidden name=csrf_token value=guess></form>\
             <script>document.getElementById('f').submit()</script>",
            server.url("/logout")
        ),
    )
    .unwrap();
    browser.client.goto(&format!("file://{}", page.display())).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !browser.client.current_url().await.unwrap().as_str().starts_with(&server.base) {
        assert!(Instant::now() < deadline, "the cross-site form was not submitted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Still signed in, in the browser and at the API.
    browser.open(&server, "/account").await;
    assert_eq!(browser.location().await, "/account");
    let me = server.client.get(server.url("/api/account")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(me.status(), 200);

    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_search_to_related_kpi() {
    let Some((_registry, server, browser)) = setup().await else { return };

    browser.open(&server, "/").await;
    browser.fill("#q", "logo churn").await;
    browser.click_and_wait("form[role=search] button[type=submit]").await;
    assert_eq!(browser.location().await, "/?q=logo+churn");

    browser.client.find(Locator::Css("#results a[href='/ontology/customers/logo_churn_rate']")).await.unwrap();
    browser.click_and_wait("#results a[href='/ontology/customers/logo_churn_rate']").await;
    assert_eq!(browser.location().await, "/ontology/customers/logo_churn_rate");
    assert_eq!(browser.text_of("h1").await, "Logo Churn Rate");
    assert_eq!(browser.text_of("#tier").await, "Published");

    // A related KPI is one click away, and its page links back to the JSON it renders.
    let related = browser.client.find(Locator::Css("#related a")).await.unwrap();
    let target = related.attr("href").await.unwrap().unwrap();
    let name = related.text().await.unwrap();
    browser.click_and_wait("#related a").await;
    assert_eq!(browser.location().await, target);
    assert_eq!(browser.text_of("h1").await, name);
    let json = browser.client.find(Locator::Css("#machine-readable a")).await.unwrap();
    let json_url = json.attr("href").await.unwrap().unwrap();
    assert!(json_url.starts_with("/api/ontology/"), "{json_url}");

    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definition_markup_never_runs() {
    let Some((chromium, driver)) = browser_programs() else { return };
    let registry = registry(Backend::Sqlite).await;
    assert!(registry.start().await.stop().success());
    publish_edit(&registry.repository(), "customers.nps_score", Bump::Patch, "Hostile prose", |draft| {
        draft.definition = "Scores. <script>document.title = 'ran'</script> \
                            <img src=x onerror=\"document.title = 'ran'\">\n\n\
                            [click me](javascript:document.title='ran')"
            .into();
    });
    let server = registry.start().await;
    let browser = Browser::start(&chromium, &driver).await;

    browser.open(&server, "/ontology/customers/nps_score").await;
    let definition = browser.text_of("#definition").await;
    assert!(definition.contains("<script>document.title = 'ran'</script>"), "shown as text: {definition}");

    // Clicking the link with the dropped address goes nowhere and runs nothing.
    let link = browser.client.find(Locator::Css("#definition a")).await.unwrap();
    assert_eq!(link.attr("href").await.unwrap(), None);
    link.click().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let title = browser.client.title().await.unwrap();
    assert!(title.starts_with("Net Promoter Score"), "a script changed the title to {title:?}");
    assert_eq!(browser.location().await, "/ontology/customers/nps_score");

    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_never_redirects_off_site() {
    let Some((_registry, server, browser)) = setup().await else { return };

    // Browsers drop a tab from a URL, so `/<TAB>/host` would read as `//host`. The other host
    // here is the same server under another name, so nothing leaves the machine.
    let port = server.address.rsplit(':').next().unwrap();
    browser.open(&server, &format!("/login?next=%2F%09%2Flocalhost%3A{port}%2Fmoved")).await;
    browser.sign_in("admin", ADMIN_PASSWORD).await;

    let url = browser.client.current_url().await.unwrap();
    assert_eq!(url.host_str(), Some("127.0.0.1"), "signed in to {url}");
    assert_eq!(url.path(), "/account");

    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_sign_in_ends_first() {
    let Some((_registry, server, browser)) = setup().await else { return };

    browser.open(&server, "/login").await;
    browser.sign_in("admin", ADMIN_PASSWORD).await;
    let first = browser.session_cookie().await.expect("signed in").value().to_owned();

    // Signing in again from the same browser replaces the cookie and revokes the old token.
    browser.open(&server, "/login").await;
    browser.sign_in("admin", ADMIN_PASSWORD).await;
    let second = browser.session_cookie().await.expect("signed in again").value().to_owned();
    assert_ne!(first, second);

    let old = server.client.get(server.url("/api/account")).bearer_auth(&first).send().await.unwrap();
    assert_eq!(old.status(), 401);
    let new = server.client.get(server.url("/api/account")).bearer_auth(&second).send().await.unwrap();
    assert_eq!(new.status(), 200);

    browser.close().await;
}
