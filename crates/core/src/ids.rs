//! Identity keys, normalized once on the way in.
//!
//! Emails and phone numbers are *global* keys: the same value in any
//! department's file means the same key, so they are normalized so that
//! formatting differences (case, whitespace, punctuation, a missing country
//! code) do not hide a match. Customer ids are local to a namespace.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What kind of key an identity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// A customer id local to a namespace (CRM id, web user id, household id, …).
    Customer,
    /// An email address (global).
    Email,
    /// A phone number (global).
    Phone,
}

impl KeyKind {
    /// Lower-case name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Customer => "customer",
            KeyKind::Email => "email",
            KeyKind::Phone => "phone",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "customer" => Some(KeyKind::Customer),
            "email" => Some(KeyKind::Email),
            "phone" => Some(KeyKind::Phone),
            _ => None,
        }
    }

    /// The namespace global keys live in (`email`, `phone`); `None` for customer ids.
    pub fn global_namespace(self) -> Option<&'static str> {
        match self {
            KeyKind::Customer => None,
            KeyKind::Email => Some("email"),
            KeyKind::Phone => Some("phone"),
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A normalized email address: trimmed and lower-cased, with one `@` between
/// non-empty parts and a dot in the domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Email(String);

impl Email {
    /// Normalizes and validates; `None` when it is not an email address.
    pub fn parse(raw: &str) -> Option<Email> {
        let s = raw.trim().to_lowercase();
        let (local, domain) = s.split_once('@')?;
        let valid = !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !s.chars().any(char::is_whitespace);
        valid.then_some(Email(s))
    }

    /// The normalized text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A normalized phone number: digits only, with the country code.
///
/// Rules: keep the digits; a leading `+` means the number already has its
/// country code; a leading `00` is the international prefix and is dropped;
/// otherwise a number of at most 10 digits gets `default_country_code`
/// prefixed (a leading trunk `0` is dropped first). So `+1 (555) 123-4567`,
/// `555.123.4567` and `+15551234567` are one key with country code `1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Phone(String);

impl Phone {
    /// Normalizes; `None` when fewer than 7 digits remain or letters are present.
    pub fn parse(raw: &str, default_country_code: Option<&str>) -> Option<Phone> {
        let trimmed = raw.trim();
        if trimmed.chars().any(|c| c.is_alphabetic()) {
            return None;
        }
        let plus = trimmed.starts_with('+');
        let mut digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
        if digits.len() < 7 {
            return None;
        }
        if !plus {
            if let Some(rest) = digits.strip_prefix("00") {
                digits = rest.to_string();
            } else if let Some(cc) = default_country_code {
                let national = digits.strip_prefix('0').unwrap_or(&digits).to_string();
                if national.len() <= 10 {
                    digits = format!("{cc}{national}");
                }
            }
        }
        if digits.len() > 15 {
            return None;
        }
        Some(Phone(digits))
    }

    /// The normalized digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A customer id within a namespace (trimmed, never empty).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CustomerKey(String);

impl CustomerKey {
    /// Trims; `None` when empty.
    pub fn parse(raw: &str) -> Option<CustomerKey> {
        let t = raw.trim();
        (!t.is_empty()).then(|| CustomerKey(t.to_string()))
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Normalizes a value for blocklist comparison: trimmed, lower-cased.
pub fn blocklist_form(raw: &str) -> String {
    raw.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_normalizes_case_and_space() {
        assert_eq!(
            Email::parse("  Ann.Lee@Example.COM ").map(|e| e.0),
            Some("ann.lee@example.com".into())
        );
        assert!(Email::parse("n/a").is_none());
        assert!(Email::parse("a@b").is_none());
        assert!(Email::parse("a b@c.com").is_none());
        assert!(Email::parse("@c.com").is_none());
    }

    #[test]
    fn phone_formats_are_one_key() {
        let cc = Some("1");
        let a = Phone::parse("+1 (555) 123-4567", cc);
        let b = Phone::parse("555.123.4567", cc);
        let c = Phone::parse("+15551234567", cc);
        let d = Phone::parse("001 555 123 4567", cc);
        assert_eq!(a.as_ref().map(Phone::as_str), Some("15551234567"));
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(c, d);
        assert!(Phone::parse("123", cc).is_none());
        assert!(Phone::parse("call me", cc).is_none());
        assert_eq!(
            Phone::parse("0555 123 4567", Some("44")).map(|p| p.0),
            Some("445551234567".into())
        );
    }

    #[test]
    fn customer_key_trims() {
        assert_eq!(CustomerKey::parse(" C01 ").map(|k| k.0), Some("C01".into()));
        assert!(CustomerKey::parse("  ").is_none());
    }
}
