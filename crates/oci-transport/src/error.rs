//! What opening and copying stores can fail with.

/// A failure of a transport: a name that does not parse, or what the stores and image
/// logic said.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A store name that does not parse.
    #[error("invalid store name {name:?}: {reason}")]
    Name {
        /// The name as given.
        name: String,
        /// Why.
        reason: String,
    },
    /// The source does not say which image to copy, or says something impossible.
    #[error("{store}: {reason}")]
    Selection {
        /// The store.
        store: String,
        /// What is wrong.
        reason: String,
    },
    /// A store failed.
    #[error(transparent)]
    Store(#[from] oci_core::Error),
    /// A registry client could not be set up.
    #[error(transparent)]
    Registry(#[from] oci_registry::Error),
    /// Resolving an image (by platform, through indexes) failed.
    #[error(transparent)]
    Image(#[from] oci_image::Error),
}
