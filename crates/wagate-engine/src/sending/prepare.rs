//! Checking a send before it is queued: the account (and its pause), the number, the recipient,
//! Meta's rules for the message type, the template's status and parameters, and the 24-hour
//! customer-service window. Bad input changes nothing.

use serde_json::{json, Value};
use wagate_core::meta::MESSAGE_TYPES;
use wagate_core::time::rfc3339_ms;

use crate::accounts::runtime::AccountRuntime;
use crate::auth::accounts::{resolve_account, AccountFrom};
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::error::{EngineError, EngineResult, Kind};
use crate::state::Engine;

/// A send, checked and ready to queue.
#[derive(Debug)]
pub struct Prepared {
    /// Things the caller should know that did not stop the send.
    pub warnings: Vec<String>,
    pub account: AccountRuntime,
    pub phone_number_id: String,
    pub wa_id: String,
    pub message_type: String,
    pub body: Value,
    /// A scheduled send's due time (unix ms).
    pub send_at: Option<i64>,
    /// 0: interactive; 1: bulk (batches), queued behind interactive sends.
    pub priority: i64,
}

/// The longest a send may be scheduled ahead.
const SEND_AT_MAX_AHEAD_MS: i64 = 30 * 24 * 3600 * 1000;

/// `send_at`: RFC 3339 or unix seconds, not more than 30 days ahead; a time in the past means now.
fn send_at(obj: &mut serde_json::Map<String, Value>) -> EngineResult<Option<i64>> {
    let hint = "give an RFC 3339 time such as 2026-12-01T09:00:00Z, or unix seconds, at most 30 days ahead";
    let at = match obj.remove("send_at") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(t)) => wagate_core::time::parse_time_ms(&t),
        Some(Value::Number(n)) => n.as_i64().map(|s| s * 1000),
        Some(_) => None,
    }
    .ok_or_else(|| EngineError::invalid_field("send_at", "send_at is not a time", hint))?;
    if at - now_ms() > SEND_AT_MAX_AHEAD_MS {
        return Err(EngineError::invalid_field(
            "send_at",
            "send_at is more than 30 days ahead",
            hint,
        ));
    }
    Ok(Some(at.max(now_ms())))
}

/// Checks a send request and builds the body for Meta. Bad input changes nothing.
pub async fn prepare(state: &Engine, caller: &Caller, mut body: Value) -> EngineResult<Prepared> {
    let obj = body
        .as_object_mut()
        .ok_or_else(|| EngineError::invalid_field("", "the body must be a JSON object", "send Meta's message object, e.g. {\"to\": \"+16505551234\", \"type\": \"text\", \"text\": {\"body\": \"hi\"}}"))?;
    let named = obj.remove("account");
    let named = match &named {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => {
            return Err(EngineError::invalid_field(
                "account",
                "account must be a string",
                "give the account's name or id",
            ))
        }
    };
    let account = resolve_account(state, caller, named, AccountFrom::Body)?;
    if let Some(pause) = account.pause() {
        return Err(EngineError::new(
            Kind::Conflict,
            "account_paused",
            format!("sending from account `{}` is paused: {}", account.name, pause.reason),
        )
        .details(json!({"account": account.name, "pause": pause}))
        .hint(pause.hint));
    }
    let send_at = send_at(obj)?;
    let phone_number_id = match obj.remove("phone_number_id") {
        None | Some(Value::Null) => account.phone_number_ids.first().cloned().unwrap_or_default(),
        Some(Value::String(p)) if account.phone_number_ids.contains(&p) => p,
        Some(p) => {
            return Err(EngineError::invalid_field(
                "phone_number_id",
                format!("{p} is not a phone number of account `{}`", account.name),
                format!("use one of {:?}", account.phone_number_ids),
            ))
        }
    };
    // The recipient: a phone number in `to`, or a business-scoped user id in `recipient` (for
    // users known only by it); `to` wins when both are given, as at Meta.
    let (recipient, wa_id, field) = match (obj.get("to"), obj.get("recipient")) {
        (Some(Value::String(to)), _) => {
            let e164 = wagate_core::phone::normalize(to, state.default_country).map_err(|e| {
                EngineError::new(Kind::Invalid, "invalid_phone_number", format!("to: {e}"))
                    .details(json!({"field": "to", "value": to}))
                    .hint(e.hint())
            })?;
            obj.remove("recipient");
            obj.insert("to".into(), json!(e164.as_str()));
            (e164.as_str().to_string(), e164.wa_id().to_string(), "to")
        }
        (Some(_), _) => {
            return Err(EngineError::invalid_field(
                "to",
                "to must be a string",
                "write the number as a string, e.g. \"+16505551234\"",
            ))
        }
        (None, Some(Value::String(r))) if wagate_core::phone::is_business_scoped_user_id(r) => {
            (r.clone(), r.clone(), "recipient")
        }
        (None, Some(r)) => {
            return Err(EngineError::invalid_field(
                "recipient",
                format!("recipient {r} is not a business-scoped user id"),
                "give the user id from the user's webhooks (contacts[].user_id), e.g. \"US.13491208655302741918\", or a phone number in `to`",
            ))
        }
        (None, None) => {
            return Err(EngineError::invalid_field(
                "to",
                "to is required",
                "give the recipient's phone number, e.g. \"+16505551234\" (or a business-scoped user id in `recipient`)",
            ))
        }
    };
    let message_type = match obj.get("type") {
        None => "text".to_string(),
        Some(Value::String(t)) if MESSAGE_TYPES.contains(&t.as_str()) => t.clone(),
        Some(t) => {
            return Err(EngineError::new(
                Kind::Invalid,
                "unsupported_message_type",
                format!("type {t} is not a WhatsApp message type"),
            )
            .details(json!({"field": "type", "allowed": MESSAGE_TYPES}))
            .hint("use one of the allowed types"))
        }
    };
    if !obj.get(&message_type).is_some_and(|v| v.is_object() || v.is_array()) {
        return Err(EngineError::invalid_field(&message_type, format!("a {message_type} message needs a `{message_type}` object"),
            format!("see Meta's documentation of {message_type} messages; e.g. {{\"type\": \"text\", \"text\": {{\"body\": \"hi\"}}}}")));
    }
    validate_type(&message_type, obj)?;
    obj.insert("messaging_product".into(), json!("whatsapp"));
    obj.entry("recipient_type").or_insert(json!("individual"));
    obj.insert("type".into(), json!(message_type));
    let mut warnings = Vec::new();
    if message_type == "template" {
        warnings.extend(super::templates::check_send(state, &account, &body["template"]).await?);
    } else {
        let contact = state.store.get_contact(&account.id, &phone_number_id, &wa_id).await?;
        let expires = contact.as_ref().and_then(|c| c.window_expires_at);
        if send_at.is_some_and(|at| {
            wagate_core::window::is_open(expires, now_ms()) && !wagate_core::window::is_open(expires, at)
        }) {
            return Err(EngineError::new(Kind::Refused, "window_closed",
                format!("the 24-hour customer-service window with {recipient} closes before send_at; Meta would refuse this {message_type} message (131047)"))
                .details(json!({"field": "send_at", "window": {"open": true, "expires_at": expires.map(rfc3339_ms)}}))
                .hint("schedule it before the window closes, or send an approved template"));
        }
        if !wagate_core::window::is_open(expires, now_ms()) {
            let when = match contact.and_then(|c| c.last_inbound_at) {
                Some(t) => format!("they last wrote at {}", rfc3339_ms(t)),
                None => "they have never written to this number".into(),
            };
            return Err(EngineError::new(Kind::Refused, "window_closed",
                format!("the 24-hour customer-service window with {recipient} is closed ({when}); Meta would refuse this {message_type} message (131047)"))
                .details(json!({"field": field, "window": {"open": false, "expires_at": expires.map(rfc3339_ms)}}))
                .hint("send an approved template (\"type\": \"template\"); the window opens again when the user writes to you"));
        }
    }
    Ok(Prepared {
        warnings,
        account,
        phone_number_id,
        wa_id,
        message_type,
        body,
        send_at,
        priority: 0,
    })
}

/// Meta's rules for the type (core's validator), as one refusal naming every problem.
fn validate_type(message_type: &str, obj: &serde_json::Map<String, Value>) -> EngineResult<()> {
    let body = Value::Object(obj.clone());
    let Err(violations) = wagate_core::validate::check_message(message_type, &body) else {
        return Ok(());
    };
    let first = &violations[0];
    let message = if violations.len() == 1 {
        first.message.clone()
    } else {
        format!(
            "{} (and {} more problems, listed in details)",
            first.message,
            violations.len() - 1
        )
    };
    Err(EngineError::new(Kind::Invalid, "invalid_request", message)
        .details(json!({"field": first.field, "limit": first.limit, "size": first.size, "violations": violations}))
        .hint("fix the named fields; the limits are Meta's (see the WhatsApp Cloud API message reference)"))
}
