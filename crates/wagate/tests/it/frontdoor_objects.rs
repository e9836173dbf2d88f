//! The front door beyond sends: media upload, read, download and delete; the template catalog in
//! Meta's shapes; everything else under an account's ids passed through to Meta with the
//! account's token, audited; and ids a caller may not use answered as Meta's "does not exist".

use serde_json::{json, Value};

use crate::helpers::*;

const JPEG: &[u8] = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9";

async fn call(app: &TestApp, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    app.request_as(token, method, path, body.as_ref()).await
}

async fn key_with(app: &TestApp, scopes: &[&str]) -> String {
    let (status, k) = app
        .post(
            "/v1/keys",
            &json!({"name": format!("k-{}", scopes.join("-")), "scopes": scopes}),
        )
        .await;
    assert_eq!(status, 201, "{k}");
    k["key"].as_str().expect("key").to_string()
}

#[tokio::test]
async fn a_file_is_uploaded_sent_read_downloaded_and_deleted_through_metas_paths() {
    let app = spawn_app().await;
    app.open_window(USER).await;
    // Uploaded as Meta takes it: multipart, `messaging_product`, `type`, `file`.
    let part = reqwest::multipart::Part::bytes(JPEG.to_vec())
        .file_name("invoice.jpg")
        .mime_str("image/jpeg")
        .expect("mime");
    let form = reqwest::multipart::Form::new()
        .text("messaging_product", "whatsapp")
        .text("type", "image/jpeg")
        .part("file", part);
    let r = app
        .http
        .post(format!("{}/v23.0/{PHONE_ID}/media", app.url))
        .bearer_auth(&app.key)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 200);
    let uploaded: Value = r.json().await.expect("json");
    let id = uploaded["id"].as_str().expect("Meta's media id").to_string();
    assert_eq!(uploaded, json!({"id": id}), "Meta's answer, nothing else");

    // The id works in a send.
    let (status, sent) = app
        .post(
            &format!("/v23.0/{PHONE_ID}/messages"),
            &json!({"messaging_product": "whatsapp", "to": USER, "type": "image", "image": {"id": id}}),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    assert!(
        sent["messages"][0]["id"]
            .as_str()
            .is_some_and(|w| w.starts_with("wamid.")),
        "{sent}"
    );

    // Read as Meta describes it, with a URL on the gateway that takes the same token.
    let (status, info) = app.get(&format!("/v23.0/{id}")).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["mime_type"], "image/jpeg");
    assert_eq!(info["file_size"], JPEG.len());
    assert_eq!(info["sha256"], wagate_core::signature::sha256_base64(JPEG));
    assert_eq!(info["id"], id.as_str());
    let url = info["url"].as_str().expect("url");
    assert!(url.starts_with(&app.url), "{url}");
    let bytes = app
        .http
        .get(url)
        .bearer_auth(&app.key)
        .send()
        .await
        .expect("download")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(&bytes[..], JPEG);

    // Deleted at Meta and here; then it does not exist.
    let (status, deleted) = app.delete(&format!("/v23.0/{id}")).await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted, json!({"success": true}));
    let (status, gone) = app.get(&format!("/v23.0/{id}")).await;
    assert_eq!(status, 400, "{gone}");
    assert_eq!(
        (gone["error"]["code"].as_i64(), gone["error"]["error_subcode"].as_i64()),
        (Some(100), Some(33))
    );
    let (_, log) = app.get("/v1/audit?action=media.").await;
    assert_eq!(log["data"][0]["action"], "media.deleted", "{log}");

    // Meta's limits answer in Meta's shape before anything reaches Meta.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"MZ".to_vec())
            .file_name("x.exe")
            .mime_str("application/x-msdownload")
            .expect("mime"),
    );
    let r = app
        .http
        .post(format!("{}/v23.0/{PHONE_ID}/media", app.url))
        .bearer_auth(&app.key)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert!(r.status().is_client_error());
    let refused: Value = r.json().await.expect("json");
    assert!(refused["error"]["code"].is_number(), "{refused}");
}

#[tokio::test]
async fn templates_through_metas_paths_are_the_gateways_catalog() {
    let app = spawn_app().await;
    let path = format!("/v23.0/{WABA}/message_templates");
    // Listed from the catalog (read from Meta on first use), with Meta's fields, paging and summary.
    let (status, page) = app
        .get(&format!(
            "{path}?fields=name,status,language&limit=1&summary=total_count"
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"].as_array().map(Vec::len), Some(1), "{page}");
    let total = page["summary"]["total_count"].as_u64().expect("total");
    assert!(total > 1, "{page}");
    let next = page["paging"]["next"].as_str().expect("next page");
    assert!(
        next.starts_with(&format!("{}{path}", app.url)),
        "the next page is the gateway's: {next}"
    );
    let second: Value = app
        .http
        .get(next)
        .bearer_auth(&app.key)
        .send()
        .await
        .expect("next")
        .json()
        .await
        .expect("json");
    assert_ne!(second["data"][0]["name"], page["data"][0]["name"], "{second}");
    let (_, catalog) = app.get("/v1/templates").await;
    assert_eq!(
        catalog["data"].as_array().map(Vec::len),
        Some(total as usize),
        "the same catalog"
    );

    // One by id.
    let hello = catalog["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|t| t["name"] == "hello_world")
        .expect("hello_world");
    let tid = hello["id"].as_str().expect("id");
    let (status, one) = app.get(&format!("/v23.0/{tid}?fields=name,category")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["name"], "hello_world");
    assert_eq!(one["id"], tid);

    // Created through the catalog: Meta's answer, and the catalog has it at once.
    let body = json!({"name": "order_shipped_fd", "language": "en_US", "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Order {{1}} shipped", "example": {"body_text": [["A-1"]]}}]});
    let (status, created) = app.post(&path, &body).await;
    assert_eq!(status, 200, "{created}");
    assert!(created["id"].is_string(), "{created}");
    assert_eq!(created["status"], "PENDING");
    let (status, _) = app.get("/v1/templates/order_shipped_fd").await;
    assert_eq!(status, 200);
    // Meta's refusal of a bad template comes back as Meta's error.
    let (status, refused) = app.post(&path, &json!({"name": "Bad Name"})).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["error"]["code"].is_number(), "{refused}");

    // Meta's verdict arrives by webhook (the catalog follows it); then it is deleted at Meta and
    // from the catalog.
    eventually("the template's verdict", || async {
        let (_, t) = app.get("/v1/templates/order_shipped_fd").await;
        (t["data"][0]["status"] != "PENDING").then_some(())
    })
    .await;
    let (status, deleted) = app.delete(&format!("{path}?name=order_shipped_fd")).await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted, json!({"success": true}));
    let (status, _) = app.get("/v1/templates/order_shipped_fd").await;
    assert_eq!(status, 404);

    // A key that may only read lists but may not create.
    let reader = key_with(&app, &["read"]).await;
    let (status, _) = call(&app, &reader, reqwest::Method::GET, &path, None).await;
    assert_eq!(status, 200);
    let (status, no) = call(&app, &reader, reqwest::Method::POST, &path, Some(json!({"name": "x"}))).await;
    assert_eq!(status, 403, "{no}");
    assert_eq!(no["error"]["code"], 10, "{no}");
}

#[tokio::test]
async fn everything_else_under_an_accounts_ids_is_passed_to_meta_with_its_token_and_audited() {
    let app = spawn_app().await;
    // The number, as Meta's API writes it.
    let (status, number) = app
        .get(&format!("/v23.0/{PHONE_ID}?fields=display_phone_number,verified_name"))
        .await;
    assert_eq!(status, 200, "{number}");
    assert_eq!(number["display_phone_number"], "+1 555-078-3881");
    let (status, numbers) = app.get(&format!("/v23.0/{WABA}/phone_numbers")).await;
    assert_eq!(status, 200, "{numbers}");
    assert_eq!(numbers["data"][0]["id"], PHONE_ID);
    // The business profile, read and updated.
    let profile = format!("/v23.0/{PHONE_ID}/whatsapp_business_profile");
    let (status, update) = app
        .post(&profile, &json!({"messaging_product": "whatsapp", "about": "Open 9-5"}))
        .await;
    assert_eq!(status, 200, "{update}");
    let (_, read) = app.get(&format!("{profile}?fields=about")).await;
    assert_eq!(read["data"][0]["about"], "Open 9-5", "{read}");
    // The simulator's newer endpoints, through the gateway.
    for (method, path, body) in [
        (reqwest::Method::GET, format!("/v23.0/{PHONE_ID}/settings"), None),
        (
            reqwest::Method::POST,
            format!("/v23.0/{PHONE_ID}/request_code"),
            Some(json!({"code_method": "SMS", "language": "en_US"})),
        ),
        (
            reqwest::Method::POST,
            format!("/v23.0/{PHONE_ID}/verify_code"),
            Some(json!({"code": "123456"})),
        ),
        (
            reqwest::Method::POST,
            format!("/v23.0/{PHONE_ID}"),
            Some(json!({"pin": "123456"})),
        ),
        (reqwest::Method::GET, format!("/v23.0/{WABA}/flows"), None),
        (
            reqwest::Method::GET,
            format!("/v23.0/{PHONE_ID}/call_permissions?user_wa_id={USER}"),
            None,
        ),
        (
            reqwest::Method::POST,
            format!("/v23.0/{PHONE_ID}/block_users"),
            Some(json!({"messaging_product": "whatsapp", "block_users": [{"user": format!("+{USER}")}]})),
        ),
    ] {
        let (status, answer) = call(&app, &app.key, method.clone(), &path, body).await;
        assert_eq!(status, 200, "{method} {path}: {answer}");
    }
    // Meta's refusal comes back as Meta's error.
    let (status, wrong) = app
        .post(&format!("/v23.0/{PHONE_ID}/verify_code"), &json!({"code": "000000"}))
        .await;
    assert_eq!(status, 400, "{wrong}");
    assert_eq!(wrong["error"]["code"], 136025, "{wrong}");
    // Each call is in the audit log, with the caller and the account.
    let (_, log) = app.get("/v1/audit?action=graph.forwarded&limit=100").await;
    let targets: Vec<&str> = log["data"]
        .as_array()
        .expect("log")
        .iter()
        .filter_map(|e| e["target"].as_str())
        .collect();
    assert!(
        targets.contains(&format!("POST /{PHONE_ID}/whatsapp_business_profile").as_str()),
        "{targets:?}"
    );
    assert!(targets.contains(&format!("GET /{WABA}/flows").as_str()), "{targets:?}");
    // A reader reads but does not change.
    let reader = key_with(&app, &["read"]).await;
    let (status, _) = call(&app, &reader, reqwest::Method::GET, &profile, None).await;
    assert_eq!(status, 200);
    let (status, no) = call(
        &app,
        &reader,
        reqwest::Method::POST,
        &profile,
        Some(json!({"messaging_product": "whatsapp", "about": "x"})),
    )
    .await;
    assert_eq!(status, 403, "{no}");
    assert_eq!(no["error"]["code"], 10);
}

#[tokio::test]
async fn another_tenants_ids_do_not_exist_for_a_caller() {
    let app = spawn_app().await;
    let alpha = alpha_shop(&app).await;
    // A key of alpha's tenant: the simulator's number, WABA and templates are not its own.
    let (status, k) = app
        .post(
            "/v1/keys",
            &json!({"name": "alpha", "scopes": ["admin"], "tenant": "alpha"}),
        )
        .await;
    assert_eq!(status, 201, "{k}");
    let alpha_key = k["key"].as_str().expect("key");
    let (_, catalog) = app.get(&format!("/v23.0/{WABA}/message_templates")).await;
    let tid = catalog["data"][0]["id"].as_str().expect("a template id").to_string();
    for (method, path) in [
        (reqwest::Method::GET, format!("/v23.0/{PHONE_ID}")),
        (
            reqwest::Method::POST,
            format!("/v23.0/{PHONE_ID}/whatsapp_business_profile"),
        ),
        (reqwest::Method::GET, format!("/v23.0/{WABA}/message_templates")),
        (reqwest::Method::GET, format!("/v23.0/{tid}")),
        (reqwest::Method::POST, format!("/v23.0/{PHONE_ID}/deregister")),
    ] {
        let (status, answer) = call(&app, alpha_key, method.clone(), &path, Some(json!({}))).await;
        assert_eq!(status, 400, "{method} {path}: {answer}");
        assert_eq!(
            (
                answer["error"]["code"].as_i64(),
                answer["error"]["error_subcode"].as_i64()
            ),
            (Some(100), Some(33)),
            "{method} {path}: {answer}"
        );
    }
    // Its own account's ids are its own (forwarded with its account's token).
    let (status, own) = call(
        &app,
        alpha_key,
        reqwest::Method::GET,
        &format!("/v23.0/{}/phone_numbers", alpha.waba_id),
        None,
    )
    .await;
    assert_ne!(status, 403, "{own}");
    assert!(own.get("data").is_some() || own["error"]["code"].is_number(), "{own}");
    // Nothing was deregistered: the number still sends.
    let (status, sent) = app
        .post(
            &format!("/v23.0/{PHONE_ID}/messages"),
            &json!({"messaging_product": "whatsapp", "to": USER, "type": "template",
            "template": {"name": "hello_world", "language": {"code": "en_US"}}}),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
}
