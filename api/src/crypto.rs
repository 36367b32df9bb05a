//! Encryption at rest of credential secrets (AES-256-GCM, a fresh nonce per secret).

use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

/// Seals and opens secrets. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

/// A sealed secret: ciphertext and the nonce it was sealed with.
pub struct Sealed {
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
}

impl SecretBox {
    /// From a base64-encoded 32-byte key (`RUNFLOW_SECRET_KEY`).
    pub fn from_base64_key(key: &str) -> anyhow::Result<Self> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(key.trim())
                .context("RUNFLOW_SECRET_KEY must be base64")?,
        );
        anyhow::ensure!(bytes.len() == 32, "RUNFLOW_SECRET_KEY must decode to exactly 32 bytes");
        let key = Key::<Aes256Gcm>::from_slice(&bytes);
        Ok(SecretBox {
            cipher: Aes256Gcm::new(key),
        })
    }

    /// A new random key, base64-encoded.
    pub fn generate_key() -> String {
        STANDARD.encode(Aes256Gcm::generate_key(OsRng))
    }

    pub fn seal(&self, plaintext: &str) -> anyhow::Result<Sealed> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(&nonce, plaintext.as_bytes())
            .map_err(|_| anyhow::anyhow!("encryption failed"))?;
        Ok(Sealed {
            ciphertext,
            nonce: nonce.to_vec(),
        })
    }

    /// Opens a sealed secret (for the runtime that needs the value; never for queries). The
    /// plaintext is wiped from memory when the caller drops it.
    pub fn open(&self, sealed: &Sealed) -> anyhow::Result<Zeroizing<String>> {
        anyhow::ensure!(sealed.nonce.len() == 12, "stored nonce has the wrong length");
        let nonce = Nonce::from_slice(&sealed.nonce);
        let plaintext = Zeroizing::new(
            self.cipher
                .decrypt(nonce, sealed.ciphertext.as_ref())
                .map_err(|_| anyhow::anyhow!("decryption failed: wrong RUNFLOW_SECRET_KEY?"))?,
        );
        let text = std::str::from_utf8(&plaintext).context("a sealed secret is not UTF-8")?;
        Ok(Zeroizing::new(text.to_string()))
    }
}

/// A masked hint of a secret: its last four characters when it is long enough to spare them.
/// (No copy of the whole secret is made.)
pub fn hint(secret: &str) -> String {
    let count = secret.chars().count();
    if count >= 12 {
        let tail: String = secret.chars().skip(count - 4).collect();
        format!("••••{tail}")
    } else {
        "••••".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_round_trips_and_hides_the_plaintext() {
        let key = SecretBox::generate_key();
        let secret_box = SecretBox::from_base64_key(&key).unwrap();
        let sealed = secret_box.seal("sk-live-1234567890").unwrap();
        assert!(!sealed.ciphertext.windows(4).any(|w| w == b"1234"));
        assert_eq!(secret_box.open(&sealed).unwrap().as_str(), "sk-live-1234567890");
        assert_eq!(hint("sk-live-1234567890"), "••••7890");
        assert_eq!(hint("short"), "••••");
    }
}
