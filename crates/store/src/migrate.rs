//! Versioned schema migrations, kept as SQL files in `migrations/` and applied
//! in order inside one transaction each. The applied versions are recorded in
//! `schema_migrations` with a checksum, so an edited migration is detected.

/// A migration: version, name and SQL.
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// All migrations, oldest first.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "generations",
        sql: include_str!("../migrations/0002_generations.sql"),
    },
    Migration {
        version: 3,
        name: "access",
        sql: include_str!("../migrations/0003_access.sql"),
    },
    Migration {
        version: 4,
        name: "fact_indexes",
        sql: include_str!("../migrations/0004_fact_indexes.sql"),
    },
    Migration {
        version: 5,
        name: "privacy",
        sql: include_str!("../migrations/0005_privacy.sql"),
    },
    Migration {
        version: 6,
        name: "web",
        sql: include_str!("../migrations/0006_web.sql"),
    },
    Migration {
        version: 7,
        name: "intake",
        sql: include_str!("../migrations/0007_intake.sql"),
    },
    Migration {
        version: 8,
        name: "alerts",
        sql: include_str!("../migrations/0008_alerts.sql"),
    },
    Migration {
        version: 9,
        name: "webhooks",
        sql: include_str!("../migrations/0009_webhooks.sql"),
    },
];

/// FNV-1a checksum of a migration's SQL (stable across builds and platforms).
pub(crate) fn checksum(sql: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in sql.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The newest version this build knows.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}
