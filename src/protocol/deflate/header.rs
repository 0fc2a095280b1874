//! The `Sec-WebSocket-Extensions` header: a list of extensions with parameters (RFC 6455 §9.1).
//!
//! ```text
//! Sec-WebSocket-Extensions = extension-list
//! extension-list = 1#extension
//! extension = extension-token *( ";" extension-param )
//! extension-param = token [ "=" (token | quoted-string) ]
//!     ;When using the quoted-string syntax variant, the value
//!     ;after quoted-string unescaping MUST conform to the
//!     ;'token' ABNF.
//! ```
//!
//! [`parse_extensions`] reads one header value into [`ExtensionItem`]s, in the order given
//! (for a client's offer, its order of preference: RFC 6455 §9.1). It only checks the syntax;
//! what the parameters mean is for the extension ([`negotiate`](mod@super::negotiate)). Whitespace around
//! separators is allowed and empty list elements are skipped (RFC 9110 §5.6.1). The input is
//! a header already bounded by the request-head limits, and nothing here can panic.

use std::fmt;

/// One extension of the list, with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionItem {
    /// The extension token, e.g. `permessage-deflate`.
    pub name: String,
    /// The parameters, in order; duplicates are kept for the extension to judge.
    pub params: Vec<ExtensionParam>,
}

/// One `name[=value]` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionParam {
    /// The parameter name.
    pub name: String,
    /// The value, unquoted; `None` for a parameter without `=`.
    pub value: Option<String>,
}

/// Why a header value does not follow the §9.1 grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderSyntaxError {
    /// An extension name or parameter name is missing or holds a non-token character.
    ExpectedToken,
    /// `=` with no value after it.
    MissingValue,
    /// A quoted string without its closing quote.
    UnterminatedQuote,
    /// A quoted value that, unescaped, is not a token (§9.1).
    QuotedValueNotToken,
    /// Something other than `;`, `,` or the end after an item.
    UnexpectedCharacter,
}

impl fmt::Display for HeaderSyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ExpectedToken => "expected a token",
            Self::MissingValue => "parameter has `=` but no value",
            Self::UnterminatedQuote => "unterminated quoted string",
            Self::QuotedValueNotToken => "quoted value is not a token",
            Self::UnexpectedCharacter => "unexpected character",
        })
    }
}

impl std::error::Error for HeaderSyntaxError {}

/// Parses one `Sec-WebSocket-Extensions` value.
pub fn parse_extensions(value: &str) -> Result<Vec<ExtensionItem>, HeaderSyntaxError> {
    let mut cursor = Cursor {
        bytes: value.as_bytes(),
        pos: 0,
    };
    let mut items = Vec::new();
    loop {
        cursor.skip_whitespace();
        match cursor.peek() {
            None => return Ok(items),
            Some(b',') => cursor.pos += 1, // An empty list element.
            Some(_) => {
                items.push(cursor.extension()?);
                cursor.skip_whitespace();
                match cursor.next() {
                    None | Some(b',') => {}
                    Some(_) => return Err(HeaderSyntaxError::UnexpectedCharacter),
                }
            }
        }
    }
}

/// RFC 9110 §5.6.2 `tchar`: any visible ASCII except delimiters.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A position in the header value.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn token(&mut self) -> Result<String, HeaderSyntaxError> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        let token = &self.bytes[start..self.pos];
        if token.is_empty() {
            return Err(HeaderSyntaxError::ExpectedToken);
        }
        // Token characters are ASCII, so this is always valid UTF-8.
        Ok(String::from_utf8_lossy(token).into_owned())
    }

    /// `extension-token *( ";" extension-param )`, stopping before `,` or the end.
    fn extension(&mut self) -> Result<ExtensionItem, HeaderSyntaxError> {
        let name = self.token()?;
        let mut params = Vec::new();
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b';') {
                return Ok(ExtensionItem { name, params });
            }
            self.pos += 1;
            self.skip_whitespace();
            params.push(self.param()?);
        }
    }

    /// `token [ "=" (token | quoted-string) ]`.
    fn param(&mut self) -> Result<ExtensionParam, HeaderSyntaxError> {
        let name = self.token()?;
        self.skip_whitespace();
        if self.peek() != Some(b'=') {
            return Ok(ExtensionParam { name, value: None });
        }
        self.pos += 1;
        self.skip_whitespace();
        let value = match self.peek() {
            Some(b'"') => self.quoted()?,
            Some(b) if is_tchar(b) => self.token()?,
            _ => return Err(HeaderSyntaxError::MissingValue),
        };
        Ok(ExtensionParam {
            name,
            value: Some(value),
        })
    }

    /// A quoted string (RFC 9110 §5.6.4) whose unescaped content must be a token (§9.1).
    fn quoted(&mut self) -> Result<String, HeaderSyntaxError> {
        self.pos += 1; // The opening quote.
        let mut value = Vec::new();
        loop {
            match self.next() {
                None => return Err(HeaderSyntaxError::UnterminatedQuote),
                Some(b'"') => break,
                Some(b'\\') => value.push(self.next().ok_or(HeaderSyntaxError::UnterminatedQuote)?),
                Some(b) => value.push(b),
            }
        }
        if value.is_empty() || !value.iter().copied().all(is_tchar) {
            return Err(HeaderSyntaxError::QuotedValueNotToken);
        }
        Ok(String::from_utf8_lossy(&value).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, params: &[(&str, Option<&str>)]) -> ExtensionItem {
        ExtensionItem {
            name: name.into(),
            params: params
                .iter()
                .map(|(n, v)| ExtensionParam {
                    name: (*n).into(),
                    value: v.map(str::to_owned),
                })
                .collect(),
        }
    }

    #[test]
    fn valid_headers() {
        let cases: &[(&str, Vec<ExtensionItem>)] = &[
            ("", vec![]),
            (" , ,", vec![]),
            ("permessage-deflate", vec![item("permessage-deflate", &[])]),
            (
                // What browsers send.
                "permessage-deflate; client_max_window_bits",
                vec![item(
                    "permessage-deflate",
                    &[("client_max_window_bits", None)],
                )],
            ),
            (
                "permessage-deflate;server_max_window_bits=10 ; client_no_context_takeover",
                vec![item(
                    "permessage-deflate",
                    &[
                        ("server_max_window_bits", Some("10")),
                        ("client_no_context_takeover", None),
                    ],
                )],
            ),
            (
                // RFC 7692 §5.2's example of two offers, the second a fallback.
                "permessage-deflate; client_max_window_bits; server_max_window_bits=10, \
                 permessage-deflate; client_max_window_bits",
                vec![
                    item(
                        "permessage-deflate",
                        &[
                            ("client_max_window_bits", None),
                            ("server_max_window_bits", Some("10")),
                        ],
                    ),
                    item("permessage-deflate", &[("client_max_window_bits", None)]),
                ],
            ),
            (
                "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=\"12\"",
                vec![
                    item("x-webkit-deflate-frame", &[]),
                    item(
                        "permessage-deflate",
                        &[("server_max_window_bits", Some("12"))],
                    ),
                ],
            ),
            ("a; b = \"c\\d\"", vec![item("a", &[("b", Some("cd"))])]),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_extensions(text).as_ref(), Ok(expected), "{text:?}");
        }
    }

    #[test]
    fn bad_syntax() {
        use HeaderSyntaxError::*;
        let cases = [
            (";", ExpectedToken),
            ("permessage-deflate;", ExpectedToken),
            ("permessage-deflate; =10", ExpectedToken),
            ("permessage-deflate; a=", MissingValue),
            ("permessage-deflate; a=,", MissingValue),
            ("permessage-deflate; a=\"10", UnterminatedQuote),
            ("permessage-deflate; a=\"1\\", UnterminatedQuote),
            ("permessage-deflate; a=\"\"", QuotedValueNotToken),
            ("permessage-deflate; a=\"1 0\"", QuotedValueNotToken),
            ("permessage-deflate; a=\"1,0\"", QuotedValueNotToken),
            ("permessage-deflate x", UnexpectedCharacter),
            ("permessage-deflate; a=1 2", UnexpectedCharacter),
            ("permessage-deflate; a=b=c", UnexpectedCharacter),
            ("per/message", UnexpectedCharacter),
            ("émessage", ExpectedToken),
            ("pérmessage", UnexpectedCharacter),
        ];
        for (text, error) in cases {
            assert_eq!(parse_extensions(text), Err(error), "{text:?}");
        }
    }

    proptest::proptest! {
        /// Arbitrary text never panics the parser.
        #[test]
        fn never_panics(text in ".{0,64}") {
            let _ = parse_extensions(&text);
        }
    }
}
