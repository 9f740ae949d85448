//! Request counters and latencies, and their Prometheus text.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Counters per (route, status) and latency sums per route.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    seconds: BTreeMap<String, (f64, u64)>,
}

impl Metrics {
    /// Records one answered request.
    pub fn record(&self, route: &str, status: u16, seconds: f64) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *m.requests.entry((route.to_string(), status)).or_default() += 1;
        let s = m.seconds.entry(route.to_string()).or_default();
        s.0 += seconds;
        s.1 += 1;
    }

    /// The Prometheus exposition of the counters, plus the gauges given.
    pub fn render(&self, gauges: &[(String, f64)]) -> String {
        let m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        out.push_str("# HELP visage_requests_total Requests answered, by route and status.\n# TYPE visage_requests_total counter\n");
        for ((route, status), n) in &m.requests {
            let _ = writeln!(out, "visage_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
        out.push_str("# HELP visage_request_seconds Time to answer, by route.\n# TYPE visage_request_seconds summary\n");
        for (route, (sum, count)) in &m.seconds {
            let _ = writeln!(out, "visage_request_seconds_sum{{route=\"{route}\"}} {sum}");
            let _ = writeln!(out, "visage_request_seconds_count{{route=\"{route}\"}} {count}");
        }
        for (line, v) in gauges {
            let _ = writeln!(out, "{line} {v}");
        }
        out
    }
}
