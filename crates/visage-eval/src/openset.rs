//! Open-set identification: a gallery with one photo per enrolled person, probes of enrolled
//! people (who should be named) and probes of people never enrolled (who should be rejected).

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use visage::Metric;
use visage_gallery::SearchIndex;

/// The split of a folder-per-person dataset.
#[derive(Debug, Clone)]
pub struct OpenSetSplit {
    /// (person, photo) enrolled: the first photo (by name) of each person with 2 or more.
    pub gallery: Vec<(String, PathBuf)>,
    /// (person, photo) probes of enrolled people: their other photos.
    pub known: Vec<(String, PathBuf)>,
    /// Photos of people with a single photo: never enrolled.
    pub unknown: Vec<PathBuf>,
}

/// Splits a folder-per-person dataset, given as (person, photos) as the caller's folder scan
/// found them: people with 2+ photos are enrolled from their first photo (by name) and probed
/// with the rest; people with one photo are the unknown probes.
pub fn split(people: &[(String, Vec<PathBuf>)]) -> OpenSetSplit {
    let people: BTreeMap<String, Vec<PathBuf>> = people
        .iter()
        .filter(|(_, photos)| !photos.is_empty())
        .map(|(name, photos)| {
            let mut photos = photos.clone();
            photos.sort();
            (name.clone(), photos)
        })
        .collect();
    let mut s = OpenSetSplit { gallery: Vec::new(), known: Vec::new(), unknown: Vec::new() };
    for (name, photos) in people {
        if photos.len() == 1 {
            s.unknown.push(photos[0].clone());
        } else {
            s.gallery.push((name.clone(), photos[0].clone()));
            s.known.extend(photos[1..].iter().map(|p| (name.clone(), p.clone())));
        }
    }
    s
}

/// Results at one threshold.
#[derive(Debug, Clone, Serialize)]
pub struct OpenSetPoint {
    /// The threshold.
    pub threshold: f64,
    /// Known probes named correctly (nearest person right and below the threshold).
    pub detection_identification_rate: f64,
    /// Unknown probes rejected (nearest person at or above the threshold).
    pub unknown_rejection_rate: f64,
    /// Known probes wrongly rejected as unknown.
    pub known_rejected: f64,
    /// Known probes given someone else's name.
    pub known_misidentified: f64,
}

/// The whole evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct OpenSetReport {
    /// People enrolled.
    pub enrolled: usize,
    /// Known probes.
    pub known_probes: usize,
    /// Unknown probes.
    pub unknown_probes: usize,
    /// Closed-set rank-1 accuracy (the nearest person is right, threshold ignored).
    pub rank1: f64,
    /// Closed-set rank-5 accuracy.
    pub rank5: f64,
    /// At the requested threshold.
    pub at_threshold: OpenSetPoint,
    /// A sweep of thresholds around the requested one ([`sweep`]).
    pub sweep: Vec<OpenSetPoint>,
}

/// The thresholds of the report's sweep: `threshold` and steps of a twelfth of it, from 3
/// below to 2 above; in proportion to the threshold, so that it suits every metric and model.
pub fn sweep(threshold: f64) -> Vec<f64> {
    // Rounded to 6 decimals: 0.45, not 0.44999999999999996.
    (-3..=2).map(|k| if k == 0 { threshold } else { (threshold * (1.0 + k as f64 / 12.0) * 1e6).round() / 1e6 }).collect()
}

/// Runs the evaluation on precomputed embeddings.
pub fn evaluate(
    metric: Metric,
    gallery: &[(String, Vec<f32>)],
    known: &[(String, Vec<f32>)],
    unknown: &[Vec<f32>],
    threshold: f64,
) -> OpenSetReport {
    // The embeddings' own dimension (with no embedding at all, nothing is searched).
    let dim = gallery.iter().map(|g| &g.1).chain(known.iter().map(|k| &k.1)).chain(unknown).map(Vec::len).next().unwrap_or(0);
    let mut index = SearchIndex::new(metric, dim);
    for (i, (_, e)) in gallery.iter().enumerate() {
        index.push(i as u32, e);
    }
    let known_results: Vec<(bool, bool, f64)> = known
        .iter()
        .map(|(name, e)| {
            let c = index.search(e, 5).expect("in-memory exact search");
            let top1 = gallery[c[0].subject as usize].0 == *name;
            let top5 = c.iter().any(|m| gallery[m.subject as usize].0 == *name);
            (top1, top5, c[0].distance as f64)
        })
        .collect();
    let unknown_best: Vec<f64> = unknown.iter().map(|e| index.search(e, 1).expect("in-memory exact search")[0].distance as f64).collect();
    let point = |t: f64| {
        let n = known_results.len().max(1) as f64;
        let named = known_results.iter().filter(|r| r.0 && r.2 < t).count() as f64 / n;
        let rejected = known_results.iter().filter(|r| r.2 >= t).count() as f64 / n;
        let wrong = known_results.iter().filter(|r| !r.0 && r.2 < t).count() as f64 / n;
        let unknown_rejected = unknown_best.iter().filter(|&&d| d >= t).count() as f64 / unknown_best.len().max(1) as f64;
        OpenSetPoint {
            threshold: t,
            detection_identification_rate: named,
            unknown_rejection_rate: unknown_rejected,
            known_rejected: rejected,
            known_misidentified: wrong,
        }
    };
    let n = known_results.len().max(1) as f64;
    OpenSetReport {
        enrolled: gallery.len(),
        known_probes: known.len(),
        unknown_probes: unknown.len(),
        rank1: known_results.iter().filter(|r| r.0).count() as f64 / n,
        rank5: known_results.iter().filter(|r| r.1).count() as f64 / n,
        at_threshold: point(threshold),
        sweep: sweep(threshold).into_iter().map(point).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_on_a_tiny_hand_made_case() {
        let g = vec![("a".to_string(), vec![0.0, 0.0]), ("b".to_string(), vec![10.0, 0.0])];
        // a probe of a at 0.3 (named), one of b at 0.8 from b (rejected at 0.6), one of b
        // nearer to a (misidentified at 0.5 from a).
        let known = vec![("a".to_string(), vec![0.3, 0.0]), ("b".to_string(), vec![10.8, 0.0]), ("b".to_string(), vec![0.0, 0.5])];
        let unknown = vec![vec![5.0, 0.0], vec![0.0, 0.55]];
        let r = evaluate(Metric::L2, &g, &known, &unknown, 0.6);
        assert!((r.rank1 - 2.0 / 3.0).abs() < 1e-9);
        let p = &r.at_threshold;
        assert!((p.detection_identification_rate - 1.0 / 3.0).abs() < 1e-9);
        assert!((p.known_rejected - 1.0 / 3.0).abs() < 1e-9);
        assert!((p.known_misidentified - 1.0 / 3.0).abs() < 1e-9);
        // Unknowns: 5.0 away (rejected) and 0.55 from a (accepted at 0.6).
        assert!((p.unknown_rejection_rate - 0.5).abs() < 1e-9);
        // The sweep is around the threshold asked for.
        assert_eq!(r.sweep.iter().map(|p| p.threshold).collect::<Vec<_>>(), [0.45, 0.5, 0.55, 0.6, 0.65, 0.7]);
        assert_eq!(sweep(0.093), [0.06975, 0.0775, 0.08525, 0.093, 0.10075, 0.1085]);
    }
}
