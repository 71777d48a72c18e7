//! CRUSH, bit-exact with Ceph.
//!
//! - [`model`]: the map (devices, types, buckets, rules, tunables).
//! - [`builder`]: constructing buckets and device-class shadow trees the way
//!   Ceph's builder does, so derived data (straw lengths, list sums, tree node
//!   weights) match bit for bit.
//! - [`text`]: Ceph's text format (`crushtool -d` / `crushtool -c`).
//! - [`mapper`]: `crush_do_rule`, with a reusable [`mapper::Workspace`] so the
//!   hot path does not allocate.
//! - [`codec`]: Shoal's binary form of a map (rkyv, validated on decode).

pub mod builder;
pub mod ceph_binary;
pub mod codec;
pub mod edit;
pub mod hash;
pub mod ln;
mod ln_tables;
pub mod mapper;
pub mod model;
pub mod tester;
pub mod text;

pub use model::*;
