//! `crushtool --test`: run a range of inputs through rules and report
//! mappings, utilization, result-size statistics and the choose-tries
//! histogram, printed exactly as Ceph 16's `CrushTester` prints them.

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::hash::hash32_2;
use crate::mapper::{Workspace, do_rule};
use crate::model::{CrushMap, RuleStep, WEIGHT_ONE, Weight};

/// What to run and what to print; mirrors `crushtool --test` flags.
#[derive(Clone, Debug, Default)]
pub struct TestOptions {
    /// `--rule R`; all rules when `None`.
    pub rule: Option<i32>,
    /// `--num-rep N` (min and max); the rule's min..max size when `None`.
    pub num_rep: Option<(i32, i32)>,
    /// `--min-x`; 0 when `None`.
    pub min_x: Option<i32>,
    /// `--max-x`; 1023 when `None`.
    pub max_x: Option<i32>,
    /// `--weight DEV W` overrides (W in 0.0..=1.0).
    pub weights: Vec<(i32, f32)>,
    /// `--pool-id P`: hash each x with the pool id first.
    pub pool_id: Option<i64>,
    /// `--show-mappings`.
    pub show_mappings: bool,
    /// `--show-bad-mappings`.
    pub show_bad_mappings: bool,
    /// `--show-statistics`.
    pub show_statistics: bool,
    /// `--show-utilization` (implies statistics).
    pub show_utilization: bool,
    /// `--show-utilization-all` (implies statistics).
    pub show_utilization_all: bool,
    /// `--show-choose-tries`.
    pub show_choose_tries: bool,
}

impl TestOptions {
    /// The inputs tested. Like crushtool, a missing or negative bound on
    /// either side means the default range 0..=1023.
    pub fn x_range(&self) -> (i32, i32) {
        match (self.min_x, self.max_x) {
            (Some(a), Some(b)) if a >= 0 && b >= 0 => (a, b),
            _ => (0, 1023),
        }
    }
}

/// Results for one rule and one replica count.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct NumRepReport {
    /// The replica count requested.
    pub num_rep: i32,
    /// How often each result size occurred.
    pub result_sizes: BTreeMap<usize, u64>,
    /// Placements per device id.
    pub stored: Vec<u64>,
    /// Expected placements per device id, by reweight (as crushtool computes it).
    pub expected: Vec<f32>,
    /// Inputs whose result had fewer items than requested.
    pub bad_mappings: u64,
}

/// Results for one rule.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RuleReport {
    /// Rule id.
    pub rule: i32,
    /// Rule name.
    pub name: String,
    /// One entry per replica count tested.
    pub num_reps: Vec<NumRepReport>,
}

/// Everything a test run computed.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct TestReport {
    /// First input tested.
    pub min_x: i32,
    /// Last input tested.
    pub max_x: i32,
    /// Per-rule results.
    pub rules: Vec<RuleReport>,
    /// Choose-tries histogram, when requested.
    pub choose_tries: Option<Vec<u64>>,
}

/// Progress of a test run, in the order crushtool prints things.
#[derive(Debug)]
pub enum Event<'a> {
    /// A rule id in range that does not exist.
    RuleMissing(i32),
    /// A rule starts; replica counts `min_rep..=max_rep` follow.
    RuleStart {
        /// Rule id.
        rule: i32,
        /// Rule name.
        name: &'a str,
        /// Smallest replica count tested.
        min_rep: i32,
        /// Largest replica count tested.
        max_rep: i32,
    },
    /// One mapping was computed.
    Mapping(Mapping<'a>),
    /// All inputs of one replica count are done.
    NumRepDone {
        /// Rule id.
        rule: i32,
        /// Rule name.
        name: &'a str,
        /// The aggregated results.
        report: &'a NumRepReport,
    },
}

/// One computed mapping.
#[derive(Debug)]
pub struct Mapping<'a> {
    /// Rule id.
    pub rule: i32,
    /// The input as given (before `--pool-id` hashing).
    pub x: i32,
    /// Replica count requested.
    pub num_rep: i32,
    /// The result.
    pub result: &'a [i32],
}

/// The reweight vector crushtool uses: 1.0 for devices present in a bucket,
/// 0 for other ids, then the `--weight` overrides (clamped to [0, 1]).
pub fn test_weights(map: &CrushMap, overrides: &[(i32, f32)]) -> Vec<Weight> {
    let max = map.max_devices().max(0) as usize;
    let mut w = vec![0; max];
    for b in map.buckets.iter().flatten() {
        for &item in &b.items {
            if let Some(slot) = usize::try_from(item).ok().and_then(|i| w.get_mut(i)) {
                *slot = WEIGHT_ONE;
            }
        }
    }
    for &(dev, f) in overrides {
        if let Some(slot) = usize::try_from(dev).ok().and_then(|i| w.get_mut(i)) {
            *slot = ((f * WEIGHT_ONE as f32) as i32).clamp(0, WEIGHT_ONE as i32) as u32;
        }
    }
    w
}

/// `CrushTester::get_maximum_affected_by_rule`, including its quirks: every
/// step with an op code >= 2 other than emit counts (so `set_*` steps count
/// as type 0), and devices are never counted as items of type 0.
fn maximum_affected_by_rule(map: &CrushMap, rule_id: i32) -> i32 {
    let Some(rule) = map.rule(rule_id) else {
        return 0;
    };
    let mut affected = Vec::new();
    let mut replications: BTreeMap<i32, i32> = BTreeMap::new();
    for step in &rule.steps {
        let (num, type_id) = match *step {
            RuleStep::Noop | RuleStep::Take(_) | RuleStep::Emit => continue,
            RuleStep::ChooseFirstn { num, type_id }
            | RuleStep::ChooseIndep { num, type_id }
            | RuleStep::ChooseleafFirstn { num, type_id }
            | RuleStep::ChooseleafIndep { num, type_id } => (num, type_id),
            RuleStep::SetChooseTries(n)
            | RuleStep::SetChooseleafTries(n)
            | RuleStep::SetChooseLocalTries(n)
            | RuleStep::SetChooseLocalFallbackTries(n)
            | RuleStep::SetChooseleafVaryR(n)
            | RuleStep::SetChooseleafStable(n) => (n, 0),
        };
        affected.push(type_id);
        replications.insert(type_id, num);
    }
    let mut of_type: BTreeMap<i32, i32> = BTreeMap::new();
    for &t in &affected {
        let n = map
            .buckets
            .iter()
            .flatten()
            .filter(|b| b.type_id == t)
            .count() as i32;
        *of_type.entry(t).or_insert(0) += n;
    }
    for &t in &affected {
        let rep = replications.get(&t).copied().unwrap_or(0);
        let have = of_type.entry(t).or_insert(0);
        if rep > 0 && rep < *have {
            *have = rep;
        }
    }
    let mut max_affected = ceph_max_buckets(map).max(map.max_devices());
    for t in &affected {
        let have = of_type.get(t).copied().unwrap_or(0);
        if have > 0 && have < max_affected {
            max_affected = have;
        }
    }
    max_affected
}

/// Ceph's `crush->max_buckets`: the size of its bucket array, which
/// `crush_add_bucket` grows from 8 by doubling until the highest bucket
/// index fits (crushtool's `expected` column depends on it).
fn ceph_max_buckets(map: &CrushMap) -> i32 {
    let needed = map.buckets.len();
    if needed == 0 {
        return 0;
    }
    let mut size = 8usize;
    while size < needed {
        size *= 2;
    }
    size as i32
}

/// Runs the test, calling `on_event` as results are produced, and returns
/// the aggregated report.
pub fn run(map: &CrushMap, opts: &TestOptions, mut on_event: impl FnMut(Event<'_>)) -> TestReport {
    let (min_x, max_x) = opts.x_range();
    let weights = test_weights(map, &opts.weights);
    let mut ws = Workspace::new(map);
    if opts.show_choose_tries {
        ws.enable_choose_tries(map.tunables.choose_total_tries as usize + 1);
    }
    let choose_args = map.choose_arg_map(0).or_else(|| map.choose_arg_map(-1));
    let (min_rule, max_rule) = match opts.rule {
        Some(r) => (r, r),
        None => (0, map.rules.len() as i32 - 1),
    };
    let total_weight: i32 = weights.iter().fold(0i32, |a, &w| a.wrapping_add(w as i32));
    let mut report = TestReport {
        min_x,
        max_x,
        ..TestReport::default()
    };
    let mut out = Vec::new();
    for r in min_rule.max(0)..=max_rule.min(map.rules.len() as i32 - 1) {
        let Some(rule) = map.rule(r) else {
            on_event(Event::RuleMissing(r));
            continue;
        };
        let (min_rep, max_rep) = opts.num_rep.unwrap_or((rule.min_size, rule.max_size));
        on_event(Event::RuleStart {
            rule: r,
            name: &rule.name,
            min_rep,
            max_rep,
        });
        let mut rule_report = RuleReport {
            rule: r,
            name: rule.name.clone(),
            num_reps: Vec::new(),
        };
        for nr in min_rep..=max_rep {
            if total_weight == 0 {
                continue;
            }
            let num_objects = (max_x - min_x + 1) as f32;
            let expected_objects = nr.min(maximum_affected_by_rule(map, r)) as f32 * num_objects;
            let expected = weights
                .iter()
                .map(|&w| (w as f32 / total_weight as f32) * expected_objects)
                .collect();
            let mut rep = NumRepReport {
                num_rep: nr,
                stored: vec![0; weights.len()],
                expected,
                ..NumRepReport::default()
            };
            out.resize(nr.max(0) as usize, 0);
            for x in min_x..=max_x {
                let real_x = match opts.pool_id {
                    Some(p) => hash32_2(x as u32, p as u32),
                    None => x as u32,
                };
                let n = do_rule(map, r, real_x, &mut out, &weights, choose_args, &mut ws);
                let result = &out[..n];
                on_event(Event::Mapping(Mapping {
                    rule: r,
                    x,
                    num_rep: nr,
                    result,
                }));
                for &item in result {
                    if let Some(s) = usize::try_from(item)
                        .ok()
                        .and_then(|i| rep.stored.get_mut(i))
                    {
                        *s += 1;
                    }
                }
                *rep.result_sizes.entry(n).or_insert(0) += 1;
                if n != nr as usize {
                    rep.bad_mappings += 1;
                }
            }
            on_event(Event::NumRepDone {
                rule: r,
                name: &rule.name,
                report: &rep,
            });
            rule_report.num_reps.push(rep);
        }
        report.rules.push(rule_report);
    }
    if opts.show_choose_tries {
        let n = map.tunables.choose_total_tries as usize;
        let mut hist = ws.choose_tries.take().unwrap_or_default();
        hist.resize(n, 0);
        report.choose_tries = Some(hist);
    }
    report
}

/// Runs the test and prints exactly what `crushtool --test` prints.
pub fn run_and_print(map: &CrushMap, opts: &TestOptions, w: &mut impl Write) -> io::Result<()> {
    let statistics = opts.show_statistics || opts.show_utilization || opts.show_utilization_all;
    let (min_x, max_x) = opts.x_range();
    let total = max_x as i64 - min_x as i64 + 1;
    let mut line = Vec::with_capacity(64);
    let mut result = Ok(());
    let report = run(map, opts, |event| {
        if result.is_ok() {
            line.clear();
            render_event(&event, opts, statistics, total, &mut line);
            result = w.write_all(&line);
        }
    });
    result?;
    if let Some(hist) = &report.choose_tries {
        for (i, v) in hist.iter().enumerate() {
            writeln!(w, "{i:>2}: {v:>9}")?;
        }
    }
    Ok(())
}

fn render_event(
    event: &Event<'_>,
    opts: &TestOptions,
    statistics: bool,
    total: i64,
    out: &mut Vec<u8>,
) {
    use std::io::Write as _;
    match event {
        Event::RuleMissing(r) => {
            if statistics {
                let _ = writeln!(out, "rule {r} dne");
            }
        }
        Event::RuleStart {
            rule,
            name,
            min_rep,
            max_rep,
        } => {
            if statistics {
                let (a, b) = opts.x_range();
                let _ = writeln!(
                    out,
                    "rule {rule} ({name}), x = {a}..{b}, numrep = {min_rep}..{max_rep}"
                );
            }
        }
        Event::Mapping(m) => {
            if opts.show_mappings {
                out.extend_from_slice(b"CRUSH rule ");
                push_int(out, m.rule as i64);
                out.extend_from_slice(b" x ");
                push_int(out, m.x as i64);
                out.push(b' ');
                push_list(out, m.result);
                out.push(b'\n');
            }
            if opts.show_bad_mappings && m.result.len() != m.num_rep.max(0) as usize {
                out.extend_from_slice(b"bad mapping rule ");
                push_int(out, m.rule as i64);
                out.extend_from_slice(b" x ");
                push_int(out, m.x as i64);
                out.extend_from_slice(b" num_rep ");
                push_int(out, m.num_rep as i64);
                out.extend_from_slice(b" result ");
                push_list(out, m.result);
                out.push(b'\n');
            }
        }
        Event::NumRepDone { rule, name, report } => {
            if !statistics {
                return;
            }
            for (size, count) in &report.result_sizes {
                let _ = writeln!(
                    out,
                    "rule {rule} ({name}) num_rep {} result size == {size}:\t{count}/{total}",
                    report.num_rep
                );
            }
            for (i, (&stored, &expected)) in report.stored.iter().zip(&report.expected).enumerate()
            {
                let show = if opts.show_utilization {
                    expected > 0.0 && stored > 0
                } else {
                    opts.show_utilization_all
                };
                if show {
                    let _ = writeln!(
                        out,
                        "  device {i}:\t\t stored : {stored}\t expected : {}",
                        format_g(expected as f64)
                    );
                }
            }
        }
    }
}

fn push_int(buf: &mut Vec<u8>, v: i64) {
    let mut tmp = [0u8; 20];
    let mut n = v.unsigned_abs();
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        buf.push(b'-');
    }
    buf.extend_from_slice(&tmp[i..]);
}

fn push_list(buf: &mut Vec<u8>, items: &[i32]) {
    buf.push(b'[');
    for (i, &item) in items.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        push_int(buf, item as i64);
    }
    buf.push(b']');
}

/// Formats like C++ `ostream << double` with default flags: `%g`, six
/// significant digits, trailing zeros removed.
pub fn format_g(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return if v.is_nan() {
            "nan".into()
        } else if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let sci = format!("{v:.5e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let m = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (5 - exp).max(0) as usize;
        trim_zeros(&format!("{v:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::format_g;

    #[test]
    fn format_g_matches_printf() {
        assert_eq!(format_g(250.0), "250");
        assert_eq!(format_g(333.3333), "333.333");
        assert_eq!(format_g(0.5), "0.5");
        assert_eq!(format_g(1_000_000.0), "1e+06");
        assert_eq!(format_g(123_456.7), "123457");
        assert_eq!(format_g(0.0001234), "0.0001234");
        assert_eq!(format_g(0.00001234), "1.234e-05");
        assert_eq!(format_g(999_999.5), "1e+06");
    }
}
