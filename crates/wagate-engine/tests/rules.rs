//! The engine's rules, tested by calling its operations on a real store (SQLite, or PostgreSQL
//! when `WAGATE_TEST_POSTGRES_URL` is set), with no HTTP in between: the 24-hour window, the
//! template checks, idempotency, tenant isolation of lookups, and the pause on Meta's
//! account-level errors. The same rules are tested through the API in `crates/wagate/tests`.

use std::future::Future;
use std::time::Duration;

use serde_json::{json, Value};
use wagate_engine::accounts::runtime::AccountRuntime;
use wagate_engine::auth::accounts::{filter_account, resolve_account, AccountFrom};
use wagate_engine::auth::authenticate::authenticate;
use wagate_engine::auth::Caller;
use wagate_engine::config::{AccountConfig, Config, Overrides};
use wagate_engine::sending::prepare::prepare;
use wagate_engine::sending::queue::{enqueue, enqueue_once};
use wagate_engine::{Engine, EngineError, KeyPolicy, Kind, Workers};
use wagate_store::testing::TestDir;

const WABA: &str = "102290129340398";
const PHONE_ID: &str = "106540352242922";
const APP_SECRET: &str = "0123456789abcdef0123456789abcdef";
const TOKEN: &str = "test-access-token";
const USER: &str = "16505551234";
const MASTER_KEY: &str = "dGVzdC1tYXN0ZXIta2V5LW9mLTMyLWJ5dGVzLWxvbmc=";

/// An opened engine on a fresh database, with the account `acme`.
struct Opened {
    engine: Engine,
    workers: Workers,
    _dir: TestDir,
}

impl Opened {
    fn acme(&self) -> AccountRuntime {
        self.engine.accounts.find("acme").expect("the account acme")
    }

    async fn close(self) {
        let deadline = self.workers.deadline();
        self.workers.finish(deadline).await;
    }
}

/// Opens the engine with `acme` (its token `token`) against Meta at `graph_url`.
async fn open(graph_url: &str, token: &str) -> Opened {
    let (mut config, _) = Config::load(None, &Default::default(), &Overrides::default()).expect("defaults");
    let dir = TestDir::new("engine");
    config.database_url = match wagate_store::testing::fresh_postgres_url().await {
        Some(url) => url,
        None => dir.sqlite_url(),
    };
    config.graph_url = graph_url.to_string();
    config.media.dir = dir.join("media");
    config.master_key = Some(wagate_core::seal::MasterKey::parse(MASTER_KEY).expect("master key"));
    config.accounts = vec![AccountConfig {
        name: "acme".into(),
        waba_id: WABA.into(),
        phone_number_ids: vec![PHONE_ID.into()],
        access_token: Some(token.into()),
        access_token_file: None,
        messages_per_second: None,
        app_secret: Some(APP_SECRET.into()),
        app_secret_file: None,
        verify_token: Some("verify".into()),
        verify_token_file: None,
    }];
    let opened = Engine::open(config, "http://127.0.0.1:9".into(), KeyPolicy::WhenNone)
        .await
        .expect("the engine opens");
    Opened {
        engine: opened.engine,
        workers: opened.workers,
        _dir: dir,
    }
}

/// Meta unreachable: the rules below are decided before any call.
async fn open_offline() -> Opened {
    open("http://127.0.0.1:9", TOKEN).await
}

/// Waits for `check` to hold, up to 10 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting: {what}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn text(to: &str) -> Value {
    json!({"to": to, "type": "text", "text": {"body": "Your order has shipped"}})
}

fn template(name: &str, language: &str, parameters: &[&str]) -> Value {
    let parameters: Vec<Value> = parameters.iter().map(|p| json!({"type": "text", "text": p})).collect();
    json!({"to": USER, "type": "template", "template": {"name": name, "language": {"code": language},
        "components": [{"type": "body", "parameters": parameters}]}})
}

fn refusal(result: Result<impl std::fmt::Debug, EngineError>) -> EngineError {
    match result {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(e) => e,
    }
}

/// A signed inbound text from `from`, as Meta posts it, written now (the window counts from
/// Meta's timestamp).
fn inbound_text(from: &str, wamid: &str) -> (String, Vec<u8>) {
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_ID},
            "contacts": [{"profile": {"name": "Kerry"}, "wa_id": from}],
            "messages": [{"from": from, "id": wamid, "timestamp": (wagate_engine::now_ms() / 1000).to_string(), "type": "text", "text": {"body": "Where is my order?"}}]}}]}]});
    let bytes = body.to_string().into_bytes();
    (wagate_core::signature::sign_hub(APP_SECRET, &bytes), bytes)
}

#[tokio::test]
async fn a_text_outside_the_window_is_refused_and_queued_once_the_user_writes() {
    let app = open_offline().await;
    let caller = Caller::for_account(&app.acme().id);
    let e = refusal(prepare(&app.engine, &caller, text(USER)).await);
    assert_eq!((e.kind, e.code), (Kind::Refused, "window_closed"), "{e}");
    assert!(e.message.contains("never written"), "{e}");
    assert_eq!(
        e.details.as_ref().map(|d| d["window"]["open"].clone()),
        Some(json!(false))
    );

    // The user writes: the webhook goes through the inbound slice, signature and journal.
    let (signature, body) = inbound_text(USER, "wamid.window-opener");
    wagate_engine::inbound::receive::receive(&app.engine, None, Some(&signature), &body, true)
        .await
        .expect("the webhook is taken");
    let prepared = prepare(&app.engine, &caller, text(USER))
        .await
        .expect("inside the window a text may go");
    assert!(prepared.warnings.is_empty());
    let queued = enqueue(&app.engine, prepared).await.expect("queued");
    assert_eq!(queued.wa_id.as_deref(), Some(USER));
    assert_eq!(queued.status.to_string(), "queued");

    // A text scheduled past the window's end is refused now, not failed later.
    let mut late = text(USER);
    late["send_at"] = json!(wagate_engine::now_ms() / 1000 + 2 * 86_400);
    let e = refusal(prepare(&app.engine, &caller, late).await);
    assert_eq!(
        (e.code, e.details.as_ref().map(|d| d["field"].clone())),
        ("window_closed", Some(json!("send_at")))
    );
    app.close().await;
}

#[tokio::test]
async fn a_template_send_is_checked_against_the_catalog() {
    let app = open_offline().await;
    let acme = app.acme();
    let caller = Caller::for_account(&acme.id);
    // Never synced: nothing can be checked, and the send says so rather than failing.
    let p = prepare(&app.engine, &caller, template("order_shipped", "en_US", &["42"]))
        .await
        .expect("an unchecked template may go");
    assert!(
        p.warnings.iter().any(|w| w.contains("never synced")),
        "{:?}",
        p.warnings
    );

    let body = json!([{"type": "BODY", "text": "Order {{1}} has shipped"}]).to_string();
    let version = |name: &str, language: &str, status: &str| wagate_store::Template {
        account_id: acme.id.clone(),
        name: name.into(),
        language: language.into(),
        template_id: None,
        status: status.into(),
        category: Some("UTILITY".into()),
        parameter_format: Some("POSITIONAL".into()),
        components: Some(body.clone()),
        quality_score: None,
        updated_at: 0,
        rejected_reason: None,
    };
    let catalog = [
        version("order_shipped", "en_US", "APPROVED"),
        version("order_shipped", "es", "APPROVED"),
        version("spring_sale", "en_US", "PENDING"),
    ];
    app.engine
        .store
        .replace_templates(&acme.id, &catalog, wagate_engine::now_ms())
        .await
        .expect("catalog stored");

    let e = refusal(prepare(&app.engine, &caller, template("order_shipped", "de", &["42"])).await);
    assert_eq!((e.kind, e.code), (Kind::Refused, "template_not_found"), "{e}");
    let available = e.details.as_ref().map(|d| d["available_languages"].clone());
    assert_eq!(available, Some(json!(["en_US", "es"])));
    let e = refusal(prepare(&app.engine, &caller, template("spring_sale", "en_US", &["42"])).await);
    assert_eq!((e.kind, e.code), (Kind::Refused, "template_not_approved"), "{e}");
    let e = refusal(
        prepare(
            &app.engine,
            &caller,
            template("order_shipped", "en_US", &["42", "extra"]),
        )
        .await,
    );
    assert_eq!((e.kind, e.code), (Kind::Refused, "template_parameters"), "{e}");
    let p = prepare(&app.engine, &caller, template("order_shipped", "en_US", &["42"]))
        .await
        .expect("an approved template with its parameters goes");
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    app.close().await;
}

#[tokio::test]
async fn an_idempotency_key_gives_back_the_first_message_and_refuses_another_request() {
    let app = open_offline().await;
    let caller = Caller::for_account(&app.acme().id);
    let request = template("order_shipped", "en_US", &["42"]);
    let once = |request: Value| {
        let (engine, caller) = (app.engine.clone(), caller.clone());
        async move {
            let prepared = prepare(&engine, &caller, request.clone()).await?;
            enqueue_once(&engine, prepared, "order-42-shipped".into(), &request).await
        }
    };
    let (first, replayed) = once(request.clone()).await.expect("queued");
    assert!(!replayed);
    let (again, replayed) = once(request.clone()).await.expect("given back");
    assert!(replayed);
    assert_eq!(
        again.id, first.id,
        "the same key and request give back the first message"
    );

    let other = template("order_shipped", "en_US", &["43"]);
    let e = refusal(once(other).await);
    assert_eq!((e.kind, e.code), (Kind::Conflict, "idempotency_conflict"), "{e}");
    assert_eq!(
        e.details.as_ref().map(|d| d["message_id"].clone()),
        Some(json!(first.id.to_string()))
    );
    let page = app
        .engine
        .store
        .list_messages(&wagate_store::MessageFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(page.len(), 1, "nothing else was queued");
    app.close().await;
}

#[tokio::test]
async fn a_tenants_caller_finds_only_its_tenants_accounts() {
    let app = open_offline().await;
    let number = |id: &str| wagate_store::PhoneNumberInfo {
        phone_number_id: id.into(),
        display_phone_number: None,
        verified_name: None,
        quality_rating: None,
        throughput: None,
        name_status: None,
        messaging_limit: None,
    };
    let make = |name: &str, waba: &str, phone: &str, tenant: &str| wagate_store::NewApiAccount {
        name: name.into(),
        waba_id: waba.into(),
        access_token: TOKEN.into(),
        app_secret: APP_SECRET.into(),
        verify_token: "verify".into(),
        messages_per_second: None,
        phone_numbers: vec![number(phone)],
        tenant: Some(tenant.into()),
    };
    let alpha = wagate_engine::accounts::manage::make_account(&app.engine, &make("alpha-shop", "201", "301", "alpha"))
        .await
        .expect("alpha's account");
    let beta = wagate_engine::accounts::manage::make_account(&app.engine, &make("beta-shop", "202", "302", "beta"))
        .await
        .expect("beta's account");

    let (secret, mut key) = wagate_engine::auth::new_key("alpha-admin", None, vec!["admin".into()]);
    key.tenant = Some("alpha".into());
    app.engine.store.create_api_key(&key).await.expect("key stored");
    let caller = authenticate(&app.engine, Some(&format!("Bearer {secret}")), None)
        .await
        .expect("the tenant's key authenticates");

    // Alone in its tenant, alpha's account is the one a request acts for.
    let found = resolve_account(&app.engine, &caller, None, AccountFrom::Body).expect("its own account");
    assert_eq!(found.id, alpha.id);
    // Another tenant's account is answered exactly as one that does not exist.
    for named in [beta.name.as_str(), beta.id.as_str(), "acme", "no-such-account"] {
        let e = refusal(resolve_account(&app.engine, &caller, Some(named), AccountFrom::Query));
        assert_eq!(
            (e.kind, e.code, e.message.clone()),
            (Kind::NotFound, "not_found", format!("no account `{named}`"))
        );
        let e = refusal(filter_account(&app.engine, &caller, Some(named)));
        assert_eq!(e.kind, Kind::NotFound);
    }
    assert!(caller.sees(&alpha.id) && !caller.sees(&beta.id) && !caller.sees(&app.acme().id));
    // And it cannot send from beta's account by naming it in a send.
    let mut send = text(USER);
    send["account"] = json!(beta.name);
    let e = refusal(prepare(&app.engine, &caller, send).await);
    assert_eq!((e.kind, e.code), (Kind::NotFound, "not_found"));
    app.close().await;
}

#[tokio::test]
async fn an_account_level_error_from_meta_pauses_the_account_and_holds_its_sends() {
    // Meta (the simulator) knows another token: every call with this one answers 190.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sim_url = format!("http://{}", listener.local_addr().expect("addr"));
    let sim = wagate_sim::Simulator::new(wagate_sim::SimConfig {
        access_token: TOKEN.into(),
        app_secret: APP_SECRET.into(),
        ..wagate_sim::SimConfig::default()
    });
    let served = sim.clone();
    tokio::spawn(async move { served.serve(listener, std::future::pending()).await });
    let app = open(&sim_url, "a-revoked-token").await;
    let acme = app.acme();
    let caller = Caller::for_account(&acme.id);
    let prepared = prepare(&app.engine, &caller, template("order_shipped", "en_US", &["42"]))
        .await
        .expect("checked");
    let message = enqueue(&app.engine, prepared).await.expect("queued");

    eventually("the account pauses", || async { app.acme().pause().is_some() }).await;
    let pause = app.acme().pause().expect("paused");
    assert_eq!(pause.code, Some(190), "{pause:?}");
    assert!(!pause.by_hand);
    assert!(pause.hint.contains("/token"), "{}", pause.hint);
    // The message waits for the account, not failed: a new token sends it.
    let stored = app
        .engine
        .store
        .get_message(&message.id)
        .await
        .expect("read")
        .expect("the message");
    assert_eq!(stored.status.to_string(), "queued");
    // New sends are refused while it is paused, with the pause's own hint.
    let e = refusal(prepare(&app.engine, &caller, template("order_shipped", "en_US", &["42"])).await);
    assert_eq!((e.kind, e.code), (Kind::Conflict, "account_paused"), "{e}");
    assert_eq!(e.hint.as_deref(), Some(pause.hint.as_str()));
    // The pause was told as an account.alert event, through the engine's emit port.
    let events = app
        .engine
        .store
        .list_events(&wagate_store::EventFilter {
            event_types: vec!["account.alert".into()],
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("events");
    assert!(
        events.iter().any(|e| e.payload.contains("sending_paused")),
        "{events:?}"
    );
    app.close().await;
}
