//! Meta's `X-Hub-Signature-256`: HMAC-SHA256 of the raw body with the app secret, hex encoded.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    #[error("the X-Hub-Signature-256 header is not of the form sha256=<64 hex digits>")]
    Malformed,
    #[error("the X-Hub-Signature-256 header does not match the body and the app secret")]
    Mismatch,
}

/// The header value Meta sends for `body` signed with `app_secret`: `sha256=<hex>`.
pub fn sign_hub(app_secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac(app_secret.as_bytes(), body)))
}

/// Checks a header against the raw body with any of the app secrets, in constant time per secret.
/// Returns the position of the secret that signed it.
pub fn verify_hub<'a>(
    header: Option<&str>,
    body: &[u8],
    secrets: impl IntoIterator<Item = &'a str>,
) -> Result<usize, SignatureError> {
    let expected = check_hub_header(header)?;
    for (i, secret) in secrets.into_iter().enumerate() {
        let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
            continue;
        };
        mac.update(body);
        if mac.verify_slice(&expected).is_ok() {
            return Ok(i);
        }
    }
    Err(SignatureError::Mismatch)
}

/// The digest an `X-Hub-Signature-256` header carries, if it is of Meta's form
/// (`sha256=<64 hex digits>`): what can be checked before the body is read.
pub fn check_hub_header(header: Option<&str>) -> Result<Vec<u8>, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_part = header.trim().strip_prefix("sha256=").ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(hex_part).map_err(|_| SignatureError::Malformed)?;
    if expected.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    Ok(expected)
}

/// Constant-time equality for short secrets such as the webhook verify token.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    // Compare digests so that the length of the secret does not leak either.
    Sha256::digest(a.as_bytes()).ct_eq(&Sha256::digest(b.as_bytes())).into()
}

/// SHA-256 as Meta gives it for media: base64 of the digest.
pub fn sha256_base64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data))
}

/// The SHA-256 digest itself (a PKCE code challenge is its base64url).
pub fn sha256_raw(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// SHA-256 hex digest (API keys are stored as this).
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Standard Webhooks signature (`v1,<base64>`) of `{id}.{timestamp}.{body}` with a `whsec_` secret.
pub fn standard_webhooks_sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|k| engine.decode(k).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec());
    let mut msg = format!("{id}.{timestamp}.").into_bytes();
    msg.extend_from_slice(body);
    format!("v1,{}", engine.encode(hmac(&key, &msg)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn metas_example_verifies() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}],"messages":[{"from":"16505551234","id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=","timestamp":"1749416383","type":"text","text":{"body":"Does it come in another color?"}}]},"field":"messages"}]}]}"#;
        let header = "sha256=4a11fb8da9e9aa59dd1733b00ca25380d75e1512ade533f7ec2f2c0b9d43c7b1";
        assert_eq!(sign_hub("0123456789abcdef0123456789abcdef", body), header);
        assert_eq!(
            verify_hub(Some(header), body, ["other", "0123456789abcdef0123456789abcdef"]),
            Ok(1),
            "the position of the secret that signed it"
        );
        assert_eq!(verify_hub(None, body, ["x"]), Err(SignatureError::Missing));
        assert_eq!(verify_hub(Some("sha1=ab"), body, ["x"]), Err(SignatureError::Malformed));
        assert_eq!(verify_hub(Some(header), body, ["wrong"]), Err(SignatureError::Mismatch));
    }

    proptest! {
        #[test]
        fn sign_then_verify(secret in "[ -~]{1,40}", body in proptest::collection::vec(any::<u8>(), 0..512), flip in any::<usize>()) {
            let header = sign_hub(&secret, &body);
            prop_assert!(verify_hub(Some(&header), &body, [secret.as_str()]).is_ok());
            if !body.is_empty() {
                let mut tampered = body.clone();
                let i = flip % tampered.len();
                tampered[i] ^= 0x01;
                prop_assert_eq!(verify_hub(Some(&header), &tampered, [secret.as_str()]), Err(SignatureError::Mismatch));
            }
        }
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }
}
