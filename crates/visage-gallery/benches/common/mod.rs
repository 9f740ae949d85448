//! Synthetic galleries with the spectrum of dlib embeddings measured on LFW, shared by the
//! gallery benchmarks.
//!
//! The data imitates dlib embeddings measured on LFW (bench/reference/lfw_spectrum.py):
//! subjects are drawn with the principal standard deviations of real people's mean embeddings
//! (about 77 effective dimensions), each gets templates with the real within-person spread
//! (added in all 128 dimensions, which only makes the search harder); probes are fresh samples
//! of enrolled subjects. L2 distances do not change under rotation, so the diagonal form has
//! the geometry of the real one.

#![allow(dead_code)]

// 1680 LFW people with 2+ photos; per-person means' principal standard deviations.
pub const BETWEEN_SD: [f32; 128] = [
    0.18205, 0.14919, 0.12805, 0.11848, 0.10671, 0.10184, 0.096294, 0.088638, 0.086893, 0.084111, 0.080123, 0.079731, 0.077015, 0.076399,
    0.072115, 0.069772, 0.068699, 0.06609, 0.065149, 0.06237, 0.061586, 0.060797, 0.059854, 0.058677, 0.057899, 0.055502, 0.054013,
    0.052729, 0.052481, 0.0518, 0.050185, 0.049436, 0.048874, 0.048323, 0.04712, 0.046875, 0.045004, 0.044139, 0.043461, 0.043103,
    0.042877, 0.042489, 0.041137, 0.040301, 0.040055, 0.038945, 0.037802, 0.037334, 0.036854, 0.036441, 0.035906, 0.035515, 0.034415,
    0.033844, 0.033386, 0.033032, 0.032322, 0.031408, 0.030613, 0.030085, 0.029746, 0.02841, 0.027535, 0.027202, 0.026889, 0.026167,
    0.025455, 0.024573, 0.024261, 0.023751, 0.02323, 0.022074, 0.021028, 0.018991, 0.01699, 0.01552, 0.010978, 0.0017741, 0.00069889,
    0.00045033, 0.00024133, 7.7777e-05, 2.7148e-05, 1.8289e-05, 1.2876e-05, 7.7968e-06, 3.8446e-06, 2.4032e-06, 1.6549e-06, 1.3252e-06,
    7.1613e-07, 6.3225e-07, 4.4639e-07, 3.1406e-07, 2.1296e-07, 1.8599e-07, 1.6775e-07, 1.4091e-07, 1.1074e-07, 9.0765e-08, 8.3143e-08,
    7.3776e-08, 7.1216e-08, 6.8523e-08, 6.6613e-08, 6.5442e-08, 6.4628e-08, 6.0547e-08, 5.9231e-08, 5.8891e-08, 5.6773e-08, 5.5045e-08,
    5.242e-08, 5.1427e-08, 5.0783e-08, 4.9965e-08, 4.8553e-08, 4.8246e-08, 4.6212e-08, 4.4143e-08, 4.3215e-08, 4.2483e-08, 4.2083e-08,
    4.0798e-08, 3.8807e-08, 3.8184e-08, 3.6774e-08, 3.5239e-08,
];
// Within-person standard deviation per dimension (pooled over LFW).
pub const WITHIN_SD: f32 = 0.024991;

pub const DIM: usize = 128;
/// The model these templates imitate: bench galleries are bound to dlib's id (files written by
/// earlier runs are reused) and created with its thresholds.
pub const MODEL: &str = "dlib_face_recognition_resnet_model_v1";
pub const THRESHOLDS: visage_core::Thresholds = visage_core::Thresholds { l2: 0.6, cosine: 0.093, chi2: 2.86 };
pub const PER_SUBJECT: usize = 4;

/// xorshift64* with Box-Muller normals.
pub struct Rng(pub u64);
impl Rng {
    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f32 {
        ((-2.0 * self.uniform().ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()) as f32
    }
}

pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// A synthetic population: subject centres and fresh samples around them.
pub struct Population {
    /// Subject centres.
    pub centers: Vec<Vec<f32>>,
    rng: Rng,
}

impl Population {
    /// `subjects` centres drawn from the between-person spectrum, seeded by `seed`.
    pub fn new(subjects: usize, seed: u64) -> Self {
        let mut rng = Rng(0x9E3779B97F4A7C15 ^ seed);
        let centers = (0..subjects).map(|_| BETWEEN_SD.iter().map(|sd| rng.normal() * sd).collect()).collect();
        Self { centers, rng }
    }

    /// A fresh template of subject `s` (its centre plus the within-person spread).
    pub fn sample(&mut self, s: usize) -> Vec<f32> {
        let rng = &mut self.rng;
        self.centers[s].iter().map(|x| x + rng.normal() * WITHIN_SD).collect()
    }

    /// A uniformly chosen subject.
    pub fn any_subject(&mut self) -> usize {
        (self.rng.uniform() * self.centers.len() as f64) as usize % self.centers.len()
    }

    /// A new subject's centre (appended), returning its number.
    pub fn new_subject(&mut self) -> usize {
        let c = BETWEEN_SD.iter().map(|sd| self.rng.normal() * sd).collect();
        self.centers.push(c);
        self.centers.len() - 1
    }
}

/// p50 and p99 of latencies in milliseconds.
pub fn p50_p99(v: &mut [f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    (percentile(v, 0.5), percentile(v, 0.99))
}
