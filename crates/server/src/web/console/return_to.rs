//! Where the sign-in form may send a person back to: only a console page,
//! named by a relative path. An allowlist rather than a check for bad
//! forms, since an open redirect after sign-in is a classic phishing aid.

/// The console path `raw` names, normalised, if it is one the sign-in form
/// may return to: it starts with `/console` (as a whole segment), has no
/// scheme, host, backslash, control character or `//`, no `.`/`..` segment
/// and no fragment. Anything else is `None`, and the caller goes to its
/// default page.
pub fn console_target(raw: &str) -> Option<String> {
    if raw.len() > 1024 {
        return None;
    }
    let (path, query) = match raw.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (raw, None),
    };
    let allowed = |c: char| c.is_ascii_graphic() && !matches!(c, '\\' | '#' | '"' | '<' | '>');
    if !path.chars().all(allowed) || !query.is_none_or(|q| q.chars().all(allowed)) {
        return None;
    }
    if path.contains("//") || path.contains('%') {
        // Percent-encoding in the path could hide a slash, a dot or a
        // backslash from these checks; console paths never need it.
        return None;
    }
    let rest = path.strip_prefix("/console")?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    if rest
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return None;
    }
    let path = format!("/console{}", rest.strip_suffix('/').unwrap_or(rest));
    Some(match query {
        Some(query) if !query.is_empty() => format!("{path}?{query}"),
        _ => path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_return_targets() {
        let table: &[(&str, Option<&str>)] = &[
            ("/console", Some("/console")),
            ("/console/", Some("/console")),
            ("/console/tokens", Some("/console/tokens")),
            ("/console/tokens/", Some("/console/tokens")),
            (
                "/console/audit?outcome=denied&after=3",
                Some("/console/audit?outcome=denied&after=3"),
            ),
            ("/console?", Some("/console")),
            ("", None),
            ("/", None),
            ("/account", None),
            ("/consoles", None),
            ("/console-evil", None),
            ("console/tokens", None),
            ("//evil.example/console", None),
            ("/console//evil.example", None),
            ("https://evil.example/console", None),
            ("javascript:alert(1)", None),
            ("/console\\..\\evil", None),
            ("/\\evil.example/console", None),
            ("/console/../account", None),
            ("/console/./tokens", None),
            ("/console/%2e%2e/account", None),
            ("/console/%2F%2Fevil", None),
            ("/console/tokens#x", None),
            ("/console/tok ens", None),
            ("/console/\ttokens", None),
            ("/console/\r\nSet-Cookie: x", None),
            ("/console/tökens", None),
            ("/console?next=\"><script>", None),
        ];
        for (raw, expected) in table {
            assert_eq!(
                console_target(raw).as_deref(),
                *expected,
                "return target for {raw:?}"
            );
        }
        assert_eq!(
            console_target(&format!("/console/{}", "a".repeat(2000))),
            None
        );
    }
}
