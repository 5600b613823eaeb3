//! Real parts for the registry tests of `oci-registry` and `oci-cli`: Debian's
//! `docker-registry` (distribution 2.8) with no auth, htpasswd, token auth and TLS
//! (`harness`), a token server (`tokens`), a fault proxy between a client and the registry
//! (`proxy`), a CONNECT proxy as `HTTPS_PROXY` names one (`connect_proxy`), and the bits of
//! HTTP/1.1 they speak (`http`). Everything listens on loopback.
//!
//! Without `docker-registry` (or `openssl`, `htpasswd`) [`harness::available`] prints `SKIP`
//! and returns false; with `OCI_LAYOUT_REQUIRE_INTEROP=1` it fails the test instead.

pub mod connect_proxy;
pub mod harness;
pub mod http;
pub mod proxy;
pub mod server;
pub mod tokens;
