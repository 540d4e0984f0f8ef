//! The OpenAPI document describing the admin API, served at `/openapi.json`.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::AppState;
use crate::api;

/// The admin API's description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Laissez admin API", description = "Principals, credentials, policies and the audit log. Errors are RFC 9457 problem details."),
    paths(
        api::health,
        api::whoami::whoami,
        api::principals::create, api::principals::list, api::principals::show,
        api::principals::deactivate, api::principals::activate, api::principals::set_password, api::principals::set_email,
        api::tokens::create, api::tokens::list, api::tokens::show, api::tokens::roll, api::tokens::revoke,
        api::policies::create_role, api::policies::list_roles,
        api::policies::create, api::policies::list, api::policies::remove, api::policies::check,
        api::audit::list, api::audit::verify, api::audit::report,
        api::settings::show, api::settings::update, api::settings::hygiene, api::settings::rotate_keys,
        api::connected::list, api::connected::disconnect, api::clients::register, api::clients::list, api::resources::put, api::resources::list,
        crate::leaks::report, crate::leaks::check, crate::leaks::list,
    ),
    components(schemas(crate::problem::Problem)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A Laissez token, e.g. lzut_..."))
                    .build(),
            ),
        );
    }
}

/// Serves the document.
pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
}
