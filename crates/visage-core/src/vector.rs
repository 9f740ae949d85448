//! Loops compiled for the widest vector units the CPU has (AVX-512, AVX2 or the baseline),
//! chosen at run time: [`vectorised!`](crate::vectorised) defines such a function.
//!
//! The loops are plain Rust that the compiler vectorises. Wider units change how many values
//! one instruction handles, never an operation's result: Rust does not contract `a * b + c`
//! into a fused multiply-add or reorder floating-point operations, so every level computes
//! bit-identical values ([`at_each_level`] lets tests check it).

use std::cell::Cell;

/// The vector units a kernel runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// What every CPU of the target has (SSE2 on x86-64).
    Baseline,
    /// AVX2 (with SSE4.1's rounding instructions).
    Avx2,
    /// AVX-512 F, BW and VL (with AVX2).
    Avx512,
}

thread_local! {
    static FORCED: Cell<Option<Level>> = const { Cell::new(None) };
}

/// The level kernels run at on this thread: the widest this CPU has ([`widest`]), or the one
/// [`at_each_level`] is trying.
pub fn level() -> Level {
    FORCED.get().unwrap_or_else(widest)
}

/// The widest level this CPU runs (the detection is cached by the standard library).
pub fn widest() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                return Level::Avx512;
            }
            return Level::Avx2;
        }
    }
    Level::Baseline
}

/// Runs `f` once at each level this CPU has, from the baseline up, with the kernels that
/// `f` calls on this thread dispatched at that level: for tests that every level computes
/// the same.
pub fn at_each_level(mut f: impl FnMut(Level)) {
    for l in [Level::Baseline, Level::Avx2, Level::Avx512].into_iter().filter(|&l| l <= widest()) {
        FORCED.set(Some(l));
        f(l);
    }
    FORCED.set(None);
}

/// Defines a function whose body is compiled three times (baseline, AVX2, AVX-512) and run at
/// [`vector::level()`](crate::vector::level). The functions the body calls should be
/// `#[inline(always)]`, so that their loops are compiled into each copy; the arguments'
/// types must not name generic parameters.
#[macro_export]
macro_rules! vectorised {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn kernel($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2")]
            unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                kernel($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                kernel($($arg),*)
            }
            match $crate::vector::level() {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: level() is AVX-512 only when the CPU has AVX-512 F, BW, VL and AVX2.
                $crate::vector::Level::Avx512 => unsafe { avx512($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: level() is AVX2 only when the CPU has AVX2.
                $crate::vector::Level::Avx2 => unsafe { avx2($($arg),*) },
                _ => kernel($($arg),*),
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::vectorised! {
        /// A float reduction in a fixed order, which each level must compute the same.
        fn sum_of_products(a: &[f32], b: &[f32]) -> f32 {
            a.iter().zip(b).fold(0.0, |s, (x, y)| s + x * y)
        }
    }

    #[test]
    fn every_level_computes_the_same() {
        let a: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..1000).map(|i| 1.0 / (1.0 + i as f32)).collect();
        let want = a.iter().zip(&b).fold(0.0f32, |s, (x, y)| s + x * y);
        let mut seen = Vec::new();
        at_each_level(|l| {
            assert_eq!(level(), l);
            assert_eq!(sum_of_products(&a, &b).to_bits(), want.to_bits(), "{l:?}");
            seen.push(l);
        });
        assert_eq!(seen.first(), Some(&Level::Baseline));
        assert_eq!(level(), widest());
    }
}
