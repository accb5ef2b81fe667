//! `infogap users …` and `infogap customer link`: the people who sign in to
//! the pages of `infogap serve`. Staff users get a password (from stdin) or
//! a one-time setup link; a customer gets a one-time sign-in link to the
//! portal. The engine (`web`) owns the rules, hashes and audit; this only
//! parses, reads the password and prints. Nothing here prints a password,
//! a stored hash or the customer's key.

use std::io::BufRead as _;

use anyhow::Context as _;
use clap::Subcommand;
use infogap_core::access::Action;
use infogap_engine::web::NewUser;
use infogap_engine::{Engine, EngineError};
use serde::Serialize;

use crate::Ctx;
use crate::ctx::print_json;

/// Where `infogap serve` listens by default: the base of printed links.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8080";

/// `infogap users …`
#[derive(Debug, Subcommand)]
pub enum UsersCmd {
    /// Create a staff user of the pages: with --password-stdin it can sign
    /// in at once, else a one-time setup link (valid 24 h) is printed.
    Create {
        /// Sign-in name: 1-64 of A-Z a-z 0-9 . _ @ -
        #[arg(long)]
        name: String,
        /// Role: admin, analyst, marketing, sales, support, or one from `[access.roles]`.
        #[arg(long)]
        role: String,
        /// Limit the user to one department (`[access.departments]`, or a source name).
        #[arg(long)]
        department: Option<String>,
        /// Read the password (at least 12 characters) from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        /// Base URL of `infogap serve` for the printed setup link.
        #[arg(long, default_value = DEFAULT_BASE_URL, value_name = "URL")]
        base_url: String,
        /// JSON output (`name`, `role`, `department`, `setup_url`, `setup_expires_at`).
        #[arg(long)]
        json: bool,
    },
    /// Every user (never a password or its hash).
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: they cannot sign in, and their sessions end.
    Disable {
        /// The user's name.
        name: String,
    },
}

/// What `users create --json` prints.
#[derive(Debug, Serialize)]
struct CreatedOut {
    name: String,
    role: String,
    department: Option<String>,
    password_set: bool,
    setup_url: Option<String>,
    setup_expires_at: Option<String>,
}

/// What `customer link --json` prints.
#[derive(Debug, Serialize)]
struct LinkOut {
    url: String,
    customer: i64,
    expires_at: String,
}

/// The base URL without a trailing slash, or an error naming `--base-url`.
fn base_url(s: &str) -> anyhow::Result<String> {
    let b = s.trim().trim_end_matches('/');
    let rest = b
        .strip_prefix("http://")
        .or_else(|| b.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => Ok(b.into()),
        _ => anyhow::bail!("--base-url {s:?}: expected http://HOST[:PORT] or https://HOST[:PORT]"),
    }
}

/// The first line of stdin, without its line ending.
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("--password-stdin: reading the password from stdin")?;
    let p = line.trim_end_matches(['\n', '\r']).to_string();
    if p.is_empty() {
        anyhow::bail!("--password-stdin: stdin held no password (one line expected)");
    }
    Ok(p)
}

/// `infogap users …`
pub fn users(ctx: &Ctx, c: &UsersCmd) -> anyhow::Result<()> {
    let engine = ctx.engine_existing()?;
    // managing who signs in is an admin action, as managing keys is
    let access = ctx.access(&engine, Action::KeysManage)?;
    match c {
        UsersCmd::Create {
            name,
            role,
            department,
            password_stdin,
            base_url: base,
            json,
        } => {
            let base = base_url(base)?;
            let password = if *password_stdin {
                Some(read_password()?)
            } else {
                None
            };
            let u = engine.create_user(
                &engine.policy()?,
                &NewUser {
                    name: name.clone(),
                    role: role.clone(),
                    department: department.clone(),
                },
                password.as_deref(),
            )?;
            engine.record(infogap_engine::audit::entry(
                &access.principal,
                "users.create",
                vec![],
                vec![],
                &format!(
                    "user {} (role {}){}",
                    u.name,
                    u.role,
                    if u.setup_token.is_some() {
                        ", setup link issued"
                    } else {
                        ""
                    }
                ),
            ))?;
            let setup_url = u
                .setup_token
                .as_deref()
                .map(|t| format!("{base}/setup?token={t}"));
            if *json {
                return print_json(&CreatedOut {
                    name: u.name,
                    role: u.role,
                    department: u.department,
                    password_set: u.setup_token.is_none(),
                    setup_url,
                    setup_expires_at: u.setup_expires_at,
                });
            }
            let dept = u
                .department
                .as_deref()
                .map(|d| format!(", department {d}"))
                .unwrap_or_default();
            match setup_url {
                Some(url) => {
                    println!("{url}");
                    eprintln!(
                        "user {} created (role {}{dept}): the link above sets their password; it works once, until {}. Hand it over privately.",
                        u.name,
                        u.role,
                        u.setup_expires_at.as_deref().unwrap_or("-")
                    );
                }
                None => println!(
                    "user {} created (role {}{dept}); sign in at {base}/login",
                    u.name, u.role
                ),
            }
            Ok(())
        }
        UsersCmd::List { json } => {
            let list = engine.list_users()?;
            if *json {
                return print_json(&list);
            }
            println!(
                "{:<24} {:<10} {:<12} {:<9} created",
                "name", "role", "department", "status"
            );
            for u in &list {
                println!(
                    "{:<24} {:<10} {:<12} {:<9} {}",
                    u.name,
                    u.role,
                    u.department.as_deref().unwrap_or("-"),
                    u.status,
                    u.created_at
                );
            }
            Ok(())
        }
        UsersCmd::Disable { name } => {
            engine.disable_user(name)?;
            engine.record(infogap_engine::audit::entry(
                &access.principal,
                "users.disable",
                vec![],
                vec![],
                &format!("user {name}"),
            ))?;
            println!("user {name} disabled; their sessions are signed out");
            Ok(())
        }
    }
}

/// What `infogap customer link` takes.
pub struct LinkArgs<'a> {
    /// Customer key.
    pub key: &'a str,
    /// Its namespace.
    pub namespace: Option<&'a str>,
    /// Lifetime.
    pub ttl: Option<&'a str>,
    /// Base URL of the server.
    pub base: &'a str,
    /// Queue for the `portal.link` webhooks instead of printing.
    pub deliver: bool,
    /// JSON output.
    pub json: bool,
}

/// `infogap customer link KEY`: a one-time sign-in link to the portal,
/// printed, or queued for the webhooks that take `portal.link`.
pub fn customer_link(ctx: &Ctx, engine: &Engine, args: LinkArgs<'_>) -> anyhow::Result<()> {
    let LinkArgs {
        key,
        namespace,
        ttl,
        base,
        deliver,
        json,
    } = args;
    ctx.access(engine, Action::KeysManage)?;
    let base = base_url(base)?;
    if deliver
        && !engine.store().webhooks()?.iter().any(|w| {
            w.removed_at.is_none()
                && w.events
                    .iter()
                    .any(|e| e == infogap_engine::webhooks::PORTAL_LINK)
        })
    {
        anyhow::bail!(
            "customer link --deliver: no webhook takes portal.link; add one with `infogap webhooks add --url URL --events portal.link --role support`"
        );
    }
    // the messages name the parameter, never the key's value (it is personal)
    let id = match engine.find_customer(key, namespace) {
        Ok(Some(id)) => id,
        Ok(None) => anyhow::bail!(
            "customer link: no customer with that KEY{} (an erased person has none)",
            namespace
                .map(|n| format!(" in namespace {n:?}"))
                .unwrap_or_default()
        ),
        Err(EngineError::Invalid(_)) => anyhow::bail!(
            "customer link: that KEY matches several customers or is malformed; pass --namespace NS or #ID"
        ),
        Err(e) => return Err(e.into()),
    };
    let link = engine.customer_link(id, ttl)?;
    let url = format!("{base}/portal/link?token={}", link.token);
    if deliver {
        let queued = engine.enqueue_portal_link(&engine.policy()?, id, &url, &link.expires_at)?;
        if json {
            return print_json(&serde_json::json!({
                "customer": link.customer,
                "expires_at": link.expires_at,
                "queued": queued,
            }));
        }
        println!(
            "one-time sign-in link for customer #{id} (valid once until {}) queued for {queued} webhook(s); `infogap serve` delivers it",
            link.expires_at
        );
        return Ok(());
    }
    if json {
        return print_json(&LinkOut {
            url,
            customer: link.customer,
            expires_at: link.expires_at,
        });
    }
    println!("{url}");
    eprintln!(
        "one-time sign-in link for customer #{id}, valid once until {}: deliver it to the customer only",
        link.expires_at
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked_and_lose_their_trailing_slash() {
        assert_eq!(
            base_url("http://127.0.0.1:8080/").ok().as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            base_url("https://crm.example.com").ok().as_deref(),
            Some("https://crm.example.com")
        );
        for bad in ["", "127.0.0.1:8080", "ftp://x", "http://", "http://a b"] {
            let e = base_url(bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("--base-url"), "{bad:?}: {e}");
        }
    }
}
