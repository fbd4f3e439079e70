//! The real Azure CLI (`azure-cli` from PyPI, pinned in `tests/requirements-az.txt`, installed by
//! `scripts/test` into `.venv-az`) pointed at the Azure emulator over HTTPS, kept on this
//! machine: its own config directory (the version check answered in advance, telemetry and
//! instance discovery off), the emulator's certificate trusted through `REQUESTS_CA_BUNDLE`, and
//! every proxy variable pointed at a local port that records and drops whatever would have left
//! the machine (the tests assert nothing did).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use azure_emulator::{Certificate, Emulator};

/// The `az` of `scripts/test` (`AZ_CLI`, else `.venv-az/bin/az` of the workspace).
pub fn az_path() -> PathBuf {
    if let Ok(p) = std::env::var("AZ_CLI") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = root.join(".venv-az/bin/az");
    assert!(
        path.exists(),
        "the Azure CLI is not installed: run scripts/test (it installs tests/requirements-az.txt into .venv-az), or set AZ_CLI"
    );
    path
}

/// The setup script as the API serves it.
pub fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/azure-connect.sh")
}

/// What a command printed and how it ended.
#[derive(Debug, Clone)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn last_line(&self) -> &str {
        self.stdout.lines().last().unwrap_or_default()
    }
}

/// `az` signed in to the emulator as `app_id` (a service principal of `tenant`).
#[derive(Debug)]
pub struct AzCli {
    dir: PathBuf,
    env: Vec<(String, String)>,
    /// Connections that reached the refusing proxy (anything headed off this machine).
    pub escaped: Arc<AtomicUsize>,
    pub login_arm: String,
    pub graph: String,
}

impl AzCli {
    /// [`Self::sign_in_with`] as the service principal `app_id`.
    pub async fn sign_in(emulator: &Emulator, tenant: &str, app_id: &str, secret: &str) -> Self {
        Self::sign_in_with(
            emulator,
            &[
                "--service-principal",
                "-u",
                app_id,
                "-p",
                secret,
                "--tenant",
                tenant,
            ],
        )
        .await
    }

    /// [`Self::sign_in_with`] as a user, as a person in Cloud Shell is: the device code flow,
    /// completed at once by the tenant's `deviceCodeUser`. (`az login -u -p` cannot be used: MSAL
    /// asks `https://{host}/common/userrealm/…` on port 443 whatever the authority's port.)
    pub async fn sign_in_user(emulator: &Emulator, tenant: &str) -> Self {
        Self::sign_in_with(emulator, &["--use-device-code", "--tenant", tenant]).await
    }

    /// Serves the emulator over HTTPS (login and ARM on one port, Graph on another, as `az rest`
    /// needs), registers it as a cloud and runs `az login` with `login`.
    pub async fn sign_in_with(emulator: &Emulator, login: &[&str]) -> Self {
        let cert = Certificate::self_signed().unwrap();
        let login_arm = emulator
            .spawn_tls("127.0.0.1:0".parse().unwrap(), &cert)
            .await
            .unwrap();
        let graph = emulator
            .spawn_tls("127.0.0.1:0".parse().unwrap(), &cert)
            .await
            .unwrap();
        let dir = crate::temp_dir();
        let config = dir.join("azure");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(dir.join("cert.pem"), &cert.cert_pem).unwrap();
        std::fs::write(
            config.join("versionCheck.json"),
            format!(
                r#"{{"versions":{{"azure-cli":{{"local":"2.91.0"}},"core":{{"local":"2.91.0"}},"telemetry":{{"local":"1.1.0"}}}},"update_time":"{}"}}"#,
                chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f")
            ),
        )
        .unwrap();
        // A proxy that takes and drops every connection: whatever tries to leave shows up here.
        let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
        let escaped = Arc::new(AtomicUsize::new(0));
        let counter = escaped.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = proxy.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        let az_dir = az_path().parent().unwrap().to_path_buf();
        let path = format!(
            "{}:{}",
            az_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let env: Vec<(String, String)> = [
            ("AZURE_CONFIG_DIR", config.display().to_string()),
            ("AZURE_CORE_COLLECT_TELEMETRY", "false".into()),
            ("AZURE_CORE_INSTANCE_DISCOVERY", "false".into()),
            ("AZURE_CORE_NO_COLOR", "true".into()),
            ("REQUESTS_CA_BUNDLE", dir.join("cert.pem").display().to_string()),
            ("HTTPS_PROXY", proxy_url.clone()),
            ("HTTP_PROXY", proxy_url.clone()),
            ("https_proxy", proxy_url.clone()),
            ("http_proxy", proxy_url),
            ("NO_PROXY", "localhost,127.0.0.1".into()),
            ("no_proxy", "localhost,127.0.0.1".into()),
            ("PATH", path),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let cli = Self {
            dir,
            env,
            escaped,
            login_arm: format!("https://localhost:{}", login_arm.port()),
            graph: format!("https://localhost:{}", graph.port()),
        };
        let la = format!("{}/", cli.login_arm);
        let g = format!("{}/", cli.graph);
        let register = cli
            .az(&[
                "cloud",
                "register",
                "--name",
                "Local",
                "--skip-endpoint-discovery",
                "--endpoint-active-directory",
                &cli.login_arm,
                "--endpoint-active-directory-resource-id",
                &la,
                "--endpoint-resource-manager",
                &la,
                "--endpoint-microsoft-graph-resource-id",
                &g,
            ])
            .await;
        assert_eq!(register.code, 0, "{register:?}");
        let set = cli.az(&["cloud", "set", "--name", "Local"]).await;
        assert_eq!(set.code, 0, "{set:?}");
        let args: Vec<&str> = std::iter::once("login")
            .chain(login.iter().copied())
            .chain(["-o", "none"])
            .collect();
        let login = cli.az(&args).await;
        assert_eq!(login.code, 0, "{login:?}");
        cli
    }

    /// Runs `program args` with az's environment (and `extra`), stdin closed.
    pub async fn run(&self, program: &str, args: &[&str], extra: &[(&str, &str)]) -> Ran {
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra.iter().copied())
            .env("HOME", &self.dir)
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        let out = cmd.output().await.unwrap();
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub async fn az(&self, args: &[&str]) -> Ran {
        self.run("az", args, &[]).await
    }

    /// The command pasted into a terminal (util-linux `script` gives it a pseudo-terminal) where
    /// the person then types `typed`. What the terminal showed comes back in `stdout`.
    pub async fn paste_in_terminal(&self, command: &str, extra: &str, typed: &str) -> Ran {
        use tokio::io::AsyncWriteExt;
        let mut cmd = tokio::process::Command::new("script");
        cmd.args(["-qefc", &format!("{command} {extra}"), "/dev/null"])
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("HOME", &self.dir)
            .env("SHELL", "/bin/bash")
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(typed.as_bytes()).await.unwrap();
        // Kept open until the run ends: an end of input would reach the terminal as one.
        let out = child.wait_with_output().await.unwrap();
        drop(stdin);
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).replace('\r', ""),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The setup command as the wizard hands it out (`curl … | bash -s -- …`), with `extra` options.
    pub async fn paste(&self, command: &str, extra: &str) -> Ran {
        self.run("bash", &["-c", &format!("{command} {extra}")], &[])
            .await
    }
}
