//! Segment-spec messages (`identify`, `track`, `page`, `screen`, `alias`
//! and `batch` of them), parsed and validated once, before anything is
//! stored: what web and app teams already send (the Segment spec, also
//! spoken by RudderStack and Jitsu).
//!
//! Why here: validation is the intake's contract with its senders. A bad
//! message is refused with its index in the batch and the reason, the
//! others are kept; what passes is a [`Message`] whose fields the engine
//! maps to the same rows a file import writes. Pure: no I/O, no clock
//! (the caller passes `now`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Most characters of an id, event name or message id.
pub const MAX_ID: usize = 200;
/// Latest accepted timestamp, ahead of the receiver's clock (clock skew).
pub const MAX_FUTURE_SECONDS: i64 = 24 * 3600;

/// What a message does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// Who the user is (traits: email, phone, attributes); links an
    /// anonymous id to the user id.
    Identify,
    /// Something the user did (`event`, `properties`).
    Track,
    /// A page view (web) or a screen view (app).
    Page,
    /// `previousId` is the same person as `userId`.
    Alias,
}

impl MessageKind {
    /// The spec's name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Identify => "identify",
            MessageKind::Track => "track",
            MessageKind::Page => "page",
            MessageKind::Alias => "alias",
        }
    }

    fn parse(t: &str) -> Option<(MessageKind, Option<&'static str>)> {
        Some(match t {
            "identify" => (MessageKind::Identify, None),
            "track" => (MessageKind::Track, None),
            "page" => (MessageKind::Page, Some("web")),
            "screen" => (MessageKind::Page, Some("app")),
            "alias" => (MessageKind::Alias, None),
            _ => return None,
        })
    }
}

/// One validated message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// What it does.
    pub kind: MessageKind,
    /// The sender's id of the message (derived from its content when the
    /// sender gave none): duplicates by it are ignored.
    pub message_id: String,
    /// The user id (the source's own customer id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The anonymous id (a device or cookie before sign-in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<String>,
    /// `alias`: the earlier id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_id: Option<String>,
    /// `track`: the event name; `page`/`screen`: the page name, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// When it happened (Unix seconds; the receiver's time when the sender
    /// gave none).
    pub timestamp: i64,
    /// `track`/`page` properties.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
    /// `identify` traits.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub traits: Map<String, Value>,
    /// `context.channel` (`web`, `mobile`, `server`, …), else `web` for a
    /// page and `app` for a screen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Consent categories the message says the user denied
    /// (`context.consent.categoryPreferences` set to false).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied: Vec<String>,
}

/// A message refused, by its place in the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    /// Index in the batch (0 for a single message).
    pub index: usize,
    /// Why.
    pub reason: String,
}

/// A request's messages: the valid ones with their index, and the refused.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// Valid messages.
    pub messages: Vec<(usize, Message)>,
    /// Refused messages.
    pub rejected: Vec<Rejected>,
}

/// Parses the body of `POST /v1/{identify,track,page,screen,alias}`
/// (`implied` names the endpoint's type) or `/v1/batch` (`implied` None: a
/// `batch` array of typed messages). `Err` is a body that is not a
/// request at all (not JSON, no `batch` array) or an unknown endpoint type.
pub fn parse(implied: Option<&str>, body: &[u8], now: i64) -> Result<Parsed, String> {
    let kind = match implied {
        Some(t) => Some(MessageKind::parse(t).ok_or_else(|| format!("no message type {t:?}"))?),
        None => None,
    };
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let Value::Object(obj) = v else {
        return Err("the body must be a JSON object".into());
    };
    let mut out = Parsed::default();
    match kind {
        Some(k) => match message(&obj, Some(k), now) {
            Ok(m) => out.messages.push((0, m)),
            Err(reason) => out.rejected.push(Rejected { index: 0, reason }),
        },
        None => {
            let Some(Value::Array(items)) = obj.get("batch") else {
                return Err("a batch needs a \"batch\" array of messages".into());
            };
            if items.is_empty() {
                return Err("the \"batch\" array is empty".into());
            }
            for (i, item) in items.iter().enumerate() {
                let r = match item {
                    Value::Object(o) => message(o, None, now),
                    _ => Err("a message must be a JSON object".into()),
                };
                match r {
                    Ok(m) => out.messages.push((i, m)),
                    Err(reason) => out.rejected.push(Rejected { index: i, reason }),
                }
            }
        }
    }
    Ok(out)
}

/// An id: a non-empty string or a number, at most [`MAX_ID`] characters.
fn id(o: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    let s = match o.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(format!("\"{key}\" must be a string or a number")),
    };
    if s.is_empty() {
        return Ok(None);
    }
    if s.chars().count() > MAX_ID {
        return Err(format!("\"{key}\" is longer than {MAX_ID} characters"));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("\"{key}\" holds control characters"));
    }
    Ok(Some(s))
}

fn object(o: &Map<String, Value>, key: &str) -> Result<Map<String, Value>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(format!("\"{key}\" must be an object")),
    }
}

fn message(
    o: &Map<String, Value>,
    implied: Option<(MessageKind, Option<&'static str>)>,
    now: i64,
) -> Result<Message, String> {
    let (kind, default_channel) = match (o.get("type"), implied) {
        (Some(Value::String(t)), implied) => {
            let (k, ch) = MessageKind::parse(t).ok_or_else(|| {
                format!("\"type\" {t:?} is not taken (identify, track, page, screen, alias)")
            })?;
            if let Some((i, ich)) = implied
                && (i != k || ich != ch)
            {
                return Err(format!(
                    "\"type\" {t:?} does not match the endpoint ({})",
                    ich.filter(|c| *c == "app").map_or(i.as_str(), |_| "screen")
                ));
            }
            (k, ch)
        }
        (None | Some(Value::Null), Some(k)) => k,
        (None | Some(Value::Null), None) => return Err("\"type\" is missing".into()),
        (Some(_), _) => return Err("\"type\" must be a string".into()),
    };
    let user_id = id(o, "userId")?;
    let anonymous_id = id(o, "anonymousId")?;
    if user_id.is_none() && anonymous_id.is_none() {
        return Err("neither \"userId\" nor \"anonymousId\" is given".into());
    }
    let previous_id = id(o, "previousId")?;
    if kind == MessageKind::Alias && (previous_id.is_none() || user_id.is_none()) {
        return Err("an alias needs \"previousId\" and \"userId\"".into());
    }
    let event = match kind {
        MessageKind::Track => {
            let e = id(o, "event")?.ok_or("a track needs an \"event\" name")?;
            Some(e)
        }
        MessageKind::Page => id(o, "name")?,
        _ => None,
    };
    let timestamp = match o.get("timestamp") {
        None | Some(Value::Null) => now,
        Some(Value::String(s)) => {
            let t = infogap_core::value::parse_time_str(s.trim()).ok_or_else(|| {
                format!("\"timestamp\" {s:?} is not a date/time (expected ISO 8601)")
            })?;
            if t > now + MAX_FUTURE_SECONDS {
                return Err(format!(
                    "\"timestamp\" {s:?} is more than a day ahead of the receiver's clock"
                ));
            }
            t
        }
        Some(_) => return Err("\"timestamp\" must be an ISO 8601 string".into()),
    };
    let properties = object(o, "properties")?;
    let traits = object(o, "traits")?;
    let context = object(o, "context")?;
    let channel = match context.get("channel") {
        Some(Value::String(c)) if !c.trim().is_empty() => Some(c.trim().to_lowercase()),
        _ => default_channel.map(str::to_string),
    };
    let mut denied: Vec<String> = match context
        .get("consent")
        .and_then(|c| c.get("categoryPreferences"))
    {
        Some(Value::Object(p)) => p
            .iter()
            .filter(|(_, v)| **v == Value::Bool(false))
            .map(|(k, _)| k.to_lowercase())
            .collect(),
        _ => Vec::new(),
    };
    denied.sort();
    let message_id = match id(o, "messageId")? {
        Some(m) => m,
        // no id: the content is the id, so a resent message is a duplicate
        None => {
            let canonical = serde_json::to_vec(o).unwrap_or_default();
            let h = Sha256::digest(&canonical);
            let hex: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
            format!("sha256:{hex}")
        }
    };
    Ok(Message {
        kind,
        message_id,
        user_id,
        anonymous_id,
        previous_id,
        event,
        timestamp,
        properties,
        traits,
        channel,
        denied,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn one(kind: &str, body: &str) -> Result<Message, String> {
        let p = parse(Some(kind), body.as_bytes(), NOW)?;
        match (p.messages.first(), p.rejected.first()) {
            (Some((_, m)), _) => Ok(m.clone()),
            (None, Some(r)) => Err(r.reason.clone()),
            _ => Err("nothing".into()),
        }
    }

    #[test]
    fn a_track_keeps_what_the_spec_sends() {
        let m = one(
            "track",
            r#"{"userId": 42, "anonymousId": "a-1", "event": "Product Viewed",
                "properties": {"product_id": "P001"}, "timestamp": "2026-12-01T10:00:00Z",
                "messageId": "m-1", "context": {"channel": "Mobile",
                "consent": {"categoryPreferences": {"Advertising": false, "analytics": true}}}}"#,
        )
        .unwrap();
        assert_eq!(m.kind, MessageKind::Track);
        assert_eq!(m.user_id.as_deref(), Some("42"));
        assert_eq!(m.anonymous_id.as_deref(), Some("a-1"));
        assert_eq!(m.event.as_deref(), Some("Product Viewed"));
        assert_eq!(m.properties["product_id"], "P001");
        assert_eq!(m.timestamp, 1_796_119_200);
        assert_eq!(m.channel.as_deref(), Some("mobile"));
        assert_eq!(m.denied, vec!["advertising".to_string()]);
        assert_eq!(m.message_id, "m-1");
        // the journal form round-trips
        let back: Message = serde_json::from_slice(&serde_json::to_vec(&m).unwrap()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn bad_messages_are_refused_with_their_index_and_reason() {
        let body = r#"{"batch": [
            {"type": "identify", "userId": "u1", "traits": {"email": "a@b.c"}},
            {"type": "track", "userId": "u1"},
            {"type": "group", "userId": "u1"},
            {"type": "page", "anonymousId": "x", "timestamp": "yesterday"},
            {"type": "track", "event": "Signed Up"},
            {"type": "track", "userId": "u1", "event": "Late", "timestamp": "2099-01-01T00:00:00Z"},
            {"type": "identify", "userId": "u2", "traits": "not an object"},
            7,
            {"type": "screen", "anonymousId": "d-9", "name": "Home"},
            {"type": "alias", "userId": "u1"}
        ]}"#;
        let p = parse(None, body.as_bytes(), NOW).unwrap();
        let kept: Vec<usize> = p.messages.iter().map(|m| m.0).collect();
        assert_eq!(kept, vec![0, 8]);
        let why = |i: usize| {
            p.rejected
                .iter()
                .find(|r| r.index == i)
                .map(|r| r.reason.clone())
                .unwrap_or_default()
        };
        assert!(why(1).contains("event"), "{}", why(1));
        assert!(why(2).contains("group"), "{}", why(2));
        assert!(why(3).contains("timestamp"), "{}", why(3));
        assert!(why(4).contains("userId"), "{}", why(4));
        assert!(why(5).contains("ahead"), "{}", why(5));
        assert!(why(6).contains("traits"), "{}", why(6));
        assert!(why(7).contains("object"), "{}", why(7));
        assert!(why(9).contains("previousId"), "{}", why(9));
        // a screen is a page view from an app
        let screen = &p.messages[1].1;
        assert_eq!(
            (screen.kind, screen.channel.as_deref()),
            (MessageKind::Page, Some("app"))
        );
        assert_eq!(screen.timestamp, NOW, "no timestamp: the receiver's time");
    }

    #[test]
    fn a_missing_message_id_is_the_content_hash() {
        let a = one("page", r#"{"anonymousId": "x", "name": "Home"}"#).unwrap();
        let b = one("page", r#"{"name": "Home", "anonymousId": "x"}"#).unwrap();
        let c = one("page", r#"{"anonymousId": "y", "name": "Home"}"#).unwrap();
        assert!(a.message_id.starts_with("sha256:"));
        assert_eq!(a.message_id, b.message_id, "key order does not matter");
        assert_ne!(a.message_id, c.message_id);
    }

    #[test]
    fn whole_body_errors_and_type_mismatches() {
        assert!(parse(None, b"not json", NOW).is_err());
        assert!(parse(None, b"[1]", NOW).is_err());
        assert!(parse(None, br#"{"batch": []}"#, NOW).is_err());
        assert!(parse(None, br#"{"messages": []}"#, NOW).is_err());
        let e = one(
            "track",
            r#"{"type": "identify", "userId": "u", "event": "x"}"#,
        )
        .unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let s = one("screen", r#"{"anonymousId": "d", "name": "Home"}"#).unwrap();
        assert_eq!(
            (s.kind, s.channel.as_deref()),
            (MessageKind::Page, Some("app"))
        );
        assert!(one("screen", r#"{"type": "page", "anonymousId": "d"}"#).is_err());
        assert!(parse(Some("group"), b"{}", NOW).is_err());
        let long = format!(r#"{{"userId": "{}", "event": "x"}}"#, "u".repeat(201));
        assert!(one("track", &long).unwrap_err().contains("longer"));
    }
}
