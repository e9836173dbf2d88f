//! Meta's rules for outbound messages, checked before anything is queued: required fields, one
//! of media `id` or `link`, URL forms, lengths and counts (reference/cloud-api.md §2.2–2.3).
//! Every violation names the field path (`interactive.action.buttons[2].reply.title`), the
//! limit and the size of what was given, so the user fixes it without asking Meta.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Path of the field, e.g. `interactive.action.buttons[2].reply.title`.
    pub field: String,
    pub message: String,
    /// The limit that was broken (characters or items), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// How long or how many the given value is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    /// The field is missing (Meta's 131008), rather than wrong (100).
    #[serde(skip)]
    pub missing: bool,
}

struct Check {
    found: Vec<Violation>,
}

impl Check {
    fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.found.push(Violation {
            field: field.to_string(),
            message: message.into(),
            limit: None,
            size: None,
            missing: false,
        });
    }

    fn missing(&mut self, field: &str, message: impl Into<String>) {
        self.found.push(Violation {
            field: field.to_string(),
            message: message.into(),
            limit: None,
            size: None,
            missing: true,
        });
    }

    fn too_long(&mut self, field: &str, what: &str, limit: usize, size: usize) {
        self.found.push(Violation {
            field: field.to_string(),
            message: format!("{field} has {size} {what}; at most {limit} are allowed"),
            limit: Some(limit),
            size: Some(size),
            missing: false,
        });
    }

    /// A required string of 1..=max characters.
    fn text(&mut self, v: &Value, field: &str, max: usize) -> Option<String> {
        match v.get(last(field)) {
            Some(Value::String(s)) => {
                let n = s.chars().count();
                if n == 0 {
                    self.fail(field, format!("{field} is empty"));
                } else if n > max {
                    self.too_long(field, "characters", max, n);
                }
                Some(s.clone())
            }
            Some(_) => {
                self.fail(field, format!("{field} must be a string"));
                None
            }
            None => {
                self.missing(field, format!("{field} is required"));
                None
            }
        }
    }

    /// An optional string of at most max characters.
    fn opt_text(&mut self, v: &Value, field: &str, max: usize) {
        match v.get(last(field)) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                let n = s.chars().count();
                if n > max {
                    self.too_long(field, "characters", max, n);
                }
            }
            Some(_) => self.fail(field, format!("{field} must be a string")),
        }
    }

    fn object<'a>(&mut self, v: &'a Value, field: &str) -> Option<&'a Value> {
        match v.get(last(field)) {
            Some(o @ Value::Object(_)) => Some(o),
            Some(_) => {
                self.fail(field, format!("{field} must be an object"));
                None
            }
            None => {
                self.missing(field, format!("{field} is required"));
                None
            }
        }
    }

    /// A required array of min..=max items.
    fn array<'a>(&mut self, v: &'a Value, field: &str, min: usize, max: usize) -> &'a [Value] {
        match v.get(last(field)) {
            Some(Value::Array(a)) => {
                if a.len() < min {
                    self.found.push(Violation {
                        field: field.to_string(),
                        message: format!("{field} has {} items; at least {min} are needed", a.len()),
                        limit: Some(min),
                        size: Some(a.len()),
                        missing: false,
                    });
                } else if a.len() > max {
                    self.too_long(field, "items", max, a.len());
                }
                a
            }
            Some(_) => {
                self.fail(field, format!("{field} must be an array"));
                &[]
            }
            None => {
                self.missing(field, format!("{field} is required"));
                &[]
            }
        }
    }

    fn url(&mut self, v: &Value, field: &str) {
        if let Some(u) = self.text(v, field, 2000) {
            if !is_url(&u) {
                self.fail(
                    field,
                    format!("{field} must be an absolute http(s) URL, e.g. https://example.com/file.jpg"),
                );
            }
        }
    }

    /// Media by `id` or `link`, not both.
    fn media(&mut self, v: &Value, field: &str) {
        let id = v.get("id");
        let link = v.get("link");
        match (id, link) {
            (Some(_), Some(_)) => self.fail(field, format!("{field} has both id and link; give one of them")),
            (None, None) => self.missing(
                &format!("{field}.id"),
                format!("{field} needs an id (uploaded media) or a link (a URL)"),
            ),
            (Some(_), None) => {
                self.text(v, &format!("{field}.id"), 256);
            }
            (None, Some(_)) => self.url(v, &format!("{field}.link")),
        }
    }
}

/// The last segment of a path: the key to read.
fn last(field: &str) -> &str {
    field.rsplit('.').next().unwrap_or(field)
}

fn is_url(s: &str) -> bool {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !r.contains(char::is_whitespace)
    })
}

const CAPTION_MAX: usize = 1024;

/// Checks a send body (Meta's message object) of the given type.
pub fn check_message(message_type: &str, body: &Value) -> Result<(), Vec<Violation>> {
    let mut c = Check { found: Vec::new() };
    let o = body.get(message_type).unwrap_or(&Value::Null);
    match message_type {
        "text" => {
            c.text(o, "text.body", 4096);
            if o.get("preview_url").is_some_and(|p| !p.is_boolean()) {
                c.fail("text.preview_url", "text.preview_url must be true or false");
            }
        }
        "image" | "video" | "audio" | "document" | "sticker" => media_message(&mut c, message_type, o),
        "location" => {
            coordinate(&mut c, o, "location.latitude", 90.0);
            coordinate(&mut c, o, "location.longitude", 180.0);
            c.opt_text(o, "location.name", 1000);
            c.opt_text(o, "location.address", 1000);
        }
        "contacts" => {
            let cards = c.array(body, "contacts", 1, 257);
            for (i, card) in cards.iter().enumerate() {
                let f = format!("contacts[{i}]");
                if let Some(name) = c.object(card, &format!("{f}.name")) {
                    c.text(name, &format!("{f}.name.formatted_name"), 1000);
                }
                if let Some(b) = card.get("birthday").and_then(Value::as_str) {
                    if !is_date(b) {
                        c.fail(&format!("{f}.birthday"), format!("{f}.birthday must be YYYY-MM-DD"));
                    }
                }
                if let Some(phones) = card.get("phones").and_then(Value::as_array) {
                    for (j, p) in phones.iter().enumerate() {
                        c.text(p, &format!("{f}.phones[{j}].phone"), 100);
                    }
                }
            }
        }
        "reaction" => {
            c.text(o, "reaction.message_id", 256);
            match o.get("emoji") {
                Some(Value::String(e)) => {
                    let n = e.chars().count();
                    if n > 10 {
                        c.too_long("reaction.emoji", "characters", 10, n);
                    }
                }
                Some(_) => c.fail(
                    "reaction.emoji",
                    "reaction.emoji must be a string (\"\" removes the reaction)",
                ),
                None => c.fail(
                    "reaction.emoji",
                    "reaction.emoji is required (\"\" removes the reaction)",
                ),
            }
            if body.get("context").is_some() {
                c.fail("context", "a reaction cannot be a reply: remove context");
            }
        }
        "interactive" => interactive(&mut c, o),
        "template" => template(&mut c, o),
        _ => {}
    }
    if let Some(ctx) = body.get("context") {
        if message_type != "reaction" {
            c.text(ctx, "context.message_id", 256);
        }
    }
    if let Some(b) = body.get("biz_opaque_callback_data") {
        match b.as_str() {
            Some(s) if s.chars().count() > 512 => {
                c.too_long("biz_opaque_callback_data", "characters", 512, s.chars().count())
            }
            Some(_) => {}
            None => c.fail("biz_opaque_callback_data", "biz_opaque_callback_data must be a string"),
        }
    }
    if c.found.is_empty() {
        Ok(())
    } else {
        Err(c.found)
    }
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && s.chars()
            .enumerate()
            .all(|(i, ch)| i == 4 || i == 7 || ch.is_ascii_digit())
}

fn coordinate(c: &mut Check, o: &Value, field: &str, bound: f64) {
    let v = o.get(last(field));
    let n = match v {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match n {
        Some(x) if x.abs() <= bound => {}
        Some(_) => c.fail(field, format!("{field} must be between -{bound} and {bound}")),
        None if v.is_none() => c.missing(field, format!("{field} is required")),
        None => c.fail(field, format!("{field} must be a number")),
    }
}

fn media_message(c: &mut Check, kind: &str, o: &Value) {
    if !o.is_object() {
        c.fail(kind, format!("{kind} must be an object with an id or a link"));
        return;
    }
    c.media(o, kind);
    match kind {
        "image" | "video" | "document" => c.opt_text(o, &format!("{kind}.caption"), CAPTION_MAX),
        _ => {
            if o.get("caption").is_some() {
                c.fail(&format!("{kind}.caption"), format!("{kind} messages have no caption"));
            }
        }
    }
    if kind == "document" {
        c.opt_text(o, "document.filename", 240);
    } else if o.get("filename").is_some() {
        c.fail(&format!("{kind}.filename"), "only documents have a filename");
    }
    if o.get("voice").is_some() && (kind != "audio" || !o["voice"].is_boolean()) {
        c.fail(&format!("{kind}.voice"), "voice is a true/false flag of audio messages");
    }
}

const INTERACTIVE_TYPES: &[&str] = &[
    "button",
    "list",
    "cta_url",
    "flow",
    "location_request_message",
    "product",
    "product_list",
    "catalog_message",
    "order_details",
    "order_status",
    "call_permission_request",
    "carousel",
];

fn interactive(c: &mut Check, o: &Value) {
    let kind = match o.get("type").and_then(Value::as_str) {
        Some(k) if INTERACTIVE_TYPES.contains(&k) => k,
        Some(k) => {
            c.fail(
                "interactive.type",
                format!("interactive.type `{k}` is not one of {}", INTERACTIVE_TYPES.join(", ")),
            );
            return;
        }
        None => {
            c.fail(
                "interactive.type",
                "interactive.type is required (button, list, cta_url, flow, …)",
            );
            return;
        }
    };
    let body_max = if kind == "list" { 4096 } else { 1024 };
    if let Some(body) = c.object(o, "interactive.body") {
        c.text(body, "interactive.body.text", body_max);
    }
    if kind == "carousel" {
        carousel(c, o);
        return;
    }
    if let Some(footer) = o.get("footer") {
        c.text(footer, "interactive.footer.text", 60);
    }
    if let Some(header) = o.get("header") {
        let htype = header.get("type").and_then(Value::as_str).unwrap_or("");
        match (kind, htype) {
            (_, "text") => {
                c.text(header, "interactive.header.text", 60);
            }
            ("list", _) => c.fail("interactive.header.type", "a list message's header can only be text"),
            (_, t @ ("image" | "video" | "document")) => {
                let media = header.get(t).unwrap_or(&Value::Null);
                c.media(media, &format!("interactive.header.{t}"));
            }
            _ => c.fail(
                "interactive.header.type",
                "interactive.header.type must be text, image, video or document",
            ),
        }
    }
    let Some(action) = c.object(o, "interactive.action") else {
        return;
    };
    match kind {
        "button" => {
            let buttons = c.array(action, "interactive.action.buttons", 1, 3);
            let (mut ids, mut titles) = (HashSet::new(), HashSet::new());
            for (i, b) in buttons.iter().enumerate() {
                let f = format!("interactive.action.buttons[{i}]");
                if b.get("type").and_then(Value::as_str) != Some("reply") {
                    c.fail(&format!("{f}.type"), format!("{f}.type must be \"reply\""));
                }
                let Some(reply) = c.object(b, &format!("{f}.reply")) else {
                    continue;
                };
                if let Some(id) = c.text(reply, &format!("{f}.reply.id"), 256) {
                    if !ids.insert(id) {
                        c.fail(&format!("{f}.reply.id"), "button ids must be unique");
                    }
                }
                if let Some(t) = c.text(reply, &format!("{f}.reply.title"), 20) {
                    if !titles.insert(t) {
                        c.fail(&format!("{f}.reply.title"), "button titles must be unique");
                    }
                }
            }
        }
        "list" => {
            c.text(action, "interactive.action.button", 20);
            let sections = c.array(action, "interactive.action.sections", 1, 10);
            let mut ids = HashSet::new();
            let mut total = 0;
            for (i, s) in sections.iter().enumerate() {
                let f = format!("interactive.action.sections[{i}]");
                if sections.len() > 1 {
                    c.text(s, &format!("{f}.title"), 24);
                } else {
                    c.opt_text(s, &format!("{f}.title"), 24);
                }
                let rows = c.array(s, &format!("{f}.rows"), 1, 10);
                total += rows.len();
                for (j, r) in rows.iter().enumerate() {
                    let rf = format!("{f}.rows[{j}]");
                    if let Some(id) = c.text(r, &format!("{rf}.id"), 200) {
                        if !ids.insert(id) {
                            c.fail(&format!("{rf}.id"), "row ids must be unique across sections");
                        }
                    }
                    c.text(r, &format!("{rf}.title"), 24);
                    c.opt_text(r, &format!("{rf}.description"), 72);
                }
            }
            if total > 10 {
                c.too_long("interactive.action.sections", "rows in total", 10, total);
            }
        }
        "cta_url" => {
            if action.get("name").and_then(Value::as_str) != Some("cta_url") {
                c.fail("interactive.action.name", "interactive.action.name must be \"cta_url\"");
            }
            if let Some(p) = c.object(action, "interactive.action.parameters") {
                c.text(p, "interactive.action.parameters.display_text", 20);
                c.url(p, "interactive.action.parameters.url");
            }
        }
        "flow" => {
            if action.get("name").and_then(Value::as_str) != Some("flow") {
                c.fail("interactive.action.name", "interactive.action.name must be \"flow\"");
            }
            if let Some(p) = c.object(action, "interactive.action.parameters") {
                c.text(p, "interactive.action.parameters.flow_message_version", 10);
                c.text(p, "interactive.action.parameters.flow_cta", 30);
                match (p.get("flow_id"), p.get("flow_name")) {
                    (Some(_), Some(_)) => {
                        c.fail("interactive.action.parameters", "give flow_id or flow_name, not both")
                    }
                    (None, None) => c.fail(
                        "interactive.action.parameters.flow_id",
                        "a flow message needs flow_id or flow_name",
                    ),
                    _ => {}
                }
                if let Some(m) = p.get("mode").and_then(Value::as_str) {
                    if !["draft", "published"].contains(&m) {
                        c.fail("interactive.action.parameters.mode", "mode must be draft or published");
                    }
                }
            }
        }
        "location_request_message" if action.get("name").and_then(Value::as_str) != Some("send_location") => {
            c.fail(
                "interactive.action.name",
                "interactive.action.name must be \"send_location\"",
            );
        }
        _ => {}
    }
}

/// A carousel (Meta's media and product carousels): 2 to 10 cards after the body, no header or
/// footer; media cards have an image or video header, optional body text (160 characters, two
/// line breaks) and either one URL button or quick replies, the same kind and number on every
/// card; product cards name a product of the catalog. Card indexes run from 0.
fn carousel(c: &mut Check, o: &Value) {
    for part in ["header", "footer"] {
        if o.get(part).is_some() {
            c.fail(
                &format!("interactive.{part}"),
                format!("a carousel has no {part}: only body text and cards"),
            );
        }
    }
    let Some(action) = c.object(o, "interactive.action") else {
        return;
    };
    let cards = c.array(action, "interactive.action.cards", 2, 10);
    let mut buttons_seen: Option<(String, usize)> = None;
    let mut indexes = HashSet::new();
    let products = cards.iter().filter(|k| k["type"].as_str() == Some("product")).count();
    if products != 0 && products != cards.len() {
        c.fail(
            "interactive.action.cards",
            "a carousel's cards are all product cards or all media cards",
        );
    }
    for (i, card) in cards.iter().enumerate() {
        let f = format!("interactive.action.cards[{i}]");
        match card.get("card_index").and_then(Value::as_u64) {
            Some(n) if (n as usize) < cards.len() && indexes.insert(n) => {}
            Some(_) => c.fail(
                &format!("{f}.card_index"),
                format!(
                    "card_index values must be unique, from 0 to {}",
                    cards.len().saturating_sub(1)
                ),
            ),
            None => c.missing(
                &format!("{f}.card_index"),
                format!("{f}.card_index is required (0, 1, …)"),
            ),
        }
        let Some(card_action) = c.object(card, &format!("{f}.action")) else {
            continue;
        };
        if card["type"].as_str() == Some("product") {
            c.text(card_action, &format!("{f}.action.product_retailer_id"), 100);
            c.text(card_action, &format!("{f}.action.catalog_id"), 100);
            continue;
        }
        if let Some(header) = c.object(card, &format!("{f}.header")) {
            match header.get("type").and_then(Value::as_str) {
                Some(t @ ("image" | "video")) => {
                    let media = header.get(t).unwrap_or(&Value::Null);
                    c.media(media, &format!("{f}.header.{t}"));
                }
                _ => c.fail(
                    &format!("{f}.header.type"),
                    format!("{f}.header.type must be image or video"),
                ),
            }
        }
        if let Some(body) = card.get("body") {
            c.text(body, &format!("{f}.body.text"), 160);
            let breaks = body["text"].as_str().map_or(0, |t| t.matches('\n').count());
            if breaks > 2 {
                c.too_long(&format!("{f}.body.text"), "line breaks", 2, breaks);
            }
        }
        let kind = if card_action.get("buttons").is_some() {
            let buttons = c.array(card_action, &format!("{f}.action.buttons"), 1, 2);
            for (j, b) in buttons.iter().enumerate() {
                let bf = format!("{f}.action.buttons[{j}]");
                if b.get("type").and_then(Value::as_str) != Some("quick_reply") {
                    c.fail(&format!("{bf}.type"), format!("{bf}.type must be \"quick_reply\""));
                }
                if let Some(reply) = c.object(b, &format!("{bf}.quick_reply")) {
                    c.text(reply, &format!("{bf}.quick_reply.id"), 256);
                    c.text(reply, &format!("{bf}.quick_reply.title"), 20);
                }
            }
            ("quick_reply".to_string(), buttons.len())
        } else {
            if card_action.get("name").and_then(Value::as_str) != Some("cta_url") {
                c.fail(
                    &format!("{f}.action.name"),
                    format!("{f}.action needs name \"cta_url\" with parameters, or quick-reply buttons"),
                );
            }
            if let Some(p) = c.object(card_action, &format!("{f}.action.parameters")) {
                c.text(p, &format!("{f}.action.parameters.display_text"), 20);
                c.url(p, &format!("{f}.action.parameters.url"));
            }
            ("cta_url".to_string(), 1)
        };
        match &buttons_seen {
            Some(first) if *first != kind => c.fail(
                &format!("{f}.action"),
                format!(
                    "every card needs the same buttons: card 0 has {} {}, this one {} {}",
                    first.1, first.0, kind.1, kind.0
                ),
            ),
            Some(_) => {}
            None => buttons_seen = Some(kind),
        }
    }
}

fn template(c: &mut Check, o: &Value) {
    c.text(o, "template.name", 512);
    if let Some(lang) = c.object(o, "template.language") {
        c.text(lang, "template.language.code", 15);
    }
    let Some(components) = o.get("components") else { return };
    let Some(components) = components.as_array() else {
        c.fail("template.components", "template.components must be an array");
        return;
    };
    for (i, comp) in components.iter().enumerate() {
        let f = format!("template.components[{i}]");
        let kind = comp.get("type").and_then(Value::as_str).map(str::to_ascii_lowercase);
        let params = comp
            .get("parameters")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        match kind.as_deref() {
            Some("header") => {
                for (j, p) in params.iter().enumerate() {
                    parameter(
                        c,
                        p,
                        &format!("{f}.parameters[{j}]"),
                        &["text", "image", "video", "document", "location"],
                    );
                }
            }
            Some("body") => {
                for (j, p) in params.iter().enumerate() {
                    parameter(
                        c,
                        p,
                        &format!("{f}.parameters[{j}]"),
                        &["text", "currency", "date_time"],
                    );
                }
            }
            Some("button") => {
                let sub = comp.get("sub_type").and_then(Value::as_str);
                if sub.is_none() {
                    c.fail(
                        &format!("{f}.sub_type"),
                        "a button component needs sub_type (quick_reply, url, copy_code, flow, …)",
                    );
                }
                let index_ok = match comp.get("index") {
                    Some(Value::String(s)) => s.parse::<u8>().is_ok_and(|n| n <= 9),
                    Some(Value::Number(n)) => n.as_u64().is_some_and(|n| n <= 9),
                    _ => false,
                };
                if !index_ok {
                    c.fail(&format!("{f}.index"), "index is the button's position, \"0\" to \"9\"");
                }
                for (j, p) in params.iter().enumerate() {
                    let pf = format!("{f}.parameters[{j}]");
                    match sub {
                        Some("quick_reply") => {
                            c.text(p, &format!("{pf}.payload"), 256);
                        }
                        Some("url") => {
                            c.text(p, &format!("{pf}.text"), 2000);
                        }
                        Some("copy_code") => {
                            c.text(p, &format!("{pf}.coupon_code"), 15);
                        }
                        _ => {}
                    }
                }
            }
            _ => c.fail(&format!("{f}.type"), "a component type is header, body or button"),
        }
    }
}

fn parameter(c: &mut Check, p: &Value, field: &str, allowed: &[&str]) {
    let kind = p.get("type").and_then(Value::as_str).unwrap_or("");
    if !allowed.contains(&kind) {
        c.fail(
            &format!("{field}.type"),
            format!("{field}.type must be one of {}", allowed.join(", ")),
        );
        return;
    }
    match kind {
        "text" => {
            c.text(p, &format!("{field}.text"), 32768);
        }
        "currency" => {
            if let Some(cur) = c.object(p, &format!("{field}.currency")) {
                c.text(cur, &format!("{field}.currency.fallback_value"), 1000);
                if let Some(code) = c.text(cur, &format!("{field}.currency.code"), 3) {
                    if code.len() != 3 || !code.chars().all(|ch| ch.is_ascii_uppercase()) {
                        c.fail(
                            &format!("{field}.currency.code"),
                            "currency.code is an ISO 4217 code such as USD or EUR",
                        );
                    }
                }
                if !cur.get("amount_1000").is_some_and(|a| a.is_i64() || a.is_u64()) {
                    c.fail(
                        &format!("{field}.currency.amount_1000"),
                        "currency.amount_1000 is the amount × 1000 as a whole number",
                    );
                }
            }
        }
        "date_time" => {
            if let Some(dt) = c.object(p, &format!("{field}.date_time")) {
                c.text(dt, &format!("{field}.date_time.fallback_value"), 1000);
            }
        }
        "image" | "video" | "document" => {
            let media = p.get(kind).unwrap_or(&Value::Null);
            c.media(media, &format!("{field}.{kind}"));
        }
        "location" => {
            if let Some(loc) = c.object(p, &format!("{field}.location")) {
                coordinate(c, loc, &format!("{field}.location.latitude"), 90.0);
                coordinate(c, loc, &format!("{field}.location.longitude"), 180.0);
            }
        }
        _ => {}
    }
}

/// A name used in URLs and as an owner's handle (an account's name, a tenant): 1 to 64 ASCII
/// letters, digits, `-` and `_`.
pub fn is_slug(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Placeholders of a template text: `{{1}}`, `{{2}}` … or `{{name}}`.
/// Meta's rule for template names: 1 to 512 lowercase letters, digits and underscores. What it
/// refuses names no template, so it must never reach Meta (or a URL) as one.
pub fn template_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 512 {
        return Err(format!(
            "a template name has 1 to 512 characters; this one has {}",
            name.chars().count()
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        Some(c) => Err(format!(
            "`{name}` is not a template name: {c:?} is not allowed (only a-z, 0-9 and _)"
        )),
        None => Ok(()),
    }
}

pub fn placeholders(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim().to_string());
        rest = &after[end + 2..];
    }
    out
}

/// Checks a template send's parameters against the template's components from the catalog:
/// body placeholder count (and names, for named templates), and the header's format.
pub fn check_against_template(
    template_components: &Value,
    parameter_format: Option<&str>,
    send: &Value,
) -> Result<(), Violation> {
    let find = |list: &Value, kind: &str| -> Option<(usize, Value)> {
        list.as_array()?.iter().enumerate().find_map(|(i, c)| {
            (c.get("type")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
                .as_deref()
                == Some(kind))
            .then(|| (i, c.clone()))
        })
    };
    let sent = send.get("components").cloned().unwrap_or(Value::Array(vec![]));
    let violation = |field: String, message: String, limit: Option<usize>, size: Option<usize>| Violation {
        field,
        message,
        limit,
        size,
        missing: false,
    };

    // Body.
    let wanted = find(template_components, "body")
        .and_then(|(_, c)| c.get("text").and_then(Value::as_str).map(placeholders))
        .unwrap_or_default();
    let (field, given) = match find(&sent, "body") {
        Some((i, c)) => (
            format!("template.components[{i}].parameters"),
            c.get("parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        ),
        None => ("template.components".to_string(), Vec::new()),
    };
    if given.len() != wanted.len() {
        return Err(violation(
            field,
            format!(
                "the template's body has {} placeholder(s) but {} parameter(s) were given",
                wanted.len(),
                given.len()
            ),
            Some(wanted.len()),
            Some(given.len()),
        ));
    }
    if parameter_format.is_some_and(|f| f.eq_ignore_ascii_case("named")) {
        for (j, p) in given.iter().enumerate() {
            let name = p.get("parameter_name").and_then(Value::as_str).unwrap_or_default();
            if !wanted.iter().any(|w| w == name) {
                return Err(violation(
                    format!("{field}[{j}].parameter_name"),
                    format!(
                        "`{name}` is not a placeholder of this template; it has {}",
                        wanted.join(", ")
                    ),
                    None,
                    None,
                ));
            }
        }
    }

    // Buttons: each button parameter must match the template's button at that index.
    let template_buttons = find(template_components, "buttons")
        .and_then(|(_, c)| c.get("buttons").and_then(Value::as_array).cloned())
        .unwrap_or_default();
    for (i, c) in sent.as_array().into_iter().flatten().enumerate() {
        if c.get("type")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .as_deref()
            != Some("button")
        {
            continue;
        }
        let index = match c.get("index") {
            Some(Value::String(s)) => s.parse::<usize>().ok(),
            Some(Value::Number(n)) => n.as_u64().map(|n| n as usize),
            _ => None,
        };
        let sub_type = c
            .get("sub_type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_uppercase();
        let field = format!("template.components[{i}]");
        let Some(button) = index.and_then(|ix| template_buttons.get(ix)) else {
            return Err(violation(
                format!("{field}.index"),
                format!(
                    "the template has {} button(s); there is none at this index",
                    template_buttons.len()
                ),
                Some(template_buttons.len()),
                None,
            ));
        };
        let kind = button
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_uppercase();
        if kind != sub_type {
            return Err(violation(
                format!("{field}.sub_type"),
                format!("the template's button at this index is {kind}, not {sub_type}"),
                None,
                None,
            ));
        }
    }

    // Header.
    if let Some((_, header)) = find(template_components, "header") {
        let format = header
            .get("format")
            .and_then(Value::as_str)
            .unwrap_or("TEXT")
            .to_ascii_lowercase();
        let sent_header = find(&sent, "header");
        let params = sent_header
            .as_ref()
            .and_then(|(_, c)| c.get("parameters").and_then(Value::as_array).cloned())
            .unwrap_or_default();
        let field = match &sent_header {
            Some((i, _)) => format!("template.components[{i}].parameters"),
            None => "template.components".to_string(),
        };
        let needed = if format == "text" {
            header
                .get("text")
                .and_then(Value::as_str)
                .map(|t| placeholders(t).len())
                .unwrap_or(0)
        } else {
            1
        };
        if params.len() != needed {
            return Err(violation(
                field,
                format!(
                    "the template's {format} header needs {needed} parameter(s); {} were given",
                    params.len()
                ),
                Some(needed),
                Some(params.len()),
            ));
        }
        if let Some(p) = params.first() {
            let kind = p.get("type").and_then(Value::as_str).unwrap_or_default();
            if kind != format {
                return Err(violation(
                    format!("{field}[0].type"),
                    format!("the template's header is {format}; a `{kind}` parameter was given"),
                    None,
                    None,
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/../../testdata/meta/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).expect("json")
    }

    #[test]
    fn metas_send_examples_pass() {
        let dir = format!("{}/../../testdata/meta", env!("CARGO_MANIFEST_DIR"));
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("dir").flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if !name.starts_with("send_") || !name.ends_with("_request.json") {
                continue;
            }
            let body = fixture(&name);
            let kind = body.get("type").and_then(Value::as_str).unwrap_or("text").to_string();
            assert_eq!(check_message(&kind, &body), Ok(()), "{name}");
            seen += 1;
        }
        assert!(seen >= 20, "only {seen} send fixtures");
    }

    fn long(n: usize) -> String {
        "x".repeat(n)
    }

    /// (type, body, the field the refusal must name, limit if any)
    fn carousel(cards: Vec<Value>) -> Value {
        json!({"interactive": {"type": "carousel", "body": {"text": "Pick one"}, "action": {"cards": cards}}})
    }

    fn card(i: usize, label: &str) -> Value {
        json!({"card_index": i, "type": "cta_url", "header": {"type": "image", "image": {"link": "https://x.io/a.jpg"}},
               "action": {"name": "cta_url", "parameters": {"display_text": label, "url": "https://x.io"}}})
    }

    fn card_with_body(i: usize, body: &str) -> Value {
        let mut c = card(i, "Buy");
        c["body"] = json!({"text": body});
        c
    }

    fn quick_card(i: usize, buttons: usize) -> Value {
        let buttons: Vec<Value> = (0..buttons)
            .map(|b| json!({"type": "quick_reply", "quick_reply": {"id": format!("c{i}b{b}"), "title": format!("Option {b}")}}))
            .collect();
        json!({"card_index": i, "header": {"type": "image", "image": {"id": "1234"}}, "action": {"buttons": buttons}})
    }

    fn refusals() -> Vec<(&'static str, Value, &'static str, Option<usize>)> {
        let button = |title: &str, id: &str| json!({"type": "reply", "reply": {"id": id, "title": title}});
        let interactive_button = |buttons: Value| json!({"interactive": {"type": "button", "body": {"text": "Pick one"}, "action": {"buttons": buttons}}});
        let list = |sections: Value| json!({"interactive": {"type": "list", "body": {"text": "Menu"}, "action": {"button": "Open", "sections": sections}}});
        let rows = |n: usize, prefix: &str| {
            (0..n)
                .map(|i| json!({"id": format!("{prefix}{i}"), "title": format!("Row {i}")}))
                .collect::<Vec<_>>()
        };
        vec![
            ("text", json!({"text": {}}), "text.body", None),
            ("text", json!({"text": {"body": ""}}), "text.body", None),
            ("text", json!({"text": {"body": long(4097)}}), "text.body", Some(4096)),
            (
                "text",
                json!({"text": {"body": "hi", "preview_url": "yes"}}),
                "text.preview_url",
                None,
            ),
            ("image", json!({"image": {}}), "image.id", None),
            (
                "image",
                json!({"image": {"id": "1", "link": "https://x.io/a.jpg"}}),
                "image",
                None,
            ),
            (
                "image",
                json!({"image": {"link": "ftp://x.io/a.jpg"}}),
                "image.link",
                None,
            ),
            ("image", json!({"image": {"link": "https://"}}), "image.link", None),
            (
                "image",
                json!({"image": {"id": "1", "caption": long(1025)}}),
                "image.caption",
                Some(1024),
            ),
            (
                "video",
                json!({"video": {"id": "1", "caption": long(1025)}}),
                "video.caption",
                Some(1024),
            ),
            (
                "document",
                json!({"document": {"id": "1", "caption": long(1025)}}),
                "document.caption",
                Some(1024),
            ),
            (
                "document",
                json!({"document": {"id": "1", "filename": long(241)}}),
                "document.filename",
                Some(240),
            ),
            (
                "audio",
                json!({"audio": {"id": "1", "caption": "no"}}),
                "audio.caption",
                None,
            ),
            (
                "audio",
                json!({"audio": {"id": "1", "voice": "yes"}}),
                "audio.voice",
                None,
            ),
            (
                "sticker",
                json!({"sticker": {"id": "1", "filename": "a.webp"}}),
                "sticker.filename",
                None,
            ),
            ("sticker", json!({"sticker": "abc"}), "sticker", None),
            (
                "location",
                json!({"location": {"longitude": 1}}),
                "location.latitude",
                None,
            ),
            (
                "location",
                json!({"location": {"latitude": 91, "longitude": 1}}),
                "location.latitude",
                None,
            ),
            (
                "location",
                json!({"location": {"latitude": 1, "longitude": "east"}}),
                "location.longitude",
                None,
            ),
            (
                "location",
                json!({"location": {"latitude": 1, "longitude": 1, "name": long(1001)}}),
                "location.name",
                Some(1000),
            ),
            ("contacts", json!({"contacts": []}), "contacts", Some(1)),
            (
                "contacts",
                json!({"contacts": [{"phones": []}]}),
                "contacts[0].name",
                None,
            ),
            (
                "contacts",
                json!({"contacts": [{"name": {}}]}),
                "contacts[0].name.formatted_name",
                None,
            ),
            (
                "contacts",
                json!({"contacts": [{"name": {"formatted_name": "A"}, "birthday": "1.2.2000"}]}),
                "contacts[0].birthday",
                None,
            ),
            (
                "contacts",
                json!({"contacts": [{"name": {"formatted_name": "A"}, "phones": [{"type": "HOME"}]}]}),
                "contacts[0].phones[0].phone",
                None,
            ),
            (
                "reaction",
                json!({"reaction": {"emoji": "👍"}}),
                "reaction.message_id",
                None,
            ),
            (
                "reaction",
                json!({"reaction": {"message_id": "wamid.A"}}),
                "reaction.emoji",
                None,
            ),
            (
                "reaction",
                json!({"reaction": {"message_id": "wamid.A", "emoji": "👍"}, "context": {"message_id": "wamid.B"}}),
                "context",
                None,
            ),
            (
                "interactive",
                json!({"interactive": {"body": {"text": "x"}}}),
                "interactive.type",
                None,
            ),
            (
                "interactive",
                json!({"interactive": {"type": "slideshow"}}),
                "interactive.type",
                None,
            ),
            (
                "interactive",
                interactive_button(json!([button("A", "a")]))
                    .pointer("")
                    .cloned()
                    .map(|mut v| {
                        v["interactive"]["body"]["text"] = json!(long(1025));
                        v
                    })
                    .unwrap_or_default(),
                "interactive.body.text",
                Some(1024),
            ),
            (
                "interactive",
                json!({"interactive": {"type": "button", "action": {"buttons": [button("A", "a")]}}}),
                "interactive.body",
                None,
            ),
            (
                "interactive",
                json!({"interactive": {"type": "button", "body": {"text": "x"}, "footer": {"text": long(61)}, "action": {"buttons": [button("A", "a")]}}}),
                "interactive.footer.text",
                Some(60),
            ),
            (
                "interactive",
                json!({"interactive": {"type": "button", "header": {"type": "text", "text": long(61)}, "body": {"text": "x"}, "action": {"buttons": [button("A", "a")]}}}),
                "interactive.header.text",
                Some(60),
            ),
            (
                "interactive",
                json!({"interactive": {"type": "button", "header": {"type": "image", "image": {}}, "body": {"text": "x"}, "action": {"buttons": [button("A", "a")]}}}),
                "interactive.header.image.id",
                None,
            ),
            (
                "interactive",
                json!({"interactive": {"type": "button", "header": {"type": "sticker"}, "body": {"text": "x"}, "action": {"buttons": [button("A", "a")]}}}),
                "interactive.header.type",
                None,
            ),
            (
                "interactive",
                interactive_button(json!([])),
                "interactive.action.buttons",
                Some(1),
            ),
            (
                "interactive",
                interactive_button(json!([
                    button("A", "a"),
                    button("B", "b"),
                    button("C", "c"),
                    button("D", "d")
                ])),
                "interactive.action.buttons",
                Some(3),
            ),
            (
                "interactive",
                interactive_button(json!([button("A", "a"), button("B", "b"), button(&long(21), "c")])),
                "interactive.action.buttons[2].reply.title",
                Some(20),
            ),
            (
                "interactive",
                interactive_button(json!([button("A", &long(257))])),
                "interactive.action.buttons[0].reply.id",
                Some(256),
            ),
            (
                "interactive",
                interactive_button(json!([button("A", "a"), button("B", "a")])),
                "interactive.action.buttons[1].reply.id",
                None,
            ),
            (
                "interactive",
                interactive_button(json!([button("A", "a"), button("A", "b")])),
                "interactive.action.buttons[1].reply.title",
                None,
            ),
            (
                "interactive",
                interactive_button(json!([{"type": "url", "reply": {"id": "a", "title": "A"}}])),
                "interactive.action.buttons[0].type",
                None,
            ),
            (
                "interactive",
                json!({"interactive": {"type": "list", "body": {"text": "Menu"}, "action": {"button": long(21), "sections": [{"rows": rows(1, "r")}]}}}),
                "interactive.action.button",
                Some(20),
            ),
            ("interactive", list(json!([])), "interactive.action.sections", Some(1)),
            (
                "interactive",
                list(json!((0..11)
                    .map(|i| json!({"title": format!("S{i}"), "rows": [{"id": format!("r{i}"), "title": "R"}]}))
                    .collect::<Vec<_>>())),
                "interactive.action.sections",
                Some(10),
            ),
            (
                "interactive",
                list(json!([{"title": "A", "rows": rows(6, "a")}, {"title": "B", "rows": rows(5, "b")}])),
                "interactive.action.sections",
                Some(10),
            ),
            (
                "interactive",
                list(json!([{"rows": rows(1, "a")}, {"title": "B", "rows": rows(1, "b")}])),
                "interactive.action.sections[0].title",
                None,
            ),
            (
                "interactive",
                list(json!([{"title": long(25), "rows": rows(1, "a")}])),
                "interactive.action.sections[0].title",
                Some(24),
            ),
            (
                "interactive",
                list(json!([{"title": "A", "rows": []}])),
                "interactive.action.sections[0].rows",
                Some(1),
            ),
            (
                "interactive",
                list(json!([{"title": "A", "rows": [{"id": "a", "title": long(25)}]}])),
                "interactive.action.sections[0].rows[0].title",
                Some(24),
            ),
            (
                "interactive",
                list(json!([{"title": "A", "rows": [{"id": "a", "title": "T", "description": long(73)}]}])),
                "interactive.action.sections[0].rows[0].description",
                Some(72),
            ),
            (
                "interactive",
                list(json!([{"title": "A", "rows": [{"id": long(201), "title": "T"}]}])),
                "interactive.action.sections[0].rows[0].id",
                Some(200),
            ),
            (
                "interactive",
                list(json!([{"title": "A", "rows": rows(1, "a")}, {"title": "B", "rows": rows(1, "a")}])),
                "interactive.action.sections[1].rows[0].id",
                None,
            ),
            (
                "interactive",
                json!({"interactive": {"type": "list", "header": {"type": "image", "image": {"id": "1"}}, "body": {"text": "Menu"}, "action": {"button": "Open", "sections": [{"rows": rows(1, "a")}]}}}),
                "interactive.header.type",
                None,
            ),
            (
                "interactive",
                json!({"interactive": {"type": "list", "body": {"text": long(4097)}, "action": {"button": "Open", "sections": [{"rows": rows(1, "a")}]}}}),
                "interactive.body.text",
                Some(4096),
            ),
            (
                "interactive",
                json!({"interactive": {"type": "cta_url", "body": {"text": "x"}, "action": {"name": "cta_url", "parameters": {"display_text": long(21), "url": "https://x.io"}}}}),
                "interactive.action.parameters.display_text",
                Some(20),
            ),
            (
                "interactive",
                json!({"interactive": {"type": "cta_url", "body": {"text": "x"}, "action": {"name": "cta_url", "parameters": {"display_text": "Go", "url": "x.io"}}}}),
                "interactive.action.parameters.url",
                None,
            ),
            (
                "interactive",
                json!({"interactive": {"type": "cta_url", "body": {"text": "x"}, "action": {"name": "link", "parameters": {"display_text": "Go", "url": "https://x.io"}}}}),
                "interactive.action.name",
                None,
            ),
            (
                "interactive",
                json!({"interactive": {"type": "cta_url", "body": {"text": "x"}, "action": {"name": "cta_url"}}}),
                "interactive.action.parameters",
                None,
            ),
            (
                "interactive",
                json!({"interactive": {"type": "flow", "body": {"text": "x"}, "action": {"name": "flow", "parameters": {"flow_message_version": "3", "flow_cta": "Book"}}}}),
                "interactive.action.parameters.flow_id",
                None,
            ),
            (
                "interactive",
                json!({"interactive": {"type": "flow", "body": {"text": "x"}, "action": {"name": "flow", "parameters": {"flow_message_version": "3", "flow_cta": "Book", "flow_id": "1", "flow_name": "n"}}}}),
                "interactive.action.parameters",
                None,
            ),
            (
                "interactive",
                json!({"interactive": {"type": "flow", "body": {"text": "x"}, "action": {"name": "flow", "parameters": {"flow_message_version": "3", "flow_cta": long(31), "flow_id": "1"}}}}),
                "interactive.action.parameters.flow_cta",
                Some(30),
            ),
            (
                "interactive",
                json!({"interactive": {"type": "flow", "body": {"text": "x"}, "action": {"name": "flow", "parameters": {"flow_cta": "Go", "flow_id": "1"}}}}),
                "interactive.action.parameters.flow_message_version",
                None,
            ),
            (
                "interactive",
                json!({"interactive": {"type": "flow", "body": {"text": "x"}, "action": {"name": "flow", "parameters": {"flow_message_version": "3", "flow_cta": "Go", "flow_id": "1", "mode": "live"}}}}),
                "interactive.action.parameters.mode",
                None,
            ),
            (
                "interactive",
                json!({"interactive": {"type": "location_request_message", "body": {"text": "Where?"}, "action": {"name": "send_it"}}}),
                "interactive.action.name",
                None,
            ),
            (
                "interactive",
                json!({"interactive": {"type": "location_request_message", "body": {"text": "Where?"}}}),
                "interactive.action",
                None,
            ),
            (
                "template",
                json!({"template": {"language": {"code": "en_US"}}}),
                "template.name",
                None,
            ),
            (
                "template",
                json!({"template": {"name": "x"}}),
                "template.language",
                None,
            ),
            (
                "template",
                json!({"template": {"name": "x", "language": {}}}),
                "template.language.code",
                None,
            ),
            (
                "template",
                json!({"template": {"name": "x", "language": {"code": "en"}, "components": {}}}),
                "template.components",
                None,
            ),
            (
                "template",
                json!({"template": {"name": "x", "language": {"code": "en"}, "components": [{"type": "footer"}]}}),
                "template.components[0].type",
                None,
            ),
            (
                "template",
                json!({"template": {"name": "x", "language": {"code": "en"}, "components": [{"type": "body", "parameters": [{"type": "image", "image": {"id": "1"}}]}]}}),
                "template.components[0].parameters[0].type",
                None,
            ),
            (
                "template",
                json!({"template": {"name": "x", "language": {"code": "en"}, "components": [{"type": "body", "parameters": [{"type": "text"}]}]}}),
                "template.components[0].parameters[0].text",
                None,
            ),
            (
                "template",
                json!({"template": {"name": "x", "language": {"code": "en"}, "components": [{"type": "body", "parameters": [{"type": "currency", "currency": {"fallback_value": "$1", "code": "usd", "amount_1000": 1000}}]}]}}),
                "template.components[0].parameters[0].currency.code",
                None,
            ),
            (
                "template",
                json!({"template": {"name": "x", "language": {"code": "en"}, "components": [{"type": "body", "parameters": [{"type": "currency", "currency": {"fallback_value": "$1", "code": "USD", "amount_1000": 1.5}}]}]}}),
                "template.components[0].parameters[0].currency.amount_1000",
                None,
            ),
            (
                "template",
                json!({"template": {"name": "x", "language": {"code": "en"}, "components": [{"type": "body", "parameters": [{"type": "date_time", "date_time": {}}]}]}}),
                "template.components[0].parameters[0].date_time.fallback_value",
                None,
            ),
            (
                "template",
                json!({"template": {"name": "x", "language": {"code": "en"}, "components": [{"type": "header", "parameters": [{"type": "image", "image": {"id": "1", "link": "https://x.io/a.png"}}]}]}}),
                "template.components[0].parameters[0].image",
                None,
            ),
            (
                "template",
                json!({"template": {"name": "x", "language": {"code": "en"}, "components": [{"type": "header", "parameters": [{"type": "location", "location": {"latitude": 100, "longitude": 0}}]}]}}),
                "template.components[0].parameters[0].location.latitude",
                None,
            ),
            (
                "template",
                json!({"template": {"name": "x", "language": {"code": "en"}, "components": [{"type": "button", "index": "0", "parameters": []}]}}),
                "template.components[0].sub_type",
                None,
            ),
            (
                "template",
                json!({"template": {"name": "x", "language": {"code": "en"}, "components": [{"type": "button", "sub_type": "url", "index": "12", "parameters": [{"type": "text", "text": "a"}]}]}}),
                "template.components[0].index",
                None,
            ),
            (
                "template",
                json!({"template": {"name": "x", "language": {"code": "en"}, "components": [{"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [{"type": "payload"}]}]}}),
                "template.components[0].parameters[0].payload",
                None,
            ),
            (
                "template",
                json!({"template": {"name": "x", "language": {"code": "en"}, "components": [{"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text"}]}]}}),
                "template.components[0].parameters[0].text",
                None,
            ),
            (
                "template",
                json!({"template": {"name": "x", "language": {"code": "en"}, "components": [{"type": "button", "sub_type": "copy_code", "index": "0", "parameters": [{"type": "coupon_code", "coupon_code": long(16)}]}]}}),
                "template.components[0].parameters[0].coupon_code",
                Some(15),
            ),
            (
                "text",
                json!({"text": {"body": "hi"}, "context": {}}),
                "context.message_id",
                None,
            ),
            (
                "text",
                json!({"text": {"body": "hi"}, "biz_opaque_callback_data": long(513)}),
                "biz_opaque_callback_data",
                Some(512),
            ),
            (
                "interactive",
                carousel(vec![card(0, "Buy")]),
                "interactive.action.cards",
                Some(2),
            ),
            (
                "interactive",
                carousel((0..11).map(|i| card(i, "Buy")).collect()),
                "interactive.action.cards",
                Some(10),
            ),
            (
                "interactive",
                carousel(vec![card(0, "Buy"), card(0, "Buy")]),
                "interactive.action.cards[1].card_index",
                None,
            ),
            (
                "interactive",
                carousel(vec![card(0, &long(21)), card(1, "Buy")]),
                "interactive.action.cards[0].action.parameters.display_text",
                Some(20),
            ),
            (
                "interactive",
                carousel(vec![card_with_body(0, &long(161)), card(1, "Buy")]),
                "interactive.action.cards[0].body.text",
                Some(160),
            ),
            (
                "interactive",
                carousel(vec![card_with_body(0, "a\nb\nc\nd"), card(1, "Buy")]),
                "interactive.action.cards[0].body.text",
                Some(2),
            ),
            (
                "interactive",
                carousel(vec![card(0, "Buy"), quick_card(1, 1)]),
                "interactive.action.cards[1].action",
                None,
            ),
            (
                "interactive",
                carousel(vec![quick_card(0, 2), quick_card(1, 1)]),
                "interactive.action.cards[1].action",
                None,
            ),
            (
                "interactive",
                carousel(vec![quick_card(0, 3), quick_card(1, 3)]),
                "interactive.action.cards[0].action.buttons",
                Some(2),
            ),
            (
                "interactive",
                {
                    let mut m = carousel(vec![card(0, "Buy"), card(1, "Buy")]);
                    m["interactive"]["action"]["cards"][1]["header"] =
                        json!({"type": "document", "document": {"link": "https://x.io/a.pdf"}});
                    m
                },
                "interactive.action.cards[1].header.type",
                None,
            ),
            (
                "interactive",
                {
                    let mut m = carousel(vec![card(0, "Buy"), card(1, "Buy")]);
                    m["interactive"]["footer"] = json!({"text": "no"});
                    m
                },
                "interactive.footer",
                None,
            ),
            (
                "interactive",
                carousel(vec![
                    json!({"card_index": 0, "type": "product", "action": {"catalog_id": "1"}}),
                    card(1, "Buy"),
                ]),
                "interactive.action.cards",
                None,
            ),
        ]
    }

    #[test]
    fn carousels_of_quick_replies_pass() {
        let two = carousel(vec![quick_card(0, 2), quick_card(1, 2)]);
        assert_eq!(check_message("interactive", &two), Ok(()));
    }

    #[test]
    fn every_rule_refuses_with_field_limit_and_size() {
        for (kind, body, field, limit) in refusals() {
            let found = check_message(kind, &body).expect_err(&format!("{kind} {body} should be refused"));
            let v = found
                .iter()
                .find(|v| v.field == field)
                .unwrap_or_else(|| panic!("{kind}: no violation of {field} in {found:?}"));
            assert_eq!(v.limit, limit, "{field}: {v:?}");
            if limit.is_some() {
                assert!(v.size.is_some(), "{field}: size is reported");
                assert!(
                    v.message.contains(&limit.unwrap_or_default().to_string()),
                    "{field}: {}",
                    v.message
                );
            }
        }
    }

    #[test]
    fn sends_are_checked_against_the_template() {
        let po = json!([{"type": "BODY", "text": "Hola, {{1}} ha emitido la orden {{2}} por {{3}}."}]);
        let three = json!({"components": [{"type": "body", "parameters": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}, {"type": "text", "text": "c"}]}]});
        assert_eq!(check_against_template(&po, None, &three), Ok(()));
        let one = json!({"components": [{"type": "body", "parameters": [{"type": "text", "text": "a"}]}]});
        let v = check_against_template(&po, None, &one).expect_err("count");
        assert_eq!(
            (v.field.as_str(), v.limit, v.size),
            ("template.components[0].parameters", Some(3), Some(1))
        );
        let v = check_against_template(&po, None, &json!({})).expect_err("missing body");
        assert_eq!(v.field, "template.components");

        let image = json!([{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "Order {{1}}"}]);
        let ok = json!({"components": [{"type": "header", "parameters": [{"type": "image", "image": {"id": "1"}}]}, {"type": "body", "parameters": [{"type": "text", "text": "1"}]}]});
        assert_eq!(check_against_template(&image, None, &ok), Ok(()));
        let wrong = json!({"components": [{"type": "header", "parameters": [{"type": "text", "text": "x"}]}, {"type": "body", "parameters": [{"type": "text", "text": "1"}]}]});
        assert_eq!(
            check_against_template(&image, None, &wrong).expect_err("format").field,
            "template.components[0].parameters[0].type"
        );
        let none = json!({"components": [{"type": "body", "parameters": [{"type": "text", "text": "1"}]}]});
        assert_eq!(
            check_against_template(&image, None, &none).expect_err("header").limit,
            Some(1)
        );

        let named = json!([{"type": "BODY", "text": "Hi {{first_name}}, order {{order_id}}"}]);
        let good = json!({"components": [{"type": "body", "parameters": [
            {"type": "text", "parameter_name": "order_id", "text": "1"}, {"type": "text", "parameter_name": "first_name", "text": "A"}]}]});
        assert_eq!(check_against_template(&named, Some("NAMED"), &good), Ok(()));
        let bad = json!({"components": [{"type": "body", "parameters": [
            {"type": "text", "parameter_name": "order", "text": "1"}, {"type": "text", "parameter_name": "first_name", "text": "A"}]}]});
        assert_eq!(
            check_against_template(&named, Some("named"), &bad)
                .expect_err("name")
                .field,
            "template.components[0].parameters[0].parameter_name"
        );
    }

    #[test]
    fn button_parameters_match_the_templates_buttons() {
        let t = json!([{"type": "BODY", "text": "Hi"}, {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Stop"}, {"type": "URL", "text": "Track", "url": "https://x.io/{{1}}"}]}]);
        let ok = json!({"components": [
            {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [{"type": "payload", "payload": "STOP"}]},
            {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "1042"}]}]});
        assert_eq!(check_against_template(&t, None, &ok), Ok(()));
        let wrong_kind = json!({"components": [{"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "x"}]}]});
        assert_eq!(
            check_against_template(&t, None, &wrong_kind).expect_err("kind").field,
            "template.components[0].sub_type"
        );
        let no_button = json!({"components": [{"type": "button", "sub_type": "quick_reply", "index": "5", "parameters": [{"type": "payload", "payload": "x"}]}]});
        assert_eq!(
            check_against_template(&t, None, &no_button).expect_err("index").field,
            "template.components[0].index"
        );
    }

    #[test]
    fn limits_are_inclusive() {
        let ok = [
            ("text", json!({"text": {"body": long(4096)}})),
            ("image", json!({"image": {"id": "1", "caption": long(1024)}})),
            (
                "interactive",
                json!({"interactive": {"type": "button", "body": {"text": long(1024)}, "action": {"buttons": [
                {"type": "reply", "reply": {"id": "a", "title": long(20)}},
                {"type": "reply", "reply": {"id": "b", "title": "B"}},
                {"type": "reply", "reply": {"id": "c", "title": "C"}}]}}}),
            ),
            ("reaction", json!({"reaction": {"message_id": "wamid.A", "emoji": ""}})),
            ("location", json!({"location": {"latitude": "-90", "longitude": 180}})),
        ];
        for (kind, body) in ok {
            assert_eq!(check_message(kind, &body), Ok(()), "{kind} {body}");
        }
    }
}
