//! API keys and customer tokens: issue, list, revoke, and turn a bearer
//! secret into a [`Principal`].
//!
//! A key reads `igk_<id>_<secret>` (a customer token `igc_<id>_<secret>`).
//! The store keeps only HMAC-SHA256 of the secret under the store's secret,
//! a random 32 bytes in `<db>.secret` beside the store (mode 0600), so
//! neither the store file nor a copy of it holds a usable credential.
//! Secrets are compared in constant time (`Mac::verify_slice`). Every
//! refusal says the same thing, so a caller cannot tell an unknown key from
//! a revoked or expired one.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use infogap_store::KeyRecord;
use infogap_store::audit::hex;
use serde::Serialize;
use sha2::Sha256;

use crate::access::{Policy, Principal, PrincipalKind};
use crate::{Engine, EngineError};

type HmacSha256 = Hmac<Sha256>;

/// The message of every refused credential.
pub const REFUSED: &str = "missing, unknown, expired or revoked credentials";

/// The secret file beside a store.
pub fn secret_path(store: &Path) -> PathBuf {
    let mut s = store.as_os_str().to_owned();
    s.push(".secret");
    PathBuf::from(s)
}

/// The store's secret (32 bytes), read from its file or created there.
#[derive(Clone)]
pub struct Secret([u8; 32]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A secret from its bytes (derived from the store's data key).
    pub fn from_bytes(bytes: [u8; 32]) -> Secret {
        Secret(bytes)
    }

    /// A random secret (for stores without a file: tests, in-memory).
    pub fn random() -> Secret {
        Secret(rand::random())
    }

    /// Reads the secret file, creating it (mode 0600) when `create`.
    pub fn load(path: &Path, create: bool) -> Result<Secret, EngineError> {
        let io = |e: std::io::Error| EngineError::Io {
            path: path.display().to_string(),
            source: e,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes = from_hex(text.trim())
                    .filter(|b| b.len() == 32)
                    .ok_or_else(|| {
                        EngineError::Invalid(format!(
                            "{}: not a store secret (64 hex digits expected)",
                            path.display()
                        ))
                    })?;
                let mut s = [0u8; 32];
                s.copy_from_slice(&bytes);
                Ok(Secret(s))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let s = Secret::random();
                write_private(path, &hex(&s.0)).map_err(io)?;
                Ok(s)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(EngineError::Invalid(format!(
                    "{}: the store's secret is missing, so no key of this store can be checked",
                    path.display()
                )))
            }
            Err(e) => Err(io(e)),
        }
    }

    fn mac(&self, secret: &str) -> HmacSha256 {
        // HMAC takes a key of any length: this cannot fail
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        m.update(secret.as_bytes());
        m
    }

    /// A 32-byte key derived for one purpose (`domain`) from this secret
    /// and `data`: HMAC-SHA256(secret, domain ‖ 0 ‖ data). A webhook's
    /// signing secret is derived so; only its salt is stored.
    pub fn derive(&self, domain: &str, data: &[u8]) -> [u8; 32] {
        let mut m = self.mac(domain);
        m.update(&[0]);
        m.update(data);
        m.finalize().into_bytes().into()
    }

    /// The keyed hash kept in the store.
    pub fn hash(&self, secret: &str) -> Vec<u8> {
        self.mac(secret).finalize().into_bytes().to_vec()
    }

    /// Constant-time check of a presented secret against a stored hash.
    pub fn verify(&self, secret: &str, stored: &[u8]) -> bool {
        self.mac(secret).verify_slice(stored).is_ok()
    }
}

/// Writes a file readable by its owner only, atomically.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("secret.tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

pub(crate) fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// A duration such as `30d`, `12h`, `90m`, `45s`.
pub fn parse_duration(s: &str) -> Result<i64, EngineError> {
    let s = s.trim();
    let bad = || {
        EngineError::Invalid(format!(
            "duration {s:?}: expected a number and a unit, e.g. 30d, 12h, 90m, 45s"
        ))
    };
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num.parse().map_err(|_| bad())?;
    if n <= 0 {
        return Err(bad());
    }
    let mult = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A key as listed (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    /// Public id.
    pub id: String,
    /// `key` or `customer`.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Department.
    pub department: Option<String>,
    /// Source (role `source`).
    pub source: Option<String>,
    /// Customer (customer tokens).
    pub customer: Option<i64>,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Expires (RFC 3339).
    pub expires_at: Option<String>,
    /// Revoked (RFC 3339).
    pub revoked_at: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub status: String,
}

/// A newly issued key: the only time its secret is shown.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedKey {
    /// The bearer secret.
    pub key: String,
    /// Public id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Department.
    pub department: Option<String>,
    /// Expires (RFC 3339).
    pub expires_at: Option<String>,
}

/// A newly issued customer token.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedToken {
    /// The bearer token.
    pub token: String,
    /// Public id.
    pub id: String,
    /// The customer it acts as.
    pub customer: i64,
    /// Expires (RFC 3339).
    pub expires_at: Option<String>,
}

pub(crate) fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn info(k: &KeyRecord, now: i64) -> KeyInfo {
    let status = if k.revoked_at.is_some() {
        "revoked"
    } else if k.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    };
    KeyInfo {
        id: k.id.clone(),
        kind: k.kind.clone(),
        name: k.name.clone(),
        role: k.role.clone(),
        department: k.department.clone(),
        source: k.source.clone(),
        customer: k.customer_id,
        created_at: rfc3339(k.created_at),
        expires_at: k.expires_at.map(rfc3339),
        revoked_at: k.revoked_at.map(rfc3339),
        status: status.into(),
    }
}

/// What `keys create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Department.
    pub department: Option<String>,
    /// Source (role `source`).
    pub source: Option<String>,
    /// Lifetime (`30d`).
    pub expires: Option<String>,
}

impl Engine {
    /// The store's secret: loaded once, created beside a new store.
    pub fn secret(&self) -> Result<Secret, EngineError> {
        if let Some(s) = self.secret.get() {
            return Ok(s.clone());
        }
        let s = match &self.db_path {
            Some(p) => Secret::load(&secret_path(p), true)?,
            None => Secret::random(),
        };
        Ok(self.secret.get_or_init(|| s).clone())
    }

    /// Issues a staff or source key.
    pub fn create_key(&self, policy: &Policy, req: &NewKey) -> Result<IssuedKey, EngineError> {
        let name = req.name.trim();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(EngineError::Invalid(
                "--name must be 1-100 printable characters".into(),
            ));
        }
        policy.check_role(&req.role)?;
        if req.role == "customer" {
            return Err(EngineError::Invalid(
                "a customer acts through `infogap customer token KEY`, not a key".into(),
            ));
        }
        let sources: Vec<String> = self.store.sources()?.into_iter().map(|s| s.name).collect();
        if let Some(d) = &req.department
            && policy.department_sources(d, &sources).is_none()
        {
            let mut known: Vec<String> = policy.departments().keys().cloned().collect();
            known.extend(sources.iter().cloned());
            return Err(EngineError::Invalid(format!(
                "unknown department {d:?}; departments: {}",
                known.join(", ")
            )));
        }
        if req.role == "source" && req.source.is_none() {
            return Err(EngineError::Invalid(
                "a key of role source needs --source NAME".into(),
            ));
        }
        let expires_at = req
            .expires
            .as_deref()
            .map(parse_duration)
            .transpose()?
            .map(|d| now() + d);
        let (id, secret, full) = new_credential("igk");
        let rec = KeyRecord {
            id: id.clone(),
            kind: "key".into(),
            name: name.to_string(),
            role: req.role.clone(),
            department: req.department.clone(),
            source: req.source.clone(),
            customer_id: None,
            secret_hash: self.secret()?.hash(&secret),
            created_at: now(),
            expires_at,
            revoked_at: None,
        };
        self.store.create_key(&rec)?;
        Ok(IssuedKey {
            key: full,
            id,
            name: rec.name,
            role: rec.role,
            department: rec.department,
            expires_at: expires_at.map(rfc3339),
        })
    }

    /// Issues a token that acts only as one customer.
    pub fn customer_token(
        &self,
        customer: i64,
        expires: Option<&str>,
    ) -> Result<IssuedToken, EngineError> {
        let expires_at = now() + parse_duration(expires.unwrap_or("1h"))?;
        let (id, secret, full) = new_credential("igc");
        let rec = KeyRecord {
            id: id.clone(),
            kind: "customer".into(),
            name: format!("customer #{customer}"),
            role: "customer".into(),
            department: None,
            source: None,
            customer_id: Some(customer),
            secret_hash: self.secret()?.hash(&secret),
            created_at: now(),
            expires_at: Some(expires_at),
            revoked_at: None,
        };
        self.store.create_key(&rec)?;
        Ok(IssuedToken {
            token: full,
            id,
            customer,
            expires_at: Some(rfc3339(expires_at)),
        })
    }

    /// Every key and token (never a secret).
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>, EngineError> {
        let t = now();
        Ok(self.store.keys()?.iter().map(|k| info(k, t)).collect())
    }

    /// Revokes a key or token by id.
    pub fn revoke_key(&self, id: &str) -> Result<KeyInfo, EngineError> {
        let rec = self
            .store
            .key(id)?
            .ok_or_else(|| EngineError::NotFound(format!("no key with id {id:?}")))?;
        if rec.revoked_at.is_some() {
            return Err(EngineError::Invalid(format!(
                "key {id:?} is already revoked"
            )));
        }
        self.store.revoke_key(id, now())?;
        let rec = self.store.key(id)?.unwrap_or(rec);
        Ok(info(&rec, now()))
    }

    /// Turns a bearer secret into the principal it belongs to, or
    /// `Unauthorized` (the same message whatever was wrong).
    pub fn authenticate(&self, bearer: &str, origin: &str) -> Result<Principal, EngineError> {
        let refused = || EngineError::Unauthorized(REFUSED.into());
        let (prefix, id, secret) = parse_credential(bearer, &["igk", "igc"]).ok_or_else(refused)?;
        let rec = self.store.key(id)?.ok_or_else(refused)?;
        let kind_ok = (prefix == "igk") == (rec.kind == "key");
        let ok = self.secret()?.verify(secret, &rec.secret_hash);
        if !ok || !kind_ok || rec.revoked_at.is_some() || rec.expires_at.is_some_and(|e| e <= now())
        {
            return Err(refused());
        }
        let kind = match (rec.kind.as_str(), rec.role.as_str()) {
            ("customer", _) => PrincipalKind::Customer,
            (_, "source") => PrincipalKind::Source,
            _ => PrincipalKind::Key,
        };
        Ok(Principal {
            name: rec.name,
            kind,
            role: rec.role,
            department: rec.department,
            customer: rec.customer_id,
            source: rec.source,
            origin: origin.to_string(),
            request_id: None,
        })
    }
}

/// A new (id, secret, full credential) with the given prefix: 16 hex
/// digits of public id, 64 of secret.
pub(crate) fn new_credential(prefix: &str) -> (String, String, String) {
    let id = hex(&rand::random::<[u8; 8]>());
    let secret = hex(&rand::random::<[u8; 32]>());
    let full = format!("{prefix}_{id}_{secret}");
    (id, secret, full)
}

/// Splits a credential `<prefix>_<id>_<secret>` as [`new_credential`]
/// makes it, when its prefix is one of `prefixes` and its parts have their
/// shape; `None` otherwise (the caller refuses without saying why).
pub(crate) fn parse_credential<'a>(
    s: &'a str,
    prefixes: &[&str],
) -> Option<(&'a str, &'a str, &'a str)> {
    let (prefix, rest) = s.split_once('_')?;
    let (id, secret) = rest.split_once('_')?;
    let hex_of = |t: &str, n: usize| t.len() == n && t.bytes().all(|c| c.is_ascii_hexdigit());
    (prefixes.contains(&prefix) && hex_of(id, 16) && hex_of(secret, 64))
        .then_some((prefix, id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d").ok(), Some(30 * 86_400));
        assert_eq!(parse_duration("1h").ok(), Some(3_600));
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("99999999999999999d").is_err());
    }

    #[test]
    fn credentials_parse_only_with_their_prefix_and_shape() {
        let (id, secret, full) = new_credential("igs");
        assert_eq!(
            parse_credential(&full, &["igs"]),
            Some(("igs", id.as_str(), secret.as_str()))
        );
        assert_eq!(parse_credential(&full, &["igl", "igk"]), None);
        assert_eq!(parse_credential(&full[..full.len() - 1], &["igs"]), None);
        assert_eq!(parse_credential(&full.replace('_', "-"), &["igs"]), None);
        let bad = format!("igs_{id}_{}", "z".repeat(64));
        assert_eq!(parse_credential(&bad, &["igs"]), None);
    }

    #[test]
    fn keyed_hash_verifies_only_the_secret() {
        let s = Secret::random();
        let h = s.hash("abc");
        assert!(s.verify("abc", &h));
        assert!(!s.verify("abd", &h));
        assert!(!Secret::random().verify("abc", &h));
    }
}
