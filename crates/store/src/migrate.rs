//! Versioned schema migrations, kept as SQL files in `migrations/` and applied
//! in order inside one transaction each. The applied versions are recorded in
//! `schema_migrations` with a checksum, so an edited migration is detected.
//! PostgreSQL has its own translation of each file under `migrations/pg/`.

/// A migration: version, name and SQL.
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migrations {
    ($dir:literal: $($v:literal $name:literal $file:literal),* $(,)?) => {
        &[$(Migration {
            version: $v,
            name: $name,
            sql: include_str!(concat!("../migrations/", $dir, $file)),
        }),*]
    };
}

macro_rules! all_migrations {
    ($dir:literal) => {
        migrations!($dir:
            1 "init" "0001_init.sql",
            2 "generations" "0002_generations.sql",
            3 "access" "0003_access.sql",
            4 "fact_indexes" "0004_fact_indexes.sql",
            5 "privacy" "0005_privacy.sql",
            6 "web" "0006_web.sql",
            7 "intake" "0007_intake.sql",
            8 "alerts" "0008_alerts.sql",
            9 "webhooks" "0009_webhooks.sql",
        )
    };
}

/// All migrations of a SQLite store, oldest first.
pub(crate) const MIGRATIONS: &[Migration] = all_migrations!("");

/// The same migrations in PostgreSQL's dialect (`migrations/pg/`): the
/// same versions, tables and columns.
pub(crate) const MIGRATIONS_PG: &[Migration] = all_migrations!("pg/");

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dialects_have_the_same_versions() {
        let v = |m: &[Migration]| m.iter().map(|m| (m.version, m.name)).collect::<Vec<_>>();
        assert_eq!(v(MIGRATIONS), v(MIGRATIONS_PG));
        for m in MIGRATIONS_PG {
            assert!(
                !m.sql.contains("INTEGER") && !m.sql.contains("BLOB"),
                "{}",
                m.name
            );
        }
    }
}
