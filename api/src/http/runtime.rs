use axum::Router;
pub fn router() -> Router<crate::app::App> {
    Router::new()
}
