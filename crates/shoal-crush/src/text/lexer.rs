//! Splitting the text format into tokens with their positions.
//!
//! Ceph strips everything from `#` to the end of a line and treats any run of
//! whitespace (newlines included) as one separator. A token is one of
//! `{ } [ ]` or a maximal run of other non-blank characters (blank as C's
//! `isspace`, so a non-ASCII space is part of a token, as in Ceph).

/// One token and where it starts (1-based line and column, in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Token<'a> {
    /// The token's text.
    pub text: &'a str,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub col: usize,
}

impl Token<'_> {
    /// Whether this is one of the punctuation tokens `{ } [ ]`.
    pub fn is_punct(&self) -> bool {
        matches!(self.text, "{" | "}" | "[" | "]")
    }
}

fn is_punct(c: char) -> bool {
    matches!(c, '{' | '}' | '[' | ']')
}

/// C's `isspace` in the C locale.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// Tokens of `src`, and the position just past its end (for errors at the
/// end of the input).
pub(super) fn tokenize(src: &str) -> (Vec<Token<'_>>, (usize, usize)) {
    let mut tokens = Vec::new();
    let (mut line, mut col) = (1usize, 1usize);
    let mut chars = src.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let (tok_line, tok_col) = (line, col);
        if c == '\n' {
            line += 1;
            col = 1;
            continue;
        }
        col += 1;
        if is_space(c) {
            continue;
        }
        if c == '#' {
            while chars.next_if(|&(_, c)| c != '\n').is_some() {}
            continue;
        }
        let mut end = start + c.len_utf8();
        if !is_punct(c) {
            while let Some((i, c)) =
                chars.next_if(|&(_, c)| !is_space(c) && c != '#' && !is_punct(c))
            {
                end = i + c.len_utf8();
                col += 1;
            }
        }
        tokens.push(Token {
            text: &src[start..end],
            line: tok_line,
            col: tok_col,
        });
    }
    (tokens, (line, col))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words_punctuation_and_comments() {
        let (toks, end) = tokenize("host h{ # comment {\n\titem osd.0 weight 1.0}\n");
        let texts: Vec<_> = toks.iter().map(|t| t.text).collect();
        assert_eq!(
            texts,
            ["host", "h", "{", "item", "osd.0", "weight", "1.0", "}"]
        );
        assert_eq!((toks[2].line, toks[2].col), (1, 7));
        assert_eq!((toks[3].line, toks[3].col), (2, 2));
        assert_eq!((toks[7].line, toks[7].col), (2, 23));
        assert_eq!(end, (3, 1));
    }

    #[test]
    fn comment_ends_a_word() {
        let (toks, _) = tokenize("osd.0#x y\nz");
        let texts: Vec<_> = toks.iter().map(|t| t.text).collect();
        assert_eq!(texts, ["osd.0", "z"]);
    }
}
