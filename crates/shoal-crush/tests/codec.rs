//! Shoal's binary map form: round trips, and corrupt input never panics.

mod common;

use shoal_crush::codec::{CodecError, MAGIC, VERSION, decode, encode, validate};
use shoal_crush::text::parse;
use shoal_crush::{Bucket, ChooseArg, ChooseArgMap, CrushMap};

fn vector_maps() -> Vec<(String, CrushMap)> {
    common::map_dirs()
        .into_iter()
        .map(|dir| {
            let name = dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("?")
                .to_string();
            let map = parse(&common::read(&dir, "map.txt")).expect("vector map parses");
            (name, map)
        })
        .collect()
}

#[test]
fn every_vector_map_round_trips() {
    for (name, map) in vector_maps() {
        validate(&map).unwrap_or_else(|e| panic!("{name}: {e}"));
        let bytes = encode(&map);
        assert_eq!(bytes[..4], MAGIC);
        assert_eq!(bytes[4..8], VERSION.to_le_bytes());
        assert_eq!(decode(&bytes).as_ref(), Ok(&map), "{name}");
    }
}

#[test]
fn header_errors() {
    let map = &vector_maps()[0].1;
    let bytes = encode(map);
    assert_eq!(decode(&bytes[..3]), Err(CodecError::Truncated(3)));
    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert_eq!(decode(&bad), Err(CodecError::BadMagic));
    let mut bad = bytes.clone();
    bad[4] = 9;
    assert_eq!(decode(&bad), Err(CodecError::UnsupportedVersion(9)));
    assert!(matches!(decode(&bytes[..8]), Err(CodecError::Archive(_))));
}

/// Positions to corrupt: all of them for small inputs, a spread otherwise.
fn positions(len: usize, max: usize) -> impl Iterator<Item = usize> {
    let step = len.div_ceil(max).max(1);
    (0..len).step_by(step).chain(len.saturating_sub(64)..len)
}

#[test]
fn truncations_never_panic() {
    for (name, map) in vector_maps() {
        let bytes = encode(&map);
        for cut in positions(bytes.len(), 400) {
            assert!(
                decode(&bytes[..cut]).is_err(),
                "{name}: truncated at {cut} decoded"
            );
        }
    }
}

#[test]
fn bit_flips_never_panic() {
    for (name, map) in vector_maps() {
        let bytes = encode(&map);
        let mut accepted = 0;
        for at in positions(bytes.len(), 300) {
            for bit in [0, 3, 7] {
                let mut bad = bytes.clone();
                bad[at] ^= 1 << bit;
                // Either an error, or a map that passes validation.
                if let Ok(m) = decode(&bad) {
                    assert_eq!(validate(&m), Ok(()), "{name}");
                    accepted += 1;
                }
            }
        }
        assert!(accepted < positions(bytes.len(), 300).count() * 3, "{name}");
    }
}

/// Edits bucket -1 of `m`.
fn first_bucket(m: &mut CrushMap, f: impl FnOnce(&mut Bucket)) {
    if let Some(Some(b)) = m.buckets.get_mut(0) {
        f(b);
    }
}

#[test]
fn invariants_are_checked() {
    let base = vector_maps().remove(1).1; // d02: 3 hosts x 4 OSDs
    let check = |what: &str, edit: &dyn Fn(&mut CrushMap)| {
        let mut m = base.clone();
        edit(&mut m);
        let got = decode(&encode(&m));
        assert!(
            matches!(got, Err(CodecError::Invalid(_))),
            "{what}: {got:?}"
        );
    };
    check("id", &|m| first_bucket(m, |b| b.id = -2));
    check("missing item", &|m| first_bucket(m, |b| b.items.push(-99)));
    check("weight", &|m| first_bucket(m, |b| b.weight += 1));
    check("weights", &|m| {
        first_bucket(m, |b| b.item_weights.truncate(1))
    });
    check("straws", &|m| first_bucket(m, |b| b.straws.push(1)));
    check("cycle", &|m| {
        first_bucket(m, |b| {
            b.items.push(-4);
            b.item_weights.push(0);
        })
    });
    check("rule id", &|m| m.rules.push(m.rules[0].clone()));
    check("device order", &|m| m.devices.swap(0, 1));
    check("choose args", &|m| {
        m.choose_args.push(ChooseArgMap {
            id: 1,
            args: vec![ChooseArg {
                bucket_id: -1,
                ids: vec![1],
                weight_set: Vec::new(),
            }],
        })
    });
}

#[test]
fn smallest_map_every_byte_and_bit() {
    let (name, map) = vector_maps().remove(0);
    let bytes = encode(&map);
    for cut in 0..bytes.len() {
        assert!(
            decode(&bytes[..cut]).is_err(),
            "{name}: truncated at {cut} decoded"
        );
    }
    for at in 0..bytes.len() {
        for bit in 0..8 {
            let mut bad = bytes.clone();
            bad[at] ^= 1 << bit;
            if let Ok(m) = decode(&bad) {
                assert_eq!(validate(&m), Ok(()), "{name}");
            }
        }
    }
}

#[test]
fn absurd_retry_counts_are_refused_on_decode() {
    let text = std::fs::read_to_string(common::vectors_dir().join("d02_h3x4/map.txt")).unwrap();
    let mut map = shoal_crush::text::parse(&text).unwrap();
    map.tunables.choose_total_tries = 4_000_000_000;
    let bytes = shoal_crush::codec::encode(&map);
    let err = shoal_crush::codec::decode(&bytes).unwrap_err();
    assert!(err.to_string().contains("choose_total_tries"), "{err}");
    map.tunables.choose_total_tries = shoal_crush::codec::MAX_TRIES;
    assert!(shoal_crush::codec::decode(&shoal_crush::codec::encode(&map)).is_ok());
}

#[test]
fn absurd_step_counts_are_refused_on_decode() {
    use shoal_crush::RuleStep;
    let text = std::fs::read_to_string(common::vectors_dir().join("d02_h3x4/map.txt")).unwrap();
    let mut map = shoal_crush::text::parse(&text).unwrap();
    let set_num = |map: &mut shoal_crush::CrushMap, n: i32| {
        for rule in map.rules.iter_mut().flatten() {
            for step in &mut rule.steps {
                if let RuleStep::ChooseFirstn { num, .. }
                | RuleStep::ChooseIndep { num, .. }
                | RuleStep::ChooseleafFirstn { num, .. }
                | RuleStep::ChooseleafIndep { num, .. } = step
                {
                    *num = n;
                }
            }
        }
    };
    set_num(&mut map, 63_232);
    let err = shoal_crush::codec::decode(&shoal_crush::codec::encode(&map)).unwrap_err();
    assert!(err.to_string().contains("63232"), "{err}");
    set_num(&mut map, shoal_crush::codec::MAX_STEP_NUM);
    assert!(shoal_crush::codec::decode(&shoal_crush::codec::encode(&map)).is_ok());
}
