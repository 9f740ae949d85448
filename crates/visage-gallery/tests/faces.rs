//! Single faces of a subject: listed, and deleted one at a time (the index follows, in this
//! process and in another that has the file open).

use visage_core::{Metric, Thresholds};
use visage_gallery::{NewTemplate, OpenOptions};

fn opts() -> OpenOptions {
    OpenOptions::new("test_model", 4).thresholds(Thresholds { l2: 0.5, cosine: 0.1, chi2: 2.5 })
}

fn tpl(e: [f32; 4], photo: &str, b: [i64; 4]) -> NewTemplate {
    NewTemplate { embedding: e.to_vec(), photo_sha256: photo.into(), face_box: b, source: Some("test".into()) }
}

#[test]
fn faces_are_listed_and_deleted_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let g = opts().create(true).metric(Some(Metric::L2)).open(&path).unwrap();
    g.enroll("alice", None, &[tpl([1.0, 0.0, 0.0, 0.0], "p1", [1, 2, 3, 4]), tpl([0.0, 1.0, 0.0, 0.0], "p2", [5, 6, 7, 8])]).unwrap();
    g.enroll("bob", None, &[tpl([0.0, 0.0, 1.0, 0.0], "p3", [1, 1, 9, 9])]).unwrap();
    let faces = g.faces("alice").unwrap();
    assert_eq!(faces.len(), 2);
    assert_eq!((faces[0].photo_sha256.as_str(), faces[0].face_box, faces[0].source.as_deref()), ("p1", [1, 2, 3, 4], Some("test")));
    assert!(faces[0].id < faces[1].id);
    assert!(g.faces("nobody").is_err());
    // Another process's view of the file.
    let other = opts().open(&path).unwrap();
    assert_eq!(other.search(&[0.0, 1.0, 0.0, 0.0], 1).unwrap()[0].name, "alice");

    // Bob's face is not Alice's to delete.
    let bobs = g.faces("bob").unwrap()[0].id;
    assert_eq!(g.forget_face("alice", bobs).unwrap(), None);
    assert!(g.forget_face("nobody", bobs).is_err());
    let out = g.forget_face("alice", faces[1].id).unwrap().unwrap();
    assert_eq!(out.templates, 1);
    assert_eq!(g.faces("alice").unwrap(), vec![faces[0].clone()]);
    assert_eq!(g.forget_face("alice", faces[1].id).unwrap(), None, "deleted once");
    // The deleted face is no longer found, here or in the other process; the rest still is.
    for gal in [&g, &other] {
        let hit = &gal.search(&[0.0, 1.0, 0.0, 0.0], 2).unwrap();
        assert!(hit.iter().all(|m| m.distance > 0.5), "{hit:?}");
        assert_eq!(gal.search(&[1.0, 0.0, 0.0, 0.0], 1).unwrap()[0].name, "alice");
    }
    // The last face goes: the person stays, with none.
    g.forget_face("alice", faces[0].id).unwrap().unwrap();
    let s = g.subjects().unwrap();
    assert_eq!(s.iter().find(|s| s.name == "alice").map(|s| s.templates), Some(0));
    assert_eq!(g.counts().unwrap(), (2, 1));
}
