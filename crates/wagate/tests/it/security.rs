//! Security as an attacker tries it: the authorization matrix (every `/v1` route of the OpenAPI
//! document against every kind of caller, with a second tenant's objects), and the holes found
//! before, each with its regression test.

use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::jwt::{claims, new_key, serve_jwks, sign, AUDIENCE, ISSUER};

/// Who may call a route beyond its permission.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Reach {
    /// Any key with the permission (it sees its own tenant's or account's objects).
    Any,
    /// Not a key of one account (connecting makes a new account).
    AllAccounts,
    /// Only a key of every account of every tenant.
    Global,
}

/// Every `/v1` route: method, path as the OpenAPI document writes it, permission, reach. The
/// test fails when the document has a route this table lacks, or the other way round.
const ROUTES: &[(&str, &str, &str, Reach)] = &[
    ("GET", "/v1/accounts", "read", Reach::Any),
    ("POST", "/v1/accounts", "admin", Reach::Global),
    ("DELETE", "/v1/accounts/{name}", "admin", Reach::Global),
    ("GET", "/v1/accounts/{name}", "read", Reach::Any),
    ("PATCH", "/v1/accounts/{name}", "admin", Reach::Any),
    ("GET", "/v1/accounts/{name}/health", "read", Reach::Any),
    ("POST", "/v1/accounts/{name}/health", "admin", Reach::Any),
    ("POST", "/v1/accounts/{name}/pause", "admin", Reach::Any),
    ("GET", "/v1/accounts/{name}/phone-numbers", "read", Reach::Any),
    ("POST", "/v1/accounts/{name}/resume", "admin", Reach::Any),
    ("PUT", "/v1/accounts/{name}/token", "admin", Reach::Any),
    ("PUT", "/v1/accounts/{name}/budget", "admin", Reach::Any),
    ("GET", "/v1/audit", "admin", Reach::Any),
    ("GET", "/v1/budgets", "read", Reach::Any),
    ("GET", "/v1/connect/start", "admin", Reach::AllAccounts),
    ("GET", "/v1/contacts/{wa_id}", "read", Reach::Any),
    ("GET", "/v1/events", "read", Reach::Any),
    ("GET", "/v1/events/stream", "read", Reach::Any),
    ("GET", "/v1/events/{id}", "read", Reach::Any),
    ("POST", "/v1/events/{id}/replay", "admin", Reach::Any),
    ("GET", "/v1/hooks", "admin", Reach::Any),
    ("POST", "/v1/hooks", "admin", Reach::Any),
    ("DELETE", "/v1/hooks/{id}", "admin", Reach::Any),
    ("GET", "/v1/hooks/{id}", "admin", Reach::Any),
    ("PATCH", "/v1/hooks/{id}", "admin", Reach::Any),
    ("GET", "/v1/hooks/{id}/attempts", "admin", Reach::Any),
    ("POST", "/v1/hooks/{id}/disable", "admin", Reach::Any),
    ("POST", "/v1/hooks/{id}/enable", "admin", Reach::Any),
    ("POST", "/v1/hooks/{id}/replay", "admin", Reach::Any),
    ("POST", "/v1/hooks/{id}/secret/rotate", "admin", Reach::Any),
    ("POST", "/v1/hooks/{id}/test", "admin", Reach::Any),
    ("GET", "/v1/journal/dead", "admin", Reach::Global),
    ("GET", "/v1/journal/quarantined", "admin", Reach::Global),
    ("POST", "/v1/journal/quarantined/requeue", "admin", Reach::Global),
    ("POST", "/v1/journal/{id}/requeue", "admin", Reach::Global),
    ("GET", "/v1/keys", "admin", Reach::Any),
    ("POST", "/v1/keys", "admin", Reach::Any),
    ("DELETE", "/v1/keys/{id}", "admin", Reach::Any),
    ("GET", "/v1/keys/{id}", "admin", Reach::Any),
    ("POST", "/v1/keys/{id}/rotate", "admin", Reach::Any),
    ("POST", "/v1/media", "send", Reach::Any),
    ("GET", "/v1/media/{id}", "read", Reach::Any),
    ("GET", "/v1/messages", "read", Reach::Any),
    ("POST", "/v1/messages", "send", Reach::Any),
    ("POST", "/v1/messages/batch", "send", Reach::Any),
    ("DELETE", "/v1/messages/{id}", "send", Reach::Any),
    ("GET", "/v1/messages/{id}", "read", Reach::Any),
    ("POST", "/v1/messages/{id}/read", "send", Reach::Any),
    ("POST", "/v1/messages/{id}/retry", "send", Reach::Any),
    ("GET", "/v1/rates", "read", Reach::Any),
    ("PUT", "/v1/rates", "admin", Reach::Global),
    ("GET", "/v1/templates", "read", Reach::Any),
    ("POST", "/v1/templates", "admin", Reach::Any),
    ("POST", "/v1/templates/sync", "admin", Reach::Any),
    ("GET", "/v1/templates/{id}", "read", Reach::Any),
    ("DELETE", "/v1/templates/{name}", "admin", Reach::Any),
    ("PUT", "/v1/tenants/{tenant}/budget", "admin", Reach::AllAccounts),
    ("GET", "/v1/usage", "read", Reach::Any),
    ("POST", "/v1/usage/reconcile", "admin", Reach::Any),
    ("GET", "/v1/usage/reconciliation", "read", Reach::Any),
    ("POST", "/v1/whatsapp/notify", "send", Reach::Any),
];

/// Whom an object in a route's path is hidden from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Hidden {
    /// Nothing is (made-up ids: each caller's own answer).
    No,
    /// Every caller but a key of every tenant (the second tenant's objects).
    FromOthers,
    /// Every caller (an id nobody has, where the answer is fixed).
    FromAll,
}

/// One request of the matrix, sent by every caller.
struct Probe {
    method: &'static str,
    /// As the OpenAPI document writes it.
    route: String,
    /// With the second tenant's objects in it.
    target: String,
    scope: &'static str,
    reach: Reach,
    hidden: Hidden,
    body: Option<String>,
    /// Meta's paths: API keys only, Meta's error shape.
    front_door: bool,
}

/// A caller of the matrix: its bearer token (none: no `Authorization`), and what it may do.
struct Caller {
    name: &'static str,
    token: Option<String>,
    /// `None`: the token is refused (401) on every route.
    scopes: Option<&'static [&'static str]>,
    /// Of every account of every tenant.
    global: bool,
    /// Limited to one account.
    one_account: bool,
}

fn caller(
    name: &'static str,
    token: String,
    scopes: &'static [&'static str],
    global: bool,
    one_account: bool,
) -> Caller {
    Caller {
        name,
        token: Some(token),
        scopes: Some(scopes),
        global,
        one_account,
    }
}

fn refused(name: &'static str, token: Option<String>) -> Caller {
    Caller {
        name,
        token,
        scopes: None,
        global: false,
        one_account: false,
    }
}

async fn key(app: &TestApp, body: Value) -> (String, String) {
    let (status, k) = app.post("/v1/keys", &body).await;
    assert_eq!(status, 201, "{k}");
    (
        k["key"].as_str().expect("key").to_string(),
        k["id"].as_str().expect("id").to_string(),
    )
}

fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

#[tokio::test]
async fn the_authorization_matrix_holds_for_every_route_and_caller() {
    let issuer_key = new_key("key-1");
    let jwks_url = serve_jwks(Arc::new(Mutex::new(vec![issuer_key.jwk.clone()]))).await;
    let app = spawn_app_with(|c| {
        c.auth.jwt.issuer = ISSUER.into();
        c.auth.jwt.audience = AUDIENCE.into();
        c.auth.jwt.jwks_url = jwks_url.clone();
        c.hooks.allow_private_networks = true;
    })
    .await;
    // The second tenant's objects, which no caller but a key of every tenant may see.
    let alpha_account = alpha_shop(&app).await;
    let (alpha, alpha_key_id) = key(&app, json!({"name": "alpha", "scopes": ["admin"], "tenant": "alpha"})).await;
    let r = app
        .http
        .post(format!("{}/v1/hooks", app.url))
        .bearer_auth(&alpha)
        .json(&json!({"url": "http://127.0.0.1:9/alpha", "headers": {"Authorization": "Bearer alpha-receiver-credential"}}))
        .send()
        .await
        .expect("alpha's hook");
    assert_eq!(r.status().as_u16(), 201);
    let alpha_hook: Value = r.json().await.expect("json");
    let alpha_hook_id = alpha_hook["id"].as_str().expect("id").to_string();
    // A global admin's hook of every account, which only keys of every tenant see either.
    let (status, global_hook) = app.post("/v1/hooks", &json!({"url": "http://127.0.0.1:9/all"})).await;
    assert_eq!(status, 201, "{global_hook}");
    let global_hook_id = global_hook["id"].as_str().expect("id").to_string();
    let markers = [
        "alpha-shop".to_string(),
        "200000000000001".to_string(),
        alpha_account.id.to_string(),
        alpha_hook_id.clone(),
        alpha_key_id.clone(),
        global_hook_id.clone(),
        "alpha-receiver-credential".to_string(),
    ];

    // The callers.
    let (tenant_admin, _) = key(&app, json!({"name": "bravo", "scopes": ["admin"], "tenant": "bravo"})).await;
    let (account_admin, _) = key(
        &app,
        json!({"name": "acme-admin", "scopes": ["admin"], "account": "acme"}),
    )
    .await;
    let (read_only, _) = key(&app, json!({"name": "reader", "scopes": ["read"]})).await;
    let (send_only, _) = key(&app, json!({"name": "sender", "scopes": ["send"]})).await;
    let (revoked, revoked_id) = key(&app, json!({"name": "revoked", "scopes": ["admin"]})).await;
    let (status, _) = app.delete(&format!("/v1/keys/{revoked_id}")).await;
    assert_eq!(status, 200);
    let (expired, mut record) = wagate_engine::auth::new_key("expired", None, vec!["admin".into()]);
    record.expires_at = Some(wagate_engine::now_ms() - 60_000);
    app.gateway
        .state
        .store
        .create_api_key(&record)
        .await
        .expect("expired key");
    let jwt = |extra: Value| sign(&issuer_key, &claims(extra));
    let now = wagate_engine::now_ms() / 1000;
    let unsigned = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT","kid":"key-1"}"#),
        b64(claims(json!({"wagate_scopes": ["admin"]})).to_string().as_bytes())
    );
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some("key-1".into());
    let hs256_with_public_key = jsonwebtoken::encode(
        &hs_header,
        &claims(json!({"wagate_scopes": ["admin"]})),
        &jsonwebtoken::EncodingKey::from_secret(issuer_key.jwk.to_string().as_bytes()),
    )
    .expect("sign");
    let mut callers = vec![
        caller("tenant admin key", tenant_admin, &["admin"], false, false),
        caller("account admin key", account_admin, &["admin"], false, true),
        caller("read-only key", read_only, &["read"], true, false),
        caller("send-only key", send_only, &["send"], true, false),
        refused("expired key", Some(expired)),
        refused("revoked key", Some(revoked)),
        caller(
            "JWT of tenant bravo",
            jwt(json!({"wagate_scopes": ["admin"], "wagate_tenant": "bravo"})),
            &["admin"],
            false,
            false,
        ),
        caller(
            "JWT without a tenant (read)",
            jwt(json!({"wagate_scopes": ["read"]})),
            &["read"],
            true,
            false,
        ),
        refused(
            "JWT with nbf in an hour",
            Some(jwt(json!({"wagate_scopes": ["admin"], "nbf": now + 3600}))),
        ),
        refused("unsigned JWT (alg none)", Some(unsigned)),
        refused("HS256 signed with the issuer's public key", Some(hs256_with_public_key)),
        refused("no credentials", None),
    ];
    for (what, tenant) in [
        ("empty", json!("")),
        ("list", json!(["alpha", "bravo"])),
        ("number", json!(7)),
        ("null", Value::Null),
        ("object", json!({"id": "alpha"})),
    ] {
        let name: &'static str = Box::leak(format!("JWT whose tenant claim is {what}").into_boxed_str());
        callers.push(refused(
            name,
            Some(jwt(json!({"wagate_scopes": ["admin"], "wagate_tenant": tenant}))),
        ));
    }
    // A key of every tenant last: it may change what it sees.
    callers.push(caller("global admin key", app.key.clone(), &["admin"], true, false));

    // The routes, from the OpenAPI document: none may escape the table.
    let doc: Value = app.get_json(&format!("{}/openapi.json", app.url)).await;
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .expect("operations")
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    documented.sort();
    let mut tabled: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _, _)| (m.to_string(), p.to_string()))
        .collect();
    tabled.sort();
    assert_eq!(
        documented, tabled,
        "every documented route is in the matrix, and only those"
    );

    let fill = |path: &str| {
        path.replace("/templates/{name}", "/templates/alpha_template")
            .replace("{name}", "alpha-shop")
            .replace("{tenant}", "alpha")
            .replace("{wa_id}", USER)
            .replace("/hooks/{id}", &format!("/hooks/{alpha_hook_id}"))
            .replace("/keys/{id}", &format!("/keys/{alpha_key_id}"))
            .replace("/events/{id}", "/events/evt_00000000000000000000000000")
            .replace("/journal/{id}", "/journal/1")
            .replace("/media/{id}", "/media/med_00000000000000000000000000")
            .replace("/messages/{id}", "/messages/msg_00000000000000000000000000")
            .replace("/templates/{id}", "/templates/alpha_template")
    };
    let mut probes: Vec<Probe> = ROUTES
        .iter()
        .map(|(method, path, scope, reach)| Probe {
            method,
            route: path.to_string(),
            target: fill(path),
            scope,
            reach: *reach,
            hidden: match ["/v1/accounts/", "/v1/hooks/", "/v1/keys/", "/v1/tenants/"]
                .iter()
                .any(|p| path.starts_with(p))
            {
                true => Hidden::FromOthers,
                false => Hidden::No,
            },
            body: (*method != "GET" && *method != "DELETE").then(|| "{}".to_string()),
            front_door: false,
        })
        .collect();
    // The Graph front door (Meta's paths, outside the OpenAPI document), in Meta's error shape:
    // an object the caller cannot see is Meta's "does not exist, or missing permissions" (400,
    // code 100). Alpha's number, and a media id nobody has.
    let front_door = [
        ("POST", "/v23.0/200000000000011/messages", "send", Hidden::FromOthers),
        ("GET", "/v23.0/1234567890123456", "read", Hidden::FromAll),
        ("DELETE", "/v23.0/1234567890123456", "send", Hidden::FromAll),
        ("POST", "/v23.0/200000000000011/media", "send", Hidden::FromOthers),
        (
            "GET",
            "/v23.0/200000000000001/message_templates",
            "read",
            Hidden::FromOthers,
        ),
        (
            "POST",
            "/v23.0/200000000000001/message_templates",
            "admin",
            Hidden::FromOthers,
        ),
        (
            "DELETE",
            "/v23.0/200000000000001/message_templates?name=x",
            "admin",
            Hidden::FromOthers,
        ),
        // Passed through to Meta with the account's token.
        (
            "GET",
            "/v23.0/200000000000011/whatsapp_business_profile",
            "read",
            Hidden::FromOthers,
        ),
        (
            "POST",
            "/v23.0/200000000000011/whatsapp_business_profile",
            "admin",
            Hidden::FromOthers,
        ),
        (
            "GET",
            "/v23.0/200000000000001/phone_numbers",
            "read",
            Hidden::FromOthers,
        ),
        ("POST", "/v23.0/200000000000011/register", "admin", Hidden::FromOthers),
    ];
    for (method, path, scope, hidden) in front_door {
        probes.push(Probe {
            method,
            route: path.to_string(),
            target: path.to_string(),
            scope,
            reach: Reach::Any,
            hidden,
            body: (method == "POST").then(|| {
                json!({"messaging_product": "whatsapp", "to": USER, "type": "text", "text": {"body": "x"}}).to_string()
            }),
            front_door: true,
        });
    }
    let mut checked = 0usize;
    let mut failures = Vec::new();
    for c in &callers {
        for p in &probes {
            let url = format!("{}{}", app.url, p.target);
            let mut request = app
                .http
                .request(p.method.parse().expect("method"), &url)
                .header("content-type", "application/json");
            if let Some(body) = &p.body {
                request = request.body(body.clone());
            }
            if let Some(t) = &c.token {
                request = request.bearer_auth(t);
            }
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            // The live stream never ends: its head is the answer.
            let body = match p.route == "/v1/events/stream" && status == 200 {
                true => String::new(),
                false => response.text().await.unwrap_or_default(),
            };
            checked += 1;
            let expected: Result<u16, &str> = match c.scopes {
                None => Ok(401),
                Some(scopes) if !scopes.iter().any(|s| *s == p.scope || *s == "admin") => Ok(403),
                Some(_) if p.reach == Reach::Global && !c.global => Ok(403),
                Some(_) if p.reach == Reach::AllAccounts && c.one_account => Ok(403),
                Some(_) if p.hidden == Hidden::FromAll || (p.hidden == Hidden::FromOthers && !c.global) => {
                    Ok(if p.front_door { 400 } else { 404 })
                }
                Some(_) => Err("allowed"),
            };
            let ok = match expected {
                Ok(want) => status == want,
                Err(_) => !matches!(status, 401 | 403) && status < 500,
            };
            let (method, path) = (p.method, &p.route);
            if !ok {
                failures.push(format!(
                    "{}: {method} {path} answered {status}, expected {expected:?}: {}",
                    c.name,
                    body.chars().take(200).collect::<String>()
                ));
            }
            if !c.global {
                // (A 404 may repeat what the request named; nothing else of the tenant's.)
                if let Some(m) = markers
                    .iter()
                    .find(|m| body.contains(m.as_str()) && !url.contains(m.as_str()))
                {
                    failures.push(format!(
                        "{}: {method} {path} shows another tenant's `{m}`: {body}",
                        c.name
                    ));
                }
            }
            // The error shape: wagate's (a code) on its own routes, Meta's (a number) on Meta's.
            if status >= 400 && !body.is_empty() {
                let e: Value = serde_json::from_str(&body).unwrap_or_default();
                let shaped = match p.front_door {
                    true => e["error"]["code"].is_number(),
                    false => e["error"]["code"].is_string(),
                };
                if !shaped {
                    failures.push(format!("{}: {method} {path}: not the error shape: {body}", c.name));
                }
            }
        }
    }
    println!(
        "authorization matrix: {} routes of the OpenAPI document and {} of the Graph front door x {} callers = {checked} requests",
        ROUTES.len(),
        front_door.len(),
        callers.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {checked} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn an_account_admin_key_reaches_only_its_accounts_hooks_and_connects_nothing() {
    let app = spawn_app_with(|c| c.hooks.allow_private_networks = true).await;
    // Hooks of every account and of a tenant, made by keys that may.
    let (status, everyone) = app.post("/v1/hooks", &json!({"url": "http://127.0.0.1:9/all"})).await;
    assert_eq!(status, 201, "{everyone}");
    let everyone = everyone["id"].as_str().expect("id").to_string();
    let (bravo, _) = key(&app, json!({"name": "bravo", "scopes": ["admin"], "tenant": "bravo"})).await;
    let r = app
        .http
        .post(format!("{}/v1/hooks", app.url))
        .bearer_auth(&bravo)
        .json(&json!({"url": "http://127.0.0.1:9/bravo"}))
        .send()
        .await
        .expect("hook");
    assert_eq!(r.status().as_u16(), 201);
    let bravos = r.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let (acme, _) = key(
        &app,
        json!({"name": "acme-admin", "scopes": ["admin"], "account": "acme"}),
    )
    .await;
    let (app, acme) = (&app, acme.as_str());
    let call = |method: reqwest::Method, path: String, body: Option<Value>| async move {
        app.request_as(acme, method, &path, body.as_ref()).await
    };
    let (post, get) = (reqwest::Method::POST, reqwest::Method::GET);
    // None of them is the account key's: not listed, and each action on them is "not found".
    let (status, list) = call(get.clone(), "/v1/hooks".into(), None).await;
    assert_eq!((status, &list["data"]), (200, &json!([])), "{list}");
    for id in [&everyone, &bravos] {
        for (method, path, body) in [
            (get.clone(), format!("/v1/hooks/{id}"), None),
            (
                reqwest::Method::PATCH,
                format!("/v1/hooks/{id}"),
                Some(json!({"url": "http://127.0.0.1:9/stolen"})),
            ),
            (post.clone(), format!("/v1/hooks/{id}/secret/rotate"), Some(json!({}))),
            (
                post.clone(),
                format!("/v1/hooks/{id}/replay"),
                Some(json!({"since": "2020-01-01T00:00:00Z"})),
            ),
            (post.clone(), format!("/v1/hooks/{id}/enable"), Some(json!({}))),
            (post.clone(), format!("/v1/hooks/{id}/disable"), Some(json!({}))),
            (post.clone(), format!("/v1/hooks/{id}/test"), Some(json!({}))),
            (get.clone(), format!("/v1/hooks/{id}/attempts"), None),
            (reqwest::Method::DELETE, format!("/v1/hooks/{id}"), None),
        ] {
            let (status, e) = call(method.clone(), path.clone(), body).await;
            assert_eq!(status, 404, "{method} {path}: {e}");
        }
    }
    // A hook it makes takes its account's events only, and it sees that one.
    let (status, own) = call(
        post.clone(),
        "/v1/hooks".into(),
        Some(json!({"url": "http://127.0.0.1:9/acme"})),
    )
    .await;
    assert_eq!(status, 201, "{own}");
    assert_eq!(own["accounts"], json!(["acme"]), "{own}");
    let own_id = own["id"].as_str().expect("id").to_string();
    let (status, e) = call(
        reqwest::Method::PATCH,
        format!("/v1/hooks/{own_id}"),
        Some(json!({"accounts": []})),
    )
    .await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(
        e["accounts"],
        json!(["acme"]),
        "it cannot widen its hook to every account: {e}"
    );
    let (_, list) = call(get.clone(), "/v1/hooks".into(), None).await;
    let ids: Vec<&str> = list["data"]
        .as_array()
        .expect("hooks")
        .iter()
        .filter_map(|h| h["id"].as_str())
        .collect();
    assert_eq!(ids, [own_id.as_str()]);
    // The others are untouched.
    let (status, still) = app.get(&format!("/v1/hooks/{everyone}")).await;
    assert_eq!((status, &still["url"]), (200, &json!("http://127.0.0.1:9/all")));
    // Connecting makes a new account: not for a key of one account, whatever tenant it names.
    for tenant in ["bravo", "acme"] {
        let (status, e) = call(
            get.clone(),
            format!("/v1/connect/start?tenant={tenant}&redirect=https://app.example.com/done"),
            None,
        )
        .await;
        assert_eq!(status, 403, "{e}");
        assert_eq!(e["error"]["code"], "forbidden", "{e}");
    }
}

#[tokio::test]
async fn hook_headers_are_sealed_at_rest_and_answered_masked() {
    let app = spawn_app_with(|c| c.hooks.allow_private_networks = true).await;
    let credential = "Bearer receiver-credential-0123456789";
    let (status, hook) = app
        .post(
            "/v1/hooks",
            &json!({"url": "http://127.0.0.1:9/h", "headers": {"Authorization": credential, "X-Team": "ops"}}),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    let id = hook["id"].as_str().expect("id").to_string();
    assert_eq!(
        hook["headers"],
        json!({"Authorization": "…6789", "X-Team": "…"}),
        "{hook}"
    );
    for path in ["/v1/hooks".to_string(), format!("/v1/hooks/{id}")] {
        let (_, body) = app.get(&path).await;
        assert!(!body.to_string().contains("receiver-credential"), "{path}: {body}");
    }
    // At rest: sealed like the secret.
    let url = app.gateway.state.config.database_url.clone();
    let sql = "SELECT headers FROM hooks";
    let stored: Vec<(String,)> = if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("open");
        sqlx::query_as(sql).fetch_all(&pool).await.expect("rows")
    } else {
        let pool = sqlx::PgPool::connect(&url).await.expect("open");
        sqlx::query_as(sql).fetch_all(&pool).await.expect("rows")
    };
    assert!(
        stored
            .iter()
            .all(|(h,)| h.starts_with("sealed:v1:") && !h.contains("receiver")),
        "{stored:?}"
    );
    // An update that sends the masked value back keeps the credential; a new value replaces it.
    let (status, _) = app
        .patch(
            &format!("/v1/hooks/{id}"),
            &json!({"headers": {"Authorization": "…6789", "X-Team": "payments"}}),
        )
        .await;
    assert_eq!(status, 200);
    let opened = app.stored_hook(&id).await;
    let headers: Value = serde_json::from_str(&opened.headers).expect("json");
    assert_eq!(headers, json!({"Authorization": credential, "X-Team": "payments"}));
}

#[tokio::test]
async fn a_locked_database_is_a_clear_503_on_every_route_and_json_needs_no_content_type() {
    // PostgreSQL waits for a lock without end unless told: statements here give up after 2 s
    // (SQLite's busy timeout is the gateway's own 10 s).
    let app = spawn_app_with(|c| {
        if c.database_url.starts_with("postgres") {
            c.database_url.push_str("&options[statement_timeout]=2000");
        }
    })
    .await;
    // JSON bodies are read whatever their Content-Type, templates too.
    let r = app
        .http
        .post(format!("{}/v1/templates", app.url))
        .bearer_auth(&app.key)
        .body(r#"{"name": "hello_again", "language": "en_US", "category": "UTILITY", "components": [{"type": "BODY", "text": "Hello"}]}"#)
        .send()
        .await
        .expect("template");
    assert_ne!(r.status().as_u16(), 415);
    assert!(r.status().is_success(), "{}", r.text().await.unwrap_or_default());
    app.open_window(USER).await;
    let lock = app.hold_database().await;
    let sent = app
        .http
        .post(format!("{}/v1/messages", app.url))
        .bearer_auth(&app.key)
        .json(&json!({"to": USER, "type": "text", "text": {"body": "while the database is locked"}}))
        .send()
        .await
        .expect("send");
    let status = sent.status().as_u16();
    let body: Value = sent.json().await.expect("json");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "database_unavailable", "{body}");
    let (status, ready) = app.get("/ready").await;
    assert_eq!(status, 503, "/ready says so: {ready}");
    drop(lock);
    let (status, body) = app
        .post(
            "/v1/messages",
            &json!({"to": USER, "type": "text", "text": {"body": "after the lock"}}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
}
