//! The grammar of Ceph's text format (`src/crush/grammar.h`), read into a
//! small syntax tree. Meaning (names, ids, weights) is checked later, in
//! `compile`.
//!
//! ```text
//! map     := (tunable | device | type)* (bucket | rule)* choose_args*
//! tunable := "tunable" NAME POSINT
//! device  := "device" POSINT NAME ["class" NAME]
//! type    := "type" POSINT NAME
//! bucket  := NAME NAME "{" ("id" NEGINT ["class" NAME])* "alg" NAME
//!            ("hash" (INT | "rjenkins1"))*
//!            ("item" NAME ["weight" REAL] ["pos" POSINT])* "}"
//! rule    := "rule" [NAME] "{" ("id" | "ruleset") POSINT ["ruleset" POSINT]
//!            "type" ("replicated" | "erasure") ["min_size" POSINT]
//!            ["max_size" POSINT] step+ "}"
//! ```
//! Rules' steps and `choose_args` are read by `syntax_rules`.

use super::ParseError;
use super::cursor::Cursor;
use super::lexer::Token;
use crate::model::RuleType;

pub(super) use super::syntax_rules::{ChooseArgDef, ChooseArgsDef, RuleDef, StepDef};
use super::syntax_rules::{choose_args, rule};

/// A whole map, in text order within each section.
#[derive(Default)]
pub(super) struct Ast<'a> {
    pub header: Vec<Header<'a>>,
    pub buckets: Vec<BucketDef<'a>>,
    pub rules: Vec<RuleDef<'a>>,
    pub choose_args: Vec<ChooseArgsDef<'a>>,
}

/// A tunable, device or type line.
pub(super) enum Header<'a> {
    Tunable {
        name: Token<'a>,
        value: i64,
    },
    Device {
        id: (i64, Token<'a>),
        name: Token<'a>,
        class: Option<Token<'a>>,
    },
    Type {
        id: (i64, Token<'a>),
        name: Token<'a>,
    },
}

/// An `id -N [class C]` line of a bucket.
pub(super) struct IdLine<'a> {
    pub id: (i64, Token<'a>),
    pub class: Option<Token<'a>>,
}

/// An `item NAME [weight W] [pos P]` line.
pub(super) struct ItemDef<'a> {
    pub name: Token<'a>,
    pub weight: Option<(f32, Token<'a>)>,
    pub pos: Option<(i64, Token<'a>)>,
}

/// A bucket definition.
pub(super) struct BucketDef<'a> {
    pub type_name: Token<'a>,
    pub name: Token<'a>,
    pub ids: Vec<IdLine<'a>>,
    pub alg: Token<'a>,
    /// Last `hash` line wins; `None` is `rjenkins1`.
    pub hash: Option<(Option<i64>, Token<'a>)>,
    pub items: Vec<ItemDef<'a>>,
}

#[derive(PartialEq, PartialOrd)]
enum Section {
    Header,
    Body,
    ChooseArgs,
}

/// Parses the token stream into an [`Ast`].
pub(super) fn parse_ast<'a>(cur: &mut Cursor<'a>) -> Result<Ast<'a>, ParseError> {
    let mut ast = Ast::default();
    let mut section = Section::Header;
    while let Some(tok) = cur.peek().copied() {
        let header_kw = matches!(tok.text, "tunable" | "device" | "type");
        // `type host {` would be a bucket whose type is called "type".
        if header_kw && cur.peek_text(2) != Some("{") {
            if section != Section::Header {
                return Err(ParseError::at(
                    &tok,
                    format!("'{}' lines must come before buckets and rules", tok.text),
                ));
            }
            ast.header.push(header(cur)?);
        } else if tok.text == "choose_args" {
            section = Section::ChooseArgs;
            ast.choose_args.push(choose_args(cur)?);
        } else if section == Section::ChooseArgs {
            return Err(cur.expected("'choose_args' (only choose_args may follow choose_args)"));
        } else if tok.text == "rule" {
            section = Section::Body;
            ast.rules.push(rule(cur)?);
        } else if tok.is_punct() {
            return Err(cur.expected("a tunable, device, type, bucket, rule or choose_args"));
        } else {
            if !ast.rules.is_empty() {
                return Err(ParseError::at(
                    &tok,
                    "buckets must be defined before rules".into(),
                ));
            }
            section = Section::Body;
            ast.buckets.push(bucket(cur)?);
        }
    }
    Ok(ast)
}

fn header<'a>(cur: &mut Cursor<'a>) -> Result<Header<'a>, ParseError> {
    if cur.eat("tunable").is_some() {
        let name = cur.name("a tunable name")?;
        let (value, _) = cur.posint("a tunable value")?;
        Ok(Header::Tunable { name, value })
    } else if cur.eat("device").is_some() {
        let id = cur.posint("a device id")?;
        let name = cur.name("a device name")?;
        let class = match cur.eat("class") {
            Some(_) => Some(cur.name("a device class")?),
            None => None,
        };
        Ok(Header::Device { id, name, class })
    } else {
        cur.expect("type")?;
        let id = cur.posint("a type id")?;
        let name = cur.name("a type name")?;
        Ok(Header::Type { id, name })
    }
}

fn bucket<'a>(cur: &mut Cursor<'a>) -> Result<BucketDef<'a>, ParseError> {
    let type_name = cur.name("a bucket type")?;
    let name = cur.name("a bucket name")?;
    cur.expect("{")?;
    let mut ids = Vec::new();
    while cur.eat("id").is_some() {
        let id = cur.negint("a negative bucket id")?;
        let class = match cur.eat("class") {
            Some(_) => Some(cur.name("a device class")?),
            None => None,
        };
        ids.push(IdLine { id, class });
    }
    if cur.eat("alg").is_none() {
        let what = if ids.is_empty() {
            "'id' or 'alg'"
        } else {
            "another 'id' or 'alg'"
        };
        return Err(cur.expected(what));
    }
    let alg = cur.name("a bucket algorithm")?;
    let mut hash = None;
    while cur.eat("hash").is_some() {
        hash = Some(match cur.eat("rjenkins1") {
            Some(t) => (None, t),
            None => {
                let (v, t) = cur.integer("a hash id or 'rjenkins1'")?;
                (Some(v), t)
            }
        });
    }
    let mut items = Vec::new();
    loop {
        if cur.eat("}").is_some() {
            break;
        }
        if cur.eat("item").is_none() {
            let what = match items.last() {
                None if hash.is_none() => "'hash', 'item' or '}'",
                None => "another 'hash', 'item' or '}'",
                Some(ItemDef { pos: Some(_), .. }) => "another 'item' or '}'",
                Some(ItemDef {
                    weight: Some(_), ..
                }) => "'pos', another 'item' or '}'",
                Some(_) => "'weight', 'pos', another 'item' or '}'",
            };
            return Err(cur.expected(what));
        }
        let name = cur.name("an item name")?;
        let weight = match cur.eat("weight") {
            Some(_) => Some(cur.real("an item weight")?),
            None => None,
        };
        let pos = match cur.eat("pos") {
            Some(_) => Some(cur.posint("an item position")?),
            None => None,
        };
        items.push(ItemDef { name, weight, pos });
    }
    Ok(BucketDef {
        type_name,
        name,
        ids,
        alg,
        hash,
        items,
    })
}

/// `replicated` or `erasure`.
pub(super) fn rule_type(cur: &mut Cursor<'_>) -> Result<RuleType, ParseError> {
    if cur.eat("replicated").is_some() {
        Ok(RuleType::Replicated)
    } else if cur.eat("erasure").is_some() {
        Ok(RuleType::Erasure)
    } else {
        Err(cur.expected("'replicated' or 'erasure'"))
    }
}
