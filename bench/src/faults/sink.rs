//! The tenants' apps that notifications go to: one that answers 200 and records what it got
//! (`/ok/<name>`), one that answers 500 (`/fail/<name>`), both an actix-web server; and two
//! that are not HTTP servers at all but faults: a port that accepts and never answers (hang)
//! and one that resets each connection once the request has come (RST).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::{HttpResponse, web};
use tokio::io::AsyncReadExt;

/// A notification as the app got it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `<name>` of the URL it came to.
    pub name: String,
    pub stripe_event_id: String,
    pub at: Instant,
    pub ok: bool,
}

pub struct Sink {
    /// `http://127.0.0.1:<port>`: `/ok/<name>` and `/fail/<name>`.
    pub base: String,
    pub hang_url: String,
    pub reset_url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
    /// Connections the hanging port holds.
    pub hung: Arc<AtomicUsize>,
    /// Connections reset.
    pub resets: Arc<AtomicUsize>,
    server: actix_web::dev::ServerHandle,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Sink {
    pub async fn start() -> anyhow::Result<Self> {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = received.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let base = format!("http://{}", listener.local_addr()?);
        let server = actix_web::HttpServer::new(move || {
            let log = log.clone();
            actix_web::App::new().route(
                "/{kind}/{name}",
                web::post().to(move |path: web::Path<(String, String)>, body: web::Bytes| {
                    let log = log.clone();
                    async move {
                        let (kind, name) = path.into_inner();
                        let ok = kind == "ok";
                        let event = serde_json::from_slice::<serde_json::Value>(&body)
                            .ok()
                            .and_then(|v| v["stripe_event_id"].as_str().map(str::to_owned))
                            .unwrap_or_default();
                        if let Ok(mut log) = log.lock() {
                            log.push(Received {
                                name,
                                stripe_event_id: event,
                                at: Instant::now(),
                                ok,
                            });
                        }
                        if ok {
                            HttpResponse::Ok().finish()
                        } else {
                            HttpResponse::InternalServerError().finish()
                        }
                    }
                }),
            )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        let mut tasks = vec![tokio::spawn(async move {
            if let Err(err) = server.await {
                eprintln!("warning: the notification sink stopped: {err}");
            }
        })];

        // Accepts and holds every connection, reading nothing, answering nothing.
        let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let hang_url = format!("http://{}/hang", hang.local_addr()?);
        let hung = Arc::new(AtomicUsize::new(0));
        let count = hung.clone();
        tasks.push(tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = hang.accept().await {
                count.fetch_add(1, Ordering::Relaxed);
                held.push(socket);
            }
        }));

        // Reads the request's first bytes, then resets the connection (SO_LINGER 0: RST).
        let reset = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let reset_url = format!("http://{}/reset", reset.local_addr()?);
        let resets = Arc::new(AtomicUsize::new(0));
        let count = resets.clone();
        tasks.push(tokio::spawn(async move {
            while let Ok((mut socket, _)) = reset.accept().await {
                let count = count.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = socket.read(&mut buf).await;
                    if socket.set_zero_linger().is_ok() {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    drop(socket);
                });
            }
        }));
        Ok(Self {
            base,
            hang_url,
            reset_url,
            received,
            hung,
            resets,
            server: handle,
            tasks,
        })
    }

    pub fn ok_url(&self, name: &str) -> String {
        format!("{}/ok/{name}", self.base)
    }

    pub fn fail_url(&self, name: &str) -> String {
        format!("{}/fail/{name}", self.base)
    }

    /// What has come so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub async fn stop(self) {
        self.server.stop(false).await;
        for task in self.tasks {
            task.abort();
        }
    }
}
