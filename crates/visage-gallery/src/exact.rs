//! The exact index: every template compared, as a contiguous f32 matrix in copy-on-write
//! blocks (searches never wait for a write, and a write never waits for a search), with
//! distances vectorised for the CPU at hand (AVX-512 / AVX2 versions of the same code, chosen
//! at run time).

use crate::index::{top_hits, Capabilities, Hit, VectorIndex};
use crate::GalleryError;
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use visage_core::metric::{chi2, cosine_distance, dot, norm, sq_l2, Metric};

/// Rows per parallel task.
const CHUNK_ROWS: usize = 8192;

/// `out[i] = metric(q, rows[i])` for the `rows.len() / q.len()` rows, on all cores.
/// `norms[i]` must hold `|rows[i]|` when the metric is cosine (it is ignored otherwise).
pub fn distances(metric: Metric, q: &[f32], rows: &[f32], norms: &[f32], out: &mut [f32]) {
    let dim = q.len();
    assert_eq!(rows.len(), out.len() * dim, "matrix and output sizes");
    let qn = norm(q);
    out.par_chunks_mut(CHUNK_ROWS).enumerate().for_each(|(c, o)| {
        let start = c * CHUNK_ROWS;
        let m = &rows[start * dim..(start + o.len()) * dim];
        let n = if metric == Metric::Cosine { &norms[start..start + o.len()] } else { &[][..] };
        dispatch(metric, q, qn, m, n, o);
    });
}

fn dispatch(metric: Metric, q: &[f32], qn: f32, m: &[f32], n: &[f32], o: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the feature was just detected.
            return unsafe { kernel_avx512(metric, q, qn, m, n, o) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the features were just detected.
            return unsafe { kernel_avx2(metric, q, qn, m, n, o) };
        }
    }
    kernel(metric, q, qn, m, n, o)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn kernel_avx512(metric: Metric, q: &[f32], qn: f32, m: &[f32], n: &[f32], o: &mut [f32]) {
    kernel(metric, q, qn, m, n, o)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_avx2(metric: Metric, q: &[f32], qn: f32, m: &[f32], n: &[f32], o: &mut [f32]) {
    kernel(metric, q, qn, m, n, o)
}

/// The distance of every row: visage-core's reductions (the one implementation of the
/// metrics, [`Metric::distance`]'s), inlined here so that each dispatched copy is compiled for
/// its vector units; cosine takes the rows' stored norms.
#[inline(always)]
fn kernel(metric: Metric, q: &[f32], qn: f32, m: &[f32], n: &[f32], o: &mut [f32]) {
    let dim = q.len();
    for (i, (row, out)) in m.chunks_exact(dim).zip(o.iter_mut()).enumerate() {
        *out = match metric {
            Metric::L2 => sq_l2(q, row).sqrt(),
            Metric::Cosine => cosine_distance(dot(q, row), qn, n[i]),
            Metric::Chi2 => chi2(q, row),
        };
    }
}

/// Rows per copy-on-write block of the exact index (512 KB at 128-d): a write copies at most
/// two blocks, and a search scans the blocks in parallel.
const BLOCK_ROWS: usize = 1024;

/// A block of rows: vectors, their norms and their template ids.
#[derive(Clone)]
struct Block {
    vectors: Vec<f32>,
    norms: Vec<f32>,
    ids: Vec<i64>,
}

impl Block {
    fn new(dim: usize) -> Self {
        Self { vectors: Vec::with_capacity(BLOCK_ROWS * dim), norms: Vec::with_capacity(BLOCK_ROWS), ids: Vec::with_capacity(BLOCK_ROWS) }
    }
}

/// The writers' side: the authoritative block list and where each id lives.
struct Slots {
    blocks: Vec<Arc<Block>>,
    slot_of: HashMap<i64, usize>,
}

/// Exact search over every template: the probe is compared with each row, on all cores.
///
/// Writers build the next version of the block list (copying only the blocks they change)
/// and publish it with a pointer swap; a search works on the version it started with.
pub struct ExactIndex {
    metric: Metric,
    dim: usize,
    published: RwLock<Arc<Vec<Arc<Block>>>>,
    count: AtomicUsize,
    slots: Mutex<Slots>,
}

impl ExactIndex {
    /// An empty index of `dim`-dimensional vectors compared by `metric`.
    pub fn new(metric: Metric, dim: usize) -> Self {
        Self {
            metric,
            dim,
            published: RwLock::new(Arc::new(Vec::new())),
            count: AtomicUsize::new(0),
            slots: Mutex::new(Slots { blocks: Vec::new(), slot_of: HashMap::new() }),
        }
    }

    fn check(&self, v: &[f32]) -> Result<(), GalleryError> {
        if v.len() != self.dim {
            return Err(GalleryError::Index(format!("a {}-d vector given to a {}-d index", v.len(), self.dim)));
        }
        Ok(())
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, s: &Slots) {
        let next = Arc::new(s.blocks.clone());
        *self.published.write().unwrap_or_else(|e| e.into_inner()) = next;
        self.count.store(s.slot_of.len(), Ordering::Release);
    }

    fn snapshot(&self) -> Arc<Vec<Arc<Block>>> {
        self.published.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Appends or replaces one row (the caller publishes).
    fn put(&self, s: &mut Slots, id: i64, v: &[f32]) {
        let dim = self.dim;
        if let Some(&slot) = s.slot_of.get(&id) {
            let b = Arc::make_mut(&mut s.blocks[slot / BLOCK_ROWS]);
            let r = slot % BLOCK_ROWS;
            b.vectors[r * dim..(r + 1) * dim].copy_from_slice(v);
            b.norms[r] = norm(v);
            return;
        }
        if s.blocks.last().is_none_or(|b| b.ids.len() == BLOCK_ROWS) {
            s.blocks.push(Arc::new(Block::new(dim)));
        }
        let slot = (s.blocks.len() - 1) * BLOCK_ROWS + s.blocks.last().map_or(0, |b| b.ids.len());
        let b = Arc::make_mut(s.blocks.last_mut().expect("a block"));
        b.vectors.extend_from_slice(v);
        b.norms.push(norm(v));
        b.ids.push(id);
        s.slot_of.insert(id, slot);
    }

    /// The `n` nearest rows of one block.
    fn block_top(&self, b: &Block, q: &[f32], qn: f32, n: usize) -> Vec<Hit> {
        let rows = b.ids.len();
        let mut d = [0f32; BLOCK_ROWS];
        let norms = if self.metric == Metric::Cosine { &b.norms[..] } else { &[][..] };
        dispatch(self.metric, q, qn, &b.vectors[..rows * self.dim], norms, &mut d[..rows]);
        if n == 1 {
            let (i, dist) = d[..rows].iter().enumerate().fold((0, f32::INFINITY), |m, (i, &x)| if x < m.1 { (i, x) } else { m });
            return if rows == 0 { Vec::new() } else { vec![Hit { id: b.ids[i], distance: dist }] };
        }
        top_hits(d[..rows].iter().zip(&b.ids).map(|(&distance, &id)| Hit { id, distance }).collect(), n)
    }
}

impl VectorIndex for ExactIndex {
    fn capabilities(&self) -> Capabilities {
        Capabilities { name: "exact", metrics: &Metric::ALL, exact: true }
    }

    fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    fn contains(&self, id: i64) -> bool {
        self.slots().slot_of.contains_key(&id)
    }

    fn add(&self, id: i64, vector: &[f32]) -> Result<(), GalleryError> {
        self.check(vector)?;
        let mut s = self.slots();
        self.put(&mut s, id, vector);
        self.publish(&s);
        Ok(())
    }

    fn add_batch(&self, items: &[(i64, &[f32])]) -> Result<(), GalleryError> {
        items.iter().try_for_each(|(_, v)| self.check(v))?;
        let mut s = self.slots();
        s.slot_of.reserve(items.len());
        for (id, v) in items {
            self.put(&mut s, *id, v);
        }
        self.publish(&s);
        Ok(())
    }

    fn remove(&self, id: i64) -> Result<bool, GalleryError> {
        let dim = self.dim;
        let mut s = self.slots();
        let Some(slot) = s.slot_of.remove(&id) else { return Ok(false) };
        // Swap-remove: the last row moves into the freed slot.
        let last = s.slot_of.len();
        if slot != last {
            let (lb, lr) = (last / BLOCK_ROWS, last % BLOCK_ROWS);
            let (row, n, moved) = {
                let b = &s.blocks[lb];
                (b.vectors[lr * dim..(lr + 1) * dim].to_vec(), b.norms[lr], b.ids[lr])
            };
            let b = Arc::make_mut(&mut s.blocks[slot / BLOCK_ROWS]);
            let r = slot % BLOCK_ROWS;
            b.vectors[r * dim..(r + 1) * dim].copy_from_slice(&row);
            b.norms[r] = n;
            b.ids[r] = moved;
            s.slot_of.insert(moved, slot);
        }
        let b = Arc::make_mut(s.blocks.last_mut().expect("a block"));
        b.ids.pop();
        b.norms.pop();
        b.vectors.truncate(b.ids.len() * dim);
        if b.ids.is_empty() {
            s.blocks.pop();
        }
        self.publish(&s);
        Ok(true)
    }

    fn search(&self, q: &[f32], n: usize) -> Result<Vec<Hit>, GalleryError> {
        self.check(q)?;
        let blocks = self.snapshot();
        if n == 0 || blocks.is_empty() {
            return Ok(Vec::new());
        }
        let qn = norm(q);
        let merge = |a: Vec<Hit>, b: Vec<Hit>| {
            if a.is_empty() {
                b
            } else if b.is_empty() {
                a
            } else {
                top_hits([a, b].concat(), n)
            }
        };
        Ok(blocks.par_iter().map(|b| self.block_top(b, q, qn, n)).reduce(Vec::new, merge))
    }

    fn distances(&self, q: &[f32], ids: &[i64]) -> Result<Vec<Hit>, GalleryError> {
        self.check(q)?;
        let dim = self.dim;
        let s = self.slots();
        Ok(ids
            .iter()
            .filter_map(|&id| {
                let slot = *s.slot_of.get(&id)?;
                let b = &s.blocks[slot / BLOCK_ROWS];
                let r = slot % BLOCK_ROWS;
                Some(Hit { id, distance: self.metric.distance(q, &b.vectors[r * dim..(r + 1) * dim]) })
            })
            .collect())
    }

    fn memory_bytes(&self) -> usize {
        let s = self.slots();
        s.blocks.iter().map(|b| b.vectors.capacity() * 4 + b.norms.capacity() * 4 + b.ids.capacity() * 8).sum::<usize>()
            + s.slot_of.capacity() * 24
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_metric_for_odd_dimensions() {
        for dim in [1usize, 15, 16, 17, 128, 130] {
            let rows: Vec<f32> = (0..dim * 50).map(|i| ((i * 7919 % 113) as f32 - 56.0) / 40.0).collect();
            let q: Vec<f32> = (0..dim).map(|i| ((i * 31 % 17) as f32 - 8.0) / 9.0).collect();
            let norms: Vec<f32> = rows.chunks(dim).map(norm).collect();
            for metric in Metric::ALL {
                let mut out = vec![0f32; 50];
                distances(metric, &q, &rows, &norms, &mut out);
                // One implementation: the vectorised scan gives Metric::distance's very numbers.
                for (r, d) in rows.chunks(dim).zip(&out) {
                    assert_eq!(d.to_bits(), metric.distance(&q, r).to_bits(), "{metric} dim {dim}");
                }
                // And so do the index's search and its distances to given templates.
                let index = ExactIndex::new(metric, dim);
                for (i, r) in rows.chunks(dim).enumerate() {
                    index.add(i as i64, r).unwrap();
                }
                let best = index.search(&q, 1).unwrap()[0];
                assert_eq!(best.distance.to_bits(), out[best.id as usize].to_bits(), "{metric} dim {dim}");
                let ids: Vec<i64> = (0..50).collect();
                for h in index.distances(&q, &ids).unwrap() {
                    assert_eq!(h.distance.to_bits(), out[h.id as usize].to_bits(), "{metric} dim {dim}");
                }
            }
        }
    }
}
