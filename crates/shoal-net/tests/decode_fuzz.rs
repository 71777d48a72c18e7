//! Randomized and corpus-driven checks of the frame decoder (the same
//! properties the cargo-fuzz target in `fuzz/` checks).

use bytes::Bytes;
use proptest::prelude::*;
use shoal_net::frame::{FrameDecoder, decode_all};
use shoal_net::{Frame, FrameError, FrameLimits};

fn limit_sets() -> [FrameLimits; 3] {
    [
        FrameLimits::default(),
        FrameLimits {
            max_body: 64,
            max_payload: 512,
        },
        FrameLimits {
            max_body: 0,
            max_payload: 0,
        },
    ]
}

/// Decodes `data` fed in pieces cut at `cuts`.
fn decode_chunked(
    data: &[u8],
    cuts: &[usize],
    limits: FrameLimits,
) -> (Vec<Frame>, Option<FrameError>) {
    let mut dec = FrameDecoder::new(limits);
    let mut frames = Vec::new();
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.push(data.len());
    points.sort_unstable();
    let mut at = 0;
    for p in points {
        dec.feed(&data[at..p]);
        at = p;
        loop {
            match dec.decode() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
    }
    let err = dec.finish().err();
    (frames, err)
}

/// The decoder's contract on any input: no panic; the same result however
/// the bytes are split; decoded frames re-encode to exactly the bytes they
/// came from; every frame respects the limits.
fn check(data: &[u8], cuts: &[usize]) -> Vec<Option<FrameError>> {
    limit_sets()
        .into_iter()
        .map(|limits| {
            let (frames, err) = decode_all(data, limits);
            let chunked = decode_chunked(data, cuts, limits);
            assert_eq!(chunked.0, frames);
            // Truncation is reported with how much was buffered, which is
            // the same either way; other errors must match exactly.
            assert_eq!(chunked.1, err);
            let mut reencoded = Vec::new();
            for f in &frames {
                assert!(f.body.len() <= limits.max_body as usize);
                assert!(f.payload.len() <= limits.max_payload as usize);
                reencoded.extend(f.to_vec().unwrap());
            }
            assert_eq!(&data[..reencoded.len()], &reencoded[..]);
            if err.is_none() {
                assert_eq!(reencoded.len(), data.len());
            }
            err
        })
        .collect()
}

fn frame_strategy() -> impl Strategy<Value = Frame> {
    (
        any::<u16>(),
        proptest::collection::vec(any::<u8>(), 0..80),
        proptest::collection::vec(any::<u8>(), 0..600),
    )
        .prop_map(|(t, b, p)| Frame::new(t, Bytes::from(b)).with_payload(Bytes::from(p)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048),
                       cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        check(&data, &cuts);
    }

    #[test]
    fn valid_frames_round_trip(frames in proptest::collection::vec(frame_strategy(), 0..6),
                               cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let wire: Vec<u8> = frames.iter().flat_map(|f| f.to_vec().unwrap()).collect();
        let errs = check(&wire, &cuts);
        prop_assert_eq!(errs[0].clone(), None);
        prop_assert_eq!(decode_all(&wire, FrameLimits::default()).0, frames);
    }

    #[test]
    fn mutated_valid_frames(frames in proptest::collection::vec(frame_strategy(), 1..6),
                            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
                            truncate in any::<Option<usize>>(),
                            cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let mut wire: Vec<u8> = frames.iter().flat_map(|f| f.to_vec().unwrap()).collect();
        for (at, x) in flips {
            let i = at % wire.len();
            wire[i] ^= x;
        }
        if let Some(t) = truncate {
            wire.truncate(t % (wire.len() + 1));
        }
        check(&wire, &cuts);
    }
}

#[test]
fn corpus_replay() {
    let dir = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/corpus");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(&path).unwrap();
        let errs = check(&data, &[1, 7, 16, 17, 100]);
        if name.starts_with("ok-") {
            assert_eq!(errs[0], None, "{name}");
        } else if name.starts_with("err-") {
            assert!(errs[0].is_some(), "{name} decoded cleanly");
        }
        n += 1;
    }
    assert!(n >= 10, "corpus has only {n} files");
}
