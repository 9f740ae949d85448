//! Value parsers shared by the commands' options: thresholds, rates, bounded counts.

/// A distance threshold: a finite number, zero or more (`inf`, `NaN` and negative values are
/// refused when the arguments are parsed).
pub fn threshold(s: &str) -> Result<f64, String> {
    let t: f64 = s.trim().parse().map_err(|_| format!("\"{s}\" is not a number"))?;
    if !t.is_finite() {
        return Err(format!("{s} is not a finite number; a threshold is a distance, a finite number 0 or more"));
    }
    if t < 0.0 {
        return Err(format!("{s} is negative; distances are 0 or more, so a threshold must be too"));
    }
    // -0 is 0 (and prints as 0).
    Ok(t.abs())
}

/// The same-person thresholds of the model the commands embed with (dlib's ResNet: its
/// descriptor's), as the help of a `--threshold` option shows them: `<t> for l2, ...`.
pub fn model_thresholds() -> String {
    let t = visage::DLIB_RESNET_THRESHOLDS;
    visage::Metric::ALL.iter().map(|&m| format!("{} for {m}", t.get(m))).collect::<Vec<_>>().join(", ")
}

/// A rate strictly between 0 and 1, such as a false-accept rate (`1e-3`).
pub fn rate(s: &str) -> Result<f64, String> {
    let r: f64 = s.trim().parse().map_err(|_| format!("\"{s}\" is not a number"))?;
    if !(r > 0.0 && r < 1.0) {
        return Err(format!("{s} is not a rate strictly between 0 and 1 (for example 1e-3)"));
    }
    Ok(r)
}

/// The most jittered copies `--jitter` accepts: each copy of every photo in a batch is held
/// in memory, and beyond a few hundred copies the average no longer changes (dlib uses 100).
pub const MAX_JITTER: u32 = 1000;

/// `--jitter N`: 0 to [`MAX_JITTER`].
pub fn jitter(s: &str) -> Result<u32, String> {
    let n: u32 = s.trim().parse().map_err(|_| format!("\"{s}\" is not a whole number"))?;
    if n > MAX_JITTER {
        return Err(format!("{n} is over the maximum of {MAX_JITTER} jittered copies"));
    }
    Ok(n)
}

/// The most worker threads `--threads` accepts: each is an OS thread with its own stack, and
/// starting 100000 of them takes minutes before any work.
pub const MAX_THREADS: usize = 1024;

/// `--threads N`: 1 to [`MAX_THREADS`].
pub fn threads(s: &str) -> Result<usize, String> {
    let n: usize = s.trim().parse().map_err(|_| format!("\"{s}\" is not a whole number"))?;
    match n {
        0 => Err("at least 1 worker thread is needed".into()),
        n if n > MAX_THREADS => Err(format!("{n} is over the maximum of {MAX_THREADS} worker threads")),
        n => Ok(n),
    }
}

/// A count of 1 or more (`--top K`).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    let n: usize = s.trim().parse().map_err(|_| format!("\"{s}\" is not a whole number"))?;
    if n == 0 {
        return Err("must be at least 1".into());
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    #[test]
    fn thresholds_and_rates() {
        assert_eq!(super::threshold("0.5"), Ok(0.5));
        assert_eq!(super::threshold("0"), Ok(0.0));
        for bad in ["inf", "NaN", "-0.1", "x"] {
            assert!(super::threshold(bad).is_err(), "{bad}");
        }
        assert_eq!(super::rate("1e-3"), Ok(1e-3));
        for bad in ["0", "1", "2", "-1", "NaN"] {
            assert!(super::rate(bad).is_err(), "{bad}");
        }
        assert_eq!(super::threshold("-0").map(f64::is_sign_positive), Ok(true));
        assert!(super::threads("0").is_err() && super::threads("100000").is_err());
        assert_eq!(super::threads("8"), Ok(8));
        assert!(super::at_least_one("0").is_err());
        assert!(super::jitter("1001").is_err());
        assert_eq!(super::jitter("100"), Ok(100));
    }
}
