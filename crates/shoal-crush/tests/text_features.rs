//! Text-format behaviour beyond the vector maps: Ceph's id assignment, bucket
//! reordering, class ids, defaults, choose_args and print/parse round trips.

use shoal_crush::text::{parse, print};
use shoal_crush::{ChooseArg, ChooseArgMap, CrushMap, RuleStep};

fn ok(text: &str) -> CrushMap {
    parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// print(parse(text)) == text, and parsing the print gives the same map.
#[track_caller]
fn round_trips(text: &str) -> CrushMap {
    let map = ok(text);
    assert_eq!(print(&map), text);
    map
}

const TYPES: &str = "type 0 osd\ntype 1 host\ntype 2 root\n";

fn rule(take: &str) -> String {
    format!(
        "rule r {{\n\tid 0\n\ttype replicated\n\tmin_size 1\n\tmax_size 10\n\tstep take {take}\n\tstep chooseleaf firstn 0 type host\n\tstep emit\n}}\n"
    )
}

#[test]
fn missing_ids_are_assigned_like_ceph() {
    // Hosts without ids before their root: ids in definition order.
    let text = format!(
        "device 0 osd.0\ndevice 1 osd.1\n{TYPES}host a {{ alg straw2 item osd.0 }}\nhost b {{ alg straw2 item osd.1 weight 2 }}\nroot r {{ alg straw2 item a item b }}\n"
    );
    let map = ok(&text);
    let id = |n| map.bucket_by_name(n).map(|b| b.id);
    assert_eq!((id("a"), id("b"), id("r")), (Some(-1), Some(-2), Some(-3)));
    // Items without a weight: 1.0 for a device, the bucket total for a bucket.
    let r = map.bucket(-3).expect("root");
    assert_eq!(r.item_weights, vec![0x10000, 0x20000]);
    assert_eq!(
        map.bucket(-1).map(|b| b.item_weights.clone()),
        Some(vec![0x10000])
    );
}

#[test]
fn buckets_may_refer_to_later_buckets() {
    // The root comes first; `h1` reserves -1 (its first line is an id), so
    // `h0` gets -2 and the root -3.
    let text = format!(
        "device 0 osd.0\ndevice 1 osd.1\n{TYPES}root default {{\n\talg straw2\n\titem h0\n\titem h1\n}}\nhost h0 {{\n\talg straw2\n\titem osd.0\n}}\nhost h1 {{\n\tid -1\n\talg straw2\n\titem osd.1 weight 2.0\n}}\n"
    );
    let map = ok(&text);
    let id = |n| map.bucket_by_name(n).map(|b| b.id);
    assert_eq!(
        (id("h1"), id("h0"), id("default")),
        (Some(-1), Some(-2), Some(-3))
    );
    assert_eq!(map.bucket(-3).map(|b| b.items.clone()), Some(vec![-2, -1]));
    assert_eq!(map.bucket(-3).map(|b| b.weight), Some(0x30000));
    // Printed children first.
    let printed = print(&map);
    let pos = |s: &str| printed.find(s).expect(s);
    assert!(pos("host h1 {") < pos("host h0 {") && pos("host h0 {") < pos("root default {"));
}

#[test]
fn shadow_ids_are_kept_or_allocated() {
    let text = format!(
        "device 0 osd.0 class ssd\ndevice 1 osd.1 class ssd\n{TYPES}host h0 {{\n\tid -1\n\talg straw2\n\titem osd.0\n}}\nhost h1 {{\n\tid -2\n\tid -3 class ssd\n\talg straw2\n\titem osd.1\n}}\nroot r {{\n\tid -4\n\talg straw2\n\titem h0\n\titem h1\n}}\n{}",
        rule("r class ssd")
    );
    let map = ok(&text);
    let shadow = |n: &str| map.bucket_by_name(n).map(|b| (b.id, b.items.clone()));
    // -3 is recorded for h1~ssd; h0~ssd takes the first free id (-5),
    // r~ssd the next one (-6).
    assert_eq!(shadow("h0~ssd"), Some((-5, vec![0])));
    assert_eq!(shadow("h1~ssd"), Some((-3, vec![1])));
    assert_eq!(shadow("r~ssd"), Some((-6, vec![-5, -3])));
    assert_eq!(map.rule(0).map(|r| r.steps[0]), Some(RuleStep::Take(-6)));
    let printed = print(&map);
    assert!(printed.contains("\tid -1\t\t# do not change unnecessarily\n\tid -5 class ssd\t\t# do not change unnecessarily\n"));
    assert!(printed.contains("\tstep take r class ssd\n"));
    assert_eq!(print(&ok(&printed)), printed);
}

#[test]
fn classes_are_ordered_by_first_appearance() {
    let text = format!(
        "# begin crush map\n\n# devices\ndevice 0 osd.0 class ssd\ndevice 1 osd.1 class hdd\n\n# types\n{TYPES}\n# buckets\nhost h {{\n\tid -1\t\t# do not change unnecessarily\n\tid -2 class ssd\t\t# do not change unnecessarily\n\tid -3 class hdd\t\t# do not change unnecessarily\n\tid -4 class nvme\t\t# do not change unnecessarily\n\t# weight 2.000\n\talg straw2\n\thash 0\t# rjenkins1\n\titem osd.0 weight 1.000\n\titem osd.1 weight 1.000\n}}\n\n# rules\n{}\n# end crush map\n",
        rule("h class nvme")
    );
    let map = round_trips(&text);
    // A class with no device still gets an (empty) shadow bucket.
    let nvme = map.bucket(-4).expect("h~nvme");
    assert_eq!(
        (nvme.name.as_str(), nvme.size(), nvme.weight),
        ("h~nvme", 0, 0)
    );
}

#[test]
fn without_rules_ceph_drops_class_ids() {
    let text = format!(
        "device 0 osd.0 class ssd\n{TYPES}host h {{\n\tid -1\n\tid -2 class ssd\n\talg straw2\n\titem osd.0\n}}\n"
    );
    let map = ok(&text);
    assert_eq!(map.buckets.iter().flatten().count(), 1);
    assert!(map.bucket(-1).is_some_and(|b| b.class_ids.is_empty()));
}

#[test]
fn weights_use_f32_arithmetic() {
    let text = format!(
        "device 0 osd.0\ndevice 1 osd.1\n{TYPES}host h {{\n\talg straw2\n\thash rjenkins1\n\titem osd.0 weight 99.192\n\titem osd.1 weight 1e-1\n}}\n"
    );
    let map = ok(&text);
    let b = map.bucket(-1).expect("h");
    // f32: 99.192 -> 6500647 (f64 would give 6500646).
    assert_eq!(b.item_weights, vec![6_500_647, 6553]);
    assert_eq!((99.192f64 * 65536.0) as u32, 6_500_646);
}

#[test]
fn uniform_tree_positions_and_unnamed_rules_round_trip() {
    let text = "# begin crush map\ntunable choose_total_tries 50\n\n# devices\ndevice 0 osd.0\ndevice 1 osd.1\ndevice 3 osd.3\n\n# types\ntype 1 host\ntype 2 root\n\n# buckets\nhost u {\n\tid -2\t\t# do not change unnecessarily\n\t# weight 3.000\n\talg uniform\t# do not change bucket size (2) unnecessarily\n\thash 0\t# rjenkins1\n\titem osd.1 weight 1.500 pos 0\n\titem osd.0 weight 1.500 pos 1\n}\nroot t {\n\tid -1\t\t# do not change unnecessarily\n\t# weight 4.000\n\talg tree\t# do not change pos for existing items unnecessarily\n\thash 0\t# rjenkins1\n\titem u weight 3.000 pos 0\n\titem osd.3 weight 1.000 pos 1\n}\n\n# rules\nrule  {\n\tid 2\n\ttype erasure\n\tmin_size 3\n\tmax_size 20\n\tstep set_chooseleaf_tries 5\n\tstep set_choose_tries 100\n\tstep set_choose_local_tries 0\n\tstep set_choose_local_fallback_tries 0\n\tstep set_chooseleaf_vary_r 1\n\tstep set_chooseleaf_stable 1\n\tstep take t\n\tstep noop\n\tstep choose indep 0 type host\n\tstep chooseleaf indep 2 type host\n\tstep emit\n}\n\n# end crush map\n"
        .to_string();
    // Ceph prints "type 0 osd" when type 0 has no name.
    let map = ok(&text);
    assert_eq!(
        print(&map),
        text.replace("# types\n", "# types\ntype 0 osd\n")
    );
    assert!(map.rule(2).is_some_and(|r| r.name.is_empty()));
    assert_eq!(
        map.bucket(-1).map(|b| b.node_weights.clone()),
        Some(vec![0, 0x30000, 0x40000, 0x10000])
    );
    // Positions given out of order are honoured.
    let swapped = text
        .replace("osd.1 weight 1.500 pos 0", "osd.1 weight 1.500 pos 1")
        .replace("osd.0 weight 1.500 pos 1", "osd.0 weight 1.500 pos 0");
    let m = parse(&swapped).expect("swapped positions");
    assert_eq!(m.bucket(-2).map(|b| b.items.clone()), Some(vec![0, 1]));
    // An undefined type 0 prints as "device" (and "type 0 osd" is added).
    let mut m = map.clone();
    if let Some(Some(r)) = m.rules.get_mut(2) {
        r.steps[10] = RuleStep::ChooseleafIndep { num: 2, type_id: 0 };
    }
    let printed = print(&m);
    assert!(printed.contains("# types\ntype 0 osd\ntype 1 host\n"));
    assert!(printed.contains("step chooseleaf indep 2 type device\n"));
}

#[test]
fn old_ruleset_lines_are_accepted() {
    let text = format!(
        "device 0 osd.0\n{TYPES}host h {{ alg straw2 item osd.0 }}\nrule r {{ ruleset 0 type replicated step take h step emit }}\nrule s {{ id 1 ruleset 1 type replicated min_size 2 max_size 300 step take h step emit }}\n"
    );
    let map = ok(&text);
    assert!(
        map.rule(0)
            .is_some_and(|r| (r.min_size, r.max_size) == (1, 100))
    );
    // min_size/max_size live in a u8 in Ceph's rule mask.
    assert!(
        map.rule(1)
            .is_some_and(|r| (r.min_size, r.max_size) == (2, 44))
    );
}

#[test]
fn choose_args_round_trip() {
    let base = std::fs::read_to_string(
        std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
        )
        .join("../../../shared/crush-vectors/d02_h3x4/map.txt"),
    )
    .expect("d02 map");
    // Ceph keeps choose_args in a map keyed by a signed id (-1 first) but
    // prints the id as unsigned.
    let section = "\n# choose_args\nchoose_args 18446744073709551615 {\n  {\n    bucket_id -2\n    weight_set [\n      [ 0.250 0.250 0.250 0.250 ]\n    ]\n  }\n}\nchoose_args 1 {\n  {\n    bucket_id -1\n    weight_set [\n      [ 1.000 2.000 0.500 0.000 ]\n      [ 1.000 1.000 1.000 1.000 ]\n    ]\n    ids [ -10 -11 -12 -13 ]\n  }\n  {\n    bucket_id -4\n    ids [ 7 8 9 ]\n  }\n}\n";
    let text = base.replace(
        "\n# end crush map\n",
        &format!("{section}\n# end crush map\n"),
    );
    let map = round_trips(&text);
    assert_eq!(map.choose_args.len(), 2);
    assert_eq!(map.choose_args[0].id, -1);
    let pool1: &ChooseArgMap = &map.choose_args[1];
    assert_eq!(pool1.id, 1);
    let first: &ChooseArg = &pool1.args[0];
    assert_eq!(first.bucket_id, -1);
    assert_eq!(first.weight_set[0], vec![0x10000, 0x20000, 0x8000, 0]);
    assert_eq!(first.ids, vec![-10, -11, -12, -13]);
    assert_eq!(pool1.args[1].bucket_id, -4);
    assert!(pool1.args[1].weight_set.is_empty());
}

#[test]
fn classes_with_choose_args_round_trip() {
    let base = std::fs::read_to_string(
        std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
        )
        .join("../../../shared/crush-vectors/d08_classes/map.txt"),
    )
    .expect("d08 map");
    // choose_args may refer to shadow buckets, which exist once rules are read.
    let section = "\n# choose_args\nchoose_args 0 {\n  {\n    bucket_id -15\n    weight_set [\n      [ 0.100 0.200 0.300 0.400 ]\n    ]\n  }\n}\n";
    let text = base.replace(
        "\n# end crush map\n",
        &format!("{section}\n# end crush map\n"),
    );
    let map = round_trips(&text);
    assert_eq!(map.choose_args[0].args[0].bucket_id, -15);
}
