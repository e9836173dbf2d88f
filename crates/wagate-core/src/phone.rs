//! Recipient numbers in E.164, parsed with libphonenumber's data (the `phonenumber` crate).
//!
//! Accepted: `+` international form, missing `+`, `00` prefix, spaces, dashes, dots and brackets,
//! and national numbers when a default country is configured. Numbers that libphonenumber finds
//! *possible* (right length for the country) but not assigned, such as Meta's `+1 555…` test
//! numbers, are accepted: WhatsApp decides whether they exist.

use std::fmt;
use std::str::FromStr;

use phonenumber::country;
use phonenumber::metadata::DATABASE;
use phonenumber::Mode;

/// A phone number in E.164 form (`+16505551234`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct E164(String);

impl E164 {
    /// The number as `+16505551234`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number as WhatsApp ids it (`wa_id`): digits only, no `+`.
    pub fn wa_id(&self) -> &str {
        &self.0[1..]
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("is empty")]
    Empty,
    #[error("`{0}` contains characters that are not part of a phone number")]
    BadCharacters(String),
    #[error("`{0}` has no country code and no default country is configured")]
    NoCountry(String),
    #[error("`{0}` is not a phone number: {1}")]
    Unparseable(String, String),
    #[error("`{0}` is not a possible number for its country (wrong length or unknown country code)")]
    Impossible(String),
    #[error("`{0}` is not a known country code (use ISO 3166 alpha-2, such as `US` or `DE`)")]
    BadCountry(String),
}

impl PhoneError {
    /// What the caller can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::NoCountry(_) => {
                "write the number in international form, e.g. +16505551234, or set phone.default_country"
            }
            Self::BadCountry(_) => "use a two-letter ISO country code such as US, DE or BR",
            _ => "write the number in international form with its country code, e.g. +16505551234",
        }
    }
}

/// A default country for national numbers (`US`, `de`).
pub fn parse_country(code: &str) -> Result<country::Id, PhoneError> {
    country::Id::from_str(&code.trim().to_ascii_uppercase()).map_err(|_| PhoneError::BadCountry(code.to_string()))
}

/// The ISO 3166 region (`US`, `DE`) of an international number given as digits (a WhatsApp id),
/// when its country code is known.
/// Whether `s` is a business-scoped user id as Meta writes them: a two-letter country, an
/// optional `ENT.` (a parent id), a dot and 1 to 128 letters or digits (`US.13491208655302741918`).
pub fn is_business_scoped_user_id(s: &str) -> bool {
    let Some((country, rest)) = s.split_once('.') else {
        return false;
    };
    let id = rest.strip_prefix("ENT.").unwrap_or(rest);
    country.len() == 2
        && country.bytes().all(|b| b.is_ascii_uppercase())
        && (1..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Loads libphonenumber's metadata now. It is loaded on first use, which takes about 100 ms and
/// holds every thread that needs it meanwhile: a server calls this as it starts, not on its first
/// request (the simulator's first sends to new users stalled together, and reached it bunched).
pub fn warm() {
    let _ = DATABASE.by_id("US");
}

/// A number's digits as Meta's Graph API writes a phone number (`+1 555-078-3881`); webhook
/// metadata carries the bare digits. Digits it cannot format come back as `+` and the digits.
pub fn international(digits: &str) -> String {
    match phonenumber::parse(None, format!("+{digits}")) {
        Ok(n) => n.format().mode(phonenumber::Mode::International).to_string(),
        Err(_) => format!("+{digits}"),
    }
}

pub fn region_of(wa_id: &str) -> Option<String> {
    let parsed = phonenumber::parse(None, format!("+{wa_id}")).ok()?;
    parsed.country().id().map(|id| format!("{id:?}"))
}

/// Normalises what a user typed into E.164.
pub fn normalize(input: &str, default_country: Option<country::Id>) -> Result<E164, PhoneError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(PhoneError::Empty);
    }
    if !trimmed
        .chars()
        .all(|c| c.is_ascii_digit() || " +-.()/\u{a0}".contains(c))
    {
        return Err(PhoneError::BadCharacters(input.to_string()));
    }
    // Punctuation only between digits: `-16505551234`, `1650+5551234` or `16505551234-` are
    // typos, not numbers. A leading `+` or `(` and a trailing `)` are the usual forms.
    let starts_well = trimmed.starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '(');
    let ends_well = trimmed.ends_with(|c: char| c.is_ascii_digit() || c == ')');
    if !starts_well || !ends_well || trimmed[1..].contains('+') {
        return Err(PhoneError::BadCharacters(input.to_string()));
    }
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    let international = if trimmed.starts_with('+') {
        Some(digits.clone())
    } else {
        digits.strip_prefix("00").map(str::to_string)
    };
    // The digits of the number itself (without an international `00`).
    let typed = international.clone().unwrap_or_else(|| digits.clone());
    let as_international = |d: &str| phonenumber::parse(None, format!("+{d}"));
    let parsed = match (international, default_country) {
        (Some(d), _) => as_international(&d),
        (None, Some(country)) => {
            // Without `+`, digits may be a national number of the default country or an
            // international number written without its `+` (as WhatsApp ids are). A valid
            // reading wins over a merely possible one; the national reading wins a tie.
            let national = phonenumber::parse(Some(country), &digits).ok();
            let intl = as_international(&digits).ok();
            let pick = [
                national.as_ref().filter(|n| n.is_valid()),
                intl.as_ref().filter(|n| n.is_valid()),
            ]
            .into_iter()
            .chain([
                national.as_ref().filter(|n| is_possible(n)),
                intl.as_ref().filter(|n| is_possible(n)),
            ])
            .flatten()
            .next()
            .cloned();
            match pick {
                Some(n) => Ok(n),
                None => return Err(PhoneError::Impossible(input.to_string())),
            }
        }
        (None, None) => as_international(&digits),
    }
    .map_err(|e| PhoneError::Unparseable(input.to_string(), e.to_string()))?;
    if !is_possible(&parsed) {
        return Err(PhoneError::Impossible(input.to_string()));
    }
    let e164 = parsed.format().mode(Mode::E164).to_string();
    // Never another number than the one typed. libphonenumber strips what it takes for a trunk
    // prefix, which is right for `+49 (0)30…` but once read `+7 888 285 752 291` as
    // `+7 828 575 2291`: the digits typed must be the number, with at most the country code
    // and the country's trunk prefix before it.
    let national = format!(
        "{}{}",
        "0".repeat(usize::from(parsed.national().zeros())),
        parsed.national().value()
    );
    let code = parsed.code().value().to_string();
    let trunk = parsed
        .metadata(&DATABASE)
        .and_then(|m| m.national_prefix())
        .unwrap_or_default();
    let readings = [
        format!("{code}{national}"),
        format!("{code}{trunk}{national}"),
        national.clone(),
        format!("{trunk}{national}"),
    ];
    if !readings.contains(&typed) {
        return Err(PhoneError::Unparseable(
            input.to_string(),
            format!("it reads as {e164}, which is not the digits typed"),
        ));
    }
    if e164.len() > 16 {
        return Err(PhoneError::Impossible(input.to_string()));
    }
    Ok(E164(e164))
}

fn is_possible(n: &phonenumber::PhoneNumber) -> bool {
    if n.is_valid() {
        return true;
    }
    let len = n.national().to_string().len() as u16 + u16::from(n.national().zeros());
    // The data keeps possible lengths on the number types (the general descriptor is often empty).
    // Local lengths (dialled without the area code) do not count: WhatsApp needs the whole number.
    let fits = |meta: &phonenumber::Metadata| {
        let d = meta.descriptors();
        [Some(d.general()), d.fixed_line(), d.mobile()]
            .into_iter()
            .flatten()
            .any(|desc| desc.possible_length().contains(&len))
    };
    // A number no region's patterns claim (such as +1 555 test numbers) has no metadata of its
    // own; then any region of its country code decides whether the length is possible.
    match n.metadata(&DATABASE) {
        Some(meta) => fits(meta),
        None => DATABASE
            .by_code(&n.code().value())
            .is_some_and(|metas| metas.into_iter().any(fits)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_metas_graph_api_writes_them() {
        assert_eq!(international("15550783881"), "+1 555-078-3881");
        assert_eq!(international("5511999999999"), "+55 11 99999-9999");
        assert_eq!(international("12"), "+12");
    }

    #[test]
    fn formats_table() {
        let us = Some(country::Id::US);
        let de = Some(country::Id::DE);
        let cases: &[(&str, Option<country::Id>, &str)] = &[
            ("+16505551234", None, "+16505551234"),
            ("16505551234", None, "+16505551234"),
            ("+1 (650) 555-1234", None, "+16505551234"),
            ("001 650 555 1234", None, "+16505551234"),
            ("1-650-555-1234", None, "+16505551234"),
            ("650.555.1234", us, "+16505551234"),
            ("(650) 555 1234", us, "+16505551234"),
            ("+49 30 123456", None, "+4930123456"),
            ("030 123456", de, "+4930123456"),
            ("0049 151 23456789", None, "+4915123456789"),
            ("+55 11 91234-5678", None, "+5511912345678"),
            ("+44 7911 123456", None, "+447911123456"),
            ("+1 555 078 3881", None, "+15550783881"),
            ("16505551234", de, "+16505551234"),
        ];
        for (input, country, want) in cases {
            let got = normalize(input, *country);
            assert_eq!(got.as_ref().map(E164::as_str), Ok(*want), "{input} with {country:?}");
        }
    }

    #[test]
    fn refusals_table() {
        let cases: &[(&str, Option<country::Id>)] = &[
            ("", None),
            ("   ", None),
            ("hello", None),
            ("+1 650 555 12a4", None),
            ("+1 650", None),
            ("+999 1234567", None),
            ("+1 650 555 1234 5678 9999", None),
            ("-16505551234", None),
            ("16505551234-", None),
            ("1650+5551234", None),
            ("++16505551234", None),
            ("./16505551234", None),
            // Local numbers without their area code, found by the fuzzer (bench/fuzz.rs).
            ("49159", None),
            ("+1 555 1234", None),
            ("(70-1/87", Some(country::Id::US)),
            // Read by libphonenumber as +7 828 575 2291: digits typed would be dropped.
            ("+7888285752291", None),
            // E.164 has at most 15 digits.
            ("+49 3071090 64489 740", None),
        ];
        for (input, country) in cases {
            assert!(normalize(input, *country).is_err(), "{input} should be refused");
        }
    }

    use proptest::prelude::*;

    proptest! {
        /// Whatever is typed, normalising never panics, and what it accepts is E.164 (`+` and
        /// at most 15 digits), ends with the digits typed, and normalises to itself again.
        #[test]
        fn anything_typed_is_refused_or_e164(input in "[0-9+()\\-. /a]{0,24}|\\PC{0,24}", us in any::<bool>()) {
            let country = us.then_some(country::Id::US);
            if let Ok(n) = normalize(&input, country) {
                let digits = &n.as_str()[1..];
                prop_assert!(n.as_str().starts_with('+'));
                prop_assert!(digits.chars().all(|c| c.is_ascii_digit()), "{}", n);
                prop_assert!(digits.len() <= 15, "{}", n);
                let typed: String = input.chars().filter(char::is_ascii_digit).collect();
                prop_assert!(typed.ends_with(&digits[digits.len().saturating_sub(4)..]), "{} from {}", n, input);
                prop_assert_eq!(normalize(n.as_str(), None), Ok(n.clone()));
            }
        }
    }

    #[test]
    fn wa_id_drops_plus() {
        let n = normalize("+16505551234", None).expect("valid");
        assert_eq!(n.wa_id(), "16505551234");
    }

    #[test]
    fn business_scoped_user_ids_are_recognised() {
        for ok in ["US.13491208655302741918", "BR.ENT.abc123", "DE.x"] {
            assert!(is_business_scoped_user_id(ok), "{ok}");
        }
        let long = format!("US.{}", "1".repeat(129));
        for bad in [
            "+16505551234",
            "us.123",
            "USA.123",
            "US.",
            "US.12-3",
            "US.ENT.",
            long.as_str(),
        ] {
            assert!(!is_business_scoped_user_id(bad), "{bad}");
        }
    }
}
