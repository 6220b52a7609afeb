//! Fetching `/metrics` as Prometheus does: one plain HTTP/1.1 GET, and reading the samples of the answer.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The body of `GET http://addr/metrics`; panics unless the answer is 200 in the OpenMetrics text format.
pub async fn metrics(addr: SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect to the metrics listener");
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send the scrape");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read the scrape");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer has a head and a body");
    assert!(head.starts_with("HTTP/1.1 200"), "the scrape answered {head}");
    assert!(head.to_ascii_lowercase().contains("content-type: application/openmetrics-text"), "{head}");
    body.to_owned()
}

/// The value of the sample whose name is `name` and whose labels include every one of `labels` (`key="value"`).
pub fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
        (series_name == name && labels.iter().all(|label| series_labels.contains(label)))
            .then(|| value.parse().ok())
            .flatten()
    })
}
