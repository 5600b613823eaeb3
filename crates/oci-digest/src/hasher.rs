//! A streaming hasher whose algorithm is chosen at run time.

use std::fmt;

use crate::{Algorithm, Digest, HashFunction};

/// Hashes bytes fed to it with one [`Algorithm`] and yields a [`Digest`].
pub struct Hasher {
    algorithm: Algorithm,
    state: Box<dyn HashFunction>,
}

impl Hasher {
    pub(crate) fn new(algorithm: Algorithm, state: Box<dyn HashFunction>) -> Hasher {
        Hasher { algorithm, state }
    }

    /// The algorithm this hasher computes.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Feeds `data` into the hash.
    pub fn update(&mut self, data: &[u8]) {
        self.state.update(data);
    }

    /// The digest of everything fed so far.
    pub fn finalize(self) -> Digest {
        let mut bytes = [0u8; Algorithm::MAX_OUTPUT_LEN];
        let len = self.algorithm.output_len();
        self.state.finalize_into(&mut bytes[..len]);
        Digest::from_raw(self.algorithm, bytes)
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}
