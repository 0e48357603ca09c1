//! The lookup structures of a route table: which routes a string or number can pass, found
//! without evaluating the others. Each answers with a superset of the routes whose requirement
//! holds (the route's filter is evaluated afterwards); a route may come back more than once when
//! it is filed under several values that one field meets ([`PrefixIndex::repeats`],
//! [`IntervalIndex::repeats`]).

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::engine::filter::Interval;

/// Routes filed under string prefixes: a string finds the routes of every filed prefix it starts
/// with, by one hash lookup per distinct prefix length.
#[derive(Debug, Default)]
pub(super) struct PrefixIndex {
    by_prefix: HashMap<String, Vec<usize>>,
    /// The distinct lengths (bytes) of the filed prefixes, shortest first.
    lengths: Vec<usize>,
    /// Whether some route is filed under several prefixes.
    pub(super) repeats: bool,
}

impl PrefixIndex {
    /// Files `route` under each of `prefixes`.
    pub(super) fn insert(&mut self, route: usize, prefixes: &[&str]) {
        self.repeats |= prefixes.len() > 1;
        for prefix in prefixes {
            let filed = self.by_prefix.entry((*prefix).to_owned()).or_default();
            if filed.last() != Some(&route) {
                filed.push(route);
            }
            if let Err(at) = self.lengths.binary_search(&prefix.len()) {
                self.lengths.insert(at, prefix.len());
            }
        }
    }

    /// Adds the routes filed under a prefix of `s` to `out`.
    pub(super) fn find(&self, s: &str, out: &mut Vec<usize>) {
        for &len in &self.lengths {
            // `get` is `None` past the end and inside a character, where no prefix can end.
            let Some(head) = s.get(..len) else {
                if len > s.len() {
                    break;
                }
                continue;
            };
            if let Some(routes) = self.by_prefix.get(head) {
                out.extend_from_slice(routes);
            }
        }
    }
}

/// Routes filed under numeric intervals, in a centred interval tree: a number finds the intervals
/// holding it, exactly (ends included or not), in O(log n + matches).
#[derive(Debug, Default)]
pub(super) struct IntervalIndex {
    pending: Vec<(Interval, usize)>,
    nodes: Vec<Centre>,
    /// Whether some route is filed under several intervals.
    pub(super) repeats: bool,
}

/// A node of the tree: the intervals whose closure holds `at`, and the subtrees of those wholly
/// below and wholly above it.
#[derive(Debug)]
struct Centre {
    at: f64,
    /// The node's intervals, lowest low end first.
    by_low: Vec<(Interval, usize)>,
    /// The node's intervals, highest high end first.
    by_high: Vec<(Interval, usize)>,
    below: Option<usize>,
    above: Option<usize>,
}

impl IntervalIndex {
    /// Files `route` under each of `intervals` (low ≤ high, neither NaN); [`Self::build`] must
    /// follow the last insert.
    pub(super) fn insert(&mut self, route: usize, intervals: &[Interval]) {
        self.repeats |= intervals.len() > 1;
        self.pending.extend(intervals.iter().map(|&interval| (interval, route)));
    }

    /// Builds the tree of the inserted intervals.
    pub(super) fn build(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        self.nodes.clear();
        Self::subtree(pending, &mut self.nodes);
    }

    /// Builds the subtree of `intervals` into `nodes`; returns its root.
    fn subtree(intervals: Vec<(Interval, usize)>, nodes: &mut Vec<Centre>) -> Option<usize> {
        if intervals.is_empty() {
            return None;
        }
        // The median end: an interval ends there, so the node holds at least one interval and
        // both subtrees are smaller than this one.
        let mut ends: Vec<f64> = intervals.iter().flat_map(|(i, _)| [i.low, i.high]).collect();
        let middle = ends.len() / 2;
        let at = *ends.select_nth_unstable_by(middle, f64::total_cmp).1;
        let (mut below, mut above, mut here) = (Vec::new(), Vec::new(), Vec::new());
        for entry in intervals {
            match (entry.0.high < at, entry.0.low > at) {
                (true, _) => below.push(entry),
                (_, true) => above.push(entry),
                _ => here.push(entry),
            }
        }
        let mut by_low = here.clone();
        by_low.sort_by(|a, b| a.0.low.total_cmp(&b.0.low));
        here.sort_by(|a, b| b.0.high.total_cmp(&a.0.high));
        let index = nodes.len();
        nodes.push(Centre { at, by_low, by_high: here, below: None, above: None });
        nodes[index].below = Self::subtree(below, nodes);
        nodes[index].above = Self::subtree(above, nodes);
        Some(index)
    }

    /// Adds the routes filed under an interval holding `x` to `out`.
    pub(super) fn find(&self, x: f64, out: &mut Vec<usize>) {
        let mut next = if self.nodes.is_empty() { None } else { Some(0) };
        while let Some(i) = next {
            let node = &self.nodes[i];
            // Every interval of the node spans `at`, so below `at` it may hold `x` only when it
            // starts at or before `x`, and above `at` only when it ends at or after `x`; the ends
            // themselves are then checked.
            let holding = |&(interval, route): &(Interval, usize)| interval.contains(x).then_some(route);
            next = match x.partial_cmp(&node.at) {
                Some(Ordering::Less) => {
                    out.extend(node.by_low.iter().take_while(|(i, _)| i.low <= x).filter_map(holding));
                    node.below
                }
                Some(Ordering::Greater) => {
                    out.extend(node.by_high.iter().take_while(|(i, _)| i.high >= x).filter_map(holding));
                    node.above
                }
                Some(Ordering::Equal) | None => {
                    out.extend(node.by_low.iter().filter_map(holding));
                    None
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut v: Vec<usize>) -> Vec<usize> {
        v.sort_unstable();
        v
    }

    #[test]
    fn prefixes_find_every_filed_prefix_of_a_string() {
        let mut index = PrefixIndex::default();
        index.insert(0, &["tenant-1/"]);
        index.insert(1, &["tenant-1/orders/", "x"]);
        index.insert(2, &[""]);
        index.insert(3, &["é"]);
        let find = |s: &str| {
            let mut out = Vec::new();
            index.find(s, &mut out);
            sorted(out)
        };
        assert_eq!(find("tenant-1/orders/7"), vec![0, 1, 2]);
        assert_eq!(find("tenant-1/users/7"), vec![0, 2]);
        assert_eq!(find("tenant-10/"), vec![2]);
        assert_eq!(find("xyz"), vec![1, 2]);
        assert_eq!(find("éa"), vec![2, 3]);
        assert_eq!(find("\u{00e8}"), vec![2], "a prefix does not match inside a character");
        assert!(index.repeats);
    }

    /// GIVEN random intervals with ends included or not, WHEN numbers are looked up, THEN the
    /// tree finds exactly the intervals holding them (compared with a scan).
    #[test]
    fn intervals_find_exactly_those_holding_a_number() {
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            u32::try_from(seed >> 40).unwrap() % 100
        };
        let mut intervals: Vec<Interval> = (0..300)
            .map(|_| {
                let (a, b) = (f64::from(next()), f64::from(next()));
                Interval { low: a.min(b), low_inside: next() % 2 == 0, high: a.max(b), high_inside: next() % 2 == 0 }
            })
            .collect();
        let closed = |low, high| Interval { low, low_inside: true, high, high_inside: true };
        intervals.extend([
            closed(f64::NEG_INFINITY, 3.0),
            closed(95.0, f64::INFINITY),
            closed(50.0, 50.0),
            closed(f64::NEG_INFINITY, f64::INFINITY),
        ]);
        let mut index = IntervalIndex::default();
        for (route, interval) in intervals.iter().enumerate() {
            index.insert(route, std::slice::from_ref(interval));
        }
        index.build();
        for x in (-20..=220).map(|x| f64::from(x) / 2.0).chain([49.99, 1e300, -1e300]) {
            let mut found = Vec::new();
            index.find(x, &mut found);
            let expected: Vec<usize> = (0..intervals.len()).filter(|&r| intervals[r].contains(x)).collect();
            assert_eq!(sorted(found), expected, "x = {x}");
        }
        assert!(!index.repeats);
    }
}
