//! The webhook worker of `infogap serve`: turns new alerts into outbox
//! messages (the engine shapes them by each webhook's policy and the
//! person's consent) and posts due messages, signed, to their webhooks.
//!
//! The outbox is the only state: a message is claimed under a lease before
//! it is sent and its answer is recorded after, so a server killed between
//! the two sends it again after the lease (at least once; receivers drop a
//! repeated `webhook-id`), and one killed before the claim loses nothing.
//! Several tries run at once; a slow receiver holds only its own try (each
//! has the `[webhooks] timeout`). Redirects are not followed (a 3xx is a
//! failed try), so a message goes only to the URL that was registered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use infogap_engine::webhooks::{Outgoing, TryResult};
use infogap_engine::{Engine, EngineError};

use crate::state::AppState;

/// How long the worker rests when nothing is due.
pub const DELIVERY_IDLE: Duration = Duration::from_millis(200);

/// How many messages one round claims (and tries at once).
const ROUND: usize = 64;

/// Counts of webhook deliveries since the server started (also in `/metrics`).
#[derive(Debug, Default)]
pub struct DeliveryStats {
    /// Alerts and links turned into messages.
    pub queued: AtomicU64,
    /// Tries answered 2xx.
    pub delivered: AtomicU64,
    /// Tries that failed (another try follows, or the message is dead).
    pub failed: AtomicU64,
}

/// Makes ring this process's rustls provider (once; the HTTP client is
/// built without one, and `http.rs` says why ring and not aws-lc-rs).
/// Anything in the process building a `reqwest` client calls it first.
pub fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[allow(deprecated)]
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    });
}

/// Starts the worker on its own thread.
pub(crate) fn spawn(state: &Arc<AppState>) -> Result<(), EngineError> {
    let weak = Arc::downgrade(state);
    std::thread::Builder::new()
        .name("webhooks".into())
        .spawn(move || worker(weak))
        .map_err(|e| EngineError::Invalid(format!("cannot start the webhook worker: {e}")))?;
    Ok(())
}

fn worker(state: Weak<AppState>) {
    let Some(engine) = state.upgrade().map(|s| s.open_engine()) else {
        return;
    };
    let engine = match engine {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "webhook worker cannot open the store");
            return;
        }
    };
    install_tls_provider();
    // the sends run on one runtime thread of their own; the engine's store
    // calls (which block on their own runtime) stay on this thread
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("webhooks-send")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "webhook worker cannot start its runtime");
            return;
        }
    };
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("infogap-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook worker cannot build its HTTP client");
            return;
        }
    };
    deliver(&engine, &state, &rt, &client);
}

/// The delivery loop: keeps up to [`ROUND`] tries in flight, claims more as
/// they finish, and records each answer as soon as it comes (a slow
/// receiver holds only its own message, and a kill repeats as few
/// deliveries as possible).
fn deliver(
    engine: &Engine,
    state: &Weak<AppState>,
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
) {
    let mut inflight: tokio::task::JoinSet<TryResult> = tokio::task::JoinSet::new();
    loop {
        let Some(s) = state.upgrade() else { return };
        if s.stopping() {
            return;
        }
        let d = match queue_and_claim(engine, &s, ROUND - inflight.len()) {
            Ok((d, batch)) => {
                let timeout = Duration::from_millis(d.timeout_ms);
                for m in batch {
                    let c = client.clone();
                    inflight.spawn_on(async move { send(&c, m, timeout).await }, rt.handle());
                }
                Some(d)
            }
            Err(e) => {
                tracing::warn!(error = %e, "webhook round failed; retrying");
                None
            }
        };
        let stats = s.delivery_stats.clone();
        drop(s);
        let wait = if inflight.is_empty() {
            DELIVERY_IDLE
        } else {
            Duration::from_millis(50)
        };
        let done = rt.block_on(async {
            let mut done = Vec::new();
            tokio::select! {
                Some(Ok(r)) = inflight.join_next(), if !inflight.is_empty() => done.push(r),
                () = tokio::time::sleep(wait) => {}
            }
            while let Some(Ok(r)) = inflight.try_join_next() {
                done.push(r);
            }
            done
        });
        if done.is_empty() {
            continue;
        }
        for r in &done {
            let ok = r.status.is_some_and(|s| (200..300).contains(&s));
            let c = if ok { &stats.delivered } else { &stats.failed };
            c.fetch_add(1, Ordering::Relaxed);
        }
        let d = match d {
            Some(d) => d,
            None => match engine.delivery_settings() {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook settings unreadable");
                    continue;
                }
            },
        };
        if let Err(e) = engine.finish_messages(&d, &done) {
            // the claims run out and the messages are tried again
            tracing::warn!(error = %e, "recording webhook answers failed");
        }
    }
}

/// Queues new alerts, then claims up to `room` due messages.
fn queue_and_claim(
    engine: &Engine,
    s: &AppState,
    room: usize,
) -> Result<(infogap_core::config::Delivery, Vec<Outgoing>), EngineError> {
    let queued = engine.enqueue_alert_messages(&s.policy(), &s.insights())?;
    s.delivery_stats
        .queued
        .fetch_add(queued as u64, Ordering::Relaxed);
    let d = engine.delivery_settings()?;
    let batch = if room > 0 {
        engine.claim_messages(&d, room)?
    } else {
        Vec::new()
    };
    Ok((d, batch))
}

/// One signed try.
async fn send(client: &reqwest::Client, m: Outgoing, timeout: Duration) -> TryResult {
    let ts = chrono::Utc::now().timestamp();
    let mut req = client
        .post(&m.url)
        .timeout(timeout)
        .header("content-type", "application/json");
    for (k, v) in m.headers(ts) {
        req = req.header(k, v);
    }
    let out = req.body(m.body.clone()).send().await;
    let (status, error) = match out {
        Ok(resp) => (Some(resp.status().as_u16()), None),
        Err(e) => {
            let why = if e.is_timeout() {
                format!("no answer within {} ms", timeout.as_millis())
            } else if e.is_connect() {
                "cannot connect".to_string()
            } else {
                format!("request failed: {}", e.without_url())
            };
            (None, Some(why))
        }
    };
    TryResult {
        id: m.id,
        attempt: m.attempt,
        status,
        error,
    }
}
