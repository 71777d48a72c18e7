//! Order-preserving keys of the metadata tables.
//!
//! A component is encoded as a 4-byte big-endian length and its bytes, so a
//! collection's objects share a prefix (listing is a range scan), one
//! object's omap keys share a longer prefix, and no name can forge another's
//! prefix. Objects list in (length, bytes) order: stable, not alphabetical.

/// `coll`.
pub fn coll(coll: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + coll.len());
    push(&mut k, coll.as_bytes());
    k
}

/// `coll`, `name`.
pub fn object(coll: &str, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + coll.len() + name.len());
    push(&mut k, coll.as_bytes());
    push(&mut k, name.as_bytes());
    k
}

/// `coll`, `name`, then the raw omap key (last, unencoded: keeps byte order).
pub fn omap(coll: &str, name: &str, key: &[u8]) -> Vec<u8> {
    let mut k = object(coll, name);
    k.extend_from_slice(key);
    k
}

/// Decodes the object name from an object key of `coll`.
pub fn object_name(key: &[u8], coll_len: usize) -> Option<String> {
    let rest = key.get(4 + coll_len..)?;
    let (len, name) = rest.split_first_chunk::<4>()?;
    let len = u32::from_be_bytes(*len) as usize;
    String::from_utf8(name.get(..len)?.to_vec()).ok()
}

fn push(k: &mut Vec<u8>, part: &[u8]) {
    k.extend_from_slice(&(part.len() as u32).to_be_bytes());
    k.extend_from_slice(part);
}

/// The smallest key greater than every key starting with `prefix`, if any.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_prefixes_nest() {
        let k = object("1.2f", "obj");
        assert!(k.starts_with(&coll("1.2f")));
        assert_eq!(object_name(&k, "1.2f".len()).as_deref(), Some("obj"));
        assert!(omap("1.2f", "obj", b"key").starts_with(&k));
        assert!(
            !object("1.2f", "objx").starts_with(&k),
            "no name is another's prefix"
        );
        assert_eq!(prefix_end(&[1, 2, 0xff]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[0xff]), None);
    }
}
