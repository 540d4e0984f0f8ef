//! Latency samples and their percentiles.

use std::time::Duration;

/// Latencies of one run plus its wall time.
pub struct Samples {
    latencies: Vec<Duration>,
    wall: Duration,
}

impl Samples {
    /// Wraps raw samples.
    pub fn new(mut latencies: Vec<Duration>, wall: Duration) -> Samples {
        latencies.sort_unstable();
        Samples { latencies, wall }
    }

    /// The `p`-th percentile (0..=100).
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * (self.latencies.len() - 1) as f64).round() as usize;
        self.latencies[rank.min(self.latencies.len() - 1)]
    }

    /// Several runs as one: all their latencies, their wall times added.
    pub fn merge(runs: Vec<Samples>) -> Samples {
        let wall = runs.iter().map(|r| r.wall).sum();
        let latencies = runs.into_iter().flat_map(|r| r.latencies).collect();
        Samples::new(latencies, wall)
    }

    /// Requests per second over the wall time.
    pub fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }

    /// A copy of these samples.
    pub fn copy(&self) -> Samples {
        Samples {
            latencies: self.latencies.clone(),
            wall: self.wall,
        }
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.latencies.len()
    }
}

/// The median of `values` (0 when empty).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Milliseconds with three decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// A count per second, grouped by thousands.
pub fn rate(per_second: f64) -> String {
    let n = per_second.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out}/s")
}
