//! GEMM micro-kernels for the indirect convolution, one per instruction set.
//!
//! A tile computes `MR` output pixels x `NR` output channels:
//! `C[r][j] = epilogue( sum_s sum_k A_s[r][k] * B[s*seg_len + k][j] )`, where the rows of `A_s`
//! are read in place from the input activation through per-row offsets (the indirection
//! table), and `B` is the weight panel packed as `[k][NR]`. The epilogue applies the folded
//! conv bias + affine (`scale * acc + shift`), an optional residual add and an optional relu.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod portable;

/// Offset value meaning "this row reads zeros" (padding, or a row past the end of M).
pub(crate) const ZERO_ROW: u32 = u32::MAX;

/// The instruction set a network was packed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F: 12x32 tiles.
    Avx512,
    /// AVX2 + FMA: 6x16 tiles.
    Avx2,
    /// Plain Rust, auto-vectorized: 4x16 tiles.
    Portable,
}

impl Isa {
    /// The best instruction set this CPU supports (`EngineOptions::from_env` lets
    /// `VISAGE_ISA` override it).
    pub fn best() -> Isa {
        [Isa::Avx512, Isa::Avx2].into_iter().find(|i| i.is_supported()).unwrap_or(Isa::Portable)
    }

    /// Every instruction set this CPU supports, best first.
    pub fn supported() -> Vec<Isa> {
        [Isa::Avx512, Isa::Avx2, Isa::Portable].into_iter().filter(|i| i.is_supported()).collect()
    }

    /// Parses `avx512`, `avx2` or `portable`.
    pub fn from_name(name: &str) -> Option<Isa> {
        match name.to_ascii_lowercase().as_str() {
            "avx512" => Some(Isa::Avx512),
            "avx2" => Some(Isa::Avx2),
            "portable" => Some(Isa::Portable),
            _ => None,
        }
    }

    /// Whether this CPU can run the kernel.
    pub fn is_supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx512 | Isa::Avx2 => false,
            Isa::Portable => true,
        }
    }

    /// Output pixels per tile.
    pub fn mr(self) -> usize {
        match self {
            Isa::Avx512 => 12,
            Isa::Avx2 => 6,
            Isa::Portable => 4,
        }
    }

    /// Output channels per tile (the packing width of the weights).
    pub fn nr(self) -> usize {
        match self {
            Isa::Avx512 => 32,
            Isa::Avx2 | Isa::Portable => 16,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }
}

/// Everything one tile needs. Pointers are valid for the extents described.
pub(crate) struct Tile {
    /// Number of segments (kernel taps or kernel rows).
    pub nseg: usize,
    /// Contiguous input values per segment and row.
    pub seg_len: usize,
    /// `nseg * MR` offsets into `a` (or [`ZERO_ROW`]).
    pub offs: *const u32,
    /// The input activation.
    pub a: *const f32,
    /// At least `seg_len` zeros.
    pub zero: *const f32,
    /// The packed weight panel, `nseg * seg_len * NR` values.
    pub b: *const f32,
    /// Output at (first row, first column of the panel).
    pub c: *mut f32,
    /// Row stride of `c` and `residual`.
    pub ldc: usize,
    /// Valid rows (<= MR).
    pub rows: usize,
    /// Valid columns (<= NR).
    pub cols: usize,
    /// `NR` scales for this panel.
    pub scale: *const f32,
    /// `NR` shifts for this panel.
    pub shift: *const f32,
    /// Residual at the same position as `c`, or null.
    pub residual: *const f32,
    /// Apply max(0, .) last.
    pub relu: bool,
}

impl Tile {
    /// The pointer each of the `MR` rows reads for segment `s`.
    ///
    /// # Safety
    /// `offs` must hold `nseg * mr` entries and every non-zero offset must be in bounds of `a`.
    #[inline(always)]
    pub(crate) unsafe fn row_ptr(&self, s: usize, r: usize, mr: usize) -> *const f32 {
        let off = *self.offs.add(s * mr + r);
        if off == ZERO_ROW {
            self.zero
        } else {
            self.a.add(off as usize)
        }
    }
}

/// Runs one tile with the kernel of `isa`.
///
/// # Safety
/// The tile's pointers must be valid as documented on [`Tile`], and `isa` must be supported.
#[inline]
pub(crate) unsafe fn run_tile(isa: Isa, t: &Tile) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => avx512::tile(t),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => avx2::tile(t),
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx512 | Isa::Avx2 => portable::tile(t),
        Isa::Portable => portable::tile(t),
    }
}
