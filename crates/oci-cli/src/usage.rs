//! Usage errors: a value on the command line (or in `SOURCE_DATE_EPOCH`) that our own parsing
//! refuses exits 2, as one clap refuses does, not 1 as a failure of the work does.

use std::fmt;

/// Marks an error as the command line's fault.
#[derive(Debug)]
struct Usage(anyhow::Error);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for Usage {}

/// `err`, marked as a usage error.
pub fn usage(err: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(Usage(err.into()))
}

/// Whether `err` was marked by [`usage`].
pub fn is_usage(err: &anyhow::Error) -> bool {
    err.chain().any(<dyn std::error::Error>::is::<Usage>)
}
