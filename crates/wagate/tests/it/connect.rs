//! "Connect WhatsApp" end to end against the simulator's dialog: a tenant consents and lands
//! back with a working account; every way it can fail lands back with a stable error code and
//! leaves nothing half-made.

use serde_json::{json, Value};

use crate::helpers::*;

const APP_ID: &str = "236484624622562";
const DONE: &str = "http://127.0.0.1:9/done";

pub async fn connecting_app_with(adjust: impl FnOnce(&mut wagate_engine::Config)) -> TestApp {
    spawn_app_with(|c| {
        c.accounts.clear();
        c.meta.app_id = APP_ID.into();
        c.meta.app_secret = Some(APP_SECRET.into());
        c.meta.dialog_url = c.graph_url.clone();
        adjust(c);
    })
    .await
}

async fn connecting_app() -> TestApp {
    connecting_app_with(|_| {}).await
}

/// Connects the simulator's business for `tenant`; the account's name.
pub async fn connect(app: &TestApp, tenant: &str) -> String {
    let browser = browser();
    let home = follow(&browser, &follow(&browser, &start(app, tenant).await).await).await;
    query(&home)
        .get("account")
        .cloned()
        .unwrap_or_else(|| panic!("not connected: {home}"))
}

/// A browser that stops at each redirect.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// What the simulator's businesses did (`GET /_sim/oauth`).
async fn sim_oauth(app: &TestApp) -> Value {
    app.http
        .get(format!("{}/_sim/oauth", app.sim_url))
        .send()
        .await
        .expect("sim")
        .json()
        .await
        .expect("json")
}

/// One step of the browser: the `Location` a URL answers with.
async fn follow(browser: &reqwest::Client, url: &str) -> String {
    let r = browser.get(url).send().await.expect("browser");
    assert_eq!(
        r.status().as_u16(),
        302,
        "{url}: {}",
        r.text().await.unwrap_or_default()
    );
    r.headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .expect("a location")
        .to_string()
}

fn query(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url).expect("url").query_pairs().into_owned().collect()
}

async fn start(app: &TestApp, tenant: &str) -> String {
    let (status, started) = app
        .get(&format!("/v1/connect/start?tenant={tenant}&redirect={DONE}"))
        .await;
    assert_eq!(status, 200, "{started}");
    started["url"].as_str().expect("url").to_string()
}

#[tokio::test]
async fn a_tenant_connects_whatsapp_and_lands_back_with_a_working_account() {
    let app = connecting_app().await;
    let browser = browser();
    let dialog = start(&app, "acme").await;
    let d = query(&dialog);
    assert!(
        dialog.starts_with(&format!("{}/v23.0/dialog/oauth?", app.sim_url)),
        "{dialog}"
    );
    assert_eq!(d["client_id"], APP_ID);
    assert_eq!(d["redirect_uri"], format!("{}/connect/callback", app.url));
    assert_eq!(d["scope"], "whatsapp_business_management,whatsapp_business_messaging");
    assert!(d["state"].starts_with("cs_"));
    // The business consents; Meta sends the browser to the gateway, which sends it home.
    let callback = follow(&browser, &dialog).await;
    assert!(
        callback.starts_with(&format!("{}/connect/callback?code=", app.url)),
        "{callback}"
    );
    let home = follow(&browser, &callback).await;
    assert!(home.starts_with(DONE), "{home}");
    let back = query(&home);
    assert_eq!(
        back.get("account").map(String::as_str),
        Some(format!("acme-{CONNECT_WABA}").as_str()),
        "{home}"
    );
    assert_eq!(back.get("waba_id").map(String::as_str), Some(CONNECT_WABA));
    // A working account of the tenant: its number sends and receives; the app is subscribed.
    let (_, account) = app.get(&format!("/v1/accounts/acme-{CONNECT_WABA}")).await;
    assert_eq!(
        (&account["tenant"], &account["managed_by"], &account["phone_number_ids"]),
        (&json!("acme"), &json!("api"), &json!([CONNECT_PHONE])),
        "{account}"
    );
    // Its template catalog came with it: sends are checked from the first one.
    let (status, catalog) = app.get(&format!("/v1/templates?account=acme-{CONNECT_WABA}")).await;
    assert_eq!(status, 200, "{catalog}");
    assert!(catalog["synced_at"].is_string(), "synced at connection: {catalog}");
    assert!(catalog["data"].as_array().is_some_and(|d| !d.is_empty()), "{catalog}");
    app.user_sends_to(CONNECT_PHONE, USER, json!({"type": "text", "text": {"body": "hi"}}))
        .await;
    let got = eventually("the user's message reaches the connected account", || async {
        let events = app.settled_events().await;
        events.into_iter().find(|e| e["type"] == "message.received")
    })
    .await;
    assert_eq!(got["payload"]["phone_number_id"], CONNECT_PHONE, "{got}");
    assert_eq!(got["account"], account["id"]);
    let (status, sent) = app
        .post(
            "/v1/messages?wait=accepted",
            &json!({"to": USER, "type": "text", "text": {"body": "connected"}}),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    assert!(sent["wamid"].is_string(), "the exchanged token sends: {sent}");
    let sim = sim_oauth(&app).await;
    assert_eq!(sim["businesses"][1]["subscribed"], true, "{sim}");
    assert_eq!(
        sim["businesses"][0]["subscribed"], true,
        "the other business (subscribed from the start) is untouched: {sim}"
    );
    // The same link again is a replay.
    let replay = follow(&browser, &callback).await;
    assert_eq!(
        query(&replay).get("error").map(String::as_str),
        Some("state_used"),
        "{replay}"
    );
    // Another tenant cannot take a connected WABA, and the first keeps its subscription.
    let again = follow(&browser, &follow(&browser, &start(&app, "other").await).await).await;
    assert_eq!(
        query(&again).get("error").map(String::as_str),
        Some("already_connected"),
        "{again}"
    );
    let (_, list) = app.get("/v1/accounts").await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
    // The audit log tells who connected what.
    let (_, log) = app.get("/v1/audit?action=connect.").await;
    let actions: Vec<&str> = log["data"]
        .as_array()
        .expect("log")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["connect.started", "connect.finished", "connect.started"]);
}

#[tokio::test]
async fn every_failed_connection_lands_back_with_its_code_and_makes_nothing() {
    let app = connecting_app().await;
    let browser = browser();
    for (knob, code) in [
        ("&deny=1", "access_denied"),
        ("&grant=whatsapp_business_messaging", "missing_scope"),
        ("&waba=none", "no_waba"),
    ] {
        let dialog = format!("{}{knob}", start(&app, "acme").await);
        let home = follow(&browser, &follow(&browser, &dialog).await).await;
        assert!(home.starts_with(DONE), "{home}");
        let q = query(&home);
        assert_eq!(q.get("error").map(String::as_str), Some(code), "{knob}: {home}");
        assert!(q.get("error_description").is_some_and(|d| !d.is_empty()), "{home}");
    }
    // A state past its ten minutes.
    let store = &app.gateway.state.store;
    store
        .create_connect_state(&wagate_store::ConnectState {
            id: "cs_old".into(),
            tenant: "acme".into(),
            redirect: DONE.into(),
            pin: None,
            created_at: 0,
            expires_at: 1,
            used_at: None,
        })
        .await
        .expect("state");
    let signed = wagate_engine::accounts::connect::sign_state(APP_SECRET, "cs_old", "acme");
    let home = follow(&browser, &format!("{}/connect/callback?code=x&state={signed}", app.url)).await;
    assert_eq!(
        query(&home).get("error").map(String::as_str),
        Some("state_expired"),
        "{home}"
    );
    // States that are not ours (made up, or moved to another tenant) send the browser nowhere.
    let forged = wagate_engine::accounts::connect::sign_state(APP_SECRET, "cs_old", "evil");
    for state in ["cs_nope.abc", "nothing", forged.as_str()] {
        let r = browser
            .get(format!("{}/connect/callback?code=x&state={state}", app.url))
            .send()
            .await
            .expect("callback");
        assert_eq!(r.status().as_u16(), 400, "{state}");
        assert!(r.headers().get("location").is_none());
    }
    let (_, list) = app.get("/v1/accounts").await;
    assert_eq!(list["data"], json!([]), "nothing was made");
    let sim = sim_oauth(&app).await;
    assert!(
        sim["businesses"]
            .as_array()
            .expect("businesses")
            .iter()
            .skip(1)
            .all(|b| b["subscribed"] == false),
        "no subscription was left behind: {sim}"
    );
    // Bad starts name the field; a browser asking for HTML goes straight to the dialog.
    for (q, field) in [
        ("redirect=https://x.example/done", "tenant"),
        ("tenant=acme&redirect=/done", "redirect"),
        ("tenant=acme&redirect=https://x.example&pin=12", "pin"),
    ] {
        let (status, e) = app.get(&format!("/v1/connect/start?{q}")).await;
        assert_eq!(
            (status, e["error"]["details"]["field"].as_str()),
            (400, Some(field)),
            "{q}: {e}"
        );
    }
    let r = browser
        .get(format!("{}/v1/connect/start?tenant=acme&redirect={DONE}", app.url))
        .bearer_auth(&app.key)
        .header("accept", "text/html")
        .send()
        .await
        .expect("start");
    assert_eq!(r.status().as_u16(), 302);
    let to = r
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default();
    assert!(to.starts_with(&format!("{}/v23.0/dialog/oauth?", app.sim_url)), "{to}");
}

#[tokio::test]
async fn a_pin_registers_the_number_and_an_unconfigured_gateway_says_what_to_set() {
    let app = connecting_app().await;
    let browser = browser();
    let (_, started) = app
        .get(&format!("/v1/connect/start?tenant=acme&redirect={DONE}&pin=246810"))
        .await;
    let dialog = started["url"].as_str().expect("url");
    let home = follow(&browser, &follow(&browser, dialog).await).await;
    assert!(query(&home).contains_key("account"), "{home}");
    let sim = sim_oauth(&app).await;
    assert_eq!(sim["businesses"][1]["registered_pin"], "246810", "{sim}");

    let plain = spawn_app().await;
    let (status, e) = plain
        .get(&format!("/v1/connect/start?tenant=acme&redirect={DONE}"))
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("connect_not_configured")),
        "{e}"
    );
    assert!(e["error"]["hint"]
        .as_str()
        .is_some_and(|h| h.contains("WAGATE_META_APP_ID")));
}
