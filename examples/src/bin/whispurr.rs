//! `whispurr`: the demo, a relay server and an interactive chat node.
//!
//! ```text
//! whispurr demo                                   a relay and five nodes on 127.0.0.1
//! whispurr relay --listen 0.0.0.0:7300            a relay server
//! whispurr node --relay ws://HOST:7300 [--intent chess] [--listen ADDR]
//! ```

use std::{net::SocketAddr, process::ExitCode};

use clap::{Parser, Subcommand};
use futures::{StreamExt, channel::mpsc};
use whispurr_core::{
    NodeId,
    engine::{Event, PathKind},
};
use whispurr_node::{Node, NodeBuilder, RelayBuilder, runtime::Runtime, webrtc::WebRtcConfig};

#[derive(Parser)]
#[command(
    name = "whispurr",
    version,
    about = "Private peer-to-peer messaging over WebSocket and WebRTC"
)]
struct Cli {
    /// The async runtime to run on.
    #[arg(long, value_enum, default_value_t = RuntimeKind::Tokio, global = true)]
    runtime: RuntimeKind,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RuntimeKind {
    Tokio,
    Smol,
}

#[derive(Subcommand)]
enum Command {
    /// A relay and five nodes on 127.0.0.1: meeting, WebRTC, whispers, broadcasts, resonance,
    /// extensions, a death, statistics. Finishes in under a minute.
    Demo,
    /// Runs a relay server until interrupted.
    Relay {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7300")]
        listen: SocketAddr,
    },
    /// An interactive chat node: lines typed are broadcast; /help lists the commands.
    Node {
        /// Relay URL(s), e.g. ws://relay.example:7300.
        #[arg(long, required = true)]
        relay: Vec<String>,
        /// Intent phrase(s) to attune to.
        #[arg(long)]
        intent: Vec<String>,
        /// Listen for direct WebSocket links on this address.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// STUN/TURN server URL(s) for WebRTC, e.g. stun:stun.example:3478.
        #[arg(long)]
        ice: Vec<String>,
        /// No WebRTC: stay on the relay.
        #[arg(long)]
        no_webrtc: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr, filtered by RUST_LOG (e.g. RUST_LOG=whispurr_node=debug).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match cli.runtime {
        RuntimeKind::Tokio => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(run(whispurr_tokio::Tokio, cli.command)),
        RuntimeKind::Smol => smol::block_on(run(whispurr_smol::Smol, cli.command)),
    }
}

async fn run<R: Runtime>(rt: R, command: Command) -> ExitCode {
    match command {
        Command::Demo => match whispurr_examples::demo::run(rt).await {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("demo failed: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Relay { listen } => {
            let relay = match RelayBuilder::new(rt).listen(listen).start().await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("cannot start the relay: {e}");
                    return ExitCode::FAILURE;
                }
            };
            println!("relay {} listening on {}", relay.id(), relay.url());
            println!("close standard input (Ctrl-D) to stop it gracefully");
            // Runtime-neutral: wait for standard input to close, on a thread of its own.
            let (tx, rx) = futures::channel::oneshot::channel::<()>();
            std::thread::spawn(move || {
                for _ in std::io::stdin().lines() {}
                let _ = tx.send(());
            });
            let _ = rx.await;
            let _ = relay.shutdown().await;
            ExitCode::SUCCESS
        }
        Command::Node {
            relay,
            intent,
            listen,
            ice,
            no_webrtc,
        } => chat(rt, relay, intent, listen, ice, no_webrtc).await,
    }
}

async fn chat<R: Runtime>(
    rt: R,
    relays: Vec<String>,
    intents: Vec<String>,
    listen: Option<SocketAddr>,
    ice: Vec<String>,
    no_webrtc: bool,
) -> ExitCode {
    let mut builder = NodeBuilder::new(rt.clone());
    for r in relays {
        builder = builder.relay(r);
    }
    for i in &intents {
        builder = builder.intent(i.clone());
    }
    if let Some(addr) = listen {
        builder = builder.listen(addr);
    }
    let webrtc = (!no_webrtc).then(|| WebRtcConfig {
        ice_servers: ice
            .into_iter()
            .map(|url| whispurr_node::webrtc::IceServer {
                urls: vec![url],
                ..Default::default()
            })
            .collect(),
        ..WebRtcConfig::default()
    });
    let (node, mut events) = match builder.webrtc(webrtc).start().await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("your node ID: {}", node.id());
    if let Some(a) = node.listen_addr() {
        println!("listening for direct links on ws://{a}");
    }
    println!("type a line to broadcast it; /help for commands");
    rt.spawn(async move {
        while let Some(e) = events.next().await {
            print_event(&e);
        }
    });
    // Standard input is read on its own thread: it blocks.
    let (mut tx, mut lines) = mpsc::channel::<String>(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.try_send(line).is_err() && tx.is_closed() {
                break;
            }
        }
        tx.close_channel();
    });
    while let Some(line) = lines.next().await {
        match command(&node, line.trim()).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => println!("! {e}"),
        }
    }
    let _ = node.shutdown().await;
    ExitCode::SUCCESS
}

/// One chat line; `Ok(false)` to quit.
async fn command(node: &Node, line: &str) -> Result<bool, String> {
    let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
    match cmd {
        "" => {}
        "/quit" | "/q" => return Ok(false),
        "/help" => println!(
            "/w ID text   whisper to a node (its full ID or the 64-hex key)\n\
             /attune P    attune to an intent phrase\n\
             /detune P    stop resonating on it\n\
             /r P text    resonate text to the nodes attuned to P\n\
             /peers       peers and their paths\n\
             /stats       statistics\n\
             /quit        leave"
        ),
        "/w" => {
            let (to, text) = rest.split_once(' ').ok_or("usage: /w ID text")?;
            let key = parse_key(to)?;
            node.whisper(key, text.as_bytes().to_vec())
                .await
                .map_err(|e| e.to_string())?;
        }
        "/attune" => node.attune(rest).await.map_err(|e| e.to_string())?,
        "/detune" => node.detune(rest).await.map_err(|e| e.to_string())?,
        "/r" => {
            let (intent, text) = rest.split_once(' ').ok_or("usage: /r INTENT text")?;
            node.resonate(intent, 1.0, text.as_bytes().to_vec())
                .await
                .map_err(|e| e.to_string())?;
        }
        "/peers" => {
            for p in node.peers().await.map_err(|e| e.to_string())? {
                let path = match p.path {
                    PathKind::Direct => "direct",
                    PathKind::Relayed => "relayed",
                };
                let rtt = p.rtt_ms.map_or("-".into(), |r| format!("{r:.1} ms"));
                println!("{} {path} rtt {rtt}", p.id);
            }
        }
        "/stats" => println!("{:#?}", node.stats().await.map_err(|e| e.to_string())?),
        _ if cmd.starts_with('/') => return Err(format!("unknown command {cmd}; /help")),
        _ => {
            node.broadcast(line.as_bytes().to_vec())
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(true)
}

fn parse_key(s: &str) -> Result<whispurr_core::NodeKey, String> {
    if let Ok(id) = s.parse::<NodeId>() {
        return Ok(*id.key());
    }
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .filter(|b| b.len() == 32)
        .ok_or("not a node ID or key")?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes);
    Ok(whispurr_core::NodeKey(key))
}

fn print_event(e: &Event) {
    match e {
        Event::PeerUp { peer, path } => println!("* {peer} up ({path:?})"),
        Event::PeerDown { peer, reason } => println!("* {peer} down ({reason:?})"),
        Event::RelayUp { relay } => println!("* relay {relay} up"),
        Event::RelayDown { reason, .. } => println!("* relay down ({reason:?})"),
        Event::Whisper { from, payload, .. } => {
            println!("[whisper {from}] {}", String::from_utf8_lossy(payload))
        }
        Event::WhisperFailed { reason, .. } => println!("! whisper failed: {reason:?}"),
        Event::Broadcast {
            origin,
            payload,
            hops,
            ..
        } if *hops > 0 => match origin {
            Some(o) => println!("<{}> {}", o.key(), String::from_utf8_lossy(payload)),
            None => println!("<anonymous> {}", String::from_utf8_lossy(payload)),
        },
        Event::Resonance {
            intent, payload, ..
        } => println!("[{intent}] {}", String::from_utf8_lossy(payload)),
        Event::NotSent { peer, cause, .. } => println!("! not sent to {peer}: {cause:?}"),
        _ => {}
    }
}
