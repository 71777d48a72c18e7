//! Helpers to carry rkyv messages in frame bodies.
//!
//! The transport treats bodies as opaque bytes; these helpers encode any
//! rkyv type and decode it back with full validation (`bytecheck`), so a
//! corrupt or hostile body is an error, never undefined behaviour.

use bytes::Bytes;
use rkyv::api::high::{HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::de::Pool;
use rkyv::rancor::{Error as RkyvError, Strategy};
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;

use crate::error::{NetError, Result};
use crate::frame::Frame;

/// Alignment rkyv archives are decoded at.
const ALIGN: usize = 16;

/// Serializes `value` into a frame body.
pub fn encode<T>(value: &T) -> Result<Bytes>
where
    T: for<'a> rkyv::Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, RkyvError>>,
{
    let bytes = rkyv::to_bytes::<RkyvError>(value).map_err(|e| NetError::Codec(e.to_string()))?;
    Ok(Bytes::from_owner(bytes))
}

/// Validates and deserializes a frame body. Misaligned input is copied to
/// an aligned buffer first (bodies are small; payloads never pass here).
pub fn decode<T>(body: &[u8]) -> Result<T>
where
    T: rkyv::Archive,
    T::Archived: for<'a> CheckBytes<HighValidator<'a, RkyvError>>
        + rkyv::Deserialize<T, Strategy<Pool, RkyvError>>,
{
    let res = if (body.as_ptr() as usize) % ALIGN == 0 {
        rkyv::from_bytes::<T, RkyvError>(body)
    } else {
        let mut aligned = AlignedVec::<ALIGN>::with_capacity(body.len());
        aligned.extend_from_slice(body);
        rkyv::from_bytes::<T, RkyvError>(&aligned)
    };
    res.map_err(|e| NetError::Codec(e.to_string()))
}

impl Frame {
    /// A frame whose body is `value` encoded with rkyv.
    pub fn encode<T>(msg_type: u16, value: &T) -> Result<Frame>
    where
        T: for<'a> rkyv::Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, RkyvError>>,
    {
        Ok(Frame::new(msg_type, encode(value)?))
    }

    /// Decodes the body as a `T`, validating it.
    pub fn decode_body<T>(&self) -> Result<T>
    where
        T: rkyv::Archive,
        T::Archived: for<'a> CheckBytes<HighValidator<'a, RkyvError>>
            + rkyv::Deserialize<T, Strategy<Pool, RkyvError>>,
    {
        decode(&self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, PartialEq)]
    struct Msg {
        epoch: u64,
        name: String,
        osds: Vec<i32>,
    }

    #[test]
    fn roundtrip_aligned_and_not() {
        let m = Msg {
            epoch: 7,
            name: "pg 1.2f".into(),
            osds: vec![1, 5, 9],
        };
        let body = encode(&m).unwrap();
        assert_eq!(decode::<Msg>(&body).unwrap(), m);
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&body);
        assert_eq!(decode::<Msg>(&shifted[1..]).unwrap(), m);
        let f = Frame::encode(99, &m).unwrap();
        assert_eq!(f.decode_body::<Msg>().unwrap(), m);
    }

    #[test]
    fn garbage_is_an_error() {
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            // Must not panic; whatever it returns is fine.
            let _ = decode::<Msg>(&junk);
        }
        assert!(decode::<Msg>(&[0xff; 40]).is_err());
    }
}
