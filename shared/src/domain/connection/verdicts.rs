//! The verdicts recorded on a connection: Connect Account's and the health pass's.

use chrono::{DateTime, Utc};

use crate::domain::document::MAX_DOCUMENT;
use crate::domain::estate::Survey;

use super::{
    Command, Connection, CredentialType, HealthRecord, HealthVerdict, RuleError, SecretExpiry, Status,
    ValidationRecord,
};

impl Connection {
    /// An estate's survey merged ([`super::Estate::record`]), as long as the whole document still
    /// fits a secret ([`Self::check_size`]); `Ok(false)` when nothing changed (or no estate).
    pub(super) fn record_survey(&mut self, survey: &Survey) -> Result<bool, RuleError> {
        let Some(estate) = self.estate.as_mut() else {
            return Ok(false);
        };
        if !estate.record(survey, &self.account) {
            return Ok(false);
        }
        self.check_size()?;
        Ok(true)
    }

    /// A survey in the background begins ([`super::super::survey`]).
    pub(super) fn start_survey(
        &mut self,
        start: &super::super::survey::SurveyStart,
    ) -> Result<bool, RuleError> {
        let Some(estate) = self.estate.as_mut() else {
            return Ok(false);
        };
        if !estate.start_survey(start, &self.account) {
            return Ok(false);
        }
        self.check_size()?;
        Ok(true)
    }

    /// A chunk of a survey in the background, merged into the estate of `group` (another group's
    /// or none: the chunk is superseded).
    pub(super) fn record_chunk(
        &mut self,
        survey: Option<&str>,
        group: &crate::domain::ManagementGroupId,
        index: u32,
        part: &Survey,
    ) -> Result<bool, RuleError> {
        let superseded = super::super::survey::SurveyError::Superseded;
        if !matches!(self.status, Status::Connected | Status::Degraded) {
            return Err(superseded.into());
        }
        let estate = self
            .estate
            .as_mut()
            .filter(|e| &e.group == group)
            .ok_or(superseded)?;
        if !estate.record_chunk(survey, index, part, &self.account)? {
            return Ok(false);
        }
        self.check_size()?;
        Ok(true)
    }

    /// The whole stored document within what a secret holds ([`MAX_DOCUMENT`]), an estate's list
    /// in pages when it is too large to keep inline: checked by every write before it is made.
    /// Only an estate's list can grow a document that far.
    pub fn check_size(&self) -> Result<(), RuleError> {
        let fits = crate::domain::document::encode_stored(self).is_some_and(|s| s.doc.len() <= MAX_DOCUMENT);
        if !fits {
            let subscriptions = self.estate.as_ref().map_or(0, |e| e.entries.len());
            return Err(RuleError::EstateTooLarge(subscriptions));
        }
        Ok(())
    }

    /// Connect Account's verdict; `Ok(false)` when it changes nothing.
    pub(super) fn record_validation(&mut self, record: &ValidationRecord) -> Result<bool, RuleError> {
        if self.inputs_fingerprint()? != record.inputs {
            return Err(RuleError::InputsChanged);
        }
        let moving_off_a_secret = record.credential == CredentialType::Federated
            && self.client_secret.is_some()
            && self.status == Status::Connected;
        if moving_off_a_secret && record.failure.is_some() {
            // It keeps working on its secret, exactly as it was, until the switch succeeds.
            return Ok(false);
        }
        // Azure's own word on the secret's end beats what was typed.
        if let (Some(end), Some(secret)) = (record.secret_end, self.client_secret.as_mut()) {
            let real = Some(SecretExpiry::from_azure(end));
            if secret.expires_at != real {
                secret.expires_at = real;
                self.reminded = None;
            }
        }
        if record.failure.is_none() {
            if self.status == Status::Degraded {
                // "Check now": fixed, as a health check would have found.
                self.health = Some(HealthRecord {
                    checked_at: record.checked_at,
                    diagnosis: None,
                    outdated: Vec::new(),
                });
            }
            self.status = Status::Connected;
            self.linked_at.get_or_insert(record.checked_at);
            if let Some(grant) = self.setup.as_mut() {
                grant.spend(record.checked_at);
            }
            if record.credential == CredentialType::Federated {
                // Proven without a secret: the secret (of a connection moving off it)
                // goes, and with it reminders and rotation.
                self.client_secret = None;
                self.reminded = None;
                self.rotation = None;
            }
        } else {
            self.status = Status::Failed;
        }
        self.validation = Some(record.clone());
        Ok(true)
    }

    /// A health check's verdict ([`Command::RecordHealth`]); `Ok(false)` when it changes nothing.
    pub(super) fn record_health(&mut self, command: &Command, at: DateTime<Utc>) -> Result<bool, RuleError> {
        let Command::RecordHealth {
            inputs,
            verdict,
            graph_manages_credentials,
            role_version,
            outdated,
            over_privilege,
            survey,
        } = command
        else {
            return Ok(false);
        };
        if !matches!(self.status, Status::Connected | Status::Degraded) {
            // Not linked (or expired): a health check has nothing to say.
            return Ok(false);
        }
        if self.inputs_fingerprint()? != *inputs {
            return Err(RuleError::InputsChanged);
        }
        // Rights lost (or regained) in Graph since the last look: recorded, so that
        // rotation is known to be unavailable before the secret expires.
        let mut graph_changed = false;
        if let (Some(manages), Some(v)) = (graph_manages_credentials, self.validation.as_mut()) {
            if v.graph_manages_credentials != Some(*manages) {
                v.graph_manages_credentials = Some(*manages);
                graph_changed = true;
            }
        }
        // A newer role version granted (recorded), or recommended actions still missing
        // (reported once per change).
        if let (Some(version), Some(v)) = (role_version, self.validation.as_mut()) {
            if v.role_version != *version {
                v.role_version = *version;
                graph_changed = true;
            }
        }
        // More (or less) than Spot needs since the last look: recorded once per change.
        if let (Some(found), Some(v)) = (over_privilege, self.validation.as_mut()) {
            if v.over_privilege != *found {
                v.over_privilege = found.clone();
                graph_changed = true;
            }
        }
        let reported = self
            .health
            .as_ref()
            .map(|h| h.outdated.as_slice())
            .unwrap_or_default();
        if matches!(verdict, HealthVerdict::Healthy) && reported != outdated.as_slice() {
            let health = self.health.get_or_insert(HealthRecord {
                checked_at: at,
                diagnosis: None,
                outdated: Vec::new(),
            });
            health.outdated = outdated.clone();
            graph_changed = true;
        }
        let now_diagnosis = self.health.as_ref().and_then(|h| h.diagnosis.as_ref());
        let health_changed = match (self.status, verdict) {
            (Status::Connected, HealthVerdict::Healthy) => false,
            (Status::Degraded, HealthVerdict::Broken(d)) if now_diagnosis == Some(d) => false,
            (_, HealthVerdict::Broken(d)) => {
                self.status = Status::Degraded;
                self.health = Some(HealthRecord {
                    checked_at: at,
                    diagnosis: Some(d.clone()),
                    outdated: Vec::new(),
                });
                true
            }
            (_, HealthVerdict::Healthy) => {
                self.status = Status::Connected;
                self.health = Some(HealthRecord {
                    checked_at: at,
                    diagnosis: None,
                    outdated: outdated.clone(),
                });
                true
            }
        };
        // An estate's subscriptions: found, lost, changed (the group itself could be read).
        let estate_changed = match survey {
            Some(survey) => self.record_survey(survey)?,
            None => false,
        };
        Ok(health_changed || graph_changed || estate_changed)
    }
}
