//! Latency figures the page benchmarks print.

/// p50, p99 and the maximum of some times (sorted here).
pub fn p50_p99_max(times: &mut [f64]) -> (f64, f64, f64) {
    times.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    (at(0.5), at(0.99), times[times.len() - 1])
}
