//! Compiling rules (`CrushCompiler::parse_rule`) and choose_args sections
//! (`CrushCompiler::parse_choose_args`).

use super::ParseError;
use super::compile::Compiler;
use super::lexer::Token;
use super::syntax::{ChooseArgDef, ChooseArgsDef, RuleDef, StepDef};
use crate::builder::c_double_to_u32;
use crate::model::{ChooseArg, ChooseArgMap, Rule, RuleStep};

/// Rule ids are stored as a `__u8` ruleset by Ceph.
const MAX_RULES: i64 = 256;

impl Compiler {
    pub(super) fn rule(&mut self, def: &RuleDef<'_>) -> Result<(), ParseError> {
        let name = def.name.map_or("", |t| t.text);
        if let Some(tok) = &def.name {
            if !self.rule_names.insert(name.to_string()) {
                return Err(ParseError::at(
                    tok,
                    format!("rule name '{name}' already defined"),
                ));
            }
        }
        let (id, id_tok) = def.id;
        if id >= MAX_RULES {
            let msg = format!("rule id {id} is out of range (0..={})", MAX_RULES - 1);
            return Err(ParseError::at(&id_tok, msg));
        }
        if let Some((ruleset, tok)) = def.ruleset {
            if ruleset != id {
                let msg = format!("ruleset {ruleset} != id {id} is not supported");
                return Err(ParseError::at(&tok, msg));
            }
        }
        let idx = id as usize;
        if self.map.rules.get(idx).is_some_and(Option::is_some) {
            return Err(ParseError::at(&id_tok, format!("rule {id} already exists")));
        }
        let steps = def
            .steps
            .iter()
            .map(|s| self.step(name, s))
            .collect::<Result<Vec<_>, _>>()?;
        // The rule mask stores min_size/max_size as `__u8`.
        let (min_size, max_size) = (def.min_size.unwrap_or(1), def.max_size.unwrap_or(100));
        if self.map.rules.len() <= idx {
            self.map.rules.resize(idx + 1, None);
        }
        self.map.rules[idx] = Some(Rule {
            id: id as i32,
            name: name.to_string(),
            rule_type: def.rule_type,
            min_size: i32::from(min_size as u8),
            max_size: i32::from(max_size as u8),
            steps,
        });
        Ok(())
    }

    fn step(&self, rule: &str, s: &StepDef<'_>) -> Result<RuleStep, ParseError> {
        Ok(match s {
            StepDef::Take { item, class } => {
                RuleStep::Take(self.take(rule, item, class.as_ref())?)
            }
            StepDef::Choose {
                leaf,
                indep,
                num,
                type_name,
            } => {
                let type_id = *self.type_id.get(type_name.text).ok_or_else(|| {
                    let msg = format!("in rule '{rule}' type '{}' not defined", type_name.text);
                    ParseError::at(type_name, msg)
                })?;
                let num = *num as i32; // read as a C int
                match (leaf, indep) {
                    (false, false) => RuleStep::ChooseFirstn { num, type_id },
                    (false, true) => RuleStep::ChooseIndep { num, type_id },
                    (true, false) => RuleStep::ChooseleafFirstn { num, type_id },
                    (true, true) => RuleStep::ChooseleafIndep { num, type_id },
                }
            }
            StepDef::Emit => RuleStep::Emit,
            StepDef::Noop => RuleStep::Noop,
            StepDef::Set { op, value } => {
                let v = *value as i32; // a posint fits an i32
                match op {
                    0 => RuleStep::SetChooseTries(v),
                    1 => RuleStep::SetChooseleafTries(v),
                    2 => RuleStep::SetChooseLocalTries(v),
                    3 => RuleStep::SetChooseLocalFallbackTries(v),
                    4 => RuleStep::SetChooseleafVaryR(v),
                    _ => RuleStep::SetChooseleafStable(v),
                }
            }
        })
    }

    /// The id a `take` step uses: the item, or its shadow bucket for a class.
    fn take(
        &self,
        rule: &str,
        item: &Token<'_>,
        class: Option<&Token<'_>>,
    ) -> Result<i32, ParseError> {
        let id = *self.item_id.get(item.text).ok_or_else(|| {
            ParseError::at(
                item,
                format!("in rule '{rule}' item '{}' not defined", item.text),
            )
        })?;
        let Some(class) = class else { return Ok(id) };
        if !self.classes.iter().any(|c| c == class.text) {
            let msg = format!(
                "in rule '{rule}' device class '{}' does not exist",
                class.text
            );
            return Err(ParseError::at(class, msg));
        }
        let ids = self.map.bucket(id).map(|b| &b.class_ids);
        let Some(ids) = ids.filter(|ids| !ids.is_empty()) else {
            let msg = format!(
                "in rule '{rule}' step take {} has no class information",
                item.text
            );
            return Err(ParseError::at(item, msg));
        };
        ids.iter()
            .find(|(c, _)| c == class.text)
            .map(|&(_, shadow)| shadow)
            .ok_or_else(|| {
                let msg = format!(
                    "in rule '{rule}' step take {} no matching bucket for class {}",
                    item.text, class.text
                );
                ParseError::at(class, msg)
            })
    }

    pub(super) fn choose_args(&mut self, def: &ChooseArgsDef<'_>) -> Result<(), ParseError> {
        let (id, tok) = def.id;
        let id = i64::from(id);
        if self.map.choose_args.iter().any(|m| m.id == id) {
            return Err(ParseError::at(&tok, format!("choose_args {id} duplicated")));
        }
        let mut args: Vec<ChooseArg> = Vec::new();
        for a in &def.args {
            let arg = self.choose_arg(a)?;
            if args.iter().any(|x| x.bucket_id == arg.bucket_id) {
                let msg = format!("choose_args {id}: bucket_id {} given twice", arg.bucket_id);
                return Err(ParseError::at(&a.bucket_id.1, msg));
            }
            if !arg.weight_set.is_empty() || !arg.ids.is_empty() {
                args.push(arg);
            }
        }
        args.sort_by_key(|a| std::cmp::Reverse(a.bucket_id));
        self.map.choose_args.push(ChooseArgMap { id, args });
        Ok(())
    }

    fn choose_arg(&self, a: &ChooseArgDef<'_>) -> Result<ChooseArg, ParseError> {
        let (bucket_id, tok) = a.bucket_id;
        let bucket = i32::try_from(bucket_id)
            .ok()
            .and_then(|b| self.map.bucket(b))
            .ok_or_else(|| ParseError::at(&tok, format!("bucket {bucket_id} does not exist")))?;
        let size = bucket.size();
        let mut weight_set = Vec::new();
        for (weights, open) in a.weight_set.iter().flatten() {
            if weights.len() != size {
                let msg = format!(
                    "{bucket_id} needs exactly {size} weights but got {}",
                    weights.len()
                );
                return Err(ParseError::at(open, msg));
            }
            weight_set.push(
                weights
                    .iter()
                    .map(|&w| c_double_to_u32(f64::from(w * 65536.0f32)))
                    .collect(),
            );
        }
        let mut ids = Vec::new();
        if let Some((values, open)) = &a.ids {
            if values.len() != size {
                let msg = format!(
                    "{bucket_id} needs exactly {size} ids but got {}",
                    values.len()
                );
                return Err(ParseError::at(open, msg));
            }
            ids = values.iter().map(|&v| v as i32).collect();
        }
        Ok(ChooseArg {
            bucket_id: bucket.id,
            ids,
            weight_set,
        })
    }
}
