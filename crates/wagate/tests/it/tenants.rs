//! Tenants: a tenant's key answers only with its tenant's data. Every endpoint that names an
//! object is called with tenant A's key on tenant B's message, event, media, hook, key, account
//! and contact, and answers 404 (or, for an account named in a query or body, the same 400 as
//! for an account that does not exist), never 403, which would confirm the object exists.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine;
use serde_json::{json, Value};

use crate::connect::{connect, connecting_app_with};
use crate::helpers::*;

/// An admin key of `tenant`, made through the API: (the key, its id).
async fn tenant_key(app: &TestApp, tenant: &str) -> (String, String) {
    let (status, k) = app
        .post(
            "/v1/keys",
            &json!({"name": tenant, "scopes": ["admin"], "tenant": tenant}),
        )
        .await;
    assert_eq!(status, 201, "{k}");
    (
        k["key"].as_str().expect("key").to_string(),
        k["id"].as_str().expect("id").to_string(),
    )
}

#[tokio::test]
async fn a_tenants_key_sees_nothing_of_another_tenant() {
    let app = connecting_app_with(|c| c.hooks.allow_private_networks = true).await;
    // Tenant bravo connects the simulator's business; tenant alpha has an account of its own.
    let bravo_account = connect(&app, "bravo").await;
    alpha_shop(&app).await;
    let (alpha, _) = tenant_key(&app, "alpha").await;
    let (bravo, bravo_key_id) = tenant_key(&app, "bravo").await;
    let app = &app;
    let call = |key: String, method: reqwest::Method, path: String, body: Option<Value>| async move {
        app.request_as(&key, method, &path, body.as_ref()).await
    };
    // Tenant bravo's objects, made with bravo's key.
    let image = json!({"type": "image", "image": {"data_base64": base64::engine::general_purpose::STANDARD.encode(b"\xff\xd8\xffjpeg"), "mime_type": "image/jpeg"}});
    app.user_sends_to(CONNECT_PHONE, USER, image).await;
    let received = eventually("bravo's image arrives", || async {
        let (_, events) = call(
            bravo.clone(),
            reqwest::Method::GET,
            "/v1/events?type=message.received".into(),
            None,
        )
        .await;
        events["data"].as_array()?.first().cloned()
    })
    .await;
    let event_id = received["id"].as_str().expect("event id").to_string();
    let media_id = received["payload"]["content"]["media"]["media_id"]
        .as_str()
        .expect("media id")
        .to_string();
    let (status, sent) = call(
        bravo.clone(),
        reqwest::Method::POST,
        "/v1/messages".into(),
        Some(json!({"to": USER, "type": "text", "text": {"body": "bravo's"}})),
    )
    .await;
    assert_eq!(status, 202, "{sent}");
    let message_id = sent["id"].as_str().expect("message id").to_string();
    let (status, hook) = call(
        bravo.clone(),
        reqwest::Method::POST,
        "/v1/hooks".into(),
        Some(json!({"url": "http://127.0.0.1:9/bravo"})),
    )
    .await;
    assert_eq!(status, 201, "{hook}");
    assert_eq!(hook["id"].as_str().map(|h| h.starts_with("hook")), Some(true));
    let hook_id = hook["id"].as_str().expect("hook id").to_string();
    let (status, synced) = call(
        bravo.clone(),
        reqwest::Method::POST,
        "/v1/templates/sync".into(),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{synced}");
    let (_, catalog) = call(bravo.clone(), reqwest::Method::GET, "/v1/templates".into(), None).await;
    let template_id = catalog["data"][0]["id"].as_str().expect("a template id").to_string();
    // Bravo sees its own.
    for path in [
        format!("/v1/messages/{message_id}"),
        format!("/v1/events/{event_id}"),
        format!("/v1/media/{media_id}"),
        format!("/v1/hooks/{hook_id}"),
        format!("/v1/accounts/{bravo_account}"),
        format!("/v1/contacts/{USER}"),
        format!("/v1/templates/{template_id}"),
    ] {
        let (status, body) = call(bravo.clone(), reqwest::Method::GET, path.clone(), None).await;
        assert_eq!(status, 200, "bravo on its own {path}: {body}");
    }
    // Alpha, on each of them: not found.
    let a = bravo_account.as_str();
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let cases: Vec<(reqwest::Method, String, Option<Value>)> = vec![
        (get.clone(), format!("/v1/messages/{message_id}"), None),
        (reqwest::Method::DELETE, format!("/v1/messages/{message_id}"), None),
        (
            post.clone(),
            format!("/v1/messages/{message_id}/retry"),
            Some(json!({})),
        ),
        (get.clone(), format!("/v1/events/{event_id}"), None),
        (post.clone(), format!("/v1/events/{event_id}/replay"), Some(json!({}))),
        (get.clone(), format!("/v1/media/{media_id}"), None),
        (get.clone(), format!("/v1/hooks/{hook_id}"), None),
        (
            reqwest::Method::PATCH,
            format!("/v1/hooks/{hook_id}"),
            Some(json!({"description": "mine now"})),
        ),
        (reqwest::Method::DELETE, format!("/v1/hooks/{hook_id}"), None),
        (
            post.clone(),
            format!("/v1/hooks/{hook_id}/secret/rotate"),
            Some(json!({})),
        ),
        (post.clone(), format!("/v1/hooks/{hook_id}/enable"), Some(json!({}))),
        (get.clone(), format!("/v1/hooks/{hook_id}/attempts"), None),
        (
            post.clone(),
            format!("/v1/hooks/{hook_id}/replay"),
            Some(json!({"since": "2020-01-01T00:00:00Z"})),
        ),
        (get.clone(), format!("/v1/keys/{bravo_key_id}"), None),
        (reqwest::Method::DELETE, format!("/v1/keys/{bravo_key_id}"), None),
        (post.clone(), format!("/v1/keys/{bravo_key_id}/rotate"), Some(json!({}))),
        (get.clone(), format!("/v1/accounts/{a}"), None),
        (
            reqwest::Method::PATCH,
            format!("/v1/accounts/{a}"),
            Some(json!({"name": "taken"})),
        ),
        (get.clone(), format!("/v1/accounts/{a}/health"), None),
        (get.clone(), format!("/v1/accounts/{a}/phone-numbers"), None),
        (
            reqwest::Method::PUT,
            format!("/v1/accounts/{a}/token"),
            Some(json!({"access_token": "x"})),
        ),
        (post.clone(), format!("/v1/accounts/{a}/pause"), Some(json!({}))),
        (post.clone(), format!("/v1/accounts/{a}/resume"), Some(json!({}))),
        (get.clone(), format!("/v1/contacts/{USER}"), None),
        (get.clone(), format!("/v1/templates/{template_id}"), None),
    ];
    for (method, path, body) in cases {
        let (status, e) = call(alpha.clone(), method.clone(), path.clone(), body).await;
        assert_eq!(status, 404, "alpha: {method} {path}: {e}");
        assert!(e["error"]["code"].is_string(), "{e}");
    }
    // An account named in a query or body: the same 404 as an account that does not exist.
    let nosuch = call(alpha.clone(), get.clone(), "/v1/templates?account=nosuch".into(), None).await;
    assert_eq!(nosuch.0, 404, "{}", nosuch.1);
    for (method, path, body, field) in [
        (get.clone(), format!("/v1/templates?account={a}"), None, "account"),
        (post.clone(), format!("/v1/templates/sync?account={a}"), None, "account"),
        (get.clone(), format!("/v1/messages?account={a}"), None, "account"),
        (get.clone(), format!("/v1/events?account={a}"), None, "account"),
        (get.clone(), format!("/v1/contacts/{USER}?account={a}"), None, "account"),
        (
            post.clone(),
            "/v1/messages".into(),
            Some(json!({"to": USER, "type": "text", "text": {"body": "x"}, "account": a})),
            "account",
        ),
        (
            post.clone(),
            "/v1/hooks".into(),
            Some(json!({"url": "http://127.0.0.1:9/x", "accounts": [a]})),
            "accounts",
        ),
        (
            post.clone(),
            "/v1/keys".into(),
            Some(json!({"name": "k", "account": a})),
            "account",
        ),
    ] {
        let (status, e) = call(alpha.clone(), method.clone(), path.clone(), body).await;
        assert_eq!(
            (status, &e["error"]["code"]),
            (nosuch.0, &nosuch.1["error"]["code"]),
            "{method} {path}: {e}"
        );
        assert_eq!(e["error"]["details"]["field"], field, "{e}");
    }
    // Lists: alpha's own only.
    for (path, field) in [
        ("/v1/messages", "data"),
        ("/v1/events", "data"),
        ("/v1/hooks", "data"),
        ("/v1/audit?action=hook.", "data"),
    ] {
        let (status, list) = call(alpha.clone(), get.clone(), path.into(), None).await;
        assert_eq!(status, 200, "{path}: {list}");
        assert_eq!(
            list[field],
            json!([]),
            "alpha lists nothing of bravo's at {path}: {list}"
        );
    }
    let (_, accounts) = call(alpha.clone(), get.clone(), "/v1/accounts".into(), None).await;
    let names: Vec<&str> = accounts["data"]
        .as_array()
        .expect("accounts")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["alpha-shop"]);
    let (_, keys) = call(alpha.clone(), get.clone(), "/v1/keys".into(), None).await;
    assert!(
        keys["data"]
            .as_array()
            .expect("keys")
            .iter()
            .all(|k| k["tenant"] == "alpha"),
        "{keys}"
    );
    // A media link alpha signs itself, with a hook of its own whose secret it chose, does not
    // open bravo's media; nor does a made-up signature say whether an id exists.
    let secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode([7u8; 32]));
    let (status, own_hook) = call(
        alpha.clone(),
        post.clone(),
        "/v1/hooks".into(),
        Some(json!({"url": "http://127.0.0.1:9/alpha", "secret": secret})),
    )
    .await;
    assert_eq!(status, 201, "{own_hook}");
    let own_hook = own_hook["id"].as_str().expect("hook id").to_string();
    let expires = wagate_engine::now_ms() / 1000 + 600;
    let signature = wagate_core::hooks::media_link_signature(&secret, &media_id, expires);
    let link = format!("/v1/media/{media_id}?hook={own_hook}&expires={expires}&signature={signature}");
    let r = app.http.get(format!("{}{link}", app.url)).send().await.expect("link");
    assert_eq!(r.status().as_u16(), 403, "alpha's own link to bravo's media");
    // A link lasting longer than the gateway's links do is not the gateway's.
    let far = wagate_engine::now_ms() / 1000 + 10 * 365 * 24 * 3600;
    let signature = wagate_core::hooks::media_link_signature(&secret, &media_id, far);
    let r = app
        .http
        .get(format!(
            "{}/v1/media/{media_id}?hook={own_hook}&expires={far}&signature={signature}",
            app.url
        ))
        .send()
        .await
        .expect("link");
    assert_eq!(r.status().as_u16(), 403);
    for id in [media_id.as_str(), "med_doesnotexist"] {
        let r = app
            .http
            .get(format!("{}/v1/media/{id}?signature=x", app.url))
            .send()
            .await
            .expect("link");
        assert_eq!(
            r.status().as_u16(),
            403,
            "{id}: the same answer whether it exists or not"
        );
    }
    // Alpha reads its own actions in the audit log (its hook has no account), not bravo's.
    let (_, audit) = call(alpha.clone(), get.clone(), "/v1/audit?action=hook.".into(), None).await;
    let targets: Vec<&str> = audit["data"]
        .as_array()
        .expect("audit")
        .iter()
        .filter_map(|e| e["target"].as_str())
        .collect();
    assert_eq!(targets, [own_hook.as_str()], "{audit}");
    // An event of bravo's lists deliveries to bravo's hooks for bravo, to none of alpha's.
    let (_, event) = call(bravo.clone(), get.clone(), format!("/v1/events/{event_id}"), None).await;
    assert!(!event.to_string().contains(&own_hook), "{event}");
    // What spans tenants is a key of every tenant's.
    let (status, _) = call(alpha.clone(), get.clone(), "/v1/journal/quarantined".into(), None).await;
    assert_eq!(status, 403);
    let (status, _) = call(
        alpha.clone(),
        post.clone(),
        "/v1/accounts".into(),
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(status, 403);
    // And bravo's objects are untouched.
    let (status, _) = call(bravo.clone(), get.clone(), format!("/v1/hooks/{hook_id}"), None).await;
    assert_eq!(status, 200);
    let (status, _) = call(bravo, get, "/v1/accounts".into(), None).await;
    assert_eq!(status, 200, "bravo's key still works");
}

/// A receiver that counts what it is sent.
async fn receiver() -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, count)
}

#[tokio::test]
async fn a_tenants_hook_gets_only_its_tenants_events() {
    let app = connecting_app_with(|c| c.hooks.allow_private_networks = true).await;
    connect(&app, "bravo").await;
    let mut keys = Vec::new();
    for tenant in ["alpha", "bravo"] {
        keys.push(tenant_key(&app, tenant).await.0);
    }
    let mut counts = Vec::new();
    for key in &keys {
        let (url, count) = receiver().await;
        let r = app
            .http
            .post(format!("{}/v1/hooks", app.url))
            .bearer_auth(key)
            .json(&json!({"url": url}))
            .send()
            .await
            .expect("hook");
        assert_eq!(r.status().as_u16(), 201);
        counts.push(count);
    }
    // A user writes to bravo's number: bravo's hook gets it, alpha's (with no account, and no
    // filter of its own) gets nothing.
    // (Two messages, one after the other: once bravo's hook has the second, the fan-out of the
    // first is over for every hook.)
    for body in ["for bravo", "again for bravo"] {
        app.user_sends_to(CONNECT_PHONE, USER, json!({"type": "text", "text": {"body": body}}))
            .await;
        app.settled_events().await;
    }
    eventually("bravo's hook gets both messages", || async {
        (counts[1].load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    assert_eq!(counts[0].load(Ordering::SeqCst), 0, "alpha's hook got bravo's event");
}
