//! Secrets Manager's side of rotation: versions and staging labels of a connection's document,
//! `RotateSecret`, and the credential a finished or failed rotation leaves behind erased.

use async_trait::async_trait;

use super::{CredentialChange, SecretsManagerStore, classify, count, label, stage_of};
use crate::domain::{Connection, ConnectionId, OrgId};
use crate::store::{RotationStore, Stage, StoreError, VersionInfo};

/// Days between Secrets Manager's own rotations: far beyond a secret's life, so that the daily scan
/// (which calls `RotateSecret` when a secret is due) decides when to rotate.
const ROTATION_FALLBACK_DAYS: i64 = 1000;

#[async_trait]
impl RotationStore for SecretsManagerStore {
    async fn erase_credential(
        &self,
        org: &OrgId,
        id: &ConnectionId,
        credential_id: &str,
    ) -> Result<(), StoreError> {
        self.erase(&crate::store::credential_name(
            &self.credential_prefix,
            org,
            id,
            credential_id,
        ))
        .await
    }

    async fn versions(&self, secret_id: &str) -> Result<VersionInfo, StoreError> {
        count(&self.calls.describe);
        let d = self
            .client
            .describe_secret()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception())
                {
                    StoreError::NotFound
                } else {
                    classify(e)
                }
            })?;
        Ok(VersionInfo {
            name: d.name().unwrap_or_default().to_owned(),
            rotation_enabled: d.rotation_enabled(),
            stages: d
                .version_ids_to_stages()
                .into_iter()
                .flatten()
                .map(|(version, labels)| {
                    let stages = labels.iter().filter_map(|l| stage_of(l)).collect();
                    (version.clone(), stages)
                })
                .collect(),
        })
    }

    async fn version(
        &self,
        secret_id: &str,
        version: &str,
        stage: Stage,
    ) -> Result<Option<Connection>, StoreError> {
        count(&self.calls.get);
        let read = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .version_id(version)
            .version_stage(label(stage));
        match read.send().await {
            Ok(out) => match out.secret_string() {
                Some(text) => self.decode_read(text).await?.map(Some).ok_or_else(|| {
                    StoreError::Unavailable("a page of the estate was replaced while it was read".into())
                }),
                None => Ok(None),
            },
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(classify(e)),
        }
    }

    async fn put_version(
        &self,
        secret_id: &str,
        token: &str,
        doc: &Connection,
        stage: Stage,
    ) -> Result<(), StoreError> {
        if let Some((record, value)) = CredentialChange::of(None, doc).put {
            self.put_credential(doc, record, value).await?;
        }
        let (text, _) = self.store_pages(doc, &std::collections::BTreeSet::new()).await?;
        count(&self.calls.put);
        let put = self
            .client
            .put_secret_value()
            .secret_id(secret_id)
            .client_request_token(token)
            .secret_string(text.as_str())
            .version_stages(label(stage))
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_exists_exception()) =>
            {
                Err(StoreError::Conflict)
            }
            Err(e) => Err(classify(e)),
        }
    }

    async fn move_stage(
        &self,
        secret_id: &str,
        stage: Stage,
        to: Option<&str>,
        from: Option<&str>,
    ) -> Result<(), StoreError> {
        count(&self.calls.update_stage);
        let moved = self
            .client
            .update_secret_version_stage()
            .secret_id(secret_id)
            .version_stage(label(stage))
            .set_move_to_version_id(to.map(str::to_owned))
            .set_remove_from_version_id(from.map(str::to_owned))
            .send()
            .await;
        match moved {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_invalid_parameter_exception() || s.is_invalid_request_exception()
                }) =>
            {
                Err(StoreError::Conflict)
            }
            Err(e) => Err(classify(e)),
        }
    }

    async fn retag(
        &self,
        secret_id: &str,
        before: &Connection,
        after: &Connection,
    ) -> Result<(), StoreError> {
        self.retag_name(secret_id, before, after).await
    }

    async fn start_rotation(
        &self,
        org: &OrgId,
        id: &ConnectionId,
        lambda_arn: &str,
    ) -> Result<(), StoreError> {
        count(&self.calls.rotate);
        let rules = aws_sdk_secretsmanager::types::RotationRulesType::builder()
            .automatically_after_days(ROTATION_FALLBACK_DAYS)
            .build();
        let result = self
            .client
            .rotate_secret()
            .secret_id(self.name(org, id))
            .rotation_lambda_arn(lambda_arn)
            .rotation_rules(rules)
            .rotate_immediately(true)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // A rotation already under way: it goes on, nothing to start.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_invalid_request_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(classify(e)),
        }
    }
}
