//! `ontology-registry`: the KPI ontology registry's server and command line.

use std::process::ExitCode;

use clap::Parser;

mod app;
mod auth;
mod catalog;
mod cli;
mod indexer;
mod openapi;
mod problem;
mod progress;
mod publisher;
mod registry;
mod representation;
mod routes;
mod synthetic;
mod telemetry;
mod web;

/// mimalloc serves the read path's many small, short-lived allocations; with the system
/// allocator, malloc and free were among the top entries of a profile under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
