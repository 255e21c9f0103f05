//! Kubernetes resource quantities (`500m`, `1.5`, `128Mi`, `1G`, `2e3`), as exact
//! rational numbers so that CPU millicores and memory bytes round like the kubelet.
//!
//! A quantity is at most 2^63-1 in its base unit (bytes, cores): what the kubelet
//! and the runtime can hold in an int64. Larger values are refused when parsed, so
//! no conversion downstream can wrap (a `limits.memory` of 2^64+100Mi must not
//! become a 100 MiB limit, nor `16Ei` an unlimited one).

/// A non-negative quantity as `numerator / 10^scale`, exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    /// Value times 10^scale.
    units: u128,
    scale: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    Syntax,
    /// Kubernetes' message for a negative resource amount.
    #[error("must be greater than or equal to 0")]
    Negative,
    #[error("must be less than or equal to 9223372036854775807")]
    TooLarge,
}

/// 2^63-1: the largest value a quantity may have, in its base unit.
pub const MAX: u128 = i64::MAX as u128;

/// `bytes` as Kubernetes prints a binary-SI quantity: the largest of Ki, Mi,
/// Gi, Ti that divides it, else plain bytes (`1Mi`, `1536Ki`, `1000`).
pub fn binary_si(bytes: u64) -> String {
    let unit = [("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)]
        .into_iter()
        .find(|(_, shift)| bytes != 0 && bytes % (1u64 << shift) == 0);
    match unit {
        Some((name, shift)) => format!("{}{name}", bytes >> shift),
        None => bytes.to_string(),
    }
}

impl Quantity {
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        let text = text.trim();
        let text = text.strip_prefix('+').unwrap_or(text);
        // Resource amounts (limits, sizeLimit, divisors) are never negative; the
        // syntax is checked first so that `-x` is a syntax error, as in Kubernetes.
        let negative = text.starts_with('-');
        let text = text.strip_prefix('-').unwrap_or(text);
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, suffix) = text.split_at(split);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(QuantityError::Syntax);
        }
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        let digits: String = format!("{int}{frac}");
        // Past this point the syntax is right: a value too big to hold is too large
        // (or, negative, below zero).
        let big = if negative {
            QuantityError::Negative
        } else {
            QuantityError::TooLarge
        };
        // Only digits: a failed parse is an overflow.
        let mut units: u128 = digits.parse().map_err(|_| big)?;
        let mut scale = frac.len() as u32;
        // Binary suffixes multiply by powers of 1024, decimal ones shift the scale.
        let (mul, exp10): (u128, i32) = match suffix {
            "" => (1, 0),
            "Ki" => (1 << 10, 0),
            "Mi" => (1 << 20, 0),
            "Gi" => (1 << 30, 0),
            "Ti" => (1 << 40, 0),
            "Pi" => (1 << 50, 0),
            "Ei" => (1 << 60, 0),
            "n" => (1, -9),
            "u" => (1, -6),
            "m" => (1, -3),
            "k" => (1, 3),
            "M" => (1, 6),
            "G" => (1, 9),
            "T" => (1, 12),
            "P" => (1, 15),
            "E" => (1, 18),
            s if s.starts_with(['e', 'E']) => {
                let exp: i32 = s[1..].parse().map_err(|_| QuantityError::Syntax)?;
                if exp > 30 {
                    return Err(big);
                }
                if exp < -30 {
                    return Err(QuantityError::Syntax);
                }
                (1, exp)
            }
            _ => return Err(QuantityError::Syntax),
        };
        units = units.checked_mul(mul).ok_or(big)?;
        if exp10 >= 0 {
            units = units.checked_mul(10u128.pow(exp10 as u32)).ok_or(big)?;
        } else {
            scale += (-exp10) as u32;
        }
        if scale > 30 {
            return Err(QuantityError::Syntax);
        }
        let q = Quantity { units, scale };
        if negative && units != 0 {
            return Err(QuantityError::Negative);
        }
        if q.whole().is_none_or(|w| w > MAX) {
            return Err(big);
        }
        Ok(q)
    }

    /// `ceil(self * 10^exp10 / divisor)`: how the kubelet rounds (CPU in millicores is
    /// `exp10 = 3`; memory in bytes is `exp10 = 0`).
    fn ceil_scaled(&self, exp10: u32, divisor: &Quantity) -> Option<u128> {
        // self = a / 10^sa, divisor = b / 10^sb: result = a * 10^(exp10 + sb) / (b * 10^sa)
        let num = self
            .units
            .checked_mul(10u128.checked_pow(exp10 + divisor.scale)?)?;
        let den = divisor.units.checked_mul(10u128.checked_pow(self.scale)?)?;
        if den == 0 {
            return None;
        }
        Some(num.div_ceil(den))
    }

    /// Millicores, rounded up (`0.1` → 100, `1` → 1000, `1u` → 1).
    pub fn millis(&self) -> Option<u128> {
        self.ceil_scaled(3, &Quantity::ONE)
    }

    /// Whole units (bytes for memory), rounded up.
    pub fn whole(&self) -> Option<u128> {
        self.ceil_scaled(0, &Quantity::ONE)
    }

    /// Whole units, rounded up: at most 2^63-1 by construction.
    pub fn whole_i64(&self) -> i64 {
        self.whole()
            .and_then(|w| i64::try_from(w).ok())
            .unwrap_or(i64::MAX)
    }

    /// Millicores, rounded up, saturating at `u64::MAX` (2^63-1 cores are more
    /// millicores than an int64 holds; the kubelet clamps what it derives from them).
    pub fn millis_u64(&self) -> u64 {
        self.millis()
            .and_then(|m| u64::try_from(m).ok())
            .unwrap_or(u64::MAX)
    }

    /// Whether the quantity is zero.
    pub fn is_zero(&self) -> bool {
        self.units == 0
    }

    /// `ceil(self / divisor)`, the downward API's rule for `resourceFieldRef`.
    pub fn div_ceil(&self, divisor: &Quantity) -> Option<u128> {
        self.ceil_scaled(0, divisor)
    }

    /// Whether `self > other`, exactly (for "requests must not exceed limits").
    pub fn exceeds(&self, other: &Quantity) -> bool {
        // Bring both to the larger scale; a value that overflows u128 there is the
        // larger one, since the other fits.
        let (a, b) = (self, other);
        let scale = a.scale.max(b.scale);
        let at = |q: &Quantity| {
            10u128
                .checked_pow(scale - q.scale)
                .and_then(|m| q.units.checked_mul(m))
        };
        match (at(a), at(b)) {
            (Some(x), Some(y)) => x > y,
            (None, Some(_)) => true,
            (Some(_), None) | (None, None) => false,
        }
    }

    pub const ONE: Quantity = Quantity { units: 1, scale: 0 };

    pub fn from_whole(n: u128) -> Quantity {
        Quantity { units: n, scale: 0 }
    }

    pub fn from_millis(n: u128) -> Quantity {
        Quantity { units: n, scale: 3 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exceeds_compares_exactly_across_suffixes() {
        let q = |s| Quantity::parse(s).unwrap();
        for (a, b, gt) in [
            ("2", "1", true),
            ("1", "1000m", false),
            ("1001m", "1", true),
            ("1Gi", "1G", true),
            ("1G", "1Gi", false),
            ("0.5", "500m", false),
            ("1n", "0", true),
            ("9223372036854775807", "1n", true),
            ("1n", "9223372036854775807", false),
        ] {
            assert_eq!(q(a).exceeds(&q(b)), gt, "{a} > {b}");
        }
    }

    #[test]
    fn quantities_parse_like_kubernetes() {
        let cases: &[(&str, Option<u128>, Option<u128>)] = &[
            // text, millis, whole
            ("1", Some(1000), Some(1)),
            ("500m", Some(500), Some(1)),
            ("0.1", Some(100), Some(1)),
            ("1.5", Some(1500), Some(2)),
            ("128Mi", None, Some(128 << 20)),
            ("1Gi", None, Some(1 << 30)),
            ("1G", None, Some(1_000_000_000)),
            ("2k", None, Some(2000)),
            ("2e3", None, Some(2000)),
            ("1E", None, Some(10u128.pow(18))),
            ("250u", Some(1), Some(1)),
        ];
        for (text, millis, whole) in cases {
            let q = Quantity::parse(text).unwrap_or_else(|_| panic!("{text}"));
            if let Some(m) = millis {
                assert_eq!(q.millis(), Some(*m), "{text} millis");
            }
            assert_eq!(q.whole(), *whole, "{text} whole");
        }
    }

    #[test]
    fn malformed_quantities_are_refused() {
        for text in ["", "abc", "1.2.3", "1Xi", "1e", "m", "1e-99", "-x", "--1"] {
            assert_eq!(Quantity::parse(text), Err(QuantityError::Syntax), "{text}");
        }
        assert_eq!(Quantity::parse("-1"), Err(QuantityError::Negative));
        assert_eq!(Quantity::parse("-0"), Ok(Quantity::from_whole(0)));
    }

    #[test]
    fn quantities_above_2_pow_63_minus_1_are_refused_never_wrapped() {
        // 2^64 + 100Mi, 16Ei = 2^64, 9Ei > 2^63: each once wrapped into a small,
        // unlimited or negative cgroup value.
        for text in [
            "18446744073814409216",
            "16Ei",
            "9Ei",
            "1e19",
            "1e99",
            "9223372036854775808",
            "99999999999999999999999999999999999999999",
        ] {
            assert_eq!(
                Quantity::parse(text),
                Err(QuantityError::TooLarge),
                "{text}"
            );
        }
        let max = Quantity::parse("9223372036854775807").unwrap();
        assert_eq!(max.whole_i64(), i64::MAX);
        // Rounds up past the cap: refused too.
        assert_eq!(
            Quantity::parse("9223372036854775807.5"),
            Err(QuantityError::TooLarge)
        );
        // 8Ei is 2^63: one more than the cap.
        assert_eq!(Quantity::parse("8Ei"), Err(QuantityError::TooLarge));
        assert_eq!(Quantity::parse("7Ei").unwrap().whole_i64(), 7 << 60);
        assert_eq!(Quantity::parse("7Ei").unwrap().millis_u64(), u64::MAX);
    }

    #[test]
    fn divisor_rounds_up() {
        let mem = Quantity::parse("129Mi").unwrap();
        assert_eq!(mem.div_ceil(&Quantity::parse("1Mi").unwrap()), Some(129));
        assert_eq!(mem.div_ceil(&Quantity::parse("1Gi").unwrap()), Some(1));
        let cpu = Quantity::parse("250m").unwrap();
        assert_eq!(cpu.div_ceil(&Quantity::parse("1m").unwrap()), Some(250));
        assert_eq!(cpu.div_ceil(&Quantity::ONE), Some(1));
    }
}
