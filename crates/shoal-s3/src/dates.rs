//! Conversions between S3's timestamps and the model's milliseconds.

use std::time::SystemTime;

use s3s::dto::Timestamp;

/// Seconds since the epoch of an S3 timestamp (HTTP dates have second
/// precision, so conditions compare seconds).
pub fn unix_secs(t: &Timestamp) -> i64 {
    let t: time::OffsetDateTime = t.clone().into();
    t.unix_timestamp()
}

/// An HTTP date (RFC 9110 IMF-fixdate).
pub fn httpdate(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(&fmt).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format_and_convert() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(784_111_777);
        assert_eq!(httpdate(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(unix_secs(&Timestamp::from(t)), 784_111_777);
    }
}
