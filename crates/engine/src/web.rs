//! Authentication of the web pages: staff users with passwords, browser
//! sessions, one-time links and CSRF tokens.
//!
//! It owns who may open a page, so the pages ask it and nothing else: a
//! session cookie becomes the same [`Principal`] an API key would, and the
//! policy decides from there.
//!
//! Credentials have the shape of API keys (`keys.rs`): `<prefix>_<id>_<secret>`,
//! with `igs_` a signed-in session (staff or customer), `igl_` a customer's
//! one-time sign-in link and `igu_` a new user's one-time password-setup
//! link. The prefix and the stored kind must agree, so one kind can never
//! be used as another. The store keeps only the keyed hash of the secret
//! (HMAC-SHA256 under the store's secret, compared in constant time) and,
//! for a password, its Argon2id PHC string. Every refusal says the same
//! thing ([`REFUSED`]); an unknown user name costs the same Argon2
//! verification as a known one. Sign-ins (both ways), sign-outs and issued
//! links are audited; no password, token or personal value is ever in a
//! message or an audit record.

use std::sync::OnceLock;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use infogap_store::audit::hex;
use infogap_store::{SessionRecord, UserRecord};
use serde::Serialize;

use crate::access::{Policy, Principal, PrincipalKind};
use crate::keys::{
    REFUSED, from_hex, new_credential, now, parse_credential, parse_duration, rfc3339,
};
use crate::{Engine, EngineError};

/// Lifetime of a staff session (seconds): 12 hours.
pub const STAFF_SESSION_SECS: i64 = 12 * 3_600;
/// Lifetime of a customer session (seconds): 2 hours.
pub const CUSTOMER_SESSION_SECS: i64 = 2 * 3_600;
/// Lifetime of a password-setup link (seconds): 24 hours.
pub const SETUP_LINK_SECS: i64 = 24 * 3_600;
/// Default lifetime of a customer's sign-in link.
pub const DEFAULT_LINK_TTL: &str = "30m";
/// Longest lifetime of a customer's sign-in link (seconds): 7 days.
pub const MAX_LINK_SECS: i64 = 7 * 86_400;
/// Shortest password (characters).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password (characters).
pub const MAX_PASSWORD_CHARS: usize = 1_024;

const SESSION_PREFIX: &str = "igs";
const LINK_PREFIX: &str = "igl";
const SETUP_PREFIX: &str = "igu";

/// What `users create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// Name (1-64 of `A-Z a-z 0-9 . _ @ -`).
    pub name: String,
    /// Role (a staff role of the policy).
    pub role: String,
    /// Department the user is limited to.
    pub department: Option<String>,
}

/// A created user, with the one-time setup link's token when no password
/// was given (the only time it is shown).
#[derive(Clone, Serialize)]
pub struct CreatedUser {
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Department.
    pub department: Option<String>,
    /// The setup token (`igu_…`), when no password was given.
    pub setup_token: Option<String>,
    /// When the setup token expires (RFC 3339).
    pub setup_expires_at: Option<String>,
}

impl std::fmt::Debug for CreatedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedUser")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("department", &self.department)
            .field("setup_token", &self.setup_token.as_ref().map(|_| ".."))
            .field("setup_expires_at", &self.setup_expires_at)
            .finish()
    }
}

/// A user as listed (never a password or its hash).
#[derive(Debug, Clone, Serialize)]
pub struct UserInfo {
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Department.
    pub department: Option<String>,
    /// Whether a password is set (else a setup link is pending).
    pub password_set: bool,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Disabled (RFC 3339), if so.
    pub disabled_at: Option<String>,
    /// `active`, `pending` (no password yet) or `disabled`.
    pub status: String,
}

/// Who a browser session acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// A staff user (the dashboard).
    Staff,
    /// A customer (the portal).
    Customer,
}

impl SessionKind {
    /// The stored kind.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Staff => "staff",
            SessionKind::Customer => "customer",
        }
    }
}

/// A new signed-in session: `cookie` is the secret to set as the cookie's
/// value (shown this once).
#[derive(Clone)]
pub struct WebSession {
    /// The cookie value (`igs_<id>_<secret>`).
    pub cookie: String,
    /// Public id (binds the CSRF token).
    pub id: String,
    /// Staff or customer.
    pub kind: SessionKind,
    /// Expires (Unix seconds).
    pub expires_at: i64,
}

impl std::fmt::Debug for WebSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSession")
            .field("cookie", &"..")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A valid session: who acts, for the policy.
#[derive(Debug, Clone)]
pub struct SessionView {
    /// The principal (staff: kind `key`, name `user:<name>`; customer:
    /// kind `customer`, role `customer`).
    pub principal: Principal,
    /// Public id (binds the CSRF token).
    pub id: String,
    /// Staff or customer.
    pub kind: SessionKind,
    /// The user's name (staff).
    pub user: Option<String>,
    /// Expires (Unix seconds).
    pub expires_at: i64,
}

/// A customer's one-time sign-in link (the token is shown this once).
#[derive(Clone, Serialize)]
pub struct IssuedLink {
    /// The link's token (`igl_…`), to put into `/portal/link?token=`.
    pub token: String,
    /// The customer it signs in.
    pub customer: i64,
    /// Expires (RFC 3339).
    pub expires_at: String,
}

impl std::fmt::Debug for IssuedLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedLink")
            .field("token", &"..")
            .field("customer", &self.customer)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

fn refused() -> EngineError {
    EngineError::Unauthorized(REFUSED.into())
}

/// The principal name of a staff user in the audit trail.
pub fn user_principal_name(name: &str) -> String {
    format!("user:{name}")
}

fn customer_principal_name(customer: i64) -> String {
    format!("customer #{customer}")
}

/// Checks a user name: 1-64 of `A-Z a-z 0-9 . _ @ -`.
pub fn check_user_name(name: &str) -> Result<(), EngineError> {
    if valid_user_name(name) {
        Ok(())
    } else {
        Err(EngineError::Invalid(
            "--name must be 1-64 characters of A-Z, a-z, 0-9, '.', '_', '@', '-'".into(),
        ))
    }
}

fn valid_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'@' | b'-'))
}

/// Checks a new password: 12-1024 characters.
pub fn check_password(password: &str) -> Result<(), EngineError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(EngineError::Invalid(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(EngineError::Invalid(format!(
            "the password must have at most {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// The Argon2id PHC string of a password (random salt, default parameters).
fn hash_password(password: &str) -> Result<String, EngineError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| EngineError::Invariant(format!("hashing a password failed: {e}")))
}

/// Whether `password` matches a stored PHC string (a malformed string
/// matches nothing).
fn verify_password(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// A hash of a random password, verified against when the user does not
/// exist or has no password, so those answers take as long as a wrong
/// password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random = hex(&rand::random::<[u8; 16]>());
        // hashing fails only on a broken RNG or parameters; an empty string
        // then verifies nothing (and the refusal stays the same)
        hash_password(&random).unwrap_or_default()
    })
}

fn user_info(u: &UserRecord) -> UserInfo {
    let status = if u.disabled_at.is_some() {
        "disabled"
    } else if u.password_hash.is_none() {
        "pending"
    } else {
        "active"
    };
    UserInfo {
        name: u.name.clone(),
        role: u.role.clone(),
        department: u.department.clone(),
        password_set: u.password_hash.is_some(),
        created_at: rfc3339(u.created_at),
        disabled_at: u.disabled_at.map(rfc3339),
        status: status.into(),
    }
}

/// The audit principal of a sign-in attempt or a session's action.
fn audit_principal(
    name: String,
    kind: PrincipalKind,
    role: &str,
    department: Option<String>,
    customer: Option<i64>,
    origin: &str,
) -> Principal {
    Principal {
        name,
        kind,
        role: role.to_string(),
        department,
        customer,
        source: None,
        origin: origin.to_string(),
        request_id: None,
    }
}

impl Engine {
    /// Creates a staff user of the web pages (`users create`). With a
    /// password it can sign in at once; without one, the result carries a
    /// one-time setup token valid 24 hours ([`Engine::redeem_setup`]).
    pub fn create_user(
        &self,
        policy: &Policy,
        u: &NewUser,
        password: Option<&str>,
    ) -> Result<CreatedUser, EngineError> {
        let name = u.name.trim();
        check_user_name(name)?;
        policy.check_role(&u.role)?;
        if matches!(u.role.as_str(), "customer" | "source") {
            return Err(EngineError::Invalid(format!(
                "--role {}: users are staff; a customer signs in with `infogap customer link KEY`, a source writes with a key",
                u.role
            )));
        }
        if let Some(d) = &u.department {
            let sources: Vec<String> = self.store.sources()?.into_iter().map(|s| s.name).collect();
            if policy.department_sources(d, &sources).is_none() {
                let mut known: Vec<String> = policy.departments().keys().cloned().collect();
                known.extend(sources);
                return Err(EngineError::Invalid(format!(
                    "--department: unknown department {d:?}; departments: {}",
                    known.join(", ")
                )));
            }
        }
        let password_hash = match password {
            Some(p) => {
                check_password(p)?;
                Some(hash_password(p)?)
            }
            None => None,
        };
        let t = now();
        let rec = UserRecord {
            name: name.to_string(),
            role: u.role.clone(),
            department: u.department.clone(),
            password_hash,
            created_at: t,
            disabled_at: None,
        };
        if !self.store.create_user(&rec)? {
            return Err(EngineError::Invalid(
                "--name: a user of that name exists already".into(),
            ));
        }
        let (setup_token, setup_expires_at) = if rec.password_hash.is_none() {
            let (id, secret, full) = new_credential(SETUP_PREFIX);
            let expires_at = t + SETUP_LINK_SECS;
            self.store.create_session(&SessionRecord {
                id,
                kind: "setup".into(),
                user_name: Some(rec.name.clone()),
                customer_id: None,
                secret_hash: self.secret()?.hash(&secret),
                created_at: t,
                expires_at,
                revoked_at: None,
            })?;
            (Some(full), Some(rfc3339(expires_at)))
        } else {
            (None, None)
        };
        Ok(CreatedUser {
            name: rec.name,
            role: rec.role,
            department: rec.department,
            setup_token,
            setup_expires_at,
        })
    }

    /// Every user, by name (never a password hash).
    pub fn list_users(&self) -> Result<Vec<UserInfo>, EngineError> {
        Ok(self.store.users()?.iter().map(user_info).collect())
    }

    /// Disables a user and revokes their sessions and setup links.
    pub fn disable_user(&self, name: &str) -> Result<(), EngineError> {
        let t = now();
        let done = self.store.disable_user(name, t)?;
        if !done && self.store.user(name)?.is_none() {
            return Err(EngineError::NotFound("no user of that name".into()));
        }
        // also when it was disabled before: nothing of theirs stays live
        self.store.revoke_sessions_of_user(name, t)?;
        if !done {
            return Err(EngineError::Invalid("that user is disabled already".into()));
        }
        Ok(())
    }

    /// Redeems a password-setup token once: sets the password (the same
    /// rules as [`Engine::create_user`]) and signs the user in. A token
    /// that is unknown, expired, used, of another kind, or of a disabled
    /// user is refused; a password that breaks the rules is `Invalid` and
    /// leaves the token usable.
    pub fn redeem_setup(
        &self,
        token: &str,
        password: &str,
        origin: &str,
    ) -> Result<WebSession, EngineError> {
        let rec = self.live_record(token, SETUP_PREFIX, "setup")?;
        let name = rec.user_name.clone().ok_or_else(refused)?;
        let user = self
            .store
            .user(&name)?
            .filter(|u| u.disabled_at.is_none())
            .ok_or_else(refused)?;
        check_password(password)?;
        let hash = hash_password(password)?;
        // the token is spent by exactly one redemption
        if !self.store.revoke_session(&rec.id, now())? {
            return Err(refused());
        }
        if !self.store.set_user_password(&name, &hash)? {
            return Err(refused());
        }
        let p = audit_principal(
            user_principal_name(&name),
            PrincipalKind::Key,
            &user.role,
            user.department.clone(),
            None,
            origin,
        );
        self.record(crate::audit::entry(
            &p,
            "auth.password_set",
            vec![],
            vec![],
            "ok",
        ))?;
        let s = self.new_session(SessionKind::Staff, Some(&name), None)?;
        self.record(crate::audit::entry(
            &p,
            "auth.sign_in",
            vec![],
            vec![],
            "ok",
        ))?;
        Ok(s)
    }

    /// Password sign-in of a staff user; a session of 12 hours. A wrong
    /// user, a wrong password, a disabled user and a user without a
    /// password get the same `Unauthorized`, after the same Argon2 work.
    /// Audited both ways (`auth.sign_in`, `ok` / `denied`), the actor being
    /// the user when one of that name exists, else `unknown`.
    pub fn sign_in(
        &self,
        name: &str,
        password: &str,
        origin: &str,
    ) -> Result<WebSession, EngineError> {
        let dummy = dummy_hash();
        let user = if valid_user_name(name) {
            self.store.user(name)?
        } else {
            None
        };
        let phc = user
            .as_ref()
            .and_then(|u| u.password_hash.as_deref())
            .unwrap_or(dummy);
        // a password longer than any that can be set matches nothing, for
        // every user alike (no Argon2 work on megabytes of input)
        let matches = password.len() <= 4 * MAX_PASSWORD_CHARS && verify_password(password, phc);
        let ok = matches
            && user
                .as_ref()
                .is_some_and(|u| u.password_hash.is_some() && u.disabled_at.is_none());
        let p = match &user {
            Some(u) => audit_principal(
                user_principal_name(&u.name),
                PrincipalKind::Key,
                &u.role,
                u.department.clone(),
                None,
                origin,
            ),
            None => audit_principal(
                "unknown".into(),
                PrincipalKind::Key,
                "-",
                None,
                None,
                origin,
            ),
        };
        let session = match (&user, ok) {
            (Some(u), true) => Some(self.new_session(SessionKind::Staff, Some(&u.name), None)?),
            _ => None,
        };
        let detail = if session.is_some() { "ok" } else { "denied" };
        self.record(crate::audit::entry(
            &p,
            "auth.sign_in",
            vec![],
            vec![],
            detail,
        ))?;
        session.ok_or_else(refused)
    }

    /// The principal of a session cookie. A staff session acts with the
    /// user's role and department as stored now (a disabled user's
    /// sessions stop working); a customer session acts as that customer.
    /// Unknown, expired, revoked or malformed: `Unauthorized`.
    pub fn session(&self, cookie: &str, origin: &str) -> Result<SessionView, EngineError> {
        let rec = self.live_session(cookie)?;
        match rec.kind.as_str() {
            "staff" => {
                let name = rec.user_name.clone().ok_or_else(refused)?;
                let user = self
                    .store
                    .user(&name)?
                    .filter(|u| u.disabled_at.is_none())
                    .ok_or_else(refused)?;
                Ok(SessionView {
                    principal: audit_principal(
                        user_principal_name(&name),
                        PrincipalKind::Key,
                        &user.role,
                        user.department,
                        None,
                        origin,
                    ),
                    id: rec.id,
                    kind: SessionKind::Staff,
                    user: Some(name),
                    expires_at: rec.expires_at,
                })
            }
            "customer" => {
                let c = rec.customer_id.ok_or_else(refused)?;
                Ok(SessionView {
                    principal: audit_principal(
                        customer_principal_name(c),
                        PrincipalKind::Customer,
                        "customer",
                        None,
                        Some(c),
                        origin,
                    ),
                    id: rec.id,
                    kind: SessionKind::Customer,
                    user: None,
                    expires_at: rec.expires_at,
                })
            }
            _ => Err(refused()),
        }
    }

    /// Signs a session out (revokes it); audited `auth.sign_out`. A cookie
    /// that is not a live session is `Unauthorized`.
    pub fn sign_out(&self, cookie: &str) -> Result<(), EngineError> {
        let rec = self.live_session(cookie)?;
        if !self.store.revoke_session(&rec.id, now())? {
            return Err(refused());
        }
        let p = match (rec.kind.as_str(), &rec.user_name, rec.customer_id) {
            ("staff", Some(u), _) => {
                let user = self.store.user(u)?;
                audit_principal(
                    user_principal_name(u),
                    PrincipalKind::Key,
                    user.as_ref().map_or("-", |x| x.role.as_str()),
                    user.as_ref().and_then(|x| x.department.clone()),
                    None,
                    "web",
                )
            }
            (_, _, Some(c)) => audit_principal(
                customer_principal_name(c),
                PrincipalKind::Customer,
                "customer",
                None,
                Some(c),
                "web",
            ),
            _ => return Err(refused()),
        };
        let customers = rec.customer_id.into_iter().collect();
        self.record(crate::audit::entry(
            &p,
            "auth.sign_out",
            customers,
            vec![],
            "ok",
        ))?;
        Ok(())
    }

    /// A one-time sign-in link for a customer (`customer link KEY`), valid
    /// `ttl` (default 30 minutes, at most 7 days). The customer must exist
    /// (an erased person does not). Audited `auth.link_issued` with the
    /// customer's id, as the local operator (the one who issues links).
    pub fn customer_link(
        &self,
        customer: i64,
        ttl: Option<&str>,
    ) -> Result<IssuedLink, EngineError> {
        let secs = parse_duration(ttl.unwrap_or(DEFAULT_LINK_TTL))
            .map_err(|e| EngineError::Invalid(format!("--ttl: {e}")))?;
        if secs > MAX_LINK_SECS {
            return Err(EngineError::Invalid(
                "--ttl: a sign-in link may live at most 7 days (7d)".into(),
            ));
        }
        if self.store.customer_identities(customer)?.is_empty() {
            return Err(EngineError::NotFound(format!("no customer #{customer}")));
        }
        let t = now();
        let (id, secret, full) = new_credential(LINK_PREFIX);
        let expires_at = t + secs;
        self.store.create_session(&SessionRecord {
            id: id.clone(),
            kind: "link".into(),
            user_name: None,
            customer_id: Some(customer),
            secret_hash: self.secret()?.hash(&secret),
            created_at: t,
            expires_at,
            revoked_at: None,
        })?;
        self.record(crate::audit::entry(
            &Principal::local(None),
            "auth.link_issued",
            vec![customer],
            vec![],
            &format!("link {id}"),
        ))?;
        Ok(IssuedLink {
            token: full,
            customer,
            expires_at: rfc3339(expires_at),
        })
    }

    /// Redeems a customer's sign-in link once: a customer session of 2
    /// hours. A second use, an expired or unknown link is `Unauthorized`.
    /// Audited `auth.sign_in` both ways.
    pub fn redeem_link(&self, token: &str, origin: &str) -> Result<WebSession, EngineError> {
        let redeemed = self
            .live_record(token, LINK_PREFIX, "link")
            .and_then(|rec| {
                let c = rec.customer_id.ok_or_else(refused)?;
                // spent by exactly one redemption, even under a race
                if !self.store.revoke_session(&rec.id, now())? {
                    return Err(refused());
                }
                Ok(c)
            });
        let c = match redeemed {
            Ok(c) => c,
            Err(EngineError::Unauthorized(m)) => {
                let p = audit_principal(
                    "unknown".into(),
                    PrincipalKind::Customer,
                    "customer",
                    None,
                    None,
                    origin,
                );
                self.record(crate::audit::entry(
                    &p,
                    "auth.sign_in",
                    vec![],
                    vec![],
                    "denied",
                ))?;
                return Err(EngineError::Unauthorized(m));
            }
            Err(e) => return Err(e),
        };
        let s = self.new_session(SessionKind::Customer, None, Some(c))?;
        let p = audit_principal(
            customer_principal_name(c),
            PrincipalKind::Customer,
            "customer",
            None,
            Some(c),
            origin,
        );
        self.record(crate::audit::entry(
            &p,
            "auth.sign_in",
            vec![c],
            vec![],
            "ok",
        ))?;
        Ok(s)
    }

    /// The CSRF token of a session: hex of HMAC-SHA256(store secret,
    /// `csrf:<session id>`). Put it in every form of the session's pages.
    pub fn csrf_token(&self, session_id: &str) -> Result<String, EngineError> {
        Ok(hex(&self.secret()?.hash(&csrf_message(session_id))))
    }

    /// Whether `token` is the CSRF token of this session (constant time).
    pub fn verify_csrf(&self, session_id: &str, token: &str) -> Result<bool, EngineError> {
        let Some(mac) = from_hex(token.trim()).filter(|b| b.len() == 32) else {
            return Ok(false);
        };
        Ok(self.secret()?.verify(&csrf_message(session_id), &mac))
    }

    /// A live (known, matching, unrevoked, unexpired) record of a
    /// credential with the given prefix and stored kind.
    fn live_record(
        &self,
        credential: &str,
        prefix: &str,
        kind: &str,
    ) -> Result<SessionRecord, EngineError> {
        let (_, id, secret) = parse_credential(credential.trim(), &[prefix]).ok_or_else(refused)?;
        let rec = self.store.session(id)?.ok_or_else(refused)?;
        let ok = self.secret()?.verify(secret, &rec.secret_hash);
        if !ok || rec.kind != kind || rec.revoked_at.is_some() || rec.expires_at <= now() {
            return Err(refused());
        }
        Ok(rec)
    }

    /// A live signed-in session (staff or customer) of a cookie.
    fn live_session(&self, cookie: &str) -> Result<SessionRecord, EngineError> {
        let (_, id, secret) =
            parse_credential(cookie.trim(), &[SESSION_PREFIX]).ok_or_else(refused)?;
        let rec = self.store.session(id)?.ok_or_else(refused)?;
        let ok = self.secret()?.verify(secret, &rec.secret_hash);
        let kind_ok = matches!(rec.kind.as_str(), "staff" | "customer");
        if !ok || !kind_ok || rec.revoked_at.is_some() || rec.expires_at <= now() {
            return Err(refused());
        }
        Ok(rec)
    }

    fn new_session(
        &self,
        kind: SessionKind,
        user: Option<&str>,
        customer: Option<i64>,
    ) -> Result<WebSession, EngineError> {
        let t = now();
        let expires_at = t + match kind {
            SessionKind::Staff => STAFF_SESSION_SECS,
            SessionKind::Customer => CUSTOMER_SESSION_SECS,
        };
        let (id, secret, cookie) = new_credential(SESSION_PREFIX);
        self.store.create_session(&SessionRecord {
            id: id.clone(),
            kind: kind.as_str().into(),
            user_name: user.map(str::to_string),
            customer_id: customer,
            secret_hash: self.secret()?.hash(&secret),
            created_at: t,
            expires_at,
            revoked_at: None,
        })?;
        Ok(WebSession {
            cookie,
            id,
            kind,
            expires_at,
        })
    }
}

fn csrf_message(session_id: &str) -> String {
    format!("csrf:{session_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_follow_the_rule() {
        for ok in ["ann", "a.b-c_d@x", "A9", &"x".repeat(64)] {
            assert!(valid_user_name(ok), "{ok}");
        }
        for bad in ["", "a b", "ä", "a/b", "a:b", &"x".repeat(65), "a\n"] {
            assert!(!valid_user_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn passwords_have_a_length_rule_counted_in_characters() {
        assert!(check_password("short").is_err());
        assert!(check_password("elevenchars").is_err());
        assert!(check_password("twelve chars").is_ok());
        // 12 characters of 3 bytes each
        assert!(check_password(&"密".repeat(12)).is_ok());
        assert!(check_password(&"密".repeat(11)).is_err());
        assert!(check_password(&"x".repeat(1_024)).is_ok());
        assert!(check_password(&"x".repeat(1_025)).is_err());
    }

    #[test]
    fn argon2id_hashes_verify_only_their_password() {
        let h = hash_password("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("correct horse"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterz", &h));
        assert!(!verify_password(
            "correct horse battery",
            "not a phc string"
        ));
        // salted: the same password hashes differently
        assert_ne!(h, hash_password("correct horse battery").expect("hash"));
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let d = dummy_hash();
        let real = hash_password("some password here").expect("hash");
        // same algorithm and parameters: the part before the salt is equal
        let params = |s: &str| s.split('$').take(4).collect::<Vec<_>>().join("$");
        assert!(d.starts_with("$argon2id$"), "{d}");
        assert_eq!(params(d), params(&real));
    }
}
