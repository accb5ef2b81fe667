//! Encryption at rest: the store's data key, its file, and the three things
//! made with it — AES-256-GCM ciphertexts of personal values, keyed blind
//! indexes (HMAC-SHA256) that let equal values be found without decrypting,
//! and suppression hashes of erased identities.
//!
//! Why in the store: the engine, ingest and every reader keep working with
//! plaintext; only the SQLite file (and the snapshot cache) hold ciphertext.
//! What is encrypted: identity values (emails, phones, customer ids),
//! attribute values (names, demographics) and the free text of feedback.
//!
//! The key file holds three independent 256-bit secrets, as hex on one line:
//! `data` (AES-256-GCM), `index` (blind indexes) and `suppress` (hashes of
//! erased identities). Rotation replaces `data` and `index` and re-derives
//! every blind index from the decrypted value; `suppress` is carried over,
//! because an erased value no longer exists to be re-hashed. The key id
//! (stored in the store) is a SHA-256 of the data and index secrets, so a
//! wrong key file is refused before anything is read or written.

use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::StoreError;

type HmacSha256 = Hmac<Sha256>;

/// First byte of every ciphertext: the format.
const VERSION: u8 = 1;
/// Nonce length of AES-GCM.
const NONCE: usize = 12;
/// Bytes a ciphertext adds to its plaintext.
pub const OVERHEAD: usize = 1 + NONCE + 16;

/// What a ciphertext is of: bound into it as associated data, so a value
/// cannot be moved to another column and still decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `identities.value`.
    Identity,
    /// `attributes.value`.
    Attribute,
    /// `feedback.text`.
    FeedbackText,
    /// A section of the snapshot cache.
    Cache,
    /// A saved model's blob.
    Model,
    /// The values an unfinished erasure must verify are gone.
    Journal,
    /// A message of the event intake journal, until it is applied.
    Intake,
    /// A webhook message's payload, until it is delivered.
    Outbox,
}

impl Field {
    fn aad(self) -> &'static [u8] {
        match self {
            Field::Identity => b"infogap identity v1",
            Field::Attribute => b"infogap attribute v1",
            Field::FeedbackText => b"infogap feedback v1",
            Field::Cache => b"infogap cache v1",
            Field::Model => b"infogap model v1",
            Field::Journal => b"infogap erasure journal v1",
            Field::Intake => b"infogap intake v1",
            Field::Outbox => b"infogap webhook outbox v1",
        }
    }
}

/// The store's data key.
pub struct DataKey {
    id: String,
    aead: Aes256Gcm,
    data: [u8; 32],
    index: [u8; 32],
    suppress: [u8; 32],
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // never the secrets
        f.debug_struct("DataKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn key_err(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Key {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    b
}

fn hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(H[(x >> 4) as usize] as char);
        s.push(H[(x & 15) as usize] as char);
    }
    s
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl DataKey {
    fn from_parts(data: [u8; 32], index: [u8; 32], suppress: [u8; 32]) -> DataKey {
        let mut h = Sha256::new();
        h.update(b"infogap key id v1");
        h.update(data);
        h.update(index);
        let id = hex(&h.finalize()[..8]);
        DataKey {
            id,
            aead: Aes256Gcm::new(&data.into()),
            data,
            index,
            suppress,
        }
    }

    /// A new random key.
    pub fn generate() -> DataKey {
        DataKey::from_parts(random32(), random32(), random32())
    }

    /// The next key of a rotation: new data and index secrets, the same
    /// suppression secret.
    pub fn rotated(&self) -> DataKey {
        DataKey::from_parts(random32(), random32(), self.suppress)
    }

    /// The key's id (public: names the key in errors and in the store).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<DataKey, StoreError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(key_err(path, "the key file does not exist"));
            }
            Err(e) => return Err(key_err(path, e.to_string())),
        };
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or_else(|| key_err(path, "the key file holds no key"))?;
        let mut parts = line.split_whitespace();
        if parts.next() != Some("infogap-key-v1") {
            return Err(key_err(
                path,
                "not an infogap key file (it must start with infogap-key-v1)",
            ));
        }
        let (mut data, mut index, mut suppress) = (None, None, None);
        for p in parts {
            let (name, value) = p
                .split_once('=')
                .ok_or_else(|| key_err(path, "malformed key file"))?;
            let v = unhex32(value)
                .ok_or_else(|| key_err(path, format!("{name}: not 64 hex digits")))?;
            match name {
                "data" => data = Some(v),
                "index" => index = Some(v),
                "suppress" => suppress = Some(v),
                _ => return Err(key_err(path, format!("unknown key part {name:?}"))),
            }
        }
        match (data, index, suppress) {
            (Some(d), Some(i), Some(s)) => Ok(DataKey::from_parts(d, i, s)),
            _ => Err(key_err(
                path,
                "the key file lacks one of data, index, suppress",
            )),
        }
    }

    fn file_text(&self) -> String {
        format!(
            "# infogap data key {id}: keep it secret and back it up apart from the store.\n\
             # Without it the store's personal data cannot be read.\n\
             infogap-key-v1 data={} index={} suppress={}\n",
            hex(&self.data),
            hex(&self.index),
            hex(&self.suppress),
            id = self.id
        )
    }

    /// Writes the key to `path` (mode 0600), replacing what is there, and
    /// syncs it: written through a temporary file and renamed, so the path
    /// holds either the old file or the whole new one.
    pub fn write(&self, path: &Path) -> Result<(), StoreError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| key_err(path, e.to_string()))?;
        }
        let tmp = sibling(path, ".tmp");
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(|e| key_err(&tmp, e.to_string()))?;
        f.write_all(self.file_text().as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| key_err(&tmp, e.to_string()))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| key_err(path, e.to_string()))?;
        sync_dir(path);
        Ok(())
    }

    /// Encrypts a value.
    pub fn seal(&self, field: Field, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE];
        rand::rng().fill_bytes(&mut nonce);
        let ct = self
            .aead
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: field.aad(),
                },
            )
            // AES-GCM fails only past 64 GiB per message
            .unwrap_or_default();
        let mut out = Vec::with_capacity(OVERHEAD + plain.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts a value sealed by this key.
    pub fn open(&self, field: Field, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        if sealed.len() < OVERHEAD || sealed[0] != VERSION {
            return Err(StoreError::Corrupt(format!(
                "an encrypted {field:?} value is malformed"
            )));
        }
        let mut nonce = [0u8; NONCE];
        nonce.copy_from_slice(&sealed[1..1 + NONCE]);
        self.aead
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &sealed[1 + NONCE..],
                    aad: field.aad(),
                },
            )
            .map_err(|_| {
                StoreError::Corrupt(format!(
                    "an encrypted {field:?} value does not decrypt with key {}",
                    self.id
                ))
            })
    }

    /// Decrypts a text value.
    pub fn open_text(&self, field: Field, sealed: &[u8]) -> Result<String, StoreError> {
        String::from_utf8(self.open(field, sealed)?)
            .map_err(|_| StoreError::Corrupt(format!("an encrypted {field:?} value is not UTF-8")))
    }

    /// The blind index of an identity value: equal values give equal
    /// indexes under one key; nothing about the value can be learned
    /// without the key.
    pub fn blind(&self, value: &str) -> String {
        mac_hex(&self.index, b"blind v1", value.as_bytes(), 16)
    }

    /// A keyed digest of one attribute row's value (tells a changed value
    /// from an unchanged one on re-import without decrypting, and differs
    /// between rows with the same value).
    pub fn row_digest(&self, identity_id: i64, name: &str, value: &str) -> String {
        let mut m =
            <HmacSha256 as Mac>::new_from_slice(&self.index).unwrap_or_else(|_| unreachable!());
        m.update(b"attr v1\0");
        m.update(&identity_id.to_le_bytes());
        m.update(name.as_bytes());
        m.update(b"\0");
        m.update(value.as_bytes());
        hex(&m.finalize().into_bytes()[..16])
    }

    /// A 256-bit secret for `domain`, derived from the suppression secret:
    /// the same for every holder of the key file, and unchanged by
    /// rotation (a store in a server database keeps its other secrets
    /// this way, with no second file to copy to every server).
    pub fn derive(&self, domain: &str) -> [u8; 32] {
        // HMAC accepts keys of any length
        let mut m =
            <HmacSha256 as Mac>::new_from_slice(&self.suppress).unwrap_or_else(|_| unreachable!());
        m.update(b"derive v1\0");
        m.update(domain.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(&m.finalize().into_bytes());
        out
    }

    /// The suppression hash of an erased identity value.
    pub fn suppression(&self, kind: &str, value: &str) -> String {
        let mut v = Vec::with_capacity(kind.len() + 1 + value.len());
        v.extend_from_slice(kind.as_bytes());
        v.push(0);
        v.extend_from_slice(value.as_bytes());
        mac_hex(&self.suppress, b"suppress v1", &v, 32)
    }
}

fn mac_hex(key: &[u8; 32], domain: &[u8], msg: &[u8], n: usize) -> String {
    // HMAC accepts keys of any length
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(domain);
    m.update(b"\0");
    m.update(msg);
    hex(&m.finalize().into_bytes()[..n])
}

/// `path` with `suffix` appended to its file name.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The default key file of the store at `db`: `<db>.key`.
pub fn default_key_path(db: &Path) -> PathBuf {
    sibling(db, ".key")
}

/// The key a rotation is installing (`<key>.new`).
pub fn pending_key_path(key: &Path) -> PathBuf {
    sibling(key, ".new")
}

/// The key a rotation replaced (`<key>.previous`): older backups need it.
pub fn previous_key_path(key: &Path) -> PathBuf {
    sibling(key, ".previous")
}

/// Makes a rename durable.
pub(crate) fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_binding() {
        let k = DataKey::generate();
        let c = k.seal(Field::Identity, b"ada@example.com");
        assert_eq!(c.len(), OVERHEAD + 15);
        assert_eq!(
            k.open(Field::Identity, &c).expect("opens"),
            b"ada@example.com"
        );
        // random nonces: the same value twice gives two ciphertexts
        assert_ne!(c, k.seal(Field::Identity, b"ada@example.com"));
        // another column or another key refuses it
        assert!(k.open(Field::Attribute, &c).is_err());
        assert!(DataKey::generate().open(Field::Identity, &c).is_err());
        // a flipped bit is refused
        let mut bad = c.clone();
        bad[20] ^= 1;
        assert!(k.open(Field::Identity, &bad).is_err());
        assert!(k.open(Field::Identity, &c[..5]).is_err());
    }

    #[test]
    fn blind_indexes_are_keyed_and_stable() {
        let k = DataKey::generate();
        assert_eq!(k.blind("ada@example.com"), k.blind("ada@example.com"));
        assert_ne!(k.blind("ada@example.com"), k.blind("bob@example.com"));
        assert_ne!(
            k.blind("ada@example.com"),
            DataKey::generate().blind("ada@example.com")
        );
        let r = k.rotated();
        assert_ne!(r.id(), k.id());
        assert_ne!(r.blind("x"), k.blind("x"));
        // suppression survives rotation
        assert_eq!(r.suppression("email", "x"), k.suppression("email", "x"));
        assert_ne!(k.row_digest(1, "a", "v"), k.row_digest(2, "a", "v"));
    }

    #[test]
    fn key_file_round_trip_and_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("k.key");
        let k = DataKey::generate();
        k.write(&p).expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let back = DataKey::load(&p).expect("load");
        assert_eq!(back.id(), k.id());
        let missing = DataKey::load(&dir.path().join("nope")).expect_err("missing");
        assert!(missing.to_string().contains("nope"), "{missing}");
        std::fs::write(&p, "hello").expect("write");
        let bad = DataKey::load(&p).expect_err("bad");
        assert!(bad.to_string().contains("k.key"), "{bad}");
        // the secrets never show in Debug
        assert!(!format!("{k:?}").contains(&hex(&k.data)));
    }
}
