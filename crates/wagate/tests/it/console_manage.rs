//! Managing from the console, as a browser without JavaScript does it: the inbox's unread
//! counts, events per contact, a hook edited, tested, disabled and enabled, a key rotated, and
//! the audit log filtered.

use reqwest::header::LOCATION;
use serde_json::{json, Value};

use crate::console::{eventually_page, Browser};
use crate::helpers::*;
use crate::hooks::Receiver;

/// Where a form sent the browser, decoded.
fn location(headers: &reqwest::header::HeaderMap) -> String {
    let to = headers.get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    url::form_urlencoded::parse(to.split_once('?').map_or("", |(_, q)| q).as_bytes())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test]
async fn a_conversation_counts_what_is_unread_until_it_is_marked_read() {
    let app = spawn_app().await;
    app.user_sends(USER, text("is my order on its way?")).await;
    app.user_sends(USER, text("it was due yesterday")).await;
    let mut b = Browser::new(&app.url);
    assert_eq!(b.sign_in(&app.key).await, 303);
    let page = eventually_page(&mut b, "/console/inbox", "data-unread=\"2\"").await;
    assert!(page.contains(&format!("data-contact=\"{USER}\"")), "{page}");

    // Marking it read sends Meta the receipt and clears the count.
    let csrf = Browser::csrf(&page);
    let (status, _, headers) = b.post(&format!("/console/inbox/{USER}/read"), &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    assert!(!location(&headers).contains("error"), "{}", location(&headers));
    let (_, page, _) = b.get("/console/inbox").await;
    assert!(!page.contains("data-unread"), "{page}");
    // A new message counts again.
    app.user_sends(USER, text("hello?")).await;
    eventually_page(&mut b, "/console/inbox", "data-unread=\"1\"").await;
}

#[tokio::test]
async fn events_are_read_per_contact_in_the_api_and_the_console() {
    let app = spawn_app().await;
    let other = "16505559876";
    app.user_sends(USER, text("from the first")).await;
    app.user_sends(other, text("from the second")).await;
    let received = |contact: &'static str| {
        let app = &app;
        async move {
            eventually("the contact's message is an event", || async {
                let (status, page) = app
                    .get(&format!("/v1/events?type=message.received&contact={contact}"))
                    .await;
                assert_eq!(status, 200, "{page}");
                let data = page["data"].as_array().cloned().unwrap_or_default();
                (!data.is_empty()).then_some(data)
            })
            .await
        }
    };
    // A number as people write it (+, spaces) names the same contact.
    let first = received("%2B1%20650%20555%201234").await;
    let second = received("16505559876").await;
    assert!(first.iter().all(|e| e["payload"]["from"] == USER), "{first:?}");
    assert!(second.iter().all(|e| e["payload"]["from"] == other), "{second:?}");
    let id = |events: &[Value]| events[0]["id"].as_str().expect("id").to_string();

    let mut b = Browser::new(&app.url);
    assert_eq!(b.sign_in(&app.key).await, 303);
    let (status, page, _) = b.get(&format!("/console/events?contact={other}")).await;
    assert_eq!(status, 200);
    assert!(page.contains(&id(&second)), "{page}");
    assert!(!page.contains(&id(&first)), "only the contact's events: {page}");
}

#[tokio::test]
async fn a_hook_is_tested_edited_disabled_and_enabled_from_the_console() {
    let app = spawn_app_with(|c| c.hooks.allow_private_networks = true).await;
    let receiver = Receiver::start().await;
    let mut b = Browser::new(&app.url);
    assert_eq!(b.sign_in(&app.key).await, 303);
    let (_, page, _) = b.get("/console/hooks").await;
    let csrf = Browser::csrf(&page);
    let (status, page, _) = b
        .post(
            "/console/hooks",
            &[
                ("csrf", &csrf),
                ("url", &receiver.url),
                ("events", "message.received"),
                ("headers", "X-Team: support-tokyo-0001"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let hook = app.get("/v1/hooks").await.1["data"][0].clone();
    let id = hook["id"].as_str().expect("id").to_string();
    assert_eq!(hook["headers"], json!({"X-Team": "…0001"}), "masked: {hook}");

    // A test event: signed as deliveries are, and the receiver's answer said on the page.
    let (status, _, headers) = b.post(&format!("/console/hooks/{id}/test"), &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    let said = location(&headers);
    assert!(said.contains("was answered 200"), "{said}");
    let got = receiver.has(1).await;
    assert_eq!(got[0].1["type"], "hook.test", "{:?}", got[0].1);
    assert!(got[0].0.contains_key("webhook-signature"));
    assert_eq!(got[0].0["x-team"], "support-tokyo-0001");
    let (_, page, _) = b.get(&format!("/console/hooks/{id}")).await;
    assert!(page.contains("No attempt yet."), "a test is not an attempt: {page}");

    // Edited: the masked header sent back keeps its value; a new one joins it.
    let (status, _, headers) = b
        .post(
            &format!("/console/hooks/{id}/edit"),
            &[
                ("csrf", &csrf),
                ("url", &receiver.url),
                ("events", "message.read, message.failed"),
                ("format", "event"),
                ("media", "link"),
                ("ordered", "true"),
                ("headers", "X-Team: …0001\nX-Region: eu"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    assert!(location(&headers).contains("notice=saved"), "{}", location(&headers));
    let hook = app.get(&format!("/v1/hooks/{id}")).await.1;
    assert_eq!(hook["events"], json!(["message.read", "message.failed"]), "{hook}");
    assert_eq!(hook["ordered"], true, "{hook}");
    b.post(&format!("/console/hooks/{id}/test"), &[("csrf", &csrf)]).await;
    let got = receiver.has(2).await;
    assert_eq!(got[1].0["x-team"], "support-tokyo-0001");
    assert_eq!(got[1].0["x-region"], "eu");
    // A header line without a colon is refused, naming it, and changes nothing.
    let (_, _, headers) = b
        .post(
            &format!("/console/hooks/{id}/edit"),
            &[
                ("csrf", &csrf),
                ("url", "http://127.0.0.1:9/elsewhere"),
                ("headers", "nonsense"),
            ],
        )
        .await;
    assert!(
        location(&headers).contains("line 1 has no `:`"),
        "{}",
        location(&headers)
    );
    assert_eq!(
        app.get(&format!("/v1/hooks/{id}")).await.1["url"],
        receiver.url.as_str()
    );

    // Disabled and enabled again.
    let (status, _, _) = b
        .post(&format!("/console/hooks/{id}/disable"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 303);
    let hook = app.get(&format!("/v1/hooks/{id}")).await.1;
    assert_eq!(hook["enabled"], false, "{hook}");
    let (_, page, _) = b.get(&format!("/console/hooks/{id}")).await;
    assert!(page.contains("/enable\""), "{page}");
    b.post(&format!("/console/hooks/{id}/enable"), &[("csrf", &csrf)]).await;
    assert_eq!(app.get(&format!("/v1/hooks/{id}")).await.1["enabled"], true);
    // The same through the API.
    let (status, answer) = app.post(&format!("/v1/hooks/{id}/test"), &json!({})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["status_code"].clone(), answer["succeeded"].clone()),
        (json!(200), json!(true))
    );
    let (status, answer) = app.post(&format!("/v1/hooks/{id}/disable"), &json!({})).await;
    assert_eq!((status, answer["enabled"].clone()), (200, json!(false)), "{answer}");
}

#[tokio::test]
async fn a_key_is_rotated_from_the_console_and_the_audit_log_is_filtered() {
    let app = spawn_app_with(|c| c.hooks.allow_private_networks = true).await;
    let (status, created) = app
        .post("/v1/keys", &json!({"name": "reporting", "scopes": ["read"]}))
        .await;
    assert_eq!(status, 201, "{created}");
    let (old_key, id) = (
        created["key"].as_str().expect("key").to_string(),
        created["id"].as_str().expect("id").to_string(),
    );
    let (status, hook) = app.post("/v1/hooks", &json!({"url": "http://127.0.0.1:9/hook"})).await;
    assert_eq!(status, 201, "{hook}");
    let mut b = Browser::new(&app.url);
    assert_eq!(b.sign_in(&app.key).await, 303);
    let (_, page, _) = b.get("/console/keys").await;
    assert!(page.contains(&format!("/console/keys/{id}/rotate")), "{page}");
    let csrf = Browser::csrf(&page);
    let (status, page, _) = b
        .post(
            &format!("/console/keys/{id}/rotate"),
            &[("csrf", &csrf), ("grace_seconds", "0")],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let at = page.find("data-new-key>").expect("the new key, shown once") + "data-new-key>".len();
    let new_key = page[at..].split('<').next().expect("key").to_string();
    assert_eq!(app.get_as(&new_key, "/v1/messages").await.0, 200);
    assert_eq!(app.get_as(&old_key, "/v1/messages").await.0, 401);

    // The audit log, by action (a prefix) and by account.
    let (_, page, _) = b.get("/console/audit?action=key.").await;
    assert!(page.contains("data-audit=\"key.rotated\""), "{page}");
    assert!(!page.contains("data-audit=\"hook."), "{page}");
    let (_, page, _) = b.get("/console/audit?action=hook.").await;
    assert!(page.contains("data-audit=\"hook.created\""), "{page}");
    assert!(!page.contains("data-audit=\"key."), "{page}");
    let (_, page, _) = b.get("/console/audit?account=nope").await;
    assert!(page.contains("role=\"alert\""), "an unknown account is said: {page}");
    let (status, list) = app.get("/v1/audit?action=key.&account=acme").await;
    assert_eq!(status, 200, "{list}");
}

#[tokio::test]
async fn the_overview_shows_each_numbers_quality_limit_and_token_as_meta_last_said() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app.url);
    assert_eq!(b.sign_in(&app.key).await, 303);
    // A configured number never read from Meta says so, with the way to read it.
    let (_, page, _) = b.get("/console").await;
    assert!(page.contains("read it from Meta now"), "{page}");
    // Meta is asked when the account is checked (or its numbers read); the overview asks nothing.
    let (status, health) = app.get("/v1/accounts/acme/health").await;
    assert_eq!(status, 200, "{health}");
    let (status, numbers) = app.get("/v1/accounts/acme/phone-numbers").await;
    assert_eq!(status, 200, "{numbers}");
    assert_eq!(numbers["data"][0]["messaging_limit"], "TIER_2K", "{numbers}");
    let (_, page, _) = b.get("/console").await;
    assert!(!page.contains("read it from Meta now"), "{page}");
    let at = page.find("data-number=").expect("a number's line");
    let line = &page[at..at + page[at..].find("</tr>").expect("its end")];
    for shown in ["GREEN", "STANDARD", "2K", "APPROVED"] {
        assert!(line.contains(shown), "{shown} in {line}");
    }
    assert!(
        line.contains("never expires") || line.contains("expires in"),
        "the token as checked: {line}"
    );
}

#[tokio::test]
async fn the_usage_page_prices_the_month_loads_a_card_and_sets_a_budget() {
    let app = spawn_app().await;
    assert_eq!(app.post("/v1/templates/sync", &json!({})).await.0, 200);
    let mut b = Browser::new(&app.url);
    assert_eq!(b.sign_in(&app.key).await, 303);
    let (_, page, _) = b.get("/console/usage").await;
    assert!(page.contains("No rate card is loaded"), "{page}");
    let csrf = Browser::csrf(&page);
    // A bad card is refused with its line and column; a good one loads.
    let load = |csv: &'static str| {
        [
            ("csrf", csrf.clone()),
            ("currency", "EUR".to_string()),
            ("effective", "2026-01-01".to_string()),
            ("csv", csv.to_string()),
        ]
    };
    let fields = load("market,category,rate\nUS,utility,free\n");
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_, _, headers) = b.post("/console/usage/rates", &pairs).await;
    assert!(
        location(&headers).contains("line 2, column rate"),
        "{}",
        location(&headers)
    );
    let fields = load("market,category,rate,tier_from,tier_to\nUS,utility,0.0100,0,2\nUS,utility,0.0050,2,\n");
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_, _, headers) = b.post("/console/usage/rates", &pairs).await;
    assert!(location(&headers).contains("loaded"), "{}", location(&headers));
    for _ in 0..3 {
        template_delivered(&app, USER).await;
    }
    let (_, page, _) = b.get("/console/usage").await;
    assert!(page.contains("<strong data-cost>0.025</strong> EUR"), "{page}");
    assert!(page.contains("data-market=\"US\""), "{page}");
    assert!(page.contains("<rect class=\"bar utility\""), "the day's bar: {page}");
    let (_, _, headers) = b
        .post(
            "/console/usage/budget",
            &[
                ("csrf", &csrf),
                ("scope", "account:acme"),
                ("amount", "1.00"),
                ("hard_stop", "true"),
            ],
        )
        .await;
    assert!(
        location(&headers).contains("budget of acme is 1 EUR"),
        "{}",
        location(&headers)
    );
    let (_, _, headers) = b.post("/console/usage/reconcile", &[("csrf", &csrf)]).await;
    assert!(
        location(&headers).contains("Meta's figures read"),
        "{}",
        location(&headers)
    );
    let (_, page, _) = b.get("/console/usage").await;
    assert!(page.contains("data-budget=\"acme\""), "{page}");
    assert!(page.contains("data-recon="), "the reconciliation table: {page}");
    assert!(page.contains("0.025 (2 %)"), "{page}");
}
