//! A bucket's CORS rules and how a browser's request is matched against
//! them (origins and headers may hold one `*` wildcard; methods are
//! exact).

use serde::{Deserialize, Serialize};

/// One CORS rule of a bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    /// The rule's id, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Origins it allows (`*` wildcards).
    pub allowed_origins: Vec<String>,
    /// Methods it allows (GET, PUT, POST, DELETE, HEAD).
    pub allowed_methods: Vec<String>,
    /// Request headers a preflight may ask for (`*` wildcards).
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    /// Response headers the browser may show the page.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// How long a browser may cache the preflight answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<i32>,
}

/// The methods a CORS rule may name.
pub const CORS_METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];

/// Whether `value` matches `pattern`, which may hold one `*`.
pub fn wildcard_match(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((head, tail)) => {
            value.len() >= head.len() + tail.len()
                && value.starts_with(head)
                && value.ends_with(tail)
        }
    }
}

impl CorsRule {
    /// Whether the rule allows a request from `origin` with `method` that
    /// asks to send `headers`.
    pub fn allows(&self, origin: &str, method: &str, headers: &[&str]) -> bool {
        self.allowed_origins
            .iter()
            .any(|o| wildcard_match(o, origin))
            && self.allowed_methods.iter().any(|m| m == method)
            && headers.iter().all(|h| {
                self.allowed_headers
                    .iter()
                    .any(|a| wildcard_match(&a.to_ascii_lowercase(), &h.to_ascii_lowercase()))
            })
    }

    /// The `Access-Control-Allow-Origin` value for `origin`: `*` when the
    /// rule allows every origin.
    pub fn allow_origin(&self, origin: &str) -> String {
        if self.allowed_origins.iter().any(|o| o == "*") {
            "*".to_string()
        } else {
            origin.to_string()
        }
    }
}

/// The first rule allowing the request, if any.
pub fn find<'a>(
    rules: &'a [CorsRule],
    origin: &str,
    method: &str,
    headers: &[&str],
) -> Option<&'a CorsRule> {
    rules.iter().find(|r| r.allows(origin, method, headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_one_run() {
        assert!(wildcard_match("*", "https://a.example"));
        assert!(wildcard_match(
            "https://*.example.com",
            "https://x.example.com"
        ));
        assert!(!wildcard_match(
            "https://*.example.com",
            "https://example.org"
        ));
        assert!(wildcard_match("a*", "a"));
        assert!(!wildcard_match("ab*ba", "aba"));
        assert!(wildcard_match("exact", "exact"));
        assert!(!wildcard_match("exact", "exactly"));
    }

    #[test]
    fn rules_match_origin_method_and_headers() {
        let rule = CorsRule {
            allowed_origins: vec!["*suffix".into(), "prefix*".into()],
            allowed_methods: vec!["GET".into(), "PUT".into()],
            allowed_headers: vec!["x-amz-*".into()],
            ..Default::default()
        };
        assert!(rule.allows("foo.suffix", "GET", &[]));
        assert!(rule.allows("prefix.bar", "PUT", &["X-Amz-Meta-A"]));
        assert!(!rule.allows("foo.suffix", "DELETE", &[]));
        assert!(!rule.allows("other", "GET", &[]));
        assert!(!rule.allows("foo.suffix", "GET", &["content-type"]));
        assert_eq!(rule.allow_origin("prefix.bar"), "prefix.bar");
        let any = CorsRule {
            allowed_origins: vec!["*".into()],
            allowed_methods: vec!["GET".into()],
            ..Default::default()
        };
        assert_eq!(any.allow_origin("x"), "*");
        let rules = [rule, any];
        assert_eq!(
            find(&rules, "zzz", "GET", &[]).map(|r| r.allow_origin("zzz")),
            Some("*".into())
        );
        assert!(find(&rules, "zzz", "PUT", &[]).is_none());
    }
}
