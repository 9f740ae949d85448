//! People lists that select who is trained on: LFW's `peopleDevTrain.txt` /
//! `peopleDevTest.txt` (View 1: a count line, then `Name<TAB>count` lines), `people.txt`
//! (View 2: the number of folds, then per fold a count line and its people), or a plain list
//! of names, one a line.

use std::io;
use std::path::Path;

/// One listed person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The name (the person's folder).
    pub name: String,
    /// The number of photos the list states, if it states one.
    pub count: Option<usize>,
}

/// A parsed people list: one group (View 1, or a plain list) or one per fold (View 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeopleList {
    /// The groups (folds), in file order.
    pub groups: Vec<Vec<Listed>>,
}

enum Line {
    Header(usize),
    Entry(Listed),
}

fn parse_line(line: &str, no: usize) -> Result<Line, String> {
    let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
    match fields.as_slice() {
        [one] => Ok(match one.parse::<usize>() {
            Ok(n) => Line::Header(n),
            Err(_) => Line::Entry(Listed { name: one.to_string(), count: None }),
        }),
        [name, count] => {
            let count = count.parse().map_err(|_| format!("line {no}: {count:?} is not a photo count"))?;
            Ok(Line::Entry(Listed { name: name.to_string(), count: Some(count) }))
        }
        _ => Err(format!("line {no}: expected \"Name<TAB>count\", got {line:?}")),
    }
}

/// The next `n` entries of `rest`, or why not.
fn take_group(rest: &mut impl Iterator<Item = Line>, n: usize) -> Result<Vec<Listed>, String> {
    let mut g = Vec::with_capacity(n);
    while g.len() < n {
        match rest.next() {
            Some(Line::Entry(e)) => g.push(e),
            Some(Line::Header(h)) => return Err(format!("a count line ({h}) after {} of {n} people", g.len())),
            None => return Err(format!("the list ends after {} of {n} people", g.len())),
        }
    }
    Ok(g)
}

impl PeopleList {
    /// Parses a list. A file that starts with a count must hold exactly that many people
    /// (View 1), or that many folds each starting with its own count (View 2); anything else
    /// is an error, so a truncated file is not silently used.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lines = Vec::new();
        for (i, l) in text.lines().enumerate() {
            if !l.trim().is_empty() {
                lines.push(parse_line(l, i + 1)?);
            }
        }
        let Some(Line::Header(first)) = lines.first() else {
            // A plain list of names (headers would be ambiguous here).
            let mut group = Vec::new();
            for l in lines {
                match l {
                    Line::Entry(e) => group.push(e),
                    Line::Header(n) => return Err(format!("a count line ({n}) inside a list of names")),
                }
            }
            return Ok(PeopleList { groups: vec![group] });
        };
        let first = *first;
        let mut rest = lines.into_iter().skip(1).peekable();
        let groups = if matches!(rest.peek(), Some(Line::Header(_))) {
            let mut groups = Vec::with_capacity(first);
            for _ in 0..first {
                match rest.next() {
                    Some(Line::Header(n)) => groups.push(take_group(&mut rest, n)?),
                    _ => return Err(format!("fold {} of {first} has no count line", groups.len() + 1)),
                }
            }
            groups
        } else {
            vec![take_group(&mut rest, first)?]
        };
        if rest.next().is_some() {
            return Err("lines after the last listed person".to_string());
        }
        Ok(PeopleList { groups })
    }

    /// Reads and parses a list file.
    pub fn read(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)?;
        Self::parse(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display())))
    }

    /// Every listed name, all groups together, in file order.
    pub fn names(&self) -> Vec<String> {
        self.groups.iter().flatten().map(|p| p.name.clone()).collect()
    }

    /// The names of every group except `fold` (View 2's training people for test fold `fold`).
    pub fn names_except(&self, fold: usize) -> Vec<String> {
        self.groups.iter().enumerate().filter(|(i, _)| *i != fold).flat_map(|(_, g)| g.iter().map(|p| p.name.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view1_view2_and_plain_lists() {
        let v1 = PeopleList::parse("3\nA_B\t1\nC_D\t4\nE_F\t2\n").unwrap();
        assert_eq!(v1.groups.len(), 1);
        assert_eq!(v1.names(), ["A_B", "C_D", "E_F"]);
        assert_eq!(v1.groups[0][1], Listed { name: "C_D".into(), count: Some(4) });
        let v2 = PeopleList::parse("2\n1\nA\t3\n2\nB\t1\nC\t2\n").unwrap();
        assert_eq!(v2.groups.len(), 2);
        assert_eq!(v2.names_except(0), ["B", "C"]);
        assert_eq!(v2.names_except(1), ["A"]);
        let plain = PeopleList::parse("Jane Doe\n\nJohn_Smith\t7\n").unwrap();
        assert_eq!(plain.names(), ["Jane Doe", "John_Smith"]);
        assert!(PeopleList::parse("3\nA\t1\nB\t1\n").is_err(), "truncated");
        assert!(PeopleList::parse("1\nA\t1\nB\t1\n").is_err(), "trailing people");
        assert!(PeopleList::parse("2\nA\tmany\n").is_err(), "bad count");
        assert!(PeopleList::parse("2\n1\nA\t1\n").is_err(), "missing fold");
    }
}
