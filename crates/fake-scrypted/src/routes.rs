//! The routes: authorization, content types and bodies as Express parses them,
//! setup, deploy (kill, extract, fork) and everything else.

use crate::http::{BodyOutcome, Head, Response};
use crate::{
    JSON_LIMIT, RAW_LIMIT, adm, endpoint_not_found_body, http, life, md5_hex,
    records::RequestRecord, records::Route, rpc, server::take_fault, state::Shared, state::State,
    state::record, users,
};
use serde_json::Value;
use std::fs;
use std::io::{Cursor, Read};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Returns the record, the answer (None: drop the connection) and an optional
/// restart to perform after answering.
pub(crate) async fn handle(
    shared: &Arc<Shared>,
    body: hyper::body::Incoming,
    head: &Head,
) -> (RequestRecord, Option<Response>, Option<Duration>) {
    let query = head.query_pairs();
    let mut record = RequestRecord::of(head, authorized(shared, head));
    let (route, npm_package) = (record.route, record.npm_package.clone());
    let content_type = record.content_type.clone();

    let reset = route.is_some_and(|r| take_fault(&mut shared.lock().faults.reset_next, r));
    // Express reads (or discards) the body before routing errors are answered; the
    // fake does the same so the connection stays usable.
    let body = match http::read_body(body, head, reset).await {
        Ok(BodyOutcome::Complete(b)) => b,
        Ok(BodyOutcome::CutOff(n)) | Err(http::BodyError::Io(n)) => {
            record.body_len = n;
            return (record, None, None);
        }
    };
    record.body_len = body.len() as u64;
    record.body_md5 = Some(md5_hex(&body));

    if head.path.starts_with("/web/component/") && !record.authorized {
        return (record, Some(Response::text(401, "Not Authorized")), None);
    }
    if let Some(r) = route
        && take_fault(&mut shared.lock().faults.fail_next, r)
    {
        return (
            record,
            Some(Response::text(500, "Internal Server Error")),
            None,
        );
    }
    let response = match route {
        Some(Route::Setup) => setup(
            shared,
            npm_package.as_deref(),
            content_type.as_deref(),
            &body,
        ),
        Some(Route::Deploy) => deploy(
            shared,
            npm_package.as_deref(),
            content_type.as_deref(),
            body,
            query.iter().any(|(k, _)| k == "no-rebind"),
        ),
        // Express's JSON parser leaves the body empty for another content type.
        None if head.method == "POST" && head.path == "/login" => users::login(
            shared,
            if is_json(content_type.as_deref()) {
                &body
            } else {
                b""
            },
        ),
        None => other(shared, head),
    };
    let after = if route == Some(Route::Setup) && response.status == 200 {
        shared.lock().faults.restart_after_setup.take()
    } else {
        None
    };
    (record, Some(response), after)
}

/// The admin token as a bearer header or `scryptedToken` query parameter.
pub(crate) fn authorized(shared: &Shared, head: &Head) -> bool {
    let token = &shared.options.token;
    head.header("authorization")
        .is_some_and(|a| a.strip_prefix("Bearer ") == Some(token.as_str()))
        || head
            .query_pairs()
            .iter()
            .any(|(k, v)| k == "scryptedToken" && v == token)
}

/// The media type of a Content-Type header, without parameters, lowercased.
pub(crate) fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

pub(crate) fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|c| {
        let c = media_type(c);
        c == "application/json" || c.ends_with("+json")
    })
}

pub(crate) fn is_raw(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|c| {
        let c = media_type(c);
        c.starts_with("application/")
            && !is_json(Some(&c))
            && c != "application/x-www-form-urlencoded"
    })
}

pub(crate) fn express_syntax_error(body: &[u8], err: &serde_json::Error) -> Response {
    let preview: String = String::from_utf8_lossy(body).chars().take(40).collect();
    Response::html(
        400,
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>SyntaxError: Unexpected token in JSON at position {} ({preview:?})<br> &nbsp; &nbsp;at JSON.parse (&lt;anonymous&gt;)<br> &nbsp; &nbsp;at parse (body-parser/lib/types/json.js:92:19)</pre>\n</body>\n</html>\n",
            err.column()
        ),
    )
}

pub(crate) fn setup(
    shared: &Shared,
    npm: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Response {
    // Non-JSON bodies are not parsed at all and the route sees `{}`.
    let package_json = if is_json(content_type) {
        if body.len() as u64 > JSON_LIMIT {
            return Response::text(413, "request entity too large");
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => v,
            Err(e) => return express_syntax_error(body, &e),
        }
    } else {
        Value::Object(Default::default())
    };
    let Some(npm) = npm else {
        return Response::text(500, "Internal Server Error");
    };
    let mut st = shared.lock();
    let rec = record(&mut st, npm);
    rec.package_json = package_json;
    Response::text(200, "ok")
}

pub(crate) fn deploy(
    shared: &Arc<Shared>,
    npm: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
    no_rebind: bool,
) -> Response {
    let zip = if is_raw(content_type) {
        if body.len() as u64 > RAW_LIMIT {
            return Response::text(413, "request entity too large");
        }
        body
    } else {
        if body.len() as u64 > JSON_LIMIT {
            return Response::text(413, "request entity too large");
        }
        // The route calls `req.body.toString('base64')` on the parser's `{}`.
        b"[object Object]".to_vec()
    };
    let mut guard = shared.lock();
    let st = &mut *guard;
    let Some(npm) = npm.filter(|n| st.db.contains_key(*n)) else {
        return Response::text(500, "npm package not found");
    };
    let npm = npm.to_string();
    let md5 = md5_hex(&zip);
    // The zip is written to the database before anything is checked.
    st.zips.insert(npm.clone(), zip.clone());
    let rec = st.db.get_mut(&npm).expect("checked above");
    rec.zip_md5 = Some(md5.clone());
    rec.deploys += 1;
    if no_rebind {
        return Response::text(200, "ok");
    }
    if let Some(body) = st.faults.fail_before_kill.clone() {
        return Response::text(500, body);
    }
    let pj = &rec.package_json;
    if !pj.get("name").is_some_and(Value::is_string)
        || !pj.get("scrypted").is_some_and(Value::is_object)
    {
        return Response::text(
            500,
            "TypeError: Cannot read properties of undefined (reading 'slice')",
        );
    }
    rec.loaded = false;
    rebind(shared, st, &npm, &zip, &md5)
}

/// Kills the running worker and deletes its files, then extracts the new zip (and
/// only then finds out whether it can) and forks the new worker.
pub(crate) fn rebind(
    shared: &Arc<Shared>,
    st: &mut State,
    npm: &str,
    zip: &[u8],
    md5: &str,
) -> Response {
    life::kill(st, npm);
    let _ = shared.events.send(life::Event::HostChanged(npm.into()));
    let plugin_dir = shared
        .options
        .volume
        .as_ref()
        .map(|v| v.join("plugins").join(npm));
    if let Some(dir) = &plugin_dir {
        let _ = fs::remove_dir_all(dir.join("unzipped"));
        let _ = fs::remove_dir_all(dir.join("zip"));
    }
    if let Some(body) = st.faults.fail_after_kill.take() {
        return Response::text(500, body);
    }
    let extraction = adm::extract(zip);
    if let adm::Extraction::Huge(_) = extraction {
        st.frozen_until = Some(Instant::now() + shared.options.freeze);
        life::refreeze_while_stored(shared, npm, md5);
    }
    if let Some(body) = extraction.error_body() {
        return Response::text(500, body);
    }
    if let Some(dir) = &plugin_dir
        && let Err(e) = write_volume(dir, md5, zip)
    {
        return Response::text(500, format!("Error: {e}"));
    }
    life::start(shared, st, npm);
    if let Some(rec) = st.db.get(npm) {
        let state = life::plugin_state(npm, &rec.package_json);
        let _ = shared
            .events
            .send(life::Event::Device(rec.id.clone(), Some(state)));
    }
    Response::text(200, "ok")
}

pub(crate) fn write_volume(dir: &Path, md5: &str, zip: &[u8]) -> std::io::Result<()> {
    fs::create_dir_all(dir.join("zip"))?;
    fs::write(dir.join("zip").join(format!("1-{md5}.zip")), zip)?;
    let unzipped = dir.join("unzipped");
    fs::create_dir_all(&unzipped)?;
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).map_err(std::io::Error::other)?;
    if let Ok(mut main) = archive.by_name("main.nodejs.js") {
        let mut text = Vec::new();
        main.read_to_end(&mut text)?;
        fs::write(unzipped.join("main.nodejs.js"), text)?;
    }
    Ok(())
}

pub(crate) fn other(shared: &Shared, head: &Head) -> Response {
    if let Some(host) = rpc::engine_io_host(&head.path) {
        return rpc::polling(shared, &host);
    }
    if let Some(rest) = head.path.strip_prefix("/endpoint/") {
        let mut parts = rest.split('/');
        let first = parts.next().unwrap_or("");
        let name = if first.starts_with('@') {
            format!("{first}/{}", parts.next().unwrap_or(""))
        } else {
            first.to_string()
        };
        let st = shared.lock();
        return match st.db.get(&name) {
            // Only a plugin with an HTTP handler answers; any other answers exactly
            // like a missing one (docs/scrypted-api.md §6).
            Some(rec) if rec.zip_md5.is_some() && has_http_handler(&rec.package_json) => {
                Response::text(200, format!("{name} endpoint"))
            }
            _ => Response::text(404, endpoint_not_found_body(&name)),
        };
    }
    if head.method == "GET" && head.path == "/login" {
        return Response::json(
            200,
            "{\"error\":\"Not logged in.\",\"hasLogin\":true}".into(),
        );
    }
    if shared.options.control_endpoint && head.method == "GET" && head.path == "/__fake/requests" {
        let st = shared.lock();
        return Response::json(
            200,
            serde_json::to_string(&st.requests).unwrap_or_else(|_| "[]".into()),
        );
    }
    Response::html(
        404,
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>Cannot {} {}</pre>\n</body>\n</html>\n",
            head.method, head.path
        ),
    )
}

pub(crate) fn has_http_handler(package_json: &Value) -> bool {
    package_json
        .pointer("/scrypted/interfaces")
        .and_then(Value::as_array)
        .is_some_and(|i| i.iter().any(|x| x == "HttpRequestHandler"))
}
