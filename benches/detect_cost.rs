//! What detection costs: `import` of the labelled data set of
//! `detect_eval` (1.7 M events, NDJSON) with the detectors on and off,
//! alternating, and `backtest` of the same file.
//!
//!     cargo bench --bench detect_cost      (BENCH_ROUNDS, default 5)
//!
//! BENCH_COMPARE=shared_ip compares the detectors with and without the
//! shared-address detector instead of all of them on and off.
//!
//! NDJSON import stores ~1 µs per event here (few senders, warm keys), so
//! this is the worst case for the detectors' relative cost; `cargo bench
//! --bench import` gives the figure for a Postfix log (on and off too).

#[path = "../tests/common/campaign.rs"]
mod campaign;
mod common;
// The data set modules reach the generator as `super::rng`.
use common::rng;
#[path = "../tests/common/dataset.rs"]
mod dataset;

use std::process::Command;
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_smtp-auth-insight");

fn run(args: &[&str], config: &std::path::Path) -> f64 {
    let t = Instant::now();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run the binary");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed().as_secs_f64()
}

fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2])
}

fn main() {
    let rounds: usize = common::env("BENCH_ROUNDS", 5);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut data = dataset::generate(1, 42, 1.0);
    campaign::add(&mut data, 1, 1.0);
    let shared_only = std::env::var("BENCH_COMPARE").is_ok_and(|v| v == "shared_ip");
    let what = if shared_only {
        "shared_ip"
    } else {
        "detection"
    };
    let file = dir.path().join("events.ndjson");
    let out = std::io::BufWriter::new(std::fs::File::create(&file).expect("file"));
    dataset::write_ndjson(&data.events, out).expect("write");
    let n = data.events.len();
    let file = file.to_str().expect("utf-8 path");
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for round in 0..rounds * 2 {
        let enabled = round % 2 == 0;
        let data_dir = dir.path().join(format!("data{round}"));
        let config = dir.path().join("c.toml");
        std::fs::write(
            &config,
            match shared_only {
                true => format!(
                    "store.data_dir = {data_dir:?}\nstore.retention_days = 3650\n\
                     detect.shared_ip.enabled = {enabled}\n"
                ),
                false => format!(
                    "store.data_dir = {data_dir:?}\nstore.retention_days = 3650\n\
                     detect.enabled = {enabled}\n"
                ),
            },
        )
        .expect("config");
        let secs = run(&["import", "--format", "ndjson", file], &config);
        if enabled {
            on.push(secs)
        } else {
            off.push(secs)
        }
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    let ((on_min, on_med), (off_min, off_med)) = (stats(on), stats(off));
    println!("import of {n} events, {rounds} rounds each:");
    println!(
        "  {what} off: min {off_min:.2} s, median {off_med:.2} s ({:.0} events/s)",
        n as f64 / off_med
    );
    println!(
        "  {what} on:  min {on_min:.2} s, median {on_med:.2} s ({:.0} events/s)",
        n as f64 / on_med
    );
    println!(
        "  cost of {what}: {:+.1} % (min), {:+.1} % (median)",
        (on_min / off_min - 1.0) * 100.0,
        (on_med / off_med - 1.0) * 100.0
    );
    let config = dir.path().join("c.toml");
    let bt: Vec<f64> = (0..rounds)
        .map(|_| run(&["backtest", "--format", "ndjson", file], &config))
        .collect();
    let (bt_min, bt_med) = stats(bt);
    println!(
        "backtest of {n} events: min {bt_min:.2} s, median {bt_med:.2} s ({:.2} s per million)",
        bt_med / n as f64 * 1e6
    );
}
