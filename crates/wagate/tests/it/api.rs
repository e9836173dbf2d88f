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
    let (read_key, k) = wagate_server::auth::new_key("reader", Some(account.clone()), vec!["read".into()]);
    store.create_api_key(&k).await.expect("key");
    let (other_key, k) = wagate_server::auth::new_key(
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
