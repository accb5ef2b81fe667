//! Feedback figures: NPS and CSAT kept apart by their scales, the sentiment
//! and topics of the texts (see [`infogap_models::text`]), per segment or
//! department and per week or month with the change from one period to the
//! next (`GET /v1/feedback/summary`, the dashboard's feedback page).
//!
//! Why here: the summary joins the store's feedback rows (with the source
//! each came from, for departments and department keys), the segments of
//! the served snapshot, the consents and the policy, so it is a use case
//! like the other `share_*` ones: authorized as `feedback.read`, audited,
//! shaped by the role.
//!
//! Scales: a 0–10 answer is an NPS answer (promoters 9–10, detractors 0–6,
//! NPS = % promoters − % detractors), a 1–5 answer a CSAT answer (satisfied:
//! 4–5, CSAT = % satisfied). The kind says which when its name does
//! (`*nps*`; `*csat*`, `*review*`, `*rating*`); otherwise the scores of that
//! kind decide (any above 5 or a 0: 0–10; all within 1–5: 1–5), and the
//! answer lists the scale of every kind and how it was decided. The two are
//! never averaged together. Tickets and forum posts have no score and count
//! in the sentiment and topics only.
//!
//! Protection: admin and analyst see exact figures (but what the texts
//! say, sentiment and topics, only where the role sees feedback text or at
//! least `[privacy] min_group_size` people wrote them: the analyst does not
//! see texts). For every other role a figure is shown only when at least
//! `min_group_size` people are behind it: a segment or department with fewer is merged into
//! "Other (small groups)" (suppressed when that is still too small), a
//! period with fewer is left blank, and an NPS, CSAT, sentiment
//! distribution or topic with fewer respondents is withheld. With
//! `[privacy] dp_epsilon` set, the figures (which count facts, any number
//! per person) are not released to those roles at all. Keywords are words
//! of the texts, so only roles that see feedback text get them, and each
//! (outside admin and analyst) only when at least `min_group_size` people
//! used it. People who withdrew `analytics` consent are not counted.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{Datelike, NaiveDate};
use infogap_core::access::{Action, FieldClass, Visibility};
use infogap_models::text::{self, Analysis, Polarity, TextLang, Topic};
use serde::{Deserialize, Serialize};

use crate::access::{Access, PolicyNote, PrincipalKind};
use crate::privacy::aggregate::{AggregateNote, OTHER, sees_exact};
use crate::privacy::consent::LeftOut;
use crate::{Engine, EngineError};

/// The fewest answers (or texts) behind both periods for the change of a
/// figure to be given.
pub const MIN_CHANGE_ANSWERS: usize = 10;

/// How many topics a group or period lists.
pub const TOP_TOPICS: usize = 3;
/// How many keywords the summary lists.
pub const TOP_KEYWORDS: usize = 15;
/// The label of feedback of customers without a segment.
pub const NO_SEGMENT: &str = "(no segment)";

/// The scale of a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// 0–10, "how likely are you to recommend us".
    Nps,
    /// 1–5, satisfaction or stars.
    Csat,
}

/// The scale a kind's name says, if it does.
pub fn scale_named(kind: &str) -> Option<Scale> {
    let k = kind.to_ascii_lowercase();
    if k.contains("csat") || k.contains("review") || k.contains("rating") || k.contains("star") {
        Some(Scale::Csat)
    } else if k.contains("nps") {
        Some(Scale::Nps)
    } else {
        None
    }
}

/// The scale of scores whose kind does not name one: 0–10 when any is
/// above 5 or is 0, 1–5 when all are whole numbers from 1 to 5, else none.
pub fn scale_inferred(scores: &[f64]) -> Option<Scale> {
    let s: Vec<f64> = scores.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return None;
    }
    if s.iter().all(|x| (0.0..=10.0).contains(x)) && s.iter().any(|&x| x > 5.0 || x == 0.0) {
        Some(Scale::Nps)
    } else if s
        .iter()
        .all(|x| (1.0..=5.0).contains(x) && x.fract() == 0.0)
    {
        Some(Scale::Csat)
    } else {
        None
    }
}

/// Whether a text reads as a complaint (negative sentiment).
pub fn negative_text(t: &str) -> bool {
    text::sentiment(t).polarity == Polarity::Negative
}

/// The period of the trend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// ISO weeks (Monday to Sunday, `2025-W07`).
    Week,
    /// Calendar months (`2025-07`).
    #[default]
    Month,
}

impl Period {
    /// Parses `week` or `month`.
    pub fn parse(s: &str) -> Result<Period, EngineError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "week" | "weeks" | "weekly" => Ok(Period::Week),
            "month" | "months" | "monthly" => Ok(Period::Month),
            other => Err(EngineError::Invalid(format!(
                "period: `week` or `month`, not {:?}",
                other.chars().take(40).collect::<String>()
            ))),
        }
    }
}

/// What the groups are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// The customers' RFM segments.
    Segment,
    /// The source and kind of the feedback (`surveys/review`, `support/ticket`).
    #[default]
    Department,
}

impl GroupBy {
    /// Parses `segment` or `department`.
    pub fn parse(s: &str) -> Result<GroupBy, EngineError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "segment" | "segments" => Ok(GroupBy::Segment),
            "department" | "departments" | "source" => Ok(GroupBy::Department),
            other => Err(EngineError::Invalid(format!(
                "by: `segment` or `department`, not {:?}",
                other.chars().take(40).collect::<String>()
            ))),
        }
    }
}

/// What the summary is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FeedbackQuery {
    /// Week or month (default month).
    pub period: Period,
    /// Segment or department (default department).
    pub by: GroupBy,
}

/// NPS of a set of 0–10 answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Nps {
    /// % promoters − % detractors, from −100 to 100.
    pub score: f64,
    /// Answers.
    pub answers: usize,
    /// 9–10.
    pub promoters: usize,
    /// 7–8.
    pub passives: usize,
    /// 0–6.
    pub detractors: usize,
}

/// CSAT of a set of 1–5 answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Csat {
    /// % of answers that are 4 or 5.
    pub percent: f64,
    /// Answers.
    pub answers: usize,
    /// Answers of 4 or 5.
    pub satisfied: usize,
    /// Mean answer (1–5).
    pub mean: f64,
}

/// How the texts lean.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentimentCounts {
    /// Texts analysed.
    pub texts: usize,
    /// Negative texts.
    pub negative: usize,
    /// Neutral texts.
    pub neutral: usize,
    /// Positive texts.
    pub positive: usize,
    /// Share of the texts that are negative.
    pub negative_share: f64,
    /// Mean score, −1 to 1.
    pub mean: f64,
}

/// One topic's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicFigures {
    /// Topic id.
    pub topic: Topic,
    /// English name.
    pub name: &'static str,
    /// Chinese name.
    pub name_zh: &'static str,
    /// Texts about it.
    pub texts: usize,
    /// People who wrote them.
    pub customers: usize,
    /// Of the texts, the negative ones.
    pub negative: usize,
    /// Their share.
    pub negative_share: f64,
}

/// The figures of one set of feedback. A figure is `None` when there is
/// nothing to count or fewer people than the role may see are behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// Feedback items.
    pub feedback: usize,
    /// Distinct customers.
    pub customers: usize,
    /// NPS of the 0–10 answers (behaviour class).
    pub nps: Option<Nps>,
    /// CSAT of the 1–5 answers (behaviour class).
    pub csat: Option<Csat>,
    /// Sentiment of the texts.
    pub sentiment: Option<SentimentCounts>,
    /// Topics, most texts first.
    pub topics: Vec<TopicFigures>,
}

/// One segment or department.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupFigures {
    /// Segment name, `source/kind`, or [`OTHER`].
    pub group: String,
    /// The segment's Chinese name (segments only).
    pub group_zh: Option<String>,
    /// Its figures (top topics only).
    pub figures: Figures,
}

/// One period of the trend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodFigures {
    /// `2025-W07` or `2025-07`.
    pub period: String,
    /// Its first day (`YYYY-MM-DD`).
    pub start: String,
    /// Its figures; `None` when too few people are behind them for the role.
    pub figures: Option<Figures>,
}

/// The change from the period before to the last period that has figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The earlier period.
    pub from: String,
    /// The later period.
    pub to: String,
    /// NPS points (later − earlier).
    pub nps: Option<f64>,
    /// CSAT percentage points.
    pub csat: Option<f64>,
    /// Share of negative texts (later − earlier).
    pub negative_share: Option<f64>,
}

/// One keyword.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeywordCount {
    /// The word.
    pub word: String,
    /// Texts using it.
    pub texts: usize,
    /// People who wrote them.
    pub customers: usize,
}

/// How a kind's scores were read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindScale {
    /// Stored kind.
    pub kind: String,
    /// Its scale (`None`: not counted in NPS or CSAT).
    pub scale: Option<Scale>,
    /// `named` (the kind says), `inferred` (from its scores) or `none`.
    pub decided: &'static str,
    /// Items of this kind.
    pub items: usize,
    /// Of them, scores outside the scale (not counted).
    pub out_of_scale: usize,
}

/// `GET /v1/feedback/summary`.
#[derive(Debug, Clone, Serialize)]
pub struct FeedbackSummary {
    /// Week or month.
    pub period: Period,
    /// Segment or department.
    pub by: GroupBy,
    /// Everything the principal may see, all topics.
    pub overall: Figures,
    /// Per segment or department, most feedback first.
    pub groups: Vec<GroupFigures>,
    /// Per period, oldest first, every period from the first to the last.
    pub trend: Vec<PeriodFigures>,
    /// The last period with figures against the one before it.
    pub change: Option<Change>,
    /// Most used words (roles that see feedback text only).
    pub keywords: Option<Vec<KeywordCount>>,
    /// Texts per language (`en`, `zh`).
    pub languages: BTreeMap<String, usize>,
    /// How each kind's scores were read.
    pub scales: Vec<KindScale>,
    /// Customers not counted for lack of analytics consent.
    pub left_out: LeftOut,
    /// How the figures were protected.
    pub privacy: AggregateNote,
    /// The policy that shaped the answer.
    pub policy: PolicyNote,
}

/// The analysis of one text, as the inbox shows it beside the text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextNote {
    /// Language.
    pub lang: TextLang,
    /// Sentiment score, −1 to 1.
    pub sentiment: f64,
    /// Negative, neutral or positive.
    pub polarity: Polarity,
    /// Topics.
    pub topics: Vec<Topic>,
}

impl TextNote {
    /// The note of a text.
    pub fn of(t: &str) -> TextNote {
        let a = text::analyze(t);
        TextNote {
            lang: a.lang,
            sentiment: a.sentiment.score,
            polarity: a.sentiment.polarity,
            topics: a.topics,
        }
    }
}

// ---------------------------------------------------------------------------
// Counting

/// One feedback row, read for the summary.
struct Item {
    customer: i64,
    group: String,
    score: Option<(Scale, f64)>,
    analysis: Option<Analysis>,
    time: Option<i64>,
}

#[derive(Default, Clone)]
struct TopicAcc {
    texts: usize,
    negative: usize,
    people: HashSet<i64>,
}

#[derive(Default, Clone)]
struct Acc {
    items: usize,
    people: HashSet<i64>,
    /// Detractors, passives, promoters.
    nps: [usize; 3],
    nps_people: HashSet<i64>,
    csat_answers: usize,
    csat_satisfied: usize,
    csat_sum: f64,
    csat_people: HashSet<i64>,
    /// Negative, neutral, positive.
    polarity: [usize; 3],
    score_sum: f64,
    text_people: HashSet<i64>,
    topics: BTreeMap<Topic, TopicAcc>,
}

fn pct(x: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        100.0 * x as f64 / of as f64
    }
}

impl Acc {
    fn add(&mut self, it: &Item) {
        self.items += 1;
        self.people.insert(it.customer);
        match it.score {
            Some((Scale::Nps, s)) => {
                let k = if s >= 9.0 {
                    2
                } else if s <= 6.0 {
                    0
                } else {
                    1
                };
                self.nps[k] += 1;
                self.nps_people.insert(it.customer);
            }
            Some((Scale::Csat, s)) => {
                self.csat_answers += 1;
                self.csat_sum += s;
                if s >= 4.0 {
                    self.csat_satisfied += 1;
                }
                self.csat_people.insert(it.customer);
            }
            None => {}
        }
        if let Some(a) = &it.analysis {
            let k = match a.sentiment.polarity {
                Polarity::Negative => 0,
                Polarity::Neutral => 1,
                Polarity::Positive => 2,
            };
            self.polarity[k] += 1;
            self.score_sum += a.sentiment.score;
            self.text_people.insert(it.customer);
            for t in &a.topics {
                let e = self.topics.entry(*t).or_default();
                e.texts += 1;
                if a.sentiment.polarity == Polarity::Negative {
                    e.negative += 1;
                }
                e.people.insert(it.customer);
            }
        }
    }

    fn merge(&mut self, o: &Acc) {
        self.items += o.items;
        self.people.extend(&o.people);
        for k in 0..3 {
            self.nps[k] += o.nps[k];
            self.polarity[k] += o.polarity[k];
        }
        self.nps_people.extend(&o.nps_people);
        self.csat_answers += o.csat_answers;
        self.csat_satisfied += o.csat_satisfied;
        self.csat_sum += o.csat_sum;
        self.csat_people.extend(&o.csat_people);
        self.score_sum += o.score_sum;
        self.text_people.extend(&o.text_people);
        for (t, x) in &o.topics {
            let e = self.topics.entry(*t).or_default();
            e.texts += x.texts;
            e.negative += x.negative;
            e.people.extend(&x.people);
        }
    }

    /// The figures as `g` lets them out; `top` topics at most.
    fn figures(&self, g: &Guard, top: usize) -> Figures {
        let nps_n: usize = self.nps.iter().sum();
        let nps = (g.scores && nps_n > 0 && g.ok(self.nps_people.len())).then(|| Nps {
            score: pct(self.nps[2], nps_n) - pct(self.nps[0], nps_n),
            answers: nps_n,
            promoters: self.nps[2],
            passives: self.nps[1],
            detractors: self.nps[0],
        });
        let csat =
            (g.scores && self.csat_answers > 0 && g.ok(self.csat_people.len())).then(|| Csat {
                percent: pct(self.csat_satisfied, self.csat_answers),
                answers: self.csat_answers,
                satisfied: self.csat_satisfied,
                mean: self.csat_sum / self.csat_answers as f64,
            });
        let texts: usize = self.polarity.iter().sum();
        let sentiment = (texts > 0 && g.ok_text(self.text_people.len())).then(|| SentimentCounts {
            texts,
            negative: self.polarity[0],
            neutral: self.polarity[1],
            positive: self.polarity[2],
            negative_share: self.polarity[0] as f64 / texts as f64,
            mean: self.score_sum / texts as f64,
        });
        let mut topics: Vec<TopicFigures> = self
            .topics
            .iter()
            .filter(|(_, x)| g.ok_text(x.people.len()))
            .map(|(t, x)| TopicFigures {
                topic: *t,
                name: t.name(),
                name_zh: t.name_zh(),
                texts: x.texts,
                customers: x.people.len(),
                negative: x.negative,
                negative_share: x.negative as f64 / x.texts.max(1) as f64,
            })
            .collect();
        topics.sort_by(|a, b| b.texts.cmp(&a.texts).then(a.topic.cmp(&b.topic)));
        topics.truncate(top);
        Figures {
            feedback: self.items,
            customers: self.people.len(),
            nps,
            csat,
            sentiment,
            topics,
        }
    }
}

/// Which figures a role gets.
struct Guard {
    exact: bool,
    min: usize,
    /// Scores (behaviour class) visible.
    scores: bool,
    /// Feedback text visible: what the texts say (sentiment, topics) is
    /// exact too; else it needs `min` people even for an exact role.
    texts: bool,
}

impl Guard {
    fn ok(&self, people: usize) -> bool {
        self.exact || people >= self.min
    }

    /// For figures read from the texts.
    fn ok_text(&self, people: usize) -> bool {
        (self.exact && self.texts) || people >= self.min
    }
}

/// A period's first day and label.
fn period_of(t: i64, p: Period) -> Option<NaiveDate> {
    let d = chrono::DateTime::from_timestamp(t, 0)?.date_naive();
    match p {
        Period::Week => {
            let w = d.iso_week();
            NaiveDate::from_isoywd_opt(w.year(), w.week(), chrono::Weekday::Mon)
        }
        Period::Month => NaiveDate::from_ymd_opt(d.year(), d.month(), 1),
    }
}

fn period_label(d: NaiveDate, p: Period) -> String {
    match p {
        Period::Week => {
            let w = d.iso_week();
            format!("{}-W{:02}", w.year(), w.week())
        }
        Period::Month => format!("{}-{:02}", d.year(), d.month()),
    }
}

fn next_period(d: NaiveDate, p: Period) -> Option<NaiveDate> {
    match p {
        Period::Week => d.checked_add_days(chrono::Days::new(7)),
        Period::Month => d.checked_add_months(chrono::Months::new(1)),
    }
}

/// Most periods a trend holds (about 20 years of weeks).
const MAX_PERIODS: usize = 1100;

impl Engine {
    /// The feedback summary (`feedback.read`): NPS and CSAT by scale,
    /// sentiment and topics, overall, per segment or department and per
    /// period with the change between the last two; see the module docs
    /// for the protection outside admin and analyst. A department key sees
    /// only its sources' feedback. Audited as `feedback.summary` (no
    /// customers named: it is an aggregate).
    pub fn share_feedback_summary(
        &self,
        a: &Access,
        ins: &crate::share::Insights,
        q: &FeedbackQuery,
    ) -> Result<FeedbackSummary, EngineError> {
        if a.action != Action::FeedbackRead || a.principal.kind == PrincipalKind::Customer {
            return Err(EngineError::Forbidden(
                "the feedback summary needs a staff grant of feedback.read".into(),
            ));
        }
        let exact = sees_exact(a);
        let privacy = self.privacy()?;
        if !exact && privacy.dp_epsilon.is_some() {
            return Err(EngineError::Forbidden(format!(
                "feedback figures count facts (any number per person), which differential privacy ([privacy] dp_epsilon) cannot bound: they are not released to role {:?}",
                a.role.name
            )));
        }
        let guard = Guard {
            exact,
            min: privacy.min_group_size.max(1),
            scores: a.visibility(FieldClass::Behaviour) != Visibility::Hidden,
            texts: a.visibility(FieldClass::FeedbackText) == Visibility::Visible,
        };
        let crate::selfservice::FeedbackRows {
            raw,
            prov,
            names,
            owner,
            scope,
        } = self.feedback_rows(a)?;
        let segment_of: HashMap<i64, (String, String)> = match q.by {
            GroupBy::Segment => {
                let t = ins.segments()?;
                t.customers
                    .iter()
                    .map(|c| {
                        let zh = t
                            .report
                            .segments
                            .iter()
                            .find(|s| s.name == c.segment)
                            .map_or_else(
                                || crate::analytics::segment_name_zh(&c.segment),
                                |s| s.name_zh.clone(),
                            );
                        (c.id, (c.segment.clone(), zh))
                    })
                    .collect()
            }
            GroupBy::Department => HashMap::new(),
        };
        let consents = self.consents()?;
        let mut left_out = LeftOut::new(infogap_core::privacy::ANALYTICS);
        let mut refused: HashMap<i64, bool> = HashMap::new();
        // (customer, source, kind, score, text, time) of every row in scope
        let mut rows = Vec::new();
        for (file, seg) in &raw.segments {
            let Some(&src) = prov.file_sources.get(file) else {
                continue;
            };
            if scope.as_ref().is_some_and(|s| !s.contains(&src)) {
                continue;
            }
            for f in &seg.feedback {
                let Some(&customer) = owner.get(&f.identity_id) else {
                    continue;
                };
                let out = *refused.entry(customer).or_insert_with(|| {
                    match consents.allows(customer, infogap_core::privacy::ANALYTICS) {
                        Ok(()) => false,
                        Err(r) => {
                            left_out.add(r);
                            true
                        }
                    }
                });
                if !out {
                    rows.push((customer, src, f));
                }
            }
        }
        // the scale of each kind: its name, else its scores
        let mut by_kind: BTreeMap<String, (usize, Vec<f64>)> = BTreeMap::new();
        for (_, _, f) in &rows {
            let e = by_kind.entry(f.kind.to_lowercase()).or_default();
            e.0 += 1;
            if let Some(s) = f.score.filter(|s| s.is_finite()) {
                e.1.push(s);
            }
        }
        let mut scales: Vec<KindScale> = by_kind
            .iter()
            .map(|(k, (n, scores))| {
                let (scale, decided) = match scale_named(k) {
                    Some(s) => (Some(s), "named"),
                    None => match scale_inferred(scores) {
                        Some(s) => (Some(s), "inferred"),
                        None => (None, "none"),
                    },
                };
                KindScale {
                    kind: k.clone(),
                    scale,
                    decided,
                    items: *n,
                    out_of_scale: 0,
                }
            })
            .collect();
        let scale_ix: HashMap<String, usize> = scales
            .iter()
            .enumerate()
            .map(|(i, s)| (s.kind.clone(), i))
            .collect();
        let mut items = Vec::with_capacity(rows.len());
        let mut languages: BTreeMap<String, usize> = BTreeMap::new();
        let mut keywords: HashMap<String, (usize, HashSet<i64>)> = HashMap::new();
        for (customer, src, f) in &rows {
            let kind = f.kind.to_lowercase();
            let ks = scale_ix.get(&kind).map(|&i| &mut scales[i]);
            let score = match (ks, f.score.filter(|s| s.is_finite())) {
                (Some(ks), Some(s)) => match ks.scale {
                    Some(Scale::Nps) if (0.0..=10.0).contains(&s) => Some((Scale::Nps, s)),
                    Some(Scale::Csat) if (1.0..=5.0).contains(&s) => Some((Scale::Csat, s)),
                    Some(_) => {
                        ks.out_of_scale += 1;
                        None
                    }
                    None => None,
                },
                _ => None,
            };
            let analysis = f
                .text
                .as_deref()
                .filter(|t| !t.trim().is_empty())
                .map(text::analyze);
            if let Some(an) = &analysis {
                *languages.entry(an.lang.as_str().to_string()).or_default() += 1;
                for w in &an.keywords {
                    let e = keywords.entry(w.clone()).or_default();
                    e.0 += 1;
                    e.1.insert(*customer);
                }
            }
            let group = match q.by {
                GroupBy::Department => {
                    format!("{}/{kind}", names.get(src).map_or("?", String::as_str))
                }
                GroupBy::Segment => segment_of
                    .get(customer)
                    .map_or_else(|| NO_SEGMENT.to_string(), |s| s.0.clone()),
            };
            items.push(Item {
                customer: *customer,
                group,
                score,
                analysis,
                time: f.time,
            });
        }

        let mut overall = Acc::default();
        let mut groups: BTreeMap<String, Acc> = BTreeMap::new();
        let mut periods: BTreeMap<NaiveDate, Acc> = BTreeMap::new();
        for it in &items {
            overall.add(it);
            groups.entry(it.group.clone()).or_default().add(it);
            if let Some(p) = it.time.and_then(|t| period_of(t, q.period)) {
                periods.entry(p).or_default().add(it);
            }
        }

        // groups: small ones merged into OTHER, suppressed when still small
        let mut kept: Vec<(String, Acc)> = Vec::new();
        let mut other = Acc::default();
        let mut merged: Vec<String> = Vec::new();
        for (label, acc) in groups {
            if guard.ok(acc.people.len()) {
                kept.push((label, acc));
            } else {
                other.merge(&acc);
                merged.push(label);
            }
        }
        kept.sort_by(|x, y| y.1.items.cmp(&x.1.items).then(x.0.cmp(&y.0)));
        let min = guard.min;
        let (suppressed, note) = if exact {
            (0, format!("exact figures (role {})", a.role.name))
        } else if merged.is_empty() {
            (
                0,
                format!("every group has at least {min} people; figures of fewer are withheld"),
            )
        } else if other.people.len() >= min {
            kept.push((OTHER.to_string(), other));
            (
                0,
                format!(
                    "{} group(s) of fewer than {min} people merged into {OTHER:?}; figures of fewer are withheld",
                    merged.len()
                ),
            )
        } else {
            (
                merged.len(),
                format!(
                    "{n} group(s) of fewer than {min} people merged into {OTHER:?}, which is still under {min} and not shown; figures of fewer are withheld",
                    n = merged.len()
                ),
            )
        };
        let groups: Vec<GroupFigures> = kept
            .iter()
            .map(|(label, acc)| GroupFigures {
                group: label.clone(),
                group_zh: match q.by {
                    GroupBy::Segment if label == OTHER => Some("其他（小组合并）".to_string()),
                    GroupBy::Segment if label == NO_SEGMENT => Some("（无分群）".to_string()),
                    GroupBy::Segment => segment_of
                        .values()
                        .find(|s| &s.0 == label)
                        .map(|s| s.1.clone()),
                    GroupBy::Department => None,
                },
                figures: acc.figures(&guard, TOP_TOPICS),
            })
            .collect();

        // the trend: every period from the first to the last
        let mut trend = Vec::new();
        if let (Some(first), Some(last)) = (
            periods.keys().next().copied(),
            periods.keys().next_back().copied(),
        ) {
            let mut d = first;
            while d <= last && trend.len() < MAX_PERIODS {
                let empty = Acc::default();
                let acc = periods.get(&d).unwrap_or(&empty);
                trend.push(PeriodFigures {
                    period: period_label(d, q.period),
                    start: d.format("%Y-%m-%d").to_string(),
                    figures: guard
                        .ok(acc.people.len())
                        .then(|| acc.figures(&guard, TOP_TOPICS)),
                });
                match next_period(d, q.period) {
                    Some(n) => d = n,
                    None => break,
                }
            }
        }
        let change = change_of(&trend);

        let keywords = (a.visibility(FieldClass::FeedbackText) == Visibility::Visible).then(|| {
            let mut v: Vec<KeywordCount> = keywords
                .into_iter()
                .filter(|(_, (_, people))| guard.ok_text(people.len()))
                .map(|(word, (texts, people))| KeywordCount {
                    word,
                    texts,
                    customers: people.len(),
                })
                .collect();
            v.sort_by(|x, y| y.texts.cmp(&x.texts).then(x.word.cmp(&y.word)));
            v.truncate(TOP_KEYWORDS);
            v
        });

        let summary = FeedbackSummary {
            period: q.period,
            by: q.by,
            overall: overall.figures(&guard, Topic::ALL.len()),
            groups,
            trend,
            change,
            keywords,
            languages,
            scales,
            left_out,
            privacy: if exact {
                AggregateNote::exact(a)
            } else {
                AggregateNote {
                    exact: false,
                    min_group_size: Some(min),
                    merged,
                    suppressed,
                    dp: None,
                    note,
                }
            },
            policy: a.note(),
        };
        let summary = crate::invariants::checked("feedback summary", summary)?;
        self.record_access(a, "feedback.summary", vec![], vec![])?;
        Ok(summary)
    }
}

/// The change between the last two periods that have figures.
fn change_of(trend: &[PeriodFigures]) -> Option<Change> {
    let shown: Vec<(&PeriodFigures, &Figures)> = trend
        .iter()
        .filter_map(|p| p.figures.as_ref().map(|f| (p, f)))
        .filter(|(_, f)| f.feedback > 0)
        .collect();
    let [.., (p0, f0), (p1, f1)] = shown.as_slice() else {
        return None;
    };
    // a figure moves only between periods with enough answers behind both
    // (one portal review in a new month is not a trend)
    let diff = |a: Option<(f64, usize)>, b: Option<(f64, usize)>| {
        a.zip(b)
            .filter(|((_, n0), (_, n1))| *n0 >= MIN_CHANGE_ANSWERS && *n1 >= MIN_CHANGE_ANSWERS)
            .map(|((a, _), (b, _))| b - a)
    };
    Some(Change {
        from: p0.period.clone(),
        to: p1.period.clone(),
        nps: diff(
            f0.nps.as_ref().map(|n| (n.score, n.answers)),
            f1.nps.as_ref().map(|n| (n.score, n.answers)),
        ),
        csat: diff(
            f0.csat.as_ref().map(|c| (c.percent, c.answers)),
            f1.csat.as_ref().map(|c| (c.percent, c.answers)),
        ),
        negative_share: diff(
            f0.sentiment.as_ref().map(|s| (s.negative_share, s.texts)),
            f1.sentiment.as_ref().map(|s| (s.negative_share, s.texts)),
        ),
    })
}

/// The figures of (kind, score, text) triples with nothing withheld: the
/// arithmetic of the summary on its own (used by tests and benchmarks).
pub fn figures_of(rows: &[(&str, Option<f64>, Option<&str>)]) -> Figures {
    let guard = Guard {
        exact: true,
        min: 1,
        scores: true,
        texts: true,
    };
    let mut by_kind: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (k, s, _) in rows {
        let e = by_kind.entry(k.to_lowercase()).or_default();
        e.extend(s.filter(|x| x.is_finite()));
    }
    let scale: HashMap<String, Option<Scale>> = by_kind
        .iter()
        .map(|(k, s)| (k.clone(), scale_named(k).or_else(|| scale_inferred(s))))
        .collect();
    let mut acc = Acc::default();
    for (i, (k, s, t)) in rows.iter().enumerate() {
        let score = match (scale.get(&k.to_lowercase()).copied().flatten(), *s) {
            (Some(Scale::Nps), Some(x)) if (0.0..=10.0).contains(&x) => Some((Scale::Nps, x)),
            (Some(Scale::Csat), Some(x)) if (1.0..=5.0).contains(&x) => Some((Scale::Csat, x)),
            _ => None,
        };
        acc.add(&Item {
            customer: i as i64,
            group: String::new(),
            score,
            analysis: t.filter(|t| !t.trim().is_empty()).map(text::analyze),
            time: None,
        });
    }
    acc.figures(&guard, Topic::ALL.len())
}

/// Topics of a set of texts, for tests: the distinct topics in order.
pub fn topics_in(texts: &[&str]) -> Vec<Topic> {
    let set: BTreeSet<Topic> = texts.iter().flat_map(|t| text::analyze(t).topics).collect();
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_are_named_or_inferred_and_never_mixed() {
        assert_eq!(scale_named("survey_nps"), Some(Scale::Nps));
        assert_eq!(scale_named("survey_csat"), Some(Scale::Csat));
        assert_eq!(scale_named("review"), Some(Scale::Csat));
        assert_eq!(scale_named("survey"), None);
        assert_eq!(scale_inferred(&[3.0, 9.0, 10.0]), Some(Scale::Nps));
        assert_eq!(scale_inferred(&[0.0, 2.0]), Some(Scale::Nps));
        assert_eq!(scale_inferred(&[1.0, 4.0, 5.0]), Some(Scale::Csat));
        assert_eq!(scale_inferred(&[2.5, 4.0]), None);
        assert_eq!(scale_inferred(&[]), None);

        // 10 NPS answers: 5 promoters, 2 passives, 3 detractors → NPS 20;
        // 4 CSAT answers: 3 of 4–5 → 75 %; nothing averages the two
        let mut rows: Vec<(&str, Option<f64>, Option<&str>)> = Vec::new();
        for s in [10.0, 9.0, 9.0, 10.0, 9.0, 7.0, 8.0, 0.0, 6.0, 3.0] {
            rows.push(("survey", Some(s), None));
        }
        for s in [5.0, 4.0, 4.0, 1.0] {
            rows.push(("review", Some(s), None));
        }
        rows.push(("ticket", None, Some("Refund still not received")));
        rows.push(("ticket", None, Some("Question about warranty")));
        rows.push(("forum", None, Some("物流很快，好评")));
        let f = figures_of(&rows);
        let nps = f.nps.expect("nps");
        assert_eq!(
            (nps.answers, nps.promoters, nps.passives, nps.detractors),
            (10, 5, 2, 3)
        );
        assert!((nps.score - 20.0).abs() < 1e-9, "{}", nps.score);
        let csat = f.csat.expect("csat");
        assert_eq!((csat.answers, csat.satisfied), (4, 3));
        assert!((csat.percent - 75.0).abs() < 1e-9);
        assert!((csat.mean - 3.5).abs() < 1e-9);
        let s = f.sentiment.expect("sentiment");
        assert_eq!((s.texts, s.negative, s.neutral, s.positive), (3, 1, 1, 1));
        let topics: Vec<Topic> = f.topics.iter().map(|t| t.topic).collect();
        // one text each: ties in topic order
        assert_eq!(topics, vec![Topic::Delivery, Topic::Billing]);
        assert_eq!((f.topics[0].negative, f.topics[1].negative), (0, 1));
    }

    #[test]
    fn the_change_compares_the_last_two_periods_with_figures() {
        let fig = |nps: f64, neg: f64, n: usize| Figures {
            feedback: n,
            customers: n,
            nps: Some(Nps {
                score: nps,
                answers: n,
                promoters: 0,
                passives: 0,
                detractors: 0,
            }),
            csat: None,
            sentiment: Some(SentimentCounts {
                texts: n,
                negative: 0,
                neutral: 0,
                positive: 0,
                negative_share: neg,
                mean: 0.0,
            }),
            topics: vec![],
        };
        let p = |label: &str, f: Option<Figures>| PeriodFigures {
            period: label.into(),
            start: String::new(),
            figures: f,
        };
        let trend = vec![
            p("2025-01", Some(fig(10.0, 0.5, 12))),
            p("2025-02", Some(fig(30.0, 0.25, 10))),
            p("2025-03", None),
        ];
        let c = change_of(&trend).expect("a change");
        assert_eq!((c.from.as_str(), c.to.as_str()), ("2025-01", "2025-02"));
        assert_eq!(c.nps, Some(20.0));
        assert_eq!(c.csat, None);
        assert_eq!(c.negative_share, Some(-0.25));
        assert!(change_of(&trend[..1]).is_none());
        // one answer in the last period: no change of its figures
        let thin = vec![
            p("2025-01", Some(fig(10.0, 0.5, 12))),
            p("2025-02", Some(fig(100.0, 0.0, 1))),
        ];
        let c = change_of(&thin).expect("the periods are named");
        assert_eq!((c.nps, c.negative_share), (None, None));
    }

    #[test]
    fn periods_are_iso_weeks_and_months() {
        // 2025-01-01 is a Wednesday of ISO week 2025-W01 (Monday 2024-12-30)
        let t = 1_735_732_800; // 2025-01-01T12:00:00Z
        let w = period_of(t, Period::Week).expect("week");
        assert_eq!(w.to_string(), "2024-12-30");
        assert_eq!(period_label(w, Period::Week), "2025-W01");
        let m = period_of(t, Period::Month).expect("month");
        assert_eq!(period_label(m, Period::Month), "2025-01");
        assert_eq!(
            next_period(m, Period::Month).map(|d| d.to_string()),
            Some("2025-02-01".into())
        );
        assert!(Period::parse("fortnight").is_err());
        assert_eq!(GroupBy::parse("segment").ok(), Some(GroupBy::Segment));
    }

    #[test]
    fn negative_texts_are_complaints_in_both_languages() {
        assert!(negative_text("Support never called back"));
        assert!(negative_text("没有收到退款"));
        assert!(!negative_text("How do I change my address?"));
        assert!(!negative_text("非常满意"));
        assert_eq!(
            topics_in(&["Item arrived damaged", "尺码偏小"]),
            vec![Topic::Delivery, Topic::Quality, Topic::Fit]
        );
    }
}
