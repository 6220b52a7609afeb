//! One small error vocabulary for every township service, mapped to gRPC status codes in one place.
//!
//! Every status made from a [`ServiceError`] carries a `google.rpc.ErrorInfo` (reason [`ErrorKind::reason`],
//! domain [`ERROR_DOMAIN`], the error's metadata) and, for INVALID_ARGUMENT, a `google.rpc.BadRequest`.
//!
//! **Budget.** grpc-java and grpc-core (Python, C++, Ruby, …) refuse response metadata over 8 KiB by default and
//! report `RESOURCE_EXHAUSTED` instead of the real error, so whatever the request, a refusal's `grpc-message`
//! (percent-encoded: a CJK character costs 9 bytes) stays within [`MAX_MESSAGE_HEADER_BYTES`] and its
//! `grpc-status-details-bin` (base64 of `google.rpc.Status`, which repeats the message) within
//! [`MAX_DETAILS_HEADER_BYTES`]. The first violations are listed in full, then one last violation counts the
//! rest; a quoted value is cut to about [`MAX_QUOTED_CHARS`] characters, an absurd field path or description
//! to a bounded length, always on a character boundary and marked with `…`.

use std::{borrow::Cow, collections::BTreeMap};

use prost::Message as _;
use tonic::{Code, Status, codegen::Bytes};
use tonic_types::pb;

pub use township_proto::ERROR_DOMAIN;
/// Largest `grpc-message` header value, percent-encoded as sent.
pub const MAX_MESSAGE_HEADER_BYTES: usize = 1536;
/// Largest `grpc-status-details-bin` header value, base64-encoded as sent.
pub const MAX_DETAILS_HEADER_BYTES: usize = 4096;
/// A quoted value (`"…"`, as `{:?}` writes it) longer than this many characters is cut.
pub const MAX_QUOTED_CHARS: usize = 100;
/// Longest field path sent, in characters.
const MAX_FIELD_CHARS: usize = 200;
/// Longest violation description sent, in characters (after quoted values are cut).
const MAX_DESCRIPTION_CHARS: usize = 400;
/// Longest metadata key (as `google.rpc.ErrorInfo` asks) and value, in characters.
const MAX_METADATA_KEY_CHARS: usize = 64;
const MAX_METADATA_VALUE_CHARS: usize = MAX_QUOTED_CHARS;
/// The summary violation's field is the omitted fields' common parent, if it is at most this long.
const MAX_SUMMARY_FIELD_BYTES: usize = 64;
/// How many violations the message names before counting the rest.
const MESSAGE_SHOWN: usize = 3;
/// The `ErrorInfo` metadata key holding the number of field violations, listed or not.
pub const VIOLATION_COUNT_KEY: &str = "violation_count";

const ELLIPSIS: char = '…';
const BAD_REQUEST_TYPE_URL: &str = "type.googleapis.com/google.rpc.BadRequest";
const ERROR_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.ErrorInfo";

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed; fix the named fields and retry.
    InvalidArgument,
    /// The named resource does not exist.
    NotFound,
    /// The resource already exists.
    AlreadyExists,
    /// The request is well-formed but breaks a rule given the current state (a quota, a limit).
    FailedPrecondition,
    /// A concurrent change won (stale etag); re-read and retry.
    Aborted,
    /// The caller is known but its roles or jurisdiction do not allow the call.
    PermissionDenied,
    /// A dependency is down; retrying later may succeed.
    Unavailable,
    /// A bug or a broken invariant on our side.
    Internal,
}

impl ErrorKind {
    pub fn code(self) -> Code {
        match self {
            ErrorKind::InvalidArgument => Code::InvalidArgument,
            ErrorKind::NotFound => Code::NotFound,
            ErrorKind::AlreadyExists => Code::AlreadyExists,
            ErrorKind::FailedPrecondition => Code::FailedPrecondition,
            ErrorKind::Aborted => Code::Aborted,
            ErrorKind::PermissionDenied => Code::PermissionDenied,
            ErrorKind::Unavailable => Code::Unavailable,
            ErrorKind::Internal => Code::Internal,
        }
    }

    /// The `google.rpc.ErrorInfo.reason` of this kind: stable, UPPER_SNAKE_CASE, unique in [`ERROR_DOMAIN`].
    /// Programs branch on it; never change a published value.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "INVALID_ARGUMENT",
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::AlreadyExists => "ALREADY_EXISTS",
            ErrorKind::FailedPrecondition => "FAILED_PRECONDITION",
            ErrorKind::Aborted => "ABORTED",
            ErrorKind::PermissionDenied => "PERMISSION_DENIED",
            ErrorKind::Unavailable => "UNAVAILABLE",
            ErrorKind::Internal => "INTERNAL",
        }
    }
}

/// An error a service answers with: a kind, a message for people, and per-field details for programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub kind: ErrorKind,
    pub message: String,
    /// `(field, description)` pairs, sent as `google.rpc.BadRequest` field violations (the first ones, within
    /// the budget of the module doc).
    pub field_violations: Vec<(String, String)>,
    /// Sent as `google.rpc.ErrorInfo.metadata`, e.g. `request_index` of a refused batch; see
    /// [`ServiceError::with_metadata`].
    pub metadata: BTreeMap<String, String>,
}

impl ServiceError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), field_violations: Vec::new(), metadata: BTreeMap::new() }
    }

    /// INVALID_ARGUMENT listing every violation; the message names the first ones so that a caller reading only
    /// the message still learns what to fix.
    pub fn invalid_arguments(violations: impl IntoIterator<Item = (String, String)>) -> Self {
        let field_violations: Vec<_> = violations.into_iter().collect();
        let message = message_naming(&field_violations);
        Self { kind: ErrorKind::InvalidArgument, message, field_violations, metadata: BTreeMap::new() }
    }

    /// Adds (or replaces) one `google.rpc.ErrorInfo.metadata` entry, e.g. `("request_index", "7")`. Keys should
    /// match `[a-z][a-z0-9_]*`; keys over 64 and values over 100 characters are cut.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for ServiceError {}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Self {
        if error.kind == ErrorKind::Internal {
            tracing::error!(message = %error.message, "internal error");
        }
        let message = fit_encoded(&shorten_quoted(&error.message), MAX_MESSAGE_HEADER_BYTES).into_owned();
        let details = encode_details(&error, &message);
        Status::with_details(error.kind.code(), message, Bytes::from(details))
    }
}

/// The message of [`ServiceError::invalid_arguments`]: the first violations that fit, then how many more.
fn message_naming(violations: &[(String, String)]) -> String {
    let suffix = |shown: usize| match violations.len() - shown {
        0 => String::new(),
        more => format!(" (and {more} more in the error details)"),
    };
    let mut message = String::new();
    let mut shown = 0;
    for (field, description) in violations.iter().take(MESSAGE_SHOWN) {
        let part = format!("{}: {}", cut_chars(field, MAX_FIELD_CHARS), shorten_description(description));
        // Room is kept for the count, so that it always survives.
        let room = MAX_MESSAGE_HEADER_BYTES - encoded_len(&suffix(shown + 1));
        let candidate = if shown == 0 { part } else { format!("{message}; {part}") };
        if encoded_len(&candidate) <= room {
            message = candidate;
            shown += 1;
        } else {
            if shown == 0 {
                message = fit_encoded(&candidate, room).into_owned();
                shown = 1;
            }
            break;
        }
    }
    message.push_str(&suffix(shown));
    message
}

/// The encoded `google.rpc.Status` of `grpc-status-details-bin`: ErrorInfo, then the violations that fit.
fn encode_details(error: &ServiceError, message: &str) -> Vec<u8> {
    let mut metadata: std::collections::HashMap<String, String> = error
        .metadata
        .iter()
        .map(|(key, value)| {
            (
                cut_chars(key, MAX_METADATA_KEY_CHARS).into_owned(),
                cut_chars(value, MAX_METADATA_VALUE_CHARS).into_owned(),
            )
        })
        .collect();
    if !error.field_violations.is_empty() {
        metadata.insert(VIOLATION_COUNT_KEY.to_owned(), error.field_violations.len().to_string());
    }
    let info = pb::ErrorInfo { reason: error.kind.reason().to_owned(), domain: ERROR_DOMAIN.to_owned(), metadata };
    let mut status = pb::Status {
        code: error.kind.code() as i32,
        message: message.to_owned(),
        details: vec![prost_types::Any { type_url: ERROR_INFO_TYPE_URL.to_owned(), value: info.encode_to_vec() }],
    };
    if !error.field_violations.is_empty() {
        let violations = fitting_violations(&error.field_violations, status.encoded_len());
        let bad_request = pb::BadRequest { field_violations: violations };
        status
            .details
            .push(prost_types::Any { type_url: BAD_REQUEST_TYPE_URL.to_owned(), value: bad_request.encode_to_vec() });
    }
    let encoded = status.encode_to_vec();
    debug_assert!(base64_len(encoded.len()) <= MAX_DETAILS_HEADER_BYTES, "details over budget: {}", encoded.len());
    encoded
}

/// The first violations (cut) whose `BadRequest`, added to a `Status` of `base_len` bytes, stays within the
/// budget, then one violation counting the others.
fn fitting_violations(all: &[(String, String)], base_len: usize) -> Vec<pb::bad_request::FieldViolation> {
    let budget = MAX_DETAILS_HEADER_BYTES / 4 * 3;
    // The Status's size once a BadRequest of `len` bytes is added as its last Any.
    let status_len = |len: usize| base_len + wrapped_len(wrapped_len(BAD_REQUEST_TYPE_URL.len()) + wrapped_len(len));
    let summary_reserve = prost::encoding::message::encoded_len(
        1,
        &violation("x".repeat(MAX_SUMMARY_FIELD_BYTES), summary_text(usize::MAX, usize::MAX)),
    );
    let mut shown = Vec::new();
    let mut len = 0;
    for (index, (field, description)) in all.iter().enumerate() {
        let one = violation(cut_chars(field, MAX_FIELD_CHARS).into_owned(), shorten_description(description));
        let one_len = prost::encoding::message::encoded_len(1, &one);
        let reserve = if index + 1 == all.len() { 0 } else { summary_reserve };
        if status_len(len + one_len + reserve) > budget {
            break;
        }
        len += one_len;
        shown.push(one);
    }
    if shown.len() < all.len() {
        let omitted = &all[shown.len()..];
        shown.push(violation(common_parent(omitted), summary_text(omitted.len(), all.len())));
    }
    shown
}

fn violation(field: String, description: String) -> pb::bad_request::FieldViolation {
    pb::bad_request::FieldViolation { field, description, ..Default::default() }
}

fn summary_text(omitted: usize, total: usize) -> String {
    format!("and {omitted} more violations not listed ({total} in all); fix those above and retry to see the rest")
}

/// The longest field path that is a parent of (or equal to) every omitted field, e.g. `townships` for
/// `townships[19].kind` … `townships[171].kind`; empty when they share none or it is too long to send.
fn common_parent(violations: &[(String, String)]) -> String {
    let mut prefix: &str = &violations[0].0;
    for (field, _) in &violations[1..] {
        let common = prefix.char_indices().zip(field.chars()).find(|((_, a), b)| a != b).map(|((at, _), _)| at);
        if let Some(at) = common {
            prefix = &prefix[..at];
        } else if field.len() < prefix.len() {
            prefix = &prefix[..field.len()];
        }
    }
    // Back off to a path boundary: the prefix must end where every field ends or continues with `.` or `[`.
    let at_boundary = |len: usize| {
        violations.iter().all(|(field, _)| matches!(field.as_bytes().get(len), None | Some(b'.') | Some(b'[')))
    };
    let mut end = prefix.len();
    while end > 0 && !(prefix.is_char_boundary(end) && at_boundary(end)) {
        end -= 1;
    }
    if end > MAX_SUMMARY_FIELD_BYTES { String::new() } else { prefix[..end].to_owned() }
}

/// Length of a length-delimited protobuf field (one-byte key) whose body is `len` bytes.
fn wrapped_len(len: usize) -> usize {
    1 + prost::encoding::encoded_len_varint(len as u64) + len
}

/// Length of unpadded base64 (what tonic sends) of `len` bytes.
fn base64_len(len: usize) -> usize {
    (len * 4).div_ceil(3)
}

fn shorten_description(description: &str) -> String {
    cut_chars(&shorten_quoted(description), MAX_DESCRIPTION_CHARS).into_owned()
}

/// Length of `text` percent-encoded as tonic encodes `grpc-message`: controls, non-ASCII bytes and
/// ` "#%<>`?{}` take three bytes each.
fn encoded_len(text: &str) -> usize {
    text.bytes().map(|b| if !(0x20..0x7f).contains(&b) || b" \"#%<>`?{}".contains(&b) { 3 } else { 1 }).sum()
}

/// `text` cut on a character boundary (with `…`) so that it percent-encodes into at most `budget` bytes.
fn fit_encoded(text: &str, budget: usize) -> Cow<'_, str> {
    if encoded_len(text) <= budget {
        return Cow::Borrowed(text);
    }
    let room = budget.saturating_sub(encoded_len(ELLIPSIS.encode_utf8(&mut [0; 4])));
    let mut used = 0;
    let mut end = 0;
    for (at, c) in text.char_indices() {
        let cost = encoded_len(c.encode_utf8(&mut [0; 4]));
        if used + cost > room {
            break;
        }
        used += cost;
        end = at + c.len_utf8();
    }
    Cow::Owned(format!("{}{ELLIPSIS}", &text[..end]))
}

/// `text` cut to at most `max` characters, the last being `…` when cut.
fn cut_chars(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some(_) => {
            let end = text.char_indices().nth(max.saturating_sub(1)).map_or(text.len(), |(at, _)| at);
            Cow::Owned(format!("{}{ELLIPSIS}", &text[..end]))
        }
    }
}

/// `text` with every double-quoted value longer than [`MAX_QUOTED_CHARS`] cut to that length plus `…` inside
/// its quotes. Backslash escapes (as `{:?}` writes them) are kept whole; an unclosed quote is left alone.
fn shorten_quoted(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_QUOTED_CHARS {
        return Cow::Borrowed(text);
    }
    let mut out = String::new();
    let mut rest = text;
    let mut changed = false;
    while let Some(open) = rest.find('"') {
        out.push_str(&rest[..=open]);
        let inner = &rest[open + 1..];
        let (mut count, mut cut, mut close) = (0, None, None);
        let mut chars = inner.char_indices();
        while let Some((at, c)) = chars.next() {
            if c == '"' {
                close = Some(at);
                break;
            }
            if count >= MAX_QUOTED_CHARS && cut.is_none() {
                cut = Some(at);
            }
            count += 1;
            if c == '\\' {
                chars.next();
                count += 1;
            }
        }
        let Some(close) = close else {
            out.push_str(inner);
            rest = "";
            break;
        };
        match cut {
            Some(cut) => {
                out.push_str(&inner[..cut]);
                out.push(ELLIPSIS);
                changed = true;
            }
            None => out.push_str(&inner[..close]),
        }
        out.push('"');
        rest = &inner[close + 1..];
    }
    if !changed {
        return Cow::Borrowed(text);
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::StatusExt as _;

    /// The header values tonic really sends for `status`: (grpc-message, grpc-status-details-bin, the whole
    /// header list as HTTP/2 counts it, 32 bytes per entry).
    fn header_sizes(status: &Status) -> (usize, usize, usize) {
        let mut headers = tonic::codegen::http::HeaderMap::new();
        status.add_header(&mut headers).expect("valid headers");
        let len = |name: &str| headers.get(name).map_or(0, |v| v.len());
        let list = headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 32).sum();
        (len("grpc-message"), len("grpc-status-details-bin"), list)
    }

    fn assert_within_budget(name: &str, error: ServiceError) -> Status {
        let status = Status::from(error);
        let (message, details, list) = header_sizes(&status);
        let listed = status.get_details_bad_request().map_or(0, |b| b.field_violations.len());
        println!(
            "{name}: grpc-message {message} B, grpc-status-details-bin {details} B, header list {list} B, {listed} violations sent"
        );
        assert!(message <= MAX_MESSAGE_HEADER_BYTES, "{name}: grpc-message {message} B");
        assert!(details <= MAX_DETAILS_HEADER_BYTES, "{name}: details {details} B");
        assert!(list <= 6 * 1024, "{name}: header list {list} B, well under 8 KiB");
        status
    }

    fn missing_kinds(count: usize) -> ServiceError {
        ServiceError::invalid_arguments((0..count).map(|i| {
            (
                format!("townships[{i}].kind"),
                format!(
                    "township 430102{i:03} (某某街道): kind must be one of TOWN, TOWNSHIP, ETHNIC_TOWNSHIP, SUBDISTRICT, \
                     OTHER"
                ),
            )
        }))
    }

    #[test]
    fn ten_thousand_violations_list_the_first_in_full_then_count_the_rest() {
        for count in [172, 2_000, 10_000] {
            let status = assert_within_budget(&format!("{count} townships without kind"), missing_kinds(count));
            assert_eq!(status.code(), Code::InvalidArgument);
            assert!(status.message().starts_with("townships[0].kind: township 430102000 (某某街道): kind must be"));
            assert!(status.message().ends_with(&format!(" (and {} more in the error details)", count - 3)));
            let violations = status.get_details_bad_request().expect("BadRequest").field_violations;
            let (last, listed) = violations.split_last().unwrap();
            assert!(listed.len() >= 10, "{} listed", listed.len());
            for (i, v) in listed.iter().enumerate() {
                assert_eq!(v.field, format!("townships[{i}].kind"));
                assert!(v.description.ends_with("SUBDISTRICT, OTHER"), "in full: {}", v.description);
            }
            assert_eq!(last.field, "townships");
            assert!(
                last.description
                    .starts_with(&format!("and {} more violations not listed ({count} in all)", count - listed.len())),
                "{}",
                last.description
            );
            let info = status.get_details_error_info().expect("ErrorInfo");
            assert_eq!(info.metadata[VIOLATION_COUNT_KEY], count.to_string());
        }
    }

    #[test]
    fn chinese_descriptions_fields_and_values_stay_within_budget() {
        let chinese = ServiceError::invalid_arguments(
            (0..10_000).map(|i| (format!("townships[{i}].名称"), format!("名称“{}”不是乡镇名称", "镇".repeat(500)))),
        );
        let status = assert_within_budget("10,000 Chinese descriptions", chinese);
        let violations = status.get_details_bad_request().unwrap().field_violations;
        assert!(violations.len() >= 2, "at least one in full, then the count");
        assert_eq!(violations[0].field, "townships[0].名称");
        assert_eq!(violations[0].description.chars().count(), MAX_DESCRIPTION_CHARS);
        assert!(violations[0].description.ends_with(ELLIPSIS));
        assert!(status.message().ends_with(" (and 9999 more in the error details)"), "{}", status.message());

        let cjk_value = ServiceError::invalid_arguments([(
            "parent".to_owned(),
            format!("{:?} is not a township name", "镇".repeat(10_000)),
        )]);
        let status = assert_within_budget("10,000-character CJK value", cjk_value);
        let quoted = format!("\"{}{ELLIPSIS}\" is not a township name", "镇".repeat(MAX_QUOTED_CHARS));
        assert_eq!(status.get_details_bad_request().unwrap().field_violations[0].description, quoted);
        assert_eq!(status.message(), format!("parent: {quoted}"), "the message keeps the value cut the same way");

        let message = ServiceError::new(ErrorKind::NotFound, format!("township {} not found", "镇".repeat(10_000)));
        let status = assert_within_budget("NOT_FOUND with a 10,000-character CJK message", message);
        assert!(status.message().starts_with("township 镇镇") && status.message().ends_with(ELLIPSIS));
    }

    #[test]
    fn a_ten_kilobyte_value_is_quoted_at_most_a_hundred_characters() {
        let name = "x".repeat(10_000);
        let error = ServiceError::invalid_arguments([(
            "name".to_owned(),
            format!("{name:?} is not a resource name; names start with cities/{{city code}}"),
        )]);
        let status = assert_within_budget("10 KB quoted value", error);
        let description = &status.get_details_bad_request().unwrap().field_violations[0].description;
        assert_eq!(
            description,
            &format!("\"{}…\" is not a resource name; names start with cities/{{city code}}", "x".repeat(100))
        );

        let field = ServiceError::invalid_arguments([("a".repeat(10_000), "bad".to_owned())]);
        let status = assert_within_budget("10,000-character field path", field);
        let violation = &status.get_details_bad_request().unwrap().field_violations[0];
        assert_eq!(violation.field.chars().count(), MAX_FIELD_CHARS);
        assert_eq!(violation.description, "bad");
    }

    #[test]
    fn quoted_values_are_cut_on_char_boundaries_keeping_escapes_whole() {
        assert_eq!(shorten_quoted("short \"value\""), "short \"value\"");
        let long = format!("{:?} and {:?}", format!("{}\"{}", "a".repeat(99), "b".repeat(50)), "ok");
        // 99 a's, then the escape \" kept whole (101 characters), then the cut.
        assert_eq!(shorten_quoted(&long), format!("\"{}\\\"…\" and \"ok\"", "a".repeat(99)));
        let unclosed = format!("\"{}", "c".repeat(300));
        assert_eq!(shorten_quoted(&unclosed), unclosed.as_str());
        assert_eq!(cut_chars("镇镇镇", 2), "镇…");
        assert_eq!(cut_chars("镇镇", 2), "镇镇");
        assert_eq!(fit_encoded("镇镇镇", 18), "镇…");
    }

    #[test]
    fn encoded_len_matches_what_tonic_sends() {
        let text = "a b\"#%<>`?{}\t\u{7f}镇~!".to_owned();
        let (message, _, _) = header_sizes(&Status::new(Code::Internal, text.clone()));
        assert_eq!(encoded_len(&text), message);
    }

    #[test]
    fn every_status_carries_error_info_with_reason_domain_and_metadata() {
        let status = Status::from(
            ServiceError::new(ErrorKind::FailedPrecondition, "requests[7]: township 430102001 already has 6")
                .with_metadata("request_index", "7"),
        );
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(status.message(), "requests[7]: township 430102001 already has 6");
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "FAILED_PRECONDITION");
        assert_eq!(info.domain, ERROR_DOMAIN);
        assert_eq!(info.metadata.len(), 1);
        assert_eq!(info.metadata["request_index"], "7");
        assert!(status.get_details_bad_request().is_none());

        let status =
            Status::from(ServiceError::invalid_arguments([("page_size".to_owned(), "must be ≥ 0".to_owned())]));
        assert_eq!(status.message(), "page_size: must be ≥ 0");
        let info = status.get_details_error_info().unwrap();
        assert_eq!((info.reason.as_str(), info.metadata[VIOLATION_COUNT_KEY].as_str()), ("INVALID_ARGUMENT", "1"));
        let violations = status.get_details_bad_request().unwrap().field_violations;
        assert_eq!(violations.len(), 1, "nothing omitted, no count");
        assert_eq!((violations[0].field.as_str(), violations[0].description.as_str()), ("page_size", "must be ≥ 0"));

        for kind in [
            ErrorKind::InvalidArgument,
            ErrorKind::NotFound,
            ErrorKind::AlreadyExists,
            ErrorKind::FailedPrecondition,
            ErrorKind::Aborted,
            ErrorKind::Unavailable,
            ErrorKind::Internal,
        ] {
            let reason = kind.reason();
            assert!(reason.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'), "{reason}");
            let snake: String = format!("{:?}", kind.code())
                .chars()
                .enumerate()
                .flat_map(|(i, c)| {
                    (i > 0 && c.is_uppercase()).then_some('_').into_iter().chain([c.to_ascii_uppercase()])
                })
                .collect();
            assert_eq!(reason, snake, "the reason of a kind is its code's name");
        }
    }

    #[test]
    fn the_summary_names_the_common_parent_of_the_omitted_fields() {
        let fields = |names: &[&str]| names.iter().map(|n| (n.to_string(), String::new())).collect::<Vec<_>>();
        assert_eq!(common_parent(&fields(&["townships[19].kind", "townships[171].kind"])), "townships");
        assert_eq!(common_parent(&fields(&["townships[1].kind", "townships[1].indicators"])), "townships[1]");
        assert_eq!(common_parent(&fields(&["policy.weights", "policy.weight"])), "policy");
        assert_eq!(common_parent(&fields(&["policy.weights", "townships"])), "");
        assert_eq!(common_parent(&fields(&["requests[3].institution.kind"])), "requests[3].institution.kind");
    }
}
