//! The bearer token exchange, the pure part: the registry's challenge, the
//! token request's URL, the token server's answer.
//!
//! Distribution spec, "Token Authentication Specification" (docker's token
//! flow): `GET /v2/` answers 401 with `WWW-Authenticate: Bearer
//! realm="…",service="…",scope="…"`; the client asks the realm for a token
//! (`GET realm?service=…&scope=repository:<name>:pull`, with Basic
//! credentials when it has some) and sends it as `Authorization: Bearer …`.
//! Any later request may answer 401 with a challenge too (a registry whose
//! `/v2/` is open, a token that ran out): it is answered the same way, once.
//! The answer is JSON with `token` (or OAuth2's `access_token`); it is read
//! with [`MAX_TOKEN_BODY`] as its bound ([`super::http::Repo::token`]),
//! because the realm is whatever the registry names.

use std::time::{Duration, SystemTime};

use reqwest::Url;

/// The most a token server's answer may have: containers/image's
/// `iolimits.MaxAuthTokenBodySize`.
pub const MAX_TOKEN_BODY: u64 = 1 << 20;

/// What `GET /v2/` asks for (RFC 9110 11.6.1, `WWW-Authenticate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// RFC 7617: the credentials themselves, on every request.
    Basic,
    /// A token from `realm`.
    Bearer {
        realm: Url,
        service: Option<String>,
        scope: Option<String>,
    },
    /// A scheme podshim does not speak (the requests go anonymous, and the
    /// registry's own answer tells).
    Other(String),
}

/// A challenge or token answer podshim cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the Bearer challenge {0:?} names no realm")]
    NoRealm(String),
    #[error("the Bearer challenge's realm {0:?} is not an http(s) URL")]
    BadRealm(String),
    #[error("the token server's answer is not a JSON object: {0}")]
    NotJson(String),
    #[error("the token server's answer has neither a token nor an access_token")]
    NoToken,
    #[error(
        "the Bearer challenge's realm {0:?} is plain http for a registry reached over https: the credentials and the token would cross in cleartext"
    )]
    CleartextRealm(String),
}

/// What the token exchange may send to a realm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RealmUse {
    /// The auth files' credentials (Basic) with the token request.
    WithCredentials,
    /// The token request goes without credentials.
    Anonymous,
}

/// Whether a token may be asked of `realm`, by a client that reached the
/// registry over `registry_scheme`, and with what. A registry reached over
/// https (and not marked insecure) may name a realm on another host (Docker
/// Hub's is auth.docker.io) but not a plain-http one: a man in the middle of
/// that request would read the password and the token, which https to the
/// registry was to protect (containerd's authorizer fetches tokens with the
/// registry's own TLS settings for the same reason). An insecure registry may
/// name an http realm, but the credentials of an https registry never go to
/// one in cleartext; over plain http to the registry they cross in cleartext
/// anyway.
pub fn realm_use(
    registry_scheme: &str,
    insecure: bool,
    realm: &Url,
) -> Result<RealmUse, TokenError> {
    match (registry_scheme, realm.scheme()) {
        ("https", "http") if !insecure => Err(TokenError::CleartextRealm(realm.to_string())),
        ("https", "http") => Ok(RealmUse::Anonymous),
        _ => Ok(RealmUse::WithCredentials),
    }
}

impl Challenge {
    /// Parses one challenge: `scheme param=value, param="quoted, value"`.
    /// Parameter names are case-insensitive and unknown ones ignored (RFC
    /// 9110 11.2); a quoted value may hold commas and `\`-escapes (RFC 9110
    /// 5.6.4).
    pub fn parse(header: &str) -> Result<Challenge, TokenError> {
        let header = header.trim();
        let (scheme, rest) = header
            .split_once(|c: char| c.is_ascii_whitespace())
            .unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Ok(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Ok(Challenge::Other(scheme.to_string()));
        }
        let (mut realm, mut service, mut scope) = (None, None, None);
        for (name, value) in params(rest) {
            match name.to_ascii_lowercase().as_str() {
                "realm" => realm = Some(value),
                "service" => service = Some(value),
                "scope" => scope = Some(value),
                _ => {}
            }
        }
        let realm = realm.ok_or_else(|| TokenError::NoRealm(header.to_string()))?;
        let url = Url::parse(&realm)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or(TokenError::BadRealm(realm))?;
        Ok(Challenge::Bearer {
            realm: url,
            service,
            scope,
        })
    }
}

/// The `name=value` pairs of a challenge's parameter list. A piece that is
/// no parameter (a token68, stray text) is skipped up to the next comma.
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars
            .next_if(|c| *c == ',' || c.is_ascii_whitespace())
            .is_some()
        {}
        if chars.peek().is_none() {
            return out;
        }
        let mut name = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && *c != ',' && !c.is_ascii_whitespace()) {
            name.push(c);
        }
        while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        if chars.next_if_eq(&'=').is_none() {
            while chars.next_if(|c| *c != ',').is_some() {}
            continue;
        }
        while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',' && !c.is_ascii_whitespace()) {
                value.push(c);
            }
        }
        out.push((name, value));
    }
}

/// The scope to ask for: the challenge's own for `repository` when it
/// gives one that allows pulling (its actions as the registry wrote them),
/// else `repository:<repository>:pull` (the spec's "Requesting a Token"). A
/// challenge's scope may list several, space-separated (spec, "scope").
pub fn scope_for(challenge_scope: Option<&str>, repository: &str) -> String {
    challenge_scope
        .into_iter()
        .flat_map(str::split_ascii_whitespace)
        .find(|s| {
            s.strip_prefix("repository:")
                .and_then(|r| r.rsplit_once(':'))
                .is_some_and(|(name, actions)| {
                    name == repository && actions.split(',').any(|a| a == "pull" || a == "*")
                })
        })
        .map_or_else(|| format!("repository:{repository}:pull"), str::to_string)
}

/// `realm?service=…&scope=…`, added to whatever query the realm has.
pub fn token_url(realm: &Url, service: Option<&str>, scope: &str) -> Url {
    let mut url = realm.clone();
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = service {
            q.append_pair("service", s);
        }
        q.append_pair("scope", scope);
    }
    url
}

/// How long a token is valid when its answer does not say (the spec's
/// `expires_in`: "When omitted, this defaults to 60 seconds").
pub const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(60);
/// The most of a token's lifetime left unused: it is renewed this long (or a
/// tenth of its lifetime, if less) before it runs out, so that a request
/// does not reach the registry with a token that expired on the way.
const RENEW_MARGIN: Duration = Duration::from_secs(10);

/// A token server's answer, as used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub token: String,
    /// `expires_in`, else [`DEFAULT_EXPIRES_IN`].
    pub expires_in: Duration,
    /// `issued_at` (RFC 3339), when given and understood.
    pub issued_at: Option<SystemTime>,
}

impl Token {
    /// How long after `now` the token is to be renewed: its lifetime from
    /// `issued_at` (else from now), less a margin. A token issued "in the
    /// future" (clocks differ) counts from now.
    pub fn renew_after(&self, now: SystemTime) -> Duration {
        let age = self
            .issued_at
            .and_then(|t| now.duration_since(t).ok())
            .unwrap_or(Duration::ZERO);
        let left = self.expires_in.saturating_sub(age);
        left.saturating_sub(RENEW_MARGIN.min(self.expires_in / 10))
    }
}

/// The token of a token server's answer: `token`, else `access_token`
/// (OAuth2, which the spec allows in its place), with its `expires_in` and
/// `issued_at` (containerd and containers/image renew a token before then);
/// `refresh_token` is not used (no OAuth2 flow).
pub fn token_from_body(body: &[u8]) -> Result<Token, TokenError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        access_token: Option<String>,
        #[serde(default)]
        expires_in: Option<serde_json::Value>,
        #[serde(default)]
        issued_at: Option<serde_json::Value>,
    }
    let a: Answer = serde_json::from_slice(body).map_err(|e| TokenError::NotJson(e.to_string()))?;
    let token = [a.token, a.access_token]
        .into_iter()
        .flatten()
        .find(|t| !t.is_empty())
        .ok_or(TokenError::NoToken)?;
    // A lifetime that is no positive number of seconds is the default's.
    let expires_in = a
        .expires_in
        .and_then(|v| v.as_u64())
        .filter(|n| *n > 0)
        .map_or(DEFAULT_EXPIRES_IN, Duration::from_secs);
    let issued_at = a
        .issued_at
        .as_ref()
        .and_then(|v| v.as_str())
        .and_then(parse_rfc3339);
    Ok(Token {
        token,
        expires_in,
        issued_at,
    })
}

/// `issued_at` is RFC 3339 (5.6); the lenient parser the log reader uses reads it.
fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    crate::logs::parse_rfc3339(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn bearer(realm: &str, service: Option<&str>, scope: Option<&str>) -> Challenge {
        Challenge::Bearer {
            realm: Url::parse(realm).unwrap(),
            service: service.map(str::to_string),
            scope: scope.map(str::to_string),
        }
    }

    #[test]
    fn challenges_parse_with_quoted_commas_any_case_and_unknown_params_ignored() {
        let table: &[(&str, Challenge)] = &[
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
                bearer(
                    "https://auth.docker.io/token",
                    Some("registry.docker.io"),
                    Some("repository:library/busybox:pull"),
                ),
            ),
            (
                r#"bearer Realm = "http://127.0.0.1:5000/token?x=1" , Service="a, b",error="insufficient_scope",scope="repository:a/b:pull,push""#,
                bearer(
                    "http://127.0.0.1:5000/token?x=1",
                    Some("a, b"),
                    Some("repository:a/b:pull,push"),
                ),
            ),
            (
                "Bearer realm=https://t.example/token,service=svc",
                bearer("https://t.example/token", Some("svc"), None),
            ),
            (
                r#"Bearer junk, realm="https://t.example/a\"b""#,
                bearer("https://t.example/a%22b", None, None),
            ),
            (r#"Basic realm="Registry Realm""#, Challenge::Basic),
            ("BASIC", Challenge::Basic),
            (
                r#"Negotiate abc=="#,
                Challenge::Other("Negotiate".to_string()),
            ),
        ];
        for (header, want) in table {
            assert_eq!(Challenge::parse(header).as_ref(), Ok(want), "{header}");
        }
    }

    #[test]
    fn a_bearer_challenge_without_an_http_realm_is_refused() {
        let table: &[(&str, TokenError)] = &[
            (
                r#"Bearer service="s""#,
                TokenError::NoRealm(r#"Bearer service="s""#.into()),
            ),
            (
                r#"Bearer realm="file:///etc/passwd""#,
                TokenError::BadRealm("file:///etc/passwd".into()),
            ),
            (
                r#"Bearer realm="/token""#,
                TokenError::BadRealm("/token".into()),
            ),
            (r#"Bearer realm="""#, TokenError::BadRealm(String::new())),
        ];
        for (header, want) in table {
            assert_eq!(Challenge::parse(header).as_ref(), Err(want), "{header}");
        }
    }

    #[test]
    fn an_http_realm_of_an_https_registry_is_refused_and_never_gets_credentials() {
        let http = Url::parse("http://auth.example/token").unwrap();
        let https = Url::parse("https://auth.docker.io/token").unwrap();
        assert_eq!(
            realm_use("https", false, &http),
            Err(TokenError::CleartextRealm(http.to_string()))
        );
        // An insecure registry may name one, but gets no password sent there.
        assert_eq!(realm_use("https", true, &http), Ok(RealmUse::Anonymous));
        // A cross-host https realm is fine (Docker Hub's).
        for insecure in [false, true] {
            assert_eq!(
                realm_use("https", insecure, &https),
                Ok(RealmUse::WithCredentials)
            );
        }
        // Over plain http to the registry the credentials cross in cleartext anyway.
        assert_eq!(
            realm_use("http", true, &http),
            Ok(RealmUse::WithCredentials)
        );
        assert_eq!(
            realm_use("http", true, &https),
            Ok(RealmUse::WithCredentials)
        );
    }

    #[test]
    fn a_tokens_lifetime_is_expires_in_from_issued_at_else_60_seconds() {
        let at = |s: &str| parse_rfc3339(s).unwrap();
        let t = token_from_body(br#"{"token":"t"}"#).unwrap();
        assert_eq!((t.expires_in, t.issued_at), (DEFAULT_EXPIRES_IN, None));
        for zero in [
            &br#"{"token":"t","expires_in":0}"#[..],
            br#"{"token":"t","expires_in":"x"}"#,
        ] {
            assert_eq!(
                token_from_body(zero).unwrap().expires_in,
                DEFAULT_EXPIRES_IN
            );
        }
        let t = token_from_body(
            br#"{"token":"t","expires_in":300,"issued_at":"2020-01-01T00:00:00.5Z"}"#,
        )
        .unwrap();
        assert_eq!(t.expires_in, Duration::from_secs(300));
        assert_eq!(
            t.issued_at,
            Some(UNIX_EPOCH + Duration::new(1_577_836_800, 500_000_000))
        );
        assert_eq!(at("2020-01-01T02:00:00+02:00"), at("2020-01-01T00:00:00Z"));
        assert_eq!(
            at("1970-01-01T00:00:01Z"),
            UNIX_EPOCH + Duration::from_secs(1)
        );
        assert_eq!(
            at("2024-02-29T12:00:00Z"),
            UNIX_EPOCH + Duration::from_secs(1_709_208_000)
        );
        for bad in [
            "",
            "2020-01-01",
            "2020-13-01T00:00:00Z",
            "2020-01-01T00:00:00",
            "yesterday",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        // Renewed a tenth of its lifetime (at most 10 s) before it runs out,
        // counted from issued_at.
        let issued = at("2020-01-01T00:00:00Z");
        let t = Token {
            token: "t".into(),
            expires_in: Duration::from_secs(300),
            issued_at: Some(issued),
        };
        assert_eq!(t.renew_after(issued), Duration::from_secs(290));
        assert_eq!(
            t.renew_after(issued + Duration::from_secs(100)),
            Duration::from_secs(190)
        );
        assert_eq!(
            t.renew_after(issued + Duration::from_secs(400)),
            Duration::ZERO
        );
        // Issued "later" than now (clock skew): counted from now.
        assert_eq!(
            t.renew_after(issued - Duration::from_secs(5)),
            Duration::from_secs(290)
        );
        let short = Token {
            expires_in: Duration::from_secs(1),
            issued_at: None,
            ..t
        };
        assert_eq!(short.renew_after(issued), Duration::from_millis(900));
    }

    #[test]
    fn the_scope_is_the_challenges_for_this_repository_else_pull_of_it() {
        let table = [
            (None, "repository:a/b:pull"),
            (Some("repository:a/b:pull"), "repository:a/b:pull"),
            (Some("repository:a/b:pull,push"), "repository:a/b:pull,push"),
            (Some("repository:other:pull"), "repository:a/b:pull"),
            (Some("repository:a/b:push"), "repository:a/b:pull"),
            (
                Some("registry:catalog:* repository:a/b:*"),
                "repository:a/b:*",
            ),
            (Some("repository:a/b/c:pull"), "repository:a/b:pull"),
        ];
        for (challenge, want) in table {
            assert_eq!(scope_for(challenge, "a/b"), want, "{challenge:?}");
        }
    }

    #[test]
    fn the_token_url_keeps_the_realms_query_and_encodes_service_and_scope() {
        let realm = Url::parse("http://127.0.0.1:5000/token?x=1").unwrap();
        let url = token_url(&realm, Some("a, b"), "repository:a/b:pull");
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:5000/token?x=1&service=a%2C+b&scope=repository%3Aa%2Fb%3Apull"
        );
        let url = token_url(&realm, None, "repository:a/b:pull");
        assert_eq!(url.query(), Some("x=1&scope=repository%3Aa%2Fb%3Apull"));
    }

    #[test]
    fn the_token_is_token_else_access_token() {
        let table: &[(&[u8], Result<&str, TokenError>)] = &[
            (br#"{"token":"t","access_token":"a"}"#, Ok("t")),
            (br#"{"access_token":"a","expires_in":60}"#, Ok("a")),
            (br#"{"token":"","access_token":"a"}"#, Ok("a")),
            (
                br#"{"token":"t","issued_at":"2020-01-01T00:00:00Z"}"#,
                Ok("t"),
            ),
            (br#"{"expires_in":60}"#, Err(TokenError::NoToken)),
            (br#"{"token":""}"#, Err(TokenError::NoToken)),
        ];
        for (body, want) in table {
            let got = token_from_body(body).map(|t| t.token);
            assert_eq!(got.as_deref(), want.as_ref().map(|s| *s), "{body:?}");
        }
        for body in [&b"<html>"[..], b"\"t\"", b"", b"{\"token\":5}"] {
            assert!(
                matches!(token_from_body(body), Err(TokenError::NotJson(_))),
                "{body:?}"
            );
        }
    }
}
