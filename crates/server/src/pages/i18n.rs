//! The language of a page and how numbers, money and dates are written in it.
//!
//! Why here and shaped like this: every string of a page is written at its
//! use site in both languages (`l.t("Customers", "客户")`), so a page cannot
//! gain an English string without its Chinese one, and there is no catalogue
//! to drift from the pages. The language comes from the `lang` cookie (the
//! switch in the header) else from `Accept-Language`; formatting follows the
//! language (grouping, decimal places, date order, the currency's symbol as
//! each locale writes it).

use chrono::{DateTime, Datelike, NaiveDate, Utc};

/// A page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Simplified Chinese (简体中文).
    Zh,
}

impl Lang {
    /// The `lang` attribute and cookie value.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    /// The language from a cookie value or a tag (`zh`, `zh-CN`, `en-US`…).
    pub fn parse(tag: &str) -> Option<Lang> {
        let t = tag.trim().to_ascii_lowercase();
        let primary = t.split(['-', '_']).next().unwrap_or("");
        match primary {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The cookie wins; else the first supported language of
    /// `Accept-Language` by quality; else English.
    pub fn negotiate(cookie: Option<&str>, accept: Option<&str>) -> Lang {
        if let Some(l) = cookie.and_then(Lang::parse) {
            return l;
        }
        let mut best: Option<(f32, usize, Lang)> = None;
        for (i, part) in accept.unwrap_or("").split(',').enumerate().take(32) {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("");
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q.is_nan() || q <= 0.0 {
                continue;
            }
            if let Some(l) = Lang::parse(tag) {
                // higher quality first; on a tie the earlier entry
                let better = match best {
                    None => true,
                    Some((bq, bi, _)) => q > bq || (q == bq && i < bi),
                };
                if better {
                    best = Some((q, i, l));
                }
            }
        }
        best.map_or(Lang::En, |b| b.2)
    }

    /// The other language (the switch).
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Zh,
            Lang::Zh => Lang::En,
        }
    }

    /// The language's own name.
    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Zh => "简体中文",
        }
    }

    /// The string in this language.
    pub fn t(self, en: &'static str, zh: &'static str) -> &'static str {
        match self {
            Lang::En => en,
            Lang::Zh => zh,
        }
    }

    /// A whole number with thousands separators (both languages group by
    /// three in figures: 1,234,567).
    pub fn int(self, n: i64) -> String {
        let digits = n.unsigned_abs().to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
        if n < 0 {
            out.push('-');
        }
        let first = digits.len() % 3;
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (i + 3 - first).is_multiple_of(3) {
                out.push(',');
            }
            out.push(ch);
        }
        out
    }

    /// A number with `dp` decimal places and grouping; `–` when not finite.
    pub fn num(self, x: f64, dp: usize) -> String {
        if !x.is_finite() {
            return "–".into();
        }
        let s = format!("{:.*}", dp, x.abs());
        let (whole, frac) = s.split_once('.').unwrap_or((&s, ""));
        let whole: i64 = whole.parse().unwrap_or(0);
        let neg = x < 0.0 && s.bytes().any(|b| (b'1'..=b'9').contains(&b));
        let mut out = String::new();
        if neg {
            out.push('-');
        }
        out.push_str(&self.int(whole));
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        out
    }

    /// A share in [0, 1] as a percentage with `dp` places.
    pub fn pct(self, x: f64, dp: usize) -> String {
        if !x.is_finite() {
            return "–".into();
        }
        format!("{}%", self.num(x * 100.0, dp))
    }

    /// Money in `currency` (ISO 4217), two decimals, the symbol as this
    /// language writes it (US$ and ¥ in Chinese, $ and CN¥ in English).
    pub fn money(self, x: f64, currency: &str) -> String {
        let sym = match (currency, self) {
            ("USD", Lang::En) => "$",
            ("USD", Lang::Zh) => "US$",
            ("CNY", Lang::En) => "CN¥",
            ("CNY", Lang::Zh) => "¥",
            ("EUR", _) => "€",
            ("GBP", _) => "£",
            ("JPY", Lang::En) => "JP¥",
            ("JPY", Lang::Zh) => "JP¥",
            _ => "",
        };
        let n = self.num(x.abs(), 2);
        let sign = if x < 0.0 && n.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
            "-"
        } else {
            ""
        };
        if sym.is_empty() {
            format!("{sign}{n} {currency}")
        } else {
            format!("{sign}{sym}{n}")
        }
    }

    /// A calendar date: `6 Dec 2026` / `2026年12月6日`.
    pub fn date(self, d: NaiveDate) -> String {
        match self {
            Lang::En => {
                const M: [&str; 12] = [
                    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                    "Dec",
                ];
                format!("{} {} {}", d.day(), M[d.month0() as usize], d.year())
            }
            Lang::Zh => format!("{}年{}月{}日", d.year(), d.month(), d.day()),
        }
    }

    /// A Unix time (seconds) as a date; `–` when out of range.
    pub fn date_ts(self, secs: i64) -> String {
        DateTime::<Utc>::from_timestamp(secs, 0).map_or("–".into(), |t| self.date(t.date_naive()))
    }

    /// A Unix time (seconds) as date and UTC time.
    pub fn datetime_ts(self, secs: i64) -> String {
        DateTime::<Utc>::from_timestamp(secs, 0).map_or("–".into(), |t| {
            format!("{} {} UTC", self.date(t.date_naive()), t.format("%H:%M"))
        })
    }

    /// An RFC 3339 time or `YYYY-MM-DD` date as this language writes it (the
    /// input unchanged when it parses as neither).
    pub fn when(self, s: &str) -> String {
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return self.datetime_ts(t.timestamp());
        }
        if let Ok(d) = NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d") {
            return self.date(d);
        }
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        assert_eq!(
            Lang::negotiate(None, Some("zh-CN,zh;q=0.9,en;q=0.8")),
            Lang::Zh
        );
        assert_eq!(
            Lang::negotiate(None, Some("en-US,en;q=0.9,zh;q=0.8")),
            Lang::En
        );
        assert_eq!(
            Lang::negotiate(None, Some("fr,zh;q=0.5,en;q=0.4")),
            Lang::Zh
        );
        assert_eq!(Lang::negotiate(None, Some("de, fr")), Lang::En);
        assert_eq!(Lang::negotiate(None, Some("zh;q=0, en;q=0.1")), Lang::En);
        assert_eq!(Lang::negotiate(Some("en"), Some("zh-CN")), Lang::En);
        assert_eq!(Lang::negotiate(Some("zh-CN"), Some("en")), Lang::Zh);
        assert_eq!(Lang::negotiate(Some("xx"), None), Lang::En);
        assert_eq!(Lang::negotiate(None, None), Lang::En);
    }

    #[test]
    fn numbers() {
        let l = Lang::En;
        assert_eq!(l.int(0), "0");
        assert_eq!(l.int(999), "999");
        assert_eq!(l.int(1000), "1,000");
        assert_eq!(l.int(-1234567), "-1,234,567");
        assert_eq!(l.num(4596039.578, 2), "4,596,039.58");
        assert_eq!(l.num(-0.001, 2), "0.00");
        assert_eq!(l.num(-12.5, 1), "-12.5");
        assert_eq!(l.num(f64::NAN, 1), "–");
        assert_eq!(l.pct(0.1234, 1), "12.3%");
        assert_eq!(Lang::En.money(1234.5, "USD"), "$1,234.50");
        assert_eq!(Lang::Zh.money(1234.5, "USD"), "US$1,234.50");
        assert_eq!(Lang::Zh.money(-3.0, "CNY"), "-¥3.00");
        assert_eq!(Lang::En.money(3.0, "CHF"), "3.00 CHF");
    }

    #[test]
    fn dates() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 6).expect("date");
        assert_eq!(Lang::En.date(d), "6 Dec 2026");
        assert_eq!(Lang::Zh.date(d), "2026年12月6日");
        assert_eq!(
            Lang::Zh.when("2026-12-06T10:30:00Z"),
            "2026年12月6日 10:30 UTC"
        );
        assert_eq!(Lang::En.when("2026-01-02"), "2 Jan 2026");
        assert_eq!(Lang::En.when("soon"), "soon");
    }
}
