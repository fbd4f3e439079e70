//! The local stand-in for KMS: an RSA key generated once into the store's directory (0600), behind
//! the same [`Signer`] port. For the local server and tests; the Lambdas sign with KMS.

use std::path::Path;

use async_trait::async_trait;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer as _};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, sha2::Sha256};

use super::{Jwk, Signer, SigningError};

/// The key file's name in the store's directory.
pub const KEY_FILE: &str = "issuer-key.pem";

#[derive(Debug, Clone)]
pub struct LocalKey {
    key: SigningKey<Sha256>,
    keys: Vec<Jwk>,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalKeyError {
    #[error("cannot read or write the issuer key file")]
    Io(#[from] std::io::Error),
    #[error("the issuer key file does not hold an RSA private key (PKCS#8 PEM)")]
    Key(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl LocalKey {
    /// The key of `dir/issuer-key.pem`, generated (RSA 2048, file 0600) on first use.
    pub fn open_or_create(dir: &Path) -> Result<Self, LocalKeyError> {
        let path = dir.join(KEY_FILE);
        let key = match std::fs::read_to_string(&path) {
            Ok(pem) => RsaPrivateKey::from_pkcs8_pem(&pem).map_err(|e| LocalKeyError::Key(Box::new(e)))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                let pem = key
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(|e| LocalKeyError::Key(Box::new(e)))?;
                write_private(&path, pem.as_bytes())?;
                key
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Self::from_key(key))
    }

    /// A new key that lives in memory only (tests).
    pub fn ephemeral() -> Result<Self, LocalKeyError> {
        Ok(Self::from_key(Self::generate()?))
    }

    fn generate() -> Result<RsaPrivateKey, LocalKeyError> {
        RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(|e| LocalKeyError::Key(Box::new(e)))
    }

    fn from_key(key: RsaPrivateKey) -> Self {
        let public = key.to_public_key();
        let jwk = Jwk::rsa(&public.n().to_bytes_be(), &public.e().to_bytes_be());
        Self {
            key: SigningKey::<Sha256>::new(key),
            keys: vec![jwk],
        }
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[async_trait]
impl Signer for LocalKey {
    fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        Ok(self.key.sign(message).to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_key_is_made_once_kept_private_and_signs_what_its_jwk_verifies() {
        let dir = std::env::temp_dir().join(format!("azc-issuer-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = LocalKey::open_or_create(&dir).unwrap();
        let again = LocalKey::open_or_create(&dir).unwrap();
        assert_eq!(first.keys(), again.keys(), "the same key after a restart");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The signature verifies with the published modulus and exponent.
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use rsa::signature::Verifier;
        let jwk = &first.keys()[0];
        let n = rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(&jwk.n).unwrap());
        let e = rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(&jwk.e).unwrap());
        let public = rsa::RsaPublicKey::new(n, e).unwrap();
        let signature = again.sign(b"header.claims").await.unwrap();
        let signature = rsa::pkcs1v15::Signature::try_from(signature.as_slice()).unwrap();
        rsa::pkcs1v15::VerifyingKey::<Sha256>::new(public)
            .verify(b"header.claims", &signature)
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
