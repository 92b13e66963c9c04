//! axt-tokio: axbench's network scenarios on Tokio, one task per connection,
//! in either of Tokio's schedulers. Wire protocols: docs/protocols.md.
//!
//!   axt-tokio --port P --scenario tcp_echo|http_plaintext|rpc_fanout
//!             --flavor multi_thread|current_thread
//!             [--host 127.0.0.1] [--size N] [--backend HOST:PORT --fanout K]
//!
//! tcp_echo writes back every byte it reads. http_plaintext parses HTTP/1.1
//! keep-alive with pipelining by hand on the raw stream, the same work as
//! the ax servers do. rpc_fanout reads `size` bytes, makes `fanout` calls to
//! the backend, each a task of its own (`tokio::spawn`) on its own
//! connection, awaits them all, then echoes the request.
//!
//! multi_thread takes its worker count from TOKIO_WORKER_THREADS (Tokio
//! reads it; default: one per CPU). An empty option value means "not
//! given", so that one command line with axbench's placeholders serves
//! every scenario.

use std::cell::RefCell;
use std::process::exit;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    TcpEcho,
    HttpPlaintext,
    RpcFanout,
}

struct Opts {
    host: String,
    port: u16,
    scenario: Scenario,
    multi_thread: bool,
    size: usize,
    fanout: usize,
    backend: String,
}

fn usage(msg: &str) -> ! {
    eprintln!("axt-tokio: {msg}");
    eprintln!(
        "usage: axt-tokio --port P --scenario tcp_echo|http_plaintext|rpc_fanout \
         --flavor multi_thread|current_thread [--host H] [--size N] \
         [--backend HOST:PORT --fanout K]"
    );
    exit(2)
}

/// An integer option in [lo, hi]; empty gives `def`.
fn int_opt(name: &str, s: &str, def: usize, lo: usize, hi: usize) -> usize {
    if s.is_empty() {
        return def;
    }
    match s.parse::<usize>() {
        Ok(v) if (lo..=hi).contains(&v) => v,
        _ => usage(&format!("--{name} '{s}': expected an integer in [{lo}, {hi}]")),
    }
}

fn parse_args() -> Opts {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut host, mut port, mut scenario, mut flavor) = ("127.0.0.1", "", "", "");
    let (mut size, mut fanout, mut backend) = ("", "", "");
    let mut i = 0;
    while i < args.len() {
        let value = match args.get(i + 1) {
            Some(v) => v,
            None => usage(&format!("{} needs a value", args[i])),
        };
        let slot = match args[i].as_str() {
            "--host" => &mut host,
            "--port" => &mut port,
            "--scenario" => &mut scenario,
            "--flavor" => &mut flavor,
            "--size" => &mut size,
            "--fanout" => &mut fanout,
            "--backend" => &mut backend,
            other => usage(&format!("unknown option '{other}'")),
        };
        *slot = value.as_str();
        i += 2;
    }
    if port.is_empty() {
        usage("--port is required");
    }
    let scenario = match scenario {
        "tcp_echo" => Scenario::TcpEcho,
        "http_plaintext" => Scenario::HttpPlaintext,
        "rpc_fanout" => Scenario::RpcFanout,
        s => usage(&format!(
            "scenario '{s}' is not served (tcp_echo, http_plaintext, rpc_fanout)"
        )),
    };
    let multi_thread = match flavor {
        "multi_thread" => true,
        "current_thread" => false,
        f => usage(&format!("--flavor '{f}': multi_thread or current_thread")),
    };
    if scenario == Scenario::RpcFanout && backend.is_empty() {
        usage("rpc_fanout needs --backend HOST:PORT");
    }
    Opts {
        host: host.to_string(),
        port: int_opt("port", port, 0, 0, 65535) as u16,
        scenario,
        multi_thread,
        size: int_opt("size", size, 64, 1, 1 << 20),
        fanout: int_opt("fanout", fanout, 4, 1, 1024),
        backend: backend.to_string(),
    }
}

// --- tcp_echo -----------------------------------------------------------------

async fn echo_conn(mut s: TcpStream, bufsize: usize) {
    let mut buf = vec![0u8; bufsize];
    loop {
        let n = match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if s.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

// --- http_plaintext ---------------------------------------------------------------

const HTTP_MAX: usize = 16384;
const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// RFC 7231 date of a Unix time, e.g. "Thu, 03 Dec 2026 13:21:13 GMT".
fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, rem) = (secs / 86400, secs % 86400);
    // civil date from days since 1970-01-01 (proleptic Gregorian)
    let z = days as i64 + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

thread_local! {
    /// This thread's copy of the whole 200 response, rebuilt when the second
    /// of its Date header has passed.
    static RESPONSE: RefCell<(u64, Vec<u8>)> = RefCell::new((u64::MAX, Vec::new()));
}

fn append_response(out: &mut Vec<u8>, n: usize) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    RESPONSE.with(|r| {
        let mut r = r.borrow_mut();
        if r.0 != now {
            let text = format!(
                "HTTP/1.1 200 OK\r\nServer: axt-tokio\r\nDate: {}\r\n\
                 Content-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!",
                http_date(now)
            );
            *r = (now, text.into_bytes());
        }
        for _ in 0..n {
            out.extend_from_slice(&r.1);
        }
    });
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Length of the request at the start of `p`: Some(0) when incomplete, None
/// when malformed.
fn request_len(p: &[u8]) -> Option<usize> {
    let end = match find(p, b"\r\n\r\n") {
        Some(end) => end,
        None => return if p.len() >= HTTP_MAX { None } else { Some(0) },
    };
    if !(p.starts_with(b"GET ") || p.starts_with(b"POST ") || p.starts_with(b"HEAD ")) {
        return None;
    }
    let mut body = 0;
    for line in p[..end].split(|&b| b == b'\n').skip(1) {
        if line.len() > 15 && line[..15].eq_ignore_ascii_case(b"Content-Length:") {
            body = std::str::from_utf8(&line[15..])
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())?;
        }
    }
    Some(if end + 4 + body <= p.len() { end + 4 + body } else { 0 })
}

async fn http_conn(mut s: TcpStream) {
    let mut inbuf = vec![0u8; HTTP_MAX];
    let mut out = Vec::with_capacity(2 * HTTP_MAX);
    let mut have = 0;
    loop {
        let n = match s.read(&mut inbuf[have..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        have += n;
        // every request of this read answered in one write
        let (mut used, mut count) = (0, 0);
        let mut bad = false;
        loop {
            match request_len(&inbuf[used..have]) {
                Some(0) => break,
                Some(len) => {
                    used += len;
                    count += 1;
                }
                None => {
                    bad = true;
                    break;
                }
            }
        }
        out.clear();
        append_response(&mut out, count);
        if bad {
            out.extend_from_slice(BAD_REQUEST);
        }
        if (!out.is_empty() && s.write_all(&out).await.is_err()) || bad {
            return;
        }
        inbuf.copy_within(used..have, 0);
        have -= used;
    }
}

// --- rpc_fanout -----------------------------------------------------------------

/// One backend call {id, value} -> {id, 2 * value + 1}, 16 bytes each way,
/// little endian, checked.
async fn call(b: &mut TcpStream, id: u64, value: u64) -> Result<(), String> {
    let mut m = [0u8; 16];
    m[..8].copy_from_slice(&id.to_le_bytes());
    m[8..].copy_from_slice(&value.to_le_bytes());
    b.write_all(&m).await.map_err(|e| e.to_string())?;
    b.read_exact(&mut m).await.map_err(|e| e.to_string())?;
    let got_id = u64::from_le_bytes(m[..8].try_into().unwrap());
    let got = u64::from_le_bytes(m[8..].try_into().unwrap());
    if got_id != id || got != value.wrapping_mul(2).wrapping_add(1) {
        return Err(format!("backend reply {{{got_id}, {got}}} to call {{{id}, {value}}}"));
    }
    Ok(())
}

async fn fanout_conn(mut s: TcpStream, backend: Arc<str>, fanout: usize, size: usize) {
    let mut back = Vec::with_capacity(fanout);
    for _ in 0..fanout {
        match TcpStream::connect(&*backend).await {
            Ok(b) => {
                let _ = b.set_nodelay(true);
                back.push(b);
            }
            Err(e) => {
                eprintln!("axt-tokio: backend {backend}: {e}");
                return;
            }
        }
    }
    let mut req = vec![0u8; size];
    let mut id = 0u64;
    let mut calls = Vec::with_capacity(fanout);
    while s.read_exact(&mut req).await.is_ok() {
        // each call is a task that owns its connection and hands it back
        for (i, mut b) in back.drain(..).enumerate() {
            id += 1;
            let value = i as u64 * 7 + id;
            calls.push(tokio::spawn(async move {
                let r = call(&mut b, id, value).await;
                (b, r)
            }));
        }
        let mut ok = true;
        for task in calls.drain(..) {
            match task.await {
                Ok((b, r)) => {
                    back.push(b);
                    if let Err(e) = r {
                        eprintln!("axt-tokio: {e}");
                        ok = false;
                    }
                }
                Err(e) => {
                    eprintln!("axt-tokio: call task: {e}");
                    ok = false;
                }
            }
        }
        if !ok || s.write_all(&req).await.is_err() {
            return;
        }
    }
}

// --- main -------------------------------------------------------------------------

async fn serve(o: Opts) {
    let listener = match TcpListener::bind((o.host.as_str(), o.port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("axt-tokio: listen on {}:{}: {e}", o.host, o.port);
            exit(1)
        }
    };
    let backend: Arc<str> = o.backend.into();
    let (scenario, size, fanout) = (o.scenario, o.size, o.fanout);
    loop {
        let s = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // e.g. EMFILE: report, do not spin
                eprintln!("axt-tokio: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = s.set_nodelay(true);
        match scenario {
            Scenario::TcpEcho => tokio::spawn(echo_conn(s, size.clamp(4096, 65536))),
            Scenario::HttpPlaintext => tokio::spawn(http_conn(s)),
            Scenario::RpcFanout => tokio::spawn(fanout_conn(s, backend.clone(), fanout, size)),
        };
    }
}

fn main() {
    let o = parse_args();
    let mut builder = if o.multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("axt-tokio: runtime: {e}");
            exit(1)
        }
    };
    rt.block_on(serve(o));
}
