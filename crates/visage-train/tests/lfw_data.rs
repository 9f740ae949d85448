//! The folder reader and people lists on the shared LFW copy (skipped when the data is
//! absent, a failure with `VISAGE_REQUIRE_DATA=1`).

use std::collections::BTreeSet;
use std::path::PathBuf;
use visage_train::{FaceFolders, PeopleList, PkSampler, Shortfall};

fn lfw(test: &str) -> Option<PathBuf> {
    let dir = visage_testdata::data_dir(test)?.join("lfw");
    if dir.join("images").is_dir() {
        return Some(dir);
    }
    assert!(!visage_testdata::data_required(), "VISAGE_REQUIRE_DATA is set and {} is missing", dir.display());
    eprintln!("SKIP {test}: {} is absent", dir.display());
    None
}

#[test]
fn view1_training_people() {
    let Some(lfw) = lfw("view1_training_people") else { return };
    let list = PeopleList::read(lfw.join("peopleDevTrain.txt")).unwrap();
    assert_eq!(list.groups.len(), 1);
    let names = list.names();
    assert_eq!(names.len(), 4038);
    let folders = FaceFolders::open_listed(lfw.join("images"), &names).unwrap();
    assert_eq!(folders.people.len(), 4038);
    assert_eq!(folders.total_photos(), 9525);
    assert_eq!(folders.photo_counts().iter().filter(|&&n| n >= 2).count(), 1184);
    // The list's counts are the folders' counts.
    for entry in &list.groups[0] {
        let label = folders.label_of(&entry.name).unwrap();
        assert_eq!(Some(folders.people[label].photos.len()), entry.count, "{}", entry.name);
    }
    // View 1's test people are disjoint from its training people.
    let test: BTreeSet<String> = PeopleList::read(lfw.join("peopleDevTest.txt")).unwrap().names().into_iter().collect();
    assert_eq!(test.len(), 1711);
    assert!(names.iter().all(|n| !test.contains(n)));
    // A P x K sampler over them draws the 1,184 people with two photos or more.
    let s = PkSampler::new(&folders.photo_counts(), 8, 4, Shortfall::Repeat, 1).unwrap();
    assert_eq!(s.eligible().len(), 1184);
}

#[test]
fn view2_folds_and_the_whole_folder() {
    let Some(lfw) = lfw("view2_folds_and_the_whole_folder") else { return };
    let folds = PeopleList::read(lfw.join("people.txt")).unwrap();
    assert_eq!(folds.groups.len(), 10);
    let all: BTreeSet<String> = folds.names().into_iter().collect();
    assert_eq!(all.len(), folds.names().len(), "folds are disjoint by person");
    let train0 = folds.names_except(0);
    assert_eq!(train0.len(), folds.names().len() - folds.groups[0].len());
    let everyone = FaceFolders::open(lfw.join("images")).unwrap();
    assert_eq!(everyone.people.len(), 5749);
    assert_eq!(everyone.total_photos(), 13233);
    assert!(folds.names().iter().all(|n| everyone.label_of(n).is_some()));
}
