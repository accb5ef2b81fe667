//! What the server holds between requests: a pool of engines (one SQLite
//! connection each), the live snapshot and the predictions over it, the
//! policy, background training jobs and the failed-authentication limiter.
//!
//! The engine is synchronous: every call runs on tokio's blocking pool
//! ([`AppState::run`]), never on the async threads. A refresher thread
//! follows the store: within a few hundred milliseconds of an import, a
//! merge or a finished training (here or in another process) new requests
//! see the new data and models; requests in flight keep the snapshot they
//! started with.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use infogap_engine::access::{Policy, Principal};
use infogap_engine::audit::AuditSink;
use infogap_engine::share::Insights;
use infogap_engine::snapshot::LiveSnapshot;
use infogap_engine::{Engine, EngineError};
use serde::Serialize;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::ratelimit::FailedAuthLimiter;

/// How often the refresher looks at the store.
pub const REFRESH_EVERY: Duration = Duration::from_millis(200);

/// A background job (model training).
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    /// Id.
    pub id: u64,
    /// `train`.
    pub kind: String,
    /// Model kind.
    pub model: String,
    /// `running`, `succeeded`, `failed`.
    pub status: String,
    /// Who started it.
    pub started_by: String,
    /// Started (RFC 3339).
    pub started_at: String,
    /// Finished (RFC 3339).
    pub finished_at: Option<String>,
    /// Seconds taken.
    pub seconds: Option<f64>,
    /// The training report.
    pub result: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<String>,
    /// The policy scope (role, department) its result was shaped for.
    #[serde(skip)]
    pub scope: Option<(String, Option<String>)>,
}

/// The engines: idle ones, and how many are open in all.
struct Pool {
    idle: Vec<Engine>,
    open: usize,
    max: usize,
}

/// An engine lent by the pool; it goes back when dropped (also when the
/// request's work panics).
struct Pooled<'a> {
    engine: Option<Engine>,
    state: &'a AppState,
}

impl Pooled<'_> {
    fn get(&self) -> &Engine {
        match &self.engine {
            Some(e) => e,
            None => unreachable!("a pooled engine is taken only on drop"),
        }
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(e) = self.engine.take() {
            lock(&self.state.pool).idle.push(e);
            self.state.pool_free.notify_one();
        }
    }
}

/// Shared server state.
pub struct AppState {
    db: PathBuf,
    pool: Mutex<Pool>,
    pool_free: Condvar,
    sink: Arc<AuditSink>,
    insights: RwLock<Arc<Insights>>,
    policy: RwLock<Arc<Policy>>,
    /// Policy given by `serve --config` (overrides the stored one).
    policy_override: Option<Arc<Policy>>,
    jobs: Mutex<HashMap<u64, Job>>,
    next_job: AtomicU64,
    /// The failed-authentication lockout.
    pub limiter: FailedAuthLimiter,
    /// The failed sign-in lockout per account name (pages).
    pub account_limiter: FailedAuthLimiter,
    /// Request metrics.
    pub metrics: Arc<Metrics>,
    stop: AtomicBool,
    /// Session cookies get `Secure` (served over TLS).
    secure_cookies: AtomicBool,
    /// Answers computed from the snapshot alone (forecasts), kept for the
    /// generation they were computed at.
    memo: Mutex<(i64, HashMap<String, serde_json::Value>)>,
    /// Set when messages were journaled; the intake worker waits on it.
    intake_wake: (Mutex<bool>, Condvar),
    /// Counts of the event intake (also in `/metrics`).
    pub intake_stats: Arc<IntakeStats>,
    /// Counts of webhook deliveries (also in `/metrics`).
    pub delivery_stats: Arc<crate::delivery::DeliveryStats>,
}

/// Counts of the event intake since the server started.
#[derive(Debug, Default)]
pub struct IntakeStats {
    /// Messages journaled.
    pub accepted: AtomicU64,
    /// Duplicates ignored.
    pub duplicates: AtomicU64,
    /// Messages refused at intake.
    pub rejected: AtomicU64,
    /// Messages applied to the facts.
    pub applied: AtomicU64,
    /// Dropped: erased people.
    pub suppressed: AtomicU64,
    /// Dropped: no analytics consent.
    pub no_consent: AtomicU64,
    /// Refused when applied.
    pub apply_rejected: AtomicU64,
    /// Alerts raised by the rules.
    pub alerts: AtomicU64,
}

impl IntakeStats {
    /// Counts one request's outcome.
    pub fn taken(&self, accepted: usize, duplicates: usize, rejected: usize) {
        self.accepted.fetch_add(accepted as u64, Ordering::Relaxed);
        self.duplicates
            .fetch_add(duplicates as u64, Ordering::Relaxed);
        self.rejected.fetch_add(rejected as u64, Ordering::Relaxed);
    }

    fn applied(&self, r: &infogap_engine::intake::ApplyReport) {
        self.applied.fetch_add(r.applied as u64, Ordering::Relaxed);
        self.suppressed
            .fetch_add(r.suppressed as u64, Ordering::Relaxed);
        self.no_consent
            .fetch_add(r.no_consent as u64, Ordering::Relaxed);
        self.apply_rejected
            .fetch_add(r.rejected as u64, Ordering::Relaxed);
    }
}

/// Messages one intake round applies at most.
pub const INTAKE_ROUND: usize = 10_000;
/// Least time between two intake rounds: a round holds the store's write
/// lock, and requests journaling messages need it between rounds (SQLite's
/// busy wait would otherwise let the worker take it again and again).
pub const INTAKE_PAUSE: Duration = Duration::from_millis(250);
/// How long the intake worker sleeps when nothing wakes it (messages of
/// another process, or left by a crash, are applied within this).
pub const INTAKE_IDLE: Duration = Duration::from_millis(500);

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Opens the store (which must exist), loads the snapshot and starts
    /// the refresher.
    pub fn open(
        db: &Path,
        policy_override: Option<Policy>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<AppState>, EngineError> {
        let engine = Engine::open_existing(db)?;
        let sink = AuditSink::group(Arc::new(infogap_store::audit::AuditLog::open(
            &infogap_store::audit::audit_path(db),
            true,
        )?));
        engine.set_audit_sink(sink.clone())?;
        // the store's secret must exist before keys are checked
        engine.secret()?;
        let (live, _) = engine.snapshot()?;
        let models = engine.store().model_versions()?;
        let insights = Insights::new(live.generation(), models, live.dataset());
        let policy = match &policy_override {
            Some(p) => p.clone(),
            None => engine.policy()?,
        };
        let state = Arc::new(AppState {
            db: db.to_path_buf(),
            pool: Mutex::new(Pool {
                idle: vec![engine],
                open: 1,
                max: std::thread::available_parallelism().map_or(4, |n| (2 * n.get()).clamp(4, 16)),
            }),
            pool_free: Condvar::new(),
            sink,
            insights: RwLock::new(Arc::new(insights)),
            policy: RwLock::new(Arc::new(policy)),
            policy_override: policy_override.map(Arc::new),
            jobs: Mutex::new(HashMap::new()),
            next_job: AtomicU64::new(1),
            limiter: FailedAuthLimiter::new(10, Duration::from_secs(60), Duration::from_secs(60)),
            account_limiter: FailedAuthLimiter::new(
                10,
                Duration::from_secs(300),
                Duration::from_secs(300),
            ),
            metrics,
            stop: AtomicBool::new(false),
            secure_cookies: AtomicBool::new(false),
            memo: Mutex::new((0, HashMap::new())),
            intake_wake: (Mutex::new(false), Condvar::new()),
            intake_stats: Arc::default(),
            delivery_stats: Arc::default(),
        });
        let stats = state.intake_stats.clone();
        for (name, help, read) in [
            (
                "infogap_intake_accepted_total",
                "Intake messages journaled.",
                0usize,
            ),
            (
                "infogap_intake_duplicates_total",
                "Intake messages ignored as duplicates (message id).",
                1,
            ),
            (
                "infogap_intake_rejected_total",
                "Intake messages refused (bad message).",
                2,
            ),
            (
                "infogap_intake_applied_total",
                "Intake messages applied to the facts.",
                3,
            ),
            (
                "infogap_intake_suppressed_total",
                "Intake messages dropped: the person is erased.",
                4,
            ),
            (
                "infogap_intake_no_consent_total",
                "Intake messages dropped: no analytics consent.",
                5,
            ),
        ] {
            let s = stats.clone();
            state
                .metrics
                .gauge_fn(name, help, move || {
                    let c = match read {
                        0 => &s.accepted,
                        1 => &s.duplicates,
                        2 => &s.rejected,
                        3 => &s.applied,
                        4 => &s.suppressed,
                        5 => &s.no_consent,
                        _ => &s.alerts,
                    };
                    c.load(Ordering::Relaxed) as f64
                })
                .ok();
        }
        for (name, help, read) in [
            (
                "infogap_webhook_queued_total",
                "Webhook messages queued (alerts and sign-in links).",
                0usize,
            ),
            (
                "infogap_webhook_delivered_total",
                "Webhook tries answered 2xx.",
                1,
            ),
            (
                "infogap_webhook_failed_total",
                "Webhook tries that failed (retried later or dead).",
                2,
            ),
        ] {
            let s = state.delivery_stats.clone();
            state
                .metrics
                .gauge_fn(name, help, move || {
                    let c = match read {
                        0 => &s.queued,
                        1 => &s.delivered,
                        _ => &s.failed,
                    };
                    c.load(Ordering::Relaxed) as f64
                })
                .ok();
        }
        crate::delivery::spawn(&state)?;
        let weak = Arc::downgrade(&state);
        std::thread::Builder::new()
            .name("alerts".into())
            .spawn(move || alerts_worker(weak))
            .map_err(|e| EngineError::Invalid(format!("cannot start the alerts worker: {e}")))?;
        let weak = Arc::downgrade(&state);
        std::thread::Builder::new()
            .name("intake".into())
            .spawn(move || intake_worker(weak))
            .map_err(|e| EngineError::Invalid(format!("cannot start the intake worker: {e}")))?;
        let weak = Arc::downgrade(&state);
        std::thread::Builder::new()
            .name("snapshot-refresh".into())
            .spawn(move || refresher(weak, live))
            .map_err(|e| EngineError::Invalid(format!("cannot start the refresher: {e}")))?;
        Ok(state)
    }

    /// An engine of its own for a worker thread, writing to the server's
    /// audit trail.
    pub(crate) fn open_engine(&self) -> Result<Engine, EngineError> {
        let e = Engine::open_existing(&self.db)?;
        e.set_audit_sink(self.sink.clone())?;
        Ok(e)
    }

    /// Whether the server is shutting down.
    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Marks the server as served over TLS: cookies get `Secure`.
    pub fn set_secure_cookies(&self, on: bool) {
        self.secure_cookies.store(on, Ordering::Relaxed);
    }

    /// Whether cookies get `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.secure_cookies.load(Ordering::Relaxed)
    }

    /// Stops the refresher and the intake worker (on shutdown).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake_intake();
    }

    /// Tells the intake worker that messages wait.
    pub fn wake_intake(&self) {
        let (m, cv) = &self.intake_wake;
        *m.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        cv.notify_one();
    }

    /// An engine from the pool: an idle one, a new one while fewer than
    /// the pool's size are open, else the next one returned. Each engine
    /// holds one SQLite connection; opening one per request (and closing
    /// it, which checkpoints the WAL) cost more than the request.
    fn checkout(&self) -> Result<Pooled<'_>, EngineError> {
        let mut p = lock(&self.pool);
        loop {
            if let Some(e) = p.idle.pop() {
                return Ok(Pooled {
                    engine: Some(e),
                    state: self,
                });
            }
            if p.open < p.max {
                p.open += 1;
                drop(p);
                let opened = Engine::open_existing(&self.db).and_then(|e| {
                    e.set_audit_sink(self.sink.clone())?;
                    Ok(e)
                });
                return match opened {
                    Ok(e) => Ok(Pooled {
                        engine: Some(e),
                        state: self,
                    }),
                    Err(err) => {
                        lock(&self.pool).open -= 1;
                        self.pool_free.notify_one();
                        Err(err)
                    }
                };
            }
            p = self
                .pool_free
                .wait(p)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// The current predictions.
    pub fn insights(&self) -> Arc<Insights> {
        read(&self.insights).clone()
    }

    /// The current policy.
    pub fn policy(&self) -> Arc<Policy> {
        read(&self.policy).clone()
    }

    /// Runs `f` with an engine on the blocking pool.
    pub async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Engine, &AppState) -> Result<T, EngineError> + Send + 'static,
    {
        let me = self.clone();
        let out = tokio::task::spawn_blocking(move || {
            let engine = me.checkout()?;
            f(engine.get(), &me)
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "a blocking task failed");
            ApiError::internal()
        })?;
        out.map_err(ApiError::from)
    }

    /// Authenticates a bearer secret (run inside [`AppState::run`]).
    pub fn authenticate(
        &self,
        engine: &Engine,
        bearer: Option<&str>,
        origin: &str,
        request_id: Option<String>,
    ) -> Result<Principal, EngineError> {
        let bearer = bearer
            .ok_or_else(|| EngineError::Unauthorized(infogap_engine::keys::REFUSED.into()))?;
        let mut p = engine.authenticate(bearer, origin)?;
        p.request_id = request_id;
        Ok(p)
    }

    /// Starts a training job on its own thread and engine.
    pub fn start_training(self: &Arc<Self>, model: &str, by: &str) -> Result<Job, EngineError> {
        if !matches!(model, "recs" | "churn" | "clv" | "amount") {
            return Err(EngineError::NotFound(format!(
                "no model kind {model:?}; kinds: recs, churn, clv, amount"
            )));
        }
        let m = model.to_string();
        self.start_job("train", model, by, None, move |e| train(e, &m))
    }

    /// Retrains `kinds` in the background whenever the newest saved model of
    /// a kind is older than `every` (checked every `every / 4`, at most a
    /// minute apart; a kind not yet trained is left to a person, and one
    /// whose training failed is not tried again sooner than `every`). A
    /// finished training is picked up by the refresher: new requests get
    /// the new model, requests in flight finish with the old one.
    pub fn schedule_retraining(
        self: &Arc<Self>,
        every: Duration,
        kinds: Vec<String>,
    ) -> Result<(), EngineError> {
        for k in &kinds {
            if !matches!(k.as_str(), "recs" | "churn" | "clv" | "amount") {
                return Err(EngineError::Invalid(format!(
                    "--retrain: no model kind {k:?}; kinds: recs, churn, clv, amount"
                )));
            }
        }
        let weak = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("retrain".into())
            .spawn(move || retrainer(weak, every, kinds))
            .map_err(|e| EngineError::Invalid(format!("cannot start the retrainer: {e}")))?;
        Ok(())
    }

    /// Starts a background job on its own thread and engine: `f` computes
    /// its result. `scope` (role, department) marks a result shaped for one
    /// policy scope: only a viewer of the same scope may be shown it.
    pub fn start_job<F>(
        self: &Arc<Self>,
        kind: &str,
        model: &str,
        by: &str,
        scope: Option<(String, Option<String>)>,
        f: F,
    ) -> Result<Job, EngineError>
    where
        F: FnOnce(&Engine) -> Result<serde_json::Value, EngineError> + Send + 'static,
    {
        let id = self.next_job.fetch_add(1, Ordering::Relaxed);
        let job = Job {
            id,
            kind: kind.to_string(),
            model: model.to_string(),
            status: "running".into(),
            started_by: by.to_string(),
            started_at: infogap_store::now_rfc3339(),
            finished_at: None,
            seconds: None,
            result: None,
            error: None,
            scope,
        };
        lock(&self.jobs).insert(id, job.clone());
        let me = self.clone();
        std::thread::Builder::new()
            .name(format!("{kind}-{model}"))
            .spawn(move || {
                let t0 = Instant::now();
                let out = Engine::open_existing(&me.db).and_then(|e| {
                    e.set_audit_sink(me.sink.clone())?;
                    f(&e)
                });
                let mut jobs = lock(&me.jobs);
                if let Some(j) = jobs.get_mut(&id) {
                    j.finished_at = Some(infogap_store::now_rfc3339());
                    j.seconds = Some(t0.elapsed().as_secs_f64());
                    match out {
                        Ok(v) => {
                            j.status = "succeeded".into();
                            j.result = Some(v);
                        }
                        Err(e) => {
                            j.status = "failed".into();
                            j.error = Some(e.to_string());
                        }
                    }
                }
            })
            .map_err(|e| EngineError::Invalid(format!("cannot start a job: {e}")))?;
        Ok(job)
    }

    /// `f()` for `key` at the current snapshot generation, computed once
    /// per generation. Only for answers that depend on the snapshot alone,
    /// never on who asks (the caller still authorizes and audits).
    pub fn memo<F>(&self, key: &str, f: F) -> Result<serde_json::Value, EngineError>
    where
        F: FnOnce() -> Result<serde_json::Value, EngineError>,
    {
        let generation = self.insights().generation;
        {
            let m = lock(&self.memo);
            if m.0 == generation
                && let Some(v) = m.1.get(key)
            {
                return Ok(v.clone());
            }
        }
        let v = f()?;
        let mut m = lock(&self.memo);
        if m.0 != generation {
            *m = (generation, HashMap::new());
        }
        if m.1.len() < 256 {
            m.1.insert(key.to_string(), v.clone());
        }
        Ok(v)
    }

    /// The newest job of `kind` whose result was shaped for `scope`.
    pub fn latest_job(&self, kind: &str, scope: &(String, Option<String>)) -> Option<Job> {
        lock(&self.jobs)
            .values()
            .filter(|j| j.kind == kind && j.scope.as_ref() == Some(scope))
            .max_by_key(|j| j.id)
            .cloned()
    }

    /// A job by id.
    pub fn job(&self, id: u64) -> Option<Job> {
        lock(&self.jobs).get(&id).cloned()
    }
}

fn train(e: &Engine, model: &str) -> Result<serde_json::Value, EngineError> {
    let js = |v: Result<serde_json::Value, serde_json::Error>| {
        v.map_err(|e| EngineError::Invalid(format!("report: {e}")))
    };
    match model {
        "recs" => {
            let opts = infogap_engine::recs::TrainOptions {
                algo: "auto".into(),
                params: vec![],
                signals: infogap_engine::recs::SignalConfig::with_weights(0.5, 0.1, 1.0, None),
                seed: 0,
                k: 10,
                progress: false,
            };
            let r = infogap_engine::recs::train(e, &opts)?;
            js(serde_json::to_value(&r))
        }
        "churn" => {
            let r = infogap_engine::churn::train(e, &Default::default())?;
            js(serde_json::to_value(&r))
        }
        "clv" => {
            let r = infogap_engine::clv::train(e, None, infogap_models::clv::TimeUnit::Week)?;
            Ok(r.to_json())
        }
        _ => {
            let r = infogap_engine::analytics::train_amount(e, &Default::default())?;
            js(serde_json::to_value(&r))
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Applies the intake journal: woken by each request that journaled
/// messages, else every [`INTAKE_IDLE`]; pending messages left by a crash
/// are applied on start.
fn intake_worker(state: std::sync::Weak<AppState>) {
    let engine = match state.upgrade().map(|s| Engine::open_existing(&s.db)) {
        Some(Ok(e)) => e,
        Some(Err(e)) => {
            tracing::error!(error = %e, "intake worker cannot open the store");
            return;
        }
        None => return,
    };
    loop {
        let Some(s) = state.upgrade() else { return };
        if s.stop.load(Ordering::Relaxed) {
            return;
        }
        loop {
            match engine.apply_intake(INTAKE_ROUND) {
                Ok(r) if r.messages > 0 => {
                    s.intake_stats.applied(&r);
                    tracing::debug!(
                        applied = r.applied,
                        suppressed = r.suppressed,
                        no_consent = r.no_consent,
                        rejected = r.rejected,
                        seconds = r.seconds,
                        "intake round"
                    );
                    if r.messages < INTAKE_ROUND {
                        break;
                    }
                    // a full round: let the requests waiting to journal in first
                    std::thread::sleep(INTAKE_PAUSE);
                }
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "intake round failed; retrying");
                    break;
                }
            }
        }
        // rounds at most every INTAKE_PAUSE, however often requests wake it
        std::thread::sleep(INTAKE_PAUSE);
        let (m, cv) = &s.intake_wake;
        let mut woken = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !*woken {
            woken = cv
                .wait_timeout(woken, INTAKE_IDLE)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        *woken = false;
        drop(woken);
        drop(s);
    }
}

/// How often the alerts worker looks for a new snapshot to evaluate.
pub const ALERTS_EVERY: Duration = Duration::from_millis(500);

/// Evaluates the `[[rule]]`s on each new snapshot the server serves (at
/// most every [`ALERTS_EVERY`]); the engine stores alerts with their
/// baseline, so a restart evaluates what changed while it was down.
fn alerts_worker(state: std::sync::Weak<AppState>) {
    let engine = match state.upgrade().map(|s| Engine::open_existing(&s.db)) {
        Some(Ok(e)) => e,
        Some(Err(e)) => {
            tracing::error!(error = %e, "alerts worker cannot open the store");
            return;
        }
        None => return,
    };
    let mut last = i64::MIN;
    loop {
        std::thread::sleep(ALERTS_EVERY);
        let Some(s) = state.upgrade() else { return };
        if s.stop.load(Ordering::Relaxed) {
            return;
        }
        let ins = s.insights();
        if ins.generation == last {
            continue;
        }
        match engine.evaluate_alerts(&ins) {
            Ok(raised) => {
                last = ins.generation;
                if !raised.is_empty() {
                    s.intake_stats
                        .alerts
                        .fetch_add(raised.len() as u64, Ordering::Relaxed);
                    tracing::info!(alerts = raised.len(), generation = last, "alerts raised");
                }
            }
            Err(e) => tracing::warn!(error = %e, "alert evaluation failed; retrying"),
        }
    }
}

/// Starts the trainings [`AppState::schedule_retraining`] asks for.
fn retrainer(state: std::sync::Weak<AppState>, every: Duration, kinds: Vec<String>) {
    let check = (every / 4).clamp(Duration::from_millis(250), Duration::from_secs(60));
    let mut tried: HashMap<String, Instant> = HashMap::new();
    let engine = match state.upgrade().map(|s| s.open_engine()) {
        Some(Ok(e)) => e,
        Some(Err(e)) => {
            tracing::error!(error = %e, "retrainer cannot open the store");
            return;
        }
        None => return,
    };
    loop {
        std::thread::sleep(check);
        let Some(s) = state.upgrade() else { return };
        if s.stop.load(Ordering::Relaxed) {
            return;
        }
        let times = match engine.store().model_times() {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "retrainer: reading model times");
                continue;
            }
        };
        let now = chrono::Utc::now();
        for kind in &kinds {
            let Some((_, version, at)) = times.iter().find(|t| &t.0 == kind) else {
                continue;
            };
            let age = chrono::DateTime::parse_from_rfc3339(at)
                .map(|t| now.signed_duration_since(t).to_std().unwrap_or_default())
                .unwrap_or(Duration::MAX);
            let running = lock(&s.jobs)
                .values()
                .any(|j| j.kind == "train" && &j.model == kind && j.status == "running");
            if age < every || running || tried.get(kind).is_some_and(|t| t.elapsed() < every) {
                continue;
            }
            tried.insert(kind.clone(), Instant::now());
            match s.start_training(kind, "schedule") {
                Ok(j) => {
                    tracing::info!(model = %kind, from_version = version, job = j.id, "scheduled retraining started")
                }
                Err(e) => {
                    tracing::warn!(model = %kind, error = %e, "scheduled retraining could not start")
                }
            }
        }
    }
}

/// Follows the store: new generation or model version → new insights.
fn refresher(state: std::sync::Weak<AppState>, mut live: LiveSnapshot) {
    let engine = match state.upgrade().map(|s| Engine::open_existing(&s.db)) {
        Some(Ok(e)) => e,
        Some(Err(e)) => {
            tracing::error!(error = %e, "snapshot refresher cannot open the store");
            return;
        }
        None => return,
    };
    loop {
        std::thread::sleep(REFRESH_EVERY);
        let Some(s) = state.upgrade() else { return };
        if s.stop.load(Ordering::Relaxed) {
            return;
        }
        let cur = s.insights();
        let models = match engine.store().model_versions() {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "snapshot refresher: reading model versions");
                continue;
            }
        };
        let generation = match engine.store().generation() {
            Ok(g) => g.generation,
            Err(e) => {
                tracing::warn!(error = %e, "snapshot refresher: reading the generation");
                continue;
            }
        };
        if generation == cur.generation && models == cur.models {
            continue;
        }
        if generation != live.generation()
            && let Err(e) = engine.refresh(&mut live)
        {
            tracing::warn!(error = %e, "snapshot refresher: refresh failed; keeping the old snapshot");
            continue;
        }
        let next = Insights::new(live.generation(), models, live.dataset());
        *s.insights
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(next);
        if s.policy_override.is_none() {
            match engine.policy() {
                Ok(p) => {
                    *s.policy
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(p)
                }
                Err(e) => tracing::warn!(error = %e, "snapshot refresher: reading the policy"),
            }
        }
        s.metrics
            .set_gauge(
                "infogap_snapshot_generation",
                "Store generation the served snapshot reflects.",
                live.generation() as f64,
            )
            .ok();
        tracing::info!(generation = live.generation(), "snapshot refreshed");
    }
}
