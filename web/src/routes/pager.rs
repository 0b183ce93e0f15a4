//! Pages of a newest-first list (Запуски, События): 50 a page, newer/older links that keep the
//! filters, and an old link past the end showing the last page rather than nothing.

pub const PER_PAGE: i64 = 50;

pub struct Pager {
    pub page: i64,
    pub pages: i64,
    pub total: i64,
    pub newer: Option<String>,
    pub older: Option<String>,
    /// The label key of the total ("Всего запусков") and the id of the page line.
    pub total_key: &'static str,
    pub id: &'static str,
}

fn pages(total: i64) -> i64 {
    ((total + PER_PAGE - 1) / PER_PAGE).max(1)
}

impl Pager {
    /// `url` gives the list's address for a page with the same filters.
    pub fn new(
        page: i64,
        total: i64,
        url: impl Fn(i64) -> String,
        total_key: &'static str,
        id: &'static str,
    ) -> Pager {
        let pages = pages(total);
        Pager {
            page,
            pages,
            total,
            newer: (page > 1).then(|| url(page - 1)),
            older: (page < pages).then(|| url(page + 1)),
            total_key,
            id,
        }
    }
}

/// Loads `page` with `list` (a page number → its items and the total); past the last page
/// loads the last one. Answers the items, the total and the page shown.
pub fn load<T, E>(
    page: i64,
    mut list: impl FnMut(i64) -> Result<(Vec<T>, i64), E>,
) -> Result<(Vec<T>, i64, i64), E> {
    let (items, total) = list(page)?;
    let last = pages(total);
    if items.is_empty() && page > last {
        let (items, total) = list(last)?;
        return Ok((items, total, last));
    }
    Ok((items, total, page))
}
