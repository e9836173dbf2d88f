//! Several gateways on one PostgreSQL share the work instead of competing for it: webhooks
//! posted to either are processed once, messages queued through either are sent once, and the
//! event feed read through either has every event once.

use std::collections::HashMap;

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn two_gateways_on_one_postgres_split_the_work_and_do_each_piece_once() {
    let Some(url) =
        wagate_store::testing::postgres_or_skip("two_gateways_on_one_postgres_split_the_work_and_do_each_piece_once")
            .await
    else {
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
    // What Meta charges: each delivered template counted once, whichever gateway processed its
    // statuses, read alike through both.
    for app in [&a, &b] {
        let counted = eventually("every delivered template counted", || async {
            let (_, u) = app.get("/v1/usage?group_by=category,market").await;
            let g = u["groups"]
                .as_array()?
                .iter()
                .find(|g| g["category"] == "utility")?
                .clone();
            (g["messages"].as_i64()? >= SENDS as i64).then_some(g)
        })
        .await;
        assert_eq!(
            (counted["messages"].as_i64(), counted["market"].as_str()),
            (Some(SENDS as i64), Some("US")),
            "counted once each: {counted}"
        );
    }
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
        bodies.push(media_from(&app.http, &app.url, &app.key, &id).await);
    }
    assert!(!bodies[0].is_empty());
    assert_eq!(bodies[0], bodies[1], "both gateways serve the same bytes");
    // Nothing left behind in the journal (the simulators' status webhooks are in it too).
    let counts = a.gateway.state.store.journal_counts().await.expect("counts");
    assert_eq!((counts.pending, counts.failed, counts.dead), (0, 0, 0), "{counts:?}");
    assert!(counts.processed as usize >= WEBHOOKS, "{counts:?}");
}

/// Three real gateways on one PostgreSQL, webhooks and API calls spread over them by the test's
/// own round-robin; one is `kill -9`ed in the middle of the load and restarted. Every
/// acknowledged webhook is processed once, every accepted message is sent once, the event feed
/// has no gap and no duplicate, and a user's media is served by every gateway.
#[tokio::test]
async fn three_gateways_survive_a_kill_and_lose_or_repeat_nothing() {
    use std::collections::HashSet;
    let Some(url) =
        wagate_store::testing::postgres_or_skip("three_gateways_survive_a_kill_and_lose_or_repeat_nothing").await
    else {
        return;
    };
    let http = reqwest::Client::new();
    let (sim, sim_url) = start_sim().await;
    let key = wagate_core::ids::secret("wg_test_", 16);
    let config = "[media]\nstore = \"database\"\n[server]\nrequest_timeout_seconds = 10\n\
        [sender]\nconcurrency = 16\nlease_seconds = 6\ngraph_timeout_seconds = 2\nin_doubt_seconds = 2\n\
        messages_per_second = 0\npair_interval_ms = 0\n";
    let dirs: Vec<_> = (0..3)
        .map(|i| wagate_store::testing::TestDir::new(&format!("gw{i}")))
        .collect();
    let mut gateways = Vec::new();
    for dir in &dirs {
        gateways.push(serve_binary(dir, config, &url, &sim_url, &key).await);
    }
    let urls = |g: &Vec<(tokio::process::Child, String)>| -> Vec<String> {
        g.iter().map(|(_, a)| format!("http://{a}")).collect()
    };
    sim.set_webhook_url(Some(format!("{}/webhooks/whatsapp", urls(&gateways)[0])));

    let original = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=";
    let body = String::from_utf8(fixture("inbound_text.json")).expect("utf8");
    let mut acked: HashSet<String> = HashSet::new();
    let mut accepted: HashSet<String> = HashSet::new();
    const ROUNDS: usize = 450;
    for i in 0..ROUNDS {
        if i == ROUNDS / 3 {
            // kill -9 the second gateway in the middle of the load.
            gateways[1].0.start_kill().expect("kill -9");
            gateways[1].0.wait().await.expect("killed");
        }
        if i == 2 * ROUNDS / 3 {
            gateways[1] = serve_binary(&dirs[1], config, &url, &sim_url, &key).await;
        }
        let target = &urls(&gateways)[i % 3];
        let wamid = format!("wamid.KILL{i}");
        let signed = body.replace(original, &wamid);
        let r = http
            .post(format!("{target}/webhooks/whatsapp"))
            .header("content-type", "application/json")
            .header(
                "x-hub-signature-256",
                wagate_core::signature::sign_hub(APP_SECRET, signed.as_bytes()),
            )
            .body(signed)
            .send()
            .await;
        if r.is_ok_and(|r| r.status().as_u16() == 200) {
            acked.insert(wamid);
        }
        let send = json!({"to": format!("+1650555{:04}", 3000 + i), "type": "template",
            "biz_opaque_callback_data": format!("kill-{i}"),
            "template": {"name": "hello_world", "language": {"code": "en_US"}}});
        let r = http
            .post(format!("{target}/v1/messages"))
            .bearer_auth(&key)
            .json(&send)
            .send()
            .await;
        if r.is_ok_and(|r| r.status().as_u16() == 202) {
            accepted.insert(format!("kill-{i}"));
        }
    }
    assert!(
        acked.len() >= ROUNDS * 2 / 3 && accepted.len() >= ROUNDS * 2 / 3,
        "most requests were taken"
    );
    let image = json!({"type": "image", "image": {"data_base64": "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAMCAgICAgMC", "mime_type": "image/jpeg"}});
    let r = http
        .post(format!("{sim_url}/_sim/users/{USER}/messages"))
        .json(&image)
        .send()
        .await
        .expect("image");
    assert_eq!(r.status().as_u16(), 200);

    let list = |base: String, key: String, http: reqwest::Client| async move {
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let page: serde_json::Value = http
                .get(format!("{base}/v1/events?limit=500{cursor}"))
                .bearer_auth(&key)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let data = page["data"].as_array().cloned().unwrap_or_default();
            if data.is_empty() {
                return Some(all);
            }
            cursor = format!("&cursor={}", data.last()?["sequence"]);
            all.extend(data);
        }
    };
    let reader = urls(&gateways)[2].clone();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
    let (events, sent) = loop {
        let events = list(reader.clone(), key.clone(), http.clone())
            .await
            .unwrap_or_default();
        let sent: Vec<serde_json::Value> = http
            .get(format!("{sim_url}/_sim/sent"))
            .send()
            .await
            .expect("sim")
            .json::<serde_json::Value>()
            .await
            .expect("json")["data"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let received: HashSet<&str> = events
            .iter()
            .filter(|e| e["type"] == "message.received")
            .filter_map(|e| e["payload"]["wamid"].as_str())
            .collect();
        let sent_ids: HashSet<&str> = sent
            .iter()
            .filter_map(|s| s["body"]["biz_opaque_callback_data"].as_str())
            .collect();
        if acked.iter().all(|w| received.contains(w.as_str())) && accepted.iter().all(|c| sent_ids.contains(c.as_str()))
        {
            break (events, sent);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "after 90 s: {} of {} acknowledged webhooks processed, {} of {} accepted messages sent",
            acked.iter().filter(|w| received.contains(w.as_str())).count(),
            acked.len(),
            accepted.iter().filter(|c| sent_ids.contains(c.as_str())).count(),
            accepted.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    // Exactly once, and the feed in order without gaps or repeats.
    let mut per_wamid: HashMap<&str, usize> = HashMap::new();
    for e in events.iter().filter(|e| e["type"] == "message.received") {
        *per_wamid
            .entry(e["payload"]["wamid"].as_str().unwrap_or(""))
            .or_default() += 1;
    }
    assert!(per_wamid.values().all(|n| *n == 1), "a webhook became two events");
    let seqs: Vec<i64> = events.iter().filter_map(|e| e["sequence"].as_i64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "the feed repeats or goes back");
    let mut per_message: HashMap<&str, usize> = HashMap::new();
    for s in &sent {
        *per_message
            .entry(s["body"]["biz_opaque_callback_data"].as_str().unwrap_or(""))
            .or_default() += 1;
    }
    let twice: Vec<_> = per_message.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent twice: {twice:?}");
    // The user's image, from every gateway.
    let id = eventually("the image's event", || {
        let (reader, key, http) = (reader.clone(), key.clone(), http.clone());
        async move {
            let events = list(reader, key, http).await?;
            let e = events.iter().find(|e| e["payload"]["type"] == "image")?;
            e["payload"]["content"]["media"]["media_id"]
                .as_str()
                .map(str::to_string)
        }
    })
    .await;
    let mut bodies = Vec::new();
    for base in urls(&gateways) {
        bodies.push(media_from(&http, &base, &key, &id).await);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]) && !bodies[0].is_empty());
}

/// A user's media as a gateway serves it, once it has it.
async fn media_from(http: &reqwest::Client, base: &str, key: &str, id: &str) -> Vec<u8> {
    eventually("the media is served", || async {
        let r = http
            .get(format!("{base}/v1/media/{id}"))
            .bearer_auth(key)
            .send()
            .await
            .ok()?;
        if r.status().as_u16() != 200 {
            return None;
        }
        r.bytes().await.ok().map(|b| b.to_vec())
    })
    .await
}
