//! The HTTP control API (axum on hyper): `GET /status`, `GET /metrics`,
//! `POST /zones/{name}/{reload|refresh|retransfer|notify}`, `POST /reload`.
//! With `control_token` set, every request needs `Authorization: Bearer`.
//! Zone actions wait for their outcome (or say that it is still running)
//! and answer with a non-2xx status when they failed.
//!
//! The accept loop is ours, not `axum::serve`, for the limits a listener
//! others can reach needs: at most `MAX_CONNECTIONS` at once (more are
//! closed), request headers within `HEADER_TIMEOUT`, and no connection
//! (idle or half-sent) kept beyond `CONNECTION_TIMEOUT`.

use crate::lifecycles::{Action, ActionError, Outcome, ZoneChangeError, Zones};
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{delete, get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use tracing::{debug, error};

pub const MAX_CONNECTIONS: usize = 64;
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longer than the longest action wait (30 s), with room to spare.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone)]
struct Ctx {
    zones: Arc<Zones>,
    token: Option<String>,
}

pub async fn serve(listener: tokio::net::TcpListener, zones: Arc<Zones>, token: Option<String>) {
    let ctx = Ctx { zones, token };
    let app = Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/reload", post(reload))
        .route("/zones/{name}/{action}", post(zone_action))
        .route("/zones", post(add_zone))
        .route("/zones/{name}", delete(remove_zone))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                Json(json!({"error": "no such endpoint"})),
            )
        })
        .layer(middleware::from_fn_with_state(ctx.clone(), auth))
        .with_state(ctx);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                error!("control API accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            crate::warn_limited!(%peer, "control API: too many connections; closed");
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
                Ok(Err(e)) => debug!(%peer, "control API connection: {e}"),
                Err(_) => {
                    debug!(%peer, "control API connection closed after {CONNECTION_TIMEOUT:?}")
                }
                Ok(Ok(())) => {}
            }
        });
    }
}

async fn auth(State(ctx): State<Ctx>, headers: HeaderMap, req: Request, next: Next) -> Response {
    if let Some(token) = &ctx.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        // Constant time: a timing side channel must not leak the token.
        let ok = given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(token.as_bytes())));
        if !ok {
            crate::warn_limited!(path = %req.uri().path(), "control API: missing or wrong bearer token");
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "a valid bearer token is required"})),
            )
                .into_response();
        }
    }
    next.run(req).await
}

async fn status(State(ctx): State<Ctx>) -> Json<serde_json::Value> {
    Json(ctx.zones.status_json())
}

async fn metrics(State(ctx): State<Ctx>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::ops::metrics::render(&ctx.zones.statuses()),
    )
}

async fn reload(State(ctx): State<Ctx>) -> Response {
    let d = ctx.zones.clone();
    match tokio::task::spawn_blocking(move || d.reload_config()).await {
        Ok(Ok(summary)) => Json(summary).into_response(),
        Ok(Err(e)) => (
            StatusCode::BAD_REQUEST,
            Json(
                json!({"ok": false, "error": format!("config not reloaded, nothing changed: {e}")}),
            ),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"ok": false, "error": e.to_string()})),
        )
            .into_response(),
    }
}

/// A zone added or removed at run time, or why not.
fn zone_change(r: Result<serde_json::Value, ZoneChangeError>, created: bool) -> Response {
    let code = match &r {
        Ok(_) if created => StatusCode::CREATED,
        Ok(_) => StatusCode::OK,
        Err(ZoneChangeError::Invalid(_)) => StatusCode::BAD_REQUEST,
        Err(ZoneChangeError::Exists(_) | ZoneChangeError::NotRemovable(..)) => StatusCode::CONFLICT,
        Err(ZoneChangeError::NoZone(_)) => StatusCode::NOT_FOUND,
        Err(ZoneChangeError::Store(_)) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let body = match r {
        Ok(v) => v,
        Err(e) => json!({"ok": false, "error": e.to_string()}),
    };
    (code, Json(body)).into_response()
}

async fn add_zone(State(ctx): State<Ctx>, body: axum::body::Bytes) -> Response {
    let v: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        Ok(_) => {
            return zone_change(
                Err(ZoneChangeError::Invalid(
                    "the body must be a JSON object of a zone's keys".into(),
                )),
                true,
            );
        }
        Err(e) => return zone_change(Err(ZoneChangeError::Invalid(format!("body: {e}"))), true),
    };
    let zones = ctx.zones.clone();
    match tokio::task::spawn_blocking(move || zones.add_zone(&v)).await {
        Ok(r) => zone_change(r, true),
        Err(e) => zone_change(Err(ZoneChangeError::Invalid(e.to_string())), true),
    }
}

async fn remove_zone(State(ctx): State<Ctx>, Path(name): Path<String>) -> Response {
    let zones = ctx.zones.clone();
    match tokio::task::spawn_blocking(move || zones.remove_zone(&name)).await {
        Ok(r) => zone_change(r, false),
        Err(e) => zone_change(Err(ZoneChangeError::Invalid(e.to_string())), false),
    }
}

async fn zone_action(
    State(ctx): State<Ctx>,
    Path((name, action)): Path<(String, String)>,
) -> Response {
    let a = match action.as_str() {
        "reload" => Action::Reload,
        "refresh" => Action::Refresh,
        "retransfer" => Action::Retransfer,
        "notify" => Action::Notify,
        other => {
            return (StatusCode::NOT_FOUND, Json(json!({"error": format!("unknown action {other}: reload, refresh, retransfer or notify")})))
                .into_response();
        }
    };
    match ctx.zones.zone_action(&name, a).await {
        Ok(Outcome::Done(result)) => {
            Json(json!({"ok": true, "zone": name, "action": action, "result": result}))
                .into_response()
        }
        Ok(Outcome::Running(result)) => (
            StatusCode::ACCEPTED,
            Json(json!({"ok": true, "running": true, "zone": name, "action": action, "result": result})),
        )
            .into_response(),
        Ok(Outcome::Failed(e)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"ok": false, "zone": name, "action": action, "error": e})),
        )
            .into_response(),
        Err(e @ ActionError::NoZone(_)) => {
            (StatusCode::NOT_FOUND, Json(json!({"error": e.to_string()}))).into_response()
        }
        Err(e @ ActionError::NotApplicable(_)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}
