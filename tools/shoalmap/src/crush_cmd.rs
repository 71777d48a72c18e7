//! `shoalmap crush ...`: compile, decompile, test.

use std::io::{BufWriter, Write};

use anyhow::{Context, Result, bail};
use shoal_crush::tester::{self, TestOptions};

use crate::cli::{CrushCommand, CrushTestArgs, Format};
use crate::input::read_crush;

pub fn run(cmd: CrushCommand, format: Format) -> Result<()> {
    match cmd {
        CrushCommand::Compile { map, output } => {
            let text = std::fs::read_to_string(&map)
                .with_context(|| format!("reading {}", map.display()))?;
            let crush =
                shoal_crush::text::parse(&text).with_context(|| format!("{}", map.display()))?;
            let bytes = shoal_crush::codec::encode(&crush);
            std::fs::write(&output, &bytes)
                .with_context(|| format!("writing {}", output.display()))?;
            if format == Format::Json {
                println!(
                    "{}",
                    serde_json::json!({"output": output, "bytes": bytes.len()})
                );
            }
            Ok(())
        }
        CrushCommand::Decompile { map, output } => {
            let crush = read_crush(&map)?;
            let text = match format {
                Format::Plain => shoal_crush::text::print(&crush),
                Format::Json => {
                    serde_json::to_string_pretty(&crate::crush_json::dump(&crush))? + "\n"
                }
            };
            match output {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display())),
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(text.as_bytes())?;
                    Ok(())
                }
            }
        }
        CrushCommand::Test(args) => test(args, format),
    }
}

fn test(args: CrushTestArgs, format: Format) -> Result<()> {
    let crush = read_crush(&args.map)?;
    let opts = test_options(&args)?;
    if let Some(rule) = opts.rule
        && crush.rule(rule).is_none()
    {
        bail!("rule {rule} does not exist in {}", args.map.display());
    }
    match format {
        Format::Plain => {
            let stdout = std::io::stdout().lock();
            let mut out = BufWriter::with_capacity(1 << 16, stdout);
            tester::run_and_print(&crush, &opts, &mut out)?;
            out.flush()?;
        }
        Format::Json => {
            let mut mappings = Vec::new();
            let report = tester::run(&crush, &opts, |e| {
                if let tester::Event::Mapping(m) = e
                    && opts.show_mappings
                {
                    mappings.push(serde_json::json!({
                        "rule": m.rule, "x": m.x, "num_rep": m.num_rep, "result": m.result,
                    }));
                }
            });
            let mut value = serde_json::to_value(&report)?;
            if opts.show_mappings {
                value["mappings"] = serde_json::Value::Array(mappings);
            }
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
    }
    Ok(())
}

fn test_options(args: &CrushTestArgs) -> Result<TestOptions> {
    if args.min_x.is_some() != args.max_x.is_some() {
        eprintln!(
            "shoalmap: warning: like crushtool, --min-x and --max-x only take effect together; testing x = 0..1023"
        );
    }
    let num_rep = match (args.num_rep, args.min_rep, args.max_rep) {
        (Some(n), _, _) => Some((n, n)),
        (None, Some(a), Some(b)) => Some((a, b)),
        (None, None, None) => None,
        _ => bail!("--min-rep and --max-rep go together"),
    };
    let mut weights = Vec::new();
    for pair in args.weight.chunks(2) {
        let [dev, w] = pair else {
            bail!("--weight takes an OSD id and a weight");
        };
        let dev: i32 = dev
            .parse()
            .with_context(|| format!("--weight: bad OSD id {dev:?}"))?;
        let w: f32 = w
            .parse()
            .with_context(|| format!("--weight: bad weight {w:?}"))?;
        weights.push((dev, w));
    }
    Ok(TestOptions {
        rule: args.rule,
        num_rep,
        min_x: args.min_x,
        max_x: args.max_x,
        weights,
        pool_id: args.pool_id,
        show_mappings: args.show_mappings,
        show_bad_mappings: args.show_bad_mappings,
        show_statistics: args.show_statistics,
        show_utilization: args.show_utilization,
        show_utilization_all: args.show_utilization_all,
        show_choose_tries: args.show_choose_tries,
    })
}
