//! Fuzzes the frame decoder: arbitrary bytes, fed whole and in pieces,
//! under several size limits. The decoder must never panic, must give the
//! same answer however the input is split, and every frame it returns
//! must re-encode to exactly the bytes it was decoded from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_net::FrameLimits;
use shoal_net::frame::{FrameDecoder, decode_all};

fuzz_target!(|input: &[u8]| {
    // The first byte picks the limits and where to split the input.
    let Some((&knob, data)) = input.split_first() else {
        return;
    };
    let limits = match knob % 3 {
        0 => FrameLimits::default(),
        1 => FrameLimits {
            max_body: 64,
            max_payload: 512,
        },
        _ => FrameLimits {
            max_body: 0,
            max_payload: 0,
        },
    };
    let (frames, err) = decode_all(data, limits);

    let step = usize::from(knob / 3).max(1);
    let mut dec = FrameDecoder::new(limits);
    let mut chunked = Vec::new();
    let mut chunked_err = None;
    'feed: for piece in data.chunks(step) {
        dec.feed(piece);
        loop {
            match dec.decode() {
                Ok(Some(f)) => chunked.push(f),
                Ok(None) => break,
                Err(e) => {
                    chunked_err = Some(e);
                    break 'feed;
                }
            }
        }
    }
    if chunked_err.is_none() {
        chunked_err = dec.finish().err();
    }
    assert_eq!(chunked, frames);
    assert_eq!(chunked_err, err);

    let mut reencoded = Vec::new();
    for f in &frames {
        assert!(f.body.len() <= limits.max_body as usize);
        assert!(f.payload.len() <= limits.max_payload as usize);
        reencoded.extend(f.to_vec().expect("decoded frames fit the header"));
    }
    assert_eq!(&data[..reencoded.len()], &reencoded[..]);
});
