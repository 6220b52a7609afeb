//! What many requests carry, parsed once: pages, the caller, texts and dates, child resource names, batches.

use base64::Engine as _;
use tonic::{Request, Status};
use township_policy::FieldViolation;
use township_policy::quoted;
use township_runtime::principal::Principal;

use township_runtime::ServiceError;

use super::error::{REQUEST_INDEX, invalid, kind_of, name_error};
use crate::domain::names::{self, Scope, TownshipCode};
use crate::store::{Page, PageRequest};

/// Largest page a list returns.
const MAX_PAGE_SIZE: i32 = 1000;
/// Longest page token accepted; the tokens this service issues encode a code or an id (under 40 characters).
const MAX_PAGE_TOKEN_CHARS: usize = 512;
/// Limits of free texts that name things: a person, a document number (文号), a flag.
pub(super) const MAX_NAME_TEXT_CHARS: usize = 100;
/// Most flags one township carries.
const MAX_FLAGS: usize = 20;

pub(super) fn page_request(page_size: i32, page_token: &str) -> Result<PageRequest, Status> {
    if page_size < 0 {
        return Err(invalid("page_size", format!("must be ≥ 0, got {page_size}")));
    }
    if page_token.len() > MAX_PAGE_TOKEN_CHARS {
        return Err(invalid("page_token", "not a token this service issued; pass next_page_token as given"));
    }
    let after = if page_token.is_empty() {
        None
    } else {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(page_token)
            .map_err(|_| invalid("page_token", "not a token this service issued; pass next_page_token as given"))?;
        Some(String::from_utf8(bytes).map_err(|_| invalid("page_token", "not a token this service issued"))?)
    };
    // Checked ≥ 0 above.
    Ok(PageRequest { size: page_size.min(MAX_PAGE_SIZE).unsigned_abs(), after })
}

pub(super) fn next_token<T>(page: &Page<T>) -> String {
    page.next.as_ref().map(|key| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)).unwrap_or_default()
}

/// Who the audit log records: the authenticated principal (subject, roles, how it authenticated). What the
/// client sends in `x-actor` (the person at the keyboard, say) follows as a note, never as the actor.
pub(super) fn actor<T>(request: &Request<T>) -> String {
    let principal = Principal::of(request).map_or_else(|| "unauthenticated".to_owned(), Principal::audit_actor);
    match actor_note(request) {
        Some(note) => format!("{principal}; note: {note}"),
        None => principal,
    }
}

/// The `x-actor` header, decoded to one clean line.
fn actor_note<T>(request: &Request<T>) -> Option<String> {
    request
        .metadata()
        .get("x-actor")
        .and_then(|value| value.to_str().ok())
        // Headers are ASCII: clients send a Chinese name percent-encoded (UTF-8).
        .map(|value| percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned())
        // Decoding can yield control characters (%0A…): the audit log keeps a name on one clean line.
        .map(|actor| actor.chars().filter(|c| !c.is_control()).take(200).collect::<String>().trim().to_owned())
        .filter(|actor| !actor.is_empty())
}

pub(super) fn optional(text: String) -> Option<String> {
    if text.trim().is_empty() { None } else { Some(text) }
}

pub(super) fn check_date(field: &str, date: &Option<String>, violations: &mut Vec<FieldViolation>) {
    if let Some(date) = date {
        let ok = date.len() == 10
            && date.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
        if !ok {
            violations
                .push(FieldViolation::new(field, format!("{} is not a date of the form YYYY-MM-DD", quoted(date))));
        }
    }
}

/// Like [`check_text`] for a text that may be empty.
pub(super) fn check_optional_text(field: &str, text: &str, max_chars: usize, violations: &mut Vec<FieldViolation>) {
    if text.chars().count() > max_chars {
        violations.push(FieldViolation::new(field, format!("must be at most {max_chars} characters")));
    }
}

pub(super) fn check_flags(field: &str, flags: &[String], violations: &mut Vec<FieldViolation>) {
    if flags.len() > MAX_FLAGS {
        violations.push(FieldViolation::new(field, format!("{} flags; at most {MAX_FLAGS}", flags.len())));
    }
    for (index, flag) in flags.iter().enumerate().take(MAX_FLAGS) {
        check_text(&format!("{field}[{index}]"), flag, MAX_NAME_TEXT_CHARS, violations);
    }
}

pub(super) fn check_text(field: &str, text: &str, max_chars: usize, violations: &mut Vec<FieldViolation>) {
    if text.trim().is_empty() {
        violations.push(FieldViolation::new(field, "must not be empty"));
    } else if text.chars().count() > max_chars {
        violations.push(FieldViolation::new(field, format!("must be at most {max_chars} characters")));
    }
}

/// Parses `{township}/{collection}/{id}`.
pub(super) fn township_child(name: &str, collection: &str) -> Result<(TownshipCode, i64), Status> {
    match names::parse_child(name, collection).map_err(name_error("name"))? {
        (Scope::Township(code), id) => Ok((code, id)),
        _ => Err(invalid("name", format!("{} is not of the form {{township}}/{collection}/{{id}}", quoted(name)))),
    }
}

/// Parses `{township}/institutions/{id}/plaques/{id}`: the township, the institution's id and the plaque's.
pub(super) fn plaque_ref(name: &str) -> Result<(TownshipCode, i64, i64), Status> {
    let bad = || invalid("name", format!("{} is not a plaque name ({{institution}}/plaques/{{id}})", quoted(name)));
    let (institution, plaque) = name.rsplit_once("/plaques/").ok_or_else(bad)?;
    let plaque: i64 = plaque.parse().map_err(|_| bad())?;
    let (code, institution_id) = township_child(institution, "institutions")?;
    Ok((code, institution_id, plaque))
}

/// The revision an update expects: the one its etag names, or the stored one when it sends none.
pub(super) fn expected_revision(field: &str, etag: &str, stored: i64) -> Result<i64, Status> {
    if etag.is_empty() {
        Ok(stored)
    } else {
        super::convert::revision_of(etag).ok_or_else(|| invalid(field, "not an etag this service issued"))
    }
}

/// Rejects an update mask naming a field twice or nothing at all.
pub(super) fn mask_paths(mask: Option<prost_types::FieldMask>) -> Result<Vec<String>, Status> {
    let mask = mask.ok_or_else(|| invalid("update_mask", "name the fields to update"))?;
    if mask.paths.is_empty() {
        return Err(invalid("update_mask", "name the fields to update"));
    }
    if mask.paths.len() > 20 {
        return Err(invalid("update_mask", format!("{} paths; at most 20", mask.paths.len())));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = mask.paths.iter().find(|path| !seen.insert(path.as_str())) {
        return Err(invalid("update_mask", format!("{} is named twice; name each field once", quoted(twice))));
    }
    Ok(mask.paths)
}

/// The most records one batch create carries: a county's institutions are a few hundred, a city's a few thousand.
const MAX_BATCH_CREATE: usize = 10_000;

pub(super) fn check_batch_size(count: usize) -> Result<(), Status> {
    if count > MAX_BATCH_CREATE {
        return Err(invalid("requests", format!("{count} requests; at most {MAX_BATCH_CREATE} per batch")));
    }
    Ok(())
}

/// The status of the `index`th request of a batch: field violations become `requests[index].field`, other
/// messages are prefixed with `requests[index]`; either way `google.rpc.ErrorInfo` names the index.
pub(super) fn in_request(index: usize) -> impl Fn(Status) -> Status {
    move |status| {
        use tonic_types::StatusExt as _;
        let error = match status.get_details_bad_request() {
            Some(bad_request) if status.code() == tonic::Code::InvalidArgument => ServiceError::invalid_arguments(
                bad_request
                    .field_violations
                    .into_iter()
                    .map(|v| (format!("requests[{index}].{}", v.field), v.description)),
            ),
            _ => ServiceError::new(kind_of(status.code()), format!("requests[{index}]: {}", status.message())),
        };
        error.with_metadata(REQUEST_INDEX, index.to_string()).into()
    }
}

#[cfg(test)]
mod tests {
    use township_runtime::principal::{Credential, Role};

    use super::*;

    fn note_of(header: &str) -> Option<String> {
        let mut request = Request::new(());
        request.metadata_mut().insert("x-actor", header.parse().unwrap());
        actor_note(&request)
    }

    #[test]
    fn the_actor_header_is_decoded_to_one_clean_line() {
        assert_eq!(note_of("%E7%BC%96%E5%8A%9E%20tester").unwrap(), "编办 tester");
        assert_eq!(note_of("mallory%0Aactor%3A%20admin%00").unwrap(), "malloryactor: admin");
        assert_eq!(note_of("%0A%0D"), None);
        assert_eq!(note_of(&"a".repeat(300)).unwrap().len(), 200);
    }

    #[test]
    fn the_actor_is_the_principal_and_the_header_only_a_note() {
        let mut request = Request::new(());
        request.metadata_mut().insert("x-actor", "worker-1".parse().unwrap());
        assert_eq!(actor(&request), "unauthenticated; note: worker-1", "a header alone names no one");
        request.extensions_mut().insert(Principal {
            subject: "zhang.san".into(),
            roles: vec![Role::CountyEditor],
            jurisdiction: vec!["430181".into()],
            credential: Credential::Token { key_id: "k1".into() },
        });
        assert_eq!(actor(&request), "zhang.san [county_editor] (token, kid k1); note: worker-1");
    }
}
