//! Build and inspect OCI images in any [`oci_core::Store`]: a directory layout, an archive
//! being written, a registry, memory.
//!
//! - Layers from a directory tree ([`write_dir_layer`]) or a tar file ([`write_tar_layer`]),
//!   compressed as none, gzip or zstd on every core. The blob digest and the `diff_id` come
//!   out of the same single pass: the tar stream is hashed on its way into the compressor and
//!   the compressed stream on its way into the store ([`layer`] shows the chain). Nothing is
//!   held whole in memory, and the output is the same on any machine and with any number of
//!   threads.
//! - A layer of only what a tree changes relative to a base image's tree, read from the
//!   base's layers, with whiteouts for what it removed ([`write_dir_diff_layer`],
//!   [`ImageBuilder::add_dir_diff_layer`]).
//! - Image config and manifest assembly with oci-spec's types ([`ImageBuilder`],
//!   [`ImageConfig`], [`RuntimeOverrides`]), from scratch or on a base image, whose config is
//!   kept (fields oci-spec does not model included).
//! - Resolving a ref name or digest to an image for a platform, through indexes
//!   ([`resolve_image`], [`platform`]).
//! - The tree of an image for people and scripts ([`inspect()`]).
//! - Unpacking an image into a root filesystem ([`unpack_image`], [`unpack`]): layers in
//!   order, whiteouts, hard links, devices, owners, modes, xattrs; every write confined to
//!   the target with `openat2(RESOLVE_IN_ROOT)`; each layer's digest and diff_id checked
//!   while it streams.
//! - A runtime bundle's `config.json` from an image config, by the image-spec's conversion
//!   rules, the user looked up in the rootfs's own `/etc/passwd` and `/etc/group` without
//!   leaving it ([`bundle`]).
//!
//! Reproducible images: set the entries' mtime ([`Mtime::Fixed`]) and the image's `created`
//! ([`ImageBuilder::created_at`]) to one time, usually `SOURCE_DATE_EPOCH`
//! ([`source_date_epoch`]); the same tree then gives the same manifest digest.
//!
//! ```
//! use oci_core::prelude::*;
//! use oci_dir::DirLayout;
//! use oci_image::{ImageBuilder, LayerOptions, Mtime, RuntimeOverrides, platform, resolve_image};
//!
//! let tmp = tempfile::tempdir()?;
//! let rootfs = tmp.path().join("rootfs");
//! std::fs::create_dir_all(rootfs.join("bin"))?;
//! std::fs::write(rootfs.join("bin/hello"), "#!/bin/sh\necho hello\n")?;
//! let layout = DirLayout::create(tmp.path().join("layout"))?;
//!
//! let mut image = ImageBuilder::new(&layout, &platform::parse("linux/amd64")?);
//! let options = LayerOptions { mtime: Mtime::Fixed(0), ..LayerOptions::default() };
//! let layer = image.add_dir_layer(&rootfs, &options, None)?;
//! image.created_at(0).apply(&RuntimeOverrides {
//!     cmd: Some(vec!["/bin/hello".into()]),
//!     ..RuntimeOverrides::default()
//! })?;
//! let manifest = image.write()?;
//! layout.tag(&manifest, "hello")?;
//!
//! let image = resolve_image(&layout, "hello", None)?;
//! assert_eq!(image.config.spec().rootfs().diff_ids(), &[layer.diff_id.to_string()]);
//! assert_eq!(image.manifest.layers()[0].media_type().to_string(),
//!            "application/vnd.oci.image.layer.v1.tar+gzip");
//!
//! // Unpacked into a runtime bundle's rootfs, the bundle's config.json written last.
//! let bundle = tmp.path().join("bundle");
//! std::fs::create_dir_all(&bundle)?;
//! let options = oci_image::UnpackOptions { durable: false, ..oci_image::UnpackOptions::for_current_user() };
//! let report = oci_image::unpack_image(&layout, &image, &bundle.join("rootfs"), &options, None)?;
//! assert_eq!(report.layers, 1);
//! assert_eq!(std::fs::read_to_string(bundle.join("rootfs/bin/hello"))?, "#!/bin/sh\necho hello\n");
//! let config = oci_image::bundle::BundleOptions { durable: false, ..Default::default() };
//! oci_image::bundle::write_bundle_config(&bundle, &bundle.join("rootfs"), image.config.spec(), &config)?;
//! let config: serde_json::Value = serde_json::from_slice(&std::fs::read(bundle.join("config.json"))?)?;
//! assert_eq!(config["process"]["args"], serde_json::json!(["/bin/hello"]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

mod base_tree;
mod build;
pub mod bundle;
pub mod compression;
mod config;
mod dir_layer;
mod error;
pub mod inspect;
pub mod layer;
mod multi;
mod pgzip;
pub mod platform;
mod progress;
mod resolve;
mod source_tree;
mod tar_layer;
pub mod unpack;

pub use build::{BASE_DIGEST_ANNOTATION, BASE_NAME_ANNOTATION, ImageBuilder};
pub use compression::Compression;
pub use config::{ImageConfig, MAX_TIMESTAMP, RuntimeOverrides, rfc3339, source_date_epoch};
pub use dir_layer::{write_dir_diff_layer, write_dir_layer};
pub use error::{Error, Result};
pub use inspect::{Node, inspect};
pub use layer::{Layer, LayerOptions, Mtime, Ownership, SkipReason, Skipped};
pub use multi::write_index;
pub use progress::{NoProgress, Progress};
pub use resolve::{
    ResolvedImage, is_image_manifest, resolve_image, resolve_target, select_manifest,
};
pub use tar_layer::write_tar_layer;
pub use unpack::{
    UnpackOptions, UnpackReport, UnpackTarget, UnpackWarning, Whiteouts, apply_layers,
    unpack_bundle, unpack_image,
};
