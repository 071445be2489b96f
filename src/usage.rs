//! `ragworker usage`: a month's usage as a person reads it, from `monthly_usage_summary`
//! (the sums `usage_metrics` keeps of `usage_logs`), for one user, one organisation or the
//! whole deployment, by action, provider and model.

use std::fmt;

use chrono::{Datelike, NaiveDate, Utc};
use uuid::Uuid;

/// Whose usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    User(Uuid),
    Org(Uuid),
    All,
}

/// A calendar month (UTC), written `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month(NaiveDate);

impl Month {
    pub fn current() -> Self {
        let today = Utc::now().date_naive();
        Month(today.with_day(1).unwrap_or(today))
    }

    pub fn first_day(self) -> NaiveDate {
        self.0
    }
}

impl std::str::FromStr for Month {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a month: write it as YYYY-MM, e.g. 2026-12");
        let (year, month) = s.split_once('-').ok_or_else(bad)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(bad());
        }
        let year: i32 = year.parse().map_err(|_| bad())?;
        let month: u32 = month.parse().map_err(|_| bad())?;
        NaiveDate::from_ymd_opt(year, month, 1)
            .map(Month)
            .ok_or_else(bad)
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m"))
    }
}

/// One action, provider and model's month.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Line {
    pub action: String,
    pub provider: String,
    pub model: String,
    pub tokens: i64,
    pub unconfirmed_tokens: i64,
    pub requests: i64,
    pub files: i64,
    /// USD, exact (numeric as text).
    pub cost_usd: String,
}

/// The month's lines for `scope`, ordered by action, provider and model.
pub async fn month(
    pool: &sqlx::PgPool,
    scope: Scope,
    month: Month,
) -> Result<Vec<Line>, sqlx::Error> {
    // Three fixed statements rather than one with optional filters: each is planned with
    // its own index (user's month, organisation's month).
    let (filter, id) = match scope {
        Scope::User(id) => ("user_id = $2", Some(id)),
        Scope::Org(id) => ("org_id = $2", Some(id)),
        Scope::All => ("$2::uuid is null", None),
    };
    let sql = format!(
        "select action, provider, model,
                sum(tokens)::bigint as tokens,
                sum(unconfirmed_tokens)::bigint as unconfirmed_tokens,
                sum(requests)::bigint as requests,
                sum(files)::bigint as files,
                sum(cost_usd)::text as cost_usd
         from monthly_usage_summary
         where month = $1 and {filter}
         group by action, provider, model
         order by action, provider, model"
    );
    let mut tx = pool.begin().await?;
    let lines = sqlx::query_as::<_, Line>(&sql)
        .persistent(false)
        .bind(month.first_day())
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(lines)
}

/// The report `ragworker usage` prints.
pub fn render(scope: Scope, month: Month, lines: &[Line]) -> String {
    let whose = match scope {
        Scope::User(id) => format!("user {id}"),
        Scope::Org(id) => format!("organisation {id}"),
        Scope::All => "all users".to_string(),
    };
    if lines.is_empty() {
        return format!("no usage recorded for {whose} in {month} (UTC)\n");
    }
    let header = [
        "action",
        "provider",
        "model",
        "tokens",
        "requests",
        "files",
        "cost (USD)",
    ];
    let mut rows: Vec<[String; 7]> = lines
        .iter()
        .map(|l| {
            [
                l.action.clone(),
                l.provider.clone(),
                l.model.clone(),
                thousands(l.tokens),
                thousands(l.requests),
                thousands(l.files),
                dollars(&l.cost_usd),
            ]
        })
        .collect();
    let sum = |f: fn(&Line) -> i64| lines.iter().map(f).sum::<i64>();
    let cost: i128 = lines
        .iter()
        .filter_map(|l| ten_billionths(&l.cost_usd))
        .sum();
    rows.push([
        "total".into(),
        String::new(),
        String::new(),
        thousands(sum(|l| l.tokens)),
        thousands(sum(|l| l.requests)),
        thousands(sum(|l| l.files)),
        dollars(&format!(
            "{}.{:010}",
            cost / 10_000_000_000,
            cost % 10_000_000_000
        )),
    ]);
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = format!("usage for {whose} in {month} (UTC)\n");
    let mut line = |cells: [&str; 7]| {
        let text: Vec<String> = cells
            .iter()
            .zip(widths)
            .enumerate()
            // Text columns left-aligned, numbers right-aligned.
            .map(|(i, (c, w))| {
                if i < 3 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        out.push_str(text.join("  ").trim_end());
        out.push('\n');
    };
    line(header);
    for row in &rows {
        line(row.each_ref().map(String::as_str));
    }
    let unconfirmed = sum(|l| l.unconfirmed_tokens);
    if unconfirmed > 0 {
        out.push_str(&format!(
            "{} of the tokens are ragworker's own count: requests a stopped worker left unanswered, which the provider may have billed\n",
            thousands(unconfirmed)
        ));
    }
    out
}

/// 1234567 → "1,234,567".
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// A USD amount to the millionth of a dollar (prices are per million tokens), rounded half
/// up from the exact decimal.
fn dollars(amount: &str) -> String {
    match ten_billionths(amount) {
        Some(units) => {
            let millionths = (units + 5_000) / 10_000;
            format!("{}.{:06}", millionths / 1_000_000, millionths % 1_000_000)
        }
        None => amount.to_string(),
    }
}

/// A non-negative decimal such as Postgres prints numeric(20, 10) ("0.0240000000"), in
/// units of 1e-10: sums stay exact where floats would not.
fn ten_billionths(amount: &str) -> Option<i128> {
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    if fraction.len() > 10 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i128 = whole.parse().ok().filter(|w| *w >= 0)?;
    let fraction: i128 = format!("{fraction:0<10}").parse().ok()?;
    Some(whole * 10_000_000_000 + fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_written_yyyy_mm() {
        let m: Month = "2026-02".parse().unwrap();
        assert_eq!(m.first_day(), NaiveDate::from_ymd_opt(2026, 2, 1).unwrap());
        assert_eq!(m.to_string(), "2026-02");
        for bad in [
            "2026-13", "2026-2", "26-02", "2026/02", "february", "2026-00",
        ] {
            let err = bad.parse::<Month>().unwrap_err();
            assert!(err.contains("YYYY-MM"), "{bad}: {err}");
        }
    }

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(-12345), "-12,345");
    }

    #[test]
    fn costs_are_summed_exactly_and_rounded_to_the_millionth() {
        assert_eq!(ten_billionths("0.0000000400"), Some(400));
        assert_eq!(ten_billionths("12.5"), Some(125_000_000_000));
        assert_eq!(ten_billionths("-1.0"), None);
        assert_eq!(dollars("0.0000004999"), "0.000000");
        assert_eq!(dollars("0.0000005000"), "0.000001");
        assert_eq!(dollars("1234.5678901234"), "1234.567890");
    }

    #[test]
    fn the_report_has_a_line_per_model_and_action_and_a_total() {
        let line = |action: &str, tokens, cost: &str| Line {
            action: action.into(),
            provider: "openai".into(),
            model: "text-embedding-3-small".into(),
            tokens,
            unconfirmed_tokens: 0,
            requests: 3,
            files: 2,
            cost_usd: cost.into(),
        };
        let month: Month = "2026-11".parse().unwrap();
        let text = render(
            Scope::All,
            month,
            &[
                line("embedding", 1_200_000, "0.0240000000"),
                line("search", 50, "0.0000010000"),
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "usage for all users in 2026-11 (UTC)");
        assert!(lines[2].starts_with("embedding") && lines[2].contains("1,200,000"));
        assert!(lines[2].ends_with("0.024000"), "{}", lines[2]);
        assert!(lines[4].starts_with("total") && lines[4].contains("1,200,050"));
        assert!(lines[4].ends_with("0.024001"), "{}", lines[4]);
        assert_eq!(
            render(Scope::All, month, &[]),
            "no usage recorded for all users in 2026-11 (UTC)\n"
        );
    }
}
