//! The template catalog: sync (with paging), create → approved by webhook, delete, and sends
//! checked against it before they are queued.

use serde_json::{json, Value};

use crate::helpers::*;

async fn sync(app: &TestApp) -> Value {
    let (status, r) = app.post("/v1/templates/sync", &json!({})).await;
    assert_eq!(status, 200, "{r}");
    r
}

#[tokio::test]
async fn the_catalog_syncs_from_meta_following_pages() {
    let app = spawn_app().await;
    let (_, before) = app.get("/v1/templates").await;
    assert!(before["synced_at"].is_null());
    app.http
        .post(format!("{}/_sim/settings", app.sim_url))
        .json(&json!({"template_page_size": 2}))
        .send()
        .await
        .expect("settings");
    let r = sync(&app).await;
    assert_eq!(r["synced"], 3, "three seeded templates over two pages: {r}");
    let (_, list) = app.get("/v1/templates").await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, vec!["hello_world", "order_shipped_image", "po_notification"]);
    assert!(list["synced_at"].is_string());
    assert_eq!(list["data"][2]["language"], "es");
    assert_eq!(list["data"][2]["status"], "APPROVED");
}

#[tokio::test]
async fn a_created_template_becomes_approved_by_webhook_and_can_be_sent_then_deleted() {
    let app = spawn_app().await;
    sync(&app).await;
    let create = json!({"name": "order_update", "language": "en_US", "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Your order {{1}} is {{2}}.", "example": {"body_text": [["#1", "packed"]]}}]});
    let (status, t) = app.post("/v1/templates", &create).await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(t["status"], "PENDING");
    // Not sendable while pending.
    let send = json!({"to": USER, "type": "template", "template": {"name": "order_update", "language": {"code": "en_US"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "#1"}, {"type": "text", "text": "packed"}]}]}});
    let (status, err) = app.post("/v1/messages", &send).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some("template_not_approved")),
        "{err}"
    );
    eventually("approved by webhook", || async {
        let (_, list) = app.get("/v1/templates").await;
        list["data"]
            .as_array()?
            .iter()
            .find(|t| t["name"] == "order_update" && t["status"] == "APPROVED")
            .cloned()
    })
    .await;
    let events = app.events().await;
    assert!(events
        .iter()
        .any(|e| e["type"] == "template.status_updated" && e["payload"]["status"] == "APPROVED"));
    let (status, m) = app.post("/v1/messages?wait=accepted", &send).await;
    assert_eq!((status, m["status"].as_str()), (202, Some("accepted")), "{m}");

    // A rejected one ends REJECTED, with Meta's reason (from the webhook, then from a sync).
    let (_, _) = app.post("/v1/templates", &json!({"name": "reject_me", "language": "en_US", "category": "MARKETING", "components": [{"type": "BODY", "text": "Buy!"}]})).await;
    let rejected = eventually("rejected by webhook", || async {
        let (_, list) = app.get("/v1/templates").await;
        list["data"]
            .as_array()?
            .iter()
            .find(|t| t["name"] == "reject_me" && t["status"] == "REJECTED")
            .cloned()
    })
    .await;
    assert_eq!(rejected["rejected_reason"], "INVALID_FORMAT", "{rejected}");
    let (status, _) = app.post("/v1/templates/sync", &json!({})).await;
    assert_eq!(status, 200);
    let (_, list) = app.get("/v1/templates").await;
    let synced = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|t| t["name"] == "reject_me")
        .cloned();
    assert_eq!(synced.expect("still there")["rejected_reason"], "INVALID_FORMAT");

    // Duplicates are Meta's error, with Meta's details.
    let (status, err) = app.post("/v1/templates", &create).await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["meta"]["error_subcode"], 2388024);

    let r = app
        .http
        .delete(format!("{}/v1/templates/order_update", app.url))
        .bearer_auth(&app.key)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status().as_u16(), 200);
    let (_, list) = app.get("/v1/templates").await;
    assert!(!list["data"]
        .as_array()
        .expect("data")
        .iter()
        .any(|t| t["name"] == "order_update"));
    let (status, err) = app.post("/v1/messages", &send).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some("template_not_found"))
    );
}

#[tokio::test]
async fn sends_are_checked_against_the_catalog_before_queueing() {
    let app = spawn_app().await;
    // Never synced: the send goes out, and the answer says it was not checked.
    let (status, m) = app.post("/v1/messages", &json!({"to": USER, "type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}})).await;
    assert_eq!(status, 202);
    assert!(
        m["warnings"][0].as_str().is_some_and(|w| w.contains("never synced")),
        "{m}"
    );
    // Meta has it before the checked sends are tried (the count below is of what reached Meta).
    eventually("the first send reaches Meta", || async {
        (!app.sim_sent().await.is_empty()).then_some(())
    })
    .await;
    sync(&app).await;
    let cases = [
        (
            json!({"name": "hello_world", "language": {"code": "pt_BR"}}),
            "template_not_found",
            "template.language.code",
        ),
        (
            json!({"name": "nope", "language": {"code": "en_US"}}),
            "template_not_found",
            "template.language.code",
        ),
        (
            json!({"name": "po_notification", "language": {"code": "es"}, "components": [{"type": "body", "parameters": [{"type": "text", "text": "Acme"}]}]}),
            "template_parameters",
            "template.components[0].parameters",
        ),
        (
            json!({"name": "order_shipped_image", "language": {"code": "en_US"}, "components": [{"type": "body", "parameters": [{"type": "text", "text": "1"}, {"type": "text", "text": "Fri"}]}]}),
            "template_parameters",
            "template.components",
        ),
        (
            json!({"name": "order_shipped_image", "language": {"code": "en_US"}, "components": [{"type": "header", "parameters": [{"type": "video", "video": {"id": "1"}}]}, {"type": "body", "parameters": [{"type": "text", "text": "1"}, {"type": "text", "text": "Fri"}]}]}),
            "template_parameters",
            "template.components[0].parameters[0].type",
        ),
    ];
    for (template, code, field) in cases {
        let (status, err) = app
            .post(
                "/v1/messages",
                &json!({"to": USER, "type": "template", "template": template}),
            )
            .await;
        assert_eq!(status, 422, "{err}");
        assert_eq!(err["error"]["code"], code, "{err}");
        assert_eq!(err["error"]["details"]["field"], field, "{err}");
        assert!(err["error"]["hint"].is_string());
    }
    let (_, err) = app.post("/v1/messages", &json!({"to": USER, "type": "template", "template": {"name": "hello_world", "language": {"code": "pt_BR"}}})).await;
    assert_eq!(err["error"]["details"]["available_languages"], json!(["en_US"]));
    assert_eq!(
        app.sim_sent().await.len(),
        1,
        "only the unchecked first send reached Meta"
    );
}

#[tokio::test]
async fn a_template_paused_by_meta_is_refused_by_meta_and_then_by_the_catalog() {
    let app = spawn_app().await;
    let hello =
        json!({"to": USER, "type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}});
    // Meta pauses it: the webhook arrives, but this gateway's catalog was never synced, so
    // Meta's own refusal (132015) is what the user sees, with a hint.
    app.sim.set_webhook_url(None);
    let r = app
        .http
        .post(format!("{}/_sim/templates/hello_world/status", app.sim_url))
        .json(&json!({"status": "PAUSED"}))
        .send()
        .await
        .expect("pause");
    assert_eq!(r.status().as_u16(), 200);
    let (_, m) = app.post("/v1/messages?wait=accepted", &hello).await;
    assert_eq!(
        (m["status"].as_str(), m["error"]["code"].as_i64()),
        (Some("failed"), Some(132015)),
        "{m}"
    );
    assert!(m["error"]["hint"].as_str().is_some_and(|h| h.contains("paused")));

    // With a synced catalog, the pause arrives by webhook and the gateway refuses first.
    app.sim.set_webhook_url(Some(format!("{}/webhooks/whatsapp", app.url)));
    app.http
        .post(format!("{}/_sim/templates/hello_world/status", app.sim_url))
        .json(&json!({"status": "APPROVED"}))
        .send()
        .await
        .expect("unpause");
    sync(&app).await;
    app.http
        .post(format!("{}/_sim/templates/hello_world/status", app.sim_url))
        .json(&json!({"status": "PAUSED"}))
        .send()
        .await
        .expect("pause");
    eventually("paused in the catalog", || async {
        let (_, list) = app.get("/v1/templates").await;
        list["data"]
            .as_array()?
            .iter()
            .find(|t| t["name"] == "hello_world" && t["status"] == "PAUSED")
            .cloned()
    })
    .await;
    let (status, err) = app.post("/v1/messages", &hello).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some("template_not_approved")),
        "{err}"
    );
    let events = app.events().await;
    assert!(events
        .iter()
        .any(|e| e["type"] == "template.status_updated" && e["payload"]["status"] == "PAUSED"));
}

/// Template names go into Meta's query string (`DELETE /{waba}/message_templates?name=`): a name
/// spelt with URL metacharacters must arrive as that one name and reach no other template.
#[tokio::test]
async fn names_with_url_metacharacters_reach_no_other_template_at_meta() {
    let app = spawn_app().await;
    let names = || async {
        let r: Value = app
            .http
            .get(format!("{}/v23.0/{WABA}/message_templates?limit=100", app.sim_url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        let mut n: Vec<String> = r["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str().map(str::to_string))
            .collect();
        n.sort();
        n
    };
    sync(&app).await;
    let before = names().await;
    assert!(before.contains(&"po_notification".to_string()), "{before:?}");
    for name in [
        "po_notification#x",
        "zzz&name=order_shipped_image",
        "po_notification&name=hello_world",
        "hello_world/../po_notification",
        "hello_world?name=po_notification",
        "..",
        "hello world",
        "héllo 👋",
        "%70o_notification",
    ] {
        let path = wagate_graph::GraphPath::new([WABA, "message_templates"]).query("name", name);
        let err = app
            .gateway
            .state
            .graph
            .delete(TOKEN, &path)
            .await
            .expect_err("no template has this name");
        // The simulator names what it was asked to delete: exactly the name given.
        let said = err.meta().and_then(|m| m.details()).unwrap_or_default();
        assert_eq!(said, format!("Template {name} does not exist."), "{name}");
    }
    assert_eq!(names().await, before, "a delete reached another template");

    // Through the gateway, such a name is refused before Meta is asked, and nothing changes.
    for encoded in [
        "po_notification%23x",
        "zzz%26name%3Dorder_shipped_image",
        "hello_world%2F..%2Fx",
    ] {
        let r = app
            .http
            .delete(format!("{}/v1/templates/{encoded}", app.url))
            .bearer_auth(&app.key)
            .send()
            .await
            .expect("delete");
        assert_eq!(r.status().as_u16(), 400, "{encoded}");
        let e: Value = r.json().await.expect("json");
        assert_eq!(e["error"]["details"]["field"], "name", "{e}");
    }
    assert_eq!(names().await, before);
    let (_, catalog) = app.get("/v1/templates").await;
    assert!(catalog["data"]
        .as_array()
        .is_some_and(|d| d.iter().any(|t| t["name"] == "po_notification")));
}
