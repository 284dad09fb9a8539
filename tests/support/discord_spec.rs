//! Validation of the JSON bodies the bot sends against Discord's OpenAPI 3.1 description.
//!
//! The spec is loaded once from `tests/fixtures/specs/discord-openapi.json` (a copy kept in the
//! repository, MIT, see the LICENSE beside it) or, failing that, from `../shared/specs/` beside the
//! checkout. Request-body schemas are found by OpenAPI path template and method, e.g.
//! `("PUT", "/applications/{application_id}/commands")`, and compiled with `jsonschema` (draft
//! 2020-12, which OpenAPI 3.1 schemas follow) with the whole document registered as a resource so
//! every `$ref: "#/components/schemas/..."` resolves. Formats (`int32`, `uri`, ...) are annotations
//! only, as in draft 2020-12 by default.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, ValidationError, Validator};
use serde_json::{json, Value};

/// URI under which the whole OpenAPI document is registered with the validator.
const SPEC_URI: &str = "urn:discord-openapi";

/// Where the Discord OpenAPI document is read from: the in-repo copy if present, else
/// `CARGO_MANIFEST_DIR/../shared/specs/discord-openapi.json`.
pub fn spec_path() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let in_repo = root.join("tests/fixtures/specs/discord-openapi.json");
    if in_repo.is_file() {
        return in_repo;
    }
    root.join("../shared/specs/discord-openapi.json")
}

/// The parsed OpenAPI document (loaded once per test binary).
pub fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = spec_path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read Discord OpenAPI spec {}: {e}", path.display()));
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("invalid JSON in {}: {e}", path.display()))
    })
}

type Cache = Mutex<HashMap<String, Option<Arc<Validator>>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Compiles (once) a validator for the schema at `pointer` (a JSON pointer into the spec, with
/// tokens already escaped); `None` if nothing is there.
fn validator_at(pointer: &str) -> Option<Arc<Validator>> {
    if let Some(found) = cache().lock().unwrap().get(pointer) {
        return found.clone();
    }
    let validator = spec().pointer(pointer).is_some().then(|| {
        let fragment: String = pointer
            .chars()
            .map(|c| match c {
                '{' => "%7B".to_string(),
                '}' => "%7D".to_string(),
                '@' => "%40".to_string(),
                other => other.to_string(),
            })
            .collect();
        let resource = Draft::Draft202012.create_resource(spec().clone());
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .with_resource(SPEC_URI, resource)
            .build(&json!({ "$ref": format!("{SPEC_URI}#{fragment}") }))
            .unwrap_or_else(|e| panic!("cannot compile schema at {pointer}: {e}"));
        Arc::new(validator)
    });
    cache()
        .lock()
        .unwrap()
        .insert(pointer.to_string(), validator.clone());
    validator
}

/// JSON pointer of the `application/json` request body schema of `method openapi_path`.
fn body_pointer(method: &str, openapi_path: &str) -> String {
    format!(
        "/paths/{}/{}/requestBody/content/application~1json/schema",
        escape_token(openapi_path),
        method.to_ascii_lowercase()
    )
}

fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The compiled validator for the `application/json` request body of `method openapi_path`,
/// or `None` when the spec describes no JSON body for that operation. Cached per operation.
pub fn request_body_validator(method: &str, openapi_path: &str) -> Option<Arc<Validator>> {
    let pointer = body_pointer(method, openapi_path);
    validator_at(&pointer)
}

/// Shortens long messages (they quote the offending value) while keeping both ends readable.
fn shorten(msg: String) -> String {
    let chars: Vec<char> = msg.chars().collect();
    if chars.len() <= 240 {
        return msg;
    }
    let head: String = chars[..80].iter().collect();
    let tail: String = chars[chars.len() - 140..].iter().collect();
    format!("{head}…{tail}")
}

/// True if `e` only says "this union branch is not the right kind of thing" relative to the union
/// at `union_path`: a type mismatch of the value itself, or a mismatch of its `type`
/// discriminator (how Discord's callback/option unions are told apart).
fn is_discriminator_miss(e: &ValidationError<'_>, union_path: &str) -> bool {
    let at = e.instance_path.to_string();
    match &e.kind {
        ValidationErrorKind::Type { .. } => at == union_path,
        ValidationErrorKind::Enum { .. } | ValidationErrorKind::Constant { .. } => {
            at == format!("{union_path}/type")
        }
        _ => false,
    }
}

/// Flattens an error into the most specific messages: for a failed `anyOf`/`oneOf`, the errors
/// of the branches that match the value's kind/discriminator (recursively), keeping the branch(es)
/// with the fewest errors, i.e. the variant the sender most likely meant; otherwise itself.
fn leaf_errors(context: &str, e: &ValidationError<'_>, out: &mut Vec<String>) {
    let branches = match &e.kind {
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            Some(context)
        }
        _ => None,
    };
    let at = e.instance_path.to_string();
    if let Some(branches) = branches {
        let relevant: Vec<_> = branches
            .iter()
            .filter(|errs| !errs.iter().any(|b| is_discriminator_miss(b, &at)))
            .collect();
        // Unfold each fitting branch; report the closest one(s): fewest specific errors.
        let unfolded: Vec<Vec<String>> = relevant
            .iter()
            .map(|errs| {
                let mut leaves = Vec::new();
                for inner in errs.iter() {
                    leaf_errors(context, inner, &mut leaves);
                }
                leaves
            })
            .collect();
        if let Some(fewest) = unfolded.iter().map(Vec::len).min() {
            for leaves in unfolded.into_iter().filter(|l| l.len() == fewest) {
                for leaf in leaves {
                    if !out.contains(&leaf) {
                        out.push(leaf);
                    }
                }
            }
            return;
        }
    }
    let shown = if at.is_empty() { "/".to_string() } else { at };
    out.push(format!("{context}: at {shown}: {}", shorten(e.to_string())));
}

/// Validates `body` as the JSON request body of `method openapi_path`.
///
/// Returns `None` when the spec has no JSON request body for that operation (nothing to check),
/// otherwise `Some(errors)`: an empty vector means valid; each error reads
/// `"<METHOD> <path>: at <instance path>: <message>"`. Besides the schema, Discord's 6000-character
/// total over a message's embeds is checked. Failed unions (`anyOf`/`oneOf`, e.g. the
/// callback types or `data: null | object`) are unfolded into the errors of the branches that fit
/// the value, so a message says *what* is wrong rather than "not valid under any of the schemas".
pub fn validate_request_body(
    method: &str,
    openapi_path: &str,
    body: &Value,
) -> Option<Vec<String>> {
    let validator = request_body_validator(method, openapi_path)?;
    let context = format!("{} {openapi_path}", method.to_ascii_uppercase());
    let mut errors = Vec::new();
    for e in validator.iter_errors(body) {
        leaf_errors(&context, &e, &mut errors);
    }
    let message = body.get("data").filter(|d| d.is_object()).unwrap_or(body);
    let total = embed_total_chars(message);
    if total > 6000 {
        errors.push(format!(
            "{context}: embeds total {total} characters; Discord allows 6000 per message"
        ));
    }
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert(e.clone()));
    Some(errors)
}

/// Characters Discord counts towards the 6000-per-message embed limit (titles, descriptions,
/// field names and values, footer texts, author names) over all `embeds` of a message body.
/// The OpenAPI schema cannot express this limit; [`validate_request_body`] adds it.
pub fn embed_total_chars(message: &Value) -> usize {
    let len = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    let Some(embeds) = message.get("embeds").and_then(Value::as_array) else {
        return 0;
    };
    embeds
        .iter()
        .map(|e| {
            let fields: usize = e.get("fields").and_then(Value::as_array).map_or(0, |fs| {
                fs.iter().map(|f| len(&f["name"]) + len(&f["value"])).sum()
            });
            len(&e["title"])
                + len(&e["description"])
                + len(&e["footer"]["text"])
                + len(&e["author"]["name"])
                + fields
        })
        .sum()
}
