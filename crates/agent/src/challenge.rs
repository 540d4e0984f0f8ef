//! Reading `WWW-Authenticate: Bearer …` challenges (RFC 6750 §3, RFC 9728 §5.1).

/// What a Bearer challenge says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Challenge {
    /// Where the protected resource metadata is.
    pub resource_metadata: Option<String>,
    /// The scopes the operation needs.
    pub scope: Option<String>,
    /// `invalid_token`, `insufficient_scope`, ...
    pub error: Option<String>,
}

/// Parses the Bearer challenge out of a `WWW-Authenticate` value.
pub fn parse(header: &str) -> Option<Challenge> {
    let rest = header.trim_start();
    let rest = rest
        .strip_prefix("Bearer")
        .or_else(|| rest.strip_prefix("bearer"))?;
    let mut challenge = Challenge::default();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',' && !c.is_whitespace()))
                .collect();
        if name.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            break;
        }
        let value = if chars.peek() == Some(&'"') {
            chars.next();
            let mut value = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
            value
        } else {
            std::iter::from_fn(|| chars.next_if(|c| *c != ',' && !c.is_whitespace())).collect()
        };
        match name.to_ascii_lowercase().as_str() {
            "resource_metadata" => challenge.resource_metadata = Some(value),
            "scope" => challenge.scope = Some(value),
            "error" => challenge.error = Some(value),
            _ => {}
        }
    }
    Some(challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_quoted_and_bare_parameters() {
        let c = parse(r#"Bearer resource_metadata="https://g/.well-known/oauth-protected-resource/mcp", scope="a b", error=insufficient_scope, error_description="needs \"b\"""#).unwrap();
        assert_eq!(
            c.resource_metadata.as_deref(),
            Some("https://g/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(c.scope.as_deref(), Some("a b"));
        assert_eq!(c.error.as_deref(), Some("insufficient_scope"));
        assert!(parse("Basic realm=x").is_none());
        assert_eq!(parse("Bearer").unwrap(), Challenge::default());
    }
}
