//! CORS: Put/Get/Delete bucket CORS, the OPTIONS preflight, and the
//! `Access-Control-*` headers on the answers to cross-origin requests.
//! The preflight and the response headers are handled beside `s3s` (it
//! routes no OPTIONS and adds no CORS headers); matching is in
//! `model::cors`.

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use s3s::dto::{
    CORSRule, DeleteBucketCorsInput, DeleteBucketCorsOutput, GetBucketCorsInput,
    GetBucketCorsOutput, PutBucketCorsInput, PutBucketCorsOutput,
};
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, s3_error};

use crate::Gateway;
use crate::bucket;
use crate::error::{ModelError, S3Result};
use crate::model::cors::{CORS_METHODS, CorsRule, find};

/// Most rules one configuration may hold (S3's limit).
const MAX_RULES: usize = 100;

fn to_model(rule: CORSRule) -> Result<CorsRule, ModelError> {
    if let Some(m) = rule
        .allowed_methods
        .iter()
        .find(|m| !CORS_METHODS.contains(&m.as_str()))
    {
        return Err(ModelError::InvalidRequest(format!(
            "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
        )));
    }
    Ok(CorsRule {
        id: rule.id,
        allowed_origins: rule.allowed_origins,
        allowed_methods: rule.allowed_methods,
        allowed_headers: rule.allowed_headers.unwrap_or_default(),
        expose_headers: rule.expose_headers.unwrap_or_default(),
        max_age_seconds: rule.max_age_seconds,
    })
}

pub async fn put(
    gw: &Gateway,
    req: S3Request<PutBucketCorsInput>,
) -> S3Result<S3Response<PutBucketCorsOutput>> {
    let b = bucket::owned(gw, &req, &req.input.bucket).await?;
    let rules = req.input.cors_configuration.cors_rules;
    if rules.is_empty() || rules.len() > MAX_RULES {
        return Err(s3_error!(
            MalformedXML,
            "a CORS configuration holds 1 to {MAX_RULES} rules"
        ));
    }
    let rules = rules
        .into_iter()
        .map(to_model)
        .collect::<Result<Vec<_>, _>>()?;
    gw.buckets().set_cors(&b.name, Some(rules)).await?;
    Ok(S3Response::new(PutBucketCorsOutput {}))
}

pub async fn get(
    gw: &Gateway,
    req: S3Request<GetBucketCorsInput>,
) -> S3Result<S3Response<GetBucketCorsOutput>> {
    let b = bucket::owned(gw, &req, &req.input.bucket).await?;
    let Some(rules) = b.cors else {
        return Err(s3_error!(
            NoSuchCORSConfiguration,
            "The CORS configuration does not exist"
        ));
    };
    let rules = rules
        .into_iter()
        .map(|r| CORSRule {
            id: r.id,
            allowed_origins: r.allowed_origins,
            allowed_methods: r.allowed_methods,
            allowed_headers: (!r.allowed_headers.is_empty()).then_some(r.allowed_headers),
            expose_headers: (!r.expose_headers.is_empty()).then_some(r.expose_headers),
            max_age_seconds: r.max_age_seconds,
        })
        .collect();
    Ok(S3Response::new(GetBucketCorsOutput {
        cors_rules: Some(rules),
    }))
}

pub async fn delete(
    gw: &Gateway,
    req: S3Request<DeleteBucketCorsInput>,
) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
    let b = bucket::owned(gw, &req, &req.input.bucket).await?;
    gw.buckets().set_cors(&b.name, None).await?;
    Ok(S3Response::new(DeleteBucketCorsOutput {}))
}

/// The bucket a request names: the host's first label under one of
/// `domains` (virtual-host style), else the path's first segment.
pub fn bucket_of<'a>(path: &'a str, host: Option<&'a str>, domains: &[String]) -> Option<&'a str> {
    let host = host.map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name));
    if let Some(h) = host {
        for d in domains {
            if let Some(b) = h.strip_suffix(d.as_str()).and_then(|b| b.strip_suffix('.')) {
                return Some(b);
            }
        }
    }
    path.trim_start_matches('/')
        .split('/')
        .next()
        .filter(|b| !b.is_empty())
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn set(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

/// The CORS headers of an answer to `origin` under `rule`.
fn allow_headers(h: &mut HeaderMap, rule: &CorsRule, origin: &str, method: &str) {
    set(h, "access-control-allow-origin", &rule.allow_origin(origin));
    set(h, "access-control-allow-methods", method);
    if !rule.expose_headers.is_empty() {
        set(
            h,
            "access-control-expose-headers",
            &rule.expose_headers.join(", "),
        );
    }
    if let Some(age) = rule.max_age_seconds {
        set(h, "access-control-max-age", &age.to_string());
    }
    set(
        h,
        "vary",
        "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
    );
}

fn error_response(code: S3ErrorCode, msg: &str) -> Response<s3s::Body> {
    S3Error::with_message(code, msg.to_string())
        .to_http_response()
        .unwrap_or_else(|_| {
            let mut r = Response::new(s3s::Body::empty());
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
}

/// Answers an OPTIONS preflight for `path` (anonymous, as browsers send
/// it): 400 without Origin or Access-Control-Request-Method, 403 when no
/// rule of the bucket allows it, else 200 with the allowing headers.
pub async fn preflight(gw: &Gateway, path: &str, headers: &HeaderMap) -> Response<s3s::Body> {
    let (Some(origin), Some(method)) = (
        header(headers, "origin"),
        header(headers, "access-control-request-method"),
    ) else {
        return error_response(
            S3ErrorCode::InvalidRequest,
            "Insufficient information. Origin request header needed.",
        );
    };
    let asked: Vec<&str> = header(headers, "access-control-request-headers")
        .map(|h| {
            h.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let Some(name) = bucket_of(path, header(headers, "host"), &gw.conf().domains) else {
        return error_response(S3ErrorCode::InvalidRequest, "no bucket in the request");
    };
    let rules = match gw.buckets().get(name).await {
        Ok(b) => b.cors.unwrap_or_default(),
        Err(e) => {
            return S3Error::from(e)
                .to_http_response()
                .unwrap_or_else(|_| error_response(S3ErrorCode::InternalError, "error"));
        }
    };
    let Some(rule) = find(&rules, origin, method, &asked) else {
        let mut e = S3Error::with_message(
            S3ErrorCode::Custom("AccessForbidden".into()),
            "CORSResponse: This CORS request is not allowed.",
        );
        e.set_status_code(StatusCode::FORBIDDEN);
        return e
            .to_http_response()
            .unwrap_or_else(|_| error_response(S3ErrorCode::AccessDenied, "forbidden"));
    };
    let mut resp = Response::new(s3s::Body::empty());
    allow_headers(resp.headers_mut(), rule, origin, method);
    if !asked.is_empty() {
        set(
            resp.headers_mut(),
            "access-control-allow-headers",
            &asked.join(", "),
        );
    }
    resp
}

/// Adds the CORS headers to the answer of a cross-origin request (one
/// with an Origin header) when a rule of its bucket allows it.
pub async fn decorate(
    gw: &Gateway,
    method: &Method,
    path: &str,
    req_headers: &HeaderMap,
    resp: &mut Response<s3s::Body>,
) {
    let Some(origin) = header(req_headers, "origin") else {
        return;
    };
    let Some(name) = bucket_of(path, header(req_headers, "host"), &gw.conf().domains) else {
        return;
    };
    let Ok(b) = gw.buckets().get(name).await else {
        return;
    };
    let rules = b.cors.unwrap_or_default();
    // A request that names the method it is for is matched by that one
    // (as RGW does).
    let method = header(req_headers, "access-control-request-method").unwrap_or(method.as_str());
    if let Some(rule) = find(&rules, origin, method, &[]) {
        allow_headers(resp.headers_mut(), rule, origin, method);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_come_from_the_host_or_the_path() {
        let d = vec!["s3.example.com".to_string()];
        assert_eq!(bucket_of("/b/k", None, &d), Some("b"));
        assert_eq!(
            bucket_of("/k", Some("b.s3.example.com:7480"), &d),
            Some("b")
        );
        assert_eq!(bucket_of("/b/k", Some("127.0.0.1:7480"), &d), Some("b"));
        assert_eq!(bucket_of("/", Some("127.0.0.1"), &d), None);
        assert_eq!(bucket_of("/b", Some("s3.example.com"), &d), Some("b"));
    }
}
