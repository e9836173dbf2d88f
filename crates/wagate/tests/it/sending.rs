//! Sending through the API and the queue to the simulator, and what comes back.

use serde_json::{json, Value};

use crate::helpers::*;

fn hello_world() -> Value {
    json!({"to": "+1 650-555-1234", "type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}})
}

#[tokio::test]
async fn a_template_reaches_read_with_its_timeline_and_pricing() {
    let app = spawn_app().await;
    let (status, m) = app.post("/v1/messages", &hello_world()).await;
    assert_eq!(status, 202, "{m}");
    assert_eq!(m["status"], "queued");
    assert!(m["id"].as_str().is_some_and(|i| i.starts_with("msg_")));
    let id = m["id"].as_str().expect("id");
    let m = app.message_reaches(id, "read").await;
    let timeline: Vec<&str> = m["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|t| t["status"].as_str())
        .collect();
    assert_eq!(timeline, vec!["queued", "sent", "delivered", "read"]);
    assert!(m["wamid"].as_str().is_some_and(|w| w.starts_with("wamid.")));
    assert_eq!(m["pricing"]["category"], "utility");
    assert_eq!(m["wa_id"], USER);
    // What reached "Meta": Meta's message object, normalised recipient, our envelope fields.
    let sent = app.sim_sent().await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["body"]["messaging_product"], "whatsapp");
    assert_eq!(sent[0]["body"]["to"], "+16505551234");
    assert_eq!(sent[0]["body"]["template"]["name"], "hello_world");
    assert!(sent[0]["body"].get("account").is_none());
    // Status events name the message.
    let events = app.events().await;
    let read = events.iter().find(|e| e["type"] == "message.read").expect("read event");
    assert_eq!(read["payload"]["message_id"], json!(id));
}

#[tokio::test]
async fn a_text_outside_the_window_is_refused_before_queueing_and_allowed_after_a_reply() {
    let app = spawn_app().await;
    let (status, err) = app
        .post(
            "/v1/messages",
            &json!({"to": USER, "type": "text", "text": {"body": "hi"}}),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["code"], "window_closed");
    assert!(err["error"]["hint"].as_str().is_some_and(|h| h.contains("template")));
    assert!(app.sim_sent().await.is_empty(), "nothing was sent");
    let (_, list) = app.get("/v1/messages").await;
    assert!(list["data"].as_array().expect("data").is_empty(), "nothing was queued");
    let (status, c) = app.get(&format!("/v1/contacts/{USER}")).await;
    assert_eq!(status, 404, "{c}");

    app.user_sends(
        USER,
        json!({"type": "text", "text": {"body": "Where is my order?"}, "profile_name": "Sheena Nelson"}),
    )
    .await;
    let c = eventually("the reply opens the window", || async {
        let (s, c) = app.get(&format!("/v1/contacts/{USER}")).await;
        (s == 200).then_some(c)
    })
    .await;
    assert_eq!(c["window"]["open"], true);
    assert_eq!(c["name"], "Sheena Nelson");
    let (status, m) = app
        .post("/v1/messages", &json!({"to": USER, "text": {"body": "It ships today"}}))
        .await;
    assert_eq!(status, 202, "{m}");
    app.message_reaches(m["id"].as_str().expect("id"), "read").await;
    let (_, inbound) = app.get("/v1/messages?direction=inbound").await;
    assert_eq!(inbound["data"][0]["content"]["text"], "Where is my order?");
}

#[tokio::test]
async fn recipients_are_normalised_or_refused_with_the_field_and_a_hint() {
    let app = spawn_app_with(|c| c.default_country = Some("US".into())).await;
    for bad in ["hello", "+1 650", "+999 1234567", ""] {
        let (status, err) = app.post("/v1/messages", &json!({"to": bad, "type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}})).await;
        assert_eq!(status, 400, "{bad}: {err}");
        assert_eq!(err["error"]["code"], "invalid_phone_number", "{bad}");
        assert_eq!(err["error"]["details"]["field"], "to");
        assert!(err["error"]["hint"].as_str().is_some_and(|h| h.contains("+")));
    }
    for (input, want) in [
        ("(650) 555-1234", "+16505551234"),
        ("0049 151 23456789", "+4915123456789"),
        ("+1 555 078 3881", "+15550783881"),
    ] {
        let body = json!({"to": input, "type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}});
        let (status, m) = app.post("/v1/messages", &body).await;
        assert_eq!(status, 202, "{input}: {m}");
        assert_eq!(m["content"]["to"], want, "{input}");
    }
    let (status, err) = app
        .post("/v1/messages", &json!({"type": "text", "text": {"body": "x"}}))
        .await;
    assert_eq!((status, err["error"]["details"]["field"].as_str()), (400, Some("to")));
    let (status, err) = app
        .post("/v1/messages", &json!({"to": USER, "type": "fax", "fax": {}}))
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("unsupported_message_type"))
    );
    let (status, err) = app
        .post(
            "/v1/messages",
            &json!({"to": USER, "type": "template", "template": {"name": "hello_world"}}),
        )
        .await;
    assert_eq!(
        (status, err["error"]["details"]["field"].as_str()),
        (400, Some("template.language"))
    );
    let r = app
        .http
        .post(format!("{}/v1/messages", app.url))
        .bearer_auth(&app.key)
        .body("{oops")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 400);
    let err: Value = r.json().await.expect("json");
    assert_eq!(err["error"]["code"], "invalid_json");
}

#[tokio::test]
async fn metas_template_errors_come_back_with_a_hint() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"name": "order_shipped", "language": {"code": "en_US"}}),
            132001,
            "language",
        ),
        (
            json!({"name": "hello_world", "language": {"code": "pt_BR"}}),
            132001,
            "language",
        ),
        (
            json!({"name": "po_notification", "language": {"code": "es"}, "components": [{"type": "body", "parameters": [{"type": "text", "text": "Acme"}]}]}),
            132000,
            "parameters",
        ),
        (
            json!({"name": "order_shipped_image", "language": {"code": "en_US"}, "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "x"}]},
            {"type": "body", "parameters": [{"type": "text", "text": "#1"}, {"type": "text", "text": "Friday"}]}]}),
            132012,
            "format",
        ),
    ];
    for (template, code, hint_word) in cases {
        let (status, m) = app
            .post(
                "/v1/messages?wait=accepted",
                &json!({"to": USER, "type": "template", "template": template}),
            )
            .await;
        assert_eq!(status, 202, "{m}");
        assert_eq!(m["status"], "failed", "{m}");
        assert_eq!(m["error"]["code"], code, "{m}");
        assert!(
            m["error"]["hint"].as_str().is_some_and(|h| h.contains(hint_word)),
            "{m}"
        );
        assert!(m["error"]["details"].as_str().is_some(), "Meta's details are kept: {m}");
        assert_eq!(m["error"]["meta"]["code"], code);
    }
    let events = app.events().await;
    assert_eq!(events.iter().filter(|e| e["type"] == "message.failed").count(), 4);
}

#[tokio::test]
async fn templates_with_parameters_and_media_headers_are_accepted() {
    let app = spawn_app().await;
    let po = json!({"to": USER, "type": "template", "template": {"name": "po_notification", "language": {"code": "es"}, "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "Acme S.A."}, {"type": "text", "text": "PO-1042"}, {"type": "text", "text": "$1.250,00"}]}]}});
    let (_, m) = app.post("/v1/messages?wait=accepted", &po).await;
    assert_eq!(m["status"], "accepted", "{m}");
    let image = json!({"to": USER, "type": "template", "template": {"name": "order_shipped_image", "language": {"code": "en_US"}, "components": [
        {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://example.com/box.jpg"}}]},
        {"type": "body", "parameters": [{"type": "text", "text": "#1042"}, {"type": "text", "text": "Friday"}]}]}});
    let (_, m) = app.post("/v1/messages?wait=accepted", &image).await;
    assert_eq!(m["status"], "accepted", "{m}");
    app.message_reaches(m["id"].as_str().expect("id"), "read").await;
}

#[tokio::test]
async fn temporary_meta_errors_are_retried_and_the_message_is_sent_once() {
    let app = spawn_app().await;
    app.fault(json!({"code": 131000, "http_status": 500, "count": 2, "path_contains": "/messages"}))
        .await;
    let (_, m) = app.post("/v1/messages", &hello_world()).await;
    let m = app.message_reaches(m["id"].as_str().expect("id"), "read").await;
    assert!(m["wamid"].is_string());
    assert_eq!(app.sim_sent().await.len(), 1, "sent exactly once");
}

#[tokio::test]
async fn errors_meta_asks_to_retry_much_later_wait_then_send_or_fail_past_the_horizon() {
    // 131048 (spam rate limit): retried after sender.later_retry_seconds, not failed at once.
    let app = spawn_app_with(|c| c.sender.later_retry_seconds = 1).await;
    app.fault(json!({"code": 131048, "count": 1, "path_contains": "/messages"}))
        .await;
    let (_, m) = app.post("/v1/messages", &hello_world()).await;
    let id = m["id"].as_str().expect("id").to_string();
    let waiting = eventually("the first try is answered", || async {
        let (_, m) = app.get(&format!("/v1/messages/{id}")).await;
        m["error"].is_object().then_some(m)
    })
    .await;
    assert_eq!(waiting["status"], "queued", "waits, not failed: {waiting}");
    let m = app.message_reaches(&id, "read").await;
    assert!(m["wamid"].is_string());
    assert_eq!(app.sim_sent().await.len(), 1, "sent exactly once");

    // With the retry past the horizon, the message fails with Meta's reason.
    let app = spawn_app_with(|c| {
        c.sender.later_retry_seconds = 3600;
        c.sender.later_horizon_seconds = 60;
    })
    .await;
    app.fault(json!({"code": 131049, "count": 1, "path_contains": "/messages"}))
        .await;
    let (_, m) = app.post("/v1/messages", &hello_world()).await;
    let m = app.message_reaches(m["id"].as_str().expect("id"), "failed").await;
    assert_eq!(m["error"]["code"], 131049, "{m}");
    assert!(
        m["error"]["gave_up"]
            .as_str()
            .is_some_and(|g| g.contains("later_horizon_seconds")),
        "{m}"
    );
    assert!(app.sim_sent().await.is_empty());
}

#[tokio::test]
async fn a_message_that_waited_past_the_window_fails_without_calling_meta() {
    let app = spawn_app().await;
    // The user wrote 23 h 59 min 57 s ago: the window closes in 3 s.
    let written = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        - (24 * 3600 - 3);
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_ID},
        "contacts": [{"profile": {"name": "Late"}, "wa_id": USER}],
        "messages": [{"from": USER, "id": "wamid.late", "timestamp": written.to_string(), "type": "text", "text": {"body": "hello?"}}]}}]}]});
    assert_eq!(
        app.post_webhook(body.to_string().as_bytes()).await.status().as_u16(),
        200
    );
    eventually("the window is open", || async {
        let (_, c) = app.get(&format!("/v1/contacts/{USER}")).await;
        (c["window"]["open"] == true).then_some(())
    })
    .await;
    // Meta is slow and fails the first try; by the retry the window has closed.
    app.fault(json!({"code": 131000, "http_status": 500, "count": 1, "delay_ms": 3500, "path_contains": "/messages"}))
        .await;
    let (status, m) = app
        .post(
            "/v1/messages",
            &json!({"to": USER, "type": "text", "text": {"body": "too late"}}),
        )
        .await;
    assert_eq!(status, 202, "{m}");
    let m = app.message_reaches(m["id"].as_str().expect("id"), "failed").await;
    assert_eq!(m["error"]["code"], "window_closed", "{m}");
    assert!(app.sim_sent().await.is_empty(), "Meta was not called again");
}

#[tokio::test]
async fn the_notify_endpoint_answers_synchronously_in_its_own_shape() {
    let app = spawn_app_with(|c| c.default_recipient = Some("+16505551234".into())).await;
    let (status, r) = app
        .post("/v1/whatsapp/notify", &json!({"templateName": "po_notification", "languageCode": "es", "templateParameters": ["Acme", "PO-7", "$10"]}))
        .await;
    assert_eq!(status, 200, "{r}");
    assert!(r["wamid"].as_str().is_some_and(|w| w.starts_with("wamid.")));
    assert_eq!(app.sim_sent().await[0]["body"]["to"], "+16505551234");
    let (status, r) = app
        .post(
            "/v1/whatsapp/notify",
            &json!({"templateName": "nope", "languageCode": "es"}),
        )
        .await;
    assert_eq!(status, 400, "{r}");
    assert_eq!(r["error"]["code"], 132001);
    assert!(r["message"].is_string());
    let (status, r) = app.post("/v1/whatsapp/notify", &json!({"languageCode": "es"})).await;
    assert_eq!(status, 400, "{r}");
    let r = app
        .http
        .post(format!("{}/v1/whatsapp/notify", app.url))
        .json(&json!({}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 401);
    app.fault(json!({"code": 190, "http_status": 401, "count": 1})).await;
    let (status, r) = app
        .post(
            "/v1/whatsapp/notify",
            &json!({"templateName": "hello_world", "languageCode": "en_US"}),
        )
        .await;
    assert_eq!(status, 401, "{r}");
}

#[tokio::test]
async fn every_outbound_type_reaches_delivered_and_reactions_sent() {
    let app = spawn_app().await;
    app.open_window(USER).await;
    for (name, m) in app.send_examples("").await {
        let id = m["id"].as_str().expect("id").to_string();
        // Meta sends only `sent` for reactions.
        let reached: &[&str] = if name.contains("reaction") {
            &["sent"]
        } else {
            &["delivered", "read"]
        };
        let m = eventually(&format!("{name} {reached:?}"), || async {
            let (_, m) = app.get(&format!("/v1/messages/{id}")).await;
            reached.contains(&m["status"].as_str().unwrap_or_default()).then_some(m)
        })
        .await;
        assert!(m["wamid"].is_string(), "{name}");
    }
}

#[tokio::test]
async fn invalid_messages_are_refused_with_the_field_path_and_nothing_is_queued() {
    let app = spawn_app().await;
    app.open_window(USER).await;
    let body = json!({"to": USER, "type": "interactive", "interactive": {"type": "button", "body": {"text": "Pick"}, "action": {"buttons": [
        {"type": "reply", "reply": {"id": "a", "title": "A"}},
        {"type": "reply", "reply": {"id": "b", "title": "B"}},
        {"type": "reply", "reply": {"id": "c", "title": "A title that is far too long"}}]}}});
    let (status, err) = app.post("/v1/messages", &body).await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(
        err["error"]["details"]["field"],
        "interactive.action.buttons[2].reply.title"
    );
    assert_eq!(err["error"]["details"]["limit"], 20);
    assert_eq!(err["error"]["details"]["size"], 28);
    let (_, list) = app.get("/v1/messages?direction=outbound").await;
    assert!(list["data"].as_array().expect("data").is_empty());
    assert!(app.sim_sent().await.is_empty());
}

#[tokio::test]
async fn inbound_messages_can_be_marked_read_with_the_typing_indicator() {
    let app = spawn_app().await;
    app.open_window(USER).await;
    let (_, inbound) = app.get("/v1/messages?direction=inbound").await;
    let id = inbound["data"][0]["id"].as_str().expect("inbound id").to_string();
    let wamid = inbound["data"][0]["wamid"].clone();
    let (status, r) = app
        .post(&format!("/v1/messages/{id}/read"), &json!({"typing_indicator": true}))
        .await;
    assert_eq!((status, &r), (200, &json!({"success": true})));
    assert!(app.sim_sent().await.is_empty(), "mark-read is not a message");
    let sim: Value = app.get_json(&format!("{}/_sim/sent", app.sim_url)).await;
    assert_eq!(sim["reads"][0]["message_id"], wamid);
    assert_eq!(sim["reads"][0]["status"], "read");
    assert_eq!(sim["reads"][0]["typing_indicator"]["type"], "text");
    // An outbound message cannot be marked read. (Wait until it is sent, so that the fault
    // injected below is not taken by this send.)
    let (_, m) = app
        .post(
            "/v1/messages?wait=accepted",
            &json!({"to": USER, "text": {"body": "hi"}}),
        )
        .await;
    assert_eq!(m["status"], "accepted", "{m}");
    let (status, err) = app
        .post(
            &format!("/v1/messages/{}/read", m["id"].as_str().expect("id")),
            &json!({}),
        )
        .await;
    assert_eq!((status, err["error"]["code"].as_str()), (409, Some("not_inbound")));
    let (status, _) = app.post("/v1/messages/msg_nope/read", &json!({})).await;
    assert_eq!(status, 404);
    // Meta's refusal comes back mapped, with a hint.
    app.fault(json!({"code": 131009, "count": 1, "details": "Message with id wamid.x not found"}))
        .await;
    let (status, err) = app.post(&format!("/v1/messages/{id}/read"), &json!({})).await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["meta"]["code"], 131009);
    assert!(err["error"]["hint"].is_string());
}

#[tokio::test]
async fn the_simulator_refuses_bad_messages_with_metas_codes() {
    // Straight to the simulator, as a client that skips the gateway's checks would.
    let app = spawn_app().await;
    let send = |body: Value| {
        app.http
            .post(format!("{}/v23.0/{PHONE_ID}/messages", app.sim_url))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let cases = [
        (
            json!({"messaging_product": "whatsapp", "to": USER, "type": "image", "image": {}}),
            131008,
        ),
        (
            json!({"messaging_product": "whatsapp", "to": USER, "type": "interactive", "interactive": {"type": "button", "body": {"text": "x"}, "action": {"buttons": []}}}),
            100,
        ),
        (
            json!({"messaging_product": "whatsapp", "to": USER, "type": "location", "location": {"latitude": 100, "longitude": 0}}),
            100,
        ),
        (
            json!({"messaging_product": "whatsapp", "to": USER, "type": "image", "image": {"id": "not-a-media-id"}}),
            131053,
        ),
        (
            json!({"messaging_product": "whatsapp", "to": USER, "type": "hologram", "hologram": {}}),
            131051,
        ),
        (
            json!({"messaging_product": "whatsapp", "to": "12", "type": "text", "text": {"body": "x"}}),
            131009,
        ),
        (json!({"to": USER, "type": "text", "text": {"body": "x"}}), 100),
    ];
    for (body, code) in cases {
        let r = send(body.clone()).await.expect("send");
        assert_eq!(r.status().as_u16(), 400, "{body}");
        let err: Value = r.json().await.expect("json");
        assert_eq!(err["error"]["code"], code, "{body}: {err}");
        assert!(
            err["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(&format!("(#{code})"))),
            "{err}"
        );
        assert!(err["error"]["fbtrace_id"].is_string());
    }
}

/// POST /v1/messages with an `Idempotency-Key`; (status, replayed header, body).
async fn send_with_key(app: &TestApp, key: &str, body: &str) -> (u16, bool, Value) {
    let r = app
        .http
        .post(format!("{}/v1/messages", app.url))
        .bearer_auth(&app.key)
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(body.to_string())
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    let replayed = r.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    (status, replayed, r.json().await.expect("json"))
}

#[tokio::test]
async fn an_idempotency_key_sends_once_and_refuses_another_body() {
    let app = spawn_app().await;
    app.open_window(USER).await;
    let body = format!(r#"{{"to": "{USER}", "type": "text", "text": {{"body": "ship order 1042"}}}}"#);
    let (status, replayed, first) = send_with_key(&app, "order-1042-shipped", &body).await;
    assert_eq!((status, replayed), (202, false), "{first}");
    // The same request again, with its keys in another order: the same message, nothing queued.
    let reordered = format!(r#"{{"text": {{"body": "ship order 1042"}}, "type": "text", "to": "{USER}"}}"#);
    let (status, replayed, again) = send_with_key(&app, "order-1042-shipped", &reordered).await;
    assert_eq!((status, replayed), (202, true), "{again}");
    assert_eq!(again["id"], first["id"]);
    // Another request under the same key: refused, naming the first message; nothing queued.
    let other = format!(r#"{{"to": "{USER}", "type": "text", "text": {{"body": "cancel order 1042"}}}}"#);
    let (status, _, err) = send_with_key(&app, "order-1042-shipped", &other).await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["code"], "idempotency_conflict");
    assert_eq!(err["error"]["details"]["message_id"], first["id"]);
    // Many at once with one key: one message.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (http, url, key, body) = (app.http.clone(), app.url.clone(), app.key.clone(), body.clone());
            tokio::spawn(async move {
                let r = http
                    .post(format!("{url}/v1/messages"))
                    .bearer_auth(key)
                    .header("content-type", "application/json")
                    .header("idempotency-key", "burst-7")
                    .body(body)
                    .send()
                    .await
                    .expect("send");
                let status = r.status().as_u16();
                let replayed = r.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
                (status, replayed, r.json::<Value>().await.expect("json"))
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("task"));
    }
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(s, _, v)| {
            assert_eq!(*s, 202, "{v}");
            v["id"].as_str().expect("id").to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    assert_eq!(answers.iter().filter(|(_, replayed, _)| !replayed).count(), 1);
    // Meta got each message once.
    app.message_reaches(first["id"].as_str().expect("id"), "read").await;
    app.message_reaches(ids.iter().next().expect("id"), "read").await;
    let sent = app.sim_sent().await;
    let with = |text: &str| sent.iter().filter(|s| s["body"]["text"]["body"] == text).count();
    assert_eq!(with("ship order 1042"), 2, "one for each key");
    assert_eq!(with("cancel order 1042"), 0);
    // A key that is not one is refused before anything is stored.
    let long = "k".repeat(256);
    for bad in [long.as_str(), "two words"] {
        let (status, _, err) = send_with_key(&app, bad, &body).await;
        assert_eq!(status, 400, "{err}");
        assert_eq!(err["error"]["details"]["field"], "Idempotency-Key");
    }
}

#[tokio::test]
async fn a_scheduled_message_waits_can_be_cancelled_and_a_failed_one_retried() {
    let app = spawn_app().await;
    app.open_window(USER).await;
    // Scheduled an hour ahead: it waits, and can be cancelled.
    let in_an_hour = wagate_core::time::rfc3339_ms(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64
            + 3_600_000,
    );
    let (status, later) = app
        .post(
            "/v1/messages",
            &json!({"to": USER, "type": "text", "text": {"body": "later"}, "send_at": in_an_hour}),
        )
        .await;
    assert_eq!(status, 202, "{later}");
    let id = later["id"].as_str().expect("id").to_string();
    let (status, cancelled) = app.delete(&format!("/v1/messages/{id}")).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    let event = eventually("the message.cancelled event", || async {
        app.events()
            .await
            .into_iter()
            .find(|e| e["type"] == "message.cancelled")
    })
    .await;
    assert_eq!(event["payload"]["message_id"], id.as_str(), "{event}");
    // A time in the past means now; one sent cannot be cancelled any more.
    let (_, now) = app
        .post(
            "/v1/messages",
            &json!({"to": USER, "type": "text", "text": {"body": "now"}, "send_at": 1}),
        )
        .await;
    let now_id = now["id"].as_str().expect("id").to_string();
    app.message_reaches(&now_id, "read").await;
    let (status, err) = app.delete(&format!("/v1/messages/{now_id}")).await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["code"], "not_cancellable", "{err}");
    // Bad times are refused before anything is queued.
    for bad in [json!("next tuesday"), json!("2999-01-01T00:00:00Z")] {
        let (status, err) = app
            .post(
                "/v1/messages",
                &json!({"to": USER, "type": "text", "text": {"body": "x"}, "send_at": bad}),
            )
            .await;
        assert_eq!(status, 400, "{err}");
        assert_eq!(err["error"]["details"]["field"], "send_at");
    }
    // Meta refuses a send; after the cause is fixed, retry queues it again and it goes out.
    app.fault(json!({"code": 131026, "count": 1, "path_contains": "/messages"}))
        .await;
    let (_, m) = app
        .post(
            "/v1/messages",
            &json!({"to": USER, "type": "text", "text": {"body": "again"}}),
        )
        .await;
    let id = m["id"].as_str().expect("id").to_string();
    app.message_reaches(&id, "failed").await;
    let (status, r) = app.post(&format!("/v1/messages/{id}/retry"), &json!({})).await;
    assert_eq!(status, 202, "{r}");
    assert_eq!(r["status"], "queued");
    app.message_reaches(&id, "read").await;
    let (status, r) = app.post(&format!("/v1/messages/{id}/retry"), &json!({})).await;
    assert_eq!(status, 409, "{r}");
    assert_eq!(r["error"]["code"], "not_retryable");
    let sent = app.sim_sent().await;
    assert_eq!(sent.iter().filter(|s| s["body"]["text"]["body"] == "later").count(), 0);
    assert_eq!(sent.iter().filter(|s| s["body"]["text"]["body"] == "again").count(), 1);
}

#[tokio::test]
async fn an_expired_token_pauses_the_account_and_a_new_token_resumes_it_losing_nothing() {
    let app = spawn_app().await;
    app.open_window(USER).await;
    // The token expires at Meta: the next send gets 190.
    app.sim_settings(json!({"access_token": "rotated-token-2"})).await;
    let (status, first) = app
        .post(
            "/v1/messages",
            &json!({"to": USER, "type": "text", "text": {"body": "one"}}),
        )
        .await;
    assert_eq!(status, 202, "{first}");
    let paused = eventually("the account pauses", || async {
        let (_, list) = app.get("/v1/accounts").await;
        list["data"][0]["paused"]
            .is_object()
            .then(|| list["data"][0]["paused"].clone())
    })
    .await;
    assert_eq!(paused["code"], 190, "{paused}");
    assert!(paused["hint"].as_str().unwrap_or("").contains("/token"), "{paused}");
    // New sends are refused with the reason and the fix; the queued one waits.
    let (status, refused) = app
        .post(
            "/v1/messages",
            &json!({"to": USER, "type": "text", "text": {"body": "two"}}),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "account_paused");
    assert!(
        refused["error"]["hint"].as_str().unwrap_or("").contains("token"),
        "{refused}"
    );
    let (_, m) = app
        .get(&format!("/v1/messages/{}", first["id"].as_str().expect("id")))
        .await;
    assert_eq!(m["status"], "queued", "{m}");
    // The alert is an event.
    let events = app.events().await;
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "account.alert" && e["payload"]["alert"] == "sending_paused"),
        "{events:?}"
    );
    // A token Meta refuses changes nothing.
    let (status, bad) = app
        .put("/v1/accounts/acme/token", &json!({"access_token": "still-wrong"}))
        .await;
    assert_eq!(status, 422, "{bad}");
    assert_eq!(bad["error"]["code"], "token_rejected");
    let (status, bad) = app.put("/v1/accounts/acme/token", &json!({"token": "x"})).await;
    assert_eq!(status, 400, "{bad}");
    let (status, bad) = app.put("/v1/accounts/acme/token", &json!({})).await;
    assert_eq!(
        (status, &bad["error"]["details"]["field"]),
        (400, &json!("access_token")),
        "a missing token is named: {bad}"
    );
    // The right one resumes sending, and the queued message goes, once.
    let (status, account) = app
        .put("/v1/accounts/acme/token", &json!({"access_token": "rotated-token-2"}))
        .await;
    assert_eq!(status, 200, "{account}");
    assert!(account["paused"].is_null(), "{account}");
    eventually("the queued message goes", || async {
        let (_, m) = app.get(&format!("/v1/messages/{}", first["id"].as_str()?)).await;
        m["wamid"].is_string().then_some(())
    })
    .await;
    let sent = app.sim_sent().await;
    assert_eq!(
        sent.iter().filter(|s| s["body"]["text"]["body"] == "one").count(),
        1,
        "sent exactly once"
    );
    // Paused by hand: sends are refused until resume.
    let (status, account) = app
        .post("/v1/accounts/acme/pause", &json!({"reason": "migrating numbers"}))
        .await;
    assert_eq!(status, 200, "{account}");
    assert_eq!(account["paused"]["reason"], "migrating numbers");
    let (status, refused) = app
        .post(
            "/v1/messages",
            &json!({"to": USER, "type": "text", "text": {"body": "three"}}),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("account_paused"))
    );
    // The same, from the command line: a token from standard input resumes nothing paused by
    // hand; `resume` does.
    let (ok, out) = app.accounts_cli(&["set-token", "acme"], "rotated-token-2\n").await;
    assert!(ok, "{out}");
    assert!(out.contains("paused: migrating numbers"), "{out}");
    let (ok, out) = app.accounts_cli(&["set-token", "acme"], "wrong-again\n").await;
    assert!(!ok && out.contains("token_rejected"), "{out}");
    let (ok, out) = app.accounts_cli(&["resume", "acme"], "").await;
    assert!(ok && out.contains("acme") && out.contains("sending"), "{out}");
    let (_, account) = app.get("/v1/accounts").await;
    assert!(account["data"][0]["paused"].is_null(), "{account}");
    let (status, _) = app
        .post(
            "/v1/messages",
            &json!({"to": USER, "type": "text", "text": {"body": "three"}}),
        )
        .await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn a_batch_answers_each_message_on_its_own_and_waits_behind_interactive_sends() {
    // One send at a time, so that the order Meta sees is the queue's order.
    let app = spawn_app_with(|c| c.sender.concurrency = 1).await;
    app.open_window(USER).await;
    let due = wagate_store::testing::now_ms() / 1000 + 2;
    let mut messages: Vec<Value> = (0..5)
        .map(|i| {
            json!({"to": USER, "type": "text", "text": {"body": format!("bulk-{i}")}, "send_at": due,
            "idempotency_key": format!("bulk-key-{i}")})
        })
        .collect();
    messages.insert(
        2,
        json!({"to": "not a number", "type": "text", "text": {"body": "bad"}}),
    );
    let (status, answer) = app.post("/v1/messages/batch", &json!({"messages": messages})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["queued"].as_u64(), answer["refused"].as_u64()),
        (Some(5), Some(1)),
        "{answer}"
    );
    let bad = &answer["data"][2];
    assert_eq!(
        (bad["index"].as_u64(), bad["status"].as_u64()),
        (Some(2), Some(400)),
        "{bad}"
    );
    assert_eq!(bad["error"]["details"]["field"], "to", "{bad}");
    assert!(bad["error"]["hint"].is_string(), "{bad}");
    // An interactive send due at the same moment, queued after the batch, goes first.
    let (status, _) = app
        .post(
            "/v1/messages",
            &json!({"to": USER, "type": "text", "text": {"body": "interactive"}, "send_at": due}),
        )
        .await;
    assert_eq!(status, 202);
    let sent = eventually("all six are sent", || async {
        let sent = app.sim_sent().await;
        (sent.len() == 6).then_some(sent)
    })
    .await;
    assert_eq!(sent[0]["body"]["text"]["body"], "interactive", "{sent:?}");
    // The same batch again: each item's key gives back its message; nothing is sent twice.
    let (_, again) = app.post("/v1/messages/batch", &json!({"messages": messages})).await;
    assert_eq!(again["data"][0]["replayed"], true, "{again}");
    assert_eq!(again["data"][0]["message"]["id"], answer["data"][0]["message"]["id"]);
    // Batches are bounded.
    let too_many: Vec<Value> = (0..1001).map(|_| text("x")).collect();
    let (status, refused) = app.post("/v1/messages/batch", &json!({"messages": too_many})).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["details"]["field"], "messages");
    let (status, _) = app.post("/v1/messages/batch", &json!({"messages": "x"})).await;
    assert_eq!(status, 400);
    assert_eq!(app.sim_sent().await.len(), 6, "replays send nothing");
}

#[tokio::test]
async fn a_user_known_only_by_business_scoped_id_is_sent_to_with_recipient() {
    let app = spawn_app().await;
    let user: Value = app
        .http
        .post(format!("{}/_sim/users", app.sim_url))
        .json(&json!({"username": "zoe", "name": "Zoë"}))
        .send()
        .await
        .expect("create user")
        .json()
        .await
        .expect("json");
    let user_id = user["user_id"].as_str().expect("user id").to_string();
    app.user_sends("@zoe", text("hello without a number")).await;
    eventually("the window opens under the user id", || async {
        let (_, c) = app.get(&format!("/v1/contacts/{user_id}")).await;
        (c["window"]["open"] == true).then_some(())
    })
    .await;
    let (status, m) = app
        .post(
            "/v1/messages",
            &json!({"recipient": user_id, "type": "text", "text": {"body": "hi Zoë"}}),
        )
        .await;
    assert_eq!(status, 202, "{m}");
    app.message_reaches(m["id"].as_str().expect("id"), "read").await;
    let sent = app.sim_sent().await;
    assert_eq!(sent[0]["body"]["recipient"], user_id.as_str(), "{:?}", sent[0]);
    assert!(sent[0]["body"].get("to").is_none(), "{:?}", sent[0]);
    // Through the front door, Meta's answer names the user id.
    let r = app
        .http
        .post(format!("{}/v23.0/{PHONE_ID}/messages", app.url))
        .bearer_auth(&app.key)
        .json(
            &json!({"messaging_product": "whatsapp", "recipient": user_id, "type": "text", "text": {"body": "again"}}),
        )
        .send()
        .await
        .expect("front door");
    let ok: Value = r.json().await.expect("json");
    assert_eq!(ok["contacts"][0], json!({"input": user_id, "user_id": user_id}), "{ok}");
    // Not a user id: refused with the field and what one looks like.
    let (status, bad) = app
        .post(
            "/v1/messages",
            &json!({"recipient": "zoe", "type": "text", "text": {"body": "x"}}),
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    assert_eq!(bad["error"]["details"]["field"], "recipient");
    assert!(bad["error"]["hint"].as_str().unwrap_or("").contains("US."), "{bad}");
}

#[tokio::test]
async fn wagate_send_sends_a_csv_once_reports_bad_rows_by_line_and_resumes() {
    let app = spawn_app().await;
    let dir = wagate_store::testing::TestDir::new("csv");
    let file = dir.join("orders.csv");
    std::fs::write(
        &file,
        "to,company,po,total\n+16505551234,Acme,PO-1,$10\n+16505551235,Beta,PO-2,$20\nnot-a-number,Gamma,PO-3,$30\n\
         +16505551236,,PO-4,$40\n+16505551237,Delta,PO-5,$50\n",
    )
    .expect("csv");
    let run = |args: Vec<String>| {
        let (url, key) = (app.url.clone(), app.key.clone());
        async move {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wagate"))
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("WAGATE_URL", url)
                .env("WAGATE_API_KEY", key)
                .arg("send")
                .args(&args)
                .output()
                .await
                .expect("run wagate send");
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
            )
        }
    };
    let csv_args: Vec<String> = [
        "--csv",
        file.to_str().expect("path"),
        "--template",
        "po_notification",
        "--lang",
        "es",
        "--wait",
        "20",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (code, out) = run(csv_args.clone()).await;
    assert_eq!(code, Some(1), "bad rows make the exit status 1: {out}");
    assert!(
        out.contains("line 4:") && out.contains("to:"),
        "the bad number, by line: {out}"
    );
    assert!(
        out.contains("line 5:") && out.contains("`company`"),
        "the empty parameter, by line: {out}"
    );
    assert!(out.contains("queued                          3"), "{out}");
    let sent = app.sim_sent().await;
    assert_eq!(sent.len(), 3, "the good rows went");
    assert_eq!(
        sent.iter()
            .find(|s| s["to"] == "+16505551237")
            .map(|s| s["body"]["template"]["components"][0]["parameters"][0]["text"].clone()),
        Some(json!("Delta")),
        "{sent:?}"
    );
    // Again, as after an interruption: every row is found, nothing is sent twice.
    let (_, out) = run(csv_args).await;
    assert!(out.contains("of which from a run before        3"), "{out}");
    assert_eq!(app.sim_sent().await.len(), 3, "resumed, not resent");
    // One message.
    let one: Vec<String> = ["--to", "+16505551234", "--template", "hello_world", "--wait", "20"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (code, out) = run(one).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("queued to +16505551234"), "{out}");
    assert!(out.contains(" delivered") || out.contains(" read"), "{out}");
}

#[tokio::test]
async fn one_numbers_backlog_does_not_hold_up_another_numbers_message() {
    const OTHER_PHONE: &str = "106540352249999";
    let app = spawn_app_with(|c| {
        c.accounts[0].messages_per_second = Some(10);
        let mut other = c.accounts[0].clone();
        other.name = "beta".into();
        other.waba_id = "102290129349999".into();
        other.phone_number_ids = vec![OTHER_PHONE.into()];
        other.messages_per_second = None;
        c.accounts.push(other);
    })
    .await;
    // 200 messages from acme's number, which sends 10 per second: 20 s of work.
    let batch: Vec<Value> = (0..200)
        .map(|i| {
            json!({"account": "acme", "to": format!("+1650555{:04}", i), "type": "template",
            "template": {"name": "hello_world", "language": {"code": "en_US"}}})
        })
        .collect();
    let (status, answer) = app.post("/v1/messages/batch", &json!({"messages": batch})).await;
    assert_eq!((status, answer["queued"].as_u64()), (200, Some(200)), "{answer}");
    // One bulk message from beta's number, queued after them, goes at once, not after acme's
    // backlog.
    let started = std::time::Instant::now();
    let (status, answer) = app
        .post(
            "/v1/messages/batch",
            &json!({"messages": [{"account": "beta", "to": USER, "type": "template",
                "template": {"name": "hello_world", "language": {"code": "en_US"}}}]}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["data"][0]["message"]["id"].as_str().expect("id").to_string();
    eventually("beta's message leaves the queue", || async {
        let (_, m) = app.get(&format!("/v1/messages/{id}")).await;
        (m["status"] != "queued").then_some(())
    })
    .await;
    let sent_from_acme = app
        .sim_sent()
        .await
        .iter()
        .filter(|s| s["phone_number_id"] == PHONE_ID)
        .count();
    assert!(
        sent_from_acme < 100,
        "beta's message waited {:?}, until {sent_from_acme} of acme's had gone",
        started.elapsed()
    );
}
