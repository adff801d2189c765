//! `/login`, `/logout` and `/account`.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use ontology_governance::Channel;
use ontology_governance::audit::actions;
use serde::Deserialize;

use super::session::{self, LoginCsrf};
use crate::app::AppState;
use crate::auth::client::ClientAddress;
use crate::auth::{SignInError, retry_after_secs};
use crate::problem::{ApiError, ApiResult};

/// The page a signed-in user lands on when the sign-in form names no page.
const HOME: &str = "/account";

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    csrf_token: String,
    next: String,
    username: String,
    form_error: Option<String>,
    username_error: Option<String>,
    password_error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "account.html")]
struct AccountPage {
    username: String,
    role: String,
    expires_at: String,
    csrf_token: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "logout.html")]
struct LogoutPage {
    username: String,
    csrf_token: String,
    form_error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// The fields of the sign-in form. Missing fields read as empty, so the page can show
/// which one is missing.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf_token: String,
}

/// Keeps only a local path, so the sign-in form cannot redirect to another site.
///
/// Browsers strip tabs and line breaks from a URL and read a backslash as a slash, so
/// `/<TAB>/host` or `/\host` would leave the site. Only printable ASCII without a backslash
/// is kept, starting with one slash; anything else signs in to the account page.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && path.chars().all(|c| c.is_ascii_graphic() && c != '\\') =>
        {
            path.to_owned()
        }
        _ => HOME.to_owned(),
    }
}

fn login_page(csrf: &LoginCsrf, next: String, username: String) -> LoginPage {
    LoginPage {
        csrf_token: csrf.form_token.clone(),
        next,
        username,
        form_error: None,
        username_error: None,
        password_error: None,
    }
}

/// Renders a page with a status and the sign-in cookie set.
fn respond(app: &AppState, status: StatusCode, page: LoginPage, csrf: &LoginCsrf) -> Response {
    let mut response = (status, page).into_response();
    csrf.set_cookie(app, &mut response);
    response
}

/// Renders the sign-in form.
pub async fn login_form(State(app): State<AppState>, Query(query): Query<NextQuery>, headers: HeaderMap) -> Response {
    let csrf = LoginCsrf::for_request(&app, &headers);
    let page = login_page(&csrf, local_path(query.next.as_deref()), String::new());
    respond(&app, StatusCode::OK, page, &csrf)
}

/// Signs in from the form: on success sets the session cookie and redirects, otherwise
/// shows the form again with the error next to its field and the username kept.
pub async fn login(
    State(app): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> ApiResult<Response> {
    let next = local_path(Some(&form.next));

    if !session::login_csrf_valid(&app, &headers, &form.csrf_token) {
        tracing::info!(client = %client, "sign-in form rejected: missing or invalid CSRF token");
        let csrf = LoginCsrf::fresh(&app);
        let mut page = login_page(&csrf, next, form.username);
        page.form_error =
            Some("The form expired or did not come from this site. Enter your password and sign in again.".into());
        return Ok(respond(&app, StatusCode::FORBIDDEN, page, &csrf));
    }

    let csrf = LoginCsrf::for_request(&app, &headers);
    let mut page = login_page(&csrf, next.clone(), form.username.clone());
    if form.username.trim().is_empty() {
        page.username_error = Some("Enter your username.".into());
    }
    if form.password.is_empty() {
        page.password_error = Some("Enter your password.".into());
    }
    if page.username_error.is_some() || page.password_error.is_some() {
        return Ok(respond(&app, StatusCode::BAD_REQUEST, page, &csrf));
    }

    match app.auth.sign_in(&form.username, &form.password, client, Channel::Web).await {
        Ok(issued) => {
            // The browser's earlier session, if it had one, ends here. Its cookie is about to
            // be replaced, and a token that no browser carries must not stay valid.
            if let Some(previous) = session::web_principal(&app, &headers).await {
                let actor = previous.actor(Channel::Web, client);
                app.auth.tokens.revoke(&actor, &previous.jti, actions::SESSION_ENDED).await?;
                tracing::info!(username = %previous.account.username, jti = %previous.jti, "replaced session ended");
            }
            let mut response = Redirect::to(&next).into_response();
            session::set_session_cookie(&app, &mut response, &issued.token);
            session::clear_login_cookie(&app, &mut response);
            Ok(response)
        }
        Err(SignInError::InvalidCredentials) => {
            page.password_error = Some("The username or password is not right.".into());
            Ok(respond(&app, StatusCode::UNAUTHORIZED, page, &csrf))
        }
        Err(SignInError::RateLimited(wait)) => {
            let seconds = retry_after_secs(wait);
            page.form_error = Some(format!("Too many failed sign-ins. Wait {seconds} seconds before you try again."));
            let mut response = respond(&app, StatusCode::TOO_MANY_REQUESTS, page, &csrf);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            Ok(response)
        }
        Err(SignInError::Internal(error)) => Err(ApiError::Internal(error)),
    }
}

fn redirect_to_login(next: &str) -> Response {
    Redirect::to(&format!("/login?next={next}")).into_response()
}

/// Renders the signed-in account with a sign-out button.
pub async fn account_page(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let Some(principal) = session::web_principal(&app, &headers).await else {
        return redirect_to_login(HOME);
    };
    let expires_at =
        app.auth.tokens.get(&principal.jti).await.ok().flatten().map(|record| record.expires_at).unwrap_or_default();
    AccountPage {
        username: principal.account.username.to_string(),
        role: principal.account.role.to_string(),
        expires_at,
        csrf_token: session::session_csrf_token(&app, &principal),
    }
    .into_response()
}

/// Renders a page with the sign-out button, for links to `/logout`.
pub async fn logout_form(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let Some(principal) = session::web_principal(&app, &headers).await else {
        return Redirect::to("/login").into_response();
    };
    LogoutPage {
        username: principal.account.username.to_string(),
        csrf_token: session::session_csrf_token(&app, &principal),
        form_error: None,
    }
    .into_response()
}

/// Signs out: revokes the session's token and deletes the cookie.
pub async fn logout(
    State(app): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> ApiResult<Response> {
    let Some(principal) = session::web_principal(&app, &headers).await else {
        let mut response = Redirect::to("/login").into_response();
        // Only a stale cookie that came with the request is deleted. A form posted from
        // another site arrives without the SameSite=Strict cookie, and deleting it in the
        // response would let that site sign the user out.
        if session::cookie(&headers, session::SESSION_COOKIE).is_some() {
            session::clear_session_cookie(&app, &mut response);
        }
        return Ok(response);
    };
    if !session::session_csrf_valid(&app, &principal, &form.csrf_token) {
        tracing::info!(username = %principal.account.username, client = %client, "sign-out form rejected: missing or invalid CSRF token");
        let page = LogoutPage {
            username: principal.account.username.to_string(),
            csrf_token: session::session_csrf_token(&app, &principal),
            form_error: Some("The form expired or did not come from this site. Sign out again.".into()),
        };
        return Ok((StatusCode::FORBIDDEN, page).into_response());
    }

    let actor = principal.actor(Channel::Web, client);
    app.auth.tokens.revoke(&actor, &principal.jti, actions::SESSION_ENDED).await?;
    tracing::info!(username = %principal.account.username, jti = %principal.jti, "signed out");

    let mut response = Redirect::to("/login").into_response();
    session::clear_session_cookie(&app, &mut response);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::{HOME, local_path};

    #[test]
    fn local_paths_kept() {
        assert_eq!(local_path(Some("/account")), "/account");
        assert_eq!(
            local_path(Some("/ontology/customers/nps_score?version=1.0.0")),
            "/ontology/customers/nps_score?version=1.0.0"
        );
    }

    #[test]
    fn other_sites_rejected() {
        for hostile in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            "/ /evil.example",
            "/\u{7f}/x",
            "https://evil.example",
            "evil.example",
            "/caf\u{e9}",
        ] {
            assert_eq!(local_path(Some(hostile)), HOME, "{hostile:?}");
        }
        assert_eq!(local_path(None), HOME);
    }
}
