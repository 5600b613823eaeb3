//! `login` and `logout`: read the user and password, call `oci_registry`, say where the
//! credentials went.

use std::io::{self, BufRead as _, IsTerminal as _, Read as _, Write as _};
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use oci_registry::{CredentialFiles, login_registry};

use crate::args::RegistryArgs;
use crate::usage::usage;

/// `login [HOST]`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry, `HOST[:PORT]`; Docker Hub (docker.io) when none is given, as docker has it.
    /// Credentials go to --authfile, else $REGISTRY_AUTH_FILE, else Docker's config.json
    /// ($DOCKER_CONFIG/config.json or ~/.docker/config.json), or to the credential helper
    /// that file names for the registry (credHelpers, credsStore).
    host: Option<String>,
    /// The user (asked for on a terminal when not given).
    #[arg(short, long)]
    username: Option<String>,
    /// The password: visible to other users of the machine and kept in shell history; prefer
    /// --password-stdin (without either, it is asked for on a terminal, not echoed).
    #[arg(short, long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from standard input (one line; the newline is not part of it).
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// `logout [HOST]`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry, `HOST[:PORT]`; Docker Hub (docker.io) when none is given.
    #[arg(conflicts_with = "all")]
    host: Option<String>,
    /// Remove the credentials of every registry from the file (and from the helpers its
    /// credHelpers name).
    #[arg(long)]
    all: bool,
    /// The credentials file: else $REGISTRY_AUTH_FILE, else Docker's config.json.
    #[arg(long, value_name = "FILE")]
    authfile: Option<PathBuf>,
}

/// The registry named, Docker Hub when none.
fn registry_of(host: Option<&str>) -> Result<String> {
    login_registry(host.unwrap_or("docker.io")).map_err(|e| usage(anyhow!(e)))
}

pub fn login(args: &LoginArgs) -> Result<()> {
    let registry = registry_of(args.host.as_deref())?;
    let from_creds = match args.registry.creds.as_deref() {
        None => None,
        Some(_) if args.username.is_some() || args.password.is_some() || args.password_stdin => {
            bail!(usage(anyhow!(
                "--creds is the user and password together: give it, or -u with a password, not both"
            )));
        }
        Some(creds) => match creds.split_once(':') {
            Some((user, password)) if !user.is_empty() => {
                Some((user.to_owned(), password.to_owned()))
            }
            _ => bail!(usage(anyhow!("--creds must be USER:PASS"))),
        },
    };
    let terminal = io::stdin().is_terminal();
    let (username, password) = match from_creds {
        Some(pair) => {
            warn_password_in_arguments("--creds");
            pair
        }
        None => {
            let username = match &args.username {
                Some(user) => user.clone(),
                None if terminal && !args.password_stdin => prompt_line("Username: ")?,
                None => bail!(usage(anyhow!(
                    "no user: give it with -u USER (standard input is not a terminal to ask on)"
                ))),
            };
            let password = if args.password_stdin {
                password_from_stdin()?
            } else if let Some(password) = &args.password {
                warn_password_in_arguments("-p");
                password.clone()
            } else if terminal {
                rpassword::prompt_password("Password: ").context("reading the password")?
            } else {
                bail!(usage(anyhow!(
                    "no password: give it on standard input with --password-stdin \
                     (standard input is not a terminal to ask on)"
                )));
            };
            (username, password)
        }
    };
    if username.is_empty() || password.is_empty() {
        bail!(usage(anyhow!(
            "the user and the password must not be empty"
        )));
    }
    let files = CredentialFiles::new(args.registry.authfile.clone());
    let options = args.registry.options()?;
    let stored = oci_registry::login(&registry, &username, &password, options, &files)
        .with_context(|| format!("logging in to {registry}"))?;
    eprintln!("logged in to {registry} as {username}: credentials stored in {stored}");
    // What a later lookup finds first is what it uses: say so when that is not these.
    if let Ok(Some(earlier)) = files.shadowing(&registry) {
        eprintln!(
            "warning: {} also holds credentials for {registry} (user {}), and is read first: \
             remove them there for these to be used",
            earlier.source, earlier.username
        );
    }
    Ok(())
}

pub fn logout(args: &LogoutArgs) -> Result<()> {
    let files = CredentialFiles::new(args.authfile.clone());
    let login_file = files.login_file()?.path;
    if args.all {
        let erased = files.erase_all()?;
        if erased.is_empty() {
            eprintln!("no credentials in {}", login_file.display());
        }
        for (key, location) in erased {
            eprintln!("removed the credentials for {key} from {location}");
        }
        return Ok(());
    }
    let registry = registry_of(args.host.as_deref())?;
    if let Some(location) = files.erase(&registry)? {
        eprintln!("removed the credentials for {registry} from {location}");
        return Ok(());
    }
    // Not in the file `login` writes: credentials another tool stored elsewhere would still
    // be used, and the user should know where they are.
    match files.lookup(&registry, "") {
        Ok(Some(found)) => bail!(
            "not logged in to {registry} in {} (the credentials used for it are in {}, \
             written by another tool: remove them there, or with that tool's logout)",
            login_file.display(),
            found.source
        ),
        _ => bail!(
            "not logged in to {registry} (no credentials for it in {})",
            login_file.display()
        ),
    }
}

fn warn_password_in_arguments(flag: &str) {
    eprintln!(
        "warning: a password given with {flag} is visible to other users of this machine and \
         kept in shell history: use --password-stdin"
    );
}

/// One line of standard input, without its line end.
fn prompt_line(prompt: &str) -> Result<String> {
    eprint!("{prompt}");
    io::stderr().flush().context("writing the prompt")?;
    let mut line = String::new();
    io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// The password on standard input: all of it, less the line end `echo` adds.
fn password_from_stdin() -> Result<String> {
    let mut text = String::new();
    io::stdin()
        .lock()
        .take(64 << 10)
        .read_to_string(&mut text)
        .context("reading the password from standard input")?;
    let password = text.strip_suffix('\n').unwrap_or(&text);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        bail!(usage(anyhow!("--password-stdin: standard input is empty")));
    }
    Ok(password.to_owned())
}
