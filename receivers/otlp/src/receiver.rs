//! The running receiver: binds the configured listeners, serves gRPC and HTTP until shutdown, then drains.
//!
//! Lifecycle: `build` only stores the configuration. `run` first reads the access files (TLS certificates and
//! keys, the bearer-token file: a problem is [`ComponentError::Startup`] naming the key and the file), then
//! binds every listener (a bind failure is [`ComponentError::Bind`] and nothing is served), publishes the bound addresses (useful with port 0), and
//! serves both protocols in the same task ([`crate::serve`]: connection cap and timeouts). When `cx.shutdown`
//! fires both servers stop accepting connections,
//! tell open connections to finish (HTTP/1 closes after the current request, HTTP/2 sends GOAWAY), let every
//! in-flight request get its verdict and its answer, and only then return; returning drops the last handle on
//! the pipelines' fan-outs, which lets them drain.
//!
//! A request in flight at shutdown waits for its verdict like any other; data held by a processor (a batch, a
//! tail-sampling trace) is released when shutdown begins (the service flushes every pipeline then), so it does
//! not wait for that processor's timer or the grace deadline.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use otlake_core::{ComponentError, Receiver, ReceiverContext};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::Authenticator;
use crate::config::OtlpReceiverConfig;
use crate::ingest::Ingest;
use crate::serve::serve;
use crate::tls::server_config;
use otlake_core::config::endpoint::bind_address;
use otlake_core::config::tls::TlsServerConfig;

/// Where a running receiver listens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BoundAddresses {
    pub grpc: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
}

/// Learns a receiver's bound addresses once it has bound them.
#[derive(Clone)]
pub struct BoundAddressesWatch {
    rx: watch::Receiver<Option<BoundAddresses>>,
}

impl BoundAddressesWatch {
    /// The addresses, once bound; `None` if the receiver stopped (or failed to bind) first.
    pub async fn wait(mut self) -> Option<BoundAddresses> {
        self.rx
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|v| *v)
    }
}

/// The `otlp` receiver.
pub struct OtlpReceiver {
    config: OtlpReceiverConfig,
    bound: watch::Sender<Option<BoundAddresses>>,
}

impl OtlpReceiver {
    /// A receiver for a configuration that has passed `validate`. No I/O.
    pub fn new(config: OtlpReceiverConfig) -> Self {
        OtlpReceiver {
            config,
            bound: watch::Sender::new(None),
        }
    }

    /// Where the receiver listens once `run` has bound its sockets (tests and port `0` configurations).
    pub fn bound_addresses(&self) -> BoundAddressesWatch {
        BoundAddressesWatch {
            rx: self.bound.subscribe(),
        }
    }
}

async fn bind(endpoint: &str) -> Result<(TcpListener, SocketAddr), ComponentError> {
    let address = bind_address(endpoint);
    let bind_error = |source| ComponentError::Bind {
        address: endpoint.to_owned(),
        source,
    };
    let listener = TcpListener::bind(&address).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

/// The rustls configuration of a listener's `tls` section, read now (start-up).
fn tls_config(
    id: &otlake_core::ComponentId,
    protocol: &str,
    tls: Option<&TlsServerConfig>,
) -> Result<Option<Arc<rustls::ServerConfig>>, ComponentError> {
    tls.map(server_config).transpose().map_err(|err| {
        ComponentError::startup(format!("receiver {id}: protocols.{protocol}.tls"), err)
    })
}

#[async_trait]
impl Receiver for OtlpReceiver {
    fn startup(&self) -> Option<otlake_core::Startup> {
        let watch = self.bound_addresses();
        Some(Box::pin(async move {
            let bound = watch.wait().await?;
            let named = [("grpc", bound.grpc), ("http", bound.http)];
            Some(
                named
                    .into_iter()
                    .filter_map(|(name, address)| Some((name.to_owned(), address?)))
                    .collect(),
            )
        }))
    }

    async fn run(self: Box<Self>, cx: ReceiverContext) -> otlake_core::Result<()> {
        let OtlpReceiver { config, bound } = *self;
        let id = cx.id.clone();
        let limit = usize::try_from(config.max_request_bytes).unwrap_or(usize::MAX);

        // Read every access file before binding: a bad certificate or token file fails the start as a whole.
        let grpc_tls = tls_config(
            &id,
            "grpc",
            config.protocols.grpc.as_ref().and_then(|g| g.tls.as_ref()),
        )?;
        let http_tls = tls_config(
            &id,
            "http",
            config.protocols.http.as_ref().and_then(|h| h.tls.as_ref()),
        )?;
        let authenticator = match &config.auth {
            Some(auth) => {
                let token = auth
                    .token()
                    .map_err(|err| ComponentError::startup(format!("receiver {id}"), err))?;
                Some(Authenticator::new(&id, token))
            }
            None => None,
        };

        // Bind everything before serving anything: a port in use fails the start as a whole.
        let grpc = match &config.protocols.grpc {
            Some(grpc) => Some((grpc, bind(&grpc.endpoint).await?)),
            None => None,
        };
        let http = match &config.protocols.http {
            Some(http) => Some((http, bind(&http.endpoint).await?)),
            None => None,
        };
        let addresses = BoundAddresses {
            grpc: grpc.as_ref().map(|(_, (_, addr))| *addr),
            http: http.as_ref().map(|(_, (_, addr))| *addr),
        };
        tracing::info!(receiver = %id, grpc = ?addresses.grpc, http = ?addresses.http,
            grpc_tls = grpc_tls.is_some(), http_tls = http_tls.is_some(),
            bearer_auth = authenticator.is_some(), "OTLP receiver listening.");
        bound.send_replace(Some(addresses));

        let ingest = Arc::new(Ingest::new(id.clone(), cx.outputs, config.queue_wait));
        let grpc_server = grpc.map(|(grpc, (listener, _))| {
            let limit = usize::try_from(grpc.max_message_bytes(config.max_request_bytes))
                .unwrap_or(usize::MAX);
            let mut app = crate::grpc::router(Arc::clone(&ingest), grpc.include_metadata, limit);
            if let Some(authenticator) = &authenticator {
                app = crate::auth::layer_grpc(app, Arc::clone(authenticator));
            }
            serve(
                listener,
                grpc_tls,
                app,
                grpc.connection_limits(),
                cx.shutdown.clone(),
            )
        });
        let http_server = http.map(|(http, (listener, _))| {
            let mut app = crate::http::router(Arc::clone(&ingest), http, limit);
            if let Some(authenticator) = &authenticator {
                app = crate::auth::layer_http(app, Arc::clone(authenticator), http.signal_paths());
            }
            serve(
                listener,
                http_tls,
                app,
                http.connection_limits(),
                cx.shutdown.clone(),
            )
        });
        // From here on only the servers hold the pipelines; they let go when their last connection ends.
        drop(ingest);

        let grpc_done = async {
            if let Some(server) = grpc_server {
                server.await;
            }
        };
        let http_done = async {
            if let Some(server) = http_server {
                server.await;
            }
        };
        tokio::join!(grpc_done, http_done);
        tracing::info!(receiver = %id, "OTLP receiver stopped.");
        Ok(())
    }
}
