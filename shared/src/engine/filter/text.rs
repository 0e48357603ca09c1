//! String tests beyond `==`: wildcard patterns and case-insensitive comparisons.
//!
//! Case-insensitive tests compare the Unicode lowercase forms (`char::to_lowercase`) of both
//! sides; the filter's side is lowercased once, when the filter is compiled.

/// A compiled wildcard pattern: `*` matches any run of characters (none included), `\*` is a
/// literal star and `\\` a literal backslash. Every other character matches itself.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Glob {
    /// The literal pieces between stars; a pattern without stars has one piece.
    parts: Vec<String>,
}

impl Glob {
    /// Compiles a pattern; the error says what is wrong with it.
    pub(crate) fn parse(pattern: &str) -> Result<Self, String> {
        let (mut parts, mut current) = (Vec::new(), String::new());
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            match c {
                '*' => parts.push(std::mem::take(&mut current)),
                '\\' => match chars.next() {
                    Some(escaped @ ('*' | '\\')) => current.push(escaped),
                    _ => return Err("a backslash must be followed by * or by another backslash".into()),
                },
                c => current.push(c),
            }
        }
        parts.push(current);
        Ok(Self { parts })
    }

    /// The literal text every matching string starts with (empty when the pattern starts with a
    /// star).
    pub(crate) fn literal_prefix(&self) -> &str {
        self.parts.first().map_or("", String::as_str)
    }

    /// Whether `s` matches the pattern as a whole.
    pub(crate) fn matches(&self, s: &str) -> bool {
        let (first, last) = match self.parts.as_slice() {
            [only] => return s == only,
            [first, .., last] => (first.as_str(), last.as_str()),
            [] => return false,
        };
        if s.len() < first.len() + last.len() || !s.starts_with(first) || !s.ends_with(last) {
            return false;
        }
        // The leftmost occurrence of each middle piece leaves the most room for the next ones.
        let mut rest = &s[first.len()..s.len() - last.len()];
        for middle in &self.parts[1..self.parts.len() - 1] {
            match rest.find(middle.as_str()) {
                Some(at) => rest = &rest[at + middle.len()..],
                None => return false,
            }
        }
        true
    }
}

/// The lowercase form a case-insensitive filter value is stored in.
pub(crate) fn fold(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

fn folded(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().flat_map(char::to_lowercase)
}

/// `s` equals `lower` (already folded) ignoring case.
pub(crate) fn equals_folded(s: &str, lower: &str) -> bool {
    if s.is_ascii() && lower.is_ascii() {
        return s.eq_ignore_ascii_case(lower);
    }
    folded(s).eq(lower.chars())
}

/// `s` starts with `lower` (already folded) ignoring case.
pub(crate) fn starts_with_folded(s: &str, lower: &str) -> bool {
    if s.is_ascii() && lower.is_ascii() {
        return s.len() >= lower.len() && s.as_bytes()[..lower.len()].eq_ignore_ascii_case(lower.as_bytes());
    }
    let mut chars = folded(s);
    lower.chars().all(|c| chars.next() == Some(c))
}

/// `s` ends with `lower` (already folded) ignoring case.
pub(crate) fn ends_with_folded(s: &str, lower: &str) -> bool {
    if s.is_ascii() && lower.is_ascii() {
        return s.len() >= lower.len() && s.as_bytes()[s.len() - lower.len()..].eq_ignore_ascii_case(lower.as_bytes());
    }
    let mut chars = s.chars().rev().flat_map(|c| c.to_lowercase().rev());
    lower.chars().rev().all(|c| chars.next() == Some(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_runs_and_escapes() {
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("abc", "abcd", false),
            ("*", "", true),
            ("*", "anything", true),
            ("a*", "a", true),
            ("a*", "ba", false),
            ("*.png", "dir/x.png", true),
            ("*.png", "x.png.txt", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "a-b-b-c", true),
            ("a*b*c", "acb", false),
            ("ab*ba", "aba", false),
            ("ab*ba", "abba", true),
            ("**", "x", true),
            (r"a\*b", "a*b", true),
            (r"a\*b", "axb", false),
            (r"a\\*", r"a\tail", true),
            ("é*ü", "éclairü", true),
        ];
        for (pattern, s, expected) in cases {
            assert_eq!(Glob::parse(pattern).unwrap().matches(s), *expected, "{pattern} ~ {s}");
        }
        assert!(Glob::parse(r"a\b").is_err());
        assert!(Glob::parse("a\\").is_err());
    }

    #[test]
    fn folded_comparisons_ignore_case_in_unicode() {
        type Comparison = fn(&str, &str) -> bool;
        let cases: &[(Comparison, &str, &str, bool)] = &[
            (equals_folded, "Hello", "hello", true),
            (equals_folded, "Hello", "hell", false),
            (equals_folded, "ÄRGER", "ärger", true),
            (starts_with_folded, "EventBridge", "eventb", true),
            (starts_with_folded, "Ev", "eventb", false),
            (starts_with_folded, "ÉCOLE", "éc", true),
            (ends_with_folded, "EventBridge", "bridge", true),
            (ends_with_folded, "ge", "bridge", false),
            (ends_with_folded, "STRASSE-Ö", "-ö", true),
        ];
        for (test, s, lower, expected) in cases {
            assert_eq!(test(s, lower), *expected, "{s} vs {lower}");
        }
        assert_eq!(fold("ÄbC"), "äbc");
    }
}
