//! What AWS documents each API the code calls to need: the gate enforces exactly this table, and
//! docs/security.md shows it (a drift test holds the two together). Written from AWS's pages, not
//! from our template: where AWS is stricter than we thought, the gate is too; where a page is
//! unclear, the gate takes the stricter reading and the note says so.

/// One API the code calls.
#[derive(Debug, Clone, Copy)]
pub struct Documented {
    /// `service:Operation`.
    pub api: &'static str,
    /// The permission on the resource the call names (always the API's own action here).
    pub action: &'static str,
    /// What the caller also needs on the secret's KMS key when the secret is encrypted with a
    /// customer managed key (Secrets Manager acts with the caller's permissions, through
    /// `kms:ViaService` = `secretsmanager.{region}.amazonaws.com`).
    pub with_customer_key: &'static [&'static str],
    /// Further permissions on other resources (e.g. the rotation function).
    pub also: &'static str,
    /// The documents it comes from.
    pub source: &'static str,
    /// Where the documents are unclear, the reading the gate takes.
    pub note: &'static str,
}

const SM_KMS: &str = "Secrets Manager User Guide, \"Secret encryption and decryption\" > \"Permissions for the KMS key\": \
                      Secrets Manager acts on behalf of the user creating or changing the secret value, who must have \
                      kms:GenerateDataKey and kms:Decrypt";

pub const DOCUMENTED: &[Documented] = &[
    Documented {
        api: "secretsmanager:CreateSecret",
        action: "secretsmanager:CreateSecret",
        with_customer_key: &["kms:GenerateDataKey", "kms:Decrypt"],
        also: "secretsmanager:TagResource when it is given tags",
        source: SM_KMS,
        note: "",
    },
    Documented {
        api: "secretsmanager:PutSecretValue",
        action: "secretsmanager:PutSecretValue",
        with_customer_key: &["kms:GenerateDataKey", "kms:Decrypt"],
        also: "",
        source: SM_KMS,
        note: "",
    },
    Documented {
        api: "secretsmanager:UpdateSecret",
        action: "secretsmanager:UpdateSecret",
        with_customer_key: &["kms:GenerateDataKey", "kms:Decrypt"],
        also: "",
        source: SM_KMS,
        note: "with a new value; the gate asks for both whatever the body holds (stricter)",
    },
    Documented {
        api: "secretsmanager:GetSecretValue",
        action: "secretsmanager:GetSecretValue",
        with_customer_key: &["kms:Decrypt"],
        also: "",
        source: "Secrets Manager API Reference, GetSecretValue, \"Required permissions\"; User Guide, \"Permissions for the KMS key\"",
        note: "",
    },
    Documented {
        api: "secretsmanager:DescribeSecret",
        action: "secretsmanager:DescribeSecret",
        with_customer_key: &[],
        also: "",
        source: "Secrets Manager API Reference, DescribeSecret, \"Required permissions\"",
        note: "",
    },
    Documented {
        api: "secretsmanager:ListSecrets",
        action: "secretsmanager:ListSecrets",
        with_customer_key: &[],
        also: "",
        source: "Secrets Manager API Reference, ListSecrets, \"Required permissions\"; Service Authorization Reference: no resource type (Resource \"*\")",
        note: "allowed only on Resource \"*\" (the gate evaluates it on \"*\")",
    },
    Documented {
        api: "secretsmanager:DeleteSecret",
        action: "secretsmanager:DeleteSecret",
        with_customer_key: &[],
        also: "",
        source: "Secrets Manager API Reference, DeleteSecret, \"Required permissions\"",
        note: "",
    },
    Documented {
        api: "secretsmanager:TagResource",
        action: "secretsmanager:TagResource",
        with_customer_key: &[],
        also: "",
        source: "Secrets Manager API Reference, TagResource, \"Required permissions\"",
        note: "",
    },
    Documented {
        api: "secretsmanager:UntagResource",
        action: "secretsmanager:UntagResource",
        with_customer_key: &[],
        also: "",
        source: "Secrets Manager API Reference, UntagResource, \"Required permissions\"",
        note: "",
    },
    Documented {
        api: "secretsmanager:UpdateSecretVersionStage",
        action: "secretsmanager:UpdateSecretVersionStage",
        with_customer_key: &[],
        also: "",
        source: "Secrets Manager API Reference, UpdateSecretVersionStage, \"Required permissions\"",
        note: "",
    },
    Documented {
        api: "secretsmanager:RotateSecret",
        action: "secretsmanager:RotateSecret",
        with_customer_key: &[],
        also: "lambda:InvokeFunction on the rotation function",
        source: "Secrets Manager API Reference, RotateSecret, \"Required permissions\"",
        note: "",
    },
    Documented {
        api: "kms:Sign",
        action: "kms:Sign",
        with_customer_key: &[],
        also: "",
        source: "AWS KMS API Reference, Sign, \"Required permissions\" (key policy)",
        note: "",
    },
    Documented {
        api: "kms:GetPublicKey",
        action: "kms:GetPublicKey",
        with_customer_key: &[],
        also: "",
        source: "AWS KMS API Reference, GetPublicKey, \"Required permissions\" (key policy)",
        note: "",
    },
    Documented {
        api: "events:PutEvents",
        action: "events:PutEvents",
        with_customer_key: &[],
        also: "",
        source: "EventBridge User Guide, \"Using IAM policy conditions\": events:source is the entry's Source; every entry is authorized on its own",
        note: "each entry evaluated with its own events:source",
    },
];

/// The row of `api` (`service:Operation`).
pub fn documented(api: &str) -> Option<&'static Documented> {
    DOCUMENTED.iter().find(|d| d.api.eq_ignore_ascii_case(api))
}

/// How the gate matches condition operators (IAM User Guide, "Condition operators"): the `…Like`
/// operators take `*` and `?`; the `…Equals` ones match exactly. (The guide says ARN operators
/// check each of the six components and "can include" wildcards, while the SDKs call ArnEquals
/// "exact matching": unclear, so the stricter reading, exact.)
pub const CONDITION_OPERATORS: &str = "StringEquals, StringNotEquals, ArnEquals, ArnNotEquals: exact; StringLike, StringNotLike, ArnLike, ArnNotLike: wildcards";

/// The table's rows as docs/security.md shows them.
pub fn markdown_rows() -> String {
    DOCUMENTED
        .iter()
        .map(|d| {
            let key = if d.with_customer_key.is_empty() {
                "-".to_owned()
            } else {
                d.with_customer_key
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(" + ")
            };
            let also = if d.also.is_empty() { "-" } else { d.also };
            let note = if d.note.is_empty() {
                String::new()
            } else {
                format!(" (gate: {})", d.note)
            };
            format!(
                "| `{}` | `{}` | {key} | {also} | {}{note} |",
                d.api, d.action, d.source
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
