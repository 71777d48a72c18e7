//! `shoalmap`: offline inspection of CRUSH maps and OSDMaps, the Shoal
//! counterpart of `crushtool`, `osdmaptool` and `ceph osd map`.

mod balance_cmd;
mod cli;
mod crush_cmd;
mod crush_json;
mod input;
mod osdmap_cmd;
mod pgs_cmd;
mod simulate;
mod svg;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shoalmap: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<()> {
    let format = cli.format;
    match cli.command {
        cli::Command::Crush(c) => crush_cmd::run(c, format),
        cli::Command::Osdmap(cli::OsdmapCommand::Create(a)) => osdmap_cmd::create(&a, format),
        cli::Command::Tree { osdmap } => osdmap_cmd::tree(&osdmap, format),
        cli::Command::MapObject { osdmap, pool, name } => {
            osdmap_cmd::map_object(&osdmap, &pool, &name, format)
        }
        cli::Command::Pgs(a) => pgs_cmd::run(&a, format),
        cli::Command::Simulate(a) => simulate::run(&a, format),
        cli::Command::Balance(a) => balance_cmd::run(&a, format),
    }
}
