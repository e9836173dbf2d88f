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
            && self.takes_account(account_id)
            && (self.contacts.is_empty()
                || event_contact(payload).is_some_and(|c| self.contacts.iter().any(|x| x == c)))
    }

    /// Whether what concerns `account_id` (none: no account's) passes the account filter.
    pub fn takes_account(&self, account_id: Option<&str>) -> bool {
        self.accounts.is_empty() || account_id.is_some_and(|a| self.accounts.iter().any(|x| x == a))
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

/// Whether a hook may connect to `ip`: a globally reachable unicast address, as the IANA
/// special-purpose address registries (IPv4 and IPv6) mark them. Loopback, private, shared
/// (CGNAT), link-local, benchmarking, documentation, reserved, multicast and the like reach the
/// gateway's own network or nothing, not a user's service (unless private networks are allowed
/// in the configuration). The IPv6 forms that carry an IPv4 address (IPv4-mapped, NAT64's
/// `64:ff9b::/96`, 6to4's `2002::/16`) are judged by that address; the deprecated
/// IPv4-compatible `::/96`, Teredo and the local-use NAT64 prefix are refused whole.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn in_v4(ip: u32, net: [u8; 4], len: u32) -> bool {
    let net = u32::from_be_bytes(net);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    ip & mask == net & mask
}

fn is_public_v4(v4: std::net::Ipv4Addr) -> bool {
    let ip = u32::from(v4);
    // Inside 192.0.0.0/24, the two anycast addresses the registry marks globally reachable.
    if ip == u32::from_be_bytes([192, 0, 0, 9]) || ip == u32::from_be_bytes([192, 0, 0, 10]) {
        return true;
    }
    const NOT_GLOBAL: [([u8; 4], u32); 16] = [
        ([0, 0, 0, 0], 8),       // "this network"
        ([10, 0, 0, 0], 8),      // private
        ([100, 64, 0, 0], 10),   // shared address space (CGNAT)
        ([127, 0, 0, 0], 8),     // loopback
        ([169, 254, 0, 0], 16),  // link-local
        ([172, 16, 0, 0], 12),   // private
        ([192, 0, 0, 0], 24),    // IETF protocol assignments
        ([192, 0, 2, 0], 24),    // documentation (TEST-NET-1)
        ([192, 88, 99, 0], 24),  // deprecated 6to4 relay anycast
        ([192, 168, 0, 0], 16),  // private
        ([198, 18, 0, 0], 15),   // benchmarking
        ([198, 51, 100, 0], 24), // documentation (TEST-NET-2)
        ([203, 0, 113, 0], 24),  // documentation (TEST-NET-3)
        ([224, 0, 0, 0], 4),     // multicast
        ([240, 0, 0, 0], 4),     // reserved, and the limited broadcast address
        ([255, 255, 255, 255], 32),
    ];
    !NOT_GLOBAL.iter().any(|(net, len)| in_v4(ip, *net, *len))
}

fn in_v6(ip: u128, net: u128, len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
    ip & mask == net & mask
}

fn is_public_v6(v6: std::net::Ipv6Addr) -> bool {
    let ip = u128::from(v6);
    let v4_at = |shift: u32| std::net::Ipv4Addr::from((ip >> shift) as u32);
    // IPv4-mapped (::ffff:0:0/96) and NAT64's well-known prefix (64:ff9b::/96): the IPv4
    // address in the last 32 bits is where the connection goes.
    if in_v6(ip, 0xffff_0000_0000, 96) || in_v6(ip, 0x0064_ff9b << 96, 96) {
        return is_public_v4(v4_at(0));
    }
    // 6to4 (2002::/16): the IPv4 address in bits 16 to 48.
    if in_v6(ip, 0x2002 << 112, 16) {
        return is_public_v4(v4_at(80));
    }
    // The registry's globally reachable assignments inside 2001::/23.
    const GLOBAL_IN_IETF: [(u128, u32); 6] = [
        (0x2001_0001_0000_0000_0000_0000_0000_0001, 128), // PCP anycast
        (0x2001_0001_0000_0000_0000_0000_0000_0002, 128), // TURN anycast
        (0x2001_0003 << 96, 32),                          // AMT
        (0x2001_0004_0112 << 80, 48),                     // AS112-v6
        (0x2001_0020 << 96, 28),                          // ORCHIDv2
        (0x2001_0030 << 96, 28),                          // drone remote ID
    ];
    if GLOBAL_IN_IETF.iter().any(|(net, len)| in_v6(ip, *net, *len)) {
        return true;
    }
    const NOT_GLOBAL: [(u128, u32); 5] = [
        (0x2001 << 112, 23),          // IETF protocol assignments (Teredo, benchmarking, …)
        (0x2001_0db8 << 96, 32),      // documentation
        (0x3fff << 112, 20),          // documentation
        (0x5f00 << 112, 16),          // segment routing SIDs
        (0x0064_ff9b_0001 << 80, 48), // local-use IPv4/IPv6 translation
    ];
    // Everything outside global unicast (2000::/3) is loopback, unspecified, IPv4-compatible,
    // discard-only (100::/64), unique-local, link-local, site-local, multicast or reserved.
    in_v6(ip, 0x2000 << 112, 3) && !NOT_GLOBAL.iter().any(|(net, len)| in_v6(ip, *net, *len))
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
            // What an attacker got through before: translation forms, deprecated and reserved
            // ranges of the IANA special-purpose registries.
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::8.8.8.8",
            "::127.0.0.1",
            "::8.8.8.8",
            "2002:7f00:1::1",
            "2002:a00:1::",
            "fec0::1",
            "100::1",
            "198.18.0.1",
            "198.19.255.255",
            "192.0.0.1",
            "192.0.0.170",
            "240.0.0.1",
            "224.0.0.1",
            "192.0.2.1",
            "192.88.99.1",
            "2001:db8::1",
            "2001::1",
            "2001:2::1",
            "3fff::1",
            "5f00::1",
            "ff02::1",
            "4000::1",
        ] {
            assert!(!is_public(ip.parse().expect("ip")), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "192.0.0.9",
            "2001:4:112::1",
            "198.20.0.1",
            "223.255.255.1",
        ] {
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
