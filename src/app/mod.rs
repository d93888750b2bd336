//! The process: the command line, building and starting the service, and the demo.

pub mod cli;
#[cfg(feature = "emulator")]
pub mod demo;
pub mod startup;
