//! Bad input, as an attacker or a careless client sends it, over the webhook, the verify
//! handshake and every API endpoint: each refusal has its status and the one error body, a
//! refused webhook stores nothing, an acknowledged but unprocessable one leaves a visible event,
//! and the gateway keeps serving throughout.

use serde_json::{json, Value};
use wagate_core::signature::sign_hub;

use crate::helpers::*;

/// Who the request says it is.
#[derive(Clone, Copy)]
enum Auth {
    Key,
    None,
    Header(&'static str),
}

struct Case {
    name: String,
    method: reqwest::Method,
    path: String,
    auth: Auth,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    status: u16,
    code: &'static str,
}

fn case(name: impl Into<String>, method: &str, path: impl Into<String>, status: u16, code: &'static str) -> Case {
    Case {
        name: name.into(),
        method: method.parse().expect("method"),
        path: path.into(),
        auth: Auth::Key,
        headers: Vec::new(),
        body: None,
        status,
        code,
    }
}

impl Case {
    fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }
    fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
    fn raw(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }
    /// An answer other than the helper's default.
    fn answers(mut self, status: u16, code: &'static str) -> Self {
        self.status = status;
        self.code = code;
        self
    }
    fn json(self, body: Value) -> Self {
        self.header("content-type", "application/json").raw(body.to_string())
    }
    /// A webhook body, signed with the app secret (or with `sig` as the header).
    fn signed(self, body: impl Into<Vec<u8>>) -> Self {
        let body = body.into();
        let sig = sign_hub(APP_SECRET, &body);
        self.auth(Auth::None)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", sig)
            .raw(body)
    }
}

fn message_webhook(value: Value) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "messages", "value": value}]}]})
        .to_string()
        .into_bytes()
}

fn valid_webhook() -> Vec<u8> {
    message_webhook(
        json!({"messaging_product": "whatsapp", "metadata": {"phone_number_id": PHONE_ID},
        "messages": [{"from": USER, "id": "wamid.tablecase", "timestamp": "1751000000", "type": "text", "text": {"body": "hi"}}]}),
    )
}

/// Refusals of the webhook endpoint: nothing of them may be stored.
fn webhook_cases() -> Vec<Case> {
    let body = valid_webhook();
    let hook = |name: &str, status: u16, code: &'static str| {
        case(name, "POST", "/webhooks/whatsapp", status, code).auth(Auth::None)
    };
    let with_sig = |name: &str, sig: String, status: u16, code: &'static str| {
        hook(name, status, code)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", sig)
            .raw(body.clone())
    };
    let good = sign_hub(APP_SECRET, &body);
    let mut cases = vec![
        hook("webhook without a signature", 401, "signature_missing")
            .json(serde_json::from_slice(&body).expect("json")),
        with_sig(
            "webhook signed with another secret",
            sign_hub("another-secret", &body),
            403,
            "signature_invalid",
        ),
        with_sig(
            "webhook with a sha1 signature",
            good.replace("sha256=", "sha1="),
            403,
            "signature_invalid",
        ),
        with_sig(
            "webhook with an empty signature",
            "sha256=".into(),
            403,
            "signature_invalid",
        ),
        with_sig(
            "webhook with a non-hex signature",
            "sha256=zzzz".into(),
            403,
            "signature_invalid",
        ),
        with_sig(
            "webhook with a truncated signature",
            good[..40].to_string(),
            403,
            "signature_invalid",
        ),
        with_sig(
            "webhook with a signature plus garbage",
            format!("{good}00"),
            403,
            "signature_invalid",
        ),
        with_sig(
            "webhook signature of another body",
            sign_hub(APP_SECRET, b"{}"),
            403,
            "signature_invalid",
        ),
        with_sig(
            "webhook signature without the scheme",
            good.replace("sha256=", ""),
            403,
            "signature_invalid",
        ),
        case(
            "webhook for an unknown account URL",
            "POST",
            "/webhooks/whatsapp/nosuch",
            404,
            "unknown_account",
        )
        .signed(body.clone()),
        hook("webhook over the body limit", 413, "body_too_large").signed(vec![b' '; 1024 * 1024 + 1]),
        case(
            "PUT on the webhook",
            "PUT",
            "/webhooks/whatsapp",
            405,
            "method_not_allowed",
        )
        .signed(body.clone()),
        case(
            "DELETE on the webhook",
            "DELETE",
            "/webhooks/whatsapp",
            405,
            "method_not_allowed",
        )
        .auth(Auth::None),
    ];
    let verify = |name: &str, query: &str| {
        case(
            name,
            "GET",
            format!("/webhooks/whatsapp{query}"),
            403,
            "verification_failed",
        )
        .auth(Auth::None)
    };
    cases.extend([
        verify("verify without parameters", ""),
        verify(
            "verify with the wrong token",
            "?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1",
        ),
        verify(
            "verify with an empty token",
            "?hub.mode=subscribe&hub.verify_token=&hub.challenge=1",
        ),
        verify(
            "verify with the wrong mode",
            &format!("?hub.mode=unsubscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1"),
        ),
        verify(
            "verify without a mode",
            &format!("?hub.verify_token={VERIFY_TOKEN}&hub.challenge=1"),
        ),
        verify(
            "verify with the token in another case",
            &format!(
                "?hub.mode=subscribe&hub.verify_token={}&hub.challenge=1",
                VERIFY_TOKEN.to_uppercase()
            ),
        ),
        case(
            "verify on an unknown account URL",
            "GET",
            format!("/webhooks/whatsapp/nosuch?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1"),
            403,
            "verification_failed",
        )
        .auth(Auth::None),
        verify(
            "verify with a script as the token",
            "?hub.mode=subscribe&hub.verify_token=%3Cscript%3E&hub.challenge=%3Cscript%3Ealert(1)%3C/script%3E",
        ),
    ]);
    cases
}

/// Every API endpoint, refused without a valid key.
fn auth_cases() -> Vec<Case> {
    let endpoints = [
        ("GET", "/v1/messages"),
        ("POST", "/v1/messages"),
        ("GET", "/v1/messages/msg_x"),
        ("POST", "/v1/messages/msg_x/read"),
        ("GET", "/v1/contacts/16505551234"),
        ("GET", "/v1/events"),
        ("GET", "/v1/templates"),
        ("POST", "/v1/templates"),
        ("POST", "/v1/templates/sync"),
        ("DELETE", "/v1/templates/hello_world"),
        ("GET", "/v1/media/med_x"),
        ("POST", "/v1/media"),
        ("GET", "/v1/hooks"),
        ("POST", "/v1/hooks"),
        ("PATCH", "/v1/hooks/hook_x"),
        ("POST", "/v1/hooks/hook_x/replay"),
        ("GET", "/v1/events/evt_x"),
        ("GET", "/v1/events/stream"),
    ];
    let mut cases = Vec::new();
    for (method, path) in endpoints {
        for (label, auth) in [
            ("no key", Auth::None),
            ("an unknown key", Auth::Header("Bearer wg_0000000000000000")),
            ("Basic auth", Auth::Header("Basic YWRtaW46YWRtaW4=")),
            ("an empty bearer", Auth::Header("Bearer ")),
            ("a bare key", Auth::Header("wg_0000000000000000")),
        ] {
            cases.push(
                case(
                    format!("{method} {path} with {label}"),
                    method,
                    path,
                    401,
                    "unauthorized",
                )
                .auth(auth),
            );
        }
    }
    cases
}

/// Every API endpoint, with a valid key and a bad request.
fn api_cases() -> Vec<Case> {
    let send = |name: &str, body: Value, code: &'static str| case(name, "POST", "/v1/messages", 400, code).json(body);
    let text_to = |to: &str| json!({"to": to, "type": "text", "text": {"body": "hi"}});
    let mut cases = vec![
        case("send that is not JSON", "POST", "/v1/messages", 400, "invalid_json")
            .header("content-type", "application/json")
            .raw("{\"to\": "),
        case("send as a form", "POST", "/v1/messages", 400, "invalid_json")
            .header("content-type", "application/x-www-form-urlencoded")
            .raw("to=16505551234&type=text"),
        case(
            "send over the API body limit",
            "POST",
            "/v1/messages",
            413,
            "body_too_large",
        )
        .json(json!({"to": USER, "type": "text", "text": {"body": "x".repeat(3 * 1024 * 1024)}})),
        send("send of an array", json!([]), "invalid_request"),
        send("send of an empty object", json!({}), "invalid_request"),
        send(
            "send without to",
            json!({"type": "text", "text": {"body": "hi"}}),
            "invalid_request",
        ),
        send(
            "send to a negative number",
            text_to("-16505551234"),
            "invalid_phone_number",
        ),
        send("send to a word", text_to("hello"), "invalid_phone_number"),
        send("send to a short number", text_to("+1 650"), "invalid_phone_number"),
        send(
            "send to an unknown country code",
            text_to("+999 1234567"),
            "invalid_phone_number",
        ),
        send(
            "send to a number with a plus inside",
            text_to("1650+5551234"),
            "invalid_phone_number",
        ),
        send(
            "send to a number object",
            json!({"to": {"n": 1}, "type": "text", "text": {"body": "hi"}}),
            "invalid_request",
        ),
        send("send without a type or text", json!({"to": USER}), "invalid_request"),
        send(
            "send of an unknown type",
            json!({"to": USER, "type": "hologram", "hologram": {}}),
            "unsupported_message_type",
        ),
        send(
            "send text without text",
            json!({"to": USER, "type": "text"}),
            "invalid_request",
        ),
        send(
            "send text with an empty body",
            json!({"to": USER, "type": "text", "text": {"body": ""}}),
            "invalid_request",
        ),
        send(
            "send text over 4096 characters",
            json!({"to": USER, "type": "text", "text": {"body": "x".repeat(4097)}}),
            "invalid_request",
        ),
        send(
            "send image without id or link",
            json!({"to": USER, "type": "image", "image": {}}),
            "invalid_request",
        ),
        send(
            "send image with id and link",
            json!({"to": USER, "type": "image", "image": {"id": "1", "link": "https://x/y.jpg"}}),
            "invalid_request",
        ),
        send(
            "send location without latitude",
            json!({"to": USER, "type": "location", "location": {"longitude": 1.0}}),
            "invalid_request",
        ),
        send(
            "send reaction without message_id",
            json!({"to": USER, "type": "reaction", "reaction": {"emoji": "👍"}}),
            "invalid_request",
        ),
        send(
            "send four reply buttons",
            json!({"to": USER, "type": "interactive", "interactive": {"type": "button", "body": {"text": "?"}, "action": {"buttons": (1..=4).map(|i| json!({"type": "reply", "reply": {"id": format!("b{i}"), "title": format!("B{i}")}})).collect::<Vec<_>>()}}}),
            "invalid_request",
        ),
        send(
            "send template without a name",
            json!({"to": USER, "type": "template", "template": {"language": {"code": "en_US"}}}),
            "invalid_request",
        ),
        send(
            "send for an unknown account",
            json!({"to": USER, "type": "text", "text": {"body": "hi"}, "account": "nosuch"}),
            "invalid_request",
        )
        .answers(404, "not_found"),
        case(
            "send with an unknown wait",
            "POST",
            "/v1/messages?wait=later",
            400,
            "invalid_request",
        )
        .json(text_to(USER)),
        case(
            "send with wait as an array",
            "POST",
            "/v1/messages?wait=accepted&wait=accepted",
            400,
            "invalid_request",
        )
        .json(text_to(USER)),
    ];
    let list = |name: &str, query: &str, field_code: &'static str| {
        case(name, "GET", format!("/v1/messages{query}"), 400, field_code)
    };
    cases.extend([
        list("messages with limit=abc", "?limit=abc", "invalid_request"),
        list("messages with limit=0", "?limit=0", "invalid_request"),
        list("messages with limit=501", "?limit=501", "invalid_request"),
        list("messages with limit=-1", "?limit=-1", "invalid_request"),
        list("messages with limit=1e3", "?limit=1e3", "invalid_request"),
        list("messages with a garbage cursor", "?cursor=garbage", "invalid_request"),
        list(
            "messages with a cursor of another list",
            "?cursor=evt_0190a1b2c3d4e5f60718293a4b5c6d7e",
            "invalid_request",
        ),
        list(
            "messages with a sideways direction",
            "?direction=sideways",
            "invalid_request",
        ),
        list("messages of an unknown account", "?account=nosuch", "invalid_request").answers(404, "not_found"),
        case(
            "a message that does not exist",
            "GET",
            "/v1/messages/msg_0190a1b2c3d4e5f60718293a4b5c6d7e",
            404,
            "not_found",
        ),
        case(
            "a message id that is garbage",
            "GET",
            "/v1/messages/garbage",
            404,
            "not_found",
        ),
        case(
            "a message id with a dot-dot",
            "GET",
            "/v1/messages/..%2F..%2Fetc",
            404,
            "not_found",
        ),
        case(
            "mark read of an unknown message",
            "POST",
            "/v1/messages/msg_0190a1b2c3d4e5f60718293a4b5c6d7e/read",
            404,
            "not_found",
        ),
        case(
            "mark read with a body that is not JSON",
            "POST",
            "/v1/messages/msg_x/read",
            400,
            "invalid_json",
        )
        .header("content-type", "application/json")
        .raw("{"),
        case(
            "a contact that is not a number",
            "GET",
            "/v1/contacts/hello",
            404,
            "not_found",
        ),
        case(
            "a contact of an unknown account",
            "GET",
            format!("/v1/contacts/{USER}?account=nosuch"),
            404,
            "not_found",
        ),
    ]);
    let events = |name: &str, query: &str| case(name, "GET", format!("/v1/events{query}"), 400, "invalid_request");
    cases.extend([
        events("events with a garbage cursor", "?cursor=garbage"),
        events("events with a float cursor", "?cursor=1.5"),
        events("events with limit=abc", "?limit=abc"),
        events("events with limit=100000", "?limit=100000"),
        events("events of an unknown type", "?type=message.exploded"),
        events("events since yesterday-ish", "?since=yesterday"),
        events("events until a word", "?until=later"),
        events("events with include_media=hex", "?include_media=hex"),
        events("events of an unknown account", "?account=nosuch").answers(404, "not_found"),
    ]);
    let create = |name: &str, body: Value| case(name, "POST", "/v1/templates", 400, "invalid_request").json(body);
    let components = json!([{"type": "BODY", "text": "Hello {{1}}"}]);
    cases.extend([
        case(
            "template create that is not JSON",
            "POST",
            "/v1/templates",
            400,
            "invalid_json",
        )
        .header("content-type", "application/json")
        .raw("nope"),
        create("template create of an empty object", json!({})),
        create(
            "template create without a name",
            json!({"language": "en_US", "category": "UTILITY", "components": components}),
        ),
        create(
            "template create with spaces in the name",
            json!({"name": "Hello World", "language": "en_US", "category": "UTILITY", "components": components}),
        ),
        create(
            "template create with a # in the name",
            json!({"name": "po_notification#x", "language": "en_US", "category": "UTILITY", "components": components}),
        ),
        create(
            "template create with & in the name",
            json!({"name": "a&name=b", "language": "en_US", "category": "UTILITY", "components": components}),
        ),
        create(
            "template create with components as text",
            json!({"name": "x", "language": "en_US", "category": "UTILITY", "components": "BODY"}),
        ),
        create(
            "template create without a category",
            json!({"name": "x", "language": "en_US", "components": components}),
        ),
        case(
            "templates of an unknown account",
            "GET",
            "/v1/templates?account=nosuch",
            404,
            "not_found",
        ),
        case(
            "template sync of an unknown account",
            "POST",
            "/v1/templates/sync?account=nosuch",
            404,
            "not_found",
        ),
    ]);
    for (label, encoded) in [
        ("#", "po_notification%23x"),
        ("& and =", "zzz%26name%3Dorder_shipped_image"),
        ("an encoded /", "hello_world%2Fx"),
        ("?", "hello_world%3Faccess_token%3Dx"),
        ("an encoded ../", "%2E%2E%2Fhello_world"),
        ("a space", "hello%20world"),
        ("unicode", "h%C3%A9llo_%F0%9F%91%8B"),
        ("capitals", "Hello_World"),
        ("a name too long", &"x".repeat(513)),
    ] {
        cases.push(case(
            format!("template delete with {label}"),
            "DELETE",
            format!("/v1/templates/{encoded}"),
            400,
            "invalid_request",
        ));
    }
    cases.extend([
        case(
            "media that does not exist",
            "GET",
            "/v1/media/med_0190a1b2c3d4e5f60718293a4b5c6d7e",
            404,
            "not_found",
        ),
        case("media upload as JSON", "POST", "/v1/media", 400, "invalid_multipart").json(json!({"file": "x"})),
        case(
            "media upload without a boundary",
            "POST",
            "/v1/media",
            400,
            "invalid_multipart",
        )
        .header("content-type", "multipart/form-data")
        .raw("--x\r\n"),
        case(
            "media upload with a broken form",
            "POST",
            "/v1/media",
            400,
            "invalid_upload",
        )
        .header("content-type", "multipart/form-data; boundary=x")
        .raw("--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc"),
        case(
            "media upload without a file",
            "POST",
            "/v1/media",
            400,
            "invalid_upload",
        )
        .header("content-type", "multipart/form-data; boundary=x")
        .raw("--x\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nabc\r\n--x--\r\n"),
        case("no such endpoint", "GET", "/v1/nothing", 404, "not_found"),
        case("no such root path", "GET", "/wp-admin/setup.php", 404, "not_found").auth(Auth::None),
        case("POST to the API root", "POST", "/v1", 404, "not_found"),
        case(
            "DELETE on messages",
            "DELETE",
            "/v1/messages",
            405,
            "method_not_allowed",
        ),
        case("PUT on events", "PUT", "/v1/events", 405, "method_not_allowed"),
        case(
            "GET on template sync",
            "GET",
            "/v1/templates/sync",
            405,
            "method_not_allowed",
        ),
        case(
            "PATCH on a contact",
            "PATCH",
            "/v1/contacts/16505551234",
            405,
            "method_not_allowed",
        ),
        case("POST on health", "POST", "/health", 405, "method_not_allowed").auth(Auth::None),
        case(
            "GET on media upload's path with a trailing slash",
            "GET",
            "/v1/media/",
            404,
            "not_found",
        ),
        case(
            "a request target over the limit",
            "GET",
            format!("/v1/events?x={}", "a".repeat(9000)),
            414,
            "uri_too_long",
        ),
        case(
            "a webhook target over the limit",
            "POST",
            format!("/webhooks/whatsapp?x={}", "a".repeat(9000)),
            414,
            "uri_too_long",
        )
        .auth(Auth::None),
        case(
            "one header over the limit",
            "GET",
            "/v1/events",
            431,
            "headers_too_large",
        )
        .header("x-big", "a".repeat(40 * 1024)),
    ]);
    let hook = |name: &str, body: Value| case(name, "POST", "/v1/hooks", 400, "invalid_request").json(body);
    let url = "https://example.com/hook";
    cases.extend([
        hook("hook without a url", json!({"events": ["message.*"]})),
        hook("hook with a url that is not one", json!({"url": "not a url"})),
        hook("hook with an ftp url", json!({"url": "ftp://example.com/x"})),
        hook(
            "hook with credentials in the url",
            json!({"url": "https://u:p@example.com/x"}),
        ),
        hook("hook to loopback", json!({"url": "http://127.0.0.1:9/x"})),
        hook("hook to localhost", json!({"url": "http://localhost:9/x"})),
        hook(
            "hook to the cloud metadata address",
            json!({"url": "http://169.254.169.254/latest/meta-data"}),
        ),
        hook("hook to a private network", json!({"url": "http://10.0.0.1/x"})),
        hook("hook to IPv6 loopback", json!({"url": "http://[::1]/x"})),
        hook(
            "hook to a mapped IPv4 loopback",
            json!({"url": "http://[::ffff:127.0.0.1]/x"}),
        ),
        hook(
            "hook with an unknown event type",
            json!({"url": url, "events": ["message.exploded"]}),
        ),
        hook(
            "hook with events as a string",
            json!({"url": url, "events": "message.*"}),
        ),
        hook(
            "hook overriding the signature header",
            json!({"url": url, "headers": {"webhook-signature": "v1,x"}}),
        ),
        hook(
            "hook overriding Meta's signature header",
            json!({"url": url, "headers": {"X-Hub-Signature-256": "x"}}),
        ),
        hook(
            "hook with a header name that is not one",
            json!({"url": url, "headers": {"bad header": "x"}}),
        ),
        hook(
            "meta hook with an event filter",
            json!({"url": url, "format": "meta", "events": ["message.*"]}),
        ),
        hook(
            "meta hook with a short secret",
            json!({"url": url, "format": "meta", "secret": "short"}),
        ),
        hook(
            "event hook with a secret that is not whsec_",
            json!({"url": url, "secret": "0123456789abcdef0123"}),
        ),
        hook("hook in an unknown format", json!({"url": url, "format": "xml"})),
        hook(
            "hook with an unknown media mode",
            json!({"url": url, "media": "inline"}),
        ),
        hook(
            "hook with order that is not a boolean",
            json!({"url": url, "ordered": "yes"}),
        ),
        hook(
            "hook for an unknown account",
            json!({"url": url, "accounts": ["nosuch"]}),
        )
        .answers(404, "not_found"),
        hook("hook with an unknown field", json!({"url": url, "colour": "blue"})),
        case("hook that is not JSON", "POST", "/v1/hooks", 400, "invalid_request")
            .header("content-type", "application/json")
            .raw("{"),
        case(
            "a hook that does not exist",
            "GET",
            "/v1/hooks/hook_nope",
            404,
            "not_found",
        ),
        case(
            "update of a hook that does not exist",
            "PATCH",
            "/v1/hooks/hook_nope",
            404,
            "not_found",
        )
        .json(json!({"url": url})),
        case(
            "delete of a hook that does not exist",
            "DELETE",
            "/v1/hooks/hook_nope",
            404,
            "not_found",
        ),
        case(
            "enable of a hook that does not exist",
            "POST",
            "/v1/hooks/hook_nope/enable",
            404,
            "not_found",
        ),
        case(
            "rotate of a hook that does not exist",
            "POST",
            "/v1/hooks/hook_nope/secret/rotate",
            404,
            "not_found",
        ),
        case(
            "attempts of a hook that does not exist",
            "GET",
            "/v1/hooks/hook_nope/attempts",
            404,
            "not_found",
        ),
        case(
            "replay of a hook that does not exist",
            "POST",
            "/v1/hooks/hook_nope/replay",
            404,
            "not_found",
        )
        .json(json!({"since": "2026-01-01T00:00:00Z"})),
        case(
            "an event that does not exist",
            "GET",
            "/v1/events/evt_nope",
            404,
            "not_found",
        ),
        case(
            "replay of an event that does not exist",
            "POST",
            "/v1/events/evt_nope/replay",
            404,
            "not_found",
        )
        .json(json!({})),
        case("PUT on hooks", "PUT", "/v1/hooks", 405, "method_not_allowed"),
        case(
            "stream with a Last-Event-ID that is not one",
            "GET",
            "/v1/events/stream",
            400,
            "invalid_request",
        )
        .header("last-event-id", "yesterday"),
        case(
            "stream of an unknown type",
            "GET",
            "/v1/events/stream?type=message.exploded",
            400,
            "invalid_request",
        ),
        case(
            "stream with a garbage cursor",
            "GET",
            "/v1/events/stream?cursor=garbage",
            400,
            "invalid_request",
        ),
    ]);
    let mut many = case("too many headers", "GET", "/health", 431, "headers_too_large").auth(Auth::None);
    for i in 0..120 {
        many = many.header(&format!("x-h-{i}"), "1");
    }
    cases.push(many);
    cases
}

impl TestApp {
    async fn run(&self, c: &Case) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut r = self.http.request(c.method.clone(), format!("{}{}", self.url, c.path));
        match c.auth {
            Auth::Key => r = r.bearer_auth(&self.key),
            Auth::None => {}
            Auth::Header(h) => r = r.header("authorization", h),
        }
        for (k, v) in &c.headers {
            r = r.header(k, v);
        }
        if let Some(b) = &c.body {
            r = r.body(b.clone());
        }
        let resp = r.send().await.unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| json!({"not_json": text}));
        (status, headers, body)
    }

    async fn message_count(&self) -> usize {
        let (_, body) = self.get("/v1/messages?limit=500").await;
        body["data"].as_array().map(Vec::len).unwrap_or_default()
    }
}

#[tokio::test]
async fn every_bad_request_is_refused_in_the_one_error_shape_and_changes_nothing() {
    let app = spawn_app_with(|c| c.webhook.max_body_bytes = 1024 * 1024).await;
    app.open_window(USER).await;
    let journal_before = app.gateway.state.store.journal_counts().await.expect("counts");
    let events_before = app.settled_events().await.len();
    let messages_before = app.message_count().await;

    let cases: Vec<Case> = [webhook_cases(), auth_cases(), api_cases()]
        .into_iter()
        .flatten()
        .collect();
    assert!(cases.len() >= 120, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let (status, headers, body) = app.run(c).await;
        let e = &body["error"];
        let problems: Vec<String> = [
            (status != c.status).then(|| format!("status {status}, expected {}", c.status)),
            (e["code"] != c.code).then(|| format!("code {}, expected {}", e["code"], c.code)),
            e["message"]
                .as_str()
                .is_none_or(str::is_empty)
                .then(|| "no message".to_string()),
            e["hint"]
                .as_str()
                .is_none_or(str::is_empty)
                .then(|| "no hint".to_string()),
            (headers.get("x-content-type-options").and_then(|v| v.to_str().ok()) != Some("nosniff"))
                .then(|| "no X-Content-Type-Options: nosniff".to_string()),
            (!headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json")))
            .then(|| "not application/json".to_string()),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !problems.is_empty() {
            failures.push(format!("{}: {} — {body}", c.name, problems.join("; ")));
        }
        // A field-level refusal names the field.
        if status == 400 && e["details"]["field"].as_str().is_none() {
            failures.push(format!("{}: no details.field — {body}", c.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // Nothing was stored or sent, and the gateway still serves.
    let journal_after = app.gateway.state.store.journal_counts().await.expect("counts");
    assert_eq!(
        (journal_after.pending + journal_after.processed + journal_after.failed + journal_after.quarantined),
        (journal_before.pending + journal_before.processed + journal_before.failed + journal_before.quarantined),
        "a refused webhook was journalled"
    );
    assert_eq!(
        app.settled_events().await.len(),
        events_before,
        "a refusal left an event"
    );
    assert_eq!(app.message_count().await, messages_before, "a refusal stored a message");
    assert!(app.sim_sent().await.is_empty(), "a refusal reached Meta");
    let (_, hooks) = app.get("/v1/hooks").await;
    assert_eq!(hooks["data"], json!([]), "a refused hook was saved");
    let (status, _) = app.get("/v1/events?limit=1").await;
    assert_eq!(status, 200);
    let health = app.get_text(&format!("{}/health", app.url)).await;
    assert!(health.contains("ok"), "{health}");
    // The verify endpoint's echo is text that no browser sniffs into HTML.
    let r = app
        .http
        .get(format!(
            "{}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=%3Cb%3E1",
            app.url
        ))
        .send()
        .await
        .expect("verify");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .starts_with("text/plain"));
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = spawn_app().await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let r = app
            .http
            .get(format!("{}/v1/events", app.url))
            .header("authorization", format!("{scheme} {}", app.key))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status().as_u16(), 200, "{scheme}");
    }
}

/// Signed bodies that are acknowledged (Meta would retry a refusal for days) but cannot be
/// processed as they are: each leaves an event with the reason, a log line and a metric.
#[tokio::test]
async fn every_acknowledged_webhook_leaves_an_event() {
    let app = spawn_app().await;
    let meta = |mut v: Value| {
        v["messaging_product"] = json!("whatsapp");
        v["metadata"] = json!({"phone_number_id": PHONE_ID});
        v
    };
    let mut bad_utf8 = message_webhook(meta(
        json!({"messages": [{"from": USER, "id": "wamid.utf8", "type": "text", "text": {"body": "AB"}}]}),
    ));
    let at = bad_utf8.windows(2).position(|w| w == b"AB").expect("AB");
    bad_utf8[at] = 0xff;
    let deep = {
        let mut b = String::from_utf8(valid_webhook()).expect("utf8");
        b.pop();
        format!("{b},\"ignored\":{}0{}}}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes()
    };
    let page = String::from_utf8(valid_webhook())
        .expect("utf8")
        .replace("whatsapp_business_account", "page");
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "messages is an object",
            message_webhook(meta(
                json!({"messages": {"from": USER, "id": "wamid.obj", "type": "text", "text": {"body": "x"}}}),
            )),
            "webhook.invalid",
            "messages",
        ),
        (
            "statuses is a string",
            message_webhook(meta(json!({"statuses": "read"}))),
            "webhook.invalid",
            "statuses",
        ),
        (
            "a message without an id",
            message_webhook(meta(
                json!({"messages": [{"from": USER, "type": "text", "text": {"body": "x"}}]}),
            )),
            "webhook.invalid",
            "id",
        ),
        (
            "a message with a numeric id",
            message_webhook(meta(
                json!({"messages": [{"from": USER, "id": 42, "type": "text", "text": {"body": "x"}}]}),
            )),
            "webhook.invalid",
            "id",
        ),
        (
            "a status without an id",
            message_webhook(meta(json!({"statuses": [{"status": "read", "recipient_id": USER}]}))),
            "webhook.invalid",
            "id",
        ),
        ("invalid UTF-8 in a text", bad_utf8, "webhook.invalid", "UTF-8"),
        (
            "100,000 nested arrays under an ignored key",
            deep,
            "webhook.invalid",
            "deeper",
        ),
        (
            "entry is an object",
            json!({"object": "whatsapp_business_account", "entry": {"id": WABA}})
                .to_string()
                .into_bytes(),
            "webhook.invalid",
            "entry",
        ),
        (
            "changes is a number",
            json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": 7}]})
                .to_string()
                .into_bytes(),
            "webhook.invalid",
            "changes",
        ),
        ("Messenger's object", page.into_bytes(), "webhook.unknown", "page"),
        ("an empty JSON array", b"[]".to_vec(), "webhook.unknown", ""),
        (
            "an empty entry list",
            json!({"object": "whatsapp_business_account", "entry": []})
                .to_string()
                .into_bytes(),
            "webhook.unknown",
            "",
        ),
        ("an empty body", Vec::new(), "webhook.invalid", "not JSON"),
        (
            "a body that is not JSON",
            b"not json".to_vec(),
            "webhook.invalid",
            "not JSON",
        ),
        (
            "a body cut in half",
            valid_webhook()[..60].to_vec(),
            "webhook.invalid",
            "not JSON",
        ),
        ("a JSON string", b"\"entry\"".to_vec(), "webhook.unknown", ""),
    ];
    for (name, body, _, _) in &cases {
        let r = app.post_webhook(body).await;
        assert_eq!(
            r.status().as_u16(),
            200,
            "{name}: {}",
            r.text().await.unwrap_or_default()
        );
    }
    let events = app.settled_events().await;
    assert_eq!(events.len(), cases.len(), "{events:#?}");
    for ((name, _, event_type, needle), e) in cases.iter().zip(&events) {
        assert_eq!(e["type"], *event_type, "{name}: {e}");
        let said = format!("{} {}", e["payload"]["reason"], e["payload"]["path"]);
        assert!(said.contains(needle), "{name}: the reason does not say {needle}: {e}");
        assert_eq!(e["account"], app.gateway.state.accounts.all()[0].id.as_str(), "{name}");
    }
    // Not one was taken for a message.
    assert!(events.iter().all(|e| e["type"] != "message.received"));
    // The bytes that are not UTF-8 are kept, base64.
    let utf8 = &events[5];
    assert_eq!(utf8["raw"]["encoding"], "base64");
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(utf8["raw"]["body"].as_str().unwrap_or_default())
        .expect("base64");
    assert_eq!(bytes.len(), cases[5].1.len());
    assert_eq!(events[6]["raw"]["encoding"], "utf8");
    let metrics = app.get_text(&format!("{}/metrics", app.url)).await;
    let invalid = metrics
        .lines()
        .find(|l| l.starts_with("wagate_webhooks_invalid_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_default();
    assert!(invalid >= 9.0, "wagate_webhooks_invalid_total = {invalid}");
}
