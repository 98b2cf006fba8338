//! Opaque page tokens: base64 of `{"offset": N}`, the format MLflow's own server emits.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::DomainError;

/// Encodes an offset into an opaque page token.
pub fn encode_offset(offset: u64) -> String {
    STANDARD.encode(format!("{{\"offset\": {offset}}}"))
}

/// Decodes a page token produced by [`encode_offset`]; an empty token means offset zero.
pub fn decode_offset(token: &str) -> Result<u64, DomainError> {
    if token.is_empty() {
        return Ok(0);
    }
    let bytes = STANDARD
        .decode(token.trim())
        .map_err(|_| DomainError::invalid("Invalid page token, could not base64-decode"))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| {
        DomainError::invalid(
            "Invalid page token, decoded value=".to_string() + &String::from_utf8_lossy(&bytes),
        )
    })?;
    value
        .get("offset")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| DomainError::invalid("Invalid page token, offset is missing or negative"))
}

/// One ordering value of the last row of a page, carried in a keyset page token so the next
/// page starts right after that row (whatever rows were added or removed before it) and costs
/// the same as the first, however deep.
#[derive(Debug, Clone, PartialEq)]
pub enum SortValue {
    /// SQL NULL (a run without the key).
    Null,
    /// An integer (timestamps, null-ordering classes).
    Int(i64),
    /// A float, carried by its bits so it round-trips exactly.
    Float(f64),
    /// A string.
    Text(String),
}

impl SortValue {
    fn to_json(&self) -> serde_json::Value {
        match self {
            SortValue::Null => serde_json::Value::Null,
            SortValue::Int(value) => serde_json::json!({ "i": value }),
            SortValue::Float(value) => {
                serde_json::json!({ "f": format!("{:016x}", value.to_bits()) })
            }
            SortValue::Text(value) => serde_json::json!({ "t": value }),
        }
    }

    fn from_json(value: &serde_json::Value) -> Option<Self> {
        if value.is_null() {
            return Some(SortValue::Null);
        }
        let object = value.as_object().filter(|object| object.len() == 1)?;
        if let Some(int) = object.get("i") {
            return int.as_i64().map(SortValue::Int);
        }
        if let Some(bits) = object.get("f") {
            let bits = u64::from_str_radix(bits.as_str()?, 16).ok()?;
            return Some(SortValue::Float(f64::from_bits(bits)));
        }
        object.get("t")?.as_str().map(|text| SortValue::Text(text.to_owned()))
    }
}

/// A decoded page token: rows before this page, and the ordering values of the previous page's
/// last row when the token came from a keyset search.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PagePosition {
    /// Rows before this page (for numbering, and the position of offset tokens).
    pub offset: u64,
    /// Where the previous page ended, when known.
    pub after: Option<Vec<SortValue>>,
}

/// Encodes a keyset position: MLflow's `{"offset": N}` plus the last row's ordering values, so
/// an offset-only reader still understands it.
pub fn encode_position(offset: u64, after: &[SortValue]) -> String {
    let after: Vec<serde_json::Value> = after.iter().map(SortValue::to_json).collect();
    STANDARD.encode(serde_json::json!({ "offset": offset, "after": after }).to_string())
}

/// Decodes a token of [`encode_position`] or [`encode_offset`]; an empty token is the start.
pub fn decode_position(token: &str) -> Result<PagePosition, DomainError> {
    let offset = decode_offset(token)?;
    if token.is_empty() {
        return Ok(PagePosition::default());
    }
    // decode_offset has checked the base64 and the JSON.
    let bytes = STANDARD.decode(token.trim()).unwrap_or_default();
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let after = match value.get("after") {
        None => None,
        Some(serde_json::Value::Array(values)) => Some(
            values
                .iter()
                .map(SortValue::from_json)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| DomainError::invalid("Invalid page token, bad position"))?,
        ),
        Some(_) => return Err(DomainError::invalid("Invalid page token, bad position")),
    };
    Ok(PagePosition { offset, after })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip() {
        for offset in [0, 1, 3, 1000, u64::from(u32::MAX)] {
            assert_eq!(decode_offset(&encode_offset(offset)).unwrap(), offset);
        }
    }

    #[test]
    fn positions_round_trip_exactly() {
        let after = vec![
            SortValue::Int(0),
            SortValue::Float(0.1 + 0.2),
            SortValue::Float(-0.0),
            SortValue::Float(f64::MAX),
            SortValue::Null,
            SortValue::Text("run-\"7\" é".into()),
        ];
        let token = encode_position(300, &after);
        assert_eq!(
            decode_position(&token).unwrap(),
            PagePosition { offset: 300, after: Some(after) }
        );
        // An offset-only reader (MLflow's format) still finds the offset.
        assert_eq!(decode_offset(&token).unwrap(), 300);
        assert_eq!(
            decode_position(&encode_offset(7)).unwrap(),
            PagePosition { offset: 7, after: None }
        );
        assert_eq!(decode_position("").unwrap(), PagePosition::default());
        for bad in [
            r#"{"offset": 1, "after": 3}"#,
            r#"{"offset": 1, "after": [{"x": 1}]}"#,
            r#"{"offset": 1, "after": [{"f": "zz"}]}"#,
        ] {
            assert!(decode_position(&STANDARD.encode(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn matches_mlflow_token_format() {
        assert_eq!(encode_offset(3), "eyJvZmZzZXQiOiAzfQ==");
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(
            decode_offset("garbage!").unwrap_err().message,
            "Invalid page token, could not base64-decode"
        );
        assert!(decode_offset(&STANDARD.encode("[1]")).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..Default::default() })]

        #[test]
        fn every_offset_round_trips(offset in proptest::prelude::any::<u64>()) {
            proptest::prop_assert_eq!(decode_offset(&encode_offset(offset)).ok(), Some(offset));
        }

        /// Arbitrary text: never a panic, and an error is an invalid argument.
        #[test]
        fn arbitrary_tokens_are_decoded_or_refused(token in "\\PC{0,40}|[A-Za-z0-9+/=]{0,40}") {
            if let Err(error) = decode_offset(&token) {
                proptest::prop_assert_eq!(error.kind, crate::ErrorKind::InvalidArgument);
            }
        }

        /// Base64 of arbitrary bytes and of JSON shaped almost like a token.
        #[test]
        fn encoded_garbage_is_refused_or_a_valid_offset(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..48),
            offset in proptest::prelude::any::<i128>(),
            key in "offset|Offset|offset |",
        ) {
            for payload in [bytes.clone(), format!("{{\"{key}\": {offset}}}").into_bytes()] {
                match decode_offset(&STANDARD.encode(&payload)) {
                    Ok(decoded) if payload.is_empty() => proptest::prop_assert_eq!(decoded, 0),
                    Ok(decoded) => {
                        let value: serde_json::Value = serde_json::from_slice(&payload).expect("valid JSON");
                        proptest::prop_assert_eq!(value["offset"].as_u64(), Some(decoded));
                    }
                    Err(error) => proptest::prop_assert_eq!(error.kind, crate::ErrorKind::InvalidArgument),
                }
            }
        }
    }
}
