//! Mapping throughput on a 10 hosts x 10 OSDs map and a 1000-OSD map
//! (40 hosts x 25 OSDs), replicated (chooseleaf firstn host) and erasure
//! (chooseleaf indep host) rules.

use std::fmt::Write;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shoal_crush::mapper::{Workspace, do_rule};
use shoal_crush::tester::test_weights;

/// A jewel-tunables map of `hosts` x `per_host` straw2 OSDs with mixed weights.
fn map_text(hosts: usize, per_host: usize) -> String {
    let mut t = String::from(
        "tunable choose_local_tries 0\ntunable choose_local_fallback_tries 0\n\
         tunable choose_total_tries 50\ntunable chooseleaf_descend_once 1\n\
         tunable chooseleaf_vary_r 1\ntunable chooseleaf_stable 1\n\
         tunable straw_calc_version 1\ntunable allowed_bucket_algs 54\n",
    );
    for d in 0..hosts * per_host {
        writeln!(t, "device {d} osd.{d}").unwrap();
    }
    t.push_str("type 0 osd\ntype 1 host\ntype 2 root\n");
    let weights = ["3.638", "7.277", "1.819", "3.638"];
    for h in 0..hosts {
        writeln!(t, "host h{h} {{\n\tid -{}\n\talg straw2\n\thash 0", h + 2).unwrap();
        for o in 0..per_host {
            let d = h * per_host + o;
            writeln!(t, "\titem osd.{d} weight {}", weights[d % 4]).unwrap();
        }
        t.push_str("}\n");
    }
    t.push_str("root default {\n\tid -1\n\talg straw2\n\thash 0\n");
    for h in 0..hosts {
        writeln!(t, "\titem h{h}").unwrap();
    }
    t.push_str(
        "}\nrule rep {\n\tid 0\n\ttype replicated\n\tstep take default\n\
         \tstep chooseleaf firstn 0 type host\n\tstep emit\n}\n\
         rule ec {\n\tid 1\n\ttype erasure\n\tstep set_chooseleaf_tries 5\n\
         \tstep set_choose_tries 100\n\tstep take default\n\
         \tstep chooseleaf indep 0 type host\n\tstep emit\n}\n",
    );
    t
}

fn bench_map(c: &mut Criterion, label: &str, hosts: usize, per_host: usize) {
    let map = shoal_crush::text::parse(&map_text(hosts, per_host)).expect("bench map parses");
    let weights = test_weights(&map, &[]);
    let mut group = c.benchmark_group(label);
    group.throughput(Throughput::Elements(1));
    for (rule, name, n) in [(0, "replicated_3", 3usize), (1, "erasure_6", 6)] {
        let mut ws = Workspace::new(&map);
        let mut out = vec![0i32; n];
        let mut x = 0u32;
        group.bench_function(name, |b| {
            b.iter(|| {
                x = x.wrapping_add(1);
                black_box(do_rule(
                    &map,
                    rule,
                    black_box(x),
                    &mut out,
                    &weights,
                    None,
                    &mut ws,
                ))
            })
        });
    }
    group.finish();
}

fn mapping(c: &mut Criterion) {
    bench_map(c, "crush_10x10", 10, 10);
    bench_map(c, "crush_1000osd", 40, 25);
}

criterion_group!(benches, mapping);
criterion_main!(benches);
