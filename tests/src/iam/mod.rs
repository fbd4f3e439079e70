//! IAM enforced in the tests: each function's AWS calls run under exactly the permissions its role
//! has in `template.yaml`, and a call the role does not allow is refused as AWS refuses it.
//!
//! moto checks IAM only for actions (for Secrets Manager, KMS and EventBridge it evaluates every
//! call against resource `*`, so an ARN-scoped statement never matches; see
//! `../shared/reference/aws.md`), so the gate does it itself:
//! - [`TemplatePolicies`] reads every function's inline policy statements from `template.yaml`,
//!   resolving the intrinsics (`!Sub`, `!Ref`, `!GetAtt`, `!If`, `!Split`, conditions) with the
//!   test's parameters (prefix, bus, key, stack name);
//! - [`IamGate`] is an HTTP proxy in front of moto. Each function signs with its own access key
//!   (the SAM logical id, e.g. `ConnectAccountFunction`), so the gate knows whose call it is; it
//!   reads the action (`X-Amz-Target`) and the resource the call touches (`SecretId`, `Name`,
//!   `KeyId`, each entry's `EventBusName`, `RotationLambdaARN`) as an ARN, evaluates them
//!   (explicit Deny wins, then any Allow, else denied), answers a denied call with
//!   `AccessDeniedException` like AWS, and keeps every call and every denial.
//!
//! A test then asserts that a path walked with no denial and that it made the calls it should.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml_ng::Value as Yaml;

pub mod documented;
mod gate;
pub use gate::{Call, IamGate, calls_of};

/// moto's account and region.
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
/// What `!Ref AWS::NoValue` resolves to: dropped from lists.
const NO_VALUE: &str = "\u{0}no-value";
/// The suffix Secrets Manager appends to a secret's name in its ARN (six characters).
pub(crate) const ARN_SUFFIX: &str = "-AbC123";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone)]
struct Statement {
    effect: Effect,
    actions: Vec<String>,
    resources: Vec<String>,
    /// Resource policies only: `None` for any principal of the account (its IAM policies
    /// decide), `Some("*")` anyone, `Some(arn)` that principal only.
    principal: Option<String>,
    /// Resource policies only: (operator, key, values).
    conditions: Vec<(String, String, Vec<String>)>,
}

/// What a request says about itself beyond action and resource (for conditions).
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub principal_arn: String,
    /// `kms:ViaService`: the service that called KMS for the caller (Secrets Manager).
    pub via_service: Option<String>,
    /// `events:source`: the source of the event put.
    pub source: Option<String>,
}

impl Statement {
    fn parse(s: &Yaml, template: &Yaml, stack: &Stack, whose: &str) -> Self {
        assert!(
            s.get("NotAction").is_none() && s.get("NotResource").is_none(),
            "{whose}: NotAction/NotResource are not known to the IAM gate"
        );
        let principal = match &s["Principal"] {
            Yaml::Null => None,
            Yaml::String(p) => {
                assert_eq!(p, "*", "{whose}: principal {p}");
                Some("*".to_owned())
            }
            p => {
                let aws = resolve(&p["AWS"], template, stack).one();
                (aws != format!("arn:aws:iam::{ACCOUNT}:root")).then_some(aws)
            }
        };
        let mut conditions = Vec::new();
        for (op, kv) in s["Condition"].as_mapping().into_iter().flatten() {
            for (k, v) in kv.as_mapping().unwrap() {
                conditions.push((
                    op.as_str().unwrap().to_owned(),
                    k.as_str().unwrap().to_owned(),
                    resolve(v, template, stack).into_vec(),
                ));
            }
        }
        Statement {
            effect: match s["Effect"].as_str() {
                Some("Allow") => Effect::Allow,
                Some("Deny") => Effect::Deny,
                other => panic!("{whose}: Effect {other:?}"),
            },
            actions: resolve(&s["Action"], template, stack).into_vec(),
            resources: match &s["Resource"] {
                Yaml::Null => vec!["*".to_owned()],
                r => resolve(r, template, stack).into_vec(),
            },
            principal,
            conditions,
        }
    }

    fn applies(&self, action: &str, resource: &str, context: &Context) -> bool {
        let principal = match &self.principal {
            None => true,
            Some(p) => p == "*" || *p == context.principal_arn,
        };
        principal
            && self
                .actions
                .iter()
                .any(|a| wildcard(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()))
            && self.resources.iter().any(|r| wildcard(r, resource))
            && self.conditions.iter().all(|(op, key, values)| {
                let value = match key.as_str() {
                    "aws:PrincipalArn" => Some(context.principal_arn.as_str()),
                    "kms:ViaService" => context.via_service.as_deref(),
                    "events:source" => context.source.as_deref(),
                    other => panic!("condition key {other} is not known to the IAM gate"),
                };
                // `…Like`: wildcards; `…Equals`: exact (documented::CONDITION_OPERATORS).
                let like = |v: &str| values.iter().any(|p| wildcard(p, v));
                let equal = |v: &str| values.iter().any(|p| p == v);
                match op.as_str() {
                    "ArnEquals" | "StringEquals" => value.is_some_and(equal),
                    "ArnLike" | "StringLike" => value.is_some_and(like),
                    "ArnNotEquals" | "StringNotEquals" => !value.is_some_and(equal),
                    "ArnNotLike" | "StringNotLike" => !value.is_some_and(like),
                    other => panic!("condition operator {other} is not known to the IAM gate"),
                }
            })
    }
}

/// The stack's parameters and the physical names and ARNs its resources resolve to.
#[derive(Debug, Clone, Default)]
pub struct Stack {
    /// `Ref` of parameters, pseudo parameters and resources (`EventBus` → its name).
    pub refs: BTreeMap<String, String>,
    /// `GetAtt` (`EventBus.Arn`, `IssuerKey.Arn`, …).
    pub attrs: BTreeMap<String, String>,
}

impl Stack {
    /// The pseudo parameters (moto's account and region) and the template's parameter defaults,
    /// overridden by `params`.
    pub fn new(template: &Yaml, stack_name: &str, params: &[(&str, &str)]) -> Self {
        let mut refs = BTreeMap::new();
        refs.insert("AWS::Partition".into(), "aws".into());
        refs.insert("AWS::Region".into(), REGION.into());
        refs.insert("AWS::AccountId".into(), ACCOUNT.into());
        refs.insert("AWS::StackName".into(), stack_name.into());
        refs.insert("AWS::URLSuffix".into(), "amazonaws.com".into());
        refs.insert("AWS::NoValue".into(), NO_VALUE.into());
        for (name, p) in template["Parameters"].as_mapping().into_iter().flatten() {
            let default = match &p["Default"] {
                Yaml::String(s) => Some(s.clone()),
                Yaml::Number(n) => Some(n.to_string()),
                _ => None,
            };
            if let (Some(name), Some(d)) = (name.as_str(), default) {
                refs.insert(name.to_owned(), d);
            }
        }
        for (k, v) in params {
            refs.insert((*k).to_owned(), (*v).to_owned());
        }
        Self {
            refs,
            attrs: BTreeMap::new(),
        }
    }

    /// A stack named `azc` with the template's defaults and fixed ARNs for its resources (for
    /// the template's own tests; no emulator needed).
    pub fn fixed(template: &Yaml) -> Self {
        Self::fixed_with(template, &[])
    }

    /// [`Self::fixed`] with parameters.
    pub fn fixed_with(template: &Yaml, params: &[(&str, &str)]) -> Self {
        let arn = |service: &str, rest: &str| format!("arn:aws:{service}:{REGION}:{ACCOUNT}:{rest}");
        let mut all = vec![
            ("JwtIssuer", "https://auth.example.com/"),
            ("JwtAudience", "azure-connect"),
        ];
        all.extend_from_slice(params);
        Self::new(template, "azc", &all)
            .with_resource(
                "EventBus",
                "azc-azure-connect",
                &[("Arn", &arn("events", "event-bus/azc-azure-connect"))],
            )
            .with_resource("IssuerKey", "issuer", &[("Arn", &arn("kms", "key/issuer"))])
            .with_resource(
                "CredentialKey",
                "credentials",
                &[("Arn", &arn("kms", "key/credentials"))],
            )
            .with_resource(
                "FailedEventsQueue",
                "failed",
                &[("Arn", &arn("sqs", "failed")), ("QueueName", "failed")],
            )
            .with_resource(
                "SurveyQueue",
                "https://sqs.us-east-1.amazonaws.com/123456789012/azc-survey",
                &[("Arn", &arn("sqs", "azc-survey")), ("QueueName", "azc-survey")],
            )
    }

    pub fn with_resource(mut self, logical: &str, reference: &str, attrs: &[(&str, &str)]) -> Self {
        self.refs.insert(logical.to_owned(), reference.to_owned());
        for (a, v) in attrs {
            self.attrs.insert(format!("{logical}.{a}"), (*v).to_owned());
        }
        self
    }
}

/// What an intrinsic resolves to: one string or a list.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    One(String),
    Many(Vec<String>),
}

impl Resolved {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }

    pub fn one(self) -> String {
        match self {
            Self::One(s) => s,
            Self::Many(v) => panic!("a list where a string was expected: {v:?}"),
        }
    }
}

/// Resolves CloudFormation's intrinsics in `v` (panics, naming it, on anything it does not know:
/// a test then fails instead of granting or refusing by accident).
pub fn resolve(v: &Yaml, template: &Yaml, stack: &Stack) -> Resolved {
    match v {
        Yaml::String(s) => Resolved::One(s.clone()),
        Yaml::Number(n) => Resolved::One(n.to_string()),
        Yaml::Bool(b) => Resolved::One(b.to_string()),
        Yaml::Sequence(items) => Resolved::Many(
            items
                .iter()
                .flat_map(|i| resolve(i, template, stack).into_vec())
                .filter(|v| v != NO_VALUE)
                .collect(),
        ),
        Yaml::Tagged(t) => {
            let arg = &t.value;
            let tag = t.tag.to_string();
            match tag.trim_start_matches('!') {
                "Ref" => Resolved::One(lookup_ref(arg.as_str().unwrap(), stack)),
                "GetAtt" => {
                    let name = match arg {
                        Yaml::String(s) => s.clone(),
                        Yaml::Sequence(p) => format!("{}.{}", p[0].as_str().unwrap(), p[1].as_str().unwrap()),
                        other => panic!("GetAtt of {other:?}"),
                    };
                    Resolved::One(
                        stack
                            .attrs
                            .get(&name)
                            .unwrap_or_else(|| panic!("the test stack has no {name}"))
                            .clone(),
                    )
                }
                "Sub" => {
                    let (text, vars) = match arg {
                        Yaml::String(s) => (s.clone(), None),
                        Yaml::Sequence(p) => (p[0].as_str().unwrap().to_owned(), Some(&p[1])),
                        other => panic!("Sub of {other:?}"),
                    };
                    Resolved::One(substitute(&text, |name| {
                        if let Some(v) = vars.and_then(|m| m.get(name)) {
                            return resolve(v, template, stack).one();
                        }
                        if name.contains('.') && !name.starts_with("AWS::") {
                            return stack
                                .attrs
                                .get(name)
                                .unwrap_or_else(|| panic!("the test stack has no {name}"))
                                .clone();
                        }
                        lookup_ref(name, stack)
                    }))
                }
                "If" => {
                    let p = arg.as_sequence().unwrap();
                    if condition(p[0].as_str().unwrap(), template, stack) {
                        resolve(&p[1], template, stack)
                    } else {
                        resolve(&p[2], template, stack)
                    }
                }
                "Split" => {
                    let p = arg.as_sequence().unwrap();
                    let sep = p[0].as_str().unwrap();
                    let text = resolve(&p[1], template, stack).one();
                    Resolved::Many(text.split(sep).map(str::to_owned).collect())
                }
                "Select" => {
                    let p = arg.as_sequence().unwrap();
                    let index: usize = resolve(&p[0], template, stack).one().parse().unwrap();
                    Resolved::One(resolve(&p[1], template, stack).into_vec()[index].clone())
                }
                "Join" => {
                    let p = arg.as_sequence().unwrap();
                    let sep = p[0].as_str().unwrap();
                    Resolved::One(resolve(&p[1], template, stack).into_vec().join(sep))
                }
                other => panic!("intrinsic {other} is not known to the IAM gate"),
            }
        }
        other => panic!("cannot resolve {other:?}"),
    }
}

fn lookup_ref(name: &str, stack: &Stack) -> String {
    stack
        .refs
        .get(name)
        .unwrap_or_else(|| panic!("the test stack has no Ref {name}"))
        .clone()
}

fn substitute(text: &str, mut var: impl FnMut(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("an unclosed ${") + start;
        out.push_str(&var(&rest[start + 2..end]));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn condition(name: &str, template: &Yaml, stack: &Stack) -> bool {
    let c = &template["Conditions"][name];
    assert!(!c.is_null(), "no condition {name}");
    truth(c, template, stack)
}

fn truth(v: &Yaml, template: &Yaml, stack: &Stack) -> bool {
    let Yaml::Tagged(t) = v else {
        panic!("a condition that is not an intrinsic: {v:?}")
    };
    let tag = t.tag.to_string();
    let arg = t.value.as_sequence();
    match tag.trim_start_matches('!') {
        "Not" => !truth(&arg.unwrap()[0], template, stack),
        "And" => arg.unwrap().iter().all(|c| truth(c, template, stack)),
        "Or" => arg.unwrap().iter().any(|c| truth(c, template, stack)),
        "Equals" => {
            let p = arg.unwrap();
            resolve(&p[0], template, stack) == resolve(&p[1], template, stack)
        }
        "Condition" => condition(t.value.as_str().unwrap(), template, stack),
        other => panic!("condition {other} is not known to the IAM gate"),
    }
}

/// IAM's wildcard match: `*` any run of characters, `?` one character.
pub fn wildcard(pattern: &str, value: &str) -> bool {
    fn go(p: &[char], v: &[char]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &v[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    go(&p, &v)
}

/// Every function's policy statements (inline, or its named role's), resolved for one test
/// stack; its role's ARN; the environment variables the template gives it; and the key policies.
#[derive(Debug, Clone)]
pub struct TemplatePolicies {
    statements: BTreeMap<String, Vec<Statement>>,
    roles: BTreeMap<String, String>,
    environment: BTreeMap<String, BTreeMap<String, String>>,
    keys: BTreeMap<String, Vec<Statement>>,
    /// Event buses' resource policies, by ARN.
    buses: BTreeMap<String, Vec<Statement>>,
}

/// One call's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Allowed,
    /// No statement allows it.
    NotAllowed,
    /// A statement denies it explicitly.
    Denied,
}

fn verdict<'a>(list: impl Iterator<Item = &'a Statement> + Clone) -> Verdict {
    if list.clone().any(|s| s.effect == Effect::Deny) {
        Verdict::Denied
    } else if list.into_iter().any(|s| s.effect == Effect::Allow) {
        Verdict::Allowed
    } else {
        Verdict::NotAllowed
    }
}

impl TemplatePolicies {
    pub fn template() -> Yaml {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
        serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    pub fn from_template(template: &Yaml, stack: &Stack) -> Self {
        let resources = &template["Resources"];
        let parse_all = |list: &Yaml, whose: &str| -> Vec<Statement> {
            list.as_sequence()
                .into_iter()
                .flatten()
                .map(|s| Statement::parse(s, template, stack, whose))
                .collect()
        };
        let mut statements = BTreeMap::new();
        let mut roles = BTreeMap::new();
        let mut environment = BTreeMap::new();
        let mut keys = BTreeMap::new();
        let mut buses = BTreeMap::new();
        let globals: BTreeMap<String, String> = env_of(&template["Globals"]["Function"], template, stack);
        for (name, resource) in resources.as_mapping().unwrap() {
            let name = name.as_str().unwrap().to_owned();
            if resource["Type"].as_str() == Some("AWS::KMS::Key") {
                let arn = stack
                    .attrs
                    .get(&format!("{name}.Arn"))
                    .unwrap_or_else(|| panic!("the test stack has no {name}.Arn"))
                    .clone();
                keys.insert(
                    arn,
                    parse_all(&resource["Properties"]["KeyPolicy"]["Statement"], &name),
                );
                continue;
            }
            if resource["Type"].as_str() == Some("AWS::Events::EventBus") {
                let arn = stack.attrs[&format!("{name}.Arn")].clone();
                let list = resource["Properties"]["Policy"]["Statement"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| match s {
                        // `!If [cond, statement, !Ref AWS::NoValue]`
                        Yaml::Tagged(t) if t.tag == "If" => {
                            let p = t.value.as_sequence().unwrap();
                            let pick = if condition(p[0].as_str().unwrap(), template, stack) {
                                &p[1]
                            } else {
                                &p[2]
                            };
                            match pick {
                                Yaml::Tagged(r) if r.tag == "Ref" => None,
                                s => Some(Statement::parse(s, template, stack, &name)),
                            }
                        }
                        s => Some(Statement::parse(s, template, stack, &name)),
                    })
                    .collect();
                buses.insert(arn, list);
                continue;
            }
            if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
                continue;
            }
            let props = &resource["Properties"];
            let (list, role) = match &props["Role"] {
                Yaml::Null => {
                    let mut list = Vec::new();
                    for policy in props["Policies"].as_sequence().into_iter().flatten() {
                        list.extend(parse_all(&policy["Statement"], &name));
                    }
                    // SAM makes the role; CloudFormation names it.
                    let arn = format!(
                        "arn:aws:iam::{ACCOUNT}:role/{}-{name}Role-GENERATED",
                        lookup_ref("AWS::StackName", stack)
                    );
                    (list, arn)
                }
                Yaml::Tagged(t) => {
                    let role = match &t.value {
                        Yaml::String(s) => s.trim_end_matches(".Arn").to_owned(),
                        other => panic!("{name}: Role {other:?}"),
                    };
                    let r = &resources[role.as_str()]["Properties"];
                    let mut list = Vec::new();
                    for policy in r["Policies"].as_sequence().into_iter().flatten() {
                        list.extend(parse_all(&policy["PolicyDocument"]["Statement"], &role));
                    }
                    let role_name = resolve(&r["RoleName"], template, stack).one();
                    (list, format!("arn:aws:iam::{ACCOUNT}:role/{role_name}"))
                }
                other => panic!("{name}: Role {other:?}"),
            };
            let mut env = globals.clone();
            env.extend(env_of(props, template, stack));
            environment.insert(name.clone(), env);
            roles.insert(name.clone(), role);
            statements.insert(name, list);
        }
        Self {
            statements,
            roles,
            environment,
            keys,
            buses,
        }
    }

    /// A principal that is not one of the stack's functions (the console, an intruder): `name`
    /// is its access key in the gate, `arn` its ARN, allowed `actions` on every resource by IAM.
    pub fn with_principal(mut self, name: &str, arn: &str, actions: &[&str]) -> Self {
        self.statements.insert(
            name.to_owned(),
            vec![Statement {
                effect: Effect::Allow,
                actions: actions.iter().map(|a| (*a).to_owned()).collect(),
                resources: vec!["*".to_owned()],
                principal: None,
                conditions: vec![],
            }],
        );
        self.roles.insert(name.to_owned(), arn.to_owned());
        self
    }

    /// The functions (SAM logical ids).
    pub fn functions(&self) -> impl Iterator<Item = &str> {
        self.statements.keys().map(String::as_str)
    }

    /// The ARN of `function`'s role.
    /// Every action `function`'s role allows (as written), lower-cased.
    pub fn granted(&self, function: &str) -> BTreeSet<String> {
        self.statements
            .get(function)
            .into_iter()
            .flatten()
            .filter(|s| s.effect == Effect::Allow)
            .flat_map(|s| s.actions.iter().map(|a| a.to_ascii_lowercase()))
            .collect()
    }

    pub fn role_arn(&self, function: &str) -> &str {
        &self.roles[function]
    }

    /// The actions `function`'s role is granted (anywhere).
    pub fn actions(&self, function: &str) -> BTreeSet<String> {
        self.statements[function]
            .iter()
            .filter(|s| s.effect == Effect::Allow)
            .flat_map(|s| s.actions.iter().cloned())
            .collect()
    }

    /// The environment variables `function` gets from the template (globals and its own).
    pub fn environment(&self, function: &str) -> &BTreeMap<String, String> {
        self.environment
            .get(function)
            .unwrap_or_else(|| panic!("no function {function} in the template"))
    }

    /// Takes `action` out of the statements of `function` on resources containing `fragment`.
    pub fn without_on(mut self, function: &str, action: &str, fragment: &str) -> Self {
        let list = self.statements.get_mut(function).unwrap();
        let mut taken = false;
        for s in list
            .iter_mut()
            .filter(|s| s.resources.iter().any(|r| r.contains(fragment)))
        {
            let before = s.actions.len();
            s.actions.retain(|a| !a.eq_ignore_ascii_case(action));
            taken |= s.actions.len() < before;
        }
        assert!(taken, "{function} was not granted {action} on {fragment}");
        self
    }

    /// Takes `action` out of every statement of `function` (to see a test fail without it).
    pub fn without(mut self, function: &str, action: &str) -> Self {
        let list = self.statements.get_mut(function).unwrap();
        let before: usize = list.iter().map(|s| s.actions.len()).sum();
        for s in list.iter_mut() {
            s.actions.retain(|a| !a.eq_ignore_ascii_case(action));
        }
        let after: usize = list.iter().map(|s| s.actions.len()).sum();
        assert!(after < before, "{function} was not granted {action}");
        self
    }

    /// The role's policy and, for a call on one of the stack's keys, the key policy as well.
    pub fn evaluate(&self, function: &str, action: &str, resource: &str) -> Verdict {
        self.evaluate_in(function, action, resource, None)
    }

    pub fn evaluate_in(
        &self,
        function: &str,
        action: &str,
        resource: &str,
        via_service: Option<&str>,
    ) -> Verdict {
        self.evaluate_with(function, action, resource, via_service, None)
    }

    /// With the request's context: `via_service` (KMS through Secrets Manager), `source` (an
    /// event put).
    pub fn evaluate_with(
        &self,
        function: &str,
        action: &str,
        resource: &str,
        via_service: Option<&str>,
        source: Option<&str>,
    ) -> Verdict {
        let Some(list) = self.statements.get(function) else {
            return Verdict::NotAllowed;
        };
        let context = Context {
            principal_arn: self.roles[function].clone(),
            via_service: via_service.map(str::to_owned),
            source: source.map(str::to_owned),
        };
        let identity = verdict(list.iter().filter(|s| s.applies(action, resource, &context)));
        if self.keys.contains_key(resource) {
            // A key policy must allow, as well as IAM.
            return match (identity, self.key_policy(resource, action, &context)) {
                (Verdict::Denied, _) | (_, Verdict::Denied) => Verdict::Denied,
                (Verdict::Allowed, Verdict::Allowed) => Verdict::Allowed,
                _ => Verdict::NotAllowed,
            };
        }
        if let Some(policy) = self.buses.get(resource) {
            // Within the account, IAM or the bus's policy may allow; a Deny in either wins.
            let bus = verdict(policy.iter().filter(|s| s.applies(action, resource, &context)));
            return match (identity, bus) {
                (Verdict::Denied, _) | (_, Verdict::Denied) => Verdict::Denied,
                (Verdict::Allowed, _) | (_, Verdict::Allowed) => Verdict::Allowed,
                _ => Verdict::NotAllowed,
            };
        }
        identity
    }

    /// The key policy of `key` alone, for a principal in the account.
    pub fn key_policy(&self, key: &str, action: &str, context: &Context) -> Verdict {
        verdict(
            self.keys[key]
                .iter()
                .filter(|s| s.applies(action, "*", context) || s.applies(action, key, context)),
        )
    }
}

fn env_of(properties: &Yaml, template: &Yaml, stack: &Stack) -> BTreeMap<String, String> {
    properties["Environment"]["Variables"]
        .as_mapping()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str().unwrap().to_owned(), resolve(v, template, stack).one()))
        .collect()
}
