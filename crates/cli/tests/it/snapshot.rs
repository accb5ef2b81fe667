//! The snapshot across processes: a process holding it sees another
//! process's import and split within a second; a damaged cache is rebuilt
//! with a warning and changes no answer.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::{bin, json, ok, run_in};

fn demo_store(dir: &Path, people: &str) {
    ok(
        dir,
        &["demo", "--out", "demo", "--customers", people, "--quiet"],
    );
    ok(dir, &["import", "--config", "demo/infogap.toml", "--quiet"]);
}

/// A `snapshot --watch` process whose JSON lines arrive, timestamped, on a channel.
struct Watcher {
    child: Child,
    lines: mpsc::Receiver<(Instant, serde_json::Value)>,
}

impl Watcher {
    fn start(dir: &Path) -> Watcher {
        let mut child = Command::new(bin())
            .current_dir(dir)
            .env("INFOGAP_DB", dir.join("infogap.db"))
            .args([
                "snapshot",
                "--watch",
                "--json",
                "--interval-ms",
                "50",
                "--for",
                "120",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the watcher");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line)
                    && tx.send((Instant::now(), v)).is_err()
                {
                    break;
                }
            }
        });
        Watcher { child, lines }
    }

    /// The next line, waiting at most `secs`.
    fn next(&self, secs: u64) -> (Instant, serde_json::Value) {
        self.lines
            .recv_timeout(Duration::from_secs(secs))
            .expect("the watcher printed nothing")
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_watching_process_sees_another_process_import_and_split_within_a_second() {
    let d = tempfile::tempdir().expect("tmp");
    demo_store(d.path(), "300");
    let w = Watcher::start(d.path());
    let (_, first) = w.next(60);
    let orders0 = first["orders"].as_u64().expect("orders");
    let customers0 = first["customers"].as_u64().expect("customers");

    // process B: a new file of the sales department, three new orders of
    // known customers, imported by another process
    let sales = d.path().join("demo/sales/order_lines.csv");
    let text = std::fs::read_to_string(&sales).expect("sales");
    let header = text.lines().next().expect("header").to_string();
    let last = text.lines().last().expect("a line").to_string();
    let cols: Vec<&str> = header.split(',').collect();
    let o = cols
        .iter()
        .position(|c| *c == "order_no")
        .expect("order_no column");
    let mut extra = format!("{header}\n");
    for i in 0..3 {
        let mut fields: Vec<String> = last.split(',').map(str::to_string).collect();
        fields[o] = format!("NEW-ORDER-{i}");
        extra.push_str(&fields.join(","));
        extra.push('\n');
    }
    std::fs::write(d.path().join("demo/sales/extra.csv"), extra).expect("extra");
    let config = d.path().join("demo/infogap.toml");
    let toml = std::fs::read_to_string(&config).expect("config");
    let block = toml
        .split("[[source]]")
        .find(|b| b.contains("name = \"sales\""))
        .expect("the sales source")
        .replace("name = \"sales\"", "name = \"sales_extra\"")
        .replace("sales/order_lines.csv", "sales/extra.csv");
    std::fs::write(&config, format!("{toml}\n[[source]]{block}")).expect("config");
    ok(
        d.path(),
        &["import", "--config", "demo/infogap.toml", "--quiet"],
    );
    let imported = Instant::now();
    let (seen, v) = loop {
        let (at, v) = w.next(5);
        if v["orders"].as_u64() != Some(orders0) {
            break (at, v);
        }
    };
    assert_eq!(v["orders"].as_u64(), Some(orders0 + 3), "{v}");
    let lag = seen.saturating_duration_since(imported);
    assert!(
        lag < Duration::from_secs(1),
        "the import showed after {lag:?}"
    );
    let refresh_rows = v["rows_read"].as_u64().expect("rows_read");

    // process C: a split
    let cust = json(
        d.path(),
        &[
            "customer",
            "show",
            "C000001",
            "--namespace",
            "crm",
            "--json",
        ],
    );
    let idents = cust["identities"].as_array().expect("identities");
    assert!(
        idents.len() > 1,
        "the demo's first customer has several keys"
    );
    {
        let spec = format!(
            "{}:{}",
            idents[1]["namespace"].as_str().expect("ns"),
            idents[1]["value"].as_str().expect("value")
        );
        ok(
            d.path(),
            &[
                "customer",
                "split",
                "C000001",
                "--namespace",
                "crm",
                "--identity",
                &spec,
            ],
        );
        let split = Instant::now();
        let (seen, v) = loop {
            let (at, v) = w.next(5);
            if v["customers"].as_u64() != Some(customers0) {
                break (at, v);
            }
        };
        assert!(v["customers"].as_u64() > Some(customers0));
        let lag = seen.saturating_duration_since(split);
        assert!(
            lag < Duration::from_secs(1),
            "the split showed after {lag:?}"
        );
        assert!(
            v["rows_read"].as_u64() < Some(10),
            "a split reads a few identities: {v}"
        );
    }
    // the import's refresh read the new file, not the store
    let full = json(d.path(), &["snapshot", "--rebuild", "--json"]);
    let all = full["refresh"]["rows_read"].as_u64().expect("rows");
    assert!(
        refresh_rows <= 20 && all > 10_000,
        "the refresh read {refresh_rows} rows of the store's {all}"
    );
}

#[test]
fn a_damaged_cache_is_rebuilt_with_a_warning_and_changes_no_answer() {
    let d = tempfile::tempdir().expect("tmp");
    demo_store(d.path(), "150");
    let cache = d.path().join("infogap.db.snapshot");
    assert!(cache.exists(), "the import wrote the snapshot cache");
    let want = ok(d.path(), &["segments", "--json"]);
    let mut bytes = std::fs::read(&cache).expect("cache");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&cache, &bytes).expect("damage");
    let out = run_in(d.path(), &["segments", "--json"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.to_lowercase().contains("warn")
            && err.contains("snapshot cache")
            && err.contains("checksum")
            && err.contains("rebuilding"),
        "says what happened: {err}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    // rebuilt: the next run is quiet and the same
    let out = run_in(d.path(), &["segments", "--json"]);
    assert!(String::from_utf8_lossy(&out.stderr).is_empty());
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    // deleted: nothing lost, no warning
    std::fs::remove_file(&cache).expect("rm");
    let out = run_in(d.path(), &["segments", "--json"]);
    assert!(String::from_utf8_lossy(&out.stderr).is_empty());
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    let s = json(d.path(), &["snapshot", "--json"]);
    assert_eq!(s["refresh"]["rows_read"], 0, "current again: {s}");
    assert!(
        s["memory_ratio"]
            .as_f64()
            .is_some_and(|r| r > 0.5 && r < 4.0),
        "{s}"
    );
}

#[test]
fn a_kill_during_an_import_leaves_a_cache_that_is_brought_up_to_date() {
    let d = tempfile::tempdir().expect("tmp");
    demo_store(d.path(), "200");
    let before = json(d.path(), &["stats", "--json"]);
    // an import killed at once: whatever it committed is in the store; the
    // cache (of an older generation or a half-written temporary) is never
    // taken for current
    let sales = d.path().join("demo/sales/order_lines.csv");
    let text = std::fs::read_to_string(&sales).expect("sales");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.truncate(lines.len() - 5);
    std::fs::write(&sales, lines.join("\n") + "\n").expect("shorten");
    let mut child = Command::new(bin())
        .current_dir(d.path())
        .env("INFOGAP_DB", d.path().join("infogap.db"))
        .args(["import", "--config", "demo/infogap.toml", "--quiet"])
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(150));
    let _ = child.kill();
    let _ = child.wait();
    let s = json(d.path(), &["stats", "--json"]);
    let ds = json(d.path(), &["snapshot", "--json"]);
    assert_eq!(
        ds["order_lines"], s["order_lines"],
        "snapshot {ds} vs store {s}"
    );
    assert_eq!(ds["orders"], s["orders"]);
    let n = s["order_lines"].as_i64().expect("n");
    let n0 = before["order_lines"].as_i64().expect("n0");
    assert!(
        n == n0 || n == n0 - 5,
        "all or nothing per file: {n} vs {n0}"
    );
}
