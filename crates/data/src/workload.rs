//! Weighted analytic query templates over the generated `events` (and `customers`) tables.
//!
//! The SQL is Postgres-like and accepted by DataFusion: `DATE '2025-03-04'` and
//! `TIMESTAMP '2025-03-04 10:00:00'` literals (UTC), half-open ranges, unquoted lowercase
//! table names. Literals are drawn from the same domains and Zipf skews as the data.

use chrono::{Datelike, Days, NaiveDate, TimeDelta};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::customers::SEGMENTS;
use crate::events::{
    COUNTRIES, CUSTOMER_ZIPF_EXPONENT, DAYS, START_DATE, USER_ZIPF_EXPONENT, num_customers,
    num_users,
};
use crate::sampling::{Weighted, Zipf};

/// The query templates of the events workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Template {
    /// Event counts and revenue by event_type over a date range of days to a month.
    DailyCountsByType,
    /// Event and user counts by event_type within a few hours of event_ts.
    HourlyWindow,
    /// country IN (2-3 codes) over a date range, grouped by device.
    CountryDevice,
    /// Purchase revenue by country over one calendar month.
    PurchasesByCountry,
    /// The ten largest amounts of one day.
    TopAmountsDay,
    /// One (Zipf-drawn) customer's daily activity within a date range.
    CustomerDaily,
    /// One (Zipf-drawn) customer's latest events.
    CustomerRecent,
    /// One (Zipf-drawn) user's sessions.
    UserSessions,
    /// events joined to customers, filtered by segment and date range, grouped by segment.
    SegmentJoin,
    /// amount range combined with a duration_ms range.
    AmountDuration,
    /// Server errors (5xx) by day over up to a week.
    ServerErrors,
    /// A full-scan aggregate over the whole table (rare).
    FullScan,
}

impl Template {
    /// The template's stable name, recorded with each generated query.
    pub fn name(self) -> &'static str {
        match self {
            Self::DailyCountsByType => "daily_counts_by_type",
            Self::HourlyWindow => "hourly_window",
            Self::CountryDevice => "country_device",
            Self::PurchasesByCountry => "purchases_by_country",
            Self::TopAmountsDay => "top_amounts_day",
            Self::CustomerDaily => "customer_daily",
            Self::CustomerRecent => "customer_recent",
            Self::UserSessions => "user_sessions",
            Self::SegmentJoin => "segment_join",
            Self::AmountDuration => "amount_duration",
            Self::ServerErrors => "server_errors",
            Self::FullScan => "full_scan",
        }
    }
}

/// Templates with their relative weights (percent): time ranges ~50%, customer equality ~20%.
pub const TEMPLATES: &[(Template, f64)] = &[
    (Template::DailyCountsByType, 16.0),
    (Template::HourlyWindow, 14.0),
    (Template::CountryDevice, 8.0),
    (Template::PurchasesByCountry, 7.0),
    (Template::TopAmountsDay, 5.0),
    (Template::CustomerDaily, 14.0),
    (Template::CustomerRecent, 6.0),
    (Template::UserSessions, 10.0),
    (Template::SegmentJoin, 8.0),
    (Template::AmountDuration, 6.0),
    (Template::ServerErrors, 4.0),
    (Template::FullScan, 2.0),
];

/// Names of all workload templates, in [`TEMPLATES`] order.
pub fn template_names() -> Vec<&'static str> {
    TEMPLATES.iter().map(|(t, _)| t.name()).collect()
}

/// Fraction of date windows placed in the most recent [`RECENT_DAYS`] (dashboards look at recent data).
const RECENT_FRACTION: f64 = 0.6;
/// Width of the "recent" part of the year, in days.
const RECENT_DAYS: i32 = 90;

/// The tables and value domains the queries refer to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsDomain {
    /// Rows in the events table.
    pub num_rows: u64,
    /// Customers (customer_id in `1..=num_customers`).
    pub num_customers: u64,
    /// Users (user_id in `1..=num_users`).
    pub num_users: u64,
    /// Name of the events table.
    pub table: String,
    /// Name of the customers table.
    pub customers_table: String,
}

impl EventsDomain {
    /// The domain of an events table of `num_rows` generated rows, with default table names.
    pub fn for_rows(num_rows: u64) -> Self {
        Self {
            num_rows,
            num_customers: num_customers(num_rows),
            num_users: num_users(num_rows),
            table: "events".to_string(),
            customers_table: "customers".to_string(),
        }
    }
}

/// One generated query: its template name and SQL text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GeneratedQuery {
    /// Name of the template the query came from.
    pub template: &'static str,
    /// The SQL text.
    pub sql: String,
}

/// A deterministic stream of queries over the events tables.
pub struct EventsWorkload {
    domain: EventsDomain,
    rng: StdRng,
    templates: Weighted,
    customers: Zipf,
    users: Zipf,
    countries: Weighted,
}

impl EventsWorkload {
    /// A workload whose query sequence is fixed by `seed`.
    pub fn new(seed: u64, domain: EventsDomain) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            templates: Weighted::new(TEMPLATES),
            customers: Zipf::new(domain.num_customers, CUSTOMER_ZIPF_EXPONENT),
            users: Zipf::new(domain.num_users, USER_ZIPF_EXPONENT),
            countries: Weighted::new(COUNTRIES),
            domain,
        }
    }

    /// The domain the queries are drawn from.
    pub fn domain(&self) -> &EventsDomain {
        &self.domain
    }

    /// Draws the next query.
    pub fn next_query(&mut self) -> GeneratedQuery {
        let template = TEMPLATES[self.templates.sample(&mut self.rng)].0;
        GeneratedQuery {
            template: template.name(),
            sql: self.render(template),
        }
    }

    fn render(&mut self, template: Template) -> String {
        let t = self.domain.table.clone();
        match template {
            Template::DailyCountsByType => {
                let span = self.rng.random_range(2..=31);
                let range = self.date_range("event_date", span);
                format!(
                    "SELECT event_type, COUNT(*) AS events, SUM(amount) AS revenue FROM {t} \
                     WHERE {range} GROUP BY event_type ORDER BY events DESC"
                )
            }
            Template::HourlyWindow => {
                let day = self.window_start(1);
                let start = i64::from(day) * 24 * 60 + self.rng.random_range(0..24 * 4) * 15;
                let end = start + self.rng.random_range(1..=6) * 60;
                format!(
                    "SELECT event_type, COUNT(*) AS events, COUNT(DISTINCT user_id) AS users FROM {t} \
                     WHERE event_ts >= {} AND event_ts < {} GROUP BY event_type ORDER BY event_type",
                    timestamp_literal(start),
                    timestamp_literal(end)
                )
            }
            Template::CountryDevice => {
                let count = self.rng.random_range(2..=3);
                let countries = self.distinct_countries(count);
                let span = self.rng.random_range(7..=31);
                let range = self.date_range("event_date", span);
                format!(
                    "SELECT device, COUNT(*) AS events, COUNT(DISTINCT user_id) AS users FROM {t} \
                     WHERE country IN ({countries}) AND {range} GROUP BY device ORDER BY events DESC"
                )
            }
            Template::PurchasesByCountry => {
                let month = date(self.window_start(1)).month();
                let first =
                    NaiveDate::from_ymd_opt(START_DATE.year(), month, 1).expect("valid month");
                let next = first
                    .checked_add_months(chrono::Months::new(1))
                    .expect("in range");
                format!(
                    "SELECT country, COUNT(*) AS purchases, SUM(amount) AS revenue FROM {t} \
                     WHERE event_type = 'purchase' AND event_date >= {} AND event_date < {} \
                     GROUP BY country ORDER BY revenue DESC",
                    date_literal(first),
                    date_literal(next)
                )
            }
            Template::TopAmountsDay => {
                let day = date_literal(date(self.window_start(1)));
                format!(
                    "SELECT event_id, event_ts, customer_id, event_type, amount FROM {t} \
                     WHERE event_date = {day} AND amount IS NOT NULL ORDER BY amount DESC, event_id LIMIT 10"
                )
            }
            Template::CustomerDaily => {
                let customer = self.customers.sample(&mut self.rng);
                let span = self.rng.random_range(7..=60);
                let range = self.date_range("event_date", span);
                format!(
                    "SELECT event_date, event_type, COUNT(*) AS events, SUM(amount) AS amount FROM {t} \
                     WHERE customer_id = {customer} AND {range} \
                     GROUP BY event_date, event_type ORDER BY event_date, event_type"
                )
            }
            Template::CustomerRecent => {
                let customer = self.customers.sample(&mut self.rng);
                format!(
                    "SELECT event_id, event_ts, event_type, amount FROM {t} \
                     WHERE customer_id = {customer} ORDER BY event_ts DESC, event_id LIMIT 100"
                )
            }
            Template::UserSessions => {
                let user = self.users.sample(&mut self.rng);
                format!(
                    "SELECT session_id, MIN(event_ts) AS started, MAX(event_ts) AS ended, COUNT(*) AS events \
                     FROM {t} WHERE user_id = {user} GROUP BY session_id ORDER BY started, session_id"
                )
            }
            Template::SegmentJoin => {
                let count = self.rng.random_range(1..=2);
                let segments =
                    self.distinct(count, |w| SEGMENTS[w.rng.random_range(0..SEGMENTS.len())].0);
                let span = self.rng.random_range(7..=31);
                let range = self.date_range("e.event_date", span);
                format!(
                    "SELECT c.segment, COUNT(*) AS events, SUM(e.amount) AS revenue \
                     FROM {t} e JOIN {} c ON e.customer_id = c.customer_id \
                     WHERE c.segment IN ({segments}) AND {range} GROUP BY c.segment ORDER BY c.segment",
                    self.domain.customers_table
                )
            }
            Template::AmountDuration => {
                let amount_lo = [5, 10, 20, 50, 100][self.rng.random_range(0..5)];
                let amount_hi = amount_lo * self.rng.random_range(2..=5);
                let duration_lo = [100, 250, 500, 1000][self.rng.random_range(0..4)];
                let duration_hi = duration_lo * self.rng.random_range(2..=10);
                format!(
                    "SELECT event_type, COUNT(*) AS events, AVG(duration_ms) AS avg_duration FROM {t} \
                     WHERE amount BETWEEN {amount_lo} AND {amount_hi} \
                     AND duration_ms BETWEEN {duration_lo} AND {duration_hi} \
                     GROUP BY event_type ORDER BY event_type"
                )
            }
            Template::ServerErrors => {
                let span = self.rng.random_range(1..=7);
                let range = self.date_range("event_date", span);
                format!(
                    "SELECT event_date, status_code, COUNT(*) AS errors FROM {t} \
                     WHERE status_code >= 500 AND {range} \
                     GROUP BY event_date, status_code ORDER BY event_date, status_code"
                )
            }
            Template::FullScan => {
                let column =
                    ["event_type", "country", "device", "app_version"][self.rng.random_range(0..4)];
                format!(
                    "SELECT {column}, COUNT(*) AS events, COUNT(DISTINCT user_id) AS users, \
                     SUM(amount) AS revenue FROM {t} GROUP BY {column} ORDER BY {column}"
                )
            }
        }
    }

    /// First day (offset from START_DATE) of a window of `span` days; biased toward recent days.
    fn window_start(&mut self, span: i32) -> i32 {
        let last = DAYS - span;
        let first = if self.rng.random::<f64>() < RECENT_FRACTION {
            (DAYS - RECENT_DAYS).min(last)
        } else {
            0
        };
        self.rng.random_range(first..=last)
    }

    /// `column >= DATE 'a' AND column < DATE 'b'` for a window of `span` days.
    fn date_range(&mut self, column: &str, span: i32) -> String {
        let start = self.window_start(span);
        format!(
            "{column} >= {} AND {column} < {}",
            date_literal(date(start)),
            date_literal(date(start + span))
        )
    }

    /// `count` distinct quoted values drawn with `draw`, comma separated.
    fn distinct(
        &mut self,
        count: usize,
        mut draw: impl FnMut(&mut Self) -> &'static str,
    ) -> String {
        let mut picked: Vec<&'static str> = Vec::with_capacity(count);
        while picked.len() < count {
            let value = draw(self);
            if !picked.contains(&value) {
                picked.push(value);
            }
        }
        picked
            .iter()
            .map(|v| format!("'{v}'"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `count` distinct country codes drawn by their user share.
    fn distinct_countries(&mut self, count: usize) -> String {
        self.distinct(count, |w| COUNTRIES[w.countries.sample(&mut w.rng)].0)
    }
}

impl Iterator for EventsWorkload {
    type Item = GeneratedQuery;

    fn next(&mut self) -> Option<GeneratedQuery> {
        Some(self.next_query())
    }
}

/// The date `day` days after START_DATE.
fn date(day: i32) -> NaiveDate {
    START_DATE + Days::new(day.max(0) as u64)
}

/// `DATE 'YYYY-MM-DD'`.
fn date_literal(d: NaiveDate) -> String {
    format!("DATE '{}'", d.format("%Y-%m-%d"))
}

/// `TIMESTAMP 'YYYY-MM-DD HH:MM:SS'` for `minutes` after START_DATE midnight UTC.
fn timestamp_literal(minutes: i64) -> String {
    let t = START_DATE.and_hms_opt(0, 0, 0).expect("midnight") + TimeDelta::minutes(minutes);
    format!("TIMESTAMP '{}'", t.format("%Y-%m-%d %H:%M:%S"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn draw(seed: u64, n: usize) -> Vec<GeneratedQuery> {
        EventsWorkload::new(seed, EventsDomain::for_rows(1_000_000))
            .take(n)
            .collect()
    }

    /// All quoted literals following `prefix` (e.g. "DATE '") in `sql`.
    fn literals<'a>(sql: &'a str, prefix: &str) -> Vec<&'a str> {
        sql.match_indices(prefix)
            .map(|(i, _)| {
                let rest = &sql[i + prefix.len()..];
                &rest[..rest.find('\'').unwrap()]
            })
            .collect()
    }

    #[test]
    fn deterministic_by_seed() {
        assert_eq!(draw(7, 500), draw(7, 500));
        assert_ne!(draw(7, 500), draw(8, 500));
    }

    #[test]
    fn every_template_appears_with_roughly_its_weight() {
        let queries = draw(1, 2000);
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for q in &queries {
            *counts.entry(q.template).or_default() += 1;
        }
        for name in template_names() {
            assert!(
                counts.get(name).copied().unwrap_or(0) > 0,
                "{name} never drawn"
            );
        }
        let total: f64 = TEMPLATES.iter().map(|(_, w)| w).sum();
        for (template, weight) in TEMPLATES {
            let expected = 2000.0 * weight / total;
            let got = counts[template.name()] as f64;
            assert!(
                (got - expected).abs() < 0.35 * expected + 10.0,
                "{}: {got} vs {expected}",
                template.name()
            );
        }
        let share = |names: &[&str]| names.iter().map(|n| counts[n]).sum::<usize>() as f64 / 2000.0;
        let time_range = share(&[
            "daily_counts_by_type",
            "hourly_window",
            "country_device",
            "purchases_by_country",
            "top_amounts_day",
        ]);
        assert!(
            (0.45..0.55).contains(&time_range),
            "time-range share {time_range}"
        );
        let customer = share(&["customer_daily", "customer_recent"]);
        assert!(
            (0.16..0.24).contains(&customer),
            "customer share {customer}"
        );
    }

    #[test]
    fn template_names_are_unique() {
        let mut names = template_names();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TEMPLATES.len());
    }

    #[test]
    fn literals_within_domains() {
        let domain = EventsDomain::for_rows(1_000_000);
        let year_end = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let mut customers: HashMap<u64, usize> = HashMap::new();
        for q in draw(3, 3000) {
            assert!(q.sql.contains("FROM events"), "{}", q.sql);
            for d in literals(&q.sql, "DATE '") {
                let d = NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
                assert!(START_DATE <= d && d <= year_end, "{}", q.sql);
            }
            for ts in literals(&q.sql, "TIMESTAMP '") {
                let ts = chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S").unwrap();
                assert!(
                    START_DATE <= ts.date() && ts.date() <= year_end,
                    "{}",
                    q.sql
                );
            }
            for code in literals(&q.sql, "country IN ('") {
                assert!(COUNTRIES.iter().any(|(c, _)| *c == code));
            }
            if let Some(i) = q.sql.find("WHERE customer_id = ") {
                let digits: String = q.sql[i + 20..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                let id: u64 = digits.parse().unwrap();
                assert!((1..=domain.num_customers).contains(&id));
                *customers.entry(id).or_default() += 1;
            }
        }
        // Popular customers recur, as they dominate the data.
        let top = customers.iter().max_by_key(|(_, n)| **n).unwrap();
        assert_eq!(*top.0, 1);
        assert!(*top.1 >= 20, "customer 1 drawn {} times", top.1);
    }

    #[test]
    fn custom_table_names() {
        let mut domain = EventsDomain::for_rows(10_000);
        domain.table = "ev2".into();
        domain.customers_table = "cust2".into();
        let queries: Vec<_> = EventsWorkload::new(5, domain).take(500).collect();
        assert!(
            queries
                .iter()
                .all(|q| q.sql.contains("FROM ev2") && !q.sql.contains("FROM events"))
        );
        assert!(queries.iter().any(|q| q.sql.contains("JOIN cust2 c")));
    }

    #[test]
    fn literal_formats() {
        assert_eq!(date_literal(date(0)), "DATE '2025-01-01'");
        assert_eq!(date_literal(date(DAYS)), "DATE '2026-01-01'");
        assert_eq!(
            timestamp_literal(24 * 60 + 61),
            "TIMESTAMP '2025-01-02 01:01:00'"
        );
    }
}
