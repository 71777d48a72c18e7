//! Ceph's CRUSH text format: [`parse`] compiles it like `crushtool -c`,
//! [`print`] decompiles like `crushtool -d` (Ceph 16.x, byte for byte).
//!
//! ```text
//! # begin crush map
//! tunable choose_total_tries 50      # missing tunables keep legacy values
//! device 0 osd.0 class ssd
//! type 0 osd
//! type 1 host
//! host host0 {
//!     id -1
//!     id -2 class ssd                # shadow bucket host0~ssd
//!     alg straw2
//!     hash 0
//!     item osd.0 weight 1.000
//! }
//! rule r {
//!     id 0
//!     type replicated
//!     min_size 1
//!     max_size 10
//!     step take host0 class ssd
//!     step chooseleaf firstn 0 type osd
//!     step emit
//! }
//! ```

mod buckets;
mod compile;
mod cursor;
mod lexer;
mod print;
mod rules;
mod syntax;
mod syntax_rules;

use thiserror::Error;

use crate::model::CrushMap;

pub use print::print;

/// A text-format error: where it is and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters (a tab counts as one).
    pub column: usize,
    /// What was expected and found, or what is wrong there.
    pub message: String,
}

impl ParseError {
    /// An error at a token.
    fn at(tok: &lexer::Token<'_>, message: String) -> Self {
        ParseError {
            line: tok.line,
            column: tok.col,
            message,
        }
    }
}

/// Compiles a map from Ceph's text format, like `crushtool -c`.
///
/// Tunables start from the legacy (argonaut) values; item weights are read as
/// `(u32)(strtof(W) * (float)0x10000)`; an item without a weight gets its
/// bucket's total weight (or 1.0 for a device). Buckets may refer to buckets
/// defined later. Bucket ids left out are assigned as Ceph does. When the map
/// has at least one rule, the device-class shadow trees are built (using the
/// `id N class C` lines) before the rules are compiled, as Ceph does; without
/// rules Ceph builds none and drops those ids, and so does this function.
///
/// Errors carry the line and column of the offending token: syntax errors
/// (`expected 'weight', 'pos', another 'item' or '}', found 'wieght'`) and
/// semantic ones (unknown names, duplicate ids, unequal uniform weights, ...).
///
/// # Errors
///
/// A [`ParseError`] with the line and column of the first problem.
pub fn parse(text: &str) -> Result<CrushMap, ParseError> {
    let (tokens, end) = lexer::tokenize(text);
    let mut cursor = cursor::Cursor::new(tokens, end);
    let ast = syntax::parse_ast(&mut cursor)?;
    compile::compile(&ast)
}
