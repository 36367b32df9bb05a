//! Signing per the Standard Webhooks specification (<https://www.standardwebhooks.com/>).
//!
//! A secret is `whsec_` followed by the base64 of a 24 to 64 byte key. A message is signed as
//! `v1,<base64 of HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")>`, sent in the
//! `webhook-signature` header next to `webhook-id` and `webhook-timestamp` (Unix seconds).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::domain::credentials::Secret;
use crate::error::{Error, Result};

/// The prefix of every signing secret.
pub const PREFIX: &str = "whsec_";
/// Random bytes of a generated key.
pub const GENERATED_KEY_BYTES: usize = 32;
const MIN_KEY_BYTES: usize = 24;
const MAX_KEY_BYTES: usize = 64;

/// A new random secret, `whsec_` + base64 of 32 bytes.
pub fn generate() -> Secret {
    let mut key = [0u8; GENERATED_KEY_BYTES];
    rand::rng().fill_bytes(&mut key);
    Secret(format!("{PREFIX}{}", STANDARD.encode(key)))
}

/// The key bytes of a secret; BAD_USER_INPUT (never quoting the secret) if it is not one.
pub fn key(secret: &Secret) -> Result<Vec<u8>> {
    let encoded = secret
        .0
        .strip_prefix(PREFIX)
        .ok_or_else(|| Error::bad_input(format!("`secret` must start with `{PREFIX}` (Standard Webhooks)")))?;
    let key = STANDARD
        .decode(encoded)
        .map_err(|_| Error::bad_input(format!("`secret` must be `{PREFIX}` followed by base64")))?;
    if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
        return Err(Error::bad_input(format!(
            "`secret` must encode {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes of key, not {}",
            key.len()
        )));
    }
    Ok(key)
}

/// The `webhook-signature` header value of one message.
pub fn sign(key: &[u8], message_id: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes keys of any length, so this never fails.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn matches_the_reference_test_vector() {
        let secret = Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
        let key = key(&secret).unwrap_or_default();
        let signature = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn generated_secrets_are_valid_and_distinct() {
        let (a, b) = (generate(), generate());
        assert_eq!(key(&a).map(|k| k.len()).ok(), Some(GENERATED_KEY_BYTES));
        assert_ne!(a.0, b.0);
    }

    #[test]
    fn malformed_secrets_are_refused_without_echoing_them() {
        for bad in ["not-a-whsec-value-1234", "whsec_!!!zzz", "whsec_c2hvcnQ="] {
            let error = key(&Secret(bad.into())).err().map(|e| e.to_string());
            let error = error.unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(!error.contains(bad), "{error}");
        }
    }
}
