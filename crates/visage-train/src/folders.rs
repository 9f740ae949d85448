//! A folder-per-person photo collection: `DIR/Person_Name/*.jpg` (LFW's layout, and any
//! user's), optionally restricted to the people of an allow-list.

use std::io;
use std::path::{Path, PathBuf};

/// Photo file extensions that are read (case-insensitive).
pub const PHOTO_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "webp"];

/// One identity: a folder's name and its photos.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The folder's name (LFW: `First_Last`).
    pub name: String,
    /// Its photos, sorted by file name.
    pub photos: Vec<PathBuf>,
}

/// The people of a photo folder, sorted by name: the index of a person in
/// [`people`](FaceFolders::people) is its label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaceFolders {
    /// The folder holding one sub-folder per person.
    pub root: PathBuf,
    /// The people with at least one photo, sorted by name.
    pub people: Vec<Person>,
}

fn is_photo(p: &Path) -> bool {
    p.is_file() && p.extension().and_then(|e| e.to_str()).is_some_and(|e| PHOTO_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

fn hidden(p: &Path) -> bool {
    p.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.'))
}

/// The photos of one person's folder, sorted.
fn photos_in(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut photos: Vec<PathBuf> = std::fs::read_dir(dir)?.flatten().map(|e| e.path()).filter(|p| !hidden(p) && is_photo(p)).collect();
    photos.sort();
    Ok(photos)
}

impl FaceFolders {
    /// Every sub-folder of `root` with at least one photo (hidden entries and other files are
    /// ignored; photos are not searched for deeper down).
    pub fn open(root: impl AsRef<Path>) -> io::Result<Self> {
        let root = root.as_ref();
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)?.flatten().map(|e| e.path()).filter(|p| p.is_dir() && !hidden(p)).collect();
        dirs.sort();
        let mut people = Vec::new();
        for dir in dirs {
            let photos = photos_in(&dir)?;
            if !photos.is_empty() {
                let name = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
                people.push(Person { name, photos });
            }
        }
        Ok(FaceFolders { root: root.to_path_buf(), people })
    }

    /// Only the people named in `names` (an allow-list, e.g. [`crate::PeopleList::names`]),
    /// sorted by name. A listed person without a folder, or whose folder has no photo, is an
    /// error: the list and the data disagree.
    pub fn open_listed<S: AsRef<str>>(root: impl AsRef<Path>, names: &[S]) -> io::Result<Self> {
        let root = root.as_ref();
        let mut names: Vec<&str> = names.iter().map(|s| s.as_ref()).collect();
        names.sort_unstable();
        names.dedup();
        let mut people = Vec::with_capacity(names.len());
        for name in names {
            let dir = root.join(name);
            let photos = photos_in(&dir).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
            if photos.is_empty() {
                return Err(io::Error::new(io::ErrorKind::NotFound, format!("{}: no photo", dir.display())));
            }
            people.push(Person { name: name.to_string(), photos });
        }
        Ok(FaceFolders { root: root.to_path_buf(), people })
    }

    /// The number of photos of each person, in label order.
    pub fn photo_counts(&self) -> Vec<usize> {
        self.people.iter().map(|p| p.photos.len()).collect()
    }

    /// All photos.
    pub fn total_photos(&self) -> usize {
        self.people.iter().map(|p| p.photos.len()).sum()
    }

    /// The label of the person called `name`.
    pub fn label_of(&self, name: &str) -> Option<usize> {
        self.people.binary_search_by(|p| p.name.as_str().cmp(name)).ok()
    }

    /// The photo `photo` of person `label`.
    pub fn photo(&self, label: usize, photo: usize) -> &Path {
        &self.people[label].photos[photo]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }

    #[test]
    fn reads_people_sorted_and_filters_files() {
        let tmp = std::env::temp_dir().join(format!("visage-train-folders-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        touch(&tmp.join("Zed/b.JPG"));
        touch(&tmp.join("Zed/a.png"));
        touch(&tmp.join("Zed/notes.txt"));
        touch(&tmp.join("Zed/.hidden.jpg"));
        touch(&tmp.join("Amy_Adams/x.jpeg"));
        touch(&tmp.join("Empty/readme.md"));
        touch(&tmp.join(".cache/y.jpg"));
        touch(&tmp.join("loose.jpg"));
        let f = FaceFolders::open(&tmp).unwrap();
        let names: Vec<&str> = f.people.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["Amy_Adams", "Zed"]);
        assert_eq!(f.photo_counts(), [1, 2]);
        assert!(f.photo(1, 0).ends_with("Zed/a.png") && f.photo(1, 1).ends_with("Zed/b.JPG"));
        assert_eq!(f.label_of("Zed"), Some(1));
        let listed = FaceFolders::open_listed(&tmp, &["Zed", "Zed"]).unwrap();
        assert_eq!(listed.people.len(), 1);
        assert!(FaceFolders::open_listed(&tmp, &["Nobody"]).is_err());
        assert!(FaceFolders::open_listed(&tmp, &["Empty"]).is_err());
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
