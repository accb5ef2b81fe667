//! `infogap`: the command-line front end. Thin by design: it parses arguments,
//! calls the engine and prints (text or `--json`). Errors are printed with their
//! whole cause chain and a non-zero exit code.

mod cmd;
mod ctx;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use ctx::Ctx;

/// infogap: one trustworthy profile per customer, built from every department's data.
#[derive(Debug, Parser)]
#[command(name = "infogap", version, about, long_about = None)]
struct Cli {
    /// The store: a SQLite file, or a PostgreSQL URL (postgres://user@host:port/db).
    #[arg(long, global = true, env = "INFOGAP_DB", value_name = "PATH|URL")]
    db: Option<PathBuf>,
    /// No progress bars or chatter (errors are still printed).
    #[arg(long, short = 'q', global = true)]
    quiet: bool,
    /// Act under this role's policy (default: the local admin), to try a
    /// policy from the terminal; reads are audited under the actor `local`.
    #[arg(long, global = true, value_name = "ROLE")]
    as_role: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import every source listed in a config file into the store.
    Import(cmd::data::ImportArgs),
    /// Counts and revenue of what the store holds.
    Stats(cmd::data::StatsArgs),
    /// Look at, explain or split one unified customer.
    #[command(subcommand)]
    Customer(cmd::data::CustomerCmd),
    /// Write a realistic multi-department demo data set with its config.
    Demo(cmd::data::DemoArgs),
    /// Demo data → import → report: the main job, end to end.
    Quickstart(cmd::data::QuickstartArgs),
    /// Evaluate a model family on a file (cross-validation or a given split).
    #[command(subcommand)]
    Eval(EvalCmd),
    /// Train a model on the store's data and save it in the store.
    #[command(subcommand)]
    Train(TrainCmd),
    /// Recommend products for one customer from the saved model.
    Recommend(cmd::recs::RecommendArgs),
    /// Customers by churn risk, with reasons.
    Churn(cmd::classify::ChurnArgs),
    /// Customer segments (RFM or k-means) and their profiles.
    Segments(cmd::analytics::SegmentsArgs),
    /// Work with one segment.
    #[command(subcommand)]
    Segment(cmd::analytics::SegmentCmd),
    /// Bayes' rule that refuses incoherent inputs.
    Bayes(cmd::analytics::BayesArgs),
    /// Customers by lifetime value.
    Clv(cmd::clv::ClvArgs),
    /// Exponential-smoothing forecasts of a series or of the store's demand.
    Forecast(cmd::forecast::ForecastArgs),
    /// The analytical snapshot: its cache, load time and memory; `--watch`
    /// follows the store as a long-running process does.
    Snapshot(cmd::snapshot::SnapshotArgs),
    /// Consistent copy of the live store while others use it (`--out FILE`);
    /// `backup verify FILE` checks a copy. Restore: copy it to a new path, use that as --db.
    Backup(cmd::backup::BackupArgs),
    /// Serve the API (`/v1/…`) over the store, with roles, field policy and audit.
    Serve(cmd::share::ServeArgs),
    /// Issue, list and revoke API keys.
    #[command(subcommand)]
    Keys(cmd::share::KeysCmd),
    /// Staff users of the pages: create (password or setup link), list, disable.
    #[command(subcommand)]
    Users(cmd::web::UsersCmd),
    /// Alerts the `[[rule]]`s raised (evaluated by `infogap serve`), newest first.
    Alerts {
        /// How many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// JSON output (`baseline_generation`, `rules`, `alerts[]`, `left_out`).
        #[arg(long)]
        json: bool,
    },
    /// The event intake journal of `serve`'s `/v1/track`, `/v1/batch`, …: `status`, `apply`.
    #[command(subcommand)]
    Intake(cmd::intake::IntakeCmd),
    /// Signed webhooks for alerts and sign-in links: add, list, remove, messages, dead, replay.
    #[command(subcommand)]
    Webhooks(cmd::webhooks::WebhooksCmd),
    /// Who read, searched, exported or changed customer data; `audit verify` checks the chain.
    Audit(cmd::share::AuditArgs),
    /// Privacy: key rotation, consent, export, erasure, retention.
    #[command(subcommand)]
    Privacy(cmd::privacy::PrivacyCmd),
    /// Throughput benchmarks of hot paths.
    #[command(subcommand)]
    Bench(cmd::data::BenchCmd),
    /// The information gap: what each department and the business do not
    /// know about customers, and what to ask next (`gap` alone: the distribution).
    Gap(cmd::gap::GapArgs),
}

#[derive(Debug, Subcommand)]
enum EvalCmd {
    /// Recommenders: rating prediction (k-fold) or top-N ranking (train/test).
    Recs(Box<cmd::recs::EvalRecsArgs>),
    /// Binary classification on any CSV.
    Classify(cmd::classify::EvalClassifyArgs),
    /// Linear regression on any CSV.
    Regress(cmd::analytics::EvalRegressArgs),
    /// BG/NBD + Gamma-Gamma on a transaction file.
    Clv(cmd::clv::EvalClvArgs),
    /// Holdout accuracy of exponential smoothing on a series.
    Forecast(cmd::forecast::EvalForecastArgs),
    /// Active feature acquisition on any CSV: per-row next question vs the
    /// best fixed order vs random (ROC AUC after each acquisition).
    AskNext(cmd::ask_eval::EvalAskNextArgs),
}

#[derive(Debug, Subcommand)]
enum TrainCmd {
    /// Train the recommender on the store.
    Recs(cmd::recs::TrainRecsArgs),
    /// Train the churn model on the store.
    Churn(cmd::classify::TrainChurnArgs),
    /// Train the next-period purchase-amount model on the store.
    Amount(cmd::analytics::TrainAmountArgs),
    /// Train BG/NBD + Gamma-Gamma on the store.
    Clv(cmd::clv::TrainClvArgs),
}

fn main() -> ExitCode {
    quiet_broken_pipe();
    let cli = Cli::parse();
    init_tracing();
    let ctx = Ctx::new(cli.db, cli.quiet, cli.as_role);
    let result = match &cli.command {
        Command::Import(a) => cmd::data::import(&ctx, a),
        Command::Stats(a) => cmd::data::stats(&ctx, a),
        Command::Customer(c) => cmd::data::customer(&ctx, c),
        Command::Demo(a) => cmd::data::demo(&ctx, a),
        Command::Quickstart(a) => cmd::data::quickstart(&ctx, a),
        Command::Eval(EvalCmd::Recs(a)) => cmd::recs::eval(&ctx, a),
        Command::Eval(EvalCmd::Classify(a)) => cmd::classify::eval(&ctx, a),
        Command::Eval(EvalCmd::Regress(a)) => cmd::analytics::eval_regress(&ctx, a),
        Command::Eval(EvalCmd::Clv(a)) => cmd::clv::eval(&ctx, a),
        Command::Eval(EvalCmd::Forecast(a)) => cmd::forecast::eval(&ctx, a),
        Command::Eval(EvalCmd::AskNext(a)) => cmd::ask_eval::eval(&ctx, a),
        Command::Train(TrainCmd::Recs(a)) => cmd::recs::train(&ctx, a),
        Command::Train(TrainCmd::Churn(a)) => cmd::classify::train(&ctx, a),
        Command::Train(TrainCmd::Amount(a)) => cmd::analytics::train_amount(&ctx, a),
        Command::Train(TrainCmd::Clv(a)) => cmd::clv::train(&ctx, a),
        Command::Recommend(a) => cmd::recs::recommend(&ctx, a),
        Command::Churn(a) => cmd::classify::churn(&ctx, a),
        Command::Segments(a) => cmd::analytics::segments(&ctx, a),
        Command::Segment(c) => cmd::analytics::segment(&ctx, c),
        Command::Bayes(a) => cmd::analytics::bayes(&ctx, a),
        Command::Clv(a) => cmd::clv::clv(&ctx, a),
        Command::Forecast(a) => cmd::forecast::forecast(&ctx, a),
        Command::Snapshot(a) => cmd::snapshot::snapshot(&ctx, a),
        Command::Backup(a) => cmd::backup::backup(&ctx, a),
        Command::Serve(a) => cmd::share::serve(&ctx, a),
        Command::Keys(c) => cmd::share::keys(&ctx, c),
        Command::Users(c) => cmd::web::users(&ctx, c),
        Command::Intake(c) => cmd::intake::intake(&ctx, c),
        Command::Webhooks(c) => cmd::webhooks::webhooks(&ctx, c),
        Command::Alerts { limit, json } => cmd::intake::alerts(&ctx, *limit, *json),
        Command::Audit(a) => cmd::share::audit(&ctx, a),
        Command::Privacy(c) => cmd::privacy::privacy(&ctx, c),
        Command::Bench(c) => cmd::data::bench(&ctx, c),
        Command::Gap(a) => cmd::gap::gap(&ctx, a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

/// `infogap … | head` closes stdout early; end quietly instead of panicking.
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("INFOGAP_LOG")
        .unwrap_or_else(|_| EnvFilter::new("warn,sqlx=error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // no colour codes in a pipe or a log file
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .init();
}
