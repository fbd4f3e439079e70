//! Identifiers. Every one is parsed once at the edge; the rest of the code only sees these types.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Why an identifier did not parse. The messages never echo the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("is empty")]
    Empty,
    #[error("must be a GUID like 00000000-0000-0000-0000-000000000000")]
    NotAGuid,
    #[error("must be a GUID or a verified domain such as contoso.onmicrosoft.com")]
    NotATenant,
    #[error("must be a Spot account id: act- followed by 8 hexadecimal characters")]
    NotAnAccount,
    #[error("must be 1 to 64 letters, digits, '.', '_' or '-'")]
    NotAnOrganization,
    #[error(
        "must be a management group's name (ID): 1 to 90 letters, digits, '-', '_', '(', ')' or '.', not ending with '.'"
    )]
    NotAManagementGroup,
}

/// What a paste may add around a value: spaces, tabs and line breaks (exactly these, as the
/// OpenAPI patterns say), nothing else.
pub fn trim_pasted(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\r', '\n'])
}

/// Parses a hyphenated GUID in any letter case (surrounding white space ignored).
fn parse_guid(input: &str) -> Result<Uuid, IdError> {
    let s = trim_pasted(input);
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    // Only the hyphenated 8-4-4-4-12 form that Azure shows; uuid also takes braces and urn forms.
    if s.len() != 36 {
        return Err(IdError::NotAGuid);
    }
    Uuid::try_parse(s).map_err(|_| IdError::NotAGuid)
}

macro_rules! guid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// Parses a GUID in any case; it is kept in canonical lower case.
            pub fn parse(input: &str) -> Result<Self, IdError> {
                parse_guid(input).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

guid_id!(
    /// Application (client) ID of the customer's app registration.
    ClientId
);
guid_id!(
    /// Azure subscription ID.
    SubscriptionId
);
guid_id!(
    /// Our id of one connection (one wizard run for one Spot account).
    ConnectionId
);

impl ConnectionId {
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }

    /// An id derived elsewhere (a name-based UUID); any UUID is a valid connection id.
    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

/// Directory (tenant) ID: a GUID or a verified domain name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum TenantId {
    Guid(Uuid),
    Domain(String),
}

impl TenantId {
    pub fn parse(input: &str) -> Result<Self, IdError> {
        let s = trim_pasted(input);
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        if let Ok(g) = parse_guid(s) {
            return Ok(Self::Guid(g));
        }
        let domain = s.to_ascii_lowercase();
        if is_domain(&domain) {
            Ok(Self::Domain(domain))
        } else {
            Err(IdError::NotATenant)
        }
    }
}

fn is_domain(s: &str) -> bool {
    if s.len() > 253 || !s.contains('.') {
        return false;
    }
    let labels: Vec<&str> = s.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let tld_ok = labels
        .last()
        .is_some_and(|t| t.len() >= 2 && t.bytes().all(|b| b.is_ascii_alphabetic()));
    labels.iter().all(label_ok) && tld_ok
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Guid(g) => fmt::Display::fmt(&g.hyphenated(), f),
            Self::Domain(d) => f.write_str(d),
        }
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({self})")
    }
}

impl Serialize for TenantId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $check:expr, $err:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn parse(input: &str) -> Result<Self, IdError> {
                let s = trim_pasted(input);
                if s.is_empty() {
                    return Err(IdError::Empty);
                }
                let check: fn(&str) -> Option<String> = $check;
                check(s).map(Self).ok_or($err)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id!(
    /// A Spot account: `act-` and 8 hexadecimal characters (kept lower case).
    AccountId,
    |s| {
        let hex = s.strip_prefix("act-")?;
        (hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
    },
    IdError::NotAnAccount
);

string_id!(
    /// The Spot organization that owns connections; comes from the authorizer, never from a body.
    /// Restricted to characters that are safe in a Secrets Manager name.
    OrgId,
    |s| {
        (s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
        .then(|| s.to_owned())
    },
    IdError::NotAnOrganization
);

string_id!(
    /// A management group's name (its ID in the portal, not its display name), as Azure allows it:
    /// 1 to 90 letters, digits, `-`, `_`, `(`, `)` or `.`, not ending with `.`.
    ManagementGroupId,
    |s| {
        (s.len() <= 90
            && !s.ends_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'(' | b')' | b'.')))
        .then(|| s.to_owned())
    },
    IdError::NotAManagementGroup
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_canonical_lower_case() {
        let id = SubscriptionId::parse(" 6F1D2C3B-AAAA-4BBB-8CCC-0123456789AB ").unwrap();
        assert_eq!(id.to_string(), "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab");
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab\""
        );
    }

    #[test]
    fn guid_forms_other_than_hyphenated_are_refused() {
        for bad in [
            "",
            "6f1d2c3baaaa4bbb8ccc0123456789ab",
            "{6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab}",
            "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ag",
            "not a guid",
        ] {
            assert!(ClientId::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn tenant_is_guid_or_domain() {
        assert!(matches!(
            TenantId::parse("72F988BF-86F1-41AF-91AB-2D7CD011DB47").unwrap(),
            TenantId::Guid(_)
        ));
        assert_eq!(
            TenantId::parse("Contoso.onMicrosoft.com").unwrap().to_string(),
            "contoso.onmicrosoft.com"
        );
        for bad in [
            "contoso",
            "-contoso.com",
            "contoso..com",
            "contoso.c0m",
            "a b.com",
            "",
        ] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn account_ids() {
        assert_eq!(AccountId::parse("act-1234ABCD").unwrap().as_str(), "act-1234abcd");
        assert_eq!(
            AccountId::parse(" act-1234abcd\n").unwrap().as_str(),
            "act-1234abcd"
        );
        for bad in [
            "ACT-1234ABCD",
            "\u{a0}act-1234abcd",
            "act-1234abc",
            "act-1234abcg",
            "1234abcd",
            "act-1234abcde",
        ] {
            assert!(AccountId::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn org_ids_are_safe_in_secret_names() {
        assert!(OrgId::parse("606079861234").is_ok());
        for bad in ["a/b", "a b", "x".repeat(65).as_str(), "ü"] {
            assert!(OrgId::parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
