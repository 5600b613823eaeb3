//! Opening what a [`StoreName`] names, to read from or to write into.

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use oci_core::{Error as CoreError, Store, seed};
use oci_dir::{DirLayout, DirOptions, Lease};
use oci_registry::{Registry, RegistryOptions};
use oci_tar::docker_archive::{DockerArchive, DockerArchiveWriter};
use oci_tar::{OutputFile, TarArchive, TarWriter};

use crate::{Error, StoreName};

/// How stores are opened.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// For layout directories.
    pub dir: DirOptions,
    /// For registries.
    pub registry: RegistryOptions,
}

/// The store a name names, to read: a layout directory, an archive read in place, a
/// registry repository.
pub fn open_source(name: &StoreName, options: &OpenOptions) -> Result<Box<dyn Store>, Error> {
    Ok(match name {
        StoreName::Layout { path, .. } => Box::new(DirLayout::open_with(path, options.dir)?),
        StoreName::Archive { path, .. } => Box::new(TarArchive::open(path)?),
        StoreName::Registry(image) => Box::new(Registry::open(image, options.registry.clone())?),
        StoreName::DockerArchive { path, .. } => Box::new(DockerArchive::open(path)?),
    })
}

/// A store to read: the archive at `path` when it is a file (read in place, never
/// extracted), else the layout directory there.
pub fn open_readable(path: &Path, options: DirOptions) -> Result<Box<dyn Store>, CoreError> {
    if path.is_file() {
        Ok(Box::new(TarArchive::open(path)?))
    } else {
        Ok(Box::new(DirLayout::open_with(path, options)?))
    }
}

/// A store to change: the layout directory at `path`. An archive is refused: it is written
/// whole, by packing a layout.
pub fn open_writable(path: &Path, options: DirOptions) -> Result<DirLayout, CoreError> {
    if path.is_file() {
        return Err(CoreError::unsupported(
            path,
            "an archive is read-only: unpack it into a layout directory to change it",
        ));
    }
    DirLayout::open_with(path, options)
}

/// Where a copy goes: a store, and what finishing it takes.
pub enum Destination {
    /// A layout directory (created when missing or empty), under a lease until finished, so
    /// a gc meanwhile sweeps nothing the copy wrote before it is tagged.
    Layout(DirLayout, Lease),
    /// An archive being written; it appears at its path, complete, when finished.
    Archive(TarWriter<BufWriter<OutputFile>>, PathBuf),
    /// A registry repository.
    Registry(Registry),
    /// A docker archive being written; it appears at its path, complete, when finished.
    DockerArchive(DockerArchiveWriter<BufWriter<OutputFile>>, PathBuf),
}

impl Destination {
    /// Opens what `name` names to copy into.
    pub fn open(name: &StoreName, options: &OpenOptions) -> Result<Destination, Error> {
        Ok(match name {
            StoreName::Layout { path, .. } => {
                let layout = DirLayout::open_or_create(path, options.dir)?;
                let lease = layout.lease()?;
                Destination::Layout(layout, lease)
            }
            StoreName::Archive { path, .. } => {
                let output = OutputFile::create(path).map_err(|e| CoreError::io(path, e))?;
                let writer = TarWriter::new(BufWriter::with_capacity(1 << 20, output), path);
                seed::init(&writer, &seed::InitOptions::default())?;
                Destination::Archive(writer, path.clone())
            }
            StoreName::Registry(image) => {
                Destination::Registry(Registry::open(image, options.registry.clone())?)
            }
            StoreName::DockerArchive { reference, path } => {
                if reference.as_deref().is_some_and(|r| r.starts_with('@')) {
                    return Err(Error::Name {
                        name: name.to_string(),
                        reason: "@N picks an image to read; a destination takes NAME:TAG".into(),
                    });
                }
                let output = OutputFile::create(path).map_err(|e| CoreError::io(path, e))?;
                // A regular file takes a decompressed layer's header once its size is known;
                // a pipe gets the layer spooled to a temp file first.
                let seekable = output.is_seekable();
                let output = BufWriter::with_capacity(1 << 20, output);
                let writer = if seekable {
                    DockerArchiveWriter::seekable(output, path)
                } else {
                    DockerArchiveWriter::new(output, path)
                };
                Destination::DockerArchive(writer, path.clone())
            }
        })
    }

    /// The store to copy into.
    pub fn store(&self) -> &dyn Store {
        match self {
            Destination::Layout(layout, _) => layout,
            Destination::Archive(writer, _) => writer,
            Destination::Registry(registry) => registry,
            Destination::DockerArchive(writer, _) => writer,
        }
    }

    /// Ends the copy: an archive is finished and takes its name; a layout's lease ends.
    pub fn finish(self) -> Result<(), Error> {
        match self {
            Destination::Layout(_, lease) => drop(lease),
            Destination::Archive(writer, path) => {
                let output = writer
                    .finish()?
                    .into_inner()
                    .map_err(|e| CoreError::io(&path, e.into_error()))?;
                output.commit().map_err(|e| CoreError::io(&path, e))?;
            }
            Destination::Registry(_) => {}
            Destination::DockerArchive(writer, path) => {
                let output = writer
                    .finish()?
                    .into_inner()
                    .map_err(|e| CoreError::io(&path, e.into_error()))?;
                output.commit().map_err(|e| CoreError::io(&path, e))?;
            }
        }
        Ok(())
    }
}
