//! The `org.opencontainers.image.ref.name` grammar.

use crate::{Error, Result};

/// The annotation that names an index entry.
pub const REF_NAME_ANNOTATION: &str = oci_spec::image::ANNOTATION_REF_NAME;

/// Whether `name` matches the image-spec grammar:
/// `ref ::= component ("/" component)*`, `component ::= alphanum (separator alphanum)*`,
/// `alphanum ::= [A-Za-z0-9]+`, `separator ::= [-._:@+] | "--"`.
pub fn is_valid_ref_name(name: &str) -> bool {
    !name.is_empty() && name.split('/').all(is_valid_component)
}

/// Like [`is_valid_ref_name`], as a `Result` whose error names the ref.
pub fn validate_ref_name(name: &str) -> Result<()> {
    if is_valid_ref_name(name) {
        Ok(())
    } else {
        Err(Error::InvalidRefName {
            name: excerpt(name),
        })
    }
}

fn is_valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let mut i = 0;
    loop {
        let run = bytes[i..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if run == 0 {
            return false;
        }
        i += run;
        if i == bytes.len() {
            return true;
        }
        i += match &bytes[i..] {
            [b'-', b'-', ..] => 2,
            [b'-' | b'.' | b'_' | b':' | b'@' | b'+', ..] => 1,
            _ => return false,
        };
    }
}

/// Names in errors are cut to this many characters: a hostile 100k-character ref must not
/// become a 100k-character log line.
const MAX_ERROR_NAME: usize = 160;

fn excerpt(name: &str) -> String {
    match name.char_indices().nth(MAX_ERROR_NAME) {
        Some((cut, _)) => format!("{}…", &name[..cut]),
        None => name.to_owned(),
    }
}
