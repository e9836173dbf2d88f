//! Hooks: the rules of delivering events to the user's services. Which events a hook takes
//! (type patterns with wildcards, accounts, contacts), how a delivery is signed (the Standard
//! Webhooks specification: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`),
//! when a failed delivery is tried again, and which addresses a hook may not reach.

use std::net::IpAddr;

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::Rng;
use serde_json::Value;
use sha2::Sha256;

use crate::webhook::EVENT_TYPES;

/// Event types a hook can ask for: every event type, and `hook.disabled`.
pub fn known_event_type(t: &str) -> bool {
    EVENT_TYPES.contains(&t)
}

/// Checks a type pattern: an event type, `prefix.*`, or `*`.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern == "*" || known_event_type(pattern) {
        return Ok(());
    }
    if let Some(prefix) = pattern.strip_suffix(".*") {
        if EVENT_TYPES
            .iter()
            .any(|t| t.split_once('.').is_some_and(|(p, _)| p == prefix))
        {
            return Ok(());
        }
    }
    Err(format!(
        "`{pattern}` is not an event type or a pattern of them (e.g. `message.*`, `message.received`, `*`)"
    ))
}

/// Whether `event_type` matches any of `patterns` (none: every type).
pub fn type_matches(patterns: &[String], event_type: &str) -> bool {
    patterns.is_empty()
        || patterns.iter().any(|p| {
            p == "*"
                || p == event_type
                || p.strip_suffix(".*")
                    .is_some_and(|prefix| event_type.split_once('.').is_some_and(|(e, _)| e == prefix))
        })
}

/// The contact an event is about: the sender of a message, the recipient of a status.
pub fn event_contact(payload: &Value) -> Option<&str> {
    ["from", "recipient_id", "from_user_id", "recipient_user_id"]
        .iter()
        .find_map(|k| payload.get(*k).and_then(Value::as_str))
}

/// What a hook takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookFilter {
    /// Type patterns; empty: all.
    pub events: Vec<String>,
    /// Account ids; empty: all.
    pub accounts: Vec<String>,
    /// Contacts (wa_id or user id); empty: all.
    pub contacts: Vec<String>,
}

impl HookFilter {
    pub fn matches(&self, event_type: &str, account_id: Option<&str>, payload: &Value) -> bool {
        type_matches(&self.events, event_type)
            && (self.accounts.is_empty() || account_id.is_some_and(|a| self.accounts.iter().any(|x| x == a)))
            && (self.contacts.is_empty()
                || event_contact(payload).is_some_and(|c| self.contacts.iter().any(|x| x == c)))
    }
}

/// A new hook secret: `whsec_` and 24 random bytes, base64 (as Standard Webhooks defines it).
pub fn new_secret() -> String {
    let mut key = [0u8; 24];
    rand::rng().fill(&mut key);
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(key))
}

/// The signing key of a `whsec_…` secret.
fn key_of(secret: &str) -> Vec<u8> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap_or_else(|_| secret.as_bytes().to_vec())
}

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` under the secret.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(&key_of(secret)) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// The `webhook-signature` header: one signature per secret, space separated (during a
/// rotation, the new and the previous secret both sign).
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a str>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .into_iter()
        .map(|s| sign(s, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The signature of a media link given to a hook: base64url HMAC-SHA256 of
/// `"{media_id}.{expires}"` under the hook's secret, so the receiver needs no API key and the
/// link works only until `expires` (unix seconds).
pub fn media_link_signature(secret: &str, media_id: &str, expires: i64) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(&key_of(secret)) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(media_id.as_bytes());
    mac.update(b".");
    mac.update(expires.to_string().as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Whether a media link's signature is right (in constant time).
pub fn media_link_valid(secret: &str, media_id: &str, expires: i64, signature: &str) -> bool {
    use subtle::ConstantTimeEq;
    media_link_signature(secret, media_id, expires)
        .as_bytes()
        .ct_eq(signature.as_bytes())
        .into()
}

/// Headers a hook may not set: the delivery's own.
pub fn reserved_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("webhook-")
        || matches!(
            n.as_str(),
            "x-hub-signature-256" | "content-type" | "content-length" | "host" | "transfer-encoding" | "connection"
        )
}

/// The default retry schedule: after the first attempt fails, wait about this long before each
/// next one (seconds): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, 14 h, 20 h, 24 h — about 4 days.
pub const DEFAULT_RETRY_SCHEDULE: &[u64] = &[5, 300, 1800, 7200, 18000, 36000, 36000, 50400, 72000, 86400];

/// When to try again after `attempts` failed attempts, in ms from now; `None`: give up.
/// ±10% jitter spreads retries of many deliveries; `retry_after` (the receiver's own wish, in
/// seconds) wins when it is longer, up to a day.
pub fn next_attempt_in_ms(schedule: &[u64], attempts: u32, retry_after: Option<u64>) -> Option<i64> {
    let base = *schedule.get((attempts as usize).checked_sub(1)?)?;
    let base_ms = base.saturating_mul(1000) as f64;
    let jitter = if base_ms > 0.0 {
        rand::rng().random_range(-0.1..=0.1)
    } else {
        0.0
    };
    let delay = (base_ms * (1.0 + jitter)) as i64;
    let wished = retry_after.map(|s| s.min(86_400) as i64 * 1000).unwrap_or(0);
    Some(delay.max(wished))
}

/// A `Retry-After` header value: seconds, or an HTTP date (RFC 7231) relative to `now_ms`.
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<u64> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(secs);
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(v, format).ok()?.assume_utc();
    let at_ms = (at.unix_timestamp_nanos() / 1_000_000) as i64;
    Some(((at_ms - now_ms).max(0) / 1000) as u64)
}

/// Whether a hook may connect to `ip`: not loopback, private, link-local, unique-local, shared
/// (CGNAT), unspecified, broadcast or multicast. Those reach the gateway's own network, not a
/// user's service, unless private networks are allowed in the configuration.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patterns_match_types_with_wildcards() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(type_matches(&[], "message.read"));
        assert!(type_matches(&p(&["message.*"]), "message.read"));
        assert!(!type_matches(&p(&["message.*"]), "template.status_updated"));
        assert!(type_matches(
            &p(&["template.status_updated", "message.received"]),
            "message.received"
        ));
        assert!(!type_matches(&p(&["message.received"]), "message.read"));
        assert!(type_matches(&p(&["*"]), "webhook.invalid"));
        for ok in ["*", "message.*", "message.received", "webhook.*", "hook.disabled"] {
            assert_eq!(check_pattern(ok), Ok(()), "{ok}");
        }
        for bad in ["message", "messages.*", "message.exploded", "*.*", "", "message.**"] {
            assert!(check_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters_take_accounts_and_contacts() {
        let f = HookFilter {
            events: vec!["message.*".into()],
            accounts: vec!["acc_1".into()],
            contacts: vec!["16505551234".into()],
        };
        assert!(f.matches("message.received", Some("acc_1"), &json!({"from": "16505551234"})));
        assert!(f.matches("message.read", Some("acc_1"), &json!({"recipient_id": "16505551234"})));
        assert!(!f.matches("message.read", Some("acc_2"), &json!({"recipient_id": "16505551234"})));
        assert!(!f.matches("message.read", Some("acc_1"), &json!({"recipient_id": "1999"})));
        assert!(!f.matches("message.read", None, &json!({"recipient_id": "16505551234"})));
    }

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let both = signature_header([secret, "whsec_AAAA"], "msg_x", 1, b"{}");
        assert_eq!(both.split(' ').count(), 2);
        assert!(new_secret().starts_with("whsec_"));
        assert_ne!(new_secret(), new_secret());
    }

    #[test]
    fn retries_follow_the_schedule_and_retry_after() {
        let s = DEFAULT_RETRY_SCHEDULE;
        assert_eq!(next_attempt_in_ms(s, 0, None), None, "the first attempt is immediate");
        let first = next_attempt_in_ms(s, 1, None).unwrap_or_default();
        assert!((4_500..=5_500).contains(&first), "{first}");
        assert!(next_attempt_in_ms(s, 10, None).is_some());
        assert_eq!(next_attempt_in_ms(s, 11, None), None, "gives up after the schedule");
        assert_eq!(next_attempt_in_ms(&[1], 1, Some(30)), Some(30_000));
        assert_eq!(next_attempt_in_ms(&[0], 1, None), Some(0));
        assert_eq!(parse_retry_after("120", 0), Some(120));
        let at = parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1_445_412_420_000);
        assert_eq!(at, Some(60));
        assert_eq!(parse_retry_after("soon", 0), None);
    }

    #[test]
    fn private_and_local_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[test]
    fn media_links_are_bound_to_the_media_and_the_expiry() {
        let s = new_secret();
        let sig = media_link_signature(&s, "med_1", 100);
        assert!(media_link_valid(&s, "med_1", 100, &sig));
        assert!(!media_link_valid(&s, "med_2", 100, &sig));
        assert!(!media_link_valid(&s, "med_1", 101, &sig));
        assert!(!media_link_valid(&new_secret(), "med_1", 100, &sig));
    }

    #[test]
    fn reserved_headers_cannot_be_set() {
        for h in [
            "webhook-signature",
            "Webhook-Id",
            "X-Hub-Signature-256",
            "content-type",
            "Host",
        ] {
            assert!(reserved_header(h), "{h}");
        }
        assert!(!reserved_header("x-api-key"));
    }
}
