//! The bearer token exchange, the pure part: the registry's challenge, the
//! token request's URL, the token server's answer.
//!
//! Distribution spec, "Token Authentication Specification" (docker's token
//! flow): `GET /v2/` answers 401 with `WWW-Authenticate: Bearer
//! realm="…",service="…",scope="…"`; the client asks the realm for a token
//! (`GET realm?service=…&scope=repository:<name>:pull`, with Basic
//! credentials when it has some) and sends it as `Authorization: Bearer …`.
//! The answer is JSON with `token` (or OAuth2's `access_token`); it is read
//! with [`MAX_TOKEN_BODY`] as its bound ([`super::http::Repo::token`]),
//! because the realm is whatever the registry names.

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

/// The token of a token server's answer: `token`, else `access_token`
/// (OAuth2, which the spec allows in its place); other fields (`expires_in`,
/// `issued_at`, `refresh_token`) are not used: one pull asks once.
pub fn token_from_body(body: &[u8]) -> Result<String, TokenError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        access_token: Option<String>,
    }
    let a: Answer = serde_json::from_slice(body).map_err(|e| TokenError::NotJson(e.to_string()))?;
    [a.token, a.access_token]
        .into_iter()
        .flatten()
        .find(|t| !t.is_empty())
        .ok_or(TokenError::NoToken)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let got = token_from_body(body);
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
