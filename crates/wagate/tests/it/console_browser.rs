//! The console in a real browser: Debian's `chromium`, driven over WebDriver (`chromedriver`)
//! against the real gateway and the simulator. Each test saves screenshots (1280×800 and
//! 390×844) under `target/console-screenshots/`. Without chromedriver the tests say SKIPPED and
//! pass (`.ci/run` installs it and fails on that line).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::*;

/// A headless Chromium driven by its own chromedriver, stopped on drop.
struct Chrome {
    client: Client,
    driver: tokio::process::Child,
    test: &'static str,
}

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .chain([
                PathBuf::from("/usr/bin").join(name),
                PathBuf::from("/usr/lib/chromium").join(name),
            ])
            .find(|p| p.is_file())
    })
}

impl Chrome {
    /// A browser, or `None` (and SKIPPED on the error stream) when chromedriver is missing.
    async fn start(test: &'static str) -> Option<Chrome> {
        let (Some(driver), Some(chromium)) = (
            find_binary(&["chromedriver"]),
            find_binary(&["chromium", "chromium-browser", "google-chrome"]),
        ) else {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\nSKIPPED {test}: chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
            );
            return None;
        };
        // A free port for the driver: taken from the system, then handed to it.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let child = tokio::process::Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not listen on {url}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800", "--lang=en-US"],
            }),
        );
        // Two TLS crypto providers are compiled into the tests: name one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = ClientBuilder::rustls()
            .expect("TLS roots")
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("a browser session");
        Some(Chrome {
            client,
            driver: child,
            test,
        })
    }

    /// Saves the page at 1280×800 and at 390×844 as `<test>-<name>-<size>.png`.
    async fn screenshots(&self, name: &str) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        for (w, h) in [(1280u32, 800u32), (390, 844)] {
            self.client.set_window_size(w, h).await.expect("window size");
            let png = self.client.screenshot().await.expect("screenshot");
            let file = dir.join(format!("{}-{name}-{w}x{h}.png", self.test));
            std::fs::write(&file, png).expect("write screenshot");
        }
        self.client.set_window_size(1280, 800).await.expect("window size");
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Waits (up to 10 s, without reloading) until `css` matches; returns how many match.
    async fn wait_for(&self, what: &str, css: &str) -> usize {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .client
                .find_all(Locator::Css(css))
                .await
                .map(|v| v.len())
                .unwrap_or(0);
            if found > 0 {
                return found;
            }
            if tokio::time::Instant::now() >= deadline {
                let url = self
                    .client
                    .current_url()
                    .await
                    .map(|u| u.to_string())
                    .unwrap_or_default();
                let page = self.client.source().await.unwrap_or_default();
                let text: String = page.chars().take(1500).collect();
                panic!("timed out waiting: {what} ({css}) at {url}:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn sign_in(&self, base: &str, key: &str) {
        self.goto(&format!("{base}/console/login")).await;
        let field = self
            .client
            .find(Locator::Css("input[name=api_key]"))
            .await
            .expect("key field");
        field.send_keys(key).await.expect("type the key");
        self.click("button[type=submit]").await;
        self.wait_for("the signed-in console", "header.top form.signout").await;
    }

    async fn click(&self, css: &str) {
        let element = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        element.click().await.unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }

    async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }
}

#[tokio::test]
async fn browser_sign_in_live_inbox_reply_and_ticks() {
    let Some(chrome) = Chrome::start("inbox").await else {
        return;
    };
    let app = spawn_app().await;
    app.open_window(USER).await;
    chrome.sign_in(&app.url, &app.key).await;
    chrome.screenshots("overview").await;

    chrome.goto(&format!("{}/console/inbox/{USER}", app.url)).await;
    let before = chrome.wait_for("the thread", "[data-message-id]").await;
    // The user writes while the thread is open: the message appears without a reload.
    app.user_sends(USER, text("Is it shipped yet?")).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = chrome
            .client
            .find_all(Locator::Css("[data-message-id]"))
            .await
            .map(|v| v.len())
            .unwrap_or(0);
        if now > before {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new message did not appear without a reload"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page = chrome.client.source().await.expect("source");
    assert!(page.contains("Is it shipped yet?"));

    // A reply goes out from the reply box; its ticks move to read as Meta's statuses arrive.
    let box_ = chrome
        .client
        .find(Locator::Css("textarea[name=text]"))
        .await
        .expect("reply box");
    box_.send_keys("Yes, it left this morning").await.expect("type");
    chrome.click("form.reply button[type=submit]").await;
    chrome
        .wait_for("the reply, read", ".bubble.outbound[data-status=read]")
        .await;
    // A carousel sent through the API shows a line a card.
    let carousel: serde_json::Value =
        serde_json::from_slice(&fixture("send_interactive_carousel_request.json")).expect("fixture");
    let (status, sent) = app
        .post(
            "/v1/messages",
            &serde_json::json!({"to": USER, "type": "interactive", "interactive": carousel["interactive"]}),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !chrome.client.source().await.expect("source").contains("Jade Plant") {
        assert!(tokio::time::Instant::now() < deadline, "the carousel did not appear");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    chrome.screenshots("thread").await;
    chrome.goto(&format!("{}/console/inbox", app.url)).await;
    chrome
        .wait_for("the conversation list", &format!("[data-contact=\"{USER}\"]"))
        .await;
    chrome.screenshots("inbox").await;
    chrome.close().await;
}

#[tokio::test]
async fn browser_template_picker_when_the_window_is_closed() {
    let Some(chrome) = Chrome::start("template").await else {
        return;
    };
    let app = spawn_app().await;
    let (status, _) = app.post("/v1/templates/sync", &json!({})).await;
    assert_eq!(status, 200);
    chrome.sign_in(&app.url, &app.key).await;
    chrome.goto(&format!("{}/console/inbox/16505550000", app.url)).await;
    chrome.wait_for("the template picker", "select[name=template]").await;
    assert!(
        chrome
            .client
            .find_all(Locator::Css("textarea[name=text]"))
            .await
            .expect("find")
            .is_empty(),
        "no free text outside the window"
    );
    // A template with variables: a field for each, and the body as it will read.
    let picker = chrome
        .client
        .find(Locator::Css("select[name=template]"))
        .await
        .expect("picker");
    picker.select_by_value("po_notification|es").await.expect("choose");
    chrome
        .wait_for("a field per variable", "input[data-variable='3']")
        .await;
    for (i, v) in [(1, "Acme S.A."), (2, "PO-1042"), (3, "$1.250,00")] {
        let field = chrome
            .client
            .find(Locator::Css(&format!("input[data-variable='{i}']")))
            .await
            .expect("a variable's field");
        field.send_keys(v).await.expect("type");
    }
    let preview = chrome
        .client
        .find(Locator::Css("[data-template-preview]"))
        .await
        .expect("preview")
        .text()
        .await
        .expect("text");
    assert_eq!(
        preview,
        "Hola, Acme S.A. ha emitido la orden de compra PO-1042 por un total de $1.250,00."
    );
    chrome.screenshots("template-variables").await;
    chrome.click("form.reply button[type=submit]").await;
    chrome.wait_for("the template, sent", ".bubble.outbound").await;
    let page = chrome.client.source().await.expect("source");
    assert!(
        page.contains("Hola, Acme S.A. ha emitido la orden de compra PO-1042 por un total de $1.250,00."),
        "the template reads as the user saw it, and a value with a comma stays whole"
    );
    chrome.screenshots("template").await;
    chrome.close().await;
}

#[tokio::test]
async fn browser_a_failing_hook_is_seen_failing_then_replayed() {
    let Some(chrome) = Chrome::start("hooks").await else {
        return;
    };
    let app = spawn_app_with(|c| {
        c.hooks.allow_private_networks = true;
        // One retry, soon: the deliveries fail for good while the receiver is down.
        c.hooks.retry_schedule_seconds = vec![1];
    })
    .await;
    // A port for the receiver, which is down for now.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    chrome.sign_in(&app.url, &app.key).await;
    chrome.goto(&format!("{}/console/hooks", app.url)).await;
    let url = chrome
        .client
        .find(Locator::Css("input[name=url]"))
        .await
        .expect("url field");
    url.send_keys(&format!("http://127.0.0.1:{port}/hook"))
        .await
        .expect("type");
    chrome.click("form.stack button[type=submit]").await;
    chrome.wait_for("the secret, shown once", "code.secret").await;
    chrome.screenshots("created").await;
    chrome.click("[data-hook] a").await;
    chrome.wait_for("the hook's page", "table.attempts").await;

    // An event while the receiver is down: its attempts fail, and the page shows them.
    app.user_sends(USER, text("anyone there?")).await;
    chrome
        .wait_for("a failed attempt", "[data-attempt][data-succeeded=false]")
        .await;
    chrome.screenshots("failing").await;

    // The receiver comes back; a replay delivers what it missed.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("rebind");
    let receiver = crate::hooks::Receiver::on(listener).await;
    chrome.click("form[action$='/replay'] button[type=submit]").await;
    chrome
        .wait_for("a delivered attempt", "[data-attempt][data-succeeded=true]")
        .await;
    assert!(!receiver.got().is_empty(), "the receiver got the replayed events");
    chrome.screenshots("replayed").await;
    chrome.close().await;
}

#[tokio::test]
async fn browser_connect_whatsapp_lands_on_the_new_account() {
    let Some(chrome) = Chrome::start("connect").await else {
        return;
    };
    let app = crate::connect::connecting_app_with(|_| {}).await;
    chrome.sign_in(&app.url, &app.key).await;
    chrome.goto(&format!("{}/console/accounts", app.url)).await;
    chrome
        .wait_for("the Connect WhatsApp form", "button[data-connect]")
        .await;
    assert_eq!(
        chrome
            .client
            .find_all(Locator::Css("[data-account]"))
            .await
            .expect("find")
            .len(),
        0
    );
    let tenant = chrome
        .client
        .find(Locator::Css("input[name=tenant]"))
        .await
        .expect("tenant field");
    tenant.send_keys("acme").await.expect("type");
    chrome.click("button[data-connect]").await;
    // Meta's dialog (the simulator's) consents and sends the browser back through the callback.
    chrome.wait_for("the new account", ".notice[data-account]").await;
    let here = chrome.client.current_url().await.expect("url");
    assert_eq!(here.path(), "/console/accounts", "{here}");
    assert!(here.query().unwrap_or_default().contains("account="), "{here}");
    let (status, accounts) = app.get("/v1/accounts").await;
    assert_eq!(status, 200);
    assert_eq!(accounts["data"][0]["tenant"], "acme", "{accounts}");
    chrome.screenshots("connected").await;
    chrome.close().await;
}

#[tokio::test]
async fn browser_another_tenant_sees_nothing_and_a_forged_form_is_refused() {
    let Some(chrome) = Chrome::start("tenant").await else {
        return;
    };
    let app = spawn_app().await;
    app.open_window(USER).await;
    alpha_shop(&app).await;
    let (status, key) = app
        .post(
            "/v1/keys",
            &json!({"name": "alpha-console", "scopes": ["admin"], "tenant": "alpha"}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    chrome.sign_in(&app.url, key["key"].as_str().expect("key")).await;
    chrome.goto(&format!("{}/console/inbox", app.url)).await;
    chrome.wait_for("the inbox", "aside.conversations").await;
    let theirs = format!("[data-contact=\"{USER}\"]");
    assert!(
        chrome
            .client
            .find_all(Locator::Css(&theirs))
            .await
            .expect("find")
            .is_empty(),
        "acme's conversation is not alpha's"
    );
    chrome.goto(&format!("{}/console/inbox/{USER}", app.url)).await;
    chrome.wait_for("the thread", "section.thread").await;
    assert!(chrome
        .client
        .find_all(Locator::Css("[data-message-id]"))
        .await
        .expect("find")
        .is_empty());
    chrome.screenshots("other-tenant").await;

    // A form whose CSRF token is not the session's (as a forged page would post) is refused.
    chrome.goto(&format!("{}/console/keys", app.url)).await;
    chrome.wait_for("the key form", "form.stack input[name=name]").await;
    chrome
        .client
        .execute(
            "document.querySelectorAll('input[name=csrf]').forEach(function (e) { e.value = 'csrf_forged'; });",
            vec![],
        )
        .await
        .expect("change the token");
    let name = chrome
        .client
        .find(Locator::Css("form.stack input[name=name]"))
        .await
        .expect("name");
    name.send_keys("forged").await.expect("type");
    chrome.click("form.stack button[type=submit]").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page = chrome.client.source().await.expect("source");
        if page.contains("This form is not valid") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the forged form was not refused: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, keys) = app.get("/v1/keys").await;
    assert!(!keys.to_string().contains("\"forged\""), "nothing was made: {keys}");
    chrome.close().await;
}

#[tokio::test]
async fn browser_sign_in_through_the_identity_provider() {
    let Some(chrome) = Chrome::start("idp").await else {
        return;
    };
    let app = spawn_app_with(|c| {
        let issuer = format!("{}/_sim/oidc", c.graph_url);
        c.auth.jwt.jwks_url = format!("{issuer}/jwks.json");
        c.auth.jwt.issuer = issuer;
        c.auth.jwt.audience = "wagate".into();
    })
    .await;
    chrome.goto(&format!("{}/console/login", app.url)).await;
    chrome.click("a[data-idp]").await;
    chrome.wait_for("the provider's login page", "button[value=ana]").await;
    chrome.screenshots("provider").await;
    chrome.click("button[value=ana]").await;
    chrome
        .wait_for("the signed-in console", "header.top form.signout")
        .await;
    let who = chrome
        .client
        .find(Locator::Css(".who"))
        .await
        .expect("who")
        .text()
        .await
        .expect("text");
    assert_eq!(who, "ana", "the token's subject");
    chrome.close().await;
}

#[tokio::test]
async fn browser_usage_and_costs_with_a_card_and_a_budget() {
    let Some(chrome) = Chrome::start("usage").await else {
        return;
    };
    let app = spawn_app().await;
    assert_eq!(app.post("/v1/templates/sync", &json!({})).await.0, 200);
    let card =
        "market,category,rate,tier_from,tier_to\nUS,utility,0.0100,0,2\nUS,utility,0.0050,2,\nOther,utility,0.0071,,\n";
    assert_eq!(put_card(&app, "EUR", "2026-01-01", card).await.0, 201);
    for to in [USER, USER, USER, "5511987654321"] {
        template_delivered(&app, to).await;
    }
    let (status, _) = app
        .put(
            "/v1/accounts/acme/budget",
            &json!({"amount": "0.03", "hard_stop": true}),
        )
        .await;
    assert_eq!(status, 200);
    chrome.sign_in(&app.url, &app.key).await;
    chrome.goto(&format!("{}/console/usage", app.url)).await;
    chrome.wait_for("the day's bar", "svg.spend rect.bar.utility").await;
    let page = chrome.client.source().await.expect("source");
    // 0.025 to the US (two at the first tier, one past it) and 0.0071 to Brazil (Other).
    assert!(
        page.contains("<strong data-cost=\"\">0.0321</strong>") || page.contains("<strong data-cost>0.0321</strong>"),
        "{page}"
    );
    assert!(
        page.contains("data-market=\"BR\"") && page.contains("data-budget=\"acme\""),
        "{page}"
    );
    chrome.screenshots("usage").await;
    chrome.close().await;
}
