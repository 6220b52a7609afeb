//! `townctl token`: the signing key of the tokens the registry accepts, and the tokens themselves (through
//! `township_runtime::auth::token`, where `townctl up` and the tests sign too).

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use township_runtime::Role;
use township_runtime::auth::token::{Grant, LOCAL_ISSUER, REGISTRY_AUDIENCE, SigningKey, TokenDir};

/// How long the tokens of `townctl up` and `townctl token init` last.
pub(crate) const STANDING_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, clap::Subcommand)]
pub(crate) enum TokenCommand {
    /// Write a new Ed25519 signing key: `DIR/signing.key` (private, 0600) and `DIR/keys/<kid>.pem`, the public key
    /// the registry reads with `--auth-jwt-keys DIR/keys --auth-issuer townctl`. Refuses to replace a key.
    Keygen { dir: PathBuf },
    /// The secrets of a deployment: DIR's signing key (made unless there), and an administrator token
    /// (DIR/admin.token: city_admin over `*`) and an auditor token (DIR/auditor.token) minted with it, 30 days.
    Init { dir: PathBuf },
    /// Print a new token signed with --key.
    Mint(MintArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct MintArgs {
    /// Role(s) granted: city-admin, county-editor, viewer, auditor, service (`-` or `_`); repeat or separate
    /// with commas.
    #[arg(long = "role", required = true, value_delimiter = ',')]
    roles: Vec<String>,
    /// Division codes the holder acts for (province, city or county: 2, 4 or 6 digits), or `*`; repeat or
    /// separate with commas.
    #[arg(long, required = true, value_delimiter = ',')]
    jurisdiction: Vec<String>,
    /// Lifetime: a number with s, m, h or d (e.g. 8h, 30d).
    #[arg(long, default_value = "8h", value_parser = parse_ttl)]
    ttl: Duration,
    /// Who the token names (`sub`), as the audit log records it. Default: $USER.
    #[arg(long)]
    subject: Option<String>,
    /// The signing key (PKCS#8 PEM).
    #[arg(long, env = "TOWNCTL_SIGNING_KEY", default_value = "data/auth/signing.key")]
    key: PathBuf,
    /// The audience (`aud`): the service the token is for.
    #[arg(long, default_value = REGISTRY_AUDIENCE)]
    audience: String,
    /// The issuer (`iss`); the server must trust it (`--auth-issuer`).
    #[arg(long, default_value = LOCAL_ISSUER)]
    issuer: String,
}

pub(crate) fn run(command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Keygen { dir } => {
            let tokens = TokenDir::new(&dir);
            let key = tokens.generate()?;
            eprintln!(
                "signing key {} (kid {}); public key in {}\nserve the registry with --auth-jwt-keys {} --auth-issuer \
                 {LOCAL_ISSUER}, and mint tokens with `townctl token mint --key {} …`",
                tokens.signing_key_path().display(),
                key.kid(),
                tokens.public_keys_dir().display(),
                tokens.public_keys_dir().display(),
                tokens.signing_key_path().display()
            );
        }
        TokenCommand::Init { dir } => {
            let standing = mint_standing_tokens(&TokenDir::new(&dir))?;
            eprintln!("{standing}");
        }
        TokenCommand::Mint(args) => println!("{}", mint(args)?),
    }
    Ok(ExitCode::SUCCESS)
}

fn mint(args: MintArgs) -> anyhow::Result<String> {
    let roles = args
        .roles
        .iter()
        .map(|name| {
            Role::from_flag(name).with_context(|| {
                let known: Vec<&str> = Role::ALL.iter().map(|role| role.as_str()).collect();
                format!("--role {name:?} is not a role (roles are {})", known.join(", "))
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let jurisdiction: Vec<String> = args.jurisdiction.iter().map(|code| code.trim().to_owned()).collect();
    if let Some(bad) = jurisdiction.iter().find(|code| !is_jurisdiction(code)) {
        anyhow::bail!("--jurisdiction {bad:?} is not a province, city or county code (2, 4 or 6 digits) or *");
    }
    let subject = args.subject.unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "townctl".to_owned()));
    let key = SigningKey::load(&args.key).context(
        "minting needs the signing key (--key); `townctl token keygen DIR` makes one, `townctl up` keeps one in \
         data/auth",
    )?;
    key.mint(&Grant { subject, roles, jurisdiction, ttl: args.ttl, issuer: args.issuer, audience: args.audience })
}

fn is_jurisdiction(code: &str) -> bool {
    code == township_runtime::principal::WHOLE_COUNTRY
        || (matches!(code.len(), 2 | 4 | 6) && code.bytes().all(|b| b.is_ascii_digit()))
}

/// Where the standing tokens are, for the person who asked for them.
pub(crate) struct StandingTokens {
    pub(crate) keys_dir: PathBuf,
    pub(crate) admin: PathBuf,
    pub(crate) auditor: PathBuf,
}

impl std::fmt::Display for StandingTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tokens:     administrator {} (city_admin, *), auditor {} (auditor, *), 30 days; public keys in {} \
             (--auth-jwt-keys)",
            self.admin.display(),
            self.auditor.display(),
            self.keys_dir.display()
        )
    }
}

/// The signing key of `tokens` (made unless there) and, minted anew, an administrator's and an auditor's token.
pub(crate) fn mint_standing_tokens(tokens: &TokenDir) -> anyhow::Result<StandingTokens> {
    let key = tokens.load_or_generate()?;
    let admin = tokens.mint_into(&key, "admin", &Grant::administrator("administrator", STANDING_TOKEN_TTL))?;
    let auditor = tokens.mint_into(&key, "auditor", &Grant::local("auditor", Role::Auditor, STANDING_TOKEN_TTL))?;
    Ok(StandingTokens { keys_dir: tokens.public_keys_dir(), admin, auditor })
}

fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("{text:?}: a lifetime is a number with s, m, h or d"))?;
    let seconds = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 24 * 3600,
        other => return Err(format!("{text:?}: unit {other:?} is not s, m, h or d")),
    };
    let seconds = number.checked_mul(seconds).filter(|&s| s > 0).ok_or_else(|| format!("{text:?}: not a lifetime"))?;
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_read_as_people_write_them() {
        assert_eq!(parse_ttl("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert_eq!(parse_ttl("30d"), Ok(Duration::from_secs(30 * 24 * 3600)));
        assert_eq!(parse_ttl("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_ttl("45"), Ok(Duration::from_secs(45)));
        assert!(parse_ttl("0h").is_err());
        assert!(parse_ttl("8 weeks").is_err());
        assert!(parse_ttl("h").is_err());
    }
}
