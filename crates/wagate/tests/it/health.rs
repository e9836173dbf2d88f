//! `wagate doctor` and `GET /v1/accounts/{name}/health` on a misconfigured account, and the
//! daily token check.

use serde_json::{json, Value};

use crate::connect::{connect, connecting_app_with};
use crate::helpers::*;

async fn doctor(app: &TestApp, args: &[&str]) -> (Option<i32>, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wagate"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WAGATE_URL", &app.url)
        .env("WAGATE_API_KEY", &app.key)
        .arg("doctor")
        .args(args)
        .output()
        .await
        .expect("run wagate doctor");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn check<'a>(health: &'a Value, name: &str) -> &'a Value {
    health["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no {name} check in {health}"))
}

#[tokio::test]
async fn doctor_names_each_problem_and_its_fix_and_passes_once_they_are_fixed() {
    let app = spawn_app().await;
    app.sim.subscribe(WABA, false);
    // As it starts: the app is not subscribed to the WABA, and the catalog was never synced.
    let (status, health) = app.get("/v1/accounts/acme/health").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["ok"], false);
    for (name, ok) in [
        ("token", true),
        ("waba", true),
        ("phone_number", true),
        ("registered", true),
        ("quality", true),
        ("name_status", true),
        ("subscribed", false),
        ("webhook", true),
        ("templates", false),
        ("database", true),
        ("journal", true),
        ("clock", true),
    ] {
        let c = check(&health, name);
        assert_eq!(c["ok"], ok, "{name}: {c}");
        assert_eq!(c["fix"].is_string(), !ok, "a fix for each problem: {c}");
    }
    assert!(check(&health, "token")["detail"]
        .as_str()
        .is_some_and(|d| d.contains("never expires")));
    let (code, out) = doctor(&app, &[]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("✗ subscribed")
            && out.contains("✓ token")
            && out.contains("fix: run `wagate doctor --account acme --fix`"),
        "{out}"
    );
    // --fix subscribes the app; a sync fills the catalog; then every check passes.
    let (code, out) = doctor(&app, &["--account", "acme", "--fix"]).await;
    assert!(out.contains("it is now (--fix)"), "{out}");
    assert_eq!(code, Some(1), "templates are still not synced: {out}");
    let (status, _) = app.post("/v1/templates/sync", &json!({})).await;
    assert_eq!(status, 200);
    let (code, out) = doctor(&app, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains('✗'), "{out}");
    // A token Meta no longer takes is named, with the fix.
    app.sim_settings(json!({"access_token": "rotated-at-meta"})).await;
    let (code, out) = doctor(&app, &["--account", "acme"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("✗ token") && out.contains("set-token"), "{out}");
    let (status, e) = app.get("/v1/accounts/nosuch/health").await;
    assert_eq!((status, e["error"]["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn the_token_check_warns_of_a_token_about_to_expire_and_pauses_an_expired_one() {
    let app = connecting_app_with(|c| c.health.token_check_seconds = 1).await;
    let name = connect(&app, "acme").await;
    let token = app
        .gateway
        .state
        .accounts
        .find(&name)
        .expect("the connected account")
        .access_token();
    // The connected business's token: Meta's 60 days; then only three days left.
    let (_, health) = app.get(&format!("/v1/accounts/{name}/health")).await;
    assert!(
        check(&health, "token")["detail"]
            .as_str()
            .is_some_and(|d| d.contains("expires at")),
        "{health}"
    );
    let expire = |secs: i64| {
        let url = format!("{}/_sim/tokens/{token}/expire?in_seconds={secs}", app.sim_url);
        let http = app.http.clone();
        async move { assert!(http.post(url).send().await.expect("sim").status().is_success()) }
    };
    expire(3 * 86_400).await;
    let alert = eventually("a token_expiring alert", || async {
        app.events()
            .await
            .into_iter()
            .find(|e| e["type"] == "account.alert" && e["payload"]["alert"] == "token_expiring")
    })
    .await;
    assert_eq!(alert["payload"]["account_name"], name.as_str(), "{alert}");
    assert!(alert["payload"]["expires_at"].is_string());
    let metrics = app.get_text(&format!("{}/metrics", app.url)).await;
    assert!(metrics.contains("wagate_account_token_expires_in_seconds"), "{metrics}");
    // Expired: the account pauses, saying why and what to do.
    expire(0).await;
    let paused = eventually("the account pauses", || async {
        let (_, a) = app.get(&format!("/v1/accounts/{name}")).await;
        a["paused"].is_object().then(|| a["paused"].clone())
    })
    .await;
    assert!(
        paused["reason"].as_str().is_some_and(|r| r.contains("token check")),
        "{paused}"
    );
    assert!(
        paused["hint"].as_str().is_some_and(|h| h.contains("/token")),
        "{paused}"
    );
}
