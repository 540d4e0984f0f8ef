//! Credential lifetimes: parsing `30m`, `1h30m`, `90d` into a positive duration.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// Longest lifetime anything may ask for (the organization maximum is usually far lower).
pub const MAX_TTL_SECONDS: i64 = 10 * 365 * 86_400;

/// A positive lifetime, in whole seconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ttl(i64);

impl Ttl {
    /// Parses `90s`, `30m`, `1h`, `7d`, `2w`, `1y` or sums like `1h30m`.
    /// Refuses zero, negatives, bare numbers and anything over ten years.
    pub fn parse(input: &str) -> Result<Ttl, Error> {
        let bad = |why| Error::InvalidTtl {
            input: input.chars().take(40).collect(),
            why,
        };
        let text = input.trim();
        if text.is_empty() {
            return Err(bad("empty; write a number and a unit, like 30m or 8h"));
        }
        if text.starts_with('-') {
            return Err(bad("a lifetime must be positive"));
        }
        let mut total: i64 = 0;
        let mut number: Option<i64> = None;
        for c in text.chars() {
            if let Some(digit) = c.to_digit(10) {
                let n = number.unwrap_or(0);
                number = Some(
                    n.checked_mul(10)
                        .and_then(|n| n.checked_add(i64::from(digit)))
                        .filter(|&n| n <= MAX_TTL_SECONDS)
                        .ok_or_else(|| bad("too long: the most anything may ask for is 10y"))?,
                );
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3_600,
                'd' => 86_400,
                'w' => 7 * 86_400,
                'y' => 365 * 86_400,
                _ => return Err(bad("units are s, m, h, d, w and y, like 30m or 90d")),
            };
            let n = number
                .take()
                .ok_or_else(|| bad("each unit needs a number before it, like 30m"))?;
            total = n
                .checked_mul(unit)
                .and_then(|part| total.checked_add(part))
                .filter(|&t| t <= MAX_TTL_SECONDS)
                .ok_or_else(|| bad("too long: the most anything may ask for is 10y"))?;
        }
        if number.is_some() {
            return Err(bad("a number needs a unit (s, m, h, d, w, y), like 30m"));
        }
        if total <= 0 {
            return Err(bad("a lifetime must be positive"));
        }
        Ok(Ttl(total))
    }

    /// A lifetime of `seconds`, which must be positive and at most ten years.
    pub fn from_seconds(seconds: i64) -> Option<Ttl> {
        (seconds > 0 && seconds <= MAX_TTL_SECONDS).then_some(Ttl(seconds))
    }

    /// The lifetime in seconds.
    pub fn seconds(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Ttl {
    /// The largest exact unit: `90d`, `1h30m` prints as `90m`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, seconds) in [
            ("y", 365 * 86_400),
            ("w", 7 * 86_400),
            ("d", 86_400),
            ("h", 3_600),
            ("m", 60),
        ] {
            if self.0 % seconds == 0 {
                return write!(f, "{}{unit}", self.0 / seconds);
            }
        }
        write!(f, "{}s", self.0)
    }
}

impl fmt::Debug for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ttl({self})")
    }
}

impl Serialize for Ttl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ttl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Ttl, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ttl::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Ttl {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("A lifetime such as 30m, 8h, 7d or 1h30m"))
            .examples(["1h"])
            .into()
    }
}

impl utoipa::ToSchema for Ttl {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(Ttl::parse("30m").unwrap().seconds(), 1_800);
        assert_eq!(Ttl::parse("1h30m").unwrap().seconds(), 5_400);
        assert_eq!(Ttl::parse("90d").unwrap().seconds(), 90 * 86_400);
        assert_eq!(Ttl::parse("2w").unwrap().to_string(), "2w");
        assert_eq!(Ttl::parse("90s").unwrap().to_string(), "90s");
    }

    #[test]
    fn refuses_nonsense() {
        for bad in [
            "",
            "-5m",
            "0s",
            "5",
            "m",
            "10x",
            "11y",
            "99999999999999999999s",
            "1.5h",
            "5 m",
        ] {
            assert!(Ttl::parse(bad).is_err(), "{bad}");
        }
    }
}
