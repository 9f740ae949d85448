//! The learning-rate schedule every visage trainer uses.

/// A cosine decay from `base` at step 0 to 1% of it at step `steps`.
pub fn cosine_lr(base: f64, step: usize, steps: usize) -> f64 {
    base * (0.01 + 0.99 * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / steps as f64).cos()))
}

#[cfg(test)]
mod tests {
    use super::cosine_lr;

    #[test]
    fn it_starts_at_the_base_rate_and_ends_at_one_percent() {
        assert_eq!(cosine_lr(0.5, 0, 100), 0.5);
        assert!((cosine_lr(0.5, 100, 100) - 0.005).abs() < 1e-12);
        assert!((cosine_lr(0.5, 50, 100) - 0.5 * (0.01 + 0.99 * 0.5)).abs() < 1e-12);
    }
}
