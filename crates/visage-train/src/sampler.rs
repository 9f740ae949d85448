//! The identity-balanced P x K batch sampler: each batch holds P distinct people drawn
//! uniformly (so a person with 530 photos is drawn as often as one with 2) and K photos of
//! each. Seeded: the same seed gives the same batches.
//!
//! People with fewer than 2 photos are never drawn: every row of a P x K batch is an anchor,
//! and an anchor needs a positive. Such people still count as negatives elsewhere (softmax
//! training can use them).

use visage_core::SeededRng;

/// What happens to a person with at least 2 but fewer than K photos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shortfall {
    /// Drawn like everyone else: all their photos once, in random order, then the missing
    /// ones drawn again with replacement. The repeats are the same photo (a zero distance
    /// unless augmentation changes them; the losses handle zero distances). This keeps LFW's
    /// many people with 2 or 3 photos in training.
    #[default]
    Repeat,
    /// Never drawn: only people with K photos or more are sampled.
    Skip,
}

/// One batch: `P * K` rows, person by person (rows `i*K .. (i+1)*K` are person `i` of the
/// batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkBatch {
    /// `(label, photo index)` of each row.
    pub rows: Vec<(usize, usize)>,
}

impl PkBatch {
    /// The label (person index) of each row, as the losses take them.
    pub fn labels(&self) -> Vec<usize> {
        self.rows.iter().map(|r| r.0).collect()
    }
}

/// Draws P x K batches from people with the given photo counts (indexed by label).
#[derive(Debug, Clone)]
pub struct PkSampler {
    counts: Vec<usize>,
    eligible: Vec<usize>,
    p: usize,
    k: usize,
    shortfall: Shortfall,
    rng: SeededRng,
    scratch: Vec<usize>,
}

impl PkSampler {
    /// A sampler over people with `counts[label]` photos. Errors when `p < 2` or `k < 2` (no
    /// negative or no positive in a batch) or fewer than `p` people can be drawn.
    pub fn new(counts: &[usize], p: usize, k: usize, shortfall: Shortfall, seed: u64) -> Result<Self, String> {
        if p < 2 || k < 2 {
            return Err(format!("P x K = {p} x {k}: a triplet batch needs P >= 2 people and K >= 2 photos each"));
        }
        let least = match shortfall {
            Shortfall::Repeat => 2,
            Shortfall::Skip => k,
        };
        let eligible: Vec<usize> = (0..counts.len()).filter(|&i| counts[i] >= least).collect();
        if eligible.len() < p {
            return Err(format!("{} people have {least} or more photos, fewer than P = {p}", eligible.len()));
        }
        Ok(PkSampler { counts: counts.to_vec(), eligible, p, k, shortfall, rng: SeededRng::new(seed), scratch: Vec::new() })
    }

    /// The labels that can be drawn, ascending.
    pub fn eligible(&self) -> &[usize] {
        &self.eligible
    }

    /// P, people per batch.
    pub fn p(&self) -> usize {
        self.p
    }

    /// K, photos per person.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The shortfall policy.
    pub fn shortfall(&self) -> Shortfall {
        self.shortfall
    }

    /// Batches in one epoch: the eligible people's photos over `P * K`, rounded up.
    pub fn batches_per_epoch(&self) -> usize {
        let photos: usize = self.eligible.iter().map(|&i| self.counts[i]).sum();
        photos.div_ceil(self.p * self.k)
    }

    /// The next batch.
    pub fn next_batch(&mut self) -> PkBatch {
        // A partial Fisher-Yates shuffle of the eligible list: its first P entries are a
        // uniform draw of P distinct people, whatever order the list was left in.
        let e = self.eligible.len();
        for i in 0..self.p {
            let j = i + self.rng.below(e - i);
            self.eligible.swap(i, j);
        }
        let people: Vec<usize> = self.eligible[..self.p].to_vec();
        self.eligible.sort_unstable();
        let mut rows = Vec::with_capacity(self.p * self.k);
        for person in people {
            let n = self.counts[person];
            self.scratch.clear();
            self.scratch.extend(0..n);
            let distinct = n.min(self.k);
            for i in 0..distinct {
                let j = i + self.rng.below(n - i);
                self.scratch.swap(i, j);
            }
            rows.extend(self.scratch[..distinct].iter().map(|&ph| (person, ph)));
            for _ in distinct..self.k {
                rows.push((person, self.rng.below(n)));
            }
        }
        PkBatch { rows }
    }
}

impl Iterator for PkSampler {
    type Item = PkBatch;

    /// Never ends: an epoch is [`PkSampler::batches_per_epoch`] batches.
    fn next(&mut self) -> Option<PkBatch> {
        Some(self.next_batch())
    }
}
