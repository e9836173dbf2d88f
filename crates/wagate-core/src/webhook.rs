//! Meta's webhook POST bodies: routing (which WABA and phone number they are for), and turning
//! every entry, change, message and status into updates with a normalised payload.
//!
//! Parsing is lenient on purpose. Meta adds fields and changes shapes (business-scoped user ids,
//! contacts without `wa_id`, new message types); nothing here fails on an unknown field or type —
//! it is carried along raw, and whatever cannot be understood becomes a `webhook.unknown` update.

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::meta::MetaError;
use crate::status::MessageStatus;
use crate::time::{meta_timestamp_ms, rfc3339_ms};

/// The ids a webhook is addressed to, read without building the whole document.
#[derive(Debug, Default, Deserialize)]
pub struct Routing {
    #[serde(default)]
    pub entry: Vec<RoutingEntry>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RoutingEntry {
    #[serde(default, deserialize_with = "string_or_number")]
    pub id: Option<String>,
    #[serde(default)]
    pub changes: Vec<RoutingChange>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RoutingChange {
    #[serde(default)]
    pub value: Option<RoutingValue>,
    #[serde(default)]
    pub field: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RoutingValue {
    #[serde(default)]
    pub metadata: Option<RoutingMetadata>,
    /// `account_update` events (e.g. PARTNER_APP_INSTALLED) name the WABA here; their
    /// `entry.id` is then another business id.
    #[serde(default)]
    pub waba_info: Option<RoutingWabaInfo>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RoutingWabaInfo {
    #[serde(default, deserialize_with = "string_or_number")]
    pub waba_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RoutingMetadata {
    #[serde(default, deserialize_with = "string_or_number")]
    pub phone_number_id: Option<String>,
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

impl Routing {
    /// Reads the routing ids. A body that is not JSON, or not of Meta's shape, names no ids
    /// (it is still kept, and becomes a `webhook.invalid` event when processed).
    pub fn parse(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// Every (WABA id, phone_number_id) pair the body speaks of.
    pub fn targets(&self) -> impl Iterator<Item = (Option<&str>, Option<&str>)> {
        self.entry.iter().flat_map(|e| {
            let targets: Vec<(Option<&str>, Option<&str>)> = e
                .changes
                .iter()
                .map(|c| {
                    let value = c.value.as_ref();
                    let waba = value
                        .and_then(|v| v.waba_info.as_ref())
                        .and_then(|w| w.waba_id.as_deref())
                        .or(e.id.as_deref());
                    (
                        waba,
                        value
                            .and_then(|v| v.metadata.as_ref())
                            .and_then(|m| m.phone_number_id.as_deref()),
                    )
                })
                .collect();
            if targets.is_empty() {
                vec![(e.id.as_deref(), None)]
            } else {
                targets
            }
        })
    }
}

/// One thing a webhook told us.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    Message(InboundMessage),
    Status(StatusUpdate),
    Other(OtherUpdate),
}

impl Update {
    pub fn waba_id(&self) -> Option<&str> {
        match self {
            Update::Message(m) => Some(&m.waba_id),
            Update::Status(s) => Some(&s.waba_id),
            Update::Other(o) => o.waba_id.as_deref(),
        }
    }

    pub fn phone_number_id(&self) -> Option<&str> {
        match self {
            Update::Message(m) => Some(&m.phone_number_id),
            Update::Status(s) => Some(&s.phone_number_id),
            Update::Other(o) => o.phone_number_id.as_deref(),
        }
    }
}

/// A message a user sent to one of our numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    pub waba_id: String,
    pub phone_number_id: String,
    /// Meta's message id (a message without one is `webhook.invalid`).
    pub wamid: String,
    /// The user's WhatsApp id (phone digits); absent when the user hides the number (BSUID only).
    pub from: Option<String>,
    pub from_user_id: Option<String>,
    pub contact_name: Option<String>,
    pub timestamp_ms: Option<i64>,
    pub message_type: String,
    /// The normalised `message.received` payload, without the gateway's own ids.
    pub payload: Value,
    /// Meta's message object, with its contact entry beside it, as JSON text
    /// (`{"contact": …, "message": …}`): serialised from the parsed body rather than copied
    /// into a value of its own first, since it is only ever stored.
    pub raw: String,
}

/// What [`InboundMessage::raw`] holds, borrowed from the parsed body. The fields are in the
/// order a JSON object's keys sort in, as when this was a `Value`.
#[derive(serde::Serialize)]
struct RawMessage<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    contact: Option<&'a Value>,
    message: &'a Value,
}

impl InboundMessage {
    /// Who the contact is: wa_id when known, else the business-scoped user id.
    pub fn contact_key(&self) -> Option<&str> {
        self.from.as_deref().or(self.from_user_id.as_deref())
    }
}

/// A status of a message we sent.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    pub waba_id: String,
    pub phone_number_id: String,
    pub wamid: String,
    pub status: MessageStatus,
    pub timestamp_ms: Option<i64>,
    pub recipient_id: Option<String>,
    pub errors: Vec<MetaError>,
    pub payload: Value,
    pub raw: Value,
}

/// Anything else: template, account and phone-number updates, and what we do not know.
#[derive(Debug, Clone, PartialEq)]
pub struct OtherUpdate {
    pub waba_id: Option<String>,
    pub phone_number_id: Option<String>,
    pub event_type: &'static str,
    pub field: String,
    pub occurred_ms: Option<i64>,
    pub payload: Value,
    pub raw: Value,
}

/// What a template webhook changes in an account's catalog.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TemplateChange {
    pub name: String,
    pub language: String,
    pub template_id: Option<String>,
    /// `message_template_status_update`: the new status (`APPROVED`, `REJECTED`, `PAUSED`…).
    pub status: Option<String>,
    /// …and why (`reason`; Meta's `NONE` when there is no reason).
    pub reason: Option<String>,
    /// `message_template_quality_update`: the new quality score.
    pub quality_score: Option<String>,
    /// `template_category_update`: the new category.
    pub category: Option<String>,
    /// The category a status update names, for a template not seen before.
    pub stated_category: Option<String>,
    /// `message_template_components_update`: the components rebuilt from the new texts and
    /// buttons, in the catalog's shape (`HEADER`, `BODY`, `FOOTER`, `BUTTONS`).
    pub components: Option<Value>,
}

impl OtherUpdate {
    /// The catalog change a template webhook carries; `None` without the template's name and
    /// language.
    pub fn template_change(&self) -> Option<TemplateChange> {
        let v = &self.raw;
        let s = |k: &str| {
            v.get(k).and_then(|x| match x {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        };
        let mut change = TemplateChange {
            name: s("message_template_name")?,
            language: s("message_template_language")?,
            template_id: s("message_template_id"),
            stated_category: s("message_template_category"),
            ..TemplateChange::default()
        };
        match self.field.as_str() {
            "message_template_status_update" => {
                change.status = s("event");
                change.reason = s("reason").filter(|r| r != "NONE");
            }
            "message_template_quality_update" => change.quality_score = s("new_quality_score"),
            "template_category_update" => change.category = s("new_category"),
            "message_template_components_update" => {
                let mut c = Vec::new();
                if let Some(t) = s("message_template_title") {
                    c.push(json!({"type": "HEADER", "format": "TEXT", "text": t}));
                }
                c.push(json!({"type": "BODY", "text": s("message_template_element").unwrap_or_default()}));
                if let Some(f) = s("message_template_footer") {
                    c.push(json!({"type": "FOOTER", "text": f}));
                }
                if let Some(b) = v.get("message_template_buttons").and_then(Value::as_array) {
                    let buttons: Vec<Value> = b
                        .iter()
                        .map(|x| {
                            json!({
                                "type": x.get("message_template_button_type"),
                                "text": x.get("message_template_button_text"),
                                "url": x.get("message_template_button_url"),
                                "phone_number": x.get("message_template_button_phone_number"),
                            })
                        })
                        .collect();
                    c.push(json!({"type": "BUTTONS", "buttons": buttons}));
                }
                change.components = Some(Value::Array(c));
            }
            _ => {}
        }
        Some(change)
    }
}

/// The media a normalised inbound payload carries, as Meta names it.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMediaRef {
    pub meta_media_id: String,
    pub mime_type: Option<String>,
    pub sha256: Option<String>,
}

/// Gives an inbound payload's media the gateway's id and download URL (the bytes follow), and
/// returns what Meta said of it; `None` when the message carries no media.
pub fn assign_media(payload: &mut Value, media_id: &str) -> Option<InboundMediaRef> {
    let media = payload.pointer_mut("/content/media")?.as_object_mut()?;
    let text = |k: &str| media.get(k).and_then(Value::as_str).map(str::to_string);
    let found = InboundMediaRef {
        meta_media_id: text("id")?,
        mime_type: text("mime_type"),
        sha256: text("sha256"),
    };
    media.insert("media_id".into(), json!(media_id));
    media.insert("download_url".into(), json!(format!("/v1/media/{media_id}")));
    Some(found)
}

/// The event type of a webhook `field` other than `messages`.
pub fn field_event_type(field: &str) -> &'static str {
    match field {
        "message_template_status_update" => "template.status_updated",
        "message_template_quality_update" => "template.quality_updated",
        "template_category_update" => "template.category_updated",
        "message_template_components_update" => "template.components_updated",
        "account_update" => "account.updated",
        "account_alerts" => "account.alert",
        "phone_number_quality_update" => "phone_number.quality_updated",
        "phone_number_name_update" => "phone_number.name_updated",
        "user_preferences" => "user.preferences_updated",
        _ => "webhook.unknown",
    }
}

/// Every event type the gateway emits.
pub const EVENT_TYPES: &[&str] = &[
    "message.received",
    "message.sent",
    "message.delivered",
    "message.read",
    "message.played",
    "message.failed",
    "template.status_updated",
    "template.quality_updated",
    "template.category_updated",
    "template.components_updated",
    "account.updated",
    "account.alert",
    "phone_number.quality_updated",
    "phone_number.name_updated",
    "user.preferences_updated",
    "webhook.unknown",
    "webhook.invalid",
    "hook.disabled",
    "hook.reply_failed",
];

/// The event of an acknowledged webhook (or a part of one) that cannot be processed: not JSON,
/// not UTF-8, nested too deep, or a part that contradicts Meta's documented shape. It carries
/// the reason and the raw bytes, so that nothing acknowledged disappears without a trace.
pub const INVALID: &str = "webhook.invalid";

/// The nesting serde_json accepts; Meta's payloads are about ten levels deep.
pub const MAX_DEPTH: usize = 128;

/// Turns a webhook body into its updates. It never fails: every body yields at least one
/// update, and whatever cannot be understood becomes `webhook.unknown` (well-formed but not
/// known) or `webhook.invalid` (malformed, with the reason).
pub fn parse_updates(body: &[u8]) -> Vec<Update> {
    let doc: Value = match serde_json::from_slice(body) {
        Ok(doc) => doc,
        Err(e) => return vec![invalid_body(body, &e)],
    };
    let mut out = Vec::new();
    if let Some(object) = doc.get("object") {
        if object != "whatsapp_business_account" {
            let mut u = unknown(None, None, "", None, doc.clone());
            set_reason(
                &mut u,
                format!("`object` is {object}, not \"whatsapp_business_account\": this is not a WhatsApp webhook, so nothing in it was processed"),
            );
            return vec![u];
        }
    }
    let entries = match doc.get("entry") {
        Some(Value::Array(entries)) => entries,
        None => return vec![unknown(None, None, "", None, doc.clone())],
        Some(other) => return vec![invalid_part(None, None, "", "entry", "is not an array", other.clone())],
    };
    for (i, entry) in entries.iter().enumerate() {
        let waba_id = entry.get("id").and_then(id_string);
        let entry_time = meta_timestamp_ms(entry.get("time"));
        let changes = match entry.get("changes") {
            Some(Value::Array(changes)) => changes,
            None => {
                out.push(unknown(waba_id.clone(), None, "", entry_time, entry.clone()));
                continue;
            }
            Some(other) => {
                out.push(invalid_part(
                    waba_id,
                    None,
                    "",
                    &format!("entry[{i}].changes"),
                    "is not an array",
                    other.clone(),
                ));
                continue;
            }
        };
        for (j, change) in changes.iter().enumerate() {
            let field = change.get("field").and_then(Value::as_str).unwrap_or("");
            let value = change.get("value").unwrap_or(&Value::Null);
            if field == "messages" {
                let path = format!("entry[{i}].changes[{j}].value");
                messages_change(&mut out, waba_id.as_deref(), value, &path);
            } else {
                out.push(other_field(waba_id.clone(), field, entry_time, value.clone()));
            }
        }
    }
    if out.is_empty() {
        // `"entry": []` and the like: nothing to process, but the body was acknowledged.
        out.push(unknown(None, None, "", None, doc));
    }
    out
}

/// Why a body is not JSON, for a person; and the bytes, as text when they are UTF-8.
fn invalid_body(body: &[u8], e: &serde_json::Error) -> Update {
    let reason = match std::str::from_utf8(body) {
        Err(u) => format!("the body is not valid UTF-8 (bad byte at offset {})", u.valid_up_to()),
        Ok(_) if e.to_string().contains("recursion limit") => {
            format!("the body nests deeper than {MAX_DEPTH} levels ({e})")
        }
        Ok(_) => format!("the body is not JSON: {e}"),
    };
    let raw = match std::str::from_utf8(body) {
        Ok(text) => json!({"encoding": "utf8", "body": text}),
        Err(_) => {
            use base64::Engine;
            json!({"encoding": "base64", "body": base64::engine::general_purpose::STANDARD.encode(body)})
        }
    };
    Update::Other(OtherUpdate {
        payload: json!({"reason": reason, "path": Value::Null, "field": Value::Null, "waba_id": Value::Null, "phone_number_id": Value::Null, "size": body.len()}),
        waba_id: None,
        phone_number_id: None,
        event_type: INVALID,
        field: String::new(),
        occurred_ms: None,
        raw,
    })
}

/// A part of a well-formed body that contradicts Meta's documented shape; `raw` is that part.
fn invalid_part(
    waba_id: Option<String>,
    phone_number_id: Option<String>,
    field: &str,
    path: &str,
    problem: &str,
    raw: Value,
) -> Update {
    Update::Other(OtherUpdate {
        payload: json!({
            "reason": format!("`{path}` {problem}"),
            "path": path,
            "field": field,
            "waba_id": waba_id,
            "phone_number_id": phone_number_id,
        }),
        waba_id,
        phone_number_id,
        event_type: INVALID,
        field: field.to_string(),
        occurred_ms: None,
        raw,
    })
}

fn set_reason(update: &mut Update, reason: String) {
    if let Update::Other(o) = update {
        if let Some(p) = o.payload.as_object_mut() {
            p.insert("reason".into(), Value::String(reason));
        }
    }
}

fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn unknown(
    waba_id: Option<String>,
    phone_number_id: Option<String>,
    field: &str,
    occurred_ms: Option<i64>,
    raw: Value,
) -> Update {
    Update::Other(OtherUpdate {
        payload: json!({"field": field, "waba_id": waba_id, "phone_number_id": phone_number_id}),
        waba_id,
        phone_number_id,
        event_type: "webhook.unknown",
        field: field.to_string(),
        occurred_ms,
        raw,
    })
}

const MESSAGES_VALUE_KEYS: &[&str] = &["messaging_product", "metadata", "contacts", "messages", "statuses"];

/// The items of an array member of a `messages` value: absent is empty; any other shape is
/// reported as invalid and yields nothing.
fn array_member<'a>(out: &mut Vec<Update>, value: &'a Value, key: &str, ids: (&str, &str), path: &str) -> &'a [Value] {
    match value.get(key) {
        None | Some(Value::Null) => &[],
        Some(Value::Array(items)) => items,
        Some(other) => {
            out.push(invalid_part(
                Some(ids.0.into()),
                Some(ids.1.into()),
                "messages",
                &format!("{path}.{key}"),
                &format!("is {}, not an array", json_kind(other)),
                other.clone(),
            ));
            &[]
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn messages_change(out: &mut Vec<Update>, waba_id: Option<&str>, value: &Value, path: &str) {
    let metadata = value.get("metadata");
    let phone_number_id = metadata.and_then(|m| m.get("phone_number_id")).and_then(id_string);
    let display = metadata
        .and_then(|m| m.get("display_phone_number"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let (Some(waba), Some(phone)) = (waba_id, phone_number_id.clone()) else {
        out.push(unknown(
            waba_id.map(str::to_string),
            phone_number_id,
            "messages",
            None,
            value.clone(),
        ));
        return;
    };
    let ids = (waba, phone.as_str());
    let contacts = array_member(out, value, "contacts", ids, path);
    for (k, msg) in array_member(out, value, "messages", ids, path).iter().enumerate() {
        let at = format!("{path}.messages[{k}]");
        match msg.get("id") {
            Some(Value::String(id)) if !id.is_empty() => out.push(Update::Message(inbound_message(
                waba,
                &phone,
                display.as_deref(),
                contacts,
                msg,
            ))),
            _ if !msg.is_object() => out.push(invalid_part(
                Some(waba.into()),
                Some(phone.clone()),
                "messages",
                &at,
                &format!("is {}, not a message object", json_kind(msg)),
                msg.clone(),
            )),
            None => out.push(invalid_part(
                Some(waba.into()),
                Some(phone.clone()),
                "messages",
                &format!("{at}.id"),
                "is missing: a message without Meta's id (wamid) cannot be deduplicated or answered",
                msg.clone(),
            )),
            Some(other) => out.push(invalid_part(
                Some(waba.into()),
                Some(phone.clone()),
                "messages",
                &format!("{at}.id"),
                &format!("is {}, not a wamid string", json_kind(other)),
                msg.clone(),
            )),
        }
    }
    // Parts that are not understood are gathered into one `webhook.unknown` per change.
    let mut not_understood = Map::new();
    for (k, st) in array_member(out, value, "statuses", ids, path).iter().enumerate() {
        let at = format!("{path}.statuses[{k}]");
        match st.get("id") {
            Some(Value::String(id)) if !id.is_empty() => {
                match status_update(waba, &phone, display.as_deref(), contacts, st) {
                    Some(s) => out.push(Update::Status(s)),
                    None => {
                        let list = not_understood.entry("statuses").or_insert_with(|| json!([]));
                        if let Some(list) = list.as_array_mut() {
                            list.push(st.clone());
                        }
                    }
                }
            }
            _ => out.push(invalid_part(
                Some(waba.into()),
                Some(phone.clone()),
                "messages",
                &format!("{at}.id"),
                "is not a wamid string: the status cannot be matched to a message",
                st.clone(),
            )),
        }
    }
    // Anything else in the value (system-level `errors`, fields Meta adds later) is kept.
    if let Some(obj) = value.as_object() {
        for (k, v) in obj.iter().filter(|(k, _)| !MESSAGES_VALUE_KEYS.contains(&k.as_str())) {
            not_understood.insert(k.clone(), v.clone());
        }
    }
    if !not_understood.is_empty() {
        let mut u = unknown(
            Some(waba.into()),
            Some(phone),
            "messages",
            None,
            Value::Object(not_understood),
        );
        set_reason(
            &mut u,
            format!("parts of `{path}` are not known to wagate; they are kept raw"),
        );
        out.push(u);
    }
}

fn contact_for<'a>(contacts: &'a [Value], wa_id: Option<&str>, user_id: Option<&str>) -> Option<&'a Value> {
    contacts
        .iter()
        .find(|c| {
            (wa_id.is_some() && c.get("wa_id").and_then(Value::as_str) == wa_id)
                || (user_id.is_some() && c.get("user_id").and_then(Value::as_str) == user_id)
        })
        .or_else(|| if contacts.len() == 1 { contacts.first() } else { None })
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn inbound_message(
    waba_id: &str,
    phone_number_id: &str,
    display: Option<&str>,
    contacts: &[Value],
    msg: &Value,
) -> InboundMessage {
    let from = str_field(msg, "from");
    let from_user_id = str_field(msg, "from_user_id");
    let contact = contact_for(contacts, from.as_deref(), from_user_id.as_deref());
    let contact_name = contact
        .and_then(|c| c.pointer("/profile/name"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let message_type = str_field(msg, "type").unwrap_or_else(|| "unknown".into());
    let timestamp_ms = meta_timestamp_ms(msg.get("timestamp"));
    let wamid = str_field(msg, "id").unwrap_or_default();
    let (text, content) = content_of(&message_type, msg);
    let context = msg.get("context").map(|c| {
        json!({
            "wamid": c.get("id"),
            "from": c.get("from"),
            "forwarded": c.get("forwarded").and_then(Value::as_bool).unwrap_or(false),
            "frequently_forwarded": c.get("frequently_forwarded").and_then(Value::as_bool).unwrap_or(false),
            "referred_product": c.get("referred_product"),
        })
    });
    let mut payload = json!({
        "wamid": wamid,
        "from": from,
        "from_user_id": from_user_id,
        "contact": {
            "wa_id": contact.and_then(|c| c.get("wa_id")).or(msg.get("from")),
            "user_id": contact.and_then(|c| c.get("user_id")).or(msg.get("from_user_id")),
            "name": contact_name,
            "username": contact.and_then(|c| c.pointer("/profile/username")),
        },
        "waba_id": waba_id,
        "phone_number_id": phone_number_id,
        "display_phone_number": display,
        "type": message_type,
        "timestamp": timestamp_ms.map(rfc3339_ms),
        "text": text,
        "context": context,
        "content": content,
    });
    if let (Some(obj), Some(referral)) = (payload.as_object_mut(), msg.get("referral")) {
        obj.insert("referral".into(), referral.clone());
    }
    if let (Some(obj), Some(errors)) = (payload.as_object_mut(), msg.get("errors")) {
        obj.insert("errors".into(), normalise_errors(errors));
    }
    let raw = serde_json::to_string(&RawMessage { contact, message: msg }).unwrap_or_default();
    InboundMessage {
        waba_id: waba_id.into(),
        phone_number_id: phone_number_id.into(),
        wamid,
        from,
        from_user_id,
        contact_name,
        timestamp_ms,
        message_type,
        payload,
        raw,
    }
}

const MEDIA_TYPES: &[&str] = &["image", "video", "audio", "document", "sticker"];

/// The message's text (what an inbox would show in one line) and its type-specific content.
fn content_of(message_type: &str, msg: &Value) -> (Option<String>, Value) {
    let obj = msg.get(message_type).cloned().unwrap_or(Value::Null);
    let s = |p: &str| obj.pointer(p).and_then(Value::as_str).map(str::to_string);
    match message_type {
        "text" => (s("/body"), json!({"body": s("/body")})),
        t if MEDIA_TYPES.contains(&t) => (
            s("/caption"),
            json!({
                "media": {
                    "id": obj.get("id"),
                    "mime_type": obj.get("mime_type"),
                    "sha256": obj.get("sha256"),
                    "url": obj.get("url"),
                    "caption": obj.get("caption"),
                    "filename": obj.get("filename"),
                    "voice": obj.get("voice"),
                    "animated": obj.get("animated"),
                }
            }),
        ),
        "location" => (s("/name").or(s("/address")), obj),
        "button" => (s("/text"), json!({"payload": s("/payload"), "text": s("/text")})),
        "reaction" => (
            s("/emoji"),
            json!({"wamid": obj.get("message_id"), "emoji": obj.get("emoji"), "removed": obj.get("emoji").is_none()}),
        ),
        "interactive" => {
            let kind = s("/type").unwrap_or_default();
            let reply = obj.get(&kind).cloned().unwrap_or(Value::Null);
            let title = reply.get("title").and_then(Value::as_str).map(str::to_string);
            let mut content = json!({
                "type": kind,
                "id": reply.get("id"),
                "title": reply.get("title"),
                "description": reply.get("description"),
            });
            if kind == "nfm_reply" {
                let response = reply
                    .get("response_json")
                    .and_then(Value::as_str)
                    .and_then(|r| serde_json::from_str::<Value>(r).ok());
                content =
                    json!({"type": kind, "name": reply.get("name"), "body": reply.get("body"), "response": response});
                return (reply.get("body").and_then(Value::as_str).map(str::to_string), content);
            }
            (title, content)
        }
        "system" => (
            s("/body"),
            json!({"type": obj.get("type"), "body": obj.get("body"), "new_wa_id": obj.get("wa_id").or(obj.get("new_wa_id"))}),
        ),
        "order" => (s("/text"), obj),
        "contacts" => (
            msg.pointer("/contacts/0/name/formatted_name")
                .and_then(Value::as_str)
                .map(str::to_string),
            json!({"contacts": msg.get("contacts")}),
        ),
        "unsupported" | "unknown" => (None, json!({"unsupported": msg.get("unsupported")})),
        _ => (None, obj),
    }
}

fn normalise_errors(errors: &Value) -> Value {
    let list: Vec<MetaError> = serde_json::from_value(errors.clone()).unwrap_or_default();
    Value::Array(list.iter().map(error_json).collect())
}

/// A Meta error as events and API bodies show it: code, title, details and our hint.
pub fn error_json(e: &MetaError) -> Value {
    json!({
        "code": e.code,
        "title": e.title.clone().or_else(|| e.message.clone()),
        "message": e.message,
        "details": e.details(),
        "hint": e.hint(),
        "retry": e.class(),
    })
}

fn status_update(
    waba_id: &str,
    phone_number_id: &str,
    display: Option<&str>,
    contacts: &[Value],
    st: &Value,
) -> Option<StatusUpdate> {
    let wamid = str_field(st, "id")?;
    let status = MessageStatus::parse(st.get("status")?.as_str()?)?;
    status.event_type()?;
    let timestamp_ms = meta_timestamp_ms(st.get("timestamp"));
    let recipient_id = str_field(st, "recipient_id");
    let errors: Vec<MetaError> = st
        .get("errors")
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .unwrap_or_default();
    let contact = contact_for(
        contacts,
        recipient_id.as_deref(),
        st.get("recipient_user_id").and_then(Value::as_str),
    );
    let payload = json!({
        "wamid": wamid,
        "status": status,
        "timestamp": timestamp_ms.map(rfc3339_ms),
        "recipient_id": recipient_id,
        "recipient_user_id": st.get("recipient_user_id"),
        "waba_id": waba_id,
        "phone_number_id": phone_number_id,
        "display_phone_number": display,
        "pricing": st.get("pricing"),
        "conversation": st.get("conversation"),
        "biz_opaque_callback_data": st.get("biz_opaque_callback_data"),
        "errors": errors.iter().map(error_json).collect::<Vec<_>>(),
    });
    let mut raw = Map::new();
    raw.insert("status".into(), st.clone());
    if let Some(c) = contact {
        raw.insert("contact".into(), c.clone());
    }
    Some(StatusUpdate {
        waba_id: waba_id.into(),
        phone_number_id: phone_number_id.into(),
        wamid,
        status,
        timestamp_ms,
        recipient_id,
        errors,
        payload,
        raw: Value::Object(raw),
    })
}

fn other_field(waba_id: Option<String>, field: &str, entry_time: Option<i64>, value: Value) -> Update {
    let event_type = field_event_type(field);
    let waba_id = value.pointer("/waba_info/waba_id").and_then(id_string).or(waba_id);
    let phone_number_id = value.pointer("/metadata/phone_number_id").and_then(id_string);
    let mut payload = match &value {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    payload.insert("field".into(), json!(field));
    payload.insert("waba_id".into(), json!(waba_id));
    let pick = |k: &str| value.get(k).cloned().unwrap_or(Value::Null);
    if event_type.starts_with("template.") {
        payload.insert("template_id".into(), pick("message_template_id"));
        payload.insert("template_name".into(), pick("message_template_name"));
        payload.insert("language".into(), pick("message_template_language"));
        if field == "message_template_status_update" {
            payload.insert("status".into(), pick("event"));
        }
    }
    let occurred_ms = meta_timestamp_ms(value.get("timestamp")).or(entry_time);
    Update::Other(OtherUpdate {
        waba_id,
        phone_number_id,
        event_type,
        field: field.to_string(),
        occurred_ms,
        payload: Value::Object(payload),
        raw: value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}],"messages":[{"from":"16505551234","id":"wamid.A","timestamp":"1749416383","type":"text","text":{"body":"héllo 👋"}}]},"field":"messages"}]}]}"#;

    fn other(field: &str, value: Value) -> OtherUpdate {
        OtherUpdate {
            waba_id: None,
            phone_number_id: None,
            event_type: field_event_type(field),
            field: field.into(),
            occurred_ms: None,
            payload: Value::Null,
            raw: value,
        }
    }

    #[test]
    fn template_webhooks_become_catalog_changes() {
        let status = other(
            "message_template_status_update",
            json!({"event": "APPROVED", "message_template_id": 594425479261596i64, "message_template_name": "order_update",
                   "message_template_language": "en_US", "message_template_category": "UTILITY"}),
        );
        let c = status.template_change().expect("a change");
        assert_eq!((c.name.as_str(), c.language.as_str()), ("order_update", "en_US"));
        assert_eq!(c.template_id.as_deref(), Some("594425479261596"), "numbers become ids");
        assert_eq!(c.status.as_deref(), Some("APPROVED"));
        assert_eq!(c.stated_category.as_deref(), Some("UTILITY"));
        assert_eq!((c.quality_score, c.category, c.components), (None, None, None));
        let quality = other(
            "message_template_quality_update",
            json!({"new_quality_score": "RED", "message_template_name": "order_update", "message_template_language": "en_US"}),
        );
        assert_eq!(
            quality.template_change().expect("a change").quality_score.as_deref(),
            Some("RED")
        );
        let components = other(
            "message_template_components_update",
            json!({"message_template_name": "order_update", "message_template_language": "en_US",
                   "message_template_element": "Your order {{1}} shipped", "message_template_footer": "Reply STOP",
                   "message_template_buttons": [{"message_template_button_type": "URL", "message_template_button_text": "Track",
                                                 "message_template_button_url": "https://example.com"}]}),
        );
        let c = components
            .template_change()
            .expect("a change")
            .components
            .expect("components");
        assert_eq!(c[0], json!({"type": "BODY", "text": "Your order {{1}} shipped"}));
        assert_eq!(c[1]["type"], "FOOTER");
        assert_eq!(c[2]["buttons"][0]["text"], "Track");
        let nameless = other("message_template_status_update", json!({"event": "APPROVED"}));
        assert_eq!(nameless.template_change(), None);
    }

    #[test]
    fn inbound_media_gets_our_id_and_url() {
        let mut payload =
            json!({"type": "image", "content": {"media": {"id": "1234", "mime_type": "image/jpeg", "sha256": "abc"}}});
        let m = assign_media(&mut payload, "med_1").expect("media");
        assert_eq!(m.meta_media_id, "1234");
        assert_eq!(m.mime_type.as_deref(), Some("image/jpeg"));
        assert_eq!(payload["content"]["media"]["download_url"], "/v1/media/med_1");
        assert_eq!(payload["content"]["media"]["media_id"], "med_1");
        let mut text = json!({"type": "text", "content": {"body": "hi"}});
        assert_eq!(assign_media(&mut text, "med_2"), None);
        assert_eq!(text, json!({"type": "text", "content": {"body": "hi"}}), "unchanged");
    }

    #[test]
    fn routing_reads_ids() {
        let r = Routing::parse(TEXT.as_bytes());
        let t: Vec<_> = r.targets().collect();
        assert_eq!(t, vec![(Some("102290129340398"), Some("106540352242922"))]);
    }

    #[test]
    fn text_message_is_normalised() {
        let u = parse_updates(TEXT.as_bytes());
        let [Update::Message(m)] = u.as_slice() else {
            panic!("{u:?}")
        };
        assert_eq!(m.wamid, "wamid.A");
        assert_eq!(m.contact_name.as_deref(), Some("Sheena Nelson"));
        assert_eq!(m.payload["text"], "héllo 👋");
        assert_eq!(m.payload["timestamp"], "2025-06-08T20:59:43Z");
    }

    #[test]
    fn odd_shapes_do_not_fail() {
        for body in [
            r#"{}"#,
            r#"{"entry":[{"id":1}]}"#,
            r#"{"entry":[{"id":"1","changes":[{"field":"messages","value":{"messages":[{}]}}]}]}"#,
            r#"{"entry":[{"id":"1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"2"},"messages":[{"type":"brand_new"}],"statuses":[{"id":"w","status":"exploded"}]}}]}]}"#,
            r#"{"entry":[{"id":"1","changes":[{"field":"calls","value":{"x":1}}]}]}"#,
        ] {
            let u = parse_updates(body.as_bytes());
            assert!(!u.is_empty(), "{body} produced nothing");
        }
    }

    fn only_event(body: &[u8]) -> OtherUpdate {
        match parse_updates(body).as_slice() {
            [Update::Other(o)] => o.clone(),
            other => panic!("{} gave {other:?}", String::from_utf8_lossy(body)),
        }
    }

    #[test]
    fn malformed_bodies_become_invalid_events_with_their_bytes() {
        let o = only_event(b"not json");
        assert_eq!(o.event_type, INVALID);
        assert_eq!(o.raw, json!({"encoding": "utf8", "body": "not json"}));
        assert!(
            o.payload["reason"].as_str().unwrap_or_default().contains("not JSON"),
            "{o:?}"
        );

        let mut bad_utf8 = TEXT.as_bytes().to_vec();
        let at = TEXT.find("héllo").unwrap_or_default() + 1;
        bad_utf8.splice(at..at + 2, [0xff, 0xfe]);
        let o = only_event(&bad_utf8);
        assert_eq!(o.event_type, INVALID);
        assert_eq!(o.raw["encoding"], "base64");
        assert!(
            o.payload["reason"].as_str().unwrap_or_default().contains("UTF-8"),
            "{o:?}"
        );

        let deep = format!(
            r#"{{"object":"whatsapp_business_account","entry":[],"x":{}1{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let o = only_event(deep.as_bytes());
        assert_eq!(o.event_type, INVALID);
        assert!(
            o.payload["reason"].as_str().unwrap_or_default().contains("deeper"),
            "{o:?}"
        );
    }

    #[test]
    fn parts_with_the_wrong_shape_are_invalid_and_named() {
        let with = |value: &str| {
            format!(
                r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"2"}},{value}}}}}]}}]}}"#
            )
        };
        for (value, path) in [
            (
                r#""messages":{"id":"wamid.X","type":"text"}"#,
                "entry[0].changes[0].value.messages",
            ),
            (r#""statuses":"read""#, "entry[0].changes[0].value.statuses"),
            (
                r#""messages":[{"type":"text","text":{"body":"x"}}]"#,
                "entry[0].changes[0].value.messages[0].id",
            ),
            (
                r#""messages":[{"id":42,"type":"text"}]"#,
                "entry[0].changes[0].value.messages[0].id",
            ),
            (r#""messages":[7]"#, "entry[0].changes[0].value.messages[0]"),
            (
                r#""statuses":[{"status":"read"}]"#,
                "entry[0].changes[0].value.statuses[0].id",
            ),
        ] {
            let o = only_event(with(value).as_bytes());
            assert_eq!(o.event_type, INVALID, "{value}");
            assert_eq!(o.payload["path"], path, "{value}");
            assert_eq!(o.waba_id.as_deref(), Some("1"));
        }
    }

    #[test]
    fn a_change_has_at_most_one_unknown_event() {
        let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"2"},"new_thing":1,"other":{"a":2},"statuses":[{"id":"w","status":"exploded"},{"id":"v","status":"imploded"}],"messages":[{"id":"wamid.1","from":"1","type":"text","text":{"body":"hi"}}]}}]}]}"#;
        let updates = parse_updates(body.as_bytes());
        let unknowns: Vec<&OtherUpdate> = updates
            .iter()
            .filter_map(|u| match u {
                Update::Other(o) if o.event_type == "webhook.unknown" => Some(o),
                _ => None,
            })
            .collect();
        assert_eq!(unknowns.len(), 1, "{updates:?}");
        assert_eq!(unknowns[0].raw["new_thing"], 1);
        assert_eq!(unknowns[0].raw["statuses"].as_array().map(Vec::len), Some(2));
        assert!(matches!(updates[0], Update::Message(_)));
    }

    #[test]
    fn other_products_webhooks_are_not_processed_as_whatsapp() {
        let page = TEXT.replace("whatsapp_business_account", "page");
        let o = only_event(page.as_bytes());
        assert_eq!(o.event_type, "webhook.unknown");
        assert!(
            o.payload["reason"].as_str().unwrap_or_default().contains("page"),
            "{o:?}"
        );
    }

    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-z_]{0,12}".prop_map(Value::from),
            prop::sample::select(vec![
                "messages", "statuses", "text", "image", "read", "failed", "id", "from"
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(
                    prop::sample::select(vec![
                        "entry",
                        "changes",
                        "value",
                        "field",
                        "id",
                        "metadata",
                        "phone_number_id",
                        "messages",
                        "statuses",
                        "contacts",
                        "type",
                        "text",
                        "body",
                        "status",
                        "timestamp",
                        "errors",
                        "from",
                        "wa_id",
                        "profile",
                        "context",
                        "interactive",
                        "waba_info",
                    ])
                    .prop_map(String::from),
                    inner,
                    0..6,
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever JSON arrives, parsing and routing never panic, and a JSON body always parses.
        #[test]
        fn any_json_parses_without_panicking(doc in json_value()) {
            let wrapped = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": doc.clone()}]}]});
            for v in [doc, wrapped] {
                let bytes = serde_json::to_vec(&v).expect("serialise");
                prop_assert!(!parse_updates(&bytes).is_empty());
                let _ = Routing::parse(&bytes).targets().count();
            }
        }

        /// Arbitrary bytes are refused or parsed, never a panic.
        #[test]
        fn any_bytes_are_handled(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            prop_assert!(!parse_updates(&bytes).is_empty());
            let _ = Routing::parse(&bytes).targets().count();
        }
    }

    /// The normalised payload of every webhook fixture, snapshotted: a change to what users'
    /// services receive is seen in review.
    #[test]
    fn event_payloads_per_fixture() {
        let dir = format!("{}/../../testdata/meta", env!("CARGO_MANIFEST_DIR"));
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("fixtures")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort();
        for name in names {
            let bytes = std::fs::read(format!("{dir}/{name}")).expect("read");
            let doc: Value = serde_json::from_slice(&bytes).expect("json");
            if doc["object"] != "whatsapp_business_account" {
                continue;
            }
            let events: Vec<Value> = parse_updates(&bytes)
                .into_iter()
                .map(|u| match u {
                    Update::Message(m) => json!({"type": "message.received", "payload": m.payload}),
                    Update::Status(s) => json!({"type": s.status.event_type(), "payload": s.payload}),
                    Update::Other(o) => json!({"type": o.event_type, "payload": o.payload}),
                })
                .collect();
            insta::assert_json_snapshot!(name.trim_end_matches(".json").to_string(), events);
        }
    }
}
