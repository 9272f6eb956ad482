//! Micro-benchmark of the ingest hot path, natively with the release settings: `Batch::parse` plus
//! `Batch::to_sql_json`, the CPU a Worker spends on an ingest before it calls D1.
//!
//! `cargo bench --bench ingest_parse [-- --iterations N]` prints one JSON line: per case (points ×
//! series) the median milliseconds of N runs, for parse, serialization and both.

use pushplot::domain::config::Config;
use pushplot::domain::ingest::Batch;
use std::hint::black_box;
use std::time::Instant;

const NOW: f64 = 1_700_000_000.0;
const POINTS: [usize; 2] = [1_000, 10_000];
const SERIES: [usize; 3] = [1, 100, 10_000];

/// A batch as a script would send it: `points` points spread round-robin over `series` series
/// (chart and labels), with fractional timestamps across the last hour.
fn body(points: usize, series: usize) -> String {
    let mut s = String::from("[");
    for i in 0..points {
        let k = i % series;
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            r#"{{"chart":"bench.series{}","value":{},"ts":{},"labels":{{"host":"prod{}","region":"eu"}}}}"#,
            k / 4,
            (i % 97) as f64 * 1.25,
            NOW - 3_600.0 + i as f64 * 0.3,
            k % 4,
        ));
    }
    s.push(']');
    s
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

fn main() {
    // `cargo bench` passes `--bench`; everything but `--iterations N` is ignored.
    let args: Vec<String> = std::env::args().collect();
    let iterations: usize = args
        .iter()
        .position(|a| a == "--iterations")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(21);
    let cfg = Config::default();
    let mut cases = Vec::new();
    for points in POINTS {
        for series in SERIES {
            let body = body(points, series);
            let check = Batch::parse(body.as_bytes(), &cfg, NOW).expect("the bench body parses");
            assert_eq!(check.len, points);
            assert_eq!(check.series.len(), series.min(points));
            let (mut parse, mut sql, mut total) = (Vec::new(), Vec::new(), Vec::new());
            // One warm-up run, then the measured ones.
            for run in 0..=iterations {
                let t0 = Instant::now();
                let batch = Batch::parse(black_box(body.as_bytes()), &cfg, NOW).unwrap();
                let t1 = Instant::now();
                let json = batch.to_sql_json();
                let t2 = Instant::now();
                black_box(json);
                drop(black_box(batch));
                if run > 0 {
                    parse.push(ms(t1 - t0));
                    sql.push(ms(t2 - t1));
                    total.push(ms(t2 - t0));
                }
            }
            cases.push(format!(
                r#"{{"points":{points},"series":{series},"body_bytes":{},"parse_ms":{:.3},"to_sql_json_ms":{:.3},"ms":{:.3}}}"#,
                body.len(),
                median(parse),
                median(sql),
                median(total),
            ));
        }
    }
    println!(
        r#"{{"bench":"ingest_parse","iterations":{iterations},"statistic":"median","cases":[{}]}}"#,
        cases.join(",")
    );
}
