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
}
