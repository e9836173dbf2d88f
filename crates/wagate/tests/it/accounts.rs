//! Accounts made through the API: checked with Meta, kept with sealed secrets, sending and
//! receiving like the configuration file's, surviving a restart, changed and deleted.

use serde_json::{json, Value};

use crate::helpers::*;

/// The account columns that hold secrets, exactly as the database holds them.
async fn raw_account_secrets(url: &str) -> Vec<Option<String>> {
    let sql = "SELECT access_token, app_secret, verify_token FROM accounts WHERE managed_by = 'api'";
    let rows: Vec<(Option<String>, Option<String>, Option<String>)> = if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("open sqlite");
        sqlx::query_as(sql).fetch_all(&pool).await.expect("rows")
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("open postgres");
        sqlx::query_as(sql).fetch_all(&pool).await.expect("rows")
    };
    rows.into_iter().flat_map(|(a, b, c)| [a, b, c]).collect()
}

fn new_account(name: &str) -> Value {
    json!({"name": name, "waba_id": WABA, "access_token": TOKEN, "app_secret": APP_SECRET})
}

#[tokio::test]
async fn an_account_made_through_the_api_sends_receives_and_survives_a_restart() {
    let url = wagate_store::testing::fresh_database_url().await;
    let app = spawn_app_with(|c| {
        c.database_url = url.clone();
        c.accounts.clear();
    })
    .await;
    // Bad requests name the field; what Meta refuses changes nothing.
    let cases = [
        (json!({"name": "shop"}), 400, "waba_id"),
        (
            json!({"name": "no spaces", "waba_id": WABA, "access_token": TOKEN, "app_secret": APP_SECRET}),
            400,
            "name",
        ),
        (
            json!({"name": "shop", "waba_id": "12ab", "access_token": TOKEN, "app_secret": APP_SECRET}),
            400,
            "waba_id",
        ),
        (
            json!({"name": "shop", "waba_id": WABA, "access_token": "wrong-token", "app_secret": APP_SECRET}),
            422,
            "access_token",
        ),
        (
            json!({"name": "shop", "waba_id": "999000", "access_token": TOKEN, "app_secret": APP_SECRET}),
            422,
            "waba_id",
        ),
        (
            json!({"name": "shop", "waba_id": WABA, "access_token": TOKEN, "app_secret": APP_SECRET, "phone_number_ids": ["123"]}),
            422,
            "phone_number_ids",
        ),
    ];
    for (body, status, field) in cases {
        let (got, e) = app.post("/v1/accounts", &body).await;
        assert_eq!(got, status, "{body}: {e}");
        assert_eq!(e["error"]["details"]["field"], field, "{body}: {e}");
        assert!(e["error"]["hint"].is_string(), "{e}");
    }
    let (_, list) = app.get("/v1/accounts").await;
    assert_eq!(list["data"], json!([]), "nothing was made");

    // Made: Meta's numbers are taken, the verify token is shown this once.
    let (status, shop) = app.post("/v1/accounts", &new_account("shop")).await;
    assert_eq!(status, 201, "{shop}");
    assert_eq!(
        (&shop["phone_number_ids"], &shop["managed_by"], &shop["webhook_path"]),
        (&json!([PHONE_ID]), &json!("api"), &json!("/webhooks/whatsapp/shop"))
    );
    let verify_token = shop["verify_token"].as_str().expect("verify token").to_string();
    let (_, again) = app.get("/v1/accounts/shop").await;
    assert!(again.get("verify_token").is_none(), "shown once: {again}");
    // The database holds its secrets sealed.
    let raw = raw_account_secrets(&url).await;
    assert_eq!(raw.len(), 3);
    for stored in raw.iter().flatten() {
        assert!(stored.starts_with("sealed:v1:"), "{stored}");
        assert!(!stored.contains(TOKEN) && !stored.contains(APP_SECRET) && !stored.contains(&verify_token));
    }
    // Meta's handshake, a user's message (signed with its app secret), and a send.
    let r = app
        .http
        .get(format!(
            "{}/webhooks/whatsapp/shop?hub.mode=subscribe&hub.verify_token={verify_token}&hub.challenge=77",
            app.url
        ))
        .send()
        .await
        .expect("verify");
    assert_eq!(r.text().await.expect("text"), "77");
    app.open_window(USER).await;
    let (status, sent) = app
        .post(
            "/v1/messages?wait=accepted",
            &json!({"to": USER, "type": "text", "text": {"body": "from the api account"}}),
        )
        .await;
    assert_eq!((status, sent["account"].as_str()), (202, shop["id"].as_str()), "{sent}");
    assert!(sent["wamid"].is_string(), "{sent}");
    // Its numbers as Meta describes them.
    let (status, numbers) = app.get("/v1/accounts/shop/phone-numbers").await;
    assert_eq!(status, 200, "{numbers}");
    let n = &numbers["data"][0];
    assert_eq!(
        (
            &n["phone_number_id"],
            &n["quality_rating"],
            &n["throughput"],
            &n["name_status"]
        ),
        (
            &json!(PHONE_ID),
            &json!("GREEN"),
            &json!("STANDARD"),
            &json!("APPROVED")
        ),
        "{numbers}"
    );
    assert!(n["verified_name"].is_string() && n["synced_at"].is_string() && numbers["sync_error"].is_null());
    // Taken names and WABAs are conflicts.
    let (status, e) = app.post("/v1/accounts", &new_account("shop")).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("phone_number_taken")),
        "{e}"
    );
    // Changed: renamed, its own rate.
    let (status, renamed) = app
        .patch(
            "/v1/accounts/shop",
            &json!({"name": "shop-eu", "messages_per_second": 10}),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(
        (&renamed["name"], &renamed["messages_per_second"]),
        (&json!("shop-eu"), &json!(10))
    );
    let (status, _) = app.get("/v1/accounts/shop").await;
    assert_eq!(status, 404);
    app.gateway.shutdown().await;

    // A restart: the account, its secrets and numbers come from the database.
    let app = spawn_app_with(|c| {
        c.database_url = url.clone();
        c.accounts.clear();
    })
    .await;
    let (_, list) = app.get("/v1/accounts").await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(
        (&list["data"][0]["name"], &list["data"][0]["id"]),
        (&json!("shop-eu"), &shop["id"])
    );
    let (status, sent) = app
        .post(
            "/v1/messages?wait=accepted",
            &json!({"to": USER, "type": "text", "text": {"body": "after the restart"}}),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    assert!(sent["wamid"].is_string(), "the token from the database works: {sent}");

    // Deleted: its history stays, and comes back with an account made for its WABA again.
    let first_id = sent["id"].as_str().expect("id").to_string();
    let (status, deleted) = app.delete("/v1/accounts/shop-eu").await;
    assert_eq!((status, &deleted), (200, &json!({"deleted": true, "purged": false})));
    let (_, list) = app.get("/v1/accounts").await;
    assert_eq!(list["data"], json!([]));
    let (status, _) = app.get(&format!("/v1/messages/{first_id}")).await;
    assert_eq!(status, 200, "history kept");
    let (status, back) = app.post("/v1/accounts", &new_account("shop")).await;
    assert_eq!(status, 201, "{back}");
    assert_eq!(back["id"], shop["id"], "the same account, with its history");
    // Purged: the history goes too.
    let (status, _) = app.delete("/v1/accounts/shop?purge=true").await;
    assert_eq!(status, 200);
    let (status, _) = app.get(&format!("/v1/messages/{first_id}")).await;
    assert_eq!(status, 404, "purged");
    // The same from the command line, the secrets on standard input.
    let (ok, out) = app
        .accounts_cli(
            &["create", "shop-cli", "--waba-id", WABA],
            &format!("{TOKEN}\n{APP_SECRET}\n"),
        )
        .await;
    assert!(
        ok && out.contains("/webhooks/whatsapp/shop-cli") && out.contains("vt_"),
        "{out}"
    );
    assert!(!out.contains(TOKEN) && !out.contains(APP_SECRET), "{out}");
    let (ok, out) = app
        .accounts_cli(&["create", "shop-cli2", "--waba-id", WABA], "only-one-line\n")
        .await;
    assert!(!ok && out.contains("app secret"), "{out}");
    let (ok, out) = app.accounts_cli(&["delete", "shop-cli", "--purge"], "").await;
    assert!(ok && out.contains("deleted `shop-cli` and its history"), "{out}");
    let (_, log) = app.get("/v1/audit?action=account.").await;
    let actions: Vec<&str> = log["data"]
        .as_array()
        .expect("log")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "account.deleted",
            "account.created",
            "account.deleted",
            "account.created",
            "account.deleted",
            "account.updated",
            "account.created"
        ]
    );
}

#[tokio::test]
async fn accounts_of_the_configuration_file_are_changed_there() {
    let app = spawn_app().await;
    let (_, acme) = app.get("/v1/accounts/acme").await;
    assert_eq!(acme["managed_by"], "config", "{acme}");
    for (status, e) in [
        app.patch("/v1/accounts/acme", &json!({"name": "other"})).await,
        app.delete("/v1/accounts/acme").await,
    ] {
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (409, Some("managed_by_file")),
            "{e}"
        );
    }
    // A key of one account neither makes nor removes accounts, and sees no other.
    let account = app.gateway.state.accounts.all()[0].id.clone();
    let (key, k) = wagate_engine::auth::new_key("acme-admin", Some(account.into()), vec!["admin".into()]);
    app.gateway.state.store.create_api_key(&k).await.expect("key");
    let r = app
        .http
        .post(format!("{}/v1/accounts", app.url))
        .bearer_auth(&key)
        .json(&new_account("mine"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 403);
}

#[tokio::test]
async fn an_account_or_a_revoked_key_reaches_every_gateway_at_once() {
    let Some(url) =
        wagate_store::testing::postgres_or_skip("an_account_or_a_revoked_key_reaches_every_gateway_at_once").await
    else {
        return;
    };
    let no_accounts = |c: &mut wagate_engine::Config| {
        c.database_url = url.clone();
        c.accounts.clear();
    };
    let a = spawn_app_with(no_accounts).await;
    let b = spawn_app_with(no_accounts).await;
    // Made on one gateway, the account is there on the other without a restart, and sends.
    let (status, shop) = a.post("/v1/accounts", &new_account("shop")).await;
    assert_eq!(status, 201, "{shop}");
    eventually("the other gateway has the account", || async {
        let (_, list) = b.get("/v1/accounts").await;
        (list["data"][0]["name"] == "shop").then_some(())
    })
    .await;
    b.open_window(USER).await;
    let (status, sent) = b
        .post(
            "/v1/messages?wait=accepted",
            &json!({"to": USER, "type": "text", "text": {"body": "via b"}}),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    assert!(sent["wamid"].is_string(), "{sent}");
    // A key revoked on one gateway stops on the other at the next request.
    let (_, key) = a
        .post("/v1/keys", &json!({"name": "short-lived", "scopes": ["read"]}))
        .await;
    let secret = key["key"].as_str().expect("key");
    assert_eq!(b.get_as(secret, "/v1/accounts").await.0, 200);
    let (status, _) = a.delete(&format!("/v1/keys/{}", key["id"].as_str().expect("id"))).await;
    assert_eq!(status, 200);
    assert_eq!(b.get_as(secret, "/v1/accounts").await.0, 401);
    // Deleted on one, gone on the other.
    let (status, _) = b.delete("/v1/accounts/shop").await;
    assert_eq!(status, 200);
    eventually("the first gateway no longer has it", || async {
        let (_, list) = a.get("/v1/accounts").await;
        (list["data"] == json!([])).then_some(())
    })
    .await;
}

#[tokio::test]
async fn with_several_accounts_a_request_that_names_none_uses_the_default_or_is_told_how_to_name_one() {
    let send = json!({"to": USER, "type": "text", "text": {"body": "which account?"}});
    // No default: the error names every account, and how to name one where the request did
    // not: a JSON body's field, a query's parameter, the command line's flag.
    let app = spawn_app().await;
    alpha_shop(&app).await;
    let (status, e) = app.post("/v1/messages", &send).await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["details"]["accounts"], json!(["acme", "alpha-shop"]), "{e}");
    let hint = e["error"]["hint"].as_str().unwrap_or_default();
    assert!(
        hint.contains("\"account\": \"acme\" to the JSON body") && hint.contains("WAGATE_DEFAULT_ACCOUNT"),
        "{hint}"
    );
    assert!(!hint.contains("?account="), "{hint}");
    let (status, e) = app.get("/v1/templates").await;
    assert_eq!(status, 400, "{e}");
    let hint = e["error"]["hint"].as_str().unwrap_or_default();
    assert!(hint.contains("?account=acme") && !hint.contains("JSON body"), "{hint}");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wagate"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args([
            "send",
            "--to",
            USER,
            "--text",
            "hi",
            "--wait",
            "0",
            "--url",
            &app.url,
            "--api-key",
            &app.key,
        ])
        .output()
        .await
        .expect("wagate send");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("--account acme") && !said.contains("JSON body"),
        "{said}"
    );
    // A key of one account acts for it.
    let (status, k) = app
        .post(
            "/v1/keys",
            &json!({"name": "shop", "scopes": ["send"], "account": "alpha-shop"}),
        )
        .await;
    assert_eq!(status, 201, "{k}");
    let (status, e) = app
        .request_as(
            k["key"].as_str().expect("key"),
            reqwest::Method::POST,
            "/v1/messages",
            Some(&send),
        )
        .await;
    assert_eq!(
        e["error"]["code"], "window_closed",
        "alpha-shop's own check ({status}): {e}"
    );
    // With a default, requests that name none act for it.
    let app = spawn_app_with(|c| c.default_account = Some("acme".into())).await;
    alpha_shop(&app).await;
    app.open_window(USER).await;
    let (status, sent) = app.post("/v1/messages", &send).await;
    assert_eq!(status, 202, "{sent}");
    let (_, got) = app
        .get(&format!("/v1/messages/{}", sent["id"].as_str().expect("id")))
        .await;
    assert_eq!(got["phone_number_id"], PHONE_ID, "acme's number: {got}");
}
