//! The drop-in front door: Meta's paths on the gateway, with a wagate API key as the token,
//! answered in Meta's shapes (what Meta's SDKs expect), going through the queue.

use serde_json::{json, Value};

use crate::helpers::*;

async fn meta_post(app: &TestApp, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = app
        .http
        .post(format!("{}{path}", app.url))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_app_written_for_meta_sends_through_the_gateway_by_changing_its_base_url() {
    let app = spawn_app().await;
    app.open_window(USER).await;
    let path = format!("/v23.0/{PHONE_ID}/messages");

    // A send, as Meta's SDKs make it: Meta's success body with the wamid, sent once.
    let send = json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": USER,
        "type": "text", "text": {"preview_url": false, "body": "from a Meta SDK"}});
    let (status, ok) = meta_post(&app, &app.key, &path, &send).await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["messaging_product"], "whatsapp");
    assert_eq!(ok["contacts"][0]["input"], USER);
    assert_eq!(ok["contacts"][0]["wa_id"], USER);
    let wamid = ok["messages"][0]["id"].as_str().expect("wamid");
    let sent = app.sim_sent().await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["wamid"], wamid);
    let (_, list) = app.get("/v1/messages?direction=outbound").await;
    assert_eq!(list["data"][0]["wamid"], wamid, "it went through the gateway's queue");

    // A template: Meta adds message_status.
    let template = json!({"messaging_product": "whatsapp", "to": USER, "type": "template",
        "template": {"name": "hello_world", "language": {"code": "en_US"}}});
    let (status, ok) = meta_post(&app, &app.key, &path, &template).await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["messages"][0]["message_status"], "accepted");

    // Meta's refusal comes back as Meta sent it.
    let missing = json!({"messaging_product": "whatsapp", "to": USER, "type": "template",
        "template": {"name": "no_such_template", "language": {"code": "en_US"}}});
    let (status, refused) = meta_post(&app, &app.key, &path, &missing).await;
    assert!((400..500).contains(&status), "{refused}");
    assert_eq!(refused["error"]["code"], 132001, "{refused}");
    assert!(refused["error"]["fbtrace_id"].is_string(), "{refused}");

    // The gateway's own checks answer in Meta's shape, with Meta's codes.
    let (status, bad) = meta_post(&app, "wg_not_a_key_at_all", &path, &send).await;
    assert_eq!(status, 401, "{bad}");
    assert_eq!(
        (bad["error"]["code"].as_i64(), bad["error"]["type"].as_str()),
        (Some(190), Some("OAuthException"))
    );
    let (status, bad) = meta_post(&app, &app.key, "/v23.0/999999999/messages", &send).await;
    assert_eq!((status, bad["error"]["code"].as_i64()), (400, Some(100)), "{bad}");
    let mut wrong = send.clone();
    wrong["to"] = json!("not a number");
    let (status, bad) = meta_post(&app, &app.key, &path, &wrong).await;
    assert_eq!((status, bad["error"]["code"].as_i64()), (400, Some(100)), "{bad}");
    assert!(
        bad["error"]["error_data"]["details"]
            .as_str()
            .unwrap_or("")
            .contains("to"),
        "{bad}"
    );
    let (status, bad) = meta_post(&app, &app.key, &format!("/v23.0/{PHONE_ID}/messages"), &json!([1])).await;
    assert_eq!((status, bad["error"]["code"].as_i64()), (400, Some(100)), "{bad}");
    assert_eq!(app.sim_sent().await.len(), 2, "nothing else was sent");

    // Mark as read, passed on to Meta.
    let image = json!({"type": "image", "image": {"data_base64": "/9j/4AAQSkZJRgABAQ==", "mime_type": "image/jpeg"}});
    app.user_sends(USER, image).await;
    let received = eventually("the image's event", || async {
        app.events()
            .await
            .into_iter()
            .find(|e| e["type"] == "message.received" && e["payload"]["type"] == "image")
    })
    .await;
    let read = json!({"messaging_product": "whatsapp", "status": "read",
        "message_id": received["payload"]["wamid"]});
    let (status, answer) = meta_post(&app, &app.key, &path, &read).await;
    assert_eq!((status, &answer), (200, &json!({"success": true})), "{answer}");

    // GET /{media-id}: Meta's description, with a URL on the gateway that takes the same key.
    let media_id = received["payload"]["content"]["media"]["id"]
        .as_str()
        .expect("media id");
    let described = eventually("the media is stored", || async {
        let r = app
            .http
            .get(format!("{}/v23.0/{media_id}", app.url))
            .bearer_auth(&app.key)
            .send()
            .await
            .ok()?;
        let v: Value = r.json().await.ok()?;
        v["file_size"].is_number().then_some(v)
    })
    .await;
    assert_eq!(described["id"], media_id);
    assert_eq!(described["mime_type"], "image/jpeg");
    let url = described["url"].as_str().expect("url");
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
    assert_eq!(bytes.len() as u64, described["file_size"].as_u64().unwrap_or(0));
    let (status, unknown) = app.get("/v23.0/123456").await;
    assert_eq!(
        (status, unknown["error"]["code"].as_i64()),
        (400, Some(100)),
        "{unknown}"
    );

    // A path that is not Meta's is still the gateway's own 404.
    let (status, body) = app.get("/v1/nothing").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
}

/// What pywa does with an error: `int(error["code"])` and the subcode, from Meta's shape.
fn meta_shaped(body: &Value) -> Option<(i64, Option<i64>)> {
    let e = body.get("error")?;
    e["message"].as_str()?;
    e["type"].as_str()?;
    e["fbtrace_id"].as_str()?;
    Some((e["code"].as_i64()?, e["error_subcode"].as_i64()))
}

#[tokio::test]
async fn under_metas_paths_every_answer_is_in_metas_shape_even_for_what_is_not_served() {
    let app = spawn_app().await;
    let key = app.key.clone();
    // Ids that are none of the gateway's accounts' objects: Meta's "does not exist", 100/33.
    for (method, path) in [
        (reqwest::Method::GET, "/v23.0/999000111/message_templates".to_string()),
        (reqwest::Method::POST, "/v23.0/999000111/media".to_string()),
        (
            reqwest::Method::GET,
            "/v21.0/999000111/whatsapp_business_profile".to_string(),
        ),
        (reqwest::Method::DELETE, "/v23.0/1234567890".to_string()),
        (reqwest::Method::GET, "/v23.0/not-an-id".to_string()),
    ] {
        let r = app
            .http
            .request(method.clone(), format!("{}{path}", app.url))
            .bearer_auth(&key)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 400, "{method} {path}: {body}");
        assert_eq!(meta_shaped(&body), Some((100, Some(33))), "{method} {path}: {body}");
    }
    // A version with nothing after it names no object.
    let (status, body) = meta_post(&app, &key, "/v23.0/", &json!({})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(meta_shaped(&body), Some((100, None)), "{body}");
    // What Meta itself refuses under an account's id comes back in Meta's shape too.
    let (status, body) = app.get(&format!("/v23.0/{PHONE_ID}/messages")).await;
    assert!(status >= 400, "{body}");
    assert!(meta_shaped(&body).is_some(), "{body}");
    // Refused before the front door ran (a body over the limit): Meta's shape too.
    let r = app
        .http
        .post(format!("{}/v23.0/{PHONE_ID}/messages", app.url))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(vec![b' '; 3 * 1024 * 1024])
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(meta_shaped(&body), Some((100, None)), "{body}");
    // Our own paths keep our error body.
    let (status, body) = app.get("/v1/nothing/here").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found", "{body}");
}
