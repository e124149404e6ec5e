//! TPC-H query parameters: random substitution values drawn by the rules of the TPC-H
//! specification (clause 2.4, "Substitution Parameters"), the specification's validation
//! values (the ones the scale-factor-1 reference answers were produced with), and a seeded
//! workload that draws queries from the 22 templates in a uniform or a filter-heavy mix.

use crate::tpch_queries::{TPCH_TEMPLATE_NAMES, substitute, tpch_template};
use crate::workload::GeneratedQuery;
use chrono::{Days, Months, NaiveDate};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, index};
use rand::{Rng, SeedableRng};
use tpchgen::distribution::Distributions;

/// N_NAME of the 25 nations with their region key (N_REGIONKEY), in key order.
const NATIONS: [(&str, usize); 25] = [
    ("ALGERIA", 0),
    ("ARGENTINA", 1),
    ("BRAZIL", 1),
    ("CANADA", 1),
    ("EGYPT", 4),
    ("ETHIOPIA", 0),
    ("FRANCE", 3),
    ("GERMANY", 3),
    ("INDIA", 2),
    ("INDONESIA", 2),
    ("IRAN", 4),
    ("IRAQ", 4),
    ("JAPAN", 2),
    ("JORDAN", 4),
    ("KENYA", 0),
    ("MOROCCO", 0),
    ("MOZAMBIQUE", 0),
    ("PERU", 1),
    ("CHINA", 2),
    ("ROMANIA", 3),
    ("SAUDI ARABIA", 4),
    ("VIETNAM", 2),
    ("RUSSIA", 3),
    ("UNITED KINGDOM", 3),
    ("UNITED STATES", 1),
];
/// R_NAME of the five regions, in key order.
const REGIONS: [&str; 5] = ["AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"];
/// C_MKTSEGMENT values.
const SEGMENTS: [&str; 5] = [
    "AUTOMOBILE",
    "BUILDING",
    "FURNITURE",
    "MACHINERY",
    "HOUSEHOLD",
];
/// L_SHIPMODE values.
const SHIP_MODES: [&str; 7] = ["REG AIR", "AIR", "RAIL", "SHIP", "TRUCK", "MAIL", "FOB"];
/// P_TYPE syllables 1, 2 and 3.
const TYPE_S1: [&str; 6] = ["STANDARD", "SMALL", "MEDIUM", "LARGE", "ECONOMY", "PROMO"];
const TYPE_S2: [&str; 5] = ["ANODIZED", "BURNISHED", "PLATED", "POLISHED", "BRUSHED"];
const TYPE_S3: [&str; 5] = ["TIN", "NICKEL", "BRASS", "STEEL", "COPPER"];
/// P_CONTAINER syllables 1 and 2.
const CONTAINER_S1: [&str; 5] = ["SM", "LG", "MED", "JUMBO", "WRAP"];
const CONTAINER_S2: [&str; 8] = ["CASE", "BOX", "BAG", "JAR", "PKG", "PACK", "CAN", "DRUM"];
/// Q13's WORD1 and WORD2 lists.
const Q13_WORD1: [&str; 4] = ["special", "pending", "unusual", "express"];
const Q13_WORD2: [&str; 4] = ["packages", "requests", "accounts", "deposits"];

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid calendar date")
}

fn fmt_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// The first day of a month drawn uniformly from `months` months starting at `first`.
fn month_start<R: Rng>(rng: &mut R, first: NaiveDate, months: u32) -> String {
    let offset = rng.random_range(0..months);
    fmt_date(first + Months::new(offset))
}

/// January 1st of a year drawn from 1993..=1997.
fn year_start<R: Rng>(rng: &mut R) -> String {
    fmt_date(date(rng.random_range(1993..=1997), 1, 1))
}

fn pick<'a, R: Rng>(rng: &mut R, values: &[&'a str]) -> &'a str {
    values.choose(rng).expect("a non-empty list")
}

fn nation<R: Rng>(rng: &mut R) -> (&'static str, usize) {
    *NATIONS.choose(rng).expect("25 nations")
}

fn brand<R: Rng>(rng: &mut R) -> String {
    format!(
        "Brand#{}{}",
        rng.random_range(1..=5),
        rng.random_range(1..=5)
    )
}

fn color<R: Rng>(rng: &mut R) -> String {
    pick(
        rng,
        Distributions::static_default().part_colors().get_values(),
    )
    .to_string()
}

/// Q11's FRACTION: 0.0001 / SF, printed without float noise.
fn q11_fraction(scale_factor: f64) -> String {
    let text = format!("{:.12}", 0.0001 / scale_factor);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_string()
}

/// Random substitution values for query `n` (1..=22) by the specification's rules; empty for
/// another number. `scale_factor` sizes Q11's FRACTION.
pub fn random_params<R: Rng>(n: u8, rng: &mut R, scale_factor: f64) -> Vec<String> {
    let s = |v: &str| v.to_string();
    match n {
        1 => vec![rng.random_range(60..=120).to_string()],
        2 => vec![
            rng.random_range(1..=50).to_string(),
            s(pick(rng, &TYPE_S3)),
            s(pick(rng, &REGIONS)),
        ],
        3 => vec![
            s(pick(rng, &SEGMENTS)),
            fmt_date(date(1995, 3, 1) + Days::new(rng.random_range(0..31))),
        ],
        4 => vec![month_start(rng, date(1993, 1, 1), 58)],
        5 => vec![s(pick(rng, &REGIONS)), year_start(rng)],
        6 => vec![
            year_start(rng),
            format!("0.0{}", rng.random_range(2..=9)),
            rng.random_range(24..=25).to_string(),
        ],
        7 => {
            let two = index::sample(rng, NATIONS.len(), 2);
            vec![s(NATIONS[two.index(0)].0), s(NATIONS[two.index(1)].0)]
        }
        8 => {
            let (name, region) = nation(rng);
            let kind = format!(
                "{} {} {}",
                pick(rng, &TYPE_S1),
                pick(rng, &TYPE_S2),
                pick(rng, &TYPE_S3)
            );
            vec![s(name), s(REGIONS[region]), kind]
        }
        9 => vec![color(rng)],
        10 => vec![month_start(rng, date(1993, 2, 1), 24)],
        11 => vec![s(nation(rng).0), q11_fraction(scale_factor)],
        12 => {
            let two = index::sample(rng, SHIP_MODES.len(), 2);
            vec![
                s(SHIP_MODES[two.index(0)]),
                s(SHIP_MODES[two.index(1)]),
                year_start(rng),
            ]
        }
        13 => vec![s(pick(rng, &Q13_WORD1)), s(pick(rng, &Q13_WORD2))],
        14 => vec![month_start(rng, date(1993, 1, 1), 60)],
        15 => vec![month_start(rng, date(1993, 1, 1), 58)],
        16 => {
            let mut p = vec![
                brand(rng),
                format!("{} {}", pick(rng, &TYPE_S1), pick(rng, &TYPE_S2)),
            ];
            p.extend(
                index::sample(rng, 50, 8)
                    .iter()
                    .map(|i| (i + 1).to_string()),
            );
            p
        }
        17 => vec![
            brand(rng),
            format!("{} {}", pick(rng, &CONTAINER_S1), pick(rng, &CONTAINER_S2)),
        ],
        18 => vec![rng.random_range(312..=315).to_string()],
        19 => vec![
            brand(rng),
            brand(rng),
            brand(rng),
            rng.random_range(1..=10).to_string(),
            rng.random_range(10..=20).to_string(),
            rng.random_range(20..=30).to_string(),
        ],
        20 => vec![color(rng), year_start(rng), s(nation(rng).0)],
        21 => vec![s(nation(rng).0)],
        22 => index::sample(rng, NATIONS.len(), 7)
            .iter()
            .map(|i| (i + 10).to_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// The specification's validation values for query `n` (the scale-factor-1 answers were
/// computed with them); Q11's FRACTION follows `scale_factor`.
pub fn validation_params(n: u8, scale_factor: f64) -> Vec<String> {
    let v: &[&str] = match n {
        1 => &["90"],
        2 => &["15", "BRASS", "EUROPE"],
        3 => &["BUILDING", "1995-03-15"],
        4 => &["1993-07-01"],
        5 => &["ASIA", "1994-01-01"],
        6 => &["1994-01-01", "0.06", "24"],
        7 => &["FRANCE", "GERMANY"],
        8 => &["BRAZIL", "AMERICA", "ECONOMY ANODIZED STEEL"],
        9 => &["green"],
        10 => &["1993-10-01"],
        11 => return vec!["GERMANY".to_string(), q11_fraction(scale_factor)],
        12 => &["MAIL", "SHIP", "1994-01-01"],
        13 => &["special", "requests"],
        14 => &["1995-09-01"],
        15 => &["1996-01-01"],
        16 => &[
            "Brand#45",
            "MEDIUM POLISHED",
            "49",
            "14",
            "23",
            "45",
            "19",
            "3",
            "36",
            "9",
        ],
        17 => &["Brand#23", "MED BOX"],
        18 => &["300"],
        19 => &["Brand#12", "Brand#23", "Brand#34", "1", "10", "20"],
        20 => &["forest", "1994-01-01", "CANADA"],
        21 => &["SAUDI ARABIA"],
        22 => &["13", "31", "23", "29", "30", "18", "17"],
        _ => &[],
    };
    v.iter().map(std::string::ToString::to_string).collect()
}

/// Query `n` with the validation values substituted (None for another number).
pub fn tpch_validation_query(n: u8, scale_factor: f64) -> Option<String> {
    Some(substitute(
        &tpch_template(n)?,
        &validation_params(n, scale_factor),
    ))
}

/// Which templates a TPC-H workload draws, and how often.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TpchMix {
    /// All 22 queries equally often.
    #[default]
    Uniform,
    /// Templates with selective predicates on lineitem and orders dates, discounts,
    /// quantities and ship modes (Q6, Q14, Q4, Q12, Q3, Q10, Q15, Q1, Q5, Q19, Q7) weighted
    /// up: they make about 83% of the queries; the other eleven share the rest.
    FilterHeavy,
}

impl TpchMix {
    /// The weight of each query (index = query number - 1).
    pub fn weights(self) -> [u32; 22] {
        match self {
            TpchMix::Uniform => [1; 22],
            TpchMix::FilterHeavy => {
                let mut w = [1; 22];
                for (q, weight) in [
                    (1, 3),
                    (3, 5),
                    (4, 6),
                    (5, 3),
                    (6, 10),
                    (7, 2),
                    (10, 5),
                    (12, 6),
                    (14, 8),
                    (15, 4),
                    (19, 3),
                ] {
                    w[q - 1] = weight;
                }
                w
            }
        }
    }
}

/// A deterministic stream of TPC-H queries with random substitution values.
pub struct TpchWorkload {
    rng: StdRng,
    scale_factor: f64,
    cumulative: Vec<u32>,
    templates: Vec<String>,
}

impl TpchWorkload {
    /// A workload for tables at `scale_factor`, seeded with `seed`, drawing by `mix`.
    pub fn new(seed: u64, mix: TpchMix, scale_factor: f64) -> Self {
        let cumulative = mix
            .weights()
            .iter()
            .scan(0, |acc, w| {
                *acc += w;
                Some(*acc)
            })
            .collect();
        Self {
            rng: StdRng::seed_from_u64(seed),
            scale_factor,
            cumulative,
            templates: (1..=22)
                .map(|n| tpch_template(n).expect("1..=22 exist"))
                .collect(),
        }
    }

    /// Query `n` (1..=22) with fresh random values.
    pub fn query(&mut self, n: u8) -> GeneratedQuery {
        let i = usize::from(n.clamp(1, 22)) - 1;
        let params = random_params(i as u8 + 1, &mut self.rng, self.scale_factor);
        GeneratedQuery {
            template: TPCH_TEMPLATE_NAMES[i],
            sql: substitute(&self.templates[i], &params),
        }
    }

    /// The next query: a template drawn by the mix's weights, with random values.
    pub fn next_query(&mut self) -> GeneratedQuery {
        let total = *self.cumulative.last().expect("22 weights");
        let x = self.rng.random_range(0..total);
        let i = self.cumulative.partition_point(|c| *c <= x);
        self.query(i as u8 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_queries_have_every_marker_substituted() {
        for n in 1..=22 {
            let sql = tpch_validation_query(n, 1.0).unwrap();
            assert!(
                !sql.bytes()
                    .zip(sql.bytes().skip(1))
                    .any(|(a, b)| a == b':' && b.is_ascii_digit()),
                "Q{n}: {sql}"
            );
        }
        let q6 = tpch_validation_query(6, 1.0).unwrap();
        assert!(q6.contains("l_shipdate >= date '1994-01-01'"), "{q6}");
        assert!(q6.contains("between 0.06 - 0.01 and 0.06 + 0.01"), "{q6}");
        assert!(tpch_validation_query(11, 0.01).unwrap().contains("* 0.01"));
        assert!(tpch_validation_query(11, 1.0).unwrap().contains("* 0.0001"));
    }

    #[test]
    fn random_params_follow_the_specification_domains() {
        let mut rng = StdRng::seed_from_u64(9);
        let colors = Distributions::static_default().part_colors().get_values();
        assert!(colors.contains(&"green") && colors.contains(&"forest"));
        for _ in 0..300 {
            let q1: u32 = random_params(1, &mut rng, 1.0)[0].parse().unwrap();
            assert!((60..=120).contains(&q1));
            let q3 = random_params(3, &mut rng, 1.0);
            assert!(q3[1].as_str() >= "1995-03-01" && q3[1].as_str() <= "1995-03-31");
            let q4 = &random_params(4, &mut rng, 1.0)[0];
            assert!(
                q4.ends_with("-01") && q4.as_str() >= "1993-01-01" && q4.as_str() <= "1997-10-01"
            );
            let q6 = random_params(6, &mut rng, 1.0);
            let disc: f64 = q6[1].parse().unwrap();
            assert!((0.02..=0.09).contains(&disc));
            let q7 = random_params(7, &mut rng, 1.0);
            assert_ne!(q7[0], q7[1]);
            let q8 = random_params(8, &mut rng, 1.0);
            let region = NATIONS.iter().find(|(n, _)| *n == q8[0]).unwrap().1;
            assert_eq!(q8[1], REGIONS[region]);
            let q10 = &random_params(10, &mut rng, 1.0)[0];
            assert!(q10.as_str() >= "1993-02-01" && q10.as_str() <= "1995-01-01");
            let q16 = random_params(16, &mut rng, 1.0);
            let mut sizes: Vec<u32> = q16[2..].iter().map(|s| s.parse().unwrap()).collect();
            sizes.sort();
            sizes.dedup();
            assert_eq!(sizes.len(), 8);
            assert!(sizes.iter().all(|s| (1..=50).contains(s)));
            let q22 = random_params(22, &mut rng, 1.0);
            let codes: std::collections::BTreeSet<u32> =
                q22.iter().map(|s| s.parse().unwrap()).collect();
            assert_eq!(codes.len(), 7);
            assert!(codes.iter().all(|c| (10..=34).contains(c)));
            assert!(colors.contains(&random_params(9, &mut rng, 1.0)[0].as_str()));
        }
    }

    #[test]
    fn workloads_are_seeded_and_mixes_weigh_templates() {
        let draw = |seed, mix| {
            let mut w = TpchWorkload::new(seed, mix, 0.01);
            (0..400).map(|_| w.next_query()).collect::<Vec<_>>()
        };
        let a = draw(3, TpchMix::Uniform);
        assert_eq!(a, draw(3, TpchMix::Uniform));
        assert_ne!(a, draw(4, TpchMix::Uniform));
        let templates: std::collections::BTreeSet<_> = a.iter().map(|q| q.template).collect();
        assert_eq!(templates.len(), 22, "uniform draws every template");
        let heavy = draw(3, TpchMix::FilterHeavy);
        let q6 = heavy.iter().filter(|q| q.template == "q6").count();
        let q9 = heavy.iter().filter(|q| q.template == "q9").count();
        assert!(q6 > 3 * q9.max(1), "q6 {q6} q9 {q9}");
        assert_eq!(TpchMix::FilterHeavy.weights().iter().sum::<u32>(), 66);
    }
}
