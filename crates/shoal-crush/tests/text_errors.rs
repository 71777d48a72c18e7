//! Parse errors point at the offending token and say what was wrong.

use shoal_crush::text::parse;

const HEAD: &str = "\
device 0 osd.0 class ssd
device 1 osd.1
type 0 osd
type 1 host
type 2 root
";

const RULE: &str = "\
rule r {
	id 0
	type replicated
	min_size 1
	max_size 10
	step take h
	step chooseleaf firstn 0 type osd
	step emit
}
";

fn host(body: &str) -> String {
    format!("{HEAD}host h {{\n\tid -1\n\talg straw2\n\thash 0\n{body}}}\n")
}

/// Asserts that `text` fails at `line`:`column` with a message containing `msg`.
#[track_caller]
fn fails(text: &str, line: usize, column: usize, msg: &str) {
    match parse(text) {
        Ok(_) => panic!("parsed, expected an error containing {msg:?}"),
        Err(e) => {
            assert!(
                e.message.contains(msg),
                "message {:?} lacks {msg:?}",
                e.message
            );
            assert_eq!((e.line, e.column), (line, column), "{e}");
            assert!(
                e.to_string()
                    .starts_with(&format!("line {line}, column {column}: "))
            );
        }
    }
}

#[test]
fn syntax_errors() {
    fails(
        &host("\titem osd.0 wieght 1.0\n"),
        10,
        13,
        "expected 'weight', 'pos', another 'item' or '}', found 'wieght'",
    );
    fails(
        &host("\titem osd.0 weight abc\n"),
        10,
        20,
        "expected an item weight, found 'abc'",
    );
    fails(
        &host("\titem osd.0 weight 1 pos -1\n"),
        10,
        26,
        "expected an item position, found '-1'",
    );
    fails(
        &format!("{HEAD}host h {{\n\talg straw2\n\titem osd.0\n"),
        9,
        1,
        "expected 'weight', 'pos', another 'item' or '}', found end of input",
    );
    fails("device x osd.0\n", 1, 8, "expected a device id, found 'x'");
    fails(
        "device 0 osd@0\n",
        1,
        10,
        "found 'osd@0' (names may contain only",
    );
    fails(
        "device 0 osd.0\ntype 0 osd\nhost h {\n\talg straw2\n",
        5,
        1,
        "expected 'hash', 'item' or '}', found end of input",
    );
    fails(
        "type 0 osd\nhost h {\n\thash 0\n\talg straw2\n}\n",
        3,
        2,
        "expected 'id' or 'alg', found 'hash'",
    );
    fails(
        "type 0 osd\nhost h { id 1 alg straw2 }\n",
        2,
        13,
        "expected a negative bucket id, found '1'",
    );
    fails(
        &format!("{HEAD}rule r {{\n\tid 0\n\ttype replicated\n}}\n"),
        9,
        1,
        "expected 'step', found '}'",
    );
    fails(
        &format!("{HEAD}rule r {{\n\tid 0\n\ttype mirrored\n"),
        8,
        7,
        "expected 'replicated' or 'erasure', found 'mirrored'",
    );
    fails(
        &format!("{}{}", host(""), RULE.replace("step emit", "step emitt")),
        18,
        7,
        "found 'emitt'",
    );
    fails(
        "{\n",
        1,
        1,
        "expected a tunable, device, type, bucket, rule or choose_args, found '{'",
    );
    fails(
        "tunable choose_total_tries -1\n",
        1,
        28,
        "expected a tunable value, found '-1'",
    );
    fails(
        "device 99999999999 osd.0\n",
        1,
        8,
        "a device id 99999999999 is out of range",
    );
}

#[test]
fn section_order_errors() {
    fails(
        &format!("{}device 2 osd.2\n", host("")),
        11,
        1,
        "'device' lines must come before buckets and rules",
    );
    fails(
        &format!("{}{RULE}host g {{\n\talg straw2\n}}\n", host("")),
        20,
        1,
        "buckets must be defined before rules",
    );
    fails(
        &format!("{}{RULE}choose_args 1 {{\n}}\nrule x {{\n", host("")),
        22,
        1,
        "expected 'choose_args'",
    );
}

#[test]
fn semantic_errors() {
    fails(
        &host("\titem osd.9 weight 1.0\n"),
        10,
        7,
        "item 'osd.9' in bucket 'h' is not defined",
    );
    fails(
        &format!("{HEAD}host h {{\n\tid -1\n\talg straw3\n}}\n"),
        8,
        6,
        "unknown bucket alg 'straw3'",
    );
    fails(
        &format!("{HEAD}rack h {{\n\tid -1\n\talg straw2\n}}\n"),
        6,
        1,
        "bucket type 'rack' is not defined",
    );
    fails(
        &format!("{}host g {{\n\tid -1\n\talg straw2\n}}\n", host("")),
        12,
        5,
        "duplicate bucket id -1",
    );
    fails(
        &format!("{}host h {{\n\talg straw2\n}}\n", host("")),
        11,
        6,
        "bucket or device 'h' is already defined",
    );
    fails(
        &format!("{}host osd.1 {{\n\talg straw2\n}}\n", host("")),
        11,
        6,
        "bucket or device 'osd.1' is already defined",
    );
    fails(
        &format!(
            "{HEAD}host h {{\n\talg uniform\n\titem osd.0 weight 1\n\titem osd.1 weight 2\n}}\n"
        ),
        9,
        7,
        "uniform bucket items must all have identical weights",
    );
    fails(
        &host("\titem osd.0 weight 101\n"),
        10,
        20,
        "device weight limited to 100",
    );
    fails(
        &host("\titem osd.0 pos 0\n\titem osd.1 pos 0\n"),
        11,
        17,
        "explicit pos 0, which is occupied",
    );
    fails(
        &host("\titem osd.0 pos 2\n\titem osd.1\n"),
        10,
        17,
        "has pos 2 >= size 2",
    );
    fails(
        "tunable choose_fast_tries 1\n",
        1,
        9,
        "tunable choose_fast_tries not recognized",
    );
    fails(
        "device 0 osd.0\ndevice 0 osd.1\n",
        2,
        8,
        "device id 0 defined twice",
    );
    fails(
        "device 0 osd.0\ndevice 1 osd.0\n",
        2,
        10,
        "item osd.0 defined twice",
    );
}

#[test]
fn cycle_errors() {
    let text = format!(
        "{HEAD}host a {{\n\talg straw2\n\titem b\n}}\nhost b {{\n\talg straw2\n\titem a\n}}\n"
    );
    fails(&text, 12, 7, "item 'a' makes the bucket hierarchy cyclic");
    fails(
        &host("\titem h\n"),
        10,
        7,
        "item 'h' makes the bucket hierarchy cyclic",
    );
}

#[test]
fn rule_errors() {
    let map = host("\titem osd.0 weight 1.0\n");
    let with = |from: &str, to: &str| format!("{map}{}", RULE.replace(from, to));
    fails(
        &with("take h", "take nowhere"),
        17,
        12,
        "in rule 'r' item 'nowhere' not defined",
    );
    fails(
        &with("type osd", "type rack"),
        18,
        32,
        "in rule 'r' type 'rack' not defined",
    );
    fails(
        &with("take h", "take h class nvme"),
        17,
        20,
        "device class 'nvme' does not exist",
    );
    fails(
        &with("take h", "take osd.0 class ssd"),
        17,
        12,
        "step take osd.0 has no class information",
    );
    fails(
        &with("id 0", "id 300"),
        13,
        5,
        "rule id 300 is out of range",
    );
    let twice = format!("{map}{RULE}{}", RULE.replace("id 0", "id 1"));
    fails(&twice, 21, 6, "rule name 'r' already defined");
    let same_id = format!("{map}{RULE}{}", RULE.replace("rule r", "rule s"));
    fails(&same_id, 22, 5, "rule 0 already exists");
}

#[test]
fn choose_args_errors() {
    let map = format!(
        "{}{RULE}",
        host("\titem osd.0 weight 1.0\n\titem osd.1 weight 1.0\n")
    );
    let ca = |body: &str| format!("{map}choose_args 3 {{\n  {{\n    bucket_id {body}\n  }}\n}}\n");
    fails(&ca("-7"), 24, 15, "bucket -7 does not exist");
    fails(
        &ca("-1\n    weight_set [\n      [ 1.0 ]\n    ]"),
        26,
        7,
        "-1 needs exactly 2 weights but got 1",
    );
    fails(
        &ca("-1\n    ids [ -5 ]"),
        25,
        9,
        "-1 needs exactly 2 ids but got 1",
    );
    fails(
        &ca("-1\n    ids [ x ]"),
        25,
        11,
        "expected an id or ']', found 'x'",
    );
    let dup = format!("{map}choose_args 3 {{\n}}\nchoose_args 3 {{\n}}\n");
    fails(&dup, 24, 13, "choose_args 3 duplicated");
}
