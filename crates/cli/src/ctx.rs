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
}

impl Ctx {
    /// Builds the context from the global options.
    pub fn new(db_arg: Option<PathBuf>, quiet: bool) -> Self {
        Ctx { db_arg, quiet }
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

    /// Opens the engine on the store.
    pub fn engine(&self) -> anyhow::Result<infogap_engine::Engine> {
        let path = self.db_path();
        infogap_engine::Engine::open(&path)
            .map_err(|e| anyhow::Error::new(e).context(format!("opening store {}", path.display())))
    }
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
