//! Webhooks: who may add them, what they are sent, and how it is signed.
//!
//! A webhook takes event types (`churn.high`, `feedback.negative`, …: one
//! per alert rule kind, and `portal.link` for customers' one-time sign-in
//! links) and has a role (and optionally a department): every payload is
//! shaped by that role's field policy exactly as `GET /v1/alerts` would
//! show it to a key of that role, and carries only people whose consent
//! allows it (marketing, the purpose that covers "webhooks about the
//! person", and profiling for churn and feedback alerts; a withdrawal is
//! always carried, so downstream systems learn of it). Payloads are built
//! once, when the alert becomes a message, and the build is audited as a
//! read by `webhook #ID`.
//!
//! Messages go through the store's outbox ([`infogap_store::OutboxRecord`]):
//! written in the same transaction that moves the webhook's alert cursor,
//! claimed under a lease, retried with exponential backoff and jitter, dead
//! after the last try (listed and replayable). Signing follows Standard
//! Webhooks: `webhook-signature: v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>`
//! with the secret shown once as `whsec_<base64>`. The secret is not
//! stored: it is derived from the store's secret file and a stored salt.
//! Sending over the network is the server's part; this module hands it the
//! signed requests and takes back the answers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use infogap_core::access::{Action, FieldClass, Visibility};
use infogap_core::config::Delivery;
use infogap_store::{NewWebhook, OutboxIn, OutboxOutcome, WebhookRecord};
use serde::Serialize;
use sha2::Sha256;

use crate::access::{Access, Policy, Principal, PrincipalKind};
use crate::alerts::{AlertShaper, Shaped};
use crate::keys::{now, rfc3339};
use crate::share::Insights;
use crate::{Engine, EngineError};

/// The event types a webhook may take.
pub const EVENTS: [&str; 6] = [
    "churn.high",
    "feedback.negative",
    "segment.changed",
    "consent.withdrawn",
    "activity.unusual",
    PORTAL_LINK,
];

/// The event type of a customer's one-time sign-in link.
pub const PORTAL_LINK: &str = "portal.link";

/// The store setting holding `[webhooks]`.
pub const SETTING: &str = "webhooks";

/// The domain of message ids.
const MESSAGE_ID_DOMAIN: &str = "infogap webhook message id v1";

/// The domain of derived signing secrets.
const SECRET_DOMAIN: &str = "infogap webhook signing secret v1";

/// How long a claimed try holds its message beyond the try's timeout
/// before another worker (or this one after a restart) may try again.
const LEASE_MARGIN_MS: u64 = 5_000;

/// The event type an alert of a kind is sent as (the rule kinds, and the
/// `refund` / `spend_spike` alerts of `unusual_activity`).
pub fn event_of_kind(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "churn_risk" => "churn.high",
        "negative_feedback" => "feedback.negative",
        "segment_change" => "segment.changed",
        "consent_withdrawn" => "consent.withdrawn",
        "unusual_activity" | "refund" | "spend_spike" => "activity.unusual",
        _ => return None,
    })
}

/// The Standard Webhooks signature of one message: `v1,` and the base64 of
/// HMAC-SHA256(secret, `{id}.{timestamp}.{body}`).
pub fn sign(secret: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "v1,{}",
        STANDARD.encode(mac(secret, msg_id, timestamp, body).finalize().into_bytes())
    )
}

/// Checks a `webhook-signature` header (space-separated `v1,…` entries;
/// any one matching is enough) in constant time. For receivers and tests.
pub fn verify(secret: &[u8], msg_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    header.split_whitespace().any(|sig| {
        sig.strip_prefix("v1,")
            .and_then(|b| STANDARD.decode(b).ok())
            .is_some_and(|raw| {
                mac(secret, msg_id, timestamp, body)
                    .verify_slice(&raw)
                    .is_ok()
            })
    })
}

fn mac(secret: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length: this cannot fail
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    m.update(msg_id.as_bytes());
    m.update(b".");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The printed form of a signing secret: `whsec_` and its base64.
pub fn secret_text(key: &[u8]) -> String {
    format!("whsec_{}", STANDARD.encode(key))
}

/// The key bytes of a printed secret (`whsec_…`), for receivers.
pub fn parse_secret(s: &str) -> Option<Vec<u8>> {
    STANDARD.decode(s.trim().strip_prefix("whsec_")?).ok()
}

/// The wait before try `attempt + 1` after `attempt` failed tries:
/// `first_retry × 2^(attempt−1)`, capped at `max_retry`, then "equal
/// jitter" (a uniform point in its upper half, `jitter` in [0, 1)), so
/// receivers that failed together are not hit together again.
pub fn backoff_ms(d: &Delivery, attempt: u32, jitter: f64) -> u64 {
    let shift = attempt.saturating_sub(1).min(40);
    let base = d
        .first_retry_ms
        .saturating_mul(1u64 << shift)
        .min(d.max_retry_ms);
    let half = base / 2;
    half + (half as f64 * jitter.clamp(0.0, 1.0)) as u64
}

/// What `webhooks add` asks for.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    /// `http://` or `https://` URL.
    pub url: String,
    /// Event types (see [`EVENTS`]; `*` for all).
    pub events: Vec<String>,
    /// Role shaping the payloads.
    pub role: String,
    /// Department it is limited to.
    pub department: Option<String>,
}

/// A webhook as listed (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct WebhookView {
    /// Id.
    pub id: i64,
    /// URL.
    pub url: String,
    /// Event types.
    pub events: Vec<String>,
    /// Role shaping its payloads.
    pub role: String,
    /// Department.
    pub department: Option<String>,
    /// Added (RFC 3339).
    pub created_at: String,
    /// By whom.
    pub created_by: String,
}

impl WebhookView {
    fn of(w: &WebhookRecord) -> WebhookView {
        WebhookView {
            id: w.id,
            url: w.url.clone(),
            events: w.events.clone(),
            role: w.role.clone(),
            department: w.department.clone(),
            created_at: rfc3339(w.created_at),
            created_by: w.created_by.clone(),
        }
    }
}

/// A new webhook and its signing secret (shown this once).
#[derive(Clone, Serialize)]
pub struct IssuedWebhook {
    /// The webhook.
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_…`: verify `webhook-signature` with it.
    pub secret: String,
}

impl std::fmt::Debug for IssuedWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedWebhook")
            .field("webhook", &self.webhook)
            .field("secret", &"..")
            .finish()
    }
}

/// A message of the outbox as listed (dead letters and the rest).
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    /// Id (`webhooks replay ID`).
    pub id: i64,
    /// The `webhook-id` header.
    pub msg_id: String,
    /// Webhook.
    pub webhook_id: i64,
    /// Event type.
    pub event: String,
    /// The person it is about.
    pub customer_id: Option<i64>,
    /// The alert it carries.
    pub alert_id: Option<i64>,
    /// `pending`, `delivered`, `dead` or `dropped`.
    pub state: String,
    /// Tries so far.
    pub attempts: i64,
    /// The last answer's HTTP status.
    pub last_status: Option<i64>,
    /// Why the last try failed.
    pub last_error: Option<String>,
    /// Written (RFC 3339).
    pub created_at: String,
    /// Finished (RFC 3339).
    pub done_at: Option<String>,
    /// Next try (RFC 3339), while pending.
    pub next_at: Option<String>,
}

/// `webhooks dead` and `GET /v1/webhooks/dead`.
#[derive(Debug, Clone, Serialize)]
pub struct MessageList {
    /// Messages, newest first.
    pub messages: Vec<MessageView>,
    /// Messages in each state.
    pub counts: std::collections::BTreeMap<String, u64>,
}

/// One signed try, handed to the sender.
#[derive(Clone)]
pub struct Outgoing {
    /// Outbox row.
    pub id: i64,
    /// `webhook-id`.
    pub msg_id: String,
    /// The webhook.
    pub webhook_id: i64,
    /// Event type.
    pub event: String,
    /// Where to post.
    pub url: String,
    /// The try this is (1 = first).
    pub attempt: u32,
    /// The payload.
    pub body: String,
    key: [u8; 32],
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("id", &self.id)
            .field("msg_id", &self.msg_id)
            .field("url", &self.url)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl Outgoing {
    /// The three Standard Webhooks headers for a try sent at `timestamp`
    /// (Unix seconds): `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    pub fn headers(&self, timestamp: i64) -> [(&'static str, String); 3] {
        [
            ("webhook-id", self.msg_id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            (
                "webhook-signature",
                sign(&self.key, &self.msg_id, timestamp, self.body.as_bytes()),
            ),
        ]
    }
}

/// What one try got: the HTTP status, or why there was none.
#[derive(Debug, Clone)]
pub struct TryResult {
    /// The try ([`Outgoing::id`]).
    pub id: i64,
    /// Which try it was.
    pub attempt: u32,
    /// The status, when the receiver answered.
    pub status: Option<u16>,
    /// Connection error, timeout, …
    pub error: Option<String>,
}

fn check_url(url: &str) -> Result<(), EngineError> {
    let bad = |why: &str| EngineError::Invalid(format!("--url: {why}"));
    if url.len() > 2000 || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("at most 2000 characters, no spaces"));
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| bad("must start with http:// or https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(bad(
            "no user or password in the URL (they would be stored in the clear); authenticate with the signature",
        ));
    }
    let host = authority
        .rsplit_once(':')
        .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty())
        .map_or(authority, |(h, _)| h);
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if url.contains('#') {
        return Err(bad("no #fragment"));
    }
    Ok(())
}

fn webhook_principal(w: &WebhookRecord) -> Principal {
    Principal {
        name: format!("webhook #{}", w.id),
        kind: PrincipalKind::Key,
        role: w.role.clone(),
        department: w.department.clone(),
        customer: None,
        source: None,
        origin: "webhook".into(),
        request_id: None,
    }
}

fn must(a: &Access) -> Result<(), EngineError> {
    if a.action != Action::WebhooksManage {
        return Err(EngineError::Forbidden(format!(
            "this needs the webhooks.manage grant, not {}",
            a.action
        )));
    }
    Ok(())
}

impl Engine {
    /// The delivery settings (`[webhooks]` of the config last imported).
    pub fn delivery_settings(&self) -> Result<Delivery, EngineError> {
        match self.store().setting(SETTING)? {
            None => Ok(Delivery::default()),
            Some(json) => {
                let cfg: infogap_core::config::WebhooksConfig = serde_json::from_str(&json)
                    .map_err(|e| EngineError::Invalid(format!("the stored [webhooks]: {e}")))?;
                cfg.delivery().map_err(EngineError::Invalid)
            }
        }
    }

    /// A message's `webhook-id`: `msg_` and 24 hex digits keyed by the
    /// store's secret, so the same alert always gets the same id here and
    /// ids of different stores never meet at a receiver.
    fn message_id(&self, what: &str) -> Result<String, EngineError> {
        let d = self.secret()?.derive(MESSAGE_ID_DOMAIN, what.as_bytes());
        Ok(format!("msg_{}", infogap_store::audit::hex(&d[..12])))
    }

    fn webhook_key(&self, salt: &[u8]) -> Result<[u8; 32], EngineError> {
        Ok(self.secret()?.derive(SECRET_DOMAIN, salt))
    }

    /// Adds a webhook (`webhooks.manage`): checks the URL, the event types,
    /// that the role exists and may read alerts (for alert events) or sees
    /// contact details (for `portal.link`), and the department. It takes
    /// alerts raised from now on. Audited `webhooks.add`.
    pub fn add_webhook(
        &self,
        a: &Access,
        policy: &Policy,
        req: &WebhookRequest,
    ) -> Result<IssuedWebhook, EngineError> {
        must(a)?;
        let url = req.url.trim();
        check_url(url)?;
        let mut events: Vec<String> = Vec::new();
        for e in &req.events {
            for e in e.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                if e == "*" {
                    events.extend(EVENTS.iter().map(|s| s.to_string()));
                } else if EVENTS.contains(&e) {
                    events.push(e.to_string());
                } else {
                    return Err(EngineError::Invalid(format!(
                        "--events: {e:?} is not an event type; types: {} (or *)",
                        EVENTS.join(", ")
                    )));
                }
            }
        }
        events.sort_by_key(|e| EVENTS.iter().position(|x| x == e));
        events.dedup();
        if events.is_empty() {
            return Err(EngineError::Invalid(format!(
                "--events: name at least one of {}",
                EVENTS.join(", ")
            )));
        }
        let role = policy.check_role(&req.role)?;
        if role.name == "customer" || role.name == "source" {
            return Err(EngineError::Invalid(format!(
                "--role {}: a webhook takes a staff role",
                role.name
            )));
        }
        if events.iter().any(|e| e != PORTAL_LINK) && !role.actions.contains(&Action::AlertsRead) {
            return Err(EngineError::Invalid(format!(
                "--role {}: this role may not read alerts (alerts.read), so it cannot take alert events",
                role.name
            )));
        }
        if events.iter().any(|e| e == PORTAL_LINK)
            && role.visibility(FieldClass::Contact) != Visibility::Visible
        {
            return Err(EngineError::Invalid(format!(
                "--role {}: portal.link needs a role that sees contact details (the link is mailed to the customer)",
                role.name
            )));
        }
        if let Some(d) = &req.department {
            let names: Vec<String> = self
                .store()
                .sources()?
                .into_iter()
                .map(|s| s.name)
                .collect();
            if policy.department_sources(d, &names).is_none() {
                return Err(EngineError::Invalid(format!(
                    "--department {d:?} is not a department or source of this store"
                )));
            }
        }
        let salt: [u8; 16] = rand::random();
        let key = self.webhook_key(&salt)?;
        let created_at = now();
        let id = self.store().create_webhook(&NewWebhook {
            url: url.to_string(),
            events: events.clone(),
            role: role.name.clone(),
            department: req.department.clone(),
            salt: salt.to_vec(),
            created_by: a.principal.name.clone(),
            created_at,
        })?;
        self.record_access(a, "webhooks.add", vec![], vec![])?;
        Ok(IssuedWebhook {
            webhook: WebhookView {
                id,
                url: url.to_string(),
                events,
                role: role.name.clone(),
                department: req.department.clone(),
                created_at: rfc3339(created_at),
                created_by: a.principal.name.clone(),
            },
            secret: secret_text(&key),
        })
    }

    /// The webhooks in use (`webhooks.manage`).
    pub fn list_webhooks(&self, a: &Access) -> Result<Vec<WebhookView>, EngineError> {
        must(a)?;
        Ok(self
            .store()
            .webhooks()?
            .iter()
            .filter(|w| w.removed_at.is_none())
            .map(WebhookView::of)
            .collect())
    }

    /// Removes a webhook; what it had not been delivered is dropped.
    /// Audited `webhooks.remove`.
    pub fn remove_webhook(&self, a: &Access, id: i64) -> Result<(), EngineError> {
        must(a)?;
        if !self.store().remove_webhook(id, now())? {
            return Err(EngineError::NotFound(format!("no webhook #{id}")));
        }
        self.record_access(a, "webhooks.remove", vec![], vec![])?;
        Ok(())
    }

    /// Outbox messages (`state`: `dead` for the dead letters), newest first.
    /// Audited `webhooks.messages` with the customers they are about.
    pub fn webhook_messages(
        &self,
        a: &Access,
        state: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<MessageList, EngineError> {
        must(a)?;
        if let Some(s) = state
            && !matches!(s, "pending" | "delivered" | "dead" | "dropped")
        {
            return Err(EngineError::Invalid(format!(
                "state {s:?}: expected pending, delivered, dead or dropped"
            )));
        }
        let rows = self.store().outbox(state, before, limit.clamp(1, 1000))?;
        let messages: Vec<MessageView> = rows
            .into_iter()
            .map(|r| MessageView {
                id: r.id,
                msg_id: r.msg_id,
                webhook_id: r.webhook_id,
                event: r.event,
                customer_id: r.customer_id,
                alert_id: r.alert_id,
                next_at: (r.state == "pending").then(|| {
                    chrono::DateTime::from_timestamp_millis(r.next_at)
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_default()
                }),
                state: r.state,
                attempts: r.attempts,
                last_status: r.last_status,
                last_error: r.last_error,
                created_at: rfc3339(r.created_at),
                done_at: r.done_at.map(rfc3339),
            })
            .collect();
        // the list names customers (by id): the read is audited
        let mut customers: Vec<i64> = messages.iter().filter_map(|m| m.customer_id).collect();
        customers.sort_unstable();
        customers.dedup();
        self.record_access(a, "webhooks.messages", customers, vec![])?;
        Ok(MessageList {
            messages,
            counts: self.store().outbox_counts()?,
        })
    }

    /// Puts a dead message back in the queue (tries reset). Audited
    /// `webhooks.replay`.
    pub fn replay_webhook_message(&self, a: &Access, id: i64) -> Result<(), EngineError> {
        must(a)?;
        if !self.store().outbox_replay(id, now_ms())? {
            return Err(EngineError::NotFound(format!(
                "no dead message #{id} (only dead letters of a webhook still in use replay)"
            )));
        }
        self.record_access(a, "webhooks.replay", vec![], vec![])?;
        Ok(())
    }

    /// Turns new alerts into outbox messages for every webhook that takes
    /// their event type: each alert shaped by the webhook's policy and the
    /// person's consent, written with the webhook's moved alert cursor in
    /// one transaction (a crash repeats nothing and loses nothing; another
    /// process doing the same writes nothing twice). How many messages.
    pub fn enqueue_alert_messages(
        &self,
        policy: &Policy,
        ins: &Insights,
    ) -> Result<usize, EngineError> {
        let mut total = 0;
        for w in self.store().webhooks()? {
            if w.removed_at.is_some() {
                continue;
            }
            let mut from = w.alerts_from;
            loop {
                let alerts = self.store().alerts_after(from, 500)?;
                let Some(to) = alerts.iter().map(|r| r.id).max() else {
                    break;
                };
                match self.enqueue_for(policy, ins, &w, (from, to), alerts)? {
                    Some(n) => total += n,
                    // another process moved the cursor: it queues these
                    None => break,
                }
                from = to;
            }
        }
        Ok(total)
    }

    fn enqueue_for(
        &self,
        policy: &Policy,
        ins: &Insights,
        w: &WebhookRecord,
        (from, to): (i64, i64),
        alerts: Vec<infogap_store::AlertRecord>,
    ) -> Result<Option<usize>, EngineError> {
        let access = match self.authorize(policy, &webhook_principal(w), Action::AlertsRead) {
            Ok(a) => Some(a),
            // the role lost alerts.read (or its department) since: nothing is sent
            Err(EngineError::Forbidden(_)) => None,
            Err(e) => return Err(e),
        };
        let mut rows = Vec::new();
        let mut customers = Vec::new();
        if let Some(a) = &access {
            let shaper = AlertShaper::new(self, a, ins)?;
            for r in alerts {
                let Some(event) = event_of_kind(&r.kind) else {
                    continue;
                };
                if !w.events.iter().any(|e| e == event) {
                    continue;
                }
                let c = r.customer_id;
                let alert_id = r.id;
                // a withdrawal always travels; anything else about the
                // person needs their marketing consent
                if event != "consent.withdrawn"
                    && shaper
                        .consents
                        .allows(c, infogap_core::privacy::MARKETING)
                        .is_err()
                {
                    continue;
                }
                let Shaped::Shown(shown) = shaper.shape(r) else {
                    continue;
                };
                let body = serde_json::json!({
                    "type": event,
                    "timestamp": shown.created_at,
                    "data": {
                        "alert": shown,
                        "policy": a.note(),
                    },
                });
                customers.push(c);
                rows.push(OutboxIn {
                    msg_id: self.message_id(&format!("w{}a{alert_id}", w.id))?,
                    webhook_id: w.id,
                    event: event.to_string(),
                    customer_id: Some(c),
                    alert_id: Some(alert_id),
                    body: body.to_string(),
                });
            }
        }
        let n = self
            .store()
            .outbox_enqueue(Some((w.id, from, to)), &rows, now_ms())?;
        if let (Some(n), Some(a)) = (n, &access)
            && n > 0
        {
            customers.sort_unstable();
            customers.dedup();
            self.record_access(
                a,
                "webhooks.queue",
                customers,
                a.shown_classes(&[FieldClass::Contact, FieldClass::Predictions]),
            )?;
        }
        Ok(n)
    }

    /// Queues a customer's one-time sign-in link for every webhook taking
    /// `portal.link` (the business's mailer): the link, when it runs out,
    /// and the customer's email as the webhook's role may see it. How many
    /// webhooks it was queued for; none is an error (the link would be lost).
    pub fn enqueue_portal_link(
        &self,
        policy: &Policy,
        customer: i64,
        url: &str,
        expires_at: &str,
    ) -> Result<usize, EngineError> {
        let hooks: Vec<WebhookRecord> = self
            .store()
            .webhooks()?
            .into_iter()
            .filter(|w| w.removed_at.is_none() && w.events.iter().any(|e| e == PORTAL_LINK))
            .collect();
        if hooks.is_empty() {
            return Err(EngineError::Invalid(
                "no webhook takes portal.link; add one with `infogap webhooks add --url URL --events portal.link --role support`".into(),
            ));
        }
        let idents = self.store().customer_identities(customer)?;
        let mut rows = Vec::new();
        for w in &hooks {
            let a = self.authorize(policy, &webhook_principal(w), Action::CustomersLookup)?;
            let email = idents.iter().find(|i| i.kind == "email").and_then(|i| {
                crate::access::show_contact(a.visibility(FieldClass::Contact), &i.kind, &i.value)
            });
            let nonce: [u8; 8] = rand::random();
            let msg_id =
                self.message_id(&format!("w{}l{}", w.id, infogap_store::audit::hex(&nonce)))?;
            let body = serde_json::json!({
                "type": PORTAL_LINK,
                "timestamp": rfc3339(now()),
                "data": {
                    "customer_id": customer,
                    "email": email,
                    "url": url,
                    "expires_at": expires_at,
                },
            });
            rows.push(OutboxIn {
                msg_id,
                webhook_id: w.id,
                event: PORTAL_LINK.into(),
                customer_id: Some(customer),
                alert_id: None,
                body: body.to_string(),
            });
            self.record_access(
                &a,
                "webhooks.queue",
                vec![customer],
                a.shown_classes(&[FieldClass::Contact]),
            )?;
        }
        Ok(self
            .store()
            .outbox_enqueue(None, &rows, now_ms())?
            .unwrap_or(0))
    }

    /// Claims up to `limit` due messages for a try and signs them with
    /// their webhook's secret. A message whose webhook is gone is dropped.
    pub fn claim_messages(&self, d: &Delivery, limit: usize) -> Result<Vec<Outgoing>, EngineError> {
        let lease = (d.timeout_ms + LEASE_MARGIN_MS) as i64;
        let claimed = self
            .store()
            .outbox_claim(now_ms(), lease, i64::from(d.attempts), limit)?;
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let hooks: std::collections::HashMap<i64, WebhookRecord> = self
            .store()
            .webhooks()?
            .into_iter()
            .map(|w| (w.id, w))
            .collect();
        let mut out = Vec::new();
        for r in claimed {
            let (Some(w), Some(body)) = (hooks.get(&r.webhook_id), r.body) else {
                continue;
            };
            out.push(Outgoing {
                id: r.id,
                msg_id: r.msg_id,
                webhook_id: w.id,
                event: r.event,
                url: w.url.clone(),
                attempt: u32::try_from(r.attempts).unwrap_or(u32::MAX),
                body,
                key: self.webhook_key(&w.salt)?,
            });
        }
        Ok(out)
    }

    /// Records the answers to tries: 2xx delivered; anything else tried
    /// again after [`backoff_ms`], or dead after the last try.
    pub fn finish_messages(&self, d: &Delivery, results: &[TryResult]) -> Result<(), EngineError> {
        let t = now_ms();
        let outcomes: Vec<OutboxOutcome> = results
            .iter()
            .map(|r| {
                let delivered = r.status.is_some_and(|s| (200..300).contains(&s));
                let error = if delivered {
                    None
                } else {
                    Some(match (&r.error, r.status) {
                        (Some(e), _) => e.clone(),
                        (None, Some(s)) => format!("HTTP {s}"),
                        (None, None) => "no answer".into(),
                    })
                };
                OutboxOutcome {
                    id: r.id,
                    delivered,
                    status: r.status.map(i64::from),
                    error,
                    retry_at: (!delivered && r.attempt < d.attempts)
                        .then(|| t + backoff_ms(d, r.attempt, rand::random::<f64>()) as i64),
                }
            })
            .collect();
        Ok(self.store().outbox_done(&outcomes)?)
    }
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // the example of the Standard Webhooks specification
        let key = parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("base64");
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
            &format!("v1,bad {sig}")
        ));
        assert!(!verify(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265331,
            body,
            &sig
        ));
        assert!(!verify(&key, "msg_other", 1614265330, body, &sig));
        assert_eq!(parse_secret(&secret_text(&key)), Some(key));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let d = Delivery {
            attempts: 8,
            first_retry_ms: 1_000,
            max_retry_ms: 10_000,
            timeout_ms: 1_000,
        };
        assert_eq!(backoff_ms(&d, 1, 0.0), 500);
        assert_eq!(backoff_ms(&d, 1, 0.999_999), 999);
        assert_eq!(backoff_ms(&d, 2, 0.0), 1_000);
        assert_eq!(backoff_ms(&d, 3, 0.5), 3_000);
        assert_eq!(backoff_ms(&d, 10, 0.0), 5_000, "capped");
        assert!(backoff_ms(&d, 60, 1.0) <= 10_000);
    }

    #[test]
    fn every_alert_kind_has_an_event_type() {
        for k in infogap_core::config::RULE_KINDS
            .iter()
            .chain(&["refund", "spend_spike"])
        {
            let e = event_of_kind(k).unwrap_or_else(|| panic!("{k} has no event type"));
            assert!(EVENTS.contains(&e));
        }
    }

    #[test]
    fn urls_are_checked() {
        for ok in ["https://hooks.example.com/x?y=1", "http://127.0.0.1:8080/h"] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://x/",
            "https://user:pw@example.com/",
            "https:///x",
            "http://a b/",
            "https://x/#frag",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
