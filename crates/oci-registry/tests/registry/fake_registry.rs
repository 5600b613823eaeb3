//! The distribution API in memory, for what distribution 2.8 does not do: an
//! `OCI-Chunk-Min-Length` on upload sessions, tag lists paged by the registry whatever `n`
//! the client asks for, the referrers API (paged, filtered by `artifactType`). One
//! repository; a blob's digest is checked at the end of its upload.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use oci_core::{Algorithm, Digest};
use serde_json::json;

use crate::http::{Response, query_param};
use crate::responder::{Reply, Request, Responder};

/// What the fake does beyond the basics.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Sent as `OCI-Chunk-Min-Length` when an upload starts.
    pub chunk_min_length: Option<usize>,
    /// At most this many tags a page, whatever the client asks (0: what it asks).
    pub tag_page: usize,
    /// Has the referrers API (and says `OCI-Subject` when a manifest with a subject comes).
    pub referrers_api: bool,
    /// At most this many referrers a page (0: all).
    pub referrers_page: usize,
}

#[derive(Default)]
struct Content {
    blobs: HashMap<Digest, Vec<u8>>,
    /// Manifests by digest: bytes, media type.
    manifests: HashMap<Digest, (Vec<u8>, String)>,
    tags: BTreeMap<String, Digest>,
    uploads: HashMap<u64, Vec<u8>>,
    /// Descriptors of the manifests that name each subject, in push order.
    referrers: HashMap<Digest, Vec<serde_json::Value>>,
    next_upload: u64,
    /// The sizes of the `PATCH`es received, in order.
    patches: Vec<usize>,
}

/// An in-memory registry.
pub struct FakeRegistry {
    behaviour: Behaviour,
    content: Mutex<Content>,
}

impl FakeRegistry {
    /// Serves a new fake on a loopback port.
    pub fn serve(behaviour: Behaviour) -> (Arc<FakeRegistry>, Responder) {
        let fake = Arc::new(FakeRegistry {
            behaviour,
            content: Mutex::new(Content::default()),
        });
        let serving = Arc::clone(&fake);
        let responder = Responder::start(move |request| Reply::Respond(serving.handle(request)));
        (fake, responder)
    }

    fn content(&self) -> MutexGuard<'_, Content> {
        self.content
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The sizes of the `PATCH`es received.
    pub fn patches(&self) -> Vec<usize> {
        self.content().patches.clone()
    }

    /// A stored blob.
    pub fn blob(&self, digest: Digest) -> Option<Vec<u8>> {
        self.content().blobs.get(&digest).cloned()
    }

    /// Stores a manifest and tags it, as if pushed by someone else.
    pub fn put_tag(&self, tag: &str, bytes: &[u8], media_type: &str) -> Digest {
        let digest = Algorithm::Sha256.digest(bytes);
        let mut content = self.content();
        content
            .manifests
            .insert(digest, (bytes.to_vec(), media_type.to_owned()));
        content.tags.insert(tag.to_owned(), digest);
        digest
    }

    fn handle(&self, request: &Request) -> Response {
        let path = request.path().to_owned();
        let Some(rest) = path.strip_prefix("/v2/") else {
            return error(404, "NAME_UNKNOWN", "not a registry path");
        };
        if rest.is_empty() {
            return Response::new(200).json(&json!({}));
        }
        if let Some((name, id)) = rest.split_once("/blobs/uploads/") {
            return self.upload(request, name, id);
        }
        if let Some((_, digest)) = rest.split_once("/blobs/") {
            return self.blob_request(digest);
        }
        if let Some((_, reference)) = rest.split_once("/manifests/") {
            return self.manifest_request(request, reference);
        }
        if let Some((name, _)) = rest.split_once("/tags/list") {
            return self.tag_list(request, name);
        }
        if let Some((name, subject)) = rest.split_once("/referrers/") {
            return self.referrers(request, name, subject);
        }
        error(404, "NAME_UNKNOWN", "no such endpoint")
    }

    fn upload(&self, request: &Request, name: &str, id: &str) -> Response {
        let mut content = self.content();
        let session_location = |id: u64| format!("/v2/{name}/blobs/uploads/{id}");
        match request.method() {
            "POST" => {
                let id = content.next_upload;
                content.next_upload += 1;
                content.uploads.insert(id, Vec::new());
                let mut response = Response::new(202)
                    .header("Location", session_location(id))
                    .header("Range", "0-0");
                if let Some(minimum) = self.behaviour.chunk_min_length {
                    response = response.header("OCI-Chunk-Min-Length", minimum.to_string());
                }
                response
            }
            method => {
                let Ok(id) = id.parse::<u64>() else {
                    return error(404, "BLOB_UPLOAD_UNKNOWN", "no such upload");
                };
                let Some(held) = content.uploads.get(&id).map(Vec::len) else {
                    return error(404, "BLOB_UPLOAD_UNKNOWN", "no such upload");
                };
                let range = |length: usize| format!("0-{}", length.saturating_sub(1));
                match method {
                    "GET" => Response::new(204)
                        .header("Location", session_location(id))
                        .header("Range", range(held)),
                    "DELETE" => {
                        content.uploads.remove(&id);
                        Response::new(204)
                    }
                    "PATCH" => {
                        let start = request
                            .head
                            .get("Content-Range")
                            .and_then(|r| r.split('-').next())
                            .and_then(|s| s.parse::<usize>().ok());
                        if start.is_some_and(|s| s != held) {
                            return error(416, "BLOB_UPLOAD_INVALID", "out of order");
                        }
                        content.patches.push(request.body.len());
                        let held = {
                            let upload = content.uploads.get_mut(&id).expect("looked up above");
                            upload.extend_from_slice(&request.body);
                            upload.len()
                        };
                        Response::new(202)
                            .header("Location", session_location(id))
                            .header("Range", range(held))
                    }
                    "PUT" => {
                        let mut bytes = content.uploads.remove(&id).expect("looked up above");
                        bytes.extend_from_slice(&request.body);
                        let Some(expected) = query_param(request.target(), "digest")
                            .and_then(|d| Digest::parse(&crate::http::decode(d)).ok())
                        else {
                            return error(400, "DIGEST_INVALID", "no digest");
                        };
                        if expected.algorithm().digest(&bytes) != expected {
                            return error(400, "DIGEST_INVALID", "the content does not match");
                        }
                        content.blobs.insert(expected, bytes);
                        Response::new(201)
                            .header("Location", format!("/v2/{name}/blobs/{expected}"))
                            .header("Docker-Content-Digest", expected.to_string())
                    }
                    _ => error(405, "UNSUPPORTED", "method"),
                }
            }
        }
    }

    fn blob_request(&self, digest: &str) -> Response {
        let content = self.content();
        let Some(bytes) = Digest::parse(digest)
            .ok()
            .and_then(|d| content.blobs.get(&d))
        else {
            return error(404, "BLOB_UNKNOWN", "blob unknown to registry");
        };
        Response::new(200)
            .header("Content-Type", "application/octet-stream")
            .header("Docker-Content-Digest", digest)
            .body(bytes.clone())
    }

    fn manifest_request(&self, request: &Request, reference: &str) -> Response {
        let mut content = self.content();
        let by_digest = Digest::parse(reference).ok();
        if request.method() == "PUT" {
            let digest = Algorithm::Sha256.digest(&request.body);
            if by_digest.is_some_and(|d| d != digest) {
                return error(400, "DIGEST_INVALID", "the manifest does not match");
            }
            let media_type = request.head.get("Content-Type").unwrap_or("").to_owned();
            content
                .manifests
                .insert(digest, (request.body.clone(), media_type.clone()));
            if by_digest.is_none() {
                content.tags.insert(reference.to_owned(), digest);
            }
            let mut response =
                Response::new(201).header("Docker-Content-Digest", digest.to_string());
            let document: serde_json::Value =
                serde_json::from_slice(&request.body).unwrap_or_default();
            let subject = document
                .pointer("/subject/digest")
                .and_then(|d| d.as_str())
                .and_then(|d| Digest::parse(d).ok());
            if self.behaviour.referrers_api
                && let Some(subject) = subject
            {
                let artifact_type = document
                    .get("artifactType")
                    .or_else(|| document.pointer("/config/mediaType"))
                    .cloned()
                    .unwrap_or_default();
                let entry = json!({
                    "mediaType": media_type,
                    "digest": digest.to_string(),
                    "size": request.body.len(),
                    "artifactType": artifact_type,
                    "annotations": document.get("annotations").cloned().unwrap_or(json!({})),
                });
                content.referrers.entry(subject).or_default().push(entry);
                response = response.header("OCI-Subject", subject.to_string());
            }
            return response;
        }
        let digest = by_digest.or_else(|| content.tags.get(reference).copied());
        let Some((bytes, media_type)) = digest.and_then(|d| content.manifests.get(&d)) else {
            return error(404, "MANIFEST_UNKNOWN", "manifest unknown");
        };
        Response::new(200)
            .header("Content-Type", media_type.clone())
            .header(
                "Docker-Content-Digest",
                Algorithm::Sha256.digest(bytes).to_string(),
            )
            .body(bytes.clone())
    }

    fn tag_list(&self, request: &Request, name: &str) -> Response {
        let content = self.content();
        let asked = query_param(request.target(), "n")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(usize::MAX);
        let page = if self.behaviour.tag_page > 0 {
            asked.min(self.behaviour.tag_page)
        } else {
            asked
        };
        let last = query_param(request.target(), "last").map(crate::http::decode);
        let tags: Vec<&String> = content
            .tags
            .keys()
            .filter(|t| last.as_ref().is_none_or(|l| t.as_str() > l.as_str()))
            .take(page)
            .collect();
        let more = tags
            .last()
            .is_some_and(|l| content.tags.keys().any(|t| t > *l));
        let mut response = Response::new(200).json(&json!({"name": name, "tags": tags}));
        if more && let Some(last) = tags.last() {
            response = response.header(
                "Link",
                format!("</v2/{name}/tags/list?n={page}&last={last}>; rel=\"next\""),
            );
        }
        response
    }
}

impl FakeRegistry {
    fn referrers(&self, request: &Request, name: &str, subject: &str) -> Response {
        if !self.behaviour.referrers_api {
            return error(404, "NAME_UNKNOWN", "no referrers API here");
        }
        let Ok(subject) = Digest::parse(subject) else {
            return error(400, "DIGEST_INVALID", "not a digest");
        };
        let content = self.content();
        let wanted = query_param(request.target(), "artifactType").map(crate::http::decode);
        let all: Vec<&serde_json::Value> = content
            .referrers
            .get(&subject)
            .map(|list| {
                list.iter()
                    .filter(|d| {
                        wanted
                            .as_ref()
                            .is_none_or(|w| d["artifactType"] == w.as_str())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let start = query_param(request.target(), "page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(0);
        let size = if self.behaviour.referrers_page == 0 {
            all.len().max(1)
        } else {
            self.behaviour.referrers_page
        };
        let page: Vec<&serde_json::Value> = all.iter().skip(start).take(size).copied().collect();
        let mut response = Response::new(200)
            .header("Content-Type", "application/vnd.oci.image.index.v1+json")
            .body(
                json!({
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": page,
                })
                .to_string(),
            );
        if wanted.is_some() {
            response = response.header("OCI-Filters-Applied", "artifactType");
        }
        if start + size < all.len() {
            let mut next = format!("/v2/{name}/referrers/{subject}?page={}", start + size);
            if let Some(wanted) = query_param(request.target(), "artifactType") {
                next.push_str(&format!("&artifactType={wanted}"));
            }
            response = response.header("Link", format!("<{next}>; rel=\"next\""));
        }
        response
    }

    /// The tags, sorted.
    pub fn tags(&self) -> Vec<String> {
        self.content().tags.keys().cloned().collect()
    }
}

fn error(status: u16, code: &str, message: &str) -> Response {
    Response::new(status).json(&json!({"errors": [{"code": code, "message": message}]}))
}
