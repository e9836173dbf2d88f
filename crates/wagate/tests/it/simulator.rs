//! The simulator as a user's test suite meets it: Meta's shapes for users, statuses, reads and
//! errors, Meta's serialisation and retries of webhooks, and faults that answer late. Driven over
//! HTTP against `Simulator` on 127.0.0.1:0, with a receiver standing in for the gateway.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use wagate_sim::{SimConfig, Simulator};

use crate::helpers::*;

#[derive(Default)]
struct Captured {
    got: Vec<(Instant, HeaderMap, Bytes)>,
    /// Answer 500 to this many POSTs before answering 200.
    fail_first: usize,
}

/// A simulator and a receiver that records every webhook POST as received.
pub(crate) struct World {
    sim_url: String,
    http: reqwest::Client,
    captured: Arc<Mutex<Captured>>,
}

async fn record(State(c): State<Arc<Mutex<Captured>>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut c = c.lock().expect("lock");
    c.got.push((Instant::now(), headers, body));
    if c.got.len() <= c.fail_first {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

impl World {
    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub(crate) async fn start_with(adjust: impl FnOnce(&mut SimConfig)) -> Self {
        let captured = Arc::new(Mutex::new(Captured::default()));
        let receiver = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let hook_url = format!("http://{}/hook", receiver.local_addr().expect("addr"));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(record))
            .with_state(captured.clone());
        tokio::spawn(async move { axum::serve(receiver, app).await });
        let mut config = SimConfig {
            access_token: TOKEN.into(),
            app_secret: APP_SECRET.into(),
            webhook_url: Some(hook_url),
            status_delays: [Duration::from_millis(10); 3],
            ..SimConfig::default()
        };
        adjust(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let sim_url = format!("http://{}", listener.local_addr().expect("addr"));
        let sim = Simulator::new(config);
        tokio::spawn(async move { sim.serve(listener, std::future::pending()).await });
        Self {
            sim_url,
            http: reqwest::Client::new(),
            captured,
        }
    }

    pub(crate) async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.sim_url))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let text = r.text().await.expect("body");
        let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path} answered non-JSON: {text:?}"));
        (status, v)
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub(crate) async fn send_text(&self, to: &str) -> Value {
        let (status, r) = self
            .post(
                &format!("/v23.0/{PHONE_ID}/messages"),
                json!({"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "hello"}}),
            )
            .await;
        assert_eq!(status, 200, "{r}");
        r
    }

    /// Every webhook body received so far, parsed.
    pub(crate) fn bodies(&self) -> Vec<Value> {
        let c = self.captured.lock().expect("lock");
        c.got
            .iter()
            .map(|(_, _, b)| serde_json::from_slice(b).expect("webhook JSON"))
            .collect()
    }

    /// The `value` of every `messages` change received.
    pub(crate) fn values(&self) -> Vec<Value> {
        self.bodies()
            .into_iter()
            .map(|b| b["entry"][0]["changes"][0]["value"].clone())
            .collect()
    }

    /// The status webhooks received for a wamid: (status, value).
    pub(crate) fn statuses_of(&self, wamid: &str) -> Vec<(String, Value)> {
        self.values()
            .into_iter()
            .filter(|v| v["statuses"][0]["id"] == wamid)
            .map(|v| (v["statuses"][0]["status"].as_str().unwrap_or_default().to_string(), v))
            .collect()
    }

    pub(crate) async fn status_arrives(&self, wamid: &str, status: &str) -> Value {
        eventually(&format!("{status} for {wamid}"), || async {
            self.statuses_of(wamid)
                .into_iter()
                .find(|(s, _)| s == status)
                .map(|(_, v)| v)
        })
        .await
    }
}

fn is_bsuid(v: &Value, country: &str) -> bool {
    v.as_str().is_some_and(|s| {
        s.strip_prefix(country)
            .and_then(|r| r.strip_prefix('.'))
            .is_some_and(|d| d.len() == 20 && d.chars().all(|c| c.is_ascii_digit()))
    })
}

#[tokio::test]
async fn a_waba_without_the_app_subscribed_gets_no_webhooks() {
    let world = World::start_with(|c| c.subscribed_at_start = false).await;
    let (status, listed) = world.get(&format!("/v23.0/{WABA}/subscribed_apps")).await;
    assert_eq!((status, listed["data"].clone()), (200, json!([])), "{listed}");
    // A user writes and a send goes out: Meta sends neither webhook to an unsubscribed app.
    let (status, answer) = world
        .post(
            &format!("/_sim/users/{USER}/messages"),
            json!({"type": "text", "text": {"body": "anyone?"}}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    assert!(
        answer["not_subscribed"]
            .as_str()
            .is_some_and(|s| s.contains("subscribed_apps")),
        "{answer}"
    );
    world.send_text(USER).await;
    // The user's message and the send's three statuses: each one counted as not sent.
    tokio::time::timeout(Duration::from_secs(10), async {
        while world.post("/_sim/settings", json!({})).await.1["unsubscribed_drops"].as_u64() < Some(4) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("four webhooks held back");
    // The send is recorded all the same; `?count` says how many without listing them.
    assert_eq!(world.get("/_sim/sent?count").await.1, json!({"count": 1}));
    assert!(
        world.bodies().is_empty(),
        "no webhook before the app subscribes: {:?}",
        world.bodies()
    );
    // Subscribed (as Connect and `wagate doctor --fix` do): the next message arrives.
    let (status, _) = world.post(&format!("/v23.0/{WABA}/subscribed_apps"), json!({})).await;
    assert_eq!(status, 200);
    let (status, answer) = world
        .post(
            &format!("/_sim/users/{USER}/messages"),
            json!({"type": "text", "text": {"body": "now?"}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.get("not_subscribed").is_none(), "{answer}");
    assert_eq!(world.values()[0]["messages"][0]["text"]["body"], "now?");
}

#[tokio::test]
async fn users_carry_business_scoped_ids_in_messages_and_statuses() {
    let w = World::start().await;
    let (status, sent) = w.post(&format!("/_sim/users/{USER}/messages"), text("hi")).await;
    assert_eq!(status, 200, "{sent}");
    let v = &w.values()[0];
    let user_id = v["contacts"][0]["user_id"].clone();
    assert!(is_bsuid(&user_id, "US"), "{v}");
    assert_eq!(v["contacts"][0]["wa_id"], USER);
    assert_eq!(v["messages"][0]["from"], USER);
    assert_eq!(v["messages"][0]["from_user_id"], user_id);
    assert_eq!(sent["user_id"], user_id);

    // Statuses other than `failed` name the recipient by both ids.
    let wamid = w.send_text(USER).await["messages"][0]["id"]
        .as_str()
        .expect("wamid")
        .to_string();
    for s in ["sent", "delivered", "read"] {
        let v = w.status_arrives(&wamid, s).await;
        assert_eq!(v["contacts"][0]["user_id"], user_id, "{s}: {v}");
        assert_eq!(v["contacts"][0]["wa_id"], USER, "{s}: {v}");
        assert_eq!(v["statuses"][0]["recipient_user_id"], user_id, "{s}: {v}");
        assert_eq!(v["statuses"][0]["recipient_id"], USER, "{s}: {v}");
    }
    // Outside the window: `failed`, without contacts.
    let wamid = w.send_text("4915112345678").await["messages"][0]["id"]
        .as_str()
        .expect("wamid")
        .to_string();
    let failed = w.status_arrives(&wamid, "failed").await;
    assert!(failed.get("contacts").is_none(), "{failed}");
    assert_eq!(failed["statuses"][0]["errors"][0]["code"], 131047);

    // The same user gets the same id from another simulator of the same business.
    let other = World::start().await;
    other.post(&format!("/_sim/users/{USER}/messages"), text("again")).await;
    assert_eq!(other.values()[0]["contacts"][0]["user_id"], user_id);

    // A user with a username and no phone number, from Brazil.
    let (status, user) = w
        .post(
            "/_sim/users",
            json!({"username": "sheena.n", "name": "Sheena", "country": "BR"}),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    assert!(is_bsuid(&user["user_id"], "BR"), "{user}");
    let (status, r) = w.post("/_sim/users/@sheena.n/messages", text("oi")).await;
    assert_eq!(status, 200, "{r}");
    let v = w.values().pop().expect("webhook");
    assert_eq!(v["contacts"][0]["profile"]["username"], "sheena.n", "{v}");
    assert_eq!(v["contacts"][0]["profile"]["name"], "Sheena", "{v}");
    assert!(v["contacts"][0].get("wa_id").is_none(), "{v}");
    assert!(v["messages"][0].get("from").is_none(), "{v}");
    assert_eq!(v["messages"][0]["from_user_id"], user["user_id"]);
    // Sending to that user by user id, as Meta allows.
    let r = w.send_text(user["user_id"].as_str().expect("id")).await;
    assert_eq!(
        r["contacts"][0],
        json!({"input": user["user_id"], "user_id": user["user_id"]})
    );
    let read = w
        .status_arrives(r["messages"][0]["id"].as_str().expect("wamid"), "read")
        .await;
    assert_eq!(read["statuses"][0]["recipient_user_id"], user["user_id"]);
    assert!(read["statuses"][0].get("recipient_id").is_none(), "{read}");
    // Taken names and unknown users are refused clearly.
    let (status, r) = w.post("/_sim/users", json!({"username": "sheena.n"})).await;
    assert_eq!(status, 409, "{r}");
    let (status, r) = w.post("/_sim/users", json!({"name": "nobody"})).await;
    assert_eq!(status, 400, "{r}");
    let (status, r) = w.post("/_sim/users/@ghost/messages", text("boo")).await;
    assert_eq!(status, 404, "{r}");
    assert!(
        r["error"].as_str().is_some_and(|e| e.contains("POST /_sim/users")),
        "{r}"
    );

    // Parent ids, once the business turns them on.
    let (status, _) = w.post("/_sim/settings", json!({"parent_user_ids": true})).await;
    assert_eq!(status, 200);
    w.post(&format!("/_sim/users/{USER}/messages"), text("hi")).await;
    let v = w.values().pop().expect("webhook");
    let parent = v["contacts"][0]["parent_user_id"].as_str().expect("parent id");
    assert!(parent.starts_with("US.ENT."), "{v}");
    assert_eq!(v["messages"][0]["from_parent_user_id"], parent);
}

#[tokio::test]
async fn webhooks_are_escaped_and_signed_as_meta_does() {
    let w = World::start().await;
    let (status, _) = w
        .post(&format!("/_sim/users/{USER}/messages"), text("héllo 👋 ~"))
        .await;
    assert_eq!(status, 200);
    let (headers, raw) = {
        let c = w.captured.lock().expect("lock");
        let (_, h, b) = &c.got[0];
        (h.clone(), b.clone())
    };
    let text = std::str::from_utf8(&raw).expect("utf8");
    assert!(text.is_ascii(), "{text}");
    assert!(text.contains(r#""body":"h\u00e9llo \ud83d\udc4b ~""#), "{text}");
    let signature = headers["x-hub-signature-256"].to_str().expect("header");
    assert_eq!(signature, wagate_core::signature::sign_hub(APP_SECRET, &raw));
    let parsed: Value = serde_json::from_slice(&raw).expect("JSON");
    assert_eq!(
        parsed["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"],
        "héllo 👋 ~"
    );
}

#[tokio::test]
async fn the_gateway_verifies_escaped_webhooks_and_keeps_the_text() {
    let app = spawn_app().await;
    let r = app.user_sends(USER, text("ação 🚀")).await;
    assert_eq!(r["webhook_status"], 200, "{r}");
    let wamid = r["wamid"].as_str().expect("wamid").to_string();
    let event = eventually("the message event", || async {
        app.events()
            .await
            .into_iter()
            .find(|e| e["type"] == "message.received" && e["payload"]["wamid"] == wamid)
    })
    .await;
    assert_eq!(event["payload"]["text"], "ação 🚀", "{event}");
    // The simulator's newer shapes (user ids, contacts in statuses, conversation) are all
    // understood: nothing falls through to webhook.unknown or webhook.invalid.
    let (status, m) = app
        .post(
            "/v1/messages",
            &json!({"to": USER, "type": "text", "text": {"body": "got it"}}),
        )
        .await;
    assert_eq!(status, 202, "{m}");
    app.message_reaches(m["id"].as_str().expect("id"), "read").await;
    app.user_sends(USER, json!({"type": "image"})).await;
    // A user known only by username (no phone number) reaches the gateway too.
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
    let r = app.user_sends("@zoe", text("hello without a number")).await;
    assert_eq!(r["webhook_status"], 200, "{r}");
    let events = app.settled_events().await;
    let from_zoe = events
        .iter()
        .find(|e| e["payload"]["text"] == "hello without a number")
        .expect("the username-only user's message");
    assert_eq!(from_zoe["payload"]["contact"]["user_id"], user["user_id"], "{from_zoe}");
    let odd: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"].as_str().is_some_and(|t| t.starts_with("webhook.")))
        .collect();
    assert!(odd.is_empty(), "{odd:#?}");
}

#[tokio::test]
async fn reactions_get_only_sent() {
    let w = World::start().await;
    let (_, r) = w.post(&format!("/_sim/users/{USER}/messages"), text("hi")).await;
    let inbound = r["wamid"].as_str().expect("wamid");
    let (status, r) = w
        .post(
            &format!("/v23.0/{PHONE_ID}/messages"),
            json!({"messaging_product": "whatsapp", "to": USER, "type": "reaction", "reaction": {"message_id": inbound, "emoji": "👍"}}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    let reaction = r["messages"][0]["id"].as_str().expect("wamid").to_string();
    w.status_arrives(&reaction, "sent").await;
    // A text sent after it reaches `read`; by then the reaction's later statuses would be due.
    let later = w.send_text(USER).await["messages"][0]["id"]
        .as_str()
        .expect("wamid")
        .to_string();
    w.status_arrives(&later, "read").await;
    let seen: Vec<String> = w.statuses_of(&reaction).into_iter().map(|(s, _)| s).collect();
    assert_eq!(seen, ["sent"]);
}

#[tokio::test]
async fn templates_answer_fields_filters_and_summary_and_read_by_id() {
    let w = World::start().await;
    let (status, r) = w
        .get(&format!(
            "/v23.0/{WABA}/message_templates?fields=name,status&status=APPROVED&summary=total_count,message_template_count,message_template_limit,are_translations_complete"
        ))
        .await;
    assert_eq!(status, 200, "{r}");
    let data = r["data"].as_array().expect("data");
    assert_eq!(data.len(), 3, "{r}");
    for t in data {
        let mut keys: Vec<&String> = t.as_object().expect("object").keys().collect();
        keys.sort();
        assert_eq!(keys, ["id", "name", "status"], "{t}");
    }
    assert_eq!(
        r["summary"],
        json!({"total_count": 3, "message_template_count": 3, "message_template_limit": 250, "are_translations_complete": true})
    );
    let (_, none) = w.get(&format!("/v23.0/{WABA}/message_templates?status=PAUSED")).await;
    assert_eq!(none["data"], json!([]));
    assert!(none.get("summary").is_none(), "summary only when asked: {none}");
    // One template by id, with its quality score when asked.
    let id = data[0]["id"].as_str().expect("id");
    let (status, t) = w.get(&format!("/v23.0/{id}?fields=name,status,quality_score")).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["quality_score"]["score"], "GREEN", "{t}");
    assert!(t.get("components").is_none(), "{t}");
    let (_, full) = w.get(&format!("/v23.0/{id}")).await;
    assert!(full["components"].is_array(), "{full}");
}

#[tokio::test]
async fn phone_numbers_and_the_business_profile_can_be_read_and_updated() {
    let w = World::start().await;
    let (status, p) = w
        .get(&format!(
            "/v23.0/{PHONE_ID}?fields=display_phone_number,verified_name,quality_rating,throughput,name_status,code_verification_status"
        ))
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["id"], PHONE_ID);
    assert_eq!(p["throughput"]["level"], "STANDARD");
    assert_eq!(p["name_status"], "APPROVED");
    assert_eq!(p["code_verification_status"], "VERIFIED");
    assert!(p.get("platform_type").is_none(), "only the fields asked for: {p}");
    let (_, default) = w.get(&format!("/v23.0/{PHONE_ID}")).await;
    let mut keys: Vec<&String> = default.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(keys, ["display_phone_number", "id", "quality_rating", "verified_name"]);
    let (status, list) = w.get(&format!("/v23.0/{WABA}/phone_numbers")).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["data"][0]["id"], PHONE_ID);
    assert_eq!(list["data"][0]["platform_type"], "CLOUD_API");

    let path = format!("/v23.0/{PHONE_ID}/whatsapp_business_profile");
    let (status, r) = w
        .post(
            &path,
            json!({"messaging_product": "whatsapp", "about": "Open 9-5", "vertical": "RETAIL", "websites": ["https://a.example/"]}),
        )
        .await;
    assert_eq!((status, &r), (200, &json!({"success": true})));
    let (_, profile) = w.get(&format!("{path}?fields=about,vertical,websites")).await;
    assert_eq!(
        profile["data"][0],
        json!({"about": "Open 9-5", "vertical": "RETAIL", "websites": ["https://a.example/"], "messaging_product": "whatsapp"})
    );
    let (status, err) = w
        .post(
            &path,
            json!({"messaging_product": "whatsapp", "vertical": "SPACESHIPS"}),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["code"], 100);
    assert!(
        err["error"]["error_data"]["details"]
            .as_str()
            .is_some_and(|d| d.contains("vertical")),
        "{err}"
    );
    let (_, unchanged) = w.get(&format!("{path}?fields=vertical")).await;
    assert_eq!(unchanged["data"][0]["vertical"], "RETAIL");
}

#[tokio::test]
async fn unknown_paths_and_objects_answer_graph_json_errors() {
    let w = World::start().await;
    let (status, e) = w.get("/v23.0/999999999").await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["code"], 100);
    assert_eq!(e["error"]["error_subcode"], 33);
    assert_eq!(e["error"]["type"], "GraphMethodException");
    assert!(
        e["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Unsupported get request. Object with ID '999999999' does not exist")),
        "{e}"
    );
    let (status, e) = w.post("/v23.0/999999999/messages", json!({})).await;
    assert_eq!((status, e["error"]["error_subcode"].clone()), (400, json!(33)), "{e}");
    let (status, e) = w.post("/v23.0/999999999", json!({})).await;
    assert_eq!((status, e["error"]["code"].clone()), (400, json!(100)), "{e}");
    let (status, e) = w.get(&format!("/v23.0/{PHONE_ID}/no_such_edge")).await;
    assert_eq!((status, e["error"]["code"].clone()), (400, json!(100)), "{e}");
    assert_eq!(
        e["error"]["message"],
        "(#100) Tried accessing nonexisting field (no_such_edge) on node type (WhatsAppBusinessPhoneNumber)"
    );
    let (status, e) = w
        .call(reqwest::Method::PUT, &format!("/v23.0/{PHONE_ID}/messages"), None)
        .await;
    assert_eq!((status, e["error"]["error_subcode"].clone()), (400, json!(33)), "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Unsupported put request")),
        "{e}"
    );
    let (status, e) = w.get("/v23.0/me/what/ever").await;
    assert_eq!((status, e["error"]["code"].clone()), (400, json!(2500)), "{e}");
    let (status, e) = w.get("/_sim/nothing-here").await;
    assert_eq!(status, 404, "{e}");
    assert!(e["error"].is_string());
}

#[tokio::test]
async fn parameters_in_the_query_string_and_json_encoded_values_are_accepted() {
    let w = World::start().await;
    w.post(&format!("/_sim/users/{USER}/messages"), text("hi")).await;
    // No Authorization header, no messaging_product in the body: both in the query.
    let r = w
        .http
        .post(format!(
            "{}/v23.0/{PHONE_ID}/messages?messaging_product=whatsapp&access_token={TOKEN}",
            w.sim_url
        ))
        .json(&json!({"to": USER, "type": "text", "text": {"body": "from the query"}}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    // `contacts` as a JSON-encoded string, as whatsapp-api-js sends it.
    let card = json!([{"name": {"formatted_name": "Ana Silva", "first_name": "Ana"}, "phones": [{"phone": "+5511999999999", "type": "CELL"}]}]);
    let (status, r) = w
        .post(
            &format!("/v23.0/{PHONE_ID}/messages"),
            json!({"messaging_product": "whatsapp", "to": USER, "type": "contacts", "contacts": card.to_string()}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    let (_, sent) = w.get("/_sim/sent").await;
    let last = sent["data"].as_array().and_then(|d| d.last()).expect("sent").clone();
    assert_eq!(last["body"]["contacts"], card, "decoded, as Graph does");
    // Media upload with messaging_product in the query (whatsapp-api-js' documented way).
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"\x89PNG\r\n\x1a\n".to_vec())
            .file_name("a.png")
            .mime_str("image/png")
            .expect("mime"),
    );
    let r = w
        .http
        .post(format!(
            "{}/v23.0/{PHONE_ID}/media?messaging_product=whatsapp",
            w.sim_url
        ))
        .bearer_auth(TOKEN)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

#[tokio::test]
async fn mark_as_read_needs_a_message_the_number_received() {
    let w = World::start().await;
    let (_, r) = w.post(&format!("/_sim/users/{USER}/messages"), text("hi")).await;
    let path = format!("/v23.0/{PHONE_ID}/messages");
    let (status, ok) = w
        .post(
            &path,
            json!({"messaging_product": "whatsapp", "status": "read", "message_id": r["wamid"]}),
        )
        .await;
    assert_eq!((status, ok), (200, json!({"success": true})));
    let (status, e) = w
        .post(
            &path,
            json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.nope"}),
        )
        .await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["code"], 131009);
}

#[tokio::test]
async fn inbound_media_has_id_type_hash_and_a_url_and_replies_name_the_business() {
    let w = World::start().await;
    for (kind, mime, magic) in [
        ("image", "image/jpeg", &b"\xff\xd8\xff"[..]),
        ("video", "video/mp4", &b"\x00\x00\x00"[..]),
        ("audio", "audio/ogg; codecs=opus", &b"OggS"[..]),
        ("document", "application/pdf", &b"%PDF"[..]),
        ("sticker", "image/webp", &b"RIFF"[..]),
    ] {
        let (status, r) = w
            .post(&format!("/_sim/users/{USER}/messages"), json!({"type": kind}))
            .await;
        assert_eq!(status, 200, "{r}");
        let v = w.values().pop().expect("webhook");
        let media = &v["messages"][0][kind];
        assert_eq!(media["mime_type"], mime, "{v}");
        let url = media["url"].as_str().expect("url");
        let bytes = w
            .http
            .get(url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("download")
            .bytes()
            .await
            .expect("bytes");
        assert!(bytes.starts_with(magic), "{kind}: a real file of the type");
        assert_eq!(media["sha256"], wagate_core::signature::sha256_base64(&bytes), "{kind}");
        // The id works with GET /{media-id} as well.
        let (status, m) = w.get(&format!("/v23.0/{}", media["id"].as_str().expect("id"))).await;
        assert_eq!(status, 200, "{m}");
        // Without the token the URL gives nothing, as Meta's.
        let denied = w.http.get(url).send().await.expect("download");
        assert_eq!(denied.status(), 401);
    }
    let (_, r) = w
        .post(
            &format!("/_sim/users/{USER}/messages"),
            json!({"type": "text", "text": {"body": "yes"}, "context": {"id": "wamid.business"}}),
        )
        .await;
    assert!(r["wamid"].is_string());
    let v = w.values().pop().expect("webhook");
    assert_eq!(
        v["messages"][0]["context"],
        json!({"from": "15550783881", "id": "wamid.business"})
    );
}

#[tokio::test]
async fn statuses_carry_conversation_up_to_v23_only() {
    let w = World::start().await;
    w.post(&format!("/_sim/users/{USER}/messages"), text("hi")).await;
    let wamid = w.send_text(USER).await["messages"][0]["id"]
        .as_str()
        .expect("wamid")
        .to_string();
    let sent = w.status_arrives(&wamid, "sent").await;
    let c = &sent["statuses"][0]["conversation"];
    assert_eq!(c["origin"]["type"], "service", "{sent}");
    assert_eq!(c["id"].as_str().map(str::len), Some(32), "{sent}");
    assert!(c["expiration_timestamp"].is_string(), "{sent}");
    let delivered = w.status_arrives(&wamid, "delivered").await;
    assert_eq!(delivered["statuses"][0]["conversation"]["id"], c["id"]);
    assert!(delivered["statuses"][0]["conversation"]
        .get("expiration_timestamp")
        .is_none());

    let (status, _) = w.post("/_sim/settings", json!({"webhook_version": "v24.0"})).await;
    assert_eq!(status, 200);
    let wamid = w.send_text(USER).await["messages"][0]["id"]
        .as_str()
        .expect("wamid")
        .to_string();
    let sent = w.status_arrives(&wamid, "sent").await;
    assert!(sent["statuses"][0].get("conversation").is_none(), "{sent}");
    assert!(sent["statuses"][0]["pricing"].is_object(), "{sent}");
    let (status, e) = w.post("/_sim/settings", json!({"webhook_version": "latest"})).await;
    assert_eq!(status, 400, "{e}");
}

#[tokio::test]
async fn faults_use_metas_titles_and_can_answer_late() {
    let w = World::start().await;
    w.post(&format!("/_sim/users/{USER}/messages"), text("hi")).await;
    let (status, _) = w.post("/_sim/faults", json!({"code": 368, "http_status": 403})).await;
    assert_eq!(status, 201);
    let path = format!("/v23.0/{PHONE_ID}/messages");
    let body = json!({"messaging_product": "whatsapp", "to": USER, "type": "text", "text": {"body": "x"}});
    let (status, e) = w.post(&path, body.clone()).await;
    assert_eq!(status, 403, "{e}");
    assert_eq!(
        e["error"]["message"],
        "(#368) Temporarily blocked for policies violations"
    );

    // Fails after 300 ms.
    w.post(
        "/_sim/faults",
        json!({"code": 131000, "http_status": 500, "delay_ms": 300}),
    )
    .await;
    let started = Instant::now();
    let (status, e) = w.post(&path, body.clone()).await;
    assert_eq!((status, e["error"]["code"].clone()), (500, json!(131000)));
    assert!(started.elapsed() >= Duration::from_millis(300));

    // Accepted at once (recorded, statuses follow) but answered after 400 ms.
    w.post("/_sim/faults", json!({"delay_ms": 400})).await;
    let (_, before) = w.get("/_sim/sent").await;
    let count = before["data"].as_array().map_or(0, Vec::len);
    let started = Instant::now();
    let (status, r) = w.post(&path, body).await;
    assert_eq!(status, 200, "{r}");
    assert!(started.elapsed() >= Duration::from_millis(400));
    let (_, after) = w.get("/_sim/sent").await;
    assert_eq!(after["data"].as_array().map_or(0, Vec::len), count + 1);
    w.status_arrives(r["messages"][0]["id"].as_str().expect("wamid"), "read")
        .await;
}

#[tokio::test]
async fn an_unacknowledged_webhook_is_retried_on_metas_growing_schedule() {
    // A receiver that is down for its first 6 POSTs (the old simulator gave up after 5).
    let w = World::start_with(|c| c.webhook_retry_scale = 0.0002).await;
    w.captured.lock().expect("lock").fail_first = 6;
    let (status, r) = w
        .post(&format!("/_sim/users/{USER}/messages"), text("are you there?"))
        .await;
    assert_eq!(status, 202, "not acknowledged yet: {r}");
    assert_eq!(r["retrying"], true);
    eventually("the 7th try succeeds", || async {
        (w.captured.lock().expect("lock").got.len() >= 7).then_some(())
    })
    .await;
    let c = w.captured.lock().expect("lock");
    let bodies: Vec<&Bytes> = c.got.iter().map(|(_, _, b)| b).collect();
    assert!(
        bodies.windows(2).all(|p| p[0] == p[1]),
        "the same signed bytes each time"
    );
    // After the immediate retry, each wait is longer than the one before.
    let gaps: Vec<Duration> = c.got.windows(2).map(|p| p[1].0 - p[0].0).collect();
    assert!(gaps[1..].windows(2).all(|g| g[1] > g[0]), "{gaps:?}");
    assert_eq!(c.got.len(), 7, "nothing after the acknowledgement");
}

/// The stand-in OpenID Connect issuer: its tokens verify against its published keys with an
/// independent JWT library, carry the claims asked for, and it rotates keys as issuers do.
#[tokio::test]
async fn the_simulators_issuer_signs_tokens_that_verify_against_its_keys() {
    let app = spawn_app().await;
    let http = &app.http;
    let sim = &app.sim_url;
    let get = |path: String| async move {
        let r = http.get(format!("{sim}{path}")).send().await.expect("get");
        r.json::<Value>().await.expect("json")
    };
    let post = |path: &'static str, body: Value| async move {
        let r = http
            .post(format!("{sim}{path}"))
            .json(&body)
            .send()
            .await
            .expect("post");
        (r.status().as_u16(), r.json::<Value>().await.expect("json"))
    };
    let discovery = get("/_sim/oidc/.well-known/openid-configuration".into()).await;
    assert_eq!(discovery["issuer"], format!("{sim}/_sim/oidc"));
    let jwks_uri = discovery["jwks_uri"].as_str().expect("jwks_uri").to_string();

    let (status, issued) = post("/_sim/oidc/token", json!({"sub": "ana", "wagate_tenant": "acme"})).await;
    assert_eq!(status, 200, "{issued}");
    let token = issued["id_token"].as_str().expect("id_token");
    let verify = |token: &str, jwks: &Value| {
        let header = jsonwebtoken::decode_header(token).expect("header");
        let jwk = jwks["keys"]
            .as_array()
            .and_then(|keys| keys.iter().find(|k| k["kid"].as_str() == header.kid.as_deref()))
            .cloned()
            .expect("the token's key is published");
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk).expect("jwk");
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).expect("key");
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        v.set_audience(&["wagate"]);
        v.set_issuer(&[format!("{sim}/_sim/oidc")]);
        jsonwebtoken::decode::<Value>(token, &key, &v).map(|d| d.claims)
    };
    let jwks = get(jwks_uri.trim_start_matches(sim.as_str()).to_string()).await;
    let claims = verify(token, &jwks).expect("verifies");
    assert_eq!(
        (claims["sub"].as_str(), claims["wagate_tenant"].as_str()),
        (Some("ana"), Some("acme"))
    );

    // Rotation: new tokens are signed with a new key; the old key stays published.
    let (_, rotated) = post("/_sim/oidc/rotate", json!({})).await;
    let (_, second) = post("/_sim/oidc/token", json!({})).await;
    let second = second["id_token"].as_str().expect("id_token").to_string();
    let header = jsonwebtoken::decode_header(&second).expect("header");
    assert_eq!(header.kid.as_deref(), rotated["kid"].as_str());
    let jwks = get("/_sim/oidc/jwks.json".into()).await;
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2));
    verify(token, &jwks).expect("the old token still verifies");
    verify(&second, &jwks).expect("the new one too");

    // An expired token is issued as asked (and refused by a verifier); the issuer's own claims
    // cannot be set.
    let (_, old) = post("/_sim/oidc/token", json!({"expires_in": -600})).await;
    let err = verify(old["id_token"].as_str().expect("id_token"), &jwks).expect_err("expired");
    assert!(
        matches!(err.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature),
        "{err:?}"
    );
    for body in [
        json!({"iss": "https://evil.example.com"}),
        json!({"expires_in": "soon"}),
    ] {
        let (status, e) = post("/_sim/oidc/token", body.clone()).await;
        assert_eq!(status, 400, "{body}: {e}");
        assert!(e["error"].is_string(), "{e}");
    }
}

#[tokio::test]
async fn a_numbers_management_endpoints_answer_as_metas_do() {
    let w = World::start().await;
    let (_, number) = w.get(&format!("/v23.0/{PHONE_ID}?fields=display_phone_number")).await;
    assert_eq!(
        number["display_phone_number"], "+1 555-078-3881",
        "Graph formats it; webhooks carry digits"
    );
    // Settings: read, changed, read back.
    let settings = format!("/v23.0/{PHONE_ID}/settings");
    let (status, s) = w.get(&settings).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["calling"]["status"], "disabled");
    assert_eq!(s["storage_configuration"]["status"], "default");
    let (status, r) = w
        .post(
            &settings,
            json!({"calling": {"status": "enabled", "call_icon_visibility": "DEFAULT"}}),
        )
        .await;
    assert_eq!((status, &r), (200, &json!({"success": true})));
    let (_, s) = w.get(&settings).await;
    assert_eq!(s["calling"]["status"], "enabled");
    let (status, r) = w.post(&settings, json!({"calling": {"status": "maybe"}})).await;
    assert_eq!((status, r["error"]["code"].as_i64()), (400, Some(100)), "{r}");
    // Verification: a code only after one was requested, and only the right one.
    let (status, r) = w
        .post(&format!("/v23.0/{PHONE_ID}/verify_code"), json!({"code": "123456"}))
        .await;
    assert_eq!((status, r["error"]["code"].as_i64()), (400, Some(136025)), "{r}");
    let (status, r) = w
        .post(
            &format!("/v23.0/{PHONE_ID}/request_code"),
            json!({"code_method": "PIGEON", "language": "en_US"}),
        )
        .await;
    assert_eq!(status, 400, "{r}");
    let (status, _) = w
        .post(
            &format!("/v23.0/{PHONE_ID}/request_code"),
            json!({"code_method": "SMS", "language": "en_US"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, r) = w
        .post(&format!("/v23.0/{PHONE_ID}/verify_code"), json!({"code": "123456"}))
        .await;
    assert_eq!((status, &r), (200, &json!({"success": true, "id": PHONE_ID})));
    // The two-step PIN.
    let (status, _) = w.post(&format!("/v23.0/{PHONE_ID}"), json!({"pin": "654321"})).await;
    assert_eq!(status, 200);
    let (status, r) = w.post(&format!("/v23.0/{PHONE_ID}"), json!({"pin": "12"})).await;
    assert_eq!((status, r["error"]["code"].as_i64()), (400, Some(100)), "{r}");
    // Deregistered, a number does not send until registered again.
    let (status, _) = w.post(&format!("/v23.0/{PHONE_ID}/deregister"), json!({})).await;
    assert_eq!(status, 200);
    let send = json!({"messaging_product": "whatsapp", "to": USER, "type": "template",
        "template": {"name": "hello_world", "language": {"code": "en_US"}}});
    let (status, r) = w.post(&format!("/v23.0/{PHONE_ID}/messages"), send.clone()).await;
    assert_eq!((status, r["error"]["code"].as_i64()), (400, Some(133010)), "{r}");
    let (status, _) = w
        .post(
            &format!("/v23.0/{PHONE_ID}/register"),
            json!({"messaging_product": "whatsapp", "pin": "654321"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, r) = w.post(&format!("/v23.0/{PHONE_ID}/messages"), send).await;
    assert_eq!(status, 200, "{r}");
    // Blocked users cannot write; unblocked they can.
    let block = json!({"messaging_product": "whatsapp", "block_users": [{"user": "+16505550000"}]});
    let (status, r) = w.post(&format!("/v23.0/{PHONE_ID}/block_users"), block.clone()).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["block_users"]["added_users"][0]["wa_id"], "16505550000");
    let (_, list) = w.get(&format!("/v23.0/{PHONE_ID}/block_users")).await;
    assert_eq!(list["data"][0]["wa_id"], "16505550000");
    let (status, _) = w
        .post(
            "/_sim/users/16505550000/messages",
            json!({"type": "text", "text": {"body": "hi"}}),
        )
        .await;
    assert_eq!(status, 409);
    let (status, r) = w
        .call(
            reqwest::Method::DELETE,
            &format!("/v23.0/{PHONE_ID}/block_users"),
            Some(block),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["block_users"]["removed_users"][0]["wa_id"], "16505550000");
    // QR codes: made, read, changed, deleted.
    let qrdls = format!("/v23.0/{PHONE_ID}/message_qrdls");
    let (status, qr) = w
        .post(&qrdls, json!({"prefilled_message": "Hi!", "generate_qr_image": "svg"}))
        .await;
    assert_eq!(status, 200, "{qr}");
    let code = qr["code"].as_str().expect("code");
    assert!(qr["qr_image_url"].as_str().is_some_and(|u| u.ends_with(".svg")), "{qr}");
    assert_eq!(qr["deep_link_url"], format!("https://wa.me/message/{code}"));
    let (_, one) = w.get(&format!("{qrdls}/{code}")).await;
    assert_eq!(one["data"][0]["prefilled_message"], "Hi!");
    let (status, _) = w
        .post(&format!("{qrdls}/{code}"), json!({"prefilled_message": "Hello"}))
        .await;
    assert_eq!(status, 200);
    let (status, _) = w.call(reqwest::Method::DELETE, &format!("{qrdls}/{code}"), None).await;
    assert_eq!(status, 200);
    let (status, r) = w.get(&format!("{qrdls}/{code}")).await;
    assert_eq!((status, r["error"]["error_subcode"].as_i64()), (400, Some(33)), "{r}");
    // Commerce settings and call permissions.
    let (status, _) = w
        .post(
            &format!("/v23.0/{PHONE_ID}/whatsapp_commerce_settings?is_cart_enabled=false"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, c) = w.get(&format!("/v23.0/{PHONE_ID}/whatsapp_commerce_settings")).await;
    assert_eq!(
        (
            c["data"][0]["is_cart_enabled"].as_bool(),
            c["data"][0]["is_catalog_visible"].as_bool()
        ),
        (Some(false), Some(true))
    );
    let (status, p) = w
        .get(&format!("/v23.0/{PHONE_ID}/call_permissions?user_wa_id={USER}"))
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["permission"]["status"], "denied");
    let (status, _) = w.get(&format!("/v23.0/{PHONE_ID}/call_permissions")).await;
    assert_eq!(status, 400);
    // The WABA's flows, with the fields asked for.
    let (status, flows) = w
        .get(&format!(
            "/v23.0/{WABA}/flows?fields=id,name,status,preview.invalidate(true)"
        ))
        .await;
    assert_eq!(status, 200, "{flows}");
    assert!(flows["data"].as_array().is_some_and(|f| f.len() == 3), "{flows}");
    assert!(flows["data"][0]["preview"]["preview_url"].is_string(), "{flows}");
    assert!(
        flows["data"][0].get("json_version").is_none(),
        "only the fields asked for: {flows}"
    );
}

#[tokio::test]
async fn carousels_are_taken_and_messages_naming_missing_objects_refused() {
    let w = World::start().await;
    w.post(
        &format!("/_sim/users/{USER}/messages"),
        json!({"type": "text", "text": {"body": "hi"}}),
    )
    .await;
    let send = |interactive: Value| json!({"messaging_product": "whatsapp", "to": USER, "type": "interactive", "interactive": interactive});
    let path = format!("/v23.0/{PHONE_ID}/messages");
    for name in [
        "send_interactive_carousel_request.json",
        "send_interactive_product_carousel_request.json",
    ] {
        let body: Value = serde_json::from_slice(&fixture(name)).expect("fixture");
        let (status, r) = w.post(&path, body).await;
        assert_eq!(status, 200, "{name}: {r}");
    }
    // Over Meta's limits: Meta's error, naming the field.
    let one_card = json!({"type": "carousel", "body": {"text": "x"}, "action": {"cards": [
        {"card_index": 0, "type": "cta_url", "header": {"type": "image", "image": {"link": "https://x.io/a.jpg"}},
         "action": {"name": "cta_url", "parameters": {"display_text": "Go", "url": "https://x.io"}}}]}});
    let (status, r) = w.post(&path, send(one_card)).await;
    assert_eq!((status, r["error"]["code"].as_i64()), (400, Some(100)), "{r}");
    assert!(
        r["error"]["error_data"]["details"]
            .as_str()
            .is_some_and(|d| d.contains("cards")),
        "{r}"
    );
    // A flow and a catalog the business does not have.
    let flow = |id: &str| {
        json!({"type": "flow", "body": {"text": "Book"}, "action": {"name": "flow", "parameters": {
        "flow_message_version": "3", "flow_cta": "Book", "flow_id": id}}})
    };
    let (status, r) = w.post(&path, send(flow("999999999"))).await;
    assert_eq!((status, r["error"]["code"].as_i64()), (400, Some(131009)), "{r}");
    let (status, r) = w.post(&path, send(flow("1234567890123456"))).await;
    assert_eq!(status, 200, "{r}");
    let product = json!({"type": "product", "body": {"text": "Look"}, "action": {"catalog_id": "42", "product_retailer_id": "SKU-1"}});
    let (status, r) = w.post(&path, send(product)).await;
    assert_eq!((status, r["error"]["code"].as_i64()), (400, Some(131009)), "{r}");
}
