//! JSON as Meta writes its webhook bodies: compact, with every character outside printable
//! ASCII escaped as lowercase `\uXXXX` (UTF-16, so an emoji is a surrogate pair). Meta signs
//! these bytes, and clients such as whatsapp-api-js re-escape the body they receive before
//! checking the signature, so a body in raw UTF-8 fails their check.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{Formatter, Serializer};
use serde_json::Value;

/// The compact formatter (the trait's defaults), with Meta's string escaping.
struct MetaFormatter;

impl Formatter for MetaFormatter {
    fn write_string_fragment<W: ?Sized + Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            // `~` (0x7e) is the last character left as it is; DEL and everything above is escaped.
            if (c as u32) < 0x7f {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// The bytes Meta would send for this body.
pub fn to_vec(body: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut ser = Serializer::with_formatter(&mut out, MetaFormatter);
    // Serialising a `Value` into a Vec cannot fail.
    let _ = body.serialize(&mut ser);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn non_ascii_is_escaped_as_lowercase_utf16_and_ascii_is_untouched() {
        let body = json!({"text": "héllo 👋 \u{7f} ~\"\\/\n", "n": [1, 2.5, null, true]});
        let raw = String::from_utf8(to_vec(&body)).expect("ascii");
        assert_eq!(
            raw,
            r#"{"n":[1,2.5,null,true],"text":"h\u00e9llo \ud83d\udc4b \u007f ~\"\\/\n"}"#
        );
        assert!(raw.is_ascii());
        let back: Value = serde_json::from_str(&raw).expect("valid JSON");
        assert_eq!(back, body);
    }
}
