//! Vector indexes behind one trait, and the subject layer (nearest template per subject) above
//! them.
//!
//! A [`VectorIndex`] knows templates only: a stable id (the template's SQLite row id) and a
//! vector. It adds and removes one template in place and answers the `n` nearest templates.
//! Which subject a template belongs to, and the decision rule, live above it in
//! [`SearchIndex`] (and the gallery), so any index (the exact scan, the HNSW graph, a
//! distributed engine) gives the same answers up to its own recall.

use crate::GalleryError;
use std::collections::HashMap;
use std::sync::RwLock;
use visage_core::Metric;

/// Template count from which an approximate (HNSW) index is built for L2 and cosine galleries.
pub const APPROX_THRESHOLD: usize = 50_000;

/// What an index can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// A short name for messages (`exact`, `hnsw`, ...).
    pub name: &'static str,
    /// The metrics it can search by.
    pub metrics: &'static [Metric],
    /// Whether its answers are exact (every template compared) or approximate.
    pub exact: bool,
}

impl Capabilities {
    /// Whether the index can search by `metric`.
    pub fn supports(&self, metric: Metric) -> bool {
        self.metrics.contains(&metric)
    }
}

/// A template and its distance to the probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// The template's id.
    pub id: i64,
    /// Its distance to the probe, by the index's metric.
    pub distance: f32,
}

/// A searchable set of templates, keyed by stable template id.
///
/// Every method takes `&self`: an implementation does its own locking so that searches and
/// in-place updates can run at the same time from several threads (the trait is object safe
/// and `Send + Sync`, for `Arc<dyn VectorIndex>`).
pub trait VectorIndex: Send + Sync {
    /// What the index supports.
    fn capabilities(&self) -> Capabilities;
    /// Number of templates indexed.
    fn len(&self) -> usize;
    /// True when no template is indexed.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether a template id is indexed.
    fn contains(&self, id: i64) -> bool;
    /// Adds one template. Adding an id already present replaces its vector.
    fn add(&self, id: i64, vector: &[f32]) -> Result<(), GalleryError>;
    /// Adds many templates (a bulk load); the default adds them one by one.
    fn add_batch(&self, items: &[(i64, &[f32])]) -> Result<(), GalleryError> {
        items.iter().try_for_each(|(id, v)| self.add(*id, v))
    }
    /// Makes room for `additional` more templates before a bulk load (a hint; the default
    /// does nothing).
    fn reserve(&self, _additional: usize) -> Result<(), GalleryError> {
        Ok(())
    }
    /// Removes a template; returns whether it was there.
    fn remove(&self, id: i64) -> Result<bool, GalleryError>;
    /// The `n` nearest templates to `query`, nearest first (fewer when the index holds fewer).
    fn search(&self, query: &[f32], n: usize) -> Result<Vec<Hit>, GalleryError>;
    /// The distances from `query` to the given templates (1:1 verification); ids not indexed
    /// are left out.
    fn distances(&self, query: &[f32], ids: &[i64]) -> Result<Vec<Hit>, GalleryError>;
    /// Bytes of memory the index holds (an estimate).
    fn memory_bytes(&self) -> usize {
        0
    }
    /// Saves the index to `path` when it supports persistence; returns whether it did.
    fn save(&self, _path: &std::path::Path) -> Result<bool, GalleryError> {
        Ok(false)
    }
}

/// A subject and its distance to the probe (the distance of its nearest template).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// The subject's id (the gallery's subject row id, or the number given to [`SearchIndex::push`]).
    pub subject: i64,
    /// Distance of the subject's nearest template.
    pub distance: f32,
}

/// Templates of subjects behind any [`VectorIndex`], searched by the decision rule: a
/// subject's distance is its nearest template's, and the `k` nearest subjects are returned.
pub struct SearchIndex {
    index: Box<dyn VectorIndex>,
    owner: RwLock<HashMap<i64, i64>>,
    next_id: i64,
}

impl SearchIndex {
    /// An empty index searching exactly by `metric`.
    pub fn new(metric: Metric, dim: usize) -> Self {
        Self::with_index(Box::new(crate::exact::ExactIndex::new(metric, dim)))
    }

    /// Uses `index`, which must be empty (templates are added through [`Self::insert`]).
    pub fn with_index(index: Box<dyn VectorIndex>) -> Self {
        Self { index, owner: RwLock::new(HashMap::new()), next_id: 0 }
    }

    /// Appends a template of `subject`; its template id is the number of templates pushed
    /// before it. For in-memory galleries built in one go.
    pub fn push(&mut self, subject: u32, v: &[f32]) {
        let id = self.next_id;
        self.next_id += 1;
        self.insert(id, subject as i64, v).expect("adding to an in-memory index");
    }

    /// Adds template `id` of `subject`.
    pub fn insert(&self, id: i64, subject: i64, v: &[f32]) -> Result<(), GalleryError> {
        self.index.add(id, v)?;
        self.owner.write().unwrap_or_else(|e| e.into_inner()).insert(id, subject);
        Ok(())
    }

    /// Adds many templates `(template id, subject id, vector)` at once.
    pub fn insert_batch(&self, items: &[(i64, i64, &[f32])]) -> Result<(), GalleryError> {
        let v: Vec<(i64, &[f32])> = items.iter().map(|(id, _, v)| (*id, *v)).collect();
        self.index.add_batch(&v)?;
        let mut owner = self.owner.write().unwrap_or_else(|e| e.into_inner());
        owner.reserve(items.len());
        for (id, s, _) in items {
            owner.insert(*id, *s);
        }
        Ok(())
    }

    /// Records the subjects of templates already in the index.
    pub(crate) fn set_owners(&self, owners: &[(i64, i64)]) {
        let mut owner = self.owner.write().unwrap_or_else(|e| e.into_inner());
        owner.extend(owners.iter().copied());
    }

    /// Reserves room for `more` templates, in the index and the template-to-subject map.
    pub fn reserve(&self, more: usize) -> Result<(), GalleryError> {
        self.index.reserve(more)?;
        self.owner.write().unwrap_or_else(|e| e.into_inner()).reserve(more);
        Ok(())
    }

    /// Removes template `id`; returns whether it was there.
    pub fn remove(&self, id: i64) -> Result<bool, GalleryError> {
        let was = self.index.remove(id)?;
        self.owner.write().unwrap_or_else(|e| e.into_inner()).remove(&id);
        Ok(was)
    }

    /// The distances from `q` to the templates `ids` (those indexed).
    pub fn distances(&self, q: &[f32], ids: &[i64]) -> Result<Vec<Hit>, GalleryError> {
        self.index.distances(q, ids)
    }

    /// Whether template `id` is indexed.
    pub fn contains(&self, id: i64) -> bool {
        self.owner.read().unwrap_or_else(|e| e.into_inner()).contains_key(&id)
    }

    /// Every indexed template id.
    pub fn ids(&self) -> Vec<i64> {
        self.owner.read().unwrap_or_else(|e| e.into_inner()).keys().copied().collect()
    }

    /// Number of templates.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when no template is indexed.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The index's capabilities.
    pub fn capabilities(&self) -> Capabilities {
        self.index.capabilities()
    }

    /// The index below.
    pub fn index(&self) -> &dyn VectorIndex {
        &*self.index
    }

    /// Bytes held by the index and the template-to-subject map (an estimate).
    pub fn memory_bytes(&self) -> usize {
        self.index.memory_bytes() + self.owner.read().unwrap_or_else(|e| e.into_inner()).capacity() * 24
    }

    /// The `k` nearest subjects to `q`, nearest first: templates are asked from the index in
    /// growing numbers until `k` subjects are found or every template has been seen.
    pub fn search(&self, q: &[f32], k: usize) -> Result<Vec<Candidate>, GalleryError> {
        if k == 0 || self.index.is_empty() {
            return Ok(Vec::new());
        }
        let total = self.index.len();
        let mut n = if k == 1 { 1 } else { (4 * k).max(16) }.min(total);
        loop {
            let hits = self.index.search(q, n)?;
            let mut best: HashMap<i64, f32> = HashMap::with_capacity(hits.len());
            {
                let owner = self.owner.read().unwrap_or_else(|e| e.into_inner());
                for h in &hits {
                    // A template removed between the search and this lookup is skipped.
                    if let Some(&s) = owner.get(&h.id) {
                        let e = best.entry(s).or_insert(f32::INFINITY);
                        *e = e.min(h.distance);
                    }
                }
            }
            if best.len() >= k || hits.len() < n || n >= total {
                return Ok(top_k(best.into_iter().map(|(subject, distance)| Candidate { subject, distance }), k));
            }
            n = (n * 4).min(total);
        }
    }
}

/// The `k` smallest candidates, nearest first (ties by subject id).
pub(crate) fn top_k(items: impl Iterator<Item = Candidate>, k: usize) -> Vec<Candidate> {
    let mut v: Vec<Candidate> = items.collect();
    let by = |a: &Candidate, b: &Candidate| a.distance.total_cmp(&b.distance).then(a.subject.cmp(&b.subject));
    if v.len() > k {
        v.select_nth_unstable_by(k - 1, by);
        v.truncate(k);
    }
    v.sort_by(by);
    v
}

/// The `n` nearest hits, nearest first (ties by id).
pub(crate) fn top_hits(mut v: Vec<Hit>, n: usize) -> Vec<Hit> {
    let by = |a: &Hit, b: &Hit| a.distance.total_cmp(&b.distance).then(a.id.cmp(&b.id));
    if v.len() > n && n > 0 {
        v.select_nth_unstable_by(n - 1, by);
    }
    v.truncate(n);
    v.sort_by(by);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_template_per_subject_decides() {
        let mut idx = SearchIndex::new(Metric::L2, 2);
        idx.push(0, &[0.0, 0.0]);
        idx.push(0, &[10.0, 0.0]);
        idx.push(1, &[3.0, 0.0]);
        idx.push(2, &[0.0, 5.0]);
        let r = idx.search(&[9.0, 0.0], 3).unwrap();
        // Subject 0's nearest template (10,0) is at 1; subject 1 at 6; subject 2 at sqrt(106).
        assert_eq!(r.iter().map(|c| c.subject).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert!((r[0].distance - 1.0).abs() < 1e-6 && (r[1].distance - 6.0).abs() < 1e-6);
        assert_eq!(idx.search(&[9.0, 0.0], 1).unwrap(), vec![Candidate { subject: 0, distance: 1.0 }]);
        assert!(SearchIndex::new(Metric::L2, 2).search(&[0.0, 0.0], 3).unwrap().is_empty());
    }

    #[test]
    fn subjects_with_many_templates_do_not_hide_the_others() {
        // Subject 0 has 100 templates nearer than anyone else: asking for 2 subjects must still
        // reach subject 1 (the search widens until it has seen k subjects).
        let mut idx = SearchIndex::new(Metric::L2, 1);
        for i in 0..100 {
            idx.push(0, &[i as f32 * 0.001]);
        }
        idx.push(1, &[5.0]);
        let r = idx.search(&[0.0], 2).unwrap();
        assert_eq!(r.iter().map(|c| c.subject).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(r[1].distance, 5.0);
        // Removing a template takes it out of the answers.
        assert!(idx.remove(100).unwrap());
        assert_eq!(idx.search(&[0.0], 2).unwrap().len(), 1);
        assert!(!idx.remove(100).unwrap());
    }
}
