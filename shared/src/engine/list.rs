//! Listing: the paging, name filters and sort orders every list operation shares.

use crate::error::{Error, Result};
use crate::model::validate::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};
use crate::ports::{Query, Store};

/// What a sort can order by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// Creation time.
    Created,
    /// Last update time.
    Updated,
    /// Name.
    Name,
}

/// A list request, common to every listable resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    /// Items to skip.
    pub offset: usize,
    /// Items to return at most.
    pub limit: usize,
    /// Exact name.
    pub name: Option<String>,
    /// Name substring.
    pub fuzzy_name: Option<String>,
    /// Order.
    pub sort: SortKey,
    /// Descending?
    pub descending: bool,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            offset: 0,
            limit: DEFAULT_PAGE_LIMIT,
            name: None,
            fuzzy_name: None,
            sort: SortKey::Created,
            descending: false,
        }
    }
}

impl ListQuery {
    /// Parses the common query parameters; each error names its parameter.
    pub fn parse(
        offset: Option<&str>,
        limit: Option<&str>,
        sort: Option<&str>,
        name: Option<&str>,
        fuzzy_name: Option<&str>,
    ) -> Result<Self> {
        let mut q = ListQuery::default();
        if let Some(o) = offset {
            q.offset = o.parse().map_err(|_| Error::invalid("offset", "must be an integer of at least 0"))?;
        }
        if let Some(l) = limit {
            q.limit = l
                .parse()
                .ok()
                .filter(|l| (1..=MAX_PAGE_LIMIT).contains(l))
                .ok_or_else(|| Error::invalid("limit", format!("must be an integer from 1 to {MAX_PAGE_LIMIT}")))?;
        }
        if let Some(s) = sort.filter(|s| !s.is_empty()) {
            let (key, dir) = s.split_once(':').unwrap_or((s, "asc"));
            q.sort = match key {
                "created_time" => SortKey::Created,
                "updated_time" => SortKey::Updated,
                "name" => SortKey::Name,
                _ => {
                    return Err(Error::invalid(
                        "sort",
                        "must be created_time, updated_time or name, optionally with :asc or :desc",
                    ));
                }
            };
            q.descending = match dir.to_ascii_lowercase().as_str() {
                "asc" => false,
                "desc" => true,
                _ => return Err(Error::invalid("sort", "direction must be asc or desc")),
            };
        }
        q.name = name.filter(|n| !n.is_empty()).map(str::to_owned);
        q.fuzzy_name = fuzzy_name.filter(|n| !n.is_empty()).map(str::to_owned);
        Ok(q)
    }
}

/// Something that can be listed.
pub trait Listable {
    /// Its name.
    fn name(&self) -> &str;
    /// Its creation time (ms).
    fn created_ms(&self) -> i64;
    /// Its last update time (ms).
    fn updated_ms(&self) -> i64;
}

/// A page of a list, with the total before paging.
#[derive(Clone, Debug, PartialEq)]
pub struct Listing<T> {
    /// How many matched.
    pub total: usize,
    /// This page.
    pub items: Vec<T>,
}

/// Filters by name, sorts and pages `items`.
pub fn page<T: Listable>(mut items: Vec<T>, q: &ListQuery) -> Listing<T> {
    if let Some(name) = &q.name {
        items.retain(|i| i.name() == name);
    }
    if let Some(part) = &q.fuzzy_name {
        let part = part.to_lowercase();
        items.retain(|i| i.name().to_lowercase().contains(&part));
    }
    items.sort_by(|a, b| {
        let order = match q.sort {
            SortKey::Created => a.created_ms().cmp(&b.created_ms()),
            SortKey::Updated => a.updated_ms().cmp(&b.updated_ms()),
            SortKey::Name => a.name().cmp(b.name()),
        }
        .then_with(|| a.name().cmp(b.name()));
        if q.descending { order.reverse() } else { order }
    });
    let total = items.len();
    let items = items.into_iter().skip(q.offset).take(q.limit).collect();
    Listing { total, items }
}

/// Reads every item of a partition whose sort key starts with `prefix`.
pub async fn load_all<T: serde::de::DeserializeOwned>(store: &dyn Store, pk: &str, prefix: &str) -> Result<Vec<T>> {
    let mut out = Vec::new();
    let mut resume = None;
    loop {
        let query = Query { resume, ..Query::prefix(pk, prefix, 1000) };
        let page = store.query(query).await?;
        for item in &page.items {
            out.push(item.decode()?);
        }
        match page.resume {
            Some(r) => resume = Some(r),
            None => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct N(&'static str, i64);
    impl Listable for N {
        fn name(&self) -> &str {
            self.0
        }
        fn created_ms(&self) -> i64 {
            self.1
        }
        fn updated_ms(&self) -> i64 {
            -self.1
        }
    }

    fn names(l: &Listing<N>) -> Vec<&str> {
        l.items.iter().map(|n| n.0).collect()
    }

    #[test]
    fn parameters_are_validated_by_name() {
        assert_eq!(ListQuery::parse(None, None, None, None, None).unwrap(), ListQuery::default());
        for (o, l, s, field) in [
            (Some("-1"), None, None, "offset"),
            (None, Some("0"), None, "limit"),
            (None, Some("1001"), None, "limit"),
            (None, Some("x"), None, "limit"),
            (None, None, Some("size:asc"), "sort"),
            (None, None, Some("name:up"), "sort"),
        ] {
            let e = ListQuery::parse(o, l, s, None, None).unwrap_err().to_string();
            assert!(e.starts_with(&format!("{field}: ")), "{e}");
        }
        let q = ListQuery::parse(Some("5"), Some("1000"), Some("name:DESC"), Some("a"), Some("")).unwrap();
        assert_eq!(
            (q.offset, q.limit, q.sort, q.descending, q.name.as_deref(), q.fuzzy_name),
            (5, 1000, SortKey::Name, true, Some("a"), None)
        );
    }

    #[test]
    fn paging_filters_sorts_and_counts() {
        let items = || vec![N("beta", 2), N("alpha", 3), N("gamma", 1), N("alphabet", 4)];
        let all = page(items(), &ListQuery::default());
        assert_eq!(names(&all), vec!["gamma", "beta", "alpha", "alphabet"]);
        let q = ListQuery { fuzzy_name: Some("ALPHA".into()), ..ListQuery::default() };
        assert_eq!(names(&page(items(), &q)), vec!["alpha", "alphabet"]);
        let q = ListQuery { name: Some("alpha".into()), ..ListQuery::default() };
        assert_eq!(page(items(), &q).total, 1);
        let q = ListQuery { offset: 1, limit: 2, sort: SortKey::Name, descending: true, ..ListQuery::default() };
        let p = page(items(), &q);
        assert_eq!((p.total, names(&p)), (4, vec!["beta", "alphabet"]));
    }
}
