//! The signing key in AWS KMS (RSA_2048, SIGN_VERIFY): the private key never leaves KMS. The public
//! keys are fetched once per cold start (`GetPublicKey`), each signature is one `Sign` call.

use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::error::SdkError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};

use super::{Jwk, KeyError, Signer, SigningError};

#[derive(Debug, Clone)]
pub struct KmsSigner {
    client: Client,
    /// The key ids, the signing one first.
    key_ids: Vec<String>,
    keys: Vec<Jwk>,
}

#[derive(Debug, thiserror::Error)]
pub enum KmsLoadError {
    #[error("no signing key id is configured")]
    NoKey,
    #[error("cannot read the public key of {key_id}")]
    GetPublicKey {
        key_id: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the public key of {key_id} is not an RSA key")]
    Key {
        key_id: String,
        #[source]
        source: KeyError,
    },
}

impl KmsSigner {
    /// Reads every key's public half (one `GetPublicKey` each), once per cold start.
    pub async fn load(client: Client, key_ids: Vec<String>) -> Result<Self, KmsLoadError> {
        if key_ids.is_empty() {
            return Err(KmsLoadError::NoKey);
        }
        let mut keys = Vec::with_capacity(key_ids.len());
        for key_id in &key_ids {
            let out = client.get_public_key().key_id(key_id).send().await.map_err(|e| {
                KmsLoadError::GetPublicKey {
                    key_id: key_id.clone(),
                    source: Box::new(e),
                }
            })?;
            let der = out.public_key().map(|b| b.as_ref()).unwrap_or_default();
            let jwk = Jwk::from_spki_der(der).map_err(|source| KmsLoadError::Key {
                key_id: key_id.clone(),
                source,
            })?;
            keys.push(jwk);
        }
        Ok(Self {
            client,
            key_ids,
            keys,
        })
    }
}

#[async_trait]
impl Signer for KmsSigner {
    fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let key_id = self.key_ids.first().ok_or(SigningError::NoKey)?;
        let out = self
            .client
            .sign()
            .key_id(key_id)
            .message(Blob::new(message))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::RsassaPkcs1V15Sha256)
            .send()
            .await
            .map_err(|e| match &e {
                SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
                    SigningError::Unavailable(Box::new(e))
                }
                SdkError::ServiceError(se)
                    if se.err().is_kms_internal_exception()
                        || se.err().is_dependency_timeout_exception()
                        || se.err().is_key_unavailable_exception()
                        || aws_sdk_kms::error::ProvideErrorMetadata::code(se.err())
                            == Some("ThrottlingException") =>
                {
                    SigningError::Unavailable(Box::new(e))
                }
                _ => SigningError::Refused(Box::new(e)),
            })?;
        Ok(out.signature().map(|b| b.as_ref().to_vec()).unwrap_or_default())
    }
}
