//! `WWW-Authenticate` challenges (RFC 7235), as registries send them with a 401.
//!
//! `Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"`
//! or `Basic realm="Registry"`. Several challenges may share one header, separated by commas;
//! parameter values are tokens or quoted strings with backslash escapes.

use std::collections::BTreeMap;

/// One challenge: its scheme (lowercased) and parameters (names lowercased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `basic`, `bearer`, ...
    pub scheme: String,
    /// `realm`, `service`, `scope`, ...
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// A parameter by name (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// The challenges of one header value, in order. Malformed parts end the list: what was
/// parsed before them is kept, and an empty list means nothing usable.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut parser = Parser {
        text: header.as_bytes(),
        at: 0,
    };
    let mut challenges = Vec::new();
    loop {
        parser.skip_separators();
        let Some(scheme) = parser.token() else {
            break;
        };
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: BTreeMap::new(),
        };
        // Parameters follow, comma-separated, until something that is not `name=` starts the
        // next challenge.
        loop {
            parser.skip_whitespace();
            let start = parser.at;
            let Some(name) = parser.token() else {
                break;
            };
            parser.skip_whitespace();
            if !parser.eat(b'=') {
                // The next challenge's scheme (or a token68, which registries do not send).
                parser.at = start;
                break;
            }
            parser.skip_whitespace();
            let value = if parser.peek() == Some(b'"') {
                match parser.quoted() {
                    Some(value) => value,
                    None => return finish(challenges, challenge),
                }
            } else {
                match parser.token() {
                    Some(value) => value.to_owned(),
                    None => String::new(),
                }
            };
            challenge.params.insert(name.to_ascii_lowercase(), value);
            parser.skip_whitespace();
            if !parser.eat(b',') {
                break;
            }
        }
        challenges.push(challenge);
        if parser.at >= parser.text.len() {
            break;
        }
    }
    challenges
}

fn finish(mut challenges: Vec<Challenge>, last: Challenge) -> Vec<Challenge> {
    challenges.push(last);
    challenges
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.at += 1;
        }
    }

    /// An RFC 7230 token (and `/`, which token68 and some realms carry unquoted).
    fn token(&mut self) -> Option<&'a str> {
        let start = self.at;
        while let Some(byte) = self.peek() {
            let tchar = byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&byte);
            if !tchar {
                break;
            }
            self.at += 1;
        }
        (self.at > start)
            .then(|| std::str::from_utf8(&self.text[start..self.at]).ok())
            .flatten()
    }

    /// A quoted string, unescaped; `None` when it is not closed or not UTF-8.
    fn quoted(&mut self) -> Option<String> {
        if !self.eat(b'"') {
            return None;
        }
        let mut value = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return String::from_utf8(value).ok();
                }
                b'\\' => {
                    self.at += 1;
                    value.push(self.peek()?);
                    self.at += 1;
                }
                byte => {
                    value.push(byte);
                    self.at += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(header: &str, expected: &[(&str, &[(&str, &str)])]) {
        let parsed = parse_challenges(header);
        let got: Vec<(String, Vec<(String, String)>)> = parsed
            .iter()
            .map(|c| {
                (
                    c.scheme.clone(),
                    c.params
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                )
            })
            .collect();
        let want: Vec<(String, Vec<(String, String)>)> = expected
            .iter()
            .map(|(scheme, params)| {
                let mut params: Vec<(String, String)> = params
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect();
                params.sort();
                ((*scheme).to_owned(), params)
            })
            .collect();
        assert_eq!(got, want, "{header}");
    }

    #[test]
    fn registries_challenges_parse() {
        check(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
            &[(
                "bearer",
                &[
                    ("realm", "https://auth.docker.io/token"),
                    ("service", "registry.docker.io"),
                    ("scope", "repository:library/alpine:pull"),
                ],
            )],
        );
        check(
            r#"Basic realm="Registry Realm""#,
            &[("basic", &[("realm", "Registry Realm")])],
        );
        check(
            r#"Bearer realm="https://r/token",scope="repository:a:pull,push", Basic realm="x""#,
            &[
                (
                    "bearer",
                    &[
                        ("realm", "https://r/token"),
                        ("scope", "repository:a:pull,push"),
                    ],
                ),
                ("basic", &[("realm", "x")]),
            ],
        );
        check(
            r#"BEARER Realm=https://r/t , Service = "a \"b\"""#,
            &[(
                "bearer",
                &[("realm", "https://r/t"), ("service", "a \"b\"")],
            )],
        );
        check("Basic", &[("basic", &[])]);
        check("", &[]);
        check(r#"Bearer realm="unterminated"#, &[("bearer", &[])]);
    }
}
