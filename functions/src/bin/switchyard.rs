//! `switchyard`: runs Switchyard locally (`serve`) and administers it (`token create`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use switchyard::backend::aws::{AwsResources, provision};
use switchyard::config::{BackendConfig, Config, DeliveryConfig, WatchConfig, env, queue_specs};
use switchyard::engine::auth::Principal;
use switchyard::follow::{FollowError, Follower, Target};
use switchyard::local::{RunnerOptions, start};
use switchyard::{Engine, telemetry};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "switchyard", version, about = "Switchyard, the serverless event bus, on your machine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the whole API with the delivery workers in this process.
    Serve(ServeArgs),
    /// Manage access tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Follow a resource stream or a channel, printing events as JSON lines; the cursor is kept in
    /// a state file, so a restarted watch resumes where it stopped.
    Watch(WatchArgs),
}

#[derive(Args)]
struct WatchArgs {
    /// Base URL of a running Switchyard.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Token to present.
    #[arg(long, env = "SWITCHYARD_TOKEN", hide_env_values = true)]
    token: String,
    /// Follow this resource kind's change events (host, biz, set, …).
    #[arg(long, required_unless_present = "channel", conflicts_with = "channel")]
    resource: Option<String>,
    /// Supplier account of the resource stream.
    #[arg(long, default_value = "0")]
    tenant: String,
    /// Detail fields to keep (comma-separated; required for host).
    #[arg(long, value_delimiter = ',')]
    fields: Vec<String>,
    /// Event types to keep (comma-separated: create, update, delete).
    #[arg(long, value_delimiter = ',')]
    types: Vec<String>,
    /// Only instances of this model (object_instance, mainline_instance).
    #[arg(long)]
    sub_resource: Option<String>,
    /// Follow this channel's events instead, as PROJECT/CHANNEL_ID.
    #[arg(long)]
    channel: Option<String>,
    /// Where the cursor is kept (default: .switchyard-watch/<target>.cursor).
    #[arg(long)]
    state: Option<PathBuf>,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a token and print it (it is shown only once).
    Create {
        /// The project the token acts in.
        #[arg(long, required_unless_present = "operator", conflicts_with = "operator")]
        project: Option<String>,
        /// Issue an operator token instead (acts in every project).
        #[arg(long)]
        operator: bool,
        #[command(flatten)]
        backend: BackendArgs,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendKind {
    /// The embedded database (no other service needed).
    Embedded,
    /// DynamoDB and SQS: SWITCHYARD_TABLE, SWITCHYARD_DELIVERY_QUEUE_URL and
    /// SWITCHYARD_DEAD_LETTER_QUEUE_URL name them; AWS_ENDPOINT_URL and the other standard AWS
    /// variables say where and as whom.
    Aws,
}

#[derive(Args)]
struct BackendArgs {
    /// Which backend stores the data.
    #[arg(long, value_enum, default_value = "embedded")]
    backend: BackendKind,
    /// Where the embedded backend keeps its data.
    #[arg(long, default_value = ".switchyard")]
    data_dir: PathBuf,
    /// Keep the embedded backend's data in memory only (lost on exit).
    #[arg(long)]
    memory: bool,
    /// With --backend aws: create the table and queues when missing (for an emulator such as moto).
    #[arg(long)]
    provision: bool,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Use this operator token (instead of creating a random one on first start).
    #[arg(long)]
    token: Option<String>,
    /// Let webhooks reach private, link-local and metadata addresses.
    #[arg(long)]
    allow_private_targets: bool,
    /// Refuse loopback webhook targets too (they are allowed by default for local testing).
    #[arg(long)]
    no_loopback_targets: bool,
    /// Timeout of one webhook delivery attempt.
    #[arg(long, default_value_t = DeliveryConfig::default().timeout.as_secs())]
    delivery_timeout_seconds: u64,
    /// Longest a watch (resource watch, channel pull) waits for an event before answering.
    #[arg(long, default_value_t = WatchConfig::default().wait.as_secs())]
    watch_wait_seconds: u64,
    /// Deliveries in flight at once to one target (the others wait their turn on the queue).
    #[arg(
        long,
        default_value_t = DeliveryConfig::default().per_target_in_flight as u64,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    per_target_in_flight: u64,
    /// Declare a queue (by name) that SQS targets and dead-letter queues may send to; repeatable.
    /// The embedded backend keeps its messages (with --backend aws, targets name queue URLs).
    #[arg(long = "target-queue", value_name = "NAME")]
    target_queues: Vec<String>,
}

async fn backend_config(args: &BackendArgs) -> anyhow::Result<BackendConfig> {
    Ok(match args.backend {
        BackendKind::Embedded if args.memory => BackendConfig::Embedded(None),
        BackendKind::Embedded => BackendConfig::Embedded(Some(args.data_dir.clone())),
        BackendKind::Aws if args.provision => {
            let table = env("SWITCHYARD_TABLE").unwrap_or_else(|| "switchyard".to_owned());
            BackendConfig::Aws(provision(&table, &queue_specs(), "switchyard-").await?)
        }
        BackendKind::Aws => Config::from_env()?.backend,
    })
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config { backend: backend_config(&args.backend).await?, ..Config::default() };
    config.delivery.address_policy.allow_loopback = !args.no_loopback_targets;
    config.delivery.address_policy.allow_private = args.allow_private_targets;
    config.delivery.timeout = Duration::from_secs(args.delivery_timeout_seconds);
    config.watch.wait = Duration::from_secs(args.watch_wait_seconds);
    config.delivery.per_target_in_flight = usize::try_from(args.per_target_in_flight).unwrap_or(usize::MAX);
    config.target_queues = args.target_queues;
    if let BackendConfig::Aws(AwsResources { table, .. }) = &config.backend {
        tracing::info!(table, "using DynamoDB and SQS");
    }
    let engine = Engine::open(config).await.context("opening the backend")?;
    match engine.ensure_operator_token(args.token.as_deref()).await? {
        Some(issued) if args.token.is_none() => {
            println!("Operator token (shown once, keep it): {}", issued.token);
        }
        _ => {}
    }
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let running = start(listener, engine, RunnerOptions::default())?;
    println!("Switchyard is listening on http://{}", running.addr);
    let cancel = running.cancel_token();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        cancel.cancel();
    });
    running.wait().await;
    Ok(())
}

async fn create_token(project: Option<String>, operator: bool, backend: BackendArgs) -> anyhow::Result<()> {
    let config = Config { backend: backend_config(&backend).await?, ..Config::default() };
    let engine = Engine::open(config)
        .await
        .context("opening the backend (a running `switchyard serve` holds the embedded data: use its admin API)")?;
    let principal = match (operator, project) {
        (true, _) => Principal::Operator,
        (false, Some(p)) => Principal::Project(p),
        (false, None) => anyhow::bail!("name a --project or --operator"),
    };
    let issued = engine.issue_token(principal, None).await?;
    println!("{}", issued.token);
    Ok(())
}

async fn watch(args: WatchArgs) -> anyhow::Result<()> {
    let (target, name) = match (args.resource, args.channel) {
        (Some(kind), _) => {
            let name = format!("resource-{kind}-{}", args.tenant);
            let target = Target::Resource {
                tenant: args.tenant,
                kind,
                fields: args.fields,
                types: args.types,
                sub_resource: args.sub_resource,
            };
            (target, name)
        }
        (None, Some(channel)) => {
            let (project, channel) = channel.split_once('/').context("--channel takes PROJECT/CHANNEL_ID")?;
            let name = format!("channel-{project}-{channel}");
            (Target::Channel { project: project.to_owned(), channel: channel.to_owned() }, name)
        }
        (None, None) => anyhow::bail!("name a --resource or a --channel"),
    };
    let state = args.state.unwrap_or_else(|| PathBuf::from(".switchyard-watch").join(format!("{name}.cursor")));
    let mut follower = Follower::new(&args.url, &args.token, target, state)?;
    let mut out = std::io::stdout().lock();
    let mut backoff = Duration::from_millis(500);
    loop {
        match follower.poll().await {
            Ok(events) => {
                for event in events {
                    use std::io::Write as _;
                    writeln!(out, "{event}")?;
                }
                std::io::Write::flush(&mut out)?;
                follower.save()?;
                backoff = Duration::from_millis(500);
            }
            Err(FollowError::Transport(e)) => {
                tracing::warn!(error = %e, "watch request failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_local();
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Token { command: TokenCommand::Create { project, operator, backend } } => {
            create_token(project, operator, backend).await
        }
        Command::Watch(args) => watch(args).await,
    }
}
