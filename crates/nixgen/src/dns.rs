//! Host name lookups for the registry clients: one lookup per host for the
//! whole run, asynchronous, so nothing is left to wait for at the end.
//!
//! reqwest's default resolver runs `getaddrinfo` on a blocking thread for
//! every new connection. At `--jobs 64` that is 64 lookups of the same name
//! at once; a resolver that drops some of them under that burst (measured:
//! 5 to 10 s stalls at 32 and 64) leaves threads in glibc's retry timeout,
//! and the runtime waits for them after the work is done. Here the first
//! connection to a host looks it up, every other one waits for that answer,
//! and an abandoned lookup is a dropped future, not a thread.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::sync::OnceCell;

/// Longest wait for one DNS answer before asking again. glibc's default is
/// 5 s; an answer on any network arrives well within this, so a lost one
/// costs this much, not a stall.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

type Addresses = Arc<OnceCell<Vec<std::net::IpAddr>>>;

pub struct SharedResolver {
    /// The system's configuration could not be read: said at the first
    /// lookup (a run against an IP address never needs one).
    resolver: Result<TokioResolver, String>,
    hosts: Mutex<HashMap<String, Addresses>>,
}

impl std::fmt::Debug for SharedResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedResolver").finish_non_exhaustive()
    }
}

impl SharedResolver {
    /// The system's resolver (`/etc/resolv.conf`, `/etc/hosts`), or only
    /// `server` over UDP (for tests and benchmarks: a stand-in on loopback).
    pub fn new(server: Option<SocketAddr>) -> Arc<Self> {
        let resolver = match server {
            Some(addr) => {
                let mut config = ResolverConfig::new();
                config.add_name_server(NameServerConfig::new(addr, Protocol::Udp));
                let mut opts = ResolverOpts::default();
                opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
                Ok(build(config, opts))
            }
            None => hickory_resolver::system_conf::read_system_conf()
                .map(|(config, opts)| build(config, opts))
                .map_err(|e| format!("cannot read the system's DNS configuration: {e}")),
        };
        Arc::new(Self {
            resolver,
            hosts: Mutex::new(HashMap::new()),
        })
    }

    /// The cell every connection to `host` shares.
    fn cell(&self, host: &str) -> Addresses {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts.entry(host.to_owned()).or_default().clone()
    }
}

fn build(config: ResolverConfig, mut opts: ResolverOpts) -> TokioResolver {
    opts.timeout = opts.timeout.min(ANSWER_TIMEOUT);
    opts.attempts = opts.attempts.max(2);
    let mut builder =
        TokioResolver::builder_with_config(config, TokioConnectionProvider::default());
    *builder.options_mut() = opts;
    builder.build()
}

impl Resolve for SharedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let cell = self.cell(name.as_str());
        let resolver = self.resolver.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolver =
                resolver.map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.into() })?;
            // A failed lookup is not kept: the next connection asks again.
            let ips = cell
                .get_or_try_init(|| async {
                    let found = resolver.lookup_ip(host.as_str()).await?;
                    Ok::<_, hickory_resolver::ResolveError>(found.iter().collect())
                })
                .await?;
            let addrs: Addrs = Box::new(
                ips.clone()
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, 0))
                    .collect::<Vec<_>>()
                    .into_iter(),
            );
            Ok(addrs)
        })
    }
}
