//! Lockout of client addresses after repeated failed authentication.
//!
//! Guessing API keys or passwords must be slow: after `max_failures` failed
//! attempts within `window`, an address is refused for `lockout` (429 with
//! `Retry-After`). The state is in memory, one small entry per address, and
//! bounded: expired entries are pruned, and past [`MAX_ENTRIES`] the oldest
//! unlocked entries are dropped, so a flood of addresses cannot exhaust
//! memory. IPv6 addresses are grouped by their /64 prefix (one host usually
//! owns a whole /64) and IPv4-mapped IPv6 addresses count as IPv4.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most addresses tracked at once.
pub const MAX_ENTRIES: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Failures counted in the current window.
    failures: u32,
    /// Start of the current window.
    window_start: Instant,
    /// Refused until then, if locked.
    locked_until: Option<Instant>,
}

/// Counts failed authentications per client address and locks out
/// addresses that fail too often.
#[derive(Debug)]
pub struct FailedAuthLimiter {
    max_failures: u32,
    window: Duration,
    lockout: Duration,
    max_entries: usize,
    entries: Mutex<HashMap<IpAddr, Entry>>,
}

impl Default for FailedAuthLimiter {
    /// 10 failures within 60 s lock an address out for 60 s.
    fn default() -> Self {
        Self::new(10, Duration::from_secs(60), Duration::from_secs(60))
    }
}

impl FailedAuthLimiter {
    /// Locks an address out for `lockout` after `max_failures` failures
    /// within `window` (`max_failures` of 0 counts as 1).
    pub fn new(max_failures: u32, window: Duration, lockout: Duration) -> Self {
        FailedAuthLimiter {
            max_failures: max_failures.max(1),
            window,
            lockout,
            max_entries: MAX_ENTRIES,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The same limiter tracking at most `max_entries` addresses.
    pub fn with_max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries.max(1);
        self
    }

    /// `Ok` if `ip` may try to authenticate, else `Err(seconds)` until it
    /// may (at least 1).
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.check_at(ip, Instant::now())
    }

    /// Counts a failed authentication from `ip`.
    pub fn record_failure(&self, ip: IpAddr) {
        self.record_failure_at(ip, Instant::now());
    }

    /// Forgets the failures of `ip` after a successful authentication (a
    /// lockout in force stays).
    pub fn record_success(&self, ip: IpAddr) {
        let key = key(ip);
        let now = Instant::now();
        let mut map = self.lock();
        if let Some(e) = map.get(&key)
            && e.locked_until.is_none_or(|t| t <= now)
        {
            map.remove(&key);
        }
    }

    /// Number of addresses tracked (for metrics and tests).
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        // The map stays consistent even if a holder panicked: every update
        // is a single insert or field write.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let map = self.lock();
        match map.get(&key(ip)).and_then(|e| e.locked_until) {
            Some(until) if until > now => {
                let left = until - now;
                let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
                Err(secs.max(1))
            }
            _ => Ok(()),
        }
    }

    fn record_failure_at(&self, ip: IpAddr, now: Instant) {
        let key = key(ip);
        let mut map = self.lock();
        if !map.contains_key(&key) && map.len() >= self.max_entries {
            self.prune(&mut map, now);
        }
        let entry = map.entry(key).or_insert(Entry {
            failures: 0,
            window_start: now,
            locked_until: None,
        });
        if let Some(until) = entry.locked_until {
            if until > now {
                return;
            }
            entry.locked_until = None;
            entry.failures = 0;
            entry.window_start = now;
        }
        if now.duration_since(entry.window_start) > self.window {
            entry.failures = 0;
            entry.window_start = now;
        }
        entry.failures += 1;
        if entry.failures >= self.max_failures {
            entry.locked_until = Some(now + self.lockout);
            entry.failures = 0;
        }
    }

    /// Drops expired entries; if the map is still full, drops the unlocked
    /// entries with the oldest windows (and, if all are locked, the ones
    /// whose lockout ends first) until there is room for one more.
    fn prune(&self, map: &mut HashMap<IpAddr, Entry>, now: Instant) {
        map.retain(|_, e| {
            let locked = e.locked_until.is_some_and(|t| t > now);
            locked || now.duration_since(e.window_start) <= self.window
        });
        if map.len() < self.max_entries {
            return;
        }
        // Keep at most 3/4 of the capacity so the next prune is not right
        // after this one.
        let keep = self.max_entries * 3 / 4;
        let mut order: Vec<(bool, Instant, IpAddr)> = map
            .iter()
            .map(|(ip, e)| match e.locked_until {
                Some(t) if t > now => (true, t, *ip),
                _ => (false, e.window_start, *ip),
            })
            .collect();
        order.sort_unstable();
        let drop = order.len().saturating_sub(keep);
        for (_, _, ip) in order.into_iter().take(drop) {
            map.remove(&ip);
        }
    }
}

/// The address an entry is kept under: IPv4 as is (also when mapped into
/// IPv6), IPv6 by its /64 prefix.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn locks_after_max_failures_and_unlocks_after_lockout() {
        let l = FailedAuthLimiter::new(3, Duration::from_secs(60), Duration::from_secs(30));
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..2 {
            l.record_failure_at(a, t0);
            assert_eq!(l.check_at(a, t0), Ok(()));
        }
        l.record_failure_at(a, t0);
        assert_eq!(l.check_at(a, t0), Err(30));
        assert_eq!(l.check_at(a, t0 + Duration::from_millis(10_500)), Err(20));
        // Other addresses are not affected.
        assert_eq!(l.check_at(ip("192.0.2.2"), t0), Ok(()));
        // Failures while locked do not extend the lockout.
        l.record_failure_at(a, t0 + Duration::from_secs(10));
        assert_eq!(l.check_at(a, t0 + Duration::from_secs(29)), Err(1));
        assert_eq!(l.check_at(a, t0 + Duration::from_secs(30)), Ok(()));
        // After the lockout the count starts again.
        l.record_failure_at(a, t0 + Duration::from_secs(31));
        assert_eq!(l.check_at(a, t0 + Duration::from_secs(31)), Ok(()));
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let l = FailedAuthLimiter::new(3, Duration::from_secs(60), Duration::from_secs(60));
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        l.record_failure_at(a, t0);
        l.record_failure_at(a, t0 + Duration::from_secs(1));
        l.record_failure_at(a, t0 + Duration::from_secs(62));
        assert_eq!(l.check_at(a, t0 + Duration::from_secs(62)), Ok(()));
    }

    #[test]
    fn success_resets_the_count() {
        let l = FailedAuthLimiter::new(2, Duration::from_secs(60), Duration::from_secs(60));
        let a = ip("192.0.2.1");
        l.record_failure(a);
        l.record_success(a);
        assert_eq!(l.tracked(), 0);
        l.record_failure(a);
        assert_eq!(l.check(a), Ok(()));
        l.record_failure(a);
        assert!(l.check(a).is_err());
        // A success does not lift a lockout.
        l.record_success(a);
        assert!(l.check(a).is_err());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let l = FailedAuthLimiter::new(2, Duration::from_secs(60), Duration::from_secs(60));
        l.record_failure(ip("2001:db8:1:2::1"));
        l.record_failure(ip("2001:db8:1:2:ffff::9"));
        assert!(l.check(ip("2001:db8:1:2::77")).is_err());
        assert_eq!(l.check(ip("2001:db8:1:3::1")), Ok(()));
        l.record_failure(ip("::ffff:192.0.2.7"));
        l.record_failure(ip("192.0.2.7"));
        assert!(l.check(ip("192.0.2.7")).is_err());
    }

    #[test]
    fn memory_is_bounded() {
        let l = FailedAuthLimiter::new(2, Duration::from_secs(60), Duration::from_secs(60))
            .with_max_entries(100);
        let t0 = Instant::now();
        let locked = ip("198.51.100.1");
        l.record_failure_at(locked, t0);
        l.record_failure_at(locked, t0);
        for i in 0..1000u32 {
            let a = IpAddr::V4(std::net::Ipv4Addr::from(0x0A00_0000 + i));
            l.record_failure_at(a, t0 + Duration::from_millis(u64::from(i)));
            assert!(l.tracked() <= 100);
        }
        // Locked entries outlive unlocked ones.
        assert!(l.check_at(locked, t0 + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn expired_entries_are_pruned_first() {
        let l = FailedAuthLimiter::new(5, Duration::from_secs(60), Duration::from_secs(60))
            .with_max_entries(3);
        let t0 = Instant::now();
        for a in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
            l.record_failure_at(ip(a), t0);
        }
        assert_eq!(l.tracked(), 3);
        l.record_failure_at(ip("192.0.2.4"), t0 + Duration::from_secs(200));
        assert_eq!(l.tracked(), 1);
    }
}
