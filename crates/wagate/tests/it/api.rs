//! API keys, error shapes, pagination, health, metrics and the OpenAPI document.

use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn requests_without_a_valid_key_get_401_in_the_error_shape() {
    let app = spawn_app().await;
    for auth in [None, Some("Bearer wg_wrong"), Some("Basic abc")] {
        let mut r = app.http.get(format!("{}/v1/events", app.url));
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        let r = r.send().await.expect("get");
        assert_eq!(r.status().as_u16(), 401, "{auth:?}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"]["code"], "unauthorized");
        assert!(body["error"]["message"].is_string() && body["error"]["hint"].is_string());
    }
}

#[tokio::test]
async fn keys_are_scoped_to_permissions_and_accounts() {
    let app = spawn_app().await;
    let store = app.gateway.state.store.clone();
    let account = app.gateway.state.accounts.all()[0].id.clone();
    let (read_key, k) = wagate_engine::auth::new_key("reader", Some(account.clone().into()), vec!["read".into()]);
    store.create_api_key(&k).await.expect("key");
    let (other_key, k) = wagate_engine::auth::new_key(
        "other",
        Some("acc_someone_else".into()),
        vec!["read".into(), "send".into()],
    );
    assert!(
        store.create_api_key(&k).await.is_err(),
        "a key for an unknown account is refused by the database"
    );
    let (_, m) = app.post("/v1/messages", &json!({"to": USER, "type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}})).await;
    let r = app
        .http
        .post(format!("{}/v1/messages", app.url))
        .bearer_auth(&read_key)
        .json(&json!({"to": USER}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 403);
    let r = app
        .http
        .get(format!("{}/v1/messages/{}", app.url, m["id"].as_str().expect("id")))
        .bearer_auth(&read_key)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        app.http
            .get(format!("{}/v1/events", app.url))
            .bearer_auth(&other_key)
            .send()
            .await
            .expect("get")
            .status()
            .as_u16(),
        401
    );
}

#[tokio::test]
async fn events_filter_by_type_and_page_with_a_cursor() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.user_sends(USER, text(&format!("message {i}"))).await;
    }
    let all = eventually("five events", || async {
        let e = app.events().await;
        (e.len() == 5).then_some(e)
    })
    .await;
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (_, page) = app
            .get(&format!("/v1/events?type=message.received&limit=2{cursor}"))
            .await;
        let data = page["data"].as_array().expect("data").clone();
        if data.is_empty() {
            break;
        }
        seen.extend(data.iter().map(|e| e["payload"]["text"].clone()));
        cursor = format!("&cursor={}", page["next_cursor"]);
    }
    let texts: Vec<Value> = (0..5).map(|i| json!(format!("message {i}"))).collect();
    assert_eq!(seen, texts);
    assert_eq!(all[0]["payload"]["contact"]["wa_id"], USER);
    let (_, none) = app.get("/v1/events?type=message.read").await;
    assert!(none["data"].as_array().expect("data").is_empty());
    let (status, err) = app.get("/v1/events?type=message.nope").await;
    assert_eq!(status, 400);
    assert!(err["error"]["details"]["allowed"]
        .as_array()
        .is_some_and(|a| a.contains(&json!("message.received"))));
    let (status, _) = app.get("/v1/events?since=yesterday").await;
    assert_eq!(status, 400);
    let (_, future) = app.get("/v1/events?since=2100-01-01T00:00:00Z").await;
    assert!(future["data"].as_array().expect("data").is_empty());
    let (status, _) = app.get("/v1/events?limit=0").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn messages_list_pages_newest_first() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (_, m) = app.post("/v1/messages", &json!({"to": USER, "type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}})).await;
        ids.push(m["id"].as_str().expect("id").to_string());
    }
    let (_, p1) = app.get("/v1/messages?limit=2").await;
    let (_, p2) = app
        .get(&format!(
            "/v1/messages?limit=2&cursor={}",
            p1["next_cursor"].as_str().expect("cursor")
        ))
        .await;
    let got: Vec<&str> = p1["data"]
        .as_array()
        .expect("data")
        .iter()
        .chain(p2["data"].as_array().expect("data"))
        .filter_map(|m| m["id"].as_str())
        .collect();
    ids.reverse();
    assert_eq!(got, ids);
    assert!(p2["next_cursor"].is_null());
    let (status, _) = app.get("/v1/messages/msg_nope").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn health_ready_and_metrics() {
    let app = spawn_app().await;
    let get = |p: &str| app.http.get(format!("{}{p}", app.url)).send();
    assert_eq!(get("/health").await.expect("health").status().as_u16(), 200);
    let ready: Value = get("/ready").await.expect("ready").json().await.expect("json");
    assert_eq!(ready["status"], "ready");
    app.open_window(USER).await;
    let (_, m) = app
        .post(
            "/v1/messages?wait=accepted",
            &json!({"to": USER, "text": {"body": "hello"}}),
        )
        .await;
    assert_eq!(m["status"], "accepted");
    app.settled_events().await;
    let metrics = get("/metrics").await.expect("metrics").text().await.expect("text");
    for name in [
        "wagate_webhooks_received_total",
        "wagate_events_total{type=\"message.received\"}",
        "wagate_messages_sent_total{status=\"accepted\"}",
        "wagate_graph_request_duration_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics:\n{metrics}");
    }
    let r = get("/nowhere").await.expect("404");
    assert_eq!(r.status().as_u16(), 404);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn the_openapi_document_is_generated_and_snapshotted() {
    let app = spawn_app().await;
    let doc: Value = app.get_json(&format!("{}/openapi.json", app.url)).await;
    for path in [
        "/v1/messages",
        "/v1/messages/{id}",
        "/v1/events",
        "/v1/contacts/{wa_id}",
        "/v1/whatsapp/notify",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    insta::assert_json_snapshot!("openapi", doc);
}

#[tokio::test]
async fn keys_are_created_listed_rotated_and_revoked_through_the_api() {
    let app = spawn_app().await;
    let as_key = |key: &str, method: reqwest::Method, path: &str| {
        app.http.request(method, format!("{}{path}", app.url)).bearer_auth(key)
    };
    let status_with = |key: String, path: &'static str| {
        let r = as_key(&key, reqwest::Method::GET, path);
        async move { r.send().await.expect("request").status().as_u16() }
    };
    // Bad requests name the field and create nothing.
    let (_, before) = app.get("/v1/keys").await;
    let n_before = before["data"].as_array().map(Vec::len);
    for (body, field) in [
        (json!({}), "name"),
        (json!({"name": "x", "scopes": ["fly"]}), "scopes"),
        (json!({"name": "x", "scopes": []}), "scopes"),
        (json!({"name": "x", "expires_in_seconds": -5}), "expires_in_seconds"),
        (json!({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}), "expires_at"),
        (
            json!({"name": "x", "expires_at": "2099-01-01T00:00:00Z", "expires_in_seconds": 5}),
            "expires_at",
        ),
        (json!({"name": "x", "colour": "red"}), "body"),
    ] {
        let (status, e) = app.post("/v1/keys", &body).await;
        assert_eq!(status, 400, "{body}: {e}");
        let named = e["error"]["details"]["field"].as_str().unwrap_or_default();
        assert!(named == field || (field == "body" && named == "colour"), "{body}: {e}");
        assert!(e["error"]["hint"].is_string(), "{e}");
    }
    // An account the key cannot name answers as one that does not exist.
    let (status, e) = app.post("/v1/keys", &json!({"name": "x", "account": "nosuch"})).await;
    assert_eq!((status, &e["error"]["code"]), (404, &json!("not_found")), "{e}");
    assert_eq!(e["error"]["details"]["field"], "account", "{e}");
    let (_, after) = app.get("/v1/keys").await;
    assert_eq!(after["data"].as_array().map(Vec::len), n_before, "nothing was created");

    // Created: the key is in this answer only.
    let (status, created) = app
        .post(
            "/v1/keys",
            &json!({"name": "billing", "scopes": ["read"], "account": "acme", "expires_in_seconds": 3600}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().expect("the key").to_string();
    assert!(key.starts_with(created["prefix"].as_str().expect("prefix")));
    assert_eq!(
        (&created["scopes"], &created["account"], &created["state"]),
        (&json!(["read"]), &json!("acme"), &json!("active"))
    );
    assert!(
        created["expires_at"].is_string() && created["last_used_at"].is_null(),
        "{created}"
    );
    assert_eq!(status_with(key.clone(), "/v1/messages").await, 200);
    assert_eq!(
        status_with(key.clone(), "/v1/keys").await,
        403,
        "a read key manages no keys"
    );
    let id = created["id"].as_str().expect("id").to_string();
    let listed = eventually("the key's last use is recorded", || async {
        let (_, list) = app.get("/v1/keys").await;
        let k = list["data"]
            .as_array()?
            .iter()
            .find(|k| k["id"] == id.as_str())?
            .clone();
        k["last_used_at"].is_string().then_some(k)
    })
    .await;
    assert!(listed.get("key").is_none(), "never shown again: {listed}");

    // Rotated with a grace period: both work; rotated again without one: the old stops at once.
    let (status, rotated) = app
        .post(&format!("/v1/keys/{id}/rotate"), &json!({"grace_seconds": 600}))
        .await;
    assert_eq!(status, 201, "{rotated}");
    let key2 = rotated["key"].as_str().expect("new key").to_string();
    assert_eq!(
        (&rotated["name"], &rotated["scopes"]),
        (&json!("billing"), &json!(["read"]))
    );
    assert_eq!(rotated["expires_at"], created["expires_at"], "the end carries over");
    assert_eq!(status_with(key.clone(), "/v1/messages").await, 200, "grace period");
    assert_eq!(status_with(key2.clone(), "/v1/messages").await, 200);
    let id2 = rotated["id"].as_str().expect("id").to_string();
    let (status, rotated) = app.post(&format!("/v1/keys/{id2}/rotate"), &json!({})).await;
    assert_eq!(status, 201, "{rotated}");
    let key3 = rotated["key"].as_str().expect("new key").to_string();
    assert_eq!(status_with(key2.clone(), "/v1/messages").await, 401);
    assert_eq!(status_with(key3.clone(), "/v1/messages").await, 200);
    let (status, e) = app.post(&format!("/v1/keys/{id2}/rotate"), &json!({})).await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("key_inactive")));
    let (status, e) = app
        .post(&format!("/v1/keys/{id}/rotate"), &json!({"grace_seconds": -1}))
        .await;
    assert_eq!(
        (status, e["error"]["details"]["field"].as_str()),
        (400, Some("grace_seconds"))
    );

    // Revoked: it stops working on the next request.
    let id3 = rotated["id"].as_str().expect("id").to_string();
    let (status, revoked) = app.delete(&format!("/v1/keys/{id3}")).await;
    assert_eq!((status, revoked["state"].as_str()), (200, Some("revoked")), "{revoked}");
    let r = as_key(&key3, reqwest::Method::GET, "/v1/messages")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 401);
    let (status, _) = app.delete("/v1/keys/key_nosuch").await;
    assert_eq!(status, 404);

    // An expired key is refused with when it expired and what to do.
    let (expired, mut k) = wagate_engine::auth::new_key("old", None, vec!["read".into()]);
    k.expires_at = Some(wagate_engine::now_ms() - 1_000);
    app.gateway.state.store.create_api_key(&k).await.expect("key");
    let r = as_key(&expired, reqwest::Method::GET, "/v1/messages")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 401);
    let e: Value = r.json().await.expect("json");
    assert!(
        e["error"]["message"].as_str().is_some_and(|m| m.contains("expired")),
        "{e}"
    );
    let (_, list) = app.get("/v1/keys").await;
    let states: Vec<&str> = list["data"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["state"].as_str())
        .collect();
    assert!(states.contains(&"expired") && states.contains(&"revoked") && states.contains(&"active"));

    // An admin key of one account sees and makes only that account's keys; another's key is
    // not found rather than forbidden.
    let account = app.gateway.state.accounts.all()[0].id.clone();
    let (scoped, k) = wagate_engine::auth::new_key("acme-admin", Some(account.into()), vec!["admin".into()]);
    app.gateway.state.store.create_api_key(&k).await.expect("key");
    let global = list["data"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["account"].is_null())
        .and_then(|k| k["id"].as_str())
        .expect("a global key")
        .to_string();
    let (_, r) = app.get_as(&scoped, "/v1/keys").await;
    assert!(
        r["data"]
            .as_array()
            .expect("keys")
            .iter()
            .all(|k| k["account"] == "acme"),
        "{r}"
    );
    let r = as_key(&scoped, reqwest::Method::DELETE, &format!("/v1/keys/{global}"))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status().as_u16(), 404);
    let r: Value = as_key(&scoped, reqwest::Method::POST, "/v1/keys")
        .json(&json!({"name": "made-by-acme"}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    assert_eq!(r["account"], "acme", "{r}");
}

#[tokio::test]
async fn administrative_actions_are_in_the_audit_log_with_who_and_from_where() {
    let app = spawn_app_with(|c| c.hooks.allow_private_networks = true).await;
    let (status, key) = app.post("/v1/keys", &json!({"name": "ops", "scopes": ["admin"]})).await;
    assert_eq!(status, 201, "{key}");
    let r = app
        .http
        .post(format!("{}/v1/hooks", app.url))
        .bearer_auth(&app.key)
        .header("x-forwarded-for", "203.0.113.7")
        .json(&json!({"url": "http://127.0.0.1:9/hook"}))
        .send()
        .await
        .expect("create hook");
    let hook: Value = r.json().await.expect("json");
    let hook_id = hook["id"].as_str().expect("id").to_string();
    let (_, rotated) = app
        .post(&format!("/v1/hooks/{hook_id}/secret/rotate"), &json!({}))
        .await;
    app.delete(&format!("/v1/hooks/{hook_id}")).await;
    app.post("/v1/accounts/acme/pause", &json!({"reason": "audit test"}))
        .await;
    app.post("/v1/accounts/acme/resume", &json!({})).await;
    // Reading changes nothing in the log.
    app.get("/v1/hooks").await;

    let (status, log) = app.get("/v1/audit").await;
    assert_eq!(status, 200, "{log}");
    let actions: Vec<&str> = log["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "account.resumed",
            "account.paused",
            "hook.deleted",
            "hook.secret_rotated",
            "hook.created",
            "key.created"
        ],
        "{log}"
    );
    let entries = log["data"].as_array().expect("data");
    let bootstrap = &entries[5]["actor"];
    for e in entries {
        assert_eq!(&e["actor"], bootstrap, "{e}");
        assert_eq!(e["actor_name"], "bootstrap", "{e}");
        assert!(e["remote"].as_str().is_some_and(|r| r.starts_with("127.0.0.1")), "{e}");
        assert!(e["at"].is_string(), "{e}");
    }
    assert_eq!(entries[4]["remote"], "127.0.0.1 (forwarded for 203.0.113.7)");
    assert_eq!(
        (&entries[4]["target"], &entries[4]["details"]["url"]),
        (&json!(hook_id), &json!("http://127.0.0.1:9/hook"))
    );
    assert_eq!(
        (&entries[1]["account"], &entries[1]["details"]["reason"]),
        (&json!("acme"), &json!("audit test"))
    );
    assert_eq!(entries[5]["target"], key["id"]);
    // Never a secret.
    let text = log.to_string();
    for secret in [&key["key"], &hook["secret"], &rotated["secret"]] {
        let secret = secret.as_str().expect("secret").trim_start_matches("whsec_");
        assert!(!text.contains(secret), "a secret in the audit log: {text}");
    }
    // Filtered by action prefix, and paged.
    let (_, hooks) = app.get("/v1/audit?action=hook.").await;
    assert_eq!(hooks["data"].as_array().map(Vec::len), Some(3), "{hooks}");
    let (_, page) = app.get("/v1/audit?limit=4").await;
    assert_eq!(page["data"].as_array().map(Vec::len), Some(4));
    let (_, rest) = app
        .get(&format!("/v1/audit?limit=4&before={}", page["next_before"]))
        .await;
    let rest: Vec<&str> = rest["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(rest, ["hook.created", "key.created"]);
    let (status, e) = app.get("/v1/audit?action=").await;
    assert_eq!((status, e["error"]["details"]["field"].as_str()), (400, Some("action")));
    // Who may read it: admins; a key of one account sees that account's actions only.
    let account = app.gateway.state.accounts.all()[0].id.clone();
    let (reader, k) = wagate_engine::auth::new_key("reader", None, vec!["read".into()]);
    app.gateway.state.store.create_api_key(&k).await.expect("key");
    assert_eq!(app.get_as(&reader, "/v1/audit").await.0, 403);
    let (scoped, k) = wagate_engine::auth::new_key("acme-admin", Some(account.into()), vec!["admin".into()]);
    app.gateway.state.store.create_api_key(&k).await.expect("key");
    let (_, mine) = app.get_as(&scoped, "/v1/audit").await;
    let mine: Vec<&str> = mine["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(mine, ["account.resumed", "account.paused"]);
}

#[tokio::test]
async fn a_read_can_wait_for_what_was_just_written() {
    let app = spawn_app_with(|c| c.hooks.allow_private_networks = true).await;
    // The simulator answers once the gateway processed the webhook: the event is there at once.
    let r = app
        .http
        .post(format!("{}/_sim/users/{USER}/messages?wait=processed", app.sim_url))
        .json(&json!({"type": "text", "text": {"body": "processed before the answer"}}))
        .send()
        .await
        .expect("sim");
    assert_eq!(r.status().as_u16(), 200);
    let (_, events) = app.get("/v1/events?type=message.received").await;
    assert_eq!(
        events["data"][0]["payload"]["text"], "processed before the answer",
        "{events}"
    );
    let r = app
        .http
        .post(format!("{}/_sim/users/{USER}/messages?wait=soon", app.sim_url))
        .json(&json!({"type": "text", "text": {"body": "x"}}))
        .send()
        .await
        .expect("sim");
    assert_eq!(r.status().as_u16(), 400);

    // An events read that waits for a type answers when one arrives, with `Wagate-Wait: met`.
    let cursor = events["next_cursor"].as_i64().expect("cursor");
    let waiting = {
        let (http, url, key) = (app.http.clone(), app.url.clone(), app.key.clone());
        tokio::spawn(async move {
            let r = http
                .get(format!(
                    "{url}/v1/events?cursor={cursor}&wait_for=message.*&timeout=10s"
                ))
                .bearer_auth(key)
                .send()
                .await
                .expect("events");
            let met = r
                .headers()
                .get("wagate-wait")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            (met, r.json::<Value>().await.expect("json"))
        })
    };
    app.user_sends(USER, json!({"type": "text", "text": {"body": "while you wait"}}))
        .await;
    let (met, page) = waiting.await.expect("waited");
    assert_eq!(met.as_deref(), Some("met"));
    assert_eq!(page["data"][0]["payload"]["text"], "while you wait", "{page}");
    // Nothing of that type comes: the page as it is, with `Wagate-Wait: timeout`.
    let r = app
        .http
        .get(format!(
            "{}/v1/events?type=template.status_updated&wait_for=template.status_updated&timeout=200ms",
            app.url
        ))
        .bearer_auth(&app.key)
        .send()
        .await
        .expect("events");
    assert_eq!(
        r.headers().get("wagate-wait").map(|v| v.as_bytes()),
        Some(&b"timeout"[..])
    );

    // A message read that waits for a status answers once the message reached it.
    let (status, m) = app
        .post(
            "/v1/messages",
            &json!({"to": USER, "type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}}),
        )
        .await;
    assert_eq!(status, 202, "{m}");
    let id = m["id"].as_str().expect("id");
    let r = app
        .http
        .get(format!("{}/v1/messages/{id}?wait_for=read&timeout=10s", app.url))
        .bearer_auth(&app.key)
        .send()
        .await
        .expect("message");
    assert_eq!(r.headers().get("wagate-wait").map(|v| v.as_bytes()), Some(&b"met"[..]));
    let shown: Value = r.json().await.expect("json");
    assert_eq!(shown["status"], "read", "{shown}");
    // What cannot be waited for is refused, naming the field.
    for (query, field) in [("wait_for=opened", "wait_for"), ("wait_for=read&timeout=1h", "timeout")] {
        let (status, e) = app.get(&format!("/v1/messages/{id}?{query}")).await;
        assert_eq!(status, 400, "{query}: {e}");
        assert_eq!(e["error"]["details"]["field"], field, "{e}");
    }
    let (status, e) = app.get("/v1/events?wait_for=message").await;
    assert_eq!(
        (status, &e["error"]["details"]["field"]),
        (400, &json!("wait_for")),
        "{e}"
    );
    // A hook's attempts: a kind of attempt, or a 400 naming the field; none yet: timeout.
    let (status, hook) = app
        .post("/v1/hooks", &json!({"url": "http://127.0.0.1:9/nobody"}))
        .await;
    assert_eq!(status, 201, "{hook}");
    let attempts = format!("/v1/hooks/{}/attempts", hook["id"].as_str().expect("id"));
    let (status, e) = app.get(&format!("{attempts}?wait_for=maybe")).await;
    assert_eq!(
        (status, &e["error"]["details"]["field"]),
        (400, &json!("wait_for")),
        "{e}"
    );
    let r = app
        .http
        .get(format!("{}{attempts}?wait_for=succeeded&timeout=100ms", app.url))
        .bearer_auth(&app.key)
        .send()
        .await
        .expect("attempts");
    assert_eq!(
        r.headers().get("wagate-wait").map(|v| v.as_bytes()),
        Some(&b"timeout"[..])
    );
}
