//! The configuration's loading and checks.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Env {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn defaults_load_and_are_sandbox() {
    let (c, w) = Config::load(None, &env(&[]), &Overrides::default()).expect("defaults are valid");
    assert!(c.is_sandbox());
    assert_eq!(c.bind, "127.0.0.1:8080");
    assert!(w.is_empty());
}

#[test]
fn a_misspelt_variable_gets_a_suggestion_and_the_default_account_is_read() {
    let e = env(&[
        ("WAGATE_DATABSE_URL", "sqlite://x.db"),
        ("WAGATE_NOTHING_LIKE_IT", "1"),
        ("WAGATE_DEFAULT_ACCOUNT", "shop"),
    ]);
    let (c, w) = Config::load(None, &e, &Overrides::default()).expect("valid");
    assert_eq!(c.default_account.as_deref(), Some("shop"));
    let about = |name: &str| w.iter().find(|l| l.starts_with(name)).cloned().unwrap_or_default();
    assert!(
        about("WAGATE_DATABSE_URL").contains("did you mean WAGATE_DATABASE_URL?"),
        "{w:?}"
    );
    let far = about("WAGATE_NOTHING_LIKE_IT");
    assert!(far.contains("is ignored") && !far.contains("did you mean"), "{w:?}");
}

#[test]
fn an_s3_media_store_is_checked_naming_each_key() {
    let e = env(&[
        ("WAGATE_MEDIA_STORE", "s3"),
        ("WAGATE_MEDIA_S3_ENDPOINT", "http://127.0.0.1:9000"),
    ]);
    let problems = Config::load(None, &e, &Overrides::default())
        .expect_err("no bucket, plain http")
        .to_string();
    assert!(problems.contains("media.s3.bucket is empty"), "{problems}");
    assert!(problems.contains("media.s3.allow_http = true"), "{problems}");
    let e = env(&[
        ("WAGATE_MEDIA_STORE", "s3"),
        ("WAGATE_MEDIA_S3_BUCKET", "media"),
        ("WAGATE_MEDIA_S3_ENDPOINT", "http://127.0.0.1:9000"),
        ("WAGATE_MEDIA_S3_ALLOW_HTTP", "true"),
    ]);
    let (c, _) = Config::load(None, &e, &Overrides::default()).expect("valid");
    assert_eq!(c.media.s3.bucket, "media");
    assert!(c.media.s3.allow_http);
    let e = env(&[("WAGATE_MEDIA_STORE", "nfs")]);
    let problems = Config::load(None, &e, &Overrides::default())
        .expect_err("unknown")
        .to_string();
    assert!(problems.contains("media.store = `nfs`"), "{problems}");
}

#[test]
fn env_beats_file_and_flags_beat_env() {
    let dir = wagate_store::testing::TestDir::new("wagate-cfg");
    let path = dir.join("wagate.toml");
    std::fs::write(
        &path,
        "bind = \"127.0.0.1:1111\"\ndatabase_url = \"sqlite://file.db\"\n",
    )
    .expect("write");
    let e = env(&[("WAGATE_BIND", "127.0.0.1:2222")]);
    let (c, _) = Config::load(Some(&path), &e, &Overrides::default()).expect("valid");
    assert_eq!(c.bind, "127.0.0.1:2222");
    assert_eq!(c.database_url, "sqlite://file.db");
    let (c, _) = Config::load(
        Some(&path),
        &e,
        &Overrides {
            bind: Some("127.0.0.1:3333".into()),
            ..Default::default()
        },
    )
    .expect("valid");
    assert_eq!(c.bind, "127.0.0.1:3333");
}

#[test]
fn server_limits_are_checked_with_one_line_each() {
    let dir = wagate_store::testing::TestDir::new("wagate-cfg-limits");
    let file = dir.join("wagate.toml");
    std::fs::write(
        &file,
        "[server]\nheader_timeout_seconds = 0\nrequest_timeout_seconds = 20\nmax_connections = 3\nmax_uri_bytes = 10\n[sender]\ngraph_timeout_seconds = 30\n",
    )
    .expect("write");
    let errors = Config::load(Some(&file), &env(&[]), &Overrides::default())
        .expect_err("bad limits")
        .0;
    for key in [
        "server.header_timeout_seconds",
        "server.request_timeout_seconds",
        "server.max_connections",
        "server.max_uri_bytes",
    ] {
        assert_eq!(
            errors.iter().filter(|l| l.starts_with(key)).count(),
            1,
            "{key}: {errors:?}"
        );
    }
    let (c, _) = Config::load(None, &env(&[]), &Overrides::default()).expect("defaults");
    assert_eq!(
        (c.server.header_timeout_seconds, c.server.max_connections),
        (10, 10_000)
    );
}

#[test]
fn meta_variables_make_an_account() {
    let e = env(&[
        ("WHATSAPP_ACCESS_TOKEN", "tok"),
        ("WHATSAPP_PHONE_NUMBER_ID", "106540352242922"),
        ("WHATSAPP_BUSINESS_ACCOUNT_ID", "102290129340398"),
        ("WHATSAPP_APP_SECRET", "secret"),
        ("WHATSAPP_WEBHOOK_VERIFY_TOKEN", "verify"),
    ]);
    let (c, _) = Config::load(None, &e, &Overrides::default()).expect("valid");
    assert!(!c.is_sandbox());
    assert_eq!(c.accounts[0].waba_id, "102290129340398");
    assert_eq!(c.accounts[0].verify_token(), "verify");
}

#[test]
fn each_problem_gets_its_own_line() {
    let e = env(&[
        ("WAGATE_BIND", "nowhere"),
        ("WAGATE_DATABASE_URL", "mysql://x"),
        ("WHATSAPP_ACCESS_TOKEN", "tok"),
        ("WHATSAPP_API_VERSION", "23"),
        ("WAGATE_TYPO", "1"),
    ]);
    let err = Config::load(None, &e, &Overrides::default()).expect_err("invalid");
    let text = err.to_string();
    for needle in [
        "WAGATE_BIND",
        "WAGATE_DATABASE_URL",
        "WHATSAPP_PHONE_NUMBER_ID is not set",
        "WHATSAPP_APP_SECRET is not set",
        "v23.0",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
    assert!(err.0.len() >= 5, "{text}");
}

#[test]
fn unknown_file_keys_are_named() {
    let dir = wagate_store::testing::TestDir::new("wagate-cfg2");
    let path = dir.join("wagate.toml");
    std::fs::write(&path, "[webhook]\nmax_body_bites = 5\n").expect("write");
    let err = Config::load(Some(&path), &env(&[]), &Overrides::default()).expect_err("invalid");
    assert!(err.to_string().contains("max_body_bites"), "{err}");
}

#[test]
fn the_simulators_variables_are_not_warned_about() {
    let e = env(&[
        ("WAGATE_SIM_STATUS_DELAYS_MS", "10,10,10"),
        ("WAGATE_SIM_WEBHOOK_URL", "http://127.0.0.1:1/x"),
        ("WAGATE_SIM_WEBHOOK_VERSION", "v24.0"),
        ("WAGATE_SIM_WEBHOOK_RETRY_SCALE", "0.001"),
    ]);
    let (_, w) = Config::load(None, &e, &Overrides::default()).expect("valid");
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn unknown_wagate_vars_are_warned_about() {
    let (_, w) = Config::load(None, &env(&[("WAGATE_BIN", "x")]), &Overrides::default()).expect("valid");
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("WAGATE_BIN"));
}
