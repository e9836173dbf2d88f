//! Prefixed, time-ordered ids (`msg_…`, `evt_…`): the prefix says what the id names, and ids sort
//! by creation time, which cursor pagination relies on.

/// A new id: `prefix_` followed by a UUIDv7 in lowercase hex (time-ordered).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// Whether `s` is an id made by [`new_id`] with this prefix.
pub fn is_id(prefix: &str, s: &str) -> bool {
    s.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

pub fn message_id() -> String {
    new_id("msg")
}

pub fn event_id() -> String {
    new_id("evt")
}

pub fn account_id() -> String {
    new_id("acc")
}

pub fn api_key_id() -> String {
    new_id("key")
}

/// A wamid in Meta's form: `wamid.` + base64 of a small binary record holding the user's number.
/// `outbound` selects the marker Meta uses for business-sent messages.
pub fn wamid(wa_id: &str, outbound: bool) -> String {
    use base64::Engine;
    use rand::Rng;
    let mut rng = rand::rng();
    let hex_len = if outbound { 18 } else { 20 };
    let tail: String = (0..hex_len)
        .map(|_| char::from(b"0123456789ABCDEF"[rng.random_range(0..16)]))
        .collect();
    let digits = wa_id.as_bytes();
    let mut raw = vec![0x1c, 0x18, digits.len().min(255) as u8];
    raw.extend_from_slice(&digits[..digits.len().min(255)]);
    raw.extend_from_slice(&[0x15, 0x02, 0x00, if outbound { 0x11 } else { 0x12 }, 0x18]);
    raw.push(hex_len as u8);
    raw.extend_from_slice(tail.as_bytes());
    raw.push(0x00);
    format!("wamid.{}", base64::engine::general_purpose::STANDARD.encode(raw))
}

/// A random secret of `bytes` bytes, hex encoded, with a prefix (`wg_…` API keys and the like).
pub fn secret(prefix: &str, bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    format!("{prefix}{}", hex::encode(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_and_ordered() {
        let a = message_id();
        let b = message_id();
        assert!(a.starts_with("msg_") && a.len() == 36);
        assert!(a < b, "{a} < {b}");
    }

    #[test]
    fn wamid_has_metas_shape() {
        let w = wamid("16505551234", true);
        assert!(w.starts_with("wamid.HBgLMTY1MDU1NTEyMzQVAgAR"), "{w}");
    }
}
