//! Credentials as the store keeps them: never the secret, only its SHA-256
//! hash and the parts a person needs to recognise it (prefix, last four), with
//! lifetime, client IP ranges and the restriction that narrows it.
//!
//! Also the organization's lifetime settings and the hygiene report: the
//! checks a security team runs over every credential to find the risky ones.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::{Error, Principal, PrincipalKind, PrincipalRef, Restriction, Status, Ttl, UnixTime};

/// SHA-256 of a secret: the only form in which secrets are stored.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Parses a client IP range: CIDR, or a single address (a /32 or /128).
pub fn parse_ip_range(text: &str) -> Result<IpNet, Error> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| Error::InvalidIpRange(text.to_owned()))
}

/// A credential's metadata. The secret itself is never here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Credential {
    /// Stable identifier, e.g. `tok_...`.
    pub id: String,
    /// The token kind code, e.g. `ut`, `at`.
    pub kind: String,
    /// The visible prefix, e.g. `lzat_`.
    pub prefix: String,
    /// The last four characters, to recognise it.
    pub last4: String,
    /// Whose credential it is.
    pub principal_id: String,
    /// The credential's own narrowing below its principal's policies.
    pub restriction: Restriction,
    /// Client IP ranges it may be used from; empty means anywhere.
    #[schema(value_type = Vec<String>)]
    pub allowed_ips: Vec<IpNet>,
    /// Free text for people.
    pub description: String,
    /// When it was created.
    pub created_at: UnixTime,
    /// When it stops working; `None` only for credentials imported without one.
    pub expires_at: Option<UnixTime>,
    /// When it last authenticated a request (updated at most once a minute).
    pub last_used_at: Option<UnixTime>,
    /// When it was revoked.
    pub revoked_at: Option<UnixTime>,
}

/// Whether a credential can be used now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CredentialState {
    /// Usable (subject to its principal's status and IP ranges).
    Active,
    /// Past its expiry.
    Expired,
    /// Revoked.
    Revoked,
}

impl Credential {
    /// The metadata of `token`, just issued to `principal_id` at `now` for
    /// `lifetime`: unrestricted below its principal, usable from anywhere.
    pub fn issued(
        id: String,
        token: &laissez_token::Token,
        principal_id: &str,
        lifetime: Ttl,
        now: UnixTime,
        description: &str,
    ) -> Credential {
        Credential {
            id,
            kind: token.kind().code().into(),
            prefix: token.prefix().into(),
            last4: token.last4().into(),
            principal_id: principal_id.to_owned(),
            restriction: Restriction {
                role: None,
                scope: None,
                permissions: None,
            },
            allowed_ips: Vec::new(),
            description: description.to_owned(),
            created_at: now,
            expires_at: Some(now + lifetime.seconds()),
            last_used_at: None,
            revoked_at: None,
        }
    }

    /// Its state at `now`.
    pub fn state(&self, now: UnixTime) -> CredentialState {
        if self.revoked_at.is_some() {
            CredentialState::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now) {
            CredentialState::Expired
        } else {
            CredentialState::Active
        }
    }

    /// Whether a request from `ip` may use it.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.allowed_ips.is_empty() || self.allowed_ips.iter().any(|net| net.contains(&ip))
    }
}

/// Organization-wide rules: credential lifetimes and how people sign in.
/// Accounts cannot weaken them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Settings {
    /// Lifetime of a credential created without `ttl`.
    pub default_ttl: Ttl,
    /// No credential may be created or rolled with a longer lifetime.
    pub max_ttl: Ttl,
    /// People sign in only through the organization's upstream OpenID
    /// Connect provider: local passwords are refused for every account.
    #[serde(default)]
    pub require_federated_login: bool,
    /// A Laissez token reported leaked in a private place (an internal
    /// repository, internal traffic) is revoked too, not only flagged.
    /// Leaks in public places are always revoked.
    #[serde(default)]
    pub revoke_private_leaks: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            default_ttl: Ttl::from_seconds(3600).unwrap_or_else(|| unreachable!()),
            max_ttl: Ttl::from_seconds(90 * 86_400).unwrap_or_else(|| unreachable!()),
            require_federated_login: false,
            revoke_private_leaks: false,
        }
    }
}

impl Settings {
    /// The lifetime to give a credential asked for with `requested`.
    pub fn lifetime(&self, requested: Option<Ttl>) -> Result<Ttl, TtlTooLong> {
        let ttl = requested.unwrap_or(self.default_ttl.min(self.max_ttl));
        if ttl > self.max_ttl {
            return Err(TtlTooLong {
                requested: ttl,
                max: self.max_ttl,
            });
        }
        Ok(ttl)
    }

    /// Checks the settings are coherent.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.default_ttl > self.max_ttl {
            return Err("default_ttl must not exceed max_ttl");
        }
        Ok(())
    }
}

/// A credential was asked for with a lifetime over the organization maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TtlTooLong {
    /// What was asked for.
    pub requested: Ttl,
    /// The organization maximum.
    pub max: Ttl,
}

/// One finding of the hygiene report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum Finding {
    /// A principal whose owner is inactive (its credentials are suspended).
    OwnerInactive {
        /// The orphaned principal.
        principal: PrincipalRef,
        /// Its inactive owner.
        owner: PrincipalRef,
    },
    /// A live credential not used for at least the threshold.
    Unused {
        /// The credential.
        credential_id: String,
        /// Its principal.
        principal: PrincipalRef,
        /// Days since last use.
        days: i64,
    },
    /// A live credential that has never authenticated anything.
    NeverUsed {
        /// The credential.
        credential_id: String,
        /// Its principal.
        principal: PrincipalRef,
        /// Days since creation.
        age_days: i64,
    },
    /// A live credential that never expires.
    NoExpiry {
        /// The credential.
        credential_id: String,
        /// Its principal.
        principal: PrincipalRef,
    },
    /// A live credential that expires within the digest's horizon: whatever
    /// uses it needs a new one soon.
    ExpiringSoon {
        /// The credential.
        credential_id: String,
        /// Its principal.
        principal: PrincipalRef,
        /// Whole days left (0: expires within a day).
        days_left: i64,
    },
    /// A live credential whose lifetime exceeds the organization maximum.
    OverMaxLifetime {
        /// The credential.
        credential_id: String,
        /// Its principal.
        principal: PrincipalRef,
        /// Its lifetime in seconds.
        lifetime_seconds: i64,
    },
}

impl Finding {
    /// The principal the finding is about.
    pub fn principal(&self) -> &PrincipalRef {
        match self {
            Finding::OwnerInactive { principal, .. }
            | Finding::Unused { principal, .. }
            | Finding::NeverUsed { principal, .. }
            | Finding::NoExpiry { principal, .. }
            | Finding::ExpiringSoon { principal, .. }
            | Finding::OverMaxLifetime { principal, .. } => principal,
        }
    }
}

/// Live credentials that expire within `within_days` days.
pub fn expiring(
    principals: &[Principal],
    credentials: &[Credential],
    within_days: i64,
    now: UnixTime,
) -> Vec<Finding> {
    const DAY: i64 = 86_400;
    let by_id: std::collections::HashMap<&str, &Principal> =
        principals.iter().map(|p| (p.id.as_str(), p)).collect();
    credentials
        .iter()
        .filter(|c| c.state(now) == CredentialState::Active)
        .filter_map(|c| {
            let expires = c.expires_at?;
            let principal = by_id.get(c.principal_id.as_str())?;
            (expires - now <= within_days * DAY).then(|| Finding::ExpiringSoon {
                credential_id: c.id.clone(),
                principal: principal.reference(),
                days_left: (expires - now) / DAY,
            })
        })
        .collect()
}

/// Who hears of each finding, in a digest per person: a user's own
/// credentials go to that user; a service's or agent's to its owner while
/// the owner is active. What has no active owner (a principal whose owner
/// left, and every finding about it) goes to `stewards`, the people who can
/// hand it over to someone else. Findings about unknown principals are
/// dropped (nobody answers for them).
pub fn digests(
    findings: Vec<Finding>,
    principals: &[Principal],
    stewards: &[String],
) -> std::collections::BTreeMap<String, Vec<Finding>> {
    let by_id: std::collections::HashMap<&str, &Principal> =
        principals.iter().map(|p| (p.id.as_str(), p)).collect();
    let active_user = |id: &str| {
        by_id
            .get(id)
            .is_some_and(|p| p.kind == PrincipalKind::User && p.status == Status::Active)
    };
    let mut digests: std::collections::BTreeMap<String, Vec<Finding>> = Default::default();
    for finding in findings {
        let Some(principal) = by_id.get(finding.principal().id.as_str()) else {
            continue;
        };
        let answerer = match (&finding, principal.kind) {
            (Finding::OwnerInactive { .. }, _) => None,
            (_, PrincipalKind::User) => Some(principal.id.clone()).filter(|id| active_user(id)),
            _ => principal.owner_id.clone().filter(|id| active_user(id)),
        };
        match answerer {
            Some(id) => digests.entry(id).or_default().push(finding),
            None => {
                for steward in stewards.iter().filter(|id| active_user(id)) {
                    digests
                        .entry(steward.clone())
                        .or_default()
                        .push(finding.clone());
                }
            }
        }
    }
    digests
}

/// Builds the hygiene report over every principal and every live credential.
/// `unused_days` is the threshold for [`Finding::Unused`].
pub fn hygiene(
    principals: &[Principal],
    credentials: &[Credential],
    settings: &Settings,
    unused_days: i64,
    now: UnixTime,
) -> Vec<Finding> {
    let by_id: std::collections::HashMap<&str, &Principal> =
        principals.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut findings = Vec::new();
    for principal in principals {
        if let Some(owner) = principal.owner_id.as_deref().and_then(|id| by_id.get(id))
            && owner.status == Status::Inactive
        {
            findings.push(Finding::OwnerInactive {
                principal: principal.reference(),
                owner: owner.reference(),
            });
        }
    }
    const DAY: i64 = 86_400;
    for credential in credentials
        .iter()
        .filter(|c| c.state(now) == CredentialState::Active)
    {
        let Some(principal) = by_id
            .get(credential.principal_id.as_str())
            .map(|p| p.reference())
        else {
            continue;
        };
        let id = || credential.id.clone();
        match credential.last_used_at {
            None => findings.push(Finding::NeverUsed {
                credential_id: id(),
                principal: principal.clone(),
                age_days: (now - credential.created_at) / DAY,
            }),
            Some(used) if now - used >= unused_days * DAY => findings.push(Finding::Unused {
                credential_id: id(),
                principal: principal.clone(),
                days: (now - used) / DAY,
            }),
            Some(_) => {}
        }
        match credential.expires_at {
            None => findings.push(Finding::NoExpiry {
                credential_id: id(),
                principal,
            }),
            Some(expires) if expires - credential.created_at > settings.max_ttl.seconds() => {
                findings.push(Finding::OverMaxLifetime {
                    credential_id: id(),
                    principal,
                    lifetime_seconds: expires - credential.created_at,
                })
            }
            Some(_) => {}
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Name, PrincipalKind};

    fn principal(id: &str, kind: PrincipalKind, owner: Option<&str>, status: Status) -> Principal {
        Principal {
            id: id.into(),
            kind,
            name: Name::parse(id, "name").unwrap(),
            owner_id: owner.map(Into::into),
            parent_id: None,
            status,
            description: String::new(),
            created_at: 0,
        }
    }

    fn credential(
        id: &str,
        principal: &str,
        created: i64,
        expires: Option<i64>,
        used: Option<i64>,
    ) -> Credential {
        Credential {
            id: id.into(),
            kind: "at".into(),
            prefix: "lzat_".into(),
            last4: "abcd".into(),
            principal_id: principal.into(),
            restriction: Restriction {
                role: None,
                scope: None,
                permissions: None,
            },
            allowed_ips: Vec::new(),
            description: String::new(),
            created_at: created,
            expires_at: expires,
            last_used_at: used,
            revoked_at: None,
        }
    }

    #[test]
    fn ip_ranges() {
        let mut c = credential("t", "p", 0, None, None);
        assert!(c.allows_ip("192.0.2.1".parse().unwrap()));
        c.allowed_ips = vec![
            parse_ip_range("10.0.0.0/8").unwrap(),
            parse_ip_range("2001:db8::1").unwrap(),
        ];
        assert!(c.allows_ip("10.1.2.3".parse().unwrap()));
        assert!(c.allows_ip("::ffff:10.1.2.3".parse().unwrap()));
        assert!(c.allows_ip("2001:db8::1".parse().unwrap()));
        assert!(!c.allows_ip("2001:db8::2".parse().unwrap()));
        assert!(!c.allows_ip("11.0.0.1".parse().unwrap()));
        assert!(parse_ip_range("10.0.0.0/33").is_err());
        assert!(parse_ip_range("nope").is_err());
    }

    #[test]
    fn states() {
        let mut c = credential("t", "p", 0, Some(100), None);
        assert_eq!(c.state(99), CredentialState::Active);
        assert_eq!(c.state(100), CredentialState::Expired);
        c.revoked_at = Some(50);
        assert_eq!(c.state(10), CredentialState::Revoked);
    }

    #[test]
    fn lifetimes() {
        let s = Settings::default();
        assert_eq!(s.lifetime(None).unwrap().seconds(), 3600);
        assert!(s.lifetime(Some(Ttl::parse("91d").unwrap())).is_err());
        assert_eq!(
            s.lifetime(Some(Ttl::parse("90d").unwrap()))
                .unwrap()
                .seconds(),
            90 * 86_400
        );
    }

    #[test]
    fn hygiene_report() {
        let day = 86_400;
        let now = 100 * day;
        let principals = vec![
            principal("alice", PrincipalKind::User, None, Status::Inactive),
            principal("bob", PrincipalKind::User, None, Status::Active),
            principal("bot", PrincipalKind::Agent, Some("alice"), Status::Active),
            principal("ci", PrincipalKind::Service, Some("bob"), Status::Active),
        ];
        let mut revoked = credential("t5", "ci", 0, None, None);
        revoked.revoked_at = Some(1);
        let credentials = vec![
            credential("t1", "ci", now - day, Some(now + day), Some(now - 60)),
            credential(
                "t2",
                "ci",
                now - 50 * day,
                Some(now + day),
                Some(now - 40 * day),
            ),
            credential("t3", "ci", now - 2 * day, Some(now + 200 * day), Some(now)),
            credential("t4", "ci", now - day, None, Some(now)),
            revoked,
            credential("t6", "ci", now - 3 * day, Some(now + day), None),
        ];
        let findings = hygiene(&principals, &credentials, &Settings::default(), 30, now);
        let kinds: Vec<String> = findings
            .iter()
            .map(|f| {
                serde_json::to_value(f).unwrap()["finding"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "owner_inactive",
                "unused",
                "over_max_lifetime",
                "no_expiry",
                "never_used"
            ]
        );
    }

    #[test]
    fn digests_go_to_whoever_answers_and_orphans_to_the_stewards() {
        let day = 86_400;
        let now = 100 * day;
        let principals = vec![
            principal("alice", PrincipalKind::User, None, Status::Inactive),
            principal("bob", PrincipalKind::User, None, Status::Active),
            principal("carol", PrincipalKind::User, None, Status::Active),
            principal("root", PrincipalKind::User, None, Status::Active),
            principal("gone", PrincipalKind::User, None, Status::Inactive),
            principal("bot", PrincipalKind::Agent, Some("alice"), Status::Active),
            principal("ci", PrincipalKind::Service, Some("bob"), Status::Active),
        ];
        let credentials = vec![
            // bob's service: expires tomorrow; in 20 days; never; revoked.
            credential("t1", "ci", now - day, Some(now + day), Some(now)),
            credential("t2", "ci", now - day, Some(now + 20 * day), Some(now)),
            credential("t3", "ci", now - day, None, Some(now)),
            // carol's own token, expiring today.
            credential("t4", "carol", now - day, Some(now + 60), Some(now)),
            // alice left: her agent's token has nobody but the stewards.
            credential("t5", "bot", now - day, Some(now + 200 * day), Some(now)),
        ];
        let mut findings = hygiene(&principals, &credentials, &Settings::default(), 30, now);
        let soon = expiring(&principals, &credentials, 7, now);
        assert_eq!(
            soon.iter()
                .map(|f| match f {
                    Finding::ExpiringSoon {
                        credential_id,
                        days_left,
                        ..
                    } => (credential_id.as_str(), *days_left),
                    _ => ("?", -1),
                })
                .collect::<Vec<_>>(),
            [("t1", 1), ("t4", 0)]
        );
        findings.extend(soon);
        // "gone" is a steward no longer active: told nothing.
        let digests = digests(findings, &principals, &["root".into(), "gone".into()]);
        let ids = |owner: &str| -> Vec<String> {
            digests[owner]
                .iter()
                .map(|f| {
                    let v = serde_json::to_value(f).unwrap();
                    format!(
                        "{}:{}",
                        v["finding"].as_str().unwrap(),
                        v["credential_id"].as_str().unwrap_or(&f.principal().id)
                    )
                })
                .collect()
        };
        assert_eq!(digests.keys().collect::<Vec<_>>(), ["bob", "carol", "root"]);
        assert_eq!(ids("bob"), ["no_expiry:t3", "expiring_soon:t1"]);
        assert_eq!(ids("carol"), ["expiring_soon:t4"]);
        assert_eq!(ids("root"), ["owner_inactive:bot", "over_max_lifetime:t5"]);
    }
}
