//! The store story: the same sequence of operations and expectations on SQLite (always) and on
//! PostgreSQL (when WAGATE_TEST_POSTGRES_URL is set; each run in a fresh schema).

use std::sync::Arc;

use serde_json::json;
use wagate_core::webhook::parse_updates;
use wagate_store::testing::{fresh_sqlite_url, postgres_or_skip};
use wagate_store::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../../testdata/meta/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn open(url: &str) -> Arc<dyn Store> {
    let store = connect(url, &ConnectOptions::default()).await.expect("connect");
    store.migrate().await.expect("migrate");
    // Migrating twice is harmless.
    store.migrate().await.expect("migrate again");
    store
}

fn applied(journal_id: i64, account: &str, body: &[u8]) -> AppliedWebhook {
    AppliedWebhook {
        journal_id,
        received_at: 1_700_000_000_000,
        updates: parse_updates(body)
            .into_iter()
            .map(|u| (Some(account.to_string()), u))
            .collect(),
        error: None,
    }
}

async fn enqueue(
    store: &Arc<dyn Store>,
    account_id: &str,
    message_type: &str,
    content: serde_json::Value,
    now_ms: i64,
) -> Message {
    let message = NewOutboundMessage {
        id: wagate_core::ids::message_id(),
        account_id: account_id.to_string(),
        phone_number_id: "106540352242922".into(),
        wa_id: "16505551234".into(),
        message_type: message_type.into(),
        content,
        now_ms,
        send_at: now_ms,
        priority: 0,
    };
    store.enqueue_message(&message).await.expect("enqueue")
}

/// The account most stories use, with its one number.
async fn acme(store: &Arc<dyn Store>) -> Account {
    store
        .upsert_account(&NewAccount {
            name: "acme".into(),
            waba_id: "102290129340398".into(),
            phone_numbers: vec![("106540352242922".into(), None)],
        })
        .await
        .expect("account")
}

async fn story(store: Arc<dyn Store>) {
    store.ping().await.expect("ping");

    // Accounts: upsert by name keeps the id; phone numbers belong to it.
    let new = NewAccount {
        name: "acme".into(),
        waba_id: "102290129340398".into(),
        phone_numbers: vec![("106540352242922".into(), Some("15550783881".into()))],
    };
    let a = store.upsert_account(&new).await.expect("account");
    let again = store.upsert_account(&new).await.expect("account again");
    assert_eq!(a.id, again.id);
    assert_eq!(store.list_accounts().await.expect("list").len(), 1);
    let phones = store.list_phone_numbers().await.expect("phones");
    assert_eq!(a.id, phones[0].account_id);
    assert_eq!(phones[0].display_phone_number.as_deref(), Some("15550783881"));

    // API keys are found by hash only.
    assert_eq!(store.count_api_keys().await.expect("count"), 0);
    let key = store
        .create_api_key(&NewApiKey {
            name: "k".into(),
            account_id: Some(a.id.clone()),
            scopes: vec!["send".into(), "read".into()],
            key_hash: "h1".into(),
            prefix: "wg_abcd".into(),
            ..Default::default()
        })
        .await
        .expect("key");
    assert_eq!(key.scopes, "send,read");
    assert_eq!(
        store.api_key_by_hash("h1").await.expect("by hash").map(|k| k.id),
        Some(key.id.clone())
    );
    assert!(store.api_key_by_hash("nope").await.expect("by hash").is_none());
    // A key's life: used (to the minute), given an end, revoked once.
    store.touch_api_key(&key.id, 5_000).await.expect("touch");
    assert!(store.expire_api_key(&key.id, 9_000).await.expect("expire"));
    assert!(
        !store.expire_api_key(&key.id, 20_000).await.expect("expire"),
        "an end is never pushed later"
    );
    let got = store.get_api_key(&key.id).await.expect("get").expect("key");
    assert_eq!((got.last_used_at, got.expires_at), (Some(5_000), Some(9_000)));
    assert!(got.is_active(8_999) && !got.is_active(9_000));
    assert!(store.revoke_api_key(&key.id, 6_000).await.expect("revoke"));
    assert!(
        !store.revoke_api_key(&key.id, 7_000).await.expect("revoke"),
        "revoked once"
    );
    assert!(!store.revoke_api_key("key_nope", 7_000).await.expect("revoke"));
    // The audit log: newest first, by account, by action prefix (LIKE's wildcards are literal).
    for (action, account) in [
        ("key.created", None),
        ("hook_x.deleted", Some(a.id.to_string())),
        ("key.revoked", Some(a.id.to_string())),
    ] {
        store
            .record_audit(&NewAuditEntry {
                at: 1,
                actor: key.id.to_string(),
                actor_name: Some("k".into()),
                remote: Some("127.0.0.1".into()),
                action: action.into(),
                target: None,
                account_id: account.map(Into::into),
                tenant: None,
                details: serde_json::json!({"n": 1}),
            })
            .await
            .expect("audit");
    }
    let actions = |rows: Vec<AuditEntry>| rows.into_iter().map(|e| e.action).collect::<Vec<_>>();
    assert_eq!(
        actions(store.list_audit(None, None, None, None, 10).await.expect("audit")),
        ["key.revoked", "hook_x.deleted", "key.created"]
    );
    assert_eq!(
        actions(
            store
                .list_audit(Some(&a.id), None, Some("key."), None, 10)
                .await
                .expect("audit")
        ),
        ["key.revoked"]
    );
    assert_eq!(
        actions(
            store
                .list_audit(None, None, Some("hook%"), None, 10)
                .await
                .expect("audit")
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        actions(
            store
                .list_audit(None, None, Some("hook_"), None, 10)
                .await
                .expect("audit")
        ),
        ["hook_x.deleted"]
    );
    let newest = store.list_audit(None, None, None, None, 1).await.expect("audit");
    assert_eq!(
        actions(
            store
                .list_audit(None, None, None, Some(newest[0].id), 10)
                .await
                .expect("audit")
        ),
        ["hook_x.deleted", "key.created"]
    );
    let listed = store.list_api_keys().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].revoked_at, Some(6_000));
    assert!(!listed[0].is_active(0));

    // Journal: stored in order, pending until applied.
    let text = fixture("inbound_text.json");
    let ids = store
        .journal_webhooks(&[
            NewJournalEntry {
                received_at: 1,
                account_id: Some(a.id.to_string()),
                body: text.clone(),
                state: JournalState::Pending,
            },
            NewJournalEntry {
                received_at: 2,
                account_id: Some(a.id.to_string()),
                body: text.clone(),
                state: JournalState::Pending,
            },
            NewJournalEntry {
                received_at: 3,
                account_id: None,
                body: b"{}".to_vec(),
                state: JournalState::Quarantined,
            },
        ])
        .await
        .expect("journal");
    assert!(ids[0] < ids[1] && ids[1] < ids[2]);
    let pending = store.pending_journal("gw", 0, 10).await.expect("pending");
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].body, text);
    // A batch read ahead while these are applied starts past them (SQLite reads from its
    // cursor, PostgreSQL's claims are exclusive); given back, they are read again at once.
    let ahead = store.pending_journal("gw", ids[1], 10).await.expect("read ahead");
    assert!(ahead.is_empty(), "{:?}", ahead.iter().map(|e| e.id).collect::<Vec<_>>());
    let given_back = store.unclaim_journal("gw", &ids[..2]).await.expect("unclaim");
    assert_eq!(given_back, if store.backend() == "postgres" { 2 } else { 0 });
    let again = store.pending_journal("gw", 0, 10).await.expect("pending again");
    assert_eq!(again.iter().map(|e| e.id).collect::<Vec<_>>(), ids[..2]);

    // Applying the same message twice stores it once and emits one event.
    let stats = store
        .apply_webhooks(&[applied(ids[0], &a.id, &text), applied(ids[1], &a.id, &text)])
        .await
        .expect("apply");
    assert_eq!((stats.new_messages, stats.duplicate_messages), (1, 1));
    assert_eq!(stats.events, vec!["message.received".to_string()]);
    assert!(store.pending_journal("gw", 0, 10).await.expect("pending").is_empty());
    // Applying entries that were already processed (as a second gateway sharing the database
    // might) changes nothing; PostgreSQL refuses the whole batch.
    let again = store.apply_webhooks(&[applied(ids[0], &a.id, &text)]).await;
    match store.backend() {
        "postgres" => assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}"),
        _ => assert!(again.expect("sqlite re-apply").events.is_empty()),
    }
    let counts = store.journal_counts().await.expect("counts");
    assert_eq!((counts.processed, counts.quarantined, counts.pending), (2, 1, 0));

    // The inbound message opened the window: 24 h after the user's message time.
    let c = store
        .get_contact(&a.id, "106540352242922", "16505551234")
        .await
        .expect("contact")
        .expect("exists");
    assert_eq!(c.name.as_deref(), Some("Sheena Nelson"));
    assert_eq!(c.window_expires_at, Some(1_749_416_383_000 + 24 * 3600 * 1000));
    assert_eq!(store.find_contacts(None, "16505551234").await.expect("find").len(), 1);

    // Outbound: message and job written together; claimed once; finished only by the lease owner.
    let m = enqueue(
        &store,
        &a.id,
        "text",
        json!({"type": "text", "text": {"body": "hi"}}),
        1000,
    )
    .await;
    assert_eq!(m.status.as_str(), "queued");
    let jobs = store
        .claim_send_jobs("w1", 10, 60_000, 2000, &ClaimFilter::default())
        .await
        .expect("claim");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].attempts, 1);
    assert!(
        store
            .claim_send_jobs("w2", 10, 60_000, 2000, &ClaimFilter::default())
            .await
            .expect("claim")
            .is_empty(),
        "a leased job is not claimed twice"
    );
    // A retry puts it back for later.
    let retry = SendOutcome::Retry {
        run_at: 5000,
        error: json!({"code": 131000}),
    };
    assert!(
        !store
            .finish_send_job(&jobs[0], "w2", &retry, 2000)
            .await
            .expect("finish"),
        "only the lease owner finishes"
    );
    assert!(store
        .finish_send_job(&jobs[0], "w1", &retry, 2000)
        .await
        .expect("finish"));
    assert!(
        store
            .claim_send_jobs("w1", 10, 60_000, 4999, &ClaimFilter::default())
            .await
            .expect("claim")
            .is_empty(),
        "not before run_at"
    );
    // A lease that ran out during the call is in doubt: not claimed again. Without a status
    // from Meta it waits (here until its lease is 1 s over), then is requeued; the first holder
    // is fenced out.
    let jobs = store
        .claim_send_jobs("w1", 10, 100, 5000, &ClaimFilter::default())
        .await
        .expect("claim");
    assert_eq!(jobs.len(), 1);
    // Its call starts: recorded first, by the holder only.
    let calling = [(jobs[0].id, jobs[0].attempts)];
    let (started, _) = store.record_sends("w2", &calling, &[], 5000).await.expect("mark");
    assert_eq!(started, vec![false], "only the holder starts its call");
    let (started, _) = store.record_sends("w1", &calling, &[], 5000).await.expect("mark");
    assert_eq!(started, vec![true]);
    assert!(
        store
            .claim_send_jobs("w2", 10, 60_000, 5200, &ClaimFilter::default())
            .await
            .expect("claim")
            .is_empty(),
        "a send in doubt is not sent again blindly"
    );
    assert!(store
        .resolve_in_doubt(5200, 4200, InDoubtAction::Retry, 10)
        .await
        .expect("resolve")
        .is_empty());
    let resolved = store
        .resolve_in_doubt(6200, 5200, InDoubtAction::Retry, 10)
        .await
        .expect("resolve");
    assert_eq!(resolved[0].outcome, InDoubtOutcome::Requeued);
    let taken = store
        .claim_send_jobs("w2", 10, 60_000, 6200, &ClaimFilter::default())
        .await
        .expect("claim after the doubt");
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].attempts, 3);
    let wamid = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA";
    let accepted = SendOutcome::Accepted {
        wamid: wamid.into(),
        wa_id: Some("16505551234".into()),
    };
    assert!(!store
        .finish_send_job(&jobs[0], "w1", &accepted, 5300)
        .await
        .expect("fenced"));
    assert!(store
        .finish_send_job(&taken[0], "w2", &accepted, 5300)
        .await
        .expect("finish"));
    let m = store.get_message(&m.id).await.expect("get").expect("exists");
    assert_eq!((m.status.as_str(), m.wamid.as_deref()), ("accepted", Some(wamid)));

    // Statuses move forward only; a late `delivered` after `read` changes nothing but is recorded.
    let read = fixture("status_read.json");
    let delivered = fixture("status_delivered.json");
    let stats = store.apply_webhooks(&[applied(0, &a.id, &read)]).await.expect("read");
    assert_eq!(stats.events, vec!["message.read".to_string()]);
    let stats = store
        .apply_webhooks(&[applied(0, &a.id, &delivered)])
        .await
        .expect("late delivered");
    assert!(
        stats.events.is_empty(),
        "a backwards status emits nothing: {:?}",
        stats.events
    );
    let m = store.get_message(&m.id).await.expect("get").expect("exists");
    assert_eq!(m.status.as_str(), "read");
    assert!(m.pricing.is_some(), "pricing from the delivered status is kept");
    let timeline: Vec<&str> = store
        .message_timeline(&m.id)
        .await
        .expect("timeline")
        .into_iter()
        .map(|s| s.status.as_str())
        .collect();
    assert_eq!(timeline, vec!["read", "delivered"]);
    // The same status again is a duplicate.
    let stats = store
        .apply_webhooks(&[applied(0, &a.id, &read)])
        .await
        .expect("read again");
    assert_eq!(stats.statuses, 0);

    // A status that arrives before the send recorded its wamid joins the message afterwards.
    let early = fixture("status_sent_marketing_template.json");
    let stats = store
        .apply_webhooks(&[applied(0, &a.id, &early)])
        .await
        .expect("orphan status");
    assert_eq!(stats.events, vec!["message.sent".to_string()]);
    let early_wamid = parse_updates(&early);
    let wagate_core::webhook::Update::Status(s) = &early_wamid[0] else {
        panic!("status fixture")
    };
    let m2 = enqueue(&store, &a.id, "template", json!({"type": "template"}), 6000).await;
    let jobs = store
        .claim_send_jobs("w3", 10, 60_000, 6000, &ClaimFilter::default())
        .await
        .expect("claim");
    let accepted = SendOutcome::Accepted {
        wamid: s.wamid.clone(),
        wa_id: None,
    };
    assert!(store
        .finish_send_job(&jobs[0], "w3", &accepted, 6100)
        .await
        .expect("finish"));
    assert_eq!(
        store
            .get_message(&m2.id)
            .await
            .expect("get")
            .expect("exists")
            .status
            .as_str(),
        "sent"
    );

    // A permanent failure fails the message and writes message.failed.
    let m3 = enqueue(&store, &a.id, "template", json!({"type": "template"}), 7000).await;
    let jobs = store
        .claim_send_jobs("w4", 10, 60_000, 7000, &ClaimFilter::default())
        .await
        .expect("claim");
    let failed = SendOutcome::Failed {
        error: json!({"code": 132001, "hint": "check the template"}),
    };
    assert!(store
        .finish_send_job(&jobs[0], "w4", &failed, 7100)
        .await
        .expect("finish"));
    let m3 = store.get_message(&m3.id).await.expect("get").expect("exists");
    assert_eq!(m3.status.as_str(), "failed");
    assert!(m3.error.as_deref().is_some_and(|e| e.contains("132001")));

    // Messages list newest first with a cursor.
    let all = store
        .list_messages(&MessageFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    let page = store
        .list_messages(&MessageFilter {
            limit: 10,
            before_id: Some(all[1].id.to_string()),
            ..Default::default()
        })
        .await
        .expect("page");
    assert_eq!(page.len(), 2);
    let inbound = store
        .list_messages(&MessageFilter {
            limit: 10,
            direction: Some("inbound".into()),
            ..Default::default()
        })
        .await
        .expect("inbound");
    assert_eq!(inbound.len(), 1);

    // Events: filter by type, page by sequence.
    let events = store
        .list_events(&EventFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("events");
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        vec!["message.received", "message.read", "message.sent", "message.failed"]
    );
    let failed_only = store
        .list_events(&EventFilter {
            limit: 100,
            event_types: vec!["message.failed".into()],
            ..Default::default()
        })
        .await
        .expect("filter");
    assert_eq!(failed_only.len(), 1);
    let after = store
        .list_events(&EventFilter {
            limit: 100,
            after_seq: Some(events[1].seq),
            ..Default::default()
        })
        .await
        .expect("cursor");
    assert_eq!(after.len(), 2);
    let scoped = store
        .list_events(&EventFilter {
            limit: 100,
            account_id: Some("acc_other".into()),
            ..Default::default()
        })
        .await
        .expect("scoped");
    assert!(scoped.is_empty());

    in_doubt_story(&store, &a.id).await;
    cluster_story(&store, &a.id).await;
    template_story(&store, &a.id).await;
    media_story(&store, &a.id).await;
}

/// Sends whose lease ran out during the call (the gateway died): never sent again blindly.
async fn in_doubt_story(store: &Arc<dyn Store>, account_id: &str) {
    // A send in doubt is resolved by the status Meta sends for it, matched by the callback data
    // it carried: before its lease ran out (kept, then found by resolve_in_doubt) or after.
    let status_for = |wamid: &str, callback: &str, status: &str| {
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "statuses": [{"id": wamid, "status": status, "timestamp": "1750000000", "recipient_id": "16505551234",
                "biz_opaque_callback_data": callback}]}}]}]});
        serde_json::to_vec(&body).expect("json")
    };
    let real_now = wagate_store::testing::now_ms();
    let m4 = enqueue(
        store,
        account_id,
        "text",
        json!({"type": "text", "text": {"body": "in doubt"}}),
        real_now - 20_000,
    )
    .await;
    // Its lease ran out 10 s ago.
    let jobs = store
        .claim_send_jobs("w5", 10, 1, real_now - 10_000, &ClaimFilter::default())
        .await
        .expect("claim");
    assert_eq!(m4.id, jobs[0].message_id);
    calls_start(store, "w5", &jobs, real_now - 10_000).await;
    store
        .apply_webhooks(&[applied(0, account_id, &status_for("wamid.DOUBT1", &m4.id, "sent"))])
        .await
        .expect("status of the send in doubt");
    let m4 = store.get_message(&m4.id).await.expect("get").expect("exists");
    assert_eq!(
        (m4.status.as_str(), m4.wamid.as_deref()),
        ("sent", Some("wamid.DOUBT1"))
    );
    assert!(
        !store
            .finish_send_job(
                &jobs[0],
                "w5",
                &SendOutcome::Accepted {
                    wamid: "wamid.DOUBT1".into(),
                    wa_id: None
                },
                real_now
            )
            .await
            .expect("finish"),
        "the job was settled by the status"
    );
    let m5 = enqueue(
        store,
        account_id,
        "text",
        json!({"type": "text", "text": {"body": "in doubt", "preview_url": false},
        "biz_opaque_callback_data": "caller-own-5"}),
        real_now,
    )
    .await;
    let jobs = store
        .claim_send_jobs("w6", 10, 60_000, real_now, &ClaimFilter::default())
        .await
        .expect("claim");
    assert_eq!(m5.id, jobs[0].message_id);
    calls_start(store, "w6", &jobs, real_now).await;
    store
        .apply_webhooks(&[applied(
            0,
            account_id,
            &status_for("wamid.DOUBT2", "caller-own-5", "delivered"),
        )])
        .await
        .expect("status while the call is in flight");
    assert_eq!(
        store
            .get_message(&m5.id)
            .await
            .expect("get")
            .expect("exists")
            .status
            .as_str(),
        "queued"
    );
    let resolved = store
        .resolve_in_doubt(real_now + 120_000, real_now, InDoubtAction::Unknown, 10)
        .await
        .expect("resolve");
    assert_eq!(
        resolved,
        vec![InDoubt {
            message_id: m5.id.clone(),
            outcome: InDoubtOutcome::Accepted {
                wamid: "wamid.DOUBT2".into()
            }
        }]
    );
    let m5 = store.get_message(&m5.id).await.expect("get").expect("exists");
    assert_eq!(
        (m5.status.as_str(), m5.wamid.as_deref()),
        ("delivered", Some("wamid.DOUBT2"))
    );
    // With no status at all and the action `unknown`, the message says so and is not resent.
    let m6 = enqueue(
        store,
        account_id,
        "text",
        json!({"type": "text", "text": {"body": "lost"}}),
        real_now,
    )
    .await;
    // A job whose lease ran out before its call started reached no one: it goes again at once.
    let jobs = store
        .claim_send_jobs("w7", 10, 1, real_now, &ClaimFilter::default())
        .await
        .expect("claim");
    assert_eq!(m6.id, jobs[0].message_id);
    let resolved = store
        .resolve_in_doubt(real_now + 10, i64::MIN, InDoubtAction::Unknown, 10)
        .await
        .expect("resolve");
    assert_eq!(
        resolved,
        vec![InDoubt {
            message_id: m6.id.clone(),
            outcome: InDoubtOutcome::NeverCalled
        }]
    );
    let jobs = store
        .claim_send_jobs("w7", 10, 1, real_now, &ClaimFilter::default())
        .await
        .expect("claim");
    assert_eq!(m6.id, jobs[0].message_id);
    calls_start(store, "w7", &jobs, real_now).await;
    let resolved = store
        .resolve_in_doubt(real_now + 10_000, real_now + 5_000, InDoubtAction::Unknown, 10)
        .await
        .expect("resolve");
    assert_eq!(
        resolved,
        vec![InDoubt {
            message_id: m6.id.clone(),
            outcome: InDoubtOutcome::Unknown
        }]
    );
    assert_eq!(
        store
            .get_message(&m6.id)
            .await
            .expect("get")
            .expect("exists")
            .status
            .as_str(),
        "unknown"
    );
    assert!(store
        .claim_send_jobs("w7", 10, 1, real_now + 20_000, &ClaimFilter::default())
        .await
        .expect("claim")
        .is_empty());
}

/// Records that the calls of `jobs` start, as their holder.
async fn calls_start(store: &Arc<dyn Store>, owner: &str, jobs: &[SendJob], now: i64) {
    let calling: Vec<(i64, i64)> = jobs.iter().map(|j| (j.id, j.attempts)).collect();
    let (started, _) = store
        .record_sends(owner, &calling, &[], now)
        .await
        .expect("calls start");
    assert!(started.iter().all(|s| *s), "the holder starts its calls");
}

/// Gateways sharing the database: a dead one's claims are taken over once, by one gateway — its
/// send jobs never called go again at once, one whose call started is in doubt from now, its
/// hook deliveries and downloads are free again — and a live one keeps its own.
async fn cluster_story(store: &Arc<dyn Store>, account_id: &str) {
    let now = sqlx_now();
    store
        .register_instance("gw-dead", "h1", 1, now - 60_000)
        .await
        .expect("register");
    store
        .register_instance("gw-live", "h2", 2, now - 60_000)
        .await
        .expect("register");
    assert!(store.heartbeat_instance("gw-live", now).await.expect("heartbeat"));
    assert!(!store.heartbeat_instance("gw-unknown", now).await.expect("heartbeat"));
    assert_eq!(
        store.stale_instances(now - 10_000).await.expect("stale"),
        vec!["gw-dead".to_string()]
    );
    let never = enqueue(
        store,
        account_id,
        "text",
        json!({"type": "text", "text": {"body": "never called"}}),
        now,
    )
    .await;
    let called = enqueue(
        store,
        account_id,
        "text",
        json!({"type": "text", "text": {"body": "called"}}),
        now,
    )
    .await;
    let jobs = store
        .claim_send_jobs("gw-dead", 10, 60_000, now, &ClaimFilter::default())
        .await
        .expect("claim");
    assert_eq!(jobs.len(), 2);
    let called_job: Vec<SendJob> = jobs.iter().filter(|j| j.message_id == called.id).cloned().collect();
    calls_start(store, "gw-dead", &called_job, now).await;
    let live = enqueue(
        store,
        account_id,
        "text",
        json!({"type": "text", "text": {"body": "live"}}),
        now,
    )
    .await;
    let live_jobs = store
        .claim_send_jobs("gw-live", 10, 60_000, now, &ClaimFilter::default())
        .await
        .expect("claim");
    assert_eq!(live_jobs.len(), 1);
    assert!(
        store.in_doubt_since(&called.id, now).await.expect("doubt").is_none(),
        "its lease holds"
    );

    // Another gateway takes it for dead; a second one finds nothing left to take.
    let whose = Claims::Dead {
        instance: "gw-dead",
        stale_before_ms: now - 10_000,
    };
    let taken = store
        .take_over_claims(whose, now)
        .await
        .expect("take over")
        .expect("taken");
    assert_eq!((taken.sends_requeued, taken.sends_in_doubt), (1, 1), "{taken:?}");
    assert!(store.take_over_claims(whose, now).await.expect("again").is_none());
    assert!(store.stale_instances(now - 10_000).await.expect("stale").is_empty());
    // The job never called goes again at once (to anyone); the dead holder's outcome is fenced.
    let again = store
        .claim_send_jobs("gw-live", 10, 60_000, now, &ClaimFilter::default())
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message_id, never.id);
    // The one called is in doubt since the takeover, awaiting Meta's status.
    assert_eq!(store.in_doubt_since(&called.id, now).await.expect("doubt"), Some(now));
    assert_eq!(store.in_doubt_since(&live.id, now).await.expect("doubt"), None);
    // A gateway stopping gives back its own only.
    let own = store
        .take_over_claims(Claims::Own("gw-live"), now)
        .await
        .expect("release")
        .expect("released");
    assert_eq!(own.sends_requeued, 2, "{own:?}");
    // Alone on its database at start, a gateway takes whatever is still held.
    store
        .register_instance("gw-next", "h3", 3, now)
        .await
        .expect("register");
    let all = store
        .take_over_claims(Claims::All, now)
        .await
        .expect("all")
        .expect("taken");
    assert_eq!(all.sends_requeued, 0, "{all:?}");
    assert!(
        store.stale_instances(now + 1).await.expect("stale").is_empty(),
        "every instance is forgotten"
    );
    // Leave no queued work behind for the stories that follow.
    let rest = store
        .claim_send_jobs("w-cleanup", 10, 60_000, now, &ClaimFilter::default())
        .await
        .expect("claim");
    for j in rest {
        let failed = SendOutcome::Failed {
            error: json!({"code": "test"}),
        };
        assert!(store
            .finish_send_job(&j, "w-cleanup", &failed, now)
            .await
            .expect("finish"));
    }
}

/// Media: a new inbound image gets a media row, leased once, retried, then stored.
async fn media_story(store: &Arc<dyn Store>, account_id: &str) {
    let image = fixture("inbound_image.json");
    let stats = store
        .apply_webhooks(&[applied(0, account_id, &image)])
        .await
        .expect("image");
    assert_eq!(stats.new_media, 1);
    let due = store.claim_media("gw", 10, 60_000, sqlx_now()).await.expect("claim");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].meta_media_id, "1003383421387256");
    assert_eq!(
        due[0].sha256.as_deref(),
        Some("SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=")
    );
    assert!(
        store
            .claim_media("gw", 10, 60_000, sqlx_now())
            .await
            .expect("claim")
            .is_empty(),
        "leased once"
    );
    let retry = MediaOutcome::Retry {
        at: 0,
        error: "503".into(),
    };
    store.finish_media(&due[0].id, &retry, sqlx_now()).await.expect("retry");
    let again = store.claim_media("gw", 10, 60_000, sqlx_now()).await.expect("claim");
    assert_eq!((again.len(), again[0].attempts), (1, 2));
    let stored = MediaOutcome::Stored {
        content_hash: "ab".repeat(32),
        size: 303_833,
    };
    store
        .finish_media(&again[0].id, &stored, sqlx_now())
        .await
        .expect("stored");
    let m = store.get_media(&again[0].id).await.expect("get").expect("exists");
    assert_eq!((m.state.as_str(), m.size), ("stored", Some(303_833)));
    // The event carries the media id and its download URL.
    let events = store
        .list_events(&EventFilter {
            limit: 500,
            ..Default::default()
        })
        .await
        .expect("events");
    let last = events.last().expect("image event");
    let payload: serde_json::Value = serde_json::from_str(&last.payload).expect("json");
    assert_eq!(
        payload["content"]["media"]["download_url"],
        json!(format!("/v1/media/{}", m.id))
    );
}

fn sqlx_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Templates: never synced, then replaced by a sync; webhooks update status and quality.
async fn template_story(store: &Arc<dyn Store>, account_id: &str) {
    assert_eq!(store.templates_synced_at(account_id).await.expect("synced"), None);
    let t = |name: &str, language: &str, id: &str| Template {
        account_id: account_id.to_string(),
        name: name.into(),
        language: language.into(),
        template_id: Some(id.into()),
        status: "APPROVED".into(),
        category: Some("MARKETING".into()),
        parameter_format: Some("POSITIONAL".into()),
        components: Some("[]".into()),
        quality_score: None,
        updated_at: 1,
        rejected_reason: None,
    };
    store
        .replace_templates(account_id, &[t("old", "en", "1")], 10)
        .await
        .expect("sync 1");
    let summer = [t("summer_sale", "en_US", "2"), t("summer_sale", "es", "3")];
    store.replace_templates(account_id, &summer, 20).await.expect("sync 2");
    assert_eq!(store.templates_synced_at(account_id).await.expect("synced"), Some(20));
    assert_eq!(
        store.list_templates(Some(account_id)).await.expect("list").len(),
        2,
        "a sync replaces the catalog"
    );
    for f in [
        "message_template_status_update_paused.json",
        "message_template_quality_update.json",
    ] {
        let mut w = applied(0, account_id, &fixture(f));
        // Point the fixture at our template, whatever its name and language there.
        for (_, u) in &mut w.updates {
            if let wagate_core::webhook::Update::Other(o) = u {
                o.raw["message_template_name"] = json!("summer_sale");
                o.raw["message_template_language"] = json!("en_US");
            }
        }
        store.apply_webhooks(&[w]).await.expect("template webhook");
    }
    let named = store.templates_named(account_id, "summer_sale").await.expect("named");
    let en = named.iter().find(|t| t.language == "en_US").expect("en_US");
    assert_eq!(en.status, "PAUSED");
    assert!(en.quality_score.is_some());
    assert_eq!(
        named.iter().find(|t| t.language == "es").map(|t| t.status.as_str()),
        Some("APPROVED")
    );
    // A components update replaces the stored components.
    let update = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "time": 1, "changes": [{
        "field": "message_template_components_update",
        "value": {"message_template_id": 2, "message_template_name": "summer_sale", "message_template_language": "en_US",
                  "message_template_element": "Sale ends {{1}}", "message_template_footer": "Reply STOP to opt out",
                  "message_template_buttons": [{"message_template_button_type": "QUICK_REPLY", "message_template_button_text": "Stop"}]}}]}]});
    store
        .apply_webhooks(&[applied(0, account_id, update.to_string().as_bytes())])
        .await
        .expect("components");
    let named = store.templates_named(account_id, "summer_sale").await.expect("named");
    let en = named.iter().find(|t| t.language == "en_US").expect("en_US");
    let components: serde_json::Value = serde_json::from_str(en.components.as_deref().unwrap_or("null")).expect("json");
    assert_eq!(components[0]["text"], "Sale ends {{1}}");
    assert_eq!(components[2]["buttons"][0]["type"], "QUICK_REPLY");
    assert_eq!(
        store.delete_templates(account_id, "summer_sale").await.expect("delete"),
        2
    );
    assert!(store.list_templates(None).await.expect("list").is_empty());
}

#[tokio::test]
async fn store_story_on_sqlite() {
    story(open(&fresh_sqlite_url()).await).await;
}

#[tokio::test]
async fn pruning_on_sqlite() {
    prune_story(open(&fresh_sqlite_url()).await).await;
}

#[tokio::test]
async fn pruning_on_postgres() {
    if let Some(url) = postgres_or_skip("pruning_on_postgres").await {
        prune_story(open(&url).await).await;
    }
}

#[tokio::test]
async fn group_commits_of_any_size_on_sqlite() {
    group_commit_story(open(&fresh_sqlite_url()).await).await;
}

#[tokio::test]
async fn group_commits_of_any_size_on_postgres() {
    if let Some(url) = postgres_or_skip("group_commits_of_any_size_on_postgres").await {
        group_commit_story(open(&url).await).await;
    }
}

/// A group commit is one statement up to 1,024 bodies and a transaction of several beyond: either
/// way every body is stored, with its id in order, and read back in that order.
async fn group_commit_story(store: Arc<dyn Store>) {
    let a = acme(&store).await;
    let entry = |i: usize| NewJournalEntry {
        received_at: i as i64,
        account_id: i.is_multiple_of(2).then(|| a.id.to_string()),
        body: format!("{{\"n\":{i}}}").into_bytes(),
        state: JournalState::Pending,
    };
    let mut stored = Vec::new();
    for size in [1, 1024, 1025, 2500, 3] {
        let entries: Vec<NewJournalEntry> = (stored.len()..stored.len() + size).map(entry).collect();
        let ids = store.journal_webhooks(&entries).await.expect("journal");
        assert_eq!(ids.len(), size, "one id per body in a commit of {size}");
        stored.extend(ids.into_iter().zip(entries));
    }
    assert!(
        stored.windows(2).all(|w| w[0].0 < w[1].0),
        "ids ascend in the order given"
    );
    let pending = store.pending_journal("gw", 0, 10_000).await.expect("pending");
    assert_eq!(pending.len(), stored.len());
    for (p, (id, e)) in pending.iter().zip(&stored) {
        assert_eq!(
            (p.id, p.received_at, &p.account_id, &p.body),
            (*id, e.received_at, &e.account_id, &e.body)
        );
    }
}

/// Rows past retention go, in batches; what is kept (recent, or not finished) stays.
async fn prune_story(store: Arc<dyn Store>) {
    let a = acme(&store).await;
    let now = wagate_store::testing::now_ms();
    for i in 0..5 {
        store
            .append_event(Some(&a.id), "test.old", &json!({"i": i}), 1_000)
            .await
            .expect("old event");
    }
    store
        .append_event(Some(&a.id), "test.new", &json!({}), now)
        .await
        .expect("new event");
    // A processed webhook (a message and its status), a sent message and a queued one.
    let ids = store
        .journal_webhooks(&[NewJournalEntry {
            received_at: 1_000,
            account_id: Some(a.id.to_string()),
            body: fixture("status_delivered.json"),
            state: JournalState::Pending,
        }])
        .await
        .expect("journal");
    store
        .apply_webhooks(&[applied(ids[0], &a.id, &fixture("status_delivered.json"))])
        .await
        .expect("apply");
    let sent = enqueue(
        &store,
        &a.id,
        "text",
        json!({"type": "text", "text": {"body": "done"}}),
        1_000,
    )
    .await;
    let jobs = store
        .claim_send_jobs("w", 10, 60_000, 2_000, &ClaimFilter::default())
        .await
        .expect("claim");
    assert_eq!(sent.id, jobs[0].message_id);
    let accepted = SendOutcome::Accepted {
        wamid: "wamid.PRUNE".into(),
        wa_id: None,
    };
    assert!(store
        .finish_send_job(&jobs[0], "w", &accepted, 2_000)
        .await
        .expect("finish"));
    let waiting = enqueue(
        &store,
        &a.id,
        "text",
        json!({"type": "text", "text": {"body": "later"}}),
        1_000_000_000_000_000,
    )
    .await;

    let retention = Retention {
        journal_before: Some(now + 1_000),
        events_before: Some(5_000),
        statuses_before: Some(now + 1_000),
        jobs_before: Some(now + 1_000),
        media_before: None,
        idempotency_before: Some(now + 1_000),
    };
    let mut total = Pruned::default();
    let mut steps = 0;
    loop {
        let p = store.prune(&retention, 2).await.expect("prune");
        steps += 1;
        if p.total() == 0 {
            break;
        }
        total.add(&p);
    }
    assert!(steps >= 3, "batches of 2: {steps} steps");
    assert_eq!(
        (total.events, total.journal, total.statuses, total.jobs),
        (5, 1, 1, 1),
        "{total:?}"
    );
    let left: Vec<String> = store
        .list_events(&EventFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(left, ["test.new", "message.delivered"], "recent events stay");
    // The queued message's job stays: only ended jobs go. Messages themselves stay.
    let again = store
        .claim_send_jobs("w", 10, 60_000, 1_000_000_000_000_001, &ClaimFilter::default())
        .await
        .expect("claim");
    assert_eq!(waiting.id, again[0].message_id);
    assert!(store.get_message(&sent.id).await.expect("get").is_some());
    assert_eq!(store.journal_counts().await.expect("counts").processed, 0);
}

#[tokio::test]
async fn store_story_on_postgres() {
    let Some(url) = postgres_or_skip("store_story_on_postgres").await else {
        return;
    };
    story(open(&url).await).await;
}

#[tokio::test]
async fn bad_urls_are_refused() {
    let err = connect("mysql://x", &ConnectOptions::default())
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("sqlite://"), "{err}");
}

/// Many writers insert events and hold their transactions open a while before committing; a
/// reader following the feed by cursor must still see every event exactly once. Without
/// sequences taken in commit order, a lower sequence commits after the reader passed it, and is
/// skipped for good (it saw 141 of 320).
#[tokio::test]
async fn the_event_feed_skips_nothing_whatever_the_commit_order_on_postgres() {
    use sqlx::Connection;
    let Some(url) = postgres_or_skip("the_event_feed_skips_nothing_whatever_the_commit_order_on_postgres").await else {
        return;
    };
    let store = open(&url).await;
    const WRITERS: usize = 8;
    const EACH: usize = 40;
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let url = url.clone();
        writers.spawn(async move {
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
            for i in 0..EACH {
                let mut tx = conn.begin().await.expect("begin");
                sqlx::query(
                    "INSERT INTO events (id, account_id, event_type, occurred_at, created_at, payload, raw)
                     VALUES ($1, NULL, 'test.event', 0, 0, '{}', 'null')",
                )
                .bind(format!("evt_w{w}_{i}"))
                .execute(&mut *tx)
                .await
                .expect("insert");
                // Hold the sequence a while before committing, longer for some writers.
                tokio::time::sleep(std::time::Duration::from_millis(((w * 7 + i * 3) % 13) as u64)).await;
                tx.commit().await.expect("commit");
            }
        });
    }
    let mut seen = std::collections::HashSet::new();
    let mut cursor = 0;
    let reader = async {
        loop {
            let page = store
                .list_events(&EventFilter {
                    after_seq: Some(cursor),
                    limit: 100,
                    ..Default::default()
                })
                .await
                .expect("read");
            for e in &page {
                assert!(seen.insert(e.id.clone()), "{} seen twice", e.id);
                cursor = e.seq;
            }
            if seen.len() == WRITERS * EACH {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    };
    let done = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        tokio::join!(reader, async {
            while let Some(w) = writers.join_next().await {
                w.expect("writer");
            }
        })
    })
    .await;
    assert!(
        done.is_ok(),
        "the reader saw {} of {} events: the feed skipped some",
        seen.len(),
        WRITERS * EACH
    );
}

/// On PostgreSQL a gateway hears at once of work another one committed (LISTEN/NOTIFY).
#[tokio::test]
async fn another_gateways_commits_wake_this_one_on_postgres() {
    let Some(url) = postgres_or_skip("another_gateways_commits_wake_this_one_on_postgres").await else {
        return;
    };
    let a = open(&url).await;
    let b = open(&url).await;
    let mut wakeups = b.wakeups().expect("PostgreSQL listens");
    let listening = async {
        while b.listening() != Some(true) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), listening)
        .await
        .expect("the listener connects");
    a.journal_webhooks(&[NewJournalEntry {
        received_at: 1,
        account_id: None,
        body: b"{}".to_vec(),
        state: JournalState::Pending,
    }])
    .await
    .expect("journal");
    a.append_event(None, "test.event", &json!({}), 1).await.expect("event");
    // A send another gateway finished: the one holding `?wait=accepted` hears which message.
    let account = acme(&a).await;
    let m = enqueue(&a, &account.id, "text", json!({"type": "text"}), 1).await;
    let jobs = a
        .claim_send_jobs("w1", 1, 60_000, 2, &ClaimFilter::default())
        .await
        .expect("claim");
    let accepted = SendOutcome::Accepted {
        wamid: "wamid.sent-elsewhere".into(),
        wa_id: None,
    };
    assert!(a.finish_send_job(&jobs[0], "w1", &accepted, 3).await.expect("finish"));
    let sent = Wake::Sent(m.id.to_string());
    let mut heard = std::collections::HashSet::new();
    let hear = async {
        while !(heard.contains(&Wake::Journal) && heard.contains(&Wake::Events) && heard.contains(&sent)) {
            heard.insert(wakeups.recv().await.expect("wake-up"));
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), hear)
        .await
        .expect("both commits were heard");
    assert!(open(&fresh_sqlite_url()).await.wakeups().is_none(), "SQLite needs none");
}
