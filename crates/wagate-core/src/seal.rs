//! Secrets sealed at rest: XChaCha20-Poly1305 under a 32-byte master key.
//!
//! A sealed value reads `sealed:v1:<key id>:<base64 of nonce and ciphertext>`. The key id (8 hex
//! digits of a hash of the key) says which key sealed it, so that a key can be replaced while
//! values sealed under the old one are still read: the old key is kept as a "previous" key until
//! everything is sealed again. Each value is bound to where it is kept (e.g. `hooks.secret:<id>`)
//! as associated data, so that a sealed value copied to another row does not open.
//!
//! A value without the prefix is one stored before sealing existed: it is read as it is, and
//! sealed when the secrets are next sealed again.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

const PREFIX: &str = "sealed:v1:";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("no master key is set (WAGATE_MASTER_KEY), so secrets cannot be sealed or opened")]
    NoKey,
    #[error("a secret is sealed with master key {0}, which is neither WAGATE_MASTER_KEY nor one of WAGATE_MASTER_KEY_PREVIOUS")]
    UnknownKey(String),
    #[error("a sealed secret does not open: it was altered, or moved from where it was sealed")]
    Corrupt,
}

/// One master key and its id.
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    cipher: XChaCha20Poly1305,
    /// The key as base64 text, to be written to a key file (never printed: `Debug` shows the id).
    text: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

impl MasterKey {
    /// A key from its base64 text (32 bytes). The error says what is wrong, never the value.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = B64.decode(text.trim()).map_err(|_| {
            "is not base64; make a key with `wagate secrets new-key` (or `openssl rand -base64 32`)".to_string()
        })?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() != 32 {
            return Err(format!(
                "is {} bytes, not 32; make a key with `wagate secrets new-key` (or `openssl rand -base64 32`)",
                bytes.len()
            ));
        }
        let digest = Sha256::new_with_prefix(b"wagate master key id\0")
            .chain_update(bytes)
            .finalize();
        Ok(Self {
            id: format!("k{}", hex::encode(&digest[..4])),
            cipher: XChaCha20Poly1305::new_from_slice(bytes).map_err(|_| "is not a valid key".to_string())?,
            text: B64.encode(bytes),
        })
    }

    /// A new random key, as base64 text.
    pub fn generate() -> String {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        B64.encode(bytes)
    }

    /// The key's id (`k` and 8 hex digits): safe to print.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key as base64 text, for its key file. A secret: never log or print it.
    pub fn as_text(&self) -> &str {
        &self.text
    }
}

/// The keys a gateway seals and opens with: the current one, and earlier ones still read.
#[derive(Debug, Clone, Default)]
pub struct Sealer {
    current: Option<MasterKey>,
    previous: Vec<MasterKey>,
}

impl Sealer {
    pub fn new(current: Option<MasterKey>, previous: Vec<MasterKey>) -> Self {
        Self { current, previous }
    }

    /// The id of the key new values are sealed with.
    pub fn current_id(&self) -> Option<&str> {
        self.current.as_ref().map(MasterKey::id)
    }

    /// Seals `plain`, bound to `context` (where it is kept).
    pub fn seal(&self, plain: &str, context: &str) -> Result<String, SealError> {
        use rand::RngCore;
        let key = self.current.as_ref().ok_or(SealError::NoKey)?;
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = key
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Corrupt)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}:{}", key.id, B64.encode(out)))
    }

    /// Opens a stored value; one stored in clear (before sealing) is returned as it is.
    pub fn open(&self, stored: &str, context: &str) -> Result<String, SealError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let (id, data) = rest.split_once(':').ok_or(SealError::Corrupt)?;
        let key = self
            .current
            .iter()
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| match self.current {
                None => SealError::NoKey,
                Some(_) => SealError::UnknownKey(id.to_string()),
            })?;
        let data = B64.decode(data).map_err(|_| SealError::Corrupt)?;
        if data.len() < 24 {
            return Err(SealError::Corrupt);
        }
        let (nonce, sealed) = data.split_at(24);
        let plain = key
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Corrupt)?;
        String::from_utf8(plain).map_err(|_| SealError::Corrupt)
    }

    /// Whether a stored value should be sealed again: it is in clear, or under another key than
    /// the current one.
    pub fn needs_sealing(&self, stored: &str) -> bool {
        match (stored.strip_prefix(PREFIX), self.current_id()) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(rest), Some(current)) => rest.split(':').next() != Some(current),
        }
    }
}

/// The key id a stored value was sealed with; `None` for a value in clear.
pub fn sealed_with(stored: &str) -> Option<&str> {
    stored.strip_prefix(PREFIX).and_then(|r| r.split(':').next())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::parse(&MasterKey::generate()).expect("key")
    }

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_in_its_place() {
        let (k1, k2) = (key(), key());
        let one = Sealer::new(Some(k1.clone()), vec![]);
        let sealed = one.seal("whsec_abc", "hooks.secret:h1").expect("seal");
        assert!(sealed.starts_with("sealed:v1:") && !sealed.contains("whsec_abc"));
        assert_ne!(
            sealed,
            one.seal("whsec_abc", "hooks.secret:h1").expect("seal"),
            "fresh nonce"
        );
        assert_eq!(one.open(&sealed, "hooks.secret:h1").expect("open"), "whsec_abc");
        assert_eq!(one.open(&sealed, "hooks.secret:h2"), Err(SealError::Corrupt), "moved");
        let mut altered = sealed.clone();
        altered.insert(sealed.len() - 3, 'A');
        assert!(one.open(&altered, "hooks.secret:h1").is_err());
        let two = Sealer::new(Some(k2.clone()), vec![]);
        assert_eq!(
            two.open(&sealed, "hooks.secret:h1"),
            Err(SealError::UnknownKey(k1.id().into()))
        );
        assert_eq!(
            Sealer::default().open(&sealed, "hooks.secret:h1"),
            Err(SealError::NoKey)
        );
        assert_eq!(Sealer::default().seal("x", "c"), Err(SealError::NoKey));
        // Rotation: the new key reads the old values while they are sealed again.
        let both = Sealer::new(Some(k2), vec![k1]);
        assert_eq!(both.open(&sealed, "hooks.secret:h1").expect("open"), "whsec_abc");
        assert!(both.needs_sealing(&sealed) && !one.needs_sealing(&sealed));
        assert!(both.needs_sealing("in clear") && !Sealer::default().needs_sealing("in clear"));
        assert_eq!(both.open("in clear", "c").expect("clear"), "in clear");
        assert_eq!(sealed_with(&sealed), Some(one.current_id().expect("id")));
    }

    #[test]
    fn bad_keys_are_refused_without_showing_them() {
        assert!(MasterKey::parse("not base64!")
            .expect_err("not base64")
            .contains("not base64"));
        let short = MasterKey::parse("c2hvcnQ=").expect_err("too short");
        assert!(short.contains("5 bytes") && !short.contains("c2hvcnQ"), "{short}");
        let k = key();
        assert!(format!("{k:?}").starts_with("MasterKey(k"));
        assert_eq!(k.id().len(), 9);
    }
}
