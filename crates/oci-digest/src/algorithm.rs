//! The hash algorithms a layout can name, and the one place they are registered.

use std::fmt;
use std::str::FromStr;

use crate::ParseDigestError;
use crate::hasher::Hasher;

/// One streaming hash function, as the registry knows it.
///
/// This is the single trait to implement when adding an algorithm; see the crate docs.
pub trait HashFunction: Send {
    /// Feeds `data` into the state.
    fn update(&mut self, data: &[u8]);
    /// Writes the final digest into `out`, whose length is the algorithm's
    /// [`Algorithm::output_len`].
    fn finalize_into(self: Box<Self>, out: &mut [u8]);
}

/// A registered hash algorithm: what the `<alg>` in `blobs/<alg>/<hex>` may be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Algorithm {
    /// SHA-256, the canonical OCI algorithm (and the default).
    #[default]
    Sha256,
    /// SHA-512.
    Sha512,
    /// BLAKE3 with a 256-bit output.
    Blake3,
}

/// What the registry knows of an algorithm.
struct Registration {
    name: &'static str,
    output_len: usize,
    new_state: fn() -> Box<dyn HashFunction>,
}

impl Algorithm {
    /// Every registered algorithm, canonical first.
    pub const ALL: [Algorithm; 3] = [Algorithm::Sha256, Algorithm::Sha512, Algorithm::Blake3];

    /// The longest digest any registered algorithm produces, in bytes.
    pub const MAX_OUTPUT_LEN: usize = 64;

    /// The registry: one row per algorithm.
    const fn registration(self) -> Registration {
        match self {
            Algorithm::Sha256 => Registration {
                name: "sha256",
                output_len: 32,
                new_state: || Box::new(<sha2::Sha256 as sha2::Digest>::new()),
            },
            Algorithm::Sha512 => Registration {
                name: "sha512",
                output_len: 64,
                new_state: || Box::new(<sha2::Sha512 as sha2::Digest>::new()),
            },
            Algorithm::Blake3 => Registration {
                name: "blake3",
                output_len: 32,
                new_state: || Box::new(blake3::Hasher::new()),
            },
        }
    }

    /// The name used in digest strings and blob paths, e.g. `sha256`.
    pub const fn name(self) -> &'static str {
        self.registration().name
    }

    /// Digest length in bytes.
    pub const fn output_len(self) -> usize {
        self.registration().output_len
    }

    /// Length of the hex-encoded part of a digest.
    pub const fn hex_len(self) -> usize {
        self.output_len() * 2
    }

    /// Looks an algorithm up by its name; `None` for one that is not registered.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }

    /// A fresh streaming hasher.
    pub fn hasher(self) -> Hasher {
        Hasher::new(self, (self.registration().new_state)())
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> crate::Digest {
        let mut hasher = self.hasher();
        hasher.update(data);
        hasher.finalize()
    }

    /// The digest and length of everything `reader` yields, read in large chunks.
    pub fn digest_reader(
        self,
        mut reader: impl std::io::Read,
    ) -> std::io::Result<(crate::Digest, u64)> {
        let mut hasher = self.hasher();
        let mut buf = vec![0u8; crate::io::BUFFER_SIZE];
        let mut total = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
            total += n as u64;
        }
        Ok((hasher.finalize(), total))
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = ParseDigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::from_name(s).ok_or_else(|| ParseDigestError::Unsupported {
            input: crate::digest::excerpt(s),
            algorithm: crate::digest::excerpt(s),
        })
    }
}

impl HashFunction for sha2::Sha256 {
    fn update(&mut self, data: &[u8]) {
        sha2::Digest::update(self, data);
    }
    fn finalize_into(self: Box<Self>, out: &mut [u8]) {
        out.copy_from_slice(&sha2::Digest::finalize(*self));
    }
}

impl HashFunction for sha2::Sha512 {
    fn update(&mut self, data: &[u8]) {
        sha2::Digest::update(self, data);
    }
    fn finalize_into(self: Box<Self>, out: &mut [u8]) {
        out.copy_from_slice(&sha2::Digest::finalize(*self));
    }
}

impl HashFunction for blake3::Hasher {
    fn update(&mut self, data: &[u8]) {
        blake3::Hasher::update(self, data);
    }
    fn finalize_into(self: Box<Self>, out: &mut [u8]) {
        out.copy_from_slice(blake3::Hasher::finalize(&self).as_bytes());
    }
}
