//! The one-command setup: a one-time token that lets the setup script (run by the customer in
//! Azure Cloud Shell) read its plan and report what it made, for one connection of one
//! organization, for an hour. Only the token's SHA-256 is stored; the token itself is handed out
//! once, in the command.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use super::ids::{ConnectionId, OrgId};

/// How long a setup command can be used, by default (`SETUP_TOKEN_MINUTES`): long enough to open
/// Cloud Shell and run it, short for whoever sees it later (a screenshot, a shared terminal).
pub const SETUP_TOKEN_MINUTES: i64 = 30;
/// The token's first part: its format's version.
const PREFIX: &str = "acs1";

/// A setup token: `acs1.{organization, base64url}.{connection}.{256 random bits, base64url}`.
/// The first parts say where to look; only the whole token's hash, stored on that connection,
/// makes it valid. `Debug` shows where it points, never the random part.
#[derive(Clone, PartialEq, Eq)]
pub struct SetupToken {
    org: OrgId,
    connection: ConnectionId,
    random: [u8; 32],
}

impl fmt::Debug for SetupToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SetupToken({}/{}, …)", self.org, self.connection)
    }
}

/// Why a presented token is refused. One answer for all of them (401): a caller learns nothing
/// about which part was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SetupTokenError {
    #[error("the setup token is malformed")]
    Malformed,
    #[error("the setup token is not this connection's current one")]
    Unknown,
    #[error("the setup token has expired")]
    Expired,
    /// A connect command used to uninstall, or an uninstall command to connect.
    #[error("the setup command was issued for something else")]
    OtherPurpose,
}

impl SetupToken {
    /// A new token for `connection`; `random` must come from a cryptographic source.
    pub fn mint(org: OrgId, connection: ConnectionId, random: [u8; 32]) -> Self {
        Self {
            org,
            connection,
            random,
        }
    }

    pub fn parse(input: &str) -> Result<Self, SetupTokenError> {
        let mut parts = input.trim().split('.');
        let (Some(PREFIX), Some(org), Some(connection), Some(random), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(SetupTokenError::Malformed);
        };
        let org = URL_SAFE_NO_PAD
            .decode(org)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| OrgId::parse(&s).ok())
            .ok_or(SetupTokenError::Malformed)?;
        let connection = ConnectionId::parse(connection).map_err(|_| SetupTokenError::Malformed)?;
        let random: [u8; 32] = URL_SAFE_NO_PAD
            .decode(random)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(SetupTokenError::Malformed)?;
        Ok(Self {
            org,
            connection,
            random,
        })
    }

    pub fn org(&self) -> &OrgId {
        &self.org
    }

    pub fn connection(&self) -> ConnectionId {
        self.connection
    }

    /// The token as handed out (once, in the command).
    pub fn expose(&self) -> String {
        format!(
            "{PREFIX}.{}.{}.{}",
            URL_SAFE_NO_PAD.encode(self.org.as_str()),
            self.connection,
            URL_SAFE_NO_PAD.encode(self.random)
        )
    }

    /// What is stored: the SHA-256 of the token, hex.
    pub fn hash(&self) -> String {
        let digest = Sha256::digest(self.expose().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The setup command issued last for a connection: its token's hash and its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupGrant {
    pub token_hash: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// When the connection reached `connected` with this token in force: the token then reads
    /// (the plan, where the connection stands) and changes nothing.
    pub spent_at: Option<DateTime<Utc>>,
    /// What the command was issued for: a connect command cannot uninstall, an uninstall command
    /// cannot connect.
    pub purpose: SetupPurpose,
    /// The Spot organization's display name, when the console sent it with the command: the
    /// script shows it before asking for consent.
    pub organization_name: Option<OrganizationName>,
}

/// What a setup command is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SetupPurpose {
    #[default]
    Connect,
    Uninstall,
}

impl SetupPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Uninstall => "uninstall",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Connect, Self::Uninstall]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// A Spot organization's display name as the console sends it: 1 to 128 characters, no control
/// characters (it is printed in a terminal: an escape sequence could rewrite what the person
/// reads before answering).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationName(String);

impl OrganizationName {
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let count = input.chars().count();
        if count == 0 || input.chars().all(char::is_whitespace) {
            return Err("must not be empty");
        }
        if count > 128 {
            return Err("must be at most 128 characters");
        }
        if input.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl SetupGrant {
    pub fn new(token: &SetupToken, now: DateTime<Utc>) -> Self {
        Self::lasting(token, now, Duration::minutes(SETUP_TOKEN_MINUTES))
    }

    /// A grant in force for `life` from `now`.
    pub fn lasting(token: &SetupToken, now: DateTime<Utc>, life: Duration) -> Self {
        Self {
            token_hash: token.hash(),
            issued_at: now,
            expires_at: now + life,
            spent_at: None,
            purpose: SetupPurpose::Connect,
            organization_name: None,
        }
    }

    pub fn for_purpose(mut self, purpose: SetupPurpose, organization_name: Option<OrganizationName>) -> Self {
        self.purpose = purpose;
        self.organization_name = organization_name;
        self
    }

    /// Whether the token of `token_hash` may still write through this grant at `now`, for
    /// `purpose`: the current one (a newer command replaces it), in force, not spent, issued for
    /// that. Checked inside every write of a report, so that a report racing a newer command loses
    /// instead of being applied again.
    pub fn still_admits(
        &self,
        token_hash: &str,
        purpose: SetupPurpose,
        now: DateTime<Utc>,
    ) -> Result<(), SetupTokenError> {
        let same: bool =
            subtle::ConstantTimeEq::ct_eq(self.token_hash.as_bytes(), token_hash.as_bytes()).into();
        if !same || self.spent_at.is_some() {
            return Err(SetupTokenError::Unknown);
        }
        if self.purpose != purpose {
            return Err(SetupTokenError::OtherPurpose);
        }
        if now >= self.expires_at {
            return Err(SetupTokenError::Expired);
        }
        Ok(())
    }
}

/// A report naming another value than the connection holds: refused, nothing changed. The values
/// are shown by their hints only (ids are not secrets, but a refusal need not repeat them whole).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the setup report names another {field} ({reported}) than the connection holds ({held})")]
pub struct SetupConflict {
    pub field: &'static str,
    pub held: String,
    pub reported: String,
}

impl SetupConflict {
    pub fn new(field: &'static str, held: &str, reported: &str) -> Self {
        Self {
            field,
            held: hint(held),
            reported: hint(reported),
        }
    }
}

/// The first 8 characters and an ellipsis.
pub fn hint(value: &str) -> String {
    let head: String = value.chars().take(8).collect();
    if head.len() < value.len() {
        format!("{head}…")
    } else {
        head
    }
}

/// Where a setup run stands, as the script reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupPhase {
    /// The script read its plan.
    Started,
    /// Every check passed; nothing written yet.
    Checked,
    /// The app registration and its service principal exist.
    Application,
    /// The federated credential (or client secret) is on the app.
    Credential,
    /// The custom role exists with every action.
    Role,
    /// The role is assigned.
    Assignment,
    /// Everything is made: fill the steps and connect.
    Done,
    /// The script stopped at a check or an Azure write.
    Failed,
    /// `--uninstall` removed what the script made.
    Uninstalled,
}

impl SetupPhase {
    pub const ALL: [SetupPhase; 9] = [
        Self::Started,
        Self::Checked,
        Self::Application,
        Self::Credential,
        Self::Role,
        Self::Assignment,
        Self::Done,
        Self::Failed,
        Self::Uninstalled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Checked => "checked",
            Self::Application => "application",
            Self::Credential => "credential",
            Self::Role => "role",
            Self::Assignment => "assignment",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Uninstalled => "uninstalled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Where a run can stop, as the script names its steps (the `failure.phase` of a report).
pub const SCRIPT_STEPS: [&str; 8] = [
    "checks",
    "consent",
    "application",
    "credential",
    "role",
    "assignment",
    "connect",
    "uninstall",
];

/// What a valid token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupAccess {
    /// Report what was made; the backend fills the steps and connects.
    Active,
    /// The connection reached `connected` under this token: read where it stands, change nothing.
    Spent,
}

impl SetupGrant {
    /// Whether `token` is this grant's, for the connection `(org, connection)`, still in force.
    pub fn admit(
        &self,
        org: &OrgId,
        connection: ConnectionId,
        token: &SetupToken,
        now: DateTime<Utc>,
    ) -> Result<SetupAccess, SetupTokenError> {
        if token.org() != org || token.connection() != connection {
            return Err(SetupTokenError::Unknown);
        }
        // Compared in constant time, as the local server's bearer tokens are (`subtle`).
        let same: bool =
            subtle::ConstantTimeEq::ct_eq(self.token_hash.as_bytes(), token.hash().as_bytes()).into();
        if !same {
            return Err(SetupTokenError::Unknown);
        }
        if now >= self.expires_at {
            return Err(SetupTokenError::Expired);
        }
        Ok(if self.spent_at.is_some() {
            SetupAccess::Spent
        } else {
            SetupAccess::Active
        })
    }

    /// The connection reached `connected` with this connect grant in force: it is spent. (An
    /// uninstall command is not spent by a connection it did not make.)
    pub fn spend(&mut self, at: DateTime<Utc>) {
        if self.purpose == SetupPurpose::Connect && self.spent_at.is_none() && at < self.expires_at {
            self.spent_at = Some(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> OrgId {
        OrgId::parse("606079861234").unwrap()
    }

    #[test]
    fn a_token_reads_back_and_shows_no_secret() {
        let t = SetupToken::mint(org(), ConnectionId::new_random(), [7; 32]);
        assert_eq!(SetupToken::parse(&t.expose()), Ok(t.clone()));
        assert!(!format!("{t:?}").contains(&URL_SAFE_NO_PAD.encode([7u8; 32])));
        assert_eq!(t.hash().len(), 64);
        for bad in [
            "",
            "acs1",
            "acs2.a.b.c",
            &format!("{}.x", t.expose()),
            "acs1.!!.x.y",
        ] {
            assert_eq!(SetupToken::parse(bad), Err(SetupTokenError::Malformed), "{bad}");
        }
    }

    #[test]
    fn only_the_current_token_in_force_is_admitted() {
        let now = Utc::now();
        let t = SetupToken::mint(org(), ConnectionId::new_random(), [1; 32]);
        let id = t.connection();
        let mut g = SetupGrant::new(&t, now);
        assert_eq!(g.admit(&org(), id, &t, now), Ok(SetupAccess::Active));
        // Another random part, another connection, another organization: unknown.
        let other = SetupToken::mint(org(), t.connection(), [2; 32]);
        assert_eq!(g.admit(&org(), id, &other, now), Err(SetupTokenError::Unknown));
        let elsewhere = SetupToken::mint(OrgId::parse("other").unwrap(), id, [1; 32]);
        assert_eq!(
            g.admit(&org(), id, &elsewhere, now),
            Err(SetupTokenError::Unknown)
        );
        assert_eq!(
            g.admit(&org(), ConnectionId::new_random(), &t, now),
            Err(SetupTokenError::Unknown)
        );
        // An hour later: expired.
        let later = now + Duration::minutes(SETUP_TOKEN_MINUTES);
        assert_eq!(g.admit(&org(), id, &t, later), Err(SetupTokenError::Expired));
        // Spent when connected: still reads.
        g.spend(now);
        assert_eq!(g.admit(&org(), id, &t, now), Ok(SetupAccess::Spent));
        // A new command replaces it (the connection keeps the last grant only).
        let g = SetupGrant::new(&other, now);
        assert_eq!(g.admit(&org(), id, &t, now), Err(SetupTokenError::Unknown));
        assert_eq!(g.admit(&org(), id, &other, now), Ok(SetupAccess::Active));
    }
}
