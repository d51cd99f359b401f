//! The HTTP control API (axum): `GET /status`, `GET /metrics`,
//! `POST /zones/{name}/{reload|refresh|retransfer|notify}`, `POST /reload`.
//! With `control_token` set, every request needs `Authorization: Bearer`.

use crate::daemon::{Action, ActionError, Daemon};
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::json;
use std::sync::Arc;
use tracing::{error, warn};

#[derive(Clone)]
struct Ctx {
    daemon: Arc<Daemon>,
    token: Option<String>,
}

pub async fn serve(listener: tokio::net::TcpListener, daemon: Arc<Daemon>, token: Option<String>) {
    let ctx = Ctx { daemon, token };
    let app = Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/reload", post(reload))
        .route("/zones/{name}/{action}", post(zone_action))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                Json(json!({"error": "no such endpoint"})),
            )
        })
        .layer(middleware::from_fn_with_state(ctx.clone(), auth))
        .with_state(ctx);
    if let Err(e) = axum::serve(listener, app).await {
        error!("control API stopped: {e}");
    }
}

async fn auth(State(ctx): State<Ctx>, headers: HeaderMap, req: Request, next: Next) -> Response {
    if let Some(token) = &ctx.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        // Constant-time comparison: a timing side channel must not leak the token.
        let ok = given.is_some_and(|g| {
            g.len() == token.len()
                && g.bytes()
                    .zip(token.bytes())
                    .fold(0u8, |a, (x, y)| a | (x ^ y))
                    == 0
        });
        if !ok {
            warn!(path = %req.uri().path(), "control API: missing or wrong bearer token");
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
    Json(ctx.daemon.status_json())
}

async fn metrics(State(ctx): State<Ctx>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        ctx.daemon.metrics_text(),
    )
}

async fn reload(State(ctx): State<Ctx>) -> Response {
    let d = ctx.daemon.clone();
    match tokio::task::spawn_blocking(move || d.reload_config()).await {
        Ok(Ok(summary)) => Json(summary).into_response(),
        Ok(Err(e)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": format!("config not reloaded, nothing changed: {e}")})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
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
    match ctx.daemon.zone_action(&name, a) {
        Ok(()) => Json(json!({"ok": true, "zone": name, "action": action})).into_response(),
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
