//! Ceph's own binary maps (`map.bin`, written by `crushtool -c`) decode to
//! the same map as their text, and corrupt bytes are errors.

mod common;

use shoal_crush::ceph_binary::decode;

#[test]
fn every_vector_map_bin_decodes_to_its_text() {
    for dir in common::map_dirs() {
        let bytes = std::fs::read(dir.join("map.bin")).unwrap();
        let map = decode(&bytes).unwrap_or_else(|e| panic!("{dir:?}: {e}"));
        let text = common::read(&dir, "map.txt");
        assert_eq!(shoal_crush::text::print(&map), text, "{dir:?}");
        assert_eq!(
            map,
            shoal_crush::text::parse(&text).unwrap(),
            "{dir:?}: same model"
        );
    }
}

#[test]
fn damaged_ceph_maps_are_errors_not_panics() {
    let bytes = std::fs::read(common::vectors_dir().join("d08_classes/map.bin")).unwrap();
    // Ceph's encoding ends with optional sections (tunables, classes,
    // choose_args): a cut exactly between two of them is a valid older map.
    // Every other cut must be an error.
    let accepted: Vec<usize> = (0..bytes.len())
        .filter(|&cut| decode(&bytes[..cut]).is_ok())
        .collect();
    assert!(accepted.len() <= 8, "cuts accepted: {accepted:?}");
    for i in (0..bytes.len()).step_by(3) {
        for bit in [0, 3, 7] {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            let _ = decode(&b); // must not panic; may decode to another valid map
        }
    }
}
