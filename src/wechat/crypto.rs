//! Callback signatures and safe-mode (AES) message crypto, shared by the
//! server's callback handler and the simulator that pushes events to it.
//!
//! - `signature = sha1(concat(sorted([token, timestamp, nonce])))` guards
//!   every callback; safe mode adds `msg_signature`, the same over
//!   `[token, timestamp, nonce, Encrypt]`.
//! - Safe mode: AES-256-CBC with key = base64(EncodingAESKey + "="), IV = the
//!   key's first 16 bytes, PKCS#7 padding to 32-byte blocks; the plaintext is
//!   16 random bytes, the XML's length (4 bytes, big-endian), the XML, and
//!   the appid, which the receiver checks.

use aes::Aes256;
use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use sha1::{Digest, Sha1};

/// WeChat pads to 32 bytes, not AES's 16, so padding is done by hand.
const PAD_BLOCK: usize = 32;

/// Why a safe-mode message could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("the EncodingAESKey must be 43 base64 characters (WXNOTIFY_OA_AES_KEY)")]
    BadKey,
    #[error("the encrypted message is not base64")]
    NotBase64,
    #[error("the encrypted message has a broken length or padding")]
    Malformed,
    #[error("the message was encrypted for another appid")]
    WrongAppid,
}

/// The 32-byte key derived from a 43-character EncodingAESKey.
#[derive(Clone)]
pub struct AesKey([u8; 32]);

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey(****)")
    }
}

impl AesKey {
    /// Parses an EncodingAESKey. Its last character carries two unused bits
    /// that WeChat does not zero, so the decoder must allow them.
    pub fn parse(encoding_aes_key: &str) -> Result<AesKey, CryptoError> {
        if encoding_aes_key.len() != 43 {
            return Err(CryptoError::BadKey);
        }
        let lenient = GeneralPurpose::new(&base64::alphabet::STANDARD, GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true));
        let bytes = lenient.decode(format!("{encoding_aes_key}=")).map_err(|_| CryptoError::BadKey)?;
        Ok(AesKey(bytes.try_into().map_err(|_| CryptoError::BadKey)?))
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.0[..16]);
        iv
    }
}

/// The plain-mode `signature` of a callback.
pub fn signature(token: &str, timestamp: &str, nonce: &str) -> String {
    sorted_sha1(&mut [token, timestamp, nonce])
}

/// The safe-mode `msg_signature` over the `Encrypt` element's text.
pub fn msg_signature(token: &str, timestamp: &str, nonce: &str, encrypt: &str) -> String {
    sorted_sha1(&mut [token, timestamp, nonce, encrypt])
}

/// Compares a received signature with the expected one in constant time.
pub fn signature_matches(received: &str, expected: &str) -> bool {
    let (a, b) = (received.as_bytes(), expected.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn sorted_sha1(parts: &mut [&str]) -> String {
    parts.sort_unstable();
    let mut hasher = Sha1::new();
    for part in parts.iter() {
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Encrypts `xml` for `appid` with fresh random bytes; returns the base64
/// text of the `Encrypt` element.
pub fn encrypt(key: &AesKey, xml: &str, appid: &str) -> String {
    encrypt_with_random(key, rand::random(), xml, appid)
}

/// [`encrypt`] with given random bytes, for known-answer tests.
pub fn encrypt_with_random(key: &AesKey, random: [u8; 16], xml: &str, appid: &str) -> String {
    let mut plain = Vec::with_capacity(20 + xml.len() + appid.len() + PAD_BLOCK);
    plain.extend_from_slice(&random);
    plain.extend_from_slice(&(xml.len() as u32).to_be_bytes());
    plain.extend_from_slice(xml.as_bytes());
    plain.extend_from_slice(appid.as_bytes());
    let pad = PAD_BLOCK - plain.len() % PAD_BLOCK;
    plain.resize(plain.len() + pad, pad as u8);
    let len = plain.len();
    let encryptor = cbc::Encryptor::<Aes256>::new(&key.0.into(), &key.iv().into());
    // The buffer is a whole number of blocks, so NoPadding cannot fail.
    let cipher = encryptor.encrypt_padded_mut::<NoPadding>(&mut plain, len).map(<[u8]>::to_vec).unwrap_or_default();
    STANDARD.encode(cipher)
}

/// Decrypts the `Encrypt` element's text and returns the XML inside,
/// refusing messages encrypted for another appid.
pub fn decrypt(key: &AesKey, encrypted: &str, appid: &str) -> Result<String, CryptoError> {
    let mut data = STANDARD.decode(encrypted.trim()).map_err(|_| CryptoError::NotBase64)?;
    if data.is_empty() || data.len() % PAD_BLOCK != 0 {
        return Err(CryptoError::Malformed);
    }
    let decryptor = cbc::Decryptor::<Aes256>::new(&key.0.into(), &key.iv().into());
    let plain = decryptor.decrypt_padded_mut::<NoPadding>(&mut data).map_err(|_| CryptoError::Malformed)?;
    let pad = *plain.last().ok_or(CryptoError::Malformed)? as usize;
    if pad == 0 || pad > PAD_BLOCK || plain[plain.len() - pad..].iter().any(|&b| b as usize != pad) {
        return Err(CryptoError::Malformed);
    }
    let body = &plain[..plain.len() - pad];
    let length_bytes: [u8; 4] = body.get(16..20).and_then(|b| b.try_into().ok()).ok_or(CryptoError::Malformed)?;
    let xml_end = 20usize.checked_add(u32::from_be_bytes(length_bytes) as usize).ok_or(CryptoError::Malformed)?;
    let xml = body.get(20..xml_end).ok_or(CryptoError::Malformed)?;
    if &body[xml_end..] != appid.as_bytes() {
        return Err(CryptoError::WrongAppid);
    }
    String::from_utf8(xml.to_vec()).map_err(|_| CryptoError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed independently with Python's hashlib and `openssl enc
    // -aes-256-cbc -nopad` from WeChat's sample key, token and appid.
    const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const APPID: &str = "wx2c2769f8efd9abc2";
    const XML: &str = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Event><![CDATA[subscribe]]></Event></xml>";
    const ENCRYPTED: &str = "Q3stYC6hdFzMh9T8HCvyDFoXZIxfVR8VH8kDiMaXI7KavWhJlZZ5yjjBWAoa8jX8HrAkg/gYHhH9Cv5ufbjiqRDfvsiYxbw5xlAMe1pnZIWHSEIjDkbMj0/SrCTUYolbmkmiplG06WPFf3t0wskunOq6wfPl/IoKdpr08nGYVsw=";

    #[test]
    fn the_key_is_derived_as_wechat_does_despite_trailing_bits() {
        let key = AesKey::parse(KEY).unwrap();
        assert_eq!(hex::encode(key.0), "69b71d79f8218a39259a7a29aabb2dbafc31cb3d35db7e39ebbf3d0010831051");
        assert_eq!(AesKey::parse("short").unwrap_err(), CryptoError::BadKey);
    }

    #[test]
    fn encryption_matches_a_known_answer_and_round_trips() {
        let key = AesKey::parse(KEY).unwrap();
        let encrypted = encrypt_with_random(&key, *b"0123456789abcdef", XML, APPID);
        assert_eq!(encrypted, ENCRYPTED);
        assert_eq!(decrypt(&key, ENCRYPTED, APPID).unwrap(), XML);
        let random = encrypt(&key, "<xml>中文</xml>", APPID);
        assert_eq!(decrypt(&key, &random, APPID).unwrap(), "<xml>中文</xml>");
    }

    #[test]
    fn a_message_for_another_appid_or_a_tampered_one_is_refused() {
        let key = AesKey::parse(KEY).unwrap();
        assert_eq!(decrypt(&key, ENCRYPTED, "wxsomeoneelse00000").unwrap_err(), CryptoError::WrongAppid);
        let mut tampered = STANDARD.decode(ENCRYPTED).unwrap();
        let last = tampered.len() - 1;
        tampered[last] ^= 0x55;
        assert!(decrypt(&key, &STANDARD.encode(tampered), APPID).is_err());
        assert_eq!(decrypt(&key, "not base64!", APPID).unwrap_err(), CryptoError::NotBase64);
    }

    #[test]
    fn signatures_match_known_answers() {
        assert_eq!(signature("spamtest", "1409735669", "1320562132"), "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a");
        assert_eq!(msg_signature("spamtest", "1409735669", "1320562132", ENCRYPTED), "b1566f624e1149bb0e50067ef8c368a596340ffc");
        assert!(signature_matches("abc", "abc"));
        assert!(!signature_matches("abc", "abd"));
        assert!(!signature_matches("abc", "abcd"));
    }
}
