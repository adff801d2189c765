//! The session cookie and the CSRF tokens of the web forms.
//!
//! The session cookie carries a session JWT and is `HttpOnly`, `SameSite=Strict` and, when
//! the registry is served over https, `Secure`. Every state-changing form carries a CSRF
//! token. On a signed-in page it is an HMAC of the session's token id under the server
//! key. On the sign-in form it is an HMAC of a random value in a separate short-lived
//! cookie (a signed double-submit). A page on another site can forge neither.

use ::cookie::{Cookie, SameSite};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;

use ontology_governance::TokenKind;

use crate::app::AppState;
use crate::auth::Principal;
use crate::auth::keys::random_bytes;

pub const SESSION_COOKIE: &str = "registry_session";
pub const LOGIN_COOKIE: &str = "registry_login";
/// Lifetime of the sign-in form's cookie, in seconds.
const LOGIN_COOKIE_SECS: u64 = 3600;

pub const SESSION_PURPOSE: &str = "session";
pub const LOGIN_PURPOSE: &str = "login";

/// Returns the value of the named cookie from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .and_then(|cookie| cookie.value_raw())
}

/// Authenticates a page request by its session cookie, returning `None` without a valid one.
/// Only a session token counts: a machine token in the cookie would otherwise be revoked
/// by signing out of the browser.
pub async fn web_principal(app: &AppState, headers: &HeaderMap) -> Option<Principal> {
    let token = cookie(headers, SESSION_COOKIE)?;
    app.auth.authenticate(token).await.ok().filter(|principal| principal.kind == TokenKind::Session)
}

/// Builds a `Set-Cookie` value with the registry's attributes. `max_age` 0 deletes it.
fn set_cookie(app: &AppState, name: &str, value: &str, path: &str, max_age: u64) -> HeaderValue {
    let cookie = Cookie::build((name, value))
        .path(path)
        .max_age(::cookie::time::Duration::seconds(max_age.try_into().unwrap_or(i64::MAX)))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(app.auth.config.secure_cookies)
        .build();
    HeaderValue::try_from(cookie.to_string()).expect("cookie values are hex or JWT characters")
}

pub fn set_session_cookie(app: &AppState, response: &mut Response, token: &str) {
    let max_age = app.auth.config.session_lifetime.as_secs();
    response.headers_mut().append(SET_COOKIE, set_cookie(app, SESSION_COOKIE, token, "/", max_age));
}

pub fn clear_session_cookie(app: &AppState, response: &mut Response) {
    response.headers_mut().append(SET_COOKIE, set_cookie(app, SESSION_COOKIE, "", "/", 0));
}

pub fn clear_login_cookie(app: &AppState, response: &mut Response) {
    response.headers_mut().append(SET_COOKIE, set_cookie(app, LOGIN_COOKIE, "", "/login", 0));
}

/// The sign-in form's CSRF state: the random cookie value and the token for the form.
pub struct LoginCsrf {
    pub cookie_value: String,
    pub form_token: String,
}

impl LoginCsrf {
    /// Reuses the request's sign-in cookie, or starts a new one.
    pub fn for_request(app: &AppState, headers: &HeaderMap) -> LoginCsrf {
        let cookie_value = match cookie(headers, LOGIN_COOKIE) {
            Some(value) if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) => value.to_owned(),
            _ => hex::encode(random_bytes::<32>()),
        };
        let form_token = app.auth.key.csrf_token(LOGIN_PURPOSE, &cookie_value);
        LoginCsrf { cookie_value, form_token }
    }

    /// Starts a new sign-in cookie.
    pub fn fresh(app: &AppState) -> LoginCsrf {
        let cookie_value = hex::encode(random_bytes::<32>());
        let form_token = app.auth.key.csrf_token(LOGIN_PURPOSE, &cookie_value);
        LoginCsrf { cookie_value, form_token }
    }

    pub fn set_cookie(&self, app: &AppState, response: &mut Response) {
        response
            .headers_mut()
            .append(SET_COOKIE, set_cookie(app, LOGIN_COOKIE, &self.cookie_value, "/login", LOGIN_COOKIE_SECS));
    }
}

/// Checks that a submitted sign-in form carries the token that matches its cookie.
pub fn login_csrf_valid(app: &AppState, headers: &HeaderMap, submitted: &str) -> bool {
    match cookie(headers, LOGIN_COOKIE) {
        Some(value) => app.auth.key.csrf_matches(LOGIN_PURPOSE, value, submitted),
        None => false,
    }
}

/// Computes the CSRF token of forms on signed-in pages.
pub fn session_csrf_token(app: &AppState, principal: &Principal) -> String {
    app.auth.key.csrf_token(SESSION_PURPOSE, &principal.jti)
}

pub fn session_csrf_valid(app: &AppState, principal: &Principal, submitted: &str) -> bool {
    app.auth.key.csrf_matches(SESSION_PURPOSE, &principal.jti, submitted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_found_among_several() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; registry_session=abc.def"));
        headers.append(COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc.def"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "registry"), None);
    }
}
