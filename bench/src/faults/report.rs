//! What a scenario found: figures (printed as they come) and checks (what a user would see,
//! each passed or failed with the numbers behind it).

pub struct Check {
    pub what: String,
    pub passed: bool,
    pub detail: String,
}

pub struct Report {
    pub scenario: String,
    pub figures: Vec<String>,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn new(scenario: impl Into<String>) -> Self {
        let scenario = scenario.into();
        println!("\n== {scenario}");
        Self {
            scenario,
            figures: Vec::new(),
            checks: Vec::new(),
        }
    }

    /// A measured figure.
    pub fn figure(&mut self, line: impl Into<String>) {
        let line = line.into();
        println!("   {line}");
        self.figures.push(line);
    }

    /// An assertion: `what` should hold; `detail` says what was seen.
    pub fn check(&mut self, what: impl Into<String>, passed: bool, detail: impl Into<String>) {
        let check = Check {
            what: what.into(),
            passed,
            detail: detail.into(),
        };
        println!(
            "   [{}] {}: {}",
            if check.passed { "ok" } else { "FAILED" },
            check.what,
            check.detail
        );
        self.checks.push(check);
    }

    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

/// Milliseconds, one decimal.
pub fn ms(d: std::time::Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A latency histogram (µs) as `p50 / p99 / max` in ms.
pub fn quantiles(h: &hdrhistogram::Histogram<u64>) -> String {
    if h.is_empty() {
        return "no samples".to_owned();
    }
    let q = |x: f64| h.value_at_quantile(x) as f64 / 1000.0;
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)",
        q(0.5),
        q(0.99),
        h.max() as f64 / 1000.0,
        h.len()
    )
}
