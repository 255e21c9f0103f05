//! Kubernetes' `$(VAR)` expansion for env values, command and args
//! (k8s.io/kubernetes third_party/forked/golang/expansion): `$(VAR)` is replaced when
//! VAR is defined, left as written when not; `$$` is an escaped `$`, so `$$(VAR)`
//! yields the literal `$(VAR)`; any other `$x` stays as it is.

/// Expands `input` with `lookup`.
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    let mut literal_start = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' || i + 1 >= bytes.len() {
            i += 1;
            continue;
        }
        match bytes[i + 1] {
            b'$' => {
                out.push_str(&input[literal_start..i]);
                out.push('$');
                i += 2;
                literal_start = i;
            }
            b'(' => match input[i + 2..].find(')') {
                Some(close) => {
                    let name = &input[i + 2..i + 2 + close];
                    out.push_str(&input[literal_start..i]);
                    match lookup(name) {
                        Some(value) if !name.is_empty() => out.push_str(&value),
                        _ => out.push_str(&input[i..i + 3 + close]),
                    }
                    i += 3 + close;
                    literal_start = i;
                }
                // An unterminated reference is kept as written.
                None => i += 2,
            },
            _ => i += 1,
        }
    }
    out.push_str(&input[literal_start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "A" => Some("alpha".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expansion_follows_kubernetes_rules() {
        let cases = [
            ("$(A)", "alpha"),
            ("x-$(A)-y", "x-alpha-y"),
            ("$(MISSING)", "$(MISSING)"),
            ("$$(A)", "$(A)"),
            ("$$$(A)", "$alpha"),
            ("$$", "$"),
            ("$A", "$A"),
            ("$(A", "$(A"),
            ("$(EMPTY)x", "x"),
            ("$()", "$()"),
            ("tail$", "tail$"),
            ("no vars", "no vars"),
            ("$(A)$(A)", "alphaalpha"),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, &vars), want, "{input}");
        }
    }
}
