//! Meta's webhook: handshake, signatures, routing, journal, and every fixture becoming events.

use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn verify_handshake_answers_the_challenge_only_with_the_right_token() {
    let app = spawn_app().await;
    let get = |q: &str| app.http.get(format!("{}/webhooks/whatsapp?{q}", app.url)).send();
    let ok = get("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock")
        .await
        .expect("get");
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.text().await.expect("text"), "1158201444");
    let wrong = get("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=nope")
        .await
        .expect("get");
    assert_eq!(wrong.status().as_u16(), 403);
    let no_mode = get("hub.challenge=1&hub.verify_token=meatyhamhock").await.expect("get");
    assert_eq!(no_mode.status().as_u16(), 403);
    let per_account = app
        .http
        .get(format!(
            "{}/webhooks/whatsapp/acme?hub.mode=subscribe&hub.challenge=42&hub.verify_token=meatyhamhock",
            app.url
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(per_account.text().await.expect("text"), "42");
}

#[tokio::test]
async fn signatures_are_checked_over_the_raw_bytes_and_bad_ones_store_nothing() {
    let app = spawn_app().await;
    let body = fixture("inbound_text.json");
    let post = |sig: Option<&str>| {
        let mut r = app
            .http
            .post(format!("{}/webhooks/whatsapp", app.url))
            .body(body.clone());
        if let Some(s) = sig {
            r = r.header("x-hub-signature-256", s);
        }
        r.send()
    };
    let missing = post(None).await.expect("post");
    assert_eq!(missing.status().as_u16(), 401);
    let body_json: Value = missing.json().await.expect("json");
    assert_eq!(body_json["error"]["code"], "signature_missing");
    let wrong = post(Some(&wagate_core::signature::sign_hub("not-the-secret", &body)))
        .await
        .expect("post");
    assert_eq!(wrong.status().as_u16(), 403);
    let garbage = post(Some("sha256=zz")).await.expect("post");
    assert_eq!(garbage.status().as_u16(), 403);
    let counts = app.gateway.state.store.journal_counts().await.expect("counts");
    assert_eq!(counts, Default::default(), "nothing stored");
    assert!(app.events().await.is_empty());

    // Meta's own example: raw body and header as Meta computed them.
    let example: Value = serde_json::from_slice(&fixture("webhook_signature_example.json")).expect("json");
    let raw = example["raw_body"].as_str().expect("raw");
    let header = example["headers"]["X-Hub-Signature-256"].as_str().expect("header");
    let ok = app
        .http
        .post(format!("{}/webhooks/whatsapp", app.url))
        .header("x-hub-signature-256", header)
        .body(raw.to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(ok.status().as_u16(), 200);
}

#[tokio::test]
async fn non_ascii_bodies_verify_and_keep_their_text() {
    let app = spawn_app().await;
    let text = "Olá! Está disponível em azul? 👋🏽 日本語";
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_ID},
        "contacts": [{"profile": {"name": "Zoë"}, "wa_id": USER}],
        "messages": [{"from": USER, "id": "wamid.nonascii", "timestamp": "1749416383", "type": "text", "text": {"body": text}}]}}]}]});
    // Non-compact, non-ASCII bytes exactly as sent: the signature covers these bytes.
    let raw = serde_json::to_string_pretty(&body).expect("json").into_bytes();
    assert_eq!(app.post_webhook(&raw).await.status().as_u16(), 200);
    let events = app.settled_events().await;
    assert_eq!(events[0]["payload"]["text"], text);
    assert_eq!(events[0]["payload"]["contact"]["name"], "Zoë");
}

#[tokio::test]
async fn signed_webhooks_for_unknown_numbers_wait_in_quarantine_until_the_account_exists() {
    const NEW_PHONE: &str = "109999999999999";
    let url = wagate_store::testing::fresh_database_url().await;
    let app = spawn_app_with(|c| c.database_url = url.clone()).await;
    // A message for a number of the account's WABA that the account does not have yet.
    let body = String::from_utf8(fixture("inbound_text.json"))
        .expect("utf8")
        .replace(PHONE_ID, NEW_PHONE);
    assert_eq!(app.post_webhook(body.as_bytes()).await.status().as_u16(), 200);
    // Meta retries what it did not get a 200 for; a retry of this one changes nothing.
    assert_eq!(app.post_webhook(body.as_bytes()).await.status().as_u16(), 200);
    let counts = app.gateway.state.store.journal_counts().await.expect("counts");
    assert_eq!((counts.quarantined, counts.pending), (2, 0));
    assert!(app.settled_events().await.is_empty(), "kept, not processed");
    let (status, list) = app.get("/v1/journal/quarantined").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["data"].as_array().map(Vec::len), Some(2), "{list}");
    assert_eq!(list["data"][0]["phone_number_ids"], json!([NEW_PHONE]), "{list}");
    assert_eq!(list["data"][0]["waba_ids"], json!([WABA]), "{list}");
    assert_eq!(list["data"][0]["body"], body.as_str());
    assert!(list["hint"]
        .as_str()
        .is_some_and(|h| h.contains("/v1/journal/quarantined/requeue")));
    let (status, page) = app
        .get(&format!("/v1/journal/quarantined?after={}", list["data"][0]["id"]))
        .await;
    assert_eq!(
        (status, page["data"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{page}"
    );
    // No account has the number yet: asking again releases nothing.
    let (status, r) = app.post("/v1/journal/quarantined/requeue", &json!({})).await;
    assert_eq!((status, &r), (200, &json!({"released": 0, "still_quarantined": 2})));
    let metrics = app.get_text(&format!("{}/metrics", app.url)).await;
    assert!(metrics.contains("wagate_webhooks_quarantined_total 2"), "{metrics}");
    app.gateway.shutdown().await;

    // The account gets the number (here: the configuration, and a restart): what waited for it
    // is processed as its own, once.
    let app = spawn_app_with(|c| {
        c.database_url = url.clone();
        c.accounts[0].phone_number_ids.push(NEW_PHONE.into());
    })
    .await;
    let events = eventually("the quarantined message is processed", || async {
        let events = app.settled_events().await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "message.received");
    assert_eq!(events[0]["payload"]["phone_number_id"], NEW_PHONE);
    let (_, accounts) = app.get("/v1/accounts").await;
    assert_eq!(events[0]["account"], accounts["data"][0]["id"], "{accounts}");
    let counts = app.gateway.state.store.journal_counts().await.expect("counts");
    assert_eq!(counts.quarantined, 0);
    let (_, list) = app.get("/v1/journal/quarantined").await;
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn a_new_customers_waba_arrives_as_an_account_event() {
    // Meta tells the app that a business installed it, naming a WABA no account has yet: that
    // is how a new customer arrives, so it is accepted even where unknown numbers are refused.
    const NEW_WABA: &str = "555000111222333";
    let app = spawn_app_with(|c| c.webhook.unknown_accounts = "refuse".into()).await;
    let body = String::from_utf8(fixture("account_update_partner_app_installed.json"))
        .expect("utf8")
        .replace(WABA, NEW_WABA);
    assert_eq!(app.post_webhook(body.as_bytes()).await.status().as_u16(), 200);
    let events = app.settled_events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "account.updated");
    assert_eq!(events[0]["payload"]["event"], "PARTNER_APP_INSTALLED");
    assert_eq!(events[0]["payload"]["waba_id"], NEW_WABA);
    assert!(
        events[0]["account"].is_null(),
        "no account has this WABA: {}",
        events[0]
    );
    // The same update for the account's own WABA is that account's.
    let body = String::from_utf8(fixture("account_update_partner_app_installed.json")).expect("utf8");
    assert_eq!(app.post_webhook(body.as_bytes()).await.status().as_u16(), 200);
    let events = app.settled_events().await;
    assert_eq!(events.len(), 2, "{events:?}");
    let (_, accounts) = app.get("/v1/accounts").await;
    assert_eq!(events[1]["account"], accounts["data"][0]["id"], "{}", events[1]);
}

#[tokio::test]
async fn unknown_numbers_can_still_be_refused() {
    let app = spawn_app_with(|c| c.webhook.unknown_accounts = "refuse".into()).await;
    let body = String::from_utf8(fixture("inbound_text.json"))
        .expect("utf8")
        .replace(WABA, "999999999");
    let r = app.post_webhook(body.as_bytes()).await;
    assert_eq!(r.status().as_u16(), 403);
    let err: Value = r.json().await.expect("json");
    assert_eq!(err["error"]["code"], "unknown_account");
    assert!(err["error"]["hint"].as_str().is_some_and(|h| h.contains("quarantine")));
    assert_eq!(
        app.gateway.state.store.journal_counts().await.expect("counts"),
        Default::default()
    );
    let metrics = app.get_text(&format!("{}/metrics", app.url)).await;
    assert!(
        metrics.contains("wagate_webhooks_rejected_total{reason=\"unknown_account\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn oversized_bodies_get_413_in_the_error_shape_and_store_nothing() {
    // (A signed body that is not JSON is Meta's all the same: it is kept and becomes a
    // `webhook.invalid` event; see bad_input::every_acknowledged_webhook_leaves_an_event.)
    let app = spawn_app_with(|c| c.webhook.max_body_bytes = 64 * 1024).await;
    let big = vec![b' '; 70 * 1024];
    let r = app.post_webhook(&big).await;
    assert_eq!(r.status().as_u16(), 413);
    let err: Value = r.json().await.expect("json");
    assert_eq!(err["error"]["code"], "body_too_large");
    assert_eq!(err["error"]["details"]["limit"], 64 * 1024);
    assert_eq!(
        app.gateway.state.store.journal_counts().await.expect("counts"),
        Default::default()
    );
}

/// What each webhook fixture must become: event types in order, and (pointer, value) checks on
/// the first event (`null` means "present, any value").
/// (fixture, event types, checks)
type Expectation = (&'static str, Vec<&'static str>, Vec<(&'static str, Value)>);

fn expectations() -> Vec<Expectation> {
    let any = Value::Null;
    vec![
        (
            "account_alerts.json",
            vec!["account.alert"],
            vec![("/payload/field", json!("account_alerts"))],
        ),
        (
            "account_update_partner_app_installed.json",
            vec!["account.updated"],
            vec![("/payload/event", json!("PARTNER_APP_INSTALLED"))],
        ),
        (
            "account_update_restriction.json",
            vec!["account.updated"],
            vec![("/payload/event", json!("ACCOUNT_RESTRICTION"))],
        ),
        (
            "account_update_violation.json",
            vec!["account.updated"],
            vec![("/payload/event", json!("ACCOUNT_VIOLATION"))],
        ),
        (
            "inbound_audio_voice.json",
            vec!["message.received"],
            vec![
                ("/payload/type", json!("audio")),
                ("/payload/content/media/voice", json!(true)),
            ],
        ),
        (
            "inbound_button_template_quick_reply.json",
            vec!["message.received"],
            vec![
                ("/payload/type", json!("button")),
                ("/payload/content/payload", any.clone()),
                ("/payload/context/wamid", any.clone()),
            ],
        ),
        (
            "inbound_contacts.json",
            vec!["message.received"],
            vec![
                ("/payload/type", json!("contacts")),
                ("/payload/content/contacts/0/name", any.clone()),
            ],
        ),
        (
            "inbound_document.json",
            vec!["message.received"],
            vec![
                ("/payload/type", json!("document")),
                ("/payload/content/media/filename", any.clone()),
            ],
        ),
        (
            "inbound_image.json",
            vec!["message.received"],
            vec![
                ("/payload/type", json!("image")),
                ("/payload/content/media/id", any.clone()),
                ("/payload/content/media/sha256", any.clone()),
            ],
        ),
        (
            "inbound_interactive_button_reply.json",
            vec!["message.received"],
            vec![
                ("/payload/content/type", json!("button_reply")),
                ("/payload/content/id", any.clone()),
                ("/payload/context/wamid", any.clone()),
            ],
        ),
        (
            "inbound_interactive_list_reply.json",
            vec!["message.received"],
            vec![
                ("/payload/content/type", json!("list_reply")),
                ("/payload/content/title", any.clone()),
            ],
        ),
        (
            "inbound_interactive_nfm_reply.json",
            vec!["message.received"],
            vec![
                ("/payload/content/type", json!("nfm_reply")),
                ("/payload/content/response/flow_token", any.clone()),
            ],
        ),
        (
            "inbound_location.json",
            vec!["message.received"],
            vec![
                ("/payload/type", json!("location")),
                ("/payload/content/latitude", any.clone()),
            ],
        ),
        (
            "inbound_order.json",
            vec!["message.received"],
            vec![
                ("/payload/type", json!("order")),
                ("/payload/content/product_items/0", any.clone()),
            ],
        ),
        (
            "inbound_reaction.json",
            vec!["message.received"],
            vec![
                ("/payload/type", json!("reaction")),
                ("/payload/content/emoji", any.clone()),
                ("/payload/content/wamid", any.clone()),
            ],
        ),
        (
            "inbound_referral_ctwa.json",
            vec!["message.received"],
            vec![("/payload/referral/source_type", any.clone())],
        ),
        (
            "inbound_sticker.json",
            vec!["message.received"],
            vec![
                ("/payload/type", json!("sticker")),
                ("/payload/content/media/animated", any.clone()),
            ],
        ),
        (
            "inbound_system_user_changed_number.json",
            vec!["message.received"],
            vec![
                ("/payload/type", json!("system")),
                ("/payload/content/type", json!("user_changed_number")),
            ],
        ),
        (
            "inbound_text.json",
            vec!["message.received"],
            vec![
                ("/payload/text", json!("Does it come in another color?")),
                ("/payload/contact/name", json!("Sheena Nelson")),
                ("/payload/timestamp", json!("2025-06-08T20:59:43Z")),
            ],
        ),
        (
            "inbound_text_forwarded.json",
            vec!["message.received"],
            vec![("/payload/context/forwarded", json!(true))],
        ),
        (
            "inbound_text_reply_context.json",
            vec!["message.received"],
            vec![
                ("/payload/context/wamid", any.clone()),
                ("/payload/context/from", any.clone()),
            ],
        ),
        (
            "inbound_unsupported.json",
            vec!["message.received"],
            vec![
                ("/payload/type", json!("unsupported")),
                ("/payload/errors/0/code", json!(131051)),
            ],
        ),
        (
            "inbound_video.json",
            vec!["message.received"],
            vec![
                ("/payload/type", json!("video")),
                ("/payload/content/media/mime_type", any.clone()),
            ],
        ),
        (
            "message_template_quality_update.json",
            vec!["template.quality_updated"],
            vec![
                ("/payload/template_name", any.clone()),
                ("/payload/new_quality_score", any.clone()),
            ],
        ),
        (
            "message_template_status_update_approved.json",
            vec!["template.status_updated"],
            vec![("/payload/status", json!("APPROVED"))],
        ),
        (
            "message_template_status_update_disabled.json",
            vec!["template.status_updated"],
            vec![("/payload/status", json!("DISABLED"))],
        ),
        (
            "message_template_status_update_paused.json",
            vec!["template.status_updated"],
            vec![("/payload/status", json!("PAUSED"))],
        ),
        (
            "message_template_status_update_rejected.json",
            vec!["template.status_updated"],
            vec![("/payload/status", json!("REJECTED")), ("/payload/reason", any.clone())],
        ),
        (
            "phone_number_quality_update.json",
            vec!["phone_number.quality_updated"],
            vec![("/payload/event", json!("THROUGHPUT_UPGRADE"))],
        ),
        (
            "status_delivered.json",
            vec!["message.delivered"],
            vec![("/payload/pricing/pricing_model", json!("PMP"))],
        ),
        (
            "status_failed.json",
            vec!["message.failed"],
            vec![
                ("/payload/errors/0/code", json!(131049)),
                ("/payload/errors/0/hint", any.clone()),
            ],
        ),
        (
            "status_failed_131047.json",
            vec!["message.failed"],
            vec![("/payload/errors/0/code", json!(131047))],
        ),
        (
            "status_read.json",
            vec!["message.read"],
            vec![("/payload/status", json!("read"))],
        ),
        (
            "status_sent.json",
            vec!["message.sent"],
            vec![("/payload/pricing/type", json!("free_customer_service"))],
        ),
        (
            "status_sent_marketing_template.json",
            vec!["message.sent"],
            vec![("/payload/pricing/category", json!("marketing"))],
        ),
        (
            "status_sent_v23_with_conversation.json",
            vec!["message.sent"],
            vec![("/payload/conversation/id", any.clone())],
        ),
        (
            "webhook_batched.json",
            vec!["message.delivered", "message.received", "message.read"],
            vec![],
        ),
    ]
}

#[tokio::test]
async fn every_webhook_fixture_becomes_its_events() {
    let table = expectations();
    // Every webhook fixture in the folder is in the table: a new fixture cannot be skipped silently.
    for name in fixture_names() {
        let doc: Value = serde_json::from_slice(&fixture(&name)).expect("json");
        if doc["object"] == "whatsapp_business_account" {
            assert!(
                table.iter().any(|(n, _, _)| *n == name),
                "webhook fixture {name} has no expectation"
            );
        }
    }
    for (name, types, checks) in table {
        let app = spawn_app().await;
        let r = app.post_webhook(&fixture(name)).await;
        assert_eq!(r.status().as_u16(), 200, "{name}");
        let events = app.settled_events().await;
        let got: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap_or_default()).collect();
        assert_eq!(got, types, "{name}");
        let account = app.gateway.state.accounts.all()[0].id.clone();
        for e in &events {
            assert_eq!(e["account"], json!(account), "{name}: event has its account");
            assert!(!e["raw"].is_null(), "{name}: event keeps the raw object");
            assert!(e["id"].as_str().is_some_and(|i| i.starts_with("evt_")), "{name}");
            assert!(
                e["occurred_at"].as_str().is_some_and(|t| t.ends_with('Z')),
                "{name}: RFC 3339 time"
            );
        }
        for (pointer, want) in checks {
            let v = events[0].pointer(pointer).unwrap_or(&Value::Null);
            if want.is_null() {
                assert!(!v.is_null(), "{name}: {pointer} should be present in {}", events[0]);
            } else {
                assert_eq!(v, &want, "{name}: {pointer} in {}", events[0]);
            }
        }
        // Posting the same body again (Meta retries) adds nothing.
        app.post_webhook(&fixture(name)).await;
        let again = app.settled_events().await;
        let dupes_ok = name.starts_with("inbound_") || name.starts_with("status_") || name == "webhook_batched.json";
        if dupes_ok {
            assert_eq!(
                again.len(),
                events.len(),
                "{name}: a redelivered message or status is not emitted twice"
            );
        }
        app.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn unknown_fields_types_and_shapes_are_kept_not_lost() {
    let app = spawn_app().await;
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "time": 1751000000, "changes": [
        {"field": "calls", "value": {"calls": [{"id": "c1", "event": "connect"}]}},
        {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": PHONE_ID},
            "contacts": [{"profile": {"name": "Hidden", "username": "@hidden"}, "user_id": "US.13491208655302741918"}],
            "messages": [
                {"from_user_id": "US.13491208655302741918", "id": "wamid.bsuid1", "timestamp": "1751000000", "type": "text", "text": {"body": "no phone number"}},
                {"from": USER, "id": "wamid.new1", "timestamp": "1751000001", "type": "hologram", "hologram": {"id": "h1"}}
            ]}}
    ]}]});
    assert_eq!(
        app.post_webhook(body.to_string().as_bytes()).await.status().as_u16(),
        200
    );
    let events = app.settled_events().await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap_or_default()).collect();
    assert_eq!(types, vec!["webhook.unknown", "message.received", "message.received"]);
    assert_eq!(events[0]["raw"]["calls"][0]["id"], "c1");
    assert_eq!(events[1]["payload"]["from_user_id"], "US.13491208655302741918");
    assert_eq!(events[1]["payload"]["contact"]["username"], "@hidden");
    assert_eq!(events[2]["payload"]["type"], "hologram");
    assert_eq!(events[2]["raw"]["message"]["hologram"]["id"], "h1");
}

#[tokio::test]
async fn statuses_never_move_backwards_even_out_of_order() {
    let app = spawn_app().await;
    // Send a message, then deliver its statuses in the wrong order by hand.
    app.open_window(USER).await;
    app.sim.set_webhook_url(None); // keep the simulator's own statuses out of this test
    let (status, m) = app
        .post(
            "/v1/messages?wait=accepted",
            &json!({"to": USER, "text": {"body": "hello"}}),
        )
        .await;
    assert_eq!(status, 202, "{m}");
    let wamid = m["wamid"].as_str().expect("wamid").to_string();
    let status_body = |s: &str| {
        json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": {"phone_number_id": PHONE_ID},
            "statuses": [{"id": wamid, "status": s, "timestamp": "1751000000", "recipient_id": USER}]}}]}]})
        .to_string()
    };
    for s in ["read", "sent", "delivered", "read"] {
        assert_eq!(app.post_webhook(status_body(s).as_bytes()).await.status().as_u16(), 200);
    }
    app.settled_events().await;
    let (_, m) = app
        .get(&format!("/v1/messages/{}", m["id"].as_str().expect("id")))
        .await;
    assert_eq!(m["status"], "read");
    let events = app.events().await;
    let status_events: Vec<&str> = events
        .iter()
        .filter_map(|e| e["type"].as_str())
        .filter(|t| *t != "message.received")
        .collect();
    assert_eq!(
        status_events,
        vec!["message.read"],
        "late statuses are recorded but not announced"
    );
}

#[tokio::test]
async fn a_batched_post_is_processed_entirely() {
    let app = spawn_app().await;
    let statuses: Vec<Value> = (0..300)
        .map(|i| json!({"id": format!("wamid.batch{i}"), "status": "delivered", "timestamp": "1751000000", "recipient_id": USER}))
        .collect();
    let messages: Vec<Value> = (0..300)
        .map(|i| json!({"from": USER, "id": format!("wamid.in{i}"), "timestamp": "1751000000", "type": "text", "text": {"body": format!("m{i}")}}))
        .collect();
    let body = json!({"object": "whatsapp_business_account", "entry": [
        {"id": WABA, "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": PHONE_ID}, "statuses": statuses}}]},
        {"id": WABA, "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": PHONE_ID},
            "contacts": [{"profile": {"name": "S"}, "wa_id": USER}], "messages": messages}}]}
    ]});
    assert_eq!(
        app.post_webhook(body.to_string().as_bytes()).await.status().as_u16(),
        200
    );
    let events = app.settled_events().await;
    assert_eq!(events.iter().filter(|e| e["type"] == "message.delivered").count(), 300);
    assert_eq!(events.iter().filter(|e| e["type"] == "message.received").count(), 300);
}

#[tokio::test]
async fn journalled_bodies_are_processed_after_a_restart() {
    // A body journalled but not processed (the process died between the 200 and processing) is
    // processed by the next start.
    let url = wagate_store::testing::fresh_database_url().await;
    let store = wagate_store::connect(&url, &Default::default()).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
        .journal_webhooks(&[wagate_store::NewJournalEntry {
            received_at: 1,
            account_id: None,
            body: fixture("inbound_text.json"),
            state: wagate_store::JournalState::Pending,
        }])
        .await
        .expect("journal");
    let app = spawn_app_with(|c| c.database_url = url.clone()).await;
    let events = app.settled_events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "message.received");
}

#[tokio::test]
async fn every_other_webhook_field_becomes_its_event() {
    let app = spawn_app().await;
    let field = |field: &str, value: Value| json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "time": 1751000000, "changes": [{"field": field, "value": value}]}]});
    let bodies = [
        field(
            "user_preferences",
            json!({"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_ID},
            "contacts": [{"wa_id": USER, "profile": {"name": "Sheena"}}],
            "user_preferences": [{"wa_id": USER, "detail": "User requested to stop marketing messages", "category": "marketing_messages", "value": "stop", "timestamp": 1751000000}]}),
        ),
        field(
            "phone_number_name_update",
            json!({"display_phone_number": "15550783881", "decision": "APPROVED", "requested_verified_name": "Acme Shoes", "rejection_reason": null}),
        ),
        field(
            "template_category_update",
            json!({"message_template_id": 1192339204654487u64, "message_template_name": "hello_world", "message_template_language": "en_US", "previous_category": "MARKETING", "new_category": "UTILITY"}),
        ),
        field(
            "message_template_components_update",
            json!({"message_template_id": 1192339204654487u64, "message_template_name": "hello_world", "message_template_language": "en_US", "message_template_element": "Hello!"}),
        ),
        field(
            "business_capability_update",
            json!({"max_daily_conversations_per_business": 2000}),
        ),
    ];
    for b in &bodies {
        assert_eq!(app.post_webhook(b.to_string().as_bytes()).await.status().as_u16(), 200);
    }
    let events = app.settled_events().await;
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        types,
        vec![
            "user.preferences_updated",
            "phone_number.name_updated",
            "template.category_updated",
            "template.components_updated",
            "webhook.unknown"
        ]
    );
    assert_eq!(events[0]["payload"]["user_preferences"][0]["value"], "stop");
    assert_eq!(events[1]["payload"]["decision"], "APPROVED");
    assert_eq!(events[2]["payload"]["new_category"], "UTILITY");
    assert_eq!(events[2]["payload"]["template_name"], "hello_world");
    assert_eq!(events[4]["payload"]["field"], "business_capability_update");
    assert_eq!(events[4]["raw"]["max_daily_conversations_per_business"], 2000);
    for e in &events {
        assert!(e["account"].is_string(), "{e}");
    }
}

#[tokio::test]
async fn a_simulated_user_replies_to_our_buttons_in_a_batched_post() {
    let app = spawn_app().await;
    app.open_window(USER).await;
    let buttons = json!({"to": USER, "type": "interactive", "interactive": {"type": "button", "body": {"text": "Is this your order?"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}}, {"type": "reply", "reply": {"id": "no", "title": "No"}}]}}});
    let (_, ours) = app.post("/v1/messages?wait=accepted", &buttons).await;
    let wamid = ours["wamid"].as_str().expect("wamid").to_string();
    // Two messages in one webhook POST: the button tap (a reply to our message) and a reaction.
    let batch = json!([
        {"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}, "context": {"from": "15550783881", "id": wamid}},
        {"type": "reaction", "reaction": {"message_id": wamid, "emoji": "👍"}}
    ]);
    let r = app
        .http
        .post(format!("{}/_sim/users/{USER}/messages", app.sim_url))
        .json(&batch)
        .send()
        .await
        .expect("batch");
    let answer: Value = r.json().await.expect("json");
    assert_eq!(answer["wamids"].as_array().map(Vec::len), Some(2), "{answer}");
    let events = app.settled_events().await;
    let received: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "message.received")
        .skip(1)
        .collect();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0]["payload"]["content"]["id"], "yes");
    assert_eq!(received[0]["payload"]["context"]["wamid"], json!(wamid));
    assert_eq!(received[1]["payload"]["content"]["emoji"], "👍");
    assert_eq!(received[1]["payload"]["content"]["wamid"], json!(wamid));
}

/// A fault in the database that makes one message's insert fail (a trigger), as a poison
/// webhook would; `on = false` removes it.
async fn poison_trigger(database_url: &str, wamid: &str, on: bool) {
    use sqlx::Connection;
    let statements: Vec<String> = match (database_url.starts_with("postgres"), on) {
        (true, true) => vec![
            format!("CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN IF NEW.wamid = '{wamid}' THEN RAISE EXCEPTION 'poison entry'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"),
            "CREATE TRIGGER poison BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION poison()".into(),
        ],
        (true, false) => vec!["DROP TRIGGER poison ON messages".into(), "DROP FUNCTION poison()".into()],
        (false, true) => vec![format!(
            "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.wamid = '{wamid}' BEGIN SELECT RAISE(ABORT, 'poison entry'); END"
        )],
        (false, false) => vec!["DROP TRIGGER poison".into()],
    };
    if database_url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(database_url).await.expect("connect");
        for st in statements {
            sqlx::query(&st).execute(&mut c).await.expect("trigger");
        }
    } else {
        let mut c = sqlx::SqliteConnection::connect(database_url).await.expect("connect");
        for st in statements {
            sqlx::query(&st).execute(&mut c).await.expect("trigger");
        }
    }
}

#[tokio::test]
async fn a_webhook_that_fails_to_apply_is_set_aside_and_the_rest_flows() {
    let app = spawn_app().await;
    let url = app.gateway.state.config.database_url.clone();
    let original = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=";
    let with = |wamid: &str| {
        String::from_utf8(fixture("inbound_text.json"))
            .expect("utf8")
            .replace(original, wamid)
    };
    poison_trigger(&url, "wamid.POISON", true).await;
    for wamid in ["wamid.GOOD1", "wamid.POISON", "wamid.GOOD2"] {
        assert_eq!(app.post_webhook(with(wamid).as_bytes()).await.status().as_u16(), 200);
    }
    // The good ones become events; the poison one is set aside with its error.
    let dead = eventually("the poison entry is set aside", || async {
        let (_, d) = app.get("/v1/journal/dead").await;
        (d["data"].as_array().map(Vec::len) == Some(1)).then_some(d)
    })
    .await;
    let entry = &dead["data"][0];
    assert!(
        entry["error"].as_str().unwrap_or("").contains("poison entry"),
        "{entry}"
    );
    assert!(entry["body"].as_str().unwrap_or("").contains("wamid.POISON"), "{entry}");
    let wamids = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["type"] == "message.received")
            .map(|e| e["payload"]["wamid"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let events = app.settled_events().await;
    let got = wamids(&events);
    assert!(
        got.contains(&"wamid.GOOD1".to_string()) && got.contains(&"wamid.GOOD2".to_string()),
        "{got:?}"
    );
    assert!(!got.contains(&"wamid.POISON".to_string()));
    let counts = app.gateway.state.store.journal_counts().await.expect("counts");
    assert_eq!((counts.pending, counts.dead), (0, 1), "{counts:?}");
    // Fixed, then requeued: it is applied, once.
    poison_trigger(&url, "wamid.POISON", false).await;
    let id = entry["id"].as_i64().expect("id");
    let (status, r) = app.post(&format!("/v1/journal/{id}/requeue"), &json!({})).await;
    assert_eq!(status, 200, "{r}");
    eventually("the requeued entry is applied", || async {
        let events = app.settled_events().await;
        wamids(&events).contains(&"wamid.POISON".to_string()).then_some(())
    })
    .await;
    let (_, d) = app.get("/v1/journal/dead").await;
    assert_eq!(d["data"], json!([]));
    let (status, _) = app.post(&format!("/v1/journal/{id}/requeue"), &json!({})).await;
    assert_eq!(status, 404);
    let counts = app.gateway.state.store.journal_counts().await.expect("counts");
    assert_eq!((counts.pending, counts.dead), (0, 0), "{counts:?}");
}

#[tokio::test]
async fn ready_turns_503_while_processing_is_behind_and_back_when_it_catches_up() {
    let app = spawn_app_with(|c| c.server.ready_max_backlog_seconds = 1).await;
    let ready = || async {
        let r = app.http.get(format!("{}/ready", app.url)).send().await.expect("ready");
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap_or(Value::Null))
    };
    assert_eq!(ready().await.0, 200);
    // Something holds the main database: webhooks are still acknowledged (the journal is apart),
    // but processing cannot keep up.
    let lock = app.hold_database().await;
    assert_eq!(
        app.post_webhook(&fixture("inbound_text.json")).await.status().as_u16(),
        200
    );
    let behind = eventually("ready says behind", || async {
        let (status, body) = ready().await;
        (status == 503).then_some(body)
    })
    .await;
    assert_eq!(behind["status"], "behind", "{behind}");
    assert!(
        behind["journal"]["oldest_pending_age_seconds"].as_f64().unwrap_or(0.0) > 1.0,
        "{behind}"
    );
    drop(lock);
    eventually("ready again once caught up", || async {
        (ready().await.0 == 200).then_some(())
    })
    .await;
    let events = app.settled_events().await;
    assert_eq!(events.iter().filter(|e| e["type"] == "message.received").count(), 1);
}

#[tokio::test]
async fn acknowledgements_are_paced_to_processing_but_never_stop() {
    let app = spawn_app_with(|c| c.webhook.pace_backlog = 1).await;
    let original = String::from_utf8(fixture("inbound_text.json")).expect("utf-8");
    let webhook = |n: usize| {
        original
            .replace(
                "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
                &format!("wamid.paced{n}"),
            )
            .into_bytes()
    };
    // One processed batch: the gateway knows where processing stands.
    assert_eq!(app.post_webhook(&webhook(0)).await.status().as_u16(), 200);
    app.settled_events().await;
    // Processing is stuck behind something holding the main database: the backlog passes the
    // bound, and each next acknowledgement waits for processing, at most 100 ms, then goes out.
    let sqlite = app.gateway.state.config.database_url.starts_with("sqlite");
    let lock = app.hold_database().await;
    for n in 1..=5 {
        assert_eq!(
            app.post_webhook(&webhook(n)).await.status().as_u16(),
            200,
            "webhook {n}"
        );
    }
    let metrics = app.get_text(&format!("{}/metrics", app.url)).await;
    let paced = metrics
        .lines()
        .any(|l| l.starts_with("wagate_webhook_paced_total") && l.contains("timeout"));
    // Pacing is for the one gateway of a SQLite database; several on PostgreSQL share their
    // journal, and none paces.
    assert_eq!(paced, sqlite, "{metrics}");
    drop(lock);
    let events = app.settled_events().await;
    assert_eq!(
        events.iter().filter(|e| e["type"] == "message.received").count(),
        6,
        "every acknowledged webhook is processed"
    );
}
