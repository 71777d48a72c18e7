//! Request checks S3 makes that `s3s` 0.14 does not: the clock of SigV2
//! requests, the form of a SigV2 Authorization header, the lifetime of
//! presigned URLs, and bodies without a length. They run before a request
//! reaches `s3s`; a failed check is answered at once.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, Uri};
use s3s::{S3Error, S3ErrorCode};

/// How far a request's clock may be from ours (S3's 15 minutes).
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);
/// The longest a presigned URL may be valid (S3's 7 days).
pub const MAX_PRESIGNED_SECS: u64 = 7 * 24 * 3600;

fn error(code: S3ErrorCode, msg: &str) -> S3Error {
    S3Error::with_message(code, msg.to_string())
}

/// Parses an HTTP date (`Tue, 07 Jul 2010 21:53:04 GMT`, or with the zone
/// written `UTC`, `+0000` or `-0000` as RFC 2822 dates have it); none when
/// it is not one or lies before the epoch.
fn parse_http_date(s: &str) -> Option<SystemTime> {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second]"
    );
    let s = s.trim();
    let local = ["GMT", "UTC", "+0000", "-0000"]
        .iter()
        .find_map(|zone| s.strip_suffix(zone))?;
    let t = time::PrimitiveDateTime::parse(local.trim_end(), &fmt).ok()?;
    let secs = u64::try_from(t.assume_utc().unix_timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Parses an ISO 8601 basic time (`20130524T000000Z`).
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let t = time::PrimitiveDateTime::parse(s.trim(), &fmt).ok()?;
    let secs = u64::try_from(t.assume_utc().unix_timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

fn skew(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b)
        .or_else(|_| b.duration_since(a))
        .unwrap_or_default()
}

/// The query parameter `name`, percent-decoded.
fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// The error S3 would answer `method uri headers` with before looking at
/// it further, if any.
pub fn check(method: &Method, uri: &Uri, headers: &HeaderMap, now: SystemTime) -> Option<S3Error> {
    let auth = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let auth_error = if let Some(cred) = auth.and_then(|a| a.strip_prefix("AWS ")) {
        check_sigv2(cred, headers, now)
    } else if query_param(uri, "X-Amz-Algorithm").is_some() {
        check_presigned_v4(uri, now)
    } else if query_param(uri, "AWSAccessKeyId").is_some() {
        check_presigned_v2(uri, now)
    } else {
        None
    };
    auth_error.or_else(|| check_length(method, uri, headers))
}

fn check_sigv2(cred: &str, headers: &HeaderMap, now: SystemTime) -> Option<S3Error> {
    if !cred.contains(':') {
        return Some(error(
            S3ErrorCode::InvalidArgument,
            "AWS authorization header is invalid; expected AwsAccessKeyId:signature",
        ));
    }
    // x-amz-date, when present (even empty), is the request's date.
    let header = |n: &str| headers.get(n).map(|v| v.to_str().unwrap_or(""));
    let date = header("x-amz-date").or_else(|| header("date"));
    let Some(when) = date.and_then(parse_http_date) else {
        return Some(error(
            S3ErrorCode::AccessDenied,
            "AWS authentication requires a valid Date or x-amz-date header",
        ));
    };
    (skew(when, now) > MAX_SKEW).then(|| {
        error(
            S3ErrorCode::RequestTimeTooSkewed,
            "The difference between the request time and the current time is too large.",
        )
    })
}

fn check_presigned_v4(uri: &Uri, now: SystemTime) -> Option<S3Error> {
    let denied = |m: &str| Some(error(S3ErrorCode::AccessDenied, m));
    let expires: i64 = match query_param(uri, "X-Amz-Expires").map(|e| e.parse()) {
        Some(Ok(e)) => e,
        _ => return None, // s3s answers a missing or malformed one
    };
    if expires < 0 || expires as u64 > MAX_PRESIGNED_SECS {
        return denied("X-Amz-Expires must be between 0 and 604800 seconds");
    }
    let signed = query_param(uri, "X-Amz-Date").and_then(|d| parse_amz_date(&d))?;
    if signed + Duration::from_secs(expires as u64) < now {
        return denied("Request has expired");
    }
    None
}

fn check_presigned_v2(uri: &Uri, now: SystemTime) -> Option<S3Error> {
    let expires: u64 = query_param(uri, "Expires")?.parse().ok()?;
    (SystemTime::UNIX_EPOCH + Duration::from_secs(expires) < now)
        .then(|| error(S3ErrorCode::AccessDenied, "Request has expired"))
}

/// An object upload (a path-style PUT of `/bucket/key` that is no copy)
/// needs its length (or chunked framing): without either, its body would
/// be read as the next request.
fn check_length(method: &Method, uri: &Uri, headers: &HeaderMap) -> Option<S3Error> {
    let object = uri
        .path()
        .trim_start_matches('/')
        .split_once('/')
        .is_some_and(|(_, key)| !key.is_empty());
    let copy = headers.contains_key("x-amz-copy-source");
    let uploads = *method == Method::PUT && object && !copy;
    let framed = headers.contains_key(http::header::CONTENT_LENGTH)
        || headers.contains_key(http::header::TRANSFER_ENCODING);
    (uploads && !framed).then(|| {
        error(
            S3ErrorCode::MissingContentLength,
            "You must provide the Content-Length HTTP header.",
        )
    })
}

/// The URI `s3s` should see for a request. SigV2 signs a request to a
/// bucket as `/bucket/` (AWS's rule, and what botocore signs) while the
/// path sent is often `/bucket`; `s3s` signs the path as sent, so such a
/// path gets its trailing slash back before the signature is checked.
pub fn sigv2_uri(headers: &HeaderMap, uri: &Uri) -> Option<Uri> {
    let v2 = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.starts_with("AWS "));
    let path = uri.path();
    let bucket_only = path.len() > 1 && !path[1..].contains('/');
    if !v2 || !bucket_only {
        return None;
    }
    let fixed = match uri.query() {
        Some(q) => format!("{path}/?{q}"),
        None => format!("{path}/"),
    };
    fixed.parse().ok()
}

/// The `x-amz-date` to add to a SigV4 request that carries its time in a
/// signed `Date` header instead (AWS allows either; `s3s` reads only
/// `x-amz-date`). The signature still covers the `Date` it came from.
pub fn sigv4_amz_date(headers: &HeaderMap) -> Option<http::HeaderValue> {
    let v4 = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256"));
    if !v4 || headers.contains_key("x-amz-date") {
        return None;
    }
    let date = headers.get(http::header::DATE)?.to_str().ok()?;
    let t: time::OffsetDateTime = parse_http_date(date)?.into();
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    http::HeaderValue::from_str(&t.format(&fmt).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn code(e: Option<S3Error>) -> Option<String> {
        e.map(|e| e.code().as_str().to_string())
    }

    #[test]
    fn sigv2_dates_are_checked() {
        let now = parse_http_date("Sun, 06 Dec 2026 12:00:00 GMT").unwrap();
        let uri: Uri = "/b/k".parse().unwrap();
        let get = Method::GET;
        let v2 = |date: Option<&str>| {
            let mut pairs = vec![("authorization", "AWS AK:sig"), ("content-length", "0")];
            if let Some(d) = date {
                pairs.push(("date", d));
            }
            check(&get, &uri, &headers(&pairs), now)
        };
        assert_eq!(code(v2(Some("Sun, 06 Dec 2026 12:10:00 GMT"))), None);
        for skewed in [
            "Tue, 07 Jul 2010 21:53:04 GMT",
            "Tue, 07 Jul 2030 21:53:04 GMT",
            "Tue, 07 Jul 9999 21:53:04 GMT",
        ] {
            assert_eq!(
                code(v2(Some(skewed))).as_deref(),
                Some("RequestTimeTooSkewed")
            );
        }
        for bad in [
            None,
            Some(""),
            Some("Bad Date"),
            Some("Tue, 07 Jul 1950 21:53:04 GMT"),
        ] {
            assert_eq!(code(v2(bad)).as_deref(), Some("AccessDenied"), "{bad:?}");
        }
        let empty_amz = headers(&[
            ("authorization", "AWS AK:sig"),
            ("date", "Sun, 06 Dec 2026 12:00:00 GMT"),
            ("x-amz-date", ""),
        ]);
        assert_eq!(
            code(check(&get, &uri, &empty_amz, now)).as_deref(),
            Some("AccessDenied")
        );
        let odd = headers(&[("authorization", "AWS HAHAHA")]);
        assert_eq!(
            code(check(&get, &uri, &odd, now)).as_deref(),
            Some("InvalidArgument")
        );
    }

    #[test]
    fn presigned_lifetimes_are_checked() {
        let now = parse_amz_date("20261206T120000Z").unwrap();
        let none = HeaderMap::new();
        let get = Method::GET;
        let v4 = |date: &str, expires: &str| {
            let uri: Uri = format!(
                "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={date}&X-Amz-Expires={expires}"
            )
            .parse()
            .unwrap();
            code(check(&get, &uri, &none, now))
        };
        assert_eq!(v4("20261206T115900Z", "3600"), None);
        assert_eq!(
            v4("20261206T100000Z", "3600").as_deref(),
            Some("AccessDenied")
        );
        assert_eq!(
            v4("20261206T115900Z", "609901").as_deref(),
            Some("AccessDenied")
        );
        assert_eq!(
            v4("20261206T115900Z", "-7").as_deref(),
            Some("AccessDenied")
        );
        let past = now - Duration::from_secs(10);
        let secs = past
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let uri: Uri = format!("/b/k?AWSAccessKeyId=AK&Expires={secs}&Signature=x")
            .parse()
            .unwrap();
        assert_eq!(
            code(check(&get, &uri, &none, now)).as_deref(),
            Some("AccessDenied")
        );
    }

    #[test]
    fn sigv4_with_a_date_header_gets_its_amz_date() {
        let v4 = "AWS4-HMAC-SHA256 Credential=A/20261206/us-east-1/s3/aws4_request";
        let h = headers(&[
            ("authorization", v4),
            ("date", "Sun, 06 Dec 2026 15:25:04 -0000"),
        ]);
        assert_eq!(sigv4_amz_date(&h).unwrap(), "20261206T152504Z");
        let both = headers(&[
            ("authorization", v4),
            ("date", "Sun, 06 Dec 2026 15:25:04 GMT"),
            ("x-amz-date", "20261206T152504Z"),
        ]);
        assert_eq!(sigv4_amz_date(&both), None);
        let v2 = headers(&[
            ("authorization", "AWS A:s"),
            ("date", "Sun, 06 Dec 2026 15:25:04 GMT"),
        ]);
        assert_eq!(sigv4_amz_date(&v2), None);
        let bad = headers(&[("authorization", v4), ("date", "yesterday")]);
        assert_eq!(sigv4_amz_date(&bad), None);
    }

    #[test]
    fn sigv2_bucket_paths_get_their_slash() {
        let v2 = headers(&[("authorization", "AWS AK:sig")]);
        let v4 = headers(&[("authorization", "AWS4-HMAC-SHA256 Credential=x")]);
        let uri: Uri = "/bucket?acl".parse().unwrap();
        assert_eq!(sigv2_uri(&v2, &uri).unwrap().to_string(), "/bucket/?acl");
        assert_eq!(
            sigv2_uri(&v2, &"/bucket".parse().unwrap())
                .unwrap()
                .to_string(),
            "/bucket/"
        );
        assert!(sigv2_uri(&v4, &uri).is_none());
        assert!(sigv2_uri(&v2, &"/bucket/key".parse().unwrap()).is_none());
        assert!(sigv2_uri(&v2, &"/".parse().unwrap()).is_none());
    }

    #[test]
    fn uploads_need_a_length() {
        let uri: Uri = "/b/k".parse().unwrap();
        let now = SystemTime::now();
        assert_eq!(
            code(check(&Method::PUT, &uri, &HeaderMap::new(), now)).as_deref(),
            Some("MissingContentLength")
        );
        let chunked = headers(&[("transfer-encoding", "chunked")]);
        assert_eq!(code(check(&Method::PUT, &uri, &chunked, now)), None);
        assert_eq!(
            code(check(&Method::GET, &uri, &HeaderMap::new(), now)),
            None
        );
        let copy = headers(&[("x-amz-copy-source", "b/k2")]);
        assert_eq!(code(check(&Method::PUT, &uri, &copy, now)), None);
        let bucket: Uri = "/b".parse().unwrap();
        assert_eq!(
            code(check(&Method::PUT, &bucket, &HeaderMap::new(), now)),
            None
        );
    }

    proptest::proptest! {
        /// Hostile headers and query strings never panic the checks.
        #[test]
        fn arbitrary_requests_do_not_panic(
            auth in "(AWS |AWS4-HMAC-SHA256 )?[ -~]{0,40}",
            date in "[ -~]{0,40}",
            query in "[ -~&=%]{0,80}",
            path in "/[a-z0-9/._-]{0,30}",
        ) {
            let mut h = HeaderMap::new();
            if let Ok(v) = http::HeaderValue::from_str(&auth) {
                h.insert(http::header::AUTHORIZATION, v);
            }
            if let Ok(v) = http::HeaderValue::from_str(&date) {
                h.insert("date", v.clone());
                h.insert("x-amz-date", v);
            }
            let text = format!("{path}?{}", query.replace(' ', "%20"));
            if let Ok(uri) = text.parse::<Uri>() {
                let _ = check(&Method::PUT, &uri, &h, SystemTime::now());
                let _ = sigv2_uri(&h, &uri);
            }
        }
    }
}
