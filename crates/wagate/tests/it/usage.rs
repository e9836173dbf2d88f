//! Usage and costs as a user sees them: a rate card loaded whole or not at all, delivered
//! messages counted once and priced with the card's tiers (unpriced markets said apart), CSV,
//! and budgets with their alerts and the hard stop of marketing.

use serde_json::{json, Value};

use crate::helpers::*;

/// The group of a usage answer whose fields are these.
fn group<'a>(usage: &'a Value, fields: &[(&str, &str)]) -> Option<&'a Value> {
    usage["groups"]
        .as_array()?
        .iter()
        .find(|g| fields.iter().all(|(k, v)| g[*k] == *v))
}

const CARD: &str = "market,category,rate,tier_from,tier_to\n\
    US,utility,0.0100,0,2\n\
    US,utility,0.0050,2,\n\
    North America,marketing,0.0250,,\n";

#[tokio::test]
async fn a_rate_card_is_loaded_whole_or_not_at_all() {
    let app = spawn_app().await;
    let bad = [
        (
            "EUR",
            "2026-10-01",
            "market,category,rate\nUS,utility,0.01\nUS,promotional,0.02\n",
            "csv",
            Some((3, "category")),
        ),
        (
            "EUR",
            "2026-10-01",
            "market,category\nUS,utility\n",
            "csv",
            Some((1, "rate")),
        ),
        (
            "EUR",
            "2026-10-01",
            "market,category,rate\nUS,utility,-1\n",
            "csv",
            Some((2, "rate")),
        ),
        (
            "EUR",
            "2026-10-01",
            "market,category,rate\nUS,utility,0.01\nus,utility,0.02\n",
            "csv",
            Some((3, "market")),
        ),
        (
            "EUR",
            "2026-10-01",
            "market,category,rate,tier_from,tier_to\nUS,utility,0.01,0,10\nUS,utility,0.02,5,\n",
            "csv",
            Some((3, "tier_from")),
        ),
        ("EURO", "2026-10-01", CARD, "currency", None),
        ("EUR", "1 October", CARD, "effective", None),
    ];
    for (currency, effective, csv, field, at) in bad {
        let (status, e) = put_card(&app, currency, effective, csv).await;
        assert_eq!(status, 400, "{csv}: {e}");
        assert_eq!(e["error"]["details"]["field"], field, "{e}");
        if let Some((line, column)) = at {
            assert_eq!(
                (
                    e["error"]["details"]["line"].as_u64(),
                    e["error"]["details"]["column"].as_str()
                ),
                (Some(line), Some(column)),
                "{e}"
            );
            assert!(
                e["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(&format!("line {line}")),
                "{e}"
            );
        }
    }
    assert_eq!(app.get("/v1/rates").await.1["data"], json!([]), "nothing half-loaded");

    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/rates/example-eur.csv"
    ))
    .expect("the README's example card");
    let (status, card) = put_card(&app, "EUR", "2026-10-01", &example).await;
    assert_eq!(status, 201, "{card}");
    assert_eq!(
        (card["currency"].as_str(), card["effective"].as_str()),
        (Some("EUR"), Some("2026-10-01"))
    );
    assert_eq!(card["rates"], 18, "{card}");
    // The same currency and day again replaces it; another day is another card.
    assert_eq!(put_card(&app, "EUR", "2026-10-01", CARD).await.0, 201);
    assert_eq!(put_card(&app, "EUR", "2027-01-01", CARD).await.0, 201);
    let cards = app.get("/v1/rates").await.1;
    assert_eq!(cards["data"].as_array().map(Vec::len), Some(2), "{cards}");
}

#[tokio::test]
async fn delivered_messages_are_counted_once_and_priced_with_the_cards_tiers() {
    let app = spawn_app().await;
    assert_eq!(app.post("/v1/templates/sync", &json!({})).await.0, 200);
    assert_eq!(put_card(&app, "EUR", "2026-01-01", CARD).await.0, 201);
    for _ in 0..3 {
        template_delivered(&app, USER).await;
    }
    // A reply in the window: free (customer service), counted but not billed.
    app.open_window(USER).await;
    let (status, m) = app
        .post(
            "/v1/messages",
            &json!({"to": USER, "type": "text", "text": {"body": "on its way"}}),
        )
        .await;
    assert_eq!(status, 202, "{m}");
    app.message_reaches(m["id"].as_str().expect("id"), "read").await;
    // A market the card does not price: said apart, never free.
    template_delivered(&app, "447400123456").await;

    let (status, usage) = app.get("/v1/usage?group_by=category,market,type").await;
    assert_eq!(status, 200, "{usage}");
    assert_eq!(usage["currency"], "EUR", "{usage}");
    let utility = group(
        &usage,
        &[("category", "utility"), ("market", "US"), ("type", "regular")],
    )
    .expect("utility");
    // Each message once (Meta prices it on sent and delivered), two at 0.01 and one past the tier at 0.005.
    assert_eq!(
        (utility["messages"].as_i64(), utility["billable"].as_i64()),
        (Some(3), Some(3)),
        "{usage}"
    );
    assert_eq!(utility["cost"], "0.025", "{usage}");
    let free = group(&usage, &[("market", "US"), ("type", "free_customer_service")]).expect("the free reply");
    assert_eq!(
        (free["billable"].as_i64(), free["cost"].as_str()),
        (Some(0), Some("0")),
        "{usage}"
    );
    assert_eq!(
        usage["unpriced"],
        json!([{"market": "GB", "category": "utility", "messages": 1}]),
        "{usage}"
    );

    // The same as CSV.
    let csv = app
        .http
        .get(format!("{}/v1/usage?group_by=category,market", app.url))
        .bearer_auth(&app.key)
        .header("accept", "text/csv")
        .send()
        .await
        .expect("csv")
        .text()
        .await
        .expect("text");
    assert!(csv.starts_with("category,market,messages,billable,cost_EUR\n"), "{csv}");
    assert!(csv.contains("utility,US,3,3,0.025\n"), "{csv}");
    // Bad parameters are said, naming them.
    for (query, field) in [
        ("group_by=colour", "group_by"),
        ("from=yesterday", "from"),
        ("from=2026-12-01&to=2026-11-01", "to"),
    ] {
        let (status, e) = app.get(&format!("/v1/usage?{query}")).await;
        assert_eq!(
            (status, e["error"]["details"]["field"].as_str()),
            (400, Some(field)),
            "{query}: {e}"
        );
    }
}

#[tokio::test]
async fn a_spent_budget_alerts_once_and_stops_marketing_but_not_utility() {
    let app = spawn_app().await;
    assert_eq!(app.post("/v1/templates/sync", &json!({})).await.0, 200);
    assert_eq!(put_card(&app, "EUR", "2026-01-01", CARD).await.0, 201);
    // A marketing template, approved by Meta's review.
    let (status, t) = app
        .post(
            "/v1/templates",
            &json!({"name": "winter_sale", "language": "en_US", "category": "MARKETING", "components": [{"type": "BODY", "text": "30 % off this week"}]}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    eventually("the marketing template is approved", || async {
        let (_, list) = app.get("/v1/templates").await;
        list["data"]
            .as_array()?
            .iter()
            .find(|t| t["name"] == "winter_sale" && t["status"] == "APPROVED")
            .cloned()
    })
    .await;
    for _ in 0..3 {
        template_delivered(&app, USER).await;
    }
    let (status, e) = app.put("/v1/accounts/acme/budget", &json!({"amount": "lots"})).await;
    assert_eq!(
        (status, e["error"]["details"]["field"].as_str()),
        (400, Some("amount")),
        "{e}"
    );
    // 0.025 spent of 0.02: past 80 % and 100 % at once.
    let (status, budget) = app
        .put(
            "/v1/accounts/acme/budget",
            &json!({"amount": "0.02", "hard_stop": true}),
        )
        .await;
    assert_eq!(status, 200, "{budget}");
    assert_eq!(
        (budget["spent"].as_str(), budget["percent"].as_i64()),
        (Some("0.025"), Some(125)),
        "{budget}"
    );
    let alerts = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["type"] == "account.alert")
            .filter_map(|e| e["payload"]["alert"].as_str().map(str::to_string))
            .collect()
    };
    let got = eventually("both alerts", || async {
        let a = alerts(&app.events().await);
        (a.len() >= 2).then_some(a)
    })
    .await;
    assert_eq!(got, ["budget_80", "budget_100"]);
    // Setting it again alerts nothing more this month.
    app.put(
        "/v1/accounts/acme/budget",
        &json!({"amount": "0.02", "hard_stop": true}),
    )
    .await;
    assert_eq!(alerts(&app.events().await).len(), 2);

    let (status, e) = app
        .post(
            "/v1/messages",
            &json!({"to": USER, "type": "template", "template": {"name": "winter_sale", "language": {"code": "en_US"}}}),
        )
        .await;
    assert_eq!(status, 409, "{e}");
    assert_eq!(e["error"]["code"], "budget_exceeded", "{e}");
    assert_eq!(
        (
            e["error"]["details"]["spent"].as_str(),
            e["error"]["details"]["budget"].as_str()
        ),
        (Some("0.025"), Some("0.02")),
        "{e}"
    );
    let (status, m) = app
        .post(
            "/v1/messages",
            &json!({"to": USER, "type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}}),
        )
        .await;
    assert_eq!(status, 202, "utility goes on: {m}");
    let (_, budgets) = app.get("/v1/budgets").await;
    assert_eq!(budgets["data"][0]["name"], "acme", "{budgets}");
}

#[tokio::test]
async fn the_estimate_is_set_beside_metas_own_pricing_analytics() {
    let app = spawn_app().await;
    assert_eq!(app.post("/v1/templates/sync", &json!({})).await.0, 200);
    // The simulator prices utility at 0.004 USD, as its pricing analytics will say.
    assert_eq!(
        put_card(&app, "USD", "2026-01-01", "market,category,rate\nUS,utility,0.004\n")
            .await
            .0,
        201
    );
    for _ in 0..2 {
        template_delivered(&app, USER).await;
    }
    let (status, r) = app.post("/v1/usage/reconcile", &json!({})).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["errors"], json!([]), "{r}");
    let line = r["data"]
        .as_array()
        .and_then(|d| d.last())
        .cloned()
        .expect("today's line");
    assert_eq!(line["account"], "acme", "{r}");
    assert_eq!(
        (line["billable"].as_i64(), line["estimate"].as_str()),
        (Some(2), Some("0.008")),
        "{r}"
    );
    assert_eq!(
        (line["meta_volume"].as_i64(), line["meta_cost"].as_str()),
        (Some(2), Some("0.008")),
        "{r}"
    );
    assert_eq!(line["difference"], "0", "{r}");
    // A wrong card shows as a difference.
    assert_eq!(
        put_card(&app, "USD", "2026-01-01", "market,category,rate\nUS,utility,0.005\n")
            .await
            .0,
        201
    );
    let (_, r) = app.get("/v1/usage/reconciliation").await;
    let line = r["data"]
        .as_array()
        .and_then(|d| d.last())
        .cloned()
        .expect("today's line");
    assert_eq!(
        (line["estimate"].as_str(), line["difference"].as_str()),
        (Some("0.01"), Some("0.002")),
        "{r}"
    );
}

/// Runs `wagate ARGS` against this gateway; (success, stdout+stderr).
async fn cli(app: &TestApp, args: &[&str]) -> (bool, String) {
    run_wagate(&[("WAGATE_URL", &app.url), ("WAGATE_API_KEY", &app.key)], args).await
}

#[tokio::test]
async fn the_command_line_loads_a_card_and_prints_the_months_usage() {
    let app = spawn_app().await;
    assert_eq!(app.post("/v1/templates/sync", &json!({})).await.0, 200);
    let dir = tempfile_dir();
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "market,category,rate\nUS,utility,cheap\n").expect("write");
    let (ok, out) = cli(
        &app,
        &[
            "rates",
            "import",
            bad.to_str().expect("path"),
            "--currency",
            "EUR",
            "--effective",
            "2026-01-01",
        ],
    )
    .await;
    assert!(!ok && out.contains("line 2, column rate"), "{out}");
    let good = dir.join("card.csv");
    std::fs::write(&good, CARD).expect("write");
    let (ok, out) = cli(
        &app,
        &[
            "rates",
            "import",
            good.to_str().expect("path"),
            "--currency",
            "EUR",
            "--effective",
            "2026-01-01",
        ],
    )
    .await;
    assert!(ok, "{out}");
    assert!(
        out.contains("loaded card 1 in EUR from 2026-01-01: 3 rates for 2 markets"),
        "{out}"
    );
    for _ in 0..3 {
        template_delivered(&app, USER).await;
    }
    let month = app.get("/v1/usage").await.1["from"].as_str().expect("from")[..7].to_string();
    let (ok, out) = cli(&app, &["usage", "--month", &month, "--by", "category,market"]).await;
    assert!(ok, "{out}");
    let line = out.lines().find(|l| l.starts_with("utility")).unwrap_or_default();
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cells, ["utility", "US", "3", "3", "0.025"], "{out}");
    assert!(out.contains("cost EUR"), "{out}");
    let (ok, out) = cli(&app, &["usage", "--month", "November"]).await;
    assert!(!ok && out.contains("YYYY-MM"), "{out}");
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wagate-usage-cli-{}", wagate_core::ids::event_id()));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

#[tokio::test]
async fn a_tenant_sees_its_own_usage_and_budgets_only() {
    let app = spawn_app().await;
    assert_eq!(app.post("/v1/templates/sync", &json!({})).await.0, 200);
    assert_eq!(put_card(&app, "EUR", "2026-01-01", CARD).await.0, 201);
    template_delivered(&app, USER).await;
    alpha_shop(&app).await;
    let (status, k) = app
        .post(
            "/v1/keys",
            &json!({"name": "alpha", "scopes": ["admin"], "tenant": "alpha"}),
        )
        .await;
    assert_eq!(status, 201, "{k}");
    let alpha = k["key"].as_str().expect("key").to_string();
    assert_eq!(
        app.put("/v1/accounts/acme/budget", &json!({"amount": "5"})).await.0,
        200
    );
    // acme's usage and budget are not alpha's.
    let (status, usage) = app.get_as(&alpha, "/v1/usage?group_by=account").await;
    assert_eq!((status, usage["groups"].clone()), (200, json!([])), "{usage}");
    let (status, usage) = app.get("/v1/usage?group_by=account").await;
    assert_eq!(
        (status, usage["groups"][0]["account"].as_str()),
        (200, Some("acme")),
        "{usage}"
    );
    let put = |tenant: &'static str| {
        let (app, alpha) = (&app, alpha.clone());
        async move {
            app.request_as(
                &alpha,
                reqwest::Method::PUT,
                &format!("/v1/tenants/{tenant}/budget"),
                Some(&json!({"amount": "100", "hard_stop": true})),
            )
            .await
        }
    };
    let (status, budget) = put("alpha").await;
    assert_eq!(status, 200, "{budget}");
    assert_eq!(
        (
            budget["scope"].as_str(),
            budget["name"].as_str(),
            budget["spent"].as_str()
        ),
        (Some("tenant"), Some("alpha"), Some("0")),
        "{budget}"
    );
    assert_eq!(put("bravo").await.0, 404, "another tenant's budget is not found");
    let (_, budgets) = app.get_as(&alpha, "/v1/budgets").await;
    let names: Vec<&str> = budgets["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert_eq!(names, ["alpha"], "{budgets}");
}
