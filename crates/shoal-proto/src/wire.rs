//! The derive set every wire type carries.

/// Declares wire types: rkyv (validated decoding) and serde (JSON output of
/// the CLI) derives. The items live in a private module re-exported whole,
/// because rkyv's generated resolver types carry no docs (the items
/// themselves are documented).
macro_rules! wire {
    ($($item:item)*) => {
        #[allow(missing_docs)]
        mod wire_types {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[derive(
                    Clone,
                    Debug,
                    PartialEq,
                    rkyv::Archive,
                    rkyv::Serialize,
                    rkyv::Deserialize,
                    serde::Serialize,
                    serde::Deserialize,
                )]
                #[rkyv(derive(Debug))]
                $item
            )*
        }
        pub use wire_types::*;
    };
}

pub(crate) use wire;
