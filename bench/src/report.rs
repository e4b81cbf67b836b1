//! A scenario's results: the JSON object written per scenario (to stdout
//! and appended to `--json-out`) and the human-readable table.

use std::fs::OpenOptions;
use std::io::Write;

use serde_json::{json, Map, Value};

use crate::check::{Checks, Latency};
use crate::net::ErrorCounts;

/// Everything a scenario reports.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// The sizes it ran with.
    pub params: Map<String, Value>,
    /// Length of the measured phase, in seconds.
    pub elapsed_s: f64,
    /// Work per second, in `unit`.
    pub throughput: f64,
    /// `msgs/s`, `deliveries/s` or `connects/s`.
    pub unit: &'static str,
    /// Latency percentiles.
    pub latency: Option<Latency>,
    /// Server CPU per unit of work (message, delivery or connection), µs.
    pub server_cpu_us_per_unit: Option<f64>,
    /// Each node's CPU per unit of work, µs, when there are several nodes.
    pub node_cpu_us_per_unit: Vec<f64>,
    /// Redis's CPU per unit of work, µs, when its pid was given.
    pub redis_cpu_us_per_unit: Option<f64>,
    /// Mean messages per Delivery event received.
    pub msgs_per_delivery: Option<f64>,
    /// Correctness checks (message scenarios).
    pub checks: Option<Checks>,
    /// Failed calls by status code.
    pub errors: ErrorCounts,
    /// Server RSS before the measured phase, KiB.
    pub rss_kb_before: Option<u64>,
    /// Server RSS after it, KiB.
    pub rss_kb_after: Option<u64>,
    /// Further scenario-specific figures.
    pub extra: Map<String, Value>,
    /// Why the scenario failed, apart from checks and errors.
    pub failures: Vec<String>,
    /// Lines printed under the table for figures it has no column for
    /// (their numbers are in `extra` too).
    pub notes: Vec<String>,
}

impl Report {
    /// A report for `scenario` in `unit`.
    pub fn new(scenario: &str, unit: &'static str) -> Report {
        Report {
            scenario: scenario.to_owned(),
            unit,
            ..Report::default()
        }
    }

    /// Whether the scenario passed: no failure, no error, clean checks.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
            && self.errors.values().all(|&n| n == 0)
            && self.checks.is_none_or(|c| c.clean())
    }

    /// Adds one scenario-specific figure.
    pub fn put(&mut self, key: &str, value: impl Into<Value>) {
        self.extra.insert(key.to_owned(), value.into());
    }

    /// The JSON object for this report.
    pub fn to_json(&self) -> Value {
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        let latency = self.latency.map_or(Value::Null, |l| {
            json!({
                "p50": round(l.p50), "p90": round(l.p90), "p99": round(l.p99),
                "max": round(l.max), "samples": l.samples,
            })
        });
        let checks = self.checks.unwrap_or_default();
        let check_value = |n: u64| -> Value {
            if self.checks.is_some() {
                n.into()
            } else {
                Value::Null
            }
        };
        let mut object = json!({
            "scenario": self.scenario,
            "params": self.params,
            "elapsed_s": round(self.elapsed_s),
            "throughput": round(self.throughput),
            "unit": self.unit,
            "latency_us": latency,
            "server_cpu_us_per_unit": self.server_cpu_us_per_unit.map(round),
            "msgs_per_delivery": self.msgs_per_delivery.map(round),
            "lost": check_value(checks.lost),
            "duplicated": check_value(checks.duplicated),
            "reordered": check_value(checks.reordered),
            "unexpected": check_value(checks.unexpected),
            "order_mismatches": check_value(checks.order_mismatches),
            "errors": self.errors,
            "rss_kb_before": self.rss_kb_before,
            "rss_kb_after": self.rss_kb_after,
            "failures": self.failures,
            "ok": self.ok(),
        });
        if let Value::Object(map) = &mut object {
            if !self.node_cpu_us_per_unit.is_empty() {
                let nodes: Vec<f64> = self
                    .node_cpu_us_per_unit
                    .iter()
                    .map(|&x| round(x))
                    .collect();
                map.insert("node_cpu_us_per_unit".into(), nodes.into());
            }
            if let Some(redis) = self.redis_cpu_us_per_unit {
                map.insert("redis_cpu_us_per_unit".into(), round(redis).into());
            }
            for (key, value) in &self.extra {
                map.insert(key.clone(), value.clone());
            }
        }
        object
    }

    /// Prints the JSON line on stdout and appends it to `path`, if given.
    pub fn emit(&self, path: Option<&str>) -> std::io::Result<()> {
        let line = self.to_json().to_string();
        println!("{line}");
        if let Some(path) = path {
            let mut file = OpenOptions::new().create(true).append(true).open(path)?;
            writeln!(file, "{line}")?;
        }
        Ok(())
    }
}

fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
}

/// The human-readable table of `reports`; with a column for Redis's CPU
/// per unit when any report has it (a cluster run).
pub fn table(reports: &[Report]) -> String {
    let with_redis = reports.iter().any(|r| r.redis_cpu_us_per_unit.is_some());
    let mut header = vec![
        "scenario",
        "ok",
        "throughput",
        "unit",
        "p50 µs",
        "p90 µs",
        "p99 µs",
        "max µs",
        "cpu µs/unit",
        "msgs/deliv",
        "lost/dup/reord/mism",
        "errors",
    ];
    if with_redis {
        header.insert(9, "redis µs/unit");
    }
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| (*s).to_owned()).collect()];
    for r in reports {
        let checks = r.checks.map_or_else(
            || "-".to_owned(),
            |c| {
                let mut cell = format!(
                    "{}/{}/{}/{}",
                    c.lost, c.duplicated, c.reordered, c.order_mismatches
                );
                if c.unexpected > 0 {
                    cell.push_str(&format!(" +{} unexpected", c.unexpected));
                }
                cell
            },
        );
        let errors: Vec<String> = r.errors.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        let mut name = r.scenario.clone();
        if let Some(Value::Number(n)) = r.params.get("connections") {
            name = format!("{name} ({n})");
        }
        let mut row = vec![
            name,
            if r.ok() { "yes" } else { "NO" }.to_owned(),
            format!("{:.0}", r.throughput),
            r.unit.to_owned(),
            opt(r.latency.map(|l| l.p50), 0),
            opt(r.latency.map(|l| l.p90), 0),
            opt(r.latency.map(|l| l.p99), 0),
            opt(r.latency.map(|l| l.max), 0),
            opt(r.server_cpu_us_per_unit, 2),
            opt(r.msgs_per_delivery, 2),
            checks,
            if errors.is_empty() {
                "-".to_owned()
            } else {
                errors.join(",")
            },
        ];
        if with_redis {
            row.insert(9, opt(r.redis_cpu_us_per_unit, 2));
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, &w))| {
                let pad = w - cell.chars().count();
                if i < 2 || i == 3 {
                    format!("{cell}{}", " ".repeat(pad))
                } else {
                    format!("{}{cell}", " ".repeat(pad))
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
        if n == 0 {
            let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
            out.push_str(&rule.join("  "));
            out.push('\n');
        }
    }
    for r in reports {
        for note in &r.notes {
            out.push_str(&format!("{}: {note}\n", r.scenario));
        }
    }
    for r in reports.iter().filter(|r| !r.failures.is_empty()) {
        out.push_str(&format!("{}: {}\n", r.scenario, r.failures.join("; ")));
    }
    out
}
