//! The P x K sampler: batch shape, identity balance, determinism, who can be an anchor.

use std::collections::{BTreeMap, BTreeSet};
use visage_train::{PkSampler, Shortfall};

/// 60 people: one with 530 photos (LFW's George_W_Bush), singletons and empty folders that
/// must never be drawn, and 2..=9 photos for the rest.
fn counts() -> Vec<usize> {
    let mut c = vec![530, 1, 0, 1];
    c.extend((0..56).map(|i| 2 + i % 8));
    c
}

fn check_batch(b: &visage_train::PkBatch, counts: &[usize], p: usize, k: usize) {
    assert_eq!(b.rows.len(), p * k);
    let people: Vec<usize> = b.rows.chunks(k).map(|c| c[0].0).collect();
    assert_eq!(people.iter().collect::<BTreeSet<_>>().len(), p, "P distinct people: {people:?}");
    for chunk in b.rows.chunks(k) {
        let person = chunk[0].0;
        assert!(chunk.iter().all(|r| r.0 == person), "rows grouped by person");
        assert!(counts[person] >= 2, "person {person} has {} photos: no positive", counts[person]);
        assert!(chunk.iter().all(|r| r.1 < counts[person]));
        let distinct = chunk.iter().map(|r| r.1).collect::<BTreeSet<_>>().len();
        assert_eq!(distinct, counts[person].min(k), "every photo once before any repeat");
    }
    assert_eq!(b.labels(), b.rows.iter().map(|r| r.0).collect::<Vec<_>>());
}

#[test]
fn batches_are_p_people_times_k_photos_and_never_singletons() {
    let c = counts();
    let (p, k) = (6, 4);
    let mut s = PkSampler::new(&c, p, k, Shortfall::Repeat, 7).unwrap();
    assert_eq!(s.eligible().len(), 57, "everyone with 2+ photos");
    assert!(!s.eligible().contains(&1) && !s.eligible().contains(&2) && !s.eligible().contains(&3));
    for _ in 0..500 {
        check_batch(&s.next_batch(), &c, p, k);
    }
    let mut skip = PkSampler::new(&c, p, k, Shortfall::Skip, 7).unwrap();
    assert!(skip.eligible().iter().all(|&i| c[i] >= k));
    assert_eq!(skip.eligible().len(), 1 + (0..56).filter(|i| 2 + i % 8 >= k).count());
    for _ in 0..200 {
        let b = skip.next_batch();
        check_batch(&b, &c, p, k);
        assert!(b.rows.iter().all(|r| c[r.0] >= k));
    }
}

#[test]
fn people_are_drawn_uniformly_whatever_their_photo_count() {
    let c = counts();
    let (p, k, batches) = (8, 3, 20_000);
    let mut s = PkSampler::new(&c, p, k, Shortfall::Repeat, 11).unwrap();
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    for _ in 0..batches {
        for chunk in s.next_batch().rows.chunks(k) {
            *seen.entry(chunk[0].0).or_default() += 1;
        }
    }
    let e = s.eligible().len() as f64;
    let expected = batches as f64 * p as f64 / e;
    // Each count is binomial(batches, p/e): sd = sqrt(n q (1 - q)).
    let sd = (expected * (1.0 - p as f64 / e)).sqrt();
    assert_eq!(seen.len(), s.eligible().len(), "everyone eligible is drawn");
    for (&person, &n) in &seen {
        assert!((n as f64 - expected).abs() < 5.0 * sd, "person {person} ({} photos): {n} draws, expected {expected:.0}", c[person]);
    }
    // The 530-photo person is one identity among 57, not half the data.
    assert!((seen[&0] as f64) < expected + 5.0 * sd);
}

#[test]
fn a_seed_repeats_exactly() {
    let c = counts();
    let run = |seed| PkSampler::new(&c, 5, 4, Shortfall::Repeat, seed).unwrap().take(100).collect::<Vec<_>>();
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

#[test]
fn impossible_configurations_are_refused() {
    let c = counts();
    assert!(PkSampler::new(&c, 1, 4, Shortfall::Repeat, 0).is_err(), "no negative");
    assert!(PkSampler::new(&c, 4, 1, Shortfall::Repeat, 0).is_err(), "no positive");
    assert!(PkSampler::new(&[1, 1, 5], 2, 2, Shortfall::Repeat, 0).is_err(), "one person with 2+ photos");
    assert!(PkSampler::new(&[3, 3, 5], 2, 4, Shortfall::Skip, 0).is_err(), "one person with K photos");
    let s = PkSampler::new(&[3, 3, 5], 2, 4, Shortfall::Repeat, 0).unwrap();
    assert_eq!(s.batches_per_epoch(), 2, "11 photos in batches of 8");
}
