//! Helpers shared by the integration tests: small CRUSH maps in Ceph's text
//! format and OSDMaps built from them.

#![allow(dead_code)]

use std::fmt::Write;

use shoal_crush::CrushMap;
use shoal_map::{Fsid, OsdMap, Pool};

/// `hosts` hosts of `per_host` OSDs (ids dense, host-major) under root
/// `default`; OSD `i` weighs `1 + (i + salt) % 3`. Rule 0 is replicated
/// (chooseleaf firstn host), rule 1 erasure (chooseleaf indep host),
/// rule 2 replicated with `max_size 2`.
pub fn crush_text(hosts: usize, per_host: usize, salt: usize) -> String {
    let mut t = String::from(
        "tunable choose_local_tries 0\ntunable choose_local_fallback_tries 0\n\
         tunable choose_total_tries 50\ntunable chooseleaf_descend_once 1\n\
         tunable chooseleaf_vary_r 1\ntunable chooseleaf_stable 1\n\
         tunable straw_calc_version 1\ntunable allowed_bucket_algs 54\n",
    );
    for i in 0..hosts * per_host {
        writeln!(t, "device {i} osd.{i}").unwrap();
    }
    t.push_str("type 0 osd\ntype 1 host\ntype 2 root\n");
    for h in 0..hosts {
        writeln!(
            t,
            "host host{h} {{\n\tid -{}\n\talg straw2\n\thash 0",
            h + 2
        )
        .unwrap();
        for o in 0..per_host {
            let i = h * per_host + o;
            writeln!(t, "\titem osd.{i} weight {}.000", 1 + (i + salt) % 3).unwrap();
        }
        t.push_str("}\n");
    }
    t.push_str("root default {\n\tid -1\n\talg straw2\n\thash 0\n");
    for h in 0..hosts {
        writeln!(t, "\titem host{h}").unwrap();
    }
    t.push_str("}\n");
    t.push_str(
        "rule rep {\n\tid 0\n\ttype replicated\n\tmin_size 1\n\tmax_size 10\n\
         \tstep take default\n\tstep chooseleaf firstn 0 type host\n\tstep emit\n}\n\
         rule ec {\n\tid 1\n\ttype erasure\n\tmin_size 3\n\tmax_size 20\n\
         \tstep set_chooseleaf_tries 5\n\tstep set_choose_tries 100\n\
         \tstep take default\n\tstep chooseleaf indep 0 type host\n\tstep emit\n}\n\
         rule small {\n\tid 2\n\ttype replicated\n\tmin_size 1\n\tmax_size 2\n\
         \tstep take default\n\tstep chooseleaf firstn 0 type host\n\tstep emit\n}\n",
    );
    t
}

/// [`crush_text`] compiled.
pub fn crush(hosts: usize, per_host: usize, salt: usize) -> CrushMap {
    shoal_crush::text::parse(&crush_text(hosts, per_host, salt)).expect("test crush map")
}

/// The test fsid.
pub const FSID: Fsid = Fsid([0x5a; 16]);

/// 4 hosts x 3 OSDs, pool 1 replicated (size 3, 16 PGs, rule 0) and pool 2
/// erasure (2+1, 8 PGs, rule 1).
pub fn base_map() -> OsdMap {
    OsdMap::from_crush(
        FSID,
        crush(4, 3, 0),
        [
            Pool::new_replicated(1, "rep", 3, 16, 0),
            Pool::new_erasure(2, "ec", 2, 1, 8, 1),
        ],
    )
    .expect("base map")
}
