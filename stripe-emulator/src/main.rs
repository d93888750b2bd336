//! `stripe-emulator [--port P] [--host H]`: serves the Stripe emulator on 127.0.0.1:P
//! (default 12111) until Ctrl-C.

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: stripe-emulator [--port P] [--host H]\n\
    Serves a stateful, in-memory Stripe API stand-in on http://H:P (default 127.0.0.1:12111).";

/// Default port (stripe-mock's is 12111 too).
const DEFAULT_PORT: u16 = 12111;

struct Args {
    host: String,
    port: u16,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        host: "127.0.0.1".into(),
        port: DEFAULT_PORT,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{name} needs a value"))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            "-p" | "--port" => {
                let v = value("--port")?;
                parsed.port = v.parse().map_err(|_| format!("invalid port: {v}"))?;
            }
            "--host" => parsed.host = value("--host")?,
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(Some(parsed))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("stripe-emulator: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match stripe_emulator::run(&format!("{}:{}", args.host, args.port)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("stripe-emulator: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        parse_args(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn arguments() {
        let a = parse(&[]).unwrap().unwrap();
        assert_eq!((a.host.as_str(), a.port), ("127.0.0.1", 12111));
        assert_eq!(parse(&["--port", "9"]).unwrap().unwrap().port, 9);
        assert_eq!(parse(&["--port=10"]).unwrap().unwrap().port, 10);
        assert_eq!(
            parse(&["-p", "11", "--host", "0.0.0.0"])
                .unwrap()
                .unwrap()
                .host,
            "0.0.0.0"
        );
        assert!(parse(&["--help"]).unwrap().is_none());
        assert!(parse(&["--port"]).is_err());
        assert!(parse(&["--port", "x"]).is_err());
        assert!(parse(&["--nope"]).is_err());
    }
}
