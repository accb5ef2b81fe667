//! `infogap webhooks …`: add, list and remove webhooks, see their messages
//! and the dead letters, replay one. The engine (`webhooks`) owns the
//! checks, the policy of payloads and the outbox; `infogap serve` delivers.
//! This only parses and prints.

use clap::Subcommand;
use infogap_core::access::Action;
use infogap_engine::webhooks::{MessageList, WebhookRequest};

use crate::Ctx;
use crate::ctx::print_json;

/// `infogap webhooks …`
#[derive(Debug, Subcommand)]
pub enum WebhooksCmd {
    /// Add a webhook; its signing secret (`whsec_…`) is printed this once.
    Add {
        /// Where messages are posted (https:// or http://).
        #[arg(long)]
        url: String,
        /// Event types, comma-separated: churn.high, feedback.negative,
        /// segment.changed, consent.withdrawn, activity.unusual,
        /// portal.link, or * for all.
        #[arg(long, value_delimiter = ',', required = true)]
        events: Vec<String>,
        /// The role whose field policy shapes the payloads.
        #[arg(long)]
        role: String,
        /// Only this department's customers.
        #[arg(long)]
        department: Option<String>,
        /// JSON output (the webhook and its `secret`).
        #[arg(long)]
        json: bool,
    },
    /// The webhooks in use.
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Remove a webhook; its undelivered messages are dropped.
    Remove {
        /// Webhook id.
        id: i64,
    },
    /// The dead letters: messages whose last try failed.
    Dead {
        /// How many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// JSON output (`messages[]`, `counts`).
        #[arg(long)]
        json: bool,
    },
    /// Outbox messages, newest first.
    Messages {
        /// Only messages in this state: pending, delivered, dead, dropped.
        #[arg(long)]
        state: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// JSON output (`messages[]`, `counts`).
        #[arg(long)]
        json: bool,
    },
    /// Put a dead message back in the queue (its tries start again).
    Replay {
        /// Message id (from `webhooks dead`).
        id: i64,
    },
}

/// Runs `infogap webhooks …`.
pub fn webhooks(ctx: &Ctx, cmd: &WebhooksCmd) -> anyhow::Result<()> {
    let engine = ctx.engine_existing()?;
    let access = ctx.access(&engine, Action::WebhooksManage)?;
    match cmd {
        WebhooksCmd::Add {
            url,
            events,
            role,
            department,
            json,
        } => {
            let w = engine.add_webhook(
                &access,
                &engine.policy()?,
                &WebhookRequest {
                    url: url.clone(),
                    events: events.clone(),
                    role: role.clone(),
                    department: department.clone(),
                },
            )?;
            if *json {
                print_json(&w)?;
            } else {
                println!("{}", w.secret);
                eprintln!(
                    "webhook #{} → {} ({}; role {}): the line above is its signing secret, shown this once; verify `webhook-signature` with it",
                    w.webhook.id,
                    w.webhook.url,
                    w.webhook.events.join(","),
                    w.webhook.role
                );
            }
        }
        WebhooksCmd::List { json } => {
            let list = engine.list_webhooks(&access)?;
            if *json {
                print_json(&serde_json::json!({ "webhooks": list }))?;
            } else if list.is_empty() {
                println!("no webhooks");
            } else {
                for w in list {
                    println!(
                        "#{:<4} {:<40} {:<30} role {}{}",
                        w.id,
                        w.url,
                        w.events.join(","),
                        w.role,
                        w.department
                            .map(|d| format!(", department {d}"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        WebhooksCmd::Remove { id } => {
            engine.remove_webhook(&access, *id)?;
            println!("webhook #{id} removed; its undelivered messages are dropped");
        }
        WebhooksCmd::Dead { limit, json } => {
            let m = engine.webhook_messages(&access, Some("dead"), None, *limit)?;
            show(&m, *json)?;
        }
        WebhooksCmd::Messages { state, limit, json } => {
            let m = engine.webhook_messages(&access, state.as_deref(), None, *limit)?;
            show(&m, *json)?;
        }
        WebhooksCmd::Replay { id } => {
            engine.replay_webhook_message(&access, *id)?;
            println!("message #{id} is queued again; `infogap serve` delivers it");
        }
    }
    Ok(())
}

fn show(m: &MessageList, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(m);
    }
    if m.messages.is_empty() {
        println!("no messages");
    }
    for x in &m.messages {
        println!(
            "#{:<6} {:<10} {:<18} webhook #{:<4} tries {:<2} {}",
            x.id,
            x.state,
            x.event,
            x.webhook_id,
            x.attempts,
            x.last_error.as_deref().unwrap_or("")
        );
    }
    let counts: Vec<String> = m.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    eprintln!("{}", counts.join(" · "));
    Ok(())
}
