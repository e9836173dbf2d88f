//! Several gateways on one PostgreSQL share the work instead of competing for it: webhooks
//! posted to either are processed once, messages queued through either are sent once, and the
//! event feed read through either has every event once.

use std::collections::HashMap;

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn two_gateways_on_one_postgres_split_the_work_and_do_each_piece_once() {
    let Some(url) = wagate_store::testing::fresh_postgres_url().await else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\nSKIPPED two_gateways_on_one_postgres_…: WAGATE_TEST_POSTGRES_URL is not set"
        );
        return;
    };
    let a = spawn_app_with(|c| {
        c.database_url = url.clone();
        c.media.store = "database".into();
    })
    .await;
    // The same Meta (simulator) for both, as in production.
    let b = spawn_app_with(|c| {
        c.database_url = url.clone();
        c.media.store = "database".into();
        c.graph_url = a.sim_url.clone();
    })
    .await;
    let original = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=";
    let body = String::from_utf8(fixture("inbound_text.json")).expect("utf8");
    const WEBHOOKS: usize = 300;
    const SENDS: usize = 100;
    for i in 0..WEBHOOKS {
        let app = if i % 2 == 0 { &a } else { &b };
        let r = app
            .post_webhook(body.replace(original, &format!("wamid.SCALE{i}")).as_bytes())
            .await;
        assert_eq!(r.status().as_u16(), 200);
    }
    for i in 0..SENDS {
        let app = if i % 2 == 0 { &a } else { &b };
        let (status, m) = app
            .post(
                "/v1/messages",
                &json!({"to": format!("+1650555{:04}", 2000 + i), "type": "template", "biz_opaque_callback_data": format!("scale-{i}"),
                    "template": {"name": "hello_world", "language": {"code": "en_US"}}}),
            )
            .await;
        assert_eq!(status, 202, "{m}");
    }
    // Every webhook became one event, whichever gateway took it, read through either gateway.
    for app in [&a, &b] {
        let events = eventually("every webhook processed", || async {
            let events = app.settled_events().await;
            let n = events.iter().filter(|e| e["type"] == "message.received").count();
            (n >= WEBHOOKS).then_some(events)
        })
        .await;
        let mut seen: HashMap<String, usize> = HashMap::new();
        for e in events.iter().filter(|e| e["type"] == "message.received") {
            *seen
                .entry(e["payload"]["wamid"].as_str().unwrap_or("").to_string())
                .or_default() += 1;
        }
        assert_eq!(seen.len(), WEBHOOKS);
        assert!(seen.values().all(|n| *n == 1), "an event twice");
        let seqs: Vec<i64> = events.iter().filter_map(|e| e["sequence"].as_i64()).collect();
        assert_eq!(seqs.len(), events.len());
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "the feed is in order, once each");
    }
    // Every message went to Meta once, from one gateway or the other.
    let sent = eventually("every message sent", || async {
        let mut sent = a.sim_sent().await;
        sent.extend(b.sim_sent().await);
        (sent.len() >= SENDS).then_some(sent)
    })
    .await;
    let mut per_message: HashMap<String, usize> = HashMap::new();
    for s in &sent {
        *per_message
            .entry(s["body"]["biz_opaque_callback_data"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    assert_eq!(per_message.len(), SENDS);
    assert!(per_message.values().all(|n| *n == 1), "a message went twice");
    // Media a user sent, downloaded by whichever gateway, is served by both.
    let image = json!({"type": "image", "image": {"data_base64": "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAMCAgICAgMC", "mime_type": "image/jpeg"}});
    a.user_sends(USER, image).await;
    let event = eventually("the image's event", || async {
        a.events().await.into_iter().find(|e| e["payload"]["type"] == "image")
    })
    .await;
    let id = event["payload"]["content"]["media"]["media_id"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| panic!("the event names the media: {event}"));
    let mut bodies = Vec::new();
    for app in [&a, &b] {
        let bytes = eventually("the media is served", || async {
            let r = app
                .http
                .get(format!("{}/v1/media/{id}", app.url))
                .bearer_auth(&app.key)
                .send()
                .await
                .ok()?;
            if r.status().as_u16() != 200 {
                return None;
            }
            r.bytes().await.ok()
        })
        .await;
        bodies.push(bytes);
    }
    assert!(!bodies[0].is_empty());
    assert_eq!(bodies[0], bodies[1], "both gateways serve the same bytes");
    // Nothing left behind in the journal (the simulators' status webhooks are in it too).
    let counts = a.gateway.state.store.journal_counts().await.expect("counts");
    assert_eq!((counts.pending, counts.failed, counts.dead), (0, 0, 0), "{counts:?}");
    assert!(counts.processed as usize >= WEBHOOKS, "{counts:?}");
}
