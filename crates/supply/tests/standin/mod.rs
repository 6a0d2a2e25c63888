//! A loopback stand-in for the npm registry, PyPI (project JSON, simple index, files) and the OSV API, so
//! audit and install tests are hermetic. Shared by the crate's tests and the binary's end-to-end tests
//! (`#[path]`-included), so it uses only std, serde_json and palisade-supply's digest helpers.
//!
//! It serves what it is given and nothing else; every request is recorded so a test can assert what was
//! (and was not) fetched. The OSV endpoint answers like a naive API: every record naming the package,
//! whatever the version, so the client's own range matching is what decides.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

/// One npm version.
#[derive(Clone)]
pub struct NpmVersion {
    pub version: String,
    pub tarball: Vec<u8>,
    /// Published integrity (default: the real sha512 of `tarball`).
    pub integrity: Option<String>,
    /// Merged into the version document (scripts, repository, dist.attestations, dependencies…).
    pub doc: Value,
    /// `time[version]`.
    pub time: String,
}

/// One PyPI file.
#[derive(Clone)]
pub struct PypiFile {
    pub version: String,
    pub filename: String,
    pub bytes: Vec<u8>,
    /// Published sha256 (default: the real one).
    pub sha256: Option<String>,
    pub upload_time: String,
}

#[derive(Default)]
struct State {
    npm: BTreeMap<String, (Value, Vec<NpmVersion>)>,
    pypi: BTreeMap<String, (Value, Vec<PypiFile>)>,
    osv: Vec<Value>,
    hits: Vec<String>,
    /// When set, every request answers 503 (the registry "went away").
    down: bool,
}

/// The stand-in server.
pub struct Standin {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

fn norm(n: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    for c in n.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

fn sha256_hex(b: &[u8]) -> String {
    palisade_supply::sri::sha256_hex(b)
}

impl Standin {
    pub fn start() -> Standin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, addr, &st);
                });
            }
        });
        Standin { addr, state, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> Vec<String> {
        self.state.lock().unwrap().hits.clone()
    }

    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// Adds an npm package version; `meta` is merged into the packument (maintainers, time.created…).
    pub fn npm(&self, name: &str, meta: Value, v: NpmVersion) {
        let mut s = self.state.lock().unwrap();
        let e = s
            .npm
            .entry(name.to_owned())
            .or_insert_with(|| (json!({}), Vec::new()));
        merge(&mut e.0, &meta);
        e.1.retain(|x| x.version != v.version);
        e.1.push(v);
    }

    /// Adds a PyPI file; `info` is merged into the project JSON's `info`.
    pub fn pypi(&self, name: &str, info: Value, f: PypiFile) {
        let mut s = self.state.lock().unwrap();
        let e = s
            .pypi
            .entry(norm(name))
            .or_insert_with(|| (json!({"name": name}), Vec::new()));
        merge(&mut e.0, &info);
        e.1.push(f);
    }

    /// Loads every OSV record of a dump directory (`DIR/<ecosystem>/*.json`).
    pub fn osv_from_dir(&self, dir: &Path) {
        let mut s = self.state.lock().unwrap();
        for eco in ["npm", "PyPI"] {
            let Ok(rd) = std::fs::read_dir(dir.join(eco)) else {
                continue;
            };
            for e in rd.flatten() {
                let v: Value =
                    serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap();
                s.osv.push(v);
            }
        }
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn merge(a: &mut Value, b: &Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b.clone(),
    }
}

fn serve(conn: TcpStream, addr: SocketAddr, st: &Mutex<State>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut r = BufReader::new(conn.try_clone()?);
    let mut w = conn;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let target = parts.next().unwrap_or("").to_owned();
        let mut len = 0usize;
        let mut close = false;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let k = k.to_ascii_lowercase();
                if k == "content-length" {
                    len = v.trim().parse().unwrap_or(0);
                }
                if k == "connection" && v.trim().eq_ignore_ascii_case("close") {
                    close = true;
                }
            }
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body)?;
        let path = target.split('?').next().unwrap_or("").to_owned();
        let (status, ctype, out) = route(st, addr, &method, &path, &body);
        let head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{}\r\n",
            if status == 200 { "OK" } else { "Error" },
            out.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        w.write_all(head.as_bytes())?;
        w.write_all(&out)?;
        w.flush()?;
        if close {
            return Ok(());
        }
    }
}

fn decode(p: &str) -> String {
    p.replace("%2f", "/")
        .replace("%2F", "/")
        .replace("%40", "@")
}

fn route(
    st: &Mutex<State>,
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, &'static str, Vec<u8>) {
    let mut s = st.lock().unwrap();
    s.hits.push(format!("{method} {path}"));
    if s.down {
        return (503, "text/plain", b"down".to_vec());
    }
    let base = format!("http://{addr}");
    let json_ok = |v: Value| (200u16, "application/json", serde_json::to_vec(&v).unwrap());
    let not_found = (
        404u16,
        "application/json",
        b"{\"error\":\"not found\"}".to_vec(),
    );
    if method == "POST" && path == "/v1/querybatch" {
        let q: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let results: Vec<Value> = q["queries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|q| {
                let (eco, name) = (
                    q["package"]["ecosystem"].as_str().unwrap_or(""),
                    q["package"]["name"].as_str().unwrap_or(""),
                );
                let vulns: Vec<Value> = s
                    .osv
                    .iter()
                    .filter(|r| {
                        r["affected"].as_array().into_iter().flatten().any(|a| {
                            a["package"]["ecosystem"] == eco
                                && norm(a["package"]["name"].as_str().unwrap_or("")) == norm(name)
                        })
                    })
                    .map(|r| json!({"id": r["id"], "modified": r["modified"]}))
                    .collect();
                if vulns.is_empty() {
                    json!({})
                } else {
                    json!({"vulns": vulns})
                }
            })
            .collect();
        return json_ok(json!({"results": results}));
    }
    if method != "GET" {
        return (405, "text/plain", b"method not allowed".to_vec());
    }
    if let Some(id) = path.strip_prefix("/v1/vulns/") {
        return match s.osv.iter().find(|r| r["id"] == id) {
            Some(r) => json_ok(r.clone()),
            None => not_found,
        };
    }
    if let Some(file) = path.strip_prefix("/-/tarballs/") {
        for (_, (_, vs)) in s.npm.iter() {
            for v in vs {
                if tarball_name(v) == decode(file) || decode(file).ends_with(&tarball_name(v)) {
                    return (200, "application/octet-stream", v.tarball.clone());
                }
            }
        }
        return not_found;
    }
    if let Some(file) = path.strip_prefix("/files/") {
        for (_, (_, fs)) in s.pypi.iter() {
            if let Some(f) = fs.iter().find(|f| f.filename == file) {
                return (200, "application/octet-stream", f.bytes.clone());
            }
        }
        return not_found;
    }
    if let Some(rest) = path.strip_prefix("/pypi/") {
        let name = rest.trim_end_matches("/json").trim_end_matches('/');
        let Some((info, files)) = s.pypi.get(&norm(name)) else {
            return not_found;
        };
        let mut releases: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for f in files {
            releases.entry(f.version.clone()).or_default().push(json!({
                "filename": f.filename,
                "url": format!("../../files/{}", f.filename),
                "digests": {"sha256": f.sha256.clone().unwrap_or_else(|| sha256_hex(&f.bytes))},
                "packagetype": if f.filename.ends_with(".whl") { "bdist_wheel" } else { "sdist" },
                "upload_time_iso_8601": f.upload_time,
                "yanked": false,
                "size": f.bytes.len(),
            }));
        }
        let latest = files.last().map(|f| f.version.clone()).unwrap_or_default();
        let mut info = info.clone();
        merge(&mut info, &json!({"version": latest}));
        return json_ok(
            json!({"info": info, "releases": releases, "urls": [], "vulnerabilities": []}),
        );
    }
    if let Some(rest) = path.strip_prefix("/simple/") {
        let name = rest.trim_end_matches('/');
        let Some((_, files)) = s.pypi.get(&norm(name)) else {
            return not_found;
        };
        let mut html = String::from("<!DOCTYPE html><html><body>\n");
        for f in files {
            html.push_str(&format!(
                "<a href=\"../../files/{0}#sha256={1}\">{0}</a><br/>\n",
                f.filename,
                f.sha256.clone().unwrap_or_else(|| sha256_hex(&f.bytes))
            ));
        }
        html.push_str("</body></html>\n");
        return (200, "text/html", html.into_bytes());
    }
    // npm packument: /<name> or /@scope%2fname.
    let name = decode(path.trim_start_matches('/'));
    let Some((meta, versions)) = s.npm.get(&name) else {
        return not_found;
    };
    let mut vmap = serde_json::Map::new();
    let mut time = serde_json::Map::new();
    for v in versions {
        let mut doc = json!({
            "name": name, "version": v.version,
            "dist": {
                "integrity": v.integrity.clone().unwrap_or_else(|| palisade_supply::sri::Integrity::of(palisade_supply::sri::Algorithm::Sha512, &v.tarball)),
                "tarball": format!("{base}/-/tarballs/{}", tarball_name(v)),
            },
        });
        merge(&mut doc, &v.doc);
        vmap.insert(v.version.clone(), doc);
        time.insert(v.version.clone(), json!(v.time));
    }
    let latest = versions
        .last()
        .map(|v| v.version.clone())
        .unwrap_or_default();
    let mut pack =
        json!({"name": name, "dist-tags": {"latest": latest}, "versions": vmap, "time": time});
    merge(&mut pack, meta);
    json_ok(pack)
}

fn tarball_name(v: &NpmVersion) -> String {
    format!("pkg-{}-{}.tgz", &sha256_hex(&v.tarball)[..12], v.version)
}
