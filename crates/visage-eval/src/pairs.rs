//! Pair lists: LFW's `pairs.txt` and generic labelled pair files.

use std::path::{Path, PathBuf};
use thiserror::Error;

/// A labelled pair of photos.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// First photo.
    pub a: PathBuf,
    /// Second photo.
    pub b: PathBuf,
    /// The same person?
    pub same: bool,
    /// Fold index.
    pub fold: usize,
}

/// A malformed pair file.
#[derive(Debug, Error)]
pub enum PairsError {
    /// The file could not be read.
    #[error("{path}: {source}", path = .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line does not follow the format.
    #[error("{path}:{line}: {message}", path = .path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Too few pairs of one kind for the number of folds.
    #[error("{same} same-person and {different} different-people pairs cannot fill {folds} folds: each fold needs at least one pair of each kind, so at least {folds} of each (or use --folds {max} or fewer)", max = .same.min(.different))]
    TooFewPairs {
        /// Folds asked for.
        folds: usize,
        /// Same-person pairs available.
        same: usize,
        /// Different-people pairs available.
        different: usize,
    },
}

/// Checks that every fold of `0..folds` holds at least one same-person and one
/// different-people pair, so that each fold can be tested and trained on.
pub fn check_folds(pairs: &[Pair], folds: usize) -> Result<(), PairsError> {
    let filled = |same: bool| (0..folds).all(|k| pairs.iter().any(|p| p.same == same && p.fold == k));
    if filled(true) && filled(false) {
        return Ok(());
    }
    let count = |same: bool| pairs.iter().filter(|p| p.same == same).count();
    Err(PairsError::TooFewPairs { folds, same: count(true), different: count(false) })
}

fn read(path: &Path) -> Result<String, PairsError> {
    std::fs::read_to_string(path).map_err(|source| PairsError::Io { path: path.into(), source })
}

/// LFW image path: `<images>/<Name>/<Name>_<NNNN>.jpg`.
pub fn lfw_image(images: &Path, name: &str, n: usize) -> PathBuf {
    images.join(name).join(format!("{name}_{n:04}.jpg"))
}

/// Parses LFW's `pairs.txt` (View 2: a header `folds<TAB>n`, then per fold n matched lines
/// `name i j` and n mismatched lines `nameA i nameB j`) or View 1's `pairsDevTrain.txt` /
/// `pairsDevTest.txt` (a header `n`, one fold).
pub fn parse_lfw(pairs_file: &Path, images: &Path) -> Result<Vec<Pair>, PairsError> {
    let text = read(pairs_file)?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let syntax = |line: usize, message: String| PairsError::Syntax { path: pairs_file.into(), line: line + 1, message };
    let (hl, header) = lines.next().ok_or_else(|| syntax(0, "empty file".into()))?;
    let h: Vec<usize> =
        header.split_whitespace().map(|x| x.parse().map_err(|_| syntax(hl, format!("bad header {header:?}")))).collect::<Result<_, _>>()?;
    let (folds, per) = match h.as_slice() {
        [n] => (1, *n),
        [f, n] => (*f, *n),
        _ => return Err(syntax(hl, format!("bad header {header:?}: expected \"folds<TAB>pairs\" or \"pairs\""))),
    };
    let num = |s: &str, l: usize| s.parse::<usize>().map_err(|_| syntax(l, format!("{s:?} is not an image number")));
    let mut out = Vec::with_capacity(2 * folds * per);
    for fold in 0..folds {
        for k in 0..2 * per {
            let (l, line) = lines.next().ok_or_else(|| {
                syntax(usize::MAX - 1, format!("file ends in fold {fold} (expected {per} matched + {per} mismatched pairs per fold)"))
            })?;
            let f: Vec<&str> = line.split('\t').map(str::trim).collect();
            let pair = match (k < per, f.as_slice()) {
                (true, [name, i, j]) => {
                    Pair { a: lfw_image(images, name, num(i, l)?), b: lfw_image(images, name, num(j, l)?), same: true, fold }
                }
                (false, [n1, i, n2, j]) => {
                    Pair { a: lfw_image(images, n1, num(i, l)?), b: lfw_image(images, n2, num(j, l)?), same: false, fold }
                }
                (true, _) => return Err(syntax(l, format!("expected a matched pair \"name<TAB>i<TAB>j\", found {line:?}"))),
                (false, _) => return Err(syntax(l, format!("expected a mismatched pair \"nameA<TAB>i<TAB>nameB<TAB>j\", found {line:?}"))),
            };
            out.push(pair);
        }
    }
    if let Some((l, line)) = lines.next() {
        return Err(syntax(l, format!("unexpected line after {folds} folds: {line:?}")));
    }
    Ok(out)
}

/// Parses a generic pair list: one pair per line, `pathA<TAB>pathB<TAB>1` (same person) or
/// `...<TAB>0` (different people), paths relative to the list's folder; blank lines and lines
/// starting with `#` are ignored. Pairs are dealt into `folds` folds class by class (the i-th
/// same-person pair goes to fold i mod folds, and likewise for the others), so every fold has
/// the same mix whatever the order of the file.
pub fn parse_generic(list: &Path, folds: usize) -> Result<Vec<Pair>, PairsError> {
    let text = read(list)?;
    let base = list.parent().unwrap_or(Path::new("."));
    let (mut ng, mut ni) = (0usize, 0usize);
    let mut out = Vec::new();
    for (l, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let same = match f.as_slice() {
            [_, _, "1"] => true,
            [_, _, "0"] => false,
            _ => {
                return Err(PairsError::Syntax {
                    path: list.into(),
                    line: l + 1,
                    message: format!("expected pathA<TAB>pathB<TAB>0|1, found {line:?}"),
                })
            }
        };
        let counter = if same { &mut ng } else { &mut ni };
        out.push(Pair { a: base.join(f[0]), b: base.join(f[1]), same, fold: *counter % folds.max(1) });
        *counter += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfw_format_with_folds() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pairs.txt");
        std::fs::write(&p, "2\t1\nA\t1\t2\nB\t1\tC\t3\nD\t2\t4\nE\t1\tF\t1\n").unwrap();
        let v = parse_lfw(&p, Path::new("/img")).unwrap();
        assert_eq!(v.len(), 4);
        assert_eq!(v[0], Pair { a: "/img/A/A_0001.jpg".into(), b: "/img/A/A_0002.jpg".into(), same: true, fold: 0 });
        assert_eq!(v[1].b, PathBuf::from("/img/C/C_0003.jpg"));
        assert!(!v[1].same && v[3].fold == 1);
        std::fs::write(&p, "2\t1\nA\t1\t2\nB\t1\tC\t3\n").unwrap();
        assert!(parse_lfw(&p, Path::new("/img")).unwrap_err().to_string().contains("file ends in fold 1"));
        std::fs::write(&p, "1\t1\nA\t1\nB\t1\tC\t3\n").unwrap();
        assert!(parse_lfw(&p, Path::new("/img")).unwrap_err().to_string().contains(":2:"));
    }

    #[test]
    fn generic_pairs_are_dealt_into_balanced_folds() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("list.tsv");
        let mut s = String::from("# my pairs\n");
        for i in 0..20 {
            s.push_str(&format!("a{i}.jpg\tb{i}.jpg\t1\n"));
        }
        for i in 0..20 {
            s.push_str(&format!("c{i}.jpg\td{i}.jpg\t0\n"));
        }
        std::fs::write(&p, s).unwrap();
        let v = parse_generic(&p, 10).unwrap();
        assert_eq!(v.len(), 40);
        assert_eq!(v[0].a, dir.path().join("a0.jpg"));
        for f in 0..10 {
            assert_eq!(v.iter().filter(|x| x.fold == f && x.same).count(), 2);
            assert_eq!(v.iter().filter(|x| x.fold == f && !x.same).count(), 2);
        }
        std::fs::write(&p, "a.jpg b.jpg 1\n").unwrap();
        assert!(parse_generic(&p, 10).is_err());
    }

    #[test]
    fn folds_need_a_pair_of_each_kind() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("list.tsv");
        let list = |n: usize| (0..n).map(|i| format!("a{i}.jpg\tb{i}.jpg\t{}\n", i % 2)).collect::<String>();
        // 18 pairs: 9 of each kind cannot fill 10 folds; 9 folds are fine.
        std::fs::write(&p, list(18)).unwrap();
        let e = check_folds(&parse_generic(&p, 10).unwrap(), 10).unwrap_err().to_string();
        assert!(e.contains("9 same-person and 9 different-people pairs cannot fill 10 folds") && e.contains("--folds 9"), "{e}");
        assert!(check_folds(&parse_generic(&p, 9).unwrap(), 9).is_ok());
        // 40 pairs in 21 folds: 20 of each kind.
        std::fs::write(&p, list(40)).unwrap();
        assert!(check_folds(&parse_generic(&p, 21).unwrap(), 21).unwrap_err().to_string().contains("--folds 20"));
    }
}
