//! The grammar of rules and `choose_args` sections.
//!
//! ```text
//! step        := "step" ( "take" NAME ["class" NAME]
//!                       | ("choose" | "chooseleaf") ("firstn" | "indep") INT "type" NAME
//!                       | "emit" | "noop"
//!                       | SET_STEP POSINT )
//! choose_args := "choose_args" POSINT "{" choose_arg* "}"
//! choose_arg  := "{" "bucket_id" NEGINT
//!                    ["weight_set" "[" ("[" REAL* "]")* "]"]
//!                    ["ids" "[" INT* "]"] "}"
//! ```

use super::ParseError;
use super::cursor::Cursor;
use super::lexer::Token;
use super::syntax::rule_type;
use crate::model::RuleType;

/// The `set_*` steps, by keyword.
pub(super) const SET_STEPS: [&str; 6] = [
    "set_choose_tries",
    "set_chooseleaf_tries",
    "set_choose_local_tries",
    "set_choose_local_fallback_tries",
    "set_chooseleaf_vary_r",
    "set_chooseleaf_stable",
];

/// One rule step.
pub(super) enum StepDef<'a> {
    Take {
        item: Token<'a>,
        class: Option<Token<'a>>,
    },
    Choose {
        leaf: bool,
        indep: bool,
        num: i64,
        type_name: Token<'a>,
    },
    Emit,
    Noop,
    /// `SET_STEPS[op] value`.
    Set {
        op: usize,
        value: i64,
    },
}

/// A rule definition.
pub(super) struct RuleDef<'a> {
    pub keyword: Token<'a>,
    pub name: Option<Token<'a>>,
    pub id: (i64, Token<'a>),
    pub ruleset: Option<(i64, Token<'a>)>,
    pub rule_type: RuleType,
    pub min_size: Option<i64>,
    pub max_size: Option<i64>,
    pub steps: Vec<StepDef<'a>>,
}

/// One `{ bucket_id ... }` block.
pub(super) struct ChooseArgDef<'a> {
    pub bucket_id: (i64, Token<'a>),
    pub weight_set: Option<Vec<(Vec<f32>, Token<'a>)>>,
    pub ids: Option<(Vec<i64>, Token<'a>)>,
}

/// A `choose_args N { ... }` section.
pub(super) struct ChooseArgsDef<'a> {
    pub id: (i32, Token<'a>),
    pub args: Vec<ChooseArgDef<'a>>,
}

pub(super) fn rule<'a>(cur: &mut Cursor<'a>) -> Result<RuleDef<'a>, ParseError> {
    let keyword = cur.expect("rule")?;
    let name = match cur.peek_text(0) {
        Some("{") => None,
        _ => Some(cur.name("a rule name or '{'")?),
    };
    cur.expect("{")?;
    let id = if cur.eat("id").is_some() || cur.eat("ruleset").is_some() {
        cur.posint("a rule id")?
    } else {
        return Err(cur.expected("'id'"));
    };
    let ruleset = match cur.eat("ruleset") {
        Some(_) => Some(cur.posint("a ruleset id")?),
        None => None,
    };
    cur.expect("type")?;
    let rule_type = rule_type(cur)?;
    let min_size = match cur.eat("min_size") {
        Some(_) => Some(cur.posint("a minimum size")?.0),
        None => None,
    };
    let max_size = match cur.eat("max_size") {
        Some(_) => Some(cur.posint("a maximum size")?.0),
        None => None,
    };
    let mut steps = Vec::new();
    while cur.eat("step").is_some() {
        steps.push(step(cur)?);
    }
    if steps.is_empty() {
        return Err(cur.expected("'step'"));
    }
    cur.eat("}").ok_or_else(|| cur.expected("'step' or '}'"))?;
    Ok(RuleDef {
        keyword,
        name,
        id,
        ruleset,
        rule_type,
        min_size,
        max_size,
        steps,
    })
}

fn step<'a>(cur: &mut Cursor<'a>) -> Result<StepDef<'a>, ParseError> {
    if cur.eat("take").is_some() {
        let item = cur.name("an item name")?;
        let class = match cur.eat("class") {
            Some(_) => Some(cur.name("a device class")?),
            None => None,
        };
        return Ok(StepDef::Take { item, class });
    }
    if cur.eat("emit").is_some() {
        return Ok(StepDef::Emit);
    }
    if cur.eat("noop").is_some() {
        return Ok(StepDef::Noop);
    }
    let leaf = if cur.eat("choose").is_some() {
        false
    } else if cur.eat("chooseleaf").is_some() {
        true
    } else {
        let op = SET_STEPS.iter().position(|&s| cur.peek_text(0) == Some(s));
        let Some(op) = op else {
            return Err(
                cur.expected("'take', 'choose', 'chooseleaf', 'emit', 'noop' or a 'set_...' step")
            );
        };
        cur.expect(SET_STEPS[op])?;
        let (value, _) = cur.posint("a non-negative value")?;
        return Ok(StepDef::Set { op, value });
    };
    let indep = if cur.eat("firstn").is_some() {
        false
    } else if cur.eat("indep").is_some() {
        true
    } else {
        return Err(cur.expected("'firstn' or 'indep'"));
    };
    let (num, _) = cur.integer("a number of items")?;
    cur.expect("type")?;
    let type_name = cur.name("a type name")?;
    Ok(StepDef::Choose {
        leaf,
        indep,
        num,
        type_name,
    })
}

pub(super) fn choose_args<'a>(cur: &mut Cursor<'a>) -> Result<ChooseArgsDef<'a>, ParseError> {
    cur.expect("choose_args")?;
    let id = cur.posint_strtol_int("a choose_args id")?;
    cur.expect("{")?;
    let mut args = Vec::new();
    while cur.eat("{").is_some() {
        cur.expect("bucket_id")?;
        let bucket_id = cur.negint("a bucket id")?;
        let weight_set = match cur.eat("weight_set") {
            Some(_) => Some(weight_set(cur)?),
            None => None,
        };
        let ids = match cur.eat("ids") {
            Some(_) => {
                let open = cur.expect("[")?;
                let mut ids = Vec::new();
                while cur.eat("]").is_none() {
                    ids.push(cur.integer("an id or ']'")?.0);
                }
                Some((ids, open))
            }
            None => None,
        };
        cur.eat("}").ok_or_else(|| {
            cur.expected(match (&weight_set, &ids) {
                (None, None) => "'weight_set', 'ids' or '}'",
                (Some(_), None) => "'ids' or '}'",
                _ => "'}'",
            })
        })?;
        args.push(ChooseArgDef {
            bucket_id,
            weight_set,
            ids,
        });
    }
    cur.eat("}").ok_or_else(|| cur.expected("'{' or '}'"))?;
    Ok(ChooseArgsDef { id, args })
}

fn weight_set<'a>(cur: &mut Cursor<'a>) -> Result<Vec<(Vec<f32>, Token<'a>)>, ParseError> {
    cur.expect("[")?;
    let mut positions = Vec::new();
    while let Some(open) = cur.eat("[") {
        let mut weights = Vec::new();
        while cur.eat("]").is_none() {
            weights.push(cur.real("a weight or ']'")?.0);
        }
        positions.push((weights, open));
    }
    cur.eat("]").ok_or_else(|| cur.expected("'[' or ']'"))?;
    Ok(positions)
}
