//! What every command gets: where the store is and whether to be quiet.

use std::io::IsTerminal;
use std::path::PathBuf;

/// Shared command context.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The `--db` / `INFOGAP_DB` path, when given.
    pub db_arg: Option<PathBuf>,
    /// `--quiet` was given.
    pub quiet: bool,
    /// `--as-role ROLE`: act under this role's policy instead of as the
    /// local admin.
    pub as_role: Option<String>,
}

impl Ctx {
    /// Builds the context from the global options.
    pub fn new(db_arg: Option<PathBuf>, quiet: bool, as_role: Option<String>) -> Self {
        Ctx {
            db_arg,
            quiet,
            as_role,
        }
    }

    /// The principal the command acts as: the local operator, as admin
    /// unless `--as-role` names another role.
    pub fn principal(&self) -> infogap_engine::access::Principal {
        infogap_engine::access::Principal::local(self.as_role.as_deref())
    }

    /// Authorizes an action for the command's principal under the store's
    /// policy (refusals are errors that name the role and action).
    pub fn access(
        &self,
        engine: &infogap_engine::Engine,
        action: infogap_core::access::Action,
    ) -> anyhow::Result<infogap_engine::access::Access> {
        let policy = engine.policy()?;
        if let Some(r) = &self.as_role {
            policy.check_role(r)?;
        }
        Ok(engine.authorize(&policy, &self.principal(), action)?)
    }

    /// The store path: `--db`/`INFOGAP_DB`, else `./infogap.db`.
    pub fn db_path(&self) -> PathBuf {
        self.db_arg
            .clone()
            .unwrap_or_else(|| PathBuf::from("infogap.db"))
    }

    /// Whether progress bars may be drawn (stderr is a terminal and not `--quiet`).
    pub fn progress(&self) -> bool {
        !self.quiet && std::io::stderr().is_terminal()
    }

    /// Opens the engine on the store, creating it when missing: for the
    /// commands that fill a store (import, quickstart).
    pub fn engine(&self) -> anyhow::Result<infogap_engine::Engine> {
        open_engine(&self.db_path(), None)
    }

    /// Opens the engine on a store that must exist: for every command that
    /// reads it (a mistyped `--db` must not create an empty store and then
    /// answer "no customer").
    pub fn engine_existing(&self) -> anyhow::Result<infogap_engine::Engine> {
        self.existing_db_path()?;
        self.engine()
    }

    /// The store path, refusing when no store is there.
    pub fn existing_db_path(&self) -> anyhow::Result<PathBuf> {
        let path = self.db_path();
        if infogap_store::postgres_url(&path).is_some() {
            // a server database: opening it says whether it is there
            return Ok(path);
        }
        match path.try_exists() {
            Ok(true) => Ok(path),
            Ok(false) => anyhow::bail!(
                "no store at {} (create one with `infogap import --config FILE` or `infogap quickstart`, or give the right --db / INFOGAP_DB)",
                path.display()
            ),
            Err(e) => anyhow::bail!("no store at {}: {e}", path.display()),
        }
    }
}

/// `INFOGAP_KEY_FILE`, when set.
pub fn key_file_from_env() -> Option<std::path::PathBuf> {
    std::env::var_os("INFOGAP_KEY_FILE")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
}

/// Opens the store at `path` with its data key: `INFOGAP_KEY_FILE`, else the
/// config's `[privacy] key_file`, else the file the store remembers, else
/// `<path>.key`. A new key file is announced on stderr: it must be moved
/// and backed up, or the store cannot be read.
pub fn open_engine(
    path: &std::path::Path,
    config: Option<&infogap_core::config::Config>,
) -> anyhow::Result<infogap_engine::Engine> {
    let key = key_file_from_env().or_else(|| {
        config
            .and_then(|c| c.privacy.key_file.as_ref())
            .map(std::path::PathBuf::from)
    });
    let engine = infogap_engine::Engine::open_with_key(path, key.as_deref()).map_err(|e| {
        anyhow::Error::new(e).context(format!(
            "opening store {}",
            infogap_store::shown_location(path)
        ))
    })?;
    if let Some(k) = engine.key_generated() {
        eprintln!(
            "warning: generated the data key {} (mode 0600) for the new store. Personal data in the store is encrypted with it: move it somewhere safe, back it up apart from the store, and point INFOGAP_KEY_FILE or [privacy] key_file at it. Without it the store cannot be read.",
            k.display()
        );
    }
    Ok(engine)
}

/// Prints a report's fit warnings (the same strings as its JSON `warnings`)
/// on stderr, where they stay visible when the report is piped.
pub fn print_warnings(warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
