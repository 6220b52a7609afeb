//! A fresh registry database per test: a SQLite file in a temporary directory, or a PostgreSQL database created
//! through an admin URL and dropped with the guard.

/// The registry's two storage backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    /// A fresh database on the server of `TEST_POSTGRES_URL`.
    Postgres,
}

const POSTGRES_HELP: &str = "set TEST_POSTGRES_URL (an admin URL of a PostgreSQL server whose role may CREATE \
     DATABASE, e.g. postgres://township:township@127.0.0.1:5432/postgres), or run scripts/test.sh which starts \
     PostgreSQL";

/// A database that lives as long as this guard: the temporary directory is removed, the PostgreSQL database
/// dropped (its connections closed by force).
pub struct TestDatabase {
    url: String,
    _sqlite_dir: Option<tempfile::TempDir>,
    /// The admin URL and the name of the database to drop.
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self::sqlite(),
            // Fails, never skips, without a server: a test meant for both backends must run on both.
            Backend::Postgres => {
                let admin_url = std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| panic!("{POSTGRES_HELP}"));
                Self::postgres(&admin_url).await.unwrap_or_else(|error| panic!("{error:#}; {POSTGRES_HELP}"))
            }
        }
    }

    pub fn sqlite() -> Self {
        let (dir, url) = temp_sqlite();
        Self { url, _sqlite_dir: Some(dir), postgres: None }
    }

    /// A fresh database on the server of `admin_url`, whose role may CREATE DATABASE.
    pub async fn postgres(admin_url: &str) -> anyhow::Result<Self> {
        use anyhow::Context;
        use sqlx::Connection;
        let name = format!("township_e2e_{}", uuid::Uuid::new_v4().simple());
        let cannot_connect = || format!("cannot connect to {}", township_registry::app::redact(admin_url));
        // Bounded, so that an unreachable server is an error rather than a hang.
        let mut admin =
            tokio::time::timeout(std::time::Duration::from_secs(10), sqlx::PgConnection::connect(admin_url))
                .await
                .with_context(cannot_connect)?
                .with_context(cannot_connect)?;
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.context("CREATE DATABASE")?;
        admin.close().await?;
        let url = with_database(admin_url, &name);
        Ok(Self { url, _sqlite_dir: None, postgres: Some((admin_url.to_owned(), name)) })
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin_url, name)) = &self.postgres else { return };
        let (admin_url, drop_database) = (admin_url.clone(), format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        // Its own thread and runtime: a guard is usually dropped inside a test's runtime, which cannot block on
        // this future itself.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                use sqlx::Connection;
                let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                sqlx::query(&drop_database).execute(&mut admin).await?;
                admin.close().await
            })?;
            anyhow::Ok(())
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop the test database {name}: {error:#}");
        }
    }
}

/// A fresh SQLite database URL in a temporary directory that lives as long as the returned guard.
pub fn temp_sqlite() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("registry.db").display());
    (dir, url)
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let (head, query) = match url.find('?') {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, ""),
    };
    let host_end = head[scheme_end..].find('/').map_or(head.len(), |i| scheme_end + i);
    format!("{}/{database}{query}", &head[..host_end])
}
