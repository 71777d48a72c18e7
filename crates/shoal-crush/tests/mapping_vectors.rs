//! Bit-exactness against Ceph: every output file of every `d0*` vector folder
//! (mappings, statistics, utilization, choose-tries), produced by the real
//! `crushtool --test`, must be reproduced exactly from `map.txt`.

mod common;

use shoal_crush::tester::{TestOptions, run_and_print};

/// Parses the crushtool command line recorded in `cases.tsv`.
fn options(command: &str) -> TestOptions {
    let toks: Vec<&str> = command.split_whitespace().collect();
    let mut o = TestOptions::default();
    let num = |i: usize| -> i64 { toks[i].parse().expect("numeric argument") };
    let mut i = 0;
    while i < toks.len() {
        match toks[i] {
            "--rule" => {
                o.rule = Some(num(i + 1) as i32);
                i += 1;
            }
            "--num-rep" => {
                let n = num(i + 1) as i32;
                o.num_rep = Some((n, n));
                i += 1;
            }
            "--min-x" => {
                o.min_x = Some(num(i + 1) as i32);
                i += 1;
            }
            "--max-x" => {
                o.max_x = Some(num(i + 1) as i32);
                i += 1;
            }
            "--pool-id" => {
                o.pool_id = Some(num(i + 1));
                i += 1;
            }
            "--weight" => {
                let w: f32 = toks[i + 2].parse().expect("weight");
                o.weights.push((num(i + 1) as i32, w));
                i += 2;
            }
            "--show-mappings" => o.show_mappings = true,
            "--show-statistics" => o.show_statistics = true,
            "--show-utilization" => o.show_utilization = true,
            "--show-choose-tries" => o.show_choose_tries = true,
            "--show-bad-mappings" => o.show_bad_mappings = true,
            _ => {}
        }
        i += 1;
    }
    o
}

#[test]
fn every_crushtool_output_is_reproduced() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for dir in common::map_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(dir.join("map.txt")).expect("map.txt");
        let map = shoal_crush::text::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let cases = std::fs::read_to_string(dir.join("cases.tsv")).expect("cases.tsv");
        for line in cases.lines().skip(1) {
            let fields: Vec<&str> = line.split('\t').collect();
            let (file, command) = (fields[0], fields[fields.len() - 1]);
            let want = std::fs::read_to_string(dir.join(file)).expect("expected output");
            let mut got = Vec::new();
            run_and_print(&map, &options(command), &mut got).expect("write to a Vec");
            let got = String::from_utf8(got).expect("utf-8 output");
            checked += 1;
            if got != want {
                let first_diff = got
                    .lines()
                    .zip(want.lines())
                    .find(|(g, w)| g != w)
                    .map(|(g, w)| format!("got  {g}\n    want {w}"))
                    .unwrap_or_else(|| {
                        format!("{} lines vs {}", got.lines().count(), want.lines().count())
                    });
                failures.push(format!("{name}/{file}:\n    {first_diff}"));
            }
        }
    }
    assert!(checked >= 90, "only {checked} vector files found");
    assert!(
        failures.is_empty(),
        "{} of {checked} outputs differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn choose_args_weight_sets_match_crushtool() {
    let dir = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/data");
    let text = std::fs::read_to_string(dir.join("choose_args.txt")).unwrap();
    let map = shoal_crush::text::parse(&text).unwrap();
    assert_eq!(
        shoal_crush::text::print(&map),
        text,
        "choose_args print back"
    );
    let want = std::fs::read_to_string(dir.join("choose_args_r0_n3_w3=0.5.out")).unwrap();
    let opts =
        options("--rule 0 --num-rep 3 --weight 3 0.5 --min-x 0 --max-x 1999 --show-mappings");
    let mut got = Vec::new();
    run_and_print(&map, &opts, &mut got).unwrap();
    assert_eq!(String::from_utf8(got).unwrap(), want);
}
