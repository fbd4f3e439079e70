//! HTTPS for the real `az` CLI: MSAL refuses a login endpoint that is not `https://` and the ARM
//! SDK will not send a bearer token over `http://`. A self-signed certificate (CA:TRUE, SAN
//! `localhost` and `127.0.0.1`) is made at start; `az` trusts it through `REQUESTS_CA_BUNDLE`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::SCHEME_HEADER;

/// A certificate and its key, PEM.
#[derive(Clone)]
pub struct Certificate {
    pub cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate").finish_non_exhaustive()
    }
}

impl Certificate {
    /// A self-signed CA certificate for `localhost` and `127.0.0.1`.
    pub fn self_signed() -> Result<Self, rcgen::Error> {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "azure-emulator");
        let key = rcgen::KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    fn acceptor(&self) -> io::Result<TlsAcceptor> {
        let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
        let certs: Vec<_> = rustls::pki_types::pem::PemObject::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| invalid(format!("certificate: {e:?}")))?;
        let key = rustls::pki_types::pem::PemObject::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| invalid(format!("key: {e:?}")))?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid(e.to_string()))?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// Accepts TCP connections and completes their TLS handshake (a failed handshake is dropped).
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let handshake = tokio::time::timeout(Duration::from_secs(5), self.acceptor.accept(stream));
            if let Ok(Ok(tls)) = handshake.await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Serves `router` over TLS on `addr` in the background; returns the bound address.
pub(crate) async fn spawn(router: Router, addr: SocketAddr, cert: &Certificate) -> io::Result<SocketAddr> {
    let tcp = TcpListener::bind(addr).await?;
    let bound = tcp.local_addr()?;
    let listener = TlsListener {
        tcp,
        acceptor: cert.acceptor()?,
    };
    let router = router.layer(axum::middleware::map_request(|mut req: Request| async move {
        req.headers_mut()
            .insert(SCHEME_HEADER, HeaderValue::from_static("https"));
        req
    }));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "emulator (TLS) stopped");
        }
    });
    Ok(bound)
}
