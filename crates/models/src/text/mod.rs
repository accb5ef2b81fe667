//! Text analysis of customer feedback: the language of a text, its
//! sentiment (a score in [-1, 1] and a polarity) and its topics (delivery,
//! damage and quality, refunds and billing, support, size and fit, price,
//! wrong or missing items, website and app), in English and Simplified
//! Chinese.
//!
//! Why here and shaped like this: analysing a text is a pure function of the
//! text, so it lives with the other models (no I/O, no store); the engine
//! aggregates the results per segment, department and period and feeds them
//! to churn and the alerts. The method is a lexicon with rules, not a
//! trained model, so every label can be explained by the words that made
//! it ([`Sentiment::words`]) and nothing is downloaded at run time:
//!
//! - **Tokens.** Latin text is split into lowercased words (apostrophes kept,
//!   so `didn't` is one word); runs of Chinese characters are segmented with
//!   jieba (its dictionary is loaded once, on the first Chinese text);
//!   punctuation ends a clause.
//! - **Sentiment.** Each polar word ([`lexicon::VALENCE`], ±2 at most) counts
//!   with its valence, times the intensifiers before it (`very`, `很`,
//!   `有点`), flipped and damped (× −0.75) when a negator (`not`, `never`,
//!   `n't`, `不`, `没有`) stands up to three words before it in the same
//!   clause; a word of what the customer expected (`received`, `refund`,
//!   `收到`, `解决`) counts −1 when negated (`not received`, `没有收到退款`)
//!   and nothing otherwise. Chinese compounds that jieba keeps whole are
//!   split into modifier and word when the whole is not in the lexicon
//!   (`太慢` = `太` + `慢`, `没到` = `没` + `到`). After a contrast (`but`,
//!   `但是`) the clause counts 1.5× and what came before 0.5×. The sum `s`
//!   becomes `s / √(s² + 2)`, in (−1, 1); below −0.25 is negative, above
//!   0.25 positive, between neutral.
//! - **Topics.** A text is about a topic when one of its words (or the word
//!   inside a Chinese compound) is in the topic's list ([`lexicon::TOPICS`]).
//! - **Language.** Chinese when CJK characters are at least a third as many
//!   as Latin letters, else English; a mixed text is analysed word by word
//!   in both vocabularies either way.
//!
//! Limits: sarcasm, emoji and words outside the lists are not understood
//! (they count as neutral); only the first [`MAX_CHARS`] characters of a
//! text are read.

pub mod lexicon;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

/// Longest text read (characters); the rest is ignored.
pub const MAX_CHARS: usize = 20_000;

/// Scores at or below minus this are negative, at or above it positive.
pub const POLARITY_THRESHOLD: f64 = 0.25;

/// How much a negated polar word keeps of its valence (with the sign flipped).
const NEGATION_DAMPING: f64 = 0.75;

/// How many words after a negator it reaches.
const NEGATION_SCOPE: u8 = 3;

/// The normalization constant of `s / √(s² + α)`.
const ALPHA: f64 = 2.0;

/// jieba and its dictionary: loaded once, on the first Chinese text.
static JIEBA: LazyLock<jieba_rs::Jieba> = LazyLock::new(jieba_rs::Jieba::new);

/// The language of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextLang {
    /// English (and any text without enough Chinese characters).
    En,
    /// Simplified Chinese.
    Zh,
}

impl TextLang {
    /// `en` or `zh`.
    pub fn as_str(self) -> &'static str {
        match self {
            TextLang::En => "en",
            TextLang::Zh => "zh",
        }
    }
}

/// A text's polarity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Polarity {
    /// Score at most −[`POLARITY_THRESHOLD`].
    Negative,
    /// Between.
    Neutral,
    /// Score at least [`POLARITY_THRESHOLD`].
    Positive,
}

impl Polarity {
    /// Every polarity, negative first.
    pub const ALL: [Polarity; 3] = [Polarity::Negative, Polarity::Neutral, Polarity::Positive];

    /// `negative`, `neutral` or `positive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Polarity::Negative => "negative",
            Polarity::Neutral => "neutral",
            Polarity::Positive => "positive",
        }
    }

    /// The polarity of a score.
    pub fn of(score: f64) -> Polarity {
        if score <= -POLARITY_THRESHOLD {
            Polarity::Negative
        } else if score >= POLARITY_THRESHOLD {
            Polarity::Positive
        } else {
            Polarity::Neutral
        }
    }
}

/// A topic of the curated list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// Delivery, shipping, lateness.
    Delivery,
    /// Damage, defects, quality.
    Quality,
    /// Refunds, charges, invoices.
    Billing,
    /// Customer support and service.
    Support,
    /// Size and fit.
    Fit,
    /// Price and value.
    Price,
    /// Wrong or missing items.
    Accuracy,
    /// Website, app, account.
    Website,
}

impl Topic {
    /// Every topic, in the order of [`lexicon::TOPICS`].
    pub const ALL: [Topic; 8] = [
        Topic::Delivery,
        Topic::Quality,
        Topic::Billing,
        Topic::Support,
        Topic::Fit,
        Topic::Price,
        Topic::Accuracy,
        Topic::Website,
    ];

    fn entry(
        self,
    ) -> &'static (
        &'static str,
        &'static str,
        &'static str,
        &'static [&'static str],
    ) {
        &lexicon::TOPICS[self as usize]
    }

    /// The id (`delivery`, …).
    pub fn id(self) -> &'static str {
        self.entry().0
    }

    /// The English name.
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// The Chinese name.
    pub fn name_zh(self) -> &'static str {
        self.entry().2
    }

    /// A topic by id.
    pub fn parse(id: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.id() == id)
    }
}

/// The sentiment of a text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    /// In (−1, 1): negative below 0.
    pub score: f64,
    /// Negative, neutral or positive (see [`POLARITY_THRESHOLD`]).
    pub polarity: Polarity,
    /// The words that made it, as they counted (`not received`, `late`,
    /// `太 慢`): the explanation.
    pub words: Vec<String>,
}

/// Everything the analysis says about one text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Language.
    pub lang: TextLang,
    /// Sentiment.
    pub sentiment: Sentiment,
    /// Topics, in [`Topic::ALL`] order.
    pub topics: Vec<Topic>,
    /// Content words (no stopwords, negators or intensifiers), each once,
    /// in order of appearance: the candidates for top keywords.
    pub keywords: Vec<String>,
}

/// One token of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A lowercased word (or a jieba segment of Chinese).
    Word(String),
    /// Punctuation that ends a clause.
    Break,
}

struct Lexicon {
    valence: HashMap<&'static str, f64>,
    bigrams: HashMap<(&'static str, &'static str), f64>,
    negators: HashSet<&'static str>,
    intensifiers: HashMap<&'static str, f64>,
    contrasts: HashSet<&'static str>,
    expected: HashSet<&'static str>,
    topics: HashMap<&'static str, Vec<Topic>>,
    stop: HashSet<&'static str>,
}

static LEX: LazyLock<Lexicon> = LazyLock::new(|| {
    let mut topics: HashMap<&'static str, Vec<Topic>> = HashMap::new();
    for t in Topic::ALL {
        for w in t.entry().3 {
            let e = topics.entry(*w).or_default();
            if !e.contains(&t) {
                e.push(t);
            }
        }
    }
    Lexicon {
        valence: lexicon::VALENCE.iter().copied().collect(),
        bigrams: lexicon::BIGRAMS
            .iter()
            .map(|(a, b, v)| ((*a, *b), *v))
            .collect(),
        negators: lexicon::NEGATORS.iter().copied().collect(),
        intensifiers: lexicon::INTENSIFIERS.iter().copied().collect(),
        contrasts: lexicon::CONTRASTS.iter().copied().collect(),
        expected: lexicon::EXPECTED.iter().copied().collect(),
        topics,
        stop: lexicon::STOPWORDS.iter().copied().collect(),
    }
});

/// Whether a character is a CJK ideograph.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0xF900..=0xFAFF | 0x20000..=0x2A6DF | 0x2A700..=0x2EBEF)
}

fn is_break(c: char) -> bool {
    matches!(
        c,
        '.' | ','
            | '!'
            | '?'
            | ';'
            | ':'
            | '\n'
            | '…'
            | '，'
            | '。'
            | '！'
            | '？'
            | '；'
            | '：'
            | '、'
            | '～'
            | '~'
    )
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '’')
}

/// The language of a text (see the module docs).
pub fn detect_lang(text: &str) -> TextLang {
    let (mut cjk, mut latin) = (0usize, 0usize);
    for c in text.chars().take(MAX_CHARS) {
        if is_cjk(c) {
            cjk += 1;
        } else if c.is_alphabetic() {
            latin += 1;
        }
    }
    if cjk > 0 && cjk * 3 >= latin {
        TextLang::Zh
    } else {
        TextLang::En
    }
}

/// The tokens of a text: lowercased words, jieba's segments of Chinese
/// runs, and clause breaks.
pub fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut han = String::new();
    let flush_word = |word: &mut String, out: &mut Vec<Token>| {
        let w = word.trim_end_matches('\'');
        if !w.is_empty() {
            out.push(Token::Word(w.to_string()));
        }
        word.clear();
    };
    let flush_han = |han: &mut String, out: &mut Vec<Token>| {
        if !han.is_empty() {
            for t in JIEBA.cut(han, true) {
                out.push(Token::Word(t.word.to_string()));
            }
            han.clear();
        }
    };
    for c in text.chars().take(MAX_CHARS) {
        if is_cjk(c) {
            flush_word(&mut word, &mut out);
            han.push(c);
        } else if c.is_alphanumeric() || (is_apostrophe(c) && !word.is_empty()) {
            flush_han(&mut han, &mut out);
            if is_apostrophe(c) {
                word.push('\'');
            } else {
                word.extend(c.to_lowercase());
            }
        } else {
            flush_word(&mut word, &mut out);
            flush_han(&mut han, &mut out);
            if is_break(c) && out.last().is_some_and(|t| *t != Token::Break) {
                out.push(Token::Break);
            }
        }
    }
    flush_word(&mut word, &mut out);
    flush_han(&mut han, &mut out);
    out
}

/// An English word and its forms without a plural or tense ending
/// (`refunds` → `refund`, `delays` → `delay`), for lookups; other words
/// as they are.
fn forms(w: &str) -> Vec<String> {
    let mut v = vec![w.to_string()];
    if !w.is_ascii() || w.len() < 4 {
        return v;
    }
    let mut add = |s: String| {
        if s.len() >= 3 && !v.contains(&s) {
            v.push(s);
        }
    };
    if let Some(s) = w.strip_suffix("ies") {
        add(format!("{s}y"));
    }
    if let Some(s) = w.strip_suffix('s')
        && !w.ends_with("ss")
    {
        add(s.to_string());
    }
    if let Some(s) = w.strip_suffix("es") {
        add(s.to_string());
    }
    if let Some(s) = w.strip_suffix("ed") {
        add(s.to_string());
        add(format!("{s}e"));
    }
    if let Some(s) = w.strip_suffix("ing") {
        add(s.to_string());
        add(format!("{s}e"));
    }
    v
}

/// Chinese modifiers a compound may start with, and what they do.
enum Prefix {
    Negate,
    Boost(f64),
}

fn prefix_of(c: char) -> Option<Prefix> {
    match c {
        '不' | '没' | '未' | '无' => Some(Prefix::Negate),
        '很' | '好' => Some(Prefix::Boost(1.3)),
        '太' | '超' | '特' => Some(Prefix::Boost(1.4)),
        '真' => Some(Prefix::Boost(1.2)),
        '挺' => Some(Prefix::Boost(1.1)),
        '最' => Some(Prefix::Boost(1.5)),
        '更' => Some(Prefix::Boost(1.2)),
        _ => None,
    }
}

/// A polar (or expected) word as found in the lexicon.
struct Polar {
    /// The valence (0 for an expected word without one).
    value: f64,
    /// An expected word (negative when negated).
    expected: bool,
    /// A negation inside a Chinese compound (`没到`).
    negated: bool,
    /// An intensifier inside a Chinese compound (`太慢`).
    boost: f64,
    /// How it is shown in [`Sentiment::words`].
    shown: String,
}

fn lookup(lex: &Lexicon, w: &str) -> Option<(f64, bool)> {
    for f in forms(w) {
        let expected = lex.expected.contains(f.as_str());
        let value = lex.valence.get(f.as_str()).copied();
        if expected || value.is_some() {
            return Some((value.unwrap_or(0.0), expected));
        }
    }
    None
}

fn polar(lex: &Lexicon, w: &str) -> Option<Polar> {
    if let Some((value, expected)) = lookup(lex, w) {
        return Some(Polar {
            value,
            expected,
            negated: false,
            boost: 1.0,
            shown: w.to_string(),
        });
    }
    // a Chinese compound: modifier + word (`太慢`, `没到`, `不合身`)
    let mut chars = w.chars();
    let first = chars.next()?;
    let rest = chars.as_str();
    if !is_cjk(first) || rest.is_empty() {
        return None;
    }
    let p = prefix_of(first)?;
    let (value, expected) = lookup(lex, rest)?;
    let (negated, boost) = match p {
        Prefix::Negate => (true, 1.0),
        Prefix::Boost(b) => (false, b),
    };
    Some(Polar {
        value,
        expected,
        negated,
        boost,
        shown: format!("{first} {rest}"),
    })
}

fn is_negator(lex: &Lexicon, w: &str) -> bool {
    lex.negators.contains(w) || w.ends_with("n't")
}

/// The sentiment of tokens (see the module docs for the rules).
pub fn sentiment_of(toks: &[Token]) -> Sentiment {
    let lex = &*LEX;
    let mut sum = 0.0;
    let mut weight = 1.0;
    let mut words: Vec<String> = Vec::new();
    let mut neg_left: u8 = 0;
    let mut neg_word = String::new();
    let mut boost = 1.0;
    let mut boost_left: u8 = 0;
    let mut i = 0;
    while i < toks.len() {
        let w = match &toks[i] {
            Token::Break => {
                neg_left = 0;
                boost = 1.0;
                boost_left = 0;
                i += 1;
                continue;
            }
            Token::Word(w) => w.as_str(),
        };
        // two words that count only together (`charged twice`)
        if let Some(Token::Word(next)) = toks.get(i + 1)
            && let Some(&v) = lex.bigrams.get(&(w, next.as_str()))
        {
            let b = if boost_left > 0 { boost } else { 1.0 };
            let x = if neg_left > 0 {
                -v * b * NEGATION_DAMPING
            } else {
                v * b
            };
            sum += x * weight;
            words.push(format!("{w} {next}"));
            neg_left = 0;
            boost = 1.0;
            boost_left = 0;
            i += 2;
            continue;
        }
        i += 1;
        if lex.contrasts.contains(w) {
            sum *= 0.5;
            weight = 1.5;
            neg_left = 0;
            boost = 1.0;
            boost_left = 0;
            continue;
        }
        if is_negator(lex, w) {
            neg_left = NEGATION_SCOPE;
            neg_word = w.to_string();
            continue;
        }
        if let Some(&m) = lex.intensifiers.get(w) {
            boost *= m;
            boost_left = NEGATION_SCOPE;
            continue;
        }
        let counted = polar(lex, w).and_then(|p| {
            let negated = (neg_left > 0) ^ p.negated;
            let b = p.boost * if boost_left > 0 { boost } else { 1.0 };
            let x = if p.expected && negated {
                -b
            } else if negated {
                -p.value * b * NEGATION_DAMPING
            } else {
                p.value * b
            };
            (x != 0.0).then_some((x, p.shown))
        });
        match counted {
            Some((x, shown)) => {
                sum += x * weight;
                words.push(if neg_left > 0 {
                    format!("{neg_word} {shown}")
                } else {
                    shown
                });
                neg_left = 0;
                boost = 1.0;
                boost_left = 0;
            }
            None => {
                neg_left = neg_left.saturating_sub(1);
                boost_left = boost_left.saturating_sub(1);
                if boost_left == 0 {
                    boost = 1.0;
                }
            }
        }
    }
    let score = (sum / (sum * sum + ALPHA).sqrt()).clamp(-1.0, 1.0);
    Sentiment {
        score,
        polarity: Polarity::of(score),
        words,
    }
}

/// The topics of tokens, in [`Topic::ALL`] order.
pub fn topics_of(toks: &[Token]) -> Vec<Topic> {
    let lex = &*LEX;
    let mut found: BTreeSet<Topic> = BTreeSet::new();
    for t in toks {
        let Token::Word(w) = t else { continue };
        let mut cands = forms(w);
        // the word inside a Chinese compound (`太贵` → `贵`, `不合身` →
        // `合身`), unless the compound is a word of its own (`不错`)
        let mut chars = w.chars();
        if let Some(first) = chars.next()
            && is_cjk(first)
            && prefix_of(first).is_some()
            && !chars.as_str().is_empty()
            && lookup(lex, w).is_none()
            && !lex.topics.contains_key(w.as_str())
        {
            cands.push(chars.as_str().to_string());
        }
        for c in cands {
            if let Some(ts) = lex.topics.get(c.as_str()) {
                found.extend(ts.iter().copied());
            }
        }
    }
    found.into_iter().collect()
}

/// The content words of tokens (see [`Analysis::keywords`]).
pub fn keywords_of(toks: &[Token]) -> Vec<String> {
    let lex = &*LEX;
    let mut seen: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    for t in toks {
        let Token::Word(w) = t else { continue };
        let w = w.as_str();
        if lex.stop.contains(w)
            || is_negator(lex, w)
            || lex.intensifiers.contains_key(w)
            || lex.contrasts.contains(w)
        {
            continue;
        }
        let han = w.chars().any(is_cjk);
        let ok = if han {
            w.chars().count() >= 2 && w.chars().all(is_cjk)
        } else {
            w.len() >= 3 && w.chars().all(|c| c.is_alphabetic())
        };
        if ok && seen.insert(w) {
            out.push(w.to_string());
        }
    }
    out
}

/// The sentiment of a text.
pub fn sentiment(text: &str) -> Sentiment {
    sentiment_of(&tokens(text))
}

/// Language, sentiment, topics and keywords of a text.
pub fn analyze(text: &str) -> Analysis {
    let toks = tokens(text);
    Analysis {
        lang: detect_lang(text),
        sentiment: sentiment_of(&toks),
        topics: topics_of(&toks),
        keywords: keywords_of(&toks),
    }
}

#[cfg(test)]
mod tests;
