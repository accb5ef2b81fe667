//! The demo data set: a realistic, deterministic multi-department export with
//! its `infogap.toml`, plus the ground truth tests and models are checked
//! against.
//!
//! What it plants:
//! - **People across departments under different ids**: a CRM (`crm:C…`), a
//!   web/app shop (`web:W…`), a support desk (`support:S…`), with emails in
//!   varying case and whitespace, phones in five formats, junk values
//!   (`n/a`, `unknown`, empty), guest orders keyed only by email, a link table
//!   for some web↔CRM pairs, and one family email shared by seven people
//!   (more than `max_customers_per_key`, so it must not link them).
//! - **Tastes**: each person has one or two favourite categories that get most
//!   purchases, views and high ratings.
//! - **Churn with drivers**: a latent dissatisfaction drives support tickets,
//!   low survey/review scores and a fading purchase rate; churners stop buying
//!   at a date between 2025-06 and 2025-11. Age band has no effect.
//! - **A plan that drives churn**: half the people are on a `monthly` plan,
//!   half on `annual`. Monthly customers also churn without being dissatisfied
//!   (45% of those who would not), annual ones only when very dissatisfied, so
//!   monthly customers churn about 2.5× as often. Only the CRM records the
//!   plan, and only for ~60% of its customers (`plan` blank otherwise).
//! - **Departments that know different things**: the CRM leaves age, income
//!   and region blank for ~40% of its customers (independently of the plan);
//!   the web shop's profile form (`web/profiles.csv`, ~50% of web users)
//!   records age and region too, one of them wrong in ~15% of its rows (a
//!   conflict with the CRM's true value); a preferences survey
//!   (`feedback/preferences.csv`, keyed by email, ~30% of people) records
//!   the category that interests them (the first favourite, ~10% another).
//!   `[[department]]` groups in the config say which sources each department holds.
//! - **Seasonality**: weekend and December peaks, a summer dip.
//! - **Heterogeneous value**: purchase rates and basket values vary by person (CLV).
//!
//! Ground truth goes to `truth/`: `persons.csv` (one row per person with the
//! planted traits, incl. `plan`, `plan_known`, `demographics_known`,
//! `web_profile`, `interest_known`), `records.csv` (which person every
//! identity key belongs to) and `conflicts.csv` (every wrong attribute value
//! written, with its source and the true value).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::EngineError;

/// Demo options.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Output directory.
    pub out: PathBuf,
    /// Number of people.
    pub customers: usize,
    /// Seed.
    pub seed: u64,
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    /// Directory.
    pub dir: String,
    /// Config path.
    pub config: String,
    /// People (the true number of customers).
    pub persons: usize,
    /// Planted churners.
    pub churners: usize,
    /// Order lines written.
    pub order_lines: u64,
    /// Orders written.
    pub orders: u64,
    /// Events written (views, clicks, carts, logins).
    pub events: u64,
    /// Ratings written.
    pub ratings: u64,
    /// Surveys and reviews.
    pub feedback: u64,
    /// Support tickets.
    pub tickets: u64,
    /// Files written.
    pub files: Vec<String>,
}

/// Product categories of the demo catalogue.
pub const CATEGORIES: [&str; 8] = [
    "books",
    "electronics",
    "garden",
    "toys",
    "sports",
    "beauty",
    "grocery",
    "fashion",
];
const PRODUCTS_PER_CATEGORY: usize = 25;
const FIRST: [&str; 24] = [
    "Ann", "Ben", "Carla", "David", "Eva", "Felix", "Grace", "Hugo", "Ines", "Jonas", "Kim", "Leo",
    "Maria", "Nils", "Olga", "Paul", "Rosa", "Sam", "Tara", "Uwe", "Vera", "Will", "Xenia",
    "Yusuf",
];
const LAST: [&str; 20] = [
    "Lee", "Smith", "Garcia", "Novak", "Khan", "Rossi", "Meyer", "Dubois", "Silva", "Kowalski",
    "Tanaka", "Olsen", "Brown", "Müller", "Costa", "Ivanova", "Nguyen", "Cohen", "Haddad",
    "Murphy",
];
const AGE_BANDS: [&str; 6] = ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"];
const INCOME_BANDS: [&str; 5] = ["<25K", "25-49K", "50-74K", "75-99K", "100K+"];
const REGIONS: [&str; 5] = ["north", "south", "east", "west", "central"];
const JUNK: [&str; 6] = ["n/a", "N/A", "unknown", "none", "null", " "];
const COMPLAINTS: [&str; 6] = [
    "Delivery was late again",
    "Item arrived damaged",
    "Refund still not received",
    "Charged twice for one order",
    "Support never called back",
    "Wrong size sent",
];
const QUESTIONS: [&str; 4] = [
    "How do I change my address?",
    "Question about warranty",
    "Where is my invoice?",
    "Gift wrapping options?",
];
/// The complaints, questions and praise as the Chinese-writing customers
/// word them (the same meaning, so the same sentiment and topics).
const COMPLAINTS_ZH: [&str; 6] = [
    "快递又延迟了",
    "到货时商品已经破损",
    "还没有收到退款",
    "同一个订单被重复扣款",
    "客服一直没有回电",
    "发错尺码了",
];
const QUESTIONS_ZH: [&str; 4] = [
    "请问怎么修改收货地址？",
    "想咨询保修政策",
    "我的发票在哪里？",
    "有礼品包装吗？",
];
const ALL_GOOD: [&str; 2] = ["All good", "一切都好"];

/// Whether a person writes comments and tickets in Chinese (one in four,
/// by id: no random draw, so every other figure of the demo is unchanged).
fn writes_chinese(person: &Person) -> bool {
    person.id % 4 == 3
}
const FAMILY_EMAIL: &str = "family.home@example.net";
/// Probability that a monthly-plan customer who is not dissatisfied churns anyway.
const MONTHLY_CHURN: f64 = 0.45;

fn ts(y: i32, m: u32, d: u32) -> i64 {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp())
        .unwrap_or(0)
}

fn date_str(t: i64) -> String {
    Utc.timestamp_opt(t, 0)
        .single()
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn datetime_str(t: i64) -> String {
    Utc.timestamp_opt(t, 0)
        .single()
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn rfc3339(t: i64) -> String {
    Utc.timestamp_opt(t, 0)
        .single()
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// Seasonal multiplier of purchase intensity on a day.
fn season(t: i64) -> f64 {
    let Some(d) = Utc.timestamp_opt(t, 0).single() else {
        return 1.0;
    };
    let wd = d.weekday().num_days_from_monday();
    let weekly = if wd >= 5 { 1.6 } else { 0.85 };
    let m = d.month();
    let yearly = match m {
        11 => 1.3,
        12 => 1.8,
        6..=8 => 0.75,
        1 => 0.8,
        _ => 1.0,
    };
    weekly * yearly
}

struct Person {
    id: usize,
    first: &'static str,
    last: &'static str,
    email: String,
    phone: String,
    crm_id: Option<String>,
    web_id: Option<String>,
    support_id: String,
    age: &'static str,
    income: &'static str,
    region: &'static str,
    favourites: Vec<usize>,
    rate: f64,
    basket_value: f64,
    dissatisfaction: f64,
    churn_at: Option<i64>,
    /// Churned because a monthly plan was not renewed (no fading before).
    abrupt: bool,
    signup: i64,
    family_email: bool,
    /// The planted churn driver: a monthly (else annual) plan.
    monthly: bool,
    /// Whether the CRM row records the plan.
    plan_known: bool,
    /// Whether the CRM row records age, income and region.
    demographics_known: bool,
}

impl Person {
    fn plan(&self) -> &'static str {
        if self.monthly { "monthly" } else { "annual" }
    }
}

/// A value of `values` other than `v`.
fn other(values: &[&'static str], v: &str, rng: &mut ChaCha8Rng) -> &'static str {
    let rest: Vec<&'static str> = values.iter().copied().filter(|x| *x != v).collect();
    rest[rng.random_range(0..rest.len())]
}

struct Writers {
    dir: PathBuf,
    files: Vec<String>,
}

impl Writers {
    fn open(&mut self, rel: &str, header: &str) -> Result<(BufWriter<File>, u64), EngineError> {
        let path = self.dir.join(rel);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).map_err(|e| io_err(p, e))?;
        }
        let f = File::create(&path).map_err(|e| io_err(&path, e))?;
        let mut w = BufWriter::with_capacity(1 << 16, f);
        if !header.is_empty() {
            writeln!(w, "{header}").map_err(|e| io_err(&path, e))?;
        }
        self.files.push(rel.to_string());
        Ok((w, if header.is_empty() { 0 } else { 1 }))
    }
}

fn io_err(p: &Path, e: std::io::Error) -> EngineError {
    EngineError::Io {
        path: p.display().to_string(),
        source: e,
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn email_variant(e: &str, rng: &mut ChaCha8Rng) -> String {
    match rng.random_range(0..6) {
        0 => e.to_uppercase(),
        1 => format!("  {e} "),
        2 => {
            let mut c = e.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        }
        3 => e.replace("example", "Example"),
        _ => e.to_string(),
    }
}

fn phone_variant(p: &str, rng: &mut ChaCha8Rng) -> String {
    let (a, b, c) = (&p[0..3], &p[3..6], &p[6..10]);
    match rng.random_range(0..6) {
        0 => format!("+1 ({a}) {b}-{c}"),
        1 => format!("{a}.{b}.{c}"),
        2 => format!("+1{a}{b}{c}"),
        3 => format!("({a}) {b} {c}"),
        4 => format!("1-{a}-{b}-{c}"),
        _ => format!("{a}-{b}-{c}"),
    }
}

fn poisson(rng: &mut ChaCha8Rng, lambda: f64) -> u32 {
    // Knuth for small lambda, normal approximation above
    if lambda > 30.0 {
        let z: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
        return (lambda + lambda.sqrt() * z).round().max(0.0) as u32;
    }
    let l = (-lambda).exp();
    let mut k = 0;
    let mut p = 1.0;
    loop {
        p *= rng.random::<f64>();
        if p <= l {
            return k;
        }
        k += 1;
    }
}

fn gamma_ish(rng: &mut ChaCha8Rng, shape_k: u32, scale: f64) -> f64 {
    // sum of exponentials: Erlang(k, scale)
    (0..shape_k)
        .map(|_| -rng.random::<f64>().max(1e-12).ln())
        .sum::<f64>()
        * scale
}

/// Writes the demo data set and its config.
pub fn generate(opts: &DemoOptions) -> Result<DemoSummary, EngineError> {
    if opts.customers == 0 {
        return Err(EngineError::Invalid(
            "--customers must be at least 1".into(),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    // a second stream for the information gaps (plan, blanks, web profiles,
    // preferences), so the draws of everything else stay as they were
    let mut gap_rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x005e_ed9a_950f_10f0);
    std::fs::create_dir_all(&opts.out).map_err(|e| io_err(&opts.out, e))?;
    let mut w = Writers {
        dir: opts.out.clone(),
        files: Vec::new(),
    };
    let start = ts(2024, 1, 1);
    let end = ts(2026, 1, 1);
    let day = 86_400i64;

    // catalogue
    let (mut products, _) = w.open(
        "catalog/products.csv",
        "sku,title,category,list_price,brand",
    )?;
    let adjectives = [
        "Classic", "Smart", "Eco", "Deluxe", "Mini", "Pro", "Urban", "Vintage",
    ];
    let mut prices = Vec::new();
    for (ci, cat) in CATEGORIES.iter().enumerate() {
        for k in 0..PRODUCTS_PER_CATEGORY {
            let price = ((5.0 + rng.random::<f64>() * 95.0) * (1.0 + ci as f64 * 0.15) * 100.0)
                .round()
                / 100.0;
            prices.push(price);
            let brand = format!("Brand{}", (ci * 3 + k) % 11);
            writeln!(
                products,
                "P{:03},{} {} {},{},{:.2},{}",
                ci * PRODUCTS_PER_CATEGORY + k,
                adjectives[k % adjectives.len()],
                cat,
                k,
                cat,
                price,
                brand
            )
            .map_err(|e| io_err(&opts.out, e))?;
        }
    }
    products.flush().map_err(|e| io_err(&opts.out, e))?;
    let n_products = prices.len();

    // campaigns
    let (mut campaigns, _) = w.open(
        "marketing/campaigns.csv",
        "campaign_code,title,channel,starts,ends,category",
    )?;
    let campaign_defs: Vec<(String, usize, i64, i64)> = (0..8)
        .map(|k| {
            let s = start + (k as i64) * 85 * day + 20 * day;
            (
                format!("CMP{:02}", k + 1),
                k % CATEGORIES.len(),
                s,
                s + 28 * day,
            )
        })
        .collect();
    for (code, cat, s, e) in &campaign_defs {
        let channel = ["email", "sms", "app", "mail"][rng.random_range(0..4)];
        writeln!(
            campaigns,
            "{code},{} deals {},{channel},{},{},{}",
            CATEGORIES[*cat],
            code,
            date_str(*s),
            date_str(*e),
            CATEGORIES[*cat]
        )
        .map_err(|e| io_err(&opts.out, e))?;
    }
    campaigns.flush().map_err(|e| io_err(&opts.out, e))?;

    // people
    let n = opts.customers;
    let mut web_numbers: Vec<usize> = (0..n).collect();
    web_numbers.shuffle(&mut rng);
    let mut support_numbers: Vec<usize> = (0..n).collect();
    support_numbers.shuffle(&mut rng);
    let family: Vec<usize> = if n >= 40 {
        (0..7).map(|k| 3 + k * (n / 8)).collect()
    } else {
        Vec::new()
    };
    let mut persons = Vec::with_capacity(n);
    for p in 0..n {
        let first = FIRST[rng.random_range(0..FIRST.len())];
        let last = LAST[rng.random_range(0..LAST.len())];
        let domain = ["example.com", "mail.example.org", "example.net"][rng.random_range(0..3)];
        let email = format!(
            "{}.{}{}@{}",
            first.to_lowercase(),
            last.to_lowercase().replace('ü', "ue"),
            p,
            domain
        );
        let area = 201 + (p * 7919 % 700);
        let phone = format!("{area}{:07}", (p * 104_729 + 1_234_567) % 10_000_000);
        let dissatisfaction: f64 = rng.random();
        // the plan is drawn before churn and drives it: monthly customers also
        // churn without being dissatisfied; annual ones only when very
        // dissatisfied
        let monthly = gap_rng.random::<f64>() < 0.5;
        let unhappy =
            if dissatisfaction > 0.72 || (dissatisfaction > 0.55 && rng.random::<f64>() < 0.25) {
                Some(ts(2025, 6, 1) + rng.random_range(0..165) * day)
            } else {
                None
            };
        // a monthly plan not renewed ends at once: no fading beforehand, so
        // only the plan (not the purchase history) foretells it
        let mut abrupt = false;
        let churn_at = if monthly {
            if unhappy.is_none() && gap_rng.random::<f64>() < MONTHLY_CHURN {
                abrupt = true;
                Some(ts(2025, 6, 1) + gap_rng.random_range(0..165) * day)
            } else {
                unhappy
            }
        } else if dissatisfaction > 0.8 || (dissatisfaction > 0.72 && gap_rng.random::<f64>() < 0.5)
        {
            unhappy
        } else {
            None
        };
        let plan_known = gap_rng.random::<f64>() < 0.6;
        let demographics_known = gap_rng.random::<f64>() >= 0.4;
        let n_fav = if rng.random::<f64>() < 0.5 { 1 } else { 2 };
        let mut favourites = Vec::new();
        while favourites.len() < n_fav {
            let c = rng.random_range(0..CATEGORIES.len());
            if !favourites.contains(&c) {
                favourites.push(c);
            }
        }
        let in_crm = rng.random::<f64>() < 0.9 || family.contains(&p);
        let on_web = rng.random::<f64>() < 0.85 || family.contains(&p);
        persons.push(Person {
            id: p,
            first,
            last,
            email,
            phone,
            crm_id: in_crm.then(|| format!("C{:06}", p + 1)),
            web_id: on_web.then(|| format!("W{:07}", 1_000_003 + web_numbers[p] * 37)),
            support_id: format!("S-{:06}", 500_000 + support_numbers[p]),
            age: AGE_BANDS[rng.random_range(0..AGE_BANDS.len())],
            income: INCOME_BANDS[rng.random_range(0..INCOME_BANDS.len())],
            region: REGIONS[rng.random_range(0..REGIONS.len())],
            favourites,
            rate: gamma_ish(&mut rng, 2, 0.09),
            basket_value: gamma_ish(&mut rng, 4, 0.3),
            dissatisfaction,
            churn_at,
            abrupt,
            signup: start - rng.random_range(0..900) * day,
            family_email: family.contains(&p),
            monthly,
            plan_known: in_crm && plan_known,
            demographics_known: in_crm && demographics_known,
        });
    }

    let (mut crm, mut crm_line) = w.open(
        "crm/customers.csv",
        "customer_id,first_name,last_name,email,phone,age_band,income_band,region,signup_date,plan",
    )?;
    let (mut consents, _) = w.open("crm/consents.csv", "customer_id,purpose,granted,updated_at")?;
    let (mut links, mut link_line) = w.open("web/crm_links.csv", "web_user,crm_customer")?;
    let (mut profiles, mut profile_line) =
        w.open("web/profiles.csv", "web_user,age_band,region,updated_at")?;
    let (mut prefs, mut pref_line) = w.open(
        "feedback/preferences.csv",
        "respondent_email,interest,answered_at",
    )?;
    let (mut events, mut event_line) = w.open("web/events.jsonl", "")?;
    let (mut ratings, _) = w.open("reviews/ratings.csv", "user,item,stars,rated_at")?;
    let (mut orders, mut order_line) = w.open(
        "sales/order_lines.csv",
        "order_no,customer_ref,guest_email,sku,qty,line_total,discount,ordered_at",
    )?;
    let (mut surveys, _) = w.open(
        "feedback/surveys.csv",
        "respondent_email,kind,score,comment,answered_at",
    )?;
    let (mut tickets, mut ticket_line) = w.open(
        "support/tickets.tsv",
        "ticket_id\tcontact_id\tcontact_phone\tcontact_email\tsubject\topened",
    )?;
    let (mut exposures, mut exposure_line) =
        w.open("marketing/exposures.csv", "campaign,recipient,sent_at")?;
    let (mut redemptions, mut redemption_line) = w.open(
        "marketing/redemptions.csv",
        "campaign,member_id,email,redeemed_at",
    )?;
    let (mut truth, _) = w.open("truth/records.csv", "source,line,namespace,key,person")?;
    let (mut truth_p, _) = w.open(
        "truth/persons.csv",
        "person,crm_id,web_id,support_id,email,churned,churn_date,dissatisfaction,favourite_categories,age_band,purchase_rate,basket_value,family_email,plan,plan_known,demographics_known,web_profile,interest_known,income_band,region,interest",
    )?;
    let (mut truth_c, _) = w.open(
        "truth/conflicts.csv",
        "person,attribute,source,value,true_value",
    )?;
    let mut summary = DemoSummary {
        dir: opts.out.display().to_string(),
        config: opts.out.join("infogap.toml").display().to_string(),
        persons: n,
        churners: 0,
        order_lines: 0,
        orders: 0,
        events: 0,
        ratings: 0,
        feedback: 0,
        tickets: 0,
        files: Vec::new(),
    };
    let werr = |e: std::io::Error| EngineError::Io {
        path: "demo".into(),
        source: e,
    };
    let mut order_no = 100_000u64;
    let mut ticket_no = 1u64;

    for person in &persons {
        let pid = person.id;
        if person.churn_at.is_some() {
            summary.churners += 1;
        }
        let email_for_crm = if person.family_email {
            FAMILY_EMAIL.to_string()
        } else {
            person.email.clone()
        };
        // CRM row
        let mut crm_email_unusable = person.family_email;
        let mut crm_phone_junk = false;
        if let Some(crm_id) = &person.crm_id {
            crm_line += 1;
            let junk_email = rng.random::<f64>() < 0.08 && !person.family_email;
            let junk_phone = !junk_email && !person.family_email && rng.random::<f64>() < 0.06;
            crm_email_unusable |= junk_email;
            crm_phone_junk = junk_phone;
            let email = if junk_email {
                JUNK[rng.random_range(0..JUNK.len())].to_string()
            } else {
                email_variant(&email_for_crm, &mut rng)
            };
            let phone = if junk_phone {
                JUNK[rng.random_range(0..JUNK.len())].to_string()
            } else {
                phone_variant(&person.phone, &mut rng)
            };
            let (age, income, region) = if person.demographics_known {
                (person.age, person.income, person.region)
            } else {
                ("", "", "")
            };
            writeln!(
                crm,
                "{crm_id},{},{},{},{},{age},{income},{region},{},{}",
                person.first,
                csv_field(person.last),
                csv_field(&email),
                csv_field(&phone),
                date_str(person.signup),
                if person.plan_known { person.plan() } else { "" }
            )
            .map_err(werr)?;
            writeln!(truth, "crm,{crm_line},crm,{crm_id},{pid}").map_err(werr)?;
            for purpose in ["marketing", "profiling"] {
                let granted = rng.random::<f64>() < 0.7;
                writeln!(
                    consents,
                    "{crm_id},{purpose},{},{}",
                    if granted { "yes" } else { "no" },
                    date_str(person.signup + 3 * day)
                )
                .map_err(werr)?;
            }
        }
        let mut web_profile = false;
        let mut interest: Option<&str> = None;
        // web identity: login events carry the email; family-email people are mapped by the link table
        if let Some(web_id) = &person.web_id {
            if (person.family_email || (person.crm_id.is_some() && rng.random::<f64>() < 0.15))
                && let Some(crm_id) = &person.crm_id
            {
                link_line += 1;
                writeln!(links, "{web_id},{crm_id}").map_err(werr)?;
            }
            let login_email = if person.family_email {
                None
            } else {
                Some(email_variant(&person.email, &mut rng))
            };
            let first_login = person.signup.max(start) + rng.random_range(0..30) * day;
            event_line += 1;
            let ev = serde_json::json!({
                "user": web_id, "email": login_email, "type": "login", "sku": null,
                "channel": if rng.random::<f64>() < 0.5 { "web" } else { "app" }, "ts": rfc3339(first_login)
            });
            writeln!(events, "{ev}").map_err(werr)?;
            writeln!(truth, "web,{event_line},web,{web_id},{pid}").map_err(werr)?;
            summary.events += 1;
            // the web shop's own profile form: age and region, sometimes wrong
            if gap_rng.random::<f64>() < 0.5 {
                let mut age = person.age;
                let mut region = person.region;
                if gap_rng.random::<f64>() < 0.15 {
                    let (attr, truth_v, wrong) = if gap_rng.random::<f64>() < 0.5 {
                        age = other(&AGE_BANDS, person.age, &mut gap_rng);
                        ("age_band", person.age, age)
                    } else {
                        region = other(&REGIONS, person.region, &mut gap_rng);
                        ("region", person.region, region)
                    };
                    writeln!(truth_c, "{pid},{attr},web_profiles,{wrong},{truth_v}")
                        .map_err(werr)?;
                }
                let updated = first_login + gap_rng.random_range(0..300) * day;
                profile_line += 1;
                writeln!(profiles, "{web_id},{age},{region},{}", date_str(updated))
                    .map_err(werr)?;
                writeln!(truth, "web_profiles,{profile_line},web,{web_id},{pid}").map_err(werr)?;
                web_profile = true;
            }
        }
        // the preferences survey: the first favourite category, sometimes another
        if gap_rng.random::<f64>() < 0.3 {
            let fav = person.favourites[0];
            let c = if gap_rng.random::<f64>() < 0.1 {
                (fav + gap_rng.random_range(1..CATEGORIES.len())) % CATEGORIES.len()
            } else {
                fav
            };
            interest = Some(CATEGORIES[c]);
            pref_line += 1;
            let at = start + gap_rng.random_range(0..700) * day;
            writeln!(
                prefs,
                "{},{},{}",
                csv_field(&email_variant(&person.email, &mut gap_rng)),
                CATEGORIES[c],
                date_str(at)
            )
            .map_err(werr)?;
            writeln!(
                truth,
                "preferences,{pref_line},email,{},{pid}",
                person.email
            )
            .map_err(werr)?;
        }

        // purchases, week by week
        let stop = person.churn_at.unwrap_or(end);
        let mut t = start;
        let mut my_items: Vec<usize> = Vec::new();
        while t < stop.min(end) {
            // fading before churn
            let fade = match person.churn_at {
                Some(c) if !person.abrupt && c - t < 120 * day => {
                    ((c - t) as f64 / (120 * day) as f64).max(0.15)
                }
                _ => 1.0,
            };
            let lambda = person.rate * fade * season(t + 3 * day) * 7.0 / 7.0;
            for _ in 0..poisson(&mut rng, lambda) {
                let ot = t + rng.random_range(0..7 * day);
                if ot >= stop || ot >= end {
                    continue;
                }
                order_no += 1;
                summary.orders += 1;
                let guest = person.crm_id.is_none() || rng.random::<f64>() < 0.04;
                let n_lines = 1 + poisson(&mut rng, 1.5) as usize;
                for _ in 0..n_lines {
                    let cat = if rng.random::<f64>() < 0.8 {
                        person.favourites[rng.random_range(0..person.favourites.len())]
                    } else {
                        rng.random_range(0..CATEGORIES.len())
                    };
                    let item =
                        cat * PRODUCTS_PER_CATEGORY + rng.random_range(0..PRODUCTS_PER_CATEGORY);
                    my_items.push(item);
                    let qty = 1 + poisson(&mut rng, 0.3 * person.basket_value);
                    let gross = prices[item] * f64::from(qty);
                    let discount = if rng.random::<f64>() < 0.2 {
                        (gross * 0.1 * 100.0).round() / 100.0
                    } else {
                        0.0
                    };
                    let total = ((gross - discount) * 100.0).round() / 100.0;
                    order_line += 1;
                    summary.order_lines += 1;
                    let (cref, gmail) = if guest {
                        (
                            String::new(),
                            csv_field(&email_variant(&person.email, &mut rng)),
                        )
                    } else {
                        (person.crm_id.clone().unwrap_or_default(), String::new())
                    };
                    writeln!(
                        orders,
                        "SO{order_no},{cref},{gmail},P{item:03},{qty},{total:.2},{discount:.2},{}",
                        datetime_str(ot)
                    )
                    .map_err(werr)?;
                    if guest {
                        writeln!(truth, "sales,{order_line},email,{},{pid}", person.email)
                            .map_err(werr)?;
                    }
                }
            }
            t += 7 * day;
        }

        // browsing
        if let Some(web_id) = &person.web_id {
            let n_events = poisson(&mut rng, 25.0 * person.rate / 0.18);
            for _ in 0..n_events {
                let et = start + rng.random_range(0..(stop.min(end) - start).max(day));
                let cat = if rng.random::<f64>() < 0.75 {
                    person.favourites[rng.random_range(0..person.favourites.len())]
                } else {
                    rng.random_range(0..CATEGORIES.len())
                };
                let item = cat * PRODUCTS_PER_CATEGORY + rng.random_range(0..PRODUCTS_PER_CATEGORY);
                let kind = ["view", "view", "view", "click", "cart"][rng.random_range(0..5)];
                event_line += 1;
                summary.events += 1;
                let ev = serde_json::json!({
                    "user": web_id, "email": null, "type": kind, "sku": format!("P{item:03}"),
                    "channel": if rng.random::<f64>() < 0.6 { "web" } else { "app" }, "ts": rfc3339(et)
                });
                writeln!(events, "{ev}").map_err(werr)?;
            }
            // ratings of bought items: favourites high
            my_items.sort_unstable();
            my_items.dedup();
            for &item in my_items.iter().take(12) {
                if rng.random::<f64>() < 0.5 {
                    continue;
                }
                let fav = person.favourites.contains(&(item / PRODUCTS_PER_CATEGORY));
                let base = if fav { 4.3 } else { 2.4 } + (rng.random::<f64>() - 0.5) * 1.6;
                let stars = base.round().clamp(1.0, 5.0) as i64;
                summary.ratings += 1;
                writeln!(
                    ratings,
                    "{web_id},P{item:03},{stars},{}",
                    start + rng.random_range(0..(stop.min(end) - start).max(day))
                )
                .map_err(werr)?;
            }
        }

        // surveys and reviews: low scores with dissatisfaction
        let n_surveys = poisson(&mut rng, 1.5);
        for _ in 0..n_surveys {
            let st = start + rng.random_range(0..(stop.min(end) - start).max(day));
            let (kind, score) = if rng.random::<f64>() < 0.6 {
                (
                    "survey",
                    (10.0 - 8.0 * person.dissatisfaction + (rng.random::<f64>() - 0.5) * 3.0)
                        .round()
                        .clamp(0.0, 10.0),
                )
            } else {
                (
                    "review",
                    (5.0 - 3.5 * person.dissatisfaction + (rng.random::<f64>() - 0.5) * 1.5)
                        .round()
                        .clamp(1.0, 5.0),
                )
            };
            let zh = usize::from(writes_chinese(person));
            let comment = if score <= 4.0 && kind == "survey" || score <= 2.0 {
                [COMPLAINTS, COMPLAINTS_ZH][zh][rng.random_range(0..COMPLAINTS.len())]
            } else {
                ALL_GOOD[zh]
            };
            summary.feedback += 1;
            writeln!(
                surveys,
                "{},{kind},{score},{},{}",
                csv_field(&email_variant(&person.email, &mut rng)),
                csv_field(comment),
                date_str(st)
            )
            .map_err(werr)?;
        }

        // support tickets: complaints pile up before churn
        let mut n_tickets = poisson(
            &mut rng,
            0.4 + 3.0 * person.dissatisfaction * person.dissatisfaction,
        );
        if person.churn_at.is_none() {
            n_tickets = n_tickets.min(3);
        }
        // people whose CRM record cannot link by itself called support at least once
        if person.crm_id.is_none() || crm_email_unusable || crm_phone_junk {
            n_tickets = n_tickets.max(1);
        }
        for k in 0..n_tickets {
            let tt = match person.churn_at {
                Some(c) if k % 2 == 0 => c - rng.random_range(1..100) * day,
                _ => start + rng.random_range(0..(stop.min(end) - start).max(day)),
            };
            let complaint = rng.random::<f64>() < 0.3 + 0.6 * person.dissatisfaction;
            let zh = usize::from(writes_chinese(person));
            let subject = if complaint {
                [COMPLAINTS, COMPLAINTS_ZH][zh][rng.random_range(0..COMPLAINTS.len())]
            } else {
                [QUESTIONS, QUESTIONS_ZH][zh][rng.random_range(0..QUESTIONS.len())]
            };
            ticket_line += 1;
            summary.tickets += 1;
            // the desk records the email on a first contact, the phone always
            let email = if k == 0 || rng.random::<f64>() < 0.3 {
                email_variant(&person.email, &mut rng).trim().to_string()
            } else {
                String::new()
            };
            writeln!(
                tickets,
                "T{ticket_no:07}\t{}\t{}\t{email}\t{subject}\t{}",
                person.support_id,
                phone_variant(&person.phone, &mut rng),
                datetime_str(tt)
            )
            .map_err(werr)?;
            if k == 0 {
                writeln!(
                    truth,
                    "support,{ticket_line},support,{},{pid}",
                    person.support_id
                )
                .map_err(werr)?;
            }
            ticket_no += 1;
        }

        // campaigns: exposures by email, redemptions by CRM id (or email for guests)
        for (code, cat, cs, ce) in &campaign_defs {
            if *ce <= person.signup || rng.random::<f64>() > 0.45 {
                continue;
            }
            exposure_line += 1;
            writeln!(
                exposures,
                "{code},{},{}",
                csv_field(&email_variant(&person.email, &mut rng)),
                date_str(*cs)
            )
            .map_err(werr)?;
            let alive = person.churn_at.is_none_or(|c| c > *ce);
            let p_redeem = if person.favourites.contains(cat) {
                0.35
            } else {
                0.08
            } * (1.0 - 0.7 * person.dissatisfaction);
            if alive && rng.random::<f64>() < p_redeem {
                redemption_line += 1;
                let (member, email) = match &person.crm_id {
                    Some(c) => (c.clone(), String::new()),
                    None => (String::new(), person.email.clone()),
                };
                writeln!(
                    redemptions,
                    "{code},{member},{email},{}",
                    date_str(cs + rng.random_range(0..(ce - cs)))
                )
                .map_err(werr)?;
            }
        }

        let favs: Vec<&str> = person.favourites.iter().map(|&c| CATEGORIES[c]).collect();
        writeln!(
            truth_p,
            "{pid},{},{},{},{},{},{},{:.3},{},{},{:.4},{:.3},{},{},{},{},{},{},{},{},{}",
            person.crm_id.clone().unwrap_or_default(),
            person.web_id.clone().unwrap_or_default(),
            person.support_id,
            person.email,
            u8::from(person.churn_at.is_some()),
            person.churn_at.map(date_str).unwrap_or_default(),
            person.dissatisfaction,
            favs.join("|"),
            person.age,
            person.rate,
            person.basket_value,
            u8::from(person.family_email),
            person.plan(),
            u8::from(person.plan_known),
            u8::from(person.demographics_known),
            u8::from(web_profile),
            u8::from(interest.is_some()),
            person.income,
            person.region,
            interest.unwrap_or_default()
        )
        .map_err(werr)?;
    }
    let _ = (
        link_line,
        exposure_line,
        redemption_line,
        n_products,
        profile_line,
        pref_line,
    );
    for wr in [
        &mut crm,
        &mut consents,
        &mut links,
        &mut profiles,
        &mut prefs,
        &mut events,
        &mut ratings,
        &mut orders,
        &mut surveys,
        &mut tickets,
        &mut exposures,
        &mut redemptions,
        &mut truth,
        &mut truth_p,
        &mut truth_c,
    ] {
        wr.flush().map_err(werr)?;
    }
    std::fs::write(opts.out.join("infogap.toml"), CONFIG).map_err(|e| io_err(&opts.out, e))?;
    w.files.push("infogap.toml".into());
    summary.files = w.files;
    Ok(summary)
}

/// The demo's import config (also a worked example of every source kind).
pub const CONFIG: &str = r#"# infogap import config for the demo data set (written by `infogap demo`).
# Paths are relative to this file. See README.md for every option.

[identity]
blocklist = ["", "null", "n/a", "na", "none", "0", "unknown", "-", "test@test.com"]
max_customers_per_key = 5
default_country_code = "1"

# --- CRM: the customer master ---------------------------------------------
[[source]]
name = "crm"
file = "crm/customers.csv"
kind = "customers"
namespace = "crm"
[source.columns]
customer = "customer_id"
email = "email"
phone = "phone"
time = "signup_date"
[source.attributes]
first_name = "first_name"
last_name = "last_name"
age_band = "age_band"
income_band = "income_band"
region = "region"
plan = "plan"

[[source]]
name = "consents"
file = "crm/consents.csv"
kind = "consents"
namespace = "crm"
[source.columns]
customer = "customer_id"
purpose = "purpose"
granted = "granted"
time = "updated_at"

# --- Product catalogue -------------------------------------------------------
[[source]]
name = "catalog"
file = "catalog/products.csv"
kind = "products"
[source.columns]
product = "sku"
name = "title"
category = "category"
price = "list_price"
[source.attributes]
brand = "brand"

# --- Sales: order lines keyed by CRM id, guests by email ---------------------
[[source]]
name = "sales"
file = "sales/order_lines.csv"
kind = "order_lines"
namespace = "crm"
[source.columns]
order = "order_no"
customer = "customer_ref"
email = "guest_email"
product = "sku"
quantity = "qty"
amount = "line_total"
discount = "discount"
time = "ordered_at"

# --- Web and app events (JSON Lines) -----------------------------------------
[[source]]
name = "web"
file = "web/events.jsonl"
kind = "events"
namespace = "web"
[source.columns]
customer = "user"
email = "email"
event = "type"
product = "sku"
channel = "channel"
time = "ts"

[[source]]
name = "web_crm_links"
file = "web/crm_links.csv"
kind = "identity_links"
left_namespace = "web"
right_namespace = "crm"
[source.columns]
left = "web_user"
right = "crm_customer"

[[source]]
name = "ratings"
file = "reviews/ratings.csv"
kind = "ratings"
namespace = "web"
[source.columns]
customer = "user"
product = "item"
rating = "stars"
time = "rated_at"

# The web shop's profile form: age and region as the customer typed them.
[[source]]
name = "web_profiles"
file = "web/profiles.csv"
kind = "customers"
namespace = "web"
[source.columns]
customer = "web_user"
time = "updated_at"
[source.attributes]
age_band = "age_band"
region = "region"

# --- Surveys and reviews -------------------------------------------------------
[[source]]
name = "surveys"
file = "feedback/surveys.csv"
kind = "feedback"
[source.columns]
email = "respondent_email"
type = "kind"
score = "score"
text = "comment"
time = "answered_at"

# A preferences survey: which category interests the respondent.
[[source]]
name = "preferences"
file = "feedback/preferences.csv"
kind = "customers"
[source.columns]
email = "respondent_email"
time = "answered_at"
[source.attributes]
interest = "interest"

# --- Support desk (tab-separated) ---------------------------------------------
[[source]]
name = "support"
file = "support/tickets.tsv"
kind = "feedback"
namespace = "support"
default_type = "ticket"
[source.columns]
customer = "contact_id"
phone = "contact_phone"
email = "contact_email"
text = "subject"
time = "opened"

# --- Marketing -------------------------------------------------------------------
[[source]]
name = "campaigns"
file = "marketing/campaigns.csv"
kind = "campaigns"
[source.columns]
campaign = "campaign_code"
name = "title"
type = "channel"
start = "starts"
end = "ends"

[[source]]
name = "exposures"
file = "marketing/exposures.csv"
kind = "campaign_exposures"
[source.columns]
campaign = "campaign"
email = "recipient"
time = "sent_at"

[[source]]
name = "redemptions"
file = "marketing/redemptions.csv"
kind = "redemptions"
namespace = "crm"
[source.columns]
campaign = "campaign"
customer = "member_id"
email = "email"
time = "redeemed_at"

# Who sees what (see README, "Sharing it"): field classes of attributes and
# departments; every source is also a department of its own name.
[access]
contact_attributes = ["first_name", "last_name"]
demographic_attributes = ["age_band", "income_band", "region", "plan", "interest"]
[access.departments]
sales = ["crm", "sales", "redemptions"]
marketing = ["campaigns", "exposures", "redemptions", "web", "ratings", "web_profiles"]
service = ["support", "surveys", "preferences"]

# Departments the information-gap analysis compares: who knows what about a
# customer (`catalog` is shared reference data, not a department).
[[department]]
name = "crm"
sources = ["crm", "consents"]
[[department]]
name = "sales"
sources = ["sales"]
[[department]]
name = "web"
sources = ["web", "web_crm_links", "ratings", "web_profiles"]
[[department]]
name = "service"
sources = ["support", "surveys", "preferences"]
[[department]]
name = "marketing"
sources = ["campaigns", "exposures", "redemptions"]
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use infogap_models::text::{Polarity, sentiment};

    #[test]
    fn chinese_comments_read_like_their_english_twins() {
        let pol = |t: &str| sentiment(t).polarity;
        for (en, zh) in COMPLAINTS.iter().zip(COMPLAINTS_ZH) {
            assert_eq!(pol(en), Polarity::Negative, "{en}");
            assert_eq!(pol(zh), Polarity::Negative, "{zh}");
        }
        for (en, zh) in QUESTIONS.iter().zip(QUESTIONS_ZH) {
            assert_eq!(pol(en), Polarity::Neutral, "{en}");
            assert_eq!(pol(zh), Polarity::Neutral, "{zh}");
        }
        for t in ALL_GOOD {
            assert_eq!(pol(t), Polarity::Positive, "{t}");
        }
    }
}
