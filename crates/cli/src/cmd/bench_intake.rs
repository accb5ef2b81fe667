//! `infogap bench intake`: a load generator for the event intake of a
//! running `infogap serve` (issue 21's throughput targets). Keep-alive
//! HTTP/1.1 connections, one thread each, posting Segment-spec `track`
//! messages with unique message ids for a fixed time, in batches
//! (`/v1/batch`) or one by one (`/v1/track`); prints events/s and latency
//! percentiles. Written in Rust so the client costs little of the machine
//! it shares with the server (the Python generator of
//! `scripts/bench-intake.py` took a core of two).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

use crate::ctx::print_json;

/// Arguments of `infogap bench intake`.
#[derive(Debug, clap::Args)]
pub struct BenchIntakeArgs {
    /// Address of the server (`127.0.0.1:8080`).
    #[arg(long)]
    pub addr: String,
    /// A `source` key.
    #[arg(long, env = "INFOGAP_SOURCE_KEY", hide_env_values = true)]
    pub key: String,
    /// Seconds of load.
    #[arg(long, default_value_t = 60.0)]
    pub seconds: f64,
    /// Messages per request (1: single `/v1/track` calls).
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Connections (one thread each).
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What the run measured.
#[derive(Debug, Serialize)]
struct Report {
    batch: usize,
    connections: usize,
    seconds: f64,
    requests: usize,
    events: u64,
    events_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: usize,
}

/// One keep-alive connection.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn open(addr: &str) -> anyhow::Result<Conn> {
        let s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        s.set_nodelay(true).ok();
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        Ok(Conn {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        })
    }

    /// POSTs `body`; the status and the response body.
    fn post(&mut self, path: &str, key: &str, body: &str) -> anyhow::Result<(u16, Vec<u8>)> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.writer.write_all(head.as_bytes())?;
        self.writer.write_all(body.as_bytes())?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .context("a response status line")?;
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().context("content-length")?;
            }
        }
        let mut out = vec![0u8; length];
        self.reader.read_exact(&mut out)?;
        Ok((status, out))
    }
}

/// Runs `infogap bench intake`.
pub fn bench_intake(a: &BenchIntakeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.batch >= 1, "--batch must be at least 1");
    anyhow::ensure!(a.connections >= 1, "--connections must be at least 1");
    anyhow::ensure!(a.seconds > 0.0, "--seconds must be positive");
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let stop = Instant::now() + Duration::from_secs_f64(a.seconds);
    let t0 = Instant::now();
    let results: Vec<anyhow::Result<(Vec<f64>, u64, usize)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..a.connections)
            .map(|c| {
                scope.spawn(move || -> anyhow::Result<(Vec<f64>, u64, usize)> {
                    let mut conn = Conn::open(&a.addr)?;
                    let (mut lat, mut events, mut errors, mut n) = (Vec::new(), 0u64, 0usize, 0u64);
                    while Instant::now() < stop {
                        let message = |i: u64| {
                            serde_json::json!({
                                "type": "track",
                                "userId": format!("bench-{c}-{}", i % 500),
                                "event": "Product Viewed",
                                "properties": {"product_id": format!("P{:03}", i % 200)},
                                "messageId": format!("rb{run}-{c}-{i}"),
                            })
                        };
                        let (path, body) = if a.batch == 1 {
                            let mut m = message(n);
                            if let Some(o) = m.as_object_mut() {
                                o.remove("type");
                            }
                            ("/v1/track", m.to_string())
                        } else {
                            let batch: Vec<serde_json::Value> =
                                (0..a.batch as u64).map(|i| message(n + i)).collect();
                            (
                                "/v1/batch",
                                serde_json::json!({ "batch": batch }).to_string(),
                            )
                        };
                        n += a.batch as u64;
                        let s = Instant::now();
                        let (status, out) = conn.post(path, &a.key, &body)?;
                        lat.push(s.elapsed().as_secs_f64());
                        if status != 200 {
                            errors += 1;
                            continue;
                        }
                        let v: serde_json::Value =
                            serde_json::from_slice(&out).context("a JSON answer")?;
                        events += v["accepted"].as_u64().unwrap_or(0);
                    }
                    Ok((lat, events, errors))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a load thread panicked")))
            })
            .collect()
    });
    let wall = t0.elapsed().as_secs_f64();
    let mut lat = Vec::new();
    let (mut events, mut errors) = (0u64, 0usize);
    for r in results {
        let (l, e, x) = r?;
        lat.extend(l);
        events += e;
        errors += x;
    }
    lat.sort_by(f64::total_cmp);
    let q = |f: f64| {
        lat.get(((lat.len().max(1) - 1) as f64 * f).round() as usize)
            .map_or(f64::NAN, |v| v * 1000.0)
    };
    let rep = Report {
        batch: a.batch,
        connections: a.connections,
        seconds: wall,
        requests: lat.len(),
        events,
        events_per_second: events as f64 / wall,
        p50_ms: q(0.5),
        p99_ms: q(0.99),
        max_ms: q(1.0),
        errors,
    };
    if a.json {
        print_json(&rep)?;
    } else {
        println!(
            "{} events in {:.1} s: {:.0} events/s over {} requests (batch {}, {} connections); p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} errors",
            rep.events,
            rep.seconds,
            rep.events_per_second,
            rep.requests,
            rep.batch,
            rep.connections,
            rep.p50_ms,
            rep.p99_ms,
            rep.max_ms,
            rep.errors
        );
    }
    Ok(())
}
