//! The console over HTTP, as a browser speaks to it (cookies, forms, redirects): sign-in and its
//! limits, sessions that never hold the key in the browser, CSRF, the security headers, tenant
//! isolation, and a reply sent from the inbox. The same flows in a real browser are in
//! `console_browser.rs`.

use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::json;

use crate::helpers::*;

/// The console's pages besides the overview.
const PAGES: [&str; 8] = [
    "/console/inbox",
    "/console/templates",
    "/console/hooks",
    "/console/events",
    "/console/accounts",
    "/console/keys",
    "/console/audit",
    "/console/usage",
];

/// A browser without JavaScript: it follows nothing by itself and keeps cookies by hand.
pub(crate) struct Browser {
    pub(crate) http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

impl Browser {
    pub(crate) fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .expect("client"),
            base: base.to_string(),
            cookies: Vec::new(),
        }
    }

    fn keep(&mut self, r: &reqwest::Response) {
        for v in r.headers().get_all(SET_COOKIE) {
            let text = v.to_str().expect("cookie text");
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (k, v) = pair.split_once('=').expect("name=value");
            self.cookies.retain(|(name, _)| name != k);
            if !v.is_empty() {
                self.cookies.push((k.to_string(), v.to_string()));
            }
        }
    }

    pub(crate) fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub(crate) async fn get(&mut self, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .expect("get");
        self.keep(&r);
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        (status, r.text().await.expect("text"), headers)
    }

    pub(crate) async fn post(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (u16, String, reqwest::header::HeaderMap) {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("post");
        self.keep(&r);
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        (status, r.text().await.expect("text"), headers)
    }

    /// The value of the hidden `csrf` field of the page.
    pub(crate) fn csrf(page: &str) -> String {
        let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
        page[at..].split('"').next().expect("value").to_string()
    }

    /// Signs in with `key`; returns the answer's status.
    pub(crate) async fn sign_in(&mut self, key: &str) -> u16 {
        let (_, page, _) = self.get("/console/login").await;
        let csrf = Self::csrf(&page);
        let (status, _, _) = self.post("/console/login", &[("csrf", &csrf), ("api_key", key)]).await;
        status
    }
}

#[tokio::test]
async fn signing_in_makes_a_server_side_session_and_every_page_needs_one() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app.url);
    // No session: every page sends the browser to the sign-in form; an API key as a bearer token
    // is not a console session.
    for page in ["/console", "/console/live"].into_iter().chain(PAGES) {
        let (status, _, headers) = b.get(page).await;
        assert_eq!(
            (status, headers.get(LOCATION).map(|v| v.to_str().unwrap_or_default())),
            (303, Some("/console/login")),
            "{page}"
        );
        let r = app
            .http
            .get(format!("{}{page}", app.url))
            .bearer_auth(&app.key)
            .send()
            .await
            .expect("get");
        assert!(
            r.url().path() == "/console/login" || r.status().as_u16() == 303,
            "{page} took a bearer key"
        );
    }
    let (status, _, headers) = b.get("/").await;
    assert_eq!(
        (status, headers.get(LOCATION).map(|v| v.to_str().unwrap_or_default())),
        (303, Some("/console"))
    );

    // The form: the key field and a submit button, and the headers every console page carries.
    let (status, page, headers) = b.get("/console/login").await;
    assert_eq!(status, 200);
    assert!(page.contains("<input id=\"api_key\" name=\"api_key\"") && page.contains("<button type=\"submit\">"));
    let csp = headers
        .get("content-security-policy")
        .expect("CSP")
        .to_str()
        .unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(
        headers.get("x-frame-options").map(|v| v.to_str().unwrap_or_default()),
        Some("DENY")
    );
    assert_eq!(
        headers.get("referrer-policy").map(|v| v.to_str().unwrap_or_default()),
        Some("same-origin")
    );
    assert!(!page.contains("<script>"), "no inline script");

    // A wrong key: refused, and said so.
    assert_eq!(b.sign_in("wg_not_a_key").await, 401);
    // The right key: a session cookie (HttpOnly, SameSite=Strict) that is not the key.
    let (_, page, _) = b.get("/console/login").await;
    let csrf = Browser::csrf(&page);
    let (status, _, headers) = b
        .post("/console/login", &[("csrf", &csrf), ("api_key", &app.key)])
        .await;
    assert_eq!(status, 303);
    let set: Vec<String> = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap_or_default().to_string())
        .collect();
    let session = set
        .iter()
        .find(|c| c.starts_with("wagate_session="))
        .expect("a session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    assert!(!session.contains(&app.key), "the key is never in the browser");
    let (status, page, _) = b.get("/console").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-account=\"acme\""), "{page}");
    for path in PAGES {
        let (status, page, _) = b.get(path).await;
        assert_eq!(status, 200, "{path}: {page}");
    }
    // Signing out needs the session's CSRF token; afterwards the session is gone.
    let (status, _, _) = b.post("/console/logout", &[("csrf", "csrf_forged")]).await;
    assert_eq!(status, 403);
    let (_, page, _) = b.get("/console").await;
    let (status, _, _) = b.post("/console/logout", &[("csrf", &Browser::csrf(&page))]).await;
    assert_eq!(status, 303);
    let (status, _, _) = b.get("/console").await;
    assert_eq!(status, 303, "signed out");
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_address_and_a_forged_login_form_is_refused() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app.url);
    // A form posted without the login page's token (from another site, say) is refused.
    let (status, _, _) = b.post("/console/login", &[("csrf", "x"), ("api_key", &app.key)]).await;
    assert_eq!(status, 403);
    for _ in 0..5 {
        assert_eq!(b.sign_in("wg_guess").await, 401);
    }
    // The sixth try is refused whatever the key, the right one included.
    assert_eq!(b.sign_in("wg_guess").await, 429);
    assert_eq!(b.sign_in(&app.key).await, 429);
}

#[tokio::test]
async fn a_reply_goes_out_from_the_inbox_and_a_forged_form_sends_nothing() {
    let app = spawn_app().await;
    app.open_window(USER).await;
    let mut b = Browser::new(&app.url);
    assert_eq!(b.sign_in(&app.key).await, 303);
    let (_, page, _) = b.get("/console/inbox").await;
    assert!(page.contains(&format!("data-contact=\"{USER}\"")), "{page}");
    let (status, page, _) = b.get(&format!("/console/inbox/{USER}")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<textarea name=\"text\""),
        "the window is open: free text"
    );
    assert!(page.contains("data-message-id=\"msg_"), "{page}");

    let sent_before = app.sim_sent().await.len();
    let (status, _, _) = b
        .post(
            &format!("/console/inbox/{USER}/send"),
            &[("csrf", "csrf_forged"), ("text", "forged")],
        )
        .await;
    assert_eq!(status, 403);
    let csrf = Browser::csrf(&page);
    let (status, _, headers) = b
        .post(
            &format!("/console/inbox/{USER}/send"),
            &[("csrf", &csrf), ("account", "acme"), ("text", "Your parcel left today")],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        headers.get(LOCATION).map(|v| v.to_str().unwrap_or_default()),
        Some(format!("/console/inbox/{USER}").as_str())
    );
    let sent = eventually("the reply reaches Meta", || async {
        let sent = app.sim_sent().await;
        (sent.len() > sent_before).then_some(sent)
    })
    .await;
    assert!(sent
        .iter()
        .all(|m| m.to_string().contains("Your parcel left today") || !m.to_string().contains("forged")));
    assert!(
        sent.iter().any(|m| m.to_string().contains("Your parcel left today")),
        "{sent:?}"
    );
    let (_, page, _) = b.get(&format!("/console/inbox/{USER}")).await;
    assert!(page.contains("Your parcel left today"), "{page}");
}

#[tokio::test]
async fn with_the_window_closed_only_a_template_is_offered() {
    let app = spawn_app().await;
    let (status, _) = app.post("/v1/templates/sync", &json!({})).await;
    assert_eq!(status, 200);
    let mut b = Browser::new(&app.url);
    assert_eq!(b.sign_in(&app.key).await, 303);
    let (status, page, _) = b.get("/console/inbox/16505550000").await;
    assert_eq!(status, 200, "a number never seen opens as an empty thread");
    assert!(
        !page.contains("<textarea name=\"text\""),
        "no free text outside the window"
    );
    assert!(page.contains("<select name=\"template\""), "{page}");
    assert!(
        page.contains("hello_world|en_US"),
        "the approved templates are offered: {page}"
    );
    let csrf = Browser::csrf(&page);
    let (status, _, headers) = b
        .post(
            "/console/inbox/16505550000/send",
            &[
                ("csrf", &csrf),
                ("account", "acme"),
                ("template", "hello_world|en_US"),
                ("params", ""),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let to = headers
        .get(LOCATION)
        .map(|v| v.to_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    assert!(!to.contains("error"), "{to}");
    let (_, page, _) = b.get("/console/inbox/16505550000").await;
    // As the user saw it: the catalog's header, body and footer.
    assert!(page.contains("<p class=\"head\">Hello World</p>"), "{page}");
    assert!(page.contains("Welcome and congratulations!!"), "{page}");
    assert!(page.contains("WhatsApp Business Platform sample message"), "{page}");
    // The number it went to is a conversation now.
    let (_, page, _) = b.get("/console/inbox").await;
    assert!(page.contains("data-contact=\"16505550000\""), "{page}");
}

#[tokio::test]
async fn a_tenants_user_sees_only_its_tenant_in_the_console() {
    let app = spawn_app().await;
    app.open_window(USER).await;
    alpha_shop(&app).await;
    let (status, key) = app
        .post(
            "/v1/keys",
            &json!({"name": "alpha-console", "scopes": ["admin"], "tenant": "alpha"}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let mut b = Browser::new(&app.url);
    assert_eq!(b.sign_in(key["key"].as_str().expect("key")).await, 303);
    let (_, page, _) = b.get("/console").await;
    assert!(
        page.contains("data-account=\"alpha-shop\"") && !page.contains("data-account=\"acme\""),
        "{page}"
    );
    let (_, page, _) = b.get("/console/inbox").await;
    assert!(
        !page.contains(&format!("data-contact=\"{USER}\"")),
        "acme's conversation is not alpha's: {page}"
    );
    let (_, page, _) = b.get(&format!("/console/inbox/{USER}")).await;
    assert!(!page.contains("data-message-id=\"msg_"), "nor its messages: {page}");
    let (_, page, _) = b.get("/console/accounts").await;
    assert!(page.contains("alpha-shop") && !page.contains(">acme<"), "{page}");
}

#[tokio::test]
async fn the_console_can_be_turned_off() {
    let app = spawn_app_with(|c| c.console.enabled = false).await;
    let mut b = Browser::new(&app.url);
    let (status, _, _) = b.get("/console/login").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn keys_hooks_accounts_and_templates_are_managed_from_the_console() {
    let app = spawn_app_with(|c| c.hooks.allow_private_networks = true).await;
    let mut b = Browser::new(&app.url);
    assert_eq!(b.sign_in(&app.key).await, 303);

    // A key: shown once on the page, and it works; then revoked, and it does not.
    let (_, page, _) = b.get("/console/keys").await;
    let csrf = Browser::csrf(&page);
    let (status, page, _) = b
        .post(
            "/console/keys",
            &[("csrf", &csrf), ("name", "reporting"), ("scope_read", "true")],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let at = page.find("data-new-key>").expect("the new key, shown") + "data-new-key>".len();
    let key = page[at..].split('<').next().expect("key").to_string();
    assert_eq!(app.get_as(&key, "/v1/messages").await.0, 200);
    let id = app.get("/v1/keys").await.1["data"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["name"] == "reporting")
        .expect("the key")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let (status, _, _) = b.post(&format!("/console/keys/{id}/revoke"), &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    assert_eq!(app.get_as(&key, "/v1/messages").await.0, 401);

    // A hook: made with its secret shown once; a bad URL is refused with the reason.
    let (status, page, _) = b
        .post(
            "/console/hooks",
            &[("csrf", &csrf), ("url", "not a url"), ("events", "message.*")],
        )
        .await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("is not a URL"), "{page}");
    let (status, page, _) = b
        .post(
            "/console/hooks",
            &[
                ("csrf", &csrf),
                ("url", "http://127.0.0.1:9/hook"),
                ("events", "message.*"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("<code class=\"secret\">whsec_"), "{page}");
    let hooks = app.get("/v1/hooks").await.1;
    assert_eq!(hooks["data"][0]["events"], json!(["message.*"]), "{hooks}");

    // The account: paused and resumed by hand.
    let (status, _, _) = b.post("/console/accounts/acme/pause", &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    assert!(app.get("/v1/accounts/acme").await.1["paused"].is_object());
    let (_, page, _) = b.get("/console/accounts").await;
    assert!(page.contains("Resume sending"), "{page}");
    let (status, _, _) = b.post("/console/accounts/acme/resume", &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    assert!(app.get("/v1/accounts/acme").await.1["paused"].is_null());
    let (status, page, _) = b.get("/console/accounts/acme/health").await;
    assert_eq!(status, 200);
    assert!(page.contains("data-check=\"token\""), "{page}");

    // The template catalog, synced from Meta with a button.
    let (status, _, headers) = b.post("/console/templates/sync", &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    let to = headers
        .get(LOCATION)
        .map(|v| v.to_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    assert!(to.contains("notice="), "{to}");
    let (_, page, _) = b.get(&to).await;
    assert!(page.contains("hello_world"), "{page}");
}

#[tokio::test]
async fn a_read_only_key_sees_no_buttons_that_would_fail() {
    let app = spawn_app().await;
    app.open_window(USER).await;
    let (status, key) = app
        .post("/v1/keys", &json!({"name": "viewer", "scopes": ["read"]}))
        .await;
    assert_eq!(status, 201);
    let mut b = Browser::new(&app.url);
    assert_eq!(b.sign_in(key["key"].as_str().expect("key")).await, 303);
    let (_, page, _) = b.get(&format!("/console/inbox/{USER}")).await;
    assert!(page.contains("data-message-id"), "it reads: {page}");
    assert!(
        !page.contains("name=\"text\"") && !page.contains("Mark as read"),
        "no reply box, no read button: {page}"
    );
    let (_, page, _) = b.get("/console/accounts").await;
    assert!(
        !page.contains("Pause sending") && !page.contains("data-connect"),
        "{page}"
    );
    let (_, page, _) = b.get("/console").await;
    assert!(
        !page.contains("href=\"/console/keys\"") && !page.contains("href=\"/console/hooks\""),
        "{page}"
    );
}

#[tokio::test]
async fn the_api_reference_is_served_offline_from_the_openapi_document() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app.url);
    let (status, page, headers) = b.get("/docs").await;
    assert_eq!(status, 200);
    assert!(headers.get("content-security-policy").is_some());
    let doc = app.get_json(&format!("{}/openapi.json", app.url)).await;
    // Every path of the document is on the page, and every schema.
    for path in doc["paths"].as_object().expect("paths").keys() {
        assert!(page.contains(&format!("<code>{path}</code>")), "{path} is missing");
    }
    for name in doc["components"]["schemas"].as_object().expect("schemas").keys() {
        assert!(
            page.contains(&format!("id=\"schema-{name}\"")),
            "schema {name} is missing"
        );
    }
    assert!(
        !page.contains("<script") && !page.contains("src=\"http") && !page.contains("href=\"http"),
        "nothing loaded from elsewhere"
    );
}

#[tokio::test]
async fn the_overview_charts_the_last_day_and_groups_failures_by_metas_code() {
    let app = spawn_app().await;
    app.open_window(USER).await;
    // Meta refuses one send for good (131026: the user cannot receive it).
    app.fault(json!({"code": 131026, "http_status": 400, "count": 1, "path_contains": "/messages"}))
        .await;
    let (status, m) = app
        .post(
            "/v1/messages",
            &json!({"to": USER, "type": "text", "text": {"body": "one"}}),
        )
        .await;
    assert_eq!(status, 202, "{m}");
    app.message_reaches(m["id"].as_str().expect("id"), "failed").await;
    let mut b = Browser::new(&app.url);
    assert_eq!(b.sign_in(&app.key).await, 303);
    let (_, page, _) = b.get("/console").await;
    assert!(page.contains("<svg class=\"chart\""), "{page}");
    for series in ["received", "sent", "delivered", "read", "failed"] {
        assert!(page.contains(&format!("data-series=\"{series}\"")), "{series}");
    }
    let total = |kind: &str| -> i64 {
        let at = page.find(&format!("data-total=\"{kind}\"")).expect("legend entry");
        let rest = &page[at..];
        let strong = rest.find("<strong>").expect("total") + "<strong>".len();
        rest[strong..].split('<').next().expect("n").parse().expect("a number")
    };
    assert!(total("received") >= 1, "the user's message counts");
    assert!(total("sent") >= 1, "the send counts");
    assert!(
        page.contains("data-failure=\"131026\""),
        "the failure is grouped by its code: {page}"
    );
    assert!(
        page.contains("data-journal") && page.contains("0 webhook(s) in quarantine"),
        "the journal's state: {page}"
    );
}

#[tokio::test]
async fn events_are_filtered_read_and_delivered_again_from_the_console() {
    let app = spawn_app().await;
    app.open_window(USER).await;
    let mut b = Browser::new(&app.url);
    assert_eq!(b.sign_in(&app.key).await, 303);
    let (status, page, _) = b.get("/console/events?type=message.received").await;
    assert_eq!(status, 200);
    let at = page.find("data-event=\"").expect("an event") + "data-event=\"".len();
    let id = page[at..].split('"').next().expect("id").to_string();
    let (status, page, _) = b.get("/console/events?type=not.a.type").await;
    assert_eq!(status, 200);
    assert!(page.contains("is not an event type"), "{page}");
    let (status, page, _) = b.get(&format!("/console/events/{id}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("message.received") && page.contains("wamid"), "{page}");
    let csrf = Browser::csrf(&page);
    let (status, _, headers) = b
        .post(&format!("/console/events/{id}/replay"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 303);
    assert!(headers
        .get(LOCATION)
        .is_some_and(|l| l.to_str().unwrap_or_default().contains("notice=")));
    let (status, page, _) = b.get("/console/journal").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Nothing in quarantine"), "{page}");
}

#[tokio::test]
async fn an_image_the_user_sent_shows_in_the_thread() {
    use base64::Engine as _;
    let app = spawn_app().await;
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((0..5_000u32).map(|i| (i * 7 % 251) as u8));
    let image = json!({"type": "image", "image": {"data_base64": base64::engine::general_purpose::STANDARD.encode(&bytes), "mime_type": "image/jpeg", "caption": "the box arrived broken"}});
    app.user_sends(USER, image).await;
    let mut b = Browser::new(&app.url);
    assert_eq!(b.sign_in(&app.key).await, 303);
    let page = eventually_page(&mut b, &format!("/console/inbox/{USER}"), "class=\"thumb\"").await;
    let at = page.find("class=\"thumb\" src=\"").expect("a thumbnail") + "class=\"thumb\" src=\"".len();
    let src = page[at..].split('"').next().expect("src").to_string();
    assert!(src.starts_with("/console/media/med_"), "{src}");
    assert!(page.contains("the box arrived broken"));
    // The file is served once its download is done (409 while it is in progress).
    let (http, cookie) = (b.http.clone(), b.cookie_header());
    let got = eventually("the image is served", || async {
        let r = http
            .get(format!("{}{src}", app.url))
            .header(COOKIE, cookie.clone())
            .send()
            .await
            .expect("get");
        match r.status().as_u16() {
            200 => Some(r.bytes().await.expect("bytes").to_vec()),
            409 => None,
            other => panic!("{src} answered {other}"),
        }
    })
    .await;
    assert_eq!(got, bytes, "the exact bytes");
    // Without the session, nothing: the way to the sign-in form.
    let (status, _, _) = Browser::new(&app.url).get(&src).await;
    assert_eq!(status, 303);
}

/// Reads `path` until its page holds `needle` (up to 10 s).
pub(crate) async fn eventually_page(b: &mut Browser, path: &str, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, page, _) = b.get(path).await;
        if page.contains(needle) {
            return page;
        }
        assert!(tokio::time::Instant::now() < deadline, "{path} never showed {needle}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_template_is_created_from_the_console_and_a_bad_one_is_refused_at_its_field() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app.url);
    assert_eq!(b.sign_in(&app.key).await, 303);
    let (status, page, _) = b.get("/console/templates").await;
    assert_eq!(status, 200);
    assert!(page.contains("data-preview=\"body\""), "the editor: {page}");
    let csrf = Browser::csrf(&page);
    let (status, page, _) = b
        .post(
            "/console/templates",
            &[
                ("csrf", &csrf),
                ("name", "Order Shipped"),
                ("language", "en_US"),
                ("category", "UTILITY"),
                ("body", "Hi"),
            ],
        )
        .await;
    assert_eq!(status, 400, "{page}");
    assert!(
        page.contains("data-error-field=\"name\""),
        "the refusal names the field: {page}"
    );
    let (status, _, headers) = b
        .post(
            "/console/templates",
            &[
                ("csrf", &csrf),
                ("name", "order_shipped"),
                ("language", "en_US"),
                ("category", "UTILITY"),
                ("body", "Hi {{1}}, order {{2}} has shipped."),
                ("examples", "Kerry, #1042"),
                ("buttons", "Track it"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let to = headers
        .get(LOCATION)
        .map(|v| v.to_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    let (_, page, _) = b.get(&to).await;
    assert!(page.contains("data-template=\"order_shipped\""), "{page}");
    let (_, t) = app.get("/v1/templates/order_shipped").await;
    let body = t["data"][0]["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["type"] == "BODY")
        .cloned()
        .expect("a body");
    assert_eq!(body["example"]["body_text"][0], json!(["Kerry", "#1042"]), "{t}");
}

/// A gateway whose identity provider is the simulator's.
async fn app_with_the_simulators_idp() -> TestApp {
    spawn_app_with(|c| {
        let issuer = format!("{}/_sim/oidc", c.graph_url);
        c.auth.jwt.jwks_url = format!("{issuer}/jwks.json");
        c.auth.jwt.issuer = issuer;
        c.auth.jwt.audience = "wagate".into();
    })
    .await
}

#[tokio::test]
async fn signing_in_with_the_identity_provider_uses_the_code_flow_with_pkce() {
    let app = app_with_the_simulators_idp().await;
    let mut b = Browser::new(&app.url);
    let (_, page, _) = b.get("/console/login").await;
    assert!(
        page.contains("href=\"/console/login/oidc\""),
        "the provider is offered: {page}"
    );
    let (status, _, headers) = b.get("/console/login/oidc").await;
    assert_eq!(status, 303);
    let to = headers
        .get(LOCATION)
        .expect("to the provider")
        .to_str()
        .expect("text")
        .to_string();
    assert!(to.starts_with(&format!("{}/_sim/oidc/authorize?", app.sim_url)), "{to}");
    assert!(
        to.contains("code_challenge_method=S256") && to.contains("code_challenge="),
        "{to}"
    );
    // The provider's login page: the user picks a test user; the provider sends a code back.
    let page = app.http.get(&to).send().await.expect("get").text().await.expect("page");
    assert!(page.contains("value=\"ana\""), "{page}");
    let query: Vec<(String, String)> = url::Url::parse(&to).expect("url").query_pairs().into_owned().collect();
    let mut fields: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| ["client_id", "redirect_uri", "state", "code_challenge", "scope"].contains(&k.as_str()))
        .cloned()
        .collect();
    fields.push(("user".into(), "ana".into()));
    let back = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
        .post(format!("{}/_sim/oidc/authorize", app.sim_url))
        .form(&fields)
        .send()
        .await
        .expect("consent");
    assert_eq!(back.status().as_u16(), 302);
    let callback = back
        .headers()
        .get(LOCATION)
        .expect("back")
        .to_str()
        .expect("text")
        .to_string();
    let path = callback.strip_prefix(&app.url).expect("to the gateway").to_string();
    assert!(path.starts_with("/console/login/callback?code="), "{path}");
    // A callback whose state is not the browser's is refused.
    let mut stranger = Browser::new(&app.url);
    let (status, _, _) = stranger.get(&path).await;
    assert_eq!(status, 403);
    let (status, page, _) = b.get(&path).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("url=/console"), "{page}");
    let (status, page, _) = b.get("/console").await;
    assert_eq!(status, 200, "{page}");
    // The caller is the token's subject (or its email): the provider's user.
    assert!(page.contains(">ana</span>"), "signed in as the provider's user: {page}");
    // The provider's token is kept sealed, not in clear.
    let kept = raw_texts(
        &app.gateway.state.config.database_url,
        "SELECT key_hash FROM console_sessions",
    )
    .await;
    assert!(kept.iter().any(|k| k.starts_with("jwt:")), "{kept:?}");
    assert!(kept.iter().all(|k| !k.contains("eyJ")), "no token in clear: {kept:?}");
    // The code is used once.
    let (status, _, _) = b.get(&path).await;
    assert_ne!(status, 200);
}

/// Every console route, as its method and a path: the authorization matrix of the console.
/// `/console/login*` and `/docs` are open; the assets are public files.
const ROUTES: [(&str, &str); 36] = [
    ("GET", "/console"),
    ("GET", "/console/inbox"),
    ("GET", "/console/inbox/new?to=16505550000"),
    ("GET", "/console/inbox/16505551234"),
    ("POST", "/console/inbox/16505551234/send"),
    ("POST", "/console/inbox/16505551234/read"),
    ("GET", "/console/media/med_x"),
    ("GET", "/console/templates"),
    ("POST", "/console/templates"),
    ("POST", "/console/templates/sync"),
    ("POST", "/console/templates/hello_world/delete"),
    ("GET", "/console/hooks"),
    ("POST", "/console/hooks"),
    ("GET", "/console/hooks/hook_x"),
    ("POST", "/console/hooks/hook_x/replay"),
    ("GET", "/console/events"),
    ("GET", "/console/events/evt_x"),
    ("POST", "/console/events/evt_x/replay"),
    ("GET", "/console/journal"),
    ("POST", "/console/journal/release"),
    ("POST", "/console/journal/1/requeue"),
    ("GET", "/console/accounts"),
    ("POST", "/console/accounts/connect"),
    ("GET", "/console/accounts/acme/health"),
    ("POST", "/console/accounts/acme/fix"),
    ("POST", "/console/accounts/acme/pause"),
    ("GET", "/console/keys"),
    ("POST", "/console/keys"),
    ("POST", "/console/keys/key_x/revoke"),
    ("POST", "/console/keys/key_x/rotate"),
    ("GET", "/console/audit"),
    ("GET", "/console/usage"),
    ("POST", "/console/usage/rates"),
    ("POST", "/console/usage/budget"),
    ("POST", "/console/usage/reconcile"),
    ("GET", "/console/live"),
];

#[tokio::test]
async fn every_console_route_needs_a_session_and_every_form_the_sessions_token() {
    let app = spawn_app().await;
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");
    let mut b = Browser::new(&app.url);
    assert_eq!(b.sign_in(&app.key).await, 303);
    for (method, path) in ROUTES {
        let url = format!("{}{path}", app.url);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        // No session, and an API key as a bearer token: both sent to the sign-in form.
        for bearer in [None, Some(app.key.as_str())] {
            let mut request = http
                .request(method.clone(), &url)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
            if let Some(key) = bearer {
                request = request.bearer_auth(key);
            }
            let r = request.body("csrf=x").send().await.expect("request");
            assert_eq!(
                r.status().as_u16(),
                303,
                "{method} {path} (bearer: {})",
                bearer.is_some()
            );
            assert_eq!(
                r.headers().get(LOCATION).and_then(|v| v.to_str().ok()),
                Some("/console/login"),
                "{method} {path}"
            );
        }
        // Signed in, a form without the session's token changes nothing.
        if method == reqwest::Method::POST {
            let (status, _, _) = b.post(path, &[("csrf", "csrf_forged")]).await;
            assert_eq!(status, 403, "POST {path} with a forged token");
        }
    }
    assert!(
        app.get("/v1/accounts/acme").await.1["paused"].is_null(),
        "nothing was paused"
    );
    assert_eq!(
        app.get("/v1/keys").await.1["data"].as_array().map(Vec::len),
        Some(1),
        "nothing was made"
    );
}
