//! A cursor over the tokens with the typed readers the grammar needs
//! (names, integers, reals), each failing with a positioned [`ParseError`].

use super::ParseError;
use super::lexer::Token;

/// Reads tokens in order.
pub(super) struct Cursor<'a> {
    tokens: Vec<Token<'a>>,
    next: usize,
    end: (usize, usize),
}

/// How a token is shown in "found ..." messages.
pub(super) fn found(tok: Option<&Token<'_>>) -> String {
    match tok {
        Some(t) => format!("'{}'", t.text),
        None => "end of input".to_string(),
    }
}

/// A name as Ceph's grammar defines it: letters, digits, `-`, `_`, `.`.
pub(super) fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A real number as Boost.Spirit's `real_p` reads it: optional sign, digits
/// with an optional fraction (or a fraction alone), optional exponent.
fn is_real(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

impl<'a> Cursor<'a> {
    /// A cursor at the first token; `end` is the position after the input.
    pub fn new(tokens: Vec<Token<'a>>, end: (usize, usize)) -> Self {
        Cursor {
            tokens,
            next: 0,
            end,
        }
    }

    /// The next token, if any, without consuming it.
    pub fn peek(&self) -> Option<&Token<'a>> {
        self.tokens.get(self.next)
    }

    /// The text of the token `k` positions ahead, if any.
    pub fn peek_text(&self, k: usize) -> Option<&'a str> {
        self.tokens.get(self.next + k).map(|t| t.text)
    }

    /// An error at the next token (or at the end of the input).
    pub fn error_here(&self, message: String) -> ParseError {
        match self.peek() {
            Some(t) => ParseError::at(t, message),
            None => ParseError {
                line: self.end.0,
                column: self.end.1,
                message,
            },
        }
    }

    /// "expected {what}, found {next token}" at the next token.
    pub fn expected(&self, what: &str) -> ParseError {
        self.error_here(format!("expected {what}, found {}", found(self.peek())))
    }

    /// Consumes the next token if its text is `text`.
    pub fn eat(&mut self, text: &str) -> Option<Token<'a>> {
        let tok = *self.peek()?;
        (tok.text == text).then(|| {
            self.next += 1;
            tok
        })
    }

    /// Consumes the keyword or punctuation `text`, or fails.
    pub fn expect(&mut self, text: &str) -> Result<Token<'a>, ParseError> {
        self.eat(text)
            .ok_or_else(|| self.expected(&format!("'{text}'")))
    }

    /// Consumes any token, or fails at the end of the input.
    fn any(&mut self, what: &str) -> Result<Token<'a>, ParseError> {
        let tok = *self.peek().ok_or_else(|| self.expected(what))?;
        self.next += 1;
        Ok(tok)
    }

    /// Consumes a name (`what` describes it in errors).
    pub fn name(&mut self, what: &str) -> Result<Token<'a>, ParseError> {
        match self.peek() {
            Some(t) if is_name(t.text) => self.any(what),
            Some(t) if !t.is_punct() => Err(ParseError::at(
                t,
                format!(
                    "expected {what}, found '{}' (names may contain only letters, digits, '-', '_' and '.')",
                    t.text
                ),
            )),
            _ => Err(self.expected(what)),
        }
    }

    /// Consumes an integer matching `valid` (a digits-only check after an
    /// optional sign) and within `range`.
    fn number(
        &mut self,
        what: &str,
        sign: Option<bool>,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<(i64, Token<'a>), ParseError> {
        let Some(tok) = self.peek().copied() else {
            return Err(self.expected(what));
        };
        let (negative, digits) = match tok.text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, tok.text),
        };
        let sign_ok = sign.is_none_or(|s| s == negative);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || !sign_ok {
            return Err(self.expected(what));
        }
        let value = tok
            .text
            .parse::<i64>()
            .ok()
            .filter(|v| range.contains(v))
            .ok_or_else(|| ParseError::at(&tok, format!("{what} {} is out of range", tok.text)))?;
        self.next += 1;
        Ok((value, tok))
    }

    /// A non-negative integer that fits a C `int`.
    pub fn posint(&mut self, what: &str) -> Result<(i64, Token<'a>), ParseError> {
        self.number(what, Some(false), 0..=i64::from(i32::MAX))
    }

    /// A negative (or `-0`) integer that fits a C `int`.
    pub fn negint(&mut self, what: &str) -> Result<(i64, Token<'a>), ParseError> {
        self.number(what, Some(true), i64::from(i32::MIN)..=0)
    }

    /// An optionally negative integer that fits a C `int`.
    pub fn integer(&mut self, what: &str) -> Result<(i64, Token<'a>), ParseError> {
        self.number(what, None, i64::from(i32::MIN)..=i64::from(i32::MAX))
    }

    /// A non-negative integer read like C's `(int)strtol(s, 0, 10)`: values
    /// past `LONG_MAX` clamp to it, then only the low 32 bits are kept (so
    /// `18446744073709551615`, how Ceph prints choose_args id -1, gives -1).
    pub fn posint_strtol_int(&mut self, what: &str) -> Result<(i32, Token<'a>), ParseError> {
        let Some(tok) = self.peek().copied() else {
            return Err(self.expected(what));
        };
        if tok.text.is_empty() || !tok.text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.expected(what));
        }
        let long = tok.text.parse::<i64>().unwrap_or(i64::MAX);
        self.next += 1;
        Ok((long as i32, tok))
    }

    /// A real number, read as C's `strtof` would (correctly rounded `f32`).
    pub fn real(&mut self, what: &str) -> Result<(f32, Token<'a>), ParseError> {
        let Some(tok) = self.peek().copied() else {
            return Err(self.expected(what));
        };
        let value = Some(tok.text)
            .filter(|s| is_real(s))
            .and_then(|s| s.parse::<f32>().ok())
            .ok_or_else(|| self.expected(what))?;
        self.next += 1;
        Ok((value, tok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reals_follow_spirit() {
        for ok in ["1", "1.000", "-2.5", "+3", ".5", "1.", "1e3", "2.5E-2"] {
            assert!(is_real(ok), "{ok}");
        }
        for bad in ["", ".", "e3", "1e", "1.2.3", "inf", "nan", "0x10", "1,0"] {
            assert!(!is_real(bad), "{bad}");
        }
    }

    #[test]
    fn names_follow_ceph() {
        assert!(is_name("osd.12") && is_name("rack-1_a") && is_name("-5"));
        assert!(!is_name("a~b") && !is_name("") && !is_name("a/b"));
    }
}
